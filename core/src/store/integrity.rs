//! A damaged database file found at open (docs/reliability.md, "Corrupt database file").
//!
//! Before the store touches the file, SQLite's `PRAGMA quick_check` runs on it (it also reads
//! the header: a file that is not a database fails here). A damaged file is never repaired in
//! place and never deleted: it is renamed, with its `-wal` and `-shm` files, to
//! `<name>.corrupt-<ms>` so it can be examined or handed to support, and the open fails with
//! [`CoreError::CorruptDatabase`]. Opening the same path again creates a fresh store, which a
//! sync refills from the server (after enrolling again: the fresh store is a new device).
//!
//! Only corruption moves the file: a locked, unreadable or missing file is an ordinary
//! `Database`/`Io` error and stays where it is.

use crate::{CoreError, Result};
use rusqlite::{Connection, ErrorCode, OpenFlags};
use std::path::{Path, PathBuf};

/// What the check found.
enum Check {
    Ok,
    Corrupt(String),
}

fn check(conn: &Connection) -> Result<Check> {
    // quick_check(1): stop at the first problem; O(size of the file), without the index
    // cross-checks of integrity_check.
    match conn.query_row("PRAGMA quick_check(1)", [], |r| r.get::<_, String>(0)) {
        Ok(s) if s == "ok" => Ok(Check::Ok),
        Ok(problem) => Ok(Check::Corrupt(problem)),
        Err(rusqlite::Error::SqliteFailure(e, msg))
            if matches!(e.code, ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) =>
        {
            Ok(Check::Corrupt(msg.unwrap_or_else(|| e.to_string())))
        }
        Err(e) => Err(e.into()),
    }
}

/// Checks the database file at `path` before the store opens it. A damaged file is kept
/// aside and reported; a missing one (a store about to be created) passes.
///
/// The check runs on its own read-only connection: a read-write connection, when closed, would
/// checkpoint a WAL into the damaged file and delete the WAL, destroying what is kept.
/// `prepare` runs on that connection first (the place for a key to an encrypted store).
pub(crate) fn check_at_open(
    path: &Path,
    now_ms: i64,
    prepare: &dyn Fn(&Connection) -> Result<()>,
) -> Result<()> {
    if !path.exists() {
        return Ok(());
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(super::BUSY_TIMEOUT)?;
    prepare(&conn)?;
    match check(&conn)? {
        Check::Ok => Ok(()),
        Check::Corrupt(reason) => {
            // Closed first: on some platforms an open file cannot be renamed.
            drop(conn);
            let kept = keep_aside(path, now_ms)?;
            Err(CoreError::CorruptDatabase {
                kept_as: kept.display().to_string(),
                reason,
            })
        }
    }
}

/// Renames `path` and its `-wal`, `-shm` and `-journal` files to `<name>.corrupt-<ms>[-wal…]`
/// (the suffixes kept, so SQLite opens the kept copy with its WAL). Returns the new name.
fn keep_aside(path: &Path, now_ms: i64) -> Result<PathBuf> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| CoreError::InvalidArgument("database path has no file name".into()))?;
    let mut stamp = now_ms;
    // Never overwrite an earlier kept copy.
    let kept_name = loop {
        let candidate = format!("{name}.corrupt-{stamp}");
        if !path.with_file_name(&candidate).exists() {
            break candidate;
        }
        stamp += 1;
    };
    for suffix in ["-wal", "-shm", "-journal"] {
        let from = path.with_file_name(format!("{name}{suffix}"));
        if from.exists() {
            std::fs::rename(&from, path.with_file_name(format!("{kept_name}{suffix}")))?;
        }
    }
    let kept = path.with_file_name(&kept_name);
    std::fs::rename(path, &kept)?;
    Ok(kept)
}
