//! Encrypting an existing plain store in place (docs/reliability.md, "Encrypting an existing
//! plain store"), for apps that shipped plain stores before they kept a keystore key.

use crate::error::{FenleiError, guard};
use crate::store::FenleiStore;
use fenlei_core::store::Store;
use std::sync::Arc;

#[uniffi::export]
impl FenleiStore {
    /// Opens the store at `path` encrypted with `key` (32 random bytes from the platform
    /// keystore), first converting it if it is a plain store; safe to call on every start (a
    /// missing file becomes a new encrypted store, an encrypted one is opened). Close any plain
    /// `FenleiStore` on the path first. On failure the plain store is left as it was; on
    /// success no plaintext copy is left in the folder.
    #[uniffi::constructor]
    pub fn encrypt_plain_store(path: String, key: Vec<u8>) -> Result<Arc<Self>, FenleiError> {
        guard("encrypt_plain_store", || {
            Ok(Arc::new(FenleiStore {
                inner: Store::encrypt_plain_store(&path, &key)?,
            }))
        })
    }
}
