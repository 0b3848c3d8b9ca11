//! A hostile client against a real server process: sync messages built to crash or exhaust the
//! server, and automerge changes written by hand (as a third-party automerge client can) that
//! break the document rules (docs/inspection-document.md and docs/rectification.md, "Rules").
//! Every attack is refused with its typed error, the stored document stays exactly as it was,
//! and the server keeps serving. The table of attacks is in docs/reliability.md ("Hostile
//! client"); the random version is tests/tests/hostile_property.rs.

mod common;

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{AutoCommit, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value};
use common::raw::*;
use common::*;
use fenlei_core::answer::{AnswerValue, ItemAnswer};
use fenlei_core::docrules::actor_of;
use fenlei_core::inspection::{EditContext, InspectionKind, InspectionStatus, NewInspection};
use fenlei_core::rectification::{ClosureEvidence, NewRectification, RectificationStatus};
use serde_json::{Value as Json, json};

fn get(url: &str, token: &str) -> (u16, Json) {
    let resp = reqwest::blocking::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(Json::Null))
}

fn post(url: &str, token: &str, body: Json) -> (u16, Json) {
    let resp = reqwest::blocking::Client::new()
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(Json::Null))
}

fn healthy(c: &City) -> bool {
    reqwest::blocking::get(format!("{}/healthz", c.server.url()))
        .is_ok_and(|r| r.status().is_success())
}

impl City {
    /// An inspection of insp.a with insp.b as co-inspector, in `status`, on the server.
    fn inspection_in(&self, status: InspectionStatus) -> String {
        let a = &self.a;
        let id = a
            .store
            .create_inspection(
                &NewInspection {
                    community_id: self.communities[0].clone(),
                    standard_id: "hohhot-residential".into(),
                    standard_version: "2026.1".into(),
                    kind: InspectionKind::DailyPatrol,
                    co_inspectors: vec!["insp.b".into()],
                },
                &a.user,
            )
            .unwrap();
        let me = EditContext::by(&a.user);
        for item in compliant_items(&a.store).iter().take(3) {
            a.store
                .record_answer(
                    &id,
                    &ItemAnswer {
                        item_code: item.clone(),
                        value: AnswerValue::Compliant,
                        sampled_units: None,
                        note: None,
                    },
                    &me,
                )
                .unwrap();
        }
        if status != InspectionStatus::Draft {
            a.store
                .set_status(&id, InspectionStatus::Submitted, &me, None)
                .unwrap();
        }
        a.sync();
        let review = |decision: &str| {
            let (s, body) = post(
                &format!("{}/v1/inspections/{id}/review", self.server.url()),
                &self.sup.token,
                json!({"decision": decision, "comment": "请补充照片"}),
            );
            assert_eq!(s, 200, "{body}");
        };
        match status {
            InspectionStatus::Approved => review("approve"),
            InspectionStatus::Returned => review("return"),
            _ => {}
        }
        id
    }

    /// What supervisors see of an inspection on the server: the document and its score.
    fn server_view(&self, id: &str) -> Json {
        let (s, body) = get(
            &format!("{}/v1/inspections/{id}", self.server.url()),
            &self.sup.token,
        );
        assert_eq!(s, 200, "{body}");
        json!({"inspection": body["inspection"], "score": body["score"], "history": body["history"]})
    }

    /// A raw automerge copy of the server's document on `device`'s actor.
    fn raw_copy(&self, device: &Device, id: &str) -> AutoCommit {
        device.sync();
        device
            .store
            .load_automerge(id)
            .unwrap()
            .expect("the device holds the document")
            .with_actor(actor_of(device.store.device_id()).unwrap())
    }

    /// Writes `edit` on `device`'s raw copy as one change by `user`, pushes it by hand and
    /// checks the server refused it with `status` and `rule`, storing nothing.
    fn refused(
        &self,
        what: &str,
        device: &Device,
        user: &str,
        id: &str,
        (status, rule): (u16, &str),
        edit: impl FnOnce(&mut AutoCommit),
    ) -> Json {
        let before = self.server_view(id);
        let mut doc = self.raw_copy(device, id);
        edit(&mut doc);
        commit(&mut doc, user);
        let pushed = push_by_hand(&self.server.url(), &device.token, id, &mut doc);
        assert_eq!(pushed.status, status, "{what}: {}", pushed.answer);
        assert_eq!(pushed.answer["rule"], rule, "{what}: {}", pushed.answer);
        assert_eq!(pushed.answer["doc"], id, "{what}");
        assert_eq!(self.server_view(id), before, "{what}: the server changed");
        pushed.answer
    }
}

