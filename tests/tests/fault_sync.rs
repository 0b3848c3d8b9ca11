//! Sync through a fault-injecting proxy (docs/reliability.md): dropped, duplicated, reordered,
//! delayed and cut requests and answers between devices and a real server process. Each fault
//! alone, then a property test over random edit and sync schedules on three devices: after
//! the network heals, all converge and no acknowledged edit is lost.
//!
//! `FENLEI_PROPTEST_CASES` sets the number of schedules (default 6, the CI run; the long run
//! is `scripts/reliability.sh proxy`).

mod common;

use common::*;
use fenlei_core::answer::{AnswerValue, ItemAnswer};
use fenlei_core::inspection::{EditContext, InspectionKind, NewInspection};
use fenlei_core::progress::{CancelToken, NoProgress};
use fenlei_core::store::Store;
use fenlei_core::sync::{SyncClient, SyncOptions};
use fenlei_e2e::fault_proxy::{Fault, FaultPlan, FaultProxy};
use proptest::prelude::*;
use std::collections::BTreeMap;

/// Retries fast: the proxy breaks many requests on purpose.
fn options() -> SyncOptions {
    SyncOptions {
        max_retries: 6,
        retry_base_ms: 5,
        timeout_ms: 20_000,
        ..Default::default()
    }
}

/// One server per test; each case enrolls its own devices.
struct Shared {
    _dir: tempfile::TempDir,
    server: Server,
    communities: Vec<String>,
}

fn shared() -> Shared {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let (street, communities, _) = sample_places();
    for n in 0..3 {
        let id = format!("insp.p{n}");
        server.admin(&["add-user", "--id", &id, "--role", "inspector"]);
        server.admin(&["assign", "--user", &id, "--street", &street]);
    }
    Shared {
        _dir: dir,
        server,
        communities,
    }
}

fn devices(s: &Shared, dir: &std::path::Path) -> Vec<Device> {
    (0..3)
        .map(|n| {
            let d = Device::enroll(&s.server, dir, &format!("insp.p{n}"));
            d.sync();
            d
        })
        .collect()
}

/// Syncs through `url`; a sync that still fails after its retries is simply over (the network
/// is bad), as in the field: its work is pushed by a later sync.
fn sync_via(d: &Device, url: &str) -> bool {
    SyncClient::with_options(url, &d.token, options())
        .unwrap()
        .sync(&d.store, &NoProgress, &CancelToken::new())
        .is_ok_and(|r| r.rejected.is_empty())
}

fn create(d: &Device, community: &str) -> String {
    d.store
        .create_inspection(
            &NewInspection {
                community_id: community.into(),
                standard_id: "hohhot-residential".into(),
                standard_version: "2026.1".into(),
                kind: InspectionKind::DailyPatrol,
                co_inspectors: vec![],
            },
            &d.user,
        )
        .unwrap()
}

fn items(store: &Store) -> Vec<String> {
    compliant_items(store)
}

fn note_answer(item: &str, note: &str) -> ItemAnswer {
    ItemAnswer {
        item_code: item.into(),
        value: AnswerValue::Compliant,
        sampled_units: None,
        note: Some(note.into()),
    }
}

/// Heals the network: direct syncs until every device holds the same documents with the same
/// heads. Returns the documents' heads.
fn converge(s: &Shared, ds: &[Device]) -> BTreeMap<String, Vec<String>> {
    let url = s.server.url();
    let view = |d: &Device| -> BTreeMap<String, Vec<String>> {
        d.store
            .document_ids()
            .unwrap()
            .into_iter()
            .map(|id| {
                let mut doc = d.store.load_document(&id).unwrap().unwrap();
                (id, fenlei_core::sync::heads_of(&mut doc))
            })
            .collect()
    };
    for _ in 0..4 {
        for d in ds {
            assert!(sync_via(d, &url), "a direct sync fails");
        }
        let views: Vec<_> = ds.iter().map(view).collect();
        if views.windows(2).all(|w| w[0] == w[1]) {
            return views.into_iter().next().unwrap();
        }
    }
    panic!("devices did not converge");
}

