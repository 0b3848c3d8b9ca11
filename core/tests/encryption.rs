//! Encryption at rest: a canary written to an encrypted store is nowhere on disk (database,
//! WAL, shared memory, temp files), while the same canary in a plain store is found by the same
//! scan; wrong keys are a typed error (and print nothing); re-keying keeps the data; a plain
//! store is converted in place, leaving no plaintext, and a failed conversion changes nothing.

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

// ----- child processes: stderr capture and a file-size limit are per process -----------------

const CHILD_ENV: &str = "FENLEI_ENCRYPTION_CHILD";

/// Runs this test binary again as a child doing `case` (see `child_process_entry`); returns
/// its exit success, stdout and stderr.
fn run_child(case: &str, path: &Path) -> (bool, String, String) {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, case)
        .env("FENLEI_CHILD_PATH", path)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Does nothing in a normal run; in a child started by `run_child` it runs one case and prints
/// `CHILD-RESULT <what happened>` on stdout.
#[test]
fn child_process_entry() {
    let Ok(case) = std::env::var(CHILD_ENV) else {
        return;
    };
    let path = PathBuf::from(std::env::var("FENLEI_CHILD_PATH").unwrap());
    let result = match case.as_str() {
        // The first keyed connection of this process uses a wrong key.
        "wrong_key" => match Store::open_encrypted(&path, &[0x11; 32]) {
            Err(CoreError::WrongKey) => "WrongKey".to_string(),
            Err(e) => format!("other error: {e}"),
            Ok(_) => "opened".to_string(),
        },
        // The encrypted copy cannot grow past 64 KB, as on a full disk.
        "convert_on_full_disk" => {
            // SAFETY: this child's own limit and signal disposition.
            unsafe {
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                let mut lim = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &mut lim), 0);
                lim.rlim_cur = 64 * 1024;
                assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
            }
            match Store::encrypt_plain_store(&path, &KEY) {
                Err(e) => format!("failed: {e}"),
                Ok(_) => "converted".to_string(),
            }
        }
        other => panic!("unknown child case {other}"),
    };
    println!("CHILD-RESULT {result}");
}

#[test]
fn a_wrong_key_prints_nothing_on_stderr() {
    sqlite_tmp();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fenlei.sqlite");
    fill(&Store::open_encrypted(&path, &KEY).unwrap());
    let (ok, stdout, stderr) = run_child("wrong_key", &path);
    assert!(ok, "child failed: {stdout}\n{stderr}");
    assert!(stdout.contains("CHILD-RESULT WrongKey"), "{stdout}");
    // SQLCipher's default logging would print "… hmac check failed for pgno=1" here.
    assert_eq!(stderr, "", "stderr of a wrong-key open must be empty");
    // The store is untouched and opens with its key.
    assert!(Store::open_encrypted(&path, &KEY).is_ok());
}

/// Folds the WAL a closed store may leave (its last connection was a read-only one) into
/// the file, so the file alone holds everything.
fn checkpoint(path: &Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    drop(conn);
    assert!(!path.with_extension("sqlite-wal").exists());
}

