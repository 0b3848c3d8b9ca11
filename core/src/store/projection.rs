//! The relational projection of an inspection document: what queries read. Always derived
//! from the document (and the standard for scores), never edited on its own.
//!
//! Writing is a diff: the rows last written for a document (kept beside it in the edit cache)
//! are compared with the rows it projects to now, and only what changed is written. Recording
//! one answer then touches three rows instead of rewriting the inspection's fifty.

use crate::Result;
use crate::inspection::{EvidenceRef, InspectionDoc, RecordedAnswer};
use crate::scoring;
use crate::standard::Standard;
use rusqlite::{Connection, params};
use std::collections::{BTreeMap, BTreeSet};

/// What an edit changed in a document, so the projection re-reads only that. Anything that
/// did not come from one local edit (a merge, a load) is `Everything`.
pub(super) enum Touched<'a> {
    /// One item's answer.
    Answer(&'a str),
    /// The evidence references.
    Evidence,
    /// Only the inspection's own fields (status, GPS, times).
    Header,
    Everything,
}

/// The child rows of one inspection as last written, and the document state they came from.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Projected {
    source_answers: BTreeMap<String, RecordedAnswer>,
    source_conflicted: BTreeSet<String>,
    source_evidence: Vec<EvidenceRef>,
    inspectors: BTreeSet<String>,
    answers: BTreeMap<String, AnswerRow>,
    evidence: BTreeMap<(String, String), EvidenceRow>,
    sections: BTreeMap<String, (f64, f64)>,
}

#[derive(Debug, Clone, PartialEq)]
struct AnswerRow {
    value_kind: &'static str,
    value_json: String,
    note: Option<String>,
    answered_by: String,
    answered_at: i64,
    deduction: Option<f64>,
    bonus: Option<f64>,
    in_conflict: bool,
}

#[derive(Debug, Clone, PartialEq)]
struct EvidenceRow {
    media: &'static str,
    added_by: String,
    added_at: i64,
}

/// The `inspections` row of one document (the columns other than `id`'s child tables).
#[derive(Debug, Clone, PartialEq)]
pub struct InspectionRow {
    pub id: String,
    pub community_id: String,
    pub standard_id: String,
    pub standard_version: String,
    pub kind: &'static str,
    pub status: &'static str,
    pub created_by: String,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub total: Option<f64>,
    pub max_points: Option<f64>,
    pub grade: Option<String>,
    pub vetoed: bool,
    pub conflict_count: i64,
}

/// One `item_answers` row.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemAnswerRow {
    pub item_code: String,
    pub value_kind: &'static str,
    pub value_json: String,
    pub note: Option<String>,
    pub answered_by: String,
    pub answered_at: i64,
    pub deduction: Option<f64>,
    pub bonus: Option<f64>,
    pub in_conflict: bool,
}

/// One `evidence_refs` row.
#[derive(Debug, Clone, PartialEq)]
pub struct EvidenceRefRow {
    pub item_code: String,
    pub sha256: String,
    pub media: &'static str,
    pub added_by: String,
    pub added_at: i64,
}

/// One `section_scores` row.
#[derive(Debug, Clone, PartialEq)]
pub struct SectionScoreRow {
    pub section_code: String,
    pub max_points: f64,
    pub subtotal: f64,
}

/// Every projection row of one inspection document: what another storage engine (the server's
/// PostgreSQL) writes, computed by the same code as this store's own projection.
#[derive(Debug, Clone, PartialEq)]
pub struct InspectionProjection {
    pub inspection: InspectionRow,
    pub inspectors: Vec<String>,
    pub answers: Vec<ItemAnswerRow>,
    pub evidence: Vec<EvidenceRefRow>,
    pub sections: Vec<SectionScoreRow>,
}

/// The projection rows of `doc`, scored under `standard` when it is known.
pub fn inspection_projection(
    doc: &InspectionDoc,
    standard: Option<&Standard>,
) -> Result<InspectionProjection> {
    let (inspection, rows) = compute(doc, standard, None, Touched::Everything)?;
    Ok(InspectionProjection {
        inspection,
        inspectors: rows.inspectors.into_iter().collect(),
        answers: rows
            .answers
            .into_iter()
            .map(|(item_code, r)| ItemAnswerRow {
                item_code,
                value_kind: r.value_kind,
                value_json: r.value_json,
                note: r.note,
                answered_by: r.answered_by,
                answered_at: r.answered_at,
                deduction: r.deduction,
                bonus: r.bonus,
                in_conflict: r.in_conflict,
            })
            .collect(),
        evidence: rows
            .evidence
            .into_iter()
            .map(|((item_code, sha256), r)| EvidenceRefRow {
                item_code,
                sha256,
                media: r.media,
                added_by: r.added_by,
                added_at: r.added_at,
            })
            .collect(),
        sections: rows
            .sections
            .into_iter()
            .map(|(section_code, (max_points, subtotal))| SectionScoreRow {
                section_code,
                max_points,
                subtotal,
            })
            .collect(),
    })
}

