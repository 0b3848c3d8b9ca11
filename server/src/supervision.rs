//! Supervision on the server (issue #6): reviews made on the server, rectification tasks,
//! the data of rankings, bulletins and planning. SQL over the embedded storage; the routes are
//! in `supervisor_api.rs`.
//!
//! **Server actors.** The server writes into documents only on a person's behalf (a
//! supervisor's review, a task approval) or on the standard's (tasks its rules open). Each such
//! writer has an automerge actor of its own, derived as a UUID from SHA-256 of
//! `"fenlei-server-actor/" + purpose + "/" + user id` (purpose `review` for supervisors,
//! `standard` for the rule engine; version nibble 8, RFC 9562 "custom"). It is never a device's
//! actor, so it cannot collide with changes a device makes at the same time, and every write
//! by one actor runs under the store's single writer lock, so its sequence numbers never fork.
//! The change message names the supervisor (`by`), so the history shows who reviewed.

use crate::error::{ServerError, ServerResult};
use crate::storage::{DeviceAuth, Role, ScopeKind, SqliteStorage};
use fenlei_core::inspection::{EditContext, InspectionStatus};
use fenlei_core::rectification::{Rectification, RectificationDoc, RectificationStatus};
use rusqlite::{Connection, params, params_from_iter, types::Value};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, HashSet};

/// The automerge actor (as a device-id UUID string) the server writes with for `user_id`
/// doing `purpose` (see the module docs).
pub fn server_actor(purpose: &str, user_id: &str) -> String {
    let digest = Sha256::digest(format!("fenlei-server-actor/{purpose}/{user_id}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x80; // version 8
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    uuid::Uuid::from_bytes(b).to_string()
}

/// Who the rule engine writes as.
pub const STANDARD_USER: &str = "system:standard";

/// One task as the supervisor API lists it (CONTRACTS.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRow {
    pub id: String,
    pub community_id: String,
    pub community_name: Option<String>,
    pub street: Option<String>,
    pub district: Option<String>,
    pub inspection_id: String,
    pub item_code: String,
    pub item_title: String,
    pub responsible: String,
    pub opened_at_ms: i64,
    pub deadline_ms: i64,
    pub status: String,
    pub overdue: bool,
    pub deduction: Option<f64>,
    pub evidence: Vec<String>,
    pub closure_evidence: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct TaskFilter {
    pub status: Option<String>,
    pub community: Option<String>,
    pub overdue: Option<bool>,
    pub limit: Option<u32>,
}

/// A community in a user's scope.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScopedCommunity {
    pub id: String,
    pub name: String,
    pub street: String,
    pub district: String,
}

/// One scored inspection in a period (for rankings, bulletins and planning).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeriodInspection {
    pub id: String,
    pub community_id: String,
    pub inspector: String,
    pub started_at_ms: i64,
    pub percent: Option<f64>,
    pub grade: Option<String>,
    pub vetoed: bool,
    pub status: String,
}

/// One deduction in a period with its photos (the bulletin's worst findings).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub inspection_id: String,
    pub community_id: String,
    pub community_name: String,
    pub street: String,
    pub district: String,
    pub item_code: String,
    /// The item's title in the inspection's standard (the code when the server lacks it).
    pub item_title: String,
    pub deduction: f64,
    pub note: Option<String>,
    pub started_at_ms: i64,
    pub photos: Vec<String>,
}

/// SQL true when community `c` is in the scope of user ?U with role ?R.
/// SQL: the task `t` (joined with its community as `c`) is readable by the caller — its community
/// is in scope, or the caller is the inspector who opened it or made its inspection. One rule for
/// the sync feed and for the task's photos (media.rs).
pub(crate) fn task_readable_sql(role: usize, user: usize) -> String {
    format!(
        "({} OR (?{role} = 'inspector' AND (t.opened_by = ?{user}
            OR EXISTS (SELECT 1 FROM inspections j WHERE j.id = t.inspection_id AND j.created_by = ?{user}))))",
        community_in_scope(role, user)
    )
}

pub(crate) fn community_in_scope(role: usize, user: usize) -> String {
    format!(
        "(?{role} = 'admin' OR EXISTS (SELECT 1 FROM user_scopes s WHERE s.user_id = ?{user} AND (
            (s.kind = 'community' AND s.value = c.id)
            OR (s.kind = 'street' AND s.value = c.street)
            OR (s.kind = 'district' AND s.value = c.district))))"
    )
}

fn task_row(r: &rusqlite::Row<'_>, now: i64) -> rusqlite::Result<TaskRow> {
    let status: String = r.get(10)?;
    let deadline: i64 = r.get(9)?;
    let pending = RectificationStatus::parse(&status).is_some_and(|s| s.is_pending());
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
        overdue: pending && now > deadline,
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
        let now = crate::storage::now();
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
                sql += &format!(
                    " AND t.status IN ('open', 'in_progress', 'reopened') AND t.deadline < ?{}",
                    args.len()
                );
            }
            Some(false) => {
                args.push(Value::Integer(now));
                sql += &format!(
                    " AND NOT (t.status IN ('open', 'in_progress', 'reopened') AND t.deadline < ?{})",
                    args.len()
                );
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
        let now = crate::storage::now();
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
    ) -> ServerResult<(Vec<fenlei_core::sync::protocol::FeedEntry>, i64, bool)> {
        self.read(|c| feed_with_tasks(c, auth, after, limit))
    }
}

