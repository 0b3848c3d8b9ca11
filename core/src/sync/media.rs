//! Media sync: photos and voice notes to the server, content-addressed and resumable
//! (protocol: docs/media-sync.md).
//!
//! [`SyncClient::sync_media`] first syncs the documents (the server accepts the bytes of a photo
//! only once it holds an inspection referencing it), then sends every thumbnail, then every
//! upload rendition and voice note, then the originals of photos — those only on Wi-Fi unless
//! the app allows metered networks. For each file it asks the server how many bytes it holds and
//! sends the rest in chunks from there, so a cut connection, a cancel or a killed app resumes
//! where the server stopped, never from zero. The server checks every byte against the file's
//! SHA-256 before keeping it, and answers "complete" only for files this device has sent: a
//! photo the server already holds from another device is sent once more by this one, which
//! proves the device holds it (what lets the server show it through this device's documents).
//! A file over the user's staging quota waits for the next sync.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{SyncClient, SyncReport, error_from, join};
use crate::inspection::MediaKind;
use crate::media::MediaStore;
use crate::progress::{CancelToken, Progress};
use crate::protocol::media::*;
use crate::store::{PendingUpload, Store};
use crate::{CoreError, Result};

/// The network the phone is on, as the platform reports it (Android `ConnectivityManager`
/// `NET_CAPABILITY_NOT_METERED`, iOS `NWPath.isExpensive`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum NetworkKind {
    /// Unmetered (Wi-Fi, Ethernet).
    Wifi,
    /// Metered (mobile data, a phone's hotspot).
    Cellular,
    /// The platform could not say: treated as metered, so a data plan is never spent by guess.
    Unknown,
}

/// How a media sync runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct MediaSyncOptions {
    pub network: NetworkKind,
    /// Send photo originals on a metered network too (thumbnails, upload renditions and voice
    /// notes always go).
    pub originals_on_metered: bool,
    /// Sync the documents before the media (the server refuses media no synced inspection
    /// references). Off only when the app has just synced them.
    pub sync_documents_first: bool,
    /// Bytes per upload request: what a cut can lose at most is what the server did not
    /// receive of one chunk (it keeps what arrived), and progress is reported per chunk.
    pub chunk_bytes: u32,
}

impl Default for MediaSyncOptions {
    fn default() -> Self {
        MediaSyncOptions {
            network: NetworkKind::Unknown,
            originals_on_metered: false,
            sync_documents_first: true,
            chunk_bytes: 512 * 1024,
        }
    }
}

/// A file the server refused, with its reason; it is tried again next sync.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct MediaUploadFailure {
    pub sha256: String,
    pub rendition: MediaRendition,
    pub reason: String,
}

/// What one media sync did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct MediaSyncReport {
    /// The document sync that ran first, if it did.
    pub documents: Option<SyncReport>,
    /// Files completed on the server by this sync.
    pub uploaded: u32,
    /// Files the server already had (sent before, or by another device).
    pub already_on_server: u32,
    /// Files resumed from a non-zero offset.
    pub resumed: u32,
    /// Photo originals left for Wi-Fi, and their size.
    pub held_for_wifi: u32,
    pub held_bytes: u64,
    /// Files whose inspection the server does not hold yet (or not for this user).
    pub waiting_for_document: u32,
    pub failed: Vec<MediaUploadFailure>,
    /// File bytes put on the wire (a chunk cut mid-way counts whole), and HTTP requests.
    pub bytes_sent: u64,
    pub round_trips: u32,
}

/// How one file's upload ended.
enum Outcome {
    Done { resumed: bool },
    Refused(String),
    NotReferenced,
}

const NOTE_HELD: &str = "held for Wi-Fi";
const NOTE_WAITING: &str = "waiting for the inspection to reach the server";