/// The rows `doc` projects to now (re-reading only what `touched` names when `previous` is
/// known), without writing them.
fn compute(
    doc: &InspectionDoc,
    standard: Option<&Standard>,
    previous: Option<&Projected>,
    touched: Touched<'_>,
) -> Result<(InspectionRow, Projected)> {
    let i = doc.read_header()?;
    let (answers, conflicted, evidence) = match (previous, touched) {
        (Some(p), Touched::Answer(code)) => {
            let (mut answers, mut conflicted) =
                (p.source_answers.clone(), p.source_conflicted.clone());
            let (current, conflict) = doc.answer_state(code);
            match current {
                Some(a) => answers.insert(code.to_string(), a),
                None => answers.remove(code),
            };
            match conflict {
                Some(_) => conflicted.insert(code.to_string()),
                None => conflicted.remove(code),
            };
            (answers, conflicted, p.source_evidence.clone())
        }
        (Some(p), Touched::Evidence) => (
            p.source_answers.clone(),
            p.source_conflicted.clone(),
            doc.evidence(),
        ),
        (Some(p), Touched::Header) => (
            p.source_answers.clone(),
            p.source_conflicted.clone(),
            p.source_evidence.clone(),
        ),
        _ => (
            doc.answers()
                .into_iter()
                .map(|a| (a.answer.item_code.clone(), a))
                .collect(),
            doc.conflicts().into_iter().map(|c| c.item_code).collect(),
            doc.evidence(),
        ),
    };
    let item_answers: Vec<_> = answers.values().map(|a| a.answer.clone()).collect();
    let card = standard.map(|s| scoring::score(s, &item_answers));
    let row = InspectionRow {
        id: i.id.clone(),
        community_id: i.community_id.clone(),
        standard_id: i.standard_id.clone(),
        standard_version: i.standard_version.clone(),
        kind: i.kind.as_str(),
        status: i.status.as_str(),
        created_by: i.created_by.clone(),
        started_at: i.started_at_ms,
        ended_at: i.ended_at_ms,
        total: card.as_ref().map(|c| c.total),
        max_points: card.as_ref().map(|c| c.max_points),
        grade: card.as_ref().map(|c| c.grade.clone()),
        vetoed: card.as_ref().is_some_and(|c| c.vetoed),
        conflict_count: conflicted.len() as i64,
    };

    let mut now_rows = Projected {
        inspectors: i.inspectors.iter().cloned().collect(),
        ..Default::default()
    };
    for a in answers.values() {
        let item_score = card
            .as_ref()
            .and_then(|c| c.items.iter().find(|s| s.code == a.answer.item_code));
        now_rows.answers.insert(
            a.answer.item_code.clone(),
            AnswerRow {
                value_kind: a.answer.value.kind_name(),
                value_json: serde_json::to_string(&a.answer.value).unwrap_or_default(),
                note: a.answer.note.clone(),
                answered_by: a.by.clone(),
                answered_at: a.at_ms,
                deduction: item_score.map(|s| s.deduction),
                bonus: item_score.map(|s| s.bonus),
                in_conflict: conflicted.contains(&a.answer.item_code),
            },
        );
    }
    for e in &evidence {
        now_rows.evidence.insert(
            (e.item_code.clone(), e.sha256.clone()),
            EvidenceRow {
                media: e.media.as_str(),
                added_by: e.added_by.clone(),
                added_at: e.at_ms,
            },
        );
    }
    if let Some(card) = &card {
        for s in &card.sections {
            now_rows
                .sections
                .insert(s.code.clone(), (s.max_points, s.subtotal));
        }
    }
    now_rows.source_answers = answers;
    now_rows.source_conflicted = conflicted;
    now_rows.source_evidence = evidence;
    Ok((row, now_rows))
}

