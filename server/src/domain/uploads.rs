//! Upload rules that do not depend on storage: how many referencing documents one request
//! reads, and whether a user's open uploads admit another (the staging quota).

use crate::model::*;

/// At most this many documents referencing one hash are read per request (the caller's own
/// first): a hash copied into thousands of documents cannot make one request load them all.
pub const MAX_REFERENCING_DOCUMENTS: usize = 64;

/// The quota decision of [`MediaIndex::reserve_staging`], from what [`RESERVED_SQL`] read.
pub(crate) fn admission(
    reserved_by_others: u64,
    open_others: u64,
    already_open: bool,
    total: u64,
    limits: &MediaLimits,
) -> Admission {
    if !already_open && open_others >= limits.max_open_uploads as u64 {
        return Admission::TooManyOpen {
            open: open_others.min(u32::MAX as u64) as u32,
        };
    }
    if reserved_by_others.saturating_add(total) > limits.staging_quota_bytes {
        return Admission::OverQuota {
            reserved: reserved_by_others,
        };
    }
    Admission::Admitted
}
