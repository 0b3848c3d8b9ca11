//! The Fenlei demo: two inspectors' phones and a supervisor's tablet, each a real SQLite store,
//! exchanging inspection documents the way sync will. Loads the sample standard and city,
//! records inspections (one edited on both phones while apart, with a conflict), goes through
//! review, and prints scores, grades, the conflict and the history.
//!
//! Usage: cargo run --release -p fenlei-core --example demo -- [directory]

use fenlei_core::answer::{AnswerValue, ItemAnswer, OccurrenceCount};
use fenlei_core::geo::{CoordSystem, LatLon};
use fenlei_core::inspection::{
    EditContext, GpsFix, InspectionKind, InspectionStatus, NewInspection,
};
use fenlei_core::sample::{self, SampleRng};
use fenlei_core::standard::{Item, Rule, Standard};
use fenlei_core::store::{InspectionFilter, Store};
use std::path::{Path, PathBuf};
use std::time::Instant;

type DemoResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

fn main() {
    if let Err(e) = run() {
        eprintln!("demo failed: {e}");
        std::process::exit(1);
    }
}

fn fresh_store(dir: &Path, name: &str) -> DemoResult<Store> {
    let path = dir.join(format!("{name}.sqlite"));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let store = Store::open(&path)?;
    sample::load_into(&store)?;
    Ok(store)
}

/// Copies a document from one store to another, as a sync round would.
fn send(from: &Store, to: &Store, id: &str) -> DemoResult {
    to.apply_document_bytes(id, &from.document_bytes(id)?)?;
    Ok(())
}

fn item_of<'a>(s: &'a Standard, kind: &str, nth: usize) -> &'a Item {
    s.items()
        .filter(|i| i.rule.kind_name() == kind)
        .nth(nth)
        .expect("sample standard covers every rule kind")
}

fn with_note(item: &Item, value: AnswerValue, note: &str) -> ItemAnswer {
    ItemAnswer {
        item_code: item.code.clone(),
        value,
        sampled_units: None,
        note: Some(note.to_string()),
    }
}

fn occurrences(item: &Item, count: u32, note: &str) -> ItemAnswer {
    let Rule::PerOccurrence { findings, .. } = &item.rule else {
        unreachable!()
    };
    with_note(
        item,
        AnswerValue::Occurrences {
            counts: vec![OccurrenceCount {
                finding: findings[0].code.clone(),
                count,
            }],
        },
        note,
    )
}

