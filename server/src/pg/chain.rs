//! Tamper evidence on PostgreSQL: device keys, the server key and the append-only chain.

use super::{PgStorage, not_yet};
use crate::error::ServerResult;

impl crate::storage::ChainStore for PgStorage {
    fn set_device_key(&self, _device_id: &str, _public_key: &str) -> ServerResult<()> {
        Err(not_yet("set_device_key"))
    }
    fn device_key(&self, _device_id: &str) -> ServerResult<Option<String>> {
        Err(not_yet("device_key"))
    }
    fn server_key(&self) -> &ed25519_dalek::SigningKey {
        self.signing_key()
    }
    fn chain_append(
        &self,
        _entry: crate::chain::NewEntry<'_>,
    ) -> ServerResult<crate::chain::ChainRow> {
        Err(not_yet("chain_append"))
    }
    fn chain_entry(&self, _index: u64) -> ServerResult<Option<crate::chain::ChainRow>> {
        Err(not_yet("chain_entry"))
    }
    fn chain_rows_of(&self, _inspection_id: &str) -> ServerResult<Vec<crate::chain::ChainRow>> {
        Err(not_yet("chain_rows_of"))
    }
    fn chain_head(&self) -> ServerResult<(u64, String)> {
        Err(not_yet("chain_head"))
    }
}
