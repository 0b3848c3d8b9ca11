//! Hostile automerge bytes that are valid as far as automerge checks them.

use sha2::{Digest, Sha256};

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

fn read_leb128(bytes: &[u8], at: &mut usize) -> u64 {
    let (mut value, mut shift) = (0u64, 0);
    loop {
        let b = bytes[*at];
        *at += 1;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return value;
        }
        shift += 7;
    }
}

/// A change chunk of `inserts` list inserts made by `actor` as automerge writes it, with its
/// column runs raised as if it held `runs` inserts (runs of `inserts - 2` … `inserts + 1` become
/// `runs - 2` … `runs + 1`, which keeps the columns consistent) and a correct checksum: ~100
/// bytes that ask automerge to verify and apply `runs` operations. The walk of untrusted bytes
/// refuses it by its column counts.
pub fn run_length_bomb(actor: automerge::ActorId, inserts: usize, runs: u64) -> Vec<u8> {
    use automerge::transaction::Transactable;
    let mut doc = automerge::AutoCommit::new().with_actor(actor);
    let list = doc
        .put_object(automerge::ROOT, "l", automerge::ObjType::List)
        .unwrap();
    for i in 0..inserts {
        doc.insert(&list, i, automerge::ScalarValue::Null).unwrap();
    }
    doc.commit();
    let raw = doc.get_changes(&[])[0].raw_bytes().to_vec();
    let mut at = 9;
    let len = read_leb128(&raw, &mut at) as usize;
    let body = &raw[at..at + len];
    // The header fields up to the column metadata stay; every column gets its runs raised.
    let mut r = 0;
    let deps = read_leb128(body, &mut r) as usize;
    r += deps * 32;
    let actor_len = read_leb128(body, &mut r) as usize;
    r += actor_len;
    for _ in 0..3 {
        read_leb128(body, &mut r); // seq, start op, time
    }
    let message = read_leb128(body, &mut r) as usize;
    r += message;
    assert_eq!(read_leb128(body, &mut r), 0, "no other actors");
    let prefix = &body[..r];
    let n = read_leb128(body, &mut r);
    let columns: Vec<(u64, usize)> = (0..n)
        .map(|_| {
            (
                read_leb128(body, &mut r),
                read_leb128(body, &mut r) as usize,
            )
        })
        .collect();
    let swaps: Vec<(Vec<u8>, Vec<u8>)> = (0..4u64)
        .map(|d| {
            let (mut from, mut to) = (Vec::new(), Vec::new());
            leb128(inserts as u64 + d - 2, &mut from);
            leb128(runs + d - 2, &mut to);
            (from, to)
        })
        .collect();
    let (mut meta, mut data) = (Vec::new(), Vec::new());
    leb128(columns.len() as u64, &mut meta);
    for (spec, len) in columns {
        let column = &body[r..r + len];
        r += len;
        let mut patched = Vec::new();
        let mut i = 0;
        while i < column.len() {
            match swaps.iter().find(|(from, _)| column[i..].starts_with(from)) {
                Some((from, to)) => {
                    patched.extend(to);
                    i += from.len();
                }
                None => {
                    patched.push(column[i]);
                    i += 1;
                }
            }
        }
        leb128(spec, &mut meta);
        leb128(patched.len() as u64, &mut meta);
        data.extend(patched);
    }
    let mut new_body = prefix.to_vec();
    new_body.extend(meta);
    new_body.extend(data);
    new_body.extend(&body[r..]);
    // The checksum: the first four bytes of SHA-256 over type, length and body.
    let mut hashed = vec![1u8];
    leb128(new_body.len() as u64, &mut hashed);
    hashed.extend(&new_body);
    let digest = Sha256::digest(&hashed);
    let mut out = vec![0x85, 0x6f, 0x4a, 0x83];
    out.extend(&digest[..4]);
    out.extend(hashed);
    out
}
