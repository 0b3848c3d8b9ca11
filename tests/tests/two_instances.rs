//! Two server processes behind one PostgreSQL database and one blob store
//! (docs/deploy.md): devices sync through instance A, then B, then A…, push the same document
//! through both at once, resume a photo upload on the other instance, and a supervisor reviews
//! through one while the inspector syncs through the other. Then everything must have converged:
//! every device holds every edit, a supervisor whose feed cursor ran through all of it holds
//! exactly what a freshly enrolled device receives, the server's projection (read through either
//! instance) matches the documents, and no change a device had acknowledged is missing.
//!
//! Needs `FENLEI_TEST_DATABASE_URL` (scripts/test.sh sets it from `scripts/postgres.sh start`);
//! without it the PostgreSQL test prints why and passes. The SQLite refusal test always runs.

mod common;

use common::*;
use fenlei_core::answer::{AnswerValue, ItemAnswer};
use fenlei_core::inspection::{EditContext, InspectionKind, InspectionStatus, NewInspection};
use fenlei_core::media::MediaStore;
use fenlei_core::progress::{CancelToken, NoProgress, Progress};
use fenlei_core::protocol::media::*;
use fenlei_core::sync::SyncClient;
use fenlei_core::sync::media::{MediaSyncOptions, NetworkKind};
use fenlei_e2e::photos::write_photo;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Barrier, Mutex};

const INSPECTORS: usize = 4;

/// Every change hash of a document as `device` holds it, and its heads.
fn changes_and_heads(device: &Device, id: &str) -> (BTreeSet<String>, Vec<String>) {
    let bytes = device.store.document_bytes(id).expect("document held");
    let mut doc = automerge::AutoCommit::load(&bytes).unwrap();
    let changes = doc
        .get_changes(&[])
        .iter()
        .map(|c| c.hash().to_string())
        .collect();
    let mut heads: Vec<String> = doc.get_heads().iter().map(|h| h.to_string()).collect();
    heads.sort();
    (changes, heads)
}

fn ids(device: &Device) -> BTreeSet<String> {
    device.store.document_ids().unwrap().into_iter().collect()
}

/// What every device had acknowledged: change hashes it held right after a sync succeeded.
#[derive(Default)]
struct Acked(Mutex<BTreeMap<String, BTreeSet<String>>>);

impl Acked {
    fn note(&self, device: &Device) {
        let mut seen = self.0.lock().unwrap();
        for id in ids(device) {
            seen.entry(id.clone())
                .or_default()
                .extend(changes_and_heads(device, &id).0);
        }
    }
}

fn sync_acked(device: &Device, url: &str, acked: &Acked) {
    device.sync_via(url);
    acked.note(device);
}

fn note_answer(item: &str, note: String) -> ItemAnswer {
    ItemAnswer {
        item_code: item.into(),
        value: AnswerValue::Compliant,
        sampled_units: None,
        note: Some(note),
    }
}

