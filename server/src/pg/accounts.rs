//! Users, scopes, enrollment codes and devices on PostgreSQL.

use super::{PgStorage, not_yet};
use crate::error::ServerResult;
use crate::storage::*;
use fenlei_core::sync::protocol::Assignments;

impl crate::storage::AccountStore for PgStorage {
    fn add_user(&self, _id: &str, _name: &str, _role: Role) -> ServerResult<()> {
        Err(not_yet("add_user"))
    }
    fn user(&self, id: &str) -> ServerResult<Option<User>> {
        let row = self.client()?.query_opt(
            "SELECT id, name, role, scope_epoch FROM users WHERE id = $1",
            &[&id],
        )?;
        Ok(row.map(|r| User {
            id: r.get(0),
            name: r.get(1),
            role: Role::parse(r.get(2)).unwrap_or(Role::Inspector),
            scope_epoch: r.get(3),
        }))
    }
    fn add_scope(&self, _user_id: &str, _kind: ScopeKind, _value: &str) -> ServerResult<()> {
        Err(not_yet("add_scope"))
    }
    fn scope(&self, _user: &User) -> ServerResult<Assignments> {
        Err(not_yet("scope"))
    }
    fn add_enrollment_code(
        &self,
        _user_id: &str,
        _code_hash: &str,
        _expires_ms: i64,
    ) -> ServerResult<()> {
        Err(not_yet("add_enrollment_code"))
    }
    fn redeem_enrollment(
        &self,
        _code_hash: &str,
        _device_id: &str,
        _token_hash: &str,
        _now_ms: i64,
    ) -> ServerResult<Option<User>> {
        Err(not_yet("redeem_enrollment"))
    }
    fn device_by_token(&self, _token_hash: &str) -> ServerResult<Option<DeviceAuth>> {
        Err(not_yet("device_by_token"))
    }
    fn revoke_device(&self, _device_id: &str) -> ServerResult<bool> {
        Err(not_yet("revoke_device"))
    }
}
