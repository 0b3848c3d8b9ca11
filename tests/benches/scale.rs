//! Scale-out benchmark (docs/benchmarks.md "Scale-out"): documents synced per second and
//! p99 device latency with FENLEI_BENCH_DEVICES (200) devices pushing FENLEI_BENCH_PER_DEVICE (5)
//! inspections each at once, on three set-ups in the same run — the embedded SQLite server (the
//! baseline), one server on PostgreSQL, two servers on one PostgreSQL with the devices split
//! between them (alternating) — plus an initial sync of FENLEI_BENCH_INITIAL (1000) inspections to
//! a fresh supervisor device and a no-change sync, SQLite vs PostgreSQL. Prints tables with ratios.
//!
//! PostgreSQL: FENLEI_BENCH_DATABASE_URL (a cluster whose databases the bench may create), else a
//! throwaway cluster started with scripts/postgres.sh in a temp folder (stopped at the end).
//! Run: cargo bench -p fenlei-e2e --bench scale

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use fenlei_core::inspection::{
    EditContext, InspectionDoc, InspectionKind, InspectionStatus, NewInspection,
};
use fenlei_core::progress::{CancelToken, NoProgress};
use fenlei_core::sample::{self, SampleRng};
use fenlei_core::sync::{SyncClient, SyncOptions, SyncReport};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A PostgreSQL cluster started for this run, stopped when dropped.
struct Cluster {
    url: String,
    dir: Option<PathBuf>,
}

fn postgres_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/postgres.sh")
}

impl Cluster {
    fn get(tmp: &Path) -> Cluster {
        if let Ok(url) = std::env::var("FENLEI_BENCH_DATABASE_URL")
            && !url.trim().is_empty()
        {
            return Cluster { url, dir: None };
        }
        let dir = tmp.join("pg");
        let out = Command::new("bash")
            .arg(postgres_script())
            .arg("start")
            .arg(&dir)
            .output()
            .expect("run scripts/postgres.sh");
        assert!(
            out.status.success(),
            "scripts/postgres.sh start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .last()
            .expect("postgres.sh prints the URL")
            .trim()
            .to_string();
        Cluster {
            url,
            dir: Some(dir),
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = Command::new("bash")
                .arg(postgres_script())
                .arg("stop")
                .arg(dir)
                .status();
        }
    }
}

/// Records `n` submitted inspections on the device (in memory, stored in batches: the benchmark
/// measures sync, not the phone's disk) — the same documents as the sync bench's.
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

fn uuid_v7() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    let n = N.fetch_add(1, Ordering::SeqCst);
    format!("01a30000-0000-7000-8000-{n:012x}")
}

fn timed(device: &Device, url: &str) -> (SyncReport, Duration) {
    let client = SyncClient::with_options(url, &device.token, SyncOptions::default()).unwrap();
    let t = Instant::now();
    let r = client
        .sync(&device.store, &NoProgress, &CancelToken::new())
        .unwrap();
    assert!(r.rejected.is_empty(), "{:?}", r.rejected);
    (r, t.elapsed())
}

fn rss_mb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        / 1024
}

struct Push {
    label: String,
    docs_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    peak_rss_mb: u64,
}

struct Quiet {
    label: String,
    initial: (SyncReport, Duration),
    nochange: (SyncReport, Duration),
    /// Database growth per inspection pushed (documents, feed, projection, indexes).
    bytes_per_inspection: f64,
    /// Documents the fresh device received: the inspections and the tasks opened from them.
    documents: usize,
}

/// The server database's size: the SQLite file with its WAL, or PostgreSQL's database size.
fn database_bytes(inst: &Instances) -> u64 {
    match &inst.database_url {
        Some(url) => {
            let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
            c.batch_execute("CHECKPOINT").ok();
            let n: i64 = c
                .query_one("SELECT pg_database_size(current_database())", &[])
                .unwrap()
                .get(0);
            n as u64
        }
        None => ["fenlei-server.sqlite", "fenlei-server.sqlite-wal"]
            .iter()
            .filter_map(|f| std::fs::metadata(inst.data.join(f)).ok())
            .map(|m| m.len())
            .sum(),
    }
}

