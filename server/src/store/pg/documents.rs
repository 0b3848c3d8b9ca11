//! Automerge documents, the change feed, the projection, and the supervisor actions that
//! write documents (review, task decisions, rule-opened tasks) on PostgreSQL.
//!
//! Every write locks the document's row (`SELECT … FOR UPDATE`; a new document's key through
//! `INSERT … ON CONFLICT DO NOTHING`) before it reads the stored bytes, so writes of one document
//! from any number of server instances happen one after the other, each on top of the last. The
//! merge, the checks and the projection rows are fenlei-core's own (`InspectionDoc`,
//! `RectificationDoc`, `inspection_projection`, `task_projection`, `still_due`); this file only
//! moves rows. The change feed is bumped last (see `super::bump_feed`).

use super::conn::{PgTx, Sql};
use super::reference::community_in;
use super::{PgStorage, bump_feed, pg_params};
use crate::domain::access::require_reviewer;
use crate::domain::review::STANDARD_USER;
use crate::domain::review::decision_target;
use crate::domain::review::review_error;
use crate::domain::review::review_target;
use crate::domain::review::server_actor;
use crate::error::{ServerError, ServerResult};
use crate::model::*;
use crate::store::lock;
use fenlei_core::CoreError;
use fenlei_core::inspection::{EditContext, InspectionDoc, InspectionStatus};
use fenlei_core::protocol::FeedEntry;
use fenlei_core::rectification::RectificationDoc;
use fenlei_core::standard::Standard;
use fenlei_core::store::{
    AppliedDocument, COMPACT_AFTER_CHANGES, StoredDocument, inspection_projection, still_due,
    task_projection,
};
use std::sync::Arc;

// The actor documents are opened with: it merges, never writes (crate::actors).
use crate::actors::MERGE_ACTOR as SERVER_DEVICE;

/// A stored document — kind, feed position and bytes (snapshot, then the changes saved since) —
/// read in one statement, so a concurrent write or compaction cannot be seen half done.
fn stored_document(client: &mut impl Sql, id: &str) -> ServerResult<Option<StoredDocument>> {
    Ok(client
        .query_opt(
            "SELECT d.kind, (SELECT f.seq FROM change_feed f WHERE f.doc_id = d.id), d.snapshot,
                    ARRAY(SELECT c.bytes FROM document_changes c
                          WHERE c.doc_id = d.id ORDER BY c.seq)
             FROM documents d WHERE d.id = $1",
            &[&id],
        )?
        .map(|row| {
            let mut bytes: Vec<u8> = row.get(2);
            for change in row.get::<_, Vec<Vec<u8>>>(3) {
                bytes.extend_from_slice(&change);
            }
            StoredDocument {
                kind: row.get(0),
                seq: row.get(1),
                bytes,
            }
        }))
}

/// Locks the document's row until the transaction ends; its kind, or `None` when not stored.
/// Bytes must be read AFTER this (a later statement sees what the previous holder committed).
fn lock_document(tx: &mut PgTx<'_>, id: &str) -> ServerResult<Option<String>> {
    Ok(tx
        .query_opt(
            "SELECT kind FROM documents WHERE id = $1 FOR UPDATE",
            &[&id],
        )?
        .map(|r| r.get(0)))
}

/// The locked document's bytes (it exists: its row is locked).
fn locked_bytes(tx: &mut PgTx<'_>, id: &str) -> ServerResult<Vec<u8>> {
    stored_document(tx, id)?
        .map(|d| d.bytes)
        .ok_or_else(|| ServerError::Internal(format!("document {id} vanished while locked")))
}

fn feed_seq(client: &mut impl Sql, id: &str) -> ServerResult<Option<i64>> {
    Ok(client
        .query_opt("SELECT seq FROM change_feed WHERE doc_id = $1", &[&id])?
        .map(|r| r.get(0)))
}

