//! The public error and its single conversion point from core's error, plus the panic guard every
//! exported call runs through.

use fenlei_core::CoreError;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// What can go wrong, in the few kinds an app handles differently. Kotlin sees a sealed
/// `FenleiException` hierarchy, Swift a `FenleiError` enum, Python `FenleiError.*` exceptions.
/// Messages name ids, item codes and row numbers, never people, notes or places.
#[derive(Debug, thiserror::Error, uniffi::Error)]
#[uniffi(flat_error)]
pub enum FenleiError {
    /// An id that is not in the store: community, standard version, item, inspection.
    #[error("{0}")]
    NotFound(String),
    /// Input the core refuses: a bad standard file or CSV row, an answer that does not fit its
    /// item's rule (kind, bounds, missing note), an empty id, a coordinate out of range.
    #[error("{0}")]
    InvalidInput(String),
    /// The request does not fit the inspection's state: a workflow step not allowed from here,
    /// an edit of a submitted inspection without an amendment reason.
    #[error("{0}")]
    InvalidState(String),
    /// Stored or received document bytes that do not decode to a valid inspection, or a
    /// damaged database file found at open (kept aside under a new name; open again for a fresh
    /// store and sync to refill it).
    #[error("{0}")]
    Corrupt(String),
    /// The database or file system failed: cannot open or write the file, disk full, a database
    /// written by a newer app version.
    #[error("{0}")]
    Storage(String),
    /// Long work was cancelled through its CancelHandle; nothing of it was committed.
    #[error("{0}")]
    Cancelled(String),
    /// The sync server could not be reached, the connection broke, or the server failed
    /// (5xx). Nothing was lost: sync again later.
    #[error("{0}")]
    Network(String),
    /// The server refused this device: its credential is unknown or revoked (enroll again), or
    /// the request is outside its rights.
    #[error("{0}")]
    AccessDenied(String),
    /// The store's file does not open with the key given (a wrong or lost key, or an encrypted
    /// store opened without one). Nothing was changed; with the key lost, delete the store and
    /// sync again from the server.
    #[error("{0}")]
    WrongKey(String),
    /// A bug in Fenlei (a panic inside the core, or a failing callback). The call did nothing
    /// durable; the store stays usable.
    #[error("{0}")]
    Internal(String),
}

impl From<CoreError> for FenleiError {
    fn from(e: CoreError) -> Self {
        let message = e.to_string();
        match e {
            CoreError::UnknownCommunity(_)
            | CoreError::UnknownStandard { .. }
            | CoreError::UnknownItem { .. }
            | CoreError::UnknownInspection(_) => FenleiError::NotFound(message),
            CoreError::InvalidStandard { .. }
            | CoreError::InvalidCsvRow { .. }
            | CoreError::InvalidAnswer { .. }
            | CoreError::InvalidArgument(_)
            | CoreError::InvalidMedia { .. } => FenleiError::InvalidInput(message),
            CoreError::InvalidTransition { .. } | CoreError::AmendmentReasonRequired(_) => {
                FenleiError::InvalidState(message)
            }
            CoreError::CorruptDocument { .. } | CoreError::CorruptDatabase { .. } => {
                FenleiError::Corrupt(message)
            }
            // Bytes received or loaded that break the document rules: not an inspection this
            // app may hold, like undecodable bytes.
            CoreError::RuleBroken { .. } => FenleiError::Corrupt(message),
            CoreError::DatabaseTooNew { .. } | CoreError::Database(_) | CoreError::Io(_) => {
                FenleiError::Storage(message)
            }
            CoreError::Cancelled => FenleiError::Cancelled(message),
            CoreError::Network(_) => FenleiError::Network(message),
            CoreError::Server { status, .. } if status >= 500 || status == 429 => {
                FenleiError::Network(message)
            }
            CoreError::Server { .. } => FenleiError::InvalidInput(message),
            CoreError::Unauthorized(_) | CoreError::Forbidden(_) => {
                FenleiError::AccessDenied(message)
            }
            CoreError::WrongKey => FenleiError::WrongKey(message),
        }
    }
}

