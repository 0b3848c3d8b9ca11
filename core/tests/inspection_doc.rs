//! The inspection document on its own: edits, merges of offline edits from two devices,
//! conflict reporting and resolution, history, the review workflow, untrusted bytes.

use fenlei_core::CoreError;
use fenlei_core::answer::{AnswerValue, ItemAnswer, OccurrenceCount};
use fenlei_core::geo::LatLon;
use fenlei_core::inspection::{
    EditContext, EvidenceRef, GpsFix, InspectionDoc, InspectionKind, InspectionStatus, MediaKind,
    NewInspection, WorkflowEventKind,
};

const PHONE_A: &str = "0192f000-0000-7000-8000-00000000000a";
const PHONE_B: &str = "0192f000-0000-7000-8000-00000000000b";
const DESK: &str = "0192f000-0000-7000-8000-0000000000d0";
const T0: i64 = 1_790_000_000_000;

fn new_inspection() -> NewInspection {
    NewInspection {
        community_id: "HHHT-XC-001".into(),
        standard_id: "hohhot-residential".into(),
        standard_version: "2026.1".into(),
        kind: InspectionKind::DailyPatrol,
        co_inspectors: vec!["wang.fang".into()],
    }
}

fn answer(item: &str, value: AnswerValue) -> ItemAnswer {
    ItemAnswer {
        item_code: item.into(),
        value,
        sampled_units: None,
        note: None,
    }
}

fn overflow(n: u32) -> AnswerValue {
    AnswerValue::Occurrences {
        counts: vec![OccurrenceCount {
            finding: "overflow".into(),
            count: n,
        }],
    }
}

/// A document created on phone A and received by phone B (documents are created once).
fn two_phones() -> (InspectionDoc, InspectionDoc) {
    let mut a = InspectionDoc::create("insp-1", &new_inspection(), PHONE_A, "li.ming", T0).unwrap();
    let b = InspectionDoc::load("insp-1", &a.save(), PHONE_B).unwrap();
    (a, b)
}

#[test]
fn create_and_read_back() {
    let mut doc =
        InspectionDoc::create("insp-1", &new_inspection(), PHONE_A, "li.ming", T0).unwrap();
    doc.set_answer(
        &answer("A01", AnswerValue::Observed),
        &EditContext::by("li.ming"),
        T0 + 1_000,
    )
    .unwrap();
    let mut with_note = answer("C02", AnswerValue::Deduction { points: 2.5 });
    with_note.note = Some("公示牌破损".into());
    with_note.sampled_units = Some(3);
    doc.set_answer(&with_note, &EditContext::by("li.ming"), T0 + 2_000)
        .unwrap();
    let i = doc.read().unwrap();
    assert_eq!(i.community_id, "HHHT-XC-001");
    assert_eq!(i.standard_version, "2026.1");
    assert_eq!(i.kind, InspectionKind::DailyPatrol);
    assert_eq!(i.status, InspectionStatus::Draft);
    assert_eq!(i.created_device_id, PHONE_A);
    assert_eq!(i.started_at_ms, T0);
    let mut inspectors = i.inspectors.clone();
    inspectors.sort();
    assert_eq!(inspectors, vec!["li.ming", "wang.fang"]);
    assert_eq!(i.answers.len(), 2);
    let c02 = i
        .answers
        .iter()
        .find(|a| a.answer.item_code == "C02")
        .unwrap();
    assert_eq!(c02.answer, with_note);
    assert_eq!(c02.by, "li.ming");
    assert_eq!(c02.device_id, PHONE_A);
    assert_eq!(c02.at_ms, T0 + 2_000);

    // Survives a save/load round trip byte for byte in meaning.
    let again = InspectionDoc::load("insp-1", &doc.save(), PHONE_B).unwrap();
    assert_eq!(again.read().unwrap(), i);
}

