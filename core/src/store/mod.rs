//! The local store: one SQLite file (bundled SQLite, WAL) holding reference data, the automerge
//! document of every inspection (snapshot + incremental changes) and a relational projection
//! for queries, written in the same transaction as the document change.
//!
//! Concurrency: one writer connection behind a mutex; reads use their own connections from a
//! small pool and, thanks to WAL, never wait for the writer. Documents are loaded one at a time
//! (a small cache keeps the ones being edited), never all at once.

mod cache;
mod encrypt_plain;
mod encryption;
mod integrity;
mod limits;
mod media;
mod media_uploads;
mod projection;
mod queries;
mod rectification;
pub mod schema;
mod signing;
mod sync_state;
mod track;

pub use media::{AttachedMedia, EvidenceCheck, GeofenceStage, RecordedGeofenceCheck};
pub use media_uploads::{MediaUploadState, PendingUpload};
use projection::Touched;
pub use projection::{
    EvidenceRefRow, InspectionProjection, InspectionRow, ItemAnswerRow, SectionScoreRow,
    inspection_projection,
};
pub use queries::{InspectionFilter, InspectionSummary, NearbyCommunity, ScorePoint};
pub use rectification::{
    RectificationEvidenceRow, RectificationRow, RectificationSummary, rectifications_may_be_due,
    still_due, task_projection,
};
pub use signing::{ChainCheck, ChainState, PendingStatement, StoredReceipt};
pub use sync_state::{AppliedDocument, StoredDocument, SyncRecord};
pub use track::{MAX_TRACK_BATCH, PatrolTrack};

use crate::answer::ItemAnswer;
use crate::community::Community;
use crate::inspection::{
    AnswerConflict, EditContext, EvidenceRef, GpsFix, HistoryEntry, Inspection, InspectionDoc,
    InspectionStatus, NewInspection,
};
use crate::progress::{CancelToken, NoProgress, Progress};
use crate::scoring::{self, ScoreCard};
use crate::standard::Standard;
use crate::{CoreError, Result};
use cache::DocCache;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// Where "now" comes from; tests and simulations set their own.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> i64;
}

/// The wall clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

/// A standard held in the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct StandardInfo {
    pub id: String,
    pub version: String,
    pub name: String,
    pub item_count: u32,
}

impl StandardInfo {
    /// What a list of standards shows of one.
    pub fn of(standard: &Standard) -> StandardInfo {
        StandardInfo {
            id: standard.id.clone(),
            version: standard.version.clone(),
            name: standard.name.clone(),
            item_count: standard.items().count() as u32,
        }
    }
}

/// The refusal of a second import of a standard version with other content (versions are
/// immutable), for every storage engine.
pub fn standard_version_taken(info: &StandardInfo) -> CoreError {
    CoreError::InvalidStandard {
        item: None,
        problem: format!(
            "version {} of {} is already imported with different content; publish a new version",
            info.version, info.id
        ),
    }
}

/// Incremental changes of one document kept before they are folded into a new snapshot (by
/// every storage engine that keeps documents this way).
pub const COMPACT_AFTER_CHANGES: i64 = 64;
/// Read connections kept open for reuse.
const READER_POOL_SIZE: usize = 4;

pub struct Store {
    path: PathBuf,
    device_id: String,
    clock: Arc<dyn Clock>,
    writer: Mutex<Writer>,
    readers: Mutex<Vec<Connection>>,
    standards: Mutex<HashMap<(String, String), Arc<Standard>>>,
    /// The SQLCipher key every connection is opened with (none: a plain file).
    key: encryption::KeySlot,
}

struct Writer {
    conn: Connection,
    docs: DocCache,
}