fn commit(doc: &mut AutoCommit, by: &str) {
    doc.commit_with(
        CommitOptions::default()
            .with_message(format!(r#"{{"by":"{by}","action":"answer"}}"#))
            .with_time(1_800_000_000_000),
    );
}

fn obj(doc: &AutoCommit, at: &ObjId, key: &str) -> ObjId {
    match doc.get(at, key).unwrap() {
        Some((Value::Object(_), id)) => id,
        other => panic!("{key} is not an object: {other:?}"),
    }
}

fn element(doc: &AutoCommit, list: &ObjId, n: usize) -> ObjId {
    match doc.get(list, n).unwrap() {
        Some((Value::Object(_), id)) => id,
        other => panic!("element {n}: {other:?}"),
    }
}

fn put_answer(doc: &mut AutoCommit, item: &str, by: &str, device: &str, value: &str) -> ObjId {
    let answers = obj(doc, &ROOT, "answers");
    let a = doc.put_object(&answers, item, ObjType::Map).unwrap();
    doc.put(&a, "value", value).unwrap();
    doc.put(&a, "by", by).unwrap();
    doc.put(&a, "device", device).unwrap();
    doc.put(&a, "at", ScalarValue::Timestamp(1_800_000_000_000))
        .unwrap();
    a
}

fn push_event(doc: &mut AutoCommit, to: &str, by: &str, device: &str, text: Option<&str>) {
    let events = obj(doc, &ROOT, "events");
    let n = doc.length(&events);
    let e = doc.insert_object(&events, n, ObjType::Map).unwrap();
    doc.put(&e, "kind", "status").unwrap();
    doc.put(&e, "to", to).unwrap();
    doc.put(&e, "by", by).unwrap();
    doc.put(&e, "device", device).unwrap();
    doc.put(&e, "at", ScalarValue::Timestamp(1_800_000_000_000))
        .unwrap();
    if let Some(t) = text {
        doc.put(&e, "text", t).unwrap();
    }
}

/// The bundle chunk (type 3) the long fuzzing run found: automerge 0.12 allocates 4 GiB for it,
/// and an allocation failure aborts the process.
const BUNDLE: [u8; 45] = [
    0x85, 0x6f, 0x4a, 0x83, 0x78, 0xb6, 0x2b, 0x21, 0x03, 0x23, 0x00, 0x01, 0x00, 0x00, 0x02, 0x03,
    0x00, 0x23, 0x13, 0x23, 0x93, 0x93, 0x41, 0x93, 0x93, 0x93, 0x93, 0x93, 0x93, 0x93, 0x93, 0x93,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x4b, 0x93, 0x21, 0x00, 0x00, 0x96,
];

fn leb128(mut n: u64, out: &mut Vec<u8>) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// A sync message with no heads and no need, one `have` with `bloom` (none if empty) and these
/// change chunks.
fn message(bloom: &[u8], changes: &[&[u8]]) -> Vec<u8> {
    let mut out = vec![0x42, 0, 0];
    if bloom.is_empty() {
        out.push(0);
    } else {
        out.extend([1, 0]);
        leb128(bloom.len() as u64, &mut out);
        out.extend(bloom);
    }
    leb128(changes.len() as u64, &mut out);
    for c in changes {
        leb128(c.len() as u64, &mut out);
        out.extend(*c);
    }
    out
}

#[test]
fn sync_messages_built_to_crash_the_server_are_refused_and_it_keeps_serving() {
    let c = city();
    let url = c.server.url();
    let id = c.inspection_in(InspectionStatus::Draft);
    let bundle = message(&[], &[&BUNDLE]);
    assert!(bundle.len() <= 68, "{}", bundle.len());
    let attacks: Vec<(&str, Vec<u8>)> = vec![
        ("a bundle change chunk (4 GiB allocation)", bundle),
        // entries but no bits: automerge divides by zero when it answers.
        ("a bloom filter without bits", message(&[5, 0, 7], &[])),
        // four billion probes: automerge allocates 16 GiB when it answers.
        (
            "a bloom filter with 4e9 probes",
            message(&[1, 10, 0x80, 0xa8, 0xd6, 0xb9, 0x0e, 0xff, 0xff], &[]),
        ),
    ];
    for (what, msg) in attacks {
        for target in [
            id.clone(),
            "01234567-89ab-4cde-8f01-23456789abcd".to_string(),
        ] {
            let (status, body) = post_sync(
                &url,
                Some(&c.a.token),
                sync_body(vec![(target.clone(), msg.clone())], false),
            );
            assert_eq!(status, 422, "{what}: {body}");
            assert_eq!(body["error"], "invalid_document", "{what}");
            assert!(healthy(&c), "{what}: the server died");
        }
    }
    // The server still serves the honest client.
    c.a.sync();
}

#[test]
fn a_deflate_bomb_in_a_sync_message_is_refused_before_it_is_inflated() {
    use std::io::Write;
    let c = city();
    // 1 GiB of zeros deflates to ~1 MB: automerge would inflate all of it (seconds of CPU and
    // a gigabyte of memory per message) before finding it is no change.
    let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..1024 {
        z.write_all(&zeros).unwrap();
    }
    let body = z.finish().unwrap();
    let mut chunk = vec![0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 2];
    leb128(body.len() as u64, &mut chunk);
    chunk.extend(&body);
    let request = sync_body(
        vec![(
            "01234567-89ab-4cde-8f01-000000000000".into(),
            message(&[], &[&chunk]),
        )],
        false,
    );
    assert!(request.len() < 3 << 20, "{}", request.len());
    let (status, answer) = post_sync(&c.server.url(), Some(&c.a.token), request);
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["reason"]
            .as_str()
            .unwrap()
            .contains("inflate to more than"),
        "refused by the request's inflate budget, before automerge inflates it: {answer}"
    );
    assert!(healthy(&c));
}

#[test]
fn a_run_length_bomb_in_a_change_is_refused_before_automerge_applies_it() {
    let c = city();
    let actor = actor_of(c.a.store.device_id()).unwrap();
    // The generator's bytes are a change automerge takes (its checksum is right): with the
    // runs left as they are it applies.
    let real = fenlei_e2e::bombs::run_length_bomb(actor.clone(), 1000, 1000);
    let mut plain = AutoCommit::new();
    plain.load_incremental(&real).unwrap();
    assert_eq!(
        plain.get_changes(&[]).len(),
        1,
        "a valid change to automerge"
    );
    // ~120 bytes asking for 2^32 operations.
    let bomb = fenlei_e2e::bombs::run_length_bomb(actor, 1000, 1 << 32);
    assert!(bomb.len() < 200, "{}", bomb.len());
    let (status, answer) = post_sync(
        &c.server.url(),
        Some(&c.a.token),
        sync_body(
            vec![(
                "01234567-89ab-4cde-8f01-000000000002".into(),
                message(&[], &[&bomb]),
            )],
            false,
        ),
    );
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["reason"]
            .as_str()
            .unwrap()
            .contains("expand to more than"),
        "refused by the request's column budget: {answer}"
    );
    assert!(healthy(&c));
}

