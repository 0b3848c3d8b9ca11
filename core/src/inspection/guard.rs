//! Automerge can panic on hostile or damaged bytes (BRIEF.md §8). Every decode of bytes we did
//! not just produce ourselves runs through [`guarded`], which turns a panic into a typed error.

use crate::{CoreError, Result};
use automerge::{AutoCommit, LoadOptions, OnPartialLoad, VerificationMode};
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

/// Applies bytes received from elsewhere (incremental changes or a whole save) to a copy of
/// `doc`, strictly and behind the panic guard, and returns the copy with the number of changes
/// applied once `check_layout` accepts it; `doc` itself is never touched, so refused bytes change
/// nothing. `load_incremental` silently drops a damaged tail (it is made for appended files), so
/// the bytes are first parsed whole — after the document's own bytes, so that incremental changes
/// find the changes they depend on.
pub(crate) fn apply_strictly(
    doc_id: &str,
    doc: &AutoCommit,
    bytes: &[u8],
    check_layout: impl FnOnce(&AutoCommit) -> Result<()>,
) -> Result<(AutoCommit, usize)> {
    let corrupt = |e: automerge::AutomergeError| CoreError::CorruptDocument {
        id: doc_id.to_string(),
        reason: e.to_string(),
    };
    guarded(doc_id, || {
        let mut candidate = doc.clone();
        let mut whole = candidate.save();
        whole.extend_from_slice(bytes);
        AutoCommit::load_with_options(
            &whole,
            LoadOptions::new()
                .on_partial_load(OnPartialLoad::Error)
                .verification_mode(VerificationMode::DontCheck),
        )
        .map_err(corrupt)?;
        let n = candidate.load_incremental(bytes).map_err(corrupt)?;
        check_layout(&candidate)?;
        Ok((candidate, n))
    })
}

/// Loads stored or received bytes of any document as plain automerge, behind the panic guard
/// (sync and compaction, which do not look inside, on every storage engine).
pub fn load_automerge(doc_id: &str, bytes: &[u8]) -> Result<AutoCommit> {
    guarded(doc_id, || {
        AutoCommit::load(bytes).map_err(|e| CoreError::CorruptDocument {
            id: doc_id.to_string(),
            reason: e.to_string(),
        })
    })
}
