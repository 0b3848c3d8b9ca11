//! Users, scopes, enrollment codes and devices on SQLite.

use super::*;

fn user_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    let role: String = r.get(2)?;
    Ok(User {
        id: r.get(0)?,
        name: r.get(1)?,
        role: Role::parse(&role).unwrap_or(Role::Inspector),
        scope_epoch: r.get(3)?,
    })
}

impl AccountStore for SqliteStorage {
    fn add_user(&self, id: &str, name: &str, role: Role) -> ServerResult<()> {
        if id.trim().is_empty() {
            return Err(ServerError::BadRequest("user id must not be empty".into()));
        }
        lock(&self.writer).execute(
            "INSERT INTO users (id, name, role) VALUES (?1, ?2, ?3)
             ON CONFLICT(id) DO UPDATE SET name = excluded.name, role = excluded.role,
                 scope_epoch = users.scope_epoch + 1",
            params![id, name, role.as_str()],
        )?;
        Ok(())
    }

    fn user(&self, id: &str) -> ServerResult<Option<User>> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT id, name, role, scope_epoch FROM users WHERE id = ?1",
                [id],
                user_row,
            )
            .optional()?)
        })
    }

    fn add_scope(&self, user_id: &str, kind: ScopeKind, value: &str) -> ServerResult<()> {
        let mut w = lock(&self.writer);
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
            "INSERT OR IGNORE INTO user_scopes (user_id, kind, value) VALUES (?1, ?2, ?3)",
            params![user_id, kind.as_str(), value],
        )?;
        tx.execute(
            "UPDATE users SET scope_epoch = scope_epoch + 1 WHERE id = ?1",
            [user_id],
        )?;
        SqliteStorage::log_reference(&tx, "assignments", user_id)?;
        tx.commit()?;
        Ok(())
    }

    fn scope(&self, user: &User) -> ServerResult<Assignments> {
        self.read(|c| {
            let mut out = Assignments {
                user_id: user.id.clone(),
                role: user.role.as_str().into(),
                ..Default::default()
            };
            let mut stmt = c.prepare_cached(
                "SELECT kind, value FROM user_scopes WHERE user_id = ?1 ORDER BY kind, value",
            )?;
            let rows = stmt.query_map([&user.id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?;
            for row in rows {
                let (kind, value) = row?;
                match kind.as_str() {
                    "community" => out.communities.push(value),
                    "street" => out.streets.push(value),
                    _ => out.districts.push(value),
                }
            }
            Ok(out)
        })
    }

    fn add_enrollment_code(
        &self,
        user_id: &str,
        code_hash: &str,
        expires_ms: i64,
    ) -> ServerResult<()> {
        if self.user(user_id)?.is_none() {
            return Err(ServerError::NotFound(format!("no user {user_id}")));
        }
        lock(&self.writer).execute(
            "INSERT INTO enrollment_codes (code_hash, user_id, expires_at) VALUES (?1, ?2, ?3)",
            params![code_hash, user_id, expires_ms],
        )?;
        Ok(())
    }

    fn redeem_enrollment(
        &self,
        code_hash: &str,
        device_id: &str,
        token_hash: &str,
        now_ms: i64,
    ) -> ServerResult<Option<User>> {
        let mut w = lock(&self.writer);
        let tx = w.transaction()?;
        let user_id: Option<String> = tx
            .query_row(
                "SELECT user_id FROM enrollment_codes
                 WHERE code_hash = ?1 AND used_by IS NULL AND expires_at > ?2",
                params![code_hash, now_ms],
                |r| r.get(0),
            )
            .optional()?;
        let Some(user_id) = user_id else {
            return Ok(None);
        };
        let bound_to: Option<String> = tx
            .query_row(
                "SELECT user_id FROM devices WHERE id = ?1",
                [device_id],
                |r| r.get(0),
            )
            .optional()?;
        if bound_to.as_deref().is_some_and(|u| u != user_id) {
            return Err(ServerError::Forbidden(
                "this device is enrolled for another user".into(),
            ));
        }
        tx.execute(
            "UPDATE enrollment_codes SET used_by = ?2 WHERE code_hash = ?1",
            params![code_hash, device_id],
        )?;
        // Re-enrolling a device (a lost token) replaces its credential.
        tx.execute(
            "INSERT INTO devices (id, user_id, token_hash, enrolled_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(id) DO UPDATE SET token_hash = excluded.token_hash,
                 enrolled_at = excluded.enrolled_at, revoked = 0",
            params![device_id, user_id, token_hash, now_ms],
        )?;
        let user = tx.query_row(
            "SELECT id, name, role, scope_epoch FROM users WHERE id = ?1",
            [&user_id],
            user_row,
        )?;
        tx.commit()?;
        Ok(Some(user))
    }

    fn device_by_token(&self, token_hash: &str) -> ServerResult<Option<DeviceAuth>> {
        let found = self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT d.id, u.id, u.name, u.role, u.scope_epoch FROM devices d
                 JOIN users u ON u.id = d.user_id WHERE d.token_hash = ?1 AND d.revoked = 0",
            )?
            .query_row([token_hash], |r| {
                let role: String = r.get(3)?;
                Ok((
                    r.get::<_, String>(0)?,
                    User {
                        id: r.get(1)?,
                        name: r.get(2)?,
                        role: Role::parse(&role).unwrap_or(Role::Inspector),
                        scope_epoch: r.get(4)?,
                    },
                ))
            })
            .optional()?)
        })?;
        match found {
            None => Ok(None),
            Some((device_id, user)) => {
                let scope = self.scope(&user)?;
                Ok(Some(DeviceAuth {
                    device_id,
                    user,
                    scope,
                }))
            }
        }
    }

    fn revoke_device(&self, device_id: &str) -> ServerResult<bool> {
        let n = lock(&self.writer)
            .execute("UPDATE devices SET revoked = 1 WHERE id = ?1", [device_id])?;
        Ok(n > 0)
    }
}
