//! What the document rules cost (docs/inspection-document.md, "Rules"), against automerge's own
//! work on the same documents in the same run: loading saved bytes with automerge alone is the
//! baseline; `InspectionDoc::load` adds the schema check; `check_write` is the server's judgement
//! of one request (an answer edit and the submission) on a full inspection. Prints a table.
//!
//!   cargo bench -p fenlei-core --bench rules
//!   FENLEI_BENCH_DOCS=2000 cargo bench -p fenlei-core --bench rules

use fenlei_core::docrules::{Writer, WriterRole};
use fenlei_core::inspection::{
    EditContext, InspectionDoc, InspectionKind, InspectionStatus, NewInspection, check_write,
};
use fenlei_core::sample::{self, SampleRng};
use fenlei_core::standard::Standard;
use std::time::{Duration, Instant};

const DEVICE: &str = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b";

fn main() {
    let n: usize = std::env::var("FENLEI_BENCH_DOCS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let standard = Standard::from_toml_str(sample::STANDARD_TOML).expect("sample standard");
    let mut rng = SampleRng::new(11);
    let me = EditContext::by("li.ming");
    // Full inspections (every item answered), each with its request: one more answer, then the
    // submission.
    let docs: Vec<(Vec<u8>, InspectionDoc)> = (0..n)
        .map(|i| {
            let mut doc = InspectionDoc::create(
                &format!("insp-{i}"),
                &NewInspection {
                    community_id: "c-1".into(),
                    standard_id: standard.id.clone(),
                    standard_version: standard.version.clone(),
                    kind: InspectionKind::DailyPatrol,
                    co_inspectors: vec![],
                },
                DEVICE,
                "li.ming",
                1_790_000_000_000,
            )
            .unwrap();
            let answers = sample::simulated_answers(&standard, &mut rng);
            let (last, rest) = answers.split_last().unwrap();
            for (t, a) in rest.iter().enumerate() {
                doc.set_answer(a, &me, 1_790_000_000_001 + t as i64)
                    .unwrap();
            }
            let stored = doc.save();
            doc.set_answer(last, &me, 1_790_000_100_000).unwrap();
            doc.set_status(InspectionStatus::Submitted, &me, None, 1_790_000_100_001)
                .unwrap();
            (stored, doc)
        })
        .collect();

    let mut bare = Vec::with_capacity(n);
    let mut walked = Vec::with_capacity(n);
    let mut load = Vec::with_capacity(n);
    let mut judge = Vec::with_capacity(n);
    let writer = Writer {
        user_id: "li.ming",
        device_id: DEVICE,
        role: WriterRole::Inspector,
    };
    for (i, (stored, after)) in docs.iter().enumerate() {
        let id = format!("insp-{i}");
        let t = Instant::now();
        let plain = automerge::AutoCommit::load(stored).unwrap();
        bare.push(t.elapsed());
        drop(plain);
        let t = Instant::now();
        let plain = fenlei_core::guard::load_automerge(&id, stored).unwrap();
        walked.push(t.elapsed());
        drop(plain);
        let t = Instant::now();
        let mut before = InspectionDoc::load(&id, stored, DEVICE).unwrap();
        load.push(t.elapsed());
        let before_read = before.read().unwrap();
        let heads = before.heads();
        let mut after = after.clone();
        let changes = after.automerge().get_changes(&heads);
        let t = Instant::now();
        check_write(
            Some(&before_read),
            &after,
            &changes,
            &writer,
            Some(&standard),
        )
        .unwrap();
        judge.push(t.elapsed());
    }
    let (b, w, l, j) = (
        median(&mut bare),
        median(&mut walked),
        median(&mut load),
        median(&mut judge),
    );
    println!(
        "| what ({n} inspections of {} items, median) | time | ratio to automerge's load |",
        standard.items().count()
    );
    println!("|---|---:|---:|");
    println!(
        "| automerge load of the saved bytes (baseline) | {} | 1.00× |",
        us(b)
    );
    println!(
        "| + the untrusted-bytes chunk walk (`load_automerge`) | {} | {:.2}× |",
        us(w),
        ratio(w, b)
    );
    println!(
        "| + the schema (`InspectionDoc::load`) | {} | {:.2}× |",
        us(l),
        ratio(l, b)
    );
    println!(
        "| `check_write` of one request (an answer + submit) | {} | {:.2}× |",
        us(j),
        ratio(j, b)
    );
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-12)
}
