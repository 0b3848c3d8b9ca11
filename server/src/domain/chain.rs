//! The tamper chain's verification rule: every entry links to the one before it, its hash is
//! the hash of its fields, its statement is signed by its device (docs/tamper-evidence.md).

use crate::error::ServerResult;
use crate::model::*;
use fenlei_core::tamper::{self, GENESIS, Statement};
use serde::Serialize;

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
