//! Media sync through the bindings: photos and voice notes to the server, resumable
//! (docs/media-sync.md). Each method delegates to core's `sync::media` through [`guard`].

use crate::error::{FenleiError, guard};
use crate::media::FenleiMedia;
use crate::progress::{CancelHandle, ProgressBridge, ProgressListener};
use crate::sync::FenleiSyncClient;
use fenlei_core::store::MediaUploadState;
use fenlei_core::sync::media::{MediaSyncOptions, MediaSyncReport};
use std::sync::Arc;

#[uniffi::export]
impl FenleiSyncClient {
    /// Syncs the documents, then sends the photos and voice notes the server lacks: thumbnails,
    /// then upload renditions and voice notes, then photo originals (held on a metered network
    /// unless `options.originals_on_metered`). Tell it the network (`options.network`). A cut,
    /// a cancel or a killed app resumes from the server's offset on the next call. Progress
    /// counts bytes.
    #[uniffi::method(default(options = None, progress = None, cancel = None))]
    pub fn sync_media(
        &self,
        media: Arc<FenleiMedia>,
        options: Option<MediaSyncOptions>,
        progress: Option<Arc<dyn ProgressListener>>,
        cancel: Option<Arc<CancelHandle>>,
    ) -> Result<MediaSyncReport, FenleiError> {
        let (progress, cancel) = (ProgressBridge(progress), CancelHandle::token(&cancel));
        guard("sync_media", || {
            let options = options.unwrap_or_default();
            let (store, files) = (media.store.core(), &media.media);
            self.inner
                .sync_media(store, files, &options, &progress, &cancel)
        })
    }
}

#[uniffi::export]
impl FenleiMedia {
    /// Where each file of the inspection's photos and voice notes stands in media sync.
    pub fn upload_states(
        &self,
        inspection_id: String,
    ) -> Result<Vec<MediaUploadState>, FenleiError> {
        guard("upload_states", || {
            self.store.inner.media_upload_states(&inspection_id)
        })
    }
}
