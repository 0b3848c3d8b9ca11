//! The supervisor API's read-only queries on PostgreSQL.
//!
//! The access rules are the SQLite ones, written once ([`crate::store::sql::readable`],
//! [`crate::store::sql::community_in_scope`], [`crate::store::sql::task_readable_sql`]) and
//! turned into PostgreSQL's `$n` placeholders by [`super::pg_params`], so the two engines cannot drift
//! apart. What differs between the engines is spelled out here:
//! - text is ordered `COLLATE "C"` (byte order, as SQLite's BINARY), whatever the database's
//!   default collation;
//! - `string_agg(.. ORDER BY ..)` for `group_concat`, `sum(..)::bigint` for a BIGINT sum
//!   (PostgreSQL's is NUMERIC), GROUP BY naming every ungrouped column, 0/1 flags read as BIGINT;
//! - rounding, ranking and the ranking's enrichment are the shared Rust in `supervision.rs`.

use super::{PgStorage, pg_params};
use crate::error::{ServerError, ServerResult};
use crate::model::*;
use crate::store::sql::*;
use fenlei_core::inspection::InspectionStatus;
use fenlei_core::rectification::RectificationStatus;
use postgres::types::ToSql;

/// Inspection `i` (joined with its community as `c`) is readable by the user in `$user` with
/// the role in `$role` (the sync rule).
pub(crate) fn readable(role: usize, user: usize) -> String {
    pg_params(&crate::store::sql::readable(role, user))
}

/// Community `c` is in the scope of the user in `$user` with the role in `$role`.
pub(crate) fn community_in_scope(role: usize, user: usize) -> String {
    pg_params(&crate::store::sql::community_in_scope(role, user))
}

/// Task `t` (joined with its community as `c`) is readable by the caller.
pub(crate) fn task_readable(role: usize, user: usize) -> String {
    pg_params(&crate::store::sql::task_readable_sql(role, user))
}

/// A 0/1 flag column.
fn flag(r: &postgres::Row, i: usize) -> ServerResult<bool> {
    Ok(r.try_get::<_, i64>(i)? != 0)
}

fn inspection_row(r: &postgres::Row) -> ServerResult<InspectionRow> {
    Ok(InspectionRow {
        id: r.try_get(0)?,
        community_id: r.try_get(1)?,
        community_name: r.try_get(2)?,
        district: r.try_get(3)?,
        street: r.try_get(4)?,
        kind: r.try_get(5)?,
        status: r.try_get(6)?,
        created_by: r.try_get(7)?,
        started_at_ms: r.try_get(8)?,
        ended_at_ms: r.try_get(9)?,
        total: r.try_get(10)?,
        max_points: r.try_get(11)?,
        grade: r.try_get(12)?,
        vetoed: flag(r, 13)?,
        conflict_count: r.try_get(14)?,
    })
}

