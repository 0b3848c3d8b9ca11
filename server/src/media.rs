//! Media routes (docs/media-sync.md): where an upload stands, resumable chunk upload, cancel,
//! and download with access checks. Bytes live in a [`BlobStore`]; which blobs are kept for which
//! evidence hash and rendition, which device proved it holds which blob, and the uploads in
//! progress are recorded by the storage ([`MediaIndex`]).
//!
//! The rules, stated once here and in docs/media-sync.md:
//!
//! - A *reference* to an evidence hash is an entry of a document: an inspection's evidence
//!   entry, or a rectification task's closure photo. Its *device* is the device that created the
//!   entry (the automerge actor of its map, checked at push time to be the pushing device), and
//!   it may *declare* the hash of its thumbnail (`thumb`) and upload rendition (`upload`).
//! - A device *holds* a blob once it uploaded the blob's bytes and the server verified them
//!   (`media_proofs`); a device that sends bytes the server already keeps proves it all the same,
//!   and no second copy is kept.
//! - **Upload**: a file is accepted for a hash only when a document the caller may write (the
//!   sync rule) references the hash, and for a thumbnail or upload rendition only with the blob
//!   that reference declares (a reference that declares none accepts its own device's).
//! - **Download**: a file is served only through a reference in a document the caller may read
//!   whose device holds that very blob: an original, when it uploaded the original; a rendition,
//!   when it uploaded the rendition its reference declares (or, declaring none, one it uploaded
//!   for the hash). So naming a hash in one's own document grants nothing, and no upload can
//!   change what another device's reference shows.
//! - Answers never depend on documents the caller may not read: a hash no readable document
//!   references is 403 whether or not its bytes exist; a readable reference without a servable
//!   blob is 404.
//! - Uploads in progress are staged per device and count against their user's staging quota
//!   ([`MediaLimits`]).

use crate::api::{Path, Query};
use crate::api::{Shared, authenticate, blocking};
use crate::blobs::{BlobStore, Finished, StagingKey};
use crate::error::{ServerError, ServerResult};
use crate::storage::{DeviceAuth, Storage};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use fenlei_core::sync::media_protocol::*;
use futures_util::StreamExt;
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::{Arc, LazyLock, Mutex};

/// A verified blob kept for an evidence hash and rendition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    pub sha256: String,
    pub rendition: MediaRendition,
    pub blob: String,
    pub bytes: u64,
    pub mime: String,
    /// The device that uploaded it first.
    pub device_id: String,
}

/// Limits on uploads in progress (`fenlei-server serve --staging-quota-mib …`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaLimits {
    /// Bytes a user's open uploads may declare in all (their `total`s, from the first request of
    /// each until it completes, fails its hash check, is cancelled or is swept).
    pub staging_quota_bytes: u64,
    /// Uploads a user may have open at once (over all their devices).
    pub max_open_uploads: u32,
    /// Uploads untouched for this long are dropped (bytes and reservation).
    pub staging_max_age: std::time::Duration,
}

impl Default for MediaLimits {
    fn default() -> Self {
        MediaLimits {
            staging_quota_bytes: 1 << 30,
            max_open_uploads: 32,
            staging_max_age: std::time::Duration::from_secs(14 * 86_400),
        }
    }
}

/// Whether an upload may stage bytes ([`MediaIndex::reserve_staging`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Admitted,
    /// The user's open uploads already declare `reserved` bytes; this one does not fit.
    OverQuota {
        reserved: u64,
    },
    /// The user already has `open` uploads open.
    TooManyOpen {
        open: u32,
    },
}

/// At most this many documents referencing one hash are read per request (the caller's own
/// first): a hash copied into thousands of documents cannot make one request load them all.
pub const MAX_REFERENCING_DOCUMENTS: usize = 64;

/// What the media routes need from storage, beside [`crate::storage::Storage`].
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

/// Drops uploads abandoned for longer than `limits.staging_max_age`: their staged bytes and
/// their reservations. Blocking.
pub fn sweep(storage: &dyn Storage, limits: &MediaLimits) -> ServerResult<(u64, u64)> {
    let files = storage.blobs().sweep_staging(limits.staging_max_age)?;
    let rows = storage
        .sweep_reservations(crate::storage::now() - limits.staging_max_age.as_millis() as i64)?;
    Ok((files, rows))
}

pub fn routes(limits: MediaLimits) -> Router<Shared> {
    Router::new()
        .route("/v1/media/status", post(status))
        .route(
            "/v1/media/{sha256}/{rendition}",
            axum::routing::put(upload).delete(cancel),
        )
        .route("/v1/media/{sha256}", get(download))
        .layer(Extension(limits))
}

fn media_error(status: StatusCode, error: &str, reason: String, offset: Option<u64>) -> Response {
    (
        status,
        axum::Json(MediaErrorBody {
            error: error.into(),
            reason,
            offset,
        }),
    )
        .into_response()
}

fn rendition_of(s: &str) -> ServerResult<MediaRendition> {
    MediaRendition::parse(s).ok_or_else(|| {
        ServerError::BadRequest(format!(
            "rendition must be thumb, upload or original, not {s:?}"
        ))
    })
}

fn check_hash(h: &str) -> ServerResult<()> {
    if is_sha256_hex(h) {
        Ok(())
    } else {
        Err(ServerError::BadRequest(
            "hashes must be 64 lower-case hex digits".into(),
        ))
    }
}