/// Stores a new document; `false` when another transaction stored the id first (then it is
/// known, and locked by the caller's next `lock_document`).
fn insert_document(
    tx: &mut PgTx<'_>,
    id: &str,
    kind: &str,
    snapshot: &[u8],
    now: i64,
) -> ServerResult<bool> {
    let n = tx.execute(
        "INSERT INTO documents (id, kind, snapshot, updated_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (id) DO NOTHING",
        &[&id, &kind, &snapshot, &now],
    )?;
    Ok(n == 1)
}

/// Saves a locked document's new changes; folds them into a fresh snapshot every
/// `COMPACT_AFTER_CHANGES` changes, as the device store does.
fn save_changes(
    tx: &mut PgTx<'_>,
    id: &str,
    change: &[u8],
    snapshot: impl FnOnce() -> Vec<u8>,
    now: i64,
) -> ServerResult<()> {
    let n: i64 = tx
        .query_one(
            "INSERT INTO document_changes (doc_id, seq, bytes)
             SELECT $1, coalesce(max(seq), 0) + 1, $2 FROM document_changes WHERE doc_id = $1
             RETURNING seq",
            &[&id, &change],
        )?
        .get(0);
    if n >= COMPACT_AFTER_CHANGES {
        tx.execute(
            "UPDATE documents SET snapshot = $2, updated_at = $3 WHERE id = $1",
            &[&id, &snapshot(), &now],
        )?;
        tx.execute("DELETE FROM document_changes WHERE doc_id = $1", &[&id])?;
    } else {
        tx.execute(
            "UPDATE documents SET updated_at = $2 WHERE id = $1",
            &[&id, &now],
        )?;
    }
    Ok(())
}

/// Rewrites an inspection's projection rows (computed by fenlei-core).
fn project_inspection(
    tx: &mut PgTx<'_>,
    doc: &InspectionDoc,
    standard: Option<&Standard>,
    now: i64,
) -> ServerResult<()> {
    let p = inspection_projection(doc, standard)?;
    let i = &p.inspection;
    tx.execute(
        "INSERT INTO inspections (id, community_id, standard_id, standard_version, kind, status,
             created_by, started_at, ended_at, updated_at, total, max_points, grade, vetoed,
             conflict_count)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
         ON CONFLICT (id) DO UPDATE SET community_id = excluded.community_id,
             standard_id = excluded.standard_id, standard_version = excluded.standard_version,
             kind = excluded.kind, status = excluded.status, created_by = excluded.created_by,
             started_at = excluded.started_at, ended_at = excluded.ended_at,
             updated_at = excluded.updated_at, total = excluded.total,
             max_points = excluded.max_points, grade = excluded.grade, vetoed = excluded.vetoed,
             conflict_count = excluded.conflict_count",
        &[
            &i.id,
            &i.community_id,
            &i.standard_id,
            &i.standard_version,
            &i.kind,
            &i.status,
            &i.created_by,
            &i.started_at,
            &i.ended_at,
            &now,
            &i.total,
            &i.max_points,
            &i.grade,
            &(i.vetoed as i64),
            &i.conflict_count,
        ],
    )?;
    for table in [
        "inspection_inspectors",
        "item_answers",
        "evidence_refs",
        "section_scores",
    ] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE inspection_id = $1"),
            &[&i.id],
        )?;
    }
    // One statement per table, the rows as arrays.
    if !p.inspectors.is_empty() {
        tx.execute(
            "INSERT INTO inspection_inspectors (inspection_id, user_id)
             SELECT $1, u FROM unnest($2::text[]) AS u ON CONFLICT DO NOTHING",
            &[&i.id, &p.inspectors],
        )?;
    }
    if !p.answers.is_empty() {
        let a = &p.answers;
        tx.execute(
            "INSERT INTO item_answers (inspection_id, item_code, value_kind, value_json, note,
                 answered_by, answered_at, deduction, bonus, in_conflict)
             SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                 $7::bigint[], $8::float8[], $9::float8[], $10::bigint[])",
            &[
                &i.id,
                &a.iter().map(|r| r.item_code.as_str()).collect::<Vec<_>>(),
                &a.iter().map(|r| r.value_kind).collect::<Vec<_>>(),
                &a.iter().map(|r| r.value_json.as_str()).collect::<Vec<_>>(),
                &a.iter().map(|r| r.note.as_deref()).collect::<Vec<_>>(),
                &a.iter().map(|r| r.answered_by.as_str()).collect::<Vec<_>>(),
                &a.iter().map(|r| r.answered_at).collect::<Vec<_>>(),
                &a.iter().map(|r| r.deduction).collect::<Vec<_>>(),
                &a.iter().map(|r| r.bonus).collect::<Vec<_>>(),
                &a.iter().map(|r| r.in_conflict as i64).collect::<Vec<_>>(),
            ],
        )?;
    }
    if !p.evidence.is_empty() {
        let e = &p.evidence;
        tx.execute(
            "INSERT INTO evidence_refs (inspection_id, item_code, sha256, media, added_by, added_at)
             SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[])",
            &[
                &i.id,
                &e.iter().map(|r| r.item_code.as_str()).collect::<Vec<_>>(),
                &e.iter().map(|r| r.sha256.as_str()).collect::<Vec<_>>(),
                &e.iter().map(|r| r.media).collect::<Vec<_>>(),
                &e.iter().map(|r| r.added_by.as_str()).collect::<Vec<_>>(),
                &e.iter().map(|r| r.added_at).collect::<Vec<_>>(),
            ],
        )?;
    }
    if !p.sections.is_empty() {
        let s = &p.sections;
        tx.execute(
            "INSERT INTO section_scores (inspection_id, section_code, max_points, subtotal)
             SELECT $1, * FROM unnest($2::text[], $3::float8[], $4::float8[])",
            &[
                &i.id,
                &s.iter()
                    .map(|r| r.section_code.as_str())
                    .collect::<Vec<_>>(),
                &s.iter().map(|r| r.max_points).collect::<Vec<_>>(),
                &s.iter().map(|r| r.subtotal).collect::<Vec<_>>(),
            ],
        )?;
    }
    Ok(())
}

