//! The media-sync protocol's JSON bodies and limits (docs/media-sync.md), shared by the device
//! client and the server so both read and write the same shapes.
//!
//! Every stored file is addressed twice: by the evidence hash (`sha256`, the SHA-256 of the
//! original, which is what inspection documents reference) and the rendition
//! (`thumb` / `upload` / `original`), and by the blob's own SHA-256 (`blob`). For the original
//! the two hashes are the same; a thumbnail or upload rendition is a different file, whose own
//! hash the document's evidence entry declares (`thumb` / `upload`, from the device's media
//! record); the server accepts only that blob and checks every byte against it before keeping it.

use serde::{Deserialize, Serialize};

/// One of the files kept for a photo or voice note.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum MediaRendition {
    /// The ~320 px JPEG thumbnail.
    Thumb,
    /// The ~1600 px JPEG a supervisor looks at.
    Upload,
    /// The file as captured (photo or voice note).
    Original,
}

impl MediaRendition {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaRendition::Thumb => "thumb",
            MediaRendition::Upload => "upload",
            MediaRendition::Original => "original",
        }
    }

    pub fn parse(s: &str) -> Option<MediaRendition> {
        match s {
            "thumb" => Some(MediaRendition::Thumb),
            "upload" => Some(MediaRendition::Upload),
            "original" => Some(MediaRendition::Original),
            _ => None,
        }
    }

    /// Largest blob the server accepts for this rendition. Originals: the device's own ingest
    /// limits (100 MB photos, 512 MB voice notes); renditions are small JPEGs.
    pub fn max_bytes(self) -> u64 {
        match self {
            MediaRendition::Thumb => 2 * 1024 * 1024,
            MediaRendition::Upload => 32 * 1024 * 1024,
            MediaRendition::Original => 512 * 1024 * 1024,
        }
    }
}

/// Content types the server keeps. Renditions are always JPEG; originals are what ingest accepts.
pub const ORIGINAL_TYPES: &[&str] = &[
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/heif",
    "audio/mp4",
    "audio/ogg",
    "audio/wav",
];

/// Most items one `POST /v1/media/status` may ask about.
pub const MAX_STATUS_ITEMS: usize = 500;

/// Whether `s` is a lower-case hex SHA-256.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// One file the device wants the server to hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaItemRef {
    /// The evidence hash (SHA-256 of the original).
    pub sha256: String,
    pub rendition: MediaRendition,
    /// SHA-256 of this file (equal to `sha256` for the original).
    pub blob: String,
    /// Its size in bytes.
    pub bytes: u64,
}

/// `POST /v1/media/status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaStatusRequest {
    pub items: Vec<MediaItemRef>,
}

/// What the server holds of one requested file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaState {
    /// This device has sent this blob and the server verified it: nothing to send.
    Complete,
    /// `offset` bytes of this device's upload are staged: send from there.
    Partial,
    /// Nothing of this device's: send from 0 (also when the server keeps the bytes from another
    /// device: sending them proves this device holds them; no second copy is kept).
    Absent,
    /// No document this device's user may write references the hash with this blob (yet): sync
    /// the document first. Uploads of it are refused with 403.
    NotReferenced,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaItemStatus {
    pub sha256: String,
    pub rendition: MediaRendition,
    /// The blob the answer is about: the requested one.
    pub blob: String,
    pub state: MediaState,
    /// Bytes the server holds of it (the blob's size when complete).
    pub offset: u64,
}

/// The answer to `POST /v1/media/status`, one entry per requested item, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaStatusResponse {
    pub items: Vec<MediaItemStatus>,
}

/// The answer to a successful `PUT /v1/media/{sha256}/{rendition}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaUploadResponse {
    /// Bytes the server now holds (send the next chunk from here).
    pub offset: u64,
    /// The blob is verified and kept.
    pub complete: bool,
    pub blob: String,
}

/// A refused upload (4xx, 507). `error` is a stable word: "offset_mismatch" (409; `offset`
/// says where to resume), "upload_in_progress" (409), "hash_mismatch" (422; the staged bytes
/// were dropped, start again from 0), "too_large" (413), "quota_exceeded" and
/// "too_many_uploads" (507: the user's uploads in progress fill the staging quota; finish or
/// cancel them, or try later), "bad_request", "forbidden", "not_found".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaErrorBody {
    pub error: String,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
}
