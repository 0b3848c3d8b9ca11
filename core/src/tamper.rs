//! Tamper evidence (docs/tamper-evidence.md): the canonical bytes a device signs when it submits
//! an inspection, the server's hash-chain entries and receipts, and their verification. Both the
//! device and the server use this module, so both sides read and write exactly the same bytes;
//! a third party can re-implement it from the document alone.
//!
//! Every signed or hashed text is UTF-8, one `key=value` per line, each line ending in `\n`,
//! keys in a fixed order, starting with a versioned type line. Parsing is strict: a text is
//! accepted only if re-encoding the parsed value gives back exactly the same bytes.

use crate::inspection::Inspection;
use crate::{CoreError, Result};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const STATEMENT_TYPE: &str = "fenlei-statement/1";
/// The statuses a statement may attest: the inspection's status at the signed heads, which a
/// device signs at or after its submission (docs/tamper-evidence.md).
pub const STATEMENT_STATUSES: &[&str] = &["submitted", "approved", "returned"];
pub const ENTRY_TYPE: &str = "fenlei-chain-entry/1";
pub const RECEIPT_TYPE: &str = "fenlei-receipt/1";
pub const HEAD_TYPE: &str = "fenlei-chain-head/1";
/// The `prev` of the first chain entry, and the head of an empty chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Lower-case hex only (what [`hex`] writes); anything else is refused.
pub fn unhex(text: &str) -> Result<Vec<u8>> {
    let bad = || CoreError::InvalidArgument("not lower-case hex".into());
    if !text.len().is_multiple_of(2)
        || !text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(bad());
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).map_err(|_| bad()))
        .collect()
}

fn unhex_n<const N: usize>(text: &str, what: &str) -> Result<[u8; N]> {
    unhex(text)?
        .try_into()
        .map_err(|_| CoreError::InvalidArgument(format!("{what} must be {N} bytes of hex")))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// A public key from its hex form.
pub fn verifying_key(hex_key: &str) -> Result<VerifyingKey> {
    VerifyingKey::from_bytes(&unhex_n::<32>(hex_key, "public key")?)
        .map_err(|_| CoreError::InvalidArgument("not an Ed25519 public key".into()))
}

pub fn public_key_hex(key: &SigningKey) -> String {
    hex(key.verifying_key().as_bytes())
}

/// Signs `bytes`; the signature as 128 hex digits.
pub fn sign_hex(key: &SigningKey, bytes: &[u8]) -> String {
    hex(&key.sign(bytes).to_bytes())
}

/// Verifies a hex signature strictly (no malleable or small-order forms).
pub fn verify_hex(public_key_hex: &str, bytes: &[u8], signature_hex: &str) -> Result<()> {
    let key = verifying_key(public_key_hex)?;
    let sig = Signature::from_bytes(&unhex_n::<64>(signature_hex, "signature")?);
    key.verify_strict(bytes, &sig)
        .map_err(|_| CoreError::InvalidArgument("signature does not verify".into()))
}

/// One GPS fix as signed: time, WGS-84 position (7 decimals, ~1 cm), accuracy, mock flag.
#[derive(Debug, Clone, PartialEq)]
pub struct SignedFix {
    pub at_ms: i64,
    pub lat: f64,
    pub lon: f64,
    pub accuracy_m: Option<f64>,
    pub is_mock: bool,
}

impl SignedFix {
    fn encode(&self) -> String {
        format!(
            "{},{:.7},{:.7},{},{}",
            self.at_ms,
            self.lat,
            self.lon,
            self.accuracy_m
                .map(|a| format!("{a:.1}"))
                .unwrap_or_default(),
            u8::from(self.is_mock)
        )
    }

    fn decode(text: &str) -> Result<SignedFix> {
        let bad = || CoreError::InvalidArgument("malformed gps line".into());
        let parts: Vec<&str> = text.split(',').collect();
        let [at, lat, lon, acc, mock] = parts[..] else {
            return Err(bad());
        };
        Ok(SignedFix {
            at_ms: at.parse().map_err(|_| bad())?,
            lat: lat.parse().map_err(|_| bad())?,
            lon: lon.parse().map_err(|_| bad())?,
            accuracy_m: if acc.is_empty() {
                None
            } else {
                Some(acc.parse().map_err(|_| bad())?)
            },
            is_mock: match mock {
                "0" => false,
                "1" => true,
                _ => return Err(bad()),
            },
        })
    }
}

/// What a device signs when it submits an inspection: the document's heads (which pin every
/// answer, note and status change), the evidence hashes, the GPS fixes and the times.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub device_id: String,
    /// The device's Ed25519 public key (hex), registered with the server at enrollment.
    pub device_key: String,
    pub inspection_id: String,
    pub community_id: String,
    pub status: String,
    /// When the submission this statement attests was made (the workflow event's time).
    pub submitted_at_ms: i64,
    pub signed_at_ms: i64,
    /// Automerge change hashes (hex), ascending.
    pub heads: Vec<String>,
    /// SHA-256 of every photo and voice note referenced, ascending, no duplicates.
    pub evidence: Vec<String>,
    /// In ascending time order (ties by their encoded line).
    pub gps: Vec<SignedFix>,
}

