//! Media sync against a real server process on loopback, with real JPEG photos (made here, plus
//! the shared corpus when present): order, Wi-Fi hold, download with access checks, a cut
//! connection and a cancel resumed from the server's offset (also across restarts of the app
//! and the server), and bad uploads refused.

mod common;

use common::*;
use fenlei_core::CoreError;
use fenlei_core::inspection::{InspectionKind, NewInspection};
use fenlei_core::media::MediaStore;
use fenlei_core::progress::{CancelToken, NoProgress, Progress};
use fenlei_core::protocol::media::*;
use fenlei_core::store::Store;
use fenlei_core::sync::media::{MediaSyncOptions, MediaSyncReport, NetworkKind};
use fenlei_core::sync::{SyncClient, SyncOptions};
use fenlei_e2e::photos::{corpus_jpegs, noisy_jpeg, wav_note, write_photo};
use fenlei_e2e::proxy::CutProxy;
use sha2::{Digest, Sha256};
use std::path::Path;

fn sha_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

struct Setup {
    dir: tempfile::TempDir,
    server: Server,
    insp: Device,
    media: MediaStore,
    sup: Device,
    other_sup: Device,
    other_insp: Device,
    inspection: String,
    item: String,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let (street, communities, district) = sample_places();
    let cs = fenlei_core::community::parse_csv(fenlei_core::sample::CITY_CSV.as_bytes()).unwrap();
    let other_district = cs
        .iter()
        .map(|c| c.district.clone())
        .find(|d| *d != district)
        .expect("the sample city has two districts");
    for (user, role) in [
        ("insp.a", "inspector"),
        ("insp.x", "inspector"),
        ("sup", "supervisor"),
        ("sup.other", "supervisor"),
    ] {
        server.admin(&["add-user", "--id", user, "--role", role]);
    }
    server.admin(&["assign", "--user", "insp.a", "--street", &street]);
    server.admin(&["assign", "--user", "insp.x", "--street", &other_street()]);
    server.admin(&["assign", "--user", "sup", "--district", &district]);
    server.admin(&[
        "assign",
        "--user",
        "sup.other",
        "--district",
        &other_district,
    ]);
    let insp = Device::enroll(&server, dir.path(), "insp.a");
    let sup = Device::enroll(&server, dir.path(), "sup");
    let other_sup = Device::enroll(&server, dir.path(), "sup.other");
    let other_insp = Device::enroll(&server, dir.path(), "insp.x");
    insp.sync();
    let inspection = insp
        .store
        .create_inspection(
            &NewInspection {
                community_id: communities[0].clone(),
                standard_id: "hohhot-residential".into(),
                standard_version: "2026.1".into(),
                kind: InspectionKind::DailyPatrol,
                co_inspectors: vec![],
            },
            "insp.a",
        )
        .unwrap();
    let item = insp
        .store
        .standard("hohhot-residential", "2026.1")
        .unwrap()
        .items()
        .next()
        .unwrap()
        .code
        .clone();
    let media = MediaStore::open(dir.path().join("insp-media")).unwrap();
    Setup {
        dir,
        server,
        insp,
        media,
        sup,
        other_sup,
        other_insp,
        inspection,
        item,
    }
}

impl Setup {
    fn attach(&self, path: &Path) -> fenlei_core::media::MediaRecord {
        self.insp
            .store
            .attach_photo(
                &self.media,
                &self.inspection,
                &self.item,
                path,
                None,
                "insp.a",
            )
            .unwrap()
            .record
    }

    fn media_sync(&self, client: &SyncClient, network: NetworkKind) -> MediaSyncReport {
        let report = client
            .sync_media(
                &self.insp.store,
                &self.media,
                &MediaSyncOptions {
                    network,
                    ..Default::default()
                },
                &NoProgress,
                &CancelToken::new(),
            )
            .expect("media sync");
        assert!(report.failed.is_empty(), "failed: {:?}", report.failed);
        report
    }

