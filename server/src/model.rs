//! The plain types every layer of the server shares: accounts and their rights, the rows the
//! supervisor API lists, chain entries, stored blobs and upload limits. Nothing here depends on
//! another part of the server; storage engines fill these, rules read them, handlers render them.

use fenlei_core::protocol::Assignments;
use fenlei_core::protocol::media::MediaRendition;
use fenlei_core::tamper::ChainLink;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Inspector,
    Supervisor,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Inspector => "inspector",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "inspector" => Some(Role::Inspector),
            "supervisor" => Some(Role::Supervisor),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub name: String,
    pub role: Role,
    /// Grows whenever the user's scope changes, so devices re-read the feed from the start.
    pub scope_epoch: i64,
}

/// An authenticated device and its user's rights.
#[derive(Debug, Clone)]
pub struct DeviceAuth {
    pub device_id: String,
    pub user: User,
    pub scope: Assignments,
}

/// What a scope entry names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeKind {
    Community,
    Street,
    District,
}

impl ScopeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ScopeKind::Community => "community",
            ScopeKind::Street => "street",
            ScopeKind::District => "district",
        }
    }
}

/// Filters of the supervisor's inspection list (all optional).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ListFilter {
    pub community: Option<String>,
    pub street: Option<String>,
    pub district: Option<String>,
    pub inspector: Option<String>,
    pub status: Option<String>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InspectionRow {
    pub id: String,
    pub community_id: String,
    pub community_name: Option<String>,
    pub district: Option<String>,
    pub street: Option<String>,
    pub kind: String,
    pub status: String,
    pub created_by: String,
    pub started_at_ms: i64,
    pub ended_at_ms: Option<i64>,
    pub total: Option<f64>,
    pub max_points: Option<f64>,
    pub grade: Option<String>,
    pub vetoed: bool,
    pub conflict_count: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RankingRow {
    pub rank: u32,
    pub key: String,
    pub name: String,
    pub inspections: u32,
    pub average: f64,
    pub lowest: f64,
    pub vetoed: u32,
    /// Communities of the row (one for a community row) inside the caller's scope.
    pub communities_in_scope: u32,
    /// Of those, how many had a submitted or approved inspection in the period.
    pub communities_inspected: u32,
    /// `communities_inspected / communities_in_scope` (0 when none are in scope).
    pub coverage: f64,
    /// Rectification tasks of the row's communities not closed now.
    pub open_rectifications: u32,
    /// Of those, the ones past their deadline while the responsible party still owes work.
    pub overdue_rectifications: u32,
    /// Inspections of the period by grade label.
    pub grades: std::collections::BTreeMap<String, u32>,
}

/// One task as the supervisor API lists it (docs/rectification.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRow {
    pub id: String,
    pub community_id: String,
    pub community_name: Option<String>,
    pub street: Option<String>,
    pub district: Option<String>,
    pub inspection_id: String,
    pub item_code: String,
    pub item_title: String,
    pub responsible: String,
    pub opened_at_ms: i64,
    pub deadline_ms: i64,
    pub status: String,
    pub overdue: bool,
    pub deduction: Option<f64>,
    pub evidence: Vec<String>,
    pub closure_evidence: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct TaskFilter {
    pub status: Option<String>,
    pub community: Option<String>,
    pub overdue: Option<bool>,
    pub limit: Option<u32>,
}

/// A community in a user's scope.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScopedCommunity {
    pub id: String,
    pub name: String,
    pub street: String,
    pub district: String,
}

/// One scored inspection in a period (for rankings, bulletins and planning).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeriodInspection {
    pub id: String,
    pub community_id: String,
    pub inspector: String,
    pub started_at_ms: i64,
    pub percent: Option<f64>,
    pub grade: Option<String>,
    pub vetoed: bool,
    pub status: String,
}

/// One deduction in a period with its photos (the bulletin's worst findings).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub inspection_id: String,
    pub community_id: String,
    pub community_name: String,
    pub street: String,
    pub district: String,
    pub item_code: String,
    /// The item's title in the inspection's standard (the code when the server lacks it).
    pub item_title: String,
    pub deduction: f64,
    pub note: Option<String>,
    pub started_at_ms: i64,
    pub photos: Vec<String>,
}

/// A verified statement to append.
pub struct NewEntry<'a> {
    pub statement: &'a [u8],
    pub device_signature: &'a str,
    pub device_id: &'a str,
    pub inspection_id: &'a str,
    pub received_at_ms: i64,
}

/// One stored chain entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainRow {
    pub link: ChainLink,
    pub entry_hash: String,
    pub statement: Vec<u8>,
    pub device_id: String,
    pub inspection_id: String,
}

/// A verified blob kept for an evidence hash and rendition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    pub sha256: String,
    pub rendition: MediaRendition,
    pub blob: String,
    pub bytes: u64,
    pub mime: String,
    /// The device that uploaded it first.
    pub device_id: String,
}

/// Limits on uploads in progress (`fenlei-server serve --staging-quota-mib …`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaLimits {
    /// Bytes a user's open uploads may declare in all (their `total`s, from the first request of
    /// each until it completes, fails its hash check, is cancelled or is swept).
    pub staging_quota_bytes: u64,
    /// Uploads a user may have open at once (over all their devices).
    pub max_open_uploads: u32,
    /// Uploads untouched for this long are dropped (bytes and reservation).
    pub staging_max_age: std::time::Duration,
}

impl Default for MediaLimits {
    fn default() -> Self {
        MediaLimits {
            staging_quota_bytes: 1 << 30,
            max_open_uploads: 32,
            staging_max_age: std::time::Duration::from_secs(14 * 86_400),
        }
    }
}

/// Whether an upload may stage bytes ([`MediaIndex::reserve_staging`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Admitted,
    /// The user's open uploads already declare `reserved` bytes; this one does not fit.
    OverQuota {
        reserved: u64,
    },
    /// The user already has `open` uploads open.
    TooManyOpen {
        open: u32,
    },
}

/// The user a password check is about.
#[derive(Debug, Clone)]
pub struct PasswordRecord {
    pub user: User,
    pub phc: String,
}

/// A live web session.
#[derive(Debug, Clone)]
pub struct WebSession {
    pub id: String,
    pub user: User,
    pub csrf_token: String,
    pub expires_ms: i64,
}

/// One community on the dashboard's plot: where it is and its latest score.
#[derive(Debug, Clone, Serialize)]
pub struct CommunityOverview {
    pub id: String,
    pub name: String,
    pub district: String,
    pub street: String,
    /// WGS-84.
    pub lat: f64,
    pub lon: f64,
    pub latest: Option<LatestScore>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LatestScore {
    pub inspection_id: String,
    pub total: f64,
    pub max_points: f64,
    /// total as a percentage of full marks (what rankings compare).
    pub percent: f64,
    pub grade: Option<String>,
    pub vetoed: bool,
    pub started_at_ms: i64,
}

/// An item of a standard, as the inspection detail names it.
#[derive(Debug, Clone, Serialize)]
pub struct ItemTitle {
    pub code: String,
    pub section: String,
    pub title: String,
    pub points: f64,
}

/// Current time (ms since the epoch) for storage callers: the core's wall clock.
pub fn now() -> i64 {
    use fenlei_core::store::Clock;
    fenlei_core::store::SystemClock.now_ms()
}
