//! [`S3BlobStore`]: blobs in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, Cloudflare R2, …)
//! through `object_store`, for several server instances sharing one store.
//!
//! ```text
//! <prefix>/ab/abcdef…(64 hex)                           verified blobs, immutable
//! <prefix>/staging/<sha>.<rendition>.<blob>/<offset>    one object per appended chunk,
//!                                                       offset as 20 decimal digits
//! ```
//!
//! No process keeps upload state: the staged length is the contiguous run of chunk objects from
//! offset 0, read from the bucket each time, and a chunk is written with a conditional create
//! (`If-None-Match: *`), so of two requests appending at one offset — on one instance or two —
//! exactly one wins and the other is told where the upload stands. `finish` streams the chunks
//! in order through SHA-256 into the final object (a multipart upload for big files, aborted on a
//! mismatch, so a wrong byte never lands under a hash's name) and deletes the chunks.
//!
//! `object_store` is async; [`BlobStore`] is blocking (called on tokio's blocking pool or from
//! CLI commands), so the store runs its requests on a small runtime of its own and waits for
//! them, whichever context the caller is in.

use crate::blobs::{BlobStore, Finished, StagingKey};
use crate::error::{ServerError, ServerResult};
use axum::body::Bytes;
use fenlei_core::protocol::media::is_sha256_hex;
use futures_util::StreamExt;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path;
use object_store::{ObjectStore, PutMode, PutPayload, WriteMultipart};
use sha2::{Digest, Sha256};
use std::future::Future;
use std::io::Read;
use std::sync::Arc;

/// Files up to this size are verified in memory and written with one PUT; bigger ones go up as a
/// multipart upload in parts of this size (S3 wants parts of at least 5 MiB).
const PART_BYTES: usize = 8 << 20;
/// What the upload route gathers before each append: one chunk object per this many bytes.
const APPEND_BYTES: usize = 4 << 20;

pub struct S3BlobStore {
    store: Arc<dyn ObjectStore>,
    /// Key prefix inside the bucket, without a trailing slash ("" for the bucket's root).
    prefix: String,
    /// Taken out in `drop` and shut down without waiting (dropping a runtime inside another
    /// runtime's async context would panic).
    runtime: Option<tokio::runtime::Runtime>,
}

fn store_error(e: object_store::Error) -> ServerError {
    ServerError::Internal(format!("object store: {e}"))
}

/// One chunk object of a staging.
struct Part {
    offset: u64,
    size: u64,
    path: Path,
}

