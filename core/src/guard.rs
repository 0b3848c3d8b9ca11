//! Automerge can panic on hostile or damaged bytes. Every decode of bytes we did
//! not just produce ourselves runs through [`guarded`], which turns a panic into a typed error.

use crate::{CoreError, Result};
use automerge::{AutoCommit, LoadOptions, OnPartialLoad, VerificationMode};
use std::panic::{AssertUnwindSafe, catch_unwind};

pub(crate) fn guarded<T>(doc_id: &str, work: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(work)) {
        Ok(result) => result,
        Err(panic) => {
            let reason = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "decoder panicked".into());
            Err(CoreError::CorruptDocument {
                id: doc_id.to_string(),
                reason: format!("decoder failed: {reason}"),
            })
        }
    }
}

/// What the deflated parts of one input (change chunks, document columns) may inflate to in
/// total: four times the largest request, far above any real document (photos are never inside
/// documents).
const MAX_INFLATED_BYTES: u64 = 4 * crate::protocol::MAX_REQUEST_BYTES as u64;

/// Refuses automerge chunk types this product never writes before automerge parses them. Our
/// documents are saved as document chunks (0) and change chunks (1, or 2 deflated); automerge
/// 0.12 also parses "bundle" chunks (3), whose run-length columns a 45-byte input can make expand
/// to gigabytes (found by fuzzing: a 4 GiB allocation, which aborts a process rather than
/// panicking, so the panic guard cannot catch it). Headers are walked, not trusted: a header
/// this walk cannot read is left to automerge's own parser, which refuses it.
///
/// Automerge inflates deflated data without a bound, so a deflate bomb inside a 16 MiB request
/// could ask for gigabytes. Everything it would inflate is inflated here first into a counting
/// sink, at most [`MAX_INFLATED_BYTES`] per input: whole deflated change chunks (2) and the
/// deflated columns of document chunks (0; automerge deflates columns over 256 bytes on save).
pub(crate) fn refuse_foreign_chunks(doc_id: &str, bytes: &[u8]) -> Result<()> {
    inflate_within_budget(doc_id, bytes).map(|_| ())
}

/// [`refuse_foreign_chunks`]'s walk; returns how many bytes the deflated parts inflate to.
fn inflate_within_budget(doc_id: &str, bytes: &[u8]) -> Result<u64> {
    let mut budget = DecodeBudget::per_request();
    walk_chunks(doc_id, bytes, &mut budget)?;
    Ok(MAX_INFLATED_BYTES - budget.left)
}

/// What the untrusted automerge bytes of one request (or one received reply, or one stored
/// document) may still cost: the bytes their deflated parts may inflate to, together. One
/// budget per request, so a request of many small deflate bombs costs no more than one.
#[derive(Debug)]
pub struct DecodeBudget {
    left: u64,
    /// Column values (about one per operation and column) automerge may still expand.
    values_left: u64,
}

/// Column values the run-length-encoded columns of one input may expand to in total. Automerge
/// stores a run of a million list inserts in about a hundred bytes and spends ~3 s (release
/// build) applying them; this bounds that work to what a full request of real documents holds
/// (a 25-item inspection is a few hundred operations of ~10 columns).
pub const MAX_DECODED_VALUES: u64 = 16 * 1024 * 1024;

impl DecodeBudget {
    /// [`MAX_INFLATED_BYTES`] and [`MAX_DECODED_VALUES`] for everything one request carries.
    pub fn per_request() -> DecodeBudget {
        DecodeBudget {
            left: MAX_INFLATED_BYTES,
            values_left: MAX_DECODED_VALUES,
        }
    }
}

/// Bloom filter parameters a sync message may declare: automerge writes 10 bits per entry and
/// 7 probes. A filter with entries but no bits makes automerge divide by zero, and a huge probe
/// count makes it allocate gigabytes when it answers, so both are refused before it parses.
const MAX_BLOOM_BITS_PER_ENTRY: u64 = 64;
const MAX_BLOOM_PROBES: u64 = 64;

