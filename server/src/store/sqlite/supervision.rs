//! Supervision on SQLite: reviews written by the server, rectification tasks, the data of
//! rankings, bulletins and planning.

use super::SqliteStorage;
use crate::domain::access::require_reviewer;
use crate::domain::review::*;
use crate::error::{ServerError, ServerResult};
use crate::model::*;
use crate::store::sql::*;
use fenlei_core::inspection::{EditContext, InspectionStatus};
use fenlei_core::rectification::{RectificationDoc, RectificationStatus};
use rusqlite::{Connection, params, params_from_iter, types::Value};

fn task_row(r: &rusqlite::Row<'_>, now: i64) -> rusqlite::Result<TaskRow> {
    let status: String = r.get(10)?;
    let deadline: i64 = r.get(9)?;
    let overdue = crate::domain::tasks::is_overdue(&status, deadline, now);
    let split = |s: Option<String>| -> Vec<String> {
        s.map(|s| {
            s.split(',')
                .filter(|x| !x.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
    };
    Ok(TaskRow {
        id: r.get(0)?,
        community_id: r.get(1)?,
        community_name: r.get(2)?,
        street: r.get(3)?,
        district: r.get(4)?,
        inspection_id: r.get(5)?,
        item_code: r.get(6)?,
        item_title: r.get(7)?,
        responsible: r.get(11)?,
        opened_at_ms: r.get(8)?,
        deadline_ms: deadline,
        status,
        overdue,
        deduction: r.get(12)?,
        evidence: split(r.get(13)?),
        closure_evidence: split(r.get(14)?),
    })
}

const TASK_COLUMNS: &str = "t.id, t.community_id, c.name, c.street, c.district, t.inspection_id,
    t.item_code, t.item_title, t.opened_at, t.deadline, t.status, t.responsible, t.deduction,
    (SELECT group_concat(sha256, ',' ORDER BY kind, sha256) FROM rectification_evidence e WHERE e.task_id = t.id AND e.phase = 'finding'),
    (SELECT group_concat(sha256, ',' ORDER BY kind, sha256) FROM rectification_evidence e WHERE e.task_id = t.id AND e.phase = 'closure')";

impl SqliteStorage {
    /// A supervisor's review recorded on the server (see the module docs for the actor).
    pub(crate) fn review(
        &self,
        auth: &DeviceAuth,
        id: &str,
        approve: bool,
        comment: Option<&str>,
    ) -> ServerResult<InspectionStatus> {
        require_reviewer(auth)?;
        let inspection = match self.store().load_document(id)? {
            Some(d) => d.read()?,
            None => return Err(ServerError::NotFound(format!("no inspection {id}"))),
        };
        let community = self.store().community(&inspection.community_id).ok();
        let (to, comment) = review_target(auth, &inspection, community.as_ref(), approve, comment)?;
        let actor = server_actor("review", &auth.user.id);
        self.store()
            .set_status_as(id, &actor, to, &EditContext::by(&auth.user.id), comment)
            .map_err(review_error)?;
        if approve {
            self.open_due_rectifications(id)?;
        }
        Ok(to)
    }

    /// Opens the tasks the standard's rules call for on a submitted or approved inspection
    /// (idempotent: items with a task for it are skipped).
    pub(crate) fn open_due_rectifications(&self, inspection_id: &str) -> ServerResult<Vec<String>> {
        let actor = server_actor("standard", STANDARD_USER);
        match self
            .store()
            .open_due_rectifications(inspection_id, STANDARD_USER, Some(&actor))
        {
            Ok(ids) => Ok(ids),
            // An inspection under a standard this server does not hold opens nothing.
            Err(fenlei_core::CoreError::UnknownStandard { .. }) => Ok(vec![]),
            Err(e) => Err(e.into()),
        }
    }

    pub(crate) fn task(&self, id: &str) -> ServerResult<Option<RectificationDoc>> {
        Ok(self.store().load_task_document(id)?)
    }

    pub(crate) fn list_tasks(
        &self,
        auth: &DeviceAuth,
        f: &TaskFilter,
    ) -> ServerResult<Vec<TaskRow>> {
        require_reviewer(auth)?;
        let now = crate::model::now();
        let mut args: Vec<Value> = vec![
            Value::Text(auth.user.role.as_str().into()),
            Value::Text(auth.user.id.clone()),
        ];
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
            args.push(Value::Text(s.clone()));
            sql += &format!(" AND t.status = ?{}", args.len());
        }
        if let Some(c) = &f.community {
            args.push(Value::Text(c.clone()));
            sql += &format!(" AND t.community_id = ?{}", args.len());
        }
        match f.overdue {
            Some(true) => {
                args.push(Value::Integer(now));
                sql += &format!(" AND {}", overdue_sql(&format!("?{}", args.len())));
            }
            Some(false) => {
                args.push(Value::Integer(now));
                sql += &format!(" AND NOT {}", overdue_sql(&format!("?{}", args.len())));
            }
            None => {}
        }
        let limit = f.limit.unwrap_or(500).clamp(1, 5000);
        sql += &format!(" ORDER BY t.deadline, t.id LIMIT {limit}");
        self.read(|c| {
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt
                .query_map(params_from_iter(args), |r| task_row(r, now))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
    }

    pub(crate) fn task_row(&self, id: &str) -> ServerResult<Option<TaskRow>> {
        let now = crate::model::now();
        self.read(|c| {
            let sql = format!(
                "SELECT {TASK_COLUMNS} FROM rectifications t LEFT JOIN communities c ON c.id = t.community_id
                 WHERE t.id = ?1"
            );
            let mut stmt = c.prepare_cached(&sql)?;
            let mut rows = stmt.query_map([id], |r| task_row(r, now))?;
            Ok(rows.next().transpose()?)
        })
    }

    /// A supervisor approves a task's closure (submitted → closed) or reopens it.
    pub(crate) fn decide_task(
        &self,
        auth: &DeviceAuth,
        id: &str,
        approve: bool,
        comment: Option<&str>,
    ) -> ServerResult<TaskRow> {
        require_reviewer(auth)?;
        let Some(doc) = self.task(id)? else {
            return Err(ServerError::NotFound(format!("no rectification task {id}")));
        };
        let task = doc.read()?;
        let community = self.store().community(&task.community_id).ok();
        let (to, comment) = decision_target(auth, &task, community.as_ref(), approve, comment)?;
        let actor = server_actor("review", &auth.user.id);
        self.store()
            .set_rectification_status_as(id, Some(&actor), to, &auth.user.id, comment)?;
        self.task_row(id)?
            .ok_or_else(|| ServerError::Internal("task vanished".into()))
    }

    /// The communities in the user's scope, by district, street, id.
    pub(crate) fn scope_communities(
        &self,
        auth: &DeviceAuth,
    ) -> ServerResult<Vec<ScopedCommunity>> {
        self.read(|c| {
            let sql = format!(
                "SELECT c.id, c.name, c.street, c.district FROM communities c WHERE {}
                 ORDER BY c.district, c.street, c.id",
                community_in_scope(1, 2)
            );
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt
                .query_map(params![auth.user.role.as_str(), auth.user.id], |r| {
                    Ok(ScopedCommunity {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        street: r.get(2)?,
                        district: r.get(3)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
    }

    /// Submitted or approved inspections of in-scope communities started in [from, to).
    pub(crate) fn period_inspections(
        &self,
        auth: &DeviceAuth,
        from_ms: i64,
        to_ms: i64,
    ) -> ServerResult<Vec<PeriodInspection>> {
        self.read(|c| {
            let sql = format!(
                "SELECT i.id, i.community_id, i.created_by, i.started_at,
                        CASE WHEN i.max_points > 0 THEN i.total * 100.0 / i.max_points END,
                        i.grade, i.vetoed, i.status
                 FROM inspections i JOIN communities c ON c.id = i.community_id
                 WHERE {} AND i.status IN ('submitted', 'approved')
                   AND i.started_at >= ?3 AND i.started_at < ?4
                 ORDER BY i.started_at, i.id",
                community_in_scope(1, 2)
            );
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt
                .query_map(
                    params![auth.user.role.as_str(), auth.user.id, from_ms, to_ms],
                    |r| {
                        Ok(PeriodInspection {
                            id: r.get(0)?,
                            community_id: r.get(1)?,
                            inspector: r.get(2)?,
                            started_at_ms: r.get(3)?,
                            percent: r.get(4)?,
                            grade: r.get(5)?,
                            vetoed: r.get(6)?,
                            status: r.get(7)?,
                        })
                    },
                )?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
    }

    /// The last inspection visit (any status but draft) of each in-scope community before
    /// `to_ms`: (community, inspector, start), by community. Visits starting in the same
    /// millisecond are told apart by id, so every engine names the same inspector.
    pub(crate) fn last_visits(
        &self,
        auth: &DeviceAuth,
        to_ms: i64,
    ) -> ServerResult<Vec<(String, String, i64)>> {
        self.read(|c| {
            let sql = format!(
                "SELECT community_id, created_by, started_at FROM (
                     SELECT i.community_id, i.created_by, i.started_at, row_number() OVER (
                         PARTITION BY i.community_id ORDER BY i.started_at DESC, i.id DESC) AS n
                     FROM inspections i JOIN communities c ON c.id = i.community_id
                     WHERE {} AND i.status != 'draft' AND i.started_at < ?3)
                 WHERE n = 1 ORDER BY community_id",
                community_in_scope(1, 2)
            );
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt
                .query_map(params![auth.user.role.as_str(), auth.user.id, to_ms], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
    }

    /// The largest deductions of the period in scope, with their photos.
    pub(crate) fn worst_findings(
        &self,
        auth: &DeviceAuth,
        from_ms: i64,
        to_ms: i64,
        limit: u32,
    ) -> ServerResult<Vec<Finding>> {
        self.read(|c| {
            let sql = format!(
                "SELECT a.inspection_id, i.community_id, c.name, c.street, c.district, a.item_code,
                        a.deduction, a.note, i.started_at,
                        (SELECT group_concat(e.sha256, ',' ORDER BY e.sha256) FROM evidence_refs e
                          WHERE e.inspection_id = a.inspection_id AND e.item_code = a.item_code
                            AND e.media = 'photo'),
                        i.standard_id, i.standard_version
                 FROM item_answers a JOIN inspections i ON i.id = a.inspection_id
                 JOIN communities c ON c.id = i.community_id
                 WHERE {} AND i.status IN ('submitted', 'approved') AND a.deduction > 0
                   AND i.started_at >= ?3 AND i.started_at < ?4
                 ORDER BY a.deduction DESC, i.started_at DESC, a.item_code, a.inspection_id
                 LIMIT ?5",
                community_in_scope(1, 2)
            );
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt
                .query_map(
                    params![auth.user.role.as_str(), auth.user.id, from_ms, to_ms, limit],
                    |r| {
                        let photos: Option<String> = r.get(9)?;
                        let standard: (String, String) = (r.get(10)?, r.get(11)?);
                        let code: String = r.get(5)?;
                        let item_title = self
                            .store()
                            .standard(&standard.0, &standard.1)
                            .ok()
                            .and_then(|s| s.item(&code).map(|i| i.title.clone()))
                            .unwrap_or_else(|| code.clone());
                        Ok(Finding {
                            item_title,
                            inspection_id: r.get(0)?,
                            community_id: r.get(1)?,
                            community_name: r.get(2)?,
                            street: r.get(3)?,
                            district: r.get(4)?,
                            item_code: r.get(5)?,
                            deduction: r.get(6)?,
                            note: r.get(7)?,
                            started_at_ms: r.get(8)?,
                            photos: photos
                                .map(|p| p.split(',').map(str::to_string).collect())
                                .unwrap_or_default(),
                        })
                    },
                )?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
    }

    /// Rectification tasks not closed now: (community, status, deadline), for the rankings.
    pub(crate) fn unclosed_tasks(&self) -> ServerResult<Vec<(String, String, i64)>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(UNCLOSED_TASKS)?;
            let rows: Vec<(String, String, i64)> = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
    }

    /// Feed entries for protocol ≥ 2: inspections and rectification tasks the device may read.
    pub(crate) fn feed_with_tasks(
        &self,
        auth: &DeviceAuth,
        after: i64,
        limit: usize,
    ) -> ServerResult<(Vec<fenlei_core::protocol::FeedEntry>, i64, bool)> {
        self.read(|c| feed_with_tasks(c, auth, after, limit))
    }
}

fn feed_with_tasks(
    c: &Connection,
    auth: &DeviceAuth,
    after: i64,
    limit: usize,
) -> ServerResult<(Vec<fenlei_core::protocol::FeedEntry>, i64, bool)> {
    let tx = c.unchecked_transaction()?;
    let latest: i64 = tx.query_row("SELECT seq FROM change_counter WHERE id = 1", [], |r| {
        r.get(0)
    })?;
    let sql = format!(
        "SELECT f.doc_id, f.seq FROM change_feed f
         LEFT JOIN inspections i ON i.id = f.doc_id
         LEFT JOIN rectifications t ON t.id = f.doc_id
         LEFT JOIN communities c ON c.id = coalesce(i.community_id, t.community_id)
         WHERE f.seq > ?1 AND f.seq <= ?2 AND (
            (i.id IS NOT NULL AND {})
            OR (t.id IS NOT NULL AND {}))
         ORDER BY f.seq LIMIT ?5",
        crate::store::sql::readable(3, 4),
        task_readable_sql(3, 4)
    );
    let mut stmt = tx.prepare_cached(&sql)?;
    let entries: Vec<fenlei_core::protocol::FeedEntry> = stmt
        .query_map(
            params![
                after,
                latest,
                auth.user.role.as_str(),
                auth.user.id,
                limit as i64
            ],
            |r| {
                Ok(fenlei_core::protocol::FeedEntry {
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
}
