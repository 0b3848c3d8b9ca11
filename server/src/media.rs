//! Media routes (docs/media-sync.md): where an upload stands, resumable chunk upload, and
//! download with access checks. Bytes live in a [`BlobStore`]; which blob is kept for which
//! evidence hash and rendition is recorded in `media_blobs` ([`MediaIndex`]).
//!
//! The access rule for both directions: the caller's user may read an inspection (the sync
//! rule: admins all; supervisors their districts/streets; inspectors what they created,
//! co-inspect or are assigned) that references the evidence hash. So a device uploads only
//! media of documents it has synced and may write, and the server never becomes an open file
//! host; a supervisor fetches only evidence of inspections in scope.

use crate::api::{Path, Query};
use crate::api::{Shared, authenticate, blocking};
use crate::blobs::{BlobStore, Finished, StagingKey};
use crate::error::{ServerError, ServerResult};
use crate::storage::DeviceAuth;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use fenlei_core::sync::media_protocol::*;
use futures_util::StreamExt;
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::{LazyLock, Mutex};

/// A verified blob kept for an evidence hash and rendition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    pub sha256: String,
    pub rendition: MediaRendition,
    pub blob: String,
    pub bytes: u64,
    pub mime: String,
    /// The device that uploaded it.
    pub device_id: String,
}