/// How long a connection waits for another one's lock before giving up with "database is locked".
pub const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a lock leaves SQLite consistent (transactions roll back on drop),
    // so a poisoned lock is safe to take over.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Store {
    /// Opens (or creates) the store at `path`, migrating it to the current schema.
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        Store::open_with_clock(path, Arc::new(SystemClock))
    }

    pub fn open_with_clock(path: impl AsRef<Path>, clock: Arc<dyn Clock>) -> Result<Store> {
        Store::open_inner(path.as_ref(), clock, None)
    }

    fn open_inner(
        path: &Path,
        clock: Arc<dyn Clock>,
        key: Option<encryption::StoreKey>,
    ) -> Result<Store> {
        let path = path.to_path_buf();
        // A damaged file is kept aside and reported, never opened into (store/integrity.rs). The
        // key is applied first, so a wrong key is `WrongKey`, never taken for damage. (Opened
        // without its key, an encrypted file looks like random bytes — i.e. damaged — and is
        // renamed aside like one: kept, never deleted; docs/reliability.md.)
        integrity::check_at_open(&path, clock.now_ms(), &|c| {
            encryption::apply_key(c, key.as_ref())
        })?;
        let mut conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        encryption::apply_key(&conn, key.as_ref())?;
        // Another process may hold the write lock (the server's admin commands run beside the
        // serving process): wait for it, from the very first statement on.
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Every transaction on the writer takes the write lock when it begins. A deferred one
        // that read first and then wants to write while another connection writes gets
        // SQLITE_BUSY at once — SQLite cannot wait there without risking a deadlock, so the
        // busy timeout does not help.
        conn.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
        // WAL: readers never block on the writer. synchronous=FULL: a commit that returned
        // survives power loss too, not just an app crash — these scores decide money.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        schema::upgrade(&mut conn)?;
        let device_id = device_id(&conn, clock.as_ref())?;
        Ok(Store {
            path,
            device_id,
            clock,
            writer: Mutex::new(Writer {
                conn,
                docs: DocCache::new(16),
            }),
            readers: Mutex::new(Vec::new()),
            standards: Mutex::new(HashMap::new()),
            key: encryption::KeySlot::new(key),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// This install's device id: the automerge actor of every change made here. Created with
    /// the database and never reused by another install.
    pub fn device_id(&self) -> &str {
        &self.device_id
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    // ----- connections ---------------------------------------------------------------------

    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let epoch = self.key.epoch();
        let conn = match lock(&self.readers).pop() {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                self.key.apply(&c)?;
                c.busy_timeout(BUSY_TIMEOUT)?;
                c
            }
        };
        let result = f(&conn);
        let mut pool = lock(&self.readers);
        // A connection keyed before a re-key is dropped, not reused.
        if pool.len() < READER_POOL_SIZE && self.key.epoch() == epoch {
            pool.push(conn);
        }
        result
    }

    // ----- reference data ------------------------------------------------------------------

    /// Imports a community list (CSV, see docs/community-csv.md). All rows or none: a bad row
    /// is reported with its row number and nothing is written. Existing ids are updated.
    pub fn import_communities_csv(&self, bytes: &[u8]) -> Result<u32> {
        self.import_communities_csv_with(bytes, &NoProgress, &CancelToken::new())
    }

    /// [`Self::import_communities_csv`] with progress (rows written of rows parsed) and
    /// cancellation; a cancelled import writes nothing.
    pub fn import_communities_csv_with(
        &self,
        bytes: &[u8],
        progress: &dyn Progress,
        cancel: &CancelToken,
    ) -> Result<u32> {
        let communities = crate::community::parse_csv(bytes)?;
        cancel.check()?;
        self.upsert_communities_with(&communities, progress, cancel)
    }

    pub fn upsert_communities(&self, communities: &[Community]) -> Result<u32> {
        self.upsert_communities_with(communities, &NoProgress, &CancelToken::new())
    }

    fn upsert_communities_with(
        &self,
        communities: &[Community],
        progress: &dyn Progress,
        cancel: &CancelToken,
    ) -> Result<u32> {
        for c in communities {
            crate::geo::validate(c.location)?;
        }
        let total = communities.len() as u64;
        progress.on_progress(0, total);
        let mut w = lock(&self.writer);
        let tx = w.conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO communities (id, name, district, street, committee, address, lat, lon,
                     geofence_m, property_manager, households)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT(id) DO UPDATE SET name = excluded.name, district = excluded.district,
                     street = excluded.street, committee = excluded.committee, address = excluded.address,
                     lat = excluded.lat, lon = excluded.lon, geofence_m = excluded.geofence_m,
                     property_manager = excluded.property_manager, households = excluded.households",
            )?;
            for (n, c) in communities.iter().enumerate() {
                if n % 256 == 0 {
                    cancel.check()?;
                    progress.on_progress(n as u64, total);
                }
                insert.execute(params![
                    c.id,
                    c.name,
                    c.district,
                    c.street,
                    c.committee,
                    c.address,
                    c.location.lat,
                    c.location.lon,
                    c.geofence_m,
                    c.property_manager,
                    c.households
                ])?;
            }
        }
        cancel.check()?;
        tx.commit()?;
        progress.on_progress(total, total);
        Ok(communities.len() as u32)
    }

    pub fn community(&self, id: &str) -> Result<Community> {
        self.read(|c| queries::community(c, id))?
            .ok_or_else(|| CoreError::UnknownCommunity(id.to_string()))
    }

    pub fn community_count(&self) -> Result<u64> {
        self.read(|c| {
            Ok(c.query_row("SELECT count(*) FROM communities", [], |r| {
                r.get::<_, i64>(0)
            })? as u64)
        })
    }

    /// Communities nearest a point, closest first. `at` may be in any coordinate system (a
    /// phone's GPS is WGS-84; a point picked on an Amap map is GCJ-02).
    pub fn nearest_communities(
        &self,
        at: crate::geo::LatLon,
        system: crate::geo::CoordSystem,
        limit: u32,
    ) -> Result<Vec<NearbyCommunity>> {
        let at = crate::geo::convert(at, system, crate::geo::CoordSystem::Wgs84)?;
        self.read(|c| queries::nearest_communities(c, at, limit))
    }

    /// Imports an evaluation standard file (TOML, see docs/standard-format.md). A version once
    /// imported is immutable: importing the same id and version with different content fails.
    pub fn import_standard(&self, source: &str) -> Result<StandardInfo> {
        let standard = Standard::from_toml_str(source)?;
        let info = StandardInfo::of(&standard);
        let w = lock(&self.writer);
        let existing: Option<String> = w
            .conn
            .query_row(
                "SELECT source FROM standards WHERE id = ?1 AND version = ?2",
                params![info.id, info.version],
                |r| r.get(0),
            )
            .optional()?;
        match existing {
            Some(s) if s == source => {}
            Some(_) => return Err(standard_version_taken(&info)),
            None => {
                w.conn.execute(
                    "INSERT INTO standards (id, version, name, source, imported_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![info.id, info.version, info.name, source, self.now_ms()],
                )?;
            }
        }
        lock(&self.standards).insert((info.id.clone(), info.version.clone()), Arc::new(standard));
        Ok(info)
    }

    /// A standard by id and exact version.
    pub fn standard(&self, id: &str, version: &str) -> Result<Arc<Standard>> {
        let key = (id.to_string(), version.to_string());
        if let Some(s) = lock(&self.standards).get(&key) {
            return Ok(s.clone());
        }
        let source: Option<String> = self.read(|c| {
            Ok(c.query_row(
                "SELECT source FROM standards WHERE id = ?1 AND version = ?2",
                params![id, version],
                |r| r.get(0),
            )
            .optional()?)
        })?;
        let source = source.ok_or_else(|| CoreError::UnknownStandard {
            id: id.into(),
            version: version.into(),
        })?;
        let standard = Arc::new(Standard::from_toml_str(&source)?);
        lock(&self.standards).insert(key, standard.clone());
        Ok(standard)
    }

    pub fn standards(&self) -> Result<Vec<StandardInfo>> {
        let rows: Vec<(String, String)> = self.read(|c| {
            let mut stmt = c.prepare("SELECT id, version FROM standards ORDER BY id, version")?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })?;
        rows.into_iter()
            .map(|(id, version)| {
                let s = self.standard(&id, &version)?;
                Ok(StandardInfo {
                    id,
                    version,
                    name: s.name.clone(),
                    item_count: s.items().count() as u32,
                })
            })
            .collect()
    }

    // ----- inspections ---------------------------------------------------------------------

    /// Starts an inspection under an exact standard version; returns its id.
    pub fn create_inspection(&self, new: &NewInspection, by: &str) -> Result<String> {
        self.community(&new.community_id)?;
        self.standard(&new.standard_id, &new.standard_version)?;
        let id = uuid::Uuid::now_v7().to_string();
        let now = self.now_ms();
        let mut doc = InspectionDoc::create(&id, new, &self.device_id, by, now)?;
        let mut w = lock(&self.writer);
        let snapshot = doc.save();
        let tx = w.conn.transaction()?;
        tx.execute(
            "INSERT INTO documents (id, kind, snapshot, updated_at) VALUES (?1, 'inspection', ?2, ?3)",
            params![id, snapshot, now],
        )?;
        let projected = self.project(&tx, &doc, now, None)?;
        tx.commit()?;
        w.docs.put(doc, Some(projected));
        Ok(id)
    }

    /// Records an item's answer after checking it against the inspection's standard.
    pub fn record_answer(
        &self,
        inspection_id: &str,
        answer: &ItemAnswer,
        ctx: &EditContext,
    ) -> Result<()> {
        let now = self.now_ms();
        self.edit(
            inspection_id,
            Touched::Answer(&answer.item_code),
            |doc, standard| {
                let standard = standard.ok_or_else(|| missing_standard(doc))?;
                scoring::validate_answer(standard, answer)?;
                doc.set_answer(answer, ctx, now)
            },
        )
    }

    pub fn clear_answer(
        &self,
        inspection_id: &str,
        item_code: &str,
        ctx: &EditContext,
    ) -> Result<()> {
        let now = self.now_ms();
        self.edit(inspection_id, Touched::Answer(item_code), |doc, _| {
            doc.clear_answer(item_code, ctx, now)
        })
    }

    /// Records a fix. The inspection's first fix also records the start geofence check.
    pub fn add_gps_fix(&self, inspection_id: &str, fix: &GpsFix, by: &str) -> Result<()> {
        let now = self.now_ms();
        self.edit_with(
            inspection_id,
            Touched::Header,
            |doc, _| doc.add_gps_fix(fix, by),
            |tx, doc| media::record_geofence(tx, doc, GeofenceStage::Start, now),
        )
    }

    /// Attaches a photo or voice note (by content hash) to an item of the inspection's standard.
    pub fn add_evidence(&self, inspection_id: &str, evidence: &EvidenceRef) -> Result<()> {
        self.edit(inspection_id, Touched::Evidence, |doc, standard| {
            let standard = standard.ok_or_else(|| missing_standard(doc))?;
            if standard.item(&evidence.item_code).is_none() {
                return Err(CoreError::UnknownItem {
                    standard: standard.id.clone(),
                    item: evidence.item_code.clone(),
                });
            }
            doc.add_evidence(evidence)
        })
    }

    pub fn remove_evidence(
        &self,
        inspection_id: &str,
        item_code: &str,
        sha256: &str,
        by: &str,
    ) -> Result<()> {
        let now = self.now_ms();
        self.edit(inspection_id, Touched::Evidence, |doc, _| {
            doc.remove_evidence(item_code, sha256, by, now)
        })
    }

    /// Submit, approve, return (with a comment) or resubmit.
    pub fn set_status(
        &self,
        inspection_id: &str,
        to: InspectionStatus,
        ctx: &EditContext,
        comment: Option<&str>,
    ) -> Result<()> {
        let now = self.now_ms();
        // A submission records the geofence check with the latest fix, in the same transaction.
        self.edit_with(
            inspection_id,
            Touched::Header,
            |doc, _| doc.set_status(to, ctx, comment, now),
            |tx, doc| match to {
                InspectionStatus::Submitted => {
                    media::record_geofence(tx, doc, GeofenceStage::Submit, now)
                }
                _ => Ok(()),
            },
        )
    }

    /// [`Self::set_status`] made by another actor than this store's device: the server records
    /// a supervisor's review with an actor of its own for that supervisor (docs/review.md), so
    /// the change syncs and merges like any device's. The actor is restored afterwards.
    pub fn set_status_as(
        &self,
        inspection_id: &str,
        device_id: &str,
        to: InspectionStatus,
        ctx: &EditContext,
        comment: Option<&str>,
    ) -> Result<()> {
        crate::docrules::actor_of(device_id)?;
        let now = self.now_ms();
        let own = self.device_id.clone();
        self.edit_with(
            inspection_id,
            Touched::Header,
            |doc, _| {
                doc.set_device(device_id)?;
                let done = doc.set_status(to, ctx, comment, now);
                doc.set_device(&own)?;
                done
            },
            |_, _| Ok(()),
        )
    }

    /// Runs one edit: loads the document (or takes it from the cache), applies `f`, and
    /// persists the change and the projection in one transaction. If anything fails, the
    /// cached copy is dropped so memory never runs ahead of the database.
    fn edit(
        &self,
        id: &str,
        touched: Touched<'_>,
        f: impl FnOnce(&mut InspectionDoc, Option<&Standard>) -> Result<()>,
    ) -> Result<()> {
        self.edit_with(id, touched, f, |_, _| Ok(()))
    }

    /// [`Self::edit`] that also runs `also` on the edited document inside the same transaction
    /// (rows that must commit or roll back together with the document change).
    fn edit_with(
        &self,
        id: &str,
        touched: Touched<'_>,
        f: impl FnOnce(&mut InspectionDoc, Option<&Standard>) -> Result<()>,
        also: impl FnOnce(&Connection, &InspectionDoc) -> Result<()>,
    ) -> Result<()> {
        let mut w = lock(&self.writer);
        let (mut doc, previous) = match w.docs.take(id) {
            Some(cached) => (cached.doc, cached.projected),
            None => (load_doc(&w.conn, id, &self.device_id)?, None),
        };
        let (standard_id, standard_version) = doc.pinned_standard();
        let standard = self.standard(&standard_id, &standard_version).ok();
        f(&mut doc, standard.as_deref())?;
        let bytes = doc.save_incremental();
        let now = self.now_ms();
        let projected = (|| -> Result<projection::Projected> {
            let tx = w.conn.transaction()?;
            let changes = append_change(&tx, id, &bytes, now)?;
            if changes >= COMPACT_AFTER_CHANGES {
                compact_doc(&tx, id, &mut doc, now)?;
            }
            let projected = projection::write(
                &tx,
                &doc,
                standard.as_deref(),
                now,
                previous.as_ref(),
                touched,
            )?;
            also(&tx, &doc)?;
            tx.commit()?;
            Ok(projected)
        })()?;
        w.docs.put(doc, Some(projected));
        Ok(())
    }

    /// Rewrites a document's projection rows, scored under its pinned standard when this store
    /// has it.
    fn project(
        &self,
        conn: &Connection,
        doc: &InspectionDoc,
        now: i64,
        previous: Option<&projection::Projected>,
    ) -> Result<projection::Projected> {
        let (id, version) = doc.pinned_standard();
        let standard = self.standard(&id, &version).ok();
        projection::write(
            conn,
            doc,
            standard.as_deref(),
            now,
            previous,
            Touched::Everything,
        )
    }

    /// The whole inspection: answers, GPS, evidence, workflow events, conflicts.
    pub fn inspection(&self, id: &str) -> Result<Inspection> {
        self.read(|c| load_doc(c, id, &self.device_id))?.read()
    }

    /// Every change to the inspection: who, which device, when, what.
    pub fn history(&self, id: &str) -> Result<Vec<HistoryEntry>> {
        Ok(self.read(|c| load_doc(c, id, &self.device_id))?.history())
    }

    pub fn conflicts(&self, id: &str) -> Result<Vec<AnswerConflict>> {
        Ok(self.read(|c| load_doc(c, id, &self.device_id))?.conflicts())
    }

    /// The inspection's score under the standard version it is pinned to.
    pub fn score(&self, id: &str) -> Result<ScoreCard> {
        self.score_inspection(&self.inspection(id)?)
    }

    /// An inspection already read, scored under the standard version it is pinned to.
    pub fn score_inspection(&self, inspection: &Inspection) -> Result<ScoreCard> {
        let standard = self.standard(&inspection.standard_id, &inspection.standard_version)?;
        Ok(scoring::score(&standard, &inspection.item_answers()))
    }

    /// The inspection's answers scored under another standard version, for comparison. The
    /// inspection stays pinned to its own version.
    pub fn rescore(&self, id: &str, standard_id: &str, version: &str) -> Result<ScoreCard> {
        let inspection = self.inspection(id)?;
        let standard = self.standard(standard_id, version)?;
        Ok(scoring::score(&standard, &inspection.item_answers()))
    }

    // ----- documents (for sync) -----------------------------------------------------------

    /// The document's full bytes (a compact automerge save).
    pub fn document_bytes(&self, id: &str) -> Result<Vec<u8>> {
        Ok(self.read(|c| load_doc(c, id, &self.device_id))?.save())
    }

    /// Merges document bytes received from another device or the server (a whole document or
    /// incremental changes). A document not seen before is stored as received. Bytes that do not
    /// decode to a valid inspection are refused and nothing changes.
    pub fn apply_document_bytes(&self, id: &str, bytes: &[u8]) -> Result<()> {
        // A batch of one: the same checks, merge, compaction and projection as a sync batch.
        let applied = self.apply_documents(&[(id.to_string(), bytes.to_vec())])?;
        match applied.into_iter().next().and_then(|a| a.error) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Folds every document's incremental changes into a fresh snapshot.
    pub fn compact(&self) -> Result<u64> {
        let mut w = lock(&self.writer);
        let ids: Vec<String> = {
            let mut stmt = w
                .conn
                .prepare("SELECT DISTINCT doc_id FROM document_changes")?;
            stmt.query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?
        };
        let now = self.now_ms();
        for id in &ids {
            w.docs.take(id);
            // Any kind: a compacted document is its whole save, whatever it holds.
            let snapshot = raw_doc(&w.conn, id)?.save();
            let tx = w.conn.transaction()?;
            compact_bytes(&tx, id, &snapshot, now)?;
            tx.commit()?;
        }
        Ok(ids.len() as u64)
    }

    /// Rebuilds the whole relational projection from the documents alone, one document at a
    /// time, in one transaction. Returns the number of documents projected.
    pub fn rebuild_projection(&self) -> Result<u64> {
        let mut w = lock(&self.writer);
        w.docs.clear();
        let now = self.now_ms();
        let tx = w.conn.transaction()?;
        tx.execute_batch("DELETE FROM inspections; DELETE FROM rectifications;")?;
        let mut count = 0u64;
        let task_ids: Vec<String> = {
            let mut stmt = tx.prepare("SELECT id FROM documents WHERE kind = 'rectification'")?;
            stmt.query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?
        };
        for id in &task_ids {
            let doc = rectification::load_task(&tx, id, &self.device_id)?;
            rectification::project(&tx, &doc, now)?;
            count += 1;
        }
        let mut after = String::new();
        // Walk the documents in id order in pages, so memory holds one page of ids at most.
        loop {
            let ids: Vec<String> = {
                let mut stmt = tx.prepare_cached(
                    "SELECT id FROM documents WHERE kind = 'inspection' AND id > ?1 ORDER BY id LIMIT 256",
                )?;
                stmt.query_map([&after], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?
            };
            let Some(last) = ids.last() else { break };
            after = last.clone();
            for id in &ids {
                let doc = load_doc(&tx, id, &self.device_id)?;
                self.project(&tx, &doc, now, None)?;
                count += 1;
            }
        }
        tx.commit()?;
        Ok(count)
    }

    // ----- queries -------------------------------------------------------------------------

    /// Inspections matching the filter, newest first.
    pub fn list_inspections(&self, filter: &InspectionFilter) -> Result<Vec<InspectionSummary>> {
        self.read(|c| queries::list_inspections(c, filter))
    }

    /// The community's latest scored (submitted or approved) inspection.
    pub fn latest_score(&self, community_id: &str) -> Result<Option<ScorePoint>> {
        Ok(self.score_trend(community_id, 1)?.into_iter().next())
    }

    /// The community's scores over time, newest first (submitted and approved inspections).
    pub fn score_trend(&self, community_id: &str, limit: u32) -> Result<Vec<ScorePoint>> {
        self.read(|c| queries::score_trend(c, community_id, limit))
    }
}

fn missing_standard(doc: &InspectionDoc) -> CoreError {
    match doc.read() {
        Ok(i) => CoreError::UnknownStandard {
            id: i.standard_id,
            version: i.standard_version,
        },
        Err(e) => e,
    }
}

/// Reads the install's device id, creating it on first open.
fn device_id(conn: &Connection, clock: &dyn Clock) -> Result<String> {
    let existing: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'device_id'", [], |r| {
            r.get(0)
        })
        .optional()?;
    if let Some(id) = existing {
        return Ok(id);
    }
    let id = uuid::Uuid::new_v4().to_string();
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('device_id', ?1)",
        params![id],
    )?;
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('created_at', ?1)",
        params![clock.now_ms().to_string()],
    )?;
    Ok(id)
}

