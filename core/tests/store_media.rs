//! Photos and voice notes attached through the store: the media row, the evidence reference in
//! the document and projection, the stored flags, geofence checks, and nothing half-written on
//! bad input or a failed commit. Real SQLite files and real files on disk.

mod common;
mod media_support;

use std::path::PathBuf;

use common::*;
use fenlei_core::CoreError;
use fenlei_core::geo::LatLon;
use fenlei_core::inspection::{EditContext, GpsFix, InspectionStatus, MediaKind};
use fenlei_core::media::MediaStore;
use fenlei_core::media::verify::{EvidenceFlag, GeofenceStatus};
use fenlei_core::store::{GeofenceStage, Store};
use media_support::*;
use rusqlite::Connection;

struct Fixture {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    store: Store,
    media: MediaStore,
    clock: std::sync::Arc<ManualClock>,
    community: fenlei_core::community::Community,
    item: String,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let clock = ManualClock::new(T0);
    let store = sample_store(&dir.join("fenlei.sqlite"), clock.clone());
    let media = MediaStore::open(dir.join("media")).unwrap();
    let id = community_ids(&store, 1).remove(0);
    let community = store.community(&id).unwrap();
    let item = sample_standard().items().next().unwrap().code.clone();
    Fixture {
        _dir: tmp,
        dir,
        store,
        media,
        clock,
        community,
        item,
    }
}

impl Fixture {
    fn inspection(&self) -> String {
        let new = new_inspection(&self.store, &self.community.id);
        self.store.create_inspection(&new, "li.ming").unwrap()
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    /// A photo taken at the community, five minutes into the inspection (T0 is 08:00 UTC+8).
    fn good_photo(&self) -> PathBuf {
        let spec = ExifSpec {
            date_time_original: Some("2026:09:01 08:05:00".into()),
            offset_time_original: Some("+08:00".into()),
            gps: Some((self.community.location.lat, self.community.location.lon)),
            make: Some("HUAWEI".into()),
            ..Default::default()
        };
        self.write("good.jpg", &jpeg(&quadrants(400, 300), Some(&spec)))
    }

    fn fix_at(&self, location: LatLon, at_ms: i64) -> GpsFix {
        GpsFix {
            location,
            accuracy_m: Some(8.0),
            altitude_m: None,
            provider: "gps".into(),
            at_ms,
            is_mock: false,
        }
    }

    fn db(&self) -> Connection {
        Connection::open(self.dir.join("fenlei.sqlite")).unwrap()
    }

    fn count(&self, sql: &str) -> i64 {
        self.db().query_row(sql, [], |r| r.get(0)).unwrap()
    }

    fn media_files(&self) -> Vec<PathBuf> {
        files_under(self.media.root())
    }
}

/// A real phone photo from the shared corpus when present (taken in Italy, so far from every
/// community of the sample city), else a generated one with GPS in Italy.
fn far_photo(f: &Fixture) -> PathBuf {
    if let Some(corpus) = corpus() {
        return corpus.join("gps/DSCN0010.jpg");
    }
    let spec = ExifSpec {
        date_time_original: Some("2008:10:22 16:28:39".into()),
        gps: Some((43.467, 11.885)),
        make: Some("NIKON".into()),
        ..Default::default()
    };
    f.write("far.jpg", &jpeg(&quadrants(640, 480), Some(&spec)))
}

fn north(of: LatLon, metres: f64) -> LatLon {
    LatLon {
        lat: of.lat + metres / 111_195.0,
        lon: of.lon,
    }
}

#[test]
fn a_photo_is_stored_referenced_projected_and_checked() {
    let f = fixture();
    let id = f.inspection();
    f.clock.advance(10 * 60_000);
    let photo = far_photo(&f);
    let attached = f
        .store
        .attach_photo(&f.media, &id, &f.item, &photo, None, "li.ming")
        .unwrap();
    let sha = attached.record.sha256.clone();

    // The document and its projection hold the reference.
    let inspection = f.store.inspection(&id).unwrap();
    assert_eq!(inspection.evidence.len(), 1);
    assert_eq!(inspection.evidence[0].sha256, sha);
    assert_eq!(inspection.evidence[0].item_code, f.item);
    assert_eq!(inspection.evidence[0].media, MediaKind::Photo);
    assert_eq!(
        f.count(&format!(
            "SELECT count(*) FROM evidence_refs WHERE inspection_id = '{id}' AND sha256 = '{sha}'"
        )),
        1
    );

    // The media row gives back the record, and its files are on disk.
    let stored = f.store.media(&sha).unwrap().expect("media row");
    assert_eq!(stored.exif, attached.record.exif);
    assert_eq!(stored.thumbnail, attached.record.thumbnail);
    assert_eq!(stored.upload, attached.record.upload);
    assert_eq!(stored.bytes, std::fs::metadata(&photo).unwrap().len());
    assert!(f.media.resolve(&stored.original_path).is_file());
    assert!(
        f.media
            .resolve(&stored.thumbnail.as_ref().unwrap().path)
            .is_file()
    );
    assert!(stored.exif.as_ref().unwrap().gps.is_some());
    assert_eq!(f.store.inspection_media(&id).unwrap(), vec![stored]);

    // Thousands of kilometres from the community: flagged, stored, and read back.
    let far = attached
        .flags
        .iter()
        .find_map(|fl| match fl {
            EvidenceFlag::PhotoFarFromCommunity { distance_m, .. } => Some(*distance_m),
            _ => None,
        })
        .expect("distance flag");
    assert!(far > 1_000_000.0, "{far}");
    assert!(attached.flags.contains(&EvidenceFlag::NoDeviceFix));
    let checks = f.store.evidence_flags(&id).unwrap();
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0].sha256, sha);
    assert_eq!(checks[0].kind, MediaKind::Photo);
    assert_eq!(checks[0].flags, attached.flags);

    // The checks survive a projection rebuild (they cannot be derived from the document).
    f.store.rebuild_projection().unwrap();
    assert_eq!(f.store.evidence_flags(&id).unwrap(), checks);
}

