//! Hostile clients against the media routes (docs/media-sync.md), on a real server process over
//! real HTTP: each test is one attack and the answer the server must give. The honest devices use
//! the reference client (`SyncClient::sync_media`); the attackers are enrolled devices of real
//! users sending what a modified app could.

mod common;

use common::*;
use fenlei_core::inspection::{EvidenceRef, InspectionKind, MediaKind, NewInspection};
use fenlei_core::media::{MediaRecord, MediaStore};
use fenlei_core::progress::{CancelToken, NoProgress};
use fenlei_core::protocol::media::*;
use fenlei_core::sync::media::{MediaSyncOptions, MediaSyncReport, NetworkKind};
use fenlei_e2e::photos::{noisy_jpeg, write_photo};
use sha2::{Digest, Sha256};
use std::path::Path;

fn sha_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A server with the sample city and these users: `insp.a` (the honest inspector) and `insp.b`
/// on one street, `insp.x` on a street of another district; `sup` supervises the first
/// district, `sup.x` the other.
struct World {
    dir: tempfile::TempDir,
    server: Server,
    /// Two communities of the honest street, one of the other district.
    ours: Vec<String>,
    theirs: String,
}

fn world(env: &[(&str, &str)]) -> World {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with_env(&dir.path().join("server"), env);
    let (street, ours, district) = sample_places();
    let cs = fenlei_core::community::parse_csv(fenlei_core::sample::CITY_CSV.as_bytes()).unwrap();
    let other = cs
        .iter()
        .find(|c| c.district != district)
        .expect("the sample city has two districts");
    for (user, role) in [
        ("insp.a", "inspector"),
        ("insp.b", "inspector"),
        ("insp.x", "inspector"),
        ("sup", "supervisor"),
        ("sup.x", "supervisor"),
    ] {
        server.admin(&["add-user", "--id", user, "--role", role]);
    }
    for (user, kind, value) in [
        ("insp.a", "--street", street.as_str()),
        ("insp.b", "--street", street.as_str()),
        ("insp.x", "--street", other.street.as_str()),
        ("sup", "--district", district.as_str()),
        ("sup.x", "--district", other.district.as_str()),
    ] {
        server.admin(&["assign", "--user", user, kind, value]);
    }
    World {
        dir,
        server,
        ours,
        theirs: other.id.clone(),
    }
}

impl World {
    fn device(&self, user: &str) -> Device {
        let d = Device::enroll(&self.server, self.dir.path(), user);
        d.sync();
        d
    }

    fn media(&self, name: &str) -> MediaStore {
        MediaStore::open(self.dir.path().join(name)).unwrap()
    }
}

fn inspection(d: &Device, community: &str) -> (String, String) {
    let id = d
        .store
        .create_inspection(
            &NewInspection {
                community_id: community.to_string(),
                standard_id: "hohhot-residential".into(),
                standard_version: "2026.1".into(),
                kind: InspectionKind::DailyPatrol,
                co_inspectors: vec![],
            },
            &d.user,
        )
        .unwrap();
    let item = d
        .store
        .standard("hohhot-residential", "2026.1")
        .unwrap()
        .items()
        .next()
        .unwrap()
        .code
        .clone();
    (id, item)
}

/// Puts a hash into one's own inspection without holding its bytes (what a modified app can do).
fn claim(d: &Device, inspection: &str, item: &str, sha: &str, thumb: Option<&str>) {
    d.store
        .add_evidence(
            inspection,
            &EvidenceRef {
                sha256: sha.to_string(),
                item_code: item.to_string(),
                media: MediaKind::Photo,
                added_by: d.user.clone(),
                at_ms: d.store.now_ms(),
                thumb: thumb.map(str::to_string),
                upload: None,
                device_id: String::new(),
            },
        )
        .unwrap();
}

fn attach(
    d: &Device,
    media: &MediaStore,
    inspection: &str,
    item: &str,
    path: &Path,
) -> MediaRecord {
    d.store
        .attach_photo(media, inspection, item, path, None, &d.user)
        .unwrap()
        .record
}

