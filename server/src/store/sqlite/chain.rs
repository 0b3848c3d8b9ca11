//! The tamper chain on SQLite: rows, and `verify-chain` over a database file.

use super::*;
use crate::domain::chain::*;
use crate::error::{ServerError, ServerResult};
use crate::model::*;
use crate::store::sql::ROW_SELECT;
use fenlei_core::tamper::ChainLink;
use rusqlite::Connection;
use std::path::Path as FsPath;

pub(crate) fn chain_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ChainRow> {
    Ok(ChainRow {
        link: ChainLink {
            index: r.get::<_, i64>(0)? as u64,
            prev_hash: r.get(1)?,
            received_at_ms: r.get(2)?,
            statement_sha256: r.get(3)?,
            device_signature: r.get(4)?,
        },
        entry_hash: r.get(5)?,
        statement: r.get(6)?,
        device_id: r.get(7)?,
        inspection_id: r.get(8)?,
    })
}

/// Re-checks the whole chain in the server's SQLite file, read-only (see [`verify_rows`]).
/// `expect` is a head published or held elsewhere (a device's receipt: index and entry hash)
/// that the chain must still contain.
pub fn verify_chain(db: &FsPath, expect: Option<(u64, String)>) -> ServerResult<ChainVerification> {
    let conn = crate::store::sqlite::open_conn(db, true)?;
    verify_chain_conn(&conn, expect)
}

pub fn verify_chain_conn(
    conn: &Connection,
    expect: Option<(u64, String)>,
) -> ServerResult<ChainVerification> {
    let mut stmt = conn.prepare(&format!("{ROW_SELECT} ORDER BY idx"))?;
    let rows = stmt.query_map([], chain_row)?;
    verify_rows(rows.map(|r| r.map_err(ServerError::from)), expect)
}

impl ChainStore for SqliteStorage {
    fn set_device_key(&self, device_id: &str, public_key: &str) -> ServerResult<()> {
        let n = lock(&self.writer).execute(
            "UPDATE devices SET public_key = ?2 WHERE id = ?1",
            params![device_id, public_key],
        )?;
        if n == 0 {
            return Err(ServerError::NotFound(format!("no device {device_id}")));
        }
        Ok(())
    }

    fn device_key(&self, device_id: &str) -> ServerResult<Option<String>> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT public_key FROM devices WHERE id = ?1 AND revoked = 0",
                [device_id],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()?
            .flatten())
        })
    }

    fn server_key(&self) -> &ed25519_dalek::SigningKey {
        &self.signing_key
    }

    fn chain_append(
        &self,
        entry: crate::model::NewEntry<'_>,
    ) -> ServerResult<crate::model::ChainRow> {
        let sha = fenlei_core::tamper::sha256_hex(entry.statement);
        let mut w = lock(&self.writer);
        let tx = w.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if let Some(row) = tx
            .query_row(
                &format!(
                    "{} WHERE statement_sha256 = ?1",
                    crate::store::sql::ROW_SELECT
                ),
                [&sha],
                crate::store::sqlite::chain_row,
            )
            .optional()?
        {
            return Ok(row);
        }
        let (index, prev_hash) = Self::chain_tail(&tx)?;
        let link = fenlei_core::tamper::ChainLink {
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
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                index as i64,
                link.prev_hash,
                entry_hash,
                link.received_at_ms,
                link.statement_sha256,
                link.device_signature,
                entry.statement,
                entry.device_id,
                entry.inspection_id
            ],
        )?;
        tx.commit()?;
        Ok(crate::model::ChainRow {
            link,
            entry_hash,
            statement: entry.statement.to_vec(),
            device_id: entry.device_id.to_string(),
            inspection_id: entry.inspection_id.to_string(),
        })
    }

    fn chain_entry(&self, index: u64) -> ServerResult<Option<crate::model::ChainRow>> {
        self.read(|c| {
            Ok(c.query_row(
                &format!("{} WHERE idx = ?1", crate::store::sql::ROW_SELECT),
                [index as i64],
                crate::store::sqlite::chain_row,
            )
            .optional()?)
        })
    }

    fn chain_rows_of(&self, inspection_id: &str) -> ServerResult<Vec<crate::model::ChainRow>> {
        self.read(|c| {
            let sql = format!(
                "{} WHERE inspection_id = ?1 ORDER BY idx",
                crate::store::sql::ROW_SELECT
            );
            let rows = c
                .prepare(&sql)?
                .query_map([inspection_id], crate::store::sqlite::chain_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    fn chain_head(&self) -> ServerResult<(u64, String)> {
        self.read(Self::chain_tail)
    }
}

impl SqliteStorage {
    fn chain_tail(conn: &Connection) -> ServerResult<(u64, String)> {
        Ok(conn
            .query_row(
                "SELECT idx + 1, entry_hash FROM chain_entries ORDER BY idx DESC LIMIT 1",
                [],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, String>(1)?)),
            )
            .optional()?
            .unwrap_or((0, fenlei_core::tamper::GENESIS.to_string())))
    }
}
