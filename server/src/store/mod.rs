//! Server storage: the data-access traits every other layer uses, with two engines as equal
//! siblings that implement them — `sqlite/` (the embedded default: one SQLite file in the data
//! folder) and `pg/` (PostgreSQL, shared by any number of server instances). `sql.rs` holds the
//! SQL text both engines run. Nothing here decides a rule: engines read and write, and apply the
//! rules of `crate::domain` where a write depends on one.

pub mod pg;
pub mod sql;
pub mod sqlite;

use crate::blobs::BlobStore;
use crate::blobs::StagingKey;
use crate::error::ServerResult;
use crate::model::*;
use fenlei_core::community::Community;
use fenlei_core::inspection::{Inspection, InspectionDoc, InspectionStatus};
use fenlei_core::protocol::media::MediaRendition;
use fenlei_core::protocol::{Assignments, FeedEntry, ReferenceUpdate};
use fenlei_core::rectification::RectificationDoc;
use fenlei_core::scoring::ScoreCard;
use fenlei_core::store::{AppliedDocument, StandardInfo, StoredDocument};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

/// Users, their scopes, enrollment codes and devices.
pub trait AccountStore {
    fn add_user(&self, id: &str, name: &str, role: Role) -> ServerResult<()>;
    fn user(&self, id: &str) -> ServerResult<Option<User>>;
    fn add_scope(&self, user_id: &str, kind: ScopeKind, value: &str) -> ServerResult<()>;
    fn scope(&self, user: &User) -> ServerResult<Assignments>;
    fn add_enrollment_code(
        &self,
        user_id: &str,
        code_hash: &str,
        expires_ms: i64,
    ) -> ServerResult<()>;
    /// Binds the device to the code's user and stores the token's hash. `None` when the code
    /// is unknown, used or expired.
    fn redeem_enrollment(
        &self,
        code_hash: &str,
        device_id: &str,
        token_hash: &str,
        now_ms: i64,
    ) -> ServerResult<Option<User>>;
    fn device_by_token(&self, token_hash: &str) -> ServerResult<Option<DeviceAuth>>;
    /// Revokes a device's credential (a lost or stolen phone): its token stops working at once.
    /// `false` when no such device is enrolled. Enrolling it again with a new code restores it.
    fn revoke_device(&self, device_id: &str) -> ServerResult<bool>;
}

/// Communities, standards and the reference-data feed devices download.
pub trait ReferenceStore {
    fn import_communities_csv(&self, bytes: &[u8]) -> ServerResult<u32>;
    fn publish_standard(&self, source: &str) -> ServerResult<StandardInfo>;
    fn reference_after(
        &self,
        cursor: u64,
        user: &User,
        limit: usize,
    ) -> ServerResult<ReferenceUpdate>;
    fn community(&self, id: &str) -> ServerResult<Option<Community>>;
    /// The inspection's score under its own standard version, if the server holds it.
    fn score_of(&self, inspection: &Inspection) -> ServerResult<Option<ScoreCard>>;
    /// A published standard by id and exact version.
    fn published_standard(
        &self,
        id: &str,
        version: &str,
    ) -> ServerResult<Option<std::sync::Arc<fenlei_core::standard::Standard>>>;
}

/// A stored document as the sync handler reads it before merging a device's message into it,
/// parsed from ONE read ([`fenlei_core::store::StoredDocument`]): the checks compare the device's
/// result with the very document it is merged into. All `None` (the default) when the server
/// does not hold the document.
#[derive(Default)]
pub struct SyncView {
    /// Its change-feed position: the document holds what the position stands for.
    pub seq: Option<i64>,
    /// "inspection" or "rectification".
    pub kind: Option<String>,
    pub inspection: Option<InspectionDoc>,
    pub task: Option<RectificationDoc>,
    /// The same document as plain automerge, with the engine's merge actor.
    pub automerge: Option<automerge::AutoCommit>,
}