/// The concurrent push on `instances`: every device enrolled and holding the reference data, then
/// all of them push their inspections at once, each through instance `n % instances`.
fn concurrent_push(
    label: &str,
    root: &Path,
    database_url: Option<String>,
    instances: usize,
    devices: usize,
    per_device: usize,
) -> Push {
    let data = root.join(label.replace(' ', "-"));
    let inst = Instances::start(&data, database_url, instances);
    let cs = fenlei_core::community::parse_csv(fenlei_core::sample::CITY_CSV.as_bytes()).unwrap();
    let phones: Vec<(Device, String)> = (0..devices)
        .map(|n| {
            let user = format!("dev.{n}");
            let community = &cs[n % cs.len()].id;
            inst.admin(&["add-user", "--id", &user, "--role", "inspector"]);
            inst.admin(&["assign", "--user", &user, "--community", community]);
            let url = inst.url(n % instances);
            let d = inst.enroll(n % instances, &data, &user);
            d.sync_via(&url);
            record(
                &d,
                std::slice::from_ref(community),
                per_device,
                3 + n as u64,
            );
            (d, url)
        })
        .collect();
    let t = Instant::now();
    let mut times: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = phones
            .iter()
            .map(|(d, url)| s.spawn(move || timed(d, url).1))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let wall = t.elapsed();
    times.sort();
    let p99 = times[((times.len() as f64 * 0.99).ceil() as usize)
        .saturating_sub(1)
        .min(times.len() - 1)];
    eprintln!(
        "{label}: {} inspections in {wall:?}, slowest device {:?}",
        devices * per_device,
        times[times.len() - 1]
    );
    Push {
        label: label.to_string(),
        docs_per_s: (devices * per_device) as f64 / wall.as_secs_f64(),
        p50_ms: times[times.len() / 2].as_secs_f64() * 1000.0,
        p99_ms: p99.as_secs_f64() * 1000.0,
        peak_rss_mb: inst.servers.iter().map(|s| rss_mb(s.pid())).sum(),
    }
}

/// An inspector pushes `initial` inspections; a fresh supervisor device receives them all
/// (initial sync); the inspector's device syncs again with nothing changed.
fn initial_and_quiet(
    label: &str,
    root: &Path,
    database_url: Option<String>,
    initial: usize,
) -> Quiet {
    let data = root.join(format!("{}-initial", label.replace(' ', "-")));
    let inst = Instances::start(&data, database_url, 1);
    let (street, communities, district) = sample_places();
    inst.admin(&["add-user", "--id", "insp", "--role", "inspector"]);
    inst.admin(&["assign", "--user", "insp", "--street", &street]);
    inst.admin(&["add-user", "--id", "sup", "--role", "supervisor"]);
    inst.admin(&["assign", "--user", "sup", "--district", &district]);
    let url = inst.url(0);
    let insp = inst.enroll(0, &data, "insp");
    insp.sync_via(&url);
    record(&insp, &communities, initial, 1);
    let before = database_bytes(&inst);
    timed(&insp, &url);
    let bytes_per_inspection = database_bytes(&inst).saturating_sub(before) as f64 / initial as f64;
    let fresh = inst.enroll(0, &data, "sup");
    let first = timed(&fresh, &url);
    assert_eq!(inspection_count(&fresh.store, initial), initial);
    // The rest are the rectification tasks the standard's rules opened from findings.
    let documents = fresh.store.document_ids().unwrap().len();
    let quiet = timed(&insp, &url);
    Quiet {
        label: label.to_string(),
        initial: first,
        nochange: quiet,
        bytes_per_inspection,
        documents,
    }
}

fn ratio(x: f64, baseline: f64) -> String {
    if baseline <= 0.0 {
        "-".into()
    } else {
        format!("{:.2}×", x / baseline)
    }
}

