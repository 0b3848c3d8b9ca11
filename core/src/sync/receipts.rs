//! The signing phase of a sync (docs/tamper-evidence.md): after [`SyncClient::sync`] has pushed
//! the documents, the device signs a statement for every submission made here, sends it to the
//! server's chain and keeps the signed receipt; before that, it checks that the server's chain
//! still holds the entry of its latest receipt, which detects a server rolled back to an older
//! state, and that the chain it sees now extends, entry by entry, the chain it verified the
//! last time (so a rewritten entry of *another* device is caught too). Kept apart from the
//! document sync so either can change without the other.

/// Entries one check walks at most; a longer gap is walked over the next syncs (the checkpoint
/// only ever moves to an entry verified as linked to the previous checkpoint).
const MAX_LINKS_PER_CHECK: u64 = 8 * MAX_LINKS_PER_REQUEST;

use super::{SyncClient, error_from, join};
use crate::progress::CancelToken;
use crate::store::{ChainCheck, ChainState, Store};
use crate::tamper::{
    ChainEntryResponse, ChainLinksResponse, MAX_LINKS_PER_REQUEST, ReceiptRequest, ReceiptResponse,
    SignedHead,
};
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
            } else {
                self.check_extension(
                    store,
                    (receipt.chain_index, &receipt.entry_hash),
                    &head,
                    &mut check,
                )?;
            }
        }
        store.set_chain_check(&check)?;
        Ok(check)
    }

    /// Whole-chain consistency: walks the entries from this device's checkpoint (the last entry
    /// it verified; at first its latest receipt's) to the signed head, each entry's `prev` being
    /// the hash of the one before. Since every entry hash covers its predecessor's, an equal hash
    /// at the checkpoint proves every entry up to it unchanged — other devices' entries
    /// included — and the walk proves the new entries extend it. On success the checkpoint
    /// moves to the last entry walked.
    fn check_extension(
        &self,
        store: &Store,
        receipt: (u64, &str),
        head: &SignedHead,
        check: &mut ChainCheck,
    ) -> Result<()> {
        let (start, start_hash) = match store.chain_checkpoint()? {
            Some(c) => c,
            None => (receipt.0, receipt.1.to_string()),
        };
        if head.length <= start {
            check.state = ChainState::Truncated;
            check.detail = format!(
                "chain has {} entries; this device verified entry {start} before",
                head.length
            );
            return Ok(());
        }
        let last = head.length - 1;
        let stop = last.min(start.saturating_add(MAX_LINKS_PER_CHECK));
        let mut next = start;
        let mut prev_hash = String::new();
        let rewritten = |check: &mut ChainCheck, detail: String| {
            check.state = ChainState::Rewritten;
            check.detail = detail;
        };
        while next <= stop {
            let limit = (stop - next + 1).min(MAX_LINKS_PER_REQUEST);
            let Some(page): Option<ChainLinksResponse> =
                self.get_json(&format!("v1/chain/links?from={next}&limit={limit}"))?
            else {
                // A server without the route: only this device's own entry could be checked.
                check.detail =
                    "the server does not list chain links: only this device's entry was checked"
                        .into();
                return Ok(());
            };
            if page.links.is_empty() {
                rewritten(
                    check,
                    format!("the server's chain ends before entry {next}, below its signed head"),
                );
                return Ok(());
            }
            for e in page.links.iter().take(limit as usize) {
                if e.link.index != next || e.link.hash() != e.entry_hash {
                    rewritten(
                        check,
                        format!("entry {next} does not match its recorded hash"),
                    );
                    return Ok(());
                }
                if next == start {
                    if e.entry_hash != start_hash {
                        rewritten(
                            check,
                            format!("entry {start} is not the one this device verified before"),
                        );
                        return Ok(());
                    }
                } else if e.link.prev_hash != prev_hash {
                    rewritten(
                        check,
                        format!("entry {next} does not follow entry {}", next - 1),
                    );
                    return Ok(());
                }
                prev_hash = e.entry_hash.clone();
                next += 1;
            }
        }
        if stop == last && prev_hash != head.head {
            rewritten(
                check,
                "the signed head is not the end of the chain the server lists".into(),
            );
            return Ok(());
        }
        store.set_chain_checkpoint(stop, &prev_hash)
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
