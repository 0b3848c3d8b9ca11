//! When a rectification task is overdue: the responsible party still owes work (the status is
//! pending: open, in progress or reopened) and its deadline has passed. Stated once here for
//! rows read in Rust, and once as SQL for filters (`store::sql::overdue_sql`), built from the
//! same pending statuses.

use fenlei_core::rectification::RectificationStatus;

/// Whether a task with this stored status and deadline is overdue at `now_ms`. An unknown
/// status is never overdue.
pub fn is_overdue(status: &str, deadline_ms: i64, now_ms: i64) -> bool {
    RectificationStatus::parse(status).is_some_and(|s| s.is_pending()) && now_ms > deadline_ms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pending_tasks_past_their_deadline_are_overdue() {
        for (status, overdue) in [
            ("open", true),
            ("in_progress", true),
            ("reopened", true),
            ("submitted", false),
            ("closed", false),
            ("made_up", false),
        ] {
            assert_eq!(is_overdue(status, 1_000, 1_001), overdue, "{status}");
            assert!(
                !is_overdue(status, 1_000, 1_000),
                "{status} at its deadline"
            );
        }
    }
}
