//! The embedded engine: one SQLite file holding a fenlei-core `Store` (documents, change feed,
//! projection, communities, standards) plus the server's own tables (users, scopes, devices,
//! enrollment codes, the reference-data log), which this module creates and migrates.

mod accounts;
mod chain;
mod documents;
mod media;
mod queries;
mod reference;
mod schema;
mod session;
mod signing_key;
mod supervision;

#[cfg(test)]
use schema::SERVER_SCHEMA;
use schema::migrate;

pub(crate) use chain::chain_row;
pub use chain::{verify_chain, verify_chain_conn};
pub use signing_key::{KEY_FILE, load_or_create_key};

use crate::error::{ServerError, ServerResult};
use crate::model::*;
use crate::store::sql::*;
use crate::store::*;
use fenlei_core::community::Community;
use fenlei_core::inspection::{Inspection, InspectionDoc, InspectionStatus};
use fenlei_core::protocol::{Assignments, FeedEntry, ReferenceUpdate, StandardSource};
use fenlei_core::scoring::ScoreCard;
use fenlei_core::store::{AppliedDocument, StandardInfo, Store};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params, params_from_iter, types::Value};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

pub struct SqliteStorage {
    store: Store,
    path: PathBuf,
    signing_key: ed25519_dalek::SigningKey,
    pub(crate) writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    /// Photo and voice-note bytes: `<data>/blobs/` unless `--blobs` names another store.
    pub(crate) blobs: Box<dyn crate::blobs::BlobStore>,
}

/// How long a server connection waits for another connection's (or process's) lock.
pub const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A connection to the server's SQLite file, configured as every one must be: the busy
/// timeout, and on writers immediate transactions, synchronous=FULL and foreign keys.
pub(crate) fn open_conn(path: &Path, read_only: bool) -> ServerResult<Connection> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let mut conn = Connection::open_with_flags(path, flags)?;
    // Admin commands run beside the serving process on the same file: both wait for the
    // other's lock instead of failing with "database is locked".
    conn.busy_timeout(BUSY_TIMEOUT)?;
    if !read_only {
        // A write transaction takes the write lock when it begins: a deferred one that read
        // first would get SQLITE_BUSY at once (no waiting) when another process wrote meanwhile.
        conn.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
    }
    Ok(conn)
}

impl SqliteStorage {
    /// Opens (or creates) the server's database in `dir` (`dir/fenlei-server.sqlite`), with
    /// blobs in `dir/blobs/`.
    pub fn open(dir: &Path) -> ServerResult<SqliteStorage> {
        let blobs = crate::blobs::open_blob_store(dir, None)?;
        SqliteStorage::open_with_blobs(dir, blobs)
    }

    /// Opens (or creates) the server's database in `dir`, with blobs in `blobs`.
    pub fn open_with_blobs(
        dir: &Path,
        blobs: Box<dyn crate::blobs::BlobStore>,
    ) -> ServerResult<SqliteStorage> {
        crate::files::create_private_dir(dir)?;
        let path = dir.join("fenlei-server.sqlite");
        // Created empty and private first: SQLite would create it with the umask's mode, and it
        // gives the WAL and shared-memory files the database file's mode.
        crate::files::touch_private(&path)?;
        // The core store switches the file to WAL and migrates its own tables.
        let store = Store::open(&path)?;
        let mut writer = open_conn(&path, false)?;
        migrate(&mut writer)?;
        Ok(SqliteStorage {
            store,
            path,
            signing_key: load_or_create_key(dir)?,
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
            blobs,
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The server's writer connection (one at a time), for the storage traits in other modules.
    pub(crate) fn writer(&self) -> MutexGuard<'_, Connection> {
        lock(&self.writer)
    }

    pub(crate) fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> ServerResult<T>,
    ) -> ServerResult<T> {
        let conn = match lock(&self.readers).pop() {
            Some(c) => c,
            None => open_conn(&self.path, true)?,
        };
        let out = f(&conn);
        let mut pool = lock(&self.readers);
        if pool.len() < 8 {
            pool.push(conn);
        }
        out
    }

    fn log_reference(conn: &Connection, kind: &str, key: &str) -> ServerResult<()> {
        conn.execute(
            "DELETE FROM reference_log WHERE kind = ?1 AND key = ?2",
            params![kind, key],
        )?;
        conn.execute(
            "INSERT INTO reference_log (kind, key) VALUES (?1, ?2)",
            params![kind, key],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MediaIndex;
    use fenlei_core::protocol::media::MediaRendition;

    /// A database left by the release before renditions were bound to documents (server schema
    /// 4): its kept blobs stay, each uploading device is known to hold what it uploaded, and a
    /// second rendition of the same photo can now be kept beside the first.
    #[test]
    fn kept_blobs_survive_the_move_to_bound_renditions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fenlei-server.sqlite");
        drop(Store::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        for sql in &SERVER_SCHEMA[..4] {
            conn.execute_batch(sql).unwrap();
        }
        let (h, t1, t2) = ("a".repeat(64), "b".repeat(64), "c".repeat(64));
        conn.execute_batch(&format!(
            "INSERT INTO server_meta (key, value) VALUES ('schema_version', '4');
             INSERT INTO media_blobs VALUES ('{h}', 'original', '{h}', 10, 'image/jpeg', 'dev-1', 5);
             INSERT INTO media_blobs VALUES ('{h}', 'thumb', '{t1}', 3, 'image/jpeg', 'dev-2', 6);"
        ))
        .unwrap();
        drop(conn);

        let s = SqliteStorage::open(dir.path()).unwrap();
        let kept = s
            .media_blob(&h, MediaRendition::Thumb, &t1)
            .unwrap()
            .unwrap();
        assert_eq!((kept.bytes, kept.device_id.as_str()), (3, "dev-2"));
        assert_eq!(s.proved_at("dev-1", &h).unwrap(), Some(5));
        assert_eq!(s.proved_at("dev-2", &t1).unwrap(), Some(6));
        assert_eq!(s.proved_at("dev-1", &t1).unwrap(), None);
        s.record_media_blob(&crate::model::StoredBlob {
            sha256: h.clone(),
            rendition: MediaRendition::Thumb,
            blob: t2.clone(),
            bytes: 4,
            mime: "image/jpeg".into(),
            device_id: "dev-1".into(),
        })
        .unwrap();
        let held = s.held_blobs("dev-1", &h, MediaRendition::Thumb).unwrap();
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].0.blob, t2);
        assert!(
            s.media_blob(&h, MediaRendition::Thumb, &t1)
                .unwrap()
                .is_some()
        );
    }
}
