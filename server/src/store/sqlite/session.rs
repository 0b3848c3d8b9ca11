//! Dashboard sign-in on SQLite: passwords, sessions, sign-in failures and locks, the overview.

use super::SqliteStorage;
use crate::domain::overview::*;
use crate::domain::signin::*;
use crate::error::{ServerError, ServerResult};
use crate::model::*;
use crate::store::DashboardStorage;
use rusqlite::{OptionalExtension, params};

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
