//! The media routes (docs/media-sync.md): which blobs the server holds, resumable uploads of
//! originals and renditions, downloads. The rules (which document grants a blob, quotas,
//! bound renditions) are in `media.rs`.

use super::{Auth, Path, Query, Shared, blocking};
use crate::blobs::{Finished, StagingKey};
use crate::error::{ServerError, ServerResult};
use crate::media::*;
use crate::model::*;
use crate::store::Storage;
use axum::body::{Body, Bytes};
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use fenlei_core::protocol::media::*;
use futures_util::StreamExt;
use serde::Deserialize;
use std::io::Read;

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

pub(super) async fn status(
    State(storage): State<Shared>,
    Auth(auth): Auth,
    _headers: HeaderMap,
    body: Bytes,
) -> ServerResult<Response> {
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

#[derive(Debug, Deserialize)]
pub(super) struct UploadQuery {
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

pub(super) async fn upload(
    State(storage): State<Shared>,
    Auth(auth): Auth,
    Extension(limits): Extension<MediaLimits>,
    headers: HeaderMap,
    Path((sha256, rendition)): Path<(String, String)>,
    Query(q): Query<UploadQuery>,
    body: Body,
) -> ServerResult<Response> {
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
pub(super) async fn cancel(
    State(storage): State<Shared>,
    Auth(auth): Auth,
    Path((sha256, rendition)): Path<(String, String)>,
    Query(q): Query<CancelQuery>,
) -> ServerResult<Response> {
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
pub(super) struct CancelQuery {
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
pub(super) struct DownloadQuery {
    rendition: Option<String>,
    /// The rendition's own hash, as the document being shown declares it (optional).
    blob: Option<String>,
}

pub(super) async fn download(
    State(storage): State<Shared>,
    Auth(auth): Auth,
    headers: HeaderMap,
    Path(sha256): Path<String>,
    Query(q): Query<DownloadQuery>,
) -> ServerResult<Response> {
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