/// Brings the projection rows of one inspection up to date. `previous` is what was last
/// written for it, if known; without it every child row is rewritten.
pub(super) fn write(
    conn: &Connection,
    doc: &InspectionDoc,
    standard: Option<&Standard>,
    now: i64,
    previous: Option<&Projected>,
    touched: Touched<'_>,
) -> Result<Projected> {
    let (i, now_rows) = compute(doc, standard, previous, touched)?;
    conn.prepare_cached(
        "INSERT INTO inspections (id, community_id, standard_id, standard_version, kind, status, created_by,
             started_at, ended_at, updated_at, total, max_points, grade, vetoed, conflict_count)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
         ON CONFLICT(id) DO UPDATE SET community_id = excluded.community_id,
             standard_id = excluded.standard_id, standard_version = excluded.standard_version,
             kind = excluded.kind, status = excluded.status, created_by = excluded.created_by,
             started_at = excluded.started_at, ended_at = excluded.ended_at, updated_at = excluded.updated_at,
             total = excluded.total, max_points = excluded.max_points, grade = excluded.grade,
             vetoed = excluded.vetoed, conflict_count = excluded.conflict_count",
    )?
    .execute(params![
        i.id,
        i.community_id,
        i.standard_id,
        i.standard_version,
        i.kind,
        i.status,
        i.created_by,
        i.started_at,
        i.ended_at,
        now,
        i.total,
        i.max_points,
        i.grade,
        i.vetoed,
        i.conflict_count,
    ])?;

    let empty = Projected::default();
    let before = match previous {
        Some(p) => p,
        None => {
            for table in [
                "inspection_inspectors",
                "item_answers",
                "evidence_refs",
                "section_scores",
            ] {
                conn.prepare_cached(&format!("DELETE FROM {table} WHERE inspection_id = ?1"))?
                    .execute([&i.id])?;
            }
            &empty
        }
    };

    for user in before.inspectors.difference(&now_rows.inspectors) {
        conn.prepare_cached(
            "DELETE FROM inspection_inspectors WHERE inspection_id = ?1 AND user_id = ?2",
        )?
        .execute(params![i.id, user])?;
    }
    for user in now_rows.inspectors.difference(&before.inspectors) {
        conn.prepare_cached(
            "INSERT OR IGNORE INTO inspection_inspectors (inspection_id, user_id) VALUES (?1, ?2)",
        )?
        .execute(params![i.id, user])?;
    }

    for item in before
        .answers
        .keys()
        .filter(|k| !now_rows.answers.contains_key(*k))
    {
        conn.prepare_cached(
            "DELETE FROM item_answers WHERE inspection_id = ?1 AND item_code = ?2",
        )?
        .execute(params![i.id, item])?;
    }
    for (item, row) in now_rows
        .answers
        .iter()
        .filter(|(k, r)| before.answers.get(*k) != Some(*r))
    {
        conn.prepare_cached(
            "INSERT OR REPLACE INTO item_answers (inspection_id, item_code, value_kind, value_json, note,
                 answered_by, answered_at, deduction, bonus, in_conflict)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?
        .execute(params![
            i.id,
            item,
            row.value_kind,
            row.value_json,
            row.note,
            row.answered_by,
            row.answered_at,
            row.deduction,
            row.bonus,
            row.in_conflict
        ])?;
    }

    for (item, sha) in before
        .evidence
        .keys()
        .filter(|k| !now_rows.evidence.contains_key(*k))
    {
        conn.prepare_cached(
            "DELETE FROM evidence_refs WHERE inspection_id = ?1 AND item_code = ?2 AND sha256 = ?3",
        )?
        .execute(params![i.id, item, sha])?;
    }
    for ((item, sha), row) in now_rows
        .evidence
        .iter()
        .filter(|(k, r)| before.evidence.get(*k) != Some(*r))
    {
        conn.prepare_cached(
            "INSERT OR REPLACE INTO evidence_refs (inspection_id, item_code, sha256, media, added_by, added_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![i.id, item, sha, row.media, row.added_by, row.added_at])?;
    }

    for code in before
        .sections
        .keys()
        .filter(|k| !now_rows.sections.contains_key(*k))
    {
        conn.prepare_cached(
            "DELETE FROM section_scores WHERE inspection_id = ?1 AND section_code = ?2",
        )?
        .execute(params![i.id, code])?;
    }
    for (code, (max, subtotal)) in now_rows
        .sections
        .iter()
        .filter(|(k, r)| before.sections.get(*k) != Some(*r))
    {
        conn.prepare_cached(
            "INSERT OR REPLACE INTO section_scores (inspection_id, section_code, max_points, subtotal)
             VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![i.id, code, max, subtotal])?;
    }
    Ok(now_rows)
}
