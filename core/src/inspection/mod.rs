//! One inspection = one automerge document (docs/inspection-document.md). This module holds the
//! types apps see and [`InspectionDoc`], the document itself: edits, merges, conflicts and history. It does no
//! I/O; the store persists documents and keeps the relational projection.
//!
//! The document layout is specified in `docs/inspection-document.md`.

mod doc;
mod rules;

pub use doc::InspectionDoc;
pub(crate) use doc::{creator_of, written_by};
pub use rules::check_write;
pub(crate) use rules::{list_entries, map_entries};

use crate::answer::ItemAnswer;
use crate::geo::LatLon;
use serde::{Deserialize, Serialize};

/// The kinds of inspection cities run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum InspectionKind {
    /// 日常巡查
    DailyPatrol,
    /// 属地自查
    SelfCheck,
    /// 对调互查
    CrossCheck,
    /// 专项检查
    Special,
    /// 复查 / 追踪督查
    FollowUp,
    /// 回头看
    LookBack,
    /// 明察暗访 / 四不两直
    Unannounced,
}

/// Where an inspection is in its review workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum InspectionStatus {
    Draft,
    Submitted,
    Approved,
    Returned,
}

macro_rules! string_enum {
    ($ty:ty { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $ty {
            /// The stable name used in documents, the database and JSON.
            pub fn as_str(&self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
            /// The inverse of [`Self::as_str`].
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some(Self::$variant),)+ _ => None }
            }
        }
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum!(InspectionKind {
    DailyPatrol => "daily_patrol",
    SelfCheck => "self_check",
    CrossCheck => "cross_check",
    Special => "special",
    FollowUp => "follow_up",
    LookBack => "look_back",
    Unannounced => "unannounced",
});

string_enum!(InspectionStatus {
    Draft => "draft",
    Submitted => "submitted",
    Approved => "approved",
    Returned => "returned",
});

string_enum!(MediaKind {
    Photo => "photo",
    VoiceNote => "voice_note",
});

impl InspectionStatus {
    /// The workflow: draft → submitted → approved / returned; returned → submitted (resubmit);
    /// approved → returned (a supervisor reopens it).
    pub fn can_become(self, to: InspectionStatus) -> bool {
        use InspectionStatus::*;
        matches!(
            (self, to),
            (Draft, Submitted)
                | (Submitted, Approved)
                | (Submitted, Returned)
                | (Returned, Submitted)
                | (Approved, Returned)
        )
    }

    /// Answers may change freely only in a draft; afterwards every edit is an amendment with a reason.
    pub fn needs_amendment_reason(self) -> bool {
        self != InspectionStatus::Draft
    }
}

/// What an app gives to start an inspection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct NewInspection {
    pub community_id: String,
    pub standard_id: String,
    pub standard_version: String,
    pub kind: InspectionKind,
    /// Co-inspectors besides the creator (user ids).
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub co_inspectors: Vec<String>,
}

/// Who makes an edit, and why when it amends a submitted inspection. The device is the store's own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct EditContext {
    /// The signed-in user's id (an inspector or supervisor account).
    pub user_id: String,
    /// Required once the inspection has left the draft state.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub amendment_reason: Option<String>,
    /// Where the device was when the edit was made, if known (WGS-84).
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub location: Option<LatLon>,
}

impl EditContext {
    pub fn by(user_id: impl Into<String>) -> Self {
        EditContext {
            user_id: user_id.into(),
            amendment_reason: None,
            location: None,
        }
    }
    pub fn amending(user_id: impl Into<String>, reason: impl Into<String>) -> Self {
        EditContext {
            user_id: user_id.into(),
            amendment_reason: Some(reason.into()),
            location: None,
        }
    }
}

/// A GPS fix the phone reported (WGS-84, as phone GPS is).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct GpsFix {
    pub location: LatLon,
    /// Horizontal accuracy in metres (68% radius) as the platform reports it.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub accuracy_m: Option<f64>,
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub altitude_m: Option<f64>,
    /// "gps", "network", "fused"... as the platform names it.
    pub provider: String,
    pub at_ms: i64,
    /// The platform's mock-location flag.
    pub is_mock: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum MediaKind {
    Photo,
    VoiceNote,
}

/// A photo or voice note attached to an item, by content hash; the bytes live outside the document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct EvidenceRef {
    /// Lower-case hex SHA-256 of the original file.
    pub sha256: String,
    pub item_code: String,
    pub media: MediaKind,
    pub added_by: String,
    pub at_ms: i64,
    /// Lower-case hex SHA-256 of this device's thumbnail of the photo (`MediaRecord.thumbnail`):
    /// the one thumbnail the server accepts and serves for this reference (docs/media-sync.md).
    /// `None` for a voice note, a HEIF without a preview, or an entry written before the field
    /// existed.
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub thumb: Option<String>,
    /// Lower-case hex SHA-256 of this device's upload rendition (`MediaRecord.upload`), as `thumb`.
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub upload: Option<String>,
    /// Read from the document, ignored when adding: the device that created this entry (the
    /// automerge actor of its map, which the server checks is the device that pushed it). Empty
    /// when its hash was written by another device than the one that created the entry: such an
    /// entry vouches for no device's bytes.
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub device_id: String,
}

/// One answer as it stands in the document, with who set it, when and where.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct RecordedAnswer {
    pub answer: ItemAnswer,
    pub by: String,
    pub device_id: String,
    pub at_ms: i64,
    pub location: Option<LatLon>,
}

/// Two or more people set the same item differently while apart. `candidates` holds every
/// value; `current` is the one automerge picks deterministically until someone resolves it by
/// recording the answer again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct AnswerConflict {
    pub item_code: String,
    pub current: RecordedAnswer,
    pub candidates: Vec<RecordedAnswer>,
}

/// A status change or an amendment, in the order the document holds them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct WorkflowEvent {
    pub kind: WorkflowEventKind,
    pub by: String,
    pub device_id: String,
    pub at_ms: i64,
    /// A reviewer's comment or an amendment's reason.
    pub text: Option<String>,
    /// The amended item, for amendments.
    pub item_code: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum WorkflowEventKind {
    StatusChanged { to: InspectionStatus },
    Amended,
}

/// The whole inspection as an app shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Inspection {
    pub id: String,
    pub community_id: String,
    pub standard_id: String,
    pub standard_version: String,
    pub kind: InspectionKind,
    pub status: InspectionStatus,
    pub created_by: String,
    pub created_device_id: String,
    pub inspectors: Vec<String>,
    pub started_at_ms: i64,
    pub ended_at_ms: Option<i64>,
    pub answers: Vec<RecordedAnswer>,
    pub gps_fixes: Vec<GpsFix>,
    pub evidence: Vec<EvidenceRef>,
    pub events: Vec<WorkflowEvent>,
    pub conflicts: Vec<AnswerConflict>,
}

impl Inspection {
    pub fn item_answers(&self) -> Vec<ItemAnswer> {
        self.answers.iter().map(|a| a.answer.clone()).collect()
    }
}

/// One change in the document's history: who, from which device, when, what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct HistoryEntry {
    /// Hex hash of the automerge change.
    pub change_hash: String,
    pub device_id: String,
    /// The change's sequence number on that device.
    pub seq: u64,
    pub at_ms: i64,
    /// The user the change names; empty for changes made by other software.
    pub by: String,
    /// What the change did: "create", "answer", "clear_answer", "status", "gps", "evidence",
    /// "remove_evidence", "end", or "other".
    pub action: String,
    pub item_code: Option<String>,
    /// Reason or comment given with the change.
    pub text: Option<String>,
}