/// A stored document's bytes: its snapshot followed by the incremental changes saved after it.
fn stored_bytes(conn: &Connection, id: &str) -> Result<Vec<u8>> {
    let snapshot: Option<Vec<u8>> = conn
        .query_row("SELECT snapshot FROM documents WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .optional()?;
    let mut bytes = snapshot.ok_or_else(|| CoreError::UnknownInspection(id.to_string()))?;
    let mut stmt =
        conn.prepare_cached("SELECT bytes FROM document_changes WHERE doc_id = ?1 ORDER BY seq")?;
    let mut rows = stmt.query([id])?;
    while let Some(row) = rows.next()? {
        bytes.extend_from_slice(row.get_ref(0)?.as_blob().map_err(rusqlite::Error::from)?);
    }
    Ok(bytes)
}

/// Loads an inspection document from its snapshot and the incremental changes saved after it.
fn load_doc(conn: &Connection, id: &str, device_id: &str) -> Result<InspectionDoc> {
    InspectionDoc::load(id, &stored_bytes(conn, id)?, device_id)
}

/// Any stored document as plain automerge (inspections and rectification tasks alike), for
/// sync and compaction, which do not look inside.
fn raw_doc(conn: &Connection, id: &str) -> Result<automerge::AutoCommit> {
    crate::guard::load_automerge(id, &stored_bytes(conn, id)?)
}

/// Appends an incremental change; returns how many changes the document now has.
fn append_change(conn: &Connection, id: &str, bytes: &[u8], now: i64) -> Result<i64> {
    let seq: i64 = conn
        .prepare_cached("SELECT coalesce(max(seq), 0) + 1 FROM document_changes WHERE doc_id = ?1")?
        .query_row([id], |r| r.get(0))?;
    conn.prepare_cached("INSERT INTO document_changes (doc_id, seq, bytes) VALUES (?1, ?2, ?3)")?
        .execute(params![id, seq, bytes])?;
    conn.prepare_cached("UPDATE documents SET updated_at = ?2 WHERE id = ?1")?
        .execute(params![id, now])?;
    Ok(seq)
}

/// Replaces the snapshot with a full save and drops the folded-in changes.
fn compact_doc(conn: &Connection, id: &str, doc: &mut InspectionDoc, now: i64) -> Result<()> {
    compact_bytes(conn, id, &doc.save(), now)
}

fn compact_bytes(conn: &Connection, id: &str, snapshot: &[u8], now: i64) -> Result<()> {
    conn.execute(
        "UPDATE documents SET snapshot = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, snapshot, now],
    )?;
    conn.execute("DELETE FROM document_changes WHERE doc_id = ?1", [id])?;
    Ok(())
}
