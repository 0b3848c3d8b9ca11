//! Disk full, for files (docs/reliability.md). Without root no small file system can be
//! mounted, so the test lowers its own RLIMIT_FSIZE (with SIGXFSZ ignored, a write past the
//! limit fails with EFBIG, as a write to a full disk fails with ENOSPC): photo ingest and the
//! database's WAL then fail like on a full disk. Every step returns a typed error; no partial
//! file keeps a final name; after the limit is raised again ("space freed") nothing committed
//! is lost. One test in this file: the limit is per process.

use fenlei_core::CoreError;
use fenlei_core::answer::{AnswerValue, ItemAnswer};
use fenlei_core::inspection::{EditContext, InspectionKind, NewInspection};
use fenlei_core::media::MediaStore;
use fenlei_core::store::Store;
use std::path::{Path, PathBuf};

const BY: &str = "insp.full";

fn set_file_size_limit(bytes: u64) {
    // SAFETY: plain libc calls on this process's own limits and signal disposition.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &mut lim), 0);
        lim.rlim_cur = if bytes == u64::MAX {
            lim.rlim_max
        } else {
            bytes as libc::rlim_t
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
    }
}

/// A noisy 1024×768 JPEG: a few hundred KB.
fn big_photo(seed: u32) -> Vec<u8> {
    let (w, h) = (1024u16, 768u16);
    let mut x = seed.wrapping_mul(2654435761) | 1;
    let px: Vec<u8> = (0..w as usize * h as usize * 3)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 95)
        .encode(&px, w, h, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    out
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
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

/// A full disk shows as an i/o or database error, never a panic or another kind.
fn typed_full<T: std::fmt::Debug>(step: &str, r: fenlei_core::Result<T>) -> bool {
    match r {
        Ok(_) => false,
        Err(CoreError::Io(_) | CoreError::Database(_)) => true,
        Err(e) => panic!("{step}: expected a storage error, got {e:?}"),
    }
}

#[test]
fn writes_past_the_file_size_limit_fail_typed_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("device.sqlite");
    let media_root = dir.path().join("media");
    let store = Store::open(&path).unwrap();
    let media = MediaStore::open(&media_root).unwrap();
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
    let standard = store.standard("hohhot-residential", "2026.1").unwrap();
    let item = standard
        .items()
        .find(|i| {
            let a = ItemAnswer {
                item_code: i.code.clone(),
                value: AnswerValue::Compliant,
                sampled_units: None,
                note: Some("-".into()),
            };
            fenlei_core::scoring::validate_answer(&standard, &a).is_ok()
        })
        .unwrap()
        .code
        .clone();
    let ctx = EditContext::by(BY);
    let id = store
        .create_inspection(
            &NewInspection {
                community_id: community,
                standard_id: "hohhot-residential".into(),
                standard_version: "2026.1".into(),
                kind: InspectionKind::DailyPatrol,
                co_inspectors: vec![],
            },
            BY,
        )
        .unwrap();
    let photos: Vec<PathBuf> = (0..3)
        .map(|n| {
            let p = dir.path().join(format!("p{n}.jpg"));
            std::fs::write(&p, big_photo(n)).unwrap();
            p
        })
        .collect();
    let first = store
        .attach_photo(&media, &id, &item, &photos[0], None, BY)
        .unwrap();
    let answer = |note: &str| ItemAnswer {
        item_code: item.clone(),
        value: AnswerValue::Compliant,
        sampled_units: None,
        note: Some(note.to_string()),
    };
    store
        .record_answer(&id, &answer("before the limit"), &ctx)
        .unwrap();
    let photo_bytes = std::fs::metadata(&photos[1]).unwrap().len();
    let before: Vec<PathBuf> = files_under(&media_root);

    // "The disk is full": no file may grow past 64 KB (the photos are larger).
    set_file_size_limit(64 * 1024);
    let attach = store.attach_photo(&media, &id, &item, &photos[1], None, BY);
    let refused = typed_full("attach_photo", attach);
    // Notes: a few KB each; the WAL grows until it hits the limit too.
    let mut committed = vec!["before the limit".to_string()];
    let mut answer_refused = false;
    for n in 0..2000 {
        let note = format!("n{n}-{}", "x".repeat(2000));
        let r = store.record_answer(&id, &answer(&note), &ctx);
        if typed_full("record_answer", r) {
            answer_refused = true;
            break;
        }
        committed.push(note);
    }
    set_file_size_limit(u64::MAX);
    assert!(refused, "a {photo_bytes}-byte photo cannot be stored");
    assert!(answer_refused, "the database hit the limit too");
    // No partial file under a final name, no temp file left: the media folder is as before.
    assert_eq!(files_under(&media_root), before);

    // Space freed: everything committed is there, and the same writes now work.
    drop(store);
    let store = Store::open(&path).unwrap();
    let c = rusqlite::Connection::open(&path).unwrap();
    let ok: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    let i = store.inspection(&id).unwrap();
    assert!(i.evidence.iter().any(|e| e.sha256 == first.record.sha256));
    let last = committed.last().unwrap();
    eprintln!(
        "limit hit after {} answers; photo of {photo_bytes} bytes refused",
        committed.len() - 1
    );
    assert_eq!(i.answers[0].answer.note.as_ref(), Some(last));
    store
        .attach_photo(&media, &id, &item, &photos[1], None, BY)
        .unwrap();
    store
        .attach_photo(&media, &id, &item, &photos[2], None, BY)
        .unwrap();
}