#[test]
fn each_fault_alone_loses_nothing() {
    let s = &shared();
    let faults = [
        Fault::DropRequest,
        Fault::DropResponse,
        Fault::Duplicate,
        Fault::Reorder,
        Fault::CutRequest,
        Fault::CutResponse,
        Fault::Delay,
    ];
    for (n, fault) in faults.into_iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let ds = devices(s, dir.path());
        let mut plan = FaultPlan {
            seed: 1000 + n as u64,
            delay_max_ms: 100,
            ..Default::default()
        };
        let p = 40;
        match fault {
            Fault::DropRequest => plan.drop_request = p,
            Fault::DropResponse => plan.drop_response = p,
            Fault::Duplicate => plan.duplicate = p,
            Fault::Reorder => plan.reorder = p,
            Fault::CutRequest => plan.cut_request = p,
            Fault::CutResponse => plan.cut_response = p,
            Fault::Delay => plan.delay = p,
            Fault::Pass => unreachable!(),
        }
        let proxy = FaultProxy::start(s.server.port, plan);
        let codes = items(&ds[0].store);
        let mut written = Vec::new();
        for (k, code) in codes.iter().take(3).enumerate() {
            let id = create(&ds[0], &s.communities[k % s.communities.len()]);
            let note = format!("{fault:?}-{k}");
            ds[0]
                .store
                .record_answer(
                    &id,
                    &note_answer(code, &note),
                    &EditContext::by(&ds[0].user),
                )
                .unwrap();
            written.push((id, code.clone(), note));
            for d in &ds {
                sync_via(d, &proxy.url());
            }
        }
        let stats = proxy.stats();
        assert!(
            stats.count(fault) > 0,
            "{fault:?} never happened: {stats:?}"
        );
        converge(s, &ds);
        for d in &ds {
            for (id, item, note) in &written {
                let i = d.store.inspection(id).unwrap();
                assert!(
                    i.answers
                        .iter()
                        .any(|a| &a.answer.item_code == item
                            && a.answer.note.as_deref() == Some(note)),
                    "{fault:?}: {id} {item} lost on {}",
                    d.user
                );
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Create {
        device: usize,
        community: usize,
    },
    Edit {
        device: usize,
        doc: usize,
        item: usize,
    },
    Sync {
        device: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (0..3usize, 0..4usize).prop_map(|(device, community)| Op::Create { device, community }),
        4 => (0..3usize, 0..8usize, 0..6usize).prop_map(|(device, doc, item)| Op::Edit { device, doc, item }),
        3 => (0..3usize).prop_map(|device| Op::Sync { device }),
    ]
}

fn cases() -> u32 {
    std::env::var("FENLEI_PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6)
}

/// Three devices edit shared inspections and sync through a proxy that breaks 14–42% of
/// requests. Each device answers only its own third of the items, so the last answer a device
/// acknowledged for an item is the one every device must end with.
#[test]
fn three_devices_converge_through_faults_and_lose_no_acknowledged_edit() {
    let s = &shared();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: cases(),
        max_shrink_iters: 16,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let schedule = (
        proptest::collection::vec(op(), 4..24),
        any::<u64>(),
        2u32..6,
    );
    runner
        .run(&schedule, |(ops, seed, percent)| {
            let dir = tempfile::tempdir().unwrap();
            let ds = devices(s, dir.path());
            let proxy = FaultProxy::start(s.server.port, FaultPlan::all(percent, seed));
            let codes = items(&ds[0].store);
            // (inspection, item) → the last note acknowledged for it.
            let mut acked: BTreeMap<(String, String), String> = BTreeMap::new();
            // Every device starts with one inspection of its own.
            for d in &ds {
                create(d, &s.communities[0]);
            }
            for (n, op) in ops.iter().enumerate() {
                match *op {
                    Op::Create { device, community } => {
                        create(&ds[device], &s.communities[community % s.communities.len()]);
                    }
                    Op::Edit { device, doc, item } => {
                        let d = &ds[device];
                        let ids = d.store.document_ids().unwrap();
                        let id = &ids[doc % ids.len()];
                        // Items device k owns: k, k+3, k+6, ... (never shared: no wrap-around).
                        let code = &codes[(item * 3 + device) % (codes.len() / 3 * 3)];
                        let note = format!("d{device}-op{n}");
                        d.store
                            .record_answer(id, &note_answer(code, &note), &EditContext::by(&d.user))
                            .unwrap();
                        acked.insert((id.clone(), code.clone()), note);
                    }
                    Op::Sync { device } => {
                        sync_via(&ds[device], &proxy.url());
                    }
                }
            }
            converge(s, &ds);
            let stats = proxy.stats();
            eprintln!(
                "schedule: {} steps, {} requests through the proxy, {} broken; {} acknowledged answers",
                ops.len(),
                stats.requests,
                stats.requests - stats.count(Fault::Pass),
                acked.len()
            );
            for d in &ds {
                for ((id, item), note) in &acked {
                    let i = d.store.inspection(id).unwrap();
                    let got = i
                        .answers
                        .iter()
                        .find(|a| &a.answer.item_code == item)
                        .and_then(|a| a.answer.note.clone());
                    prop_assert_eq!(
                        got.as_deref(),
                        Some(note.as_str()),
                        "{} on {}",
                        item,
                        d.user
                    );
                }
            }
            Ok(())
        })
        .unwrap();
}