    /// The server's kept blobs, in the order they were completed.
    fn server_blobs(&self) -> Vec<(String, String)> {
        let conn =
            rusqlite::Connection::open(self.server.data.join("fenlei-server.sqlite")).unwrap();
        let mut stmt = conn
            .prepare("SELECT sha256, rendition FROM media_blobs ORDER BY rowid")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    }
}

fn get(device: &Device, sha: &str, rendition: &str) -> (u16, Option<String>, Vec<u8>) {
    let resp = reqwest::blocking::Client::new()
        .get(format!(
            "{}/v1/media/{sha}?rendition={rendition}",
            device.url
        ))
        .bearer_auth(&device.token)
        .send()
        .unwrap();
    let status = resp.status().as_u16();
    let ctype = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string());
    (status, ctype, resp.bytes().unwrap().to_vec())
}

#[test]
fn documents_then_thumbnails_then_renditions_originals_wait_for_wifi() {
    if common::skip_on_postgres(
        "reads the order blobs were completed in from the SQLite file's rowids",
    ) {
        return;
    }
    let s = setup();
    let mut photos = vec![
        write_photo(s.dir.path(), "a.jpg", 1600, 1200, 1),
        write_photo(s.dir.path(), "b.jpg", 1200, 1600, 2),
    ];
    photos.extend(corpus_jpegs());
    let records: Vec<_> = photos.iter().map(|p| s.attach(p)).collect();
    let note_path = s.dir.path().join("note.wav");
    std::fs::write(&note_path, wav_note(1500)).unwrap();
    let note = s
        .insp
        .store
        .attach_voice_note(
            &s.media,
            &s.inspection,
            &s.item,
            &note_path,
            Some("垃圾桶满溢".into()),
            "insp.a",
        )
        .unwrap()
        .record;

    // Before any sync the server refuses to even say whether it has the bytes.
    let (status, _, _) = get(&s.sup, &records[0].sha256, "thumb");
    assert_eq!(status, 403);

    // On mobile data: the document goes first, then thumbnails, renditions and the voice note;
    // photo originals stay on the phone.
    let client = s.insp.client();
    let r = s.media_sync(&client, NetworkKind::Cellular);
    assert_eq!(r.documents.as_ref().unwrap().documents_exchanged, 1);
    let n = records.len() as u32;
    assert_eq!(r.uploaded, 2 * n + 1, "{r:?}");
    assert_eq!(r.held_for_wifi, n);
    assert_eq!(r.held_bytes, records.iter().map(|m| m.bytes).sum::<u64>());
    let order = s.server_blobs();
    let ranks: Vec<&str> = order.iter().map(|(_, r)| r.as_str()).collect();
    let thumbs = n as usize;
    assert!(ranks[..thumbs].iter().all(|r| *r == "thumb"), "{ranks:?}");
    assert!(ranks[thumbs..].iter().all(|r| *r != "thumb"), "{ranks:?}");
    assert!(
        order.contains(&(note.sha256.clone(), "original".into())),
        "voice notes are not held for Wi-Fi"
    );

    // The supervisor of the district sees thumbnails and renditions, not yet the originals.
    let (status, ctype, bytes) = get(&s.sup, &records[0].sha256, "thumb");
    assert_eq!((status, ctype.as_deref()), (200, Some("image/jpeg")));
    let local_thumb = std::fs::read(
        s.media
            .resolve(&records[0].thumbnail.as_ref().unwrap().path),
    )
    .unwrap();
    assert_eq!(bytes, local_thumb);
    assert_eq!(get(&s.sup, &records[0].sha256, "upload").0, 200);
    assert_eq!(get(&s.sup, &records[0].sha256, "original").0, 404);
    let (status, ctype, bytes) = get(&s.sup, &note.sha256, "original");
    assert_eq!((status, ctype.as_deref()), (200, Some("audio/wav")));
    assert_eq!(bytes, std::fs::read(&note_path).unwrap());
    let states = s.insp.store.media_upload_states(&s.inspection).unwrap();
    assert!(
        states
            .iter()
            .any(|st| !st.done && st.note.as_deref() == Some("held for Wi-Fi"))
    );

    // On Wi-Fi the originals follow; nothing is sent twice.
    let r = s.media_sync(&client, NetworkKind::Wifi);
    assert_eq!(
        (r.uploaded, r.held_for_wifi, r.already_on_server),
        (n, 0, 0)
    );
    let order = s.server_blobs();
    assert!(
        order[order.len() - n as usize..]
            .iter()
            .all(|(_, r)| r == "original")
    );
    for (path, rec) in photos.iter().zip(&records) {
        let (status, ctype, bytes) = get(&s.sup, &rec.sha256, "original");
        assert_eq!((status, ctype.as_deref()), (200, Some("image/jpeg")));
        assert_eq!(sha_hex(&bytes), rec.sha256);
        assert_eq!(bytes, std::fs::read(path).unwrap());
    }
    assert!(
        s.insp
            .store
            .media_upload_states(&s.inspection)
            .unwrap()
            .iter()
            .all(|st| st.done)
    );
    let again = s.media_sync(&client, NetworkKind::Wifi);
    assert_eq!((again.uploaded, again.bytes_sent), (0, 0));

    // Access: another district's supervisor and another street's inspector are refused; an
    // unknown hash is refused the same way (no probing for what exists).
    assert_eq!(get(&s.other_sup, &records[0].sha256, "thumb").0, 403);
    assert_eq!(get(&s.other_insp, &records[0].sha256, "original").0, 403);
    assert_eq!(get(&s.sup, &sha_hex(b"nothing"), "original").0, 403);
    assert_eq!(get(&s.sup, "not-a-hash", "original").0, 400);
    assert_eq!(get(&s.sup, &records[0].sha256, "poster").0, 400);
    // The inspector's own device may fetch what its scope allows.
    assert_eq!(get(&s.insp, &records[0].sha256, "upload").0, 200);
    let unauth = reqwest::blocking::get(format!(
        "{}/v1/media/{}?rendition=thumb",
        s.sup.url, records[0].sha256
    ))
    .unwrap();
    assert_eq!(unauth.status().as_u16(), 401);
}

