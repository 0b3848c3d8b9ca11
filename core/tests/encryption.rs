//! Encryption at rest: a canary written to an encrypted store is nowhere on disk (database,
//! WAL, shared memory, temp files), while the same canary in a plain store is found by the same
//! scan; wrong keys are a typed error; re-keying keeps the data.

mod common;

use common::*;
use fenlei_core::CoreError;
use fenlei_core::answer::AnswerValue;
use fenlei_core::community::Community;
use fenlei_core::geo::LatLon;
use fenlei_core::inspection::EditContext;
use fenlei_core::sample;
use fenlei_core::store::Store;
use std::path::{Path, PathBuf};
use std::sync::Once;

const CANARY: &str = "金丝雀小区CANARY-7f3a9c";
const KEY: [u8; 32] = [0x5a; 32];

/// SQLite's temp files go to SQLITE_TMPDIR: point it at a folder this test scans.
fn sqlite_tmp() -> PathBuf {
    static INIT: Once = Once::new();
    let dir = std::env::temp_dir().join(format!("fenlei-sqlite-tmp-{}", std::process::id()));
    INIT.call_once(|| {
        std::fs::create_dir_all(&dir).unwrap();
        // Set once, before any connection exists in this test binary.
        unsafe { std::env::set_var("SQLITE_TMPDIR", &dir) };
    });
    dir
}

