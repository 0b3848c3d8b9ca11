//! Disk full, for the database (docs/reliability.md): the store's file is capped with SQLite's
//! `max_page_count` (`Store::set_max_database_pages`), which fails writes exactly as a full
//! disk does (SQLITE_FULL). Every step returns a typed error, never a panic; the store stays
//! usable; after space is freed nothing committed is lost. Files on a full disk: see
//! disk_full_files.rs.

use fenlei_core::CoreError;
use fenlei_core::answer::{AnswerValue, ItemAnswer};
use fenlei_core::inspection::{EditContext, InspectionKind, InspectionStatus, NewInspection};
use fenlei_core::media::MediaStore;
use fenlei_core::store::Store;
use std::collections::BTreeMap;

const BY: &str = "insp.full";

fn new_inspection(community: &str) -> NewInspection {
    NewInspection {
        community_id: community.into(),
        standard_id: "hohhot-residential".into(),
        standard_version: "2026.1".into(),
        kind: InspectionKind::DailyPatrol,
        co_inspectors: vec![],
    }
}

fn answer(item: &str, note: String) -> ItemAnswer {
    ItemAnswer {
        item_code: item.into(),
        value: AnswerValue::Compliant,
        sampled_units: None,
        note: Some(note),
    }
}

fn photo(seed: u8) -> Vec<u8> {
    let (w, h) = (320u16, 240u16);
    let px: Vec<u8> = (0..w as usize * h as usize * 3)
        .map(|i| (i as u8).wrapping_mul(seed) ^ seed)
        .collect();
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 90)
        .encode(&px, w, h, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    out
}

/// A full database is a `Database` error that says so.
fn assert_full<T: std::fmt::Debug>(step: &str, r: fenlei_core::Result<T>) -> bool {
    match r {
        Ok(_) => {
            eprintln!("{step}: fitted in the free space");
            false
        }
        Err(CoreError::Database(m)) if m.contains("full") => true,
        Err(e) => panic!("{step}: expected a full-database error, got {e:?}"),
    }
}

fn integrity_ok(path: &std::path::Path) {
    let c = rusqlite::Connection::open(path).unwrap();
    let r: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(r, "ok");
}