/// Rewrites a rectification task's projection rows (computed by fenlei-core).
fn project_task(tx: &mut PgTx<'_>, doc: &RectificationDoc, now: i64) -> ServerResult<()> {
    let (t, evidence) = task_projection(doc)?;
    tx.execute(
        "INSERT INTO rectifications (id, community_id, inspection_id, item_code, item_title,
             responsible, source, status, opened_by, opened_at, deadline, deduction, closed_at,
             updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         ON CONFLICT (id) DO UPDATE SET community_id = excluded.community_id,
             inspection_id = excluded.inspection_id, item_code = excluded.item_code,
             item_title = excluded.item_title, responsible = excluded.responsible,
             source = excluded.source, status = excluded.status, opened_by = excluded.opened_by,
             opened_at = excluded.opened_at, deadline = excluded.deadline,
             deduction = excluded.deduction, closed_at = excluded.closed_at,
             updated_at = excluded.updated_at",
        &[
            &t.id,
            &t.community_id,
            &t.inspection_id,
            &t.item_code,
            &t.item_title,
            &t.responsible,
            &t.source,
            &t.status,
            &t.opened_by,
            &t.opened_at,
            &t.deadline,
            &t.deduction,
            &t.closed_at,
            &now,
        ],
    )?;
    tx.execute(
        "DELETE FROM rectification_evidence WHERE task_id = $1",
        &[&t.id],
    )?;
    if !evidence.is_empty() {
        tx.execute(
            "INSERT INTO rectification_evidence (task_id, phase, kind, sha256)
             SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[]) ON CONFLICT DO NOTHING",
            &[
                &t.id,
                &evidence.iter().map(|e| e.phase).collect::<Vec<_>>(),
                &evidence.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
                &evidence
                    .iter()
                    .map(|e| e.sha256.as_str())
                    .collect::<Vec<_>>(),
            ],
        )?;
    }
    Ok(())
}

