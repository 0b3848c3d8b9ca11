//! GPS beyond single fixes: coordinate systems converted at record time, the patrol track,
//! "check geofence now", and evidence received from another device checked on read.

mod common;
mod media_support;

use common::*;
use fenlei_core::CoreError;
use fenlei_core::geo::{self, CoordSystem, LatLon};
use fenlei_core::inspection::GpsFix;
use fenlei_core::media::MediaStore;
use fenlei_core::media::verify::{EvidenceFlag, GeofenceStatus};
use fenlei_core::store::{GeofenceStage, MAX_TRACK_BATCH};
use media_support::*;

fn fix(location: LatLon, at_ms: i64) -> GpsFix {
    GpsFix {
        location,
        accuracy_m: Some(5.0),
        altitude_m: None,
        provider: "fused".into(),
        at_ms,
        is_mock: false,
    }
}

/// A point `north_m` metres north of `p`.
fn north(p: LatLon, north_m: f64) -> LatLon {
    LatLon {
        lat: p.lat + north_m / 111_195.0,
        lon: p.lon,
    }
}

#[test]
fn a_gcj02_fix_is_stored_as_wgs84_and_judged_inside() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let store = sample_store(&dir.path().join("s.sqlite"), clock);
    let cid = community_ids(&store, 1).remove(0);
    let community = store.community(&cid).unwrap();
    let id = store
        .create_inspection(&new_inspection(&store, &cid), "li.ming")
        .unwrap();
    // The app's map SDK reports the community's centre in GCJ-02 (hundreds of metres off).
    let gcj = geo::convert(community.location, CoordSystem::Wgs84, CoordSystem::Gcj02).unwrap();
    assert!(geo::distance_m(gcj, community.location) > 100.0);
    let check = store
        .check_geofence_now(&id, &fix(gcj, T0), CoordSystem::Gcj02, "li.ming")
        .unwrap();
    assert_eq!(check.stage, GeofenceStage::OnDemand);
    assert_eq!(check.check.status, GeofenceStatus::Inside, "{check:?}");
    let stored = &store.inspection(&id).unwrap().gps_fixes[0];
    assert!(geo::distance_m(stored.location, community.location) < 0.5);
    // The first fix also made the start check; an invalid system conversion input is refused.
    let stages: Vec<_> = store
        .geofence_checks(&id)
        .unwrap()
        .iter()
        .map(|c| c.stage)
        .collect();
    assert_eq!(stages, vec![GeofenceStage::Start, GeofenceStage::OnDemand]);
    let bad = fix(
        LatLon {
            lat: 95.0,
            lon: 0.0,
        },
        T0,
    );
    assert!(matches!(
        store.add_gps_fix_in(&id, &bad, CoordSystem::Bd09, "li.ming"),
        Err(CoreError::InvalidArgument(_))
    ));
}

#[test]
fn a_patrol_track_is_one_change_and_reads_as_a_walk() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let store = sample_store(&dir.path().join("s.sqlite"), clock);
    let cid = community_ids(&store, 1).remove(0);
    let community = store.community(&cid).unwrap();
    let id = store
        .create_inspection(&new_inspection(&store, &cid), "li.ming")
        .unwrap();
    let history_before = store.history(&id).unwrap().len();
    // Ten points inside the fence every 10 s, then one 5 km away after a 5-minute gap.
    let step = community.geofence_m / 20.0;
    let mut points: Vec<GpsFix> = (0..10)
        .map(|i| fix(north(community.location, i as f64 * step), T0 + i * 10_000))
        .collect();
    points.push(fix(
        north(community.location, 5_000.0),
        T0 + 90_000 + 300_000,
    ));
    store
        .add_track_fixes(&id, &points, CoordSystem::Wgs84, "li.ming")
        .unwrap();
    assert_eq!(store.history(&id).unwrap().len(), history_before + 1);
    let track = store.patrol_track(&id).unwrap();
    assert_eq!(track.fixes.len(), 11);
    assert_eq!(track.duration_ms, 390_000);
    assert_eq!(track.longest_gap_ms, 300_000);
    assert_eq!(track.outside_geofence, 1);
    // All points on one meridian, northwards: the walk is as long as first → last.
    let straight = geo::distance_m(points[0].location, points[10].location);
    assert!(
        (track.length_m - straight).abs() < 0.01,
        "{}",
        track.length_m
    );
    // The track survives a reopen (it is in the document) and bad batches change nothing.
    let too_many = vec![fix(community.location, T0); MAX_TRACK_BATCH + 1];
    assert!(
        store
            .add_track_fixes(&id, &too_many, CoordSystem::Wgs84, "li.ming")
            .is_err()
    );
    let mut with_bad = points.clone();
    with_bad.push(GpsFix {
        accuracy_m: Some(-1.0),
        ..points[0].clone()
    });
    assert!(
        store
            .add_track_fixes(&id, &with_bad, CoordSystem::Wgs84, "li.ming")
            .is_err()
    );
    drop(store);
    let store = fenlei_core::store::Store::open(dir.path().join("s.sqlite")).unwrap();
    assert_eq!(store.patrol_track(&id).unwrap().fixes.len(), 11);
}

#[test]
fn evidence_received_from_another_device_is_checked_on_read() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let phone = sample_store(&dir.path().join("phone.sqlite"), clock.clone());
    let tablet = sample_store(&dir.path().join("tablet.sqlite"), clock);
    let cid = community_ids(&phone, 1).remove(0);
    let id = phone
        .create_inspection(&new_inspection(&phone, &cid), "li.ming")
        .unwrap();
    let item = sample_standard().items().next().unwrap().code.clone();
    let media = MediaStore::open(dir.path().join("media")).unwrap();
    let path = dir.path().join("p.jpg");
    std::fs::write(&path, jpeg(&quadrants(200, 150), None)).unwrap();
    let attached = phone
        .attach_photo(&media, &id, &item, &path, None, "li.ming")
        .unwrap();
    assert!(!phone.evidence_flags(&id).unwrap()[0].computed_on_read);

    // The tablet receives the document but not the file: flags computed on read, none from
    // the file (it does not have it).
    tablet
        .apply_document_bytes(&id, &phone.document_bytes(&id).unwrap())
        .unwrap();
    let checks = tablet.evidence_flags(&id).unwrap();
    assert_eq!(checks.len(), 1);
    assert!(checks[0].computed_on_read);
    assert_eq!(checks[0].sha256, attached.record.sha256);
    assert!(checks[0].flags.is_empty());

    // Once it holds the file (the same bytes attached to another inspection here), the full
    // checks run on read, and the reuse shows.
    let other = tablet
        .create_inspection(&new_inspection(&tablet, &cid), "li.ming")
        .unwrap();
    tablet
        .attach_photo(&media, &other, &item, &path, None, "li.ming")
        .unwrap();
    let checks = tablet.evidence_flags(&id).unwrap();
    assert!(checks[0].computed_on_read);
    assert!(
        checks[0].flags.contains(&EvidenceFlag::NoExif),
        "{:?}",
        checks[0].flags
    );
    assert!(checks[0]
        .flags
        .iter()
        .any(|f| matches!(f, EvidenceFlag::ReusedPhoto { inspection_ids } if inspection_ids == &vec![other.clone()])));
}
