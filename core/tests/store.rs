//! The SQLite store with real files: persistence across reopen, the projection and its rebuild,
//! queries, typed errors that leave committed data alone, merges between two stores.

mod common;

use common::*;
use fenlei_core::CoreError;
use fenlei_core::answer::AnswerValue;
use fenlei_core::geo::{self, CoordSystem, LatLon};
use fenlei_core::inspection::{EditContext, EvidenceRef, GpsFix, InspectionStatus, MediaKind};
use fenlei_core::sample;
use fenlei_core::scoring;
use fenlei_core::store::{Clock, InspectionFilter, Store};
use rusqlite::Connection;

fn me() -> EditContext {
    EditContext::by("li.ming")
}

#[test]
fn answers_survive_reopen_and_the_device_id_is_stable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phone.sqlite");
    let clock = ManualClock::new(T0);
    let s = sample_standard();
    let (id, device) = {
        let store = sample_store(&path, clock.clone());
        let community = community_ids(&store, 1).remove(0);
        let id = store
            .create_inspection(&new_inspection(&store, &community), "li.ming")
            .unwrap();
        store
            .record_answer(
                &id,
                &answer(first_item(&s, "fixed"), AnswerValue::Observed),
                &me(),
            )
            .unwrap();
        store
            .record_answer(
                &id,
                &occurrences(first_item(&s, "per_occurrence"), 2),
                &me(),
            )
            .unwrap();
        (id, store.device_id().to_string())
    };
    let store = Store::open_with_clock(&path, clock).unwrap();
    assert_eq!(store.device_id(), device);
    let i = store.inspection(&id).unwrap();
    assert_eq!(i.answers.len(), 2);
    assert_eq!(i.created_device_id, device);
    assert_eq!(store.history(&id).unwrap().len(), 3);
}

#[test]
fn projection_score_matches_the_scoring_engine() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let store = sample_store(&dir.path().join("s.sqlite"), clock);
    let s = sample_standard();
    let community = community_ids(&store, 1).remove(0);
    let id = store
        .create_inspection(&new_inspection(&store, &community), "li.ming")
        .unwrap();
    store
        .record_answer(
            &id,
            &answer(first_item(&s, "fixed"), AnswerValue::Observed),
            &me(),
        )
        .unwrap();
    store
        .record_answer(
            &id,
            &occurrences(first_item(&s, "per_occurrence"), 3),
            &me(),
        )
        .unwrap();
    let range = first_item(&s, "range");
    let fenlei_core::standard::Rule::Range { min, .. } = range.rule else {
        unreachable!()
    };
    store
        .record_answer(
            &id,
            &answer(range, AnswerValue::Deduction { points: min }),
            &me(),
        )
        .unwrap();
    store
        .set_status(&id, InspectionStatus::Submitted, &me(), None)
        .unwrap();

    let card = store.score(&id).unwrap();
    let expected = scoring::score(&s, &store.inspection(&id).unwrap().item_answers());
    assert_eq!(card, expected);
    assert!(card.total < card.max_points);
    let listed = store
        .list_inspections(&InspectionFilter::default())
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].total, Some(card.total));
    assert_eq!(listed[0].grade.as_deref(), Some(card.grade.as_str()));
    assert_eq!(listed[0].status, InspectionStatus::Submitted);
    let latest = store.latest_score(&community).unwrap().unwrap();
    assert_eq!(
        (latest.inspection_id.as_str(), latest.total),
        (id.as_str(), card.total)
    );
}