impl SyncClient {
    /// Syncs documents (unless told not to), then sends the files of photos and voice notes the
    /// server lacks, in the order thumbnails → upload renditions and voice notes → photo
    /// originals. Progress counts file bytes confirmed by the server of the bytes to send.
    /// Network failures are retried like document sync; a cancel or a failure that outlasts the
    /// retries stops the sync with an error, and the next call resumes from the server's offsets.
    pub fn sync_media(
        &self,
        store: &Store,
        media: &MediaStore,
        options: &MediaSyncOptions,
        progress: &dyn Progress,
        cancel: &CancelToken,
    ) -> Result<MediaSyncReport> {
        let mut report = MediaSyncReport::default();
        if options.sync_documents_first {
            report.documents = Some(self.sync(store, &crate::progress::NoProgress, cancel)?);
        }
        let metered = options.network != NetworkKind::Wifi;
        let mut queue = Vec::new();
        for p in store.pending_media_uploads()? {
            let held = p.rendition == MediaRendition::Original
                && p.kind == MediaKind::Photo
                && metered
                && !options.originals_on_metered;
            if held {
                report.held_for_wifi += 1;
                report.held_bytes += p.bytes;
                store.record_media_upload(&p, p.confirmed, false, Some(NOTE_HELD))?;
            } else {
                queue.push(p);
            }
        }
        // Ask the server where each file stands, a page at a time.
        let mut todo: Vec<(PendingUpload, u64)> = Vec::new();
        for page in queue.chunks(MAX_STATUS_ITEMS) {
            cancel.check()?;
            let statuses = self.media_status(page, &mut report, cancel)?;
            for (p, s) in page.iter().zip(statuses) {
                match s.state {
                    MediaState::Complete => {
                        report.already_on_server += 1;
                        store.record_media_upload(p, p.bytes, true, None)?;
                    }
                    MediaState::NotReferenced => {
                        report.waiting_for_document += 1;
                        store.record_media_upload(p, 0, false, Some(NOTE_WAITING))?;
                    }
                    MediaState::Partial | MediaState::Absent => {
                        todo.push((p.clone(), s.offset.min(p.bytes)))
                    }
                }
            }
        }
        let total: u64 = todo.iter().map(|(p, _)| p.bytes).sum();
        let mut done: u64 = todo.iter().map(|(_, o)| *o).sum();
        progress.on_progress(done, total);
        let chunk = options.chunk_bytes.clamp(16 * 1024, 16 * 1024 * 1024) as u64;
        for (p, offset) in todo {
            let start = offset;
            let outcome = self.upload_file(
                store,
                media,
                &p,
                offset,
                chunk,
                &mut report,
                &mut |confirmed| {
                    progress.on_progress(done + confirmed - start, total);
                },
                cancel,
            )?;
            done += p.bytes - start;
            match outcome {
                Outcome::Done { resumed } => {
                    report.uploaded += 1;
                    report.resumed += resumed as u32;
                }
                Outcome::NotReferenced => report.waiting_for_document += 1,
                Outcome::Refused(reason) => report.failed.push(MediaUploadFailure {
                    sha256: p.sha256.clone(),
                    rendition: p.rendition,
                    reason,
                }),
            }
            progress.on_progress(done, total);
        }
        Ok(report)
    }

    fn media_status(
        &self,
        page: &[PendingUpload],
        report: &mut MediaSyncReport,
        cancel: &CancelToken,
    ) -> Result<Vec<MediaItemStatus>> {
        let body = serde_json::to_vec(&MediaStatusRequest {
            items: page
                .iter()
                .map(|p| MediaItemRef {
                    sha256: p.sha256.clone(),
                    rendition: p.rendition,
                    blob: p.blob.clone(),
                    bytes: p.bytes,
                })
                .collect(),
        })
        .map_err(|e| CoreError::InvalidArgument(e.to_string()))?;
        let url = join(&self.base, "v1/media/status")?;
        let mut attempt = 0;
        loop {
            cancel.check()?;
            let sent = self
                .http
                .post(url.clone())
                .bearer_auth(&self.token)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .and_then(|r| {
                    let status = r.status();
                    r.bytes().map(|b| (status, b))
                });
            let err = match sent {
                Ok((status, bytes)) => {
                    report.round_trips += 1;
                    if status.is_success() {
                        let answer: MediaStatusResponse =
                            serde_json::from_slice(&bytes).map_err(|e| CoreError::Server {
                                status: status.as_u16(),
                                reason: format!("unreadable media status: {e}"),
                            })?;
                        if answer.items.len() != page.len() {
                            return Err(CoreError::Server {
                                status: status.as_u16(),
                                reason: "media status answered a different number of items".into(),
                            });
                        }
                        return Ok(answer.items);
                    }
                    let err = error_from(status.as_u16(), &bytes);
                    if !(status.is_server_error() || status.as_u16() == 429) {
                        return Err(err);
                    }
                    err
                }
                Err(e) => CoreError::Network(e.to_string()),
            };
            self.backoff(&mut attempt, err, cancel)?;
        }
    }

