//! The dashboard's session routes and guards: sign-in, the current session, sign-out, the
//! session cookie as a principal, and the CSRF guard on every state-changing request
//! (docs/dashboard.md). The rules (passwords, lockout, session lifetime) are in `session.rs`.

use super::{Shared, blocking};
use crate::domain::secrets::{hash_secret, new_secret};
use crate::domain::signin::*;
use crate::error::{ServerError, ServerResult};
use crate::model::WebSession;
use crate::model::{DeviceAuth, Role, now};
use crate::serving::{Peer, client_key};
use axum::body::{Body, Bytes};
use axum::extract::{Extension, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::sync::LazyLock;

/// The session cookie's value, if the request carries one.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn has_bearer(headers: &HeaderMap) -> bool {
    headers.contains_key(header::AUTHORIZATION)
}

/// The session a cookie names, if it is live.
pub async fn session_of(storage: &Shared, headers: &HeaderMap) -> ServerResult<Option<WebSession>> {
    let Some(cookie) = session_cookie(headers) else {
        return Ok(None);
    };
    let storage = storage.clone();
    blocking(move || storage.session_by_token(&hash_secret(&cookie), now())).await
}

/// [`super::authenticate`]'s cookie half: a web session as a principal (`device_id` "web:<id>").
pub async fn authenticate_session(
    storage: &Shared,
    headers: &HeaderMap,
) -> ServerResult<DeviceAuth> {
    let session = session_of(storage, headers)
        .await?
        .ok_or_else(|| ServerError::Unauthorized("not signed in or session expired".into()))?;
    let storage = storage.clone();
    let user = session.user.clone();
    let scope = blocking(move || storage.scope(&user)).await?;
    Ok(DeviceAuth {
        device_id: format!("web:{}", session.id),
        user: session.user,
        scope,
    })
}