#[test]
fn a_good_photo_at_the_community_with_a_fix_has_no_flags() {
    let f = fixture();
    let id = f.inspection();
    f.clock.advance(4 * 60_000);
    let near = north(f.community.location, 20.0);
    f.store
        .add_gps_fix(&id, &f.fix_at(near, f.store.now_ms()), "li.ming")
        .unwrap();
    f.clock.advance(6 * 60_000);
    let attached = f
        .store
        .attach_photo(&f.media, &id, &f.item, &f.good_photo(), None, "li.ming")
        .unwrap();
    assert_eq!(attached.flags, vec![]);
    assert_eq!(f.store.evidence_flags(&id).unwrap()[0].flags, vec![]);
}

#[test]
fn the_same_photo_in_a_second_inspection_is_flagged_as_reused_on_both_sides() {
    let f = fixture();
    let first = f.inspection();
    let photo = f.good_photo();
    let a = f
        .store
        .attach_photo(&f.media, &first, &f.item, &photo, None, "li.ming")
        .unwrap();
    assert!(
        !a.flags
            .iter()
            .any(|fl| matches!(fl, EvidenceFlag::ReusedPhoto { .. }))
    );
    // Attached twice to the same inspection (another item) is not reuse.
    let other_item = sample_standard().items().nth(1).unwrap().code.clone();
    let again = f
        .store
        .attach_photo(&f.media, &first, &other_item, &photo, None, "li.ming")
        .unwrap();
    assert!(again.record.already_stored);
    assert!(
        !again
            .flags
            .iter()
            .any(|fl| matches!(fl, EvidenceFlag::ReusedPhoto { .. }))
    );

    let second = f.inspection();
    let b = f
        .store
        .attach_photo(&f.media, &second, &f.item, &photo, None, "wang.fang")
        .unwrap();
    assert_eq!(b.record.sha256, a.record.sha256);
    assert!(b.flags.contains(&EvidenceFlag::ReusedPhoto {
        inspection_ids: vec![first.clone()]
    }));
    // The earlier inspection now shows the later use too.
    let earlier = f.store.evidence_flags(&first).unwrap();
    assert_eq!(earlier.len(), 2);
    for check in earlier {
        assert!(check.flags.contains(&EvidenceFlag::ReusedPhoto {
            inspection_ids: vec![second.clone()]
        }));
    }
    // One media row for the one file.
    assert_eq!(f.count("SELECT count(*) FROM media"), 1);

    // Removing the evidence removes its check from the list.
    f.store
        .remove_evidence(&second, &f.item, &b.record.sha256, "wang.fang")
        .unwrap();
    assert!(f.store.evidence_flags(&second).unwrap().is_empty());
    assert!(
        f.store.evidence_flags(&first).unwrap()[0]
            .flags
            .iter()
            .all(|fl| !matches!(fl, EvidenceFlag::ReusedPhoto { .. }))
    );
}

