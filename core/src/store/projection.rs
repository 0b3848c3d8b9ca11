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
        i.kind.as_str(),
        i.status.as_str(),
        i.created_by,
        i.started_at_ms,
        i.ended_at_ms,
        now,
        card.as_ref().map(|c| c.total),
        card.as_ref().map(|c| c.max_points),
        card.as_ref().map(|c| c.grade.clone()),
        card.as_ref().is_some_and(|c| c.vetoed),
        conflicted.len() as i64,
    ])?;

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
    now_rows.source_answers = answers;
    now_rows.source_conflicted = conflicted;
    now_rows.source_evidence = evidence;
    Ok(now_rows)
}