/// One reference to an evidence hash (see the module's rules).
#[derive(Debug, Clone)]
struct Reference {
    sha256: String,
    /// The device that created the entry; empty when it vouches for no device.
    device: String,
    thumb: Option<String>,
    upload: Option<String>,
}

impl Reference {
    /// The blob the reference declares for a rendition (`None`: it declares none).
    fn declared(&self, rendition: MediaRendition) -> Option<&str> {
        match rendition {
            MediaRendition::Thumb => self.thumb.as_deref(),
            MediaRendition::Upload => self.upload.as_deref(),
            MediaRendition::Original => Some(&self.sha256),
        }
    }

    /// Whether `device` may upload `blob` as `rendition` of the hash under this reference.
    fn accepts(&self, rendition: MediaRendition, blob: &str, device: &str) -> bool {
        match self.declared(rendition) {
            Some(declared) => declared == blob,
            None => !self.device.is_empty() && self.device == device,
        }
    }
}

/// The references readable by one caller, read once per request: each referencing document is
/// loaded once however many of its hashes the request names.
struct References<'a> {
    storage: &'a dyn Storage,
    auth: &'a DeviceAuth,
    documents: HashMap<String, Arc<Vec<Reference>>>,
    by_hash: HashMap<String, Vec<Reference>>,
}

/// The references of documents read lately, by id, with the change-feed position they were read
/// at: a document whose position has not moved holds the same references, so the thumbnails of
/// one inspection do not each parse it again. Any instance's write moves the position (it lives
/// in the database), so a hit is never stale.
/// Keyed by the storage (its address: one per server process, several in tests) and the id.
type CachedReferences = (Option<i64>, Arc<Vec<Reference>>);
static REFERENCE_CACHE: LazyLock<Mutex<HashMap<(usize, String), CachedReferences>>> =
    LazyLock::new(Default::default);
const REFERENCE_CACHE_MAX: usize = 20_000;

impl<'a> References<'a> {
    fn new(storage: &'a dyn Storage, auth: &'a DeviceAuth) -> Self {
        References {
            storage,
            auth,
            documents: HashMap::new(),
            by_hash: HashMap::new(),
        }
    }

    fn of(&mut self, sha256: &str) -> ServerResult<&[Reference]> {
        if !self.by_hash.contains_key(sha256) {
            let mut found = Vec::new();
            for (id, seq) in self.storage.referencing_documents(self.auth, sha256)? {
                if !self.documents.contains_key(&id) {
                    let refs = cached_references(self.storage, &id, seq)?;
                    self.documents.insert(id.clone(), refs);
                }
                found.extend(
                    self.documents[&id]
                        .iter()
                        .filter(|r| r.sha256 == sha256)
                        .cloned(),
                );
            }
            self.by_hash.insert(sha256.to_string(), found);
        }
        Ok(&self.by_hash[sha256])
    }
}

/// The references of document `id`, from the cache when it was read at feed position `seq`.
fn cached_references(
    storage: &dyn Storage,
    id: &str,
    seq: Option<i64>,
) -> ServerResult<Arc<Vec<Reference>>> {
    let key = (
        storage as *const dyn Storage as *const () as usize,
        id.to_string(),
    );
    if seq.is_some() {
        let cache = REFERENCE_CACHE.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, refs)) = cache.get(&key)
            && *at == seq
        {
            return Ok(refs.clone());
        }
    }
    let (at, refs) = document_references(storage, id)?;
    let refs = Arc::new(refs);
    if at.is_some() {
        let mut cache = REFERENCE_CACHE.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= REFERENCE_CACHE_MAX {
            cache.clear();
        }
        cache.insert(key, (at, refs.clone()));
    }
    Ok(refs)
}

/// Every reference one stored document holds, read from the document itself (the projection
/// only says which documents to read), with the feed position of the copy read.
fn document_references(
    storage: &dyn Storage,
    id: &str,
) -> ServerResult<(Option<i64>, Vec<Reference>)> {
    let view = storage.sync_view(id)?;
    Ok((view.seq, references_of(&view)?))
}

fn references_of(view: &crate::storage::SyncView) -> ServerResult<Vec<Reference>> {
    if let Some(doc) = &view.inspection {
        return Ok(doc
            .evidence()
            .into_iter()
            .map(|e| Reference {
                sha256: e.sha256,
                device: e.device_id,
                thumb: e.thumb,
                upload: e.upload,
            })
            .collect());
    }
    if let Some(task) = &view.task {
        return Ok(task
            .read()?
            .closure_evidence
            .into_iter()
            .filter_map(|e| {
                Some(Reference {
                    sha256: e.sha256?,
                    device: e.device_id,
                    thumb: e.thumb,
                    upload: e.upload,
                })
            })
            .collect());
    }
    Ok(Vec::new())
}

/// Which blob a download serves.
enum Pick {
    One(StoredBlob),
    None,
    /// Several, none vouched for by a device holding the original: the caller must choose.
    Ambiguous(Vec<String>),
}

