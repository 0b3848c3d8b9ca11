//! Property: whatever two phones do to one inspection — answers, clears, evidence, submissions,
//! exchanges in any order — both stores' projections, kept up edit by edit, equal a projection
//! rebuilt from the documents, and after a final exchange both phones hold the same answers.

mod common;

use common::*;
use fenlei_core::inspection::{EditContext, EvidenceRef, InspectionStatus, MediaKind};
use fenlei_core::store::Store;
use proptest::prelude::*;
use rusqlite::Connection;

#[derive(Debug, Clone)]
enum Op {
    Answer {
        phone: usize,
        item: usize,
        count: u32,
    },
    Clear {
        phone: usize,
        item: usize,
    },
    Evidence {
        phone: usize,
        item: usize,
        photo: u8,
    },
    Submit {
        phone: usize,
    },
    Exchange,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..2usize, 0..4usize, 0..4u32).prop_map(|(phone, item, count)| Op::Answer { phone, item, count }),
        1 => (0..2usize, 0..4usize).prop_map(|(phone, item)| Op::Clear { phone, item }),
        1 => (0..2usize, 0..4usize, 0..3u8).prop_map(|(phone, item, photo)| Op::Evidence { phone, item, photo }),
        1 => (0..2usize).prop_map(|phone| Op::Submit { phone }),
        2 => Just(Op::Exchange),
    ]
}

fn exchange(a: &Store, b: &Store, id: &str) {
    b.apply_document_bytes(id, &a.document_bytes(id).unwrap())
        .unwrap();
    a.apply_document_bytes(id, &b.document_bytes(id).unwrap())
        .unwrap();
}

fn projection(path: &std::path::Path) -> Vec<String> {
    let conn = Connection::open(path).unwrap();
    let mut out = Vec::new();
    for sql in [
        "SELECT id, status, total, grade, vetoed, conflict_count FROM inspections",
        "SELECT * FROM item_answers",
        "SELECT * FROM evidence_refs",
        "SELECT * FROM section_scores",
        "SELECT * FROM inspection_inspectors",
    ] {
        let mut stmt = conn.prepare(sql).unwrap();
        let n = stmt.column_count();
        out.extend(
            stmt.query_map([], |r| {
                Ok((0..n)
                    .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
                    .collect::<Vec<_>>()
                    .join("|"))
            })
            .unwrap()
            .map(|r| r.unwrap()),
        );
    }
    out.sort();
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn live_projection_equals_rebuilt_and_phones_converge(ops in proptest::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(T0);
        let paths = [dir.path().join("a.sqlite"), dir.path().join("b.sqlite")];
        let phones = [sample_store(&paths[0], clock.clone()), sample_store(&paths[1], clock.clone())];
        let s = sample_standard();
        let items: Vec<_> = s.items().filter(|i| i.rule.kind_name() == "per_occurrence").take(4).collect();
        let community = community_ids(&phones[0], 1).remove(0);
        let id = phones[0].create_inspection(&new_inspection(&phones[0], &community), "li.ming").unwrap();
        exchange(&phones[0], &phones[1], &id);
        let users = ["li.ming", "wang.fang"];

        for op in ops {
            clock.advance(1_000);
            match op {
                Op::Answer { phone, item, count } => {
                    let ctx = EditContext::amending(users[phone], "复核");
                    phones[phone].record_answer(&id, &occurrences(items[item], count), &ctx).unwrap();
                }
                Op::Clear { phone, item } => {
                    let ctx = EditContext::amending(users[phone], "撤销");
                    phones[phone].clear_answer(&id, &items[item].code, &ctx).unwrap();
                }
                Op::Evidence { phone, item, photo } => {
                    let e = EvidenceRef {
                        sha256: format!("{:064x}", photo as u64 + 1),
                        item_code: items[item].code.clone(),
                        media: MediaKind::Photo,
                        added_by: users[phone].into(),
                        at_ms: T0,
                        thumb: None,
                        upload: None,
                        device_id: String::new(),
                    };
                    phones[phone].add_evidence(&id, &e).unwrap();
                }
                Op::Submit { phone } => {
                    // Only a draft can be submitted; otherwise it is a typed error and nothing changes.
                    let _ = phones[phone].set_status(&id, InspectionStatus::Submitted, &EditContext::by(users[phone]), None);
                }
                Op::Exchange => exchange(&phones[0], &phones[1], &id),
            }
        }
        for (phone, path) in phones.iter().zip(&paths) {
            let live = projection(path);
            phone.rebuild_projection().unwrap();
            prop_assert_eq!(projection(path), live);
        }
        exchange(&phones[0], &phones[1], &id);
        let (a, b) = (phones[0].inspection(&id).unwrap(), phones[1].inspection(&id).unwrap());
        prop_assert_eq!(a.answers, b.answers);
        prop_assert_eq!(a.evidence, b.evidence);
        prop_assert_eq!(a.status, b.status);
        prop_assert_eq!(a.conflicts.len(), b.conflicts.len());
    }
}
