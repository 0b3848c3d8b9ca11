//! Tamper evidence in the store (docs/tamper-evidence.md): this device's Ed25519 key, the
//! statements it signed when its user submitted inspections, the server's receipts for them,
//! and the last check of the server's chain against those receipts.

use super::{Store, load_doc, lock};
use crate::inspection::{InspectionStatus, WorkflowEventKind};
use crate::tamper::{self, ReceiptResponse, Statement};
use crate::{CoreError, Result};
use ed25519_dalek::SigningKey;
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

const META_SERVER_KEY: &str = "server_key";
const META_CHAIN_CHECK: &str = "chain_check";
const META_SIGNED_UP_TO: &str = "statements_seq";
const META_CHAIN_CHECKPOINT: &str = "chain_checkpoint";

/// A statement signed here and not yet acknowledged by a receipt.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingStatement {
    pub sha256: String,
    pub inspection_id: String,
    pub bytes: Vec<u8>,
    pub signature: String,
}

/// A server receipt this device keeps: proof that the server appended the device's signed
/// statement to its chain at `chain_index`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct StoredReceipt {
    pub inspection_id: String,
    pub submitted_at_ms: i64,
    pub signed_at_ms: i64,
    /// SHA-256 (hex) of the signed statement's canonical bytes.
    pub statement_sha256: String,
    pub chain_index: u64,
    pub prev_hash: String,
    pub entry_hash: String,
    pub received_at_ms: i64,
    pub server_key: String,
    pub server_signature: String,
}

/// What the last check of the server's chain found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum ChainState {
    /// No receipt yet, or never checked.
    NotChecked,
    /// The chain still holds this device's latest receipt's entry, and is at least that long.
    Consistent,
    /// The server's chain is shorter than this device's latest receipt: it was rolled back.
    Truncated,
    /// The entry at the receipt's index is not the one the server signed for this device: the
    /// chain was rolled back and rewritten, or altered.
    Rewritten,
    /// The server answered with a head or entry that fails its signature, or under another
    /// server key than the one this device pinned.
    Unverifiable,
}

