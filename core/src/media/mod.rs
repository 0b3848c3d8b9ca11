//! Photos and voice notes: the proof behind a deduction (docs/media.md).
//!
//! [`MediaStore::ingest_photo`] takes a file the app hands over (JPEG, PNG, WebP, HEIF/HEIC),
//! hashes it while copying it into a content-addressed folder, reads its EXIF (time with offset,
//! GPS with precision, orientation, make/model), and writes an upright ~320 px thumbnail and a
//! ~1600 px JPEG upload rendition. [`MediaStore::ingest_voice_note`] does the same for m4a/AAC,
//! Ogg Opus and WAV with their duration and the phone's transcript. [`verify`] turns what was
//! read into flags for supervisors. The layout, formats and measured speed are in docs/media.md.
//!
//! Guarantees: bad input is a [`CoreError::InvalidMedia`] (never a panic, never a hang); a
//! failed ingest leaves nothing behind; every file is complete under its final name or absent;
//! ingesting the same bytes again is idempotent and cheap.

mod audio;
mod exif;
mod raster;
mod sniff;
mod storage;
pub mod verify;

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::geo::LatLon;
use crate::inspection::MediaKind;
use crate::progress::{CancelToken, Progress};
use crate::{CoreError, Result};
use sniff::Format;

/// EXIF of a photo, checked: impossible values are left out (and flagged on the record).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct PhotoExif {
    /// DateTimeOriginal (or DateTimeDigitized) as the camera's wall clock showed it,
    /// `YYYY-MM-DDTHH:MM:SS[.mmm]`, no zone.
    pub taken_local: Option<String>,
    /// The same wall-clock time in ms since 1970-01-01T00:00 *read as if it were UTC*; subtract
    /// the offset to get the instant (see [`PhotoExif::taken_at_ms`]).
    pub taken_local_ms: Option<i64>,
    /// OffsetTimeOriginal (or OffsetTime), minutes east of UTC, when the camera wrote one.
    pub offset_minutes: Option<i64>,
    pub gps: Option<ExifGps>,
    /// EXIF orientation 1–8 (1 = upright).
    pub orientation: Option<u32>,
    pub make: Option<String>,
    pub model: Option<String>,
    /// The Software tag: phone firmware, or the editor that last saved the file.
    pub software: Option<String>,
    /// PixelXDimension / PixelYDimension (the size of a HEIF we do not decode).
    pub pixel_width: Option<u32>,
    pub pixel_height: Option<u32>,
}

/// China Standard Time, minutes east of UTC: how an EXIF time without an offset is read.
pub const CHINA_OFFSET_MINUTES: i64 = 8 * 60;

impl PhotoExif {
    /// The capture instant (ms since the epoch, UTC) and whether the offset was assumed
    /// ([`CHINA_OFFSET_MINUTES`]) because the camera wrote none.
    pub fn taken_at_ms(&self) -> Option<(i64, bool)> {
        let local = self.taken_local_ms?;
        match self.offset_minutes {
            Some(o) => Some((local - o * 60_000, false)),
            None => Some((local - CHINA_OFFSET_MINUTES * 60_000, true)),
        }
    }
}

/// The GPS block of a photo's EXIF (WGS-84 by the EXIF standard).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct ExifGps {
    pub location: LatLon,
    /// Metres above (negative: below) sea level.
    pub altitude_m: Option<f64>,
    /// GPSHPositioningError: horizontal error in metres (iPhones write it).
    pub h_error_m: Option<f64>,
    /// GPSDOP: dilution of precision (cameras write it; no unit).
    pub dop: Option<f64>,
    /// GPSDateStamp + GPSTimeStamp: when the fix was taken, ms since the epoch, UTC.
    pub fix_time_ms: Option<i64>,
    /// GPSMapDatum as written (normally "WGS-84"; empty on most phones).
    pub datum: Option<String>,
}

/// A derived JPEG (thumbnail or upload rendition).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Rendition {
    /// Relative to the media root, `/`-separated.
    pub path: String,
    /// SHA-256 of this file (for upload and verification), lower-case hex.
    pub sha256: String,
    pub bytes: u64,
    /// Upright size in pixels.
    pub width: u32,
    pub height: u32,
}

