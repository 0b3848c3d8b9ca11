//! Photos and voice notes in the store: attaching one to an item of an inspection, and the
//! evidence checks a supervisor sees next to it (docs/media.md, "In the store").
//!
//! Order of an attach, so that a crash at any point leaves nothing dangling:
//! 1. the inspection, item and community are checked (bad input fails before any file exists);
//! 2. the media folder ingests the file (complete files under content-addressed names, or none);
//! 3. one transaction adds the evidence reference to the document, its projection, the `media`
//!    row and the evidence check; the files are re-checked inside it, under the writer lock.
//!
//! If step 3 fails, files that this attach newly wrote and no `media` row refers to are removed.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use super::projection::Touched;
use super::{Store, lock, queries};
use crate::geo::CoordSystem;
use crate::inspection::{EvidenceRef, GpsFix, InspectionDoc, MediaKind};
use crate::media::verify::{self, EvidenceFlag, GeofenceCheck, GeofenceStatus, VerifyPolicy};
use crate::media::{MediaRecord, MediaStore, Rendition};
use crate::{CoreError, Result};

/// What an attach stored: the media record, the reference now in the document, and the flags
/// computed for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct AttachedMedia {
    pub record: MediaRecord,
    pub evidence: EvidenceRef,
    pub flags: Vec<EvidenceFlag>,
}

/// The flags of one piece of evidence of an inspection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct EvidenceCheck {
    pub item_code: String,
    pub sha256: String,
    pub kind: MediaKind,
    /// As computed at attach time, except `ReusedPhoto`, which is read fresh: it lists every
    /// other inspection holding the same hash now, including ones that used it later.
    pub flags: Vec<EvidenceFlag>,
    pub checked_at_ms: i64,
    /// True for evidence attached on another device: no check was recorded here at attach
    /// time, so the flags were computed when read (see [`Store::evidence_flags`]).
    pub computed_on_read: bool,
}

/// When a geofence check was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum GeofenceStage {
    /// With the first GPS fix recorded in the inspection.
    Start,
    /// When the inspection was submitted, with its latest fix.
    Submit,
    /// When the app asked ("check geofence now"), with the fix it gave.
    OnDemand,
}

impl GeofenceStage {
    fn as_str(self) -> &'static str {
        match self {
            GeofenceStage::Start => "start",
            GeofenceStage::Submit => "submit",
            GeofenceStage::OnDemand => "on_demand",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        match s {
            "start" => Some(GeofenceStage::Start),
            "submit" => Some(GeofenceStage::Submit),
            "on_demand" => Some(GeofenceStage::OnDemand),
            _ => None,
        }
    }
}

/// A recorded "inspector within the community's geofence" check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct RecordedGeofenceCheck {
    pub stage: GeofenceStage,
    /// The fix the check used; `None` when the inspection had none (flagged `NoDeviceFix`).
    pub fix: Option<GpsFix>,
    pub check: GeofenceCheck,
    pub checked_at_ms: i64,
}

/// Fixes in the document are WGS-84 (see `GpsFix`): fixes given in another system are converted
/// when they are recorded (`Store::add_gps_fix_in`, `add_track_fixes`, `check_geofence_now`).
const FIX_SYSTEM: CoordSystem = CoordSystem::Wgs84;

fn json<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| CoreError::Database(format!("encoding JSON: {e}")))
}

fn from_json<T: for<'de> Deserialize<'de>>(s: &str, what: &str) -> Result<T> {
    serde_json::from_str(s)
        .map_err(|e| CoreError::Database(format!("stored {what} is damaged: {e}")))
}

impl Store {
    /// Ingests the photo at `path` into `media` and attaches it to `item_code` of the
    /// inspection, with its evidence flags. `preview`: for a HEIF, the platform's JPEG/PNG of it.
    /// Bad input (unknown inspection or item, a damaged or unsupported file) is a typed error and
    /// leaves no row, no reference and no new file.
    pub fn attach_photo(
        &self,
        media: &MediaStore,
        inspection_id: &str,
        item_code: &str,
        path: &Path,
        preview: Option<&Path>,
        by: &str,
    ) -> Result<AttachedMedia> {
        self.check_attach_target(inspection_id, item_code)?;
        let record = media.ingest_photo(path, preview)?;
        self.commit_attach(media, inspection_id, item_code, record, by)
    }