/// The blob to serve: the one asked for (`want`) if granted; else the best grant from a device
/// that holds the original; else the one blob every grant agrees on. Never a guess between
/// renditions nobody has tied to the original.
fn pick(grants: Vec<Grant>, want: Option<&str>) -> Pick {
    if let Some(want) = want {
        return match grants.into_iter().find(|g| g.blob.blob == want) {
            Some(g) => Pick::One(g.blob),
            None => Pick::None,
        };
    }
    let mut blobs: Vec<String> = grants.iter().map(|g| g.blob.blob.clone()).collect();
    blobs.sort();
    blobs.dedup();
    match grants.into_iter().next() {
        None => Pick::None,
        Some(best) if best.device_holds_original || blobs.len() == 1 => Pick::One(best.blob),
        Some(_) => Pick::Ambiguous(blobs),
    }
}

/// A blob a caller may fetch through one of its readable references.
struct Grant {
    blob: StoredBlob,
    /// The reference's device also holds the original (the likeliest maker of the rendition).
    device_holds_original: bool,
    proved_at: i64,
}

/// What `rendition` of `sha256` the references let their reader fetch, the best first: from a
/// device that holds the original, then the earliest proved, then by blob hash.
fn grants(
    storage: &dyn Storage,
    refs: &[Reference],
    sha256: &str,
    rendition: MediaRendition,
) -> ServerResult<Vec<Grant>> {
    let mut out: Vec<Grant> = Vec::new();
    let mut devices_seen = HashSet::new();
    for r in refs.iter().filter(|r| !r.device.is_empty()) {
        let holds_original = storage.proved_at(&r.device, sha256)?.is_some();
        let mut candidates = Vec::new();
        match r.declared(rendition) {
            Some(blob) => {
                if let Some(at) = storage.proved_at(&r.device, blob)?
                    && let Some(kept) = storage.media_blob(sha256, rendition, blob)?
                {
                    candidates.push((kept, at));
                }
            }
            // A reference that declares no rendition (written before the fields existed): the
            // renditions its own device uploaded for the hash.
            None => {
                if devices_seen.insert(r.device.clone()) {
                    candidates = storage.held_blobs(&r.device, sha256, rendition)?;
                }
            }
        }
        for (blob, proved_at) in candidates {
            out.push(Grant {
                blob,
                device_holds_original: holds_original,
                proved_at,
            });
        }
    }
    out.sort_by(|a, b| {
        (!a.device_holds_original, a.proved_at, &a.blob.blob).cmp(&(
            !b.device_holds_original,
            b.proved_at,
            &b.blob.blob,
        ))
    });
    Ok(out)
}

/// Uploads in progress in this process: a shortcut that answers a second request for one file at
/// once. Not what keeps appends apart (the blob store does that, across processes too).
static ACTIVE: LazyLock<Mutex<HashSet<StagingKey>>> = LazyLock::new(Default::default);

struct ActiveUpload(StagingKey);

impl ActiveUpload {
    fn claim(key: &StagingKey) -> Option<ActiveUpload> {
        let mut set = ACTIVE.lock().unwrap_or_else(|p| p.into_inner());
        set.insert(key.clone()).then(|| ActiveUpload(key.clone()))
    }
}

impl Drop for ActiveUpload {
    fn drop(&mut self) {
        ACTIVE
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.0);
    }
}

async fn status(
    State(storage): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> ServerResult<Response> {
    let auth = authenticate(&storage, &headers).await?;
    let req: MediaStatusRequest = serde_json::from_slice(&body)
        .map_err(|e| ServerError::BadRequest(format!("malformed body: {e}")))?;
    if req.items.len() > MAX_STATUS_ITEMS {
        return Err(ServerError::BadRequest(format!(
            "at most {MAX_STATUS_ITEMS} items per request"
        )));
    }
    // Every hash is checked before anything is looked up.
    let keys = req
        .items
        .iter()
        .map(|i| StagingKey::for_device(&i.sha256, i.rendition, &i.blob, &auth.device_id))
        .collect::<ServerResult<Vec<_>>>()?;
    let answer = blocking(move || {
        let storage: &dyn Storage = &*storage;
        let mut refs = References::new(storage, &auth);
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let accepted = refs
                .of(&key.sha256)?
                .iter()
                .any(|r| r.accepts(key.rendition, &key.blob, &auth.device_id));
            let (state, offset) = if !accepted {
                (MediaState::NotReferenced, 0)
            } else if let Some(kept) = held_by_caller(storage, &key)? {
                (MediaState::Complete, kept.bytes)
            } else {
                // Only this device's own staging: another device's upload is none of its business.
                match storage.blobs().staged_len(&key)? {
                    0 => (MediaState::Absent, 0),
                    n => (MediaState::Partial, n),
                }
            };
            out.push(MediaItemStatus {
                sha256: key.sha256,
                rendition: key.rendition,
                blob: key.blob,
                state,
                offset,
            });
        }
        Ok(MediaStatusResponse { items: out })
    })
    .await?;
    Ok(axum::Json(answer).into_response())
}

/// The kept blob of `key` when the key's device holds it (has proved it); the blob is then
/// also recorded as the key's rendition of its hash if it was not yet (the same bytes kept for
/// another hash). `None`: the device has to send the bytes.
fn held_by_caller(storage: &dyn Storage, key: &StagingKey) -> ServerResult<Option<StoredBlob>> {
    if storage.proved_at(&key.device, &key.blob)?.is_none() {
        return Ok(None);
    }
    if let Some(kept) = storage.media_blob(&key.sha256, key.rendition, &key.blob)? {
        return Ok(Some(kept));
    }
    let Some(bytes) = storage.blobs().has(&key.blob)? else {
        return Ok(None);
    };
    if key.rendition == MediaRendition::Original {
        // An original's row is written with its proof; without one, have the bytes sent.
        return Ok(None);
    }
    let blob = StoredBlob {
        sha256: key.sha256.clone(),
        rendition: key.rendition,
        blob: key.blob.clone(),
        bytes,
        mime: "image/jpeg".into(),
        device_id: key.device.clone(),
    };
    storage.record_media_blob(&blob)?;
    Ok(Some(blob))
}