/// Facts found at ingest that a supervisor or the app may want to see. None stops an ingest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum MediaFlag {
    /// The photo carries no camera EXIF: none at all (screenshots, messenger-forwarded
    /// photos), or only what an editor writes (no capture time, camera or GPS).
    NoExif,
    /// The EXIF block is damaged; what could be read was kept.
    ExifDamaged,
    /// One EXIF value could not be right and was left out. `field` is the EXIF tag name.
    ExifValueIgnored { field: String, reason: String },
    /// A HEIF photo ingested without the platform's preview: no thumbnail or rendition yet.
    NoPreview,
    /// A voice note whose container does not state its length.
    DurationUnknown,
}

/// What was stored for one photo or voice note.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct MediaRecord {
    /// SHA-256 of the original file, lower-case hex: its identity everywhere.
    pub sha256: String,
    pub kind: MediaKind,
    /// Detected from the content, not from the file name.
    pub mime: String,
    /// Size of the original in bytes.
    pub bytes: u64,
    /// The original, relative to the media root (`originals/ab/<sha256>.<ext>`).
    pub original_path: String,
    /// Upright size of a photo in pixels (a HEIF's only when its EXIF states it).
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub exif: Option<PhotoExif>,
    pub thumbnail: Option<Rendition>,
    pub upload: Option<Rendition>,
    /// Length of a voice note.
    pub duration_ms: Option<u64>,
    /// The phone's speech recognition of a voice note, as given.
    pub transcript: Option<String>,
    pub flags: Vec<MediaFlag>,
    /// True when these bytes were already in the media folder (nothing new was written).
    pub already_stored: bool,
}

/// Size limits checked before anything is decoded or stored (decompression bombs, runaway files).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct DecodeLimits {
    /// Largest width or height accepted, read from the header before decoding.
    pub max_side: u32,
    /// Largest width × height accepted.
    pub max_pixels: u64,
    /// Most a decoder may allocate for one image (JPEG coefficient buffers, PNG/WebP pixels).
    pub max_alloc_bytes: u64,
    /// Largest photo file accepted.
    pub max_photo_bytes: u64,
    /// Largest voice-note file accepted.
    pub max_audio_bytes: u64,
}

impl Default for DecodeLimits {
    /// Room for every phone camera's default modes (12–50 MP; 8160×6144 is 50 MP) with margin;
    /// 200 MP "hi-res" modes are refused. Decoding a 64 MP progressive JPEG at 1/4 scale needs
    /// its ~190 MB of coefficients, hence the allocation cap.
    fn default() -> Self {
        DecodeLimits {
            max_side: 16_384,
            max_pixels: 64_000_000,
            max_alloc_bytes: 256 * 1024 * 1024,
            max_photo_bytes: 100 * 1024 * 1024,
            max_audio_bytes: 512 * 1024 * 1024,
        }
    }
}

/// Sizes of the derived images and the limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct IngestOptions {
    /// Long edge of the thumbnail, px.
    pub thumb_edge: u32,
    /// Long edge of the upload rendition, px (smaller photos keep their size).
    pub upload_edge: u32,
    pub limits: DecodeLimits,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            thumb_edge: 320,
            upload_edge: 1600,
            limits: DecodeLimits::default(),
        }
    }
}

/// One file of a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct IngestRequest {
    pub path: String,
    pub kind: MediaKind,
    /// For a HEIF photo: a JPEG/PNG preview the platform made, upright as displayed.
    pub preview_path: Option<String>,
    /// For a voice note: the phone's transcript.
    pub transcript: Option<String>,
}

/// The result for one file of a batch: a record or the reason it was refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct IngestOutcome {
    pub path: String,
    pub record: Option<MediaRecord>,
    /// The error's message (no content or personal data), when the file was refused.
    pub error: Option<String>,
}

/// Longest transcript accepted (about 40 minutes of speech).
const MAX_TRANSCRIPT_BYTES: usize = 256 * 1024;

/// The media folder: where originals, thumbnails and upload renditions live.
#[derive(Debug, Clone)]
pub struct MediaStore {
    root: PathBuf,
    options: IngestOptions,
}

fn invalid(reason: &str) -> CoreError {
    CoreError::InvalidMedia {
        reason: reason.to_string(),
    }
}

/// Runs third-party parsing; a panic in it becomes an `InvalidMedia` error.
fn guarded<T>(work: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(work))
        .unwrap_or_else(|_| Err(invalid("decoder failed on damaged data")))
}

