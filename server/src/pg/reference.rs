//! Communities, standards and the reference-data feed on PostgreSQL.

use super::{PgStorage, not_yet};
use crate::error::ServerResult;
use crate::storage::*;
use fenlei_core::community::Community;
use fenlei_core::inspection::Inspection;
use fenlei_core::scoring::ScoreCard;
use fenlei_core::store::StandardInfo;
use fenlei_core::sync::protocol::ReferenceUpdate;

impl crate::storage::ReferenceStore for PgStorage {
    fn import_communities_csv(&self, _bytes: &[u8]) -> ServerResult<u32> {
        Err(not_yet("import_communities_csv"))
    }
    fn publish_standard(&self, _source: &str) -> ServerResult<StandardInfo> {
        Err(not_yet("publish_standard"))
    }
    fn reference_after(
        &self,
        _cursor: u64,
        _user: &User,
        _limit: usize,
    ) -> ServerResult<ReferenceUpdate> {
        Err(not_yet("reference_after"))
    }
    fn community(&self, _id: &str) -> ServerResult<Option<Community>> {
        Err(not_yet("community"))
    }
    fn score_of(&self, _inspection: &Inspection) -> ServerResult<Option<ScoreCard>> {
        Err(not_yet("score_of"))
    }
}