#[derive(Debug, Deserialize)]
struct UploadQuery {
    blob: Option<String>,
    offset: u64,
    total: u64,
}

/// The media type without parameters, lower-case.
fn mime_of(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

async fn upload(
    State(storage): State<Shared>,
    Extension(limits): Extension<MediaLimits>,
    headers: HeaderMap,
    Path((sha256, rendition)): Path<(String, String)>,
    Query(q): Query<UploadQuery>,
    body: Body,
) -> ServerResult<Response> {
    let auth = authenticate(&storage, &headers).await?;
    let rendition = rendition_of(&rendition)?;
    let blob = q.blob.clone().unwrap_or_else(|| sha256.clone());
    let key = StagingKey::for_device(&sha256, rendition, &blob, &auth.device_id)?;
    let mime = mime_of(&headers);
    let mime_ok = match rendition {
        MediaRendition::Original => ORIGINAL_TYPES.contains(&mime.as_str()),
        _ => mime == "image/jpeg",
    };
    if !mime_ok {
        return Ok(media_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_type",
            format!("{mime:?} is not accepted for a {}", rendition.as_str()),
            None,
        ));
    }
    if q.total == 0 || q.total > rendition.max_bytes() {
        return Ok(media_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "a {} must have 1 to {} bytes",
                rendition.as_str(),
                rendition.max_bytes()
            ),
            None,
        ));
    }
    let (s, a, k) = (storage.clone(), auth.clone(), key.clone());
    let (kept, staged) = blocking(move || {
        let storage: &dyn Storage = &*s;
        let accepted = References::new(storage, &a)
            .of(&k.sha256)?
            .iter()
            .any(|r| r.accepts(k.rendition, &k.blob, &a.device_id));
        if !accepted {
            return Err(ServerError::Forbidden(
                "no document you may write references this hash with this file (sync it first)"
                    .into(),
            ));
        }
        let kept = held_by_caller(storage, &k)?;
        let staged = match kept {
            Some(_) => 0,
            None => storage.blobs().staged_len(&k)?,
        };
        Ok((kept, staged))
    })
    .await?;
    if let Some(kept) = kept {
        return Ok(axum::Json(MediaUploadResponse {
            offset: kept.bytes,
            complete: true,
            blob: kept.blob,
        })
        .into_response());
    }
    // A per-process shortcut only: the blob store settles racing appends itself (also between
    // server instances sharing it), this just answers a second request in this process at once.
    let Some(claim) = ActiveUpload::claim(&key) else {
        return Ok(media_error(
            StatusCode::CONFLICT,
            "upload_in_progress",
            "another request is uploading this file".into(),
            Some(staged),
        ));
    };
    let claim = std::sync::Arc::new(claim);
    // Read again under the claim: a request that just finished may have moved it.
    let (s, k) = (storage.clone(), key.clone());
    let staged = blocking(move || s.blobs().staged_len(&k)).await?;
    if q.offset != staged || staged > q.total {
        return Ok(offset_mismatch(staged));
    }
    // The bytes this upload declares count against its user's staging quota until it ends.
    let (s, k, user, total) = (storage.clone(), key.clone(), auth.user.id.clone(), q.total);
    let admission = blocking(move || s.reserve_staging(&user, &k, total, &limits)).await?;
    match admission {
        Admission::Admitted => {}
        Admission::OverQuota { reserved } => {
            return Ok(media_error(
                StatusCode::INSUFFICIENT_STORAGE,
                "quota_exceeded",
                format!(
                    "your uploads in progress already hold {reserved} of {} bytes; finish or \
                     cancel them first",
                    limits.staging_quota_bytes
                ),
                Some(staged),
            ));
        }
        Admission::TooManyOpen { open } => {
            return Ok(media_error(
                StatusCode::INSUFFICIENT_STORAGE,
                "too_many_uploads",
                format!(
                    "you have {open} uploads in progress (at most {}); finish or cancel them first",
                    limits.max_open_uploads
                ),
                Some(staged),
            ));
        }
    }

    // The body is received by a task of its own: if the client goes away and this handler is
    // dropped, the bytes that arrived are still appended (a cut upload keeps what came).
    let received = tokio::spawn(receive(
        storage.clone(),
        key.clone(),
        staged,
        q.total,
        body,
        claim.clone(),
    ))
    .await
    .map_err(|e| ServerError::Internal(format!("upload task: {e}")))?;
    let received = match received {
        Ok(r) => r,
        Err(e) => {
            settle(&storage, &key).await?;
            return Err(e);
        }
    };
    let pos = match received {
        Received::Body(pos) => pos,
        Received::Cut => {
            settle(&storage, &key).await?;
            return Err(ServerError::BadRequest("request body cut short".into()));
        }
        Received::TooLarge(pos) => {
            settle(&storage, &key).await?;
            return Ok(media_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("more bytes than the declared total {}", q.total),
                Some(pos),
            ));
        }
        Received::NotJpeg => {
            settle(&storage, &key).await?;
            return Ok(media_error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_type",
                "a thumbnail or upload rendition must be a JPEG".into(),
                None,
            ));
        }
        Received::Overtaken => {
            let staged = settle(&storage, &key).await?;
            return Ok(offset_mismatch(staged));
        }
    };
    if pos < q.total {
        return Ok(axum::Json(MediaUploadResponse {
            offset: pos,
            complete: false,
            blob,
        })
        .into_response());
    }
    let (s, k, c) = (storage.clone(), key.clone(), claim.clone());
    let finished = blocking(move || {
        let _claim = c;
        let finished = match s.blobs().finish(&k) {
            // Another request (here or on another instance) finished or dropped it meanwhile.
            Err(ServerError::Conflict(_)) => return Ok(None),
            other => other?,
        };
        let outcome = match finished {
            // Verified: kept now, or already kept (then this upload proved possession only).
            // Recording it also ends the upload's reservation (one transaction).
            Finished::Stored(bytes) => {
                s.record_media_blob(&StoredBlob {
                    sha256: k.sha256.clone(),
                    rendition: k.rendition,
                    blob: k.blob.clone(),
                    bytes,
                    mime,
                    device_id: k.device.clone(),
                })?;
                Ok(bytes)
            }
            Finished::HashMismatch { actual } => {
                s.release_staging(&k)?;
                Err(actual)
            }
        };
        Ok(Some(outcome))
    })
    .await?;
    match finished {
        Some(Ok(bytes)) => Ok(axum::Json(MediaUploadResponse {
            offset: bytes,
            complete: true,
            blob: key.blob,
        })
        .into_response()),
        Some(Err(actual)) => Ok(media_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "hash_mismatch",
            format!(
                "the bytes hash to {actual}, not {}; they were dropped, send again from 0",
                key.blob
            ),
            Some(0),
        )),
        None => {
            let staged = settle(&storage, &key).await?;
            Ok(offset_mismatch(staged))
        }
    }
}