impl ChainState {
    /// Whether the app must warn: the server's history is not what it promised this device.
    pub fn is_alarm(self) -> bool {
        matches!(
            self,
            ChainState::Truncated | ChainState::Rewritten | ChainState::Unverifiable
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct ChainCheck {
    pub state: ChainState,
    pub checked_at_ms: i64,
    /// The chain length the server reported.
    pub chain_length: u64,
    /// The receipt checked (the device's latest).
    pub receipt_index: Option<u64>,
    /// What was found, for support staff; no personal data.
    pub detail: String,
}

impl ChainCheck {
    pub fn not_checked() -> ChainCheck {
        ChainCheck {
            state: ChainState::NotChecked,
            checked_at_ms: 0,
            chain_length: 0,
            receipt_index: None,
            detail: String::new(),
        }
    }
}

fn receipt_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredReceipt> {
    Ok(StoredReceipt {
        inspection_id: r.get(0)?,
        submitted_at_ms: r.get(1)?,
        signed_at_ms: r.get(2)?,
        statement_sha256: r.get(3)?,
        chain_index: r.get::<_, i64>(4)? as u64,
        prev_hash: r.get(5)?,
        entry_hash: r.get(6)?,
        received_at_ms: r.get(7)?,
        server_key: r.get(8)?,
        server_signature: r.get(9)?,
    })
}

const RECEIPT_SELECT: &str = "SELECT s.inspection_id, s.submitted_at_ms, s.signed_at, s.sha256,
    r.chain_index, r.prev_hash, r.entry_hash, r.received_at_ms, r.server_key, r.server_signature
    FROM receipts r JOIN statements s ON s.sha256 = r.statement_sha256";

impl Store {
    /// This device's Ed25519 signing key, created (from the OS's random source) on first use.
    pub fn device_signing_key(&self) -> Result<SigningKey> {
        let w = lock(&self.writer);
        let existing: Option<Vec<u8>> = w
            .conn
            .query_row("SELECT secret FROM signing_keys WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()?;
        let secret: [u8; 32] = match existing {
            Some(bytes) => bytes
                .try_into()
                .map_err(|_| CoreError::Database("stored signing key is not 32 bytes".into()))?,
            None => {
                let secret: [u8; 32] = rand::random();
                let key = SigningKey::from_bytes(&secret);
                w.conn.execute(
                    "INSERT INTO signing_keys (id, secret, public_key, created_at)
                     VALUES (1, ?1, ?2, ?3)",
                    params![&secret[..], tamper::public_key_hex(&key), self.now_ms()],
                )?;
                secret
            }
        };
        Ok(SigningKey::from_bytes(&secret))
    }

    /// This device's public key (hex), as registered with the server.
    pub fn device_public_key(&self) -> Result<String> {
        Ok(tamper::public_key_hex(&self.device_signing_key()?))
    }

    /// The server's receipt-signing key this device pinned (at enrollment or its first receipt).
    pub fn pinned_server_key(&self) -> Result<Option<String>> {
        self.sync_meta(META_SERVER_KEY)
    }

    pub fn pin_server_key(&self, key_hex: &str) -> Result<()> {
        tamper::verifying_key(key_hex)?;
        self.set_sync_meta(META_SERVER_KEY, key_hex)
    }

    /// Signs a statement for every submission made on this device that has none yet (each
    /// submit event is signed once, with the document's heads at signing time), then returns
    /// every statement still waiting for its receipt. Only documents changed since the last
    /// call are read.
    pub fn sign_pending_submissions(&self) -> Result<Vec<PendingStatement>> {
        let up_to: i64 = self
            .sync_meta(META_SIGNED_UP_TO)?
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let seq = self.change_seq()?;
        let candidates: Vec<String> = self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT f.doc_id FROM change_feed f JOIN inspections i ON i.id = f.doc_id
                 WHERE f.seq > ?1 AND i.status != 'draft' ORDER BY f.seq",
            )?;
            let ids = stmt
                .query_map([up_to], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            Ok(ids)
        })?;
        if !candidates.is_empty() {
            let key = self.device_signing_key()?;
            let key_hex = tamper::public_key_hex(&key);
            for id in candidates {
                let mut doc = self.read(|c| load_doc(c, &id, &self.device_id))?;
                let inspection = doc.read()?;
                let heads: Vec<String> = doc.heads().iter().map(|h| h.to_string()).collect();
                let submits = inspection.events.iter().filter(|e| {
                    e.device_id == self.device_id
                        && matches!(
                            e.kind,
                            WorkflowEventKind::StatusChanged {
                                to: InspectionStatus::Submitted
                            }
                        )
                });
                for event in submits {
                    let w = lock(&self.writer);
                    let signed: bool = w.conn.query_row(
                        "SELECT count(*) > 0 FROM statements
                         WHERE inspection_id = ?1 AND submitted_at_ms = ?2",
                        params![id, event.at_ms],
                        |r| r.get(0),
                    )?;
                    if signed {
                        continue;
                    }
                    let now = self.now_ms();
                    let statement = Statement::of_inspection(
                        &inspection,
                        heads.clone(),
                        &self.device_id,
                        &key_hex,
                        event.at_ms,
                        now,
                    );
                    let bytes = statement.encode()?;
                    let signature = tamper::sign_hex(&key, &bytes);
                    w.conn.execute(
                        "INSERT INTO statements
                             (sha256, inspection_id, submitted_at_ms, bytes, signature, signed_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        params![
                            tamper::sha256_hex(&bytes),
                            id,
                            event.at_ms,
                            bytes,
                            signature,
                            now
                        ],
                    )?;
                }
            }
        }
        self.set_sync_meta(META_SIGNED_UP_TO, &seq.to_string())?;
        self.pending_statements()
    }

    /// Statements signed here that have no receipt yet, oldest first.
    pub fn pending_statements(&self) -> Result<Vec<PendingStatement>> {
        self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT s.sha256, s.inspection_id, s.bytes, s.signature FROM statements s
                 WHERE NOT EXISTS (SELECT 1 FROM receipts r WHERE r.statement_sha256 = s.sha256)
                 ORDER BY s.signed_at, s.sha256",
            )?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(PendingStatement {
                        sha256: r.get(0)?,
                        inspection_id: r.get(1)?,
                        bytes: r.get(2)?,
                        signature: r.get(3)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    /// Keeps a receipt the caller has verified ([`ReceiptResponse::verify`]).
    pub fn save_receipt(&self, statement_sha256: &str, receipt: &ReceiptResponse) -> Result<()> {
        let w = lock(&self.writer);
        w.conn.execute(
            "INSERT INTO receipts (statement_sha256, chain_index, prev_hash, entry_hash,
                 received_at_ms, server_key, server_signature, stored_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT(statement_sha256) DO NOTHING",
            params![
                statement_sha256,
                receipt.link.index as i64,
                receipt.link.prev_hash,
                receipt.entry_hash,
                receipt.link.received_at_ms,
                receipt.server_key,
                receipt.server_signature,
                self.now_ms()
            ],
        )?;
        Ok(())
    }

    /// Receipts held, in chain order; of one inspection when `inspection_id` is given.
    pub fn receipts(&self, inspection_id: Option<&str>) -> Result<Vec<StoredReceipt>> {
        self.read(|c| {
            let sql = format!(
                "{RECEIPT_SELECT} WHERE ?1 IS NULL OR s.inspection_id = ?1 ORDER BY r.chain_index"
            );
            let rows = c
                .prepare(&sql)?
                .query_map([inspection_id], receipt_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    /// The receipt with the highest chain index: what a rollback check compares against.
    pub fn latest_receipt(&self) -> Result<Option<StoredReceipt>> {
        self.read(|c| {
            Ok(c.query_row(
                &format!("{RECEIPT_SELECT} ORDER BY r.chain_index DESC LIMIT 1"),
                [],
                receipt_row,
            )
            .optional()?)
        })
    }

    /// The last chain check's result ([`ChainState::NotChecked`] before any).
    pub fn chain_check(&self) -> Result<ChainCheck> {
        Ok(self
            .sync_meta(META_CHAIN_CHECK)?
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_else(ChainCheck::not_checked))
    }

    pub fn set_chain_check(&self, check: &ChainCheck) -> Result<()> {
        let json =
            serde_json::to_string(check).map_err(|e| CoreError::InvalidArgument(e.to_string()))?;
        self.set_sync_meta(META_CHAIN_CHECK, &json)
    }

    /// The newest chain entry this device has verified as an extension of everything it
    /// verified before, as (index, entry hash): where the next whole-chain check starts.
    pub fn chain_checkpoint(&self) -> Result<Option<(u64, String)>> {
        Ok(self.sync_meta(META_CHAIN_CHECKPOINT)?.and_then(|s| {
            let (i, h) = s.split_once(':')?;
            Some((i.parse().ok()?, h.to_string()))
        }))
    }

    pub fn set_chain_checkpoint(&self, index: u64, entry_hash: &str) -> Result<()> {
        self.set_sync_meta(META_CHAIN_CHECKPOINT, &format!("{index}:{entry_hash}"))
    }
}
