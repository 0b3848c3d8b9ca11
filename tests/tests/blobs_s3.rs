//! The S3 blob store against a real S3-compatible server (moto, `scripts/moto.sh`): staging in
//! chunk objects that outlive the store instance, racing appends at one offset settled by the
//! bucket's conditional create, multipart upload of big files, verification, and the sweep of
//! abandoned uploads. scripts/test.sh runs these with `--ignored` and `FENLEI_MOTO_SERVER` set.

use fenlei_core::protocol::media::MediaRendition;
use fenlei_e2e::moto::Moto;
use fenlei_server::blobs::{BlobStore, Finished, StagingKey, open_blob_store};
use fenlei_server::error::ServerError;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::sync::{Arc, Barrier};

fn sha(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A store on its own prefix of the test bucket; `instance` handles of one prefix share it like
/// two server processes would.
fn store(prefix: &str) -> Box<dyn BlobStore> {
    static SETUP: std::sync::Once = std::sync::Once::new();
    let moto = Moto::shared();
    SETUP.call_once(|| {
        Moto::set_credentials();
        moto.create_bucket("fenlei-blobs");
    });
    open_blob_store(
        std::path::Path::new("/nonexistent"),
        Some(&moto.blobs_url("fenlei-blobs", prefix)),
    )
    .expect("open the S3 store")
}

/// Pseudo-random bytes (JPEG-like size, incompressible).
fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn original(data: &[u8]) -> StagingKey {
    let h = sha(data);
    StagingKey::new(&h, MediaRendition::Original, &h).unwrap()
}

fn read_all(store: &dyn BlobStore, blob: &str) -> Vec<u8> {
    let mut out = Vec::new();
    store
        .open(blob)
        .unwrap()
        .expect("kept")
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[test]
#[ignore = "needs moto: scripts/test.sh runs it (FENLEI_MOTO_SERVER)"]
fn staging_outlives_the_instance_and_only_verified_bytes_are_kept() {
    let data = bytes(300_000, 1);
    let key = original(&data);
    let a = store("resume");
    assert_eq!(a.staged_len(&key).unwrap(), 0);
    assert_eq!(a.append(&key, 0, &data[..100_000]).unwrap(), 100_000);
    a.flush(&key).unwrap();
    drop(a);

    // Another instance (or this one restarted) sees the staged bytes and refuses a wrong offset.
    let b = store("resume");
    assert_eq!(b.staged_len(&key).unwrap(), 100_000);
    assert!(matches!(
        b.append(&key, 50_000, &data[50_000..]),
        Err(ServerError::Conflict(_))
    ));
    assert_eq!(b.append(&key, 100_000, &data[100_000..]).unwrap(), 300_000);
    assert_eq!(b.has(&key.blob).unwrap(), None);
    assert_eq!(b.finish(&key).unwrap(), Finished::Stored(300_000));
    assert_eq!(b.staged_len(&key).unwrap(), 0);
    assert_eq!(b.has(&key.blob).unwrap(), Some(300_000));
    assert_eq!(read_all(b.as_ref(), &key.blob), data);
    // A second upload of the same file keeps the blob already there.
    b.append(&key, 0, &data).unwrap();
    assert_eq!(b.finish(&key).unwrap(), Finished::Stored(300_000));

    // Wrong bytes under a hash are dropped, and nothing appears under its name.
    let claimed = bytes(1000, 2);
    let key = original(&claimed);
    b.append(&key, 0, &bytes(1000, 3)).unwrap();
    assert!(matches!(
        b.finish(&key).unwrap(),
        Finished::HashMismatch { .. }
    ));
    assert_eq!(b.staged_len(&key).unwrap(), 0);
    assert_eq!(b.has(&key.blob).unwrap(), None);
    assert!(b.open(&key.blob).unwrap().is_none());
    assert!(b.has("../../x").is_err());
}

#[test]
#[ignore = "needs moto: scripts/test.sh runs it (FENLEI_MOTO_SERVER)"]
fn racing_appends_at_one_offset_keep_one() {
    // Two instances, one after the other at the same offset: the second is refused and the
    // first one's bytes stay.
    let a = store("race");
    let b = store("race");
    let data = bytes(50_000, 4);
    let key = original(&data);
    a.append(&key, 0, &data[..20_000]).unwrap();
    match b.append(&key, 0, &bytes(30_000, 5)) {
        Err(ServerError::Conflict(_)) => {}
        other => panic!("a second append at 0 must be refused: {other:?}"),
    }
    assert_eq!(b.staged_len(&key).unwrap(), 20_000);
    b.append(&key, 20_000, &data[20_000..]).unwrap();
    assert_eq!(a.finish(&key).unwrap(), Finished::Stored(50_000));
    assert_eq!(read_all(a.as_ref(), &key.blob), data);

    // At the same moment: two threads, two store instances, the same offset, other bytes. The
    // bucket's conditional create keeps exactly one chunk. (moto checks If-None-Match without
    // a lock, so on moto a tie is possible in theory; finishing then still keeps only bytes that
    // hash right, which is asserted too.)
    let (a, b): (Arc<dyn BlobStore>, Arc<dyn BlobStore>) =
        (Arc::from(store("race2")), Arc::from(store("race2")));
    let mut single_winner = 0;
    for round in 0..12u64 {
        let data = bytes(40_000, 100 + round);
        let key = original(&data);
        let barrier = Arc::new(Barrier::new(2));
        let racers: Vec<_> = [
            (a.clone(), data.clone()),
            (b.clone(), bytes(40_000, 900 + round)),
        ]
        .into_iter()
        .map(|(store, body)| {
            let (barrier, key) = (barrier.clone(), key.clone());
            std::thread::spawn(move || {
                barrier.wait();
                store.append(&key, 0, &body)
            })
        })
        .collect();
        let results: Vec<_> = racers.into_iter().map(|t| t.join().unwrap()).collect();
        let won = results.iter().filter(|r| r.is_ok()).count();
        assert!(won >= 1, "round {round}: {results:?}");
        for r in &results {
            assert!(
                matches!(r, Ok(40_000) | Err(ServerError::Conflict(_))),
                "{r:?}"
            );
        }
        single_winner += usize::from(won == 1);
        // Whoever won, only the genuine bytes are ever kept.
        match a.finish(&key).unwrap() {
            Finished::Stored(n) => {
                assert_eq!(n, 40_000);
                assert_eq!(read_all(a.as_ref(), &key.blob), data);
            }
            Finished::HashMismatch { .. } => assert_eq!(a.has(&key.blob).unwrap(), None),
        }
        assert_eq!(a.staged_len(&key).unwrap(), 0);
    }
    assert!(
        single_winner >= 10,
        "{single_winner} of 12 rounds had one winner"
    );
}

#[test]
#[ignore = "needs moto: scripts/test.sh runs it (FENLEI_MOTO_SERVER)"]
fn big_files_go_up_in_parts_and_a_mismatch_keeps_nothing() {
    let s = store("big");
    // 20 MiB in uneven appends: finished as a multipart upload.
    let data = bytes(20 << 20, 6);
    let key = original(&data);
    let mut at = 0;
    for len in [5 << 20, 7 << 20, 3 << 20, 5 << 20] {
        at = s
            .append(&key, at, &data[at as usize..at as usize + len])
            .unwrap();
    }
    assert_eq!(s.staged_len(&key).unwrap(), 20 << 20);
    assert_eq!(s.finish(&key).unwrap(), Finished::Stored(20 << 20));
    assert_eq!(s.has(&key.blob).unwrap(), Some(20 << 20));
    assert_eq!(sha(&read_all(s.as_ref(), &key.blob)), key.blob);

    // 12 MiB claiming another hash: the multipart upload is aborted, the name stays free.
    let claimed = bytes(12 << 20, 7);
    let key = original(&claimed);
    let mut forged = claimed.clone();
    forged[6 << 20] ^= 1;
    s.append(&key, 0, &forged[..9 << 20]).unwrap();
    s.append(&key, 9 << 20, &forged[9 << 20..]).unwrap();
    assert!(matches!(
        s.finish(&key).unwrap(),
        Finished::HashMismatch { .. }
    ));
    assert_eq!(s.has(&key.blob).unwrap(), None);
    assert_eq!(s.staged_len(&key).unwrap(), 0);
}

#[test]
#[ignore = "needs moto: scripts/test.sh runs it (FENLEI_MOTO_SERVER)"]
fn abandoned_uploads_are_swept() {
    let s = store("sweep");
    let (d1, d2) = (bytes(1000, 8), bytes(1000, 9));
    let (k1, k2) = (original(&d1), original(&d2));
    s.append(&k1, 0, &d1[..500]).unwrap();
    s.append(&k1, 500, &d1[500..700]).unwrap();
    s.append(&k2, 0, &d2[..10]).unwrap();
    assert_eq!(
        s.sweep_staging(std::time::Duration::from_secs(3600))
            .unwrap(),
        0
    );
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(
        s.sweep_staging(std::time::Duration::from_millis(1))
            .unwrap(),
        2
    );
    assert_eq!(s.staged_len(&k1).unwrap(), 0);
    assert_eq!(s.staged_len(&k2).unwrap(), 0);
}

#[test]
#[ignore = "needs moto: scripts/test.sh runs it (FENLEI_MOTO_SERVER)"]
fn a_missing_bucket_fails_at_start() {
    let moto = Moto::shared();
    Moto::set_credentials();
    let err = open_blob_store(
        std::path::Path::new("/nonexistent"),
        Some(&moto.blobs_url("no-such-bucket-here", "")),
    )
    .err()
    .expect("a missing bucket is an error at start-up");
    assert!(err.to_string().contains("no-such-bucket-here"), "{err}");
}