impl SyncView {
    /// Parses a stored document (strictly, behind the decoder guard) as `device_id`, once: the
    /// plain automerge copy is the typed document's own.
    pub fn parse(id: &str, stored: Option<StoredDocument>, device_id: &str) -> ServerResult<Self> {
        let Some(stored) = stored else {
            return Ok(SyncView::default());
        };
        let bytes = &stored.bytes;
        let mut view = SyncView {
            seq: stored.seq,
            ..SyncView::default()
        };
        view.automerge = Some(match stored.kind.as_str() {
            "inspection" => view
                .inspection
                .insert(InspectionDoc::load(id, bytes, device_id)?)
                .automerge()
                .clone(),
            "rectification" => view
                .task
                .insert(RectificationDoc::load(id, bytes, device_id)?)
                .automerge()
                .clone(),
            _ => {
                let actor = fenlei_core::docrules::actor_of(device_id)?;
                fenlei_core::guard::load_automerge(id, bytes)?.with_actor(actor)
            }
        });
        view.kind = Some(stored.kind);
        Ok(view)
    }
}

/// Automerge documents (inspections and rectification tasks), the change feed, and the
/// supervisor actions that write documents (review, task decisions, rule-opened tasks).
pub trait DocumentStore {
    /// The actor this engine opens documents with to merge (never one a device may hold:
    /// `actors::device_id_refusal`).
    fn opening_actor(&self) -> String {
        crate::actors::MERGE_ACTOR.to_string()
    }
    /// What the sync handler needs of a stored document, read in one snapshot.
    fn sync_view(&self, id: &str) -> ServerResult<SyncView>;
    fn load_document(&self, id: &str) -> ServerResult<Option<InspectionDoc>>;
    fn apply_documents(&self, batch: &[(String, Vec<u8>)]) -> ServerResult<Vec<AppliedDocument>>;
    /// Documents readable by `auth` changed after `after`; the next cursor; whether more follow.
    fn feed_after(
        &self,
        auth: &DeviceAuth,
        after: i64,
        limit: usize,
    ) -> ServerResult<(Vec<FeedEntry>, i64, bool)>;

    /// A supervisor approves (`true`) or returns an inspection; its new status.
    fn review_inspection(
        &self,
        auth: &DeviceAuth,
        id: &str,
        approve: bool,
        comment: Option<&str>,
    ) -> ServerResult<InspectionStatus>;
    fn open_due_rectifications(&self, inspection_id: &str) -> ServerResult<Vec<String>>;
    /// "inspection" or "rectification" for a stored document.
    fn document_kind(&self, id: &str) -> ServerResult<Option<String>>;
    /// The feed for protocol ≥ 2 (inspections and rectification tasks).
    fn feed_with_tasks(
        &self,
        auth: &DeviceAuth,
        after: i64,
        limit: usize,
    ) -> ServerResult<(Vec<FeedEntry>, i64, bool)>;
    fn decide_task(
        &self,
        auth: &DeviceAuth,
        id: &str,
        approve: bool,
        comment: Option<&str>,
    ) -> ServerResult<TaskRow>;
}

/// Read-only queries of the supervisor API, bulletins and planning (scoped to the caller).
pub trait SupervisorQueries {
    fn list_inspections(
        &self,
        auth: &DeviceAuth,
        filter: &ListFilter,
    ) -> ServerResult<Vec<InspectionRow>>;
    fn score_history(
        &self,
        auth: &DeviceAuth,
        community_id: &str,
    ) -> ServerResult<Vec<InspectionRow>>;
    fn rankings(
        &self,
        auth: &DeviceAuth,
        by: ScopeKind,
        from_ms: i64,
        to_ms: i64,
    ) -> ServerResult<Vec<RankingRow>>;
    fn list_tasks(&self, auth: &DeviceAuth, filter: &TaskFilter) -> ServerResult<Vec<TaskRow>>;
    fn scope_communities(&self, auth: &DeviceAuth) -> ServerResult<Vec<ScopedCommunity>>;
    fn period_inspections(
        &self,
        auth: &DeviceAuth,
        from_ms: i64,
        to_ms: i64,
    ) -> ServerResult<Vec<PeriodInspection>>;
    fn last_visits(
        &self,
        auth: &DeviceAuth,
        to_ms: i64,
    ) -> ServerResult<Vec<(String, String, i64)>>;
    fn worst_findings(
        &self,
        auth: &DeviceAuth,
        from_ms: i64,
        to_ms: i64,
        limit: u32,
    ) -> ServerResult<Vec<Finding>>;
}

