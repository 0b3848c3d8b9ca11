//! Dashboard sign-in (docs/dashboard.md): supervisors and admins sign in at a desk with a password
//! and get a server-side session held by an HttpOnly, SameSite=Strict cookie.
//!
//! - Passwords are Argon2id hashes in PHC strings (`fenlei-server set-password`, never in argv).
//! - Sessions: a random 256-bit cookie of which only the SHA-256 is stored; 12 h absolute
//!   lifetime, 2 h idle timeout; signing out deletes the row; a new password or a user who is no
//!   longer a supervisor/admin ends every session.
//! - Sign-in limits that tell nothing about accounts: every refusal (unknown user, wrong
//!   password, no password, inspector) is the same 401 after the same Argon2 work (a dummy hash
//!   for unknown names). Failures are counted per name typed *and client* (IPv4 address or IPv6
//!   /64, through a trusted proxy's X-Forwarded-For only when the operator names the proxy):
//!   5 in a row lock that name for that client only, 20 across any names in 15 minutes lock the
//!   client; a lock lasts 15 minutes and is the same 429 whether or not the account exists, so
//!   one client can neither learn which accounts exist nor lock anyone out but itself. At most
//!   two password checks run at once, so a flood of sign-ins cannot starve sync.
//! - CSRF: the cookie is SameSite=Strict, and every state-changing request that a cookie
//!   authenticates must carry the session's token in `X-CSRF-Token` ([`csrf_guard`]); sign-in
//!   itself must be JSON (a cross-site form cannot send that without a preflight, which is never
//!   answered).