/// The task list's columns (`supervision::TASK_COLUMNS` with PostgreSQL's aggregate).
const TASK_COLUMNS: &str = "t.id, t.community_id, c.name, c.street, c.district, t.inspection_id,
    t.item_code, t.item_title, t.opened_at, t.deadline, t.status, t.responsible, t.deduction,
    (SELECT string_agg(sha256, ',' ORDER BY kind COLLATE \"C\", sha256 COLLATE \"C\")
       FROM rectification_evidence e WHERE e.task_id = t.id AND e.phase = 'finding'),
    (SELECT string_agg(sha256, ',' ORDER BY kind COLLATE \"C\", sha256 COLLATE \"C\")
       FROM rectification_evidence e WHERE e.task_id = t.id AND e.phase = 'closure')";

fn split_list(s: Option<String>) -> Vec<String> {
    s.map(|s| {
        s.split(',')
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .collect()
    })
    .unwrap_or_default()
}

pub(crate) fn task_row(r: &postgres::Row, now: i64) -> ServerResult<TaskRow> {
    let status: String = r.try_get(10)?;
    let deadline: i64 = r.try_get(9)?;
    let overdue = crate::domain::tasks::is_overdue(&status, deadline, now);
    Ok(TaskRow {
        id: r.try_get(0)?,
        community_id: r.try_get(1)?,
        community_name: r.try_get(2)?,
        street: r.try_get(3)?,
        district: r.try_get(4)?,
        inspection_id: r.try_get(5)?,
        item_code: r.try_get(6)?,
        item_title: r.try_get(7)?,
        responsible: r.try_get(11)?,
        opened_at_ms: r.try_get(8)?,
        deadline_ms: deadline,
        status,
        overdue,
        deduction: r.try_get(12)?,
        evidence: split_list(r.try_get(13)?),
        closure_evidence: split_list(r.try_get(14)?),
    })
}

/// Parameters built up with a query: each `push` returns its `$n`.
#[derive(Default)]
struct Args(Vec<Box<dyn ToSql + Sync>>);

impl Args {
    fn push(&mut self, v: impl ToSql + Sync + 'static) -> String {
        self.0.push(Box::new(v));
        format!("${}", self.0.len())
    }
    fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.0
            .iter()
            .map(|b| b.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }
}

impl PgStorage {
    /// The tasks not closed, for the rankings (`supervision::UNCLOSED_TASKS`).
    fn unclosed_tasks(&self) -> ServerResult<Vec<(String, String, i64)>> {
        self.client()?
            .query(crate::store::sql::UNCLOSED_TASKS, &[])?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect()
    }
}

impl crate::store::SupervisorQueries for PgStorage {
    fn list_inspections(
        &self,
        auth: &DeviceAuth,
        f: &ListFilter,
    ) -> ServerResult<Vec<InspectionRow>> {
        let mut args = Args::default();
        args.push(auth.user.role.as_str().to_string());
        args.push(auth.user.id.clone());
        let mut sql = format!(
            "SELECT {INSPECTION_COLUMNS} FROM inspections i
             LEFT JOIN communities c ON c.id = i.community_id WHERE {}",
            readable(1, 2)
        );
        if let Some(v) = &f.community {
            sql += &format!(" AND i.community_id = {}", args.push(v.clone()));
        }
        if let Some(v) = &f.street {
            sql += &format!(" AND c.street = {}", args.push(v.clone()));
        }
        if let Some(v) = &f.district {
            sql += &format!(" AND c.district = {}", args.push(v.clone()));
        }
        if let Some(v) = &f.inspector {
            sql += &format!(
                " AND EXISTS (SELECT 1 FROM inspection_inspectors x WHERE x.inspection_id = i.id AND x.user_id = {})",
                args.push(v.clone())
            );
        }
        if let Some(v) = &f.status {
            if InspectionStatus::parse(v).is_none() {
                return Err(ServerError::BadRequest(format!("unknown status {v:?}")));
            }
            sql += &format!(" AND i.status = {}", args.push(v.clone()));
        }
        if let Some(v) = f.from_ms {
            sql += &format!(" AND i.started_at >= {}", args.push(v));
        }
        if let Some(v) = f.to_ms {
            sql += &format!(" AND i.started_at < {}", args.push(v));
        }
        let limit = f.limit.unwrap_or(100).clamp(1, 1000);
        sql += &format!(" ORDER BY i.started_at DESC, i.id COLLATE \"C\" DESC LIMIT {limit}");
        self.client()?
            .query(&sql, &args.refs())?
            .iter()
            .map(inspection_row)
            .collect()
    }

    fn score_history(
        &self,
        auth: &DeviceAuth,
        community_id: &str,
    ) -> ServerResult<Vec<InspectionRow>> {
        let sql = format!(
            "SELECT {INSPECTION_COLUMNS} FROM inspections i
             LEFT JOIN communities c ON c.id = i.community_id
             WHERE {} AND i.community_id = $3 AND i.status IN ('submitted', 'approved')
               AND i.total IS NOT NULL
             ORDER BY i.started_at DESC, i.id COLLATE \"C\" DESC LIMIT 500",
            readable(1, 2)
        );
        self.client()?
            .query(
                &sql,
                &[&auth.user.role.as_str(), &auth.user.id, &community_id],
            )?
            .iter()
            .map(inspection_row)
            .collect()
    }

    fn rankings(
        &self,
        auth: &DeviceAuth,
        by: ScopeKind,
        from_ms: i64,
        to_ms: i64,
    ) -> ServerResult<Vec<RankingRow>> {
        let (key, name) = crate::store::sql::ranking_columns(by);
        // As in SQLite: percentages of full marks; the name is grouped too (it follows the key).
        let sql = format!(
            "SELECT {key}, {name}, count(*),
                    avg(i.total * 100.0 / i.max_points), min(i.total * 100.0 / i.max_points),
                    sum(i.vetoed)::bigint
             FROM inspections i LEFT JOIN communities c ON c.id = i.community_id
             WHERE {} AND i.status IN ('submitted', 'approved') AND i.total IS NOT NULL
               AND i.max_points > 0 AND i.started_at >= $3 AND i.started_at < $4
             GROUP BY 1, 2 ORDER BY 4 DESC, {key} COLLATE \"C\"",
            readable(1, 2)
        );
        let rows = self
            .client()?
            .query(
                &sql,
                &[&auth.user.role.as_str(), &auth.user.id, &from_ms, &to_ms],
            )?
            .iter()
            .map(|r| {
                Ok(crate::domain::rankings::ranking_row(
                    r.try_get(0)?,
                    r.try_get(1)?,
                    r.try_get(2)?,
                    r.try_get(3)?,
                    r.try_get(4)?,
                    r.try_get(5)?,
                ))
            })
            .collect::<ServerResult<Vec<_>>>()?;
        Ok(crate::domain::rankings::finish_rankings(
            by,
            &self.scope_communities(auth)?,
            self.period_inspections(auth, from_ms, to_ms)?,
            self.unclosed_tasks()?,
            rows,
        ))
    }

    fn list_tasks(&self, auth: &DeviceAuth, f: &TaskFilter) -> ServerResult<Vec<TaskRow>> {
        crate::domain::access::require_reviewer(auth)?;
        let now = crate::model::now();
        let mut args = Args::default();
        args.push(auth.user.role.as_str().to_string());
        args.push(auth.user.id.clone());
        let mut sql = format!(
            "SELECT {TASK_COLUMNS} FROM rectifications t LEFT JOIN communities c ON c.id = t.community_id
             WHERE {}",
            community_in_scope(1, 2)
        );
        if let Some(s) = &f.status {
            if RectificationStatus::parse(s).is_none() {
                return Err(ServerError::BadRequest(format!(
                    "unknown task status {s:?}"
                )));
            }
            sql += &format!(" AND t.status = {}", args.push(s.clone()));
        }
        if let Some(c) = &f.community {
            sql += &format!(" AND t.community_id = {}", args.push(c.clone()));
        }
        match f.overdue {
            Some(true) => {
                sql += &format!(" AND {}", overdue_sql(&args.push(now)));
            }
            Some(false) => {
                sql += &format!(" AND NOT {}", overdue_sql(&args.push(now)));
            }
            None => {}
        }
        let limit = f.limit.unwrap_or(500).clamp(1, 5000);
        sql += &format!(" ORDER BY t.deadline, t.id COLLATE \"C\" LIMIT {limit}");
        self.client()?
            .query(&sql, &args.refs())?
            .iter()
            .map(|r| task_row(r, now))
            .collect()
    }

    fn scope_communities(&self, auth: &DeviceAuth) -> ServerResult<Vec<ScopedCommunity>> {
        let sql = format!(
            "SELECT c.id, c.name, c.street, c.district FROM communities c WHERE {}
             ORDER BY c.district COLLATE \"C\", c.street COLLATE \"C\", c.id COLLATE \"C\"",
            community_in_scope(1, 2)
        );
        self.client()?
            .query(&sql, &[&auth.user.role.as_str(), &auth.user.id])?
            .iter()
            .map(|r| {
                Ok(ScopedCommunity {
                    id: r.try_get(0)?,
                    name: r.try_get(1)?,
                    street: r.try_get(2)?,
                    district: r.try_get(3)?,
                })
            })
            .collect()
    }

    fn period_inspections(
        &self,
        auth: &DeviceAuth,
        from_ms: i64,
        to_ms: i64,
    ) -> ServerResult<Vec<PeriodInspection>> {
        let sql = format!(
            "SELECT i.id, i.community_id, i.created_by, i.started_at,
                    CASE WHEN i.max_points > 0 THEN i.total * 100.0 / i.max_points END,
                    i.grade, i.vetoed, i.status
             FROM inspections i JOIN communities c ON c.id = i.community_id
             WHERE {} AND i.status IN ('submitted', 'approved')
               AND i.started_at >= $3 AND i.started_at < $4
             ORDER BY i.started_at, i.id COLLATE \"C\"",
            community_in_scope(1, 2)
        );
        self.client()?
            .query(
                &sql,
                &[&auth.user.role.as_str(), &auth.user.id, &from_ms, &to_ms],
            )?
            .iter()
            .map(|r| {
                Ok(PeriodInspection {
                    id: r.try_get(0)?,
                    community_id: r.try_get(1)?,
                    inspector: r.try_get(2)?,
                    started_at_ms: r.try_get(3)?,
                    percent: r.try_get(4)?,
                    grade: r.try_get(5)?,
                    vetoed: flag(r, 6)?,
                    status: r.try_get(7)?,
                })
            })
            .collect()
    }

    fn last_visits(
        &self,
        auth: &DeviceAuth,
        to_ms: i64,
    ) -> ServerResult<Vec<(String, String, i64)>> {
        // The latest visit's row per community (ties by id), as SQLite's query.
        let sql = format!(
            "SELECT DISTINCT ON (i.community_id COLLATE \"C\")
                    i.community_id, i.created_by, i.started_at
             FROM inspections i JOIN communities c ON c.id = i.community_id
             WHERE {} AND i.status != 'draft' AND i.started_at < $3
             ORDER BY i.community_id COLLATE \"C\", i.started_at DESC, i.id COLLATE \"C\" DESC",
            community_in_scope(1, 2)
        );
        self.client()?
            .query(&sql, &[&auth.user.role.as_str(), &auth.user.id, &to_ms])?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect()
    }

    fn worst_findings(
        &self,
        auth: &DeviceAuth,
        from_ms: i64,
        to_ms: i64,
        limit: u32,
    ) -> ServerResult<Vec<Finding>> {
        let sql = format!(
            "SELECT a.inspection_id, i.community_id, c.name, c.street, c.district, a.item_code,
                    a.deduction, a.note, i.started_at,
                    (SELECT string_agg(e.sha256, ',' ORDER BY e.sha256 COLLATE \"C\")
                       FROM evidence_refs e
                      WHERE e.inspection_id = a.inspection_id AND e.item_code = a.item_code
                        AND e.media = 'photo'),
                    i.standard_id, i.standard_version
             FROM item_answers a JOIN inspections i ON i.id = a.inspection_id
             JOIN communities c ON c.id = i.community_id
             WHERE {} AND i.status IN ('submitted', 'approved') AND a.deduction > 0
               AND i.started_at >= $3 AND i.started_at < $4
             ORDER BY a.deduction DESC, i.started_at DESC, a.item_code COLLATE \"C\",
                      a.inspection_id COLLATE \"C\"
             LIMIT $5",
            community_in_scope(1, 2)
        );
        let rows = self.client()?.query(
            &sql,
            &[
                &auth.user.role.as_str(),
                &auth.user.id,
                &from_ms,
                &to_ms,
                &(limit as i64),
            ],
        )?;
        // Standards are parsed once per process (`PgStorage::standard`; versions are immutable).
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let key: (String, String) = (r.try_get(10)?, r.try_get(11)?);
            let code: String = r.try_get(5)?;
            let item_title = self
                .standard(&key.0, &key.1)?
                .and_then(|s| s.item(&code).map(|i| i.title.clone()))
                .unwrap_or_else(|| code.clone());
            let photos: Option<String> = r.try_get(9)?;
            out.push(Finding {
                item_title,
                inspection_id: r.try_get(0)?,
                community_id: r.try_get(1)?,
                community_name: r.try_get(2)?,
                street: r.try_get(3)?,
                district: r.try_get(4)?,
                item_code: code,
                deduction: r.try_get(6)?,
                note: r.try_get(7)?,
                started_at_ms: r.try_get(8)?,
                photos: photos
                    .map(|p| p.split(',').map(str::to_string).collect())
                    .unwrap_or_default(),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
#[path = "parity_tests.rs"]
mod parity_tests;
