//! Store benchmarks. Prints a markdown table; compares against a bare rusqlite
//! insert measured in the same run, since absolute times on shared machines are noisy.
//!
//!   cargo bench -p fenlei-core --bench store            # full run (10,000 inspections)
//!   FENLEI_BENCH_INSPECTIONS=2000 cargo bench -p fenlei-core --bench store

use fenlei_core::answer::ItemAnswer;
use fenlei_core::community::parse_csv;
use fenlei_core::inspection::{
    EditContext, InspectionDoc, InspectionKind, InspectionStatus, NewInspection,
};
use fenlei_core::sample::{self, SampleRng};
use fenlei_core::scoring;
use fenlei_core::standard::Standard;
use fenlei_core::store::{InspectionFilter, Store};
use rusqlite::{Connection, params};
use std::path::Path;
use std::time::{Duration, Instant};

fn main() {
    let inspections: usize = std::env::var("FENLEI_BENCH_INSPECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let standard = Standard::from_toml_str(sample::STANDARD_TOML).expect("sample standard");
    let mut rows: Vec<(String, String, String)> = Vec::new();
    let mut row =
        |what: &str, value: String, note: &str| rows.push((what.into(), value, note.into()));

    // --- Record one answer vs a bare insert of the same row --------------------------------
    let (ours, bare) = record_answer_vs_bare_insert(dir.path(), &standard, 3_000);
    row(
        "record one answer: median",
        ms(median(&ours)),
        "API → automerge change → projection → SQLite commit",
    );
    row("record one answer: p99", ms(p99(&ours)), "goal < 2 ms");
    row(
        "bare rusqlite insert: median",
        ms(median(&bare)),
        "same row, same pragmas (WAL, synchronous=FULL)",
    );
    row("bare rusqlite insert: p99", ms(p99(&bare)), "");
    row(
        "ratio median (ours / bare)",
        format!("{:.2}×", ratio(median(&ours), median(&bare))),
        "goal within 3×",
    );
    row(
        "ratio p99 (ours / bare)",
        format!("{:.2}×", ratio(p99(&ours), p99(&bare))),
        "",
    );

    // --- Scoring --------------------------------------------------------------------------
    let mut rng = SampleRng::new(7);
    let answer_sets: Vec<Vec<ItemAnswer>> = (0..1_000)
        .map(|_| sample::simulated_answers(&standard, &mut rng))
        .collect();
    let t = Instant::now();
    let mut sum = 0.0;
    for answers in &answer_sets {
        sum += scoring::score(&standard, answers).total;
    }
    row(
        "score one inspection (25 items)",
        us(t.elapsed() / answer_sets.len() as u32),
        &format!("mean of 1,000 (checksum {sum:.0})"),
    );

    // --- CSV import of 3,000 communities ----------------------------------------------------
    let csv = city_of(3_000);
    let store = Store::open(dir.path().join("import.sqlite")).expect("store");
    let t = Instant::now();
    let n = store
        .import_communities_csv(csv.as_bytes())
        .expect("import");
    row(
        "import 3,000 communities (CSV → SQLite)",
        ms(t.elapsed()),
        &format!("{n} rows, one transaction"),
    );
    drop(store);

    // --- A store with many inspections ------------------------------------------------------
    let path = dir.path().join("big.sqlite");
    let (build_time, community) = build_big_store(&path, &standard, inspections);
    row(
        &format!("fill: receive {inspections} inspection documents"),
        secs(build_time),
        "apply_document_bytes, one transaction each",
    );
    let size = ["", "-wal"]
        .iter()
        .map(|s| {
            std::fs::metadata(format!("{}{s}", path.display()))
                .map(|m| m.len())
                .unwrap_or(0)
        })
        .sum::<u64>();
    row(
        "database size",
        format!("{:.1} MB", size as f64 / 1e6),
        &format!(
            "{:.1} KB per inspection",
            size as f64 / 1e3 / inspections as f64
        ),
    );

    let mut opens = Vec::new();
    for _ in 0..15 {
        let t = Instant::now();
        let store = Store::open(&path).expect("open");
        let list = store
            .list_inspections(&InspectionFilter {
                community_id: Some(community.clone()),
                limit: 50,
                ..Default::default()
            })
            .expect("list");
        assert_eq!(list.len(), 50.min(list.len()));
        opens.push(t.elapsed());
    }
    row(
        &format!("open store + list 50 newest of one community ({inspections} inspections)"),
        ms(median(&opens)),
        "median of 15; goal < 20 ms",
    );

    let store = Store::open(&path).expect("open");
    let mut queries = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        store
            .list_inspections(&InspectionFilter {
                community_id: Some(community.clone()),
                limit: 50,
                ..Default::default()
            })
            .expect("list");
        queries.push(t.elapsed());
    }
    row(
        "list 50 newest of one community (warm)",
        ms(median(&queries)),
        "median of 200",
    );
    let t = Instant::now();
    let trend = store.score_trend(&community, 12).expect("trend");
    row(
        "community score trend (12 points)",
        ms(t.elapsed()),
        &format!("{} points", trend.len()),
    );
    let t = Instant::now();
    let near = store
        .nearest_communities(
            fenlei_core::geo::LatLon {
                lat: 40.84,
                lon: 111.70,
            },
            fenlei_core::geo::CoordSystem::Wgs84,
            10,
        )
        .expect("near");
    row(
        "10 nearest communities",
        ms(t.elapsed()),
        &format!("{} found", near.len()),
    );

    reset_peak_rss();
    let rss_before = current_rss_kb();
    let t = Instant::now();
    let rebuilt = store.rebuild_projection().expect("rebuild");
    row(
        &format!("rebuild whole projection ({rebuilt} documents)"),
        secs(t.elapsed()),
        &format!(
            "{:.0} documents/s",
            rebuilt as f64 / t.elapsed().as_secs_f64()
        ),
    );
    row(
        "peak RSS during rebuild",
        format!("{:.1} MB", peak_rss_kb() as f64 / 1024.0),
        &format!(
            "{:.1} MB before it: documents are loaded one at a time",
            rss_before as f64 / 1024.0
        ),
    );
    row(
        "peak RSS of the whole bench process",
        format!("{:.1} MB", peak_rss_kb_lifetime() as f64 / 1024.0),
        "",
    );

    println!("\n## fenlei-core store benchmark\n");
    println!("| measurement | value | note |");
    println!("|---|---:|---|");
    for (what, value, note) in rows {
        println!("| {what} | {value} | {note} |");
    }
}