use crate::api::{Shared, hash_secret, new_secret};
use crate::error::{ServerError, ServerResult};
use crate::serving::{Peer, client_key};
use crate::storage::{DeviceAuth, Role, SqliteStorage, Storage, User, now};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use axum::body::{Body, Bytes};
use axum::extract::{Extension, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use std::sync::LazyLock;

pub const COOKIE: &str = "fenlei_session";
pub const CSRF_HEADER: &str = "x-csrf-token";
pub const SESSION_TTL_MS: i64 = 12 * 3_600_000;
pub const IDLE_TIMEOUT_MS: i64 = 2 * 3_600_000;
/// Failed sign-ins in a row of one name from one client that lock that name for that client.
pub const MAX_FAILURES: i64 = 5;
/// Failed sign-ins of one client across all names, within [`LOCKOUT_MS`], that lock the client.
pub const CLIENT_MAX_FAILURES: i64 = 20;
/// How long a lock lasts, and how long a failure counts.
pub const LOCKOUT_MS: i64 = 15 * 60_000;
/// Names are counted by their first this many characters (a failure row stays small).
pub const MAX_NAME_CHARS: usize = 128;
/// Passwords shorter than this are refused by `set-password`.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// `last_seen` is written at most this often, so reading pages does not write on every request.
pub(crate) const TOUCH_EVERY_MS: i64 = 60_000;

/// The user a password check is about.
#[derive(Debug, Clone)]
pub struct PasswordRecord {
    pub user: User,
    pub phc: String,
}

/// A live web session.
#[derive(Debug, Clone)]
pub struct WebSession {
    pub id: String,
    pub user: User,
    pub csrf_token: String,
    pub expires_ms: i64,
}

/// One community on the dashboard's plot: where it is and its latest score.
#[derive(Debug, Clone, Serialize)]
pub struct CommunityOverview {
    pub id: String,
    pub name: String,
    pub district: String,
    pub street: String,
    /// WGS-84.
    pub lat: f64,
    pub lon: f64,
    pub latest: Option<LatestScore>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LatestScore {
    pub inspection_id: String,
    pub total: f64,
    pub max_points: f64,
    /// total as a percentage of full marks (what rankings compare).
    pub percent: f64,
    pub grade: Option<String>,
    pub vetoed: bool,
    pub started_at_ms: i64,
}

/// An item of a standard, as the inspection detail names it.
#[derive(Debug, Clone, Serialize)]
pub struct ItemTitle {
    pub code: String,
    pub section: String,
    pub title: String,
    pub points: f64,
}

/// What the dashboard keeps beyond [`Storage`]'s sync and API state: passwords, sessions and
/// the plot's overview. A supertrait of [`Storage`], so every engine provides it.
pub trait DashboardStorage {
    /// Stores a new password hash for `user_id`, lifts every lock on its name and ends its
    /// sessions.
    fn set_password(&self, user_id: &str, phc: &str, now_ms: i64) -> ServerResult<()>;
    fn password_record(&self, user_id: &str) -> ServerResult<Option<PasswordRecord>>;
    /// Until when `client` may not try to sign in as `name` (0 or a past time: it may now):
    /// `MAX_FAILURES` in a row on the name, or `CLIENT_MAX_FAILURES` on any names within
    /// `LOCKOUT_MS`. Known and unknown names alike.
    fn sign_in_blocked_until(&self, name: &str, client: &str, now_ms: i64) -> ServerResult<i64>;
    /// Counts a refused sign-in of `name` (known or not) from `client`; the `MAX_FAILURES`th in
    /// a row locks the name for that client for `LOCKOUT_MS`. Failures older than `LOCKOUT_MS`
    /// are forgotten.
    fn record_failed_sign_in(&self, name: &str, client: &str, now_ms: i64) -> ServerResult<()>;
    /// Creates a session after a good password (and clears the failures of the name at that
    /// client).
    fn create_session(
        &self,
        user_id: &str,
        client: &str,
        token_hash: &str,
        csrf_token: &str,
        now_ms: i64,
    ) -> ServerResult<WebSession>;
    /// The live session of a cookie's hash (expired, idle or no-longer-allowed ones are deleted).
    fn session_by_token(&self, token_hash: &str, now_ms: i64) -> ServerResult<Option<WebSession>>;
    fn delete_session(&self, token_hash: &str) -> ServerResult<()>;
    /// Communities `auth` may read, with coordinates and their latest submitted/approved score.
    fn communities_overview(&self, auth: &DeviceAuth) -> ServerResult<Vec<CommunityOverview>>;
    /// The items of a standard version (empty if the server does not hold it).
    fn standard_items(&self, id: &str, version: &str) -> ServerResult<Vec<ItemTitle>>;
}

fn user_of(role: &str, id: String, name: String, epoch: i64) -> User {
    User {
        id,
        name,
        role: Role::parse(role).unwrap_or(Role::Inspector),
        scope_epoch: epoch,
    }
}

impl DashboardStorage for SqliteStorage {
    fn set_password(&self, user_id: &str, phc: &str, now_ms: i64) -> ServerResult<()> {
        let mut w = self.writer();
        let tx = w.transaction()?;
        let exists: bool = tx.query_row(
            "SELECT count(*) > 0 FROM users WHERE id = ?1",
            [user_id],
            |r| r.get(0),
        )?;
        if !exists {
            return Err(ServerError::NotFound(format!("no user {user_id}")));
        }
        tx.execute(
            "INSERT INTO user_passwords (user_id, phc, set_at) VALUES (?1, ?2, ?3)
             ON CONFLICT(user_id) DO UPDATE SET phc = excluded.phc, set_at = excluded.set_at,
                 failed_attempts = 0, locked_until = 0",
            params![user_id, phc, now_ms],
        )?;
        tx.execute("DELETE FROM web_sessions WHERE user_id = ?1", [user_id])?;
        tx.execute("DELETE FROM sign_in_failures WHERE name = ?1", [user_id])?;
        tx.commit()?;
        Ok(())
    }

    fn password_record(&self, user_id: &str) -> ServerResult<Option<PasswordRecord>> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT u.id, u.name, u.role, u.scope_epoch, p.phc
                 FROM users u JOIN user_passwords p ON p.user_id = u.id WHERE u.id = ?1",
                [user_id],
                |r| {
                    Ok(PasswordRecord {
                        user: user_of(&r.get::<_, String>(2)?, r.get(0)?, r.get(1)?, r.get(3)?),
                        phc: r.get(4)?,
                    })
                },
            )
            .optional()?)
        })
    }

    fn sign_in_blocked_until(&self, name: &str, client: &str, now_ms: i64) -> ServerResult<i64> {
        self.read(|c| {
            let name_lock: i64 = c
                .prepare_cached(
                    "SELECT locked_until FROM sign_in_failures WHERE name = ?1 AND client = ?2",
                )?
                .query_row(params![name, client], |r| r.get(0))
                .optional()?
                .unwrap_or(0);
            let (total, last): (i64, i64) = c
                .prepare_cached(
                    "SELECT coalesce(sum(failures), 0), coalesce(max(last_at), 0)
                     FROM sign_in_failures WHERE client = ?1 AND last_at > ?2",
                )?
                .query_row(params![client, now_ms - LOCKOUT_MS], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
            Ok(blocked_until(name_lock, total, last))
        })
    }

    fn record_failed_sign_in(&self, name: &str, client: &str, now_ms: i64) -> ServerResult<()> {
        let w = self.writer();
        // Rows whose failures no longer count and whose lock ran out go.
        w.prepare_cached(
            "DELETE FROM sign_in_failures WHERE last_at <= ?1 - ?2 AND locked_until <= ?1",
        )?
        .execute(params![now_ms, LOCKOUT_MS])?;
        // A lock that ran out, or a last failure that no longer counts, starts a fresh count.
        w.prepare_cached(
            "INSERT INTO sign_in_failures (name, client, failures, last_at, locked_until)
             VALUES (?1, ?2, 1, ?3, CASE WHEN 1 >= ?4 THEN ?3 + ?5 ELSE 0 END)
             ON CONFLICT(name, client) DO UPDATE SET
                 failures = CASE
                     WHEN (locked_until != 0 AND locked_until <= ?3) OR last_at <= ?3 - ?5 THEN 1
                     ELSE failures + 1 END,
                 locked_until = CASE
                     WHEN (locked_until != 0 AND locked_until <= ?3) OR last_at <= ?3 - ?5
                         THEN CASE WHEN 1 >= ?4 THEN ?3 + ?5 ELSE 0 END
                     WHEN failures + 1 >= ?4 THEN ?3 + ?5
                     ELSE locked_until END,
                 last_at = ?3",
        )?
        .execute(params![name, client, now_ms, MAX_FAILURES, LOCKOUT_MS])?;
        Ok(())
    }

    fn create_session(
        &self,
        user_id: &str,
        client: &str,
        token_hash: &str,
        csrf_token: &str,
        now_ms: i64,
    ) -> ServerResult<WebSession> {
        let id = uuid::Uuid::new_v4().to_string();
        let mut w = self.writer();
        let tx = w.transaction()?;
        tx.execute(
            "DELETE FROM sign_in_failures WHERE name = ?1 AND client = ?2",
            params![user_id, client],
        )?;
        // Sessions that ran out are swept here rather than by a timer.
        tx.execute(
            "DELETE FROM web_sessions WHERE expires_at <= ?1 OR last_seen <= ?2",
            params![now_ms, now_ms - IDLE_TIMEOUT_MS],
        )?;
        tx.execute(
            "INSERT INTO web_sessions
                 (id, token_hash, user_id, csrf_token, created_at, last_seen, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)",
            params![
                id,
                token_hash,
                user_id,
                csrf_token,
                now_ms,
                now_ms + SESSION_TTL_MS
            ],
        )?;
        let user = tx.query_row(
            "SELECT id, name, role, scope_epoch FROM users WHERE id = ?1",
            [user_id],
            |r| {
                Ok(user_of(
                    &r.get::<_, String>(2)?,
                    r.get(0)?,
                    r.get(1)?,
                    r.get(3)?,
                ))
            },
        )?;
        tx.commit()?;
        Ok(WebSession {
            id,
            user,
            csrf_token: csrf_token.into(),
            expires_ms: now_ms + SESSION_TTL_MS,
        })
    }

    fn session_by_token(&self, token_hash: &str, now_ms: i64) -> ServerResult<Option<WebSession>> {
        let found = self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT s.id, s.csrf_token, s.expires_at, s.last_seen,
                        u.id, u.name, u.role, u.scope_epoch
                 FROM web_sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?1",
            )?
            .query_row([token_hash], |r| {
                Ok((
                    WebSession {
                        id: r.get(0)?,
                        csrf_token: r.get(1)?,
                        expires_ms: r.get(2)?,
                        user: user_of(&r.get::<_, String>(6)?, r.get(4)?, r.get(5)?, r.get(7)?),
                    },
                    r.get::<_, i64>(3)?,
                ))
            })
            .optional()?)
        })?;
        let Some((session, last_seen)) = found else {
            return Ok(None);
        };
        let alive = session.expires_ms > now_ms
            && last_seen > now_ms - IDLE_TIMEOUT_MS
            && session.user.role != Role::Inspector;
        if !alive {
            self.delete_session(token_hash)?;
            return Ok(None);
        }
        if now_ms - last_seen >= TOUCH_EVERY_MS {
            self.writer().execute(
                "UPDATE web_sessions SET last_seen = ?2 WHERE token_hash = ?1",
                params![token_hash, now_ms],
            )?;
        }
        Ok(Some(session))
    }

    fn delete_session(&self, token_hash: &str) -> ServerResult<()> {
        self.writer().execute(
            "DELETE FROM web_sessions WHERE token_hash = ?1",
            [token_hash],
        )?;
        Ok(())
    }

    fn communities_overview(&self, auth: &DeviceAuth) -> ServerResult<Vec<CommunityOverview>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT c.id, c.name, c.district, c.street, c.lat, c.lon,
                        l.id, l.total, l.max_points, l.grade, l.vetoed, l.started_at
                 FROM communities c
                 LEFT JOIN inspections l ON l.id = (
                     SELECT i.id FROM inspections i
                     WHERE i.community_id = c.id AND i.status IN ('submitted', 'approved')
                       AND i.total IS NOT NULL AND i.max_points > 0
                     ORDER BY i.started_at DESC, i.id DESC LIMIT 1)
                 WHERE ?1 = 'admin' OR EXISTS (
                     SELECT 1 FROM user_scopes s WHERE s.user_id = ?2 AND (
                         (s.kind = 'community' AND s.value = c.id)
                         OR (s.kind = 'street' AND s.value = c.street)
                         OR (s.kind = 'district' AND s.value = c.district)))
                 ORDER BY c.id",
            )?;
            let rows = stmt
                .query_map(params![auth.user.role.as_str(), auth.user.id], |r| {
                    let latest = match r.get::<_, Option<String>>(6)? {
                        None => None,
                        Some(inspection_id) => {
                            let total: f64 = r.get(7)?;
                            let max_points: f64 = r.get(8)?;
                            Some(LatestScore {
                                inspection_id,
                                total,
                                max_points,
                                percent: percent_of(total, max_points),
                                grade: r.get(9)?,
                                vetoed: r.get(10)?,
                                started_at_ms: r.get(11)?,
                            })
                        }
                    };
                    Ok(CommunityOverview {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        district: r.get(2)?,
                        street: r.get(3)?,
                        lat: r.get(4)?,
                        lon: r.get(5)?,
                        latest,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
    }

    fn standard_items(&self, id: &str, version: &str) -> ServerResult<Vec<ItemTitle>> {
        let standard = match self.store().standard(id, version) {
            Ok(s) => s,
            Err(fenlei_core::CoreError::UnknownStandard { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        Ok(item_titles(&standard))
    }
}

/// The end of a sign-in block (every engine): the name's lock at the client, or — when the
/// client's failures within `LOCKOUT_MS` reached `CLIENT_MAX_FAILURES` — `LOCKOUT_MS` after its
/// last one.
pub(crate) fn blocked_until(name_lock: i64, client_failures: i64, client_last: i64) -> i64 {
    let client_lock = if client_failures >= CLIENT_MAX_FAILURES {
        client_last + LOCKOUT_MS
    } else {
        0
    };
    name_lock.max(client_lock)
}

/// A score as a percentage of full marks, to two decimals (every engine's overview).
pub(crate) fn percent_of(total: f64, max_points: f64) -> f64 {
    (total * 10_000.0 / max_points).round() / 100.0
}

/// A standard's items as the inspection detail names them (every engine).
pub(crate) fn item_titles(standard: &fenlei_core::standard::Standard) -> Vec<ItemTitle> {
    standard
        .sections
        .iter()
        .flat_map(|s| {
            s.items.iter().map(|i| ItemTitle {
                code: i.code.clone(),
                section: s.name.clone(),
                title: i.title.clone(),
                points: i.points,
            })
        })
        .collect()
}

// ---- passwords

/// Argon2id with OWASP's recommended minimum (19 MiB, 2 passes, 1 lane): ~40 ms per check in a
/// release build, which also paces guessing.
fn argon2() -> Argon2<'static> {
    Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(19 * 1024, 2, 1, None).expect("valid Argon2 parameters"),
    )
}

/// The PHC string of a new password (a fresh 16-byte salt).
pub fn hash_password(password: &str) -> ServerResult<String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(ServerError::BadRequest(format!(
            "a password needs at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    let salt_bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt_bytes)
        .map_err(|e| ServerError::Internal(format!("salt: {e}")))?;
    Ok(argon2()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| ServerError::Internal(format!("password hash: {e}")))?
        .to_string())
}

/// Whether `password` matches the PHC string (its own parameters are used).
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| argon2().verify_password(password.as_bytes(), &h).is_ok())
        .unwrap_or(false)
}

/// Password checks that may run at once.
static SIGN_IN_SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// Checked against when the user is unknown, so an unknown name costs what a known one does.
static DUMMY_PHC: LazyLock<String> =
    LazyLock::new(|| hash_password("no-such-user-password").unwrap_or_default());

/// `set-password USER`: the password comes from `FENLEI_PASSWORD` or the first line of stdin, so
/// it never shows in the process list or shell history.
pub fn set_password_cli(storage: &dyn Storage, user_id: &str) -> ServerResult<()> {
    let user = storage
        .user(user_id)?
        .ok_or_else(|| ServerError::NotFound(format!("no user {user_id}")))?;
    if user.role == Role::Inspector {
        return Err(ServerError::BadRequest(
            "inspectors sign in on their enrolled devices, not the dashboard".into(),
        ));
    }
    let password = match std::env::var("FENLEI_PASSWORD") {
        Ok(p) => p,
        Err(_) => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    let phc = hash_password(&password)?;
    storage.set_password(user_id, &phc, now())?;
    Ok(())
}

// ---- HTTP

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> ServerResult<T> + Send + 'static,
) -> ServerResult<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ServerError::Internal(format!("request failed: {e}")))?
}

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