/// Reads the EXIF of an image file's bytes as ingest does (same checks, same flags), for a
/// copy that arrived elsewhere — the server reads an uploaded original with it. `None` with
/// `NoExif` when there is no camera EXIF; a damaged block gives what could be read plus
/// `ExifDamaged`. Never panics on hostile bytes.
pub fn read_photo_exif<R: std::io::BufRead + Seek>(
    reader: &mut R,
) -> (Option<PhotoExif>, Vec<MediaFlag>) {
    let mut flags = Vec::new();
    let exif =
        catch_unwind(AssertUnwindSafe(|| exif::read(reader, &mut flags))).unwrap_or_else(|_| {
            flags.push(MediaFlag::ExifDamaged);
            None
        });
    let camera_exif = exif.as_ref().is_some_and(|e| {
        e.taken_local.is_some() || e.make.is_some() || e.model.is_some() || e.gps.is_some()
    });
    if !camera_exif && !flags.contains(&MediaFlag::ExifDamaged) {
        flags.push(MediaFlag::NoExif);
    }
    (exif, flags)
}

impl MediaStore {
    /// Opens (creating) the media folder at `root` with default options.
    pub fn open(root: impl Into<PathBuf>) -> Result<MediaStore> {
        Self::with_options(root, IngestOptions::default())
    }

