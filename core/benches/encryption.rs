//! Encryption at rest: the cost of SQLCipher on the hot path. Records the same answers into a
//! plain store and an encrypted store in the same run, alternating between them so both see the
//! same disk and load, and prints a markdown table with the ratio (docs/benchmarks.md).
//!
//!   cargo bench -p fenlei-core --bench encryption
//!   FENLEI_BENCH_ANSWERS=600 cargo bench -p fenlei-core --bench encryption

use fenlei_core::answer::ItemAnswer;
use fenlei_core::community::parse_csv;
use fenlei_core::inspection::{EditContext, InspectionKind, NewInspection};
use fenlei_core::sample::{self, SampleRng};
use fenlei_core::standard::Standard;
use fenlei_core::store::{InspectionFilter, Store};
use std::time::{Duration, Instant};

const KEY: [u8; 32] = [0x42; 32];

fn main() {
    let n: usize = std::env::var("FENLEI_BENCH_ANSWERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let standard = Standard::from_toml_str(sample::STANDARD_TOML).expect("sample standard");
    let plain = Store::open(dir.path().join("plain.sqlite")).expect("plain");
    let enc = Store::open_encrypted(dir.path().join("enc.sqlite"), &KEY).expect("encrypted");
    for s in [&plain, &enc] {
        sample::load_into(s).expect("sample data");
    }
    let community = parse_csv(sample::CITY_CSV.as_bytes()).expect("csv")[0]
        .id
        .clone();
    let new = NewInspection {
        community_id: community.clone(),
        standard_id: standard.id.clone(),
        standard_version: standard.version.clone(),
        kind: InspectionKind::DailyPatrol,
        co_inspectors: vec![],
    };
    let mut rng = SampleRng::new(42);
    let mut answers: Vec<ItemAnswer> = Vec::new();
    while answers.len() < n {
        answers.extend(sample::simulated_answers(&standard, &mut rng));
    }
    let ctx = EditContext::by("li.ming");
    let (mut t_plain, mut t_enc) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut id_plain, mut id_enc) = (String::new(), String::new());
    for (i, answer) in answers.iter().take(n).enumerate() {
        if i % 60 == 0 {
            id_plain = plain.create_inspection(&new, "li.ming").expect("create");
            id_enc = enc.create_inspection(&new, "li.ming").expect("create");
        }
        // Alternate which store goes first, so neither always follows the other's fsync.
        let order: [(&Store, &str, &mut Vec<Duration>); 2] = if i % 2 == 0 {
            [
                (&plain, &id_plain, &mut t_plain),
                (&enc, &id_enc, &mut t_enc),
            ]
        } else {
            [
                (&enc, &id_enc, &mut t_enc),
                (&plain, &id_plain, &mut t_plain),
            ]
        };
        for (store, id, times) in order {
            let t = Instant::now();
            store.record_answer(id, answer, &ctx).expect("record");
            times.push(t.elapsed());
        }
    }
    let mut lists = (Vec::new(), Vec::new());
    for _ in 0..200 {
        for (store, times) in [(&plain, &mut lists.0), (&enc, &mut lists.1)] {
            let t = Instant::now();
            store
                .list_inspections(&InspectionFilter {
                    community_id: Some(community.clone()),
                    limit: 50,
                    ..Default::default()
                })
                .expect("list");
            times.push(t.elapsed());
        }
    }
    drop(plain);
    drop(enc);
    let mut opens = (Vec::new(), Vec::new());
    for _ in 0..15 {
        let t = Instant::now();
        drop(Store::open(dir.path().join("plain.sqlite")).expect("open"));
        opens.0.push(t.elapsed());
        let t = Instant::now();
        drop(Store::open_encrypted(dir.path().join("enc.sqlite"), &KEY).expect("open"));
        opens.1.push(t.elapsed());
    }

    println!("| measure ({n} answers, same run) | plain | SQLCipher | ratio |");
    println!("|---|---|---|---|");
    for (what, a, b) in [
        (
            "record one answer: median",
            median(&t_plain),
            median(&t_enc),
        ),
        ("record one answer: p99", p99(&t_plain), p99(&t_enc)),
        (
            "list 50 newest of one community (warm): median",
            median(&lists.0),
            median(&lists.1),
        ),
        (
            "open store: median of 15",
            median(&opens.0),
            median(&opens.1),
        ),
    ] {
        println!(
            "| {what} | {:.3} ms | {:.3} ms | {:.2}× |",
            a.as_secs_f64() * 1e3,
            b.as_secs_f64() * 1e3,
            b.as_secs_f64() / a.as_secs_f64()
        );
    }
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
