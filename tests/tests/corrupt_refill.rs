//! A corrupt device store is refilled from the server (docs/reliability.md): an inspector's
//! phone syncs its work, its database file is damaged, the next open reports `CorruptDatabase`
//! and keeps the file aside, a fresh store opens at the same path, enrolls again (a fresh store
//! is a new device) and one sync brings every inspection back, identical.

mod common;

use common::*;
use fenlei_core::CoreError;
use fenlei_core::answer::{AnswerValue, ItemAnswer};
use fenlei_core::inspection::{EditContext, InspectionKind, InspectionStatus, NewInspection};
use fenlei_core::progress::{CancelToken, NoProgress};
use fenlei_core::store::Store;
use fenlei_core::sync::{SyncClient, enroll};
use std::io::{Seek, SeekFrom, Write};

#[test]
fn a_corrupt_store_is_kept_aside_and_refilled_from_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let (street, communities, _) = sample_places();
    server.admin(&["add-user", "--id", "insp.r", "--role", "inspector"]);
    server.admin(&["assign", "--user", "insp.r", "--street", &street]);
    let path = dir.path().join("phone.sqlite");
    let ctx = EditContext::by("insp.r");

    let mut ids = Vec::new();
    {
        let store = Store::open(&path).unwrap();
        let creds = enroll(&server.url(), &server.enroll_code("insp.r"), &store).unwrap();
        let client = SyncClient::new(&server.url(), &creds.token).unwrap();
        client
            .sync(&store, &NoProgress, &CancelToken::new())
            .unwrap();
        let items: Vec<String> = compliant_items(&store).into_iter().take(5).collect();
        for (n, community) in communities.iter().take(3).enumerate() {
            let id = store
                .create_inspection(
                    &NewInspection {
                        community_id: community.clone(),
                        standard_id: "hohhot-residential".into(),
                        standard_version: "2026.1".into(),
                        kind: InspectionKind::DailyPatrol,
                        co_inspectors: vec![],
                    },
                    "insp.r",
                )
                .unwrap();
            for item in &items {
                store
                    .record_answer(
                        &id,
                        &ItemAnswer {
                            item_code: item.clone(),
                            value: AnswerValue::Compliant,
                            sampled_units: None,
                            note: Some(format!("第{n}次检查 {item}")),
                        },
                        &ctx,
                    )
                    .unwrap();
            }
            if n == 0 {
                store
                    .set_status(&id, InspectionStatus::Submitted, &ctx, None)
                    .unwrap();
            }
            ids.push(id);
        }
        client
            .sync(&store, &NoProgress, &CancelToken::new())
            .unwrap();
    }
    let before: Vec<_> = {
        let store = Store::open(&path).unwrap();
        ids.iter().map(|id| store.inspection(id).unwrap()).collect()
    };

    // Damage: garbage over the documents table's root page (the header stays valid), as a
    // torn write or a failing flash block leaves it.
    let (root, page_size): (u64, u64) = {
        let c = rusqlite::Connection::open(&path).unwrap();
        let root = c
            .query_row(
                "SELECT rootpage FROM sqlite_master WHERE type = 'table' AND name = 'documents'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        (
            root,
            c.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap(),
        )
    };
    let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.seek(SeekFrom::Start((root - 1) * page_size)).unwrap();
    f.write_all(&vec![0x5A; page_size as usize]).unwrap();
    f.sync_all().unwrap();
    drop(f);
    let damaged = std::fs::read(&path).unwrap();

    let kept = match Store::open(&path) {
        Err(CoreError::CorruptDatabase { kept_as, .. }) => std::path::PathBuf::from(kept_as),
        Err(e) => panic!("expected CorruptDatabase, got {e:?}"),
        Ok(_) => panic!("a damaged store opened"),
    };
    assert_eq!(std::fs::read(&kept).unwrap(), damaged, "kept, untouched");

    // A fresh store at the same path, enrolled again, refilled by one sync.
    let store = Store::open(&path).unwrap();
    assert!(store.document_ids().unwrap().is_empty());
    let creds = enroll(&server.url(), &server.enroll_code("insp.r"), &store).unwrap();
    let report = SyncClient::new(&server.url(), &creds.token)
        .unwrap()
        .sync(&store, &NoProgress, &CancelToken::new())
        .unwrap();
    assert_eq!(report.documents_received, 3);
    for (id, old) in ids.iter().zip(&before) {
        assert_eq!(&store.inspection(id).unwrap(), old, "inspection {id} back");
    }
    assert!(kept.exists());
}