fn record_answer_vs_bare_insert(
    dir: &Path,
    standard: &Standard,
    n: usize,
) -> (Vec<Duration>, Vec<Duration>) {
    let store = Store::open(dir.join("record.sqlite")).expect("store");
    sample::load_into(&store).expect("sample data");
    let community = parse_csv(sample::CITY_CSV.as_bytes()).expect("csv")[0]
        .id
        .clone();
    let new = NewInspection {
        community_id: community,
        standard_id: standard.id.clone(),
        standard_version: standard.version.clone(),
        kind: InspectionKind::DailyPatrol,
        co_inspectors: vec![],
    };
    let mut rng = SampleRng::new(42);
    let ctx = EditContext::by("li.ming");
    let mut answers = Vec::new();
    while answers.len() < n {
        answers.extend(sample::simulated_answers(standard, &mut rng));
    }
    // A fresh inspection every 60 answers, as on a phone (a document grows only so far).
    let mut ours = Vec::with_capacity(n);
    let mut id = String::new();
    for (i, answer) in answers.iter().take(n).enumerate() {
        if i % 60 == 0 {
            id = store.create_inspection(&new, "li.ming").expect("create");
        }
        let t = Instant::now();
        store.record_answer(&id, answer, &ctx).expect("record");
        ours.push(t.elapsed());
    }

    let conn = Connection::open(dir.join("bare.sqlite")).expect("bare");
    conn.pragma_update(None, "journal_mode", "WAL")
        .expect("wal");
    conn.pragma_update(None, "synchronous", "FULL")
        .expect("sync");
    conn.execute_batch(
        "CREATE TABLE item_answers (inspection_id TEXT NOT NULL, item_code TEXT NOT NULL, value_kind TEXT NOT NULL,
             value_json TEXT NOT NULL, note TEXT, answered_by TEXT NOT NULL, answered_at INTEGER NOT NULL,
             deduction REAL, bonus REAL, in_conflict INTEGER NOT NULL DEFAULT 0,
             PRIMARY KEY (inspection_id, item_code)) STRICT;",
    )
    .expect("table");
    let mut bare = Vec::with_capacity(n);
    for (i, answer) in answers.iter().take(n).enumerate() {
        let t = Instant::now();
        conn.execute(
            "INSERT OR REPLACE INTO item_answers VALUES (?1, ?2, ?3, ?4, ?5, 'li.ming', ?6, 0, 0, 0)",
            params![
                format!("inspection-{}", i / 60),
                answer.item_code,
                answer.value.kind_name(),
                serde_json::to_string(&answer.value).unwrap_or_default(),
                answer.note,
                i as i64
            ],
        )
        .expect("insert");
        bare.push(t.elapsed());
    }
    (ours, bare)
}