    /// Ingests a voice note (m4a/AAC, Ogg Opus, WAV) with the phone's transcript and attaches it
    /// to `item_code`, as [`Self::attach_photo`] does for a photo.
    pub fn attach_voice_note(
        &self,
        media: &MediaStore,
        inspection_id: &str,
        item_code: &str,
        path: &Path,
        transcript: Option<String>,
        by: &str,
    ) -> Result<AttachedMedia> {
        self.check_attach_target(inspection_id, item_code)?;
        let record = media.ingest_voice_note(path, transcript)?;
        self.commit_attach(media, inspection_id, item_code, record, by)
    }

    /// The thumbnail and upload rendition hashes an evidence entry declares for `record`
    /// (docs/media-sync.md): the ones media sync uploads, i.e. those of the stored `media` row,
    /// which keeps the renditions it first had, else the record's own.
    pub(crate) fn declared_renditions(
        &self,
        record: &MediaRecord,
    ) -> Result<(Option<String>, Option<String>)> {
        let stored = self.media(&record.sha256)?;
        let pick = |mine: Option<&Rendition>, theirs: Option<&Rendition>| {
            mine.or(theirs).map(|r| r.sha256.clone())
        };
        let (st, su) = match &stored {
            Some(m) => (m.thumbnail.as_ref(), m.upload.as_ref()),
            None => (None, None),
        };
        Ok((
            pick(st, record.thumbnail.as_ref()),
            pick(su, record.upload.as_ref()),
        ))
    }

    /// The stored record of a photo or voice note, if this store has it.
    pub fn media(&self, sha256: &str) -> Result<Option<MediaRecord>> {
        self.read(|c| {
            c.prepare_cached("SELECT * FROM media WHERE sha256 = ?1")?
                .query_row([sha256], |r| Ok(media_row(r)))
                .optional()?
                .transpose()
        })
    }

