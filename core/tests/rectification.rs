//! Rectification tasks (整改): the standard's per-item rules, the task document's loop and its
//! evidence rules, merges of edits made apart, the store's projection, follow-up inspections.

mod common;

use common::*;
use fenlei_core::CoreError;
use fenlei_core::answer::{AnswerValue, ItemAnswer, OccurrenceCount};
use fenlei_core::inspection::{EditContext, InspectionStatus};
use fenlei_core::rectification::{
    ClosureEvidence, NewRectification, RectificationDoc, RectificationStatus,
};
use fenlei_core::standard::Standard;
use fenlei_core::store::Store;

const DEV_A: &str = "0b8f3c1e-2d4a-4f6b-8c9d-1a2b3c4d5e6f";
const DEV_B: &str = "7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d";
const PHOTO: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const PHOTO2: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

fn new_task(required: &[&str]) -> NewRectification {
    NewRectification {
        community_id: "150102-0001".into(),
        inspection_id: "insp-1".into(),
        item_code: "C01".into(),
        item_title: "收集容器脏污、未加盖、破损或满溢".into(),
        responsible: "物业".into(),
        deadline_days: 3,
        deduction: Some(4.0),
        required_evidence: required.iter().map(|s| s.to_string()).collect(),
        finding_evidence: vec![PHOTO.into()],
        source: "inspector".into(),
    }
}

fn evidence(
    kind: &str,
    text: Option<&str>,
    sha: Option<&str>,
    by: &str,
    at: i64,
) -> ClosureEvidence {
    ClosureEvidence {
        kind: kind.into(),
        text: text.map(str::to_string),
        sha256: sha.map(str::to_string),
        by: by.into(),
        at_ms: at,
        ..Default::default()
    }
}

#[test]
fn the_standard_carries_rectification_rules_and_rejects_bad_ones() {
    let s = sample_standard();
    let c01 = s.item("C01").unwrap().rectification.clone().unwrap();
    assert_eq!(c01.responsible, "物业");
    assert_eq!(c01.deadline_days, 3);
    assert!(c01.triggers(3.0, false) && !c01.triggers(2.0, false));
    let f01 = s.item("F01").unwrap().rectification.clone().unwrap();
    assert!(f01.triggers(0.0, true) && !f01.triggers(5.0, false));
    assert_eq!(f01.evidence.len(), 6);
    assert!(s.item("A01").unwrap().rectification.is_none());

    let bad = fenlei_core::sample::STANDARD_TOML.replace(
        r#"evidence = ["actions", "photo_after"] }"#,
        r#"evidence = ["selfie"] }"#,
    );
    match Standard::from_toml_str(&bad) {
        Err(CoreError::InvalidStandard { item, problem }) => {
            assert!(item.is_some());
            assert!(problem.contains("selfie"), "{problem}");
        }
        other => panic!("expected an invalid standard, got {other:?}"),
    }
    let bad = fenlei_core::sample::STANDARD_TOML.replace(
        r#"responsible = "物业", deadline_days = 1"#,
        r#"responsible = "物业", deadline_days = 1, typo = 1"#,
    );
    assert!(Standard::from_toml_str(&bad).is_err());
}

#[test]
fn the_loop_needs_evidence_to_close_and_a_comment_to_reopen() {
    let t0 = 1_780_000_000_000;
    let mut doc = RectificationDoc::create(
        "t1",
        &new_task(&["actions", "photo_after"]),
        DEV_A,
        "li.ming",
        t0,
    )
    .unwrap();
    let t = doc.read().unwrap();
    assert_eq!(t.status, RectificationStatus::Open);
    assert!(t.deadline_ms > t0 + 3 * 86_400_000 - 86_400_000);
    assert!(!t.is_overdue(t0) && t.is_overdue(t.deadline_ms + 1));
    assert_eq!(t.missing_evidence(), vec!["actions", "photo_after"]);

    doc.set_status(RectificationStatus::InProgress, "li.ming", None, t0 + 1)
        .unwrap();
    assert!(matches!(
        doc.set_status(RectificationStatus::Submitted, "li.ming", None, t0 + 2),
        Err(CoreError::InvalidArgument(m)) if m.contains("actions")
    ));
    assert!(matches!(
        doc.set_status(RectificationStatus::Closed, "sup", None, t0 + 2),
        Err(CoreError::InvalidTransition { .. })
    ));
    doc.add_closure_evidence(&evidence(
        "actions",
        Some("更换破损桶 3 个"),
        None,
        "li.ming",
        t0 + 3,
    ))
    .unwrap();
    doc.add_closure_evidence(&evidence(
        "photo_after",
        None,
        Some(PHOTO2),
        "li.ming",
        t0 + 4,
    ))
    .unwrap();
    assert!(
        doc.add_closure_evidence(&evidence("photo_after", None, None, "li.ming", t0))
            .is_err()
    );
    assert!(
        doc.add_closure_evidence(&evidence("nonsense", Some("x"), None, "li.ming", t0))
            .is_err()
    );
    doc.set_status(RectificationStatus::Submitted, "li.ming", None, t0 + 5)
        .unwrap();
    assert!(
        doc.set_status(RectificationStatus::Reopened, "sup", Some("  "), t0 + 6)
            .is_err()
    );
    doc.set_status(
        RectificationStatus::Reopened,
        "sup",
        Some("照片不清晰"),
        t0 + 6,
    )
    .unwrap();
    doc.set_status(RectificationStatus::Submitted, "li.ming", None, t0 + 7)
        .unwrap();
    doc.set_status(RectificationStatus::Closed, "sup", Some("同意销号"), t0 + 8)
        .unwrap();
    let t = doc.read().unwrap();
    assert_eq!(t.status, RectificationStatus::Closed);
    assert!(!t.is_overdue(i64::MAX));
    assert_eq!(t.events.len(), 5);
    assert_eq!(t.closure_photos(), vec![PHOTO2.to_string()]);
    assert!(
        doc.add_closure_evidence(&evidence("actions", Some("late"), None, "li.ming", t0 + 9))
            .is_err()
    );
    let history = doc.history();
    assert_eq!(history.first().unwrap().action, "create");
    assert_eq!(history.last().unwrap().by, "sup");
    assert_eq!(history.last().unwrap().text.as_deref(), Some("同意销号"));
}

