//! Fenlei's FFI layer (UniFFI): what Kotlin, Swift and Python see. Nothing here decides anything;
//! every method delegates to `fenlei-core` in one to three lines. The records and enums that
//! cross the boundary (Inspection, ItemAnswer, ScoreCard, Standard...) are declared once in core
//! and derive their UniFFI traits there behind core's `uniffi` feature.
//!
//! - [`FenleiStore`]: the store, opened at a path in the app's files directory.
//! - [`FenleiMedia`]: its media folder: attach photos and voice notes, read evidence flags.
//! - [`FenleiError`]: the one public error (few variants, one conversion point from core's error).
//! - [`ProgressListener`] and [`CancelHandle`]: progress and cancellation of long work.
//! - [`FenleiSyncClient`], [`enroll_device`]: sync with the Fenlei server (documents, and
//!   photos/voice notes with `sync_media`).
//! - [`FenleiRectifications`]: rectification tasks (整改) of a store.
//! - `security.rs`: encrypted stores (`open_encrypted`, `rekey`), receipts, chain checks;
//!   `encrypt_plain.rs`: converting a plain store to an encrypted one.
//! - free functions: the embedded sample data, coordinate conversion and distances.
//!
//! Threading contract (docs/bindings.md): every call blocks until done. Apps call from a
//! background thread (Kotlin: `withContext(Dispatchers.IO)`; Swift: a `Task` or actor off the
//! main actor). The store is safe to share between threads.

uniffi::setup_scaffolding!();

mod encrypt_plain;
mod enroll;
mod error;
mod functions;
mod media;
mod media_sync;
mod progress;
mod rectification;
mod security;
mod store;
mod sync;
mod track;

pub use enroll::enroll_device_with_options;
pub use error::FenleiError;
pub use functions::*;
pub use media::FenleiMedia;
pub use progress::{CancelHandle, ProgressListener};
pub use rectification::FenleiRectifications;
pub use store::FenleiStore;
pub use sync::{FenleiSyncClient, enroll_device, sync_assignments};