    /// Every stored photo and voice note the inspection references, in the order attached
    /// (what media sync uploads for it). References received from other devices whose files
    /// this store does not hold are not listed.
    pub fn inspection_media(&self, inspection_id: &str) -> Result<Vec<MediaRecord>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT m.* FROM media m
                 JOIN (SELECT sha256, min(added_at) AS first FROM evidence_refs
                       WHERE inspection_id = ?1 GROUP BY sha256) e USING (sha256)
                 ORDER BY e.first, m.sha256",
            )?;
            let rows = stmt.query_map([inspection_id], |r| Ok(media_row(r)))?;
            rows.map(|r| r?).collect()
        })
    }

    /// The evidence checks of the inspection's current evidence, by item then attach time.
    ///
    /// Evidence that arrived by sync from another device has no row written here: its flags are
    /// computed on read (`computed_on_read`), from this device's copy of the file when it holds
    /// one, else only what needs no file (a reused hash). On read rather than at apply time,
    /// because the checks depend on the file, which usually reaches a device later or never
    /// (media go to the server, not to other phones), and a read always uses what is known now.
    pub fn evidence_flags(&self, inspection_id: &str) -> Result<Vec<EvidenceCheck>> {
        let now = self.now_ms();
        let inspection = match self.inspection(inspection_id) {
            Ok(i) => Some(i),
            Err(CoreError::UnknownInspection(_)) => None,
            Err(e) => return Err(e),
        };
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT e.item_code, e.sha256, e.media, c.flags_json, coalesce(c.checked_at, e.added_at)
                 FROM evidence_refs e
                 LEFT JOIN evidence_checks c USING (inspection_id, item_code, sha256)
                 WHERE e.inspection_id = ?1
                 ORDER BY e.item_code, coalesce(c.checked_at, e.added_at), e.sha256",
            )?;
            let rows: Vec<(String, String, String, Option<String>, i64)> = stmt
                .query_map([inspection_id], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })?
                .collect::<rusqlite::Result<_>>()?;
            rows.into_iter()
                .map(|(item_code, sha256, kind, flags_json, checked_at_ms)| {
                    let others = other_inspections(c, &sha256, inspection_id)?;
                    let computed_on_read = flags_json.is_none();
                    let mut flags: Vec<EvidenceFlag> = match flags_json {
                        Some(j) => from_json(&j, "evidence flags")?,
                        None => {
                            let record = c
                                .prepare_cached("SELECT * FROM media WHERE sha256 = ?1")?
                                .query_row([&sha256], |r| Ok(media_row(r)))
                                .optional()?
                                .transpose()?;
                            let community = match &inspection {
                                Some(i) => queries::community(c, &i.community_id)?,
                                None => None,
                            };
                            match (record, &inspection, community) {
                                (Some(rec), Some(i), Some(com)) => {
                                    verify::check_evidence(rec.kind, rec.exif.as_ref(), i, &com, Vec::new(), now)
                                }
                                _ => Vec::new(),
                            }
                        }
                    };
                    flags.retain(|f| !matches!(f, EvidenceFlag::ReusedPhoto { .. }));
                    if !others.is_empty() {
                        flags.push(EvidenceFlag::ReusedPhoto {
                            inspection_ids: others,
                        });
                    }
                    Ok(EvidenceCheck {
                        item_code,
                        sha256,
                        kind: MediaKind::parse(&kind).ok_or_else(|| {
                            CoreError::Database(format!("unknown media kind {kind:?}"))
                        })?,
                        flags,
                        checked_at_ms: if computed_on_read { now } else { checked_at_ms },
                        computed_on_read,
                    })
                })
                .collect()
        })
    }

    /// The geofence checks recorded for the inspection (start, submit), oldest first.
    pub fn geofence_checks(&self, inspection_id: &str) -> Result<Vec<RecordedGeofenceCheck>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT stage, status, distance_m, geofence_m, fix_json, flags_json, checked_at
                 FROM geofence_checks WHERE inspection_id = ?1 ORDER BY checked_at, id",
            )?;
            let rows: Vec<GeofenceRow> = stmt
                .query_map([inspection_id], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                    ))
                })?
                .collect::<rusqlite::Result<_>>()?;
            rows.into_iter().map(geofence_from_row).collect()
        })
    }

    /// Fails before any file is written when the attach cannot succeed.
    fn check_attach_target(&self, inspection_id: &str, item_code: &str) -> Result<()> {
        let inspection = self.inspection(inspection_id)?;
        let standard = self.standard(&inspection.standard_id, &inspection.standard_version)?;
        if standard.item(item_code).is_none() {
            return Err(CoreError::UnknownItem {
                standard: standard.id.clone(),
                item: item_code.to_string(),
            });
        }
        self.community(&inspection.community_id)?;
        Ok(())
    }

    fn commit_attach(
        &self,
        media: &MediaStore,
        inspection_id: &str,
        item_code: &str,
        record: MediaRecord,
        by: &str,
    ) -> Result<AttachedMedia> {
        let now = self.now_ms();
        let (thumb, upload) = self.declared_renditions(&record)?;
        let evidence = EvidenceRef {
            sha256: record.sha256.clone(),
            item_code: item_code.to_string(),
            media: record.kind,
            added_by: by.to_string(),
            at_ms: now,
            thumb,
            upload,
            device_id: String::new(),
        };
        let mut flags = Vec::new();
        let result = self.edit_with(
            inspection_id,
            Touched::Evidence,
            |doc, standard| {
                let standard = standard.ok_or_else(|| super::missing_standard(doc))?;
                if standard.item(item_code).is_none() {
                    return Err(CoreError::UnknownItem {
                        standard: standard.id.clone(),
                        item: item_code.to_string(),
                    });
                }
                doc.add_evidence(&evidence)
            },
            |tx, doc| {
                ensure_files(media, &record)?;
                upsert_media(tx, &record, now)?;
                let inspection = doc.read()?;
                let community = queries::community(tx, &inspection.community_id)?
                    .ok_or_else(|| CoreError::UnknownCommunity(inspection.community_id.clone()))?;
                let others = other_inspections(tx, &record.sha256, inspection_id)?;
                flags = verify::check_evidence(
                    record.kind,
                    record.exif.as_ref(),
                    &inspection,
                    &community,
                    others,
                    now,
                );
                tx.prepare_cached(
                    "INSERT INTO evidence_checks (inspection_id, item_code, sha256, flags_json, checked_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (inspection_id, item_code, sha256)
                     DO UPDATE SET flags_json = excluded.flags_json, checked_at = excluded.checked_at",
                )?
                .execute(params![inspection_id, item_code, record.sha256, json(&flags)?, now])?;
                Ok(())
            },
        );
        match result {
            Ok(()) => Ok(AttachedMedia {
                record,
                evidence,
                flags,
            }),
            Err(e) => {
                if !record.already_stored {
                    self.discard_unreferenced(media, &record);
                }
                Err(e)
            }
        }
    }

    /// Removes the files of a record no `media` row refers to (an attach that failed after its
    /// ingest). Under the writer lock, so it cannot race a commit, which re-checks its files.
    pub(super) fn discard_unreferenced(&self, media: &MediaStore, record: &MediaRecord) {
        let w = lock(&self.writer);
        let referenced = w
            .conn
            .query_row(
                "SELECT 1 FROM media WHERE sha256 = ?1",
                [&record.sha256],
                |_| Ok(()),
            )
            .optional();
        if !matches!(referenced, Ok(None)) {
            return;
        }
        // Renditions first: the original's presence is what says "this media is complete".
        for rel in [&record.thumbnail, &record.upload]
            .into_iter()
            .flatten()
            .map(|r| &r.path)
            .chain(std::iter::once(&record.original_path))
        {
            let _ = std::fs::remove_file(media.resolve(rel));
        }
    }
}

