//! The supervisors' web dashboard (docs/dashboard.md): static pages embedded in the binary, the
//! `/v1/session` sign-in routes (server/src/session.rs) and the community overview the plot reads.
//! Nothing is fetched from outside the machine: no CDN, fonts or map tiles.

use super::{Reviewer, Shared, blocking};
use crate::error::ServerResult;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

const INDEX_HTML: &str = include_str!("../../dashboard/index.html");
const APP_JS: &str = include_str!("../../dashboard/app.js");
const APP_CSS: &str = include_str!("../../dashboard/app.css");
const FAVICON_SVG: &str = include_str!("../../dashboard/favicon.svg");

/// An embedded file. Its Content-Security-Policy (only this server's own scripts, styles and
/// images; no inline script or style; no framing) and the other security headers are set on
/// every response by the router (crate::output::security_headers).
pub(super) async fn index_html() -> Response {
    asset(INDEX_HTML, "text/html; charset=utf-8")
}

pub(super) async fn app_js() -> Response {
    asset(APP_JS, "text/javascript; charset=utf-8")
}

pub(super) async fn app_css() -> Response {
    asset(APP_CSS, "text/css; charset=utf-8")
}

pub(super) async fn favicon_svg() -> Response {
    asset(FAVICON_SVG, "image/svg+xml")
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Embedded in the binary: a new build may change them, so the browser revalidates.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// `GET /v1/communities` → `{"communities":[{id,name,district,street,lat,lon,latest}]}`: the
/// communities in the caller's scope with WGS-84 coordinates and their latest submitted or
/// approved score (`latest` null when never inspected).
pub(super) async fn communities(
    State(storage): State<Shared>,
    Reviewer(auth): Reviewer,
) -> ServerResult<Response> {
    let rows = blocking(move || storage.communities_overview(&auth)).await?;
    Ok(axum::Json(serde_json::json!({ "communities": rows })).into_response())
}
