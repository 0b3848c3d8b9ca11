//! The media folder on disk: content-addressed paths and crash-safe writes.
//!
//! Layout under the root the app gives (relative paths are what records hold, so an iOS container
//! move or an Android storage migration does not break them):
//!
//! ```text
//! originals/ab/abcdef…(64 hex).jpg   the file as handed over, named by its SHA-256
//! thumbs/ab/abcdef….jpg              ~320 px upright JPEG, named by the ORIGINAL's hash
//! uploads/ab/abcdef….jpg             ~1600 px upright JPEG, named by the ORIGINAL's hash
//! tmp/                               streaming copies not yet named; swept by `sweep_temp`
//! ```
//!
//! Every file appears under its final name only complete and fsynced: written to a temporary
//! file on the same file system, fsynced, renamed, then the directory fsynced. A crash leaves at
//! worst a `.tmp-*` file, never a final name pointing at a partial file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use crate::progress::CancelToken;
use crate::{CoreError, Result};

/// Prefix of every temporary file; `sweep_temp` removes files with it.
pub(crate) const TMP_PREFIX: &str = ".tmp-";

/// Lower-case hex of a digest.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

/// `dir/ab/<hash>.<ext>` relative to the root, with `/` separators on every platform.
pub(crate) fn rel_path(dir: &str, sha256: &str, ext: &str) -> String {
    format!("{dir}/{}/{sha256}.{ext}", &sha256[..2])
}

/// A temporary file that is deleted when dropped unless it was persisted.
pub(crate) struct TempFile {
    path: PathBuf,
    file: Option<File>,
    persisted: bool,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

impl TempFile {
    /// A new, empty temporary file in `dir` (created if missing).
    pub(crate) fn new_in(dir: &Path) -> Result<TempFile> {
        fs::create_dir_all(dir)?;
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let name = format!("{TMP_PREFIX}{}-{nanos:08x}-{n}", std::process::id());
            let path = dir.join(name);
            match OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(file) => {
                    return Ok(TempFile {
                        path,
                        file: Some(file),
                        persisted: false,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn file(&mut self) -> &mut File {
        self.file
            .as_mut()
            .expect("temp file is open until persisted")
    }

    /// fsync, then rename to `dest` and fsync `dest`'s directory. If `dest` already exists
    /// (the same content was stored before: names are hashes) the temporary file is dropped and
    /// the existing one kept, which makes ingest idempotent.
    pub(crate) fn persist(mut self, dest: &Path) -> Result<()> {
        let file = self.file.take().expect("persist once");
        file.sync_all()?;
        drop(file);
        let dir = dest
            .parent()
            .ok_or_else(|| CoreError::InvalidArgument("media path has no parent".into()))?;
        fs::create_dir_all(dir)?;
        if dest.exists() {
            // Same name = same content; keep the file that is already there.
            return Ok(());
        }
        fs::rename(&self.path, dest)?;
        self.persisted = true;
        sync_dir(dir)?;
        if let Some(src_dir) = self.path.parent()
            && src_dir != dir
        {
            sync_dir(src_dir)?;
        }
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.persisted {
            self.file.take();
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// fsync a directory so a rename in it survives a crash. A no-op where directories cannot be
/// opened for syncing (Windows); Android and iOS are Unix.
fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()?;
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
    }
    Ok(())
}

/// Writes `bytes` under `dest` atomically (temporary file in the same directory).
pub(crate) fn write_atomic(dest: &Path, bytes: &[u8]) -> Result<()> {
    let dir = dest
        .parent()
        .ok_or_else(|| CoreError::InvalidArgument("media path has no parent".into()))?;
    if dest.exists() {
        return Ok(());
    }
    let mut tmp = TempFile::new_in(dir)?;
    tmp.file().write_all(bytes)?;
    tmp.persist(dest)
}

/// Streams `src` into a new temporary file in `tmp_dir` while hashing it: the file is read once
/// and never held in memory whole. Refuses files over `max_bytes` (checked as it reads, so a file
/// that grows while being copied is caught too). Checks `cancel` between chunks.
pub(crate) fn copy_and_hash(
    src: &mut File,
    tmp_dir: &Path,
    max_bytes: u64,
    cancel: &CancelToken,
) -> Result<(TempFile, String, u64)> {
    let mut tmp = TempFile::new_in(tmp_dir)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total: u64 = 0;
    loop {
        cancel.check()?;
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        total += n as u64;
        if total > max_bytes {
            return Err(CoreError::InvalidMedia {
                reason: format!("file is larger than the {max_bytes}-byte limit"),
            });
        }
        hasher.update(&buf[..n]);
        tmp.file().write_all(&buf[..n])?;
    }
    Ok((tmp, hex(&hasher.finalize()), total))
}

/// SHA-256 of a file, streamed.
pub(crate) fn hash_file(path: &Path) -> Result<String> {
    let mut f = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// SHA-256 of bytes in memory.
pub(crate) fn hash_bytes(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Removes leftover temporary files (from a crash or a killed app) under `root`. Call it when no
/// ingest is running, e.g. at start-up. Returns how many files were removed.
pub(crate) fn sweep_temp(root: &Path) -> Result<u64> {
    let mut removed = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e.into()),
        };
        for entry in entries {
            let entry = entry?;
            let ty = entry.file_type()?;
            if ty.is_dir() {
                stack.push(entry.path());
            } else if entry.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
                fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}