/// After a request that did not finish its upload: the staged length, and the reservation ended
/// when nothing is staged (no bytes arrived, or another request finished or dropped them).
async fn settle(storage: &Shared, key: &StagingKey) -> ServerResult<u64> {
    let (s, k) = (storage.clone(), key.clone());
    blocking(move || {
        let staged = s.blobs().staged_len(&k)?;
        if staged == 0 {
            s.release_staging(&k)?;
        }
        Ok(staged)
    })
    .await
}

/// `DELETE /v1/media/{sha256}/{rendition}?blob=`: drops the caller's own upload in progress of
/// that file (its staged bytes and its share of the quota). Kept blobs are never deleted.
async fn cancel(
    State(storage): State<Shared>,
    headers: HeaderMap,
    Path((sha256, rendition)): Path<(String, String)>,
    Query(q): Query<CancelQuery>,
) -> ServerResult<Response> {
    let auth = authenticate(&storage, &headers).await?;
    let rendition = rendition_of(&rendition)?;
    let blob = q.blob.unwrap_or_else(|| sha256.clone());
    let key = StagingKey::for_device(&sha256, rendition, &blob, &auth.device_id)?;
    let Some(_claim) = ActiveUpload::claim(&key) else {
        return Ok(media_error(
            StatusCode::CONFLICT,
            "upload_in_progress",
            "a request is uploading this file".into(),
            None,
        ));
    };
    blocking(move || {
        storage.blobs().discard(&key)?;
        storage.release_staging(&key)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Deserialize)]
struct CancelQuery {
    blob: Option<String>,
}

fn offset_mismatch(staged: u64) -> Response {
    media_error(
        StatusCode::CONFLICT,
        "offset_mismatch",
        format!("the server holds {staged} bytes; send from there"),
        Some(staged),
    )
}

/// How receiving an upload's body ended; the offsets are what the staging holds after it.
enum Received {
    /// The whole body arrived.
    Body(u64),
    /// The connection broke mid-body.
    Cut,
    /// More bytes than the declared total.
    TooLarge(u64),
    /// A thumbnail or upload rendition that does not start like a JPEG.
    NotJpeg,
    /// Another request appended at our offset first.
    Overtaken,
}

/// Appends the body from `start`, gathering frames into appends of the store's preferred size,
/// and makes the staged bytes durable at the end, however the body ended.
async fn receive(
    storage: Shared,
    key: StagingKey,
    start: u64,
    total: u64,
    body: Body,
    claim: std::sync::Arc<ActiveUpload>,
) -> ServerResult<Received> {
    let gather = storage.blobs().append_bytes().max(1);
    let mut stream = body.into_data_stream();
    let mut pos = start;
    let mut pending: Vec<u8> = Vec::new();
    let ending: fn(u64) -> Received = loop {
        let bytes = match stream.next().await {
            None => break Received::Body,
            Some(Err(_)) => break |_| Received::Cut,
            Some(Ok(b)) => b,
        };
        if bytes.is_empty() {
            continue;
        }
        if pos + (pending.len() + bytes.len()) as u64 > total {
            break Received::TooLarge;
        }
        if pos == 0
            && pending.is_empty()
            && key.rendition != MediaRendition::Original
            && !bytes.starts_with(&[0xFF, 0xD8])
        {
            return Ok(Received::NotJpeg);
        }
        pending.extend_from_slice(&bytes);
        if pending.len() >= gather {
            match append(&storage, &key, pos, std::mem::take(&mut pending), &claim).await? {
                Some(p) => pos = p,
                None => return Ok(Received::Overtaken),
            }
        }
    };
    if !pending.is_empty() {
        match append(&storage, &key, pos, pending, &claim).await? {
            Some(p) => pos = p,
            None => return Ok(Received::Overtaken),
        }
    }
    let (s, k) = (storage.clone(), key.clone());
    blocking(move || s.blobs().flush(&k)).await?;
    Ok(ending(pos))
}

/// One append on the blocking pool; `None` when another request appended at `pos` first.
async fn append(
    storage: &Shared,
    key: &StagingKey,
    pos: u64,
    bytes: Vec<u8>,
    claim: &std::sync::Arc<ActiveUpload>,
) -> ServerResult<Option<u64>> {
    let (s, k, c) = (storage.clone(), key.clone(), claim.clone());
    blocking(move || {
        let _claim = c;
        match s.blobs().append(&k, pos, &bytes) {
            Ok(p) => Ok(Some(p)),
            Err(ServerError::Conflict(_)) => Ok(None),
            Err(e) => Err(e),
        }
    })
    .await
}

#[derive(Debug, Deserialize)]
struct DownloadQuery {
    rendition: Option<String>,
    /// The rendition's own hash, as the document being shown declares it (optional).
    blob: Option<String>,
}

async fn download(
    State(storage): State<Shared>,
    headers: HeaderMap,
    Path(sha256): Path<String>,
    Query(q): Query<DownloadQuery>,
) -> ServerResult<Response> {
    let auth = authenticate(&storage, &headers).await?;
    let rendition = rendition_of(q.rendition.as_deref().unwrap_or("original"))?;
    check_hash(&sha256)?;
    if let Some(b) = &q.blob {
        check_hash(b)?;
    }
    let (s, want) = (storage.clone(), q.blob.clone());
    let found = blocking(move || {
        let storage: &dyn Storage = &*s;
        let mut refs = References::new(storage, &auth);
        let refs = refs.of(&sha256)?;
        // Readable references first, so a caller cannot learn whether unreadable bytes exist.
        if refs.is_empty() {
            return Err(ServerError::Forbidden(
                "no document in your scope references this file".into(),
            ));
        }
        let kept = match pick(grants(storage, refs, &sha256, rendition)?, want.as_deref()) {
            Pick::One(kept) => kept,
            Pick::None => {
                return Err(ServerError::NotFound(format!(
                    "no {} of this file has reached the server from the device that attached it",
                    rendition.as_str()
                )));
            }
            Pick::Ambiguous(blobs) => return Ok(Err(blobs)),
        };
        let reader = storage
            .blobs()
            .open(&kept.blob)?
            .ok_or_else(|| ServerError::Internal("a recorded blob is missing".into()))?;
        Ok(Ok((kept, reader)))
    })
    .await?;
    let (kept, reader) = match found {
        Ok(found) => found,
        Err(blobs) => {
            return Ok(media_error(
                StatusCode::CONFLICT,
                "ambiguous_rendition",
                format!(
                    "documents you may read declare different {}s of this file ({}); ask for one \
                     with blob=",
                    rendition.as_str(),
                    blobs.join(", ")
                ),
                None,
            ));
        }
    };
    let etag = format!("\"{}\"", kept.blob);
    let mut resp = if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = Body::from_stream(read_stream(reader)).into_response();
        r.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(kept.bytes));
        if let Ok(v) = HeaderValue::from_str(&kept.mime) {
            r.headers_mut().insert(header::CONTENT_TYPE, v);
        }
        r
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    // Private because access is per user. The bytes of a URL with `blob` never change; without
    // it, the best rendition may change when another readable document arrives, so revalidate.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(
            if q.blob.is_some() || rendition == MediaRendition::Original {
                "private, max-age=31536000, immutable"
            } else {
                "private, no-cache"
            },
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(resp)
}

