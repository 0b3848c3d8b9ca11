//! A corrupt device store is refilled from the server (docs/reliability.md): an inspector's
//! phone syncs its work, its database file is damaged, the next open reports `CorruptDatabase`
//! and keeps the file aside, a fresh store opens at the same path, enrolls again (a fresh store
//! is a new device) and one sync brings every inspection back, identical. A damaged server
//! database is kept aside and never replaced by an empty one without the admin saying so.

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

/// Runs the server binary on `data` with `args`; returns (success, stdout, stderr).
fn run_server(data: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(BIN)
        .args(["--data", data.to_str().unwrap()])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn kept_copies(data: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(data)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("fenlei-server.sqlite.corrupt-") && !n.contains("-wal"))
        .filter(|n| !n.ends_with("-shm") && !n.ends_with("-journal"))
        .collect();
    names.sort();
    names
}

/// A damaged SERVER database: the start that finds it keeps it aside and stops; later starts
/// refuse to create an empty database in its place until the admin restores a backup or says
/// `--accept-fresh-database`.
#[test]
fn a_damaged_server_database_is_never_replaced_silently() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("server");
    let mut server = Server::start(&data);
    server.kill();
    // An admin command after the stop closes the database cleanly (WAL folded into the file).
    server.admin(&["add-user", "--id", "insp.d", "--role", "inspector"]);
    let db = data.join("fenlei-server.sqlite");
    assert!(!data.join("fenlei-server.sqlite-wal").exists());
    // A backup taken by the admin.
    let backup = dir.path().join("backup.sqlite");
    std::fs::copy(&db, &backup).unwrap();

    // Damage the header's page-size field and a later page: not a database any more.
    {
        let mut f = std::fs::OpenOptions::new().write(true).open(&db).unwrap();
        f.seek(SeekFrom::Start(16)).unwrap();
        f.write_all(&[0x7f, 0x7f]).unwrap();
        f.seek(SeekFrom::Start(4096 * 2)).unwrap();
        f.write_all(&[0xee; 4096]).unwrap();
        f.sync_all().unwrap();
    }
    let damaged = std::fs::read(&db).unwrap();

    // 1. The start that finds the damage: stops, keeps the file, says what to do.
    let (ok, _, err) = run_server(&data, &["serve", "--addr", "127.0.0.1:0"]);
    assert!(!ok, "a server must not start on a damaged database");
    assert!(
        err.contains("corrupt") && err.contains("--accept-fresh-database"),
        "{err}"
    );
    assert!(!db.exists());
    let kept = kept_copies(&data);
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(std::fs::read(data.join(&kept[0])).unwrap(), damaged);

    // 2. Every later start (serving or an admin command) refuses: no empty database appears.
    for args in [
        &["serve", "--addr", "127.0.0.1:0"][..],
        &["add-user", "--id", "x", "--role", "inspector"][..],
        &["init"][..],
    ] {
        let (ok, _, err) = run_server(&data, args);
        assert!(!ok, "{args:?} must refuse");
        assert!(err.contains(&kept[0]), "names the kept copy: {err}");
        assert!(err.contains("restore a backup"), "{err}");
        assert!(err.contains("--accept-fresh-database"), "{err}");
        assert!(!db.exists(), "{args:?} created a database");
    }

    // 3a. Restoring a backup to the database's path: the server starts with its data.
    std::fs::copy(&backup, &db).unwrap();
    server.restart();
    server.enroll_code("insp.d"); // the user from before the damage is there
    server.kill();

    // 3b. Or, with no backup, an empty database on purpose.
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let (ok, _, err) = run_server(&data, &["add-user", "--id", "x", "--role", "inspector"]);
    assert!(!ok && err.contains("--accept-fresh-database"), "{err}");
    let (ok, out, err) = run_server(&data, &["--accept-fresh-database", "init", "--sample"]);
    assert!(ok, "{out}{err}");
    assert!(db.exists());
    // Once a database exists again, starts need no flag; the kept copy is still there.
    server.restart();
    let (ok, _, err) = run_server(&data, &["enroll", "--user", "insp.d"]);
    assert!(!ok, "the fresh database does not know the old user: {err}");
    assert_eq!(kept_copies(&data), kept);
}
