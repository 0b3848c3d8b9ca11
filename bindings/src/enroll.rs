//! Enrollment with client options: for a server whose certificate comes from a private CA
//! (`SyncOptions.trusted_roots_pem`), the enrollment call must trust the same roots as the
//! sync client.

use crate::error::{FenleiError, guard};
use crate::store::FenleiStore;
use fenlei_core::protocol::EnrollResponse;
use fenlei_core::sync::{self, SyncOptions};
use std::sync::Arc;

/// [`crate::enroll_device`] with the options (timeout, trusted roots) the sync client will use.
#[uniffi::export]
pub fn enroll_device_with_options(
    server_url: String,
    code: String,
    store: Arc<FenleiStore>,
    options: SyncOptions,
) -> Result<EnrollResponse, FenleiError> {
    guard("enroll_device_with_options", || {
        sync::enroll_with(&server_url, &code, store.core(), &options)
    })
}