/// A blob's bytes as a stream of 256 KiB reads on the blocking pool.
fn read_stream(
    reader: Box<dyn Read + Send>,
) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send {
    futures_util::stream::unfold(Some(reader), |state| async move {
        let mut reader = state?;
        let read = tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; 256 * 1024];
            let n = reader.read(&mut buf);
            (
                reader,
                n.map(|n| {
                    buf.truncate(n);
                    buf
                }),
            )
        })
        .await;
        match read {
            Ok((_, Ok(buf))) if buf.is_empty() => None,
            Ok((reader, Ok(buf))) => Some((Ok(Bytes::from(buf)), Some(reader))),
            Ok((_, Err(e))) => Some((Err(e), None)),
            Err(e) => Some((Err(std::io::Error::other(e)), None)),
        }
    })
}

/// The documents the caller may read that reference a hash (see
/// [`MediaIndex::referencing_documents`]), with SQLite's numbered parameters: ?1 role, ?2 user,
/// ?3 hash, ?4 limit. `collate` orders ids byte-wise on PostgreSQL as on SQLite.
pub(crate) fn referencing_documents_sql(
    readable: &str,
    task_readable: &str,
    collate: &str,
) -> String {
    format!(
        "SELECT id, (SELECT f.seq FROM change_feed f WHERE f.doc_id = d.id) FROM (
             SELECT e.inspection_id AS id, max(CASE WHEN i.created_by = ?2 THEN 1 ELSE 0 END) AS own
             FROM evidence_refs e
             JOIN inspections i ON i.id = e.inspection_id
             LEFT JOIN communities c ON c.id = i.community_id
             WHERE e.sha256 = ?3 AND {readable}
             GROUP BY e.inspection_id
             UNION ALL
             SELECT v.task_id, max(CASE WHEN t.opened_by = ?2 THEN 1 ELSE 0 END)
             FROM rectification_evidence v
             JOIN rectifications t ON t.id = v.task_id
             LEFT JOIN communities c ON c.id = t.community_id
             WHERE v.sha256 = ?3 AND v.phase = 'closure' AND {task_readable}
             GROUP BY v.task_id
         ) AS d
         ORDER BY own DESC, id {collate}
         LIMIT ?4"
    )
}

