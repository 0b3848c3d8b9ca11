//! Dashboard passwords, sessions and overview on PostgreSQL. Sessions and lockout counters are
//! rows, so every instance sees the same sign-ins; the rules are `session.rs`'s.

use super::PgStorage;
use super::queries::community_in_scope;
use crate::domain::signin::IDLE_TIMEOUT_MS;
use crate::domain::signin::LOCKOUT_MS;
use crate::domain::signin::MAX_FAILURES;
use crate::domain::signin::SESSION_TTL_MS;
use crate::domain::signin::TOUCH_EVERY_MS;
use crate::domain::signin::blocked_until;
use crate::error::{ServerError, ServerResult};
use crate::model::CommunityOverview;
use crate::model::ItemTitle;
use crate::model::LatestScore;
use crate::model::PasswordRecord;
use crate::model::WebSession;
use crate::model::{DeviceAuth, Role, User};
use crate::store::DashboardStorage;

fn user_at(r: &postgres::Row, at: usize) -> ServerResult<User> {
    let role: String = r.try_get(at + 2)?;
    Ok(User {
        id: r.try_get(at)?,
        name: r.try_get(at + 1)?,
        role: Role::parse(&role).unwrap_or(Role::Inspector),
        scope_epoch: r.try_get(at + 3)?,
    })
}

impl DashboardStorage for PgStorage {
    fn set_password(&self, user_id: &str, phc: &str, now_ms: i64) -> ServerResult<()> {
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        let exists = tx
            .query_opt("SELECT 1 FROM users WHERE id = $1", &[&user_id])?
            .is_some();
        if !exists {
            return Err(ServerError::NotFound(format!("no user {user_id}")));
        }
        tx.execute(
            "INSERT INTO user_passwords (user_id, phc, set_at) VALUES ($1, $2, $3)
             ON CONFLICT (user_id) DO UPDATE SET phc = excluded.phc, set_at = excluded.set_at,
                 failed_attempts = 0, locked_until = 0",
            &[&user_id, &phc, &now_ms],
        )?;
        tx.execute("DELETE FROM web_sessions WHERE user_id = $1", &[&user_id])?;
        tx.execute("DELETE FROM sign_in_failures WHERE name = $1", &[&user_id])?;
        tx.commit()?;
        Ok(())
    }

    fn password_record(&self, user_id: &str) -> ServerResult<Option<PasswordRecord>> {
        self.client()?
            .query_opt(
                "SELECT u.id, u.name, u.role, u.scope_epoch, p.phc
                 FROM users u JOIN user_passwords p ON p.user_id = u.id WHERE u.id = $1",
                &[&user_id],
            )?
            .map(|r| {
                Ok(PasswordRecord {
                    user: user_at(&r, 0)?,
                    phc: r.try_get(4)?,
                })
            })
            .transpose()
    }