fn main() {
    let devices = env("FENLEI_BENCH_DEVICES", 200);
    let per_device = env("FENLEI_BENCH_PER_DEVICE", 5);
    let initial = env("FENLEI_BENCH_INITIAL", 1000);
    let tmp = tempfile::tempdir().unwrap();
    let cluster = Cluster::get(tmp.path());
    let db = |_: &str| Some(fresh_database(&cluster.url));

    let pushes = [
        concurrent_push(
            "SQLite, 1 instance",
            tmp.path(),
            None,
            1,
            devices,
            per_device,
        ),
        concurrent_push(
            "PostgreSQL, 1 instance",
            tmp.path(),
            db("push1"),
            1,
            devices,
            per_device,
        ),
        concurrent_push(
            "PostgreSQL, 2 instances",
            tmp.path(),
            db("push2"),
            2,
            devices,
            per_device,
        ),
    ];
    let quiets = [
        initial_and_quiet("SQLite", tmp.path(), None, initial),
        initial_and_quiet("PostgreSQL", tmp.path(), db("initial"), initial),
    ];

    let base = &pushes[0];
    println!(
        "\nScale-out: {devices} devices × {per_device} inspections pushed at once (real server processes, loopback HTTP)\n"
    );
    println!(
        "| set-up | documents/s | device sync p50 | device sync p99 | server peak RSS | throughput vs SQLite | p99 vs SQLite |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for p in &pushes {
        println!(
            "| {} | {:.0} | {:.0} ms | {:.0} ms | {} MB | {} | {} |",
            p.label,
            p.docs_per_s,
            p.p50_ms,
            p.p99_ms,
            p.peak_rss_mb,
            ratio(p.docs_per_s, base.docs_per_s),
            ratio(p.p99_ms, base.p99_ms)
        );
    }
    println!(
        "| two instances vs one, PostgreSQL | {} | | {} | | | |",
        ratio(pushes[2].docs_per_s, pushes[1].docs_per_s),
        ratio(pushes[2].p99_ms, pushes[1].p99_ms)
    );

    println!("\n| scenario | round trips | bytes sent | bytes received | time | time vs SQLite |");
    println!("|---|---:|---:|---:|---:|---:|");
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    for q in &quiets {
        for (name, (r, d), (_, b)) in [
            (
                format!(
                    "initial sync, {initial} inspections + {} rectification tasks",
                    q.documents - initial
                ),
                &q.initial,
                &quiets[0].initial,
            ),
            (
                format!("no-change sync, {initial} inspections on the device"),
                &q.nochange,
                &quiets[0].nochange,
            ),
        ] {
            println!(
                "| {name}: {} | {} | {} | {} | {:.1} ms | {} |",
                q.label,
                r.round_trips,
                r.bytes_sent,
                r.bytes_received,
                ms(*d),
                ratio(ms(*d), ms(*b))
            );
        }
    }
    println!("\n| stored size | SQLite | PostgreSQL |");
    println!("|---|---:|---:|");
    println!(
        "| server database growth per inspection ({initial} pushed) | {:.0} bytes | {:.0} bytes |",
        quiets[0].bytes_per_inspection, quiets[1].bytes_per_inspection
    );
    if let Some((original, upload, thumb)) = photo_sizes(tmp.path()) {
        println!(
            "| blobs of one phone photo (iPhone 6, 3264×2448): original + 1600 px rendition + thumbnail | {original} + {upload} + {thumb} bytes | same |"
        );
    }
}

/// The blob sizes of one real phone photo after ingest (from the shared corpus, when present).
fn photo_sizes(tmp: &Path) -> Option<(u64, u64, u64)> {
    let path = fenlei_e2e::photos::corpus_jpegs()
        .into_iter()
        .find(|p| p.ends_with("phone/iphone6_gps.jpg"))?;
    let store = fenlei_core::store::Store::open(tmp.join("photo.sqlite")).unwrap();
    store.import_standard(sample::STANDARD_TOML).unwrap();
    store
        .import_communities_csv(sample::CITY_CSV.as_bytes())
        .unwrap();
    let (_, communities, _) = sample_places();
    let id = store
        .create_inspection(
            &NewInspection {
                community_id: communities[0].clone(),
                standard_id: "hohhot-residential".into(),
                standard_version: "2026.1".into(),
                kind: InspectionKind::DailyPatrol,
                co_inspectors: vec![],
            },
            "someone",
        )
        .unwrap();
    let item = store
        .standard("hohhot-residential", "2026.1")
        .unwrap()
        .items()
        .next()
        .unwrap()
        .code
        .clone();
    let media = fenlei_core::media::MediaStore::open(tmp.join("photo-media")).unwrap();
    let r = store
        .attach_photo(&media, &id, &item, &path, None, "someone")
        .unwrap()
        .record;
    Some((
        r.bytes,
        r.upload.map_or(0, |x| x.bytes),
        r.thumbnail.map_or(0, |x| x.bytes),
    ))
}