fn http_json(
    method: &str,
    url: &str,
    token: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let client = reqwest::blocking::Client::new();
    let mut req = match method {
        "POST" => client.post(url),
        _ => client.get(url),
    }
    .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().expect("request");
    let status = resp.status().as_u16();
    let bytes = resp.bytes().unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

/// Cancels the upload once the server confirmed `after` bytes.
struct CancelAfter {
    after: u64,
    cancel: CancelToken,
}

impl Progress for CancelAfter {
    fn on_progress(&self, done: u64, _total: u64) {
        if done >= self.after {
            self.cancel.cancel();
        }
    }
}

#[test]
fn a_second_instance_on_one_sqlite_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let one = Instances::start(&dir.path().join("server"), None, 1);
    let (status, stderr) = match one.spawn() {
        Ok(_) => panic!("a second process served the same SQLite folder"),
        Err(e) => e,
    };
    assert!(!status.success());
    assert!(
        stderr.contains("already serving") && stderr.contains("PostgreSQL"),
        "{stderr}"
    );
    // The first instance still serves, and admin commands still run beside it.
    assert_eq!(
        reqwest::blocking::get(format!("{}/healthz", one.url(0)))
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    one.admin(&["add-user", "--id", "someone", "--role", "inspector"]);
}

#[test]
#[ignore = "needs PostgreSQL: FENLEI_TEST_DATABASE_URL (scripts/test.sh starts one)"]
fn devices_syncing_through_two_instances_converge() {
    let cluster = common::required_cluster();
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database(&cluster);
    let inst = Instances::start(&dir.path().join("server"), Some(db), 2);
    converge_through_both(&inst, dir.path());
}

/// The scenario on instances 0 and 1 of `inst` (devices' stores in `dir`).
fn converge_through_both(inst: &Instances, dir: &std::path::Path) {
    let url = [inst.url(0), inst.url(inst.servers.len() - 1)];
    let (street, communities, district) = sample_places();
    let inspectors: Vec<String> = (0..INSPECTORS).map(|i| format!("insp.{i}")).collect();
    for user in &inspectors {
        inst.admin(&["add-user", "--id", user, "--role", "inspector"]);
        inst.admin(&["assign", "--user", user, "--street", &street]);
    }
    inst.admin(&["add-user", "--id", "sup", "--role", "supervisor"]);
    inst.admin(&["assign", "--user", "sup", "--district", &district]);
    // Enrolled through alternating instances too.
    let phones: Vec<Device> = inspectors
        .iter()
        .enumerate()
        .map(|(i, u)| inst.enroll(i % inst.servers.len(), dir, u))
        .collect();
    let sup = inst.enroll(inst.servers.len() - 1, dir, "sup");
    let acked = Acked::default();
    for (i, d) in phones.iter().enumerate() {
        sync_acked(d, &url[(i + 1) % 2], &acked);
    }
    sync_acked(&sup, &url[0], &acked);
    let items = compliant_items(&phones[0].store);
    let ctx = |i: usize| EditContext::by(&inspectors[i]);

    // One inspection everyone co-inspects, created once and received by the others.
    let shared = phones[0]
        .store
        .create_inspection(
            &NewInspection {
                community_id: communities[0].clone(),
                standard_id: "hohhot-residential".into(),
                standard_version: "2026.1".into(),
                kind: InspectionKind::DailyPatrol,
                co_inspectors: inspectors[1..].to_vec(),
            },
            &inspectors[0],
        )
        .unwrap();
    sync_acked(&phones[0], &url[0], &acked);
    let mut own: Vec<Vec<String>> = vec![Vec::new(); INSPECTORS];

    // 1. Sequential rounds: each phone creates an inspection, edits its own and the shared one,
    //    and syncs through A, B, A… (shifted per phone, so both instances serve every phone).
    for round in 0..4 {
        for (i, d) in phones.iter().enumerate() {
            let id = d
                .store
                .create_inspection(
                    &NewInspection {
                        community_id: communities[(i + round) % communities.len()].clone(),
                        standard_id: "hohhot-residential".into(),
                        standard_version: "2026.1".into(),
                        kind: InspectionKind::DailyPatrol,
                        co_inspectors: vec![],
                    },
                    &inspectors[i],
                )
                .unwrap();
            own[i].push(id);
            for id in &own[i] {
                d.store
                    .record_answer(
                        id,
                        &note_answer(&items[round % items.len()], format!("r{round}")),
                        &ctx(i),
                    )
                    .unwrap();
            }
            if d.store.load_document(&shared).unwrap().is_some() {
                d.store
                    .record_answer(
                        &shared,
                        &note_answer(&items[(i + 1) % items.len()], format!("{i} r{round}")),
                        &ctx(i),
                    )
                    .unwrap();
            }
            sync_acked(d, &url[(round + i) % 2], &acked);
        }
        sync_acked(&sup, &url[round % 2], &acked);
    }
    for d in &phones {
        assert!(
            d.store.load_document(&shared).unwrap().is_some(),
            "{} received the shared inspection",
            d.user
        );
    }

    // 2. Concurrent pushes of the same document through both instances, with the supervisor's
    //    device pulling the feed (alternating instances) while the commits land.
    for wave in 0..3 {
        for (i, d) in phones.iter().enumerate() {
            // The same item set differently by everyone (a conflict), and an item of one's own.
            d.store
                .record_answer(
                    &shared,
                    &note_answer(&items[0], format!("wave {wave} by {i}")),
                    &ctx(i),
                )
                .unwrap();
            d.store
                .record_answer(
                    own[i].last().unwrap(),
                    &note_answer(&items[1], format!("wave {wave}")),
                    &ctx(i),
                )
                .unwrap();
        }
        let start = Barrier::new(INSPECTORS + 1);
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            let pushers: Vec<_> = phones
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    let (start, acked, url) = (&start, &acked, &url);
                    s.spawn(move || {
                        start.wait();
                        sync_acked(d, &url[(i + wave) % 2], acked);
                    })
                })
                .collect();
            let puller = s.spawn(|| {
                start.wait();
                let mut n = 0;
                while !done.load(std::sync::atomic::Ordering::SeqCst) {
                    sync_acked(&sup, &url[n % 2], &acked);
                    n += 1;
                }
            });
            for p in pushers {
                p.join().unwrap();
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            puller.join().unwrap();
        });
    }

    // 3. A photo's original, cancelled part-way through A, resumes through B from the offset B
    //    reads in the shared blob store.
    let media = MediaStore::open(dir.join("insp1-media")).unwrap();
    let photo = write_photo(dir, "evidence.jpg", 2000, 1500, 11);
    let rec = phones[1]
        .store
        .attach_photo(&media, &own[1][0], &items[2], &photo, None, &inspectors[1])
        .unwrap()
        .record;
    // On mobile data through B: the thumbnail and the upload rendition; the original waits.
    let cellular = SyncClient::new(&url[1], &phones[1].token)
        .unwrap()
        .sync_media(
            &phones[1].store,
            &media,
            &MediaSyncOptions {
                network: NetworkKind::Cellular,
                ..Default::default()
            },
            &NoProgress,
            &CancelToken::new(),
        )
        .unwrap();
    assert_eq!(
        (cellular.uploaded, cellular.held_for_wifi),
        (2, 1),
        "{cellular:?}"
    );
    let options = MediaSyncOptions {
        network: NetworkKind::Wifi,
        chunk_bytes: 64 * 1024,
        ..Default::default()
    };
    let cancel = CancelToken::new();
    let stopper = CancelAfter {
        after: rec.bytes / 3,
        cancel: cancel.clone(),
    };
    let via_a = SyncClient::new(&url[0], &phones[1].token).unwrap();
    let err = via_a
        .sync_media(&phones[1].store, &media, &options, &stopper, &cancel)
        .unwrap_err();
    assert!(matches!(err, fenlei_core::CoreError::Cancelled), "{err:?}");
    acked.note(&phones[1]);
    let status: MediaStatusResponse = reqwest::blocking::Client::new()
        .post(format!("{}/v1/media/status", url[1]))
        .bearer_auth(&phones[1].token)
        .json(&MediaStatusRequest {
            items: vec![MediaItemRef {
                sha256: rec.sha256.clone(),
                rendition: MediaRendition::Original,
                blob: rec.sha256.clone(),
                bytes: rec.bytes,
            }],
        })
        .send()
        .unwrap()
        .json()
        .unwrap();
    let partial = &status.items[0];
    assert_eq!(
        partial.state,
        MediaState::Partial,
        "B sees A's partial upload"
    );
    assert!(partial.offset >= rec.bytes / 3 && partial.offset < rec.bytes);
    let via_b = SyncClient::new(&url[1], &phones[1].token).unwrap();
    let r = via_b
        .sync_media(
            &phones[1].store,
            &media,
            &options,
            &NoProgress,
            &CancelToken::new(),
        )
        .unwrap();
    assert!(r.failed.is_empty(), "{:?}", r.failed);
    assert_eq!((r.uploaded, r.resumed), (1, 1), "{r:?}");
    assert_eq!(
        r.bytes_sent,
        rec.bytes - partial.offset,
        "resumed, not restarted"
    );
    acked.note(&phones[1]);
    let original = std::fs::read(&photo).unwrap();
    for u in &url {
        sup.sync_via(u);
        let resp = reqwest::blocking::Client::new()
            .get(format!("{u}/v1/media/{}?rendition=original", rec.sha256))
            .bearer_auth(&sup.token)
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{u}");
        assert_eq!(resp.bytes().unwrap().to_vec(), original, "{u}");
    }

    // 4. A supervisor approves through B while the inspector amends and syncs through A.
    let reviewed = own[2][0].clone();
    phones[2]
        .store
        .set_status(&reviewed, InspectionStatus::Submitted, &ctx(2), None)
        .unwrap();
    sync_acked(&phones[2], &url[0], &acked);
    phones[2]
        .store
        .record_answer(
            &reviewed,
            &note_answer(&items[3], "复核后补充".into()),
            &EditContext::amending(&inspectors[2], "复核后补充说明"),
        )
        .unwrap();
    let start = Barrier::new(2);
    let review = |decision: &str, comment: &str| {
        let (code, body) = http_json(
            "POST",
            &format!("{}/v1/inspections/{reviewed}/review", url[1]),
            &sup.token,
            Some(serde_json::json!({"decision": decision, "comment": comment})),
        );
        assert_eq!(code, 200, "{body}");
    };
    // The race has two outcomes under the document rules (docs/inspection-document.md,
    // "Rules"): the amendment arrives first and the approval lands on top of it, or the approval
    // arrives first and the amendment is refused (rule `amendment`) and kept on the phone until
    // a supervisor returns the inspection; then it goes up, the inspector submits again and the
    // supervisor approves.
    std::thread::scope(|s| {
        let inspector = s.spawn(|| {
            start.wait();
            phones[2].sync_via_allowing_refusals(&url[0])
        });
        start.wait();
        review("approve", "两实例复核");
        let report = inspector.join().unwrap();
        if let Some(refused) = report.rejected.first() {
            assert_eq!(report.rejected.len(), 1, "{:?}", report.rejected);
            assert_eq!(refused.id, reviewed);
            assert!(
                refused.reason.starts_with("amendment"),
                "{}",
                refused.reason
            );
            review("return", "先补充说明");
            sync_acked(&phones[2], &url[0], &acked);
            phones[2]
                .store
                .set_status(&reviewed, InspectionStatus::Submitted, &ctx(2), None)
                .unwrap();
            sync_acked(&phones[2], &url[0], &acked);
            review("approve", "两实例复核");
        }
    });
    acked.note(&phones[2]);

    // 5. Everyone syncs twice more, alternating instances; a fresh supervisor device enrolled
    //    on B receives the whole district from scratch.
    for round in 0..2 {
        for (i, d) in phones.iter().enumerate() {
            sync_acked(d, &url[(round + i) % 2], &acked);
        }
        sync_acked(&sup, &url[round % 2], &acked);
    }
    let fresh = inst.enroll(inst.servers.len() - 1, dir, "sup");
    fresh.sync_via(&url[1]);

    // Convergence. The fresh device holds what the server holds.
    let all = ids(&fresh);
    let inspections: BTreeSet<String> = own
        .iter()
        .flatten()
        .cloned()
        .chain([shared.clone()])
        .collect();
    assert!(
        inspections.is_subset(&all),
        "the server holds every inspection"
    );
    // The long-running supervisor's cursor skipped nothing: same documents, same heads.
    assert_eq!(ids(&sup), all, "supervisor feed skipped a document");
    let acked = acked.0.into_inner().unwrap();
    for id in &all {
        let (server_changes, heads) = changes_and_heads(&fresh, id);
        // The union of every device's copy: merged, it has the server's heads.
        let mut union =
            automerge::AutoCommit::load(&fresh.store.document_bytes(id).unwrap()).unwrap();
        for d in phones.iter().chain([&sup]) {
            if let Ok(bytes) = d.store.document_bytes(id) {
                let mut copy = automerge::AutoCommit::load(&bytes).unwrap();
                union.merge(&mut copy).unwrap();
            }
        }
        let mut union_heads: Vec<String> =
            union.get_heads().iter().map(|h| h.to_string()).collect();
        union_heads.sort();
        assert_eq!(union_heads, heads, "{id}: an edit never reached the server");
        assert_eq!(changes_and_heads(&sup, id).1, heads, "{id}: supervisor");
        if let Some(seen) = acked.get(id) {
            let lost: Vec<_> = seen.difference(&server_changes).collect();
            assert!(lost.is_empty(), "{id}: acknowledged changes lost: {lost:?}");
        }
    }
    for d in &phones {
        let held = ids(d);
        assert!(
            inspections.is_subset(&held),
            "{} misses an inspection of its street",
            d.user
        );
        for id in &held {
            assert!(all.contains(id), "{} holds {id} the server lacks", d.user);
            assert_eq!(
                changes_and_heads(d, id).1,
                changes_and_heads(&fresh, id).1,
                "{}: {id} not converged",
                d.user
            );
        }
    }
    let shared_now = fresh.store.inspection(&shared).unwrap();
    assert_eq!(
        fresh.store.conflicts(&shared).unwrap().len(),
        1,
        "the concurrent wave's item is one conflict"
    );
    assert!(!shared_now.answers.is_empty());
    let reviewed_now = fresh.store.inspection(&reviewed).unwrap();
    assert_eq!(reviewed_now.status, InspectionStatus::Approved);
    assert!(
        reviewed_now
            .events
            .iter()
            .any(|e| e.text.as_deref() == Some("复核后补充说明")),
        "the amendment made during the review survived"
    );

    // The projection read through either instance is the same and matches the documents.
    let list = |u: &str| {
        let (code, body) = http_json(
            "GET",
            &format!("{u}/v1/inspections?limit=1000"),
            &fresh.token,
            None,
        );
        assert_eq!(code, 200, "{body}");
        body
    };
    let rows = list(&url[0]);
    assert_eq!(rows, list(&url[1]), "both instances read one projection");
    let rows = rows.as_array().unwrap();
    let listed: BTreeSet<String> = rows
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, inspections, "the projection lists every inspection");
    for row in rows {
        let id = row["id"].as_str().unwrap();
        let doc = fresh.store.inspection(id).unwrap();
        let status = serde_json::to_value(doc.status).unwrap();
        assert_eq!(row["status"], status, "{id}: projected status");
        let total = fresh.store.score(id).unwrap().total;
        let projected = row["total"].as_f64().expect("a projected total");
        assert!(
            (projected - total).abs() < 1e-9,
            "{id}: {projected} vs {total}"
        );
    }
}