fn assert_nothing_written(f: &Fixture, id: &str) {
    assert_eq!(f.count("SELECT count(*) FROM media"), 0);
    assert_eq!(f.count("SELECT count(*) FROM evidence_checks"), 0);
    assert_eq!(f.count("SELECT count(*) FROM evidence_refs"), 0);
    assert!(f.store.inspection(id).unwrap().evidence.is_empty());
    assert_eq!(f.media_files(), Vec::<PathBuf>::new());
}

#[test]
fn corrupt_or_unsupported_files_leave_no_row_no_evidence_and_no_file() {
    let f = fixture();
    let id = f.inspection();
    let mut bad: Vec<PathBuf> = vec![
        f.write("empty.jpg", b""),
        f.write("text.jpg", b"this is not a photo at all"),
    ];
    let good = jpeg(&quadrants(400, 300), None);
    bad.push(f.write("truncated.jpg", &good[..good.len() / 3]));
    if let Some(corpus) = corpus() {
        bad.push(corpus.join("invalid/truncated_olympus.jpg"));
    }
    for path in &bad {
        let err = f
            .store
            .attach_photo(&f.media, &id, &f.item, path, None, "li.ming")
            .expect_err("refused");
        assert!(
            matches!(err, CoreError::InvalidMedia { .. }),
            "{}: {err:?}",
            path.display()
        );
        assert_nothing_written(&f, &id);
    }
    // A voice note that is a photo is refused the same way.
    let err = f
        .store
        .attach_voice_note(&f.media, &id, &f.item, &f.good_photo(), None, "li.ming")
        .unwrap_err();
    assert!(matches!(err, CoreError::InvalidMedia { .. }), "{err:?}");
    assert_nothing_written(&f, &id);
}

#[test]
fn unknown_inspection_or_item_fails_before_any_file_is_written() {
    let f = fixture();
    let id = f.inspection();
    let photo = f.good_photo();
    let err = f
        .store
        .attach_photo(&f.media, &id, "NO-SUCH-ITEM", &photo, None, "li.ming")
        .unwrap_err();
    assert!(matches!(err, CoreError::UnknownItem { .. }), "{err:?}");
    assert_nothing_written(&f, &id);
    let err = f
        .store
        .attach_photo(
            &f.media,
            "no-such-inspection",
            &f.item,
            &photo,
            None,
            "li.ming",
        )
        .unwrap_err();
    assert!(matches!(err, CoreError::UnknownInspection(_)), "{err:?}");
    assert_nothing_written(&f, &id);
}

#[test]
fn a_failed_commit_removes_the_new_files_but_keeps_files_other_rows_use() {
    let f = fixture();
    let id = f.inspection();
    // Fault injection with real SQLite: the evidence check insert aborts the transaction.
    f.db()
        .execute_batch(
            "CREATE TRIGGER fail_checks BEFORE INSERT ON evidence_checks
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
        )
        .unwrap();
    let photo = f.good_photo();
    let err = f
        .store
        .attach_photo(&f.media, &id, &f.item, &photo, None, "li.ming")
        .unwrap_err();
    assert!(matches!(err, CoreError::Database(_)), "{err:?}");
    assert_nothing_written(&f, &id);

    // With the photo already stored for another inspection, a failed attach keeps its files.
    f.db().execute_batch("DROP TRIGGER fail_checks").unwrap();
    let other = f.inspection();
    let ok = f
        .store
        .attach_photo(&f.media, &other, &f.item, &photo, None, "li.ming")
        .unwrap();
    let files = f.media_files();
    assert_eq!(files.len(), 3, "original, thumbnail, upload: {files:?}");
    f.db()
        .execute_batch(
            "CREATE TRIGGER fail_checks BEFORE INSERT ON evidence_checks
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
        )
        .unwrap();
    f.store
        .attach_photo(&f.media, &id, &f.item, &photo, None, "li.ming")
        .unwrap_err();
    assert_eq!(f.media_files(), files);
    assert!(f.store.inspection(&id).unwrap().evidence.is_empty());
    assert!(f.store.media(&ok.record.sha256).unwrap().is_some());

    // The store is still usable: the inspection takes the photo once the fault is gone.
    f.db().execute_batch("DROP TRIGGER fail_checks").unwrap();
    f.store
        .attach_photo(&f.media, &id, &f.item, &photo, None, "li.ming")
        .unwrap();
    assert_eq!(f.store.inspection(&id).unwrap().evidence.len(), 1);
}

