//! What sync needs from the store: the local change feed, per-document sync records (kept so
//! sync resumes after a restart), a cursor table, and applying many received documents in one
//! transaction. Used by the device's sync client and by the server, which keeps its documents
//! in a store too.

use super::{
    COMPACT_AFTER_CHANGES, Store, append_change, compact_doc, load_doc, lock, raw_doc,
    rectification, stored_bytes,
};
use crate::inspection::InspectionDoc;
use crate::{CoreError, Result};
use automerge::ChangeHash;
use rusqlite::{Connection, OptionalExtension, params};

/// What this store last agreed with the server about one document.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncRecord {
    /// The local feed position the document had when it was last in sync with the server.
    pub synced_seq: i64,
    /// The server's feed position of the document at that time.
    pub server_seq: i64,
    /// The automerge sync state (`automerge::sync::State::encode`): the heads both sides had.
    pub state: Vec<u8>,
}

/// A stored document as one read snapshot saw it (see [`Store::stored_document`]).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredDocument {
    /// Its position in the change feed.
    pub seq: Option<i64>,
    /// "inspection" or "rectification".
    pub kind: String,
    /// Its bytes: the snapshot, then the changes saved since.
    pub bytes: Vec<u8>,
}

/// The outcome of applying one document's bytes in [`Store::apply_documents`].
#[derive(Debug)]
pub struct AppliedDocument {
    pub id: String,
    /// The document's feed position before and after, read inside the transaction.
    pub seq_before: Option<i64>,
    pub seq_after: Option<i64>,
    /// Why the bytes were refused (nothing of this document changed), if they were.
    pub error: Option<CoreError>,
}

fn feed_seq(conn: &Connection, id: &str) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT seq FROM change_feed WHERE doc_id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?)
}

impl Store {
    /// The latest position of the local change feed (0 before any document).
    pub fn change_seq(&self) -> Result<i64> {
        self.read(|c| {
            Ok(
                c.query_row("SELECT seq FROM change_counter WHERE id = 1", [], |r| {
                    r.get(0)
                })?,
            )
        })
    }

    /// A stored document's feed position, kind and bytes read in one snapshot, or `None` when
    /// this store does not hold it. A server checks a device's message against the document
    /// and merges it into the same bytes; read apart, a write committed between the reads (a
    /// supervisor's approval) made the merge look like the device's own doing.
    pub fn stored_document(&self, id: &str) -> Result<Option<StoredDocument>> {
        self.read(|c| {
            // One read transaction: every statement below sees the same committed state.
            let tx = c.unchecked_transaction()?;
            let Some(kind) = rectification::kind_of(&tx, id)? else {
                return Ok(None);
            };
            Ok(Some(StoredDocument {
                seq: feed_seq(&tx, id)?,
                kind,
                bytes: stored_bytes(&tx, id)?,
            }))
        })
    }

    /// A document's position in the local change feed.
    pub fn document_seq(&self, id: &str) -> Result<Option<i64>> {
        self.read(|c| feed_seq(c, id))
    }

    /// Any stored document (inspection or rectification task) as plain automerge, or `None`
    /// when this store does not hold it: what the sync client exchanges messages for.
    pub fn load_automerge(&self, id: &str) -> Result<Option<automerge::AutoCommit>> {
        let found = self.read(|c| match rectification::kind_of(c, id)? {
            None => Ok(None),
            Some(_) => raw_doc(c, id).map(Some),
        })?;
        let actor = crate::docrules::actor_of(&self.device_id)?;
        Ok(found.map(|d| d.with_actor(actor)))
    }

    /// The kind of a stored document ("inspection", "rectification"), or `None`.
    pub fn document_kind(&self, id: &str) -> Result<Option<String>> {
        self.read(|c| rectification::kind_of(c, id))
    }

    /// The rectification task document as stored, or `None` when this store does not hold it.
    pub fn load_task_document(
        &self,
        id: &str,
    ) -> Result<Option<crate::rectification::RectificationDoc>> {
        self.read(|c| match rectification::kind_of(c, id)?.as_deref() {
            Some("rectification") => rectification::load_task(c, id, &self.device_id).map(Some),
            _ => Ok(None),
        })
    }

