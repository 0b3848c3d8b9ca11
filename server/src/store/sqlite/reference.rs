//! Communities, standards and the reference-data log on SQLite.

use super::*;

impl ReferenceStore for SqliteStorage {
    fn import_communities_csv(&self, bytes: &[u8]) -> ServerResult<u32> {
        let communities = fenlei_core::community::parse_csv(bytes)?;
        let n = self.store.upsert_communities(&communities)?;
        let mut w = lock(&self.writer);
        let tx = w.transaction()?;
        for c in &communities {
            SqliteStorage::log_reference(&tx, "community", &c.id)?;
        }
        tx.commit()?;
        Ok(n)
    }

    fn publish_standard(&self, source: &str) -> ServerResult<StandardInfo> {
        let info = self.store.import_standard(source)?;
        let w = lock(&self.writer);
        let key = format!("{}\u{1f}{}", info.id, info.version);
        let known: bool = w.query_row(
            "SELECT count(*) > 0 FROM reference_log WHERE kind = 'standard' AND key = ?1",
            [&key],
            |r| r.get(0),
        )?;
        if !known {
            SqliteStorage::log_reference(&w, "standard", &key)?;
        }
        Ok(info)
    }

    fn reference_after(
        &self,
        cursor: u64,
        user: &User,
        limit: usize,
    ) -> ServerResult<ReferenceUpdate> {
        let rows: Vec<(i64, String, String)> = self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT seq, kind, key FROM reference_log WHERE seq > ?1
                   AND (kind != 'assignments' OR key = ?2)
                 ORDER BY seq LIMIT ?3",
            )?;
            let rows = stmt
                .query_map(params![cursor as i64, user.id, limit as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })?;
        let latest: i64 = self.read(|c| {
            Ok(
                c.query_row("SELECT coalesce(max(seq), 0) FROM reference_log", [], |r| {
                    r.get(0)
                })?,
            )
        })?;
        let more = rows.len() == limit;
        let mut update = ReferenceUpdate {
            cursor: if more {
                rows.last().map(|r| r.0).unwrap_or(0) as u64
            } else {
                (latest as u64).max(cursor)
            },
            more,
            ..Default::default()
        };
        for (_, kind, key) in rows {
            match kind.as_str() {
                "community" => {
                    if let Some(c) = self.community(&key)? {
                        update.communities.push(c);
                    }
                }
                "standard" => {
                    let Some((id, version)) = key.split_once('\u{1f}') else {
                        continue;
                    };
                    let source: Option<String> = self.read(|c| {
                        Ok(c.query_row(
                            "SELECT source FROM standards WHERE id = ?1 AND version = ?2",
                            params![id, version],
                            |r| r.get(0),
                        )
                        .optional()?)
                    })?;
                    if let Some(source) = source {
                        update.standards.push(StandardSource {
                            id: id.into(),
                            version: version.into(),
                            source,
                        });
                    }
                }
                _ => update.assignments = Some(self.scope(user)?),
            }
        }
        Ok(update)
    }

    fn community(&self, id: &str) -> ServerResult<Option<Community>> {
        match self.store.community(id) {
            Ok(c) => Ok(Some(c)),
            Err(fenlei_core::CoreError::UnknownCommunity(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn score_of(&self, i: &Inspection) -> ServerResult<Option<ScoreCard>> {
        match self.store.score_inspection(i) {
            Ok(card) => Ok(Some(card)),
            Err(fenlei_core::CoreError::UnknownStandard { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn published_standard(
        &self,
        id: &str,
        version: &str,
    ) -> ServerResult<Option<std::sync::Arc<fenlei_core::standard::Standard>>> {
        match self.store.standard(id, version) {
            Ok(s) => Ok(Some(s)),
            Err(fenlei_core::CoreError::UnknownStandard { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}