/// `api::authenticate`'s cookie half: a web session as a principal (`device_id` "web:<id>").
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

#[derive(Deserialize)]
struct SignIn {
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

/// The sign-in limits step by step, on any engine (`u1` must exist); what each step shows.
#[cfg(test)]
pub(crate) fn sign_in_limits_story(s: &dyn Storage) -> Vec<i64> {
    let mut seen = Vec::new();
    let blocked =
        |name: &str, client: &str, now: i64| s.sign_in_blocked_until(name, client, now).unwrap();
    let t = 1_000_000;
    // Four wrong passwords of u1 from client A: not locked; the fifth locks u1 for A only.
    for _ in 1..MAX_FAILURES {
        s.record_failed_sign_in("u1", "A", t).unwrap();
    }
    assert_eq!(blocked("u1", "A", t), 0);
    s.record_failed_sign_in("u1", "A", t).unwrap();
    assert_eq!(blocked("u1", "A", t), t + LOCKOUT_MS);
    assert_eq!(blocked("u1", "B", t), 0, "another client is not locked out");
    assert_eq!(
        blocked("ghost", "A", t),
        0,
        "another name at the same client"
    );
    // An unknown name locks just the same (a lock says nothing about the account).
    for _ in 0..MAX_FAILURES {
        s.record_failed_sign_in("ghost", "A", t).unwrap();
    }
    assert_eq!(blocked("ghost", "A", t), t + LOCKOUT_MS);
    // Failures spread over many names lock the client, for every name, and only it.
    for n in 0..CLIENT_MAX_FAILURES {
        assert_eq!(blocked(&format!("n{n}"), "C", t + n), 0);
        s.record_failed_sign_in(&format!("n{n}"), "C", t + n)
            .unwrap();
    }
    let last = t + CLIENT_MAX_FAILURES - 1;
    assert_eq!(blocked("u1", "C", last), last + LOCKOUT_MS);
    assert_eq!(blocked("anyone", "C", last), last + LOCKOUT_MS);
    assert_eq!(blocked("u1", "D", last), 0);
    // After the lock, a wrong password starts a new count instead of locking again.
    let later = t + LOCKOUT_MS + 1;
    s.record_failed_sign_in("u1", "A", later).unwrap();
    assert!(blocked("u1", "A", later) <= later);
    seen.push(blocked("u1", "A", later));
    // Failures older than the lockout no longer count.
    for _ in 1..MAX_FAILURES {
        s.record_failed_sign_in("u1", "E", later).unwrap();
    }
    let much_later = later + LOCKOUT_MS + 1;
    s.record_failed_sign_in("u1", "E", much_later).unwrap();
    assert!(blocked("u1", "E", much_later) <= much_later);
    // A good sign-in clears the name's count at that client.
    for _ in 1..MAX_FAILURES {
        s.record_failed_sign_in("u1", "F", much_later).unwrap();
    }
    s.create_session("u1", "F", "story", "csrf", much_later)
        .unwrap();
    s.record_failed_sign_in("u1", "F", much_later).unwrap();
    assert!(blocked("u1", "F", much_later) <= much_later);
    // A new password lifts every lock on the name.
    for _ in 0..MAX_FAILURES {
        s.record_failed_sign_in("u1", "G", much_later).unwrap();
    }
    assert_eq!(blocked("u1", "G", much_later), much_later + LOCKOUT_MS);
    s.set_password("u1", "$argon2id$new", much_later).unwrap();
    assert!(blocked("u1", "G", much_later) <= much_later);
    seen.push(blocked("u1", "G", much_later));
    seen
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::traits::*;

    #[test]
    fn passwords_verify_and_short_ones_are_refused() {
        let phc = hash_password("correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &phc));
        assert!(!verify_password("correct horse batterz", &phc));
        assert!(!verify_password("anything", "not a phc string"));
        assert!(hash_password("short").is_err());
    }

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

    fn storage_with_user(role: Role) -> (tempfile::TempDir, SqliteStorage) {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStorage::open(dir.path()).unwrap();
        s.add_user("u1", "User One", role).unwrap();
        s.set_password("u1", &hash_password("a long password").unwrap(), 1_000)
            .unwrap();
        (dir, s)
    }

    #[test]
    fn failures_lock_a_name_at_one_client_and_a_client_at_every_name() {
        let (_d, s) = storage_with_user(Role::Supervisor);
        sign_in_limits_story(&s);
    }

    #[test]
    fn sessions_expire_idle_out_end_on_new_password_and_on_demotion() {
        let (_d, s) = storage_with_user(Role::Supervisor);
        let t0 = 10_000_000;
        s.create_session("u1", "a", "h1", "csrf", t0).unwrap();
        let live = s.session_by_token("h1", t0 + 1).unwrap().unwrap();
        assert_eq!(live.user.id, "u1");
        assert!(
            s.session_by_token("h1", t0 + IDLE_TIMEOUT_MS)
                .unwrap()
                .is_none()
        );

        s.create_session("u1", "a", "h2", "csrf", t0).unwrap();
        // Kept alive by use, it still ends at the absolute limit.
        let mut t = t0;
        while t + IDLE_TIMEOUT_MS / 2 < t0 + SESSION_TTL_MS {
            t += IDLE_TIMEOUT_MS / 2;
            assert!(s.session_by_token("h2", t).unwrap().is_some());
        }
        assert!(
            s.session_by_token("h2", t0 + SESSION_TTL_MS)
                .unwrap()
                .is_none()
        );

        s.create_session("u1", "a", "h3", "csrf", t0).unwrap();
        s.set_password("u1", &hash_password("another long one").unwrap(), t0)
            .unwrap();
        assert!(s.session_by_token("h3", t0 + 1).unwrap().is_none());

        s.create_session("u1", "a", "h4", "csrf", t0).unwrap();
        s.add_user("u1", "User One", Role::Inspector).unwrap();
        assert!(s.session_by_token("h4", t0 + 1).unwrap().is_none());

        s.create_session("u1", "a", "h5", "csrf", t0).unwrap();
        s.delete_session("h5").unwrap();
        assert!(s.session_by_token("h5", t0 + 1).unwrap().is_none());
    }
}
