//! The document rules (docs/inspection-document.md and docs/rectification.md, "Rules"): what a
//! device refuses to receive, and what the server's judgement (`check_write`) accepts and
//! refuses, with changes written as a third-party automerge client would write them.

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{AutoCommit, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value};
use fenlei_core::CoreError;
use fenlei_core::answer::{AnswerValue, ItemAnswer};
use fenlei_core::docrules::{Rule, Writer, WriterRole, actor_of};
use fenlei_core::inspection::{
    EditContext, InspectionDoc, InspectionKind, InspectionStatus, NewInspection, check_write,
};
use fenlei_core::standard::Standard;

const DEVICE: &str = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b";
const CO_DEVICE: &str = "7a2b3c4d-5e6f-4a70-8b9c-0d1e2f3a4b5c";
const SUP_DEVICE: &str = "8b3c4d5e-6f70-4b81-9cad-1e2f3a4b5c6d";
const T0: i64 = 1_790_000_000_000;

fn standard() -> Standard {
    Standard::from_toml_str(fenlei_core::sample::STANDARD_TOML).unwrap()
}

fn inspector() -> Writer<'static> {
    Writer {
        user_id: "li.ming",
        device_id: DEVICE,
        role: WriterRole::Inspector,
    }
}

fn supervisor() -> Writer<'static> {
    Writer {
        user_id: "sup.wang",
        device_id: SUP_DEVICE,
        role: WriterRole::Reviewer,
    }
}

fn new_doc() -> InspectionDoc {
    InspectionDoc::create(
        "insp-1",
        &NewInspection {
            community_id: "c-1".into(),
            standard_id: "hohhot-residential".into(),
            standard_version: "2026.1".into(),
            kind: InspectionKind::DailyPatrol,
            co_inspectors: vec!["zhang.san".into()],
        },
        DEVICE,
        "li.ming",
        T0,
    )
    .unwrap()
}

fn answer(item: &str, value: AnswerValue) -> ItemAnswer {
    ItemAnswer {
        item_code: item.into(),
        value,
        sampled_units: None,
        note: None,
    }
}

/// An inspection in `status`, as the honest API makes it.
fn inspection_in(status: InspectionStatus) -> InspectionDoc {
    let mut doc = new_doc();
    let me = EditContext::by("li.ming");
    doc.set_answer(&answer("A01", AnswerValue::Compliant), &me, T0 + 1)
        .unwrap();
    if status == InspectionStatus::Draft {
        return doc;
    }
    doc.set_status(InspectionStatus::Submitted, &me, None, T0 + 2)
        .unwrap();
    let sup = EditContext::by("sup.wang");
    match status {
        InspectionStatus::Approved => {
            doc.set_device(SUP_DEVICE).unwrap();
            doc.set_status(InspectionStatus::Approved, &sup, None, T0 + 3)
                .unwrap();
        }
        InspectionStatus::Returned => {
            doc.set_device(SUP_DEVICE).unwrap();
            doc.set_status(InspectionStatus::Returned, &sup, Some("补照片"), T0 + 3)
                .unwrap();
        }
        _ => {}
    }
    doc.set_device(DEVICE).unwrap();
    doc
}

/// A raw automerge copy of `doc` on `device`, for writing as another client would.
fn raw(doc: &mut InspectionDoc, device: &str) -> AutoCommit {
    AutoCommit::load(&doc.save())
        .unwrap()
        .with_actor(actor_of(device).unwrap())
}