/// What applying one document's bytes did: `Ok(true)` changed it, `Ok(false)` changed nothing
/// (bytes it already held), `Err` refused the bytes (nothing of it changed).
type ApplyOutcome = Result<bool, CoreError>;

impl PgStorage {
    /// A standard for a transaction's work: from the process cache, else read on `client`
    /// (never a second pooled connection while the transaction holds locks).
    fn standard_on(
        &self,
        client: &mut impl Sql,
        id: &str,
        version: &str,
    ) -> ServerResult<Option<Arc<Standard>>> {
        let key = (id.to_string(), version.to_string());
        if let Some(s) = lock(&self.standards).get(&key) {
            return Ok(Some(s.clone()));
        }
        let Some(row) = client.query_opt(
            "SELECT source FROM standards WHERE id = $1 AND version = $2",
            &[&id, &version],
        )?
        else {
            return Ok(None);
        };
        let standard = Arc::new(Standard::from_toml_str(row.get(0))?);
        lock(&self.standards).insert(key, standard.clone());
        Ok(Some(standard))
    }

    fn project_inspection_scored(
        &self,
        tx: &mut PgTx<'_>,
        doc: &InspectionDoc,
        now: i64,
    ) -> ServerResult<()> {
        let (sid, sversion) = doc.pinned_standard();
        let standard = self.standard_on(tx, &sid, &sversion)?;
        project_inspection(tx, doc, standard.as_deref(), now)
    }

    /// Merges one document's received bytes inside the batch's transaction.
    fn apply_one(
        &self,
        tx: &mut PgTx<'_>,
        id: &str,
        bytes: &[u8],
        now: i64,
    ) -> ServerResult<(Option<i64>, ApplyOutcome)> {
        // Twice at most: a new document another instance stores first is then merged into.
        for _ in 0..2 {
            let kind = lock_document(tx, id)?;
            let seq_before = feed_seq(tx, id)?;
            let outcome = match kind {
                None => {
                    let kind = fenlei_core::rectification::document_type(id, bytes);
                    if kind.as_deref() == Some("rectification") {
                        match RectificationDoc::load(id, bytes, SERVER_DEVICE) {
                            Err(e) => Err(e),
                            Ok(mut doc) => {
                                if !insert_document(tx, id, "rectification", &doc.save(), now)? {
                                    continue;
                                }
                                project_task(tx, &doc, now)?;
                                Ok(true)
                            }
                        }
                    } else {
                        match InspectionDoc::load(id, bytes, SERVER_DEVICE) {
                            Err(e) => Err(e),
                            Ok(mut doc) => {
                                if !insert_document(tx, id, "inspection", &doc.save(), now)? {
                                    continue;
                                }
                                self.project_inspection_scored(tx, &doc, now)?;
                                Ok(true)
                            }
                        }
                    }
                }
                Some(kind) if kind == "rectification" => {
                    let stored = locked_bytes(tx, id)?;
                    let mut doc = RectificationDoc::load(id, &stored, SERVER_DEVICE)?;
                    match doc.apply_bytes(bytes) {
                        Err(e) => Err(e),
                        Ok(_) => {
                            let change = doc.save_incremental();
                            if change.is_empty() {
                                Ok(false)
                            } else {
                                save_changes(tx, id, &change, || doc.save(), now)?;
                                project_task(tx, &doc, now)?;
                                Ok(true)
                            }
                        }
                    }
                }
                Some(_) => {
                    let stored = locked_bytes(tx, id)?;
                    let mut doc = InspectionDoc::load(id, &stored, SERVER_DEVICE)?;
                    match doc.apply_bytes(bytes) {
                        Err(e) => Err(e),
                        Ok(_) => {
                            let change = doc.save_incremental();
                            if change.is_empty() {
                                Ok(false)
                            } else {
                                save_changes(tx, id, &change, || doc.save(), now)?;
                                self.project_inspection_scored(tx, &doc, now)?;
                                Ok(true)
                            }
                        }
                    }
                }
            };
            return Ok((seq_before, outcome));
        }
        Err(ServerError::Internal(format!(
            "document {id} could be neither stored nor locked"
        )))
    }

