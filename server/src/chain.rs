//! Tamper evidence on the server (docs/tamper-evidence.md): signed submissions are verified
//! against the device's registered key and appended to an append-only hash chain; the device
//! gets a receipt signed with the server's Ed25519 key (kept in the data folder). Routes (in
//! `http/chain.rs`):
//! `POST /v1/receipts`, `GET /v1/receipts?inspection=ID`, `GET /v1/chain/head`,
//! `GET /v1/chain/entries/{index}`, `GET /v1/chain/links?from=&limit=`. The `verify-chain` command is
//! `store::sqlite::verify_chain` (and its PostgreSQL twin).

use crate::error::{ServerError, ServerResult};
use crate::model::*;
use crate::store::Storage;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use fenlei_core::inspection::{InspectionStatus, WorkflowEventKind};
use fenlei_core::tamper::{self, ReceiptRequest, ReceiptResponse, SignedHead, Statement};

pub(crate) fn signed_head(storage: &dyn Storage) -> ServerResult<SignedHead> {
    let (length, head) = storage.chain_head()?;
    let key = storage.server_key();
    Ok(SignedHead {
        length,
        signature: tamper::sign_hex(key, &tamper::head_bytes(length, &head)),
        head,
        server_key: tamper::public_key_hex(key),
    })
}

pub(crate) fn receipt_of(storage: &dyn Storage, row: &ChainRow) -> ServerResult<ReceiptResponse> {
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
