//! Sync benchmarks against a real server process on loopback, each beside its baseline in the
//! same run: plain per-document automerge sync (one request per document message, no change
//! feed). Prints a table. Sizes (env): FENLEI_BENCH_INITIAL (1000 inspections),
//! FENLEI_BENCH_NOCHANGE (10000 documents), FENLEI_BENCH_DEVICES (200), FENLEI_BENCH_PER_DEVICE (5).
//! Run: cargo bench -p fenlei-e2e --bench sync

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use fenlei_core::inspection::{
    EditContext, InspectionDoc, InspectionKind, InspectionStatus, NewInspection,
};
use fenlei_core::progress::{CancelToken, NoProgress};
use fenlei_core::sample::{self, SampleRng};
use fenlei_core::sync::{SyncOptions, SyncReport};
use std::time::{Duration, Instant};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn baseline() -> SyncOptions {
    SyncOptions {
        batch_docs: 1,
        every_document: true,
        ..Default::default()
    }
}

/// Records `n` inspections on the device (built in memory, stored in batches of one
/// transaction each: the benchmark measures sync, not the phone's disk).
fn record(device: &Device, communities: &[String], n: usize, seed: u64) {
    let standard = device
        .store
        .standard("hohhot-residential", "2026.1")
        .unwrap();
    let mut rng = SampleRng::new(seed);
    let ctx = EditContext::by(device.user.as_str());
    let mut batch = Vec::new();
    for k in 0..n {
        let id = uuid_v7();
        let new = NewInspection {
            community_id: communities[k % communities.len()].clone(),
            standard_id: standard.id.clone(),
            standard_version: standard.version.clone(),
            kind: InspectionKind::DailyPatrol,
            co_inspectors: vec![],
        };
        let now = device.store.now_ms();
        let mut doc =
            InspectionDoc::create(&id, &new, device.store.device_id(), &device.user, now).unwrap();
        for a in sample::simulated_answers(&standard, &mut rng) {
            doc.set_answer(&a, &ctx, now).unwrap();
        }
        doc.set_status(InspectionStatus::Submitted, &ctx, None, now)
            .unwrap();
        batch.push((id, doc.save()));
        if batch.len() == 500 {
            device.store.apply_documents(&batch).unwrap();
            batch.clear();
        }
    }
    device.store.apply_documents(&batch).unwrap();
}

/// Distinct UUID-shaped ids without another dependency (the store uses UUIDv7).
fn uuid_v7() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    let n = N.fetch_add(1, Ordering::SeqCst);
    format!("01a20000-0000-7000-8000-{n:012x}")
}

fn timed(device: &Device, options: SyncOptions) -> (SyncReport, Duration) {
    let client = device.client_with(options);
    let t = Instant::now();
    let r = client
        .sync(&device.store, &NoProgress, &CancelToken::new())
        .unwrap();
    assert!(r.rejected.is_empty(), "{:?}", r.rejected);
    (r, t.elapsed())
}

fn ratio(a: f64, b: f64) -> String {
    if a <= 0.0 {
        "-".into()
    } else {
        format!("{:.1}×", b / a)
    }
}

fn row(name: &str, r: &SyncReport, d: Duration) -> String {
    format!(
        "| {name} | {} | {} | {} | {:.1} ms |",
        r.round_trips,
        r.bytes_sent,
        r.bytes_received,
        d.as_secs_f64() * 1000.0
    )
}

