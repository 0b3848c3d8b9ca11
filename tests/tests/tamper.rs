//! Tamper evidence end to end (docs/tamper-evidence.md): signed submissions, the server's hash
//! chain, receipts, `verify-chain` against altered, removed and reordered rows of the real
//! SQLite file, and a server restored from an old copy of its data folder detected by devices.

mod common;

use common::*;
use fenlei_core::answer::{AnswerValue, ItemAnswer};
use fenlei_core::geo::LatLon;
use fenlei_core::inspection::{
    EditContext, GpsFix, InspectionKind, InspectionStatus, NewInspection,
};
use fenlei_core::progress::CancelToken;
use fenlei_core::store::ChainState;
use fenlei_core::sync::receipts::ReceiptReport;
use std::path::Path;
use std::process::Command;

fn submit_one(d: &Device, community: &str) -> String {
    let s = &d.store;
    let id = s
        .create_inspection(
            &NewInspection {
                community_id: community.into(),
                standard_id: "hohhot-residential".into(),
                standard_version: "2026.1".into(),
                kind: InspectionKind::DailyPatrol,
                co_inspectors: vec![],
            },
            &d.user,
        )
        .unwrap();
    let standard = s.standard("hohhot-residential", "2026.1").unwrap();
    let item = standard.items().next().unwrap().code.clone();
    let ctx = EditContext::by(d.user.as_str());
    s.record_answer(
        &id,
        &ItemAnswer {
            item_code: item,
            value: AnswerValue::Compliant,
            sampled_units: None,
            note: None,
        },
        &ctx,
    )
    .unwrap();
    let c = s.community(community).unwrap();
    s.add_gps_fix(
        &id,
        &GpsFix {
            location: LatLon {
                lat: c.location.lat,
                lon: c.location.lon,
            },
            accuracy_m: Some(6.0),
            altitude_m: None,
            provider: "gps".into(),
            at_ms: s.now_ms(),
            is_mock: false,
        },
        &d.user,
    )
    .unwrap();
    s.set_status(&id, InspectionStatus::Submitted, &ctx, None)
        .unwrap();
    id
}

fn exchange(d: &Device) -> ReceiptReport {
    d.sync();
    d.client()
        .exchange_receipts(&d.store, &CancelToken::new())
        .expect("receipts")
}

