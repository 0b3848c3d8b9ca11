//! The supervisor routes: review from the server, the rectification board, bulletins and
//! planning (docs/review.md, docs/rectification.md, docs/bulletins.md, docs/planning.md).
//! Every handler takes its caller as a [`Reviewer`] and runs storage work on the blocking pool.

use super::{Path, Query, Reviewer, Shared, blocking, parse_json};
use crate::domain::calendar::period_at;
use crate::domain::split_list;
use crate::error::{ServerError, ServerResult};
use crate::model::{DeviceAuth, TaskFilter};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReviewBody {
    decision: String,
    #[serde(default)]
    comment: Option<String>,
}

pub(super) async fn review(
    State(storage): State<Shared>,
    Reviewer(auth): Reviewer,
    Path(id): Path<String>,
    body: Bytes,
) -> ServerResult<Response> {
    let body: ReviewBody = parse_json(&body)?;
    let approve = match body.decision.as_str() {
        "approve" => true,
        "return" => false,
        other => {
            return Err(ServerError::BadRequest(format!(
                "decision must be approve or return, not {other:?}"
            )));
        }
    };
    let id2 = id.clone();
    let status =
        blocking(move || storage.review_inspection(&auth, &id2, approve, body.comment.as_deref()))
            .await?;
    Ok(axum::Json(serde_json::json!({"id": id, "status": status})).into_response())
}

pub(super) async fn list_tasks(
    State(storage): State<Shared>,
    Reviewer(auth): Reviewer,
    Query(filter): Query<TaskFilter>,
) -> ServerResult<Response> {
    let tasks = blocking(move || storage.list_tasks(&auth, &filter)).await?;
    Ok(axum::Json(serde_json::json!({ "tasks": tasks })).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CommentBody {
    #[serde(default)]
    comment: Option<String>,
}

async fn decide(
    storage: Shared,
    auth: DeviceAuth,
    id: String,
    body: Bytes,
    approve: bool,
) -> ServerResult<Response> {
    let body: CommentBody = if body.is_empty() {
        CommentBody::default()
    } else {
        parse_json(&body)?
    };
    let row =
        blocking(move || storage.decide_task(&auth, &id, approve, body.comment.as_deref())).await?;
    Ok(axum::Json(row).into_response())
}

pub(super) async fn approve_task(
    State(storage): State<Shared>,
    Reviewer(auth): Reviewer,
    Path(id): Path<String>,
    body: Bytes,
) -> ServerResult<Response> {
    decide(storage, auth, id, body, true).await
}

pub(super) async fn reopen_task(
    State(storage): State<Shared>,
    Reviewer(auth): Reviewer,
    Path(id): Path<String>,
    body: Bytes,
) -> ServerResult<Response> {
    decide(storage, auth, id, body, false).await
}

#[derive(Debug, Deserialize)]
pub(super) struct ReportQuery {
    at: Option<String>,
    by: Option<String>,
    base: Option<String>,
}

/// `/v1/reports/{weekly|monthly}.{xlsx|csv|html}` (docs/bulletins.md).
pub(super) async fn report(
    State(storage): State<Shared>,
    Reviewer(auth): Reviewer,
    Path(name): Path<String>,
    Query(q): Query<ReportQuery>,
) -> ServerResult<Response> {
    let (kind, format) = name
        .split_once('.')
        .ok_or_else(|| ServerError::NotFound(format!("no report {name}")))?;
    let kind = crate::reports::ReportKind::parse(kind)?;
    let format = crate::reports::Format::parse(format)?;
    let by = q.by.unwrap_or_else(|| kind.default_by().into());
    // Checked whatever the format: a bad value is refused, never carried into a page.
    let base = crate::reports::BaseUrl::parse(q.base.as_deref().unwrap_or_default())?;
    let (_, from, to) = period_at(kind.period(), q.at.as_deref())?;
    let file_name = crate::reports::file_name(kind, from, format);
    let bytes = blocking(move || {
        let report = crate::reports::build(storage.as_ref(), &auth, kind, &by, from, to)?;
        crate::reports::render(storage.as_ref(), &report, format, &base)
    })
    .await?;
    Ok((
        [
            (header::CONTENT_TYPE, format.mime().to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"{file_name}\""),
            ),
        ],
        bytes,
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
pub(super) struct PlanningQuery {
    period: Option<String>,
    at: Option<String>,
    days: Option<u32>,
    seed: Option<u64>,
    per_day: Option<u32>,
    inspectors: Option<String>,
}

pub(super) async fn uninspected(
    State(storage): State<Shared>,
    Reviewer(auth): Reviewer,
    Query(q): Query<PlanningQuery>,
) -> ServerResult<Response> {
    let period = q.period.unwrap_or_else(|| "month".into());
    let (_, from, to) = period_at(&period, q.at.as_deref())?;
    let body = blocking(move || {
        let list = crate::planning::uninspected(storage.as_ref(), &auth, from, to)?;
        Ok(serde_json::json!({"period": period, "from_ms": from, "to_ms": to, "communities": list}))
    })
    .await?;
    Ok(axum::Json(body).into_response())
}

pub(super) async fn visits(
    State(storage): State<Shared>,
    Reviewer(auth): Reviewer,
    Query(q): Query<PlanningQuery>,
) -> ServerResult<Response> {
    let period = q.period.unwrap_or_else(|| "month".into());
    let (at, from, to) = period_at(&period, q.at.as_deref())?;
    let inspectors = q.inspectors.as_deref().map(split_list).unwrap_or_default();
    let request = crate::planning::PlanRequest {
        from_ms: from,
        to_ms: to,
        start_ms: at,
        days: q.days.unwrap_or(7),
        per_day: q.per_day.unwrap_or(3),
        seed: q.seed.unwrap_or(at as u64),
        inspectors,
    };
    let plan =
        blocking(move || crate::planning::plan_visits(storage.as_ref(), &auth, &request)).await?;
    Ok(axum::Json(plan).into_response())
}