/// Decodes an untrusted automerge sync message: its layout is walked first (message type,
/// hashes, bloom filter parameters, change chunks), every change chunk goes through the chunk
/// checks of [`refuse_foreign_chunks`] under `budget`, and only then does automerge decode it,
/// behind the panic guard. Used by the server on every request and by the device on every reply.
pub fn decode_sync_message(
    doc_id: &str,
    bytes: &[u8],
    budget: &mut DecodeBudget,
) -> Result<automerge::sync::Message> {
    let refuse = |reason: &str| CoreError::CorruptDocument {
        id: doc_id.to_string(),
        reason: format!("not a sync message: {reason}"),
    };
    let mut r = Reader { bytes, at: 0 };
    let chunks = (|| -> std::result::Result<Vec<&[u8]>, &'static str> {
        match r.take(1).ok_or("empty")?[0] {
            0x42 | 0x43 => {}
            _ => return Err("unknown message type"),
        }
        for _ in 0..2 {
            // heads, need
            let n = r.leb128().ok_or("truncated")?;
            r.take(n.checked_mul(32).ok_or("too many hashes")?)
                .ok_or("truncated")?;
        }
        for _ in 0..r.leb128().ok_or("truncated")? {
            let n = r.leb128().ok_or("truncated")?;
            r.take(n.checked_mul(32).ok_or("too many hashes")?)
                .ok_or("truncated")?;
            let len = r.leb128().ok_or("truncated")?;
            let bloom = r.take(len).ok_or("truncated")?;
            check_bloom(bloom)?;
        }
        let mut chunks = Vec::new();
        for _ in 0..r.leb128().ok_or("truncated")? {
            let len = r.leb128().ok_or("truncated")?;
            chunks.push(r.take(len).ok_or("truncated")?);
        }
        Ok(chunks)
    })()
    .map_err(refuse)?;
    for chunk in chunks {
        walk_chunks(doc_id, chunk, budget)?;
    }
    guarded(doc_id, || {
        automerge::sync::Message::decode(bytes).map_err(|e| refuse(&e.to_string()))
    })
}

fn check_bloom(bloom: &[u8]) -> std::result::Result<(), &'static str> {
    if bloom.is_empty() {
        return Ok(());
    }
    let mut r = Reader {
        bytes: bloom,
        at: 0,
    };
    let entries = r.leb128().ok_or("truncated bloom filter")?;
    let bits_per_entry = r.leb128().ok_or("truncated bloom filter")?;
    let probes = r.leb128().ok_or("truncated bloom filter")?;
    if entries > u64::from(u32::MAX)
        || bits_per_entry > MAX_BLOOM_BITS_PER_ENTRY
        || probes > MAX_BLOOM_PROBES
    {
        return Err("bloom filter parameters out of range");
    }
    if entries > 0 && (bits_per_entry == 0 || probes == 0) {
        return Err("a bloom filter with entries needs bits and probes");
    }
    let bits = (entries * bits_per_entry).div_ceil(8);
    if bloom.len() - r.at != bits as usize {
        return Err("bloom filter size does not match its parameters");
    }
    Ok(())
}

/// Walks the chunks of `bytes`, refusing foreign chunk types and inflating deflated parts into
/// the counting sink under `budget`.
fn walk_chunks(doc_id: &str, bytes: &[u8], budget: &mut DecodeBudget) -> Result<()> {
    const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
    let refuse = |reason: String| CoreError::CorruptDocument {
        id: doc_id.to_string(),
        reason,
    };
    let mut rest = bytes;
    while rest.len() >= 9 && rest[..4] == MAGIC {
        let chunk_type = rest[8];
        if chunk_type > 2 {
            return Err(refuse(format!(
                "automerge chunk type {chunk_type} is not accepted"
            )));
        }
        let mut header = Reader { bytes: rest, at: 9 };
        let Some(body) = header.leb128().and_then(|len| header.take(len)) else {
            break;
        };
        match chunk_type {
            0 => budget.document_columns(body).map_err(refuse)?,
            1 => budget.change_columns(body).map_err(refuse)?,
            _ => {
                let inflated = budget.inflate(body, "a deflated change").map_err(refuse)?;
                budget.change_columns(&inflated).map_err(refuse)?;
            }
        }
        rest = &rest[header.at..];
    }
    Ok(())
}

