//! The store object apps hold: a thin handle over core's `Store`. Each method is one delegation
//! through [`guard`], which maps errors and catches panics.

use crate::error::{FenleiError, guard};
use crate::progress::{CancelHandle, ProgressBridge, ProgressListener};
use fenlei_core::answer::ItemAnswer;
use fenlei_core::community::Community;
use fenlei_core::geo::{CoordSystem, LatLon};
use fenlei_core::inspection::{
    AnswerConflict, EditContext, EvidenceRef, GpsFix, HistoryEntry, Inspection, InspectionStatus,
    NewInspection,
};
use fenlei_core::scoring::ScoreCard;
use fenlei_core::standard::Standard;
use fenlei_core::store::{
    InspectionFilter, InspectionSummary, NearbyCommunity, ScorePoint, StandardInfo, Store,
};
use std::sync::Arc;

type Result<T> = std::result::Result<T, FenleiError>;

/// One local store: a SQLite file in the app's files directory holding reference data
/// (communities, standards) and every inspection recorded on this device. Open it once per app
/// and share it; it is safe to use from several threads. Every method blocks: call it off the
/// UI thread (see docs/bindings.md).
#[derive(uniffi::Object)]
pub struct FenleiStore {
    pub(crate) inner: Store,
}

impl FenleiStore {
    /// The core store, for the other FFI objects (sync) that work on it.
    pub(crate) fn core(&self) -> &Store {
        &self.inner
    }
}

#[uniffi::export]
impl FenleiStore {
    /// Opens the store at `path` (a file path, e.g. `<filesDir>/fenlei.sqlite`), creating it and
    /// migrating it to the current schema as needed. The directory must exist.
    #[uniffi::constructor]
    pub fn open(path: String) -> Result<Arc<Self>> {
        guard("open", || {
            Ok(Arc::new(FenleiStore {
                inner: Store::open(&path)?,
            }))
        })
    }

    /// The file this store lives in.
    pub fn path(&self) -> String {
        self.inner.path().to_string_lossy().into_owned()
    }

    /// This install's device id (created with the store, never shared with another install).
    pub fn device_id(&self) -> String {
        self.inner.device_id().to_string()
    }

    // ----- reference data ------------------------------------------------------------------

    /// Imports a community list (CSV bytes, see docs/community-csv.md): all rows or none.
    /// Reports rows written of rows parsed; cancelling writes nothing. Returns the row count.
    #[uniffi::method(default(progress = None, cancel = None))]
    pub fn import_communities_csv(
        &self,
        csv: Vec<u8>,
        progress: Option<Arc<dyn ProgressListener>>,
        cancel: Option<Arc<CancelHandle>>,
    ) -> Result<u32> {
        let (progress, cancel) = (ProgressBridge(progress), CancelHandle::token(&cancel));
        guard("import_communities_csv", || {
            self.inner
                .import_communities_csv_with(&csv, &progress, &cancel)
        })
    }

    pub fn community(&self, id: String) -> Result<Community> {
        guard("community", || self.inner.community(&id))
    }

    pub fn community_count(&self) -> Result<u64> {
        guard("community_count", || self.inner.community_count())
    }

    /// Communities nearest a point given in any coordinate system, closest first.
    pub fn nearest_communities(
        &self,
        at: LatLon,
        system: CoordSystem,
        limit: u32,
    ) -> Result<Vec<NearbyCommunity>> {
        guard("nearest_communities", || {
            self.inner.nearest_communities(at, system, limit)
        })
    }

    /// Imports an evaluation standard (TOML text, see docs/standard-format.md). An imported
    /// version is immutable: the same id and version with other content is refused.
    pub fn import_standard(&self, toml: String) -> Result<StandardInfo> {
        guard("import_standard", || self.inner.import_standard(&toml))
    }

    /// The whole standard (sections, items, rules, grades): what a checklist screen draws.
    pub fn standard(&self, id: String, version: String) -> Result<Standard> {
        guard("standard", || {
            Ok(self.inner.standard(&id, &version)?.as_ref().clone())
        })
    }

    pub fn standards(&self) -> Result<Vec<StandardInfo>> {
        guard("standards", || self.inner.standards())
    }

    // ----- inspections ---------------------------------------------------------------------

    /// Starts an inspection under an exact standard version; returns its id.
    pub fn create_inspection(&self, new: NewInspection, by: String) -> Result<String> {
        guard("create_inspection", || {
            self.inner.create_inspection(&new, &by)
        })
    }

