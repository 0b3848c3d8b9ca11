//! The HTTP layer: one router table ([`router`]), the extractors every handler shares (the
//! caller as [`Auth`] or [`Reviewer`], typed 400s for bad paths and queries), and thin handlers
//! per resource that parse a request, call the rules and storage, and render the answer. Storage
//! work runs on tokio's blocking pool; a panic in it becomes a 500 for that request, never a
//! dead server.

mod chain;
mod dashboard;
mod devices;
mod inspections;
mod media;
pub mod router;
pub mod session;
mod supervision;

pub use router::{router, router_with};

use crate::domain::access::require_reviewer;
use crate::domain::secrets::hash_secret;
use crate::error::{ServerError, ServerResult};
use crate::model::DeviceAuth;
use crate::store::Storage;
use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use std::sync::Arc;

pub type Shared = Arc<dyn Storage>;

/// The caller of a `/v1/` route: a device by its bearer token, or a dashboard session by its
/// cookie ([`authenticate`]). A handler that takes it runs only for an authenticated caller.
pub struct Auth(pub DeviceAuth);

impl FromRequestParts<Shared> for Auth {
    type Rejection = ServerError;

    async fn from_request_parts(parts: &mut Parts, storage: &Shared) -> ServerResult<Self> {
        authenticate(storage, &parts.headers).await.map(Auth)
    }
}

/// A caller who may use the supervisor API: a supervisor or an admin
/// ([`require_reviewer`]); an inspector gets 403.
pub struct Reviewer(pub DeviceAuth);

impl FromRequestParts<Shared> for Reviewer {
    type Rejection = ServerError;

    async fn from_request_parts(parts: &mut Parts, storage: &Shared) -> ServerResult<Self> {
        let auth = authenticate(storage, &parts.headers).await?;
        require_reviewer(&auth)?;
        Ok(Reviewer(auth))
    }
}

/// `axum::extract::Query` whose refusal is the API's typed 400 (`{"error":"bad_request",...}`)
/// rather than axum's plain text: a number too large for its field, a negative count, a word
/// where a number belongs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ServerError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|axum::extract::Query(q)| Query(q))
            .map_err(|e| ServerError::BadRequest(e.body_text()))
    }
}

/// `axum::extract::Path` with the API's typed 400, like [`Query`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

impl<T: serde::de::DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ServerError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(p)| Path(p))
            .map_err(|e| ServerError::BadRequest(e.body_text()))
    }
}

pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> ServerResult<T> + Send + 'static,
) -> ServerResult<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ServerError::Internal(format!("request failed: {e}")))?
}

/// The one entry point of every `/v1/` handler: a device's bearer token, or else a dashboard
/// session cookie (principal `device_id` "web:<session id>"; CSRF is checked by
/// `session::csrf_guard` before any handler runs).
pub async fn authenticate(storage: &Shared, headers: &HeaderMap) -> ServerResult<DeviceAuth> {
    if !headers.contains_key("authorization") && session::session_cookie(headers).is_some() {
        return session::authenticate_session(storage, headers).await;
    }
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ServerError::Unauthorized("missing bearer token".into()))?
        .to_string();
    let storage = storage.clone();
    blocking(move || {
        let auth = storage
            .device_by_token(&hash_secret(&token))?
            .ok_or_else(|| ServerError::Unauthorized("unknown or revoked device token".into()))?;
        // A device enrolled under an id that is now refused (by a server before the rule)
        // may not act: its changes would carry a server actor.
        if let Some(why) =
            crate::actors::device_id_refusal(&auth.device_id, &storage.opening_actor())
        {
            return Err(ServerError::Forbidden(format!(
                "{why}: enroll the device again"
            )));
        }
        Ok(auth)
    })
    .await
}

pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> ServerResult<T> {
    serde_json::from_slice(body)
        .map_err(|e| ServerError::BadRequest(format!("malformed body: {e}")))
}
