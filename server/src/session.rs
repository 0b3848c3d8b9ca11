//! Dashboard accounts as a service: setting a password from the command line. The rules (lockout, lifetimes, hashing) are in
//! `domain/signin.rs`, the routes in `http/session.rs`, the SQL in each engine.

use crate::domain::signin::*;
use crate::error::{ServerError, ServerResult};
use crate::model::{Role, now};
use crate::store::Storage;

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
    use crate::store::sqlite::SqliteStorage;
    use crate::store::traits::*;

    #[test]
    fn passwords_verify_and_short_ones_are_refused() {
        let phc = hash_password("correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &phc));
        assert!(!verify_password("correct horse batterz", &phc));
        assert!(!verify_password("anything", "not a phc string"));
        assert!(hash_password("short").is_err());
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