#[test]
fn evidence_added_on_two_devices_apart_merges_and_bad_bytes_are_refused() {
    let t0 = 1_780_000_000_000;
    let mut a = RectificationDoc::create(
        "t1",
        &new_task(&["actions", "photo_after"]),
        DEV_A,
        "li.ming",
        t0,
    )
    .unwrap();
    let mut b = RectificationDoc::load("t1", &a.save(), DEV_B).unwrap();
    a.add_closure_evidence(&evidence("actions", Some("清洗"), None, "li.ming", t0 + 1))
        .unwrap();
    b.add_closure_evidence(&evidence(
        "photo_after",
        None,
        Some(PHOTO2),
        "wang.fang",
        t0 + 2,
    ))
    .unwrap();
    b.set_status(RectificationStatus::InProgress, "wang.fang", None, t0 + 3)
        .unwrap();
    let from_b = b.save();
    a.apply_bytes(&from_b).unwrap();
    let t = a.read().unwrap();
    assert!(t.missing_evidence().is_empty());
    assert_eq!(t.status, RectificationStatus::InProgress);
    assert!(a.apply_bytes(b"not automerge").is_err());
    assert!(
        RectificationDoc::load("t2", &a.save(), DEV_A).is_err(),
        "id must match"
    );
    assert_eq!(
        fenlei_core::rectification::document_type("t1", &a.save()).as_deref(),
        Some("rectification")
    );
}

fn submitted_inspection_with_findings(store: &Store) -> String {
    let community = community_ids(store, 1).remove(0);
    let id = store
        .create_inspection(&new_inspection(store, &community), "li.ming")
        .unwrap();
    let ctx = EditContext::by("li.ming");
    let c01 = ItemAnswer {
        item_code: "C01".into(),
        value: AnswerValue::Occurrences {
            counts: vec![OccurrenceCount {
                finding: "overflow".into(),
                count: 2,
            }],
        },
        sampled_units: None,
        note: None,
    };
    store.record_answer(&id, &c01, &ctx).unwrap();
    let a01 = ItemAnswer {
        item_code: "A01".into(),
        value: AnswerValue::Observed,
        sampled_units: None,
        note: None,
    };
    store.record_answer(&id, &a01, &ctx).unwrap();
    store
        .set_status(&id, InspectionStatus::Submitted, &ctx, None)
        .unwrap();
    id
}

