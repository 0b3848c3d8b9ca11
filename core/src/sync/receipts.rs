//! The signing phase of a sync (docs/tamper-evidence.md): after [`SyncClient::sync`] has pushed
//! the documents, the device signs a statement for every submission made here, sends it to the
//! server's chain and keeps the signed receipt; before that, it checks that the server's chain
//! still holds the entry of its latest receipt, which detects a server rolled back to an older
//! state. Kept apart from the document sync so either can change without the other.

use super::{SyncClient, error_from, join};
use crate::progress::CancelToken;
use crate::store::{ChainCheck, ChainState, Store};
use crate::tamper::{ChainEntryResponse, ReceiptRequest, ReceiptResponse, SignedHead};
use crate::{CoreError, Result};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

/// What one signing phase did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct ReceiptReport {
    /// Receipts received (and verified) in this call.
    pub receipts_received: u32,
    /// Signed statements still waiting for a receipt (sent again next time).
    pub pending: u32,
    /// Why the server did not take a statement, by inspection (e.g. its document was not
    /// synced yet); they stay pending.
    pub refused: Vec<super::RejectedDocument>,
    /// The check of the server's chain against this device's latest receipt.
    pub chain: ChainCheck,
}

impl SyncClient {
    fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<Option<T>> {
        let resp = self
            .http
            .get(join(&self.base, path)?)
            .bearer_auth(&self.token)
            .send()
            .map_err(|e| CoreError::Network(e.to_string()))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .map_err(|e| CoreError::Network(e.to_string()))?;
        if status.as_u16() == 404 {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(error_from(status.as_u16(), &bytes));
        }
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| CoreError::Server {
                status: status.as_u16(),
                reason: format!("unreadable answer: {e}"),
            })
    }

    /// Checks the server's chain against this device's latest receipt and keeps the result in
    /// the store ([`Store::chain_check`]). A shorter chain, another entry at the receipt's index,
    /// or a head that fails the pinned server key is an alarm the app shows.
    pub fn check_chain(&self, store: &Store) -> Result<ChainCheck> {
        let Some(receipt) = store.latest_receipt()? else {
            return Ok(ChainCheck::not_checked());
        };
        let pinned = store.pinned_server_key()?;
        let mut check = ChainCheck {
            state: ChainState::Consistent,
            checked_at_ms: store.now_ms(),
            chain_length: 0,
            receipt_index: Some(receipt.chain_index),
            detail: String::new(),
        };
        let head: SignedHead =
            self.get_json("v1/chain/head")?
                .ok_or_else(|| CoreError::Server {
                    status: 404,
                    reason: "the server has no chain".into(),
                })?;
        check.chain_length = head.length;
        if head.verify().is_err() || pinned.as_deref().is_some_and(|k| k != head.server_key) {
            check.state = ChainState::Unverifiable;
            check.detail = "chain head not signed by the pinned server key".into();
        } else if head.length <= receipt.chain_index {
            check.state = ChainState::Truncated;
            check.detail = format!(
                "chain has {} entries; this device holds a receipt for entry {}",
                head.length, receipt.chain_index
            );
        } else {
            let entry: Option<ChainEntryResponse> =
                self.get_json(&format!("v1/chain/entries/{}", receipt.chain_index))?;
            // The entry hash covers the statement's hash, so equal hashes mean the same entry.
            let same = entry.as_ref().is_some_and(|e| {
                e.link.index == receipt.chain_index
                    && e.link.hash() == e.entry_hash
                    && e.entry_hash == receipt.entry_hash
                    && e.link.statement_sha256 == receipt.statement_sha256
            });
            if !same {
                check.state = ChainState::Rewritten;
                check.detail = format!(
                    "entry {} is not the one the server signed for this device",
                    receipt.chain_index
                );
            }
        }
        store.set_chain_check(&check)?;
        Ok(check)
    }

    /// The signing phase: checks the chain, then (unless it raised an alarm) signs this
    /// device's new submissions, sends every pending statement and keeps the verified receipts.
    /// Run it after [`SyncClient::sync`], so the server holds the signed document heads.
    pub fn exchange_receipts(&self, store: &Store, cancel: &CancelToken) -> Result<ReceiptReport> {
        let mut report = ReceiptReport {
            receipts_received: 0,
            pending: 0,
            refused: Vec::new(),
            chain: self.check_chain(store)?,
        };
        if report.chain.state.is_alarm() {
            // Sign (the statements are this device's own evidence) but do not send: appending
            // to a chain that forgot this device's receipts would hide the problem.
            report.pending = store.sign_pending_submissions()?.len() as u32;
            return Ok(report);
        }
        let pending = store.sign_pending_submissions()?;
        let url = join(&self.base, "v1/receipts")?;
        for p in &pending {
            cancel.check()?;
            let body = ReceiptRequest {
                statement: B64.encode(&p.bytes),
                signature: p.signature.clone(),
            };
            let resp = self
                .http
                .post(url.clone())
                .bearer_auth(&self.token)
                .json(&body)
                .send()
                .map_err(|e| CoreError::Network(e.to_string()))?;
            let status = resp.status();
            let bytes = resp
                .bytes()
                .map_err(|e| CoreError::Network(e.to_string()))?;
            if !status.is_success() {
                match error_from(status.as_u16(), &bytes) {
                    CoreError::Server { status, .. } if status >= 500 => {
                        return Err(error_from(status, &bytes));
                    }
                    e => {
                        report.refused.push(super::RejectedDocument {
                            id: p.inspection_id.clone(),
                            reason: e.to_string(),
                        });
                        continue;
                    }
                }
            }
            let receipt: ReceiptResponse =
                serde_json::from_slice(&bytes).map_err(|e| CoreError::Server {
                    status: status.as_u16(),
                    reason: format!("unreadable receipt: {e}"),
                })?;
            receipt.verify(&p.bytes, &p.signature)?;
            receipt.head.verify()?;
            match store.pinned_server_key()? {
                Some(k) if k != receipt.server_key => {
                    report.chain = ChainCheck {
                        state: ChainState::Unverifiable,
                        checked_at_ms: store.now_ms(),
                        chain_length: receipt.head.length,
                        receipt_index: Some(receipt.link.index),
                        detail: "receipt signed by another server key than the pinned one".into(),
                    };
                    store.set_chain_check(&report.chain)?;
                    break;
                }
                Some(_) => {}
                None => store.pin_server_key(&receipt.server_key)?,
            }
            store.save_receipt(&p.sha256, &receipt)?;
            report.receipts_received += 1;
            report.chain = ChainCheck {
                state: ChainState::Consistent,
                checked_at_ms: store.now_ms(),
                chain_length: receipt.head.length,
                receipt_index: Some(receipt.link.index),
                detail: String::new(),
            };
            store.set_chain_check(&report.chain)?;
        }
        report.pending = store.pending_statements()?.len() as u32;
        Ok(report)
    }
}
