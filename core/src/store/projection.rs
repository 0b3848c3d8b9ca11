//! The relational projection of an inspection document: what queries read. Always derived
//! from the document (and the standard for scores), never edited on its own.

use crate::Result;
use crate::inspection::InspectionDoc;
use crate::scoring;
use crate::standard::Standard;
use rusqlite::{Connection, params};

/// Rewrites the projection rows of one inspection.
pub(super) fn write(
    conn: &Connection,
    doc: &InspectionDoc,
    standard: Option<&Standard>,
    now: i64,
) -> Result<()> {
    let i = doc.read()?;
    let answers = i.item_answers();
    let card = standard.map(|s| scoring::score(s, &answers));
    let conflicted: std::collections::HashSet<&str> =
        i.conflicts.iter().map(|c| c.item_code.as_str()).collect();

    for table in [
        "inspection_inspectors",
        "item_answers",
        "evidence_refs",
        "section_scores",
    ] {
        conn.prepare_cached(&format!("DELETE FROM {table} WHERE inspection_id = ?1"))?
            .execute([&i.id])?;
    }
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
        i.conflicts.len() as i64,
    ])?;

    let mut insert_inspector = conn.prepare_cached(
        "INSERT OR IGNORE INTO inspection_inspectors (inspection_id, user_id) VALUES (?1, ?2)",
    )?;
    for user in &i.inspectors {
        insert_inspector.execute(params![i.id, user])?;
    }

    let mut insert_answer = conn.prepare_cached(
        "INSERT INTO item_answers (inspection_id, item_code, value_kind, value_json, note, answered_by,
             answered_at, deduction, bonus, in_conflict)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    for a in &i.answers {
        let item_score = card
            .as_ref()
            .and_then(|c| c.items.iter().find(|s| s.code == a.answer.item_code));
        insert_answer.execute(params![
            i.id,
            a.answer.item_code,
            a.answer.value.kind_name(),
            serde_json::to_string(&a.answer.value).unwrap_or_default(),
            a.answer.note,
            a.by,
            a.at_ms,
            item_score.map(|s| s.deduction),
            item_score.map(|s| s.bonus),
            conflicted.contains(a.answer.item_code.as_str()),
        ])?;
    }

    let mut insert_evidence = conn.prepare_cached(
        "INSERT OR IGNORE INTO evidence_refs (inspection_id, item_code, sha256, media, added_by, added_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for e in &i.evidence {
        insert_evidence.execute(params![
            i.id,
            e.item_code,
            e.sha256,
            e.media.as_str(),
            e.added_by,
            e.at_ms
        ])?;
    }

    if let Some(card) = &card {
        let mut insert_section = conn.prepare_cached(
            "INSERT INTO section_scores (inspection_id, section_code, max_points, subtotal) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for s in &card.sections {
            insert_section.execute(params![i.id, s.code, s.max_points, s.subtotal])?;
        }
    }
    Ok(())
}