    /// Feed entries after `after` that `auth` may read: `tasks` adds rectification tasks
    /// (protocol ≥ 2). One snapshot: every position up to the counter it reads is committed.
    fn feed(
        &self,
        auth: &DeviceAuth,
        after: i64,
        limit: usize,
        tasks: bool,
    ) -> ServerResult<(Vec<FeedEntry>, i64, bool)> {
        let sql = if tasks {
            format!(
                "SELECT f.doc_id, f.seq FROM change_feed f
                 LEFT JOIN inspections i ON i.id = f.doc_id
                 LEFT JOIN rectifications t ON t.id = f.doc_id
                 LEFT JOIN communities c ON c.id = coalesce(i.community_id, t.community_id)
                 WHERE f.seq > ?1 AND f.seq <= ?2 AND (
                    (i.id IS NOT NULL AND {})
                    OR (t.id IS NOT NULL AND {}))
                 ORDER BY f.seq LIMIT ?5",
                crate::store::sql::readable(3, 4),
                crate::store::sql::task_readable_sql(3, 4)
            )
        } else {
            format!(
                "SELECT f.doc_id, f.seq FROM change_feed f
                 JOIN inspections i ON i.id = f.doc_id
                 LEFT JOIN communities c ON c.id = i.community_id
                 WHERE f.seq > ?1 AND f.seq <= ?2 AND {}
                 ORDER BY f.seq LIMIT ?5",
                crate::store::sql::readable(3, 4)
            )
        };
        let mut client = self.client()?;
        let mut tx = client.snapshot()?;
        let latest: i64 = tx
            .query_one("SELECT seq FROM change_counter WHERE id = 1", &[])?
            .get(0);
        let entries: Vec<FeedEntry> = tx
            .query(
                &pg_params(&sql),
                &[
                    &after,
                    &latest,
                    &auth.user.role.as_str(),
                    &auth.user.id,
                    &(limit as i64),
                ],
            )?
            .iter()
            .map(|r| FeedEntry {
                id: r.get(0),
                seq: r.get::<_, i64>(1) as u64,
            })
            .collect();
        tx.commit()?;
        let more = entries.len() == limit;
        let next = if more {
            entries.last().map(|e| e.seq as i64).unwrap_or(after)
        } else {
            latest.max(after)
        };
        Ok((entries, next, more))
    }

    /// One task as the supervisor API lists it.
    fn task_row(&self, id: &str) -> ServerResult<Option<TaskRow>> {
        let now = crate::model::now();
        let row = self.client()?.query_opt(
            "SELECT t.id, t.community_id, c.name, c.street, c.district, t.inspection_id,
                    t.item_code, t.item_title, t.opened_at, t.deadline, t.status, t.responsible,
                    t.deduction,
                    ARRAY(SELECT e.sha256 FROM rectification_evidence e
                          WHERE e.task_id = t.id AND e.phase = 'finding' ORDER BY e.sha256),
                    ARRAY(SELECT e.sha256 FROM rectification_evidence e
                          WHERE e.task_id = t.id AND e.phase = 'closure' ORDER BY e.sha256)
             FROM rectifications t LEFT JOIN communities c ON c.id = t.community_id
             WHERE t.id = $1",
            &[&id],
        )?;
        Ok(row.map(|r| {
            let status: String = r.get(10);
            let deadline: i64 = r.get(9);
            let overdue = crate::domain::tasks::is_overdue(&status, deadline, now);
            TaskRow {
                id: r.get(0),
                community_id: r.get(1),
                community_name: r.get(2),
                street: r.get(3),
                district: r.get(4),
                inspection_id: r.get(5),
                item_code: r.get(6),
                item_title: r.get(7),
                responsible: r.get(11),
                opened_at_ms: r.get(8),
                deadline_ms: deadline,
                status,
                overdue,
                deduction: r.get(12),
                evidence: r.get(13),
                closure_evidence: r.get(14),
            }
        }))
    }
}

