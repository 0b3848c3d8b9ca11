//! Shared by the store tests: a settable clock, the sample data, and items picked from the
//! sample standard by rule kind (so tests follow the standard file rather than hard-coding it).
#![allow(dead_code)]

use fenlei_core::answer::{AnswerValue, ItemAnswer, OccurrenceCount};
use fenlei_core::inspection::{InspectionKind, NewInspection};
use fenlei_core::sample;
use fenlei_core::standard::{Item, Rule, Standard};
use fenlei_core::store::{Clock, Store};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// 2026-09-01 08:00 Beijing time.
pub const T0: i64 = 1_788_220_800_000;
pub const DAY: i64 = 86_400_000;

pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(at: i64) -> Arc<ManualClock> {
        Arc::new(ManualClock(AtomicI64::new(at)))
    }
    pub fn set(&self, at: i64) {
        self.0.store(at, Ordering::SeqCst);
    }
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// A store at `path` with the sample standard and city loaded.
pub fn sample_store(path: &Path, clock: Arc<ManualClock>) -> Store {
    let store = Store::open_with_clock(path, clock).unwrap();
    store.import_standard(sample::STANDARD_TOML).unwrap();
    store
        .import_communities_csv(sample::CITY_CSV.as_bytes())
        .unwrap();
    store
}

pub fn sample_standard() -> Standard {
    Standard::from_toml_str(sample::STANDARD_TOML).unwrap()
}

pub fn first_item<'a>(s: &'a Standard, kind: &str) -> &'a Item {
    s.items()
        .find(|i| i.rule.kind_name() == kind)
        .unwrap_or_else(|| panic!("sample standard has a {kind} item"))
}

pub fn new_inspection(store: &Store, community_id: &str) -> NewInspection {
    let s = store.standards().unwrap().into_iter().next().unwrap();
    NewInspection {
        community_id: community_id.into(),
        standard_id: s.id,
        standard_version: s.version,
        kind: InspectionKind::DailyPatrol,
        co_inspectors: vec![],
    }
}

pub fn answer(item: &Item, value: AnswerValue) -> ItemAnswer {
    let note = if item.note_required {
        Some("现场记录".to_string())
    } else {
        None
    };
    ItemAnswer {
        item_code: item.code.clone(),
        value,
        sampled_units: None,
        note,
    }
}

/// An occurrence answer for the first finding of a per-occurrence item.
pub fn occurrences(item: &Item, count: u32) -> ItemAnswer {
    let Rule::PerOccurrence { findings, .. } = &item.rule else {
        panic!("not a per-occurrence item")
    };
    answer(
        item,
        AnswerValue::Occurrences {
            counts: vec![OccurrenceCount {
                finding: findings[0].code.clone(),
                count,
            }],
        },
    )
}

/// The first `n` community ids of the sample city.
pub fn community_ids(store: &Store, n: usize) -> Vec<String> {
    let mut ids: Vec<String> = fenlei_core::community::parse_csv(sample::CITY_CSV.as_bytes())
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    ids.truncate(n);
    assert!(store.community(&ids[0]).is_ok());
    ids
}