fn commit(doc: &mut AutoCommit, by: &str) {
    doc.commit_with(
        CommitOptions::default()
            .with_message(format!(r#"{{"by":"{by}","action":"other"}}"#))
            .with_time(T0 + 100),
    );
}

fn obj(doc: &AutoCommit, at: &ObjId, key: &str) -> ObjId {
    match doc.get(at, key).unwrap() {
        Some((Value::Object(_), id)) => id,
        other => panic!("{key} is not an object: {other:?}"),
    }
}

/// Puts a whole answer map the way the layout describes it.
fn put_answer(
    doc: &mut AutoCommit,
    item: &str,
    by: &str,
    device: &str,
    fill: impl Fn(&mut AutoCommit, &ObjId),
) {
    let answers = obj(doc, &ROOT, "answers");
    let a = doc.put_object(&answers, item, ObjType::Map).unwrap();
    fill(doc, &a);
    doc.put(&a, "by", by).unwrap();
    doc.put(&a, "device", device).unwrap();
    doc.put(&a, "at", ScalarValue::Timestamp(T0 + 100)).unwrap();
}

/// Judges what `edit` does to `before` (a stored document), as the server would.
fn judge(
    before: &mut InspectionDoc,
    device: &str,
    writer: &Writer,
    edit: impl FnOnce(&mut AutoCommit),
) -> Result<(), CoreError> {
    let stored = before.read().unwrap();
    let mut doc = raw(before, device);
    let heads = doc.get_heads();
    edit(&mut doc);
    let changes = doc.get_changes(&heads);
    let after = InspectionDoc::load("insp-1", &doc.save(), device)?;
    check_write(Some(&stored), &after, &changes, writer, Some(&standard()))
}

fn rule_of(r: Result<(), CoreError>) -> Rule {
    match r {
        Err(CoreError::RuleBroken { rule, .. }) => rule,
        other => panic!("expected a broken rule, got {other:?}"),
    }
}

#[test]
fn honest_edits_in_every_state_are_accepted() {
    let me = EditContext::by("li.ming");
    // A draft: answers change freely, then it is submitted.
    let mut draft = inspection_in(InspectionStatus::Draft);
    let stored = draft.read().unwrap();
    let heads = draft.heads();
    draft
        .set_answer(&answer("A03", AnswerValue::Observed), &me, T0 + 10)
        .unwrap();
    draft.clear_answer("A01", &me, T0 + 11).unwrap();
    draft
        .set_status(InspectionStatus::Submitted, &me, None, T0 + 12)
        .unwrap();
    let changes = draft.automerge().get_changes(&heads);
    check_write(
        Some(&stored),
        &draft,
        &changes,
        &inspector(),
        Some(&standard()),
    )
    .unwrap();

    // Submitted and returned: amendments with their reason.
    for status in [InspectionStatus::Submitted, InspectionStatus::Returned] {
        let mut doc = inspection_in(status);
        let stored = doc.read().unwrap();
        let heads = doc.heads();
        doc.set_answer(
            &answer("A03", AnswerValue::Observed),
            &EditContext::amending("li.ming", "补录"),
            T0 + 10,
        )
        .unwrap();
        if status == InspectionStatus::Returned {
            doc.set_status(InspectionStatus::Submitted, &me, None, T0 + 11)
                .unwrap();
        }
        let changes = doc.automerge().get_changes(&heads);
        check_write(
            Some(&stored),
            &doc,
            &changes,
            &inspector(),
            Some(&standard()),
        )
        .unwrap();
    }

    // A supervisor approves, and returns an approved one with a comment.
    for (from, to) in [
        (InspectionStatus::Submitted, InspectionStatus::Approved),
        (InspectionStatus::Approved, InspectionStatus::Returned),
    ] {
        let mut doc = inspection_in(from);
        let stored = doc.read().unwrap();
        doc.set_device(SUP_DEVICE).unwrap();
        let heads = doc.heads();
        doc.set_status(to, &EditContext::by("sup.wang"), Some("意见"), T0 + 10)
            .unwrap();
        let changes = doc.automerge().get_changes(&heads);
        check_write(
            Some(&stored),
            &doc,
            &changes,
            &supervisor(),
            Some(&standard()),
        )
        .unwrap();
    }

    // A new inspection, created and submitted offline, pushed at once.
    let mut fresh = inspection_in(InspectionStatus::Submitted);
    let changes = fresh.automerge().get_changes(&[]);
    check_write(None, &fresh, &changes, &inspector(), Some(&standard())).unwrap();
}

#[test]
fn workflow_and_role_rules_refuse_what_the_state_or_role_does_not_allow() {
    use InspectionStatus::*;
    // Answers of an approved inspection changed without an amendment: the score would move
    // under the supervisor's approval.
    let mut approved = inspection_in(Approved);
    let r = judge(&mut approved, DEVICE, &inspector(), |d| {
        put_answer(d, "A01", "li.ming", DEVICE, |d, a| {
            d.put(a, "value", "observed").unwrap();
        });
        commit(d, "li.ming");
    });
    assert_eq!(rule_of(r), Rule::Amendment);
    // With an amendment event it is still refused: a supervisor returns it first.
    let r = judge(&mut approved, DEVICE, &inspector(), |d| {
        put_answer(d, "A01", "li.ming", DEVICE, |d, a| {
            d.put(a, "value", "observed").unwrap();
        });
        push_event(
            d,
            "amendment",
            None,
            "li.ming",
            DEVICE,
            Some("补录"),
            Some("A01"),
        );
        commit(d, "li.ming");
    });
    assert_eq!(rule_of(r), Rule::Amendment);
    // Approved back to draft without an event, and with one.
    let r = judge(&mut approved, DEVICE, &inspector(), |d| {
        d.put(ROOT, "status", "draft").unwrap();
        commit(d, "li.ming");
    });
    assert_eq!(rule_of(r), Rule::Workflow);
    let r = judge(&mut approved, DEVICE, &inspector(), |d| {
        d.put(ROOT, "status", "draft").unwrap();
        push_event(d, "status", Some("draft"), "li.ming", DEVICE, None, None);
        commit(d, "li.ming");
    });
    assert_eq!(rule_of(r), Rule::Workflow);
    // A submitted inspection's answer changed without an amendment event.
    let mut submitted = inspection_in(Submitted);
    let r = judge(&mut submitted, DEVICE, &inspector(), |d| {
        put_answer(d, "A01", "li.ming", DEVICE, |d, a| {
            d.put(a, "value", "observed").unwrap();
        });
        commit(d, "li.ming");
    });
    assert_eq!(rule_of(r), Rule::Amendment);
    // An inspector approving; a supervisor returning without a comment; a supervisor answering.
    let r = judge(&mut submitted, DEVICE, &inspector(), |d| {
        d.put(ROOT, "status", "approved").unwrap();
        push_event(d, "status", Some("approved"), "li.ming", DEVICE, None, None);
        commit(d, "li.ming");
    });
    assert_eq!(rule_of(r), Rule::Role);
    let r = judge(&mut submitted, SUP_DEVICE, &supervisor(), |d| {
        d.put(ROOT, "status", "returned").unwrap();
        push_event(
            d,
            "status",
            Some("returned"),
            "sup.wang",
            SUP_DEVICE,
            None,
            None,
        );
        commit(d, "sup.wang");
    });
    assert_eq!(rule_of(r), Rule::ReviewComment);
    let r = judge(&mut submitted, SUP_DEVICE, &supervisor(), |d| {
        put_answer(d, "A03", "sup.wang", SUP_DEVICE, |d, a| {
            d.put(a, "value", "observed").unwrap();
        });
        commit(d, "sup.wang");
    });
    assert_eq!(rule_of(r), Rule::Role);
    // An answer that does not fit the pinned standard, and one for an item it lacks.
    let mut draft = inspection_in(Draft);
    let r = judge(&mut draft, DEVICE, &inspector(), |d| {
        put_answer(d, "A01", "li.ming", DEVICE, |d, a| {
            d.put(a, "value", "rate").unwrap();
            d.put(a, "percent", 50.0).unwrap();
        });
        commit(d, "li.ming");
    });
    assert_eq!(rule_of(r), Rule::Standard);
    let r = judge(&mut draft, DEVICE, &inspector(), |d| {
        put_answer(d, "Z99", "li.ming", DEVICE, |d, a| {
            d.put(a, "value", "compliant").unwrap();
        });
        commit(d, "li.ming");
    });
    assert_eq!(rule_of(r), Rule::Standard);
    // A new inspection under a standard the server does not have.
    let mut fresh = new_doc();
    let changes = fresh.automerge().get_changes(&[]);
    let stored = fresh.read().unwrap();
    assert_eq!(stored.standard_version, "2026.1");
    assert_eq!(
        rule_of(check_write(None, &fresh, &changes, &inspector(), None)),
        Rule::Standard
    );
    // A new inspection created as another user.
    let other = Writer {
        user_id: "zhang.san",
        ..inspector()
    };
    assert_eq!(
        rule_of(check_write(
            None,
            &fresh,
            &changes,
            &other,
            Some(&standard())
        )),
        Rule::Identity
    );
}

fn push_event(
    d: &mut AutoCommit,
    kind: &str,
    to: Option<&str>,
    by: &str,
    device: &str,
    text: Option<&str>,
    item: Option<&str>,
) {
    let events = obj(d, &ROOT, "events");
    let n = d.length(&events);
    let e = d.insert_object(&events, n, ObjType::Map).unwrap();
    d.put(&e, "kind", kind).unwrap();
    if let Some(to) = to {
        d.put(&e, "to", to).unwrap();
    }
    d.put(&e, "by", by).unwrap();
    d.put(&e, "device", device).unwrap();
    d.put(&e, "at", ScalarValue::Timestamp(T0 + 100)).unwrap();
    if let Some(t) = text {
        d.put(&e, "text", t).unwrap();
    }
    if let Some(i) = item {
        d.put(&e, "item", i).unwrap();
    }
}

/// Changes no writer may make: a device refuses to receive them, the server refuses to store
/// them, whoever the writer.
#[test]
fn history_is_never_rewritten_and_entries_name_their_author() {
    type Edit = fn(&mut AutoCommit);
    let cases: &[(&str, Rule, Edit)] = &[
        ("a status event deleted", Rule::AppendOnly, |d| {
            let events = obj(d, &ROOT, "events");
            d.delete(&events, 0).unwrap();
        }),
        ("a return comment deleted", Rule::EntriesImmutable, |d| {
            let events = obj(d, &ROOT, "events");
            let last = d.length(&events) - 1;
            let e = match d.get(&events, last).unwrap() {
                Some((Value::Object(_), id)) => id,
                _ => unreachable!(),
            };
            d.delete(&e, "text").unwrap();
        }),
        ("an answer edited in place", Rule::EntriesImmutable, |d| {
            let answers = obj(d, &ROOT, "answers");
            let a = obj(d, &answers, "A01");
            d.put(&a, "value", "observed").unwrap();
        }),
        ("a co-inspector removed", Rule::AppendOnly, |d| {
            let set = obj(d, &ROOT, "inspectors");
            d.delete(&set, "zhang.san").unwrap();
        }),
        ("the community changed", Rule::HeaderFixed, |d| {
            d.put(ROOT, "community_id", "c-2").unwrap();
        }),
        ("the standard version changed", Rule::HeaderFixed, |d| {
            d.put(ROOT, "standard_version", "2026.2").unwrap();
        }),
        ("an answer naming another user", Rule::Identity, |d| {
            put_answer(d, "A03", "zhang.san", DEVICE, |d, a| {
                d.put(a, "value", "observed").unwrap();
            });
        }),
        ("an answer naming another device", Rule::Identity, |d| {
            put_answer(d, "A03", "li.ming", CO_DEVICE, |d, a| {
                d.put(a, "value", "observed").unwrap();
            });
        }),
    ];
    for (what, rule, edit) in cases {
        let mut doc = inspection_in(InspectionStatus::Returned);
        // The server's judgement.
        let r = judge(&mut doc, DEVICE, &inspector(), |d| {
            edit(d);
            commit(d, "li.ming");
        });
        assert_eq!(rule_of(r), *rule, "server: {what}");
        // A device receiving the same change.
        let mut hostile = raw(&mut doc, DEVICE);
        let heads = hostile.get_heads();
        edit(&mut hostile);
        commit(&mut hostile, "li.ming");
        let bytes = hostile.save_after(&heads);
        let mut received = doc.clone();
        received.set_device(CO_DEVICE).unwrap();
        let before = received.read().unwrap();
        match received.apply_bytes(&bytes) {
            Err(CoreError::RuleBroken { rule: r, .. }) => assert_eq!(r, *rule, "device: {what}"),
            other => panic!("device: {what}: {other:?}"),
        }
        assert_eq!(received.read().unwrap(), before, "device unchanged: {what}");
    }
}

/// A wrong automerge type is an error naming the field, never a silently dropped answer or fix.
#[test]
fn wrong_value_types_are_refused_naming_the_field() {
    type Edit = fn(&mut AutoCommit);
    let cases: &[(&str, Edit)] = &[
        ("answers[\"A02\"].points", |d| {
            put_answer(d, "A02", "li.ming", DEVICE, |d, a| {
                d.put(a, "value", "deduction").unwrap();
                d.put(a, "points", "2").unwrap();
            });
        }),
        ("answers[\"B01\"].counts", |d| {
            put_answer(d, "B01", "li.ming", DEVICE, |d, a| {
                d.put(a, "value", "occurrences").unwrap();
                d.put(a, "counts", 3_u64).unwrap();
            });
        }),
        ("answers[\"A01\"].value", |d| {
            put_answer(d, "A01", "li.ming", DEVICE, |d, a| {
                d.put(a, "value", "excellent").unwrap();
            });
        }),
        ("gps[0].lat", |d| {
            let gps = obj(d, &ROOT, "gps");
            let f = d.insert_object(&gps, 0, ObjType::Map).unwrap();
            d.put(&f, "lat", "40.8").unwrap();
            d.put(&f, "lon", 111.7).unwrap();
            d.put(&f, "provider", "gps").unwrap();
            d.put(&f, "at", ScalarValue::Timestamp(T0)).unwrap();
            d.put(&f, "mock", false).unwrap();
        }),
        ("evidence[\"A01/x\"].sha256", |d| {
            let ev = obj(d, &ROOT, "evidence");
            let e = d.put_object(&ev, "A01/x", ObjType::Map).unwrap();
            d.put(&e, "sha256", "\"><script>alert(1)</script>").unwrap();
            d.put(&e, "item", "A01").unwrap();
            d.put(&e, "media", "photo").unwrap();
            d.put(&e, "by", "li.ming").unwrap();
            d.put(&e, "at", ScalarValue::Timestamp(T0)).unwrap();
        }),
        ("answers[\"A01\"].note", |d| {
            put_answer(d, "A01", "li.ming", DEVICE, |d, a| {
                d.put(a, "value", "observed").unwrap();
                d.put(a, "note", "满".repeat(4000)).unwrap();
            });
        }),
    ];
    for (field, edit) in cases {
        let mut doc = inspection_in(InspectionStatus::Draft);
        let r = judge(&mut doc, DEVICE, &inspector(), |d| {
            edit(d);
            commit(d, "li.ming");
        });
        match r {
            Err(CoreError::RuleBroken {
                rule: Rule::Schema,
                reason,
                ..
            }) => assert!(reason.contains(field), "{field}: {reason}"),
            other => panic!("{field}: expected a schema break, got {other:?}"),
        }
        // Stored bytes with the wrong type do not load either.
        let mut hostile = raw(&mut doc, DEVICE);
        edit(&mut hostile);
        commit(&mut hostile, "li.ming");
        assert!(matches!(
            InspectionDoc::load("insp-1", &hostile.save(), DEVICE),
            Err(CoreError::RuleBroken {
                rule: Rule::Schema,
                ..
            })
        ));
    }
}

/// Workflow rules the edit methods ask: the same functions the server applies.
#[test]
fn the_edit_methods_follow_the_same_workflow() {
    let mut approved = inspection_in(InspectionStatus::Approved);
    let fix = fenlei_core::inspection::GpsFix {
        location: fenlei_core::geo::LatLon {
            lat: 40.8,
            lon: 111.7,
        },
        accuracy_m: None,
        altitude_m: None,
        provider: "gps".into(),
        at_ms: T0,
        is_mock: false,
    };
    assert!(matches!(
        approved.add_gps_fix(&fix, "li.ming"),
        Err(CoreError::InvalidTransition { .. })
    ));
    let mut submitted = inspection_in(InspectionStatus::Submitted);
    let sha = "a".repeat(64);
    submitted
        .add_evidence(&fenlei_core::inspection::EvidenceRef {
            sha256: sha.clone(),
            item_code: "A01".into(),
            media: fenlei_core::inspection::MediaKind::Photo,
            added_by: "li.ming".into(),
            at_ms: T0,
            thumb: None,
            upload: None,
            device_id: String::new(),
        })
        .unwrap();
    assert!(matches!(
        submitted.remove_evidence("A01", &sha, "li.ming", T0),
        Err(CoreError::InvalidTransition { .. })
    ));
}