impl crate::store::DocumentStore for PgStorage {
    /// One statement (one snapshot) for the feed position, the kind and the bytes.
    fn sync_view(&self, id: &str) -> ServerResult<crate::store::SyncView> {
        let stored = stored_document(&mut *self.client()?, id)?;
        crate::store::SyncView::parse(id, stored, SERVER_DEVICE)
    }

    fn load_document(&self, id: &str) -> ServerResult<Option<InspectionDoc>> {
        match stored_document(&mut *self.client()?, id)? {
            Some(d) if d.kind == "inspection" => {
                Ok(Some(InspectionDoc::load(id, &d.bytes, SERVER_DEVICE)?))
            }
            _ => Ok(None),
        }
    }

    fn apply_documents(&self, batch: &[(String, Vec<u8>)]) -> ServerResult<Vec<AppliedDocument>> {
        let now = crate::model::now();
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        // Rows are locked in id order, so two batches sharing documents cannot deadlock.
        let mut order: Vec<usize> = (0..batch.len()).collect();
        order.sort_by(|a, b| batch[*a].0.cmp(&batch[*b].0));
        let mut outcomes: Vec<Option<(Option<i64>, ApplyOutcome)>> =
            (0..batch.len()).map(|_| None).collect();
        for n in order {
            let (id, bytes) = &batch[n];
            outcomes[n] = Some(self.apply_one(&mut tx, id, bytes, now)?);
        }
        let changed: Vec<&str> = batch
            .iter()
            .zip(&outcomes)
            .filter(|(_, o)| matches!(o, Some((_, Ok(true)))))
            .map(|((id, _), _)| id.as_str())
            .collect();
        // Last: the feed positions (the counter row stays locked until COMMIT).
        let seqs = bump_feed(&mut tx, &changed)?;
        tx.commit()?;
        Ok(batch
            .iter()
            .zip(outcomes)
            .map(|((id, _), o)| {
                let (seq_before, outcome) = o.unwrap_or((None, Ok(false)));
                AppliedDocument {
                    id: id.clone(),
                    seq_before,
                    seq_after: seqs.get(id).copied().or(seq_before),
                    error: outcome.err(),
                }
            })
            .collect())
    }

    fn feed_after(
        &self,
        auth: &DeviceAuth,
        after: i64,
        limit: usize,
    ) -> ServerResult<(Vec<FeedEntry>, i64, bool)> {
        self.feed(auth, after, limit, false)
    }

    fn review_inspection(
        &self,
        auth: &DeviceAuth,
        id: &str,
        approve: bool,
        comment: Option<&str>,
    ) -> ServerResult<InspectionStatus> {
        require_reviewer(auth)?;
        let now = crate::model::now();
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        if lock_document(&mut tx, id)?.as_deref() != Some("inspection") {
            return Err(ServerError::NotFound(format!("no inspection {id}")));
        }
        let stored = locked_bytes(&mut tx, id)?;
        let mut doc = InspectionDoc::load(id, &stored, SERVER_DEVICE)?;
        let inspection = doc.read()?;
        let community = community_in(&mut tx, &inspection.community_id)?;
        let (to, comment) = review_target(auth, &inspection, community.as_ref(), approve, comment)?;
        // The supervisor's own actor (supervision.rs); the row lock keeps its changes in order.
        doc.set_device(&server_actor("review", &auth.user.id))?;
        doc.set_status(to, &EditContext::by(&auth.user.id), comment, now)
            .map_err(review_error)?;
        let change = doc.save_incremental();
        save_changes(&mut tx, id, &change, || doc.save(), now)?;
        self.project_inspection_scored(&mut tx, &doc, now)?;
        bump_feed(&mut tx, &[id])?;
        tx.commit()?;
        drop(client);
        if approve {
            self.open_due_rectifications(id)?;
        }
        Ok(to)
    }