fn fill(store: &Store) -> String {
    store.import_standard(sample::STANDARD_TOML).unwrap();
    store
        .import_communities_csv(sample::CITY_CSV.as_bytes())
        .unwrap();
    store
        .upsert_communities(&[Community {
            id: "CANARY-1".into(),
            name: CANARY.into(),
            district: "新城区".into(),
            street: "海拉尔东路街道".into(),
            committee: "幸福社区".into(),
            address: format!("{CANARY} 1号"),
            location: LatLon {
                lat: 40.85,
                lon: 111.68,
            },
            geofence_m: 150.0,
            property_manager: String::new(),
            households: 10,
        }])
        .unwrap();
    let id = store
        .create_inspection(&new_inspection(store, "CANARY-1"), "li.ming")
        .unwrap();
    let standard = store.standards().unwrap().remove(0);
    let standard = store.standard(&standard.id, &standard.version).unwrap();
    let ctx = EditContext::by("li.ming");
    // Many answers, so the WAL holds pages of the document and projection.
    for item in standard.items().take(20) {
        let mut a = answer(item, AnswerValue::Compliant);
        a.note = Some(format!("{CANARY} 垃圾满溢"));
        let _ = store.record_answer(&id, &a, &ctx);
    }
    // A big sort: would spill to a temp file if temp storage were on disk.
    let rows = store.list_inspections(&Default::default()).unwrap();
    assert!(!rows.is_empty());
    store.device_signing_key().unwrap();
    id
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Files (of the store's folder and SQLite's temp folder) holding `needle`.
fn holders(dirs: &[&Path], needle: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for d in dirs {
        for f in files_under(d) {
            let bytes = std::fs::read(&f).unwrap_or_default();
            if bytes.windows(needle.len()).any(|w| w == needle) {
                found.push(f);
            }
        }
    }
    found
}

#[test]
fn a_canary_in_an_encrypted_store_is_nowhere_on_disk_and_is_found_in_a_plain_one() {
    let tmp = sqlite_tmp();
    let dir = tempfile::tempdir().unwrap();
    let enc_dir = dir.path().join("enc");
    let plain_dir = dir.path().join("plain");
    std::fs::create_dir_all(&enc_dir).unwrap();
    std::fs::create_dir_all(&plain_dir).unwrap();

    let enc = Store::open_encrypted(enc_dir.join("fenlei.sqlite"), &KEY).unwrap();
    assert!(enc.is_encrypted());
    let enc_id = fill(&enc);
    let secret = enc.device_signing_key().unwrap().to_bytes();
    let plain = Store::open(plain_dir.join("fenlei.sqlite")).unwrap();
    fill(&plain);

    // Checked while both stores are open: the WAL and shared-memory files exist now.
    let wal = enc_dir.join("fenlei.sqlite-wal");
    assert!(wal.exists() && std::fs::metadata(&wal).unwrap().len() > 0);
    for needle in [
        CANARY.as_bytes(),
        b"CANARY-7f3a9c".as_slice(),
        "垃圾满溢".as_bytes(),
    ] {
        assert_eq!(holders(&[&enc_dir, &tmp], needle), Vec::<PathBuf>::new());
        assert!(
            !holders(&[&plain_dir], needle).is_empty(),
            "the scan finds the canary in a plain store"
        );
    }
    assert!(
        holders(&[&enc_dir, &tmp], &secret).is_empty(),
        "device key on disk"
    );
    // SQLite's file header (plain text in every SQLite file) is gone too.
    let header = std::fs::read(enc_dir.join("fenlei.sqlite")).unwrap();
    assert!(!header.starts_with(b"SQLite format 3"));

    drop(enc);
    // After close (WAL checkpointed into the file) still nothing.
    assert!(holders(&[&enc_dir, &tmp], CANARY.as_bytes()).is_empty());
    let again = Store::open_encrypted(enc_dir.join("fenlei.sqlite"), &KEY).unwrap();
    assert_eq!(again.community("CANARY-1").unwrap().name, CANARY);
    assert!(again.inspection(&enc_id).unwrap().answers.len() > 1);
}

#[test]
fn wrong_keys_are_a_typed_error_and_rekey_keeps_the_data() {
    sqlite_tmp();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fenlei.sqlite");
    let store = Store::open_encrypted(&path, &KEY).unwrap();
    let id = fill(&store);
    let before = store.inspection(&id).unwrap();
    let device = store.device_id().to_string();

    assert!(matches!(
        Store::open_encrypted(&path, &[1; 32]),
        Err(CoreError::WrongKey)
    ));
    assert!(matches!(
        Store::open_encrypted(&path, &[1; 16]),
        Err(CoreError::InvalidArgument(_))
    ));
    let new_key = [0xa5; 32];
    store.rekey(&new_key).unwrap();
    // Reads and writes go on with the new key on this handle.
    assert_eq!(store.inspection(&id).unwrap(), before);
    store.import_standard(sample::STANDARD_NEXT_TOML).unwrap();
    drop(store);
    assert!(matches!(
        Store::open_encrypted(&path, &KEY),
        Err(CoreError::WrongKey)
    ));
    let reopened = Store::open_encrypted(&path, &new_key).unwrap();
    assert_eq!(reopened.device_id(), device);
    assert_eq!(reopened.inspection(&id).unwrap(), before);
    assert_eq!(reopened.standards().unwrap().len(), 2);
    drop(reopened);

    // Without a key the file is not readable at all: it cannot be told from a damaged file, so
    // it is set aside like one (kept byte for byte, never deleted) and opens again with its key
    // once renamed back.
    let Err(CoreError::CorruptDatabase { kept_as, .. }) = Store::open(&path) else {
        panic!("an encrypted file opened without a key must not open");
    };
    assert!(!path.exists());
    for suffix in ["", "-wal", "-shm"] {
        let kept = format!("{kept_as}{suffix}");
        if std::path::Path::new(&kept).exists() {
            std::fs::rename(&kept, format!("{}{suffix}", path.display())).unwrap();
        }
    }
    let back = Store::open_encrypted(&path, &new_key).unwrap();
    assert_eq!(back.inspection(&id).unwrap(), before);
    drop(back);

    // A plain store cannot be opened with a key, nor re-keyed.
    let plain_path = dir.path().join("plain.sqlite");
    let plain = Store::open(&plain_path).unwrap();
    assert!(plain.rekey(&new_key).is_err());
    drop(plain);
    assert!(matches!(
        Store::open_encrypted(&plain_path, &KEY),
        Err(CoreError::WrongKey)
    ));
}
