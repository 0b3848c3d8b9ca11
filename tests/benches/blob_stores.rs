//! Blob store throughput: photos uploaded the way the route does it (appends of 512 KiB, the
//! client's default request size, then `finish`: SHA-256 check and keep) and read back whole,
//! in the S3 store on moto (`scripts/moto.sh`) beside the baseline in the same run, the data
//! folder. Both on this machine: the S3 figure is the cost of the object-store path and of moto
//! (a Python server), not of a network.
//! Run: scripts/bench-blobs.sh (sets FENLEI_MOTO_SERVER)

use fenlei_core::protocol::media::MediaRendition;
use fenlei_e2e::moto::Moto;
use fenlei_server::blobs::{BlobStore, Finished, StagingKey, open_blob_store};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::time::Instant;

const PHOTOS: usize = 12;
const PHOTO_BYTES: usize = 4 << 20;
const CHUNK: usize = 512 << 10;

fn photo(seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..PHOTO_BYTES)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Upload and download throughput in MB/s.
fn run(store: &dyn BlobStore, photos: &[(String, Vec<u8>)]) -> (f64, f64) {
    let mb = (photos.len() * PHOTO_BYTES) as f64 / 1e6;
    let t = Instant::now();
    for (h, data) in photos {
        let key = StagingKey::new(h, MediaRendition::Original, h).unwrap();
        let mut at = 0u64;
        for chunk in data.chunks(CHUNK) {
            at = store.append(&key, at, chunk).unwrap();
        }
        store.flush(&key).unwrap();
        assert_eq!(
            store.finish(&key).unwrap(),
            Finished::Stored(data.len() as u64)
        );
    }
    let up = mb / t.elapsed().as_secs_f64();
    let t = Instant::now();
    for (h, data) in photos {
        let mut back = Vec::with_capacity(data.len());
        store
            .open(h)
            .unwrap()
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back.len(), data.len());
    }
    (up, mb / t.elapsed().as_secs_f64())
}

fn main() {
    let photos: Vec<(String, Vec<u8>)> = (0..PHOTOS as u64)
        .map(|i| {
            let data = photo(i + 1);
            let h: String = Sha256::digest(&data)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            (h, data)
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let folder = open_blob_store(dir.path(), None).unwrap();
    let moto = Moto::start();
    Moto::set_credentials();
    moto.create_bucket("fenlei-bench");
    let s3 = open_blob_store(dir.path(), Some(&moto.blobs_url("fenlei-bench", "bench"))).unwrap();

    let (fu, fd) = run(folder.as_ref(), &photos);
    let (su, sd) = run(s3.as_ref(), &photos);
    println!(
        "{PHOTOS} photos × {} MiB, appended in {} KiB chunks, then read back\n",
        PHOTO_BYTES >> 20,
        CHUNK >> 10
    );
    println!("| store | upload MB/s | ratio | download MB/s | ratio |");
    println!("|---|---:|---:|---:|---:|");
    println!("| data folder (baseline) | {fu:.1} | 1.00 | {fd:.1} | 1.00 |");
    println!(
        "| S3 on moto (loopback) | {su:.1} | {:.2} | {sd:.1} | {:.2} |",
        su / fu,
        sd / fd
    );
}
