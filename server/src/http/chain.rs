//! The tamper-evidence routes: receipts, the signed chain head, entries and links
//! (docs/tamper-evidence.md).

use super::{Auth, Path, Query, Shared, blocking};
use crate::chain::*;
use crate::domain::access::{may_read_receipts, may_read_statement};
use crate::error::{ServerError, ServerResult};
use crate::model::*;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use fenlei_core::tamper::{self, ChainEntryResponse, ReceiptRequest};
use serde::Deserialize;

pub(super) async fn post_receipt(
    State(storage): State<Shared>,
    Auth(auth): Auth,
    body: Bytes,
) -> ServerResult<Response> {
    let request: ReceiptRequest = serde_json::from_slice(&body)
        .map_err(|e| ServerError::BadRequest(format!("malformed body: {e}")))?;
    let receipt =
        blocking(move || append_statement(storage.as_ref(), &auth.device_id, &request)).await?;
    Ok(axum::Json(receipt).into_response())
}

pub(super) async fn head(State(storage): State<Shared>, _: Auth) -> ServerResult<Response> {
    let head = blocking(move || signed_head(storage.as_ref())).await?;
    Ok(axum::Json(head).into_response())
}

/// An entry's link and hash, for every device (what a rollback check compares); its statement
/// only for the device that signed it and for admins (statements carry inspectors' places and
/// times).
pub(super) async fn entry(
    State(storage): State<Shared>,
    Auth(auth): Auth,
    Path(index): Path<u64>,
) -> ServerResult<Response> {
    let body = blocking(move || {
        let row = storage
            .chain_entry(index)?
            .ok_or_else(|| ServerError::NotFound(format!("no chain entry {index}")))?;
        let readable = may_read_statement(&auth, &row.device_id);
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
pub(super) struct LinksQuery {
    from: u64,
    limit: Option<u64>,
}

/// Consecutive entries' links and hashes (never statements), for every device: what a device
/// walks to check that today's chain extends the one it verified before.
pub(super) async fn links(
    State(storage): State<Shared>,
    _: Auth,
    Query(q): Query<LinksQuery>,
) -> ServerResult<Response> {
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
pub(super) struct ReceiptQuery {
    inspection: String,
}

/// Receipts (re-signed) of one inspection: for supervisors and admins whose scope reads it,
/// and for the devices that signed them.
pub(super) async fn list_receipts(
    State(storage): State<Shared>,
    Auth(auth): Auth,
    Query(q): Query<ReceiptQuery>,
) -> ServerResult<Response> {
    let body = blocking(move || {
        // Only a supervisor's answer depends on the inspection: read it only then.
        let readable_inspection = match auth.user.role {
            Role::Supervisor => match storage.load_document(&q.inspection)? {
                Some(doc) => {
                    let i = doc.read_header()?;
                    let c = storage.community(&i.community_id)?;
                    may_read_receipts(&auth, Some((&i.community_id, c.as_ref())))
                }
                None => false,
            },
            _ => may_read_receipts(&auth, None),
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