fn run() -> DemoResult {
    let arg = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "target/demo".into());
    // Accept a file path too (the run script's historical argument): use its directory.
    let dir = PathBuf::from(&arg);
    let dir = if dir.extension().is_some() {
        dir.parent().map(Path::to_path_buf).unwrap_or_default()
    } else {
        dir
    };
    std::fs::create_dir_all(&dir)?;

    let started = Instant::now();
    let phone_a = fresh_store(&dir, "phone-li-ming")?;
    let phone_b = fresh_store(&dir, "phone-wang-fang")?;
    let desk = fresh_store(&dir, "supervisor-zhao")?;
    let standard = Standard::from_toml_str(sample::STANDARD_TOML)?;
    println!("Fenlei demo — stores in {}", dir.display());
    println!(
        "  standard: {} v{} ({} items, {} points); city: {} communities; loaded 3 stores in {:.0} ms\n",
        standard.name,
        standard.version,
        standard.items().count(),
        standard.max_points,
        phone_a.community_count()?,
        started.elapsed().as_secs_f64() * 1e3
    );

    // 1. "Nearest to me": the inspector's phone GPS (WGS-84).
    let here = LatLon {
        lat: 40.8420,
        lon: 111.7490,
    };
    println!(
        "Nearest communities to the inspector ({:.4}, {:.4}):",
        here.lat, here.lon
    );
    let near = phone_a.nearest_communities(here, CoordSystem::Wgs84, 3)?;
    for n in &near {
        println!(
            "  {:>6.0} m  {} {} ({} {})",
            n.distance_m,
            n.community.id,
            n.community.name,
            n.community.district,
            n.community.street
        );
    }
    println!();

    let li = EditContext::by("li.ming");
    let wang = EditContext::by("wang.fang");
    let zhao = EditContext::by("zhao.supervisor");
    let new = |community: &str, kind| NewInspection {
        community_id: community.to_string(),
        standard_id: standard.id.clone(),
        standard_version: standard.version.clone(),
        kind,
        co_inspectors: vec![],
    };

    // 2. A daily patrol on phone A, scored item by item, then submitted.
    let first = phone_a.create_inspection(
        &new(&near[0].community.id, InspectionKind::DailyPatrol),
        "li.ming",
    )?;
    phone_a.add_gps_fix(
        &first,
        &GpsFix {
            location: here,
            accuracy_m: Some(6.0),
            altitude_m: None,
            provider: "gps".into(),
            at_ms: phone_a.now_ms(),
            is_mock: false,
        },
        "li.ming",
    )?;
    phone_a.record_answer(
        &first,
        &with_note(
            item_of(&standard, "fixed", 0),
            AnswerValue::Observed,
            "未设置宣传栏",
        ),
        &li,
    )?;
    phone_a.record_answer(
        &first,
        &occurrences(item_of(&standard, "per_occurrence", 0), 3, "3个桶满溢"),
        &li,
    )?;
    if let Rule::Range { min, .. } = item_of(&standard, "range", 0).rule {
        phone_a.record_answer(
            &first,
            &with_note(
                item_of(&standard, "range", 0),
                AnswerValue::Deduction { points: min + 1.0 },
                "公示牌内容过期",
            ),
            &li,
        )?;
    }
    phone_a.record_answer(
        &first,
        &with_note(
            item_of(&standard, "rate_bands", 0),
            AnswerValue::Rate { percent: 76.0 },
            "抽查5个投放点，准确率76%",
        ),
        &li,
    )?;
    phone_a.set_status(&first, InspectionStatus::Submitted, &li, None)?;

    // 3. A cross-check both inspectors work on while apart; they score one item differently.
    let shared = phone_a.create_inspection(
        &new(&near[1].community.id, InspectionKind::CrossCheck),
        "li.ming",
    )?;
    send(&phone_a, &phone_b, &shared)?;
    let disputed = item_of(&standard, "per_occurrence", 0);
    phone_a.record_answer(
        &shared,
        &occurrences(disputed, 2, "东侧投放点2个桶满溢"),
        &li,
    )?;
    phone_a.record_answer(
        &shared,
        &with_note(
            item_of(&standard, "fixed", 0),
            AnswerValue::Compliant,
            "宣传栏完好",
        ),
        &li,
    )?;
    phone_b.record_answer(
        &shared,
        &occurrences(disputed, 4, "西侧投放点4个桶满溢"),
        &wang,
    )?;
    phone_b.record_answer(
        &shared,
        &with_note(
            item_of(&standard, "rate_bands", 0),
            AnswerValue::Rate { percent: 91.0 },
            "准确率91%",
        ),
        &wang,
    )?;
    send(&phone_b, &phone_a, &shared)?;
    send(&phone_a, &phone_b, &shared)?;
    let conflicts = phone_a.conflicts(&shared)?;
    println!(
        "Merged the cross-check from both phones: {} answers, {} conflict(s)",
        phone_a.inspection(&shared)?.answers.len(),
        conflicts.len()
    );
    for c in &conflicts {
        println!("  item {} was set differently:", c.item_code);
        for v in &c.candidates {
            println!(
                "    {:<10} on device {}…  at {}  → {}",
                v.by,
                &v.device_id[..8],
                beijing_time(v.at_ms),
                v.answer.value
            );
        }
    }
    // They agree on 6 after talking it over (2 + 4 at two different drop-off points).
    phone_a.record_answer(
        &shared,
        &occurrences(disputed, 6, "东侧2个+西侧4个桶满溢"),
        &li,
    )?;
    println!(
        "  resolved by li.ming: {} conflict(s) left\n",
        phone_a.conflicts(&shared)?.len()
    );
    phone_a.set_status(&shared, InspectionStatus::Submitted, &li, None)?;
    send(&phone_a, &phone_b, &shared)?;

    // 4. An unannounced visit that finds mixed transport: the veto fails it whatever the total.
    let vetoed = phone_b.create_inspection(
        &new(&near[2].community.id, InspectionKind::Unannounced),
        "wang.fang",
    )?;
    phone_b.record_answer(
        &vetoed,
        &with_note(
            item_of(&standard, "veto", 0),
            AnswerValue::Observed,
            "收运车辆混装混运",
        ),
        &wang,
    )?;
    phone_b.set_status(&vetoed, InspectionStatus::Submitted, &wang, None)?;

    // 5. A week of simulated patrols elsewhere, so rankings have something to rank.
    let mut rng = SampleRng::new(2026);
    let others: Vec<_> = phone_a
        .nearest_communities(here, CoordSystem::Wgs84, 12)?
        .into_iter()
        .skip(3)
        .collect();
    for n in &others {
        let id = phone_a.create_inspection(
            &new(&n.community.id, InspectionKind::DailyPatrol),
            "li.ming",
        )?;
        for answer in sample::simulated_answers(&standard, &mut rng) {
            phone_a.record_answer(&id, &answer, &li)?;
        }
        phone_a.set_status(&id, InspectionStatus::Submitted, &li, None)?;
    }

    // 6. Review on the supervisor's tablet: return the first with a comment, approve the rest.
    for id in phone_a
        .list_inspections(&InspectionFilter {
            limit: 100,
            ..Default::default()
        })?
        .iter()
        .map(|i| &i.id)
    {
        send(&phone_a, &desk, id)?;
    }
    send(&phone_b, &desk, &vetoed)?;
    desk.set_status(
        &first,
        InspectionStatus::Returned,
        &zhao,
        Some("宣传栏扣分请补拍照片"),
    )?;
    send(&desk, &phone_a, &first)?;
    phone_a.record_answer(
        &first,
        &with_note(
            item_of(&standard, "fixed", 0),
            AnswerValue::Observed,
            "未设置宣传栏（已补拍）",
        ),
        &EditContext::amending("li.ming", "按督导要求补充说明"),
    )?;
    phone_a.set_status(&first, InspectionStatus::Submitted, &li, None)?;
    send(&phone_a, &desk, &first)?;
    for summary in desk.list_inspections(&InspectionFilter {
        status: Some(InspectionStatus::Submitted),
        limit: 100,
        ..Default::default()
    })? {
        desk.set_status(&summary.id, InspectionStatus::Approved, &zhao, None)?;
    }

    // 7. What the supervisor sees.
    println!("Inspections on the supervisor's tablet:");
    println!(
        "  {:<14} {:<16} {:<12} {:<9} {:>7}  {:<6} veto",
        "community", "name", "kind", "status", "score", "grade"
    );
    for s in desk.list_inspections(&InspectionFilter {
        limit: 100,
        ..Default::default()
    })? {
        let c = desk.community(&s.community_id)?;
        println!(
            "  {:<14} {:<16} {:<12} {:<9} {:>7.2}  {:<6} {}",
            s.community_id,
            truncate(&c.name, 8),
            s.kind.as_str(),
            s.status.as_str(),
            s.total.unwrap_or(f64::NAN),
            s.grade.unwrap_or_default(),
            if s.vetoed { "一票否决" } else { "" }
        );
    }

    let card = desk.score(&first)?;
    println!(
        "\nScore card of the first inspection ({} v{}):",
        card.standard_id, card.standard_version
    );
    for s in &card.sections {
        println!(
            "  {:<4} {:<12} {:>6.2} / {:>6.2}",
            s.code,
            truncate(&s.name, 10),
            s.subtotal,
            s.max_points
        );
    }
    println!(
        "  total {:.2} / {:.2}, grade {}",
        card.total, card.max_points, card.grade
    );
    let next = Standard::from_toml_str(sample::STANDARD_NEXT_TOML)?;
    let again = desk.rescore(&first, &next.id, &next.version)?;
    println!(
        "  re-scored under v{} for comparison: {:.2} ({})",
        next.version, again.total, again.grade
    );

    println!("\nHistory of the first inspection (every change: who, device, what):");
    for h in desk.history(&first)? {
        println!(
            "  #{:<2} {:<16} device {}…  {:<13} {:<5} {}",
            h.seq,
            h.by,
            &h.device_id[..8],
            h.action,
            h.item_code.unwrap_or_default(),
            h.text.unwrap_or_default()
        );
    }
    println!("\nDone in {:.0} ms.", started.elapsed().as_secs_f64() * 1e3);
    Ok(())
}

fn truncate(s: &str, chars: usize) -> String {
    s.chars().take(chars).collect()
}

/// Milliseconds since the epoch as Beijing time (UTC+8), e.g. "2026-11-23 09:15:02".
fn beijing_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000) + 8 * 3600;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
