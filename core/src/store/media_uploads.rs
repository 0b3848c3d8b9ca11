//! Upload state of photos and voice notes (schema V5, `media_uploads`): what media sync has
//! confirmed on the server, so a restarted app asks only about files not yet done. The server's
//! answer stays the truth for where to resume (docs/media-sync.md); these rows are the device's
//! memory of it, and what the app shows ("3 photos waiting for Wi-Fi").

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::{Store, lock};
use crate::Result;
use crate::inspection::MediaKind;
use crate::protocol::media::MediaRendition;

/// One file media sync still has to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingUpload {
    /// The evidence hash (the original's SHA-256).
    pub sha256: String,
    pub rendition: MediaRendition,
    pub kind: MediaKind,
    /// SHA-256 of this file.
    pub blob: String,
    pub bytes: u64,
    pub mime: String,
    /// Relative to the media folder.
    pub path: String,
    /// Bytes the server confirmed at the last contact (a hint; the server's answer decides).
    pub confirmed: u64,
    /// When the media was first attached to an inspection (upload order within a rendition).
    pub first_attached_ms: i64,
}

/// Where one file of a photo or voice note stands, for the app's "waiting for upload" views.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct MediaUploadState {
    pub sha256: String,
    pub rendition: MediaRendition,
    pub bytes: u64,
    /// Bytes the server has confirmed.
    pub confirmed: u64,
    pub done: bool,
    /// Why the last attempt did not finish (held for Wi-Fi, waiting for the document, refused).
    pub note: Option<String>,
}

impl Store {
    /// Every file of every photo and voice note referenced by an inspection or a rectification
    /// task (finding or closure photo) held here that the server has not confirmed yet, thumbnails first, then upload renditions, then originals,
    /// each in attach order.
    pub fn pending_media_uploads(&self) -> Result<Vec<PendingUpload>> {
        let mut out = self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT m.sha256, m.kind, m.mime, m.bytes, m.original_path,
                        m.thumb_path, m.thumb_sha256, m.thumb_bytes,
                        m.upload_path, m.upload_sha256, m.upload_bytes, e.first
                 FROM media m
                 JOIN (SELECT sha256, min(first) AS first FROM (
                         SELECT sha256, min(added_at) AS first FROM evidence_refs GROUP BY sha256
                         UNION ALL
                         SELECT v.sha256, min(t.updated_at) FROM rectification_evidence v
                         JOIN rectifications t ON t.id = v.task_id GROUP BY v.sha256)
                       GROUP BY sha256) e
                   USING (sha256)",
            )?;
            let mut rows = stmt.query([])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let sha: String = r.get(0)?;
                let kind: String = r.get(1)?;
                let kind = MediaKind::parse(&kind).unwrap_or(MediaKind::Photo);
                let first: i64 = r.get(11)?;
                let mut push = |rendition, blob: String, bytes: i64, mime: &str, path: String| {
                    out.push(PendingUpload {
                        sha256: sha.clone(),
                        rendition,
                        kind,
                        blob,
                        bytes: bytes as u64,
                        mime: mime.to_string(),
                        path,
                        confirmed: 0,
                        first_attached_ms: first,
                    })
                };
                if let (Some(p), Some(h), Some(b)) = (
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, Option<String>>(6)?,
                    r.get::<_, Option<i64>>(7)?,
                ) {
                    push(MediaRendition::Thumb, h, b, "image/jpeg", p);
                }
                if let (Some(p), Some(h), Some(b)) = (
                    r.get::<_, Option<String>>(8)?,
                    r.get::<_, Option<String>>(9)?,
                    r.get::<_, Option<i64>>(10)?,
                ) {
                    push(MediaRendition::Upload, h, b, "image/jpeg", p);
                }
                let mime: String = r.get(2)?;
                push(
                    MediaRendition::Original,
                    sha.clone(),
                    r.get(3)?,
                    &mime,
                    r.get(4)?,
                );
            }
            // Drop what is done; fill in what the server confirmed last time.
            let mut state = c.prepare_cached(
                "SELECT confirmed, done_at FROM media_uploads WHERE sha256 = ?1 AND rendition = ?2
                   AND blob_sha256 = ?3",
            )?;
            let mut keep = Vec::with_capacity(out.len());
            for mut p in out {
                let row: Option<(i64, Option<i64>)> = state
                    .query_row(params![p.sha256, p.rendition.as_str(), p.blob], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .optional()?;
                match row {
                    Some((_, Some(_))) => {}
                    Some((confirmed, None)) => {
                        p.confirmed = confirmed as u64;
                        keep.push(p);
                    }
                    None => keep.push(p),
                }
            }
            Ok(keep)
        })?;
        out.sort_by(|a, b| {
            (a.rendition, a.first_attached_ms, &a.sha256).cmp(&(
                b.rendition,
                b.first_attached_ms,
                &b.sha256,
            ))
        });
        Ok(out)
    }

    /// Records what the server confirmed of a file (and why it stopped, if it did).
    pub fn record_media_upload(
        &self,
        upload: &PendingUpload,
        confirmed: u64,
        done: bool,
        note: Option<&str>,
    ) -> Result<()> {
        let now = self.now_ms();
        let w = lock(&self.writer);
        w.conn
            .prepare_cached(
                "INSERT INTO media_uploads (sha256, rendition, blob_sha256, bytes, confirmed,
                     done_at, note, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (sha256, rendition) DO UPDATE SET
                     blob_sha256 = excluded.blob_sha256, bytes = excluded.bytes,
                     confirmed = excluded.confirmed, done_at = excluded.done_at,
                     note = excluded.note, updated_at = excluded.updated_at",
            )?
            .execute(params![
                upload.sha256,
                upload.rendition.as_str(),
                upload.blob,
                upload.bytes as i64,
                confirmed as i64,
                done.then_some(now),
                note,
                now
            ])?;
        Ok(())
    }

    /// The upload state of every file of the inspection's media held here.
    pub fn media_upload_states(&self, inspection_id: &str) -> Result<Vec<MediaUploadState>> {
        let pending = self.pending_media_uploads()?;
        let media = self.inspection_media(inspection_id)?;
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT rendition, confirmed, note FROM media_uploads WHERE sha256 = ?1",
            )?;
            let mut out = Vec::new();
            for m in &media {
                // (rendition, confirmed, note) of each row of this media.
                let rows: Vec<(String, i64, Option<String>)> = stmt
                    .query_map([&m.sha256], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect::<rusqlite::Result<_>>()?;
                let files = [
                    (MediaRendition::Thumb, m.thumbnail.as_ref().map(|t| t.bytes)),
                    (MediaRendition::Upload, m.upload.as_ref().map(|u| u.bytes)),
                    (MediaRendition::Original, Some(m.bytes)),
                ];
                for (rendition, bytes) in files {
                    let Some(bytes) = bytes else { continue };
                    let row = rows.iter().find(|r| r.0 == rendition.as_str());
                    let still = pending
                        .iter()
                        .any(|p| p.sha256 == m.sha256 && p.rendition == rendition);
                    out.push(MediaUploadState {
                        sha256: m.sha256.clone(),
                        rendition,
                        bytes,
                        confirmed: if still {
                            row.map(|r| r.1 as u64).unwrap_or(0)
                        } else {
                            bytes
                        },
                        done: !still,
                        note: row.and_then(|r| r.2.clone()),
                    });
                }
            }
            Ok(out)
        })
    }
}