fn check_value(key: &str, value: &str) -> Result<()> {
    if value.is_empty() || value.contains(['\n', '\r']) {
        return Err(CoreError::InvalidArgument(format!(
            "statement field {key} is empty or spans lines"
        )));
    }
    Ok(())
}

fn check_status(status: &str) -> Result<()> {
    if !STATEMENT_STATUSES.contains(&status) {
        return Err(CoreError::InvalidArgument(format!(
            "statement status must be one of {}",
            STATEMENT_STATUSES.join(", ")
        )));
    }
    Ok(())
}

fn is_hex_len(text: &str, len: usize) -> bool {
    text.len() == len && unhex(text).is_ok()
}

impl Statement {
    /// The statement for `inspection` as it stands, on this device, now.
    pub fn of_inspection(
        inspection: &Inspection,
        heads: Vec<String>,
        device_id: &str,
        device_key: &str,
        submitted_at_ms: i64,
        signed_at_ms: i64,
    ) -> Statement {
        let mut s = Statement {
            device_id: device_id.into(),
            device_key: device_key.into(),
            inspection_id: inspection.id.clone(),
            community_id: inspection.community_id.clone(),
            status: inspection.status.as_str().into(),
            submitted_at_ms,
            signed_at_ms,
            heads,
            evidence: inspection
                .evidence
                .iter()
                .map(|e| e.sha256.clone())
                .collect(),
            gps: inspection
                .gps_fixes
                .iter()
                .map(|f| SignedFix {
                    at_ms: f.at_ms,
                    lat: f.location.lat,
                    lon: f.location.lon,
                    accuracy_m: f.accuracy_m,
                    is_mock: f.is_mock,
                })
                .collect(),
        };
        s.normalise();
        s
    }

    fn normalise(&mut self) {
        self.heads.sort();
        self.heads.dedup();
        self.evidence.sort();
        self.evidence.dedup();
        self.gps.sort_by_key(|g| (g.at_ms, g.encode()));
    }

    /// Checks the statement against the inspection it names: the document holds every signed
    /// head, and at those heads its status is the one the statement attests. So a statement
    /// pins a state the document really had, never a status the device made up.
    pub fn check_against(&self, doc: &mut crate::inspection::InspectionDoc) -> Result<()> {
        let mut heads = Vec::with_capacity(self.heads.len());
        for head in &self.heads {
            match head.parse::<automerge::ChangeHash>() {
                Ok(h) if doc.automerge().get_change_by_hash(&h).is_some() => heads.push(h),
                _ => {
                    return Err(CoreError::UnknownInspection(format!(
                        "{} does not hold the signed heads yet: sync first",
                        self.inspection_id
                    )));
                }
            }
        }
        let at_heads = doc
            .automerge()
            .fork_at(&heads)
            .map_err(|e| CoreError::InvalidArgument(e.to_string()))?;
        let status = match automerge::ReadDoc::get(&at_heads, automerge::ROOT, "status") {
            Ok(Some((automerge::Value::Scalar(s), _))) => match s.into_owned() {
                automerge::ScalarValue::Str(t) => t.to_string(),
                _ => String::new(),
            },
            _ => String::new(),
        };
        if status != self.status {
            return Err(CoreError::InvalidArgument(
                "the statement's status is not the inspection's status at the signed heads".into(),
            ));
        }
        Ok(())
    }