#[test]
fn workflow_rules_hold_on_sync_whoever_writes_the_changes() {
    let c = city();
    let a_dev = c.a.store.device_id().to_string();
    let sup_dev = c.sup.store.device_id().to_string();
    let item = compliant_items(&c.a.store)[0].clone();

    // Approved: an answer changed with no amendment (the score moves under the approval).
    let approved = c.inspection_in(InspectionStatus::Approved);
    c.refused(
        "answer changed on an approved inspection",
        &c.a,
        "insp.a",
        &approved,
        (422, "amendment"),
        |d| {
            put_answer(d, &item, "insp.a", &a_dev, "observed");
        },
    );
    c.refused(
        "approved back to draft without an event",
        &c.a,
        "insp.a",
        &approved,
        (422, "workflow"),
        |d| d.put(ROOT, "status", "draft").unwrap(),
    );
    c.refused(
        "an inspector approving a submitted inspection",
        &c.a,
        "insp.a",
        &c.inspection_in(InspectionStatus::Submitted),
        (403, "role"),
        |d| {
            d.put(ROOT, "status", "approved").unwrap();
            push_event(d, "approved", "insp.a", &a_dev, None);
        },
    );

    // Returned: the supervisor's return event, or its comment, deleted.
    let returned = c.inspection_in(InspectionStatus::Returned);
    c.refused(
        "the supervisor's return event deleted",
        &c.a,
        "insp.a",
        &returned,
        (403, "append_only"),
        |d| {
            let events = obj(d, &ROOT, "events");
            let last = d.length(&events) - 1;
            d.delete(&events, last).unwrap();
        },
    );
    c.refused(
        "the return comment deleted",
        &c.a,
        "insp.a",
        &returned,
        (403, "entries_immutable"),
        |d| {
            let events = obj(d, &ROOT, "events");
            let last = element(d, &events, d.length(&events) - 1);
            d.delete(&last, "text").unwrap();
        },
    );

    // Submitted: events removed, an answer edited without an amendment, identities spoofed,
    // a co-inspector removed, the header changed.
    let submitted = c.inspection_in(InspectionStatus::Submitted);
    c.refused(
        "the submit event removed",
        &c.a,
        "insp.a",
        &submitted,
        (403, "append_only"),
        |d| {
            let events = obj(d, &ROOT, "events");
            d.delete(&events, 0).unwrap();
        },
    );
    c.refused(
        "answer edited after submission without an amendment",
        &c.a,
        "insp.a",
        &submitted,
        (422, "amendment"),
        |d| {
            put_answer(d, &item, "insp.a", &a_dev, "observed");
        },
    );
    c.refused(
        "an answer naming another user",
        &c.a,
        "insp.a",
        &submitted,
        (403, "identity"),
        |d| {
            put_answer(d, &item, "insp.b", &a_dev, "observed");
        },
    );
    c.refused(
        "an answer naming another device",
        &c.a,
        "insp.a",
        &submitted,
        (403, "identity"),
        |d| {
            put_answer(d, &item, "insp.a", c.b.store.device_id(), "observed");
        },
    );
    c.refused(
        "an existing answer edited in place",
        &c.a,
        "insp.a",
        &submitted,
        (403, "entries_immutable"),
        |d| {
            let answers = obj(d, &ROOT, "answers");
            let entry = obj(d, &answers, &item);
            d.put(&entry, "value", "observed").unwrap();
        },
    );
    c.refused(
        "a co-inspector removed",
        &c.a,
        "insp.a",
        &submitted,
        (403, "append_only"),
        |d| {
            let set = obj(d, &ROOT, "inspectors");
            d.delete(&set, "insp.b").unwrap();
        },
    );
    c.refused(
        "the standard version changed",
        &c.a,
        "insp.a",
        &submitted,
        (403, "header_fixed"),
        |d| d.put(ROOT, "standard_version", "2026.2").unwrap(),
    );
    c.refused(
        "a supervisor returning without a comment",
        &c.sup,
        "sup",
        &submitted,
        (422, "review_comment"),
        |d| {
            d.put(ROOT, "status", "returned").unwrap();
            push_event(d, "returned", "sup", &sup_dev, None);
        },
    );

    // The honest client still syncs every one of them.
    c.a.sync();
    c.sup.sync();
}

