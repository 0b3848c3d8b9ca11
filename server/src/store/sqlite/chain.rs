//! The tamper chain on SQLite: rows, and `verify-chain` over a database file.

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