    /// Records (or replaces) an item's answer after checking it against the item's rule.
    pub fn record_answer(
        &self,
        inspection_id: String,
        answer: ItemAnswer,
        ctx: EditContext,
    ) -> Result<()> {
        guard("record_answer", || {
            self.inner.record_answer(&inspection_id, &answer, &ctx)
        })
    }

    pub fn clear_answer(
        &self,
        inspection_id: String,
        item_code: String,
        ctx: EditContext,
    ) -> Result<()> {
        guard("clear_answer", || {
            self.inner.clear_answer(&inspection_id, &item_code, &ctx)
        })
    }

    pub fn add_gps_fix(&self, inspection_id: String, fix: GpsFix, by: String) -> Result<()> {
        guard("add_gps_fix", || {
            self.inner.add_gps_fix(&inspection_id, &fix, &by)
        })
    }

    /// Attaches a photo or voice note (by content hash) to an item.
    pub fn add_evidence(&self, inspection_id: String, evidence: EvidenceRef) -> Result<()> {
        guard("add_evidence", || {
            self.inner.add_evidence(&inspection_id, &evidence)
        })
    }

    pub fn remove_evidence(
        &self,
        inspection_id: String,
        item_code: String,
        sha256: String,
        by: String,
    ) -> Result<()> {
        guard("remove_evidence", || {
            self.inner
                .remove_evidence(&inspection_id, &item_code, &sha256, &by)
        })
    }

    /// Submit, approve, return (with a comment) or resubmit.
    #[uniffi::method(default(comment = None))]
    pub fn set_status(
        &self,
        inspection_id: String,
        to: InspectionStatus,
        ctx: EditContext,
        comment: Option<String>,
    ) -> Result<()> {
        guard("set_status", || {
            self.inner
                .set_status(&inspection_id, to, &ctx, comment.as_deref())
        })
    }

    /// The whole inspection: answers, GPS fixes, evidence, workflow events, conflicts.
    pub fn inspection(&self, id: String) -> Result<Inspection> {
        guard("inspection", || self.inner.inspection(&id))
    }

    /// Every change to the inspection: who, which device, when, what.
    pub fn history(&self, id: String) -> Result<Vec<HistoryEntry>> {
        guard("history", || self.inner.history(&id))
    }

    /// Items set differently on several devices, with every candidate value.
    pub fn conflicts(&self, id: String) -> Result<Vec<AnswerConflict>> {
        guard("conflicts", || self.inner.conflicts(&id))
    }

    /// The score under the standard version the inspection is pinned to.
    pub fn score(&self, id: String) -> Result<ScoreCard> {
        guard("score", || self.inner.score(&id))
    }

    /// The inspection's answers scored under another standard version, for comparison.
    pub fn rescore(&self, id: String, standard_id: String, version: String) -> Result<ScoreCard> {
        guard("rescore", || {
            self.inner.rescore(&id, &standard_id, &version)
        })
    }

    // ----- queries -------------------------------------------------------------------------

    /// Inspections matching the filter, newest first.
    pub fn list_inspections(&self, filter: InspectionFilter) -> Result<Vec<InspectionSummary>> {
        guard("list_inspections", || self.inner.list_inspections(&filter))
    }

    /// The community's latest submitted or approved score, if any.
    pub fn latest_score(&self, community_id: String) -> Result<Option<ScorePoint>> {
        guard("latest_score", || self.inner.latest_score(&community_id))
    }

    /// The community's scores over time, newest first.
    pub fn score_trend(&self, community_id: String, limit: u32) -> Result<Vec<ScorePoint>> {
        guard("score_trend", || {
            self.inner.score_trend(&community_id, limit)
        })
    }

    // ----- documents and maintenance -------------------------------------------------------

    /// The inspection's automerge document (compact save), e.g. to hand to another device.
    pub fn document_bytes(&self, id: String) -> Result<Vec<u8>> {
        guard("document_bytes", || self.inner.document_bytes(&id))
    }

    /// Merges document bytes received from another device; invalid bytes change nothing.
    pub fn apply_document_bytes(&self, id: String, bytes: Vec<u8>) -> Result<()> {
        guard("apply_document_bytes", || {
            self.inner.apply_document_bytes(&id, &bytes)
        })
    }

    /// Rebuilds the query tables from the documents; returns the documents projected.
    pub fn rebuild_projection(&self) -> Result<u64> {
        guard("rebuild_projection", || self.inner.rebuild_projection())
    }

    /// Folds incremental changes into snapshots; returns the documents compacted.
    pub fn compact(&self) -> Result<u64> {
        guard("compact", || self.inner.compact())
    }
}