/// Tamper evidence (docs/tamper-evidence.md; logic in crate::chain): device keys, the
/// server's receipt key and the append-only chain.
pub trait ChainStore {
    /// Registers a device's Ed25519 public key (hex).
    fn set_device_key(&self, device_id: &str, public_key: &str) -> ServerResult<()>;
    fn device_key(&self, device_id: &str) -> ServerResult<Option<String>>;
    /// The server's receipt-signing key.
    fn server_key(&self) -> &ed25519_dalek::SigningKey;
    /// Appends a verified statement to the chain in one transaction, or returns the entry that
    /// already holds the same statement (a retried request).
    fn chain_append(
        &self,
        entry: crate::model::NewEntry<'_>,
    ) -> ServerResult<crate::model::ChainRow>;
    fn chain_entry(&self, index: u64) -> ServerResult<Option<crate::model::ChainRow>>;
    fn chain_rows_of(&self, inspection_id: &str) -> ServerResult<Vec<crate::model::ChainRow>>;
    /// The chain's length and its last entry's hash (GENESIS when empty).
    fn chain_head(&self) -> ServerResult<(u64, String)>;
}

/// Everything the server keeps: the sum of the storage traits, so handlers hold one
/// `Arc<dyn Storage>`. Blocking: handlers call it on tokio's blocking pool. Implemented by
/// [`SqliteStorage`] (the embedded default) and [`crate::store::pg::PgStorage`].
pub trait Storage:
    AccountStore
    + ReferenceStore
    + DocumentStore
    + SupervisorQueries
    + ChainStore
    + crate::store::MediaIndex
    + crate::store::DashboardStorage
    + Send
    + Sync
    + 'static
{
}

impl<T> Storage for T where
    T: AccountStore
        + ReferenceStore
        + DocumentStore
        + SupervisorQueries
        + ChainStore
        + crate::store::MediaIndex
        + crate::store::DashboardStorage
        + Send
        + Sync
        + 'static
{
}

/// The storage traits, for `use crate::store::traits::*;` where their methods are called.
pub mod traits {
    pub use super::{
        AccountStore, ChainStore, DocumentStore, ReferenceStore, Storage, SupervisorQueries,
    };
    pub use crate::store::DashboardStorage;
    pub use crate::store::MediaIndex;
}

/// Where the server keeps its data (docs/deploy.md).
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// The data folder: the SQLite database, the default blob folder and the SQLite mode's key.
    pub data_dir: PathBuf,
    /// `postgres://…`: PostgreSQL instead of the SQLite file in `data_dir`.
    pub database_url: Option<String>,
    /// Where blobs live (`blobs::open_blob_store`); default `data_dir/blobs`.
    pub blobs_url: Option<String>,
}

/// Opens the configured storage: PostgreSQL when a database URL is given, else the SQLite file.
pub fn open_storage(config: &StorageConfig) -> ServerResult<std::sync::Arc<dyn Storage>> {
    // The data folder holds the serve lock and port files in every mode, even when neither the
    // database nor the blobs live in it.
    crate::files::create_private_dir(&config.data_dir)?;
    let blobs = crate::blobs::open_blob_store(&config.data_dir, config.blobs_url.as_deref())?;
    Ok(match &config.database_url {
        Some(url) => std::sync::Arc::new(crate::store::pg::PgStorage::open(url, blobs)?),
        None => std::sync::Arc::new(sqlite::SqliteStorage::open_with_blobs(
            &config.data_dir,
            blobs,
        )?),
    })
}

