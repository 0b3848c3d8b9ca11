//! Turning an existing plain store into an encrypted one (docs/reliability.md, "Encrypting an
//! existing plain store"): an app that shipped without encryption, or a phone upgraded to a
//! build with a keystore key, keeps its unsynced inspections.
//!
//! SQLCipher's documented route: attach a new encrypted file to a connection on the plain one
//! and `SELECT sqlcipher_export(…)` copies schema and rows into it (it does not copy
//! `user_version`, which holds the migration level, so that is copied by hand). The copy is
//! made beside the store as `<name>.encrypting`, checked (quick_check and the same row count
//! in every table), synced, and only then renamed over the plain file — one atomic step.
//!
//! - Failure before the rename (disk full, a bad key length, the store still open elsewhere):
//!   the partial copy is removed and the plain store is exactly as it was, usable as before.
//! - A crash at any point leaves either the plain store (with at most a stale `.encrypting`
//!   copy, replaced by the next attempt) or the finished encrypted one; calling again finishes.
//! - After the rename the old plain file's bytes are overwritten with zeros through a handle
//!   opened before the rename, so no plaintext copy stays reachable as a file. On flash and
//!   copy-on-write file systems (F2FS, APFS) an overwrite does not guarantee the old blocks are
//!   erased; there the platform's file-based encryption is what protects freed blocks.

use super::encryption::{StoreKey, apply_key};
use super::{Clock, Store, SystemClock, integrity};
use crate::{CoreError, Result};
use rusqlite::{Connection, OpenFlags};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";
const ATTACHED: &str = "fenlei_encrypted";

enum FileKind {
    Missing,
    Plain,
    /// Neither missing nor a plain SQLite header: an encrypted store (or a damaged one, which
    /// the keyed open reports).
    NotPlain,
    Empty,
}

fn file_kind(path: &Path) -> Result<FileKind> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FileKind::Missing),
        Err(e) => return Err(e.into()),
    };
    let mut head = Vec::with_capacity(16);
    Read::take(&mut f, 16).read_to_end(&mut head)?;
    Ok(if head.is_empty() {
        FileKind::Empty
    } else if head.as_slice() == SQLITE_HEADER {
        FileKind::Plain
    } else {
        FileKind::NotPlain
    })
}

impl Store {
    /// Opens the store at `path` encrypted with `key` (32 random bytes), converting it first
    /// if it is a plain store. Safe to call on every start: a missing file becomes a new
    /// encrypted store and an already encrypted one is simply opened (a wrong key is
    /// [`CoreError::WrongKey`]). The plain store must not be open elsewhere (drop its
    /// [`Store`] first); if it is, or the conversion fails, the plain store is left as it was.
    pub fn encrypt_plain_store(path: impl AsRef<Path>, key: &[u8]) -> Result<Store> {
        Store::encrypt_plain_store_with_clock(path, key, Arc::new(SystemClock))
    }

    pub fn encrypt_plain_store_with_clock(
        path: impl AsRef<Path>,
        key: &[u8],
        clock: Arc<dyn Clock>,
    ) -> Result<Store> {
        let path = path.as_ref();
        let key = StoreKey::new(key)?;
        match file_kind(path)? {
            FileKind::Missing | FileKind::NotPlain => {}
            FileKind::Plain => convert(path, &key, clock.now_ms())?,
            // A store killed right after creation can have an empty main file and its pages in
            // the WAL: the key tells whether those are encrypted.
            FileKind::Empty => match Store::open_inner(path, clock.clone(), Some(key.clone())) {
                Err(CoreError::WrongKey) => convert(path, &key, clock.now_ms())?,
                other => return other,
            },
        }
        Store::open_inner(path, clock, Some(key))
    }
}

fn sibling(path: &Path, suffix: &str) -> Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| CoreError::InvalidArgument("database path has no file name".into()))?;
    Ok(path.with_file_name(format!("{}{suffix}", name.to_string_lossy())))
}

fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

/// The names of the tables a store holds (SQLite's own excluded).
fn tables(conn: &Connection, schema: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT name FROM {schema}.sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite_%' ORDER BY name"
    ))?;
    let names = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(names)
}

fn row_counts(conn: &Connection, schema: &str) -> Result<Vec<(String, i64)>> {
    tables(conn, schema)?
        .into_iter()
        .map(|t| {
            let n = conn.query_row(
                &format!(
                    "SELECT count(*) FROM {schema}.\"{}\"",
                    t.replace('"', "\"\"")
                ),
                [],
                |r| r.get(0),
            )?;
            Ok((t, n))
        })
        .collect()
}

