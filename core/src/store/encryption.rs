//! Encryption at rest (docs/reliability.md, "Encryption at rest"): the store's file, its WAL
//! and its temporary files are encrypted by SQLCipher (AES-256, HMAC-SHA512 per page) with a
//! raw 32-byte key the app keeps in the Android Keystore / iOS Keychain.
//!
//! Raw key, not a passphrase: the platform keystore hands out random bytes, which need no
//! PBKDF2 stretching (SQLCipher's default 256,000 iterations would add ~0.1–0.5 s to every
//! connection opened on a phone for no gain). SQLCipher's `x'…'` key syntax uses the bytes
//! as the database key directly.

use super::{Clock, Store, SystemClock, lock};
use crate::{CoreError, Result};
use rusqlite::{Connection, ErrorCode, OptionalExtension};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A raw 32-byte database key; overwritten in memory when dropped.
#[derive(Clone)]
pub(crate) struct StoreKey([u8; 32]);

impl StoreKey {
    pub(crate) fn new(bytes: &[u8]) -> Result<StoreKey> {
        let key: [u8; 32] = bytes.try_into().map_err(|_| {
            CoreError::InvalidArgument("a store key is exactly 32 random bytes".into())
        })?;
        Ok(StoreKey(key))
    }

    /// SQLCipher's raw-key literal: `x'<64 hex digits>'`.
    pub(crate) fn pragma_value(&self) -> String {
        format!("x'{}'", crate::tamper::hex(&self.0))
    }
}

impl Drop for StoreKey {
    fn drop(&mut self) {
        for b in self.0.iter_mut() {
            // Volatile so the compiler does not drop the wipe of memory about to be freed.
            unsafe { std::ptr::write_volatile(b, 0) };
        }
    }
}

/// Keys a fresh connection and proves the key opens the file (SQLCipher checks lazily, so a
/// wrong key would otherwise surface at some later query as "file is not a database").
pub(crate) fn apply_key(conn: &Connection, key: Option<&StoreKey>) -> Result<()> {
    let Some(key) = key else { return Ok(()) };
    // Plain SQLite ignores `PRAGMA key` silently: never let a store believed encrypted be
    // written in clear by a build without SQLCipher (core feature `sqlcipher`).
    let cipher: Option<String> = conn
        .query_row("PRAGMA cipher_version", [], |r| r.get(0))
        .optional()?;
    if cipher.is_none() {
        return Err(CoreError::InvalidArgument(
            "this build has no SQLCipher: encrypted stores are unavailable".into(),
        ));
    }
    conn.pragma_update(None, "key", key.pragma_value())?;
    silence_sqlcipher_log(conn)?;
    // Temporary tables and sorts stay in memory: nothing of the store reaches a temp file.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    check_key(conn)
}

/// SQLCipher logs at WARN level by default, to stderr on Linux and to logcat / the Apple
/// console on phones: a wrong key prints "hmac check failed for pgno=1" there, which the app
/// did not ask for and cannot turn off. Fenlei reports a wrong key as `WrongKey` instead, so
/// the library stays silent (docs/reliability.md). SQLCipher sets its defaults when the first
/// keyed connection activates it (`PRAGMA key`), overwriting an earlier level, so this runs
/// after keying; the level is process-wide and stays set.
fn silence_sqlcipher_log(conn: &Connection) -> Result<()> {
    conn.query_row("PRAGMA cipher_log_level = NONE", [], |_| Ok(()))
        .optional()?;
    Ok(())
}

fn check_key(conn: &Connection) -> Result<()> {
    match conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    }) {
        Ok(_) => Ok(()),
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == ErrorCode::NotADatabase => {
            Err(CoreError::WrongKey)
        }
        Err(e) => Err(e.into()),
    }
}

/// The key a store's connections are opened with, and a counter bumped on every re-key so
/// connections keyed before it are not reused.
pub(crate) struct KeySlot {
    key: Mutex<Option<StoreKey>>,
    epoch: AtomicU64,
}

impl KeySlot {
    pub(crate) fn new(key: Option<StoreKey>) -> KeySlot {
        KeySlot {
            key: Mutex::new(key),
            epoch: AtomicU64::new(0),
        }
    }

    pub(crate) fn apply(&self, conn: &Connection) -> Result<()> {
        let key = lock(&self.key).clone();
        apply_key(conn, key.as_ref())
    }

    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }
}

impl Store {
    /// Opens (or creates) an encrypted store with a raw 32-byte key (random bytes kept by the
    /// platform keystore; see the README). A wrong key, or a plain store, is
    /// [`CoreError::WrongKey`] and leaves the file untouched.
    pub fn open_encrypted(path: impl AsRef<Path>, key: &[u8]) -> Result<Store> {
        Store::open_encrypted_with_clock(path, key, Arc::new(SystemClock))
    }

    pub fn open_encrypted_with_clock(
        path: impl AsRef<Path>,
        key: &[u8],
        clock: Arc<dyn Clock>,
    ) -> Result<Store> {
        let key = StoreKey::new(key)?;
        Store::open_inner(path.as_ref(), clock, Some(key))
    }

    /// Whether this store was opened with a key.
    pub fn is_encrypted(&self) -> bool {
        lock(&self.key.key).is_some()
    }

    /// Re-encrypts the store under a new raw 32-byte key (e.g. after the platform key was
    /// rotated). Every page is rewritten in one transaction: a crash leaves the old key valid.
    /// Only for a store opened with [`Store::open_encrypted`].
    pub fn rekey(&self, new_key: &[u8]) -> Result<()> {
        let new_key = StoreKey::new(new_key)?;
        if !self.is_encrypted() {
            return Err(CoreError::InvalidArgument(
                "only an encrypted store can be re-keyed".into(),
            ));
        }
        let w = lock(&self.writer);
        let mut readers = lock(&self.readers);
        // Readers hold the old key: close them before the pages change under them.
        readers.clear();
        w.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        w.conn
            .pragma_update(None, "rekey", new_key.pragma_value())?;
        *lock(&self.key.key) = Some(new_key);
        self.key.epoch.fetch_add(1, Ordering::SeqCst);
        drop(readers);
        check_key(&w.conn)
    }
}
