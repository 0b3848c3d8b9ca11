//! Documents, the change feed, reviews and task decisions on SQLite.

use super::*;

impl DocumentStore for SqliteStorage {
    fn opening_actor(&self) -> String {
        // The core store opens documents with its own (random) device id.
        self.store.device_id().to_string()
    }

    fn sync_view(&self, id: &str) -> ServerResult<SyncView> {
        SyncView::parse(id, self.store.stored_document(id)?, self.store.device_id())
    }

    fn load_document(&self, id: &str) -> ServerResult<Option<InspectionDoc>> {
        Ok(self.store.load_document(id)?)
    }

    fn apply_documents(&self, batch: &[(String, Vec<u8>)]) -> ServerResult<Vec<AppliedDocument>> {
        Ok(self.store.apply_documents(batch)?)
    }

    fn feed_after(
        &self,
        auth: &DeviceAuth,
        after: i64,
        limit: usize,
    ) -> ServerResult<(Vec<FeedEntry>, i64, bool)> {
        self.read(|c| {
            let tx = c.unchecked_transaction()?;
            let latest: i64 =
                tx.query_row("SELECT seq FROM change_counter WHERE id = 1", [], |r| {
                    r.get(0)
                })?;
            let sql = format!(
                "SELECT f.doc_id, f.seq FROM change_feed f
                 JOIN inspections i ON i.id = f.doc_id
                 LEFT JOIN communities c ON c.id = i.community_id
                 WHERE f.seq > ?1 AND f.seq <= ?2 AND {}
                 ORDER BY f.seq LIMIT ?5",
                readable(3, 4)
            );
            let mut stmt = tx.prepare_cached(&sql)?;
            let entries: Vec<FeedEntry> = stmt
                .query_map(
                    params![
                        after,
                        latest,
                        auth.user.role.as_str(),
                        auth.user.id,
                        limit as i64
                    ],
                    |r| {
                        Ok(FeedEntry {
                            id: r.get(0)?,
                            seq: r.get::<_, i64>(1)? as u64,
                        })
                    },
                )?
                .collect::<rusqlite::Result<_>>()?;
            let more = entries.len() == limit;
            let next = if more {
                entries.last().map(|e| e.seq as i64).unwrap_or(after)
            } else {
                latest.max(after)
            };
            Ok((entries, next, more))
        })
    }

    fn review_inspection(
        &self,
        auth: &DeviceAuth,
        id: &str,
        approve: bool,
        comment: Option<&str>,
    ) -> ServerResult<InspectionStatus> {
        self.review(auth, id, approve, comment)
    }
    fn open_due_rectifications(&self, inspection_id: &str) -> ServerResult<Vec<String>> {
        SqliteStorage::open_due_rectifications(self, inspection_id)
    }
    fn document_kind(&self, id: &str) -> ServerResult<Option<String>> {
        Ok(self.store.document_kind(id)?)
    }
    fn feed_with_tasks(
        &self,
        auth: &DeviceAuth,
        after: i64,
        limit: usize,
    ) -> ServerResult<(Vec<FeedEntry>, i64, bool)> {
        SqliteStorage::feed_with_tasks(self, auth, after, limit)
    }
    fn decide_task(
        &self,
        auth: &DeviceAuth,
        id: &str,
        approve: bool,
        comment: Option<&str>,
    ) -> ServerResult<TaskRow> {
        SqliteStorage::decide_task(self, auth, id, approve, comment)
    }
}
