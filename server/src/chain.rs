//! Tamper evidence on the server (docs/tamper-evidence.md): signed submissions are verified
//! against the device's registered key and appended to an append-only hash chain; the device
//! gets a receipt signed with the server's Ed25519 key (kept in the data folder). Routes:
//! `POST /v1/receipts`, `GET /v1/receipts?inspection=ID`, `GET /v1/chain/head`,
//! `GET /v1/chain/entries/{index}`, `GET /v1/chain/links?from=&limit=`. [`verify_chain`] is the `verify-chain` command.

use crate::api::{Path, Query};
use crate::api::{Shared, authenticate, blocking};
use crate::error::{ServerError, ServerResult};
use crate::storage::{Role, Storage, now};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::SigningKey;
use fenlei_core::inspection::{InspectionStatus, WorkflowEventKind};
use fenlei_core::tamper::{
    self, ChainEntryResponse, ChainLink, GENESIS, ReceiptRequest, ReceiptResponse, SignedHead,
    Statement,
};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use std::path::Path as FsPath;

/// The file in the data folder holding the server's signing key (hex of the 32-byte seed).
pub const KEY_FILE: &str = "server-signing.key";

/// A verified statement to append.
pub struct NewEntry<'a> {
    pub statement: &'a [u8],
    pub device_signature: &'a str,
    pub device_id: &'a str,
    pub inspection_id: &'a str,
    pub received_at_ms: i64,
}

/// One stored chain entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainRow {
    pub link: ChainLink,
    pub entry_hash: String,
    pub statement: Vec<u8>,
    pub device_id: String,
    pub inspection_id: String,
}

pub const ROW_SELECT: &str =
    "SELECT idx, prev_hash, received_at, statement_sha256, device_signature,
    entry_hash, statement, device_id, inspection_id FROM chain_entries";

