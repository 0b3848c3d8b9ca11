//! The media index on PostgreSQL (the bytes are in the blob store). The access rule is the sync
//! rule, shared with SQLite through `queries::readable` and `queries::task_readable`; the
//! statements shared with SQLite are written once in `crate::media`.

use super::queries::{readable, task_readable};
use super::{PgStorage, pg_params};
use crate::blobs::StagingKey;
use crate::domain::uploads::MAX_REFERENCING_DOCUMENTS;
use crate::domain::uploads::admission;
use crate::error::ServerResult;
use crate::model::DeviceAuth;
use crate::model::{Admission, MediaLimits, StoredBlob};
use crate::store::sql::RELEASE_SQL;
use crate::store::sql::RESERVED_SQL;
use crate::store::sql::held_blobs_sql;
use crate::store::sql::referencing_documents_sql;
use fenlei_core::protocol::media::MediaRendition;

impl crate::store::MediaIndex for PgStorage {
    fn blobs(&self) -> &dyn crate::blobs::BlobStore {
        self.blob_store()
    }

    fn referencing_documents(
        &self,
        auth: &DeviceAuth,
        sha256: &str,
    ) -> ServerResult<Vec<(String, Option<i64>)>> {
        let sql = pg_params(&referencing_documents_sql(
            &readable(1, 2),
            &task_readable(1, 2),
            "COLLATE \"C\"",
        ));
        Ok(self
            .client()?
            .query(
                &sql,
                &[
                    &auth.user.role.as_str(),
                    &auth.user.id,
                    &sha256,
                    &(MAX_REFERENCING_DOCUMENTS as i64),
                ],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
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
        blob: &str,
    ) -> ServerResult<Option<StoredBlob>> {
        self.client()?
            .query_opt(
                "SELECT bytes, mime, device_id FROM media_blobs
                 WHERE sha256 = $1 AND rendition = $2 AND blob_sha256 = $3",
                &[&sha256, &rendition.as_str(), &blob],
            )?
            .map(|r| {
                Ok(StoredBlob {
                    sha256: sha256.to_string(),
                    rendition,
                    blob: blob.to_string(),
                    bytes: r.try_get::<_, i64>(0)? as u64,
                    mime: r.try_get(1)?,
                    device_id: r.try_get(2)?,
                })
            })
            .transpose()
    }

    fn proved_at(&self, device: &str, blob: &str) -> ServerResult<Option<i64>> {
        Ok(self
            .client()?
            .query_opt(
                "SELECT proved_at FROM media_proofs WHERE device_id = $1 AND blob_sha256 = $2",
                &[&device, &blob],
            )?
            .map(|r| r.get(0)))
    }

    fn held_blobs(
        &self,
        device: &str,
        sha256: &str,
        rendition: MediaRendition,
    ) -> ServerResult<Vec<(StoredBlob, i64)>> {
        self.client()?
            .query(
                &pg_params(&held_blobs_sql("COLLATE \"C\"")),
                &[&device, &sha256, &rendition.as_str()],
            )?
            .iter()
            .map(|r| {
                Ok((
                    StoredBlob {
                        sha256: sha256.to_string(),
                        rendition,
                        blob: r.try_get(0)?,
                        bytes: r.try_get::<_, i64>(1)? as u64,
                        mime: r.try_get(2)?,
                        device_id: r.try_get(3)?,
                    },
                    r.try_get(4)?,
                ))
            })
            .collect()
    }

    fn record_media_blob(&self, b: &StoredBlob) -> ServerResult<()> {
        let now = crate::model::now();
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        // The first blob recorded for the triple stays (another instance may finish the same one).
        tx.execute(
            "INSERT INTO media_blobs (sha256, rendition, blob_sha256, bytes, mime, device_id,
                 stored_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (sha256, rendition, blob_sha256) DO NOTHING",
            &[
                &b.sha256,
                &b.rendition.as_str(),
                &b.blob,
                &(b.bytes as i64),
                &b.mime,
                &b.device_id,
                &now,
            ],
        )?;
        tx.execute(
            "INSERT INTO media_proofs (device_id, blob_sha256, proved_at) VALUES ($1, $2, $3)
             ON CONFLICT (device_id, blob_sha256) DO NOTHING",
            &[&b.device_id, &b.blob, &now],
        )?;
        tx.execute(
            &pg_params(RELEASE_SQL),
            &[&b.device_id, &b.sha256, &b.rendition.as_str(), &b.blob],
        )?;
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
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        // A reservation is written per upload: its commit need not wait for the WAL flush (a
        // crash of the database machine loses at most the last few, whose uploads then reserve
        // again on their next request).
        tx.batch_execute("SET LOCAL synchronous_commit = off")?;
        // The user's row lock makes the reservations of one user, on any instance, one after the
        // other: two uploads cannot both take the last of the quota.
        tx.query_opt("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", &[&user_id])?;
        let row = tx.query_one(
            &pg_params(RESERVED_SQL),
            &[
                &user_id,
                &key.device,
                &key.sha256,
                &key.rendition.as_str(),
                &key.blob,
            ],
        )?;
        let (reserved, open, mine): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
        let decision = admission(reserved as u64, open as u64, mine != 0, total, limits);
        if decision == Admission::Admitted {
            tx.execute(
                "INSERT INTO media_staging (device_id, sha256, rendition, blob_sha256, user_id,
                     total, opened_at, touched_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
                 ON CONFLICT (device_id, sha256, rendition, blob_sha256)
                 DO UPDATE SET user_id = excluded.user_id, total = excluded.total,
                     touched_at = excluded.touched_at",
                &[
                    &key.device,
                    &key.sha256,
                    &key.rendition.as_str(),
                    &key.blob,
                    &user_id,
                    &(total as i64),
                    &now,
                ],
            )?;
            tx.commit()?;
        }
        Ok(decision)
    }

    fn release_staging(&self, key: &StagingKey) -> ServerResult<()> {
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        tx.batch_execute("SET LOCAL synchronous_commit = off")?;
        tx.execute(
            &pg_params(RELEASE_SQL),
            &[&key.device, &key.sha256, &key.rendition.as_str(), &key.blob],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn sweep_reservations(&self, before_ms: i64) -> ServerResult<u64> {
        Ok(self.client()?.execute(
            "DELETE FROM media_staging WHERE touched_at < $1",
            &[&before_ms],
        )?)
    }
}
