//! A small most-recently-used cache of the documents being edited, so recording answer after
//! answer neither reloads the document nor rewrites its whole projection. Bounded: the store
//! never holds all documents.

use super::projection::Projected;
use crate::inspection::InspectionDoc;
use std::collections::VecDeque;

/// A document as committed, with the projection rows last written for it.
pub(super) struct Cached {
    pub doc: InspectionDoc,
    pub projected: Option<Projected>,
}

pub(super) struct DocCache {
    capacity: usize,
    docs: VecDeque<Cached>,
}

impl DocCache {
    pub fn new(capacity: usize) -> Self {
        DocCache {
            capacity,
            docs: VecDeque::with_capacity(capacity),
        }
    }

    /// Removes and returns the cached document; the caller puts it back once its edit is
    /// committed, so a failed edit can never leave an uncommitted copy here.
    pub fn take(&mut self, id: &str) -> Option<Cached> {
        let at = self.docs.iter().position(|d| d.doc.id() == id)?;
        self.docs.remove(at)
    }

    /// Caches a committed document; `projected` is the rows last written for it, when known.
    pub fn put(&mut self, doc: InspectionDoc, projected: Option<Projected>) {
        self.take(doc.id());
        if self.docs.len() == self.capacity {
            self.docs.pop_back();
        }
        self.docs.push_front(Cached { doc, projected });
    }

    pub fn clear(&mut self) {
        self.docs.clear();
    }
}