fn media_sync(d: &Device, media: &MediaStore, network: NetworkKind) -> MediaSyncReport {
    let report = d
        .client()
        .sync_media(
            &d.store,
            media,
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

/// `GET /v1/media/{sha}?rendition=…[&blob=…]`: status, body, and the error word if any.
fn get(d: &Device, sha: &str, rendition: &str, blob: Option<&str>) -> (u16, Vec<u8>, String) {
    let mut url = format!("{}/v1/media/{sha}?rendition={rendition}", d.url);
    if let Some(b) = blob {
        url.push_str(&format!("&blob={b}"));
    }
    let resp = reqwest::blocking::Client::new()
        .get(url)
        .bearer_auth(&d.token)
        .send()
        .unwrap();
    let status = resp.status().as_u16();
    let body = resp.bytes().unwrap().to_vec();
    let word = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or_default();
    (status, body, word)
}

/// One raw upload request.
#[allow(clippy::too_many_arguments)]
fn put(
    d: &Device,
    sha: &str,
    rendition: &str,
    blob: &str,
    offset: u64,
    total: u64,
    body: Vec<u8>,
) -> (u16, serde_json::Value) {
    let ctype = if body.starts_with(&[0xFF, 0xD8]) || rendition == "original" {
        "image/jpeg"
    } else {
        "application/octet-stream"
    };
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

fn status_raw(d: &Device, items: &[(&str, MediaRendition, &str, u64)]) -> (u16, String) {
    let body = MediaStatusRequest {
        items: items
            .iter()
            .map(|(sha, rendition, blob, bytes)| MediaItemRef {
                sha256: sha.to_string(),
                rendition: *rendition,
                blob: blob.to_string(),
                bytes: *bytes,
            })
            .collect(),
    };
    let resp = reqwest::blocking::Client::new()
        .post(format!("{}/v1/media/status", d.url))
        .bearer_auth(&d.token)
        .json(&body)
        .send()
        .unwrap();
    (resp.status().as_u16(), resp.text().unwrap())
}

fn status(d: &Device, items: &[(&str, MediaRendition, &str, u64)]) -> Vec<(MediaState, u64)> {
    let (code, text) = status_raw(d, items);
    assert_eq!(code, 200, "{text}");
    let answer: MediaStatusResponse = serde_json::from_str(&text).unwrap();
    answer.items.iter().map(|i| (i.state, i.offset)).collect()
}

fn original(rec: &MediaRecord) -> (&str, MediaRendition, &str, u64) {
    (
        rec.sha256.as_str(),
        MediaRendition::Original,
        rec.sha256.as_str(),
        rec.bytes,
    )
}

fn read(media: &MediaStore, rel: &str) -> Vec<u8> {
    std::fs::read(media.resolve(rel)).unwrap()
}

/// Kept blob files in the server's folder store (not the staging).
fn kept_files(server: &Server) -> usize {
    let root = server.data.join("blobs");
    std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name() != "staging")
        .map(|e| std::fs::read_dir(e.path()).map(|d| d.count()).unwrap_or(0))
        .sum()
}

/// Bytes staged in the server's folder store.
fn staged_bytes(server: &Server) -> u64 {
    std::fs::read_dir(server.data.join("blobs").join("staging"))
        .unwrap()
        .flatten()
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

/// Attack: an inspector who may write an inspection referencing another's photo hash uploads
/// any JPEG as that photo's thumbnail and upload rendition before the honest device does.
/// Expected: the honest device's declared renditions are still accepted and are what the
/// supervisor sees; the attacker's are shown only through its own document, and a download that
/// names no blob refuses to guess (409) until the honest device's original ties its renditions
/// to the photo.
#[test]
fn a_rendition_uploaded_first_by_another_device_never_replaces_the_declared_one() {
    let w = world(&[]);
    let a = w.device("insp.a");
    let b = w.device("insp.b");
    let sup = w.device("sup");
    let media = w.media("a-media");
    let (id_a, item) = inspection(&a, &w.ours[0]);
    let photo = write_photo(w.dir.path(), "p.jpg", 1600, 1200, 51);
    let rec = attach(&a, &media, &id_a, &item, &photo);
    let thumb = rec.thumbnail.clone().unwrap();
    let upload = rec.upload.clone().unwrap();
    a.sync();

    // The attacker names the photo in its own inspection with renditions of its own, and
    // uploads them first.
    let (id_b, item_b) = inspection(&b, &w.ours[1]);
    let evil_thumb = noisy_jpeg(320, 240, 666, 80);
    let evil_upload = noisy_jpeg(800, 600, 667, 80);
    b.store
        .add_evidence(
            &id_b,
            &EvidenceRef {
                sha256: rec.sha256.clone(),
                item_code: item_b,
                media: MediaKind::Photo,
                added_by: "insp.b".into(),
                at_ms: b.store.now_ms(),
                thumb: Some(sha_hex(&evil_thumb)),
                upload: Some(sha_hex(&evil_upload)),
                device_id: String::new(),
            },
        )
        .unwrap();
    b.sync();
    for (rendition, bytes) in [("thumb", &evil_thumb), ("upload", &evil_upload)] {
        let (code, body) = put(
            &b,
            &rec.sha256,
            rendition,
            &sha_hex(bytes),
            0,
            bytes.len() as u64,
            bytes.clone(),
        );
        assert_eq!(
            (code, body["complete"].as_bool()),
            (200, Some(true)),
            "{body}"
        );
    }
    // Its bytes under the hash the honest document declares do not verify.
    let (code, body) = put(
        &b,
        &rec.sha256,
        "thumb",
        &thumb.sha256,
        0,
        evil_thumb.len() as u64,
        evil_thumb.clone(),
    );
    assert_eq!((code, body["error"].as_str()), (422, Some("hash_mismatch")));

    // The honest device still sends its own renditions (the server did not answer "complete"
    // with the attacker's), and the supervisor gets them for the honest document's blobs.
    let r = media_sync(&a, &media, NetworkKind::Cellular);
    assert_eq!((r.uploaded, r.already_on_server), (2, 0), "{r:?}");
    let (code, bytes, _) = get(&sup, &rec.sha256, "thumb", Some(&thumb.sha256));
    assert_eq!((code, bytes), (200, read(&media, &thumb.path)));
    let (code, bytes, _) = get(&sup, &rec.sha256, "upload", Some(&upload.sha256));
    assert_eq!((code, bytes), (200, read(&media, &upload.path)));
    // Asked without a blob while two documents the supervisor reads disagree and no original
    // ties either to the photo: no guess.
    let (code, _, word) = get(&sup, &rec.sha256, "thumb", None);
    assert_eq!((code, word.as_str()), (409, "ambiguous_rendition"));

    // Once the honest original is in, its device's renditions are the photo's.
    let r = media_sync(&a, &media, NetworkKind::Wifi);
    assert_eq!(r.uploaded, 1, "{r:?}");
    for (d, who) in [(&sup, "supervisor"), (&a, "inspector"), (&b, "attacker")] {
        let (code, bytes, _) = get(d, &rec.sha256, "thumb", None);
        assert_eq!((code, bytes), (200, read(&media, &thumb.path)), "{who}");
        let (code, bytes, _) = get(d, &rec.sha256, "upload", None);
        assert_eq!((code, bytes), (200, read(&media, &upload.path)), "{who}");
    }
    // The attacker's images are what its own document shows, asked for by their hash.
    let (code, bytes, _) = get(&sup, &rec.sha256, "thumb", Some(&sha_hex(&evil_thumb)));
    assert_eq!((code, bytes), (200, evil_thumb));
}

/// Attack: an inspector of another district names a photo's hash in its own draft inspection,
/// then asks for the photo and probes whether it exists.
/// Expected: every download through its document is 404 and every status answer is exactly
/// what an invented hash gets; uploading other bytes proves nothing; its supervisor sees
/// neither the photo nor the photo's EXIF in the evidence checks.
#[test]
fn a_bare_hash_in_ones_own_document_fetches_and_reveals_nothing() {
    let w = world(&[]);
    let a = w.device("insp.a");
    let x = w.device("insp.x");
    let sup_x = w.device("sup.x");
    let media = w.media("a-media");
    let (id_a, item) = inspection(&a, &w.ours[0]);
    let photo = write_photo(w.dir.path(), "p.jpg", 1200, 900, 52);
    let rec = attach(&a, &media, &id_a, &item, &photo);
    let r = media_sync(&a, &media, NetworkKind::Wifi);
    assert_eq!(r.uploaded, 3);
    let thumb = rec.thumbnail.clone().unwrap();
    let invented = sha_hex(b"a photo nobody ever took");

    // Before the attacker's document references them: 403 alike.
    for h in [&rec.sha256, &invented] {
        assert_eq!(get(&x, h, "original", None).0, 403);
        assert_eq!(get(&sup_x, h, "thumb", None).0, 403);
    }

    let (id_x, item_x) = inspection(&x, &w.theirs);
    claim(&x, &id_x, &item_x, &rec.sha256, None);
    claim(&x, &id_x, &item_x, &invented, None);
    x.sync();

    for d in [&x, &sup_x] {
        for rendition in ["thumb", "upload", "original"] {
            let real = get(d, &rec.sha256, rendition, None);
            let made_up = get(d, &invented, rendition, None);
            assert_eq!(
                (real.0, &real.2),
                (404, &"not_found".to_string()),
                "{rendition}"
            );
            assert_eq!((made_up.0, &made_up.2), (real.0, &real.2), "{rendition}");
        }
        let real = get(d, &rec.sha256, "thumb", Some(&thumb.sha256));
        assert_eq!(real.0, 404);
    }
    let answers = status(
        &x,
        &[
            original(&rec),
            (
                invented.as_str(),
                MediaRendition::Original,
                invented.as_str(),
                rec.bytes,
            ),
            (
                rec.sha256.as_str(),
                MediaRendition::Thumb,
                thumb.sha256.as_str(),
                thumb.bytes,
            ),
            (
                invented.as_str(),
                MediaRendition::Thumb,
                thumb.sha256.as_str(),
                thumb.bytes,
            ),
        ],
    );
    assert_eq!(answers[0], (MediaState::Absent, 0));
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[2], (MediaState::Absent, 0));
    assert_eq!(answers[2], answers[3]);

    // Other bytes under the hash do not verify, and leave nothing proved.
    let forged = noisy_jpeg(100, 100, 9, 80);
    let (code, body) = put(
        &x,
        &rec.sha256,
        "original",
        &rec.sha256,
        0,
        forged.len() as u64,
        forged,
    );
    assert_eq!((code, body["error"].as_str()), (422, Some("hash_mismatch")));
    assert_eq!(status(&x, &[original(&rec)])[0], (MediaState::Absent, 0));
    assert_eq!(get(&sup_x, &rec.sha256, "original", None).0, 404);

    // The supervisor's evidence checks of the attacker's inspection do not read the other
    // district's original (its EXIF time and place).
    let resp = reqwest::blocking::Client::new()
        .get(format!("{}/v1/inspections/{id_x}", sup_x.url))
        .bearer_auth(&sup_x.token)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let view: serde_json::Value = resp.json().unwrap();
    let checks = view["checks"]["evidence"].as_array().unwrap();
    let of_photo = checks
        .iter()
        .find(|c| c["sha256"] == rec.sha256.as_str())
        .unwrap();
    assert_eq!(of_photo["state"], "original_not_received", "{of_photo}");
    assert!(of_photo["exif"].is_null());
}

/// A second device that really holds a photo the server already keeps (the same file attached
/// on two phones) is asked to send it once: the server checks the bytes, records that this
/// device holds them, and keeps no second copy; then the photo shows through its document too.
#[test]
fn a_second_device_holding_the_bytes_proves_it_and_no_copy_is_kept() {
    let w = world(&[]);
    let a = w.device("insp.a");
    let x = w.device("insp.x");
    let sup_x = w.device("sup.x");
    let media_a = w.media("a-media");
    let media_x = w.media("x-media");
    let photo = write_photo(w.dir.path(), "shared.jpg", 1400, 1050, 53);
    let (id_a, item) = inspection(&a, &w.ours[0]);
    let rec = attach(&a, &media_a, &id_a, &item, &photo);
    assert_eq!(media_sync(&a, &media_a, NetworkKind::Wifi).uploaded, 3);
    let kept_before = (!test_s3()).then(|| kept_files(&w.server));

    let (id_x, item_x) = inspection(&x, &w.theirs);
    let rec_x = attach(&x, &media_x, &id_x, &item_x, &photo);
    assert_eq!(rec_x.sha256, rec.sha256);
    x.sync();
    assert_eq!(get(&sup_x, &rec.sha256, "original", None).0, 404);
    let r = media_sync(&x, &media_x, NetworkKind::Wifi);
    let sizes = rec_x.bytes + rec_x.thumbnail.unwrap().bytes + rec_x.upload.unwrap().bytes;
    assert_eq!((r.uploaded, r.already_on_server), (3, 0), "{r:?}");
    assert_eq!(r.bytes_sent, sizes);
    if let Some(before) = kept_before {
        assert_eq!(kept_files(&w.server), before, "no second copy");
    }
    let (code, bytes, _) = get(&sup_x, &rec.sha256, "original", None);
    assert_eq!((code, bytes), (200, std::fs::read(&photo).unwrap()));
    assert_eq!(get(&sup_x, &rec.sha256, "thumb", None).0, 200);
    let again = media_sync(&x, &media_x, NetworkKind::Wifi);
    assert_eq!((again.uploaded, again.bytes_sent), (0, 0));
}

/// Attack: a device that may reference a photo watches and spoils another device's upload in
/// progress (reads its offset, appends garbage at it so the final hash check drops everything).
/// Expected: each device stages on its own; the other device sees nothing of it, its bytes land
/// in its own staging, and the honest upload resumes and completes.
#[test]
fn an_upload_in_progress_is_the_uploading_devices_own() {
    let w = world(&[]);
    let a = w.device("insp.a");
    let b = w.device("insp.b");
    let sup = w.device("sup");
    let media = w.media("a-media");
    let (id_a, item) = inspection(&a, &w.ours[0]);
    let photo = write_photo(w.dir.path(), "p.jpg", 1800, 1350, 54);
    let rec = attach(&a, &media, &id_a, &item, &photo);
    media_sync(&a, &media, NetworkKind::Cellular);
    let real = std::fs::read(&photo).unwrap();
    let half = real.len() as u64 / 2;
    let (code, body) = put(
        &a,
        &rec.sha256,
        "original",
        &rec.sha256,
        0,
        rec.bytes,
        real[..half as usize].to_vec(),
    );
    assert_eq!((code, body["offset"].as_u64()), (200, Some(half)));

    // The attacker (same street: it may write the honest inspection) sees no upload ...
    assert_eq!(status(&b, &[original(&rec)])[0], (MediaState::Absent, 0));
    // ... and cannot append at the honest device's offset.
    let garbage = vec![0x5a; (rec.bytes - half) as usize];
    let (code, body) = put(
        &b,
        &rec.sha256,
        "original",
        &rec.sha256,
        half,
        rec.bytes,
        garbage,
    );
    assert_eq!(
        (code, body["error"].as_str(), body["offset"].as_u64()),
        (409, Some("offset_mismatch"), Some(0))
    );

    let r = media_sync(&a, &media, NetworkKind::Wifi);
    assert_eq!((r.uploaded, r.resumed), (1, 1), "{r:?}");
    assert_eq!(r.bytes_sent, rec.bytes - half);
    assert_eq!(get(&sup, &rec.sha256, "original", None).1, real);
}

/// Attack: one inspector opens uploads for invented hashes named in its own draft, declaring
/// the largest sizes, to fill the server's disk so every other sync fails.
/// Expected: 507 `quota_exceeded` once the user's open uploads would declare more than the quota
/// (whatever device it uses), 507 `too_many_uploads` past the open-upload cap, the staged bytes
/// stay under the quota; cancelling frees it; another user's media sync is not affected.
#[test]
fn one_users_uploads_in_progress_cannot_fill_the_server() {
    let w = world(&[
        ("FENLEI_STAGING_QUOTA_MIB", "1"),
        ("FENLEI_MAX_OPEN_UPLOADS", "4"),
    ]);
    let x = w.device("insp.x");
    let x2 = w.device("insp.x");
    let a = w.device("insp.a");
    let (id_x, item_x) = inspection(&x, &w.theirs);
    let hashes: Vec<String> = (0..8)
        .map(|n| sha_hex(format!("junk {n}").as_bytes()))
        .collect();
    for h in &hashes {
        claim(&x, &id_x, &item_x, h, None);
    }
    x.sync();
    let kib = 1024u64;
    let chunk = |n: u64| vec![0xFFu8; n as usize];

    // The largest original the protocol allows does not fit a 1 MiB quota.
    let (code, body) = put(
        &x,
        &hashes[0],
        "original",
        &hashes[0],
        0,
        512 << 20,
        chunk(kib),
    );
    assert_eq!(
        (code, body["error"].as_str()),
        (507, Some("quota_exceeded")),
        "{body}"
    );
    let (code, _) = put(
        &x,
        &hashes[0],
        "original",
        &hashes[0],
        0,
        700 * kib,
        chunk(300 * kib),
    );
    assert_eq!(code, 200);
    // The user's other device shares the quota.
    let (code, body) = put(
        &x2,
        &hashes[1],
        "original",
        &hashes[1],
        0,
        700 * kib,
        chunk(kib),
    );
    assert_eq!(
        (code, body["error"].as_str()),
        (507, Some("quota_exceeded"))
    );
    for h in &hashes[1..4] {
        let (code, body) = put(&x, h, "original", h, 0, 100 * kib, chunk(10 * kib));
        assert_eq!(code, 200, "{body}");
    }
    let (code, body) = put(&x, &hashes[4], "original", &hashes[4], 0, kib, chunk(10));
    assert_eq!(
        (code, body["error"].as_str()),
        (507, Some("too_many_uploads"))
    );
    if !test_s3() {
        assert!(staged_bytes(&w.server) <= 1 << 20);
    }

    // Cancelling an upload frees its share.
    let resp = reqwest::blocking::Client::new()
        .delete(format!(
            "{}/v1/media/{}/original?blob={}",
            x.url, hashes[0], hashes[0]
        ))
        .bearer_auth(&x.token)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    assert_eq!(
        status(
            &x,
            &[(
                hashes[0].as_str(),
                MediaRendition::Original,
                hashes[0].as_str(),
                1
            )]
        )[0]
        .0,
        MediaState::Absent
    );
    let (code, _) = put(
        &x,
        &hashes[4],
        "original",
        &hashes[4],
        0,
        700 * kib,
        chunk(kib),
    );
    assert_eq!(code, 200);

    // The user's own honest app, over its quota, leaves its files for a later sync and says why.
    let media_x = w.media("x-media");
    let small = write_photo(w.dir.path(), "x.jpg", 320, 240, 57);
    attach(&x, &media_x, &id_x, &item_x, &small);
    let r = x
        .client()
        .sync_media(
            &x.store,
            &media_x,
            &MediaSyncOptions {
                network: NetworkKind::Wifi,
                ..Default::default()
            },
            &NoProgress,
            &CancelToken::new(),
        )
        .expect("a full quota does not fail the sync");
    assert_eq!((r.uploaded, r.failed.len()), (0, 3), "{r:?}");
    assert!(
        r.failed
            .iter()
            .all(|f| f.reason.starts_with("too_many_uploads"))
    );

    // Another inspector's photos go up as ever.
    let media = w.media("a-media");
    let (id_a, item) = inspection(&a, &w.ours[0]);
    // (Smaller than the test's 1 MiB quota; the default quota is twice the largest file.)
    let photo = write_photo(w.dir.path(), "p.jpg", 640, 480, 55);
    attach(&a, &media, &id_a, &item, &photo);
    let r = media_sync(&a, &media, NetworkKind::Wifi);
    assert_eq!(r.uploaded, 3, "{r:?}");
}

/// Attack: documents written before renditions were declared (an older app) name no
/// thumbnail; another device uploads one for the photo first, or one for the honest entry.
/// Expected: such an entry shows only what its own device uploaded for the photo; another
/// device's upload for it is refused unless that device has an undeclared entry of its own,
/// which it then shows only through its own document.
#[test]
fn an_old_document_without_declared_renditions_shows_only_its_own_devices_upload() {
    let w = world(&[]);
    let a = w.device("insp.a");
    let b = w.device("insp.b");
    let x = w.device("insp.x");
    let sup = w.device("sup");
    let media = w.media("a-media");
    let photo = write_photo(w.dir.path(), "old.jpg", 1200, 900, 56);
    let rec = media.ingest_photo(&photo, None).unwrap();
    let thumb = rec.thumbnail.clone().unwrap();
    let (id_a, item) = inspection(&a, &w.ours[0]);
    claim(&a, &id_a, &item, &rec.sha256, None);
    a.sync();

    // An attacker elsewhere names the photo without renditions and uploads its own first.
    let (id_x, item_x) = inspection(&x, &w.theirs);
    claim(&x, &id_x, &item_x, &rec.sha256, None);
    x.sync();
    let evil = noisy_jpeg(320, 240, 777, 80);
    let (code, _) = put(
        &x,
        &rec.sha256,
        "thumb",
        &sha_hex(&evil),
        0,
        evil.len() as u64,
        evil.clone(),
    );
    assert_eq!(code, 200);
    // A device that may write the honest document, with no entry of its own, is refused.
    let other = noisy_jpeg(320, 240, 778, 80);
    let (code, _) = put(
        &b,
        &rec.sha256,
        "thumb",
        &sha_hex(&other),
        0,
        other.len() as u64,
        other,
    );
    assert_eq!(code, 403);

    // The honest device uploads its thumbnail; that is what its document shows.
    let own = read(&media, &thumb.path);
    let (code, body) = put(
        &a,
        &rec.sha256,
        "thumb",
        &thumb.sha256,
        0,
        own.len() as u64,
        own.clone(),
    );
    assert_eq!(
        (code, body["blob"].as_str()),
        (200, Some(thumb.sha256.as_str())),
        "{body}"
    );
    let (code, bytes, _) = get(&sup, &rec.sha256, "thumb", None);
    assert_eq!((code, bytes), (200, own));
}

/// Attack: malformed hashes in every place a hash enters the media routes (path, `blob=`,
/// status bodies), hoping for a path escape, a 500, or an answer that skips the checks.
/// Expected: 400 before anything is looked up.
#[test]
fn hashes_are_checked_on_every_media_route() {
    let w = world(&[]);
    let a = w.device("insp.a");
    let good = sha_hex(b"x");
    let upper = good.to_uppercase();
    let client = reqwest::blocking::Client::new();
    let send = |method: reqwest::Method, path: &str| {
        client
            .request(method, format!("{}{path}", a.url))
            .bearer_auth(&a.token)
            .header("content-type", "image/jpeg")
            .body(vec![0xFF, 0xD8])
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    use reqwest::Method;
    for (method, path) in [
        (Method::GET, format!("/v1/media/{upper}?rendition=thumb")),
        (
            Method::GET,
            format!("/v1/media/{good}?rendition=thumb&blob=..%2F..%2Fetc"),
        ),
        (
            Method::GET,
            format!("/v1/media/{good}?rendition=thumb&blob={upper}"),
        ),
        (
            Method::PUT,
            format!("/v1/media/{upper}/original?offset=0&total=2"),
        ),
        (
            Method::PUT,
            format!("/v1/media/{good}/thumb?blob=abc&offset=0&total=2"),
        ),
        (
            Method::DELETE,
            format!("/v1/media/{good}/thumb?blob={upper}"),
        ),
        (Method::DELETE, "/v1/media/..%2Fx/original".to_string()),
    ] {
        assert_eq!(send(method.clone(), &path), 400, "{method} {path}");
    }
    for items in [
        vec![(
            upper.as_str(),
            MediaRendition::Original,
            upper.as_str(),
            1u64,
        )],
        vec![(good.as_str(), MediaRendition::Thumb, "../../x", 1)],
        vec![
            (good.as_str(), MediaRendition::Original, good.as_str(), 1),
            (good.as_str(), MediaRendition::Upload, "", 1),
        ],
    ] {
        assert_eq!(status_raw(&a, &items).0, 400, "{items:?}");
    }
}