#[test]
fn a_submitted_inspection_opens_the_tasks_its_standard_asks_for_once() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let store = sample_store(&dir.path().join("s.sqlite"), clock.clone());
    let id = submitted_inspection_with_findings(&store);
    // The projection holds the answers with their deductions (bulletins read them).
    let conn = rusqlite::Connection::open(dir.path().join("s.sqlite")).unwrap();
    let rows: Vec<(String, Option<f64>)> = conn
        .prepare("SELECT item_code, deduction FROM item_answers WHERE inspection_id = ?1 ORDER BY item_code")
        .unwrap()
        .query_map([&id], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        rows,
        vec![
            ("A01".to_string(), Some(3.0)),
            ("C01".to_string(), Some(4.0))
        ]
    );
    let opened = store.open_due_rectifications(&id, "system", None).unwrap();
    assert_eq!(
        opened.len(),
        1,
        "C01 with 4 points opens a task; A01 has no rule"
    );
    assert!(
        store
            .open_due_rectifications(&id, "system", None)
            .unwrap()
            .is_empty()
    );
    let task = store.rectification(&opened[0]).unwrap();
    assert_eq!(task.item_code, "C01");
    assert_eq!(task.responsible, "物业");
    assert_eq!(task.source, "standard");
    assert_eq!(task.deduction, Some(4.0));
    let listed = store.list_rectifications(None).unwrap();
    assert_eq!(listed.len(), 1);
    assert!(!listed[0].overdue);
    clock.advance(10 * 86_400_000);
    assert!(store.list_rectifications(None).unwrap()[0].overdue);

    // The projection is rebuilt from the documents, tasks included.
    store.rebuild_projection().unwrap();
    assert_eq!(
        store
            .list_rectifications(Some(RectificationStatus::Open))
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn a_follow_up_inspection_submits_or_reopens_the_task_with_after_photos() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let store = sample_store(&dir.path().join("s.sqlite"), clock.clone());
    let id = submitted_inspection_with_findings(&store);
    let task_id = store
        .open_due_rectifications(&id, "system", None)
        .unwrap()
        .remove(0);
    let community = store.rectification(&task_id).unwrap().community_id;
    let pending = store.rectifications_of_community(&community, true).unwrap();
    assert_eq!(pending.len(), 1);

    store
        .set_rectification_status(&task_id, RectificationStatus::InProgress, "wang.wuye", None)
        .unwrap();
    store
        .add_closure_evidence(
            &task_id,
            &evidence(
                "actions",
                Some("更换满溢桶，增加清运频次"),
                None,
                "wang.wuye",
                0,
            ),
        )
        .unwrap();
    let mut follow = new_inspection(&store, &community);
    follow.kind = fenlei_core::inspection::InspectionKind::FollowUp;
    let follow_id = store.create_inspection(&follow, "li.ming").unwrap();
    // Not fixed while the work is in progress: it stays in progress.
    let status = store
        .record_follow_up(
            &task_id,
            &follow_id,
            false,
            &[],
            "li.ming",
            Some("仍有满溢"),
        )
        .unwrap();
    assert_eq!(status, RectificationStatus::InProgress);
    // Fixed, with an after photo: submitted for closure.
    let status = store
        .record_follow_up(&task_id, &follow_id, true, &[PHOTO.into()], "li.ming", None)
        .unwrap();
    assert_eq!(status, RectificationStatus::Submitted);
    // A later look finds it back: reopened.
    let status = store
        .record_follow_up(
            &task_id,
            &follow_id,
            false,
            &[],
            "li.ming",
            Some("又见满溢"),
        )
        .unwrap();
    assert_eq!(status, RectificationStatus::Reopened);
    let status = store
        .record_follow_up(
            &task_id,
            &follow_id,
            true,
            &[PHOTO2.into()],
            "li.ming",
            None,
        )
        .unwrap();
    assert_eq!(status, RectificationStatus::Submitted);
    let t = store.rectification(&task_id).unwrap();
    assert_eq!(
        t.follow_ups.len(),
        1,
        "one follow-up inspection, recorded again"
    );
    assert!(t.follow_ups[0].rectified);
    assert_eq!(t.closure_photos().len(), 2);
    store
        .set_rectification_status(
            &task_id,
            RectificationStatus::Closed,
            "sup.wang",
            Some("同意"),
        )
        .unwrap();
    assert!(
        store
            .rectifications_of_community(&community, true)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .rectification_history(&task_id)
            .unwrap()
            .last()
            .unwrap()
            .by,
        "sup.wang"
    );

    // A follow-up of another community is refused.
    let other = community_ids(&store, 2).remove(1);
    let elsewhere = store
        .create_inspection(&new_inspection(&store, &other), "li.ming")
        .unwrap();
    assert!(
        store
            .record_follow_up(&task_id, &elsewhere, true, &[], "li.ming", None)
            .is_err()
    );
}

#[test]
fn task_documents_travel_between_stores_like_inspections() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let a = sample_store(&dir.path().join("a.sqlite"), clock.clone());
    let b = sample_store(&dir.path().join("b.sqlite"), clock.clone());
    let community = community_ids(&a, 1).remove(0);
    let mut new = new_task(&["photo_after"]);
    new.community_id = community.clone();
    let id = a.open_rectification(&new, "li.ming").unwrap();
    let bytes = a.load_automerge(&id).unwrap().unwrap().save();
    b.apply_document_bytes(&id, &bytes).unwrap();
    assert_eq!(
        b.document_kind(&id).unwrap().as_deref(),
        Some("rectification")
    );
    b.add_closure_evidence(&id, &evidence("photo_after", None, Some(PHOTO2), "wang", 0))
        .unwrap();
    a.set_rectification_status(&id, RectificationStatus::InProgress, "li.ming", None)
        .unwrap();
    let back = b.load_automerge(&id).unwrap().unwrap().save();
    a.apply_document_bytes(&id, &back).unwrap();
    let t = a.rectification(&id).unwrap();
    assert_eq!(t.status, RectificationStatus::InProgress);
    assert!(t.missing_evidence().is_empty());
    assert_eq!(
        a.rectifications_of_community(&community, false)
            .unwrap()
            .len(),
        1
    );
    assert_eq!(a.compact().unwrap(), 1);
    assert_eq!(a.rectification(&id).unwrap(), t);
}
