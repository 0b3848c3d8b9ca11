//! A damaged server database is never replaced silently (docs/reliability.md, "A damaged
//! server database").
//!
//! At open, the core's check sets a damaged `fenlei-server.sqlite` aside as
//! `fenlei-server.sqlite.corrupt-<ms>` (kept, never deleted) and the command fails. Without
//! this guard the next start would create an empty database in its place: accounts, devices,
//! documents and the signed-submission chain would be gone without anyone deciding it, and
//! devices would be told "unauthorized" with no explanation. So while a set-aside copy sits
//! beside a missing database, every command that would create one stops with a message saying
//! what to do: restore a backup to the database's path (then the guard sees a database and
//! steps aside), or say `--accept-fresh-database` to start empty on purpose.

use crate::error::{ServerError, ServerResult};
use std::path::{Path, PathBuf};

/// The SQLite server database's file name in the data folder.
pub const DATABASE_FILE: &str = "fenlei-server.sqlite";

/// Set-aside copies of a damaged database in `dir`, oldest first (their `-wal`/`-shm`
/// companions not listed).
pub fn set_aside_copies(dir: &Path) -> ServerResult<Vec<PathBuf>> {
    let prefix = format!("{DATABASE_FILE}.corrupt-");
    let mut found: Vec<(i64, PathBuf)> = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(stamp) = name.strip_prefix(&prefix)
            && let Ok(ms) = stamp.parse::<i64>()
        {
            found.push((ms, entry.path()));
        }
    }
    found.sort();
    Ok(found.into_iter().map(|(_, p)| p).collect())
}

/// Refuses to go on when the database in `dir` is missing and a damaged one was set aside,
/// unless the admin accepted a fresh database.
pub fn refuse_fresh_after_damage(dir: &Path, accept_fresh: bool) -> ServerResult<()> {
    let db = dir.join(DATABASE_FILE);
    if db.exists() || accept_fresh {
        return Ok(());
    }
    let copies = set_aside_copies(dir)?;
    let Some(newest) = copies.last() else {
        return Ok(());
    };
    Err(ServerError::Conflict(guidance(newest, &db)))
}

fn guidance(kept: &Path, db: &Path) -> String {
    format!(
        "the database was found damaged and set aside as {} (kept, not deleted); no database \
         is in its place, and starting now would create an empty one. Either restore a \
         backup to {}, or start with an empty database on purpose with \
         --accept-fresh-database (devices must then enroll again, and they will report the \
         server's submission chain as rolled back)",
        kept.display(),
        db.display()
    )
}

/// The error of opening the database in `dir`, with what to do next when it was just found
/// damaged and set aside.
pub fn explain_open_error(dir: &Path, e: ServerError) -> ServerError {
    let db = dir.join(DATABASE_FILE);
    match (&e, set_aside_copies(dir)) {
        (ServerError::Internal(m), Ok(copies)) if !db.exists() && m.contains("corrupt") => {
            match copies.last() {
                Some(kept) => ServerError::Internal(format!("{m}. {}", guidance(kept, &db))),
                None => e,
            }
        }
        _ => e,
    }
}