#[test]
fn offline_edits_on_two_phones_merge_without_loss() {
    let (mut a, mut b) = two_phones();
    // Apart: A scores section A, B scores section B, both add photos and GPS.
    a.set_answer(
        &answer("A01", AnswerValue::Observed),
        &EditContext::by("li.ming"),
        T0 + 10,
    )
    .unwrap();
    a.add_evidence(&photo("A01", 'a')).unwrap();
    b.set_answer(
        &answer("B02", overflow(3)),
        &EditContext::by("wang.fang"),
        T0 + 20,
    )
    .unwrap();
    b.add_evidence(&photo("B02", 'b')).unwrap();
    b.add_gps_fix(&fix(40.84, 111.75, T0 + 20), "wang.fang")
        .unwrap();
    a.add_gps_fix(&fix(40.8401, 111.7501, T0 + 15), "li.ming")
        .unwrap();

    let mut a2 = a.clone();
    a.merge(&mut b).unwrap();
    b.merge(&mut a2).unwrap();
    let (ia, ib) = (a.read().unwrap(), b.read().unwrap());
    assert_eq!(ia.answers.len(), 2);
    assert_eq!(ia.evidence.len(), 2);
    assert_eq!(ia.gps_fixes.len(), 2);
    assert!(ia.conflicts.is_empty(), "different items never conflict");
    // Both sides converge to the same state.
    assert_eq!(sorted_answers(&ia), sorted_answers(&ib));
    assert_eq!(a.heads().len(), 2);
    let mut ha = a.heads();
    let mut hb = b.heads();
    ha.sort();
    hb.sort();
    assert_eq!(ha, hb);
}

#[test]
fn same_item_set_differently_is_reported_as_a_conflict_and_resolved_by_an_edit() {
    let (mut a, mut b) = two_phones();
    let mut ctx_a = EditContext::by("li.ming");
    ctx_a.location = Some(LatLon {
        lat: 40.84,
        lon: 111.75,
    });
    a.set_answer(&answer("B02", overflow(3)), &ctx_a, T0 + 100)
        .unwrap();
    b.set_answer(
        &answer("B02", overflow(1)),
        &EditContext::by("wang.fang"),
        T0 + 200,
    )
    .unwrap();
    a.merge(&mut b).unwrap();

    let conflicts = a.conflicts();
    assert_eq!(conflicts.len(), 1);
    let c = &conflicts[0];
    assert_eq!(c.item_code, "B02");
    assert_eq!(c.candidates.len(), 2);
    let mine = c.candidates.iter().find(|v| v.by == "li.ming").unwrap();
    let theirs = c.candidates.iter().find(|v| v.by == "wang.fang").unwrap();
    assert_eq!(mine.answer.value, overflow(3));
    assert_eq!(mine.device_id, PHONE_A);
    assert_eq!(mine.at_ms, T0 + 100);
    assert_eq!(
        mine.location,
        Some(LatLon {
            lat: 40.84,
            lon: 111.75
        })
    );
    assert_eq!(theirs.answer.value, overflow(1));
    assert_eq!(theirs.device_id, PHONE_B);
    assert_eq!(theirs.at_ms, T0 + 200);
    assert!(c.candidates.contains(&c.current));

    // The same conflict shows on the other phone.
    let mut a_copy = a.clone();
    b.merge(&mut a_copy).unwrap();
    assert_eq!(b.conflicts().len(), 1);

    // Resolving is an ordinary recorded edit, and it travels.
    a.set_answer(
        &answer("B02", overflow(2)),
        &EditContext::by("li.ming"),
        T0 + 300,
    )
    .unwrap();
    assert!(a.conflicts().is_empty());
    b.merge(&mut a).unwrap();
    assert!(b.conflicts().is_empty());
    let b02 = b
        .read()
        .unwrap()
        .answers
        .into_iter()
        .find(|x| x.answer.item_code == "B02")
        .unwrap();
    assert_eq!(b02.answer.value, overflow(2));
    assert!(
        b.history()
            .iter()
            .filter(|h| h.item_code.as_deref() == Some("B02"))
            .count()
            >= 3
    );
}

