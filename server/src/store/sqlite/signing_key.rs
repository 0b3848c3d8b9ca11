//! The server's Ed25519 signing key on the embedded engine: a file in the data folder, made
//! once (PostgreSQL keeps it in the database, `pg/mod.rs`).

use crate::error::{ServerError, ServerResult};
use ed25519_dalek::SigningKey;
use fenlei_core::tamper;
use std::path::Path as FsPath;

/// The file in the data folder holding the server's signing key (hex of the 32-byte seed).
pub const KEY_FILE: &str = "server-signing.key";

/// Loads the server's key from the data folder, creating it (readable by the owner only) on
/// first start. The same key signs every receipt for the life of the data folder.
pub fn load_or_create_key(dir: &FsPath) -> ServerResult<SigningKey> {
    let path = dir.join(KEY_FILE);
    if let Ok(text) = std::fs::read_to_string(&path) {
        let bytes: [u8; 32] = tamper::unhex(text.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| ServerError::Internal(format!("{KEY_FILE} is not 32 bytes of hex")))?;
        return Ok(SigningKey::from_bytes(&bytes));
    }
    let seed: [u8; 32] = rand::random();
    let tmp = dir.join(format!("{KEY_FILE}.tmp"));
    {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(&tmp)?;
        f.write_all(tamper::hex(&seed).as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    Ok(SigningKey::from_bytes(&seed))
}