    /// Sends one file from `offset` until the server holds all of it (or refuses it).
    #[allow(clippy::too_many_arguments)]
    fn upload_file(
        &self,
        store: &Store,
        media: &MediaStore,
        p: &PendingUpload,
        mut offset: u64,
        chunk: u64,
        report: &mut MediaSyncReport,
        on_confirmed: &mut dyn FnMut(u64),
        cancel: &CancelToken,
    ) -> Result<Outcome> {
        let mut resumed = offset > 0;
        let path = media.file_path(&p.path)?;
        let url = join(
            &self.base,
            &format!("v1/media/{}/{}", p.sha256, p.rendition.as_str()),
        )?;
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) => {
                let reason = format!("local file unreadable: {e}");
                store.record_media_upload(p, offset, false, Some(&reason))?;
                if offset > 0 {
                    // What the server staged of it cannot be finished from here: free the
                    // user's staging quota (best effort; the server drops it in time anyway).
                    let _ = self
                        .http
                        .delete(url.clone())
                        .query(&[("blob", p.blob.as_str())])
                        .bearer_auth(&self.token)
                        .send();
                    report.round_trips += 1;
                }
                return Ok(Outcome::Refused(reason));
            }
        };
        let mut attempt = 0u32;
        let mut mismatches = 0u32;
        loop {
            cancel.check()?;
            let len = chunk.min(p.bytes - offset);
            let mut buf = vec![0u8; len as usize];
            file.seek(SeekFrom::Start(offset))?;
            file.read_exact(&mut buf)?;
            let sent = self
                .http
                .put(url.clone())
                .query(&[
                    ("blob", p.blob.as_str()),
                    ("offset", &offset.to_string()),
                    ("total", &p.bytes.to_string()),
                ])
                .bearer_auth(&self.token)
                .header("content-type", p.mime.as_str())
                .body(buf)
                .send()
                .and_then(|r| {
                    let status = r.status();
                    r.bytes().map(|b| (status, b))
                });
            report.bytes_sent += len;
            let err = match sent {
                Ok((status, bytes)) => {
                    report.round_trips += 1;
                    if status.is_success() {
                        let answer: MediaUploadResponse =
                            serde_json::from_slice(&bytes).map_err(|e| CoreError::Server {
                                status: status.as_u16(),
                                reason: format!("unreadable upload answer: {e}"),
                            })?;
                        attempt = 0;
                        offset = answer.offset.min(p.bytes);
                        on_confirmed(offset);
                        store.record_media_upload(p, offset, answer.complete, None)?;
                        if answer.complete {
                            return Ok(Outcome::Done { resumed });
                        }
                        continue;
                    }
                    let body: Option<MediaErrorBody> = serde_json::from_slice(&bytes).ok();
                    let word = body.as_ref().map(|b| b.error.as_str()).unwrap_or("");
                    match (status.as_u16(), word) {
                        (409, "offset_mismatch") if mismatches < 5 => {
                            // Another attempt (ours, cut) moved the server on: go on from there.
                            mismatches += 1;
                            offset = body.and_then(|b| b.offset).unwrap_or(0).min(p.bytes);
                            continue;
                        }
                        (403, _) => {
                            store.record_media_upload(p, offset, false, Some(NOTE_WAITING))?;
                            return Ok(Outcome::NotReferenced);
                        }
                        // This user's uploads in progress fill the server's staging quota: this
                        // file waits for the next sync; the others (which may be the partial
                        // uploads holding the quota) go on.
                        (507, "quota_exceeded" | "too_many_uploads") => {
                            let reason = body
                                .map(|b| format!("{}: {}", b.error, b.reason))
                                .unwrap_or_else(|| "HTTP 507".into());
                            store.record_media_upload(p, offset, false, Some(&reason))?;
                            return Ok(Outcome::Refused(reason));
                        }
                        (s, _) if (400..500).contains(&s) && s != 429 && s != 409 => {
                            let reason = body
                                .map(|b| format!("{}: {}", b.error, b.reason))
                                .unwrap_or_else(|| format!("HTTP {s}"));
                            store.record_media_upload(p, 0, false, Some(&reason))?;
                            return Ok(Outcome::Refused(reason));
                        }
                        _ => error_from(status.as_u16(), &bytes),
                    }
                }
                Err(e) => CoreError::Network(e.to_string()),
            };
            self.backoff(&mut attempt, err, cancel)?;
            // The cut request may have left bytes on the server: ask where it stands now.
            let status = self.media_status(std::slice::from_ref(p), report, cancel)?;
            match status.first().map(|s| (s.state, s.offset)) {
                Some((MediaState::Complete, _)) => {
                    on_confirmed(p.bytes);
                    store.record_media_upload(p, p.bytes, true, None)?;
                    return Ok(Outcome::Done { resumed: true });
                }
                Some((MediaState::NotReferenced, _)) => return Ok(Outcome::NotReferenced),
                Some((_, o)) => {
                    offset = o.min(p.bytes);
                    resumed |= offset > 0;
                    store.record_media_upload(p, offset, false, None)?;
                }
                None => {}
            }
        }
    }

    /// Waits before the next retry (exponential, at most 30 s, cancellable) or gives up with
    /// `err` after the configured retries.
    fn backoff(&self, attempt: &mut u32, err: CoreError, cancel: &CancelToken) -> Result<()> {
        if *attempt >= self.options.max_retries {
            return Err(err);
        }
        let wait = self
            .options
            .retry_base_ms
            .saturating_mul(1u64 << (*attempt).min(16))
            .min(30_000);
        *attempt += 1;
        let until = Instant::now() + Duration::from_millis(wait);
        while Instant::now() < until {
            cancel.check()?;
            std::thread::sleep(Duration::from_millis(20).min(until - Instant::now()));
        }
        Ok(())
    }
}
