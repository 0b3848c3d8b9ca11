//! The supervisor's reads on SQLite: inspections, score history, rankings, tasks, periods.

use super::*;

fn inspection_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<InspectionRow> {
    Ok(InspectionRow {
        id: r.get(0)?,
        community_id: r.get(1)?,
        community_name: r.get(2)?,
        district: r.get(3)?,
        street: r.get(4)?,
        kind: r.get(5)?,
        status: r.get(6)?,
        created_by: r.get(7)?,
        started_at_ms: r.get(8)?,
        ended_at_ms: r.get(9)?,
        total: r.get(10)?,
        max_points: r.get(11)?,
        grade: r.get(12)?,
        vetoed: r.get(13)?,
        conflict_count: r.get(14)?,
    })
}

impl SupervisorQueries for SqliteStorage {
    fn list_inspections(
        &self,
        auth: &DeviceAuth,
        f: &ListFilter,
    ) -> ServerResult<Vec<InspectionRow>> {
        let mut args: Vec<Value> = vec![
            Value::Text(auth.user.role.as_str().into()),
            Value::Text(auth.user.id.clone()),
        ];
        let mut sql = format!(
            "SELECT {INSPECTION_COLUMNS} FROM inspections i
             LEFT JOIN communities c ON c.id = i.community_id WHERE {}",
            readable(1, 2)
        );
        let mut add = |sql: &mut String, clause: &str, v: Value| {
            args.push(v);
            *sql += &clause.replace("?N", &format!("?{}", args.len()));
        };
        if let Some(v) = &f.community {
            add(&mut sql, " AND i.community_id = ?N", Value::Text(v.clone()));
        }
        if let Some(v) = &f.street {
            add(&mut sql, " AND c.street = ?N", Value::Text(v.clone()));
        }
        if let Some(v) = &f.district {
            add(&mut sql, " AND c.district = ?N", Value::Text(v.clone()));
        }
        if let Some(v) = &f.inspector {
            add(
                &mut sql,
                " AND EXISTS (SELECT 1 FROM inspection_inspectors x WHERE x.inspection_id = i.id AND x.user_id = ?N)",
                Value::Text(v.clone()),
            );
        }
        if let Some(v) = &f.status {
            if InspectionStatus::parse(v).is_none() {
                return Err(ServerError::BadRequest(format!("unknown status {v:?}")));
            }
            add(&mut sql, " AND i.status = ?N", Value::Text(v.clone()));
        }
        if let Some(v) = f.from_ms {
            add(&mut sql, " AND i.started_at >= ?N", Value::Integer(v));
        }
        if let Some(v) = f.to_ms {
            add(&mut sql, " AND i.started_at < ?N", Value::Integer(v));
        }
        let limit = f.limit.unwrap_or(100).clamp(1, 1000);
        sql += &format!(" ORDER BY i.started_at DESC, i.id DESC LIMIT {limit}");
        self.read(|c| {
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt
                .query_map(params_from_iter(args), inspection_row)?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
    }

    fn score_history(
        &self,
        auth: &DeviceAuth,
        community_id: &str,
    ) -> ServerResult<Vec<InspectionRow>> {
        let sql = format!(
            "SELECT {INSPECTION_COLUMNS} FROM inspections i
             LEFT JOIN communities c ON c.id = i.community_id
             WHERE {} AND i.community_id = ?3 AND i.status IN ('submitted', 'approved')
               AND i.total IS NOT NULL
             ORDER BY i.started_at DESC, i.id DESC LIMIT 500",
            readable(1, 2)
        );
        self.read(|c| {
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt
                .query_map(
                    params![auth.user.role.as_str(), auth.user.id, community_id],
                    inspection_row,
                )?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
    }

    fn rankings(
        &self,
        auth: &DeviceAuth,
        by: ScopeKind,
        from_ms: i64,
        to_ms: i64,
    ) -> ServerResult<Vec<RankingRow>> {
        let (key, name) = ranking_columns(by);
        // Scores are compared as a percentage of the standard's full marks, so inspections under
        // standards of different sizes rank together; a veto counts as it stands (the total).
        let sql = format!(
            "SELECT {key}, {name}, count(*),
                    avg(i.total * 100.0 / i.max_points), min(i.total * 100.0 / i.max_points),
                    sum(i.vetoed)
             FROM inspections i LEFT JOIN communities c ON c.id = i.community_id
             WHERE {} AND i.status IN ('submitted', 'approved') AND i.total IS NOT NULL
               AND i.max_points > 0 AND i.started_at >= ?3 AND i.started_at < ?4
             GROUP BY 1 ORDER BY 4 DESC, 1",
            readable(1, 2)
        );
        let rows = self.read(|c| {
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt
                .query_map(
                    params![auth.user.role.as_str(), auth.user.id, from_ms, to_ms],
                    |r| {
                        Ok(crate::domain::rankings::ranking_row(
                            r.get(0)?,
                            r.get(1)?,
                            r.get(2)?,
                            r.get(3)?,
                            r.get(4)?,
                            r.get(5)?,
                        ))
                    },
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })?;
        Ok(crate::domain::rankings::finish_rankings(
            by,
            &self.scope_communities(auth)?,
            self.period_inspections(auth, from_ms, to_ms)?,
            self.unclosed_tasks()?,
            rows,
        ))
    }
    fn list_tasks(&self, auth: &DeviceAuth, filter: &TaskFilter) -> ServerResult<Vec<TaskRow>> {
        SqliteStorage::list_tasks(self, auth, filter)
    }
    fn scope_communities(&self, auth: &DeviceAuth) -> ServerResult<Vec<ScopedCommunity>> {
        SqliteStorage::scope_communities(self, auth)
    }
    fn period_inspections(
        &self,
        auth: &DeviceAuth,
        from_ms: i64,
        to_ms: i64,
    ) -> ServerResult<Vec<PeriodInspection>> {
        SqliteStorage::period_inspections(self, auth, from_ms, to_ms)
    }
    fn last_visits(
        &self,
        auth: &DeviceAuth,
        to_ms: i64,
    ) -> ServerResult<Vec<(String, String, i64)>> {
        SqliteStorage::last_visits(self, auth, to_ms)
    }
    fn worst_findings(
        &self,
        auth: &DeviceAuth,
        from_ms: i64,
        to_ms: i64,
        limit: u32,
    ) -> ServerResult<Vec<Finding>> {
        SqliteStorage::worst_findings(self, auth, from_ms, to_ms, limit)
    }
}