/// Whether `file` holds `needle`.
fn holds(file: &Path, needle: &[u8]) -> bool {
    let bytes = std::fs::read(file).unwrap_or_default();
    bytes.windows(needle.len()).any(|w| w == needle)
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_plain_store_is_encrypted_in_place_and_no_plaintext_is_left() {
    let tmp = sqlite_tmp();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fenlei.sqlite");
    let plain = Store::open(&path).unwrap();
    let id = fill(&plain);
    let before = plain.inspection(&id).unwrap();
    let device = plain.device_id().to_string();
    let public_key = plain.device_public_key().unwrap();
    drop(plain);
    checkpoint(&path);
    assert!(
        holds(&path, CANARY.as_bytes()),
        "the plain store holds the canary"
    );
    // A handle on the plain file, to look at its old bytes after the rename.
    let mut old = std::fs::File::open(&path).unwrap();

    let store = Store::encrypt_plain_store(&path, &KEY).unwrap();
    assert!(store.is_encrypted());
    assert_eq!(store.device_id(), device, "same device: no new enrollment");
    assert_eq!(store.device_public_key().unwrap(), public_key);
    assert_eq!(store.inspection(&id).unwrap(), before);
    assert_eq!(store.community("CANARY-1").unwrap().name, CANARY);
    // Writes go on.
    store.import_standard(sample::STANDARD_NEXT_TOML).unwrap();
    assert_eq!(
        holders(&[dir.path(), &tmp], CANARY.as_bytes()),
        Vec::<PathBuf>::new()
    );
    drop(store);

    // No copy, no plaintext left: only the store's own files remain.
    for name in names_in(dir.path()) {
        assert!(
            ["fenlei.sqlite", "fenlei.sqlite-wal", "fenlei.sqlite-shm"].contains(&name.as_str()),
            "left behind: {name}"
        );
    }
    assert!(
        !std::fs::read(&path)
            .unwrap()
            .starts_with(b"SQLite format 3")
    );
    assert_eq!(
        holders(&[dir.path(), &tmp], CANARY.as_bytes()),
        Vec::<PathBuf>::new()
    );
    // The old file's bytes were overwritten before it was let go.
    let mut old_bytes = Vec::new();
    std::io::Read::read_to_end(&mut old, &mut old_bytes).unwrap();
    assert!(!old_bytes.is_empty() && old_bytes.iter().all(|b| *b == 0));

    // Calling again opens it (apps call this on every start); a wrong key is refused.
    let again = Store::encrypt_plain_store(&path, &KEY).unwrap();
    assert_eq!(again.inspection(&id).unwrap(), before);
    assert_eq!(again.standards().unwrap().len(), 2);
    drop(again);
    assert!(matches!(
        Store::encrypt_plain_store(&path, &[3; 32]),
        Err(CoreError::WrongKey)
    ));
    assert!(matches!(
        Store::encrypt_plain_store(&path, &[3; 8]),
        Err(CoreError::InvalidArgument(_))
    ));
    // No file yet: a new encrypted store.
    let fresh = Store::encrypt_plain_store(dir.path().join("new.sqlite"), &KEY).unwrap();
    assert!(fresh.is_encrypted());
}

#[test]
fn a_failed_conversion_leaves_the_plain_store_as_it_was() {
    sqlite_tmp();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fenlei.sqlite");
    let plain = Store::open(&path).unwrap();
    let id = fill(&plain);
    let before = plain.inspection(&id).unwrap();

    // Still open: refused, nothing changed, the open store goes on working.
    let Err(CoreError::InvalidArgument(msg)) = Store::encrypt_plain_store(&path, &KEY) else {
        panic!("converting an open store must fail");
    };
    assert!(msg.contains("close it"), "{msg}");
    plain.import_standard(sample::STANDARD_NEXT_TOML).unwrap();
    assert!(holds(&path, b"SQLite format 3"));
    drop(plain);
    checkpoint(&path);
    let bytes = std::fs::read(&path).unwrap();
    assert!(
        bytes.len() > 64 * 1024,
        "the test needs a store over the child's limit"
    );

    // Disk full half way through the copy (a child with a 64 KB file-size limit).
    let (ok, stdout, stderr) = run_child("convert_on_full_disk", &path);
    assert!(ok, "child failed: {stdout}\n{stderr}");
    assert!(
        stdout.contains("CHILD-RESULT failed: database error: database or disk is full")
            || stdout.contains("CHILD-RESULT failed: database error: disk I/O error"),
        "{stdout}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "plain file unchanged");
    // No partial copy left (SQLite's shared-memory index of the plain store may be).
    let names = names_in(dir.path());
    assert!(names.iter().all(|n| !n.contains("encrypting")), "{names:?}");
    assert!(names.contains(&"fenlei.sqlite".to_string()));
    let reopened = Store::open(&path).unwrap();
    assert!(!reopened.is_encrypted());
    assert_eq!(reopened.inspection(&id).unwrap(), before);
    assert_eq!(reopened.standards().unwrap().len(), 2);
    drop(reopened);

    // With space again, the same call converts it.
    let store = Store::encrypt_plain_store(&path, &KEY).unwrap();
    assert_eq!(store.inspection(&id).unwrap(), before);
    assert_eq!(store.standards().unwrap().len(), 2);
}
