//! Progress and cancellation for long work (imports now; sync and photo ingest later).
//! The work reports through a [`Progress`] sink and checks a [`CancelToken`] between steps;
//! a cancelled step rolls back whatever it had not committed and returns `CoreError::Cancelled`.

use crate::{CoreError, Result};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Receives progress of long work. Called on the worker's thread; keep it quick.
pub trait Progress: Send + Sync {
    /// `done` of `total` units finished (`total` may be 0 when unknown).
    fn on_progress(&self, done: u64, total: u64);
}

/// A progress sink that ignores everything.
pub struct NoProgress;

impl Progress for NoProgress {
    fn on_progress(&self, _done: u64, _total: u64) {}
}

/// A shared flag that asks long work to stop. Cheap to clone; any clone cancels all.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// `Err(Cancelled)` once cancelled: use with `?` between steps of the work.
    pub fn check(&self) -> Result<()> {
        if self.is_cancelled() {
            Err(CoreError::Cancelled)
        } else {
            Ok(())
        }
    }
}
