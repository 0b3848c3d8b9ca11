//! Users, scopes, enrollment codes and devices on PostgreSQL.

use super::conn::Sql;
use super::{PgStorage, log_reference};
use crate::error::{ServerError, ServerResult};
use crate::model::*;
use fenlei_core::protocol::Assignments;
use postgres::Row;

fn user_row(r: &Row) -> User {
    User {
        id: r.get(0),
        name: r.get(1),
        role: Role::parse(r.get(2)).unwrap_or(Role::Inspector),
        scope_epoch: r.get(3),
    }
}

/// The user's scope entries, read on `client` (a transaction's snapshot or a plain connection).
pub(super) fn scope_of(client: &mut impl Sql, user: &User) -> ServerResult<Assignments> {
    let mut out = Assignments {
        user_id: user.id.clone(),
        role: user.role.as_str().into(),
        ..Default::default()
    };
    for r in client.query(
        "SELECT kind, value FROM user_scopes WHERE user_id = $1 ORDER BY kind, value",
        &[&user.id],
    )? {
        let value: String = r.get(1);
        match r.get::<_, &str>(0) {
            "community" => out.communities.push(value),
            "street" => out.streets.push(value),
            _ => out.districts.push(value),
        }
    }
    Ok(out)
}

impl crate::store::AccountStore for PgStorage {
    fn add_user(&self, id: &str, name: &str, role: Role) -> ServerResult<()> {
        if id.trim().is_empty() {
            return Err(ServerError::BadRequest("user id must not be empty".into()));
        }
        self.client()?.execute(
            "INSERT INTO users (id, name, role) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, role = excluded.role,
                 scope_epoch = users.scope_epoch + 1",
            &[&id, &name, &role.as_str()],
        )?;
        Ok(())
    }

    fn user(&self, id: &str) -> ServerResult<Option<User>> {
        let row = self.client()?.query_opt(
            "SELECT id, name, role, scope_epoch FROM users WHERE id = $1",
            &[&id],
        )?;
        Ok(row.as_ref().map(user_row))
    }

    fn add_scope(&self, user_id: &str, kind: ScopeKind, value: &str) -> ServerResult<()> {
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        // Locks the user's row: scope changes of one user are serialised across instances.
        let n = tx.execute(
            "UPDATE users SET scope_epoch = scope_epoch + 1 WHERE id = $1",
            &[&user_id],
        )?;
        if n == 0 {
            return Err(ServerError::NotFound(format!("no user {user_id}")));
        }
        tx.execute(
            "INSERT INTO user_scopes (user_id, kind, value) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
            &[&user_id, &kind.as_str(), &value],
        )?;
        log_reference(&mut tx, "assignments", &[user_id])?;
        tx.commit()?;
        Ok(())
    }

    fn scope(&self, user: &User) -> ServerResult<Assignments> {
        scope_of(&mut *self.client()?, user)
    }

    fn add_enrollment_code(
        &self,
        user_id: &str,
        code_hash: &str,
        expires_ms: i64,
    ) -> ServerResult<()> {
        // One statement: the user must exist when the code is written (no check-then-insert).
        let n = self.client()?.execute(
            "INSERT INTO enrollment_codes (code_hash, user_id, expires_at)
             SELECT $1, id, $3 FROM users WHERE id = $2",
            &[&code_hash, &user_id, &expires_ms],
        )?;
        if n == 0 {
            return Err(ServerError::NotFound(format!("no user {user_id}")));
        }
        Ok(())
    }

    fn redeem_enrollment(
        &self,
        code_hash: &str,
        device_id: &str,
        token_hash: &str,
        now_ms: i64,
    ) -> ServerResult<Option<User>> {
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        // Marks the code used in the statement that checks it, so two instances redeeming the
        // same code at once cannot both succeed (the second waits for the row, then sees it used).
        let user_id: Option<String> = tx
            .query_opt(
                "UPDATE enrollment_codes SET used_by = $2
                 WHERE code_hash = $1 AND used_by IS NULL AND expires_at > $3
                 RETURNING user_id",
                &[&code_hash, &device_id, &now_ms],
            )?
            .map(|r| r.get(0));
        let Some(user_id) = user_id else {
            return Ok(None);
        };
        let bound_to: Option<String> = tx
            .query_opt(
                "SELECT user_id FROM devices WHERE id = $1 FOR UPDATE",
                &[&device_id],
            )?
            .map(|r| r.get(0));
        if bound_to.as_deref().is_some_and(|u| u != user_id) {
            // Rolled back: the code stays unused.
            return Err(ServerError::Forbidden(
                "this device is enrolled for another user".into(),
            ));
        }
        // Re-enrolling a device (a lost token) replaces its credential.
        tx.execute(
            "INSERT INTO devices (id, user_id, token_hash, enrolled_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id) DO UPDATE SET token_hash = excluded.token_hash,
                 enrolled_at = excluded.enrolled_at, revoked = 0",
            &[&device_id, &user_id, &token_hash, &now_ms],
        )?;
        let user = user_row(&tx.query_one(
            "SELECT id, name, role, scope_epoch FROM users WHERE id = $1",
            &[&user_id],
        )?);
        tx.commit()?;
        Ok(Some(user))
    }

    fn device_by_token(&self, token_hash: &str) -> ServerResult<Option<DeviceAuth>> {
        let mut client = self.client()?;
        let Some(r) = client.query_opt(
            "SELECT d.id, u.id, u.name, u.role, u.scope_epoch FROM devices d
             JOIN users u ON u.id = d.user_id WHERE d.token_hash = $1 AND d.revoked = 0",
            &[&token_hash],
        )?
        else {
            return Ok(None);
        };
        let device_id: String = r.get(0);
        let user = User {
            id: r.get(1),
            name: r.get(2),
            role: Role::parse(r.get(3)).unwrap_or(Role::Inspector),
            scope_epoch: r.get(4),
        };
        let scope = scope_of(&mut *client, &user)?;
        Ok(Some(DeviceAuth {
            device_id,
            user,
            scope,
        }))
    }

    fn revoke_device(&self, device_id: &str) -> ServerResult<bool> {
        let n = self.client()?.execute(
            "UPDATE devices SET revoked = 1 WHERE id = $1",
            &[&device_id],
        )?;
        Ok(n > 0)
    }
}