/// Fills a store the way a supervisor's device is filled: documents made elsewhere arrive and
/// are applied one by one. Returns the time and the busiest community.
fn build_big_store(path: &Path, standard: &Standard, n: usize) -> (Duration, String) {
    let store = Store::open(path).expect("store");
    sample::load_into(&store).expect("sample data");
    let communities: Vec<String> = parse_csv(sample::CITY_CSV.as_bytes())
        .expect("csv")
        .into_iter()
        .map(|c| c.id)
        .collect();
    let mut rng = SampleRng::new(10_000);
    let device = "0192f000-0000-7000-8000-0000000000aa";
    let day = 86_400_000i64;
    let t0 = 1_767_225_600_000i64; // 2026-01-01
    let started = Instant::now();
    for i in 0..n {
        // Communities are visited unevenly: the first one about weekly-daily, the rest spread out.
        let community = if i % 20 == 0 {
            &communities[0]
        } else {
            &communities[rng.below(communities.len() as u64) as usize]
        };
        let at = t0 + (i as i64 * 300 * day) / n as i64;
        let new = NewInspection {
            community_id: community.clone(),
            standard_id: standard.id.clone(),
            standard_version: standard.version.clone(),
            kind: InspectionKind::DailyPatrol,
            co_inspectors: vec![],
        };
        let id = format!("{:08}-0000-7000-8000-{:012}", i, i);
        let mut doc = InspectionDoc::create(&id, &new, device, "li.ming", at).expect("create");
        for (k, answer) in sample::simulated_answers(standard, &mut rng)
            .iter()
            .enumerate()
        {
            doc.set_answer(answer, &EditContext::by("li.ming"), at + k as i64 * 30_000)
                .expect("answer");
        }
        doc.set_status(
            InspectionStatus::Submitted,
            &EditContext::by("li.ming"),
            None,
            at + 3_600_000,
        )
        .expect("submit");
        store.apply_document_bytes(&id, &doc.save()).expect("apply");
    }
    (started.elapsed(), communities[0].clone())
}

/// `n` communities: the sample city repeated with fresh ids, as a big city's list would be.
fn city_of(n: usize) -> String {
    let base = sample::CITY_CSV.trim_start_matches('\u{feff}');
    let mut lines = base.lines();
    let header = lines.next().unwrap_or_default();
    let body: Vec<&str> = lines.filter(|l| !l.trim().is_empty()).collect();
    let mut out = String::from(header);
    out.push('\n');
    for i in 0..n {
        let line = body[i % body.len()];
        let (_, rest) = line.split_once(',').unwrap_or((line, ""));
        out.push_str(&format!("BENCH-{i:05},{rest}\n"));
    }
    out
}

fn median(v: &[Duration]) -> Duration {
    percentile(v, 0.5)
}
fn p99(v: &[Duration]) -> Duration {
    percentile(v, 0.99)
}
fn percentile(v: &[Duration], q: f64) -> Duration {
    let mut s = v.to_vec();
    s.sort();
    s[((s.len() as f64 - 1.0) * q).round() as usize]
}
fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}
fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}
fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}
fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
fn current_rss_kb() -> u64 {
    status_kb("VmRSS:")
}
fn peak_rss_kb() -> u64 {
    status_kb("VmHWM:")
}
static LIFETIME_PEAK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// Resets the kernel's peak-RSS mark (Linux: clear_refs 5) so a phase's own peak can be read.
fn reset_peak_rss() {
    LIFETIME_PEAK.fetch_max(peak_rss_kb(), std::sync::atomic::Ordering::SeqCst);
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
fn peak_rss_kb_lifetime() -> u64 {
    LIFETIME_PEAK
        .load(std::sync::atomic::Ordering::SeqCst)
        .max(peak_rss_kb())
}