impl S3BlobStore {
    /// Opens `s3://bucket[/prefix]?endpoint=URL&region=NAME`. Credentials come from the standard
    /// AWS_* environment variables (or the instance's role). The endpoint must be https, or
    /// plain http to this machine only (a local MinIO or moto in tests).
    pub fn open(url: &str) -> ServerResult<S3BlobStore> {
        let bad = |m: &str| ServerError::BadRequest(format!("blob store URL: {m}"));
        let parsed = reqwest::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
        if parsed.scheme() != "s3" {
            return Err(bad("expected s3://bucket[/prefix]"));
        }
        let bucket = parsed
            .host_str()
            .filter(|b| !b.is_empty())
            .ok_or_else(|| bad("no bucket"))?
            .to_string();
        let prefix = parsed.path().trim_matches('/').to_string();
        if prefix.split('/').any(|s| s == "." || s == "..") {
            return Err(bad("the prefix may not hold . or .. segments"));
        }
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(&bucket);
        for (k, v) in parsed.query_pairs() {
            builder = match k.as_ref() {
                "endpoint" => builder.with_endpoint(v.as_ref()),
                "region" => builder.with_region(v.as_ref()),
                other => return Err(bad(&format!("unknown parameter {other:?}"))),
            };
        }
        // Plain http only to this machine, whatever AWS_ALLOW_HTTP says: blobs are evidence.
        let plain_http = match builder.get_config_value(&AmazonS3ConfigKey::Endpoint) {
            Some(endpoint) => {
                let checked = fenlei_core::sync::check_server_url(&endpoint).map_err(|_| {
                    bad("the endpoint must use https (plain http only to this machine)")
                })?;
                checked.scheme() == "http"
            }
            None => false,
        };
        if builder
            .get_config_value(&AmazonS3ConfigKey::Region)
            .is_none()
        {
            builder = builder.with_region("us-east-1");
        }
        let store = builder
            .with_allow_http(plain_http)
            .build()
            .map_err(|e| bad(&e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("fenlei-s3")
            .enable_all()
            .build()?;
        let s3 = S3BlobStore {
            store: Arc::new(store),
            prefix,
            runtime: Some(runtime),
        };
        // Fail at start-up, not at the first upload, when the bucket or credentials are wrong.
        let (store, staging) = (s3.store.clone(), s3.path("staging"));
        s3.run(async move {
            store
                .list_with_delimiter(Some(&staging))
                .await
                .map_err(|e| ServerError::Internal(format!("object store {bucket}: {e}")))
        })??;
        Ok(s3)
    }

    /// Runs `fut` on the store's runtime and waits for it (from any thread, async or not).
    fn run<T: Send + 'static>(
        &self,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> ServerResult<T> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let runtime = self
            .runtime
            .as_ref()
            .ok_or_else(|| ServerError::Internal("object store closed".into()))?;
        runtime.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv()
            .map_err(|_| ServerError::Internal("object store request failed".into()))
    }

    fn path(&self, rel: &str) -> Path {
        if self.prefix.is_empty() {
            Path::from(rel)
        } else {
            Path::from(format!("{}/{rel}", self.prefix))
        }
    }

    fn blob_path(&self, blob: &str) -> ServerResult<Path> {
        if !is_sha256_hex(blob) {
            return Err(ServerError::BadRequest(
                "hashes must be 64 lower-case hex digits".into(),
            ));
        }
        Ok(self.path(&format!("{}/{blob}", &blob[..2])))
    }

    fn staging_dir(&self, key: &StagingKey) -> Path {
        self.path(&format!("staging/{}", key.name()))
    }
}

impl Drop for S3BlobStore {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

fn part_path(dir: &Path, offset: u64) -> Path {
    dir.child(format!("{offset:020}"))
}

/// The chunk objects under `dir`, by offset (names that are not offsets are ignored).
async fn parts(store: &dyn ObjectStore, dir: &Path) -> ServerResult<Vec<Part>> {
    let mut list = store.list(Some(dir));
    let mut out = Vec::new();
    while let Some(meta) = list.next().await {
        let meta = meta.map_err(store_error)?;
        let Some(offset) = meta
            .location
            .filename()
            .filter(|n| n.len() == 20)
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        out.push(Part {
            offset,
            size: meta.size,
            path: meta.location,
        });
    }
    out.sort_by_key(|p| p.offset);
    Ok(out)
}

/// The contiguous run of chunks from offset 0 and its length. Chunks after a gap (a racer that
/// lost its place, writing after the staging was finished or dropped) are not staged bytes.
fn chain(parts: &[Part]) -> (Vec<&Part>, u64) {
    let mut run = Vec::new();
    let mut end = 0u64;
    for p in parts {
        if p.offset == end && p.size > 0 {
            end += p.size;
            run.push(p);
        }
    }
    (run, end)
}

async fn delete_all(store: &dyn ObjectStore, parts: &[Part]) -> ServerResult<()> {
    for p in parts {
        match store.delete(&p.path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(store_error(e)),
        }
    }
    Ok(())
}

async fn head_size(store: &dyn ObjectStore, path: &Path) -> ServerResult<Option<u64>> {
    match store.head(path).await {
        Ok(meta) => Ok(Some(meta.size)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(store_error(e)),
    }
}

/// Where the staged bytes go while they are hashed.
enum Sink {
    /// The blob is already kept: only verify.
    None,
    Memory(Vec<u8>),
    Multipart(WriteMultipart),
}

impl BlobStore for S3BlobStore {
    fn staged_len(&self, key: &StagingKey) -> ServerResult<u64> {
        let (store, dir) = (self.store.clone(), self.staging_dir(key));
        self.run(async move { Ok(chain(&parts(store.as_ref(), &dir).await?).1) })?
    }

    fn append(&self, key: &StagingKey, offset: u64, bytes: &[u8]) -> ServerResult<u64> {
        let (store, dir) = (self.store.clone(), self.staging_dir(key));
        let data = Bytes::copy_from_slice(bytes);
        self.run(async move {
            let staged = chain(&parts(store.as_ref(), &dir).await?).1;
            if staged != offset {
                return Err(ServerError::Conflict(format!(
                    "staged {staged} bytes, not {offset}"
                )));
            }
            if data.is_empty() {
                return Ok(offset);
            }
            let len = data.len() as u64;
            // The conditional create is what makes two racers at one offset safe: the store
            // keeps the first and refuses the second, on any instance.
            match store
                .put_opts(
                    &part_path(&dir, offset),
                    PutPayload::from_bytes(data),
                    PutMode::Create.into(),
                )
                .await
            {
                Ok(_) => Ok(offset + len),
                Err(object_store::Error::AlreadyExists { .. }) => Err(ServerError::Conflict(
                    format!("another request staged bytes at {offset} first"),
                )),
                Err(e) => Err(store_error(e)),
            }
        })?
    }

    fn append_bytes(&self) -> usize {
        APPEND_BYTES
    }

    fn flush(&self, _key: &StagingKey) -> ServerResult<()> {
        // Every chunk object is durable once its PUT was answered.
        Ok(())
    }

    fn finish(&self, key: &StagingKey) -> ServerResult<Finished> {
        let (store, dir) = (self.store.clone(), self.staging_dir(key));
        let dest = self.blob_path(&key.blob)?;
        let want = key.blob.clone();
        self.run(async move {
            let store = store.as_ref();
            let all = parts(store, &dir).await?;
            let (run, total) = chain(&all);
            let kept = head_size(store, &dest).await?;
            if run.is_empty() {
                // A racer finished this upload a moment ago (or nothing was ever staged).
                return match kept {
                    Some(size) => Ok(Finished::Stored(size)),
                    None => Err(ServerError::Conflict("nothing staged for this file".into())),
                };
            }
            let mut sink = match kept {
                Some(_) => Sink::None,
                None if total as usize <= PART_BYTES => {
                    Sink::Memory(Vec::with_capacity(total as usize))
                }
                None => Sink::Multipart(WriteMultipart::new_with_chunk_size(
                    store.put_multipart(&dest).await.map_err(store_error)?,
                    PART_BYTES,
                )),
            };
            let mut hasher = Sha256::new();
            let mut read = async || -> ServerResult<()> {
                for part in &run {
                    let got = match store.get(&part.path).await {
                        Ok(got) => got,
                        Err(object_store::Error::NotFound { .. }) => {
                            return Err(ServerError::Conflict(
                                "the staging was finished by another request".into(),
                            ));
                        }
                        Err(e) => return Err(store_error(e)),
                    };
                    let mut stream = got.into_stream();
                    while let Some(chunk) = stream.next().await {
                        let chunk = chunk.map_err(store_error)?;
                        hasher.update(&chunk);
                        match &mut sink {
                            Sink::None => {}
                            Sink::Memory(v) => v.extend_from_slice(&chunk),
                            Sink::Multipart(w) => {
                                w.wait_for_capacity(4).await.map_err(store_error)?;
                                w.put(chunk);
                            }
                        }
                    }
                }
                Ok(())
            };
            let outcome = read().await;
            let actual: String = hasher
                .finalize()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            if let Err(e) = outcome {
                if let Sink::Multipart(w) = sink {
                    let _ = w.abort().await;
                }
                // A racer that finished first leaves the verified blob behind.
                return match head_size(store, &dest).await? {
                    Some(size) => Ok(Finished::Stored(size)),
                    None => Err(e),
                };
            }
            if actual != want {
                if let Sink::Multipart(w) = sink {
                    let _ = w.abort().await;
                }
                delete_all(store, &all).await?;
                return Ok(Finished::HashMismatch { actual });
            }
            match sink {
                Sink::None => {}
                // Same name, same verified content: overwriting an equal object is harmless.
                Sink::Memory(v) => {
                    store
                        .put(&dest, PutPayload::from(v))
                        .await
                        .map_err(store_error)?;
                }
                Sink::Multipart(w) => {
                    w.finish().await.map_err(store_error)?;
                }
            }
            delete_all(store, &all).await?;
            Ok(Finished::Stored(total))
        })?
    }

    fn has(&self, blob: &str) -> ServerResult<Option<u64>> {
        let (store, path) = (self.store.clone(), self.blob_path(blob)?);
        self.run(async move { head_size(store.as_ref(), &path).await })?
    }

    fn open(&self, blob: &str) -> ServerResult<Option<Box<dyn Read + Send>>> {
        let (store, path) = (self.store.clone(), self.blob_path(blob)?);
        let got = self.run(async move {
            match store.get(&path).await {
                Ok(got) => Ok(Some(got)),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(store_error(e)),
            }
        })??;
        let Some(got) = got else { return Ok(None) };
        // A few chunks ahead of the reader; the task stops when the reader is dropped.
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let runtime = self
            .runtime
            .as_ref()
            .ok_or_else(|| ServerError::Internal("object store closed".into()))?;
        runtime.spawn(async move {
            let mut stream = got.into_stream();
            while let Some(chunk) = stream.next().await {
                let failed = chunk.is_err();
                if tx.send(chunk.map_err(|e| e.to_string())).await.is_err() || failed {
                    break;
                }
            }
        });
        Ok(Some(Box::new(ChunkReader {
            rx,
            current: Bytes::new(),
        })))
    }

    fn discard(&self, key: &StagingKey) -> ServerResult<()> {
        let (store, dir) = (self.store.clone(), self.staging_dir(key));
        self.run(async move {
            let all = parts(store.as_ref(), &dir).await?;
            delete_all(store.as_ref(), &all).await
        })?
    }

    fn sweep_staging(&self, max_age: std::time::Duration) -> ServerResult<u64> {
        let (store, staging) = (self.store.clone(), self.path("staging"));
        self.run(async move {
            let store = store.as_ref();
            let mut list = store.list(Some(&staging));
            // Per staging: its chunks and the newest one's time.
            let mut by_dir: std::collections::BTreeMap<String, (Vec<Part>, i64)> =
                Default::default();
            while let Some(meta) = list.next().await {
                let meta = meta.map_err(store_error)?;
                let Some(dir) = meta
                    .location
                    .prefix_match(&staging)
                    .and_then(|mut rest| rest.next())
                    .map(|p| p.as_ref().to_string())
                else {
                    continue;
                };
                let modified_ms = meta.last_modified.timestamp_millis();
                let entry = by_dir.entry(dir).or_insert((Vec::new(), i64::MIN));
                entry.1 = entry.1.max(modified_ms);
                entry.0.push(Part {
                    offset: 0,
                    size: meta.size,
                    path: meta.location,
                });
            }
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0);
            let mut removed = 0;
            for (parts, newest) in by_dir.values() {
                if now_ms.saturating_sub(*newest) > max_age.as_millis() as i64 {
                    delete_all(store, parts).await?;
                    removed += 1;
                }
            }
            Ok(removed)
        })?
    }
}

/// A blocking reader over a blob's byte stream (downloads run it on the blocking pool).
struct ChunkReader {
    rx: tokio::sync::mpsc::Receiver<Result<Bytes, String>>,
    current: Bytes,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(e)) => return Err(std::io::Error::other(e)),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}