#[test]
fn an_upload_cut_mid_way_resumes_from_the_server_offset() {
    let s = setup();
    let photo = write_photo(s.dir.path(), "big.jpg", 2400, 1800, 7);
    let rec = s.attach(&photo);
    // Thumbnails and renditions first, directly.
    s.media_sync(&s.insp.client(), NetworkKind::Cellular);

    // The original through a proxy that drops the connection half-way through its bytes, sent
    // as one request so the cut lands inside it.
    let proxy = CutProxy::start(s.server.port);
    let client = SyncClient::with_options(
        &proxy.url(),
        &s.insp.token,
        SyncOptions {
            retry_base_ms: 50,
            ..Default::default()
        },
    )
    .unwrap();
    proxy.cut_after(rec.bytes / 2);
    let before = proxy.sent_up();
    let report = client
        .sync_media(
            &s.insp.store,
            &s.media,
            &MediaSyncOptions {
                network: NetworkKind::Wifi,
                chunk_bytes: 16 * 1024 * 1024,
                sync_documents_first: false,
                ..Default::default()
            },
            &NoProgress,
            &CancelToken::new(),
        )
        .expect("media sync survives the cut");
    let wire = proxy.sent_up() - before;
    assert_eq!(proxy.cuts(), 1);
    assert_eq!((report.uploaded, report.resumed), (1, 1), "{report:?}");
    // Resumed, not restarted: well under the 1.5× a restart from zero would send.
    assert!(
        wire < rec.bytes + rec.bytes / 5,
        "sent {wire} bytes for a {}-byte file",
        rec.bytes
    );
    let (status, _, bytes) = get(&s.sup, &rec.sha256, "original");
    assert_eq!(status, 200);
    assert_eq!(bytes, std::fs::read(&photo).unwrap());
}

/// Cancels the sync once the server confirmed `after` bytes.
struct CancelAfter {
    after: u64,
    cancel: CancelToken,
}