    /// The inspection document as stored, or `None` when this store does not hold it.
    pub fn load_document(&self, id: &str) -> Result<Option<InspectionDoc>> {
        match self.read(|c| load_doc(c, id, &self.device_id)) {
            Ok(doc) => Ok(Some(doc)),
            Err(CoreError::UnknownInspection(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Ids of every document, in id order (for a full resync).
    pub fn document_ids(&self) -> Result<Vec<String>> {
        self.read(|c| {
            let mut stmt = c.prepare("SELECT id FROM documents ORDER BY id")?;
            let ids = stmt
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(ids)
        })
    }

    /// Documents changed here since they were last in sync with the server (or never synced),
    /// oldest change first.
    pub fn documents_to_push(&self) -> Result<Vec<String>> {
        self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT f.doc_id FROM change_feed f LEFT JOIN sync_documents s ON s.doc_id = f.doc_id
                 WHERE s.doc_id IS NULL OR f.seq > s.synced_seq ORDER BY f.seq",
            )?;
            let ids = stmt
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(ids)
        })
    }

    pub fn sync_record(&self, id: &str) -> Result<Option<SyncRecord>> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT synced_seq, server_seq, state FROM sync_documents WHERE doc_id = ?1",
            )?
            .query_row([id], |r| {
                Ok(SyncRecord {
                    synced_seq: r.get(0)?,
                    server_seq: r.get(1)?,
                    state: r.get(2)?,
                })
            })
            .optional()?)
        })
    }

    /// Records that the document is in sync with the server at `server_seq` with sync state
    /// `state`, provided its heads here are still `heads` (an edit made while syncing keeps the
    /// document marked for the next push). Returns whether the document is now clean.
    pub fn mark_synced(
        &self,
        id: &str,
        heads: &[ChangeHash],
        server_seq: i64,
        state: &[u8],
    ) -> Result<bool> {
        let mut w = lock(&self.writer);
        let clean = if rectification::kind_of(&w.conn, id)?.as_deref() == Some("rectification") {
            raw_doc(&w.conn, id)?.get_heads() == heads
        } else {
            let (mut doc, projected) = match w.docs.take(id) {
                Some(cached) => (cached.doc, cached.projected),
                None => (load_doc(&w.conn, id, &self.device_id)?, None),
            };
            let clean = doc.heads() == heads;
            w.docs.put(doc, projected);
            clean
        };
        let seq = feed_seq(&w.conn, id)?.unwrap_or(0);
        let previous: Option<i64> = w
            .conn
            .prepare_cached("SELECT synced_seq FROM sync_documents WHERE doc_id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?;
        let synced_seq = if clean { seq } else { previous.unwrap_or(0) };
        w.conn
            .prepare_cached(
                "INSERT INTO sync_documents (doc_id, synced_seq, server_seq, state) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(doc_id) DO UPDATE SET synced_seq = excluded.synced_seq,
                     server_seq = excluded.server_seq, state = excluded.state",
            )?
            .execute(params![id, synced_seq, server_seq, state])?;
        Ok(clean)
    }

    pub fn sync_meta(&self, key: &str) -> Result<Option<String>> {
        self.read(|c| {
            Ok(
                c.prepare_cached("SELECT value FROM sync_meta WHERE key = ?1")?
                    .query_row([key], |r| r.get(0))
                    .optional()?,
            )
        })
    }

    pub fn set_sync_meta(&self, key: &str, value: &str) -> Result<()> {
        let w = lock(&self.writer);
        w.conn
            .prepare_cached(
                "INSERT INTO sync_meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            )?
            .execute(params![key, value])?;
        Ok(())
    }

    /// Merges received bytes (whole documents or incremental changes) of many documents in one
    /// transaction: one commit for a whole batch of sync replies. Each document's bytes are
    /// checked as [`Store::apply_document_bytes`] checks them; a document whose bytes are refused
    /// is reported in its [`AppliedDocument::error`] and left unchanged, the others are applied.
    pub fn apply_documents(&self, batch: &[(String, Vec<u8>)]) -> Result<Vec<AppliedDocument>> {
        let mut w = lock(&self.writer);
        let now = self.now_ms();
        let mut results = Vec::with_capacity(batch.len());
        let mut done = Vec::with_capacity(batch.len());
        let w = &mut *w;
        let tx = w.conn.transaction()?;
        for (id, bytes) in batch {
            let seq_before = feed_seq(&tx, id)?;
            let kind = match rectification::kind_of(&tx, id)? {
                Some(k) => Some(k),
                None => crate::rectification::document_type(id, bytes),
            };
            if kind.as_deref() == Some("rectification") {
                let outcome = rectification::apply_received(&tx, id, bytes, now, &self.device_id)?;
                results.push(AppliedDocument {
                    id: id.clone(),
                    seq_before,
                    seq_after: feed_seq(&tx, id)?,
                    error: outcome.err(),
                });
                continue;
            }
            let existing = match w.docs.take(id) {
                Some(cached) => Some((cached.doc, cached.projected)),
                None => match load_doc(&tx, id, &self.device_id) {
                    Ok(doc) => Some((doc, None)),
                    Err(CoreError::UnknownInspection(_)) => None,
                    Err(e) => return Err(e),
                },
            };
            let merged = match existing {
                Some((doc, previous)) => {
                    let mut candidate = doc.clone();
                    match candidate.apply_bytes(bytes) {
                        Ok(_) => {
                            let change = candidate.save_incremental();
                            if !change.is_empty()
                                && append_change(&tx, id, &change, now)? >= COMPACT_AFTER_CHANGES
                            {
                                compact_doc(&tx, id, &mut candidate, now)?;
                            }
                            Ok((candidate, previous))
                        }
                        Err(e) => {
                            // The untouched copy still equals the database: keep it cached.
                            w.docs.put(doc, previous);
                            Err(e)
                        }
                    }
                }
                None => match InspectionDoc::load(id, bytes, &self.device_id) {
                    Ok(mut doc) => {
                        let snapshot = doc.save();
                        tx.execute(
                            "INSERT INTO documents (id, kind, snapshot, updated_at) VALUES (?1, 'inspection', ?2, ?3)",
                            params![id, snapshot, now],
                        )?;
                        Ok((doc, None))
                    }
                    Err(e) => Err(e),
                },
            };
            match merged {
                Ok((doc, previous)) => {
                    let projected = self.project(&tx, &doc, now, previous.as_ref())?;
                    results.push(AppliedDocument {
                        id: id.clone(),
                        seq_before,
                        seq_after: feed_seq(&tx, id)?,
                        error: None,
                    });
                    done.push((doc, projected));
                }
                Err(e) => results.push(AppliedDocument {
                    id: id.clone(),
                    seq_before,
                    seq_after: seq_before,
                    error: Some(e),
                }),
            }
        }
        tx.commit()?;
        // Only now may the cache hold the merged copies: they are what the database holds.
        for (doc, projected) in done {
            w.docs.put(doc, Some(projected));
        }
        Ok(results)
    }
}