/// The blobs kept as a rendition of a hash that a device holds: ?1 device, ?2 hash, ?3 rendition.
pub(crate) fn held_blobs_sql(collate: &str) -> String {
    format!(
        "SELECT m.blob_sha256, m.bytes, m.mime, m.device_id, p.proved_at FROM media_blobs m
         JOIN media_proofs p ON p.blob_sha256 = m.blob_sha256 AND p.device_id = ?1
         WHERE m.sha256 = ?2 AND m.rendition = ?3
         ORDER BY p.proved_at, m.blob_sha256 {collate}"
    )
}

/// What a user's other open uploads hold: ?1 user, ?2..?5 the upload's key (device, hash,
/// rendition, blob). Sum of their totals, their count, and whether this one is open already.
pub(crate) const RESERVED_SQL: &str = "SELECT
       CAST(coalesce(sum(CASE WHEN m.mine THEN 0 ELSE total END), 0) AS BIGINT),
       CAST(coalesce(sum(CASE WHEN m.mine THEN 0 ELSE 1 END), 0) AS BIGINT),
       CAST(coalesce(max(CASE WHEN m.mine THEN 1 ELSE 0 END), 0) AS BIGINT)
     FROM (SELECT total, (device_id = ?2 AND sha256 = ?3 AND rendition = ?4
                          AND blob_sha256 = ?5) AS mine
           FROM media_staging WHERE user_id = ?1) AS m";

/// The quota decision of [`MediaIndex::reserve_staging`], from what [`RESERVED_SQL`] read.
pub(crate) fn admission(
    reserved_by_others: u64,
    open_others: u64,
    already_open: bool,
    total: u64,
    limits: &MediaLimits,
) -> Admission {
    if !already_open && open_others >= limits.max_open_uploads as u64 {
        return Admission::TooManyOpen {
            open: open_others.min(u32::MAX as u64) as u32,
        };
    }
    if reserved_by_others.saturating_add(total) > limits.staging_quota_bytes {
        return Admission::OverQuota {
            reserved: reserved_by_others,
        };
    }
    Admission::Admitted
}

/// Ends one upload's reservation: ?1 device, ?2 hash, ?3 rendition, ?4 blob.
pub(crate) const RELEASE_SQL: &str = "DELETE FROM media_staging WHERE device_id = ?1
     AND sha256 = ?2 AND rendition = ?3 AND blob_sha256 = ?4";

/// Runs `f` on the writer with commits that skip the fsync (SQLite's `synchronous = NORMAL`,
/// which in WAL mode loses no committed transaction to a crash of the process, only to one of
/// the machine), for reservations: one is written per upload, and losing the last few to a power
/// cut only lets those uploads reserve again on their next request. `FULL` again afterwards.
fn relaxed<T>(
    conn: &mut rusqlite::Connection,
    f: impl FnOnce(&mut rusqlite::Connection) -> ServerResult<T>,
) -> ServerResult<T> {
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    let out = f(conn);
    conn.pragma_update(None, "synchronous", "FULL")?;
    out
}

impl MediaIndex for crate::storage::SqliteStorage {
    fn blobs(&self) -> &dyn BlobStore {
        self.blobs.as_ref()
    }