impl Progress for CancelAfter {
    fn on_progress(&self, done: u64, _total: u64) {
        if done >= self.after {
            self.cancel.cancel();
        }
    }
}

#[test]
fn a_cancelled_upload_resumes_after_app_and_server_restarts() {
    let mut s = setup();
    let photo = write_photo(s.dir.path(), "big.jpg", 2000, 1500, 9);
    let rec = s.attach(&photo);
    s.media_sync(&s.insp.client(), NetworkKind::Cellular);

    let options = MediaSyncOptions {
        network: NetworkKind::Wifi,
        chunk_bytes: 64 * 1024,
        ..Default::default()
    };
    let cancel = CancelToken::new();
    let stopper = CancelAfter {
        after: rec.bytes / 3,
        cancel: cancel.clone(),
    };
    let err = s
        .insp
        .client()
        .sync_media(&s.insp.store, &s.media, &options, &stopper, &cancel)
        .unwrap_err();
    assert!(matches!(err, CoreError::Cancelled), "{err:?}");

    // The server holds part of it, also after it restarts.
    s.server.restart();
    let status = status_of(&s.insp, &rec);
    assert_eq!(status.state, MediaState::Partial);
    assert!(status.offset >= rec.bytes / 3 && status.offset < rec.bytes);

    // The app restarts too (the store reopened), and resumes from the server's offset.
    let store_path = s.insp.store.path().to_path_buf();
    let store = Store::open(&store_path).unwrap();
    let media = MediaStore::open(s.dir.path().join("insp-media")).unwrap();
    let client = SyncClient::new(&s.server.url(), &s.insp.token).unwrap();
    let r = client
        .sync_media(&store, &media, &options, &NoProgress, &CancelToken::new())
        .unwrap();
    assert_eq!((r.uploaded, r.resumed), (1, 1));
    assert_eq!(r.bytes_sent, rec.bytes - status.offset);
    let (code, _, bytes) = get(&s.sup, &rec.sha256, "original");
    assert_eq!(code, 200);
    assert_eq!(sha_hex(&bytes), rec.sha256);
}

fn status_of(d: &Device, rec: &fenlei_core::media::MediaRecord) -> MediaItemStatus {
    let body = MediaStatusRequest {
        items: vec![MediaItemRef {
            sha256: rec.sha256.clone(),
            rendition: MediaRendition::Original,
            blob: rec.sha256.clone(),
            bytes: rec.bytes,
        }],
    };
    let resp = reqwest::blocking::Client::new()
        .post(format!("{}/v1/media/status", d.url))
        .bearer_auth(&d.token)
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let mut r: MediaStatusResponse = resp.json().unwrap();
    r.items.remove(0)
}

/// One raw upload request; its arguments are the route's path and query, one for one.
#[allow(clippy::too_many_arguments)]
fn put(
    d: &Device,
    sha: &str,
    rendition: &str,
    blob: &str,
    offset: u64,
    total: u64,
    ctype: &str,
    body: Vec<u8>,
) -> (u16, serde_json::Value) {
    let resp = reqwest::blocking::Client::new()
        .put(format!(
            "{}/v1/media/{sha}/{rendition}?blob={blob}&offset={offset}&total={total}",
            d.url
        ))
        .bearer_auth(&d.token)
        .header("content-type", ctype)
        .body(body)
        .send()
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(serde_json::Value::Null))
}

