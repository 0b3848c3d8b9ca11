//! The supervisor API's read-only queries on PostgreSQL.

use super::{PgStorage, not_yet};
use crate::error::ServerResult;
use crate::storage::*;
use crate::supervision::{Finding, PeriodInspection, ScopedCommunity, TaskFilter, TaskRow};

impl crate::storage::SupervisorQueries for PgStorage {
    fn list_inspections(
        &self,
        _auth: &DeviceAuth,
        _filter: &ListFilter,
    ) -> ServerResult<Vec<InspectionRow>> {
        Err(not_yet("list_inspections"))
    }
    fn score_history(
        &self,
        _auth: &DeviceAuth,
        _community_id: &str,
    ) -> ServerResult<Vec<InspectionRow>> {
        Err(not_yet("score_history"))
    }
    fn rankings(
        &self,
        _auth: &DeviceAuth,
        _by: ScopeKind,
        _from_ms: i64,
        _to_ms: i64,
    ) -> ServerResult<Vec<RankingRow>> {
        Err(not_yet("rankings"))
    }
    fn list_tasks(&self, _auth: &DeviceAuth, _filter: &TaskFilter) -> ServerResult<Vec<TaskRow>> {
        Err(not_yet("list_tasks"))
    }
    fn scope_communities(&self, _auth: &DeviceAuth) -> ServerResult<Vec<ScopedCommunity>> {
        Err(not_yet("scope_communities"))
    }
    fn period_inspections(
        &self,
        _auth: &DeviceAuth,
        _from_ms: i64,
        _to_ms: i64,
    ) -> ServerResult<Vec<PeriodInspection>> {
        Err(not_yet("period_inspections"))
    }
    fn last_visits(
        &self,
        _auth: &DeviceAuth,
        _to_ms: i64,
    ) -> ServerResult<Vec<(String, String, i64)>> {
        Err(not_yet("last_visits"))
    }
    fn worst_findings(
        &self,
        _auth: &DeviceAuth,
        _from_ms: i64,
        _to_ms: i64,
        _limit: u32,
    ) -> ServerResult<Vec<Finding>> {
        Err(not_yet("worst_findings"))
    }
}