    fn referencing_documents(
        &self,
        auth: &DeviceAuth,
        sha256: &str,
    ) -> ServerResult<Vec<(String, Option<i64>)>> {
        let sql = referencing_documents_sql(
            &crate::storage::readable(1, 2),
            &crate::supervision::task_readable_sql(1, 2),
            "",
        );
        self.read(|c| {
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt.query_map(
                rusqlite::params![
                    auth.user.role.as_str(),
                    auth.user.id,
                    sha256,
                    MAX_REFERENCING_DOCUMENTS as i64
                ],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn evidence_reuse(
        &self,
        auth: &DeviceAuth,
        sha256: &str,
        inspection_id: &str,
    ) -> ServerResult<(Vec<String>, u32)> {
        let sql = format!(
            "SELECT DISTINCT e.inspection_id, {} FROM evidence_refs e
             JOIN inspections i ON i.id = e.inspection_id
             LEFT JOIN communities c ON c.id = i.community_id
             WHERE e.sha256 = ?3 AND e.inspection_id <> ?4
             ORDER BY e.inspection_id",
            crate::storage::readable(1, 2)
        );
        self.read(|c| {
            let mut readable = Vec::new();
            let mut hidden = 0u32;
            let mut stmt = c.prepare_cached(&sql)?;
            let mut rows = stmt.query(rusqlite::params![
                auth.user.role.as_str(),
                auth.user.id,
                sha256,
                inspection_id
            ])?;
            while let Some(r) = rows.next()? {
                if r.get::<_, bool>(1)? {
                    readable.push(r.get(0)?);
                } else {
                    hidden += 1;
                }
            }
            Ok((readable, hidden))
        })
    }

    fn media_blob(
        &self,
        sha256: &str,
        rendition: MediaRendition,
        blob: &str,
    ) -> ServerResult<Option<StoredBlob>> {
        use rusqlite::OptionalExtension;
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT bytes, mime, device_id FROM media_blobs
                 WHERE sha256 = ?1 AND rendition = ?2 AND blob_sha256 = ?3",
            )?
            .query_row(rusqlite::params![sha256, rendition.as_str(), blob], |r| {
                Ok(StoredBlob {
                    sha256: sha256.to_string(),
                    rendition,
                    blob: blob.to_string(),
                    bytes: r.get::<_, i64>(0)? as u64,
                    mime: r.get(1)?,
                    device_id: r.get(2)?,
                })
            })
            .optional()?)
        })
    }

    fn proved_at(&self, device: &str, blob: &str) -> ServerResult<Option<i64>> {
        use rusqlite::OptionalExtension;
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT proved_at FROM media_proofs WHERE device_id = ?1 AND blob_sha256 = ?2",
            )?
            .query_row([device, blob], |r| r.get(0))
            .optional()?)
        })
    }

    fn held_blobs(
        &self,
        device: &str,
        sha256: &str,
        rendition: MediaRendition,
    ) -> ServerResult<Vec<(StoredBlob, i64)>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(&held_blobs_sql(""))?;
            let rows = stmt.query_map([device, sha256, rendition.as_str()], |r| {
                Ok((
                    StoredBlob {
                        sha256: sha256.to_string(),
                        rendition,
                        blob: r.get(0)?,
                        bytes: r.get::<_, i64>(1)? as u64,
                        mime: r.get(2)?,
                        device_id: r.get(3)?,
                    },
                    r.get(4)?,
                ))
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn record_media_blob(&self, b: &StoredBlob) -> ServerResult<()> {
        let now = crate::storage::now();
        let mut w = self.writer();
        let tx = w.transaction()?;
        tx.prepare_cached(
            "INSERT INTO media_blobs (sha256, rendition, blob_sha256, bytes, mime, device_id,
                 stored_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (sha256, rendition, blob_sha256) DO NOTHING",
        )?
        .execute(rusqlite::params![
            b.sha256,
            b.rendition.as_str(),
            b.blob,
            b.bytes as i64,
            b.mime,
            b.device_id,
            now
        ])?;
        tx.prepare_cached(
            "INSERT INTO media_proofs (device_id, blob_sha256, proved_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (device_id, blob_sha256) DO NOTHING",
        )?
        .execute(rusqlite::params![b.device_id, b.blob, now])?;
        tx.prepare_cached(RELEASE_SQL)?.execute(rusqlite::params![
            b.device_id,
            b.sha256,
            b.rendition.as_str(),
            b.blob
        ])?;
        tx.commit()?;
        Ok(())
    }

    fn reserve_staging(
        &self,
        user_id: &str,
        key: &StagingKey,
        total: u64,
        limits: &MediaLimits,
    ) -> ServerResult<Admission> {
        let now = crate::storage::now();
        // One writer: the read and the write below cannot interleave with another reservation.
        relaxed(&mut self.writer(), |w| {
            let tx = w.transaction()?;
            let (reserved, open, mine): (i64, i64, i64) =
                tx.prepare_cached(RESERVED_SQL)?.query_row(
                    rusqlite::params![
                        user_id,
                        key.device,
                        key.sha256,
                        key.rendition.as_str(),
                        key.blob
                    ],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )?;
            let decision = admission(reserved as u64, open as u64, mine != 0, total, limits);
            if decision == Admission::Admitted {
                tx.prepare_cached(
                    "INSERT INTO media_staging (device_id, sha256, rendition, blob_sha256, user_id,
                     total, opened_at, touched_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
                 ON CONFLICT (device_id, sha256, rendition, blob_sha256)
                 DO UPDATE SET user_id = excluded.user_id, total = excluded.total,
                     touched_at = excluded.touched_at",
                )?
                .execute(rusqlite::params![
                    key.device,
                    key.sha256,
                    key.rendition.as_str(),
                    key.blob,
                    user_id,
                    total as i64,
                    now
                ])?;
                tx.commit()?;
            }
            Ok(decision)
        })
    }

    fn release_staging(&self, key: &StagingKey) -> ServerResult<()> {
        relaxed(&mut self.writer(), |w| {
            w.prepare_cached(RELEASE_SQL)?.execute(rusqlite::params![
                key.device,
                key.sha256,
                key.rendition.as_str(),
                key.blob
            ])?;
            Ok(())
        })
    }

    fn sweep_reservations(&self, before_ms: i64) -> ServerResult<u64> {
        Ok(self.writer().execute(
            "DELETE FROM media_staging WHERE touched_at < ?1",
            [before_ms],
        )? as u64)
    }
}