#[test]
fn bad_uploads_are_refused_with_typed_errors() {
    let s = setup();
    let photo = write_photo(s.dir.path(), "p.jpg", 800, 600, 3);
    let rec = s.attach(&photo);
    let real = std::fs::read(&photo).unwrap();
    let sha = rec.sha256.clone();
    let total = real.len() as u64;
    let jpeg = "image/jpeg";

    // Not synced yet: the server knows no inspection referencing the hash.
    assert_eq!(status_of(&s.insp, &rec).state, MediaState::NotReferenced);
    assert_eq!(
        put(
            &s.insp,
            &sha,
            "original",
            &sha,
            0,
            total,
            jpeg,
            real.clone()
        )
        .0,
        403
    );
    s.insp.sync();

    // Other bytes under the photo's hash: refused at the end, and nothing is kept.
    let mut forged = real.clone();
    let mid = forged.len() / 2;
    forged[mid] ^= 0xff;
    let (code, body) = put(&s.insp, &sha, "original", &sha, 0, total, jpeg, forged);
    assert_eq!((code, body["error"].as_str()), (422, Some("hash_mismatch")));
    assert_eq!(status_of(&s.insp, &rec).state, MediaState::Absent);
    assert_eq!(get(&s.sup, &sha, "original").0, 404);

    // A wrong offset says where to resume.
    assert_eq!(
        put(
            &s.insp,
            &sha,
            "original",
            &sha,
            0,
            total,
            jpeg,
            real[..1000].to_vec()
        )
        .0,
        200
    );
    let (code, body) = put(
        &s.insp,
        &sha,
        "original",
        &sha,
        5000,
        total,
        jpeg,
        real[5000..].to_vec(),
    );
    assert_eq!((code, body["offset"].as_u64()), (409, Some(1000)));
    // More bytes than declared, an absurd size, a foreign type, a non-JPEG rendition, bad names.
    let (code, _) = put(
        &s.insp,
        &sha,
        "original",
        &sha,
        1000,
        1500,
        jpeg,
        real[1000..].to_vec(),
    );
    assert_eq!(code, 413);
    assert_eq!(
        put(
            &s.insp,
            &sha,
            "thumb",
            &sha_hex(b"t"),
            0,
            100 << 20,
            jpeg,
            vec![0xFF; 10]
        )
        .0,
        413
    );
    assert_eq!(
        put(
            &s.insp,
            &sha,
            "original",
            &sha,
            0,
            total,
            "text/html",
            vec![1]
        )
        .0,
        415
    );
    // A rendition that is not a JPEG, under the thumbnail hash the document declares.
    let png = b"\x89PNG\r\n\x1a\nnot a jpeg".to_vec();
    let declared_thumb = rec.thumbnail.as_ref().unwrap().sha256.clone();
    let (code, _) = put(
        &s.insp,
        &sha,
        "thumb",
        &declared_thumb,
        0,
        png.len() as u64,
        jpeg,
        png,
    );
    assert_eq!(code, 415);
    assert_eq!(
        put(
            &s.insp,
            "..%2F..%2Fetc",
            "original",
            &sha,
            0,
            total,
            jpeg,
            vec![1]
        )
        .0,
        400
    );
    assert_eq!(
        put(
            &s.insp,
            &sha,
            "original",
            &sha_hex(b"x"),
            0,
            total,
            jpeg,
            vec![1]
        )
        .0,
        400
    );
    assert_eq!(
        put(&s.insp, &sha, "poster", &sha, 0, total, jpeg, vec![1]).0,
        400
    );
    // Another street's inspector may not upload bytes for this inspection's photo.
    assert_eq!(
        put(
            &s.other_insp,
            &sha,
            "original",
            &sha,
            0,
            total,
            jpeg,
            real.clone()
        )
        .0,
        403
    );

    // The device's own sync finishes the upload from where the server stands.
    let r = s.media_sync(&s.insp.client(), NetworkKind::Wifi);
    assert_eq!(r.uploaded, 3);
    assert_eq!(get(&s.sup, &sha, "original").2, real);
    // A thumbnail the document does not declare for the photo is refused before a byte is kept.
    let other = noisy_jpeg(64, 48, 5, 80);
    let (code, _) = put(
        &s.insp,
        &sha,
        "thumb",
        &sha_hex(&other),
        0,
        other.len() as u64,
        jpeg,
        other,
    );
    assert_eq!(code, 403);
    assert_eq!(
        get(&s.sup, &sha, "thumb").2,
        std::fs::read(s.media.resolve(&rec.thumbnail.as_ref().unwrap().path)).unwrap()
    );
}