#[test]
fn a_full_database_fails_every_write_with_a_typed_error_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("device.sqlite");
    let store = Store::open(&path).unwrap();
    let media = MediaStore::open(dir.path().join("media")).unwrap();
    store
        .import_communities_csv(fenlei_core::sample::CITY_CSV.as_bytes())
        .unwrap();
    store
        .import_standard(fenlei_core::sample::STANDARD_TOML)
        .unwrap();
    let community = fenlei_core::community::parse_csv(fenlei_core::sample::CITY_CSV.as_bytes())
        .unwrap()[0]
        .id
        .clone();
    let items: Vec<String> = store
        .standard("hohhot-residential", "2026.1")
        .unwrap()
        .items()
        .filter(|i| {
            let a = answer(&i.code, "-".into());
            let s = store.standard("hohhot-residential", "2026.1").unwrap();
            fenlei_core::scoring::validate_answer(&s, &a).is_ok()
        })
        .map(|i| i.code.clone())
        .collect();
    let ctx = EditContext::by(BY);

    // A little room left, then record until the database is full.
    let (pages, page_size) = store.database_pages().unwrap();
    assert_eq!(store.set_max_database_pages(pages + 8).unwrap(), pages + 8);
    let mut committed: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut inspections = Vec::new();
    let mut full_at = None;
    'fill: for round in 0..10_000 {
        let id = match store.create_inspection(&new_inspection(&community), BY) {
            Ok(id) => id,
            Err(e) => {
                assert_full("create_inspection", Err::<(), _>(e));
                full_at = Some(round);
                break;
            }
        };
        inspections.push(id.clone());
        for item in &items {
            let note = format!("r{round}-{item}-{}", "备注".repeat(40));
            match store.record_answer(&id, &answer(item, note.clone()), &ctx) {
                Ok(()) => {
                    committed.insert((id.clone(), item.clone()), note);
                }
                Err(e) => {
                    assert_full("record_answer", Err::<(), _>(e));
                    full_at = Some(round);
                    break 'fill;
                }
            }
        }
    }
    assert!(full_at.is_some(), "the cap was reached");
    assert!(!committed.is_empty());
    eprintln!(
        "full after {} answers in {} inspections ({} pages of {page_size} bytes)",
        committed.len(),
        inspections.len(),
        pages + 8
    );

    // The write that failed may have needed more than the last free pages: use up what is left
    // with short notes, so the steps below meet a really full file.
    let last = inspections.last().unwrap().clone();
    for n in 0..10_000 {
        let note = format!("x{n}");
        let item = &items[n % items.len()];
        match store.record_answer(&last, &answer(item, note.clone()), &ctx) {
            Ok(()) => {
                committed.insert((last.clone(), item.clone()), note);
            }
            Err(e) => {
                assert_full("record_answer (short)", Err::<(), _>(e));
                break;
            }
        }
    }

    // Every kind of write, while full: a typed error or (if it fits in free space) success.
    let first = inspections[0].clone();
    let mut refused = 0;
    refused += assert_full(
        "import_communities_csv",
        store.import_communities_csv(fenlei_core::sample::CITY_CSV.as_bytes()),
    ) as usize;
    // A new standard version and a batch of 20 received documents need many new pages: refused.
    assert!(assert_full(
        "import_standard",
        store.import_standard(fenlei_core::sample::STANDARD_NEXT_TOML),
    ));
    refused += assert_full(
        "create_inspection",
        store.create_inspection(&new_inspection(&community), BY),
    ) as usize;
    let status_refused = assert_full(
        "set_status",
        store.set_status(&first, InspectionStatus::Submitted, &ctx, None),
    );
    refused += status_refused as usize;
    let jpeg = dir.path().join("evidence.jpg");
    std::fs::write(&jpeg, photo(7)).unwrap();
    let attach = store.attach_photo(&media, &first, &items[0], &jpeg, None, BY);
    let attach_refused = assert_full("attach_photo", attach);
    if attach_refused {
        // The files the failed attach wrote are gone again; nothing points at them.
        let originals: Vec<_> = walk(&dir.path().join("media").join("originals"));
        assert!(originals.is_empty(), "{originals:?}");
    }
    refused += attach_refused as usize;
    eprintln!("{refused} of the small writes were refused, the others fitted in free space");
    let other = tempfile::tempdir().unwrap();
    let donor = Store::open(other.path().join("donor.sqlite")).unwrap();
    donor
        .import_communities_csv(fenlei_core::sample::CITY_CSV.as_bytes())
        .unwrap();
    donor
        .import_standard(fenlei_core::sample::STANDARD_TOML)
        .unwrap();
    let mut batch = Vec::new();
    for _ in 0..20 {
        let id = donor
            .create_inspection(&new_inspection(&community), "insp.other")
            .unwrap();
        batch.push((id.clone(), donor.document_bytes(&id).unwrap()));
    }
    assert!(assert_full(
        "apply_documents",
        store.apply_documents(&batch)
    ));
    integrity_ok(&path);

    // Reads still work, and the committed answers are all there before any space is freed.
    for ((id, item), note) in &committed {
        let i = store.inspection(id).unwrap();
        assert!(
            i.answers
                .iter()
                .any(|a| &a.answer.item_code == item && a.answer.note.as_ref() == Some(note))
        );
    }

    // Space freed: the cap lifted (and, separately, the store reopened) — everything committed
    // is there and writing works again.
    drop(store);
    integrity_ok(&path);
    let store = Store::open(&path).unwrap();
    for ((id, item), note) in &committed {
        let i = store.inspection(id).unwrap();
        let a = i
            .answers
            .iter()
            .find(|a| &a.answer.item_code == item)
            .unwrap_or_else(|| panic!("lost {id} {item}"));
        assert_eq!(a.answer.note.as_ref(), Some(note));
    }
    // The writes refused while full succeed now; those that fitted are there.
    if status_refused {
        store
            .set_status(&first, InspectionStatus::Submitted, &ctx, None)
            .unwrap();
    }
    assert_eq!(
        store.inspection(&first).unwrap().status,
        InspectionStatus::Submitted
    );
    if attach_refused {
        store
            .attach_photo(&media, &first, &items[0], &jpeg, None, BY)
            .unwrap();
    }
    assert!(
        !store.inspection(&first).unwrap().evidence.is_empty(),
        "the photo is attached"
    );
    assert_eq!(store.apply_documents(&batch).unwrap().len(), batch.len());
    integrity_ok(&path);
}

#[test]
fn the_cap_can_be_lifted_on_an_open_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("s.sqlite")).unwrap();
    let (pages, _) = store.database_pages().unwrap();
    store.set_max_database_pages(pages).unwrap();
    assert!(assert_full(
        "import",
        store.import_communities_csv(fenlei_core::sample::CITY_CSV.as_bytes())
    ));
    store.set_max_database_pages(0).unwrap();
    assert_eq!(
        store
            .import_communities_csv(fenlei_core::sample::CITY_CSV.as_bytes())
            .unwrap(),
        200
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}