#[test]
fn identical_concurrent_answers_are_not_a_conflict() {
    let (mut a, mut b) = two_phones();
    a.set_answer(
        &answer("A01", AnswerValue::Compliant),
        &EditContext::by("li.ming"),
        T0 + 1,
    )
    .unwrap();
    b.set_answer(
        &answer("A01", AnswerValue::Compliant),
        &EditContext::by("wang.fang"),
        T0 + 2,
    )
    .unwrap();
    a.merge(&mut b).unwrap();
    assert!(a.conflicts().is_empty());
}

#[test]
fn history_says_who_changed_what_when_and_from_which_device() {
    let (mut a, mut b) = two_phones();
    a.set_answer(
        &answer("A01", AnswerValue::Observed),
        &EditContext::by("li.ming"),
        T0 + 10,
    )
    .unwrap();
    b.set_answer(
        &answer("A02", AnswerValue::Compliant),
        &EditContext::by("wang.fang"),
        T0 + 20,
    )
    .unwrap();
    a.merge(&mut b).unwrap();
    a.set_status(
        InspectionStatus::Submitted,
        &EditContext::by("li.ming"),
        None,
        T0 + 30,
    )
    .unwrap();
    let h = a.history();
    assert_eq!(h.len(), 4);
    assert_eq!(
        (
            h[0].action.as_str(),
            h[0].by.as_str(),
            h[0].device_id.as_str(),
            h[0].at_ms
        ),
        ("create", "li.ming", PHONE_A, T0)
    );
    let a02 = h
        .iter()
        .find(|e| e.item_code.as_deref() == Some("A02"))
        .unwrap();
    assert_eq!(
        (
            a02.action.as_str(),
            a02.by.as_str(),
            a02.device_id.as_str(),
            a02.at_ms
        ),
        ("answer", "wang.fang", PHONE_B, T0 + 20)
    );
    assert_eq!(h[3].action, "status");
    assert!(h.iter().all(|e| e.change_hash.len() == 64));
}

#[test]
fn workflow_and_amendments() {
    let mut doc =
        InspectionDoc::create("insp-1", &new_inspection(), PHONE_A, "li.ming", T0).unwrap();
    let me = EditContext::by("li.ming");
    // Approving a draft is not a thing.
    assert!(matches!(
        doc.set_status(InspectionStatus::Approved, &me, None, T0 + 1),
        Err(CoreError::InvalidTransition { .. })
    ));
    doc.set_status(InspectionStatus::Submitted, &me, None, T0 + 10)
        .unwrap();
    assert_eq!(doc.read().unwrap().ended_at_ms, Some(T0 + 10));
    // After submission an edit needs a reason...
    let err = doc
        .set_answer(&answer("A01", AnswerValue::Observed), &me, T0 + 20)
        .unwrap_err();
    assert!(matches!(err, CoreError::AmendmentReasonRequired(_)));
    assert!(
        doc.set_answer(
            &answer("A01", AnswerValue::Observed),
            &EditContext::amending("li.ming", "  "),
            T0 + 20
        )
        .is_err()
    );
    // ...and with one it is recorded as an amendment.
    doc.set_answer(
        &answer("A01", AnswerValue::Observed),
        &EditContext::amending("li.ming", "漏记一处"),
        T0 + 20,
    )
    .unwrap();
    // The supervisor returns it (a comment is required), the inspector amends and resubmits.
    let sup = EditContext::by("zhao.sup");
    assert!(
        doc.set_status(InspectionStatus::Returned, &sup, None, T0 + 30)
            .is_err()
    );
    doc.set_status(
        InspectionStatus::Returned,
        &sup,
        Some("照片不清晰"),
        T0 + 30,
    )
    .unwrap();
    doc.set_answer(
        &answer("A01", AnswerValue::Compliant),
        &EditContext::amending("li.ming", "复核后无问题"),
        T0 + 40,
    )
    .unwrap();
    doc.set_status(InspectionStatus::Submitted, &me, None, T0 + 50)
        .unwrap();
    doc.set_status(InspectionStatus::Approved, &sup, None, T0 + 60)
        .unwrap();
    // Approved is final until a supervisor returns it.
    assert!(
        doc.set_answer(
            &answer("A01", AnswerValue::Observed),
            &EditContext::amending("li.ming", "x"),
            T0 + 70
        )
        .is_err()
    );

    let i = doc.read().unwrap();
    assert_eq!(i.status, InspectionStatus::Approved);
    assert_eq!(
        i.ended_at_ms,
        Some(T0 + 10),
        "the first submission ends the inspection"
    );
    let kinds: Vec<_> = i.events.iter().map(|e| e.kind.clone()).collect();
    assert_eq!(
        kinds,
        vec![
            WorkflowEventKind::StatusChanged {
                to: InspectionStatus::Submitted
            },
            WorkflowEventKind::Amended,
            WorkflowEventKind::StatusChanged {
                to: InspectionStatus::Returned
            },
            WorkflowEventKind::Amended,
            WorkflowEventKind::StatusChanged {
                to: InspectionStatus::Submitted
            },
            WorkflowEventKind::StatusChanged {
                to: InspectionStatus::Approved
            },
        ]
    );
    assert_eq!(i.events[1].text.as_deref(), Some("漏记一处"));
    assert_eq!(i.events[1].item_code.as_deref(), Some("A01"));
    assert_eq!(i.events[2].text.as_deref(), Some("照片不清晰"));
    assert_eq!(i.events[2].by, "zhao.sup");
}

