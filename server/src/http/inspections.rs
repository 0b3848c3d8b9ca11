//! The supervisor's reads of inspections: the list, one inspection with everything the
//! dashboard shows, a community's score history, rankings.

use super::{Path, Query, Reviewer, Shared, blocking};
use crate::domain::access::can_read;
use crate::domain::calendar::{parse_time, period_at};
use crate::error::{ServerError, ServerResult};
use crate::model::{ListFilter, ScopeKind, now};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub(super) struct ListQuery {
    community: Option<String>,
    street: Option<String>,
    district: Option<String>,
    inspector: Option<String>,
    status: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<u32>,
}

pub(super) async fn list_inspections(
    State(storage): State<Shared>,
    Reviewer(auth): Reviewer,
    Query(q): Query<ListQuery>,
) -> ServerResult<Response> {
    let filter = ListFilter {
        community: q.community,
        street: q.street,
        district: q.district,
        inspector: q.inspector,
        status: q.status,
        from_ms: q.from.as_deref().map(parse_time).transpose()?,
        to_ms: q.to.as_deref().map(parse_time).transpose()?,
        limit: q.limit,
    };
    let rows = blocking(move || storage.list_inspections(&auth, &filter)).await?;
    Ok(axum::Json(rows).into_response())
}

pub(super) async fn inspection(
    State(storage): State<Shared>,
    Reviewer(auth): Reviewer,
    Path(id): Path<String>,
) -> ServerResult<Response> {
    let body = blocking(move || {
        let Some(mut doc) = storage.load_document(&id)? else {
            return Err(ServerError::NotFound(format!("no inspection {id}")));
        };
        let inspection = doc.read()?;
        let community = storage.community(&inspection.community_id)?;
        if !can_read(&auth, &inspection, community.as_ref()) {
            return Err(ServerError::Forbidden(
                "inspection outside your scope".into(),
            ));
        }
        let history = doc.history();
        let score = storage.score_of(&inspection)?;
        // For the dashboard: every photo/voice note with its item, and the items' titles.
        let evidence: Vec<_> = inspection
            .evidence
            .iter()
            .map(|e| {
                serde_json::json!({
                    "sha256": e.sha256, "kind": e.media, "item_code": e.item_code,
                    "added_by": e.added_by, "at_ms": e.at_ms,
                    // The renditions this document declares: fetch them with `blob=`.
                    "thumb": e.thumb, "upload": e.upload,
                })
            })
            .collect();
        let items =
            storage.standard_items(&inspection.standard_id, &inspection.standard_version)?;
        // Evidence flags computed here from what the server holds (docs/media.md).
        let checks = crate::evidence_checks::inspection_checks(
            &*storage,
            &auth,
            &inspection,
            community.as_ref(),
            now(),
        )?;
        Ok(serde_json::json!({
            "inspection": inspection,
            "community": community,
            "score": score,
            "history": history,
            "conflicts": inspection.conflicts,
            "evidence": evidence,
            "items": items,
            "checks": checks,
        }))
    })
    .await?;
    Ok(axum::Json(body).into_response())
}

pub(super) async fn score_history(
    State(storage): State<Shared>,
    Reviewer(auth): Reviewer,
    Path(id): Path<String>,
) -> ServerResult<Response> {
    let rows = blocking(move || {
        if storage.community(&id)?.is_none() {
            return Err(ServerError::NotFound(format!("no community {id}")));
        }
        storage.score_history(&auth, &id)
    })
    .await?;
    Ok(axum::Json(rows).into_response())
}

#[derive(Debug, Deserialize)]
pub(super) struct RankingQuery {
    by: Option<String>,
    period: Option<String>,
    /// A day inside the period (YYYY-MM-DD, UTC+8) or ms; default now.
    at: Option<String>,
}

pub(super) async fn rankings(
    State(storage): State<Shared>,
    Reviewer(auth): Reviewer,
    Query(q): Query<RankingQuery>,
) -> ServerResult<Response> {
    let by = match q.by.as_deref().unwrap_or("community") {
        "community" => ScopeKind::Community,
        "street" => ScopeKind::Street,
        "district" => ScopeKind::District,
        other => {
            return Err(ServerError::BadRequest(format!(
                "by must be community, street or district, not {other:?}"
            )));
        }
    };
    let period = q.period.unwrap_or_else(|| "week".into());
    let (_, from, to) = period_at(&period, q.at.as_deref())?;
    let rows = blocking(move || storage.rankings(&auth, by, from, to)).await?;
    Ok(axum::Json(serde_json::json!({
        "by": q.by.unwrap_or_else(|| "community".into()),
        "period": period,
        "from_ms": from,
        "to_ms": to,
        "rows": rows,
    }))
    .into_response())
}