impl DecodeBudget {
    /// Inflates `deflated` under the budget and returns the bytes (at most what is left of
    /// [`MAX_INFLATED_BYTES`]: the walk reads the columns inside).
    fn inflate(&mut self, deflated: &[u8], what: &str) -> std::result::Result<Vec<u8>, String> {
        use std::io::Read;
        let inflater = flate2::bufread::DeflateDecoder::new(deflated);
        let mut out = Vec::new();
        let n = inflater
            .take(self.left + 1)
            .read_to_end(&mut out)
            .map_err(|e| format!("{what} does not inflate: {e}"))? as u64;
        if n > self.left {
            return Err(format!(
                "deflated parts inflate to more than {MAX_INFLATED_BYTES} bytes"
            ));
        }
        self.left -= n;
        Ok(out)
    }

    /// Charges the values a column expands to (automerge's column encodings: run-length for
    /// integers, actors, groups, value metadata and strings, runs for booleans; raw values are
    /// bounded by their bytes). A column this walk cannot read is left to automerge, which
    /// refuses it: what was counted up to there is charged.
    fn charge_column(&mut self, spec: u64, data: &[u8]) -> std::result::Result<(), String> {
        let n = count_column_values(spec & 0b111, data);
        if n > self.values_left {
            return Err(format!(
                "run-length-encoded columns expand to more than {MAX_DECODED_VALUES} values"
            ));
        }
        self.values_left -= n;
        Ok(())
    }

    /// A change chunk's body: dependencies, actor, seq, start op, time, message, other actors,
    /// then the operation columns' metadata ((spec, length) pairs) and data.
    fn change_columns(&mut self, body: &[u8]) -> std::result::Result<(), String> {
        let mut r = Reader { bytes: body, at: 0 };
        let Some(columns) = (|| {
            let deps = r.leb128()?;
            r.take(deps.checked_mul(32)?)?;
            let actor = r.leb128()?;
            r.take(actor)?;
            r.leb128()?; // seq
            r.leb128()?; // start op
            r.leb128()?; // time (signed; the same bytes)
            let message = r.leb128()?;
            r.take(message)?;
            for _ in 0..r.leb128()? {
                let len = r.leb128()?;
                r.take(len)?;
            }
            let mut columns = Vec::new();
            for _ in 0..r.leb128()? {
                columns.push((r.leb128()?, r.leb128()?));
            }
            Some(columns)
        })() else {
            return Ok(());
        };
        self.columns(&mut r, &columns)
    }

    /// The data of `columns` from `r`, inflating deflated ones, charging every value.
    fn columns(
        &mut self,
        r: &mut Reader,
        columns: &[(u64, u64)],
    ) -> std::result::Result<(), String> {
        const DEFLATED: u64 = 0b1000;
        for &(spec, len) in columns {
            let Some(data) = r.take(len) else {
                return Ok(());
            };
            if spec & DEFLATED != 0 {
                let inflated = self.inflate(data, "a deflated column")?;
                self.charge_column(spec, &inflated)?;
            } else {
                self.charge_column(spec, data)?;
            }
        }
        Ok(())
    }

    /// A document chunk's body (automerge's binary format): actor ids (count, then each
    /// length-prefixed), head hashes (count × 32 bytes), the change columns' and the operation
    /// columns' metadata (count, then (spec, length) pairs; spec bit 3 = deflated), then the
    /// columns' data in that order. A layout this walk cannot follow is left to automerge, which
    /// refuses it.
    fn document_columns(&mut self, body: &[u8]) -> std::result::Result<(), String> {
        let mut r = Reader { bytes: body, at: 0 };
        let Some(columns) = (|| {
            for _ in 0..r.leb128()? {
                let len = r.leb128()?;
                r.take(len)?;
            }
            let heads = r.leb128()?;
            r.take(heads.checked_mul(32)?)?;
            let mut columns = Vec::new();
            for _ in 0..2 {
                for _ in 0..r.leb128()? {
                    columns.push((r.leb128()?, r.leb128()?));
                }
            }
            Some(columns)
        })() else {
            return Ok(());
        };
        self.columns(&mut r, &columns)
    }
}

