//! A size cap on the database file: a quota for apps, and how tests make a full disk
//! (docs/reliability.md, "Disk full").

use super::{Store, lock};
use crate::Result;

/// SQLite's own largest page count (its default cap).
const SQLITE_MAX_PAGES: u64 = 4_294_967_294;

impl Store {
    /// Caps the database at `pages` pages (of `PRAGMA page_size` bytes; 0 lifts the cap) for
    /// this open store, and returns the cap in force (never below the pages already used).
    /// A write that would grow the database past it fails with a `Database` error ("database
    /// or disk is full") and commits nothing, exactly as on a full disk; raising the cap again
    /// is "space freed".
    pub fn set_max_database_pages(&self, pages: u64) -> Result<u64> {
        let pages = if pages == 0 { SQLITE_MAX_PAGES } else { pages };
        let w = lock(&self.writer);
        Ok(w.conn
            .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |r| {
                r.get(0)
            })?)
    }

    /// Pages the database uses now and the size of one page, in bytes.
    pub fn database_pages(&self) -> Result<(u64, u64)> {
        let w = lock(&self.writer);
        let count = w.conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        let size = w.conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        Ok((count, size))
    }
}