#[test]
fn bad_answers_are_typed_errors_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = sample_store(&dir.path().join("s.sqlite"), ManualClock::new(T0));
    let s = sample_standard();
    let community = community_ids(&store, 1).remove(0);
    let id = store
        .create_inspection(&new_inspection(&store, &community), "li.ming")
        .unwrap();
    let fixed = first_item(&s, "fixed");
    store
        .record_answer(&id, &answer(fixed, AnswerValue::Observed), &me())
        .unwrap();
    let before = store.inspection(&id).unwrap();
    let history = store.history(&id).unwrap().len();

    let mut unknown = answer(fixed, AnswerValue::Observed);
    unknown.item_code = "ZZ99".into();
    assert!(matches!(
        store.record_answer(&id, &unknown, &me()),
        Err(CoreError::UnknownItem { .. })
    ));
    let rate = first_item(&s, "rate_bands");
    assert!(matches!(
        store.record_answer(
            &id,
            &answer(rate, AnswerValue::Rate { percent: 130.0 }),
            &me()
        ),
        Err(CoreError::InvalidAnswer { .. })
    ));
    let range = first_item(&s, "range");
    assert!(matches!(
        store.record_answer(
            &id,
            &answer(range, AnswerValue::Deduction { points: 1_000.0 }),
            &me()
        ),
        Err(CoreError::InvalidAnswer { .. })
    ));
    assert!(matches!(
        store.record_answer(
            "no-such-inspection",
            &answer(fixed, AnswerValue::Compliant),
            &me()
        ),
        Err(CoreError::UnknownInspection(_))
    ));
    let mut other = new_inspection(&store, "no-such-community");
    assert!(matches!(
        store.create_inspection(&other, "li.ming"),
        Err(CoreError::UnknownCommunity(_))
    ));
    other.community_id = community.clone();
    other.standard_version = "1999.1".into();
    assert!(matches!(
        store.create_inspection(&other, "li.ming"),
        Err(CoreError::UnknownStandard { .. })
    ));

    store
        .set_status(&id, InspectionStatus::Submitted, &me(), None)
        .unwrap();
    assert!(matches!(
        store.record_answer(&id, &answer(fixed, AnswerValue::Compliant), &me()),
        Err(CoreError::AmendmentReasonRequired(_))
    ));

    let after = store.inspection(&id).unwrap();
    assert_eq!(after.answers, before.answers);
    assert_eq!(
        store.history(&id).unwrap().len(),
        history + 1,
        "only the submission was added"
    );
}

#[test]
fn two_phones_exchange_documents_and_see_the_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let a = sample_store(&dir.path().join("a.sqlite"), clock.clone());
    let b = sample_store(&dir.path().join("b.sqlite"), clock.clone());
    assert_ne!(a.device_id(), b.device_id());
    let s = sample_standard();
    let community = community_ids(&a, 1).remove(0);
    let id = a
        .create_inspection(&new_inspection(&a, &community), "li.ming")
        .unwrap();
    b.apply_document_bytes(&id, &a.document_bytes(&id).unwrap())
        .unwrap();

    let item = first_item(&s, "per_occurrence");
    clock.advance(60_000);
    a.record_answer(&id, &occurrences(item, 3), &me()).unwrap();
    clock.advance(60_000);
    b.record_answer(&id, &occurrences(item, 1), &EditContext::by("wang.fang"))
        .unwrap();
    b.record_answer(
        &id,
        &answer(first_item(&s, "fixed"), AnswerValue::Observed),
        &EditContext::by("wang.fang"),
    )
    .unwrap();

    // Exchange both ways (as sync will), twice: the second exchange changes nothing.
    for _ in 0..2 {
        a.apply_document_bytes(&id, &b.document_bytes(&id).unwrap())
            .unwrap();
        b.apply_document_bytes(&id, &a.document_bytes(&id).unwrap())
            .unwrap();
    }
    for store in [&a, &b] {
        let conflicts = store.conflicts(&id).unwrap();
        assert_eq!(conflicts.len(), 1);
        let mut who: Vec<_> = conflicts[0]
            .candidates
            .iter()
            .map(|c| c.by.clone())
            .collect();
        who.sort();
        assert_eq!(who, vec!["li.ming", "wang.fang"]);
        assert_eq!(store.inspection(&id).unwrap().answers.len(), 2);
        assert_eq!(
            store
                .list_inspections(&InspectionFilter::default())
                .unwrap()[0]
                .conflict_count,
            1
        );
    }
    assert_eq!(
        a.inspection(&id).unwrap().answers,
        b.inspection(&id).unwrap().answers
    );

    // Resolution on A is an edit; it reaches B.
    a.record_answer(&id, &occurrences(item, 2), &me()).unwrap();
    assert_eq!(
        a.list_inspections(&InspectionFilter::default()).unwrap()[0].conflict_count,
        0
    );
    // The projection kept up edit by edit equals one rebuilt from the document.
    let live = dump_projection(&dir.path().join("a.sqlite"));
    a.rebuild_projection().unwrap();
    assert_eq!(dump_projection(&dir.path().join("a.sqlite")), live);
    b.apply_document_bytes(&id, &a.document_bytes(&id).unwrap())
        .unwrap();
    assert!(b.conflicts(&id).unwrap().is_empty());
    assert_eq!(
        b.list_inspections(&InspectionFilter::default()).unwrap()[0].conflict_count,
        0
    );

    // Garbage from the network is refused and changes nothing.
    let before = b.inspection(&id).unwrap();
    assert!(matches!(
        b.apply_document_bytes(&id, b"garbage"),
        Err(CoreError::CorruptDocument { .. })
    ));
    assert!(b.apply_document_bytes("new-id", b"garbage").is_err());
    assert_eq!(b.inspection(&id).unwrap(), before);
}