fn feed_with_tasks(
    c: &Connection,
    auth: &DeviceAuth,
    after: i64,
    limit: usize,
) -> ServerResult<(Vec<fenlei_core::sync::protocol::FeedEntry>, i64, bool)> {
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
        crate::storage::readable(3, 4),
        task_readable_sql(3, 4)
    );
    let mut stmt = tx.prepare_cached(&sql)?;
    let entries: Vec<fenlei_core::sync::protocol::FeedEntry> = stmt
        .query_map(
            params![
                after,
                latest,
                auth.user.role.as_str(),
                auth.user.id,
                limit as i64
            ],
            |r| {
                Ok(fenlei_core::sync::protocol::FeedEntry {
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

/// The tasks the rankings count as open (both engines).
pub(crate) const UNCLOSED_TASKS: &str =
    "SELECT community_id, status, deadline FROM rectifications WHERE status != 'closed'";

/// A ranking row from its aggregate (both engines): scores as a percentage of full marks,
/// rounded to two decimals; the rest is filled by [`finish_rankings`].
pub(crate) fn ranking_row(
    key: String,
    name: String,
    inspections: i64,
    average: f64,
    lowest: f64,
    vetoed: i64,
) -> crate::storage::RankingRow {
    crate::storage::RankingRow {
        rank: 0,
        key,
        name,
        inspections: inspections as u32,
        average: (average * 100.0).round() / 100.0,
        lowest: (lowest * 100.0).round() / 100.0,
        vetoed: vetoed as u32,
        communities_in_scope: 0,
        communities_inspected: 0,
        coverage: 0.0,
        open_rectifications: 0,
        overdue_rectifications: 0,
        grades: Default::default(),
    }
}

/// Adds coverage, rectification counts and grade counts to ranking rows (in their order) and
/// numbers them. One implementation for every engine: `storage` answers the scoped queries,
/// `unclosed` holds the tasks not closed ([`UNCLOSED_TASKS`]).
pub(crate) fn finish_rankings(
    storage: &dyn crate::storage::SupervisorQueries,
    auth: &DeviceAuth,
    by: ScopeKind,
    from_ms: i64,
    to_ms: i64,
    unclosed: Vec<(String, String, i64)>,
    mut rows: Vec<crate::storage::RankingRow>,
) -> ServerResult<Vec<crate::storage::RankingRow>> {
    let communities = storage.scope_communities(auth)?;
    let key_of = |c: &ScopedCommunity| -> String {
        match by {
            ScopeKind::Community => c.id.clone(),
            ScopeKind::Street => c.street.clone(),
            ScopeKind::District => c.district.clone(),
        }
    };
    let by_id: HashMap<&str, &ScopedCommunity> =
        communities.iter().map(|c| (c.id.as_str(), c)).collect();
    let mut in_scope: HashMap<String, u32> = HashMap::new();
    for c in &communities {
        *in_scope.entry(key_of(c)).or_default() += 1;
    }
    let mut inspected: HashMap<String, HashSet<String>> = HashMap::new();
    let mut grades: HashMap<String, BTreeMap<String, u32>> = HashMap::new();
    for i in storage.period_inspections(auth, from_ms, to_ms)? {
        let Some(c) = by_id.get(i.community_id.as_str()) else {
            continue;
        };
        let key = key_of(c);
        inspected
            .entry(key.clone())
            .or_default()
            .insert(i.community_id.clone());
        if let Some(g) = i.grade {
            *grades.entry(key).or_default().entry(g).or_default() += 1;
        }
    }
    let now = crate::storage::now();
    let mut open: HashMap<String, (u32, u32)> = HashMap::new();
    for (community, status, deadline) in unclosed {
        let Some(c) = by_id.get(community.as_str()) else {
            continue;
        };
        let entry = open.entry(key_of(c)).or_default();
        entry.0 += 1;
        let pending = RectificationStatus::parse(&status).is_some_and(|s| s.is_pending());
        if pending && now > deadline {
            entry.1 += 1;
        }
    }
    for row in rows.iter_mut() {
        row.communities_in_scope = in_scope.get(&row.key).copied().unwrap_or(0);
        row.communities_inspected = inspected.get(&row.key).map(|s| s.len() as u32).unwrap_or(0);
        row.coverage = if row.communities_in_scope == 0 {
            0.0
        } else {
            (row.communities_inspected as f64 / row.communities_in_scope as f64 * 10_000.0).round()
                / 10_000.0
        };
        let (o, d) = open.get(&row.key).copied().unwrap_or_default();
        row.open_rectifications = o;
        row.overdue_rectifications = d;
        row.grades = grades.remove(&row.key).unwrap_or_default();
    }
    for (n, row) in rows.iter_mut().enumerate() {
        row.rank = n as u32 + 1;
    }
    Ok(rows)
}

/// Checks a supervisor's review of `inspection` (as stored) on any storage engine: the caller
/// reads it, the move is allowed, a return has a comment. Returns the status it moves to and
/// the trimmed comment.
pub(crate) fn review_target<'c>(
    auth: &DeviceAuth,
    inspection: &fenlei_core::inspection::Inspection,
    community: Option<&fenlei_core::community::Community>,
    approve: bool,
    comment: Option<&'c str>,
) -> ServerResult<(InspectionStatus, Option<&'c str>)> {
    if !crate::sync::can_read(auth, inspection, community) {
        return Err(ServerError::Forbidden(
            "inspection outside your scope".into(),
        ));
    }
    let to = if approve {
        InspectionStatus::Approved
    } else {
        InspectionStatus::Returned
    };
    if !inspection.status.can_become(to) {
        return Err(ServerError::Conflict(format!(
            "an inspection that is {} cannot be {}",
            inspection.status,
            if approve { "approved" } else { "returned" }
        )));
    }
    let comment = comment.map(str::trim).filter(|c| !c.is_empty());
    if !approve && comment.is_none() {
        return Err(ServerError::BadRequest(
            "returning an inspection needs a comment".into(),
        ));
    }
    Ok((to, comment))
}

/// A review's status change refused by the document (another review won the race): a conflict.
pub(crate) fn review_error(e: fenlei_core::CoreError) -> ServerError {
    match e {
        fenlei_core::CoreError::InvalidTransition { from, to } => {
            ServerError::Conflict(format!("an inspection that is {from} cannot become {to}"))
        }
        other => other.into(),
    }
}

/// Whether `auth` may read the task: its community is in scope, or the inspector opened it.
pub(crate) fn task_readable(
    auth: &DeviceAuth,
    t: &Rectification,
    community: Option<&fenlei_core::community::Community>,
) -> bool {
    auth.user.role == Role::Admin
        || crate::sync::in_scope(auth, &t.community_id, community)
        || (auth.user.role == Role::Inspector && t.opened_by == auth.user.id)
}

/// Checks a supervisor's decision on a task's closure on any storage engine; returns the
/// status it moves to and the trimmed comment.
pub(crate) fn decision_target<'c>(
    auth: &DeviceAuth,
    task: &Rectification,
    community: Option<&fenlei_core::community::Community>,
    approve: bool,
    comment: Option<&'c str>,
) -> ServerResult<(RectificationStatus, Option<&'c str>)> {
    if !task_readable(auth, task, community) || auth.user.role == Role::Inspector {
        return Err(ServerError::Forbidden("task outside your scope".into()));
    }
    let to = if approve {
        RectificationStatus::Closed
    } else {
        RectificationStatus::Reopened
    };
    if !task.status.can_become(to) {
        return Err(ServerError::Conflict(format!(
            "a task that is {} cannot become {to}",
            task.status
        )));
    }
    if approve && !task.missing_evidence().is_empty() {
        return Err(ServerError::Conflict(format!(
            "closure evidence missing: {}",
            task.missing_evidence().join(", ")
        )));
    }
    let comment = comment.map(str::trim).filter(|c| !c.is_empty());
    if !approve && comment.is_none() {
        return Err(ServerError::BadRequest(
            "reopening a task needs a comment".into(),
        ));
    }
    Ok((to, comment))
}

pub(crate) fn require_reviewer(auth: &DeviceAuth) -> ServerResult<()> {
    match auth.user.role {
        Role::Supervisor | Role::Admin => Ok(()),
        Role::Inspector => Err(ServerError::Forbidden(
            "the supervisor API is for supervisors and admins".into(),
        )),
    }
}

/// The access rule for writing a rectification task (sync): anyone who may work in its
/// community (admins everywhere, and the user who opened it). What the changes may do is the
/// document rules' judgement (`fenlei_core::rectification::check_write`).
pub(crate) fn authorise_task_access(
    auth: &DeviceAuth,
    id: &str,
    before: Option<&Rectification>,
    community_known: bool,
    in_scope: bool,
) -> ServerResult<()> {
    let forbidden = |reason: &str| ServerError::ForbiddenDocument {
        doc: id.to_string(),
        reason: reason.to_string(),
    };
    match before {
        None => {
            if !community_known {
                return Err(forbidden("unknown community"));
            }
            if !(in_scope || auth.user.role == Role::Admin) {
                return Err(forbidden("community outside this user's scope"));
            }
        }
        Some(b) => {
            if !(in_scope || auth.user.role == Role::Admin || b.opened_by == auth.user.id) {
                return Err(forbidden("task outside this user's scope"));
            }
        }
    }
    Ok(())
}