#[test]
fn an_unknown_standard_version_is_refused() {
    let c = city();
    let dev = c.a.store.device_id().to_string();
    let id = "01234567-89ab-4cde-8f01-000000000001";
    let mut doc = fenlei_core::inspection::InspectionDoc::create(
        id,
        &NewInspection {
            community_id: c.communities[0].clone(),
            standard_id: "hohhot-residential".into(),
            standard_version: "9999.1".into(),
            kind: InspectionKind::DailyPatrol,
            co_inspectors: vec![],
        },
        &dev,
        "insp.a",
        1_800_000_000_000,
    )
    .unwrap();
    let pushed = push_by_hand(&c.server.url(), &c.a.token, id, doc.automerge());
    assert_eq!(pushed.status, 422, "{}", pushed.answer);
    assert_eq!(pushed.answer["rule"], "standard");
    let (status, _) = get(
        &format!("{}/v1/inspections/{id}", c.server.url()),
        &c.sup.token,
    );
    assert_eq!(status, 404, "nothing stored");
}

#[test]
fn wrong_value_types_are_typed_errors_naming_the_field() {
    let c = city();
    let dev = c.a.store.device_id().to_string();
    let draft = c.inspection_in(InspectionStatus::Draft);
    let answer = c.refused(
        "points as a str",
        &c.a,
        "insp.a",
        &draft,
        (422, "schema"),
        |d| {
            let a = put_answer(d, "A02", "insp.a", &dev, "deduction");
            d.put(&a, "points", "3").unwrap();
        },
    );
    assert!(
        answer["reason"]
            .as_str()
            .unwrap()
            .contains("answers[\"A02\"].points must be a finite f64, found str"),
        "{answer}"
    );
    let answer = c.refused(
        "a GPS fix with lat as a str",
        &c.a,
        "insp.a",
        &draft,
        (422, "schema"),
        |d| {
            let gps = obj(d, &ROOT, "gps");
            let f = d.insert_object(&gps, 0, ObjType::Map).unwrap();
            d.put(&f, "lat", "40.84").unwrap();
            d.put(&f, "lon", 111.75).unwrap();
            d.put(&f, "provider", "gps").unwrap();
            d.put(&f, "at", ScalarValue::Timestamp(1_800_000_000_000))
                .unwrap();
            d.put(&f, "mock", false).unwrap();
        },
    );
    assert!(
        answer["reason"].as_str().unwrap().contains("gps[0].lat"),
        "{answer}"
    );
    c.refused(
        "counts as a number",
        &c.a,
        "insp.a",
        &draft,
        (422, "schema"),
        |d| {
            let a = put_answer(d, "B01", "insp.a", &dev, "occurrences");
            d.put(&a, "counts", 3_u64).unwrap();
        },
    );
}

