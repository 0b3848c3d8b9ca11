//! The media index on PostgreSQL (the bytes are in the blob store).

use super::{PgStorage, not_yet};
use crate::error::ServerResult;
use crate::media::StoredBlob;
use crate::storage::DeviceAuth;
use fenlei_core::sync::media_protocol::MediaRendition;

impl crate::media::MediaIndex for PgStorage {
    fn blobs(&self) -> &dyn crate::blobs::BlobStore {
        self.blob_store()
    }
    fn media_accessible(&self, _auth: &DeviceAuth, _sha256: &str) -> ServerResult<bool> {
        Err(not_yet("media_accessible"))
    }
    fn evidence_reuse(
        &self,
        _auth: &DeviceAuth,
        _sha256: &str,
        _inspection_id: &str,
    ) -> ServerResult<(Vec<String>, u32)> {
        Err(not_yet("evidence_reuse"))
    }
    fn media_blob(
        &self,
        _sha256: &str,
        _rendition: MediaRendition,
    ) -> ServerResult<Option<StoredBlob>> {
        Err(not_yet("media_blob"))
    }
    fn record_media_blob(&self, _blob: &StoredBlob) -> ServerResult<StoredBlob> {
        Err(not_yet("record_media_blob"))
    }
}
