//! Progress and cancellation of long work (community import now; photo ingest and sync later),
//! bridged to core's `Progress` and `CancelToken`.

use fenlei_core::progress::{CancelToken, Progress};
use std::sync::Arc;

/// Implemented by the app to follow long work. Called on the thread that runs the work (the
/// caller's background thread), a few hundred times at most: keep it quick and hop to the UI
/// thread yourself. An exception thrown here aborts the work with `FenleiError.Internal`.
#[uniffi::export(with_foreign)]
pub trait ProgressListener: Send + Sync {
    /// `done` of `total` units finished; `total` is 0 while unknown.
    fn on_progress(&self, done: u64, total: u64);
}

/// Asks long work to stop. Create one, pass it to the call, call `cancel()` from any thread; the
/// work stops at its next step with `FenleiError.Cancelled` and commits nothing. A handle stays
/// cancelled: use a new one for the next call.
#[derive(Debug, Default, uniffi::Object)]
pub struct CancelHandle(CancelToken);

#[uniffi::export]
impl CancelHandle {
    #[uniffi::constructor]
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn cancel(&self) {
        self.0.cancel()
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.is_cancelled()
    }
}

impl CancelHandle {
    pub(crate) fn token(handle: &Option<Arc<CancelHandle>>) -> CancelToken {
        handle.as_ref().map(|h| h.0.clone()).unwrap_or_default()
    }
}

/// Core's progress sink over the app's listener (or over nothing).
pub(crate) struct ProgressBridge(pub(crate) Option<Arc<dyn ProgressListener>>);

impl Progress for ProgressBridge {
    fn on_progress(&self, done: u64, total: u64) {
        if let Some(listener) = &self.0 {
            listener.on_progress(done, total)
        }
    }
}
