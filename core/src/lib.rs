//! Fenlei core: everything the inspector's phone and the supervisor's tools do, without any I/O
//! outside the store's own files. The FFI crate only wraps what is here.
//!
//! Rooms:
//! - [`geo`]: coordinate systems (WGS-84 / GCJ-02 / BD-09) and distances.
//! - [`community`]: residential communities (小区) and their CSV import.
//! - [`standard`]: evaluation standards (评价标准) as data: model, file format, validation.
//! - [`answer`]: what an inspector records for one checklist item.
//! - [`scoring`]: the pure scoring engine.
//! - [`docrules`]: the rules every synced document obeys (schema, structure, workflow, roles),
//!   shared by the device and the server.
//! - [`guard`]: untrusted automerge bytes: bounded decoding, panics turned into typed errors.
//! - [`inspection`]: one inspection as one automerge document: edits, merges, conflicts, history.
//! - [`store`]: the local SQLite store: documents, projection, queries, migrations.
//! - [`protocol`]: the JSON bodies of the sync and media protocols, shared by device and server.
//! - [`sync`]: the device's sync client (docs/sync-protocol.md, docs/media-sync.md).
//! - [`media`]: photo and voice-note ingest: hashes, EXIF, renditions, content-addressed files;
//!   [`media::verify`] turns EXIF, GPS fixes and the community into flags for supervisors.
//! - [`tamper`]: signed submissions, the server's hash chain and receipts (docs/tamper-evidence.md).

#[cfg(feature = "uniffi")]
uniffi::setup_scaffolding!();

pub mod answer;
pub mod community;
pub mod docrules;
pub mod error;
pub mod geo;
pub mod guard;
pub mod inspection;
pub mod media;
pub mod progress;
pub mod protocol;
pub mod rectification;
pub mod sample;
pub mod scoring;
pub mod standard;
pub mod store;
pub mod sync;
pub mod tamper;

pub use error::{CoreError, Result};
