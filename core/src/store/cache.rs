//! A small most-recently-used cache of the documents being edited, so recording answer after
//! answer does not reload the document each time. Bounded: the store never holds all documents.

use crate::inspection::InspectionDoc;
use std::collections::VecDeque;

pub(super) struct DocCache {
    capacity: usize,
    docs: VecDeque<InspectionDoc>,
}

impl DocCache {
    pub fn new(capacity: usize) -> Self {
        DocCache {
            capacity,
            docs: VecDeque::with_capacity(capacity),
        }
    }

    /// Removes and returns the cached document; the caller puts it back once its edit is
    /// committed.
    pub fn take(&mut self, id: &str) -> Option<InspectionDoc> {
        let at = self.docs.iter().position(|d| d.id() == id)?;
        self.docs.remove(at)
    }

    pub fn put(&mut self, doc: InspectionDoc) {
        self.take(doc.id());
        if self.docs.len() == self.capacity {
            self.docs.pop_back();
        }
        self.docs.push_front(doc);
    }

    pub fn clear(&mut self) {
        self.docs.clear();
    }
}