#[test]
fn queries_filter_and_order() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let store = sample_store(&dir.path().join("s.sqlite"), clock.clone());
    let s = sample_standard();
    let ids = community_ids(&store, 2);
    let fixed = first_item(&s, "fixed");
    let mut made = Vec::new();
    for day in 0..6 {
        clock.set(T0 + day * DAY);
        let community = &ids[(day % 2) as usize];
        let inspector = if day < 3 { "li.ming" } else { "wang.fang" };
        let id = store
            .create_inspection(&new_inspection(&store, community), inspector)
            .unwrap();
        let value = if day % 3 == 0 {
            AnswerValue::Observed
        } else {
            AnswerValue::Compliant
        };
        store
            .record_answer(&id, &answer(fixed, value), &EditContext::by(inspector))
            .unwrap();
        if day != 4 {
            store
                .set_status(
                    &id,
                    InspectionStatus::Submitted,
                    &EditContext::by(inspector),
                    None,
                )
                .unwrap();
        }
        made.push(id);
    }
    let list = |f: InspectionFilter| -> Vec<String> {
        store
            .list_inspections(&f)
            .unwrap()
            .into_iter()
            .map(|i| i.id)
            .collect()
    };
    // Newest first.
    assert_eq!(
        list(InspectionFilter::default()),
        made.iter().rev().cloned().collect::<Vec<_>>()
    );
    assert_eq!(
        list(InspectionFilter {
            community_id: Some(ids[0].clone()),
            ..Default::default()
        }),
        vec![made[4].clone(), made[2].clone(), made[0].clone()]
    );
    assert_eq!(
        list(InspectionFilter {
            status: Some(InspectionStatus::Draft),
            ..Default::default()
        }),
        vec![made[4].clone()]
    );
    assert_eq!(
        list(InspectionFilter {
            inspector: Some("li.ming".into()),
            ..Default::default()
        }),
        vec![made[2].clone(), made[1].clone(), made[0].clone()]
    );
    assert_eq!(
        list(InspectionFilter {
            from_ms: Some(T0 + DAY),
            to_ms: Some(T0 + 3 * DAY),
            ..Default::default()
        }),
        vec![made[2].clone(), made[1].clone()]
    );
    assert_eq!(
        list(InspectionFilter {
            limit: 2,
            ..Default::default()
        })
        .len(),
        2
    );

    // Trend: submitted inspections of the community, newest first; the draft (day 4) is left out.
    let trend = store.score_trend(&ids[0], 10).unwrap();
    assert_eq!(
        trend
            .iter()
            .map(|p| p.inspection_id.clone())
            .collect::<Vec<_>>(),
        vec![made[2].clone(), made[0].clone()]
    );
    let deduction = match fixed.rule {
        fenlei_core::standard::Rule::Fixed { deduction } => deduction,
        _ => unreachable!(),
    };
    assert_eq!(trend[0].total, s.max_points, "day 2: compliant");
    assert_eq!(
        trend[1].total,
        s.max_points - deduction,
        "day 0: the fixed deduction"
    );
    assert_eq!(
        store.latest_score(&ids[0]).unwrap().unwrap().inspection_id,
        made[2]
    );
    assert!(store.latest_score("nobody").unwrap().is_none());
}

