//! Tamper evidence on PostgreSQL: device keys, the server key and the append-only chain.
//!
//! Appends from every instance go one at a time: the appending transaction takes
//! `LOCK TABLE chain_entries IN SHARE ROW EXCLUSIVE MODE`, which conflicts with itself and with
//! any other writer of the table but not with readers, so the tail it reads is the tail it
//! extends and indexes never fork. Under the lock a statement already in the chain (a retried
//! request, or the same one sent to two instances) returns its entry instead of a second one.

use super::PgStorage;
use super::conn::Sql;
use crate::domain::chain::ChainVerification;
use crate::error::{ServerError, ServerResult};
use crate::model::{ChainRow, NewEntry};
use crate::store::sql::ROW_SELECT;
use fenlei_core::tamper::{self, ChainLink, GENESIS};
use postgres::fallible_iterator::FallibleIterator;

fn chain_row(r: &postgres::Row) -> ServerResult<ChainRow> {
    Ok(ChainRow {
        link: ChainLink {
            index: r.try_get::<_, i64>(0)? as u64,
            prev_hash: r.try_get(1)?,
            received_at_ms: r.try_get(2)?,
            statement_sha256: r.try_get(3)?,
            device_signature: r.try_get(4)?,
        },
        entry_hash: r.try_get(5)?,
        statement: r.try_get(6)?,
        device_id: r.try_get(7)?,
        inspection_id: r.try_get(8)?,
    })
}

/// The next index and the last entry's hash (GENESIS when empty).
fn chain_tail(client: &mut impl Sql) -> ServerResult<(u64, String)> {
    Ok(client
        .query_opt(
            "SELECT idx + 1, entry_hash FROM chain_entries ORDER BY idx DESC LIMIT 1",
            &[],
        )?
        .map(|r| Ok::<_, ServerError>((r.try_get::<_, i64>(0)? as u64, r.try_get(1)?)))
        .transpose()?
        .unwrap_or((0, GENESIS.to_string())))
}

impl crate::store::ChainStore for PgStorage {
    fn set_device_key(&self, device_id: &str, public_key: &str) -> ServerResult<()> {
        let n = self.client()?.execute(
            "UPDATE devices SET public_key = $2 WHERE id = $1",
            &[&device_id, &public_key],
        )?;
        if n == 0 {
            return Err(ServerError::NotFound(format!("no device {device_id}")));
        }
        Ok(())
    }

    fn device_key(&self, device_id: &str) -> ServerResult<Option<String>> {
        Ok(self
            .client()?
            .query_opt(
                "SELECT public_key FROM devices WHERE id = $1 AND revoked = 0",
                &[&device_id],
            )?
            .map(|r| r.try_get::<_, Option<String>>(0))
            .transpose()?
            .flatten())
    }

    fn server_key(&self) -> &ed25519_dalek::SigningKey {
        self.signing_key()
    }

    fn chain_append(&self, entry: NewEntry<'_>) -> ServerResult<ChainRow> {
        let sha = tamper::sha256_hex(entry.statement);
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        tx.batch_execute("LOCK TABLE chain_entries IN SHARE ROW EXCLUSIVE MODE")?;
        if let Some(r) = tx.query_opt(
            &format!("{ROW_SELECT} WHERE statement_sha256 = $1"),
            &[&sha],
        )? {
            return chain_row(&r);
        }
        let (index, prev_hash) = chain_tail(&mut tx)?;
        let link = ChainLink {
            index,
            prev_hash,
            received_at_ms: entry.received_at_ms,
            statement_sha256: sha,
            device_signature: entry.device_signature.to_string(),
        };
        let entry_hash = link.hash();
        tx.execute(
            "INSERT INTO chain_entries (idx, prev_hash, entry_hash, received_at, statement_sha256,
                 device_signature, statement, device_id, inspection_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &(index as i64),
                &link.prev_hash,
                &entry_hash,
                &link.received_at_ms,
                &link.statement_sha256,
                &link.device_signature,
                &entry.statement,
                &entry.device_id,
                &entry.inspection_id,
            ],
        )?;
        tx.commit()?;
        Ok(ChainRow {
            link,
            entry_hash,
            statement: entry.statement.to_vec(),
            device_id: entry.device_id.to_string(),
            inspection_id: entry.inspection_id.to_string(),
        })
    }

    fn chain_entry(&self, index: u64) -> ServerResult<Option<ChainRow>> {
        let Ok(index) = i64::try_from(index) else {
            return Ok(None);
        };
        self.client()?
            .query_opt(&format!("{ROW_SELECT} WHERE idx = $1"), &[&index])?
            .map(|r| chain_row(&r))
            .transpose()
    }

    fn chain_rows_of(&self, inspection_id: &str) -> ServerResult<Vec<ChainRow>> {
        self.client()?
            .query(
                &format!("{ROW_SELECT} WHERE inspection_id = $1 ORDER BY idx"),
                &[&inspection_id],
            )?
            .iter()
            .map(chain_row)
            .collect()
    }

    fn chain_head(&self) -> ServerResult<(u64, String)> {
        chain_tail(&mut *self.client()?)
    }
}

impl PgStorage {
    /// `verify-chain` on PostgreSQL: the whole chain, streamed in index order from one read-only
    /// snapshot, through the same check as SQLite's ([`crate::domain::chain::verify_rows`]). Connects
    /// directly: no pool, no migration, no key creation — the database is looked at as it is.
    pub fn verify_chain(
        url: &str,
        expect: Option<(u64, String)>,
    ) -> ServerResult<ChainVerification> {
        let config: postgres::Config = url
            .parse()
            .map_err(|e| ServerError::BadRequest(format!("database URL: {e}")))?;
        let mut client = config.connect(postgres::NoTls)?;
        let mut tx = client
            .build_transaction()
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()?;
        let exists: bool = tx
            .query_one("SELECT to_regclass('chain_entries') IS NOT NULL", &[])?
            .try_get(0)?;
        if !exists {
            return Err(ServerError::NotFound(
                "no Fenlei database at this URL (no chain_entries table)".into(),
            ));
        }
        let no_params: [&(dyn postgres::types::ToSql + Sync); 0] = [];
        let rows = tx.query_raw(&format!("{ROW_SELECT} ORDER BY idx"), no_params)?;
        crate::domain::chain::verify_rows(
            rows.iterator()
                .map(|r| r.map_err(ServerError::from).and_then(|r| chain_row(&r))),
            expect,
        )
    }
}