    /// The canonical bytes (docs/tamper-evidence.md, "Statement").
    pub fn encode(&self) -> Result<Vec<u8>> {
        for (k, v) in [
            ("device", &self.device_id),
            ("inspection", &self.inspection_id),
            ("community", &self.community_id),
            ("status", &self.status),
        ] {
            check_value(k, v)?;
        }
        check_status(&self.status)?;
        if !is_hex_len(&self.device_key, 64) {
            return Err(CoreError::InvalidArgument(
                "device_key is not 32 bytes of hex".into(),
            ));
        }
        if self.heads.is_empty() || !self.heads.iter().all(|h| is_hex_len(h, 64)) {
            return Err(CoreError::InvalidArgument(
                "a statement needs the document's heads (hex)".into(),
            ));
        }
        if !self.evidence.iter().all(|h| is_hex_len(h, 64)) {
            return Err(CoreError::InvalidArgument(
                "evidence hashes must be SHA-256 hex".into(),
            ));
        }
        let mut out = format!(
            "{STATEMENT_TYPE}\ndevice={}\ndevice_key={}\ninspection={}\ncommunity={}\nstatus={}\nsubmitted_at_ms={}\nsigned_at_ms={}\n",
            self.device_id,
            self.device_key,
            self.inspection_id,
            self.community_id,
            self.status,
            self.submitted_at_ms,
            self.signed_at_ms
        );
        for h in &self.heads {
            out.push_str(&format!("head={h}\n"));
        }
        for e in &self.evidence {
            out.push_str(&format!("evidence={e}\n"));
        }
        for g in &self.gps {
            out.push_str(&format!("gps={}\n", g.encode()));
        }
        Ok(out.into_bytes())
    }

    /// Parses canonical bytes; anything not byte-for-byte canonical is refused.
    pub fn decode(bytes: &[u8]) -> Result<Statement> {
        let bad = |why: &str| CoreError::InvalidArgument(format!("statement: {why}"));
        let text = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8"))?;
        let body = text
            .strip_suffix('\n')
            .ok_or_else(|| bad("no final newline"))?;
        let mut lines = body.split('\n');
        if lines.next() != Some(STATEMENT_TYPE) {
            return Err(bad("unknown type line"));
        }
        let mut field = |key: &str| -> Result<String> {
            let line = lines.next().ok_or_else(|| bad("too short"))?;
            line.strip_prefix(key)
                .and_then(|r| r.strip_prefix('='))
                .map(str::to_string)
                .ok_or_else(|| bad(&format!("expected {key}")))
        };
        let device_id = field("device")?;
        let device_key = field("device_key")?;
        let inspection_id = field("inspection")?;
        let community_id = field("community")?;
        let status = field("status")?;
        check_status(&status).map_err(|_| bad("status is not submitted, approved or returned"))?;
        let submitted_at_ms = field("submitted_at_ms")?
            .parse()
            .map_err(|_| bad("submitted_at_ms"))?;
        let signed_at_ms = field("signed_at_ms")?
            .parse()
            .map_err(|_| bad("signed_at_ms"))?;
        let mut s = Statement {
            device_id,
            device_key,
            inspection_id,
            community_id,
            status,
            submitted_at_ms,
            signed_at_ms,
            heads: Vec::new(),
            evidence: Vec::new(),
            gps: Vec::new(),
        };
        for line in lines {
            let (k, v) = line
                .split_once('=')
                .ok_or_else(|| bad("line without '='"))?;
            match k {
                "head" => s.heads.push(v.into()),
                "evidence" => s.evidence.push(v.into()),
                "gps" => s.gps.push(SignedFix::decode(v)?),
                _ => return Err(bad("unknown key")),
            }
        }
        // Canonical: sorted, without duplicates, written exactly as encode() writes it.
        let mut canonical = s.clone();
        canonical.normalise();
        if canonical != s || s.encode()? != bytes {
            return Err(bad("not in canonical form"));
        }
        Ok(s)
    }
}

