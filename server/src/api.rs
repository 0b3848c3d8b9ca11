//! HTTP routes: enrollment, sync, and the supervisor's JSON API. Storage work runs on tokio's
//! blocking pool; a panic in it becomes a 500 for that request, never a dead server.

use crate::error::{ServerError, ServerResult};
use crate::storage::{DeviceAuth, ListFilter, Role, ScopeKind, Storage, now};
use crate::sync::handle_sync;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequestParts, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fenlei_core::sync::protocol::{EnrollRequest, EnrollResponse, MAX_REQUEST_BYTES, SyncRequest};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::sync::Arc;

pub type Shared = Arc<dyn Storage>;

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

pub fn router(storage: Shared) -> Router {
    router_with(storage, crate::media::MediaLimits::default())
}

/// The routes with the media upload limits the server was started with.
pub fn router_with(storage: Shared, limits: crate::media::MediaLimits) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/v1/enroll", post(enroll))
        .route("/v1/sync", post(sync))
        .route("/v1/me", get(me))
        .route("/v1/inspections", get(list_inspections))
        .route("/v1/inspections/{id}", get(inspection))
        .route("/v1/communities/{id}/scores", get(score_history))
        .route("/v1/rankings", get(rankings))
        .merge(crate::media::routes(limits))
        .merge(crate::supervisor_api::routes())
        .merge(crate::chain::routes())
        .merge(crate::dashboard::routes())
        .layer(axum::middleware::from_fn_with_state(
            storage.clone(),
            crate::session::csrf_guard,
        ))
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        // Outermost: the security headers are set on every response, whatever produced it (a
        // handler, an extractor's rejection, the CSRF guard, an unknown route).
        .layer(axum::middleware::map_response(
            crate::output::security_headers,
        ))
        .with_state(storage)
}

