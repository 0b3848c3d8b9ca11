//! The one error type of the core. Every caller mistake and every bad input is a variant here,
//! never a panic. Messages name the thing that is wrong (an item code, a CSV row) but carry no
//! personal data (no names, no notes, no coordinates).

use thiserror::Error;

pub type Result<T, E = CoreError> = std::result::Result<T, E>;

#[derive(Debug, Error)]
pub enum CoreError {
    /// A standard file that cannot be read or is inconsistent. `item` names the item (or section,
    /// or `grades`) at fault when there is one.
    #[error("invalid standard{}: {problem}", item.as_deref().map(|i| format!(" (at {i})")).unwrap_or_default())]
    InvalidStandard {
        item: Option<String>,
        problem: String,
    },

    /// A community list (CSV) with a bad row; nothing from the file was imported.
    #[error("community list row {row}: {reason}")]
    InvalidCsvRow { row: u64, reason: String },

    #[error("unknown community {0}")]
    UnknownCommunity(String),

    #[error("unknown standard {id} version {version}")]
    UnknownStandard { id: String, version: String },

    #[error("unknown item {item} in standard {standard}")]
    UnknownItem { standard: String, item: String },

    #[error("unknown inspection {0}")]
    UnknownInspection(String),

    /// An answer that does not fit its item's rule: wrong kind, out of bounds, missing note.
    #[error("invalid answer for item {item}: {reason}")]
    InvalidAnswer { item: String, reason: String },

    /// A status change the workflow does not allow (e.g. approving a draft).
    #[error("inspection cannot go from {from} to {to}")]
    InvalidTransition { from: String, to: String },

    /// Editing an inspection after it was submitted needs an amendment reason.
    #[error("inspection {0} was submitted: an edit needs an amendment reason")]
    AmendmentReasonRequired(String),

    /// Any other argument a caller got wrong (empty id, NaN coordinate, bad device id...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// Stored or received document bytes that do not decode to a valid inspection.
    #[error("document {id} is corrupt: {reason}")]
    CorruptDocument { id: String, reason: String },

    /// A document (or the changes to it) breaks one of the document rules
    /// (docs/inspection-document.md and docs/rectification.md, "Rules"); nothing was applied.
    #[error("document {id} breaks the {rule} rule: {reason}")]
    RuleBroken {
        id: String,
        rule: crate::docrules::Rule,
        reason: String,
    },

    /// The database file is damaged (found at open). It was not deleted: it was renamed, with
    /// its `-wal`/`-shm` files, to `kept_as`; opening the same path again creates a fresh store,
    /// which a sync refills from the server.
    #[error("database file is corrupt ({reason}); kept aside as {kept_as}")]
    CorruptDatabase { kept_as: String, reason: String },

    /// The database was written by a newer version of Fenlei; it is left untouched.
    #[error("database schema version {found} is newer than this build supports ({supported})")]
    DatabaseTooNew { found: i64, supported: i64 },

    /// A photo or voice note that cannot be taken in: not a supported format, damaged,
    /// truncated, over the size limits. The reason names the problem, never the file's content
    /// or path. Nothing of the file was stored.
    #[error("invalid media: {reason}")]
    InvalidMedia { reason: String },

    /// Long work was cancelled through its cancel token; nothing of it was committed.
    #[error("cancelled")]
    Cancelled,

    /// The sync server could not be reached or the connection broke. Nothing was lost: sync
    /// again later.
    #[error("network error: {0}")]
    Network(String),

    /// The server refused this device's credential (never enrolled, revoked, or a used code).
    #[error("not authorized: {0}")]
    Unauthorized(String),

    /// The server refused a document or request outside this device's rights.
    #[error("forbidden: {0}")]
    Forbidden(String),

    /// The server answered with an error it explained in `reason`.
    #[error("server answered {status}: {reason}")]
    Server { status: u16, reason: String },

    #[error("database error: {0}")]
    Database(String),

    /// The store's file does not open with the key given: a wrong key, a key for another
    /// store, or an encrypted store opened without one. Nothing was changed.
    #[error("the store does not open with this key")]
    WrongKey,

    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

impl From<rusqlite::Error> for CoreError {
    fn from(e: rusqlite::Error) -> Self {
        CoreError::Database(e.to_string())
    }
}

impl From<rusqlite_migration::Error> for CoreError {
    fn from(e: rusqlite_migration::Error) -> Self {
        CoreError::Database(e.to_string())
    }
}
