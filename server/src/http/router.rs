//! Every route of the server in one table, and the layers around them: the CSRF guard, the
//! body limit, and the security headers on every response.

use super::Shared;
use super::{chain, dashboard, devices, inspections, media, session, supervision};
use crate::model::MediaLimits;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Extension};
use axum::response::Redirect;
use axum::routing::{get, post, put};
use fenlei_core::protocol::MAX_REQUEST_BYTES;

pub fn router(storage: Shared) -> Router {
    router_with(storage, MediaLimits::default())
}

/// The routes with the media upload limits the server was started with.
pub fn router_with(storage: Shared, limits: MediaLimits) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        // A device's own routes (docs/sync-protocol.md).
        .route("/v1/enroll", post(devices::enroll))
        .route("/v1/sync", post(devices::sync))
        .route("/v1/me", get(devices::me))
        // Media (docs/media-sync.md).
        .route("/v1/media/status", post(media::status))
        .route(
            "/v1/media/{sha256}/{rendition}",
            put(media::upload).delete(media::cancel),
        )
        .route("/v1/media/{sha256}", get(media::download))
        // Tamper evidence (docs/tamper-evidence.md).
        .route(
            "/v1/receipts",
            get(chain::list_receipts).post(chain::post_receipt),
        )
        .route("/v1/chain/head", get(chain::head))
        .route("/v1/chain/entries/{index}", get(chain::entry))
        .route("/v1/chain/links", get(chain::links))
        // The supervisor's reads (docs/review.md, docs/dashboard.md).
        .route("/v1/inspections", get(inspections::list_inspections))
        .route("/v1/inspections/{id}", get(inspections::inspection))
        .route(
            "/v1/communities/{id}/scores",
            get(inspections::score_history),
        )
        .route("/v1/rankings", get(inspections::rankings))
        .route("/v1/communities", get(dashboard::communities))
        // Supervision: review, rectification, bulletins, planning.
        .route("/v1/inspections/{id}/review", post(supervision::review))
        .route("/v1/rectifications", get(supervision::list_tasks))
        .route(
            "/v1/rectifications/{id}/approve",
            post(supervision::approve_task),
        )
        .route(
            "/v1/rectifications/{id}/reopen",
            post(supervision::reopen_task),
        )
        .route("/v1/reports/{name}", get(supervision::report))
        .route("/v1/planning/uninspected", get(supervision::uninspected))
        .route("/v1/planning/visits", get(supervision::visits))
        // The dashboard: its files and its session (docs/dashboard.md).
        .route("/", get(|| async { Redirect::to("/dashboard/") }))
        .route("/dashboard", get(|| async { Redirect::to("/dashboard/") }))
        .route("/dashboard/", get(dashboard::index_html))
        .route("/dashboard/app.js", get(dashboard::app_js))
        .route("/dashboard/app.css", get(dashboard::app_css))
        .route("/dashboard/favicon.svg", get(dashboard::favicon_svg))
        .route(
            "/v1/session",
            get(session::current)
                .post(session::sign_in)
                .delete(session::sign_out),
        )
        .layer(Extension(limits))
        .layer(axum::middleware::from_fn_with_state(
            storage.clone(),
            session::csrf_guard,
        ))
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        // Outermost: the security headers are set on every response, whatever produced it (a
        // handler, an extractor's rejection, the CSRF guard, an unknown route).
        .layer(axum::middleware::map_response(
            crate::output::security_headers,
        ))
        .with_state(storage)
}
