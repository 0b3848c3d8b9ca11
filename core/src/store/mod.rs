//! The local store.
