//! Files the server creates are its service user's alone (docs/deploy.md, "File permissions"):
//! the database with its WAL and shared-memory files, the signing key, blobs and staged uploads,
//! the port and lock files. Two layers: the process umask is 077 from the first line of
//! `cli_main`, so whatever any library creates is 0600 / 0700; and the files the server names
//! itself are created with those modes explicitly, so an embedding process with another umask
//! gets them too. SQLite gives its `-wal` and `-shm` files the database file's mode.

use std::fs::{DirBuilder, OpenOptions};
use std::io::Write;
use std::path::Path;

/// Mode of every file the server creates.
pub const FILE_MODE: u32 = 0o600;
/// Mode of every folder the server creates.
pub const DIR_MODE: u32 = 0o700;

/// Sets the process umask to 077 (group and others get nothing).
pub fn restrict_umask() {
    #[cfg(unix)]
    // SAFETY: umask only swaps the process's file-creation mask.
    unsafe {
        libc::umask(0o077);
    }
}

/// `OpenOptions` that create a file as [`FILE_MODE`].
pub fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
    options
}

/// Creates `dir` and its missing parents as [`DIR_MODE`] (folders that exist keep theirs).
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, DIR_MODE);
    builder.create(dir)
}

/// Writes `bytes` to a new or truncated file created as [`FILE_MODE`].
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = private_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    f.write_all(bytes)
}

/// Creates an empty file as [`FILE_MODE`] unless it exists (SQLite opens an empty file as a new
/// database, and creates its WAL and shared-memory files with the database file's mode).
pub fn touch_private(path: &Path) -> std::io::Result<()> {
    match private_options().write(true).create_new(true).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// A warning for each of `paths` that group or others may read (a data folder made by an older
/// version, or by hand): the server does not change modes it did not set.
pub fn warn_if_shared(paths: &[&Path]) {
    #[cfg(unix)]
    for path in paths {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                eprintln!(
                    "fenlei-server: warning: {} is open to other users (mode {mode:03o}); \
                     `chmod -R go-rwx` it (docs/deploy.md, \"File permissions\")",
                    path.display()
                );
            }
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn files_and_folders_are_created_private_whatever_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("a/b");
        create_private_dir(&sub).unwrap();
        assert_eq!(mode(&dir.path().join("a")), DIR_MODE);
        assert_eq!(mode(&sub), DIR_MODE);
        write_private(&sub.join("port"), b"8080").unwrap();
        assert_eq!(mode(&sub.join("port")), FILE_MODE);
        touch_private(&sub.join("db")).unwrap();
        assert_eq!(mode(&sub.join("db")), FILE_MODE);
        // An existing file is left as it is.
        std::fs::set_permissions(sub.join("db"), std::fs::Permissions::from_mode(0o640)).unwrap();
        touch_private(&sub.join("db")).unwrap();
        assert_eq!(mode(&sub.join("db")), 0o640);
    }
}