/// Records the geofence check of `stage` with the inspection's latest fix. For `Start`, only
/// once per inspection. Runs inside the edit's transaction.
pub(super) fn record_geofence(
    tx: &Connection,
    doc: &InspectionDoc,
    stage: GeofenceStage,
    now: i64,
) -> Result<()> {
    let id = doc.id();
    if stage == GeofenceStage::Start {
        let done = tx
            .prepare_cached(
                "SELECT 1 FROM geofence_checks WHERE inspection_id = ?1 AND stage = 'start'",
            )?
            .query_row([id], |_| Ok(()))
            .optional()?;
        if done.is_some() {
            return Ok(());
        }
    }
    let inspection = doc.read()?;
    let Some(community) = queries::community(tx, &inspection.community_id)? else {
        // A document received for a community this device's list lacks: nothing to check against.
        return Ok(());
    };
    let fix = inspection.gps_fixes.iter().max_by_key(|f| f.at_ms).cloned();
    let check = match &fix {
        Some(f) => verify::check_geofence(f, FIX_SYSTEM, &community, now, &VerifyPolicy::default()),
        None => GeofenceCheck {
            status: GeofenceStatus::Uncertain,
            distance_m: None,
            geofence_m: community.geofence_m,
            flags: vec![EvidenceFlag::NoDeviceFix],
        },
    };
    let fix_json = fix.as_ref().map(json).transpose()?;
    tx.prepare_cached(
        "INSERT INTO geofence_checks (inspection_id, stage, status, distance_m, geofence_m, fix_json,
             flags_json, checked_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        id,
        stage.as_str(),
        json(&check.status)?,
        check.distance_m,
        check.geofence_m,
        fix_json,
        json(&check.flags)?,
        now
    ])?;
    Ok(())
}

type GeofenceRow = (
    String,
    String,
    Option<f64>,
    f64,
    Option<String>,
    String,
    i64,
);

fn geofence_from_row(row: GeofenceRow) -> Result<RecordedGeofenceCheck> {
    let (stage, status, distance_m, geofence_m, fix_json, flags_json, checked_at_ms) = row;
    Ok(RecordedGeofenceCheck {
        stage: GeofenceStage::parse(&stage)
            .ok_or_else(|| CoreError::Database(format!("unknown geofence stage {stage:?}")))?,
        fix: fix_json
            .as_deref()
            .map(|j| from_json(j, "GPS fix"))
            .transpose()?,
        check: GeofenceCheck {
            status: from_json(&status, "geofence status")?,
            distance_m,
            geofence_m,
            flags: from_json(&flags_json, "geofence flags")?,
        },
        checked_at_ms,
    })
}

/// Other inspections whose evidence includes this hash, sorted.
fn other_inspections(conn: &Connection, sha256: &str, inspection_id: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT inspection_id FROM evidence_refs
         WHERE sha256 = ?1 AND inspection_id <> ?2 ORDER BY inspection_id",
    )?;
    let ids = stmt
        .query_map(params![sha256, inspection_id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(ids)
}

/// Every file the record names is complete under its final name (a row never points at a
/// missing file, even if a concurrent failed attach of the same bytes cleaned up).
pub(super) fn ensure_files(media: &MediaStore, record: &MediaRecord) -> Result<()> {
    let renditions = [&record.thumbnail, &record.upload];
    for rel in renditions
        .into_iter()
        .flatten()
        .map(|r| &r.path)
        .chain(std::iter::once(&record.original_path))
    {
        if !media.resolve(rel).is_file() {
            return Err(CoreError::Io(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("media file {rel} vanished before it was recorded; attach again"),
            )));
        }
    }
    Ok(())
}

