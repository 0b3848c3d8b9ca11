//! Automerge documents, the change feed, the projection, and the supervisor actions that
//! write documents (review, task decisions, rule-opened tasks) on PostgreSQL.

use super::{PgStorage, not_yet};
use crate::error::ServerResult;
use crate::storage::*;
use crate::supervision::TaskRow;
use fenlei_core::inspection::{InspectionDoc, InspectionStatus};
use fenlei_core::rectification::RectificationDoc;
use fenlei_core::store::AppliedDocument;
use fenlei_core::sync::protocol::FeedEntry;

impl crate::storage::DocumentStore for PgStorage {
    fn load_document(&self, _id: &str) -> ServerResult<Option<InspectionDoc>> {
        Err(not_yet("load_document"))
    }
    fn document_seq(&self, _id: &str) -> ServerResult<Option<i64>> {
        Err(not_yet("document_seq"))
    }
    fn apply_documents(&self, _batch: &[(String, Vec<u8>)]) -> ServerResult<Vec<AppliedDocument>> {
        Err(not_yet("apply_documents"))
    }
    fn feed_after(
        &self,
        _auth: &DeviceAuth,
        _after: i64,
        _limit: usize,
    ) -> ServerResult<(Vec<FeedEntry>, i64, bool)> {
        Err(not_yet("feed_after"))
    }

    fn review_inspection(
        &self,
        _auth: &DeviceAuth,
        _id: &str,
        _approve: bool,
        _comment: Option<&str>,
    ) -> ServerResult<InspectionStatus> {
        Err(not_yet("review_inspection"))
    }
    fn open_due_rectifications(&self, _inspection_id: &str) -> ServerResult<Vec<String>> {
        Err(not_yet("open_due_rectifications"))
    }
    fn document_kind(&self, _id: &str) -> ServerResult<Option<String>> {
        Err(not_yet("document_kind"))
    }
    fn load_automerge(&self, _id: &str) -> ServerResult<Option<automerge::AutoCommit>> {
        Err(not_yet("load_automerge"))
    }
    fn load_task(&self, _id: &str) -> ServerResult<Option<RectificationDoc>> {
        Err(not_yet("load_task"))
    }
    fn feed_with_tasks(
        &self,
        _auth: &DeviceAuth,
        _after: i64,
        _limit: usize,
    ) -> ServerResult<(Vec<FeedEntry>, i64, bool)> {
        Err(not_yet("feed_with_tasks"))
    }
    fn decide_task(
        &self,
        _auth: &DeviceAuth,
        _id: &str,
        _approve: bool,
        _comment: Option<&str>,
    ) -> ServerResult<TaskRow> {
        Err(not_yet("decide_task"))
    }
}
