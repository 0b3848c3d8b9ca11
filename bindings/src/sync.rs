//! Sync with the Fenlei server: enrollment and the sync client. Each call delegates to
//! core's `sync` module through [`guard`]. Calls block (HTTP inside): run them off the UI
//! thread, as every other call (docs/bindings.md).

use crate::error::{FenleiError, guard};
use crate::progress::{CancelHandle, ProgressBridge, ProgressListener};
use crate::store::FenleiStore;
use fenlei_core::protocol::{Assignments, EnrollResponse};
use fenlei_core::sync::{self, SyncClient, SyncOptions, SyncReport};
use std::sync::Arc;

/// Exchanges a one-time enrollment code (issued by the server's admin) for this device's
/// credential, bound to the store's device id. Keep the returned token in the Android Keystore /
/// iOS Keychain and pass it to [`FenleiSyncClient::new`].
#[uniffi::export]
pub fn enroll_device(
    server_url: String,
    code: String,
    store: Arc<FenleiStore>,
) -> Result<EnrollResponse, FenleiError> {
    guard("enroll_device", || {
        sync::enroll(&server_url, &code, store.core())
    })
}

/// The signed-in user's rights (communities, streets, districts) as the server last sent them.
#[uniffi::export]
pub fn sync_assignments(store: Arc<FenleiStore>) -> Result<Option<Assignments>, FenleiError> {
    guard("sync_assignments", || SyncClient::assignments(store.core()))
}

/// A device's connection to the server. HTTPS is required except for loopback hosts.
#[derive(uniffi::Object)]
pub struct FenleiSyncClient {
    pub(crate) inner: SyncClient,
}

#[uniffi::export]
impl FenleiSyncClient {
    #[uniffi::constructor(default(options = None))]
    pub fn new(
        server_url: String,
        token: String,
        options: Option<SyncOptions>,
    ) -> Result<Arc<Self>, FenleiError> {
        guard("sync_client", || {
            let inner = SyncClient::with_options(&server_url, &token, options.unwrap_or_default())?;
            Ok(Arc::new(FenleiSyncClient { inner }))
        })
    }

    /// Sends this device's changes and receives everyone else's (and new reference data) until
    /// both sides agree. Safe to call at any time, also while the app keeps editing; what could
    /// not be sent stays marked for the next call. Progress counts documents exchanged.
    #[uniffi::method(default(progress = None, cancel = None))]
    pub fn sync(
        &self,
        store: Arc<FenleiStore>,
        progress: Option<Arc<dyn ProgressListener>>,
        cancel: Option<Arc<CancelHandle>>,
    ) -> Result<SyncReport, FenleiError> {
        let (progress, cancel) = (ProgressBridge(progress), CancelHandle::token(&cancel));
        guard("sync", || self.inner.sync(store.core(), &progress, &cancel))
    }
}
