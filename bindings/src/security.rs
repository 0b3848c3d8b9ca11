//! Encryption at rest and tamper evidence through the bindings (docs/tamper-evidence.md,
//! README "Encryption at rest"): opening and re-keying an encrypted store, this device's
//! receipts and the last check of the server's chain, and the receipt phase of a sync.

use crate::error::{FenleiError, guard};
use crate::progress::CancelHandle;
use crate::store::FenleiStore;
use crate::sync::FenleiSyncClient;
use fenlei_core::store::{ChainCheck, Store, StoredReceipt};
use fenlei_core::sync::receipts::ReceiptReport;
use std::sync::Arc;

type Result<T> = std::result::Result<T, FenleiError>;

#[uniffi::export]
impl FenleiStore {
    /// Opens (or creates) the store encrypted with `key`: exactly 32 random bytes the app
    /// keeps in the Android Keystore / iOS Keychain (README). A wrong key is
    /// `FenleiError.WrongKey` and leaves the file untouched.
    #[uniffi::constructor]
    pub fn open_encrypted(path: String, key: Vec<u8>) -> Result<Arc<Self>> {
        guard("open_encrypted", || {
            Ok(Arc::new(FenleiStore {
                inner: Store::open_encrypted(&path, &key)?,
            }))
        })
    }

    /// Re-encrypts the store under a new 32-byte key (after the platform key was rotated).
    pub fn rekey(&self, new_key: Vec<u8>) -> Result<()> {
        guard("rekey", || self.inner.rekey(&new_key))
    }

    pub fn is_encrypted(&self) -> bool {
        self.inner.is_encrypted()
    }

    /// This device's Ed25519 public key (hex), registered with the server at enrollment.
    pub fn device_public_key(&self) -> Result<String> {
        guard("device_public_key", || self.inner.device_public_key())
    }

    /// The server's receipts for submissions made here, in chain order (of one inspection
    /// when given).
    #[uniffi::method(default(inspection_id = None))]
    pub fn receipts(&self, inspection_id: Option<String>) -> Result<Vec<StoredReceipt>> {
        guard("receipts", || self.inner.receipts(inspection_id.as_deref()))
    }

    /// The last check of the server's chain against this device's receipts; an alarm state
    /// (truncated, rewritten, unverifiable) is what the app shows to its user.
    pub fn chain_check(&self) -> Result<ChainCheck> {
        guard("chain_check", || self.inner.chain_check())
    }
}

#[uniffi::export]
impl FenleiSyncClient {
    /// The receipt phase, after `sync`: checks the server's chain against this device's latest
    /// receipt, signs this device's new submissions, sends them and keeps the verified receipts.
    #[uniffi::method(default(cancel = None))]
    pub fn exchange_receipts(
        &self,
        store: Arc<FenleiStore>,
        cancel: Option<Arc<CancelHandle>>,
    ) -> Result<ReceiptReport> {
        let cancel = CancelHandle::token(&cancel);
        guard("exchange_receipts", || {
            self.inner.exchange_receipts(store.core(), &cancel)
        })
    }
}
