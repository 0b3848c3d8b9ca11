//! A real server process on loopback and devices built from the core library.

mod common;

use automerge::sync::{State, SyncDoc};
use common::raw::*;
use common::*;
use fenlei_core::answer::{AnswerValue, ItemAnswer};
use fenlei_core::inspection::{
    EditContext, InspectionDoc, InspectionKind, InspectionStatus, NewInspection,
};
use fenlei_core::progress::{CancelToken, NoProgress};
use fenlei_core::protocol::*;
use fenlei_core::store::Store;
use serde_json::Value;

fn new_inspection(store: &Store, community: &str, by: &str, co: &[&str]) -> String {
    store
        .create_inspection(
            &NewInspection {
                community_id: community.into(),
                standard_id: "hohhot-residential".into(),
                standard_version: "2026.1".into(),
                kind: InspectionKind::DailyPatrol,
                co_inspectors: co.iter().map(|s| s.to_string()).collect(),
            },
            by,
        )
        .unwrap()
}

/// An item of the sample standard that takes a discretionary deduction, and one that is plain.
fn items(store: &Store) -> (String, String) {
    let s = store.standard("hohhot-residential", "2026.1").unwrap();
    let range = s
        .items()
        .find(|i| matches!(i.rule, fenlei_core::standard::Rule::Range { .. }) && !i.note_required)
        .or_else(|| {
            s.items()
                .find(|i| matches!(i.rule, fenlei_core::standard::Rule::Range { .. }))
        })
        .unwrap()
        .code
        .clone();
    let plain = s.items().find(|i| i.code != range).unwrap().code.clone();
    (range, plain)
}

fn deduction(item: &str, points: f64) -> ItemAnswer {
    ItemAnswer {
        item_code: item.into(),
        value: AnswerValue::Deduction { points },
        sampled_units: None,
        note: Some("现场发现问题".into()),
    }
}

fn compliant(item: &str) -> ItemAnswer {
    ItemAnswer {
        item_code: item.into(),
        value: AnswerValue::Compliant,
        sampled_units: None,
        note: None,
    }
}

fn heads(store: &Store, id: &str) -> Vec<String> {
    let mut doc = store.load_document(id).unwrap().expect("document held");
    fenlei_core::sync::heads_of(&mut doc)
}

