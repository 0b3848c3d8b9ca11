//! Media sync benchmark: an upload cut at 50 % and resumed — bytes on the wire in total against
//! the file's size — beside the baseline in the same run: a client that restarts from zero
//! after a cut (what the brief's anchors do), i.e. the cut attempt plus a whole upload.
//! Bytes are counted by a TCP proxy between the device and a real server process (request
//! lines, headers and bodies: everything the phone would pay for).
//! Run: cargo bench -p fenlei-e2e --bench media_sync

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use fenlei_core::inspection::{InspectionKind, NewInspection};
use fenlei_core::media::MediaStore;
use fenlei_core::progress::{CancelToken, NoProgress};
use fenlei_core::sync::SyncClient;
use fenlei_core::sync::media::{MediaSyncOptions, NetworkKind};
use fenlei_e2e::photos::{corpus_jpegs, write_photo};
use fenlei_e2e::proxy::CutProxy;
use std::path::{Path, PathBuf};

use std::time::Instant;

struct Case {
    name: String,
    path: PathBuf,
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let (street, communities, _) = sample_places();
    server.admin(&["add-user", "--id", "insp", "--role", "inspector"]);
    server.admin(&["assign", "--user", "insp", "--street", &street]);
    let dev = Device::enroll(&server, dir.path(), "insp");
    dev.sync();
    let media = MediaStore::open(dir.path().join("media")).unwrap();
    let inspection = dev
        .store
        .create_inspection(
            &NewInspection {
                community_id: communities[0].clone(),
                standard_id: "hohhot-residential".into(),
                standard_version: "2026.1".into(),
                kind: InspectionKind::DailyPatrol,
                co_inspectors: vec![],
            },
            "insp",
        )
        .unwrap();
    let item = dev
        .store
        .standard("hohhot-residential", "2026.1")
        .unwrap()
        .items()
        .next()
        .unwrap()
        .code
        .clone();

    let mut cases = vec![Case {
        name: "generated 3264×2448 JPEG".into(),
        path: write_photo(dir.path(), "gen8mp.jpg", 3264, 2448, 11),
    }];
    if let Some(p) = corpus_jpegs()
        .into_iter()
        .find(|p| p.ends_with("iphone6_gps.jpg"))
    {
        cases.push(Case {
            name: "phone/iphone6_gps.jpg".into(),
            path: p,
        });
    }
    // Each case is attached once per mode, as different bytes (the second copy has two bytes
    // after its end marker: the same picture, another hash), so the server holds none of them.
    let mut rows = Vec::new();
    for (n, case) in cases.iter().enumerate() {
        for (m, (label, chunk)) in [
            ("one request", 64 * 1024 * 1024),
            ("512 KiB chunks", 512 * 1024),
        ]
        .into_iter()
        .enumerate()
        {
            let mut bytes = std::fs::read(&case.path).unwrap();
            bytes.extend(std::iter::repeat_n(0u8, m));
            let copy = dir.path().join(format!("case{n}-{m}.jpg"));
            std::fs::write(&copy, &bytes).unwrap();
            let target = dev
                .store
                .attach_photo(&media, &inspection, &item, &copy, None, "insp")
                .unwrap()
                .record;
            // Thumbnail and rendition go first, uncounted.
            dev.client()
                .sync_media(
                    &dev.store,
                    &media,
                    &MediaSyncOptions {
                        network: NetworkKind::Cellular,
                        ..Default::default()
                    },
                    &NoProgress,
                    &CancelToken::new(),
                )
                .unwrap();
            let proxy = CutProxy::start(server.port);
            let client = SyncClient::new(&proxy.url(), &dev.token).unwrap();
            proxy.cut_after(target.bytes / 2);
            let start = Instant::now();
            let report = client
                .sync_media(
                    &dev.store,
                    &media,
                    &MediaSyncOptions {
                        network: NetworkKind::Wifi,
                        chunk_bytes: chunk,
                        sync_documents_first: false,
                        ..Default::default()
                    },
                    &NoProgress,
                    &CancelToken::new(),
                )
                .unwrap();
            let elapsed = start.elapsed();
            assert_eq!(proxy.cuts(), 1);
            assert_eq!((report.uploaded, report.resumed), (1, 1), "{report:?}");
            rows.push((
                case.name.clone(),
                label,
                target.bytes,
                proxy.sent_up(),
                elapsed.as_secs_f64() * 1000.0,
            ));
        }
    }

    // Baseline: restart from zero = the cut attempt (half the file) + a whole upload. Both
    // measured on the wire: a whole upload of a fresh file of the same size through the proxy.
    println!(
        "\nUpload cut at 50 % and resumed (bytes client→server incl. HTTP, counted at a proxy)\n"
    );
    println!(
        "| photo | mode | file bytes | sent, resumed | ratio | sent, restart from zero (baseline) | ratio | resumed ÷ baseline |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for (name, label, file, sent, _ms) in &rows {
        let whole =
            whole_upload_bytes(&dev, &media, &inspection, &item, dir.path(), *file, &server);
        let baseline = file / 2 + whole;
        println!(
            "| {name} | {label} | {file} | {sent} | {:.3} | {baseline} | {:.3} | {:.3} |",
            *sent as f64 / *file as f64,
            baseline as f64 / *file as f64,
            *sent as f64 / baseline as f64
        );
    }
}

/// Bytes on the wire for a whole, uncut upload of a fresh photo file of `size` bytes.
fn whole_upload_bytes(
    dev: &Device,
    media: &MediaStore,
    inspection: &str,
    item: &str,
    dir: &Path,
    size: u64,
    server: &Server,
) -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(100);
    let n = N.fetch_add(1, Ordering::SeqCst);
    // A real JPEG padded after its end marker to exactly `size` bytes.
    let mut bytes = fenlei_e2e::photos::noisy_jpeg(320, 240, n, 80);
    assert!((bytes.len() as u64) < size);
    bytes.resize(size as usize, 0);
    let path = dir.join(format!("whole{n}.jpg"));
    std::fs::write(&path, &bytes).unwrap();
    dev.store
        .attach_photo(media, inspection, item, &path, None, "insp")
        .unwrap();
    let options = |network| MediaSyncOptions {
        network,
        chunk_bytes: 64 * 1024 * 1024,
        sync_documents_first: false,
        ..Default::default()
    };
    dev.client()
        .sync_media(
            &dev.store,
            media,
            &MediaSyncOptions {
                sync_documents_first: true,
                ..options(NetworkKind::Cellular)
            },
            &NoProgress,
            &CancelToken::new(),
        )
        .unwrap();
    let proxy = CutProxy::start(server.port);
    let client = SyncClient::new(&proxy.url(), &dev.token).unwrap();
    let r = client
        .sync_media(
            &dev.store,
            media,
            &options(NetworkKind::Wifi),
            &NoProgress,
            &CancelToken::new(),
        )
        .unwrap();
    assert_eq!(r.uploaded, 1);
    proxy.sent_up()
}
