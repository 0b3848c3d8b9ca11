//! The sample standard and sample city shipped with Fenlei, and a deterministic generator of
//! plausible inspection answers. The demo, tests, benchmarks and simulated devices use them.

use crate::answer::{AnswerValue, ItemAnswer, OccurrenceCount};
use crate::scoring;
use crate::standard::{Item, Rule, Standard};

/// A 100-point residential-community standard of 25 indicators (Chinese, with English notes).
pub const STANDARD_TOML: &str =
    include_str!("../../data/standards/residential-community-2026.toml");
/// The next version of the same standard (a few points changed, one item added), for re-scoring.
pub const STANDARD_NEXT_TOML: &str =
    include_str!("../../data/standards/residential-community-2026.2.toml");
/// A sample city's communities (CSV, UTF-8 with BOM, Chinese headers).
pub const CITY_CSV: &str = include_str!("../../data/cities/sample-city.csv");

/// Imports the sample standard (both versions) and the sample city into a store.
pub fn load_into(store: &crate::store::Store) -> crate::Result<()> {
    store.import_standard(STANDARD_TOML)?;
    store.import_standard(STANDARD_NEXT_TOML)?;
    store.import_communities_csv(CITY_CSV.as_bytes())?;
    Ok(())
}

/// A small deterministic generator (SplitMix64): the same seed gives the same inspection on every
/// platform, which keeps demos and benchmarks repeatable without a dependency.
#[derive(Debug, Clone)]
pub struct SampleRng(u64);

impl SampleRng {
    pub fn new(seed: u64) -> Self {
        SampleRng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, n).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

/// Plausible answers for every item of a standard, as an inspector would record them: most items
/// compliant, a few findings, a sampled rate, now and then a bonus or a not-applicable item; a
/// veto is rare. Every answer passes [`scoring::validate_answer`].
pub fn simulated_answers(standard: &Standard, rng: &mut SampleRng) -> Vec<ItemAnswer> {
    standard
        .items()
        .filter_map(|item| simulated_answer(standard, item, rng))
        .collect()
}

fn simulated_answer(standard: &Standard, item: &Item, rng: &mut SampleRng) -> Option<ItemAnswer> {
    let value = if item.allow_not_applicable && rng.chance(0.1) {
        AnswerValue::NotApplicable
    } else {
        match &item.rule {
            Rule::Fixed { .. } if rng.chance(0.15) => AnswerValue::Observed,
            Rule::PerOccurrence { findings, .. } if !findings.is_empty() && rng.chance(0.45) => {
                let finding = &findings[rng.below(findings.len() as u64) as usize];
                AnswerValue::Occurrences {
                    counts: vec![OccurrenceCount {
                        finding: finding.code.clone(),
                        count: 1 + rng.below(3) as u32,
                    }],
                }
            }
            Rule::Range { min, max } if rng.chance(0.3) => {
                let steps = ((max - min) * 2.0).round().max(0.0) as u64;
                AnswerValue::Deduction {
                    points: min + rng.below(steps + 1) as f64 / 2.0,
                }
            }
            Rule::RateBands { .. } => AnswerValue::Rate {
                percent: (600.0 + rng.below(401) as f64).round() / 10.0,
            },
            Rule::Veto { .. } if rng.chance(0.02) => AnswerValue::Observed,
            Rule::Bonus { max } if rng.chance(0.1) => AnswerValue::Bonus {
                points: max.map(|m| (m / 2.0).max(0.5).min(m)).unwrap_or(1.0),
            },
            _ => AnswerValue::Compliant,
        }
    };
    let finding_recorded = !matches!(value, AnswerValue::Compliant | AnswerValue::NotApplicable);
    let note =
        (item.note_required && finding_recorded).then(|| format!("现场发现：{}", item.title));
    let sampled_units = match &item.rule {
        Rule::PerOccurrence {
            sample_size: Some(n),
            ..
        } if rng.chance(0.2) => Some(1 + rng.below(*n as u64) as u32),
        _ => None,
    };
    let answer = ItemAnswer {
        item_code: item.code.clone(),
        value,
        sampled_units,
        note,
    };
    if scoring::validate_answer(standard, &answer).is_ok() {
        return Some(answer);
    }
    let plain = ItemAnswer {
        item_code: item.code.clone(),
        value: AnswerValue::Compliant,
        sampled_units: None,
        note: None,
    };
    scoring::validate_answer(standard, &plain)
        .is_ok()
        .then_some(plain)
}