#[test]
fn supervisor_return_and_inspector_amendment_at_the_same_time_merge() {
    let mut phone =
        InspectionDoc::create("insp-1", &new_inspection(), PHONE_A, "li.ming", T0).unwrap();
    phone
        .set_answer(
            &answer("A01", AnswerValue::Observed),
            &EditContext::by("li.ming"),
            T0 + 1,
        )
        .unwrap();
    phone
        .set_status(
            InspectionStatus::Submitted,
            &EditContext::by("li.ming"),
            None,
            T0 + 2,
        )
        .unwrap();
    let mut desk = InspectionDoc::load("insp-1", &phone.save(), DESK).unwrap();
    desk.set_status(
        InspectionStatus::Returned,
        &EditContext::by("zhao.sup"),
        Some("缺照片"),
        T0 + 10,
    )
    .unwrap();
    phone
        .set_answer(
            &answer("A02", AnswerValue::Observed),
            &EditContext::amending("li.ming", "补记"),
            T0 + 11,
        )
        .unwrap();
    phone.merge(&mut desk).unwrap();
    let i = phone.read().unwrap();
    assert_eq!(i.status, InspectionStatus::Returned);
    assert_eq!(i.answers.len(), 2);
    assert_eq!(i.events.len(), 3);
}

#[test]
fn untrusted_bytes_are_refused_without_changing_the_document() {
    let mut doc =
        InspectionDoc::create("insp-1", &new_inspection(), PHONE_A, "li.ming", T0).unwrap();
    doc.set_answer(
        &answer("A01", AnswerValue::Observed),
        &EditContext::by("li.ming"),
        T0 + 1,
    )
    .unwrap();
    let before = doc.read().unwrap();
    let good = doc.save();

    for bad in [
        vec![],
        vec![0u8; 10],
        b"not automerge at all".to_vec(),
        good[..good.len() / 2].to_vec(),
    ] {
        assert!(matches!(
            InspectionDoc::load("insp-1", &bad, PHONE_B),
            Err(CoreError::CorruptDocument { .. })
        ));
        assert!(
            doc.apply_bytes(&bad).is_err() || bad.is_empty(),
            "garbage is an error"
        );
        assert_eq!(doc.read().unwrap(), before);
    }
    // Flipped bytes anywhere: an error or a valid document, never a panic.
    for at in (0..good.len()).step_by(7) {
        let mut flipped = good.clone();
        flipped[at] ^= 0x5a;
        let _ = InspectionDoc::load("insp-1", &flipped, PHONE_B);
    }
    // A valid automerge document that is not this inspection.
    let other = InspectionDoc::create("insp-2", &new_inspection(), PHONE_B, "x", T0)
        .unwrap()
        .save();
    assert!(InspectionDoc::load("insp-1", &other, PHONE_B).is_err());
    let mut empty = automerge::AutoCommit::new();
    assert!(InspectionDoc::load("insp-1", &empty.save(), PHONE_B).is_err());
}

