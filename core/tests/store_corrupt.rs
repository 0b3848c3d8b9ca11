//! A damaged database file is found at open, reported as `CorruptDatabase`, kept aside (never
//! deleted) with its WAL, and the same path then opens as a fresh store
//! (docs/reliability.md). The refill from a real server is tests/tests/corrupt_refill.rs.

use fenlei_core::CoreError;
use fenlei_core::store::Store;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

fn filled_store(path: &Path) {
    let store = Store::open(path).unwrap();
    store
        .import_communities_csv(fenlei_core::sample::CITY_CSV.as_bytes())
        .unwrap();
    store
        .import_standard(fenlei_core::sample::STANDARD_TOML)
        .unwrap();
    // Dropping the store closes the last connection: SQLite checkpoints the WAL into the file.
}

fn overwrite(path: &Path, offset: u64, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(bytes).unwrap();
    f.sync_all().unwrap();
}

fn kept_aside(err: CoreError, dir: &Path, original: &[u8]) -> std::path::PathBuf {
    let CoreError::CorruptDatabase { kept_as, reason } = err else {
        panic!("expected CorruptDatabase, got {err:?}");
    };
    assert!(!reason.is_empty());
    let kept = std::path::PathBuf::from(&kept_as);
    assert_eq!(kept.parent().unwrap(), dir);
    assert_eq!(
        std::fs::read(&kept).unwrap(),
        original,
        "kept byte for byte"
    );
    kept
}

fn open_err(path: &Path) -> CoreError {
    match Store::open(path) {
        Ok(_) => panic!("a damaged file opened"),
        Err(e) => e,
    }
}

#[test]
fn a_damaged_header_is_reported_kept_aside_and_a_fresh_store_opens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("device.sqlite");
    filled_store(&path);
    overwrite(&path, 0, b"this is not an SQLite header");
    let damaged = std::fs::read(&path).unwrap();

    let kept = kept_aside(open_err(&path), dir.path(), &damaged);
    assert!(!path.exists(), "the damaged file moved away");

    // The same path is now a fresh, empty store with a new device id.
    let fresh = Store::open(&path).unwrap();
    assert_eq!(fresh.community_count().unwrap(), 0);
    drop(fresh);
    assert!(kept.exists(), "the kept copy is never deleted");
}

#[test]
fn a_damaged_page_is_found_by_quick_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("device.sqlite");
    filled_store(&path);
    let page_size = {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.query_row("PRAGMA page_size", [], |r| r.get::<_, u64>(0))
            .unwrap()
    };
    let len = std::fs::metadata(&path).unwrap().len();
    assert!(len > page_size * 8, "the sample data spans many pages");
    // Garbage over a b-tree page in the middle of the file; the header stays valid.
    let page = len / page_size / 2;
    overwrite(&path, page * page_size, &vec![0xA5; page_size as usize]);
    let damaged = std::fs::read(&path).unwrap();

    kept_aside(open_err(&path), dir.path(), &damaged);
    Store::open(&path).unwrap();
}

#[test]
fn the_wal_moves_with_the_damaged_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("device.sqlite");
    filled_store(&path);
    let wal = dir.path().join("device.sqlite-wal");
    // A WAL as a killed app leaves it (its content does not matter: the header is damaged).
    std::fs::write(&wal, b"not really a wal").unwrap();
    overwrite(&path, 0, &[0u8; 100]);
    let damaged = std::fs::read(&path).unwrap();

    let kept = kept_aside(open_err(&path), dir.path(), &damaged);
    assert!(!wal.exists());
    let kept_wal = format!("{}-wal", kept.display());
    assert_eq!(std::fs::read(kept_wal).unwrap(), b"not really a wal");
}

#[test]
fn a_second_corruption_never_overwrites_the_first_kept_copy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("device.sqlite");
    let mut kept = Vec::new();
    for round in 0..2u8 {
        filled_store(&path);
        overwrite(&path, 0, &[round; 64]);
        let damaged = std::fs::read(&path).unwrap();
        kept.push(kept_aside(open_err(&path), dir.path(), &damaged));
    }
    assert_ne!(kept[0], kept[1]);
    assert!(kept.iter().all(|k| k.exists()));
}

#[test]
fn a_sound_store_opens_without_being_moved() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("device.sqlite");
    filled_store(&path);
    let store = Store::open(&path).unwrap();
    assert!(store.community_count().unwrap() >= 200);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains("corrupt")), "{names:?}");
}
