//! Inspection documents.
