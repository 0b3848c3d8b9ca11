//! Rectification tasks in the store: their documents (kind 'rectification' in `documents`,
//! snapshot + incremental changes like inspections), their projection (`rectifications`,
//! `rectification_evidence`), and what sync needs to apply received task documents.

use super::{COMPACT_AFTER_CHANGES, Store, append_change, compact_bytes, lock};
use crate::inspection::{HistoryEntry, InspectionStatus};
use crate::media::{MediaRecord, MediaStore};
use crate::rectification::{
    ClosureEvidence, FollowUp, NewRectification, Rectification, RectificationDoc,
    RectificationStatus, due_under_standard,
};
use crate::scoring;
use crate::{CoreError, Result};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One task as the projection holds it (for lists).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct RectificationSummary {
    pub id: String,
    pub community_id: String,
    pub inspection_id: String,
    pub item_code: String,
    pub item_title: String,
    pub responsible: String,
    pub status: RectificationStatus,
    pub opened_at_ms: i64,
    pub deadline_ms: i64,
    pub deduction: Option<f64>,
    pub overdue: bool,
}

/// The kind a stored document has ('inspection', 'rectification'), if the store holds it.
pub(super) fn kind_of(conn: &Connection, id: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT kind FROM documents WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?)
}

pub(super) fn load_task(conn: &Connection, id: &str, device_id: &str) -> Result<RectificationDoc> {
    match kind_of(conn, id)?.as_deref() {
        Some("rectification") => {}
        _ => {
            return Err(CoreError::InvalidArgument(format!(
                "no rectification task {id}"
            )));
        }
    }
    RectificationDoc::load(id, &super::stored_bytes(conn, id)?, device_id)
}

/// The `rectifications` row of one task document.
#[derive(Debug, Clone, PartialEq)]
pub struct RectificationRow {
    pub id: String,
    pub community_id: String,
    pub inspection_id: String,
    pub item_code: String,
    pub item_title: String,
    pub responsible: String,
    pub source: String,
    pub status: &'static str,
    pub opened_by: String,
    pub opened_at: i64,
    pub deadline: i64,
    pub deduction: Option<f64>,
    pub closed_at: Option<i64>,
}

/// One `rectification_evidence` row.
#[derive(Debug, Clone, PartialEq)]
pub struct RectificationEvidenceRow {
    /// `finding` or `closure`.
    pub phase: &'static str,
    pub kind: String,
    pub sha256: String,
}

/// The projection rows of a task document: computed here for this store and for other storage
/// engines (the server's PostgreSQL) alike.
pub fn task_projection(
    doc: &RectificationDoc,
) -> Result<(RectificationRow, Vec<RectificationEvidenceRow>)> {
    let t = doc.read()?;
    let closed_at = t
        .events
        .iter()
        .rev()
        .find(|e| e.to == RectificationStatus::Closed)
        .map(|e| e.at_ms)
        .filter(|_| t.status == RectificationStatus::Closed);
    let mut evidence: Vec<RectificationEvidenceRow> = Vec::new();
    let mut add = |row: RectificationEvidenceRow| {
        if !evidence.contains(&row) {
            evidence.push(row);
        }
    };
    for h in &t.finding_evidence {
        add(RectificationEvidenceRow {
            phase: "finding",
            kind: "photo".into(),
            sha256: h.clone(),
        });
    }
    for e in &t.closure_evidence {
        if let Some(h) = &e.sha256 {
            add(RectificationEvidenceRow {
                phase: "closure",
                kind: e.kind.clone(),
                sha256: h.clone(),
            });
        }
    }
    let row = RectificationRow {
        id: t.id,
        community_id: t.community_id,
        inspection_id: t.inspection_id,
        item_code: t.item_code,
        item_title: t.item_title,
        responsible: t.responsible,
        source: t.source,
        status: t.status.as_str(),
        opened_by: t.opened_by,
        opened_at: t.opened_at_ms,
        deadline: t.deadline_ms,
        deduction: t.deduction,
        closed_at,
    };
    Ok((row, evidence))
}