fn rss_kb(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let get = |k: &str| {
        status
            .lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (get("VmRSS:"), get("VmHWM:"))
}

fn main() {
    let initial = env("FENLEI_BENCH_INITIAL", 1000);
    let nochange = env("FENLEI_BENCH_NOCHANGE", 10_000);
    let devices = env("FENLEI_BENCH_DEVICES", 200);
    let per_device = env("FENLEI_BENCH_PER_DEVICE", 5);
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let (street, communities, district) = sample_places();
    server.admin(&["add-user", "--id", "insp", "--role", "inspector"]);
    server.admin(&["assign", "--user", "insp", "--street", &street]);
    server.admin(&["add-user", "--id", "sup", "--role", "supervisor"]);
    server.admin(&["assign", "--user", "sup", "--district", &district]);
    let mut out = vec![
        "| scenario | round trips | bytes sent | bytes received | time |".to_string(),
        "|---|---:|---:|---:|---:|".to_string(),
    ];

    // 1. Initial sync of `initial` inspections to a fresh supervisor device.
    let insp = Device::enroll(&server, dir.path(), "insp");
    insp.sync();
    record(&insp, &communities, initial, 1);
    let (push, push_t) = timed(&insp, SyncOptions::default());
    out.push(row(
        &format!("inspector pushes {initial} new inspections"),
        &push,
        push_t,
    ));
    let fresh = Device::enroll(&server, dir.path(), "sup");
    let (feed, feed_t) = timed(&fresh, SyncOptions::default());
    let plain_dev = Device::enroll(&server, dir.path(), "sup");
    let (plain, plain_t) = timed(&plain_dev, baseline());
    assert_eq!(inspection_count(&fresh.store, initial), initial);
    assert_eq!(inspection_count(&plain_dev.store, initial), initial);
    // Both devices hold the same documents: the inspections and their rule-opened tasks.
    assert_eq!(
        fresh.store.document_ids().unwrap().len(),
        plain_dev.store.document_ids().unwrap().len()
    );
    out.push(row(
        &format!("initial sync, {initial} inspections: feed + batches"),
        &feed,
        feed_t,
    ));
    out.push(row(
        &format!("initial sync, {initial} inspections: baseline (plain, per document)"),
        &plain,
        plain_t,
    ));
    out.push(format!(
        "| ratio baseline / feed | {} | {} | {} | {} |",
        ratio(feed.round_trips as f64, plain.round_trips as f64),
        ratio(feed.bytes_sent as f64, plain.bytes_sent as f64),
        ratio(feed.bytes_received as f64, plain.bytes_received as f64),
        ratio(feed_t.as_secs_f64(), plain_t.as_secs_f64())
    ));

    // 2. No-change sync with `nochange` documents on the device.
    record(&insp, &communities, nochange.saturating_sub(initial), 2);
    insp.sync();
    let (quiet, quiet_t) = timed(&insp, SyncOptions::default());
    let (quiet_plain, quiet_plain_t) = timed(&insp, baseline());
    out.push(row(
        &format!("no-change sync, {nochange} documents: feed"),
        &quiet,
        quiet_t,
    ));
    out.push(row(
        &format!("no-change sync, {nochange} documents: baseline (plain, per document)"),
        &quiet_plain,
        quiet_plain_t,
    ));
    out.push(format!(
        "| ratio baseline / feed | {} | {} | {} | {} |",
        ratio(quiet.round_trips as f64, quiet_plain.round_trips as f64),
        ratio(quiet.bytes_sent as f64, quiet_plain.bytes_sent as f64),
        ratio(
            quiet.bytes_received as f64,
            quiet_plain.bytes_received as f64
        ),
        ratio(quiet_t.as_secs_f64(), quiet_plain_t.as_secs_f64())
    ));

    let others: Vec<String> =
        fenlei_core::community::parse_csv(fenlei_core::sample::CITY_CSV.as_bytes())
            .unwrap()
            .into_iter()
            .filter(|c| c.street != street)
            .map(|c| c.id)
            .collect();
    // 3. `devices` devices each pushing `per_device` inspections at once.
    let mut concurrent = Vec::new();
    for (label, options) in [
        ("feed + batches", SyncOptions::default()),
        ("baseline (plain, per document)", baseline()),
    ] {
        // Each phone's user is assigned one community outside the street used above, so a
        // phone holds its own work only (as a real inspector's phone does).
        let phones: Vec<Device> = (0..devices)
            .map(|n| {
                let user = format!("dev.{label_n}.{n}", label_n = label.len());
                let community = &others[n % others.len()];
                server.admin(&["add-user", "--id", &user, "--role", "inspector"]);
                server.admin(&["assign", "--user", &user, "--community", community]);
                let d = Device::enroll(&server, dir.path(), &user);
                d.sync();
                record(
                    &d,
                    std::slice::from_ref(community),
                    per_device,
                    3 + n as u64,
                );
                d
            })
            .collect();
        let t = Instant::now();
        let mut times: Vec<Duration> = std::thread::scope(|s| {
            let handles: Vec<_> = phones
                .iter()
                .map(|d| {
                    let options = options.clone();
                    s.spawn(move || timed(d, options).1)
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let wall = t.elapsed();
        times.sort();
        let p99 = times[((times.len() as f64 * 0.99).ceil() as usize)
            .saturating_sub(1)
            .min(times.len() - 1)];
        let (rss, hwm) = rss_kb(server.pid());
        concurrent.push(format!(
            "| {devices} devices × {per_device} inspections: {label} | {:.0} inspections/s | p50 {:.0} ms | p99 {:.0} ms | server RSS {} MB (peak {} MB) |",
            (devices * per_device) as f64 / wall.as_secs_f64(),
            times[times.len() / 2].as_secs_f64() * 1000.0,
            p99.as_secs_f64() * 1000.0,
            rss / 1024,
            hwm / 1024
        ));
    }

    println!("\nSync benchmarks (real server process, loopback HTTP)\n");
    for l in &out {
        println!("{l}");
    }
    println!(
        "\n| concurrent push | throughput | device sync p50 | device sync p99 | server memory |"
    );
    println!("|---|---:|---:|---:|---:|");
    for l in &concurrent {
        println!("{l}");
    }
}