/// How many values one column holds, by its type (the low three bits of its spec). Stops at the
/// first thing it cannot read.
fn count_column_values(column_type: u64, data: &[u8]) -> u64 {
    const BOOLEAN: u64 = 4;
    const STRING: u64 = 5;
    const RAW: u64 = 7;
    let mut r = Reader { bytes: data, at: 0 };
    let mut n: u64 = 0;
    match column_type {
        RAW => {}
        BOOLEAN => {
            // Alternating run lengths (false first).
            while let Some(run) = r.leb128() {
                n = n.saturating_add(run);
            }
        }
        _ => {
            // Runs: count > 0 repeats one value, count < 0 is that many literal values, 0 is a
            // run of nulls whose length follows.
            let value = |r: &mut Reader| -> Option<()> {
                if column_type == STRING {
                    let len = r.leb128()?;
                    r.take(len)?;
                } else {
                    r.leb128()?;
                }
                Some(())
            };
            while let Some(count) = r.sleb128() {
                if count > 0 {
                    n = n.saturating_add(count as u64);
                    if value(&mut r).is_none() {
                        break;
                    }
                } else if count < 0 {
                    let literal = count.unsigned_abs();
                    n = n.saturating_add(literal);
                    // Each literal value takes at least a byte: never loop past the data.
                    if literal > data.len() as u64 {
                        break;
                    }
                    if (0..literal).any(|_| value(&mut r).is_none()) {
                        break;
                    }
                } else {
                    let Some(nulls) = r.leb128() else { break };
                    n = n.saturating_add(nulls);
                }
            }
        }
    }
    n
}

/// Reads automerge's unsigned LEB128 numbers and byte runs; `None` past the end.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn leb128(&mut self) -> Option<u64> {
        let (mut value, mut shift) = (0u64, 0u32);
        loop {
            let b = *self.bytes.get(self.at)?;
            self.at += 1;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(value);
            }
            shift += 7;
            if shift > 56 {
                return None;
            }
        }
    }

    /// A signed LEB128 number (automerge's run counts and deltas).
    fn sleb128(&mut self) -> Option<i64> {
        let (mut value, mut shift) = (0i64, 0u32);
        loop {
            let b = *self.bytes.get(self.at)?;
            self.at += 1;
            value |= i64::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                if shift < 64 && b & 0x40 != 0 {
                    value |= -1i64 << shift;
                }
                return Some(value);
            }
            if shift > 56 {
                return None;
            }
        }
    }

    fn take(&mut self, len: u64) -> Option<&'a [u8]> {
        let end = self.at.checked_add(usize::try_from(len).ok()?)?;
        let run = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(run)
    }
}

/// Applies bytes received from elsewhere (incremental changes or a whole save) to a copy of
/// `doc`, strictly and behind the panic guard, and returns the copy with the number of changes
/// applied once `check(heads of doc, copy)` accepts it (layout and document rules); `doc` itself is never touched, so refused bytes change
/// nothing. `load_incremental` silently drops a damaged tail (it is made for appended files), so
/// the bytes are first parsed whole — after the document's own bytes, so that incremental changes
/// find the changes they depend on.
pub(crate) fn apply_strictly(
    doc_id: &str,
    doc: &AutoCommit,
    bytes: &[u8],
    check: impl FnOnce(&[automerge::ChangeHash], &mut AutoCommit) -> Result<()>,
) -> Result<(AutoCommit, usize)> {
    let corrupt = |e: automerge::AutomergeError| CoreError::CorruptDocument {
        id: doc_id.to_string(),
        reason: e.to_string(),
    };
    refuse_foreign_chunks(doc_id, bytes)?;
    guarded(doc_id, || {
        let mut candidate = doc.clone();
        let heads = candidate.get_heads();
        let mut whole = candidate.save();
        whole.extend_from_slice(bytes);
        AutoCommit::load_with_options(
            &whole,
            LoadOptions::new()
                .on_partial_load(OnPartialLoad::Error)
                .verification_mode(VerificationMode::DontCheck),
        )
        .map_err(corrupt)?;
        let n = candidate.load_incremental(bytes).map_err(corrupt)?;
        check(&heads, &mut candidate)?;
        Ok((candidate, n))
    })
}

/// Loads stored or received bytes of any document as plain automerge, behind the panic guard
/// (sync and compaction, which do not look inside, on every storage engine).
pub fn load_automerge(doc_id: &str, bytes: &[u8]) -> Result<AutoCommit> {
    refuse_foreign_chunks(doc_id, bytes)?;
    guarded(doc_id, || {
        AutoCommit::load(bytes).map_err(|e| CoreError::CorruptDocument {
            id: doc_id.to_string(),
            reason: e.to_string(),
        })
    })
}

