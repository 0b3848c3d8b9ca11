//! Reviews and task decisions, as rules: whether a supervisor may review an inspection or decide
//! on a task's closure, and what it moves to. Both storage engines write the result.
//!
//! **Server actors.** The server writes into documents only on a person's behalf (a
//! supervisor's review, a task approval) or on the standard's (tasks its rules open). Each such
//! writer has an automerge actor of its own, derived as a UUID from SHA-256 of
//! `"fenlei-server-actor/" + purpose + "/" + user id` (purpose `review` for supervisors,
//! `standard` for the rule engine; version nibble 8, RFC 9562 "custom"). It is never a device's
//! actor, so it cannot collide with changes a device makes at the same time, and every write
//! by one actor runs under the store's single writer lock, so its sequence numbers never fork.
//! The change message names the supervisor (`by`), so the history shows who reviewed.

use crate::domain::access::task_readable;
use crate::error::{ServerError, ServerResult};
use crate::model::*;
use fenlei_core::inspection::InspectionStatus;
use fenlei_core::rectification::{Rectification, RectificationStatus};
use sha2::{Digest, Sha256};

/// The automerge actor (as a device-id UUID string) the server writes with for `user_id`
/// doing `purpose` (see the module docs).
pub fn server_actor(purpose: &str, user_id: &str) -> String {
    let digest = Sha256::digest(format!("fenlei-server-actor/{purpose}/{user_id}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x80; // version 8
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    uuid::Uuid::from_bytes(b).to_string()
}

/// Who the rule engine writes as.
pub const STANDARD_USER: &str = "system:standard";

/// Checks a supervisor's review of `inspection` (as stored) on any storage engine: the caller
/// reads it, the move is allowed, a return has a comment. Returns the status it moves to and
/// the trimmed comment.
pub(crate) fn review_target<'c>(
    auth: &DeviceAuth,
    inspection: &fenlei_core::inspection::Inspection,
    community: Option<&fenlei_core::community::Community>,
    approve: bool,
    comment: Option<&'c str>,
) -> ServerResult<(InspectionStatus, Option<&'c str>)> {
    if !crate::domain::access::can_read(auth, inspection, community) {
        return Err(ServerError::Forbidden(
            "inspection outside your scope".into(),
        ));
    }
    let to = if approve {
        InspectionStatus::Approved
    } else {
        InspectionStatus::Returned
    };
    if !inspection.status.can_become(to) {
        return Err(ServerError::Conflict(format!(
            "an inspection that is {} cannot be {}",
            inspection.status,
            if approve { "approved" } else { "returned" }
        )));
    }
    let comment = comment.map(str::trim).filter(|c| !c.is_empty());
    if !approve && comment.is_none() {
        return Err(ServerError::BadRequest(
            "returning an inspection needs a comment".into(),
        ));
    }
    Ok((to, comment))
}

/// A review's status change refused by the document (another review won the race): a conflict.
pub(crate) fn review_error(e: fenlei_core::CoreError) -> ServerError {
    match e {
        fenlei_core::CoreError::InvalidTransition { from, to } => {
            ServerError::Conflict(format!("an inspection that is {from} cannot become {to}"))
        }
        other => other.into(),
    }
}

/// Checks a supervisor's decision on a task's closure on any storage engine; returns the
/// status it moves to and the trimmed comment.
pub(crate) fn decision_target<'c>(
    auth: &DeviceAuth,
    task: &Rectification,
    community: Option<&fenlei_core::community::Community>,
    approve: bool,
    comment: Option<&'c str>,
) -> ServerResult<(RectificationStatus, Option<&'c str>)> {
    if !task_readable(auth, task, community) || auth.user.role == Role::Inspector {
        return Err(ServerError::Forbidden("task outside your scope".into()));
    }
    let to = if approve {
        RectificationStatus::Closed
    } else {
        RectificationStatus::Reopened
    };
    if !task.status.can_become(to) {
        return Err(ServerError::Conflict(format!(
            "a task that is {} cannot become {to}",
            task.status
        )));
    }
    if approve && !task.missing_evidence().is_empty() {
        return Err(ServerError::Conflict(format!(
            "closure evidence missing: {}",
            task.missing_evidence().join(", ")
        )));
    }
    let comment = comment.map(str::trim).filter(|c| !c.is_empty());
    if !approve && comment.is_none() {
        return Err(ServerError::BadRequest(
            "reopening a task needs a comment".into(),
        ));
    }
    Ok((to, comment))
}