/// Rewrites the task's projection rows.
pub(super) fn project(conn: &Connection, doc: &RectificationDoc, now: i64) -> Result<()> {
    let (t, evidence) = task_projection(doc)?;
    conn.prepare_cached(
        "INSERT OR REPLACE INTO rectifications (id, community_id, inspection_id, item_code, item_title,
             responsible, source, status, opened_by, opened_at, deadline, deduction, closed_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?
    .execute(params![
        t.id,
        t.community_id,
        t.inspection_id,
        t.item_code,
        t.item_title,
        t.responsible,
        t.source,
        t.status,
        t.opened_by,
        t.opened_at,
        t.deadline,
        t.deduction,
        t.closed_at,
        now
    ])?;
    conn.prepare_cached("DELETE FROM rectification_evidence WHERE task_id = ?1")?
        .execute([&t.id])?;
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO rectification_evidence (task_id, phase, kind, sha256) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for e in &evidence {
        insert.execute(params![t.id, e.phase, e.kind, e.sha256])?;
    }
    Ok(())
}

/// Merges received bytes of a task document inside the caller's transaction: a new task is
/// stored as received, a known one merged. `Ok(Err(e))`: the bytes were refused, nothing changed.
pub(super) fn apply_received(
    tx: &Connection,
    id: &str,
    bytes: &[u8],
    now: i64,
    device_id: &str,
) -> Result<std::result::Result<(), CoreError>> {
    match kind_of(tx, id)?.as_deref() {
        Some("rectification") => {
            let mut doc = load_task(tx, id, device_id)?;
            if let Err(e) = doc.apply_bytes(bytes) {
                return Ok(Err(e));
            }
            let change = doc.save_incremental();
            if !change.is_empty() && append_change(tx, id, &change, now)? >= COMPACT_AFTER_CHANGES {
                compact_bytes(tx, id, &doc.save(), now)?;
            }
            project(tx, &doc, now)?;
            Ok(Ok(()))
        }
        Some(other) => Ok(Err(CoreError::CorruptDocument {
            id: id.into(),
            reason: format!("document is a {other}, not a rectification task"),
        })),
        None => match RectificationDoc::load(id, bytes, device_id) {
            Ok(mut doc) => {
                tx.execute(
                    "INSERT INTO documents (id, kind, snapshot, updated_at) VALUES (?1, 'rectification', ?2, ?3)",
                    params![id, doc.save(), now],
                )?;
                project(tx, &doc, now)?;
                Ok(Ok(()))
            }
            Err(e) => Ok(Err(e)),
        },
    }
}

/// Whether the standard's rules may open tasks on the inspection now: it is submitted or approved.
pub fn rectifications_may_be_due(inspection: &crate::inspection::Inspection) -> bool {
    matches!(
        inspection.status,
        InspectionStatus::Submitted | InspectionStatus::Approved
    )
}

/// The tasks the standard's rules call for on the inspection that are still to open: items
/// with a task for this inspection (`existing` item codes) are skipped.
pub fn still_due(
    standard: &crate::standard::Standard,
    inspection: &crate::inspection::Inspection,
    existing: &[String],
) -> Vec<NewRectification> {
    if !rectifications_may_be_due(inspection) {
        return vec![];
    }
    let card = scoring::score(standard, &inspection.item_answers());
    due_under_standard(standard, inspection, &card)
        .into_iter()
        .filter(|new| !existing.contains(&new.item_code))
        .collect()
}

impl Store {
    /// Opens a rectification task (the inspector's choice, or the standard's rule); returns its id.
    pub fn open_rectification(&self, new: &NewRectification, by: &str) -> Result<String> {
        self.open_rectification_as(new, by, None)
    }

    /// [`Self::open_rectification`] with the change made by another actor than this store's
    /// device (the server opening tasks on behalf of the standard).
    pub fn open_rectification_as(
        &self,
        new: &NewRectification,
        by: &str,
        device_id: Option<&str>,
    ) -> Result<String> {
        self.community(&new.community_id)?;
        let id = uuid::Uuid::now_v7().to_string();
        let now = self.now_ms();
        let mut doc =
            RectificationDoc::create(&id, new, device_id.unwrap_or(&self.device_id), by, now)?;
        doc.set_device(&self.device_id)?;
        let w = lock(&self.writer);
        let tx = w.conn.unchecked_transaction()?;
        tx.execute(
            "INSERT INTO documents (id, kind, snapshot, updated_at) VALUES (?1, 'rectification', ?2, ?3)",
            params![id, doc.save(), now],
        )?;
        project(&tx, &doc, now)?;
        tx.commit()?;
        Ok(id)
    }

    /// Opens the tasks the inspection's findings call for under its standard's rules, skipping
    /// items that already have a task for this inspection. Returns the new tasks' ids.
    pub fn open_due_rectifications(
        &self,
        inspection_id: &str,
        by: &str,
        device_id: Option<&str>,
    ) -> Result<Vec<String>> {
        let inspection = self.inspection(inspection_id)?;
        if !rectifications_may_be_due(&inspection) {
            return Ok(vec![]);
        }
        let standard = self.standard(&inspection.standard_id, &inspection.standard_version)?;
        let existing: Vec<String> = self.read(|c| {
            let mut stmt =
                c.prepare_cached("SELECT item_code FROM rectifications WHERE inspection_id = ?1")?;
            let rows = stmt
                .query_map([inspection_id], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })?;
        let mut opened = Vec::new();
        for new in still_due(&standard, &inspection, &existing) {
            opened.push(self.open_rectification_as(&new, by, device_id)?);
        }
        Ok(opened)
    }

    /// One edit of a task, persisted with its projection in one transaction. With `device_id`
    /// the change is made by that actor (the server's review actors), else by this store's.
    fn edit_task(
        &self,
        id: &str,
        device_id: Option<&str>,
        f: impl FnOnce(&mut RectificationDoc, i64) -> Result<()>,
    ) -> Result<()> {
        self.edit_task_with(id, device_id, f, |_, _| Ok(()))
    }

    /// [`Self::edit_task`] with more work (`in_tx`) in the edit's own transaction.
    fn edit_task_with(
        &self,
        id: &str,
        device_id: Option<&str>,
        f: impl FnOnce(&mut RectificationDoc, i64) -> Result<()>,
        in_tx: impl FnOnce(&Connection, i64) -> Result<()>,
    ) -> Result<()> {
        let w = lock(&self.writer);
        let mut doc = load_task(&w.conn, id, device_id.unwrap_or(&self.device_id))?;
        let now = self.now_ms();
        f(&mut doc, now)?;
        let bytes = doc.save_incremental();
        let tx = w.conn.unchecked_transaction()?;
        if append_change(&tx, id, &bytes, now)? >= COMPACT_AFTER_CHANGES {
            compact_bytes(&tx, id, &doc.save(), now)?;
        }
        project(&tx, &doc, now)?;
        in_tx(&tx, now)?;
        tx.commit()?;
        Ok(())
    }

    /// Ingests a closure photo (整改后照片, or a photographed report or record) and adds it to
    /// the task's closure evidence as `kind` (`photo_after` for the "after" photo), with its
    /// `media` row, so that media sync uploads it like inspection evidence (thumbnail, rendition,
    /// then the original) and supervisors can fetch it. As with `attach_photo`: an unknown task
    /// or a refused file fails before anything is stored; a failed commit removes the files this
    /// call newly wrote.
    pub fn attach_closure_photo(
        &self,
        media: &MediaStore,
        task_id: &str,
        kind: &str,
        path: &Path,
        preview: Option<&Path>,
        by: &str,
    ) -> Result<MediaRecord> {
        self.rectification(task_id)?;
        let record = media.ingest_photo(path, preview)?;
        let (thumb, upload) = self.declared_renditions(&record)?;
        let result = self.edit_task_with(
            task_id,
            None,
            |doc, now| {
                doc.add_closure_evidence(&ClosureEvidence {
                    kind: kind.to_string(),
                    sha256: Some(record.sha256.clone()),
                    thumb: thumb.clone(),
                    upload: upload.clone(),
                    by: by.to_string(),
                    at_ms: now,
                    ..Default::default()
                })
            },
            |tx, now| {
                super::media::ensure_files(media, &record)?;
                super::media::upsert_media(tx, &record, now)
            },
        );
        match result {
            Ok(()) => Ok(record),
            Err(e) => {
                if !record.already_stored {
                    self.discard_unreferenced(media, &record);
                }
                Err(e)
            }
        }
    }

    /// Moves a task along its loop (see [`RectificationStatus::can_become`]).
    pub fn set_rectification_status(
        &self,
        id: &str,
        to: RectificationStatus,
        by: &str,
        comment: Option<&str>,
    ) -> Result<()> {
        self.set_rectification_status_as(id, None, to, by, comment)
    }

    pub fn set_rectification_status_as(
        &self,
        id: &str,
        device_id: Option<&str>,
        to: RectificationStatus,
        by: &str,
        comment: Option<&str>,
    ) -> Result<()> {
        self.edit_task(id, device_id, |doc, now| {
            doc.set_status(to, by, comment, now)
        })
    }

    /// Attaches closure evidence (a text or a photo by hash); `by`/`at_ms` default to the
    /// caller and now when empty/zero.
    pub fn add_closure_evidence(&self, id: &str, evidence: &ClosureEvidence) -> Result<()> {
        self.edit_task(id, None, |doc, now| {
            let mut e = evidence.clone();
            if e.at_ms == 0 {
                e.at_ms = now;
            }
            doc.add_closure_evidence(&e)
        })
    }

    /// A follow-up inspection (复查) of the task's community: links it, adds its "after"
    /// photos, and submits the task for closure when rectified (if its evidence is complete;
    /// else it stays in progress) or reopens it when not.
    pub fn record_follow_up(
        &self,
        task_id: &str,
        follow_up_inspection_id: &str,
        rectified: bool,
        after_photos: &[String],
        by: &str,
        note: Option<&str>,
    ) -> Result<RectificationStatus> {
        let follow = self.inspection(follow_up_inspection_id)?;
        let task = self.rectification(task_id)?;
        if follow.community_id != task.community_id {
            return Err(CoreError::InvalidArgument(
                "the follow-up inspection is of another community".into(),
            ));
        }
        let mut result = task.status;
        // The renditions of the photos this device holds (what its media sync uploads).
        let mut declared = Vec::with_capacity(after_photos.len());
        for h in after_photos {
            declared.push(match self.media(h)? {
                Some(m) => self.declared_renditions(&m)?,
                None => (None, None),
            });
        }
        self.edit_task(task_id, None, |doc, now| {
            doc.link_follow_up(&FollowUp {
                inspection_id: follow_up_inspection_id.into(),
                rectified,
                by: by.into(),
                at_ms: now,
                note: note.map(str::to_string),
            })?;
            for (h, (thumb, upload)) in after_photos.iter().zip(&declared) {
                doc.add_closure_evidence(&ClosureEvidence {
                    kind: "photo_after".into(),
                    sha256: Some(h.clone()),
                    thumb: thumb.clone(),
                    upload: upload.clone(),
                    by: by.into(),
                    at_ms: now,
                    ..Default::default()
                })?;
            }
            let status = doc.status()?;
            let target = if rectified {
                if doc.read()?.missing_evidence().is_empty() {
                    RectificationStatus::Submitted
                } else {
                    RectificationStatus::InProgress
                }
            } else {
                RectificationStatus::Reopened
            };
            if status.can_become(target) {
                let why = if rectified {
                    "复查：已整改"
                } else {
                    "复查：未整改"
                };
                doc.set_status(target, by, Some(note.unwrap_or(why)), now)?;
                result = target;
            } else {
                result = status;
            }
            Ok(())
        })?;
        Ok(result)
    }

    pub fn rectification(&self, id: &str) -> Result<Rectification> {
        self.read(|c| load_task(c, id, &self.device_id))?.read()
    }

    pub fn rectification_history(&self, id: &str) -> Result<Vec<HistoryEntry>> {
        Ok(self.read(|c| load_task(c, id, &self.device_id))?.history())
    }

    /// A community's tasks, newest first; `pending_only` keeps those still owing work or
    /// waiting for approval (what a follow-up inspection links to).
    pub fn rectifications_of_community(
        &self,
        community_id: &str,
        pending_only: bool,
    ) -> Result<Vec<Rectification>> {
        let ids: Vec<String> = self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id FROM rectifications WHERE community_id = ?1
                   AND (?2 = 0 OR status != 'closed') ORDER BY opened_at DESC, id DESC",
            )?;
            let rows = stmt
                .query_map(params![community_id, pending_only], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })?;
        ids.iter().map(|id| self.rectification(id)).collect()
    }

    /// Every task in the store (projection rows), newest first, with its overdue flag now.
    pub fn list_rectifications(
        &self,
        status: Option<RectificationStatus>,
    ) -> Result<Vec<RectificationSummary>> {
        let now = self.now_ms();
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, community_id, inspection_id, item_code, item_title, responsible, status,
                        opened_at, deadline, deduction
                 FROM rectifications WHERE (?1 IS NULL OR status = ?1)
                 ORDER BY opened_at DESC, id DESC",
            )?;
            let rows = stmt
                .query_map([status.map(|s| s.as_str())], |r| {
                    let status: String = r.get(6)?;
                    let status =
                        RectificationStatus::parse(&status).unwrap_or(RectificationStatus::Open);
                    let deadline: i64 = r.get(8)?;
                    Ok(RectificationSummary {
                        id: r.get(0)?,
                        community_id: r.get(1)?,
                        inspection_id: r.get(2)?,
                        item_code: r.get(3)?,
                        item_title: r.get(4)?,
                        responsible: r.get(5)?,
                        status,
                        opened_at_ms: r.get(7)?,
                        deadline_ms: deadline,
                        deduction: r.get(9)?,
                        overdue: status.is_pending() && now > deadline,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
    }
}