/// Inserts the record's row; an existing row (the same bytes attached before) keeps its values
/// and gains what it lacked: renditions made later from a HEIF's preview, a transcript.
pub(super) fn upsert_media(tx: &Connection, r: &MediaRecord, now: i64) -> Result<()> {
    let exif = r.exif.as_ref();
    let gps = exif.and_then(|e| e.gps.as_ref());
    let (t, u) = (r.thumbnail.as_ref(), r.upload.as_ref());
    tx.prepare_cached(
        "INSERT INTO media (sha256, kind, mime, bytes, original_path,
             thumb_path, thumb_sha256, thumb_bytes, thumb_width, thumb_height,
             upload_path, upload_sha256, upload_bytes, upload_width, upload_height,
             width, height, taken_local, taken_local_ms, offset_minutes,
             lat, lon, altitude_m, h_error_m, orientation, make, model, software, exif_json,
             duration_ms, transcript, flags_json, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
             ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32, ?33)
         ON CONFLICT (sha256) DO UPDATE SET
             thumb_path = coalesce(media.thumb_path, excluded.thumb_path),
             thumb_sha256 = coalesce(media.thumb_sha256, excluded.thumb_sha256),
             thumb_bytes = coalesce(media.thumb_bytes, excluded.thumb_bytes),
             thumb_width = coalesce(media.thumb_width, excluded.thumb_width),
             thumb_height = coalesce(media.thumb_height, excluded.thumb_height),
             upload_path = coalesce(media.upload_path, excluded.upload_path),
             upload_sha256 = coalesce(media.upload_sha256, excluded.upload_sha256),
             upload_bytes = coalesce(media.upload_bytes, excluded.upload_bytes),
             upload_width = coalesce(media.upload_width, excluded.upload_width),
             upload_height = coalesce(media.upload_height, excluded.upload_height),
             transcript = coalesce(media.transcript, excluded.transcript)",
    )?
    .execute(params![
        r.sha256,
        r.kind.as_str(),
        r.mime,
        r.bytes as i64,
        r.original_path,
        t.map(|t| &t.path),
        t.map(|t| &t.sha256),
        t.map(|t| t.bytes as i64),
        t.map(|t| t.width),
        t.map(|t| t.height),
        u.map(|u| &u.path),
        u.map(|u| &u.sha256),
        u.map(|u| u.bytes as i64),
        u.map(|u| u.width),
        u.map(|u| u.height),
        r.width,
        r.height,
        exif.and_then(|e| e.taken_local.as_ref()),
        exif.and_then(|e| e.taken_local_ms),
        exif.and_then(|e| e.offset_minutes),
        gps.map(|g| g.location.lat),
        gps.map(|g| g.location.lon),
        gps.and_then(|g| g.altitude_m),
        gps.and_then(|g| g.h_error_m),
        exif.and_then(|e| e.orientation),
        exif.and_then(|e| e.make.as_ref()),
        exif.and_then(|e| e.model.as_ref()),
        exif.and_then(|e| e.software.as_ref()),
        exif.map(json).transpose()?,
        r.duration_ms.map(|d| d as i64),
        r.transcript,
        json(&r.flags)?,
        now
    ])?;
    Ok(())
}

/// A `media` row back into a record. The EXIF struct comes from `exif_json` (every field, as
/// ingested); its columns duplicate the parts queries filter on.
fn media_row(r: &Row<'_>) -> Result<MediaRecord> {
    let rendition = |prefix: &str| -> rusqlite::Result<Option<Rendition>> {
        let path: Option<String> = r.get(format!("{prefix}_path").as_str())?;
        let Some(path) = path else { return Ok(None) };
        Ok(Some(Rendition {
            path,
            sha256: r.get(format!("{prefix}_sha256").as_str())?,
            bytes: r.get::<_, i64>(format!("{prefix}_bytes").as_str())? as u64,
            width: r.get(format!("{prefix}_width").as_str())?,
            height: r.get(format!("{prefix}_height").as_str())?,
        }))
    };
    let kind: String = r.get("kind")?;
    let exif_json: Option<String> = r.get("exif_json")?;
    let flags_json: String = r.get("flags_json")?;
    Ok(MediaRecord {
        sha256: r.get("sha256")?,
        kind: MediaKind::parse(&kind)
            .ok_or_else(|| CoreError::Database(format!("unknown media kind {kind:?}")))?,
        mime: r.get("mime")?,
        bytes: r.get::<_, i64>("bytes")? as u64,
        original_path: r.get("original_path")?,
        width: r.get("width")?,
        height: r.get("height")?,
        exif: exif_json
            .as_deref()
            .map(|j| from_json(j, "EXIF"))
            .transpose()?,
        thumbnail: rendition("thumb")?,
        upload: rendition("upload")?,
        duration_ms: r.get::<_, Option<i64>>("duration_ms")?.map(|d| d as u64),
        transcript: r.get("transcript")?,
        flags: from_json(&flags_json, "media flags")?,
        already_stored: true,
    })
}