    fn open_due_rectifications(&self, inspection_id: &str) -> ServerResult<Vec<String>> {
        let now = crate::model::now();
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        // The inspection's row lock makes "items that already have a task" exact across
        // instances: two of them cannot both open the same item's task.
        if lock_document(&mut tx, inspection_id)?.as_deref() != Some("inspection") {
            return Err(CoreError::UnknownInspection(inspection_id.to_string()).into());
        }
        let stored = locked_bytes(&mut tx, inspection_id)?;
        let inspection = InspectionDoc::load(inspection_id, &stored, SERVER_DEVICE)?.read()?;
        if !fenlei_core::store::rectifications_may_be_due(&inspection) {
            return Ok(vec![]);
        }
        // An inspection under a standard this server does not hold opens nothing.
        let Some(standard) = self.standard_on(
            &mut tx,
            &inspection.standard_id,
            &inspection.standard_version,
        )?
        else {
            return Ok(vec![]);
        };
        let existing: Vec<String> = tx
            .query(
                "SELECT item_code FROM rectifications WHERE inspection_id = $1",
                &[&inspection_id],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let due = still_due(&standard, &inspection, &existing);
        if due.is_empty() {
            return Ok(vec![]);
        }
        if community_in(&mut tx, &inspection.community_id)?.is_none() {
            return Err(CoreError::UnknownCommunity(inspection.community_id.clone()).into());
        }
        let actor = server_actor("standard", STANDARD_USER);
        let mut opened = Vec::with_capacity(due.len());
        for new in &due {
            let id = uuid::Uuid::now_v7().to_string();
            let mut doc = RectificationDoc::create(&id, new, &actor, STANDARD_USER, now)?;
            if !insert_document(&mut tx, &id, "rectification", &doc.save(), now)? {
                return Err(ServerError::Internal(format!("task id {id} taken")));
            }
            project_task(&mut tx, &doc, now)?;
            opened.push(id);
        }
        let ids: Vec<&str> = opened.iter().map(String::as_str).collect();
        bump_feed(&mut tx, &ids)?;
        tx.commit()?;
        Ok(opened)
    }

    fn document_kind(&self, id: &str) -> ServerResult<Option<String>> {
        Ok(self
            .client()?
            .query_opt("SELECT kind FROM documents WHERE id = $1", &[&id])?
            .map(|r| r.get(0)))
    }

    fn feed_with_tasks(
        &self,
        auth: &DeviceAuth,
        after: i64,
        limit: usize,
    ) -> ServerResult<(Vec<FeedEntry>, i64, bool)> {
        self.feed(auth, after, limit, true)
    }

    fn decide_task(
        &self,
        auth: &DeviceAuth,
        id: &str,
        approve: bool,
        comment: Option<&str>,
    ) -> ServerResult<TaskRow> {
        require_reviewer(auth)?;
        let now = crate::model::now();
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        if lock_document(&mut tx, id)?.as_deref() != Some("rectification") {
            return Err(ServerError::NotFound(format!("no rectification task {id}")));
        }
        let stored = locked_bytes(&mut tx, id)?;
        let mut doc = RectificationDoc::load(id, &stored, SERVER_DEVICE)?;
        let task = doc.read()?;
        let community = community_in(&mut tx, &task.community_id)?;
        let (to, comment) = decision_target(auth, &task, community.as_ref(), approve, comment)?;
        doc.set_device(&server_actor("review", &auth.user.id))?;
        doc.set_status(to, &auth.user.id, comment, now)?;
        let change = doc.save_incremental();
        save_changes(&mut tx, id, &change, || doc.save(), now)?;
        project_task(&mut tx, &doc, now)?;
        bump_feed(&mut tx, &[id])?;
        tx.commit()?;
        drop(client);
        self.task_row(id)?
            .ok_or_else(|| ServerError::Internal("task vanished".into()))
    }
}
