//! The media index on SQLite: kept blobs, proofs, uploads in progress and their reservations.

use crate::blobs::{BlobStore, StagingKey};
use crate::domain::uploads::*;
use crate::error::ServerResult;
use crate::model::*;
use crate::store::MediaIndex;
use crate::store::sql::*;
use fenlei_core::protocol::media::*;

/// Runs `f` on the writer with commits that skip the fsync (SQLite's `synchronous = NORMAL`,
/// which in WAL mode loses no committed transaction to a crash of the process, only to one of
/// the machine), for reservations: one is written per upload, and losing the last few to a power
/// cut only lets those uploads reserve again on their next request. `FULL` again afterwards.
fn relaxed<T>(
    conn: &mut rusqlite::Connection,
    f: impl FnOnce(&mut rusqlite::Connection) -> ServerResult<T>,
) -> ServerResult<T> {
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    let out = f(conn);
    conn.pragma_update(None, "synchronous", "FULL")?;
    out
}

impl MediaIndex for crate::store::sqlite::SqliteStorage {
    fn blobs(&self) -> &dyn BlobStore {
        self.blobs.as_ref()
    }

    fn referencing_documents(
        &self,
        auth: &DeviceAuth,
        sha256: &str,
    ) -> ServerResult<Vec<(String, Option<i64>)>> {
        let sql = referencing_documents_sql(
            &crate::store::sql::readable(1, 2),
            &crate::store::sql::task_readable_sql(1, 2),
            "",
        );
        self.read(|c| {
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt.query_map(
                rusqlite::params![
                    auth.user.role.as_str(),
                    auth.user.id,
                    sha256,
                    MAX_REFERENCING_DOCUMENTS as i64
                ],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn evidence_reuse(
        &self,
        auth: &DeviceAuth,
        sha256: &str,
        inspection_id: &str,
    ) -> ServerResult<(Vec<String>, u32)> {
        let sql = format!(
            "SELECT DISTINCT e.inspection_id, {} FROM evidence_refs e
             JOIN inspections i ON i.id = e.inspection_id
             LEFT JOIN communities c ON c.id = i.community_id
             WHERE e.sha256 = ?3 AND e.inspection_id <> ?4
             ORDER BY e.inspection_id",
            crate::store::sql::readable(1, 2)
        );
        self.read(|c| {
            let mut readable = Vec::new();
            let mut hidden = 0u32;
            let mut stmt = c.prepare_cached(&sql)?;
            let mut rows = stmt.query(rusqlite::params![
                auth.user.role.as_str(),
                auth.user.id,
                sha256,
                inspection_id
            ])?;
            while let Some(r) = rows.next()? {
                if r.get::<_, bool>(1)? {
                    readable.push(r.get(0)?);
                } else {
                    hidden += 1;
                }
            }
            Ok((readable, hidden))
        })
    }

    fn media_blob(
        &self,
        sha256: &str,
        rendition: MediaRendition,
        blob: &str,
    ) -> ServerResult<Option<StoredBlob>> {
        use rusqlite::OptionalExtension;
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT bytes, mime, device_id FROM media_blobs
                 WHERE sha256 = ?1 AND rendition = ?2 AND blob_sha256 = ?3",
            )?
            .query_row(rusqlite::params![sha256, rendition.as_str(), blob], |r| {
                Ok(StoredBlob {
                    sha256: sha256.to_string(),
                    rendition,
                    blob: blob.to_string(),
                    bytes: r.get::<_, i64>(0)? as u64,
                    mime: r.get(1)?,
                    device_id: r.get(2)?,
                })
            })
            .optional()?)
        })
    }

    fn proved_at(&self, device: &str, blob: &str) -> ServerResult<Option<i64>> {
        use rusqlite::OptionalExtension;
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT proved_at FROM media_proofs WHERE device_id = ?1 AND blob_sha256 = ?2",
            )?
            .query_row([device, blob], |r| r.get(0))
            .optional()?)
        })
    }

    fn held_blobs(
        &self,
        device: &str,
        sha256: &str,
        rendition: MediaRendition,
    ) -> ServerResult<Vec<(StoredBlob, i64)>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(&held_blobs_sql(""))?;
            let rows = stmt.query_map([device, sha256, rendition.as_str()], |r| {
                Ok((
                    StoredBlob {
                        sha256: sha256.to_string(),
                        rendition,
                        blob: r.get(0)?,
                        bytes: r.get::<_, i64>(1)? as u64,
                        mime: r.get(2)?,
                        device_id: r.get(3)?,
                    },
                    r.get(4)?,
                ))
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn record_media_blob(&self, b: &StoredBlob) -> ServerResult<()> {
        let now = crate::model::now();
        let mut w = self.writer();
        let tx = w.transaction()?;
        tx.prepare_cached(
            "INSERT INTO media_blobs (sha256, rendition, blob_sha256, bytes, mime, device_id,
                 stored_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (sha256, rendition, blob_sha256) DO NOTHING",
        )?
        .execute(rusqlite::params![
            b.sha256,
            b.rendition.as_str(),
            b.blob,
            b.bytes as i64,
            b.mime,
            b.device_id,
            now
        ])?;
        tx.prepare_cached(
            "INSERT INTO media_proofs (device_id, blob_sha256, proved_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (device_id, blob_sha256) DO NOTHING",
        )?
        .execute(rusqlite::params![b.device_id, b.blob, now])?;
        tx.prepare_cached(RELEASE_SQL)?.execute(rusqlite::params![
            b.device_id,
            b.sha256,
            b.rendition.as_str(),
            b.blob
        ])?;
        tx.commit()?;
        Ok(())
    }

    fn reserve_staging(
        &self,
        user_id: &str,
        key: &StagingKey,
        total: u64,
        limits: &MediaLimits,
    ) -> ServerResult<Admission> {
        let now = crate::model::now();
        // One writer: the read and the write below cannot interleave with another reservation.
        relaxed(&mut self.writer(), |w| {
            let tx = w.transaction()?;
            let (reserved, open, mine): (i64, i64, i64) =
                tx.prepare_cached(RESERVED_SQL)?.query_row(
                    rusqlite::params![
                        user_id,
                        key.device,
                        key.sha256,
                        key.rendition.as_str(),
                        key.blob
                    ],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )?;
            let decision = admission(reserved as u64, open as u64, mine != 0, total, limits);
            if decision == Admission::Admitted {
                tx.prepare_cached(
                    "INSERT INTO media_staging (device_id, sha256, rendition, blob_sha256, user_id,
                     total, opened_at, touched_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
                 ON CONFLICT (device_id, sha256, rendition, blob_sha256)
                 DO UPDATE SET user_id = excluded.user_id, total = excluded.total,
                     touched_at = excluded.touched_at",
                )?
                .execute(rusqlite::params![
                    key.device,
                    key.sha256,
                    key.rendition.as_str(),
                    key.blob,
                    user_id,
                    total as i64,
                    now
                ])?;
                tx.commit()?;
            }
            Ok(decision)
        })
    }

    fn release_staging(&self, key: &StagingKey) -> ServerResult<()> {
        relaxed(&mut self.writer(), |w| {
            w.prepare_cached(RELEASE_SQL)?.execute(rusqlite::params![
                key.device,
                key.sha256,
                key.rendition.as_str(),
                key.blob
            ])?;
            Ok(())
        })
    }

    fn sweep_reservations(&self, before_ms: i64) -> ServerResult<u64> {
        Ok(self.writer().execute(
            "DELETE FROM media_staging WHERE touched_at < ?1",
            [before_ms],
        )? as u64)
    }
}
