//! Dashboard passwords, sessions and overview on PostgreSQL.

use super::{PgStorage, not_yet};
use crate::error::ServerResult;
use crate::session::{CommunityOverview, ItemTitle, PasswordRecord, WebSession};
use crate::storage::DeviceAuth;

impl crate::session::DashboardStorage for PgStorage {
    fn set_password(&self, _user_id: &str, _phc: &str, _now_ms: i64) -> ServerResult<()> {
        Err(not_yet("set_password"))
    }
    fn password_record(&self, _user_id: &str) -> ServerResult<Option<PasswordRecord>> {
        Err(not_yet("password_record"))
    }
    fn record_failed_sign_in(&self, _user_id: &str, _now_ms: i64) -> ServerResult<()> {
        Err(not_yet("record_failed_sign_in"))
    }
    fn create_session(
        &self,
        _user_id: &str,
        _token_hash: &str,
        _csrf_token: &str,
        _now_ms: i64,
    ) -> ServerResult<WebSession> {
        Err(not_yet("create_session"))
    }
    fn session_by_token(
        &self,
        _token_hash: &str,
        _now_ms: i64,
    ) -> ServerResult<Option<WebSession>> {
        Err(not_yet("session_by_token"))
    }
    fn delete_session(&self, _token_hash: &str) -> ServerResult<()> {
        Err(not_yet("delete_session"))
    }
    fn communities_overview(&self, _auth: &DeviceAuth) -> ServerResult<Vec<CommunityOverview>> {
        Err(not_yet("communities_overview"))
    }
    fn standard_items(&self, _id: &str, _version: &str) -> ServerResult<Vec<ItemTitle>> {
        Err(not_yet("standard_items"))
    }
}
