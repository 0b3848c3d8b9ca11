//! The media index on PostgreSQL (the bytes are in the blob store). The access rule is the sync
//! rule, shared with SQLite through `queries::readable` and `queries::task_readable`.

use super::PgStorage;
use super::queries::{readable, task_readable};
use crate::error::{ServerError, ServerResult};
use crate::media::StoredBlob;
use crate::storage::DeviceAuth;
use fenlei_core::sync::media_protocol::MediaRendition;

impl crate::media::MediaIndex for PgStorage {
    fn blobs(&self) -> &dyn crate::blobs::BlobStore {
        self.blob_store()
    }

    fn media_accessible(&self, auth: &DeviceAuth, sha256: &str) -> ServerResult<bool> {
        // Evidence of a readable inspection, or a readable task's finding or closure photo.
        let sql = format!(
            "SELECT EXISTS (SELECT 1 FROM evidence_refs e
                 JOIN inspections i ON i.id = e.inspection_id
                 LEFT JOIN communities c ON c.id = i.community_id
                 WHERE e.sha256 = $3 AND {})
             OR EXISTS (SELECT 1 FROM rectification_evidence v
                 JOIN rectifications t ON t.id = v.task_id
                 LEFT JOIN communities c ON c.id = t.community_id
                 WHERE v.sha256 = $3 AND {})",
            readable(1, 2),
            task_readable(1, 2)
        );
        Ok(self
            .client()?
            .query_one(&sql, &[&auth.user.role.as_str(), &auth.user.id, &sha256])?
            .try_get(0)?)
    }

    fn evidence_reuse(
        &self,
        auth: &DeviceAuth,
        sha256: &str,
        inspection_id: &str,
    ) -> ServerResult<(Vec<String>, u32)> {
        let sql = format!(
            "SELECT DISTINCT e.inspection_id COLLATE \"C\", {} FROM evidence_refs e
             JOIN inspections i ON i.id = e.inspection_id
             LEFT JOIN communities c ON c.id = i.community_id
             WHERE e.sha256 = $3 AND e.inspection_id <> $4
             ORDER BY 1",
            readable(1, 2)
        );
        let mut visible = Vec::new();
        let mut hidden = 0u32;
        for r in self.client()?.query(
            &sql,
            &[
                &auth.user.role.as_str(),
                &auth.user.id,
                &sha256,
                &inspection_id,
            ],
        )? {
            if r.try_get::<_, bool>(1)? {
                visible.push(r.try_get(0)?);
            } else {
                hidden += 1;
            }
        }
        Ok((visible, hidden))
    }

    fn media_blob(
        &self,
        sha256: &str,
        rendition: MediaRendition,
    ) -> ServerResult<Option<StoredBlob>> {
        self.client()?
            .query_opt(
                "SELECT blob_sha256, bytes, mime, device_id FROM media_blobs
                 WHERE sha256 = $1 AND rendition = $2",
                &[&sha256, &rendition.as_str()],
            )?
            .map(|r| {
                Ok(StoredBlob {
                    sha256: sha256.to_string(),
                    rendition,
                    blob: r.try_get(0)?,
                    bytes: r.try_get::<_, i64>(1)? as u64,
                    mime: r.try_get(2)?,
                    device_id: r.try_get(3)?,
                })
            })
            .transpose()
    }

    fn record_media_blob(&self, b: &StoredBlob) -> ServerResult<StoredBlob> {
        // The first rendition recorded stays (another instance may finish the same one).
        self.client()?.execute(
            "INSERT INTO media_blobs (sha256, rendition, blob_sha256, bytes, mime, device_id,
                 stored_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (sha256, rendition) DO NOTHING",
            &[
                &b.sha256,
                &b.rendition.as_str(),
                &b.blob,
                &(b.bytes as i64),
                &b.mime,
                &b.device_id,
                &crate::storage::now(),
            ],
        )?;
        self.media_blob(&b.sha256, b.rendition)?
            .ok_or_else(|| ServerError::Internal("media blob row vanished".into()))
    }
}