/// Middleware on every route: a state-changing request authenticated by the session cookie (no
/// bearer token) must carry the session's CSRF token and, if the browser names an Origin, come
/// from this server's own origin. Sign-in is exempt (it has no session yet) but must be JSON.
pub async fn csrf_guard(State(storage): State<Shared>, request: Request, next: Next) -> Response {
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let headers = request.headers();
    if safe || has_bearer(headers) {
        return next.run(request).await;
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let origin_host = origin.split_once("://").map(|(_, h)| h).unwrap_or(origin);
        if origin != "null" && origin_host != host {
            return ServerError::Forbidden("cross-origin request refused".into()).into_response();
        }
    }
    let sign_in = request.method() == Method::POST && request.uri().path() == "/v1/session";
    if sign_in {
        let json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !json {
            return ServerError::BadRequest("sign-in takes a JSON body".into()).into_response();
        }
        return next.run(request).await;
    }
    if session_cookie(headers).is_some() {
        let given = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        match session_of(&storage, headers).await {
            Err(e) => return e.into_response(),
            // No live session: the handler's own authentication answers 401.
            Ok(None) => {}
            Ok(Some(session)) => {
                let ok = given.is_some_and(|g| constant_time_eq(&g, &session.csrf_token));
                if !ok {
                    return ServerError::Forbidden("missing or wrong X-CSRF-Token".into())
                        .into_response();
                }
            }
        }
    }
    next.run(request).await
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Password checks that may run at once.
static SIGN_IN_SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// Checked against when the user is unknown, so an unknown name costs what a known one does.
static DUMMY_PHC: LazyLock<String> =
    LazyLock::new(|| hash_password("no-such-user-password").unwrap_or_default());

#[derive(Deserialize)]
pub(super) struct SignIn {
    user: String,
    password: String,
}

#[derive(Serialize)]
struct SessionBody {
    user_id: String,
    name: String,
    role: Role,
    csrf_token: String,
    expires_ms: i64,
}

impl From<&WebSession> for SessionBody {
    fn from(s: &WebSession) -> Self {
        SessionBody {
            user_id: s.user.id.clone(),
            name: s.user.name.clone(),
            role: s.user.role,
            csrf_token: s.csrf_token.clone(),
            expires_ms: s.expires_ms,
        }
    }
}

/// The session cookie. `Secure` unless the operator serves plain HTTP for development
/// (`serve --insecure-cookies`): browsers treat `http://127.0.0.1` and `localhost` as secure
/// contexts and keep Secure cookies there too.
fn cookie_header(value: &str, max_age_s: i64, peer: Option<&Peer>) -> HeaderValue {
    let secure = peer.is_none_or(Peer::secure_cookies);
    let text = format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{}",
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Refused sign-ins all say the same, whatever was wrong: unknown user, wrong password, a user
/// without a password, an inspector (no user enumeration).
fn wrong_credentials() -> ServerError {
    ServerError::Unauthorized("用户名或密码错误 (wrong user or password)".into())
}

/// A blocked client: the same answer whether or not the account exists.
fn blocked(until_ms: i64, now_ms: i64) -> ServerError {
    let minutes = (until_ms - now_ms + 59_999) / 60_000;
    ServerError::TooManyRequests(format!(
        "登录失败次数过多，已暂时锁定，请 {minutes} 分钟后再试 \
         (too many failed sign-ins from this address; try again later)"
    ))
}

/// The name failures are counted under: as typed, trimmed, at most `MAX_NAME_CHARS`.
fn sign_in_name(typed: &str) -> String {
    typed.trim().chars().take(MAX_NAME_CHARS).collect()
}

/// The client failed sign-ins are counted for (`serving::client_key`); requests that did not
/// come through `serve` (in-process tests) share one.
pub fn sign_in_client(peer: Option<&Peer>, headers: &HeaderMap) -> String {
    peer.map(|p| client_key(p.client_ip(headers)))
        .unwrap_or_else(|| "local".into())
}

/// `POST /v1/session` `{"user","password"}` → the session (and its cookie).
pub async fn sign_in(
    State(storage): State<Shared>,
    peer: Option<Extension<Peer>>,
    headers: HeaderMap,
    body: Bytes,
) -> ServerResult<Response> {
    let peer = peer.map(|Extension(p)| p);
    let req: SignIn = serde_json::from_slice(&body)
        .map_err(|e| ServerError::BadRequest(format!("malformed body: {e}")))?;
    let name = sign_in_name(&req.user);
    let client = sign_in_client(peer.as_ref(), &headers);
    // The dummy hash exists before the first check, so the first unknown name costs no more
    // than a known one.
    LazyLock::force(&DUMMY_PHC);
    // A blocked client is answered at once, before the queue of password checks, so it cannot
    // hold the queue.
    {
        let (storage, name, client) = (storage.clone(), name.clone(), client.clone());
        let now = now();
        let until = blocking(move || storage.sign_in_blocked_until(&name, &client, now)).await?;
        if until > now {
            return Err(blocked(until, now));
        }
    }
    // Each check costs ~40 ms of CPU and 19 MiB: a flood of sign-ins queues here instead of
    // taking every core and the blocking pool from sync and the API.
    let _slot = SIGN_IN_SLOTS
        .acquire()
        .await
        .map_err(|_| ServerError::Internal("sign-in closed".into()))?;
    let token = new_secret();
    let token_hash = hash_secret(&token);
    let csrf = new_secret();
    let outcome = blocking(move || {
        let now = now();
        // Again, now that this request's turn came: requests that queued together count too.
        let until = storage.sign_in_blocked_until(&name, &client, now)?;
        if until > now {
            return Err(blocked(until, now));
        }
        let record = storage.password_record(&name)?;
        // One Argon2 check whatever the account: an unknown name checks the dummy hash.
        let good = match &record {
            Some(r) => verify_password(&req.password, &r.phc),
            None => {
                verify_password(&req.password, &DUMMY_PHC);
                false
            }
        };
        match record {
            Some(r) if good && r.user.role != Role::Inspector => {
                storage.create_session(&r.user.id, &client, &token_hash, &csrf, now)
            }
            _ => {
                storage.record_failed_sign_in(&name, &client, now)?;
                Err(wrong_credentials())
            }
        }
    })
    .await?;
    let mut response = axum::Json(SessionBody::from(&outcome)).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        cookie_header(&token, SESSION_TTL_MS / 1000, peer.as_ref()),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `GET /v1/session` → the current session (with its CSRF token), or 401.
pub async fn current(State(storage): State<Shared>, headers: HeaderMap) -> ServerResult<Response> {
    let session = session_of(&storage, &headers)
        .await?
        .ok_or_else(|| ServerError::Unauthorized("not signed in or session expired".into()))?;
    let mut response = axum::Json(SessionBody::from(&session)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `DELETE /v1/session`: ends the session server-side and clears the cookie.
pub async fn sign_out(
    State(storage): State<Shared>,
    peer: Option<Extension<Peer>>,
    headers: HeaderMap,
) -> ServerResult<Response> {
    let peer = peer.map(|Extension(p)| p);
    if let Some(cookie) = session_cookie(&headers) {
        let storage = storage.clone();
        blocking(move || storage.delete_session(&hash_secret(&cookie))).await?;
    }
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cookie_header("", 0, peer.as_ref()));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; fenlei_session=abc; b=2"),
        );
        assert_eq!(session_cookie(&h).as_deref(), Some("abc"));
        h.insert(header::COOKIE, HeaderValue::from_static("fenlei_session="));
        assert_eq!(session_cookie(&h), None);
    }
}