#[test]
fn nearest_communities_are_ordered_by_true_distance() {
    let dir = tempfile::tempdir().unwrap();
    let store = sample_store(&dir.path().join("s.sqlite"), ManualClock::new(T0));
    let all = fenlei_core::community::parse_csv(sample::CITY_CSV.as_bytes()).unwrap();
    let here = LatLon {
        lat: 40.8151,
        lon: 111.6702,
    };
    let mut brute: Vec<(f64, String)> = all
        .iter()
        .map(|c| (geo::distance_m(here, c.location), c.id.clone()))
        .collect();
    brute.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));

    let near = store
        .nearest_communities(here, CoordSystem::Wgs84, 10)
        .unwrap();
    assert_eq!(near.len(), 10);
    assert_eq!(
        near.iter()
            .map(|n| n.community.id.clone())
            .collect::<Vec<_>>(),
        brute[..10].iter().map(|b| b.1.clone()).collect::<Vec<_>>()
    );
    assert!(near.windows(2).all(|w| w[0].distance_m <= w[1].distance_m));

    // The same place picked on a Chinese map (GCJ-02) finds the same communities.
    let gcj = geo::from_wgs84(here, CoordSystem::Gcj02);
    assert!(
        geo::distance_m(here, gcj) > 100.0,
        "GCJ-02 is visibly shifted"
    );
    let near_gcj = store
        .nearest_communities(gcj, CoordSystem::Gcj02, 10)
        .unwrap();
    assert_eq!(
        near_gcj.iter().map(|n| &n.community.id).collect::<Vec<_>>(),
        near.iter().map(|n| &n.community.id).collect::<Vec<_>>()
    );

    // Far away: still answers (the search widens), asking for more than exist returns all.
    let far = store
        .nearest_communities(
            LatLon {
                lat: -33.9,
                lon: 151.2,
            },
            CoordSystem::Wgs84,
            1_000,
        )
        .unwrap();
    assert_eq!(far.len(), all.len());
    assert!(
        store
            .nearest_communities(
                LatLon {
                    lat: f64::NAN,
                    lon: 0.0
                },
                CoordSystem::Wgs84,
                5
            )
            .is_err()
    );
}

#[test]
fn a_bad_community_list_imports_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = sample_store(&dir.path().join("s.sqlite"), ManualClock::new(T0));
    let before = store.community_count().unwrap();
    let mut csv = sample::CITY_CSV.to_string();
    csv.push_str("BROKEN-1,坏行\n");
    assert!(matches!(
        store.import_communities_csv(csv.as_bytes()),
        Err(CoreError::InvalidCsvRow { .. })
    ));
    assert_eq!(store.community_count().unwrap(), before);
}