#[test]
fn bad_arguments_are_typed_errors() {
    assert!(
        InspectionDoc::create("insp-1", &new_inspection(), "not-a-uuid", "li.ming", T0).is_err()
    );
    assert!(InspectionDoc::create("", &new_inspection(), PHONE_A, "li.ming", T0).is_err());
    let mut doc =
        InspectionDoc::create("insp-1", &new_inspection(), PHONE_A, "li.ming", T0).unwrap();
    let mut bad = photo("A01", 'a');
    bad.sha256 = "xyz".into();
    assert!(doc.add_evidence(&bad).is_err());
    assert!(
        doc.add_gps_fix(&fix(f64::NAN, 111.0, T0), "li.ming")
            .is_err()
    );
    assert!(doc.add_gps_fix(&fix(95.0, 111.0, T0), "li.ming").is_err());
    assert!(
        doc.set_answer(
            &answer("A01", AnswerValue::Observed),
            &EditContext::by(""),
            T0
        )
        .is_err()
    );
    assert_eq!(doc.history().len(), 1, "failed edits leave no trace");
}

fn photo(item: &str, fill: char) -> EvidenceRef {
    EvidenceRef {
        sha256: std::iter::repeat_n(fill, 64).collect(),
        item_code: item.into(),
        media: MediaKind::Photo,
        added_by: "li.ming".into(),
        at_ms: T0,
        thumb: None,
        upload: None,
        device_id: String::new(),
    }
}

fn fix(lat: f64, lon: f64, at_ms: i64) -> GpsFix {
    GpsFix {
        location: LatLon { lat, lon },
        accuracy_m: Some(8.0),
        altitude_m: None,
        provider: "gps".into(),
        at_ms,
        is_mock: false,
    }
}

fn sorted_answers(i: &fenlei_core::inspection::Inspection) -> Vec<ItemAnswer> {
    let mut v = i.item_answers();
    v.sort_by(|a, b| a.item_code.cmp(&b.item_code));
    v
}

#[test]
fn incremental_changes_from_another_device_apply_and_damaged_ones_are_refused() {
    let (mut a, mut b) = two_phones();
    a.save_incremental();
    a.set_answer(
        &answer("A01", AnswerValue::Observed),
        &EditContext::by("li.ming"),
        T0 + 1,
    )
    .unwrap();
    a.set_answer(
        &answer("A02", AnswerValue::Compliant),
        &EditContext::by("li.ming"),
        T0 + 2,
    )
    .unwrap();
    let changes = a.save_incremental();
    assert!(!changes.is_empty());

    // Cut anywhere: refused, and B is unchanged.
    let before = b.read().unwrap();
    // (Not at a chunk boundary: a whole first change is valid on its own.)
    for cut in [1, changes.len() / 2 + 3, changes.len() - 1] {
        let r = b.apply_bytes(&changes[..cut]);
        assert!(
            matches!(r, Err(CoreError::CorruptDocument { .. })),
            "cut at {cut} of {}: {r:?}",
            changes.len()
        );
        assert_eq!(b.read().unwrap(), before);
    }
    // Whole: applied, though the changes they build on are not in these bytes.
    b.apply_bytes(&changes).unwrap();
    assert_eq!(
        sorted_answers(&b.read().unwrap()),
        sorted_answers(&a.read().unwrap())
    );
    // And the receiver's own incremental save now holds exactly what arrived.
    assert!(!b.save_incremental().is_empty());
}
