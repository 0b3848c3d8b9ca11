//! Photos and voice notes: a media folder bound to a store. Each method is one delegation
//! through [`guard`]; the records (MediaRecord, EvidenceFlag, GeofenceCheck...) come from core.

use crate::error::{FenleiError, guard};
use crate::store::FenleiStore;
use fenlei_core::media::{MediaRecord, MediaStore};
use fenlei_core::store::{AttachedMedia, EvidenceCheck, RecordedGeofenceCheck};
use std::path::Path;
use std::sync::Arc;

type Result<T> = std::result::Result<T, FenleiError>;

/// The media folder (e.g. `<filesDir>/media`) of a store: originals, thumbnails and upload
/// renditions named by content hash. Open one per store and share it; safe from several threads.
/// Every method blocks: call it off the UI thread.
#[derive(uniffi::Object)]
pub struct FenleiMedia {
    pub(crate) store: Arc<FenleiStore>,
    pub(crate) media: MediaStore,
}

#[uniffi::export]
impl FenleiMedia {
    /// Opens (creating) the media folder at `root` for `store`.
    #[uniffi::constructor]
    pub fn open(store: Arc<FenleiStore>, root: String) -> Result<Arc<Self>> {
        guard("media_open", || {
            Ok(Arc::new(FenleiMedia {
                media: MediaStore::open(root)?,
                store,
            }))
        })
    }

    /// Copies the photo at `path` (JPEG, PNG, WebP, HEIF) into the media folder and attaches it
    /// to the item, returning its record and evidence flags. `preview_path`: for a HEIF, a
    /// JPEG/PNG the platform made of it. A refused file leaves nothing behind.
    #[uniffi::method(default(preview_path = None))]
    pub fn attach_photo(
        &self,
        inspection_id: String,
        item_code: String,
        path: String,
        by: String,
        preview_path: Option<String>,
    ) -> Result<AttachedMedia> {
        guard("attach_photo", || {
            let preview = preview_path.as_deref().map(Path::new);
            self.store.inner.attach_photo(
                &self.media,
                &inspection_id,
                &item_code,
                Path::new(&path),
                preview,
                &by,
            )
        })
    }

    /// Copies a voice note (m4a/AAC, Ogg Opus, WAV) in and attaches it with the phone's
    /// transcript, if any.
    #[uniffi::method(default(transcript = None))]
    pub fn attach_voice_note(
        &self,
        inspection_id: String,
        item_code: String,
        path: String,
        by: String,
        transcript: Option<String>,
    ) -> Result<AttachedMedia> {
        guard("attach_voice_note", || {
            self.store.inner.attach_voice_note(
                &self.media,
                &inspection_id,
                &item_code,
                Path::new(&path),
                transcript,
                &by,
            )
        })
    }

    /// Copies a rectification task's closure photo in (JPEG, PNG, WebP, HEIF) and adds it to the
    /// task's closure evidence as `kind` (`photo_after` for the 整改后照片), so media sync uploads
    /// it and supervisors see it. Returns its record. A refused file leaves nothing behind.
    #[uniffi::method(default(preview_path = None))]
    pub fn attach_closure_photo(
        &self,
        task_id: String,
        kind: String,
        path: String,
        by: String,
        preview_path: Option<String>,
    ) -> Result<MediaRecord> {
        guard("attach_closure_photo", || {
            let preview = preview_path.as_deref().map(Path::new);
            self.store.inner.attach_closure_photo(
                &self.media,
                &task_id,
                &kind,
                Path::new(&path),
                preview,
                &by,
            )
        })
    }

    /// The stored record of a photo or voice note by SHA-256, if this device has it.
    pub fn media(&self, sha256: String) -> Result<Option<MediaRecord>> {
        guard("media", || self.store.inner.media(&sha256))
    }

    /// The photos and voice notes an inspection references that this device holds.
    pub fn inspection_media(&self, inspection_id: String) -> Result<Vec<MediaRecord>> {
        guard("inspection_media", || {
            self.store.inner.inspection_media(&inspection_id)
        })
    }

    /// The flags of each piece of evidence of the inspection (what a supervisor sees).
    pub fn evidence_flags(&self, inspection_id: String) -> Result<Vec<EvidenceCheck>> {
        guard("evidence_flags", || {
            self.store.inner.evidence_flags(&inspection_id)
        })
    }

    /// The geofence checks made at the inspection's first fix and at each submission.
    pub fn geofence_checks(&self, inspection_id: String) -> Result<Vec<RecordedGeofenceCheck>> {
        guard("geofence_checks", || {
            self.store.inner.geofence_checks(&inspection_id)
        })
    }

    /// The absolute path of a record's relative path (to show a thumbnail, play a note).
    pub fn file_path(&self, relative_path: String) -> Result<String> {
        guard("file_path", || {
            Ok(self
                .media
                .file_path(&relative_path)?
                .to_string_lossy()
                .into_owned())
        })
    }

    /// Removes temporary files a killed app left; call at start-up, before any attach.
    pub fn sweep_temp(&self) -> Result<u64> {
        guard("sweep_temp", || self.media.sweep_temp())
    }
}