#[test]
fn rebuilt_projection_equals_the_live_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sqlite");
    let clock = ManualClock::new(T0);
    let store = sample_store(&path, clock.clone());
    let s = sample_standard();
    let per = first_item(&s, "per_occurrence");
    for (n, community) in community_ids(&store, 5).iter().enumerate() {
        clock.advance(DAY);
        let id = store
            .create_inspection(&new_inspection(&store, community), "li.ming")
            .unwrap();
        store
            .record_answer(&id, &occurrences(per, n as u32), &me())
            .unwrap();
        store
            .add_evidence(
                &id,
                &EvidenceRef {
                    sha256: format!("{:064x}", n + 1),
                    item_code: per.code.clone(),
                    media: MediaKind::Photo,
                    added_by: "li.ming".into(),
                    at_ms: clock.now_ms(),
                    thumb: None,
                    upload: None,
                    device_id: String::new(),
                },
            )
            .unwrap();
        store
            .add_gps_fix(
                &id,
                &GpsFix {
                    location: LatLon {
                        lat: 40.8,
                        lon: 111.7,
                    },
                    accuracy_m: Some(5.0),
                    altitude_m: None,
                    provider: "gps".into(),
                    at_ms: clock.now_ms(),
                    is_mock: false,
                },
                "li.ming",
            )
            .unwrap();
        if n % 2 == 0 {
            store
                .set_status(&id, InspectionStatus::Submitted, &me(), None)
                .unwrap();
        }
    }
    let before = dump_projection(&path);
    assert!(before.len() > 20);
    assert_eq!(store.rebuild_projection().unwrap(), 5);
    assert_eq!(dump_projection(&path), before);
}

#[test]
fn documents_are_compacted_and_stay_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sqlite");
    let store = sample_store(&path, ManualClock::new(T0));
    let id = inspection_answered_again_and_again(&store, 150);
    let conn = Connection::open(&path).unwrap();
    let pending: i64 = conn
        .query_row("SELECT count(*) FROM document_changes", [], |r| r.get(0))
        .unwrap();
    assert!(
        pending < 64,
        "changes are folded into the snapshot ({pending} pending)"
    );
    assert_eq!(store.history(&id).unwrap().len(), 151);
    store.compact().unwrap();
    let pending: i64 = conn
        .query_row("SELECT count(*) FROM document_changes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(pending, 0);
    let reopened = Store::open(&path).unwrap();
    assert_eq!(reopened.history(&id).unwrap().len(), 151);
    let s = sample_standard();
    assert_eq!(
        reopened.inspection(&id).unwrap().answers[0].answer,
        occurrences(first_item(&s, "per_occurrence"), 149 % 4)
    );
}

/// An inspection of the store's first community whose first per-occurrence item was answered
/// `times` times (0, 1, 2, 3 occurrences, over and over).
fn inspection_answered_again_and_again(store: &Store, times: u32) -> String {
    let s = sample_standard();
    let community = community_ids(store, 1).remove(0);
    let id = store
        .create_inspection(&new_inspection(store, &community), "li.ming")
        .unwrap();
    let per = first_item(&s, "per_occurrence");
    for n in 0..times {
        store
            .record_answer(&id, &occurrences(per, n % 4), &me())
            .unwrap();
    }
    id
}

#[test]
fn damaged_document_bytes_on_disk_are_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sqlite");
    let store = sample_store(&path, ManualClock::new(T0));
    let community = community_ids(&store, 1).remove(0);
    let id = store
        .create_inspection(&new_inspection(&store, &community), "li.ming")
        .unwrap();
    drop(store);
    let conn = Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE documents SET snapshot = x'00112233' WHERE id = ?1",
        [&id],
    )
    .unwrap();
    let store = Store::open(&path).unwrap();
    assert!(matches!(
        store.inspection(&id),
        Err(CoreError::CorruptDocument { .. })
    ));
    assert!(matches!(
        store.rebuild_projection(),
        Err(CoreError::CorruptDocument { .. })
    ));
    // The failed rebuild rolled back: the projection is still there.
    assert_eq!(
        store
            .list_inspections(&InspectionFilter::default())
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn rescoring_under_another_version_leaves_the_pin_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = sample_store(&dir.path().join("s.sqlite"), ManualClock::new(T0));
    let next = store.import_standard(sample::STANDARD_NEXT_TOML).unwrap();
    let s = sample_standard();
    assert_ne!(next.version, s.version);
    let community = community_ids(&store, 1).remove(0);
    let id = store
        .create_inspection(&new_inspection(&store, &community), "li.ming")
        .unwrap();
    for item in s.items().filter(|i| i.rule.kind_name() == "per_occurrence") {
        store
            .record_answer(&id, &occurrences(item, 2), &me())
            .unwrap();
    }
    let pinned = store.score(&id).unwrap();
    let other = store.rescore(&id, &next.id, &next.version).unwrap();
    assert_eq!(pinned.standard_version, s.version);
    assert_eq!(other.standard_version, next.version);
    assert_eq!(store.inspection(&id).unwrap().standard_version, s.version);
    assert!(matches!(
        store.rescore(&id, &next.id, "0.0"),
        Err(CoreError::UnknownStandard { .. })
    ));

    // A published version is immutable.
    let tampered = sample::STANDARD_TOML.replacen("name", "name ", 1);
    if tampered != sample::STANDARD_TOML
        && fenlei_core::standard::Standard::from_toml_str(&tampered).is_ok()
    {
        assert!(store.import_standard(&tampered).is_err());
    }
    assert!(
        store.import_standard(sample::STANDARD_TOML).is_ok(),
        "re-importing the same file is a no-op"
    );
}