/// One entry of the server's append-only chain, without its statement's bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainLink {
    pub index: u64,
    /// The previous entry's hash ([`GENESIS`] for entry 0).
    pub prev_hash: String,
    pub received_at_ms: i64,
    pub statement_sha256: String,
    /// The device's Ed25519 signature of the statement (hex).
    pub device_signature: String,
}

impl ChainLink {
    /// The canonical entry text (docs/tamper-evidence.md, "Chain entry").
    pub fn encode(&self) -> Vec<u8> {
        format!(
            "{ENTRY_TYPE}\nindex={}\nprev={}\nreceived_at_ms={}\nstatement_sha256={}\ndevice_signature={}\n",
            self.index,
            self.prev_hash,
            self.received_at_ms,
            self.statement_sha256,
            self.device_signature
        )
        .into_bytes()
    }

    /// SHA-256 of [`Self::encode`], hex: the entry's hash, the next entry's `prev`.
    pub fn hash(&self) -> String {
        sha256_hex(&self.encode())
    }
}

/// The text a server signs in a receipt.
pub fn receipt_bytes(index: u64, entry_hash: &str) -> Vec<u8> {
    format!("{RECEIPT_TYPE}\nindex={index}\nentry={entry_hash}\n").into_bytes()
}

/// The text a server signs for its chain head: `length` entries, the last one's hash.
pub fn head_bytes(length: u64, head: &str) -> Vec<u8> {
    format!("{HEAD_TYPE}\nlength={length}\nhead={head}\n").into_bytes()
}

// ----- wire bodies (docs/tamper-evidence.md, "HTTP") -----------------------------------------

/// `POST /v1/receipts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptRequest {
    /// Standard base64 of the statement's canonical bytes.
    pub statement: String,
    /// The device's signature of those bytes (hex).
    pub signature: String,
}

/// The server's signed chain head.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignedHead {
    pub length: u64,
    pub head: String,
    /// Server signature of [`head_bytes`] (hex).
    pub signature: String,
    pub server_key: String,
}

impl SignedHead {
    pub fn verify(&self) -> Result<()> {
        verify_hex(
            &self.server_key,
            &head_bytes(self.length, &self.head),
            &self.signature,
        )
    }
}

/// The answer to `POST /v1/receipts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReceiptResponse {
    pub link: ChainLink,
    pub entry_hash: String,
    /// Server signature of [`receipt_bytes`] (hex).
    pub server_signature: String,
    pub server_key: String,
    pub head: SignedHead,
}

impl ReceiptResponse {
    /// Checks the receipt against the statement the device sent: same statement, the entry
    /// hash recomputed from the link, the server's signature.
    pub fn verify(&self, statement: &[u8], device_signature: &str) -> Result<()> {
        let bad = |why: &str| CoreError::Server {
            status: 200,
            reason: format!("receipt does not verify: {why}"),
        };
        if self.link.statement_sha256 != sha256_hex(statement) {
            return Err(bad("other statement"));
        }
        if self.link.device_signature != device_signature {
            return Err(bad("other signature"));
        }
        if self.link.hash() != self.entry_hash {
            return Err(bad("entry hash"));
        }
        verify_hex(
            &self.server_key,
            &receipt_bytes(self.link.index, &self.entry_hash),
            &self.server_signature,
        )
        .map_err(|_| bad("server signature"))
    }
}

/// `GET /v1/chain/entries/{index}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainEntryResponse {
    pub link: ChainLink,
    pub entry_hash: String,
    /// Standard base64 of the statement's bytes: for the device that signed it and admins.
    #[serde(default)]
    pub statement: Option<String>,
}