    pub fn with_options(root: impl Into<PathBuf>, options: IngestOptions) -> Result<MediaStore> {
        let root = root.into();
        if options.thumb_edge == 0
            || options.upload_edge < options.thumb_edge
            || options.upload_edge > 8192
        {
            return Err(CoreError::InvalidArgument(
                "thumbnail edge must be positive and at most the upload edge (≤ 8192)".into(),
            ));
        }
        for dir in ["originals", "thumbs", "uploads", "tmp"] {
            std::fs::create_dir_all(root.join(dir))?;
        }
        Ok(MediaStore { root, options })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn options(&self) -> &IngestOptions {
        &self.options
    }

    /// The absolute path of a record's relative path.
    pub fn resolve(&self, rel: &str) -> PathBuf {
        rel.split('/')
            .fold(self.root.clone(), |p, part| p.join(part))
    }

    /// The absolute path of a record's relative path, for paths that come from outside (an
    /// app): only plain names below the media root, so `..` or an absolute path cannot reach
    /// other files.
    pub fn file_path(&self, rel: &str) -> Result<PathBuf> {
        let plain =
            |part: &str| !part.is_empty() && part != "." && part != ".." && !part.contains('\\');
        if rel.split('/').all(plain) {
            Ok(self.resolve(rel))
        } else {
            Err(CoreError::InvalidArgument(
                "media path must be relative to the media folder".into(),
            ))
        }
    }

    /// Removes temporary files a crash or a killed app left behind. Call it when no ingest runs.
    pub fn sweep_temp(&self) -> Result<u64> {
        storage::sweep_temp(&self.root)
    }

    /// Ingests one photo. `preview`: for HEIF/HEIC only, an upright JPEG/PNG the platform made
    /// from it (HEVC is not decoded here); thumbnails and the rendition are made from it.
    pub fn ingest_photo(&self, path: &Path, preview: Option<&Path>) -> Result<MediaRecord> {
        self.photo(path, preview, &CancelToken::new())
    }

    /// Ingests one voice note (m4a/AAC, Ogg Opus, WAV) with the phone's transcript, if any.
    pub fn ingest_voice_note(
        &self,
        path: &Path,
        transcript: Option<String>,
    ) -> Result<MediaRecord> {
        self.voice(path, transcript, &CancelToken::new())
    }

    /// Ingests several files, reporting progress (files done of total) and stopping at `cancel`.
    /// A refused file does not stop the batch: its outcome carries the reason. On cancel the
    /// files already done stay stored (they are complete and content-addressed; ingesting them
    /// again is cheap) and the call returns `CoreError::Cancelled`.
    pub fn ingest_batch(
        &self,
        items: &[IngestRequest],
        progress: &dyn Progress,
        cancel: &CancelToken,
    ) -> Result<Vec<IngestOutcome>> {
        let total = items.len() as u64;
        let mut out = Vec::with_capacity(items.len());
        progress.on_progress(0, total);
        for (i, item) in items.iter().enumerate() {
            cancel.check()?;
            let result = match item.kind {
                MediaKind::Photo => self.photo(
                    Path::new(&item.path),
                    item.preview_path.as_deref().map(Path::new),
                    cancel,
                ),
                MediaKind::VoiceNote => {
                    self.voice(Path::new(&item.path), item.transcript.clone(), cancel)
                }
            };
            let outcome = match result {
                Err(CoreError::Cancelled) => return Err(CoreError::Cancelled),
                Ok(record) => IngestOutcome {
                    path: item.path.clone(),
                    record: Some(record),
                    error: None,
                },
                Err(e) => IngestOutcome {
                    path: item.path.clone(),
                    record: None,
                    error: Some(e.to_string()),
                },
            };
            out.push(outcome);
            progress.on_progress(i as u64 + 1, total);
        }
        Ok(out)
    }

    /// Opens a source file, refuses empty and oversized ones, and sniffs its format.
    fn open_source(&self, path: &Path, max_bytes: u64) -> Result<(File, Format)> {
        let mut file = File::open(path)?;
        let len = file.metadata()?.len();
        if len == 0 {
            return Err(invalid("file is empty"));
        }
        if len > max_bytes {
            return Err(CoreError::InvalidMedia {
                reason: format!("file is larger than the {max_bytes}-byte limit"),
            });
        }
        let mut head = [0u8; 64];
        let mut n = 0;
        while n < head.len() {
            match file.read(&mut head[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
        }
        file.seek(SeekFrom::Start(0))?;
        let format = sniff::sniff(&head[..n])
            .ok_or_else(|| invalid("not a supported photo or audio format"))?;
        Ok((file, format))
    }

    fn photo(
        &self,
        path: &Path,
        preview: Option<&Path>,
        cancel: &CancelToken,
    ) -> Result<MediaRecord> {
        let limits = &self.options.limits;
        let (mut src, format) = self.open_source(path, limits.max_photo_bytes)?;
        if !format.is_photo() {
            return Err(invalid("not a JPEG, PNG, WebP or HEIF image"));
        }
        let (mut tmp, sha256, bytes) = storage::copy_and_hash(
            &mut src,
            &self.root.join("tmp"),
            limits.max_photo_bytes,
            cancel,
        )?;
        drop(src);
        let original_path = storage::rel_path("originals", &sha256, format.ext());
        let thumb_path = storage::rel_path("thumbs", &sha256, "jpg");
        let upload_path = storage::rel_path("uploads", &sha256, "jpg");
        let already_stored = self.resolve(&original_path).exists();

        let mut flags = Vec::new();
        tmp.file().seek(SeekFrom::Start(0))?;
        let exif = guarded(|| {
            let mut r = BufReader::new(tmp.file());
            Ok(exif::read(&mut r, &mut flags))
        })?;
        let camera_exif = exif.as_ref().is_some_and(|e| {
            e.taken_local.is_some() || e.make.is_some() || e.model.is_some() || e.gps.is_some()
        });
        if !camera_exif && !flags.contains(&MediaFlag::ExifDamaged) {
            flags.push(MediaFlag::NoExif);
        }
        let orientation = exif.as_ref().and_then(|e| e.orientation).unwrap_or(1);
        let swaps = orientation >= 5;

        // Size as stored, from the header, checked against the limits before any decode.
        let stored_dims = if format == Format::Heif {
            exif.as_ref()
                .and_then(|e| Some((e.pixel_width?, e.pixel_height?)))
        } else {
            let d = guarded(|| raster::header_dims(format, tmp.path()))?;
            raster::check_dims(d.0, d.1, limits)?;
            Some(d)
        };
        let (width, height) = match stored_dims {
            Some((w, h)) if swaps => (Some(h), Some(w)),
            Some((w, h)) => (Some(w), Some(h)),
            None => (None, None),
        };

        // Where the pixels come from: the file itself, or the platform's preview of a HEIF.
        let pixel_source: Option<(Format, PathBuf, u32)> = if format == Format::Heif {
            match preview {
                Some(p) => {
                    let (_, pf) = self.open_source(p, limits.max_photo_bytes)?;
                    if !matches!(pf, Format::Jpeg | Format::Png | Format::Webp) {
                        return Err(invalid("HEIF preview must be JPEG, PNG or WebP"));
                    }
                    // The preview is upright as the platform displays it.
                    Some((pf, p.to_path_buf(), 1))
                }
                None => {
                    flags.push(MediaFlag::NoPreview);
                    None
                }
            }
        } else {
            Some((format, tmp.path().to_path_buf(), orientation))
        };

        let (thumbnail, upload) = match pixel_source {
            None => (None, None),
            Some(_) if already_stored && self.derived_exist(&thumb_path, &upload_path) => (
                Some(self.existing_rendition(&thumb_path)?),
                Some(self.existing_rendition(&upload_path)?),
            ),
            Some((pf, ppath, porient)) => {
                cancel.check()?;
                let r = guarded(|| {
                    raster::render(
                        pf,
                        &ppath,
                        porient,
                        self.options.thumb_edge,
                        self.options.upload_edge,
                        limits,
                    )
                })?;
                let thumb = self.store_rendition(&thumb_path, r.thumb)?;
                let upload = self.store_rendition(&upload_path, r.upload)?;
                (Some(thumb), Some(upload))
            }
        };
        cancel.check()?;
        // The original last: once it is under its name, its renditions are too.
        tmp.persist(&self.resolve(&original_path))?;
        Ok(MediaRecord {
            sha256,
            kind: MediaKind::Photo,
            mime: format.mime().to_string(),
            bytes,
            original_path,
            width,
            height,
            exif,
            thumbnail,
            upload,
            duration_ms: None,
            transcript: None,
            flags,
            already_stored,
        })
    }

    fn derived_exist(&self, thumb: &str, upload: &str) -> bool {
        self.resolve(thumb).is_file() && self.resolve(upload).is_file()
    }

    fn existing_rendition(&self, rel: &str) -> Result<Rendition> {
        let path = self.resolve(rel);
        let (width, height) =
            raster::jpeg_dims(&path).ok_or_else(|| invalid("stored rendition is damaged"))?;
        Ok(Rendition {
            path: rel.to_string(),
            sha256: storage::hash_file(&path)?,
            bytes: std::fs::metadata(&path)?.len(),
            width,
            height,
        })
    }

    fn store_rendition(&self, rel: &str, enc: raster::Encoded) -> Result<Rendition> {
        let path = self.resolve(rel);
        // A rendition left by an earlier run of an older build is replaced only if missing:
        // names are keyed by the original, and any complete rendition of it will do.
        storage::write_atomic(&path, &enc.bytes)?;
        if path.is_file() && std::fs::metadata(&path)?.len() != enc.bytes.len() as u64 {
            return self.existing_rendition(rel);
        }
        Ok(Rendition {
            path: rel.to_string(),
            sha256: storage::hash_bytes(&enc.bytes),
            bytes: enc.bytes.len() as u64,
            width: enc.width,
            height: enc.height,
        })
    }

    fn voice(
        &self,
        path: &Path,
        transcript: Option<String>,
        cancel: &CancelToken,
    ) -> Result<MediaRecord> {
        let limits = &self.options.limits;
        let transcript = transcript
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty());
        if transcript
            .as_ref()
            .is_some_and(|t| t.len() > MAX_TRANSCRIPT_BYTES)
        {
            return Err(CoreError::InvalidArgument(format!(
                "transcript is longer than {MAX_TRANSCRIPT_BYTES} bytes"
            )));
        }
        let (mut src, format) = self.open_source(path, limits.max_audio_bytes)?;
        if !matches!(format, Format::M4a | Format::Ogg | Format::Wav) {
            return Err(invalid("not an m4a, Ogg Opus or WAV recording"));
        }
        let (mut tmp, sha256, bytes) = storage::copy_and_hash(
            &mut src,
            &self.root.join("tmp"),
            limits.max_audio_bytes,
            cancel,
        )?;
        drop(src);
        let duration_ms = guarded(|| audio::duration_ms(format, tmp.file()))?;
        let mut flags = Vec::new();
        if duration_ms.is_none() {
            flags.push(MediaFlag::DurationUnknown);
        }
        let original_path = storage::rel_path("originals", &sha256, format.ext());
        let already_stored = self.resolve(&original_path).exists();
        cancel.check()?;
        tmp.persist(&self.resolve(&original_path))?;
        Ok(MediaRecord {
            sha256,
            kind: MediaKind::VoiceNote,
            mime: format.mime().to_string(),
            bytes,
            original_path,
            width: None,
            height: None,
            exif: None,
            thumbnail: None,
            upload: None,
            duration_ms,
            transcript,
            flags,
            already_stored,
        })
    }
}