#[test]
fn a_voice_note_is_stored_with_duration_and_transcript() {
    let f = fixture();
    let id = f.inspection();
    let note = f.write("note.wav", &wav(16_000, 1, 24_000));
    let attached = f
        .store
        .attach_voice_note(
            &f.media,
            &id,
            &f.item,
            &note,
            Some("  厨余垃圾桶满溢  ".into()),
            "li.ming",
        )
        .unwrap();
    assert_eq!(attached.record.kind, MediaKind::VoiceNote);
    assert_eq!(attached.evidence.media, MediaKind::VoiceNote);
    assert_eq!(attached.flags, vec![EvidenceFlag::NoDeviceFix]);
    let stored = f.store.media(&attached.record.sha256).unwrap().unwrap();
    assert_eq!(stored.duration_ms, Some(1_500));
    assert_eq!(stored.transcript.as_deref(), Some("厨余垃圾桶满溢"));
    assert_eq!(stored.mime, attached.record.mime);
    let checks = f.store.evidence_flags(&id).unwrap();
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0].kind, MediaKind::VoiceNote);
    assert!(f.store.media(&"0".repeat(64)).unwrap().is_none());
}

#[test]
fn geofence_is_checked_at_the_first_fix_and_at_submission() {
    let f = fixture();
    let id = f.inspection();
    let inside = north(f.community.location, 10.0);
    f.store
        .add_gps_fix(&id, &f.fix_at(inside, f.store.now_ms()), "li.ming")
        .unwrap();
    // A later fix does not add another start check.
    f.clock.advance(60_000);
    let far = north(f.community.location, 5_000.0);
    f.store
        .add_gps_fix(&id, &f.fix_at(far, f.store.now_ms()), "li.ming")
        .unwrap();
    f.clock.advance(30_000);
    f.store
        .set_status(
            &id,
            InspectionStatus::Submitted,
            &EditContext::by("li.ming"),
            None,
        )
        .unwrap();
    let checks = f.store.geofence_checks(&id).unwrap();
    assert_eq!(checks.len(), 2, "{checks:?}");
    assert_eq!(checks[0].stage, GeofenceStage::Start);
    assert_eq!(checks[0].check.status, GeofenceStatus::Inside);
    assert_eq!(checks[0].check.flags, vec![]);
    assert_eq!(checks[0].fix.as_ref().unwrap().location, inside);
    assert_eq!(checks[1].stage, GeofenceStage::Submit);
    assert_eq!(checks[1].check.status, GeofenceStatus::Outside);
    assert!(checks[1].check.distance_m.unwrap() > 4_900.0);
    assert!(
        checks[1]
            .check
            .flags
            .iter()
            .any(|fl| matches!(fl, EvidenceFlag::OutsideGeofence { .. }))
    );
}

#[test]
fn submitting_without_any_fix_records_that_there_was_none() {
    let f = fixture();
    let id = f.inspection();
    f.store
        .set_status(
            &id,
            InspectionStatus::Submitted,
            &EditContext::by("li.ming"),
            None,
        )
        .unwrap();
    let checks = f.store.geofence_checks(&id).unwrap();
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0].stage, GeofenceStage::Submit);
    assert_eq!(checks[0].fix, None);
    assert_eq!(checks[0].check.flags, vec![EvidenceFlag::NoDeviceFix]);
}