#[test]
fn three_devices_converge_with_conflicts_reviews_and_amendments() {
    let c = city();
    let (range_item, plain_item) = items(&c.a.store);
    let ctx_a = EditContext::by("insp.a");
    let ctx_b = EditContext::by("insp.b");

    // Offline on both phones: A starts an inspection with B as co-inspector, B starts its own.
    let shared = new_inspection(&c.a.store, &c.communities[0], "insp.a", &["insp.b"]);
    c.a.store
        .record_answer(&shared, &compliant(&plain_item), &ctx_a)
        .unwrap();
    let own_b = new_inspection(&c.b.store, &c.communities[1], "insp.b", &[]);
    c.b.store
        .record_answer(&own_b, &compliant(&plain_item), &ctx_b)
        .unwrap();
    c.a.sync();
    c.b.sync();
    assert!(
        c.b.store.load_document(&shared).unwrap().is_some(),
        "B received A's inspection"
    );

    // Both change the same item while apart: a conflict everyone sees.
    c.a.store
        .record_answer(&shared, &deduction(&range_item, 1.0), &ctx_a)
        .unwrap();
    c.b.store
        .record_answer(&shared, &deduction(&range_item, 3.0), &ctx_b)
        .unwrap();
    c.a.sync();
    c.b.sync();
    c.a.sync();
    let conflicts = c.a.store.conflicts(&shared).unwrap();
    assert_eq!(conflicts.len(), 1, "one conflicted item");
    assert_eq!(conflicts[0].candidates.len(), 2);
    assert_eq!(c.b.store.conflicts(&shared).unwrap(), conflicts);

    // A submits; the supervisor returns it while A amends an answer offline.
    c.a.store
        .set_status(&shared, InspectionStatus::Submitted, &ctx_a, None)
        .unwrap();
    c.a.sync();
    c.sup.sync();
    c.sup
        .store
        .set_status(
            &shared,
            InspectionStatus::Returned,
            &EditContext::by("sup"),
            Some("请补充照片"),
        )
        .unwrap();
    c.a.store
        .record_answer(
            &shared,
            &deduction(&range_item, 2.0),
            &EditContext::amending("insp.a", "复核后修正"),
        )
        .unwrap();
    c.sup.sync();
    c.a.sync();
    c.b.sync();
    c.sup.sync();

    for id in [&shared, &own_b] {
        let h = heads(&c.a.store, id);
        assert_eq!(heads(&c.b.store, id), h, "B converged on {id}");
        assert_eq!(heads(&c.sup.store, id), h, "supervisor converged on {id}");
    }
    let seen = c.sup.store.inspection(&shared).unwrap();
    assert_eq!(seen.status, InspectionStatus::Returned);
    assert!(
        seen.events
            .iter()
            .any(|e| e.text.as_deref() == Some("复核后修正"))
    );
    assert!(
        seen.events
            .iter()
            .any(|e| e.text.as_deref() == Some("请补充照片"))
    );
    assert_eq!(
        c.a.store.inspection(&shared).unwrap(),
        c.b.store.inspection(&shared).unwrap()
    );
    assert!(
        c.a.store.conflicts(&shared).unwrap().is_empty(),
        "the amendment resolved the conflict"
    );

    // Up to date: one small round trip, nothing exchanged.
    for d in [&c.a, &c.b, &c.sup] {
        let r = d.sync();
        assert_eq!(r.round_trips, 1, "{} up to date in one round trip", d.user);
        assert_eq!(r.documents_exchanged, 0);
    }

    // The supervisor API shows the inspection with its history.
    let http = reqwest::blocking::Client::new();
    let body: Value = http
        .get(format!("{}/v1/inspections/{shared}", c.server.url()))
        .bearer_auth(&c.sup.token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(body["inspection"]["status"], "returned");
    assert!(body["history"].as_array().unwrap().len() >= 6);
    let list: Value = http
        .get(format!(
            "{}/v1/inspections?inspector=insp.b",
            c.server.url()
        ))
        .bearer_auth(&c.sup.token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2, "B inspects both");
}

#[test]
fn unauthorized_devices_and_bad_input_are_refused_and_the_server_survives() {
    let c = city();
    let url = c.server.url();
    let http = reqwest::blocking::Client::new();
    let id = new_inspection(&c.a.store, &c.communities[0], "insp.a", &[]);
    c.a.sync();

    // No token and a wrong token: every endpoint says 401.
    let gets = [
        "/v1/me".to_string(),
        "/v1/inspections".into(),
        format!("/v1/inspections/{id}"),
        format!("/v1/communities/{}/scores", c.communities[0]),
        "/v1/rankings?by=street&period=month".into(),
    ];
    for token in [None, Some("not-a-token")] {
        for path in &gets {
            let mut req = http.get(format!("{url}{path}"));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            assert_eq!(req.send().unwrap().status().as_u16(), 401, "GET {path}");
        }
        let (status, body) = post_sync(&url, token, sync_body(vec![], false));
        assert_eq!(status, 401);
        assert_eq!(body["error"], "unauthorized");
    }
    // Enrollment: an unknown code, and a code used twice.
    let enroll = |code: &str| {
        http.post(format!("{url}/v1/enroll"))
            .json(&serde_json::json!({"code": code, "device_id": "7f0e8c1a-7c1d-4a7e-9d61-5c7f0a3b2e11"}))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(enroll("guessed"), 401);
    let code = c.server.enroll_code("insp.b");
    assert_eq!(enroll(&code), 200);
    assert_eq!(enroll(&code), 401, "a code works once");

    // An inspector of another street cannot read A's inspection, nor use the supervisor API.
    c.server
        .admin(&["add-user", "--id", "insp.c", "--role", "inspector"]);
    c.server
        .admin(&["assign", "--user", "insp.c", "--street", &other_street()]);
    let dir = tempfile::tempdir().unwrap();
    let intruder = Device::enroll(&c.server, dir.path(), "insp.c");
    let r = intruder.sync();
    assert!(
        intruder.store.load_document(&id).unwrap().is_none(),
        "not listed in its feed"
    );
    assert_eq!(r.documents_received, 0);
    let mut copy = c.a.store.load_document(&id).unwrap().unwrap();
    let msg = copy
        .automerge()
        .sync()
        .generate_sync_message(&mut State::new())
        .unwrap();
    let (status, body) = post_sync(
        &url,
        Some(&intruder.token),
        sync_body(vec![(id.clone(), msg.encode())], false),
    );
    assert_eq!(status, 403);
    assert_eq!(body["doc"], id.as_str());
    for path in &gets[1..] {
        let s = http
            .get(format!("{url}{path}"))
            .bearer_auth(&intruder.token)
            .send()
            .unwrap();
        assert_eq!(s.status().as_u16(), 403, "inspector GET {path}");
    }

    // Changes made under another device's actor are refused, even with a valid token.
    let bytes = c.a.store.document_bytes(&id).unwrap();
    let mut forged = InspectionDoc::load(&id, &bytes, c.b.store.device_id()).unwrap();
    let (_, plain) = items(&c.a.store);
    forged
        .set_answer(&compliant(&plain), &EditContext::by("insp.a"), 1)
        .unwrap();
    let status = push_by_hand(&url, &c.a.token, &id, forged.automerge()).status;
    assert_eq!(status, 403, "foreign actor");

    // A supervisor may only review: an answer from the supervisor's device is refused.
    c.sup.sync();
    let bytes = c.sup.store.document_bytes(&id).unwrap();
    let mut sup_doc = InspectionDoc::load(&id, &bytes, c.sup.store.device_id()).unwrap();
    sup_doc
        .set_answer(&compliant(&plain), &EditContext::by("sup"), 1)
        .unwrap();
    let status = push_by_hand(&url, &c.sup.token, &id, sup_doc.automerge()).status;
    assert_eq!(status, 403, "supervisor edits an answer");
    // An inspector may not approve.
    let bytes = c.a.store.document_bytes(&id).unwrap();
    let mut self_approved = InspectionDoc::load(&id, &bytes, c.a.store.device_id()).unwrap();
    let ctx = EditContext::by("insp.a");
    self_approved
        .set_status(InspectionStatus::Submitted, &ctx, None, 2)
        .unwrap();
    self_approved
        .set_status(InspectionStatus::Approved, &ctx, None, 3)
        .unwrap();
    let status = push_by_hand(&url, &c.a.token, &id, self_approved.automerge()).status;
    assert_eq!(status, 403, "inspector approves");

    // Malformed bodies and messages: 4xx with a reason.
    let garbage: Vec<(Vec<u8>, u16)> = vec![
        (b"{not json".to_vec(), 400),
        (br#"{"protocol": 99}"#.to_vec(), 400),
        (
            br#"{"protocol": 1, "docs": [{"id": "x", "message": "***"}]}"#.to_vec(),
            400,
        ),
        (
            sync_body(vec![(id.clone(), vec![0x42, 0xff, 0xff, 0x01])], false),
            422,
        ),
        (sync_body(vec![(id.clone(), vec![7; 64])], false), 422),
        (br#"{"protocol": 1, "cursor": "nonsense"}"#.to_vec(), 400),
    ];
    for (body, expected) in garbage {
        let (status, reply) = post_sync(&url, Some(&c.a.token), body);
        assert_eq!(status, expected, "{reply}");
        assert!(!reply["reason"].as_str().unwrap_or("").is_empty());
    }
    let (status, _) = post_sync(&url, Some(&c.a.token), vec![b' '; MAX_REQUEST_BYTES + 1]);
    assert_eq!(status, 413);

    // Nothing of it reached the stored document: everyone still converges.
    c.a.sync();
    c.sup.sync();
    assert_eq!(heads(&c.a.store, &id), heads(&c.sup.store, &id));
    let i = c.sup.store.inspection(&id).unwrap();
    assert_eq!(i.status, InspectionStatus::Draft);
    assert!(i.answers.is_empty());
    let me = http
        .get(format!("{url}/v1/me"))
        .bearer_auth(&c.a.token)
        .send()
        .unwrap();
    assert_eq!(me.status().as_u16(), 200, "the server is alive");
}

#[test]
fn replays_cut_requests_and_a_killed_server_leave_everything_consistent() {
    let mut c = city();
    let url = c.server.url();
    let id = new_inspection(&c.a.store, &c.communities[0], "insp.a", &[]);
    let (_, plain) = items(&c.a.store);
    c.a.store
        .record_answer(&id, &compliant(&plain), &EditContext::by("insp.a"))
        .unwrap();

    // Push by hand, keeping the request bodies; replay each one twice, whole and cut short.
    let bytes = c.a.store.document_bytes(&id).unwrap();
    let mut doc = InspectionDoc::load(&id, &bytes, c.a.store.device_id()).unwrap();
    let pushed = push_by_hand(&url, &c.a.token, &id, doc.automerge());
    let (status, bodies) = (pushed.status, pushed.sent);
    assert_eq!(status, 200);
    c.sup.sync();
    let before = heads(&c.sup.store, &id);
    let seq = |store: &Store| store.sync_record(&id).unwrap().map(|r| r.server_seq);
    let seq_before = seq(&c.sup.store);
    for body in &bodies {
        for _ in 0..2 {
            assert_eq!(
                post_sync(&url, Some(&c.a.token), body.clone()).0,
                200,
                "a replay is fine"
            );
        }
        for cut in [1, body.len() / 3, body.len() / 2, body.len() - 1] {
            let (status, _) = post_sync(&url, Some(&c.a.token), body[..cut].to_vec());
            assert_eq!(status, 400, "a request cut at byte {cut}");
        }
    }
    let r = c.sup.sync();
    assert_eq!(r.documents_received, 0, "replays changed nothing");
    assert_eq!(heads(&c.sup.store, &id), before);
    assert_eq!(seq(&c.sup.store), seq_before);

    // Many offline inspections; the server dies in the middle of their sync and comes back.
    for n in 0..40 {
        let i = new_inspection(
            &c.a.store,
            &c.communities[n % c.communities.len()],
            "insp.a",
            &[],
        );
        c.a.store
            .record_answer(&i, &compliant(&plain), &EditContext::by("insp.a"))
            .unwrap();
    }
    let store = &c.a.store;
    let client = c.a.client_with(fenlei_core::sync::SyncOptions {
        batch_docs: 5,
        max_retries: 0,
        ..Default::default()
    });
    let outcome = std::thread::scope(|s| {
        let t = s.spawn(|| client.sync(store, &NoProgress, &CancelToken::new()));
        std::thread::sleep(std::time::Duration::from_millis(150));
        c.server.kill();
        t.join().unwrap()
    });
    // Either outcome is fine (the kill may land before, during or after): what matters is after.
    let _ = outcome;
    c.server.restart();
    c.a.sync();
    assert!(
        c.a.store.documents_to_push().unwrap().is_empty(),
        "everything pushed"
    );
    c.sup.sync();
    let mut ids = c.a.store.document_ids().unwrap();
    ids.sort();
    let mut sup_ids = c.sup.store.document_ids().unwrap();
    sup_ids.sort();
    assert_eq!(ids, sup_ids, "the supervisor has every inspection, once");
    for i in &ids {
        assert_eq!(heads(&c.a.store, i), heads(&c.sup.store, i));
    }
    // A cancelled sync is an error and leaves a consistent store too.
    let cancel = CancelToken::new();
    cancel.cancel();
    let err =
        c.a.client()
            .sync(&c.a.store, &NoProgress, &cancel)
            .unwrap_err();
    assert!(matches!(err, fenlei_core::CoreError::Cancelled));
    assert_eq!(c.a.sync().round_trips, 1);
}