/// Runs `verify-chain` on a data folder: (success, stdout).
fn verify_chain(data: &Path, extra: &[&str]) -> (bool, String) {
    let out = Command::new(BIN)
        .args(["--data", data.to_str().unwrap(), "verify-chain"])
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Opens a copy of the server database the way an attacker with file access would: the
/// append-only triggers dropped first.
fn tamper_with(data: &Path, sql: &str) {
    let conn = rusqlite::Connection::open(data.join("fenlei-server.sqlite")).unwrap();
    conn.execute_batch(
        "DROP TRIGGER chain_entries_no_update; DROP TRIGGER chain_entries_no_delete;",
    )
    .unwrap();
    conn.execute_batch(sql).unwrap();
}

struct Setup {
    dir: tempfile::TempDir,
    server: Server,
    a: Device,
    b: Device,
    sup: Device,
    communities: Vec<String>,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let (street, communities, district) = sample_places();
    for user in ["insp.a", "insp.b"] {
        server.admin(&["add-user", "--id", user, "--role", "inspector"]);
        server.admin(&["assign", "--user", user, "--street", &street]);
    }
    server.admin(&["add-user", "--id", "sup", "--role", "supervisor"]);
    server.admin(&["assign", "--user", "sup", "--district", &district]);
    let a = Device::enroll(&server, dir.path(), "insp.a");
    let b = Device::enroll(&server, dir.path(), "insp.b");
    let sup = Device::enroll(&server, dir.path(), "sup");
    for d in [&a, &b, &sup] {
        d.sync();
    }
    Setup {
        dir,
        server,
        a,
        b,
        sup,
        communities,
    }
}

#[test]
fn submissions_get_verified_receipts_and_verify_chain_detects_every_change() {
    if common::skip_on_postgres("alters the server's SQLite file and copies of its data folder") {
        return;
    }
    let mut s = setup();
    // A device enrolled without a key (an old client) cannot append: covered by the server's
    // refusal below through a forged statement instead.
    assert!(
        s.a.store.pinned_server_key().unwrap().is_some(),
        "enrollment pins the server key"
    );
    let mut ids = Vec::new();
    for n in 0..3 {
        let d = if n == 1 { &s.b } else { &s.a };
        ids.push(submit_one(d, &s.communities[n % s.communities.len()]));
        let r = exchange(d);
        assert_eq!(r.receipts_received, 1, "{r:?}");
        assert_eq!(r.pending, 0);
        assert_eq!(r.chain.state, ChainState::Consistent);
    }
    // Nothing new: no second receipt for the same submission.
    let r = exchange(&s.a);
    assert_eq!(r.receipts_received, 0);
    assert_eq!(r.chain.state, ChainState::Consistent);
    let receipts = s.a.store.receipts(None).unwrap();
    assert_eq!(
        receipts.iter().map(|r| r.chain_index).collect::<Vec<_>>(),
        vec![0, 2]
    );
    assert_eq!(receipts[0].inspection_id, ids[0]);
    // A resubmission after a return is a new submission: signed and chained again.
    s.sup.sync();
    s.sup
        .store
        .set_status(
            &ids[0],
            InspectionStatus::Returned,
            &EditContext::by("sup"),
            Some("补拍照片"),
        )
        .unwrap();
    assert_eq!(
        exchange(&s.sup).receipts_received,
        0,
        "a return is not a submission"
    );
    s.a.sync();
    s.a.store
        .set_status(
            &ids[0],
            InspectionStatus::Submitted,
            &EditContext::amending("insp.a", "resubmitted"),
            None,
        )
        .unwrap();
    assert_eq!(exchange(&s.a).receipts_received, 1);
    assert_eq!(s.a.store.receipts(Some(&ids[0])).unwrap().len(), 2);

    let data = s.server.data.clone();
    let (ok, out) = verify_chain(&data, &[]);
    assert!(ok, "{out}");
    assert!(out.contains("chain: 4 entries"), "{out}");
    let latest = s.a.store.latest_receipt().unwrap().unwrap();
    let expect = format!("{}:{}", latest.chain_index, latest.entry_hash);
    assert!(verify_chain(&data, &["--expect", &expect]).0);

    s.server.kill();
    let work = s.dir.path().join("tampered");
    let cases: [(&str, &str, u64); 5] = [
        (
            "altered statement",
            "UPDATE chain_entries SET statement = CAST(replace(CAST(statement AS TEXT), 'status=submitted', 'status=approved') AS BLOB) WHERE idx = 1",
            1,
        ),
        (
            "altered hash fields",
            "UPDATE chain_entries SET received_at = received_at - 86400000 WHERE idx = 2",
            2,
        ),
        (
            "removed entry",
            "DELETE FROM chain_entries WHERE idx = 1",
            1,
        ),
        (
            "swapped entries",
            "UPDATE chain_entries SET idx = -1 WHERE idx = 1;
             UPDATE chain_entries SET idx = 1 WHERE idx = 2;
             UPDATE chain_entries SET idx = 2 WHERE idx = -1;",
            1,
        ),
        (
            "altered stored hash",
            "UPDATE chain_entries SET entry_hash = '00' || substr(entry_hash, 3) WHERE idx = 0",
            0,
        ),
    ];
    for (what, sql, index) in cases {
        copy_dir(&data, &work);
        tamper_with(&work, sql);
        let (ok, out) = verify_chain(&work, &[]);
        assert!(!ok, "{what} not detected: {out}");
        let first = out
            .lines()
            .find_map(|l| l.strip_prefix("entry "))
            .and_then(|l| l.split(':').next())
            .and_then(|i| i.parse::<u64>().ok());
        assert_eq!(first, Some(index), "{what}: {out}");
    }
    // Removing the newest entry leaves a valid shorter chain: a held receipt catches it.
    copy_dir(&data, &work);
    tamper_with(
        &work,
        &format!(
            "DELETE FROM chain_entries WHERE idx = {}",
            latest.chain_index
        ),
    );
    assert!(
        verify_chain(&work, &[]).0,
        "a shorter chain is internally consistent"
    );
    let (ok, out) = verify_chain(&work, &["--expect", &expect]);
    assert!(
        !ok && out.contains(&format!("entry {}", latest.chain_index)),
        "{out}"
    );
}

#[test]
fn server_statement_checks_refuse_forgeries() {
    let s = setup();
    let id = submit_one(&s.a, &s.communities[0]);
    s.a.sync();
    let pending = s.a.store.sign_pending_submissions().unwrap();
    assert_eq!(pending.len(), 1);
    let p = &pending[0];
    let http = reqwest::blocking::Client::new();
    let post = |token: &str, statement: &[u8], signature: &str| {
        use base64::Engine;
        http.post(format!("{}/v1/receipts", s.server.url()))
            .bearer_auth(token)
            .json(&serde_json::json!({
                "statement": base64::engine::general_purpose::STANDARD.encode(statement),
                "signature": signature,
            }))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    // Another device presenting A's statement, a flipped signature, altered bytes.
    assert_eq!(post(&s.b.token, &p.bytes, &p.signature), 403);
    let mut sig = p.signature.clone().into_bytes();
    sig[0] = if sig[0] == b'0' { b'1' } else { b'0' };
    assert_eq!(
        post(&s.a.token, &p.bytes, std::str::from_utf8(&sig).unwrap()),
        403
    );
    let altered = String::from_utf8(p.bytes.clone())
        .unwrap()
        .replace(&id, &format!("{id}x"));
    assert_eq!(post(&s.a.token, altered.as_bytes(), &p.signature), 403);
    assert_eq!(post(&s.a.token, b"not a statement", &p.signature), 400);
    // Validly signed by A, but attesting a submission the document does not hold.
    let key = s.a.store.device_signing_key().unwrap();
    let mut other = fenlei_core::tamper::Statement::decode(&p.bytes).unwrap();
    other.submitted_at_ms += 1;
    let other = other.encode().unwrap();
    assert_eq!(
        post(
            &s.a.token,
            &other,
            &fenlei_core::tamper::sign_hex(&key, &other)
        ),
        404
    );
    // The genuine one is taken, twice into the same entry.
    assert_eq!(post(&s.a.token, &p.bytes, &p.signature), 200);
    assert_eq!(post(&s.a.token, &p.bytes, &p.signature), 200);
    let r = exchange(&s.a);
    assert_eq!(r.receipts_received, 1);
    assert_eq!(s.a.store.latest_receipt().unwrap().unwrap().chain_index, 0);
    // Every device reads an entry's link and hash; only A reads A's statement.
    let get = |token: &str| -> serde_json::Value {
        http.get(format!("{}/v1/chain/entries/0", s.server.url()))
            .bearer_auth(token)
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    assert!(get(&s.b.token)["statement"].is_null());
    assert!(get(&s.b.token)["entry_hash"].is_string());
    assert!(get(&s.a.token)["statement"].is_string());
}

#[test]
fn a_server_restored_from_an_old_copy_is_detected_by_devices() {
    if common::skip_on_postgres("restores the server's SQLite file from a copied data folder") {
        return;
    }
    let mut s = setup();
    submit_one(&s.a, &s.communities[0]);
    assert_eq!(exchange(&s.a).receipts_received, 1);

    // The operator copies the data folder (a backup)...
    let data = s.server.data.clone();
    let backup = s.dir.path().join("backup");
    s.server.kill();
    copy_dir(&data, &backup);
    s.server.restart();

    // ...work goes on...
    submit_one(&s.a, &s.communities[1]);
    assert_eq!(exchange(&s.a).receipts_received, 1);
    let held = s.a.store.latest_receipt().unwrap().unwrap();
    assert_eq!(held.chain_index, 1);

    // ...and the server is put back to the backup.
    s.server.kill();
    copy_dir(&backup, &data);
    s.server.restart();

    let r = exchange(&s.a);
    assert_eq!(r.chain.state, ChainState::Truncated, "{r:?}");
    assert_eq!(r.chain.receipt_index, Some(1));
    assert_eq!(r.chain.chain_length, 1);
    assert_eq!(
        s.a.store.chain_check().unwrap().state,
        ChainState::Truncated
    );

    // Another device appends on the restored chain until entry 1 exists again with other
    // content: A sees the entry it holds a receipt for rewritten.
    submit_one(&s.b, &s.communities[0]);
    assert_eq!(exchange(&s.b).receipts_received, 1);
    let r = exchange(&s.a);
    assert_eq!(r.chain.state, ChainState::Rewritten, "{r:?}");
    assert!(r.chain.state.is_alarm());
    // A keeps its evidence: the receipt stays, and no new statement is sent into that chain.
    submit_one(&s.a, &s.communities[1]);
    let r = exchange(&s.a);
    assert_eq!(r.receipts_received, 0);
    assert_eq!(r.pending, 1);
    assert_eq!(s.a.store.latest_receipt().unwrap().unwrap(), held);
}

/// Rewrites entry `index` (a new `received_at_ms`) and recomputes every later entry's `prev`
/// and hash, as an operator with the file could: the chain stays internally valid.
fn rewrite_and_rechain(data: &Path, index: u64) {
    use fenlei_core::tamper::ChainLink;
    let conn = rusqlite::Connection::open(data.join("fenlei-server.sqlite")).unwrap();
    conn.execute_batch(
        "DROP TRIGGER chain_entries_no_update; DROP TRIGGER chain_entries_no_delete;",
    )
    .unwrap();
    let mut rows: Vec<ChainLink> = conn
        .prepare(
            "SELECT idx, prev_hash, received_at, statement_sha256, device_signature
             FROM chain_entries ORDER BY idx",
        )
        .unwrap()
        .query_map([], |r| {
            Ok(ChainLink {
                index: r.get::<_, i64>(0)? as u64,
                prev_hash: r.get(1)?,
                received_at_ms: r.get(2)?,
                statement_sha256: r.get(3)?,
                device_signature: r.get(4)?,
            })
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    rows[index as usize].received_at_ms += 3_600_000;
    for i in index as usize..rows.len() {
        if i > 0 {
            rows[i].prev_hash = rows[i - 1].hash();
        }
        conn.execute(
            "UPDATE chain_entries SET prev_hash = ?1, received_at = ?2, entry_hash = ?3 WHERE idx = ?4",
            rusqlite::params![
                rows[i].prev_hash,
                rows[i].received_at_ms,
                rows[i].hash(),
                rows[i].index as i64
            ],
        )
        .unwrap();
    }
}

#[test]
fn a_rewritten_entry_of_another_device_is_detected_by_every_device_that_saw_it() {
    if common::skip_on_postgres("rewrites and re-links entries in the server's SQLite file") {
        return;
    }
    let mut s = setup();
    submit_one(&s.a, &s.communities[0]);
    assert_eq!(exchange(&s.a).receipts_received, 1); // entry 0
    submit_one(&s.b, &s.communities[0]);
    submit_one(&s.b, &s.communities[1]);
    assert_eq!(exchange(&s.b).receipts_received, 2); // entries 1, 2
    // A checks the chain: it walks entries 0..2 and keeps entry 2 as its checkpoint.
    let r = exchange(&s.a);
    assert_eq!(r.chain.state, ChainState::Consistent, "{r:?}");
    assert_eq!(r.chain.chain_length, 3);
    assert_eq!(s.a.store.chain_checkpoint().unwrap().unwrap().0, 2);

    // The operator rewrites B's entry 1 and re-links the chain after it. Internally the chain
    // is valid — verify-chain finds nothing, the running server signs the new head — and A's
    // own entry 0 is untouched, so checking only A's receipt would pass.
    let data = s.server.data.clone();
    s.server.kill();
    rewrite_and_rechain(&data, 1);
    let (ok, out) = verify_chain(&data, &[]);
    assert!(ok, "the rewritten chain is internally valid: {out}");
    s.server.restart();

    let r = exchange(&s.a);
    assert_eq!(r.chain.state, ChainState::Rewritten, "{r:?}");
    assert!(r.chain.detail.contains("entry 2"), "{}", r.chain.detail);
    // B, which signed entry 1, sees it through its own receipt too.
    assert_eq!(exchange(&s.b).chain.state, ChainState::Rewritten);
}

#[test]
fn newest_entries_removed_are_detected_by_a_device_that_verified_them() {
    if common::skip_on_postgres("deletes entries from the server's SQLite file") {
        return;
    }
    let mut s = setup();
    submit_one(&s.a, &s.communities[0]);
    assert_eq!(exchange(&s.a).receipts_received, 1); // entry 0
    submit_one(&s.b, &s.communities[0]);
    assert_eq!(exchange(&s.b).receipts_received, 1); // entry 1
    assert_eq!(exchange(&s.a).chain.state, ChainState::Consistent);
    // B's entry (the newest) is deleted: a shorter chain, internally valid, that still holds
    // A's receipt. A verified entry 1 before, so it notices.
    let data = s.server.data.clone();
    s.server.kill();
    tamper_with(&data, "DELETE FROM chain_entries WHERE idx = 1");
    assert!(verify_chain(&data, &[]).0);
    s.server.restart();
    let r = exchange(&s.a);
    assert_eq!(r.chain.state, ChainState::Truncated, "{r:?}");
    assert!(
        r.chain.detail.contains("verified entry 1"),
        "{}",
        r.chain.detail
    );
}
