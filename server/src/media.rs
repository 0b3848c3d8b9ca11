//! Media (docs/media-sync.md): which documents grant which blobs to whom, uploads in progress
//! and their sweeping; the routes are in `http/media.rs`. Bytes live in a [`BlobStore`]; which blobs are kept for which
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

use crate::blobs::StagingKey;
use crate::error::{ServerError, ServerResult};
use crate::model::*;
use crate::store::Storage;
use fenlei_core::protocol::media::*;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock, Mutex};

/// Drops uploads abandoned for longer than `limits.staging_max_age`: their staged bytes and
/// their reservations. Blocking.
pub fn sweep(storage: &dyn Storage, limits: &MediaLimits) -> ServerResult<(u64, u64)> {
    let files = storage.blobs().sweep_staging(limits.staging_max_age)?;
    let rows = storage
        .sweep_reservations(crate::model::now() - limits.staging_max_age.as_millis() as i64)?;
    Ok((files, rows))
}

pub(crate) fn rendition_of(s: &str) -> ServerResult<MediaRendition> {
    MediaRendition::parse(s).ok_or_else(|| {
        ServerError::BadRequest(format!(
            "rendition must be thumb, upload or original, not {s:?}"
        ))
    })
}

pub(crate) fn check_hash(h: &str) -> ServerResult<()> {
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
pub(crate) struct Reference {
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
    pub(crate) fn accepts(&self, rendition: MediaRendition, blob: &str, device: &str) -> bool {
        match self.declared(rendition) {
            Some(declared) => declared == blob,
            None => !self.device.is_empty() && self.device == device,
        }
    }
}

/// The references readable by one caller, read once per request: each referencing document is
/// loaded once however many of its hashes the request names.
pub(crate) struct References<'a> {
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
    pub(crate) fn new(storage: &'a dyn Storage, auth: &'a DeviceAuth) -> Self {
        References {
            storage,
            auth,
            documents: HashMap::new(),
            by_hash: HashMap::new(),
        }
    }

    pub(crate) fn of(&mut self, sha256: &str) -> ServerResult<&[Reference]> {
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
pub(crate) fn cached_references(
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
pub(crate) fn document_references(
    storage: &dyn Storage,
    id: &str,
) -> ServerResult<(Option<i64>, Vec<Reference>)> {
    let view = storage.sync_view(id)?;
    Ok((view.seq, references_of(&view)?))
}

fn references_of(view: &crate::store::SyncView) -> ServerResult<Vec<Reference>> {
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
pub(crate) enum Pick {
    One(StoredBlob),
    None,
    /// Several, none vouched for by a device holding the original: the caller must choose.
    Ambiguous(Vec<String>),
}

/// The blob to serve: the one asked for (`want`) if granted; else the best grant from a device
/// that holds the original; else the one blob every grant agrees on. Never a guess between
/// renditions nobody has tied to the original.
pub(crate) fn pick(grants: Vec<Grant>, want: Option<&str>) -> Pick {
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
pub(crate) struct Grant {
    blob: StoredBlob,
    /// The reference's device also holds the original (the likeliest maker of the rendition).
    device_holds_original: bool,
    proved_at: i64,
}

/// What `rendition` of `sha256` the references let their reader fetch, the best first: from a
/// device that holds the original, then the earliest proved, then by blob hash.
pub(crate) fn grants(
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

pub(crate) struct ActiveUpload(StagingKey);

impl ActiveUpload {
    pub(crate) fn claim(key: &StagingKey) -> Option<ActiveUpload> {
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

/// The kept blob of `key` when the key's device holds it (has proved it); the blob is then
/// also recorded as the key's rendition of its hash if it was not yet (the same bytes kept for
/// another hash). `None`: the device has to send the bytes.
pub(crate) fn held_by_caller(
    storage: &dyn Storage,
    key: &StagingKey,
) -> ServerResult<Option<StoredBlob>> {
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