#[test]
fn a_database_from_a_newer_build_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sqlite");
    drop(Store::open(&path).unwrap());
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert!(matches!(
        Store::open(&path),
        Err(CoreError::DatabaseTooNew { found: 99, .. })
    ));
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

#[test]
fn readers_do_not_wait_for_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sqlite");
    let store = sample_store(&path, ManualClock::new(T0));
    let community = community_ids(&store, 1).remove(0);
    store
        .create_inspection(&new_inspection(&store, &community), "li.ming")
        .unwrap();
    // Another connection holds a write transaction open; reads still answer.
    let other = Connection::open(&path).unwrap();
    other
        .execute_batch("BEGIN IMMEDIATE; UPDATE meta SET value = value WHERE key = 'device_id';")
        .unwrap();
    assert_eq!(
        store
            .list_inspections(&InspectionFilter::default())
            .unwrap()
            .len(),
        1
    );
    other.execute_batch("COMMIT").unwrap();
}

/// What a server merges a device's message into: the feed position, the kind and the bytes
/// (snapshot plus the changes since) of one read, the same document the other calls show.
#[test]
fn a_stored_document_is_read_whole_with_its_feed_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sqlite");
    let store = sample_store(&path, ManualClock::new(T0));
    assert_eq!(store.stored_document("no-such-document").unwrap(), None);
    let id = inspection_answered_again_and_again(&store, 3);
    let stored = store.stored_document(&id).unwrap().expect("stored");
    assert_eq!(stored.kind, "inspection");
    assert_eq!(stored.seq, store.document_seq(&id).unwrap());
    assert!(stored.seq.is_some());
    let read = fenlei_core::inspection::InspectionDoc::load(&id, &stored.bytes, store.device_id())
        .unwrap()
        .read()
        .unwrap();
    assert_eq!(read, store.inspection(&id).unwrap());
    let mut whole = fenlei_core::guard::load_automerge(&id, &stored.bytes).unwrap();
    let mut reference = store.load_automerge(&id).unwrap().unwrap();
    assert_eq!(whole.get_heads(), reference.get_heads());
}

/// Every projection row, as text, sorted: what the projection says, independent of row order.
fn dump_projection(path: &std::path::Path) -> Vec<String> {
    let conn = Connection::open(path).unwrap();
    let mut out = Vec::new();
    for (table, columns) in [
        (
            "inspections",
            "id, community_id, standard_id, standard_version, kind, status, created_by, started_at, ended_at, total, max_points, grade, vetoed, conflict_count",
        ),
        ("inspection_inspectors", "*"),
        ("item_answers", "*"),
        ("evidence_refs", "*"),
        ("section_scores", "*"),
    ] {
        let mut stmt = conn
            .prepare(&format!("SELECT {columns} FROM {table}"))
            .unwrap();
        let n = stmt.column_count();
        let rows = stmt
            .query_map([], |r| {
                let cells: Vec<String> = (0..n)
                    .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
                    .collect();
                Ok(format!("{table}: {}", cells.join(" | ")))
            })
            .unwrap();
        out.extend(rows.map(|r| r.unwrap()));
    }
    out.sort();
    out
}