/// What the media routes need from storage, beside [`crate::store::Storage`].
pub trait MediaIndex {
    fn blobs(&self) -> &dyn BlobStore;
    /// Documents `auth`'s user may read that reference `sha256`: inspections whose evidence and
    /// rectification tasks whose closure photos name it, each with its change-feed position.
    /// Those the user created or opened come first, then by id; at most
    /// [`MAX_REFERENCING_DOCUMENTS`].
    fn referencing_documents(
        &self,
        auth: &DeviceAuth,
        sha256: &str,
    ) -> ServerResult<Vec<(String, Option<i64>)>>;
    /// The other inspections whose evidence holds `sha256`: those `auth` may read (ids, sorted)
    /// and how many more exist outside the caller's scope.
    fn evidence_reuse(
        &self,
        auth: &DeviceAuth,
        sha256: &str,
        inspection_id: &str,
    ) -> ServerResult<(Vec<String>, u32)>;
    /// The blob kept as `rendition` of `sha256` under its own hash `blob`, if one is.
    fn media_blob(
        &self,
        sha256: &str,
        rendition: MediaRendition,
        blob: &str,
    ) -> ServerResult<Option<StoredBlob>>;
    /// When `device` proved it holds `blob` (uploaded bytes the server verified), if it did.
    fn proved_at(&self, device: &str, blob: &str) -> ServerResult<Option<i64>>;
    /// The blobs kept as `rendition` of `sha256` that `device` holds, with when it proved each,
    /// oldest first.
    fn held_blobs(
        &self,
        device: &str,
        sha256: &str,
        rendition: MediaRendition,
    ) -> ServerResult<Vec<(StoredBlob, i64)>>;
    /// Records a verified upload: the blob as `rendition` of `sha256` (a row already there
    /// stays), that `blob.device_id` holds it, and the end of that device's reservation for it.
    fn record_media_blob(&self, blob: &StoredBlob) -> ServerResult<()>;
    /// Opens (or refreshes) the reservation of an upload in progress: `total` bytes for `key`,
    /// counted against `user_id`'s quota. Changes nothing unless admitted.
    fn reserve_staging(
        &self,
        user_id: &str,
        key: &StagingKey,
        total: u64,
        limits: &MediaLimits,
    ) -> ServerResult<Admission>;
    /// Ends the reservation of `key` (completed, dropped, cancelled).
    fn release_staging(&self, key: &StagingKey) -> ServerResult<()>;
    /// Ends reservations untouched since `before_ms`; how many.
    fn sweep_reservations(&self, before_ms: i64) -> ServerResult<u64>;
}

/// What the dashboard keeps beyond [`Storage`]'s sync and API state: passwords, sessions and
/// the plot's overview. A supertrait of [`Storage`], so every engine provides it.
pub trait DashboardStorage {
    /// Stores a new password hash for `user_id`, lifts every lock on its name and ends its
    /// sessions.
    fn set_password(&self, user_id: &str, phc: &str, now_ms: i64) -> ServerResult<()>;
    fn password_record(&self, user_id: &str) -> ServerResult<Option<PasswordRecord>>;
    /// Until when `client` may not try to sign in as `name` (0 or a past time: it may now):
    /// `MAX_FAILURES` in a row on the name, or `CLIENT_MAX_FAILURES` on any names within
    /// `LOCKOUT_MS`. Known and unknown names alike.
    fn sign_in_blocked_until(&self, name: &str, client: &str, now_ms: i64) -> ServerResult<i64>;
    /// Counts a refused sign-in of `name` (known or not) from `client`; the `MAX_FAILURES`th in
    /// a row locks the name for that client for `LOCKOUT_MS`. Failures older than `LOCKOUT_MS`
    /// are forgotten.
    fn record_failed_sign_in(&self, name: &str, client: &str, now_ms: i64) -> ServerResult<()>;
    /// Creates a session after a good password (and clears the failures of the name at that
    /// client).
    fn create_session(
        &self,
        user_id: &str,
        client: &str,
        token_hash: &str,
        csrf_token: &str,
        now_ms: i64,
    ) -> ServerResult<WebSession>;
    /// The live session of a cookie's hash (expired, idle or no-longer-allowed ones are deleted).
    fn session_by_token(&self, token_hash: &str, now_ms: i64) -> ServerResult<Option<WebSession>>;
    fn delete_session(&self, token_hash: &str) -> ServerResult<()>;
    /// Communities `auth` may read, with coordinates and their latest submitted/approved score.
    fn communities_overview(&self, auth: &DeviceAuth) -> ServerResult<Vec<CommunityOverview>>;
    /// The items of a standard version (empty if the server does not hold it).
    fn standard_items(&self, id: &str, version: &str) -> ServerResult<Vec<ItemTitle>>;
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
