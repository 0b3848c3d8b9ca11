//! Evidence flags a supervisor sees, computed by a real server process from what it
//! holds: the document's fixes, the community, the verified original's EXIF and reuse across
//! inspections. Also: a rectification task's closure photo goes up with media sync and the
//! supervisor can fetch its thumbnail.

mod common;

use common::*;
use fenlei_core::geo::LatLon;
use fenlei_core::inspection::{
    EditContext, GpsFix, InspectionKind, InspectionStatus, NewInspection,
};
use fenlei_core::media::MediaStore;
use fenlei_core::progress::{CancelToken, NoProgress};
use fenlei_core::rectification::NewRectification;
use fenlei_core::sync::media::{MediaSyncOptions, MediaSyncReport, NetworkKind};
use fenlei_e2e::photos::{jpeg_with_exif, write_photo};
use serde_json::Value;

struct Setup {
    dir: tempfile::TempDir,
    _server: Server,
    insp: Device,
    sup: Device,
    media: MediaStore,
    communities: Vec<String>,
    item: String,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let (street, communities, district) = sample_places();
    server.admin(&["add-user", "--id", "insp.a", "--role", "inspector"]);
    server.admin(&["add-user", "--id", "sup", "--role", "supervisor"]);
    server.admin(&["assign", "--user", "insp.a", "--street", &street]);
    server.admin(&["assign", "--user", "sup", "--district", &district]);
    let insp = Device::enroll(&server, dir.path(), "insp.a");
    let sup = Device::enroll(&server, dir.path(), "sup");
    insp.sync();
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
        _server: server,
        insp,
        sup,
        media,
        communities,
        item,
    }
}

impl Setup {
    fn inspection(&self, community: &str) -> String {
        self.insp
            .store
            .create_inspection(
                &NewInspection {
                    community_id: community.into(),
                    standard_id: "hohhot-residential".into(),
                    standard_version: "2026.1".into(),
                    kind: InspectionKind::DailyPatrol,
                    co_inspectors: vec![],
                },
                "insp.a",
            )
            .unwrap()
    }

    fn attach(&self, inspection: &str, path: &std::path::Path) -> String {
        self.insp
            .store
            .attach_photo(&self.media, inspection, &self.item, path, None, "insp.a")
            .unwrap()
            .record
            .sha256
    }

    fn media_sync(&self, network: NetworkKind) -> MediaSyncReport {
        let report = self
            .insp
            .client()
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

    fn sup_get(&self, path: &str) -> reqwest::blocking::Response {
        reqwest::blocking::Client::new()
            .get(format!("{}{path}", self.sup.url))
            .bearer_auth(&self.sup.token)
            .send()
            .unwrap()
    }

    fn detail(&self, id: &str) -> Value {
        let resp = self.sup_get(&format!("/v1/inspections/{id}"));
        assert_eq!(resp.status(), 200);
        resp.json().unwrap()
    }
}

fn codes(flags: &Value) -> Vec<String> {
    flags
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_string())
        .collect()
}

fn flag<'a>(flags: &'a Value, code: &str) -> &'a Value {
    flags
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == code)
        .unwrap_or_else(|| panic!("no {code} in {flags}"))
}

fn evidence<'a>(detail: &'a Value, sha: &str) -> &'a Value {
    detail["checks"]["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["sha256"] == sha)
        .unwrap_or_else(|| panic!("no check of {sha}"))
}