#[cfg(test)]
mod tests {
    use crate::CoreError;
    use crate::inspection::InspectionDoc;

    /// A chunk header (magic, any checksum, type 2, LEB128 length) around `plain` deflated.
    fn deflated_chunk(plain: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(plain).unwrap();
        let body = z.finish().unwrap();
        chunk(2, &body)
    }

    /// A chunk header (magic, any checksum, `chunk_type`, LEB128 length) around `body`.
    fn chunk(chunk_type: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, chunk_type];
        leb128(body.len() as u64, &mut out);
        out.extend(body);
        out
    }

    /// Found by the long fuzzing run of `document_load` (kept in
    /// fuzz/regressions/document_load/): automerge 0.12 panics on this truncated bundle
    /// (an `unwrap` on a LEB128 read in hexane). The guard turns it into a typed error.
    #[test]
    fn an_automerge_decoder_panic_is_a_corrupt_document() {
        let bytes = [
            0x85, 0x6f, 0x4a, 0x83, 0x78, 0xb6, 0x2b, 0x21, 0x03, 0x23, 0x00, 0x01, 0x00, 0x00,
            0x02, 0x00, 0x03, 0x23, 0x03, 0x23, 0x00, 0x6a, 0x74, 0x00, 0x21, 0xfc, 0x61, 0x00,
            0x00, 0x21, 0x00, 0x00, 0x25, 0x00, 0x6f, 0x48, 0x10, 0x6e, 0x00, 0x5d, 0x03, 0xc0,
            0xa9, 0x2d, 0x96,
        ];
        let device = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b";
        match InspectionDoc::load("doc-1", &bytes, device) {
            Err(CoreError::CorruptDocument { id, .. }) => assert_eq!(id, "doc-1"),
            Err(other) => panic!("expected CorruptDocument, got {other:?}"),
            Ok(_) => panic!("a truncated bundle loaded"),
        }
    }

    /// Also found by fuzzing (fuzz/regressions/document_load/): a 45-byte bundle whose
    /// run-length column made automerge allocate 4 GiB. Refused before automerge parses it.
    #[test]
    fn a_bundle_chunk_is_refused_before_automerge_parses_it() {
        let bytes = [
            0x85, 0x6f, 0x4a, 0x83, 0x78, 0xb6, 0x2b, 0x21, 0x03, 0x23, 0x00, 0x01, 0x00, 0x00,
            0x02, 0x03, 0x00, 0x23, 0x13, 0x23, 0x93, 0x93, 0x41, 0x93, 0x93, 0x93, 0x93, 0x93,
            0x93, 0x93, 0x93, 0x93, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x4b, 0x93, 0x21,
            0x00, 0x00, 0x96,
        ];
        let device = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b";
        match InspectionDoc::load("doc-2", &bytes, device) {
            Err(CoreError::CorruptDocument { reason, .. }) => {
                assert!(reason.contains("chunk type 3"), "{reason}")
            }
            Err(other) => panic!("expected CorruptDocument, got {other:?}"),
            Ok(_) => panic!("a bundle loaded"),
        }
        // A deflated change chunk that inflates past the cap is refused; a small one passes.
        let bomb = deflated_chunk(&vec![0u8; (super::MAX_INFLATED_BYTES + 1) as usize]);
        assert!(bomb.len() < 200_000, "the bomb is small: {}", bomb.len());
        match super::refuse_foreign_chunks("d", &bomb) {
            Err(CoreError::CorruptDocument { reason, .. }) => {
                assert!(reason.contains("inflate to more than"), "{reason}")
            }
            other => panic!("expected CorruptDocument, got {other:?}"),
        }
        assert!(super::refuse_foreign_chunks("d", &deflated_chunk(b"small change")).is_ok());
        // What this product saves passes the check.
        assert!(super::refuse_foreign_chunks("d", &automerge::AutoCommit::new().save()).is_ok());
    }

    fn leb128(mut n: u64, out: &mut Vec<u8>) {
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    /// A document chunk whose only column is deflated automerge would inflate without a bound
    /// (`RawColumn::decompress` reads to the end); the walk inflates it first, under the cap.
    #[test]
    fn a_deflated_document_column_bomb_is_refused() {
        use std::io::Write;
        let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..=(super::MAX_INFLATED_BYTES >> 20) {
            z.write_all(&zeros).unwrap();
        }
        let column = z.finish().unwrap();
        assert!(
            column.len() < 200_000,
            "the bomb is small: {}",
            column.len()
        );
        // No actors, no heads, one change column (id 1, a deflated value-metadata column), no op columns.
        let mut body = vec![0, 0, 1];
        leb128((1 << 4) | 0b1000 | 6, &mut body);
        leb128(column.len() as u64, &mut body);
        body.push(0);
        body.extend(&column);
        let chunk = chunk(0, &body);
        match super::refuse_foreign_chunks("d", &chunk) {
            Err(CoreError::CorruptDocument { reason, .. }) => {
                assert!(reason.contains("inflate to more than"), "{reason}")
            }
            other => panic!("expected CorruptDocument, got {other:?}"),
        }
        let device = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b";
        assert!(matches!(
            InspectionDoc::load("d", &chunk, device),
            Err(CoreError::CorruptDocument { .. })
        ));
    }

    /// Automerge deflates a saved document's columns over 256 bytes: the walk follows a real
    /// document's layout to them (it inflates them, and the document passes).
    #[test]
    fn a_real_document_with_deflated_columns_passes_the_walk() {
        use automerge::{ROOT, transaction::Transactable};
        let mut doc = automerge::AutoCommit::new();
        for n in 0..200 {
            let note = format!(
                "第{n}号投放点：桶满溢，未分类，督导员不在岗。{}",
                "x".repeat(n)
            );
            doc.put(ROOT, format!("item-{n}"), note).unwrap();
        }
        let saved = doc.save();
        let inflated = super::inflate_within_budget("d", &saved).unwrap();
        assert!(
            inflated > saved.len() as u64,
            "inflated {inflated} of {}",
            saved.len()
        );
        // Saved without compression, the same document inflates nothing.
        let changes = automerge::AutoCommit::load(&saved)
            .unwrap()
            .save_nocompress();
        assert_eq!(super::inflate_within_budget("d", &changes).unwrap(), 0);
    }

    /// A sync message: type, no heads, no need, `haves` as given, the change chunks.
    fn sync_message(haves: &[Vec<u8>], changes: &[Vec<u8>]) -> Vec<u8> {
        let mut out = vec![0x42, 0, 0];
        leb128(haves.len() as u64, &mut out);
        for bloom in haves {
            out.push(0); // last_sync: no hashes
            leb128(bloom.len() as u64, &mut out);
            out.extend(bloom);
        }
        leb128(changes.len() as u64, &mut out);
        for c in changes {
            leb128(c.len() as u64, &mut out);
            out.extend(c);
        }
        out
    }

    fn bloom(entries: u64, bits_per_entry: u64, probes: u64, bits: usize) -> Vec<u8> {
        let mut out = Vec::new();
        leb128(entries, &mut out);
        leb128(bits_per_entry, &mut out);
        leb128(probes, &mut out);
        out.extend(vec![0xffu8; bits]);
        out
    }

    fn refused(bytes: &[u8], budget: &mut super::DecodeBudget) -> String {
        match super::decode_sync_message("d", bytes, budget) {
            Err(CoreError::CorruptDocument { reason, .. }) => reason,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    /// The server answers every message with automerge's `generate_sync_message`, which probes
    /// the peer's bloom filter: no bits divides by zero, four billion probes allocate 16 GiB.
    /// The bundle chunk that makes automerge allocate 4 GiB arrives inside a message too.
    #[test]
    fn hostile_sync_messages_are_refused_before_automerge_reads_them() {
        let bundle = chunk(3, &[0x00, 0x23, 0x13, 0x23, 0x93, 0x93, 0x41]);
        let mut budget = super::DecodeBudget::per_request();
        assert!(refused(&sync_message(&[], &[bundle]), &mut budget).contains("chunk type 3"));
        assert!(
            refused(&sync_message(&[bloom(5, 0, 7, 0)], &[]), &mut budget)
                .contains("needs bits and probes")
        );
        assert!(
            refused(
                &sync_message(&[bloom(1, 10, 4_000_000_000, 2)], &[]),
                &mut budget
            )
            .contains("out of range")
        );
        assert!(
            refused(&sync_message(&[bloom(100, 10, 7, 3)], &[]), &mut budget)
                .contains("does not match")
        );
        assert!(refused(&[0x42, 0x05], &mut budget).contains("truncated"));
        // What automerge itself sends passes: a real message with a real bloom filter.
        let mut doc = automerge::AutoCommit::new();
        automerge::transaction::Transactable::put(&mut doc, automerge::ROOT, "k", 1).unwrap();
        doc.commit();
        let mut state = automerge::sync::State::new();
        let msg = automerge::sync::SyncDoc::generate_sync_message(&doc.sync(), &mut state)
            .unwrap()
            .encode();
        super::decode_sync_message("d", &msg, &mut budget).unwrap();
    }

    /// One budget for a whole request: deflated chunks each under the cap but many together
    /// (a 2.7 MB request once cost 27 s of inflating) are refused once the sum passes it.
    #[test]
    fn one_inflate_budget_covers_a_whole_request() {
        let sixth = (super::MAX_INFLATED_BYTES / 6) as usize;
        let change = deflated_chunk(&vec![0u8; sixth]);
        let message = sync_message(&[], &[change]);
        let mut budget = super::DecodeBudget::per_request();
        let mut accepted = 0;
        let reason = loop {
            match super::decode_sync_message("d", &message, &mut budget) {
                Ok(_) => accepted += 1,
                Err(CoreError::CorruptDocument { reason, .. }) => break reason,
                Err(other) => panic!("{other:?}"),
            }
            assert!(accepted < 10, "the budget never ran out");
        };
        assert_eq!(accepted, 6);
        assert!(reason.contains("inflate to more than"), "{reason}");
        // A fresh request starts with a fresh budget.
        super::decode_sync_message("d", &message, &mut super::DecodeBudget::per_request()).unwrap();
    }

    /// Run-length columns bound the work automerge may be asked for: a ~120-byte change of a
    /// million inserts cost ~3 s to apply; one claiming 2^40 is refused by the walk. Real
    /// changes and documents pass.
    #[test]
    fn run_length_bombs_are_refused_and_real_columns_pass() {
        // A change body (no deps, a 16-byte actor, seq 1, start op 1, time 0, no message, no
        // other actors) with one integer column: a run of `runs` zeros.
        let bomb = |runs: u64| {
            let mut body = vec![0, 16];
            body.extend([7u8; 16]);
            body.extend([1, 1, 0, 0, 0, 1, 0x42]);
            let mut column = Vec::new();
            leb128(runs, &mut column); // a positive signed run count, as unsigned below 2^62
            column.push(0);
            leb128(column.len() as u64, &mut body);
            body.extend(column);
            chunk(1, &body)
        };
        match super::refuse_foreign_chunks("d", &bomb(1 << 40)) {
            Err(CoreError::CorruptDocument { reason, .. }) => {
                assert!(reason.contains("expand to more than"), "{reason}")
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        // Smaller ones in one request share the budget.
        let mid = bomb(super::MAX_DECODED_VALUES / 2 + 1);
        let mut budget = super::DecodeBudget::per_request();
        assert!(super::walk_chunks("d", &mid, &mut budget).is_ok());
        assert!(super::walk_chunks("d", &mid, &mut budget).is_err());
        // Real columns: a change of 1,000 list inserts is counted, and passes; so does the
        // saved document.
        use automerge::transaction::Transactable;
        let mut doc = automerge::AutoCommit::new();
        let list = doc
            .put_object(automerge::ROOT, "l", automerge::ObjType::List)
            .unwrap();
        for i in 0..1000 {
            doc.insert(&list, i, automerge::ScalarValue::Null).unwrap();
        }
        doc.commit();
        let real = doc.get_changes(&[])[0].raw_bytes().to_vec();
        let mut budget = super::DecodeBudget::per_request();
        super::walk_chunks("d", &real, &mut budget).unwrap();
        let charged = super::MAX_DECODED_VALUES - budget.values_left;
        assert!(charged >= 1000, "a real change is counted: {charged}");
        super::refuse_foreign_chunks("d", &doc.save()).unwrap();
    }
}