/// Lower-case hex SHA-256: how codes and tokens are stored (never in clear).
pub fn hash_secret(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A random secret of 32 bytes, URL-safe base64.
pub fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
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
    if !headers.contains_key("authorization") && crate::session::session_cookie(headers).is_some() {
        return crate::session::authenticate_session(storage, headers).await;
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

async fn enroll(State(storage): State<Shared>, body: Bytes) -> ServerResult<Response> {
    let req: EnrollRequest = parse_json(&body)?;
    // Checked before the code is redeemed: a refused request changes nothing.
    if let Some(why) = crate::actors::device_id_refusal(&req.device_id, &storage.opening_actor()) {
        return Err(ServerError::BadRequest(why));
    }
    if let Some(key) = &req.public_key {
        fenlei_core::tamper::verifying_key(key)
            .map_err(|_| ServerError::BadRequest("public_key is not an Ed25519 key".into()))?;
    }
    let token = new_secret();
    let token_hash = hash_secret(&token);
    let code_hash = hash_secret(req.code.trim());
    let device = req.device_id.clone();
    let (user, server_key) = blocking(move || {
        let user = storage.redeem_enrollment(&code_hash, &device, &token_hash, now())?;
        if let (Some(_), Some(key)) = (&user, &req.public_key) {
            storage.set_device_key(&device, key)?;
        }
        let server_key = fenlei_core::tamper::public_key_hex(storage.server_key());
        Ok((user, server_key))
    })
    .await?;
    let user = user.ok_or_else(|| {
        ServerError::Unauthorized("unknown, used or expired enrollment code".into())
    })?;
    Ok(axum::Json(EnrollResponse {
        token,
        user_id: user.id,
        role: user.role.as_str().into(),
        server_key: Some(server_key),
    })
    .into_response())
}

async fn sync(
    State(storage): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> ServerResult<Response> {
    let auth = authenticate(&storage, &headers).await?;
    let request: SyncRequest = parse_json(&body)?;
    let response = blocking(move || handle_sync(storage.as_ref(), &auth, request)).await?;
    Ok(axum::Json(response).into_response())
}

async fn me(State(storage): State<Shared>, headers: HeaderMap) -> ServerResult<Response> {
    let auth = authenticate(&storage, &headers).await?;
    Ok(axum::Json(serde_json::json!({
        "device_id": auth.device_id,
        "user_id": auth.user.id,
        "name": auth.user.name,
        "role": auth.user.role,
        "scope": auth.scope,
    }))
    .into_response())
}

pub fn require_reviewer(auth: &DeviceAuth) -> ServerResult<()> {
    match auth.user.role {
        Role::Supervisor | Role::Admin => Ok(()),
        Role::Inspector => Err(ServerError::Forbidden(
            "the supervisor API is for supervisors and admins".into(),
        )),
    }
}

/// The first year a date or time may fall in (dates and times in requests and commands).
pub const FIRST_YEAR: i64 = 1;
/// The last year a date or time may fall in.
pub const LAST_YEAR: i64 = 9999;
/// 0001-01-01 00:00 UTC+8 in ms since the epoch: the earliest time accepted.
pub const MIN_TIME_MS: i64 = -62_135_625_600_000;
/// 9999-12-31 23:59:59.999 UTC+8: the latest time accepted.
pub const MAX_TIME_MS: i64 = 253_402_271_999_999;

fn out_of_range(text: &str) -> ServerError {
    ServerError::BadRequest(format!(
        "{text:?} is out of range (dates from {FIRST_YEAR:04}-01-01 to {LAST_YEAR}-12-31)"
    ))
}

/// A day `YYYY-MM-DD` (China Standard Time, UTC+8, where the bulletins are read) or ms since
/// the epoch, between [`MIN_TIME_MS`] and [`MAX_TIME_MS`]; anything else is a typed 400. The one
/// reading of every date or time query value (`at`, `from`, `to`) and command option (`--at`).
pub fn parse_time(text: &str) -> ServerResult<i64> {
    if let Ok(ms) = text.parse::<i64>() {
        if !(MIN_TIME_MS..=MAX_TIME_MS).contains(&ms) {
            return Err(out_of_range(text));
        }
        return Ok(ms);
    }
    let (y, m, d) = parse_date(text)?;
    Ok(day_start_ms(y, m, d))
}

fn parse_date(text: &str) -> ServerResult<(i64, u32, u32)> {
    let bad = || ServerError::BadRequest(format!("{text:?} is not a date (YYYY-MM-DD)"));
    let digits = |p: &str, n: std::ops::RangeInclusive<usize>| {
        n.contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit())
    };
    let mut parts = text.split('-');
    let (Some(y), Some(m), Some(d), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    if !digits(y, 4..=5) || !digits(m, 1..=2) || !digits(d, 1..=2) {
        return Err(bad());
    }
    let (y, m, d): (i64, u32, u32) = (
        y.parse().map_err(|_| bad())?,
        m.parse().map_err(|_| bad())?,
        d.parse().map_err(|_| bad())?,
    );
    if !(FIRST_YEAR..=LAST_YEAR).contains(&y) {
        return Err(out_of_range(text));
    }
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return Err(bad());
    }
    Ok((y, m, d))
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

const CST_OFFSET_MS: i64 = 8 * 3_600_000;

fn day_start_ms(y: i64, m: u32, d: u32) -> i64 {
    days_from_civil(y, m, d) * 86_400_000 - CST_OFFSET_MS
}

/// The start (00:00 UTC+8) of the day holding `ms` (clamped to the accepted range).
pub(crate) fn day_start(ms: i64) -> i64 {
    let (y, m, d) = civil_of(ms);
    day_start_ms(y, m, d)
}

/// The civil date (UTC+8) of a time (clamped to the accepted range).
pub(crate) fn civil_date(ms: i64) -> (i64, u32, u32) {
    civil_of(ms)
}

fn civil_of(ms: i64) -> (i64, u32, u32) {
    // Callers pass checked times; the clamp keeps the arithmetic below in range whatever comes.
    let ms = ms.clamp(MIN_TIME_MS, MAX_TIME_MS);
    let days = (ms + CST_OFFSET_MS).div_euclid(86_400_000);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    (y, m, d)
}

/// The day a request or command asks about (`YYYY-MM-DD` or RFC 3339; now when absent) and the
/// `period` ("week" or "month") holding it, as (at, from, to) in ms — the one reading of `?at=`
/// and `?period=` for every handler and CLI command.
pub fn period_at(period: &str, at: Option<&str>) -> ServerResult<(i64, i64, i64)> {
    let at = at.map(parse_time).transpose()?.unwrap_or_else(now);
    let (from, to) = period_bounds(period, at)?;
    Ok((at, from, to))
}

/// A comma-separated list from a query or the command line, trimmed, without empty entries.
pub fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The week (Monday to Monday) or month holding `at`, as [from, to) in ms.
pub fn period_bounds(period: &str, at_ms: i64) -> ServerResult<(i64, i64)> {
    if !(MIN_TIME_MS..=MAX_TIME_MS).contains(&at_ms) {
        return Err(out_of_range(&at_ms.to_string()));
    }
    let (y, m, d) = civil_of(at_ms);
    match period {
        "week" => {
            let days = days_from_civil(y, m, d);
            // 1970-01-01 was a Thursday: Monday-based weekday = (days + 3) mod 7.
            let monday = days - (days + 3).rem_euclid(7);
            let from = monday * 86_400_000 - CST_OFFSET_MS;
            Ok((from, from + 7 * 86_400_000))
        }
        "month" => {
            let from = day_start_ms(y, m, 1);
            let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
            Ok((from, day_start_ms(ny, nm, 1)))
        }
        other => Err(ServerError::BadRequest(format!(
            "period must be week or month, not {other:?}"
        ))),
    }
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    community: Option<String>,
    street: Option<String>,
    district: Option<String>,
    inspector: Option<String>,
    status: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<u32>,
}

async fn list_inspections(
    State(storage): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> ServerResult<Response> {
    let auth = authenticate(&storage, &headers).await?;
    require_reviewer(&auth)?;
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

async fn inspection(
    State(storage): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ServerResult<Response> {
    let auth = authenticate(&storage, &headers).await?;
    require_reviewer(&auth)?;
    let body = blocking(move || {
        let Some(mut doc) = storage.load_document(&id)? else {
            return Err(ServerError::NotFound(format!("no inspection {id}")));
        };
        let inspection = doc.read()?;
        let community = storage.community(&inspection.community_id)?;
        let readable = auth.user.role == Role::Admin
            || auth.scope.communities.contains(&inspection.community_id)
            || community.as_ref().is_some_and(|c| {
                auth.scope.streets.contains(&c.street) || auth.scope.districts.contains(&c.district)
            });
        if !readable {
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

async fn score_history(
    State(storage): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ServerResult<Response> {
    let auth = authenticate(&storage, &headers).await?;
    require_reviewer(&auth)?;
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
struct RankingQuery {
    by: Option<String>,
    period: Option<String>,
    /// A day inside the period (YYYY-MM-DD, UTC+8) or ms; default now.
    at: Option<String>,
}

async fn rankings(
    State(storage): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<RankingQuery>,
) -> ServerResult<Response> {
    let auth = authenticate(&storage, &headers).await?;
    require_reviewer(&auth)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weeks_start_on_monday_in_china_time() {
        // 2026-05-20 is a Wednesday.
        let at = parse_time("2026-05-20").unwrap() + 3_600_000;
        let (from, to) = period_bounds("week", at).unwrap();
        assert_eq!(civil_of(from), (2026, 5, 18));
        assert_eq!(to - from, 7 * 86_400_000);
        let (from, to) = period_bounds("month", at).unwrap();
        assert_eq!(civil_of(from), (2026, 5, 1));
        assert_eq!(civil_of(to), (2026, 6, 1));
        assert!(parse_time("2026-02-30").is_err());
        assert!(period_bounds("year", at).is_err());
    }

    #[test]
    fn the_accepted_range_is_years_1_to_9999_in_china_time() {
        assert_eq!(day_start_ms(FIRST_YEAR, 1, 1), MIN_TIME_MS);
        assert_eq!(day_start_ms(LAST_YEAR + 1, 1, 1) - 1, MAX_TIME_MS);
        assert_eq!(parse_time("0001-01-01").unwrap(), MIN_TIME_MS);
        assert_eq!(civil_date(MAX_TIME_MS), (9999, 12, 31));
        for bad in [
            "9223372036854775807",
            "-9223372036854775808",
            "99999-12-31",
            "0000-12-31",
            "-2026-01-01",
            "+2026-01-01",
            "2026-1-1-1",
            "２０２６-01-01",
            "",
        ] {
            assert!(
                matches!(parse_time(bad), Err(ServerError::BadRequest(_))),
                "{bad}"
            );
        }
        // The last month: its end is the first instant after the range, computed, not refused.
        let (from, to) = period_bounds("month", MAX_TIME_MS).unwrap();
        assert_eq!((civil_date(from), to), ((9999, 12, 1), MAX_TIME_MS + 1));
    }

    use proptest::prelude::*;

    proptest! {
        /// Any text: a time inside the range or a typed 400, for every period; never a panic.
        #[test]
        fn any_text_is_a_time_in_range_or_a_typed_400(text in "\\PC{0,24}") {
            match parse_time(&text) {
                Ok(ms) => prop_assert!((MIN_TIME_MS..=MAX_TIME_MS).contains(&ms)),
                Err(e) => prop_assert!(matches!(e, ServerError::BadRequest(_))),
            }
            for period in ["week", "month", "year"] {
                if let Err(e) = period_at(period, Some(&text)) {
                    prop_assert!(matches!(e, ServerError::BadRequest(_)));
                }
            }
            let _ = split_list(&text);
        }

        /// Any integer, as ms in a query: itself when in range, else a typed 400; the calendar
        /// functions take any integer without overflowing.
        #[test]
        fn any_integer_is_a_time_or_a_typed_400(ms in any::<i64>()) {
            let in_range = (MIN_TIME_MS..=MAX_TIME_MS).contains(&ms);
            match parse_time(&ms.to_string()) {
                Ok(t) => prop_assert!(in_range && t == ms),
                Err(e) => prop_assert!(!in_range && matches!(e, ServerError::BadRequest(_))),
            }
            for period in ["week", "month"] {
                match period_bounds(period, ms) {
                    Ok((from, to)) => prop_assert!(in_range && from <= ms && ms < to),
                    Err(e) => prop_assert!(!in_range && matches!(e, ServerError::BadRequest(_))),
                }
            }
            let start = day_start(ms);
            prop_assert!(start <= ms.clamp(MIN_TIME_MS, MAX_TIME_MS));
            let _ = civil_date(ms);
        }

        /// Date-shaped text with any numbers in it.
        #[test]
        fn any_numbers_in_a_date_are_a_date_or_a_typed_400(
            y in any::<i64>(), m in any::<i64>(), d in any::<i64>()
        ) {
            if let Ok(ms) = parse_time(&format!("{y:04}-{m:02}-{d:02}")) {
                prop_assert_eq!(civil_date(ms), (y, m as u32, d as u32));
            }
        }

        /// Every day of the range reads back as itself and starts its own day.
        #[test]
        fn dates_in_range_round_trip(y in FIRST_YEAR..=LAST_YEAR, m in 1u32..=12, d in 1u32..=31) {
            prop_assume!(d <= days_in_month(y, m));
            let ms = parse_time(&format!("{y:04}-{m:02}-{d:02}")).unwrap();
            prop_assert_eq!(civil_date(ms), (y, m, d));
            prop_assert_eq!(day_start(ms + 86_399_999), ms);
        }
    }
}