#[test]
fn a_heif_first_attached_without_preview_gains_renditions_when_one_comes() {
    let Some(corpus) = corpus() else { return };
    let f = fixture();
    let id = f.inspection();
    let heif = corpus.join("heic/sample.heif");
    let first = f
        .store
        .attach_photo(&f.media, &id, &f.item, &heif, None, "li.ming")
        .unwrap();
    assert_eq!(first.record.thumbnail, None);
    assert_eq!(
        f.store
            .media(&first.record.sha256)
            .unwrap()
            .unwrap()
            .thumbnail,
        None
    );
    let preview = f.write("preview.jpg", &jpeg(&quadrants(400, 300), None));
    let other_item = sample_standard().items().nth(1).unwrap().code.clone();
    let second = f
        .store
        .attach_photo(&f.media, &id, &other_item, &heif, Some(&preview), "li.ming")
        .unwrap();
    assert_eq!(second.record.sha256, first.record.sha256);
    let stored = f.store.media(&first.record.sha256).unwrap().unwrap();
    let thumb = stored.thumbnail.expect("thumbnail from the preview");
    assert!(f.media.resolve(&thumb.path).is_file());
    assert!(stored.upload.is_some());
    assert_eq!(f.count("SELECT count(*) FROM media"), 1);
}

#[test]
fn the_same_photo_attached_from_several_threads_is_stored_once_and_referenced_by_each() {
    let f = fixture();
    let ids: Vec<String> = (0..4).map(|_| f.inspection()).collect();
    let photo = f.good_photo();
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = ids
            .iter()
            .map(|id| {
                let (f, photo) = (&f, &photo);
                s.spawn(move || {
                    f.store
                        .attach_photo(&f.media, id, &f.item, photo, None, "li.ming")
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for r in &results {
        assert!(r.is_ok(), "{r:?}");
    }
    assert_eq!(f.count("SELECT count(*) FROM media"), 1);
    assert_eq!(f.count("SELECT count(*) FROM evidence_checks"), 4);
    for id in &ids {
        assert_eq!(f.store.inspection(id).unwrap().evidence.len(), 1);
        let others: Vec<String> = ids.iter().filter(|o| *o != id).cloned().collect();
        let mut expected = others;
        expected.sort();
        assert!(f.store.evidence_flags(id).unwrap()[0].flags.contains(
            &EvidenceFlag::ReusedPhoto {
                inspection_ids: expected
            }
        ));
    }
    let record = f
        .store
        .media(&results[0].as_ref().unwrap().record.sha256)
        .unwrap()
        .unwrap();
    assert!(f.media.resolve(&record.original_path).is_file());
}

#[test]
fn closure_photos_get_a_media_row_and_join_the_upload_queue() {
    use fenlei_core::rectification::NewRectification;
    let f = fixture();
    let id = f.inspection();
    let task = f
        .store
        .open_rectification(
            &NewRectification {
                community_id: f.community.id.clone(),
                inspection_id: id.clone(),
                item_code: f.item.clone(),
                item_title: "投放点".into(),
                responsible: "物业".into(),
                deadline_days: 3,
                deduction: None,
                required_evidence: vec!["photo_after".into()],
                finding_evidence: vec![],
                source: "inspector".into(),
            },
            "li.ming",
        )
        .unwrap();
    assert!(f.store.pending_media_uploads().unwrap().is_empty());
    // Refused input (unknown task, bad kind, not an image) leaves no row and no file.
    let photo = f.good_photo();
    assert!(
        f.store
            .attach_closure_photo(
                &f.media,
                "no-such-task",
                "photo_after",
                &photo,
                None,
                "li.ming"
            )
            .is_err()
    );
    assert!(
        f.store
            .attach_closure_photo(&f.media, &task, "selfie", &photo, None, "li.ming")
            .is_err()
    );
    let junk = f.write("junk.jpg", b"not a photo");
    assert!(
        f.store
            .attach_closure_photo(&f.media, &task, "photo_after", &junk, None, "li.ming")
            .is_err()
    );
    assert!(files_under(&f.dir.join("media/originals")).is_empty());
    assert!(f.store.pending_media_uploads().unwrap().is_empty());

    let record = f
        .store
        .attach_closure_photo(&f.media, &task, "photo_after", &photo, None, "li.ming")
        .unwrap();
    let t = f.store.rectification(&task).unwrap();
    assert_eq!(t.closure_photos(), vec![record.sha256.clone()]);
    assert!(t.missing_evidence().is_empty());
    assert_eq!(
        f.store.media(&record.sha256).unwrap().unwrap().sha256,
        record.sha256
    );
    // Thumbnail, rendition and original are queued for media sync.
    let pending = f.store.pending_media_uploads().unwrap();
    assert_eq!(pending.len(), 3, "{pending:?}");
    assert!(pending.iter().all(|p| p.sha256 == record.sha256));
}
