//! Rectification tasks (整改) on the device: open a task, move it along its loop, attach
//! closure evidence, record a follow-up inspection, list a community's tasks. One delegation
//! per method; the records (Rectification, NewRectification, ClosureEvidence...) come from core.
//! Tasks sync with [`crate::FenleiSyncClient::sync`] like inspections.

use crate::error::{FenleiError, guard};
use crate::store::FenleiStore;
use fenlei_core::inspection::HistoryEntry;
use fenlei_core::rectification::{
    ClosureEvidence, NewRectification, Rectification, RectificationStatus,
};
use fenlei_core::store::RectificationSummary;
use std::sync::Arc;

type Result<T> = std::result::Result<T, FenleiError>;

/// The rectification tasks of a store. Every method blocks: call it off the UI thread.
#[derive(uniffi::Object)]
pub struct FenleiRectifications {
    store: Arc<FenleiStore>,
}

#[uniffi::export]
impl FenleiRectifications {
    #[uniffi::constructor]
    pub fn new(store: Arc<FenleiStore>) -> Arc<Self> {
        Arc::new(FenleiRectifications { store })
    }

    /// Opens a task (the inspector's choice); returns its id.
    pub fn open(&self, task: NewRectification, by: String) -> Result<String> {
        guard("rect_open", || {
            self.store.core().open_rectification(&task, &by)
        })
    }

    /// Moves a task: in_progress, submitted (needs the required evidence); closing and
    /// reopening are a supervisor's (the server refuses them from an inspector's device).
    #[uniffi::method(default(comment = None))]
    pub fn set_status(
        &self,
        id: String,
        to: RectificationStatus,
        by: String,
        comment: Option<String>,
    ) -> Result<()> {
        guard("rect_status", || {
            self.store
                .core()
                .set_rectification_status(&id, to, &by, comment.as_deref())
        })
    }

    /// Attaches closure evidence (a text, a photo by SHA-256, or both); `at_ms` 0 means now.
    pub fn add_closure_evidence(&self, id: String, evidence: ClosureEvidence) -> Result<()> {
        guard("rect_evidence", || {
            self.store.core().add_closure_evidence(&id, &evidence)
        })
    }

    /// A follow-up inspection (复查) of the task's community: links it, adds the "after"
    /// photos, and submits the task (rectified) or reopens it (not). Returns the new status.
    #[uniffi::method(default(note = None))]
    pub fn record_follow_up(
        &self,
        task_id: String,
        follow_up_inspection_id: String,
        rectified: bool,
        after_photos: Vec<String>,
        by: String,
        note: Option<String>,
    ) -> Result<RectificationStatus> {
        guard("rect_follow_up", || {
            self.store.core().record_follow_up(
                &task_id,
                &follow_up_inspection_id,
                rectified,
                &after_photos,
                &by,
                note.as_deref(),
            )
        })
    }

    pub fn get(&self, id: String) -> Result<Rectification> {
        guard("rect_get", || self.store.core().rectification(&id))
    }

    pub fn history(&self, id: String) -> Result<Vec<HistoryEntry>> {
        guard("rect_history", || {
            self.store.core().rectification_history(&id)
        })
    }

    /// A community's tasks, newest first; `pending_only`: those not closed.
    #[uniffi::method(default(pending_only = true))]
    pub fn of_community(
        &self,
        community_id: String,
        pending_only: bool,
    ) -> Result<Vec<Rectification>> {
        guard("rect_of_community", || {
            self.store
                .core()
                .rectifications_of_community(&community_id, pending_only)
        })
    }

    /// Every task held here (with its overdue flag), optionally of one status.
    #[uniffi::method(default(status = None))]
    pub fn list(&self, status: Option<RectificationStatus>) -> Result<Vec<RectificationSummary>> {
        guard("rect_list", || {
            self.store.core().list_rectifications(status)
        })
    }
}