    fn sign_in_blocked_until(&self, name: &str, client: &str, now_ms: i64) -> ServerResult<i64> {
        let r = self.client()?.query_one(
            "SELECT coalesce((SELECT locked_until FROM sign_in_failures
                              WHERE name = $1 AND client = $2), 0),
                    coalesce(sum(failures), 0)::bigint, coalesce(max(last_at), 0)
             FROM sign_in_failures WHERE client = $2 AND last_at > $3::bigint - $4::bigint",
            &[&name, &client, &now_ms, &LOCKOUT_MS],
        )?;
        Ok(blocked_until(r.try_get(0)?, r.try_get(1)?, r.try_get(2)?))
    }

    fn record_failed_sign_in(&self, name: &str, client: &str, now_ms: i64) -> ServerResult<()> {
        let mut c = self.client()?;
        // Rows whose failures no longer count and whose lock ran out go.
        c.execute(
            "DELETE FROM sign_in_failures
             WHERE last_at <= $1::bigint - $2::bigint AND locked_until <= $1::bigint",
            &[&now_ms, &LOCKOUT_MS],
        )?;
        // One statement, so instances counting failures at once all count (the row lock orders
        // them). A lock that ran out, or a last failure that no longer counts, starts afresh.
        c.execute(
            "INSERT INTO sign_in_failures AS f (name, client, failures, last_at, locked_until)
             VALUES ($1, $2, 1, $3::bigint,
                     CASE WHEN 1 >= $4::bigint THEN $3::bigint + $5::bigint ELSE 0 END)
             ON CONFLICT (name, client) DO UPDATE SET
                 failures = CASE
                     WHEN (f.locked_until != 0 AND f.locked_until <= $3::bigint)
                          OR f.last_at <= $3::bigint - $5::bigint THEN 1
                     ELSE f.failures + 1 END,
                 locked_until = CASE
                     WHEN (f.locked_until != 0 AND f.locked_until <= $3::bigint)
                          OR f.last_at <= $3::bigint - $5::bigint
                         THEN CASE WHEN 1 >= $4::bigint THEN $3::bigint + $5::bigint ELSE 0 END
                     WHEN f.failures + 1 >= $4::bigint THEN $3::bigint + $5::bigint
                     ELSE f.locked_until END,
                 last_at = $3::bigint",
            &[&name, &client, &now_ms, &MAX_FAILURES, &LOCKOUT_MS],
        )?;
        Ok(())
    }

    fn create_session(
        &self,
        user_id: &str,
        sign_in_client: &str,
        token_hash: &str,
        csrf_token: &str,
        now_ms: i64,
    ) -> ServerResult<WebSession> {
        let id = uuid::Uuid::new_v4().to_string();
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        tx.execute(
            "DELETE FROM sign_in_failures WHERE name = $1 AND client = $2",
            &[&user_id, &sign_in_client],
        )?;
        // Sessions that ran out are swept here rather than by a timer.
        tx.execute(
            "DELETE FROM web_sessions WHERE expires_at <= $1 OR last_seen <= $2",
            &[&now_ms, &(now_ms - IDLE_TIMEOUT_MS)],
        )?;
        tx.execute(
            "INSERT INTO web_sessions
                 (id, token_hash, user_id, csrf_token, created_at, last_seen, expires_at)
             VALUES ($1, $2, $3, $4, $5, $5, $6)",
            &[
                &id,
                &token_hash,
                &user_id,
                &csrf_token,
                &now_ms,
                &(now_ms + SESSION_TTL_MS),
            ],
        )?;
        let row = tx.query_one(
            "SELECT id, name, role, scope_epoch FROM users WHERE id = $1",
            &[&user_id],
        )?;
        let user = user_at(&row, 0)?;
        tx.commit()?;
        Ok(WebSession {
            id,
            user,
            csrf_token: csrf_token.into(),
            expires_ms: now_ms + SESSION_TTL_MS,
        })
    }

    fn session_by_token(&self, token_hash: &str, now_ms: i64) -> ServerResult<Option<WebSession>> {
        let mut client = self.client()?;
        let Some(r) = client.query_opt(
            "SELECT s.id, s.csrf_token, s.expires_at, s.last_seen,
                    u.id, u.name, u.role, u.scope_epoch
             FROM web_sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1",
            &[&token_hash],
        )?
        else {
            return Ok(None);
        };
        let session = WebSession {
            id: r.try_get(0)?,
            csrf_token: r.try_get(1)?,
            expires_ms: r.try_get(2)?,
            user: user_at(&r, 4)?,
        };
        let last_seen: i64 = r.try_get(3)?;
        let alive = session.expires_ms > now_ms
            && last_seen > now_ms - IDLE_TIMEOUT_MS
            && session.user.role != Role::Inspector;
        if !alive {
            client.execute(
                "DELETE FROM web_sessions WHERE token_hash = $1",
                &[&token_hash],
            )?;
            return Ok(None);
        }
        if now_ms - last_seen >= TOUCH_EVERY_MS {
            // Never moves last_seen back when another instance touched it later.
            client.execute(
                "UPDATE web_sessions SET last_seen = greatest(last_seen, $2) WHERE token_hash = $1",
                &[&token_hash, &now_ms],
            )?;
        }
        Ok(Some(session))
    }

    fn delete_session(&self, token_hash: &str) -> ServerResult<()> {
        self.client()?.execute(
            "DELETE FROM web_sessions WHERE token_hash = $1",
            &[&token_hash],
        )?;
        Ok(())
    }

    fn communities_overview(&self, auth: &DeviceAuth) -> ServerResult<Vec<CommunityOverview>> {
        let sql = format!(
            "SELECT c.id, c.name, c.district, c.street, c.lat, c.lon,
                    l.id, l.total, l.max_points, l.grade, l.vetoed, l.started_at
             FROM communities c
             LEFT JOIN inspections l ON l.id = (
                 SELECT i.id FROM inspections i
                 WHERE i.community_id = c.id AND i.status IN ('submitted', 'approved')
                   AND i.total IS NOT NULL AND i.max_points > 0
                 ORDER BY i.started_at DESC, i.id COLLATE \"C\" DESC LIMIT 1)
             WHERE {}
             ORDER BY c.id COLLATE \"C\"",
            community_in_scope(1, 2)
        );
        self.client()?
            .query(&sql, &[&auth.user.role.as_str(), &auth.user.id])?
            .iter()
            .map(|r| {
                let latest = match r.try_get::<_, Option<String>>(6)? {
                    None => None,
                    Some(inspection_id) => {
                        let total: f64 = r.try_get(7)?;
                        let max_points: f64 = r.try_get(8)?;
                        Some(LatestScore {
                            inspection_id,
                            total,
                            max_points,
                            percent: crate::domain::overview::percent_of(total, max_points),
                            grade: r.try_get(9)?,
                            vetoed: r.try_get::<_, i64>(10)? != 0,
                            started_at_ms: r.try_get(11)?,
                        })
                    }
                };
                Ok(CommunityOverview {
                    id: r.try_get(0)?,
                    name: r.try_get(1)?,
                    district: r.try_get(2)?,
                    street: r.try_get(3)?,
                    lat: r.try_get(4)?,
                    lon: r.try_get(5)?,
                    latest,
                })
            })
            .collect()
    }

    fn standard_items(&self, id: &str, version: &str) -> ServerResult<Vec<ItemTitle>> {
        let Some(standard) = self.standard(id, version)? else {
            return Ok(Vec::new());
        };
        Ok(crate::domain::overview::item_titles(&standard))
    }
}
