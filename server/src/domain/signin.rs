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
//!   authenticates must carry the session's token in `X-CSRF-Token` (`http::session::csrf_guard`); sign-in
//!   itself must be JSON (a cross-site form cannot send that without a preflight, which is never
//!   answered).

use crate::error::{ServerError, ServerResult};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

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