/// Runs one exported call: core errors become [`FenleiError`], and a panic becomes
/// [`FenleiError::Internal`] instead of unwinding into (or aborting) the host app. The panic's
/// own text is not passed on: it may quote data. Needs `panic = "unwind"` (Cargo.toml profiles).
pub(crate) fn guard<T>(
    call: &'static str,
    f: impl FnOnce() -> fenlei_core::Result<T>,
) -> Result<T, FenleiError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result.map_err(FenleiError::from),
        Err(_) => Err(FenleiError::Internal(format!(
            "internal error in {call}; the call did not complete"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(e: &FenleiError) -> &'static str {
        match e {
            FenleiError::NotFound(_) => "NotFound",
            FenleiError::InvalidInput(_) => "InvalidInput",
            FenleiError::InvalidState(_) => "InvalidState",
            FenleiError::Corrupt(_) => "Corrupt",
            FenleiError::Storage(_) => "Storage",
            FenleiError::Cancelled(_) => "Cancelled",
            FenleiError::Network(_) => "Network",
            FenleiError::AccessDenied(_) => "AccessDenied",
            FenleiError::WrongKey(_) => "WrongKey",
            FenleiError::Internal(_) => "Internal",
        }
    }

    #[test]
    fn every_core_error_maps_to_its_kind_and_keeps_its_message() {
        let s = |x: &str| x.to_string();
        let cases = [
            (CoreError::UnknownCommunity(s("c1")), "NotFound"),
            (
                CoreError::UnknownStandard {
                    id: s("s"),
                    version: s("1"),
                },
                "NotFound",
            ),
            (
                CoreError::UnknownItem {
                    standard: s("s"),
                    item: s("X9"),
                },
                "NotFound",
            ),
            (CoreError::UnknownInspection(s("i")), "NotFound"),
            (
                CoreError::InvalidStandard {
                    item: None,
                    problem: s("p"),
                },
                "InvalidInput",
            ),
            (
                CoreError::InvalidCsvRow {
                    row: 3,
                    reason: s("r"),
                },
                "InvalidInput",
            ),
            (
                CoreError::InvalidAnswer {
                    item: s("A01"),
                    reason: s("r"),
                },
                "InvalidInput",
            ),
            (CoreError::InvalidArgument(s("a")), "InvalidInput"),
            (
                CoreError::InvalidTransition {
                    from: s("draft"),
                    to: s("approved"),
                },
                "InvalidState",
            ),
            (CoreError::AmendmentReasonRequired(s("i")), "InvalidState"),
            (
                CoreError::CorruptDocument {
                    id: s("i"),
                    reason: s("r"),
                },
                "Corrupt",
            ),
            (
                CoreError::CorruptDatabase {
                    kept_as: s("/data/store.sqlite.corrupt-1"),
                    reason: s("file is not a database"),
                },
                "Corrupt",
            ),
            (
                CoreError::DatabaseTooNew {
                    found: 9,
                    supported: 1,
                },
                "Storage",
            ),
            (CoreError::Database(s("d")), "Storage"),
            (CoreError::Io(std::io::Error::other("disk")), "Storage"),
            (CoreError::Cancelled, "Cancelled"),
            (
                CoreError::InvalidMedia {
                    reason: s("truncated JPEG"),
                },
                "InvalidInput",
            ),
            (CoreError::Network(s("connection refused")), "Network"),
            (
                CoreError::Server {
                    status: 503,
                    reason: s("busy"),
                },
                "Network",
            ),
            (
                CoreError::Server {
                    status: 400,
                    reason: s("bad body"),
                },
                "InvalidInput",
            ),
            (CoreError::Unauthorized(s("unknown token")), "AccessDenied"),
            (CoreError::Forbidden(s("outside scope")), "AccessDenied"),
            (CoreError::WrongKey, "WrongKey"),
        ];
        for (core, expected) in cases {
            let message = core.to_string();
            let public = FenleiError::from(core);
            assert_eq!(kind(&public), expected, "{message}");
            assert_eq!(public.to_string(), message);
        }
    }

    #[test]
    fn a_panic_becomes_internal_without_its_payload() {
        let e = guard::<()>("test_call", || panic!("secret inspector note")).unwrap_err();
        match e {
            FenleiError::Internal(m) => {
                assert!(m.contains("test_call"), "{m}");
                assert!(!m.contains("secret"), "{m}");
            }
            other => panic!("expected Internal, got {other:?}"),
        }
    }

    #[test]
    fn results_pass_through() {
        assert_eq!(guard("ok", || Ok(7)).unwrap(), 7);
        assert!(matches!(
            guard::<()>("err", || Err(CoreError::Cancelled)),
            Err(FenleiError::Cancelled(_))
        ));
    }
}