#[test]
fn a_task_is_closed_only_by_a_supervisor_with_its_evidence() {
    let c = city();
    let inspection = c.inspection_in(InspectionStatus::Submitted);
    let a = &c.a;
    let task = a
        .store
        .open_rectification(
            &NewRectification {
                community_id: c.communities[0].clone(),
                inspection_id: inspection.clone(),
                item_code: "C01".into(),
                item_title: "垃圾满溢".into(),
                responsible: "物业".into(),
                deadline_days: 3,
                deduction: Some(4.0),
                required_evidence: vec!["cause".into(), "photo_after".into()],
                finding_evidence: vec![],
                source: "inspector".into(),
            },
            &a.user,
        )
        .unwrap();
    a.sync();
    let a_dev = a.store.device_id().to_string();
    let sup_dev = c.sup.store.device_id().to_string();
    let task_row = |c: &City| {
        let (s, body) = get(
            &format!("{}/v1/rectifications?limit=1000", c.server.url()),
            &c.sup.token,
        );
        assert_eq!(s, 200);
        body["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == task.as_str())
            .cloned()
            .unwrap()
    };
    let close = |d: &mut AutoCommit, by: &str, device: &str| {
        d.put(ROOT, "status", "closed").unwrap();
        d.put(ROOT, "closed_at", ScalarValue::Timestamp(1_800_000_000_000))
            .unwrap();
        let events = obj(d, &ROOT, "events");
        let n = d.length(&events);
        let e = d.insert_object(&events, n, ObjType::Map).unwrap();
        d.put(&e, "to", "closed").unwrap();
        d.put(&e, "by", by).unwrap();
        d.put(&e, "device", device).unwrap();
        d.put(&e, "at", ScalarValue::Timestamp(1_800_000_000_000))
            .unwrap();
    };
    let attempt = |device: &Device, user: &str, edit: &dyn Fn(&mut AutoCommit)| {
        let before = task_row(&c);
        let mut doc = c.raw_copy(device, &task);
        edit(&mut doc);
        commit(&mut doc, user);
        let pushed = push_by_hand(&c.server.url(), &device.token, &task, &mut doc);
        assert_eq!(task_row(&c), before, "the server's task changed");
        pushed
    };
    // Closed straight from open, with no supervisor and no evidence.
    let p = attempt(a, "insp.a", &|d| close(d, "insp.a", &a_dev));
    assert_eq!(
        (p.status, p.answer["rule"].as_str()),
        (422, Some("workflow"))
    );
    // A supervisor's device submitting and closing with the evidence missing.
    let p = attempt(&c.sup, "sup", &|d| {
        d.put(ROOT, "status", "submitted").unwrap();
        let events = obj(d, &ROOT, "events");
        let e = d.insert_object(&events, 0, ObjType::Map).unwrap();
        d.put(&e, "to", "submitted").unwrap();
        d.put(&e, "by", "sup").unwrap();
        d.put(&e, "device", sup_dev.as_str()).unwrap();
        d.put(&e, "at", ScalarValue::Timestamp(1_800_000_000_000))
            .unwrap();
        close(d, "sup", &sup_dev);
    });
    assert_eq!(
        (p.status, p.answer["rule"].as_str()),
        (422, Some("closure_evidence")),
        "{}",
        p.answer
    );
    // With the evidence and submitted, an inspector still cannot close it.
    for (kind, text, sha) in [
        ("cause", Some("清运不及时"), None),
        ("photo_after", None, Some("5f".repeat(32))),
    ] {
        a.store
            .add_closure_evidence(
                &task,
                &ClosureEvidence {
                    kind: kind.into(),
                    text: text.map(str::to_string),
                    sha256: sha,
                    by: a.user.clone(),
                    at_ms: a.store.now_ms(),
                    ..Default::default()
                },
            )
            .unwrap();
    }
    a.store
        .set_rectification_status(&task, RectificationStatus::Submitted, &a.user, None)
        .unwrap();
    a.sync();
    let p = attempt(a, "insp.a", &|d| close(d, "insp.a", &a_dev));
    assert_eq!((p.status, p.answer["rule"].as_str()), (403, Some("role")));
    // A closure entry rewritten in place is refused too.
    let p = attempt(a, "insp.a", &|d| {
        let closure = obj(d, &ROOT, "closure");
        let key = d.keys(&closure).next().unwrap();
        let entry = obj(d, &closure, &key);
        d.put(&entry, "text", "改写").unwrap();
    });
    assert_eq!(
        (p.status, p.answer["rule"].as_str()),
        (403, Some("entries_immutable"))
    );
    // The supervisor's honest approval still goes through.
    let (s, body) = post(
        &format!("{}/v1/rectifications/{task}/approve", c.server.url()),
        &c.sup.token,
        json!({"comment": "同意销号"}),
    );
    assert_eq!(s, 200, "{body}");
    a.sync();
}

#[test]
fn a_signed_statement_attests_the_documents_real_status() {
    let c = city();
    let id = c.inspection_in(InspectionStatus::Submitted);
    let pending = c.a.store.sign_pending_submissions().unwrap();
    let p = pending.iter().find(|p| p.inspection_id == id).unwrap();
    let key = c.a.store.device_signing_key().unwrap();
    let receipt = |statement: &[u8], signature: &str| {
        use base64::Engine;
        post(
            &format!("{}/v1/receipts", c.server.url()),
            &c.a.token,
            json!({
                "statement": base64::engine::general_purpose::STANDARD.encode(statement),
                "signature": signature,
            }),
        )
    };
    let text = String::from_utf8(p.bytes.clone()).unwrap();
    assert!(text.contains("\nstatus=submitted\n"));
    for status in ["hello", " submitted", "approved", "draft"] {
        let forged = text.replace("\nstatus=submitted\n", &format!("\nstatus={status}\n"));
        let signature = fenlei_core::tamper::sign_hex(&key, forged.as_bytes());
        let (s, body) = receipt(forged.as_bytes(), &signature);
        assert_eq!(s, 400, "status {status:?} chained: {body}");
    }
    // Nothing was chained; the genuine statement is.
    let (s, body) = receipt(&p.bytes, &p.signature);
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["link"]["index"], 0, "{body}");
}