/// What the media routes need from storage, beside [`crate::storage::Storage`].
pub trait MediaIndex {
    fn blobs(&self) -> &dyn BlobStore;
    /// Whether `auth`'s user may read an inspection that references `sha256`.
    fn media_accessible(&self, auth: &DeviceAuth, sha256: &str) -> ServerResult<bool>;
    /// The other inspections whose evidence holds `sha256`: those `auth` may read (ids, sorted)
    /// and how many more exist outside the caller's scope.
    fn evidence_reuse(
        &self,
        auth: &DeviceAuth,
        sha256: &str,
        inspection_id: &str,
    ) -> ServerResult<(Vec<String>, u32)>;
    fn media_blob(
        &self,
        sha256: &str,
        rendition: MediaRendition,
    ) -> ServerResult<Option<StoredBlob>>;
    /// Records a verified blob. When one is already recorded for the hash and rendition (another
    /// device's rendition finished first), that one stays and is returned.
    fn record_media_blob(&self, blob: &StoredBlob) -> ServerResult<StoredBlob>;
}

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/v1/media/status", post(status))
        .route("/v1/media/{sha256}/{rendition}", axum::routing::put(upload))
        .route("/v1/media/{sha256}", get(download))
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
    let answer = blocking(move || {
        let mut access: HashMap<String, bool> = HashMap::new();
        let mut out = Vec::with_capacity(req.items.len());
        for item in req.items {
            let key = StagingKey::new(&item.sha256, item.rendition, &item.blob)?;
            let allowed = match access.get(&item.sha256) {
                Some(a) => *a,
                None => {
                    let a = storage.media_accessible(&auth, &item.sha256)?;
                    access.insert(item.sha256.clone(), a);
                    a
                }
            };
            let (state, blob, offset) = if !allowed {
                (MediaState::NotReferenced, item.blob, 0)
            } else if let Some(kept) = storage.media_blob(&item.sha256, item.rendition)? {
                (MediaState::Complete, kept.blob, kept.bytes)
            } else {
                match storage.blobs().staged_len(&key)? {
                    0 => (MediaState::Absent, item.blob, 0),
                    n => (MediaState::Partial, item.blob, n),
                }
            };
            out.push(MediaItemStatus {
                sha256: item.sha256,
                rendition: item.rendition,
                blob,
                state,
                offset,
            });
        }
        Ok(MediaStatusResponse { items: out })
    })
    .await?;
    Ok(axum::Json(answer).into_response())
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
    headers: HeaderMap,
    Path((sha256, rendition)): Path<(String, String)>,
    Query(q): Query<UploadQuery>,
    body: Body,
) -> ServerResult<Response> {
    let auth = authenticate(&storage, &headers).await?;
    let rendition = rendition_of(&rendition)?;
    let blob = q.blob.clone().unwrap_or_else(|| sha256.clone());
    let key = StagingKey::new(&sha256, rendition, &blob)?;
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
        if !s.media_accessible(&a, &k.sha256)? {
            return Err(ServerError::Forbidden(
                "no inspection you may write references this hash (sync it first)".into(),
            ));
        }
        let kept = s.media_blob(&k.sha256, k.rendition)?;
        let staged = match kept {
            Some(_) => 0,
            None => s.blobs().staged_len(&k)?,
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
    .map_err(|e| ServerError::Internal(format!("upload task: {e}")))??;
    let pos = match received {
        Received::Body(pos) => pos,
        Received::Cut => return Err(ServerError::BadRequest("request body cut short".into())),
        Received::TooLarge(pos) => {
            return Ok(media_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("more bytes than the declared total {}", q.total),
                Some(pos),
            ));
        }
        Received::NotJpeg => {
            return Ok(media_error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_type",
                "a thumbnail or upload rendition must be a JPEG".into(),
                None,
            ));
        }
        Received::Overtaken => {
            let (s, k) = (storage.clone(), key.clone());
            let staged = blocking(move || s.blobs().staged_len(&k)).await?;
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
    let device = auth.device_id.clone();
    let finished = blocking(move || {
        let _claim = c;
        let finished = match s.blobs().finish(&k) {
            // Another request (here or on another instance) finished or dropped it meanwhile.
            Err(ServerError::Conflict(_)) => return Ok(None),
            other => other?,
        };
        match finished {
            Finished::Stored(bytes) => {
                let kept = s.record_media_blob(&StoredBlob {
                    sha256: k.sha256.clone(),
                    rendition: k.rendition,
                    blob: k.blob.clone(),
                    bytes,
                    mime,
                    device_id: device,
                })?;
                Ok(Some(Ok(kept)))
            }
            Finished::HashMismatch { actual } => Ok(Some(Err(actual))),
        }
    })
    .await?;
    match finished {
        Some(Ok(kept)) => Ok(axum::Json(MediaUploadResponse {
            offset: kept.bytes,
            complete: true,
            blob: kept.blob,
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
            let (s, k) = (storage.clone(), key.clone());
            let staged = blocking(move || s.blobs().staged_len(&k)).await?;
            Ok(offset_mismatch(staged))
        }
    }
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
}

async fn download(
    State(storage): State<Shared>,
    headers: HeaderMap,
    Path(sha256): Path<String>,
    Query(q): Query<DownloadQuery>,
) -> ServerResult<Response> {
    let auth = authenticate(&storage, &headers).await?;
    let rendition = rendition_of(q.rendition.as_deref().unwrap_or("original"))?;
    if !is_sha256_hex(&sha256) {
        return Err(ServerError::BadRequest(
            "hashes must be 64 lower-case hex digits".into(),
        ));
    }
    let s = storage.clone();
    let found = blocking(move || {
        // Access first, so a caller out of scope cannot even learn whether the file exists.
        if !s.media_accessible(&auth, &sha256)? {
            return Err(ServerError::Forbidden(
                "no inspection in your scope references this file".into(),
            ));
        }
        let Some(kept) = s.media_blob(&sha256, rendition)? else {
            return Err(ServerError::NotFound(format!(
                "no {} of this file on the server yet",
                rendition.as_str()
            )));
        };
        let reader = s
            .blobs()
            .open(&kept.blob)?
            .ok_or_else(|| ServerError::Internal("a recorded blob is missing".into()))?;
        Ok((kept, reader))
    })
    .await?;
    let (kept, reader) = found;
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
    // Content-addressed: a URL's bytes never change; private because access is per user.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=31536000, immutable"),
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

impl MediaIndex for crate::storage::SqliteStorage {
    fn blobs(&self) -> &dyn BlobStore {
        self.blobs.as_ref()
    }

    fn media_accessible(&self, auth: &DeviceAuth, sha256: &str) -> ServerResult<bool> {
        // Evidence of an inspection the caller may read, or a rectification task's finding or
        // closure photo where the task's community is in the caller's scope (or the caller is the
        // inspector who opened the task or made its inspection — the same rule as the sync feed).
        let sql = format!(
            "SELECT EXISTS (SELECT 1 FROM evidence_refs e
                 JOIN inspections i ON i.id = e.inspection_id
                 LEFT JOIN communities c ON c.id = i.community_id
                 WHERE e.sha256 = ?3 AND {})
             OR EXISTS (SELECT 1 FROM rectification_evidence v
                 JOIN rectifications t ON t.id = v.task_id
                 LEFT JOIN communities c ON c.id = t.community_id
                 WHERE v.sha256 = ?3 AND {})",
            crate::storage::readable(1, 2),
            crate::supervision::task_readable_sql(1, 2)
        );
        self.read(|c| {
            Ok(c.prepare_cached(&sql)?.query_row(
                rusqlite::params![auth.user.role.as_str(), auth.user.id, sha256],
                |r| r.get(0),
            )?)
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
    ) -> ServerResult<Option<StoredBlob>> {
        use rusqlite::OptionalExtension;
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT blob_sha256, bytes, mime, device_id FROM media_blobs
                 WHERE sha256 = ?1 AND rendition = ?2",
            )?
            .query_row(rusqlite::params![sha256, rendition.as_str()], |r| {
                Ok(StoredBlob {
                    sha256: sha256.to_string(),
                    rendition,
                    blob: r.get(0)?,
                    bytes: r.get::<_, i64>(1)? as u64,
                    mime: r.get(2)?,
                    device_id: r.get(3)?,
                })
            })
            .optional()?)
        })
    }

    fn record_media_blob(&self, b: &StoredBlob) -> ServerResult<StoredBlob> {
        self.writer().execute(
            "INSERT INTO media_blobs (sha256, rendition, blob_sha256, bytes, mime, device_id,
                 stored_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (sha256, rendition) DO NOTHING",
            rusqlite::params![
                b.sha256,
                b.rendition.as_str(),
                b.blob,
                b.bytes as i64,
                b.mime,
                b.device_id,
                crate::storage::now()
            ],
        )?;
        self.media_blob(&b.sha256, b.rendition)?
            .ok_or_else(|| ServerError::Internal("media blob row vanished".into()))
    }
}
