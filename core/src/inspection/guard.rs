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

#[cfg(test)]
mod tests {
    use crate::CoreError;
    use crate::inspection::InspectionDoc;

    /// Found by the long fuzzing run of `document_load` (kept in
    /// fuzz/regressions/document_load/): automerge 0.12 panics on this truncated bundle
    /// (an `unwrap` on a LEB128 read in hexane). The guard turns it into a typed error.
    #[test]
    fn an_automerge_decoder_panic_is_a_corrupt_document() {
        let bytes = [
            0x85, 0x6f, 0x4a, 0x83, 0x78, 0xb6, 0x2b, 0x21, 0x03, 0x23, 0x00, 0x01, 0x00, 0x00,
            0x02, 0x00, 0x03, 0x23, 0x03, 0x23, 0x00, 0x6a, 0x74, 0x00, 0x21, 0xfc, 0x61, 0x00,
            0x00, 0x21, 0x00, 0x00, 0x25, 0x00, 0x6f, 0x48, 0x10, 0x6e, 0x00, 0x5d, 0x03, 0xc0,
            0xa9, 0x2d, 0x96,
        ];
        let device = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b";
        match InspectionDoc::load("doc-1", &bytes, device) {
            Err(CoreError::CorruptDocument { id, .. }) => assert_eq!(id, "doc-1"),
            Err(other) => panic!("expected CorruptDocument, got {other:?}"),
            Ok(_) => panic!("a truncated bundle loaded"),
        }
    }
}
