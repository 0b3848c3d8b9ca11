//! Automerge can panic on hostile or damaged bytes (BRIEF.md §8). Every decode of bytes we did
//! not just produce ourselves runs through [`guarded`], which turns a panic into a typed error.

use crate::{CoreError, Result};
use std::panic::{AssertUnwindSafe, catch_unwind};

pub(crate) fn guarded<T>(doc_id: &str, work: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(work)) {
        Ok(result) => result,
        Err(panic) => {
            let reason = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "decoder panicked".into());
            Err(CoreError::CorruptDocument {
                id: doc_id.to_string(),
                reason: format!("decoder failed: {reason}"),
            })
        }
    }
}
