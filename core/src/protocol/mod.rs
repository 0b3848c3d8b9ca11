//! The sync protocol's JSON bodies (docs/sync-protocol.md), shared by the device client and the
//! server so both sides read and write exactly the same shapes. Binary automerge sync messages
//! travel as standard base64 (with padding).

pub mod media;

use crate::community::Community;
use serde::{Deserialize, Serialize};

/// The protocol version this build speaks; requests carry it. Version 2 adds rectification
/// task documents to the feed; the server still answers version 1 requests, listing only
/// inspections to them (docs/sync-protocol.md).
pub const PROTOCOL_VERSION: u32 = 2;
/// The oldest protocol version the server still answers.
pub const MIN_PROTOCOL_VERSION: u32 = 1;
/// Most documents one request may carry sync messages for.
pub const MAX_DOCS_PER_REQUEST: usize = 500;
/// Most bytes a request body may have (the server refuses larger bodies with 413).
pub const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;
/// Most feed entries one response lists.
pub const FEED_PAGE: usize = 1000;
/// Most reference records (communities, standards, assignments) one response carries.
pub const REFERENCE_PAGE: usize = 1000;

/// `POST /v1/sync`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncRequest {
    pub protocol: u32,
    /// The feed cursor from the last completed sync; empty for a device that never synced.
    #[serde(default)]
    pub cursor: String,
    /// Whether to list the feed after `cursor` in the response.
    #[serde(default)]
    pub feed: bool,
    /// Whether to send reference data changed after `ref_cursor` in the response.
    #[serde(default)]
    pub reference: bool,
    /// The reference-data cursor from the last completed sync (0 for none).
    #[serde(default)]
    pub ref_cursor: u64,
    /// One automerge sync message per document.
    #[serde(default)]
    pub docs: Vec<DocMessage>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocMessage {
    /// The inspection id.
    pub id: String,
    /// Base64 of an encoded `automerge::sync::Message`.
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncResponse {
    pub protocol: u32,
    /// The feed cursor after the entries in `changed` (send it back once they are all synced).
    pub cursor: String,
    /// Documents in the device's scope changed after the request's cursor, oldest first.
    pub changed: Vec<FeedEntry>,
    /// More feed entries follow: ask again with `cursor`.
    pub feed_more: bool,
    /// The server's reply to every message of the request, in the same order.
    pub docs: Vec<DocReply>,
    pub reference: ReferenceUpdate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedEntry {
    pub id: String,
    /// The document's position in the server's feed: it grows with every change.
    pub seq: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocReply {
    pub id: String,
    /// The server's feed position of the document this reply is up to date with.
    pub seq: u64,
    /// Base64 of the server's `automerge::sync::Message` for this document.
    pub message: String,
}

/// Reference data changed after the request's `ref_cursor`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReferenceUpdate {
    pub cursor: u64,
    pub more: bool,
    pub communities: Vec<Community>,
    pub standards: Vec<StandardSource>,
    /// The device user's current rights, when they changed.
    pub assignments: Option<Assignments>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StandardSource {
    pub id: String,
    pub version: String,
    /// The standard file (TOML, docs/standard-format.md).
    pub source: String,
}

/// What a user may work on: inspectors are assigned communities and streets, supervisors are
/// scoped to districts and streets; an admin's scope is the whole city.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Assignments {
    pub user_id: String,
    pub role: String,
    pub communities: Vec<String>,
    pub streets: Vec<String>,
    pub districts: Vec<String>,
}

/// `POST /v1/enroll`: exchange a one-time enrollment code for the device's credential.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    pub code: String,
    /// The device's id (a UUID): the automerge actor of every change it makes.
    pub device_id: String,
    /// The device's Ed25519 public key (hex) for signed submissions (docs/tamper-evidence.md).
    /// Optional so clients from before tamper evidence still enroll; their statements are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct EnrollResponse {
    /// The device's bearer token. Shown once; the server keeps only its hash.
    pub token: String,
    pub user_id: String,
    pub role: String,
    /// The server's receipt-signing public key (hex); the device pins it. Absent from servers
    /// before tamper evidence.
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub server_key: Option<String>,
}

/// Every 4xx/5xx body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A stable word: "bad_request", "unauthorized", "forbidden", "not_found", "too_large",
    /// "invalid_document", "unsupported_protocol", "internal".
    pub error: String,
    pub reason: String,
    /// The document the error is about, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc: Option<String>,
    /// The document rule a refused change broke (`schema`, `workflow`, `role`, ...;
    /// docs/inspection-document.md, "Rules"), when that is why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}
