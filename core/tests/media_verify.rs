//! Evidence checks: geofence with accuracy, mock and stale fixes, EXIF time vs the inspection
//! window (UTC+8 assumed without an offset), EXIF GPS vs device vs community with GCJ-02
//! handled, reused photos, editing software. Also run on real photos when the corpus is there.

mod media_support;

use fenlei_core::community::Community;
use fenlei_core::geo::{self, CoordSystem, LatLon};
use fenlei_core::inspection::GpsFix;
use fenlei_core::media::verify::{
    EvidenceFlag, GeofenceStatus, PhotoCheckInput, VerifyPolicy, check_geofence, check_photo,
};
use fenlei_core::media::{ExifGps, MediaStore, PhotoExif};

/// A Hohhot community, WGS-84, 150 m fence.
fn community() -> Community {
    Community {
        id: "150102-001".into(),
        name: "测试小区".into(),
        district: "新城区".into(),
        street: String::new(),
        committee: String::new(),
        address: String::new(),
        location: LatLon {
            lat: 40.842_6,
            lon: 111.749_1,
        },
        geofence_m: 150.0,
        property_manager: String::new(),
        households: 0,
    }
}

/// The point `metres` due north of the community's point.
fn north(metres: f64) -> LatLon {
    let c = community().location;
    LatLon {
        lat: c.lat + metres / 111_050.0,
        lon: c.lon,
    }
}

const NOW: i64 = 1_741_915_613_000; // 2025-03-14T01:26:53Z = 09:26:53 in Beijing

fn fix(at: LatLon, accuracy: Option<f64>) -> GpsFix {
    GpsFix {
        location: at,
        accuracy_m: accuracy,
        altitude_m: None,
        provider: "gps".into(),
        at_ms: NOW - 5_000,
        is_mock: false,
    }
}

#[test]
fn north_helper_is_accurate_enough() {
    let d = geo::distance_m(north(100.0), community().location);
    assert!((d - 100.0).abs() < 0.5, "{d}");
}

#[test]
fn geofence_inside_outside_and_uncertain_with_accuracy() {
    let c = community();
    let p = VerifyPolicy::default();
    let check = |m: f64, acc: Option<f64>| {
        check_geofence(&fix(north(m), acc), CoordSystem::Wgs84, &c, NOW, &p)
    };

    let inside = check(100.0, Some(20.0));
    assert_eq!(inside.status, GeofenceStatus::Inside);
    assert!(inside.flags.is_empty(), "{:?}", inside.flags);
    assert!((inside.distance_m.unwrap() - 100.0).abs() < 0.5);

    // 140 m with a 30 m radius straddles the 150 m fence.
    let straddle = check(140.0, Some(30.0));
    assert_eq!(straddle.status, GeofenceStatus::Uncertain);
    assert!(
        matches!(straddle.flags[0], EvidenceFlag::GeofenceUncertain { accuracy_m, .. } if accuracy_m == 30.0)
    );

    let outside = check(400.0, Some(30.0));
    assert_eq!(outside.status, GeofenceStatus::Outside);
    assert!(
        matches!(outside.flags[0], EvidenceFlag::OutsideGeofence { distance_m, geofence_m, .. }
        if (distance_m - 400.0).abs() < 1.0 && geofence_m == 150.0)
    );

    // 170 m but ±30 m: could be at 140 m, so not "outside".
    assert_eq!(check(170.0, Some(30.0)).status, GeofenceStatus::Uncertain);
    // No accuracy: the point decides, and the missing accuracy is said.
    let no_acc = check(100.0, None);
    assert_eq!(no_acc.status, GeofenceStatus::Inside);
    assert_eq!(no_acc.flags, vec![EvidenceFlag::AccuracyUnknown]);
    // A NaN or negative accuracy is no accuracy.
    assert_eq!(
        check(100.0, Some(f64::NAN)).flags,
        vec![EvidenceFlag::AccuracyUnknown]
    );
    assert_eq!(
        check(100.0, Some(-3.0)).flags,
        vec![EvidenceFlag::AccuracyUnknown]
    );
    // Coarse network fix: uncertain and flagged.
    let coarse = check(50.0, Some(800.0));
    assert_eq!(coarse.status, GeofenceStatus::Uncertain);
    assert!(
        coarse
            .flags
            .contains(&EvidenceFlag::LowAccuracy { accuracy_m: 800.0 })
    );
}

#[test]
fn mock_stale_future_and_invalid_fixes_are_flagged() {
    let c = community();
    let p = VerifyPolicy::default();
    let mut f = fix(north(10.0), Some(5.0));
    f.is_mock = true;
    f.at_ms = NOW - 10 * 60_000;
    let r = check_geofence(&f, CoordSystem::Wgs84, &c, NOW, &p);
    assert_eq!(r.status, GeofenceStatus::Inside);
    assert!(r.flags.contains(&EvidenceFlag::MockLocation));
    assert!(
        r.flags
            .contains(&EvidenceFlag::StaleFix { age_ms: 600_000 })
    );

    f.is_mock = false;
    f.at_ms = NOW + 3_600_000;
    let r = check_geofence(&f, CoordSystem::Wgs84, &c, NOW, &p);
    assert_eq!(
        r.flags,
        vec![EvidenceFlag::FixFromFuture {
            ahead_ms: 3_600_000
        }]
    );

    let bad = GpsFix {
        location: LatLon {
            lat: f64::NAN,
            lon: 111.0,
        },
        ..fix(north(0.0), Some(5.0))
    };
    let r = check_geofence(&bad, CoordSystem::Wgs84, &c, NOW, &p);
    assert_eq!(r.status, GeofenceStatus::Uncertain);
    assert_eq!(r.distance_m, None);
    assert_eq!(r.flags, vec![EvidenceFlag::InvalidFix]);
}

