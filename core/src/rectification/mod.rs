//! Rectification tasks (整改): one automerge document per task, like inspections,
//! so they are edited offline, sync and merge the same way. Layout: docs/rectification.md.
//!
//! A task is opened by a finding (the standard's per-item rule, or the inspector's choice),
//! names the responsible party and a deadline, and moves open → in_progress → submitted →
//! closed, or back to reopened. Closure needs the evidence the rule asks for and a supervisor's
//! approval; a follow-up inspection (复查) links to the task with before/after photos and either
//! submits it for closure or reopens it.

mod doc;
mod rules;

pub use doc::{RectificationDoc, TASK_SCHEMA, document_type};
pub use rules::check_write;

use crate::scoring::ScoreCard;
use crate::standard::{EVIDENCE_KINDS, Standard};
use serde::{Deserialize, Serialize};

/// Where a task is in its loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum RectificationStatus {
    Open,
    InProgress,
    /// Submitted for closure (销号申请), waiting for a supervisor.
    Submitted,
    Closed,
    Reopened,
}

impl RectificationStatus {
    /// Every status, in the order of the loop.
    pub const ALL: [Self; 5] = [
        Self::Open,
        Self::InProgress,
        Self::Submitted,
        Self::Closed,
        Self::Reopened,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::InProgress => "in_progress",
            Self::Submitted => "submitted",
            Self::Closed => "closed",
            Self::Reopened => "reopened",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "open" => Self::Open,
            "in_progress" => Self::InProgress,
            "submitted" => Self::Submitted,
            "closed" => Self::Closed,
            "reopened" => Self::Reopened,
            _ => return None,
        })
    }

    /// open → in_progress → submitted → closed; submitted or closed → reopened → in_progress or
    /// submitted. Submitting straight from open is allowed (fixed on the spot).
    pub fn can_become(self, to: RectificationStatus) -> bool {
        use RectificationStatus::*;
        matches!(
            (self, to),
            (Open | Reopened, InProgress)
                | (Open | InProgress | Reopened, Submitted)
                | (Submitted, Closed)
                | (Submitted | Closed, Reopened)
        )
    }

    /// Moves only a supervisor makes: approving closure and reopening.
    pub fn is_review(self) -> bool {
        matches!(self, Self::Closed | Self::Reopened)
    }

    /// Whether the responsible party still owes work (the deadline counts).
    pub fn is_pending(self) -> bool {
        matches!(self, Self::Open | Self::InProgress | Self::Reopened)
    }
}

impl std::fmt::Display for RectificationStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What opens a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct NewRectification {
    pub community_id: String,
    /// The inspection whose finding opened it.
    pub inspection_id: String,
    pub item_code: String,
    pub item_title: String,
    /// 物业, 街道, 收运单位...
    pub responsible: String,
    pub deadline_days: u32,
    /// The item's deduction, if it was scored.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub deduction: Option<f64>,
    /// Closure evidence kinds required (from [`EVIDENCE_KINDS`]).
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub required_evidence: Vec<String>,
    /// SHA-256 of the finding's photos (the "before" evidence).
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub finding_evidence: Vec<String>,
    /// "standard" when the standard's rule opened it, "inspector" when the inspector chose to.
    #[cfg_attr(feature = "uniffi", uniffi(default = "inspector"))]
    pub source: String,
}

/// One piece of closure evidence: a text (cause analysis, actions, report...) or a photo by hash.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct ClosureEvidence {
    /// One of [`EVIDENCE_KINDS`].
    pub kind: String,
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub text: Option<String>,
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub sha256: Option<String>,
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub by: String,
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub at_ms: i64,
    /// For a photo: SHA-256 of the device's thumbnail and upload rendition, the only ones the
    /// server accepts and serves for it (as `EvidenceRef::thumb` / `upload`).
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub thumb: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub upload: Option<String>,
    /// Read from the document, ignored when adding: the device that created the entry, as
    /// `EvidenceRef::device_id` (empty when another device wrote its hash).
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub device_id: String,
}

/// A follow-up inspection (复查) linked to the task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct FollowUp {
    pub inspection_id: String,
    /// Whether the follow-up found the problem fixed.
    pub rectified: bool,
    pub by: String,
    pub at_ms: i64,
    pub note: Option<String>,
}

/// A status change, in document order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct RectificationEvent {
    pub to: RectificationStatus,
    pub by: String,
    pub device_id: String,
    pub at_ms: i64,
    pub text: Option<String>,
}

/// A whole task as apps and supervisors see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Rectification {
    pub id: String,
    pub community_id: String,
    pub inspection_id: String,
    pub item_code: String,
    pub item_title: String,
    pub responsible: String,
    pub source: String,
    pub opened_by: String,
    pub opened_device_id: String,
    pub opened_at_ms: i64,
    pub deadline_ms: i64,
    pub deduction: Option<f64>,
    pub status: RectificationStatus,
    pub required_evidence: Vec<String>,
    pub finding_evidence: Vec<String>,
    pub closure_evidence: Vec<ClosureEvidence>,
    pub follow_ups: Vec<FollowUp>,
    pub events: Vec<RectificationEvent>,
}

impl Rectification {
    /// Required evidence kinds not yet supplied.
    pub fn missing_evidence(&self) -> Vec<String> {
        self.required_evidence
            .iter()
            .filter(|k| !self.closure_evidence.iter().any(|e| &e.kind == *k))
            .cloned()
            .collect()
    }

    /// Past its deadline while the responsible party still owes work.
    pub fn is_overdue(&self, now_ms: i64) -> bool {
        self.status.is_pending() && now_ms > self.deadline_ms
    }

    /// SHA-256 of the photos among the closure evidence.
    pub fn closure_photos(&self) -> Vec<String> {
        self.closure_evidence
            .iter()
            .filter_map(|e| e.sha256.clone())
            .collect()
    }
}

/// The tasks an inspection's findings open under its standard's per-item rules.
pub fn due_under_standard(
    standard: &Standard,
    inspection: &crate::inspection::Inspection,
    card: &ScoreCard,
) -> Vec<NewRectification> {
    card.items
        .iter()
        .filter_map(|s| {
            let item = standard.item(&s.code)?;
            let rule = item.rectification.as_ref()?;
            if !s.applicable || !s.answered || !rule.triggers(s.deduction, s.vetoed) {
                return None;
            }
            Some(NewRectification {
                community_id: inspection.community_id.clone(),
                inspection_id: inspection.id.clone(),
                item_code: item.code.clone(),
                item_title: item.title.clone(),
                responsible: rule.responsible.clone(),
                deadline_days: rule.deadline_days,
                deduction: Some(s.deduction),
                required_evidence: rule.evidence.clone(),
                finding_evidence: inspection
                    .evidence
                    .iter()
                    .filter(|e| e.item_code == item.code)
                    .map(|e| e.sha256.clone())
                    .collect(),
                source: "standard".into(),
            })
        })
        .collect()
}