/// `GET /v1/chain/links?from=I&limit=N`: consecutive entries from `I` (at most `N`, fewer at
/// the end of the chain), links and hashes only (`statement` is always `None`): what a device
/// walks to check that the chain it sees extends the one it verified before.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainLinksResponse {
    pub links: Vec<ChainEntryResponse>,
}

/// The most links one `GET /v1/chain/links` returns.
pub const MAX_LINKS_PER_REQUEST: u64 = 256;

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(key: &SigningKey) -> Statement {
        let mut s = Statement {
            device_id: "0190e1f0-0000-7000-8000-000000000001".into(),
            device_key: public_key_hex(key),
            inspection_id: "i-1".into(),
            community_id: "c-1".into(),
            status: "submitted".into(),
            submitted_at_ms: 1_700_000_000_000,
            signed_at_ms: 1_700_000_000_500,
            heads: vec![sha256_hex(b"b"), sha256_hex(b"a")],
            evidence: vec![sha256_hex(b"p"), sha256_hex(b"p")],
            gps: vec![
                SignedFix {
                    at_ms: 2,
                    lat: 40.8,
                    lon: 111.7,
                    accuracy_m: Some(5.0),
                    is_mock: false,
                },
                SignedFix {
                    at_ms: 1,
                    lat: -1.25,
                    lon: 0.0,
                    accuracy_m: None,
                    is_mock: true,
                },
            ],
        };
        s.normalise();
        s
    }

    #[test]
    fn statements_round_trip_and_refuse_non_canonical_bytes() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let s = sample(&key);
        let bytes = s.encode().unwrap();
        assert_eq!(Statement::decode(&bytes).unwrap(), s);
        assert_eq!(s.evidence.len(), 1, "duplicates removed");
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.contains("gps=1,-1.2500000,0.0000000,,1\ngps=2,40.8000000,111.7000000,5.0,0\n")
        );
        // Reordered heads, a missing final newline, an unknown key: all refused.
        let swapped = {
            let mut t = s.clone();
            t.heads.reverse();
            String::from_utf8(t.encode().unwrap()).unwrap()
        };
        assert!(Statement::decode(swapped.as_bytes()).is_err());
        assert!(Statement::decode(&bytes[..bytes.len() - 1]).is_err());
        let extra = format!("{text}note=x\n");
        assert!(Statement::decode(extra.as_bytes()).is_err());
        let mut bad = s.clone();
        bad.inspection_id = "a\nb".into();
        assert!(bad.encode().is_err());
    }

    #[test]
    fn signatures_and_receipts_verify_and_detect_changes() {
        let device = SigningKey::from_bytes(&[1; 32]);
        let server = SigningKey::from_bytes(&[2; 32]);
        let bytes = sample(&device).encode().unwrap();
        let sig = sign_hex(&device, &bytes);
        verify_hex(&public_key_hex(&device), &bytes, &sig).unwrap();
        let mut altered = bytes.clone();
        altered[30] ^= 1;
        assert!(verify_hex(&public_key_hex(&device), &altered, &sig).is_err());

        let link = ChainLink {
            index: 0,
            prev_hash: GENESIS.into(),
            received_at_ms: 5,
            statement_sha256: sha256_hex(&bytes),
            device_signature: sig.clone(),
        };
        let entry_hash = link.hash();
        let receipt = ReceiptResponse {
            server_signature: sign_hex(&server, &receipt_bytes(0, &entry_hash)),
            server_key: public_key_hex(&server),
            head: SignedHead {
                length: 1,
                head: entry_hash.clone(),
                signature: sign_hex(&server, &head_bytes(1, &entry_hash)),
                server_key: public_key_hex(&server),
            },
            link,
            entry_hash,
        };
        receipt.verify(&bytes, &sig).unwrap();
        receipt.head.verify().unwrap();
        assert!(receipt.verify(&altered, &sig).is_err());
        let mut forged = receipt.clone();
        forged.link.received_at_ms += 1;
        assert!(forged.verify(&bytes, &sig).is_err());
        let mut head = receipt.head.clone();
        head.length = 2;
        assert!(head.verify().is_err());
    }
}