#[test]
fn server_flags_far_exif_gps_mock_fix_reuse_and_missing_original() {
    let s = setup();
    let community = s.insp.store.community(&s.communities[0]).unwrap();
    let a = s.inspection(&s.communities[0]);
    // A mock-location fix, right at the community's point.
    s.insp
        .store
        .add_gps_fix(
            &a,
            &GpsFix {
                location: community.location,
                accuracy_m: Some(10.0),
                altitude_m: None,
                provider: "gps".into(),
                at_ms: s.insp.store.now_ms(),
                is_mock: true,
            },
            "insp.a",
        )
        .unwrap();
    // A photo whose EXIF GPS is ~11 km north of the community, taken in 2020.
    let far = LatLon {
        lat: community.location.lat + 0.1,
        lon: community.location.lon,
    };
    let far_path = s.dir.path().join("far.jpg");
    std::fs::write(
        &far_path,
        jpeg_with_exif(7, "2020:01:02 10:00:00", "+08:00", Some((far.lat, far.lon))),
    )
    .unwrap();
    let far_sha = s.attach(&a, &far_path);
    // Everything, originals too, on Wi-Fi.
    let first = s.media_sync(NetworkKind::Wifi);
    assert!(first.uploaded >= 3, "{first:?}");
    // A second photo whose original is held for Wi-Fi: the server has its renditions only.
    let held_path = write_photo(s.dir.path(), "held.jpg", 640, 480, 11);
    let held_sha = s.attach(&a, &held_path);
    let cell = s.media_sync(NetworkKind::Cellular);
    assert_eq!(cell.held_for_wifi, 1, "{cell:?}");
    // The far photo again, in a second inspection.
    let b = s.inspection(&s.communities[1]);
    assert_eq!(s.attach(&b, &far_path), far_sha);
    s.insp
        .store
        .set_status(
            &a,
            InspectionStatus::Submitted,
            &EditContext::by("insp.a"),
            None,
        )
        .unwrap();
    s.insp.sync();

    let d = s.detail(&a);
    let checks = &d["checks"];
    // Geofence at start and at submit: inside (the point is the community's), but mocked.
    let geo = checks["geofence"].as_array().unwrap();
    assert_eq!(geo.len(), 2, "{geo:?}");
    assert_eq!(geo[0]["stage"], "start");
    assert_eq!(geo[1]["stage"], "submit");
    for g in geo {
        assert_eq!(g["status"], "inside", "{g}");
        assert!(g["distance_m"].as_f64().unwrap() < 1.0);
        assert!(codes(&g["flags"]).contains(&"MockLocation".to_string()));
        assert!(g["fix"]["is_mock"].as_bool().unwrap());
    }

    // The far photo: checked from the server's copy of the original.
    let far_check = evidence(&d, &far_sha);
    assert_eq!(far_check["state"], "checked");
    assert_eq!(far_check["exif"]["make"], "FenleiTest");
    assert_eq!(far_check["exif"]["taken_local"], "2020-01-02T10:00:00");
    assert!((far_check["exif"]["lat"].as_f64().unwrap() - far.lat).abs() < 1e-4);
    let flags = &far_check["flags"];
    let to_community = flag(flags, "PhotoFarFromCommunity");
    let dist = to_community["distance_m"].as_f64().unwrap();
    assert!((10_500.0..11_700.0).contains(&dist), "{to_community}");
    assert!(to_community["detail"].as_str().unwrap().contains("公里"));
    assert!(
        flag(flags, "PhotoFarFromDevice")["distance_m"]
            .as_f64()
            .unwrap()
            > 10_000.0
    );
    assert!(codes(flags).contains(&"MockLocation".to_string()));
    assert!(codes(flags).contains(&"ExifTimeOutsideWindow".to_string()));
    assert!(!codes(flags).contains(&"NoExif".to_string()));
    let reuse = flag(flags, "ReusedPhoto");
    assert_eq!(reuse["inspection_ids"], serde_json::json!([b.clone()]));
    assert_eq!(reuse["outside_scope"], 0);

    // The held photo: no guess, its own state.
    let held = evidence(&d, &held_sha);
    assert_eq!(held["state"], "original_not_received");
    assert!(held["exif"].is_null());
    assert_eq!(
        codes(&held["flags"]),
        vec!["OriginalNotReceived".to_string()]
    );

    // The second inspection sees the reuse too (and has no fix at all).
    let d2 = s.detail(&b);
    let reuse = flag(&evidence(&d2, &far_sha)["flags"], "ReusedPhoto");
    assert_eq!(reuse["inspection_ids"], serde_json::json!([a.clone()]));
    let geo2 = d2["checks"]["geofence"].as_array().unwrap();
    assert_eq!(geo2.len(), 1, "not submitted: the start check only");
    assert_eq!(geo2[0]["status"], "no_fix");
    assert_eq!(codes(&geo2[0]["flags"]), vec!["NoDeviceFix".to_string()]);

    // Once the original arrives (Wi-Fi), the held photo is checked: no EXIF at all.
    s.media_sync(NetworkKind::Wifi);
    let d = s.detail(&a);
    let held = evidence(&d, &held_sha);
    assert_eq!(held["state"], "checked");
    assert!(codes(&held["flags"]).contains(&"NoExif".to_string()));
}

#[test]
fn closure_photo_is_uploaded_and_fetched_by_the_supervisor() {
    let s = setup();
    let a = s.inspection(&s.communities[0]);
    let task = s
        .insp
        .store
        .open_rectification(
            &NewRectification {
                community_id: s.communities[0].clone(),
                inspection_id: a.clone(),
                item_code: s.item.clone(),
                item_title: "分类投放".into(),
                responsible: "物业".into(),
                deadline_days: 3,
                deduction: None,
                required_evidence: vec!["photo_after".into()],
                finding_evidence: vec![],
                source: "inspector".into(),
            },
            "insp.a",
        )
        .unwrap();
    let path = write_photo(s.dir.path(), "after.jpg", 800, 600, 42);
    let record = s
        .insp
        .store
        .attach_closure_photo(&s.media, &task, "photo_after", &path, None, "insp.a")
        .unwrap();
    let t = s.insp.store.rectification(&task).unwrap();
    assert_eq!(t.closure_photos(), vec![record.sha256.clone()]);
    let report = s.media_sync(NetworkKind::Wifi);
    assert_eq!(
        report.uploaded, 3,
        "thumb, rendition and original: {report:?}"
    );
    assert_eq!(report.waiting_for_document, 0);
    assert!(s.insp.store.pending_media_uploads().unwrap().is_empty());

    let resp = s.sup_get(&format!("/v1/media/{}?rendition=thumb", record.sha256));
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "image/jpeg");
    let thumb = record.thumbnail.as_ref().expect("a thumbnail");
    let local = std::fs::read(s.media.resolve(&thumb.path)).unwrap();
    assert_eq!(resp.bytes().unwrap().as_ref(), local.as_slice());
    let resp = s.sup_get(&format!("/v1/media/{}?rendition=original", record.sha256));
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.bytes().unwrap().as_ref(),
        std::fs::read(&path).unwrap().as_slice()
    );
}