#[test]
fn a_gcj02_device_fix_is_converted_before_measuring() {
    let c = community();
    let p = VerifyPolicy::default();
    // An Amap SDK reports the spot 20 m north of the community in GCJ-02.
    let gcj = geo::from_wgs84(north(20.0), CoordSystem::Gcj02);
    let raw = check_geofence(&fix(gcj, Some(10.0)), CoordSystem::Wgs84, &c, NOW, &p);
    assert_eq!(
        raw.status,
        GeofenceStatus::Outside,
        "read raw it is hundreds of metres off"
    );
    let converted = check_geofence(&fix(gcj, Some(10.0)), CoordSystem::Gcj02, &c, NOW, &p);
    assert_eq!(converted.status, GeofenceStatus::Inside);
    assert!((converted.distance_m.unwrap() - 20.0).abs() < 1.0);
}

fn exif_at(local: &str, local_ms: i64, offset: Option<i64>, gps: Option<LatLon>) -> PhotoExif {
    PhotoExif {
        taken_local: Some(local.into()),
        taken_local_ms: Some(local_ms),
        offset_minutes: offset,
        gps: gps.map(|location| ExifGps {
            location,
            altitude_m: None,
            h_error_m: Some(10.0),
            dop: None,
            fix_time_ms: None,
            datum: None,
        }),
        orientation: Some(1),
        make: Some("Xiaomi".into()),
        model: Some("23127PN0CC".into()),
        software: Some("V816.0.5.0.UNCCNXM".into()),
        pixel_width: None,
        pixel_height: None,
    }
}

/// Beijing wall clock 09:26:53 on 2025-03-14, as ms "as if UTC".
const LOCAL_0926: i64 = NOW + 8 * 3_600_000;

fn input(exif: Option<PhotoExif>) -> PhotoCheckInput {
    PhotoCheckInput {
        exif,
        device_fix: Some(fix(north(30.0), Some(8.0))),
        device_fix_system: CoordSystem::Wgs84,
        community: community(),
        window_start_ms: NOW - 20 * 60_000,
        window_end_ms: NOW + 20 * 60_000,
        other_inspections_with_same_photo: vec![],
    }
}

#[test]
fn a_good_photo_has_no_flags() {
    let e = exif_at(
        "2025-03-14T09:26:53",
        LOCAL_0926,
        Some(480),
        Some(north(40.0)),
    );
    let flags = check_photo(&input(Some(e)), &VerifyPolicy::default());
    assert!(flags.is_empty(), "{flags:?}");
}