fn convert(path: &Path, key: &StoreKey, now_ms: i64) -> Result<()> {
    // A damaged plain store is set aside and reported exactly as a plain open would.
    integrity::check_at_open(path, now_ms, &|_| Ok(()))?;
    let copy = sibling(path, ".encrypting")?;
    let result = export_and_swap(path, &copy, key);
    if result.is_err() {
        // Only our own partial copy is removed; the plain store was not written.
        for suffix in ["", "-journal", "-wal", "-shm"] {
            let _ = std::fs::remove_file(sibling(&copy, suffix)?);
        }
    }
    result
}

fn export_and_swap(path: &Path, copy: &Path, key: &StoreKey) -> Result<()> {
    // A copy left by an attempt that crashed: encrypted, incomplete, ours — replaced.
    for suffix in ["", "-journal", "-wal", "-shm"] {
        remove_if_present(&sibling(copy, suffix)?)?;
    }
    // CREATE: attached databases take the main connection's flags, and the copy is new.
    let plain = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    plain.busy_timeout(std::time::Duration::from_millis(500))?;
    // Exclusive locking: if another connection (a `Store` still open on this file) holds it,
    // the conversion stops here instead of copying while that connection may still commit
    // writes the copy would miss.
    plain.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
    let held = plain.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
        r.get::<_, i64>(0)
    });
    let busy = match held {
        Ok(busy) => busy != 0,
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::DatabaseBusy =>
        {
            true
        }
        Err(e) => return Err(e.into()),
    };
    if busy {
        return Err(CoreError::InvalidArgument(
            "the store is open: close it before encrypting it".into(),
        ));
    }
    // Takes the exclusive lock now and keeps it until the connection closes.
    plain
        .execute_batch("BEGIN EXCLUSIVE; COMMIT;")
        .map_err(|e| match e {
            rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DatabaseBusy => {
                CoreError::InvalidArgument(
                    "the store is open: close it before encrypting it".into(),
                )
            }
            e => e.into(),
        })?;
    // Sorts and temp tables of the export stay in memory.
    plain.pragma_update(None, "temp_store", "MEMORY")?;
    let version: i64 = plain.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    plain.execute(
        &format!("ATTACH DATABASE ?1 AS {ATTACHED} KEY ?2"),
        rusqlite::params![copy.to_string_lossy(), key.pragma_value()],
    )?;
    plain.query_row(
        &format!("SELECT sqlcipher_export('{ATTACHED}')"),
        [],
        |_| Ok(()),
    )?;
    plain.pragma_update(Some(ATTACHED), "user_version", version)?;
    let expected = row_counts(&plain, "main")?;
    let copied = row_counts(&plain, ATTACHED)?;
    plain.execute(&format!("DETACH DATABASE {ATTACHED}"), [])?;
    if expected != copied {
        return Err(CoreError::Database(
            "the encrypted copy does not hold every row of the plain store".into(),
        ));
    }

    // The copy on its own: opens with the key, passes quick_check, same migration level.
    {
        let check = Connection::open_with_flags(
            copy,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        apply_key(&check, Some(key))?;
        let ok: String = check.query_row("PRAGMA quick_check(1)", [], |r| r.get(0))?;
        let copied_version: i64 = check.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if ok != "ok" || copied_version != version || row_counts(&check, "main")? != expected {
            return Err(CoreError::Database(format!(
                "the encrypted copy failed its check: {ok}"
            )));
        }
    }
    File::open(copy)?.sync_all()?;

    // The plain file's inode, kept past the rename so its bytes can be overwritten.
    let mut old = OpenOptions::new().read(true).write(true).open(path)?;
    // Closing the only connection checkpoints the WAL into the file and deletes it; a WAL
    // still holding frames means someone else wrote: stop before anything is replaced.
    drop(plain);
    let wal = sibling(path, "-wal")?;
    if std::fs::metadata(&wal)
        .map(|m| m.len() > 0)
        .unwrap_or(false)
    {
        return Err(CoreError::InvalidArgument(
            "the store is open: close it before encrypting it".into(),
        ));
    }
    remove_if_present(&wal)?;
    remove_if_present(&sibling(path, "-shm")?)?;
    std::fs::rename(copy, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // The rename itself made durable (best effort: not every platform opens directories).
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    // The conversion has succeeded; overwriting the old bytes is best effort.
    let _ = wipe(&mut old);
    Ok(())
}

/// Overwrites a file's whole length with zeros and syncs it.
fn wipe(f: &mut File) -> std::io::Result<()> {
    use std::io::{Seek, SeekFrom};
    let len = f.metadata()?.len();
    f.seek(SeekFrom::Start(0))?;
    let zeros = vec![0u8; 64 * 1024];
    let mut left = len;
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        f.write_all(&zeros[..n])?;
        left -= n as u64;
    }
    f.sync_all()
}