pub fn chain_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ChainRow> {
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

/// Loads the server's key from the data folder, creating it (readable by the owner only) on
/// first start. The same key signs every receipt for the life of the data folder.
pub fn load_or_create_key(dir: &FsPath) -> ServerResult<SigningKey> {
    let path = dir.join(KEY_FILE);
    if let Ok(text) = std::fs::read_to_string(&path) {
        let bytes: [u8; 32] = tamper::unhex(text.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| ServerError::Internal(format!("{KEY_FILE} is not 32 bytes of hex")))?;
        return Ok(SigningKey::from_bytes(&bytes));
    }
    let seed: [u8; 32] = rand::random();
    let tmp = dir.join(format!("{KEY_FILE}.tmp"));
    {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(&tmp)?;
        f.write_all(tamper::hex(&seed).as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    Ok(SigningKey::from_bytes(&seed))
}

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/v1/receipts", get(list_receipts).post(post_receipt))
        .route("/v1/chain/head", get(head))
        .route("/v1/chain/entries/{index}", get(entry))
        .route("/v1/chain/links", get(links))
}

fn signed_head(storage: &dyn Storage) -> ServerResult<SignedHead> {
    let (length, head) = storage.chain_head()?;
    let key = storage.server_key();
    Ok(SignedHead {
        length,
        signature: tamper::sign_hex(key, &tamper::head_bytes(length, &head)),
        head,
        server_key: tamper::public_key_hex(key),
    })
}

fn receipt_of(storage: &dyn Storage, row: &ChainRow) -> ServerResult<ReceiptResponse> {
    let key = storage.server_key();
    Ok(ReceiptResponse {
        server_signature: tamper::sign_hex(
            key,
            &tamper::receipt_bytes(row.link.index, &row.entry_hash),
        ),
        server_key: tamper::public_key_hex(key),
        link: row.link.clone(),
        entry_hash: row.entry_hash.clone(),
        head: signed_head(storage)?,
    })
}

/// Verifies a device's signed statement and appends it: the signature against the key the
/// device registered, the statement's device against the caller, and the document against the
/// server's copy (it must hold every signed head, so the statement pins synced data).
pub fn append_statement(
    storage: &dyn Storage,
    device_id: &str,
    request: &ReceiptRequest,
) -> ServerResult<ReceiptResponse> {
    let bytes = B64
        .decode(request.statement.as_bytes())
        .map_err(|_| ServerError::BadRequest("statement is not base64".into()))?;
    let statement =
        Statement::decode(&bytes).map_err(|e| ServerError::BadRequest(e.to_string()))?;
    if statement.device_id != device_id {
        return Err(ServerError::Forbidden(
            "a device may only submit its own statements".into(),
        ));
    }
    let registered = storage.device_key(device_id)?.ok_or_else(|| {
        ServerError::Forbidden("this device has no registered signing key: enroll again".into())
    })?;
    if registered != statement.device_key {
        return Err(ServerError::Forbidden(
            "statement names another key than the device's registered one".into(),
        ));
    }
    tamper::verify_hex(&registered, &bytes, &request.signature)
        .map_err(|_| ServerError::Forbidden("statement signature does not verify".into()))?;
    let mut doc = storage
        .load_document(&statement.inspection_id)?
        .ok_or_else(|| {
            ServerError::NotFound(format!(
                "no inspection {} on the server: sync before submitting receipts",
                statement.inspection_id
            ))
        })?;
    let inspection = doc.read_header()?;
    if inspection.community_id != statement.community_id {
        return Err(ServerError::BadRequest(
            "statement names another community than the inspection".into(),
        ));
    }
    // The statement attests a submission this device made: the document must hold it.
    let submitted_here = doc.events().iter().any(|e| {
        e.device_id == device_id
            && e.at_ms == statement.submitted_at_ms
            && matches!(
                e.kind,
                WorkflowEventKind::StatusChanged {
                    to: InspectionStatus::Submitted
                }
            )
    });
    if !submitted_here {
        return Err(ServerError::NotFound(format!(
            "inspection {} holds no submission by this device at the signed time: sync first",
            statement.inspection_id
        )));
    }
    statement.check_against(&mut doc).map_err(|e| match e {
        fenlei_core::CoreError::UnknownInspection(why) => {
            ServerError::NotFound(format!("inspection {why}"))
        }
        other => ServerError::BadRequest(other.to_string()),
    })?;
    let row = storage.chain_append(NewEntry {
        statement: &bytes,
        device_signature: &request.signature,
        device_id,
        inspection_id: &statement.inspection_id,
        received_at_ms: now(),
    })?;
    receipt_of(storage, &row)
}

async fn post_receipt(
    State(storage): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> ServerResult<Response> {
    let auth = authenticate(&storage, &headers).await?;
    let request: ReceiptRequest = serde_json::from_slice(&body)
        .map_err(|e| ServerError::BadRequest(format!("malformed body: {e}")))?;
    let receipt =
        blocking(move || append_statement(storage.as_ref(), &auth.device_id, &request)).await?;
    Ok(axum::Json(receipt).into_response())
}

async fn head(State(storage): State<Shared>, headers: HeaderMap) -> ServerResult<Response> {
    authenticate(&storage, &headers).await?;
    let head = blocking(move || signed_head(storage.as_ref())).await?;
    Ok(axum::Json(head).into_response())
}

/// An entry's link and hash, for every device (what a rollback check compares); its statement
/// only for the device that signed it and for admins (statements carry inspectors' places and
/// times).
async fn entry(
    State(storage): State<Shared>,
    headers: HeaderMap,
    Path(index): Path<u64>,
) -> ServerResult<Response> {
    let auth = authenticate(&storage, &headers).await?;
    let body = blocking(move || {
        let row = storage
            .chain_entry(index)?
            .ok_or_else(|| ServerError::NotFound(format!("no chain entry {index}")))?;
        let readable = row.device_id == auth.device_id || auth.user.role == Role::Admin;
        Ok(ChainEntryResponse {
            link: row.link,
            entry_hash: row.entry_hash,
            statement: readable.then(|| B64.encode(&row.statement)),
        })
    })
    .await?;
    Ok(axum::Json(body).into_response())
}

#[derive(Debug, Deserialize)]
struct LinksQuery {
    from: u64,
    limit: Option<u64>,
}

/// Consecutive entries' links and hashes (never statements), for every device: what a device
/// walks to check that today's chain extends the one it verified before.
async fn links(
    State(storage): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<LinksQuery>,
) -> ServerResult<Response> {
    authenticate(&storage, &headers).await?;
    let limit = q
        .limit
        .unwrap_or(tamper::MAX_LINKS_PER_REQUEST)
        .clamp(1, tamper::MAX_LINKS_PER_REQUEST);
    let body = blocking(move || {
        let (length, _) = storage.chain_head()?;
        let mut links = Vec::new();
        for index in q.from..length.min(q.from.saturating_add(limit)) {
            let Some(row) = storage.chain_entry(index)? else {
                break;
            };
            links.push(ChainEntryResponse {
                link: row.link,
                entry_hash: row.entry_hash,
                statement: None,
            });
        }
        Ok(tamper::ChainLinksResponse { links })
    })
    .await?;
    Ok(axum::Json(body).into_response())
}

#[derive(Debug, Deserialize)]
struct ReceiptQuery {
    inspection: String,
}

/// Receipts (re-signed) of one inspection: for supervisors and admins whose scope reads it,
/// and for the devices that signed them.
async fn list_receipts(
    State(storage): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<ReceiptQuery>,
) -> ServerResult<Response> {
    let auth = authenticate(&storage, &headers).await?;
    let body = blocking(move || {
        let readable_inspection = match auth.user.role {
            Role::Admin => true,
            Role::Inspector => false,
            Role::Supervisor => match storage.load_document(&q.inspection)? {
                Some(doc) => {
                    let i = doc.read_header()?;
                    let c = storage.community(&i.community_id)?;
                    auth.scope.communities.contains(&i.community_id)
                        || c.is_some_and(|c| {
                            auth.scope.streets.contains(&c.street)
                                || auth.scope.districts.contains(&c.district)
                        })
                }
                None => false,
            },
        };
        let mut out = Vec::new();
        for row in storage.chain_rows_of(&q.inspection)? {
            if readable_inspection || row.device_id == auth.device_id {
                out.push(receipt_of(storage.as_ref(), &row)?);
            }
        }
        Ok(serde_json::json!({ "inspection": q.inspection, "receipts": out }))
    })
    .await?;
    Ok(axum::Json(body).into_response())
}

/// One problem `verify-chain` found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChainProblem {
    /// The chain index at which the chain stops being what was signed.
    pub index: u64,
    pub problem: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChainVerification {
    pub entries: u64,
    pub head: String,
    pub problems: Vec<ChainProblem>,
}

/// Re-checks the whole chain in the server's SQLite file, read-only (see [`verify_rows`]).
/// `expect` is a head published or held elsewhere (a device's receipt: index and entry hash)
/// that the chain must still contain.
pub fn verify_chain(db: &FsPath, expect: Option<(u64, String)>) -> ServerResult<ChainVerification> {
    let conn = crate::storage::open_conn(db, true)?;
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

/// The check itself, over a chain's rows in index order from any engine: indexes contiguous
/// from 0, each entry's `prev` the previous entry's hash, each stored hash recomputed from the
/// entry, each statement's hash and device signature; and `expect` still in the chain.
pub fn verify_rows(
    rows: impl Iterator<Item = ServerResult<ChainRow>>,
    expect: Option<(u64, String)>,
) -> ServerResult<ChainVerification> {
    let mut problems = Vec::new();
    let mut expected_index = 0u64;
    let mut prev = GENESIS.to_string();
    // Only what the summary needs, so a province's chain streams through in constant memory.
    let mut entries = 0u64;
    let mut head = GENESIS.to_string();
    let mut expected_found: Option<String> = None;
    for row in rows {
        let row = row?;
        let i = row.link.index;
        if i != expected_index {
            problems.push(ChainProblem {
                index: expected_index,
                problem: format!("entry {expected_index} is missing (next stored entry is {i})"),
            });
        }
        let mut flag = |problem: String| problems.push(ChainProblem { index: i, problem });
        if row.link.prev_hash != prev {
            flag("prev does not match the previous entry's hash (removed, reordered or altered entries)".into());
        }
        let recomputed = row.link.hash();
        if recomputed != row.entry_hash {
            flag("stored entry hash does not match the entry's fields".into());
        }
        if tamper::sha256_hex(&row.statement) != row.link.statement_sha256 {
            flag("statement bytes do not match statement_sha256".into());
        }
        match Statement::decode(&row.statement) {
            Ok(s) => {
                if tamper::verify_hex(&s.device_key, &row.statement, &row.link.device_signature)
                    .is_err()
                {
                    flag("device signature does not verify".into());
                }
                if s.device_id != row.device_id || s.inspection_id != row.inspection_id {
                    flag("device or inspection column differs from the statement".into());
                }
            }
            Err(e) => flag(format!("statement does not parse: {e}")),
        }
        if expect.as_ref().is_some_and(|(index, _)| *index == i) && expected_found.is_none() {
            expected_found = Some(recomputed.clone());
        }
        entries += 1;
        head = recomputed;
        // Continue from what the entry says it is, so one bad entry is reported once.
        prev = row.entry_hash.clone();
        expected_index = i + 1;
    }
    if let Some((index, hash)) = expect {
        match expected_found {
            None => problems.push(ChainProblem {
                index,
                problem: "the expected entry is not in the chain (rolled back or removed)".into(),
            }),
            Some(h) if h != hash => problems.push(ChainProblem {
                index,
                problem: "the entry differs from the expected hash".into(),
            }),
            Some(_) => {}
        }
    }
    Ok(ChainVerification {
        entries,
        head,
        problems,
    })
}
