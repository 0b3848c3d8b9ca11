//! The supervisor routes of issue #6 (CONTRACTS.md): review from the server, the
//! rectification board, bulletins and planning. Every handler authenticates through
//! `api::authenticate` and runs storage work on the blocking pool.

use crate::api::{Path, Query};
use crate::api::{Shared, authenticate, blocking, parse_json, period_at, split_list};
use crate::error::{ServerError, ServerResult};
use crate::supervision::{TaskFilter, require_reviewer};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/v1/inspections/{id}/review", post(review))
        .route("/v1/rectifications", get(list_tasks))
        .route("/v1/rectifications/{id}/approve", post(approve_task))
        .route("/v1/rectifications/{id}/reopen", post(reopen_task))
        .route("/v1/reports/{name}", get(report))
        .route("/v1/planning/uninspected", get(uninspected))
        .route("/v1/planning/visits", get(visits))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReviewBody {
    decision: String,
    #[serde(default)]
    comment: Option<String>,
}

async fn review(
    State(storage): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> ServerResult<Response> {
    let auth = authenticate(&storage, &headers).await?;
    require_reviewer(&auth)?;
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

#[derive(Debug, Deserialize)]
struct TaskQuery {
    status: Option<String>,
    community: Option<String>,
    overdue: Option<bool>,
    limit: Option<u32>,
}

async fn list_tasks(
    State(storage): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<TaskQuery>,
) -> ServerResult<Response> {
    let auth = authenticate(&storage, &headers).await?;
    require_reviewer(&auth)?;
    let filter = TaskFilter {
        status: q.status,
        community: q.community,
        overdue: q.overdue,
        limit: q.limit,
    };
    let tasks = blocking(move || storage.list_tasks(&auth, &filter)).await?;
    Ok(axum::Json(serde_json::json!({ "tasks": tasks })).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommentBody {
    #[serde(default)]
    comment: Option<String>,
}

async fn decide(
    storage: Shared,
    headers: HeaderMap,
    id: String,
    body: Bytes,
    approve: bool,
) -> ServerResult<Response> {
    let auth = authenticate(&storage, &headers).await?;
    require_reviewer(&auth)?;
    let body: CommentBody = if body.is_empty() {
        CommentBody::default()
    } else {
        parse_json(&body)?
    };
    let row =
        blocking(move || storage.decide_task(&auth, &id, approve, body.comment.as_deref())).await?;
    Ok(axum::Json(row).into_response())
}

async fn approve_task(
    State(storage): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> ServerResult<Response> {
    decide(storage, headers, id, body, true).await
}

async fn reopen_task(
    State(storage): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> ServerResult<Response> {
    decide(storage, headers, id, body, false).await
}

#[derive(Debug, Deserialize)]
struct ReportQuery {
    at: Option<String>,
    by: Option<String>,
    base: Option<String>,
}

/// `/v1/reports/{weekly|monthly}.{xlsx|csv|html}` (docs/bulletins.md).
async fn report(
    State(storage): State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(q): Query<ReportQuery>,
) -> ServerResult<Response> {
    let auth = authenticate(&storage, &headers).await?;
    require_reviewer(&auth)?;
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
struct PlanningQuery {
    period: Option<String>,
    at: Option<String>,
    days: Option<u32>,
    seed: Option<u64>,
    per_day: Option<u32>,
    inspectors: Option<String>,
}

async fn uninspected(
    State(storage): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<PlanningQuery>,
) -> ServerResult<Response> {
    let auth = authenticate(&storage, &headers).await?;
    require_reviewer(&auth)?;
    let period = q.period.unwrap_or_else(|| "month".into());
    let (_, from, to) = period_at(&period, q.at.as_deref())?;
    let body = blocking(move || {
        let list = crate::planning::uninspected(storage.as_ref(), &auth, from, to)?;
        Ok(serde_json::json!({"period": period, "from_ms": from, "to_ms": to, "communities": list}))
    })
    .await?;
    Ok(axum::Json(body).into_response())
}

async fn visits(
    State(storage): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<PlanningQuery>,
) -> ServerResult<Response> {
    let auth = authenticate(&storage, &headers).await?;
    require_reviewer(&auth)?;
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