#[test]
fn exif_time_without_offset_is_read_as_china_time_and_said_so() {
    let p = VerifyPolicy::default();
    let e = exif_at("2025-03-14T09:26:53", LOCAL_0926, None, Some(north(40.0)));
    let flags = check_photo(&input(Some(e)), &p);
    assert_eq!(
        flags,
        vec![EvidenceFlag::ExifTimeZoneAssumed {
            offset_minutes: 480
        }]
    );
    // The same wall clock written by a camera set to UTC (offset +00:00) is 8 h after the window.
    let e = exif_at(
        "2025-03-14T09:26:53",
        LOCAL_0926,
        Some(0),
        Some(north(40.0)),
    );
    let flags = check_photo(&input(Some(e)), &p);
    // ...and the device fix taken at 09:26 Beijing time is then 8 h older than the photo.
    assert!(
        flags.contains(&EvidenceFlag::StaleFix {
            age_ms: 8 * 3_600_000 + 5_000
        }),
        "{flags:?}"
    );
    match flags
        .iter()
        .find(|f| matches!(f, EvidenceFlag::ExifTimeOutsideWindow { .. }))
    {
        Some(EvidenceFlag::ExifTimeOutsideWindow {
            taken_at_ms,
            off_by_ms,
            offset_assumed,
            ..
        }) => {
            assert_eq!(*taken_at_ms, LOCAL_0926);
            assert_eq!(*off_by_ms, LOCAL_0926 - (NOW + 20 * 60_000));
            assert!(!offset_assumed);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn photo_time_tolerance_at_both_ends() {
    let p = VerifyPolicy::default();
    let at = |minutes_from_now: i64| {
        let e = exif_at(
            "x",
            LOCAL_0926 + minutes_from_now * 60_000,
            Some(480),
            Some(north(40.0)),
        );
        check_photo(&input(Some(e)), &p)
            .into_iter()
            .any(|f| matches!(f, EvidenceFlag::ExifTimeOutsideWindow { .. }))
    };
    // Window ±20 min, tolerance 10 min.
    assert!(!at(-29) && !at(29));
    assert!(at(-31) && at(31));
    // Yesterday's photo reused today.
    assert!(at(-24 * 60));
}

#[test]
fn photo_far_from_community_and_device() {
    let p = VerifyPolicy::default();
    // 2 km north: far from the community (150 + 100 + 10 m allowed) and from the device.
    let e = exif_at("x", LOCAL_0926, Some(480), Some(north(2_000.0)));
    let flags = check_photo(&input(Some(e)), &p);
    assert!(flags.iter().any(|f| matches!(f, EvidenceFlag::PhotoFarFromCommunity { distance_m, .. } if (distance_m - 2_000.0).abs() < 5.0)), "{flags:?}");
    assert!(flags.iter().any(|f| matches!(f, EvidenceFlag::PhotoFarFromDevice { distance_m } if (distance_m - 1_970.0).abs() < 5.0)), "{flags:?}");
    assert!(
        !flags
            .iter()
            .any(|f| matches!(f, EvidenceFlag::ExifGpsLooksGcj02 { .. }))
    );
}

#[test]
fn exif_written_in_gcj02_is_recognised() {
    let p = VerifyPolicy::default();
    // The phone wrote the GCJ-02 form of a point 40 m north: ~500 m off when read as WGS-84.
    let gcj = geo::from_wgs84(north(40.0), CoordSystem::Gcj02);
    assert!(geo::distance_m(gcj, north(40.0)) > 300.0);
    let e = exif_at("x", LOCAL_0926, Some(480), Some(gcj));
    let flags = check_photo(&input(Some(e)), &p);
    assert_eq!(flags.len(), 1, "{flags:?}");
    match flags[0] {
        EvidenceFlag::ExifGpsLooksGcj02 {
            raw_distance_m,
            converted_distance_m,
        } => {
            assert!(raw_distance_m > 300.0);
            assert!(converted_distance_m < 15.0, "{converted_distance_m}");
        }
        ref other => panic!("{other:?}"),
    }
}

#[test]
fn missing_exif_gps_time_fix_and_reuse() {
    let p = VerifyPolicy::default();
    let mut i = input(None);
    i.device_fix = None;
    i.other_inspections_with_same_photo = vec!["insp-b".into(), "insp-a".into(), "insp-b".into()];
    assert_eq!(
        check_photo(&i, &p),
        vec![
            EvidenceFlag::NoExif,
            EvidenceFlag::NoDeviceFix,
            EvidenceFlag::ReusedPhoto {
                inspection_ids: vec!["insp-a".into(), "insp-b".into()]
            },
        ]
    );
    let mut e = exif_at("x", LOCAL_0926, Some(480), None);
    e.taken_local = None;
    e.taken_local_ms = None;
    e.software = Some("Adobe Photoshop 25.0 (Windows)".into());
    let flags = check_photo(&input(Some(e)), &p);
    assert_eq!(
        flags,
        vec![
            EvidenceFlag::NoExifTime,
            EvidenceFlag::NoExifGps,
            EvidenceFlag::EditedInSoftware {
                software: "Adobe Photoshop 25.0 (Windows)".into()
            },
        ]
    );
}

#[test]
fn device_fix_at_capture_is_checked_against_the_capture_time() {
    let p = VerifyPolicy::default();
    let e = exif_at("x", LOCAL_0926, Some(480), Some(north(40.0)));
    let mut i = input(Some(e));
    let f = i.device_fix.as_mut().unwrap();
    f.at_ms = NOW - 15 * 60_000;
    f.is_mock = true;
    let flags = check_photo(&i, &p);
    assert!(flags.contains(&EvidenceFlag::MockLocation));
    assert!(flags.contains(&EvidenceFlag::StaleFix {
        age_ms: 15 * 60_000
    }));
}

#[test]
fn real_photo_from_italy_is_far_from_a_hohhot_community() {
    let Some(corpus) = media_support::corpus() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = MediaStore::open(dir.path()).unwrap();
    let rec = store
        .ingest_photo(&corpus.join("gps/DSCN0010.jpg"), None)
        .unwrap();
    let mut i = input(rec.exif);
    i.window_start_ms = NOW;
    i.window_end_ms = NOW + 3_600_000;
    let flags = check_photo(&i, &VerifyPolicy::default());
    // No offset in a 2008 Nikon: China time assumed, and 2008 is far outside a 2025 inspection.
    assert!(flags.contains(&EvidenceFlag::ExifTimeZoneAssumed {
        offset_minutes: 480
    }));
    assert!(flags.iter().any(|f| matches!(
        f,
        EvidenceFlag::ExifTimeOutsideWindow {
            offset_assumed: true,
            ..
        }
    )));
    // Tuscany to Hohhot: thousands of kilometres.
    assert!(flags.iter().any(|f| matches!(f, EvidenceFlag::PhotoFarFromCommunity { distance_m, .. } if *distance_m > 6_000_000.0)), "{flags:?}");
}
