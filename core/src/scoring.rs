//! The scoring engine: a pure, deterministic function from a standard and the inspector's answers
//! to a score card. No I/O, no clock, no randomness: the same inputs give the same card, bit for
//! bit, on every device.
//!
//! Arithmetic is done in integer hundredths of a point (and of a percent): answers are rounded to
//! 0.01 once, on the way in; sums are exact; the two divisions (sample normalisation and the
//! not-applicable rescale) round half away from zero to 0.01. The semantics are documented in
//! `docs/standard-format.md`.

use crate::answer::{AnswerValue, ItemAnswer};
use crate::standard::{Item, NotApplicablePolicy, Rule, Standard, from_hundredths, to_hundredths};
use crate::{CoreError, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The result of scoring one inspection under one version of a standard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct ScoreCard {
    pub standard_id: String,
    pub standard_version: String,
    /// The final score.
    pub total: f64,
    /// The standard's full marks (e.g. 100).
    pub max_points: f64,
    /// The points the deductions were taken from: `max_points` minus the points of items
    /// answered "not applicable" under the `rescale` policy; `max_points` otherwise.
    pub applicable_points: f64,
    /// Sum of all item deductions, before any rescale or floor.
    pub deductions: f64,
    /// Bonuses added to the total (after the standard's `max_total_bonus`, if any).
    pub bonuses: f64,
    /// Label of the grade band; the standard's veto grade when vetoed.
    pub grade: String,
    pub vetoed: bool,
    /// "<item code>: <the item's veto reason>" for each veto item observed, in item order.
    pub veto_reasons: Vec<String>,
    pub sections: Vec<SectionScore>,
    /// Every item of the standard, in file order.
    pub items: Vec<ItemScore>,
    /// Codes of items with no (usable) answer, in file order; they deduct nothing.
    pub unanswered: Vec<String>,
    /// Answers that were not used, in the order given, each with the reason.
    pub skipped: Vec<SkippedAnswer>,
}

/// One section's part of the score. Subtotals are neither rescaled nor floored: they show where
/// the points went; only the card's `total` applies the standard's policies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct SectionScore {
    pub code: String,
    pub name: String,
    /// The section's share of full marks.
    pub max_points: f64,
    /// `max_points` minus the points of its items answered "not applicable".
    pub applicable_points: f64,
    pub deductions: f64,
    pub bonuses: f64,
    /// `applicable_points` (rescale policy) or `max_points` (full_marks policy), minus
    /// deductions, plus bonuses.
    pub subtotal: f64,
}

/// One item's part of the score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct ItemScore {
    pub code: String,
    pub section_code: String,
    /// The rule kind, as in the file ("fixed", "per_occurrence", ...).
    pub kind: String,
    /// `false` when answered "not applicable".
    pub applicable: bool,
    /// `false` when there was no usable answer.
    pub answered: bool,
    /// Points deducted for this item (after normalisation and cap).
    pub deduction: f64,
    /// The deduction before the item cap (after sample normalisation). Equals `deduction` unless
    /// `capped`.
    pub raw_deduction: f64,
    pub bonus: f64,
    /// The item's cap was reached: `raw_deduction` ≥ the item's points (further findings would
    /// not have cost more), or a capped bonus reached its maximum.
    pub capped: bool,
    /// The deduction was scaled up because fewer units than the sample size were inspected.
    pub normalised: bool,
    /// A veto item whose finding was observed.
    pub vetoed: bool,
}

/// An answer that did not fit the standard and was left out of the score.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct SkippedAnswer {
    pub item_code: String,
    pub reason: String,
}

/// What one answer does to one item, in hundredths.
#[derive(Debug, Clone, Copy, Default)]
struct Outcome {
    not_applicable: bool,
    deduction: i64,
    raw_deduction: i64,
    bonus: i64,
    capped: bool,
    normalised: bool,
    veto: bool,
}

/// Checks one answer against its item. Errors: [`CoreError::UnknownItem`] when the standard has no
/// such item, [`CoreError::InvalidAnswer`] when the value does not fit the item's rule (wrong
/// kind, out of bounds, not a finite number, unknown finding, missing note, bad sample count).
pub fn validate_answer(standard: &Standard, answer: &ItemAnswer) -> Result<()> {
    let item = standard
        .item(&answer.item_code)
        .ok_or_else(|| CoreError::UnknownItem {
            standard: format!("{} {}", standard.id, standard.version),
            item: answer.item_code.clone(),
        })?;
    evaluate(item, answer)
        .map(|_| ())
        .map_err(|reason| CoreError::InvalidAnswer {
            item: answer.item_code.clone(),
            reason,
        })
}

/// Scores a set of answers. Never fails: answers for unknown items, answers that do not fit their
/// item, and all but the last of several answers for one item are listed in `skipped`; items
/// without a usable answer deduct nothing and are listed in `unanswered`.
pub fn score(standard: &Standard, answers: &[ItemAnswer]) -> ScoreCard {
    let items: Vec<&Item> = standard.items().collect();
    let mut position: HashMap<&str, usize> = HashMap::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        // Same lookup as `Standard::item`: the first item with a code wins.
        position.entry(item.code.as_str()).or_insert(i);
    }
    let mut last_answer: HashMap<usize, usize> = HashMap::new();
    for (a, answer) in answers.iter().enumerate() {
        if let Some(&i) = position.get(answer.item_code.as_str()) {
            last_answer.insert(i, a);
        }
    }

    let mut outcomes: Vec<Option<Outcome>> = vec![None; items.len()];
    let mut skipped = Vec::new();
    for (a, answer) in answers.iter().enumerate() {
        let skip = |reason: String| SkippedAnswer {
            item_code: answer.item_code.clone(),
            reason,
        };
        let Some(&i) = position.get(answer.item_code.as_str()) else {
            skipped.push(skip(format!(
                "no item {} in standard {} version {}",
                answer.item_code, standard.id, standard.version
            )));
            continue;
        };
        if last_answer.get(&i) != Some(&a) {
            skipped.push(skip(
                "superseded by a later answer for the same item".into(),
            ));
            continue;
        }
        match evaluate(items[i], answer) {
            Ok(outcome) => outcomes[i] = Some(outcome),
            Err(reason) => skipped.push(skip(reason)),
        }
    }

    let rescale = standard.not_applicable == NotApplicablePolicy::Rescale;
    let mut item_scores = Vec::with_capacity(items.len());
    let mut unanswered = Vec::new();
    let mut veto_reasons = Vec::new();
    let mut full: i64 = 0;
    let mut applicable: i64 = 0;
    let mut deductions: i64 = 0;
    let mut bonuses: i64 = 0;
    let mut section_sums: HashMap<&str, [i64; 4]> = HashMap::new();
    for (item, outcome) in items.iter().zip(&outcomes) {
        let points = if item.is_bonus() {
            0
        } else {
            to_hundredths(item.points).max(0)
        };
        let o = outcome.unwrap_or_default();
        if outcome.is_none() {
            unanswered.push(item.code.clone());
        }
        let item_applicable = if o.not_applicable { 0 } else { points };
        full = full.saturating_add(points);
        applicable = applicable.saturating_add(item_applicable);
        deductions = deductions.saturating_add(o.deduction);
        bonuses = bonuses.saturating_add(o.bonus);
        let sums = section_sums
            .entry(item.section_code.as_str())
            .or_insert([0; 4]);
        for (sum, add) in sums
            .iter_mut()
            .zip([points, item_applicable, o.deduction, o.bonus])
        {
            *sum = sum.saturating_add(add);
        }
        if o.veto
            && let Rule::Veto { reason } = &item.rule
        {
            veto_reasons.push(format!("{}: {}", item.code, reason));
        }
        item_scores.push(ItemScore {
            code: item.code.clone(),
            section_code: item.section_code.clone(),
            kind: item.rule.kind_name().to_owned(),
            applicable: !o.not_applicable,
            answered: outcome.is_some(),
            deduction: from_hundredths(o.deduction),
            raw_deduction: from_hundredths(o.raw_deduction),
            bonus: from_hundredths(o.bonus),
            capped: o.capped,
            normalised: o.normalised,
            vetoed: o.veto,
        });
    }

    // Full marks as declared; a hand-built standard whose items disagree uses the items' sum.
    let max_h = match to_hundredths(standard.max_points) {
        m if m > 0 => m,
        _ => full,
    };
    let mut base = if !rescale || applicable == full {
        max_h.saturating_sub(deductions)
    } else if applicable <= 0 {
        // Nothing applicable could lose points: the inspection keeps full marks.
        max_h
    } else {
        // 按比例折算: what was obtained on the applicable items, scaled back to full marks.
        let obtained = applicable.saturating_sub(deductions);
        div_round(
            i128::from(obtained) * i128::from(max_h),
            i128::from(applicable),
        )
    };
    if standard.floor_at_zero {
        base = base.max(0);
    }
    let counted_bonus = match standard.max_total_bonus {
        Some(cap) => bonuses.min(to_hundredths(cap).max(0)),
        None => bonuses,
    };
    let mut total = base.saturating_add(counted_bonus);
    if standard.cap_total_at_max {
        total = total.min(max_h);
    }

    let vetoed = !veto_reasons.is_empty();
    let grade = if vetoed {
        standard.veto_grade.clone()
    } else {
        grade_for(standard, total)
    };

    let sections = standard
        .sections
        .iter()
        .map(|s| {
            let [max, appl, ded, bon] =
                section_sums.get(s.code.as_str()).copied().unwrap_or([0; 4]);
            let from = if rescale { appl } else { max };
            SectionScore {
                code: s.code.clone(),
                name: s.name.clone(),
                max_points: from_hundredths(max),
                applicable_points: from_hundredths(appl),
                deductions: from_hundredths(ded),
                bonuses: from_hundredths(bon),
                subtotal: from_hundredths(from.saturating_sub(ded).saturating_add(bon)),
            }
        })
        .collect();

    ScoreCard {
        standard_id: standard.id.clone(),
        standard_version: standard.version.clone(),
        total: from_hundredths(total),
        max_points: from_hundredths(max_h),
        applicable_points: from_hundredths(if rescale { applicable } else { full }),
        deductions: from_hundredths(deductions),
        bonuses: from_hundredths(counted_bonus),
        grade,
        vetoed,
        veto_reasons,
        sections,
        items: item_scores,
        unanswered,
        skipped,
    }
}

/// The first band (best first) whose `min` the total reaches; the last band takes the rest.
fn grade_for(standard: &Standard, total: i64) -> String {
    standard
        .grades
        .iter()
        .find(|g| g.min.is_none_or(|m| total >= to_hundredths(m)))
        .or(standard.grades.last())
        .map(|g| g.label.clone())
        .unwrap_or_default()
}

/// `n / d` rounded half away from zero, clamped into i64. `d` must be positive.
fn div_round(n: i128, d: i128) -> i64 {
    if d <= 0 {
        return 0;
    }
    let q = (n.abs() + d / 2) / d;
    let q = if n < 0 { -q } else { q };
    q.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// A finite number rounded to hundredths, or why not.
fn hundredths_of(what: &str, x: f64) -> std::result::Result<i64, String> {
    if !x.is_finite() {
        return Err(format!("{what} is not a finite number"));
    }
    Ok(to_hundredths(x))
}

fn expected_values(rule: &Rule) -> &'static str {
    match rule {
        Rule::Fixed { .. } | Rule::Veto { .. } => "compliant or observed",
        Rule::PerOccurrence { .. } => "compliant or occurrences",
        Rule::Range { .. } => "compliant or deduction",
        Rule::RateBands { .. } => "rate",
        Rule::Bonus { .. } => "compliant or bonus",
    }
}

/// The single place where an answer meets its item; `validate_answer` and `score` both use it, so
/// what validates is exactly what scores.
fn evaluate(item: &Item, answer: &ItemAnswer) -> std::result::Result<Outcome, String> {
    let points = to_hundredths(item.points).max(0);
    let mut o = Outcome::default();
    let mut sample: Option<(u32, u32)> = None; // (sample size, units inspected)

    if let Some(n) = answer.sampled_units {
        let size = match &item.rule {
            Rule::PerOccurrence {
                sample_size: Some(size),
                ..
            } => *size,
            _ => {
                return Err(
                    "sampled_units given, but this item has no sample size: leave it empty".into(),
                );
            }
        };
        if n == 0 {
            return Err("sampled_units is 0: at least one unit must be inspected".into());
        }
        if n > size {
            return Err(format!(
                "sampled_units {n} is more than the item's sample size {size}"
            ));
        }
        sample = Some((size, n));
    }

    match (&item.rule, &answer.value) {
        (_, AnswerValue::NotApplicable) => {
            if !item.allow_not_applicable {
                return Err("this item cannot be answered not applicable".into());
            }
            o.not_applicable = true;
        }
        (Rule::Fixed { .. }, AnswerValue::Compliant)
        | (Rule::PerOccurrence { .. }, AnswerValue::Compliant)
        | (Rule::Range { .. }, AnswerValue::Compliant)
        | (Rule::Veto { .. }, AnswerValue::Compliant)
        | (Rule::Bonus { .. }, AnswerValue::Compliant) => {}
        (Rule::Fixed { deduction }, AnswerValue::Observed) => {
            o.deduction = to_hundredths(*deduction).clamp(0, points);
        }
        (Rule::Veto { .. }, AnswerValue::Observed) => {
            o.deduction = points;
            o.veto = true;
        }
        (
            Rule::PerOccurrence {
                findings, uncapped, ..
            },
            AnswerValue::Occurrences { counts },
        ) => {
            let mut raw: i64 = 0;
            let mut seen: Vec<&str> = Vec::with_capacity(counts.len());
            for c in counts {
                let Some(f) = findings.iter().find(|f| f.code == c.finding) else {
                    return Err(format!("unknown finding `{}` for this item", c.finding));
                };
                if seen.contains(&c.finding.as_str()) {
                    return Err(format!("finding `{}` is counted twice", c.finding));
                }
                seen.push(&c.finding);
                let each = to_hundredths(f.points).max(0);
                raw = raw.saturating_add(each.saturating_mul(i64::from(c.count)));
            }
            // Scale to the full sample before the cap: 1 overflow in 2 of 5 points weighs as
            // 2.5 overflows in 5.
            let scaled = match sample {
                Some((size, n)) if n < size => {
                    o.normalised = true;
                    div_round(i128::from(raw) * i128::from(size), i128::from(n))
                }
                _ => raw,
            };
            o.raw_deduction = scaled;
            if !*uncapped && scaled >= points {
                o.deduction = points;
                o.capped = true;
            } else {
                o.deduction = scaled;
            }
        }
        (Rule::Range { min, max }, AnswerValue::Deduction { points: chosen }) => {
            let chosen = hundredths_of("the deduction", *chosen)?;
            let (min, max) = (to_hundredths(*min), to_hundredths(*max));
            if chosen < min || chosen > max {
                return Err(format!(
                    "deduction {} is outside the item's range {}–{}",
                    fmt(chosen),
                    fmt(min),
                    fmt(max)
                ));
            }
            o.deduction = chosen;
        }
        (Rule::RateBands { bands }, AnswerValue::Rate { percent }) => {
            if !percent.is_finite() || *percent < 0.0 || *percent > 100.0 {
                return Err("the rate must be a number from 0 to 100 (percent)".into());
            }
            let rate = to_hundredths(*percent);
            let band = bands.iter().find(|b| {
                let (from, to) = (to_hundredths(b.from_percent), to_hundredths(b.to_percent));
                from <= rate && (rate < to || (to == 10_000 && rate == 10_000))
            });
            let Some(band) = band else {
                return Err(format!("no band of this item covers {}%", fmt(rate)));
            };
            o.deduction = to_hundredths(band.deduction).clamp(0, points);
        }
        (Rule::Bonus { max }, AnswerValue::Bonus { points: awarded }) => {
            let awarded = hundredths_of("the bonus", *awarded)?;
            if awarded < 0 {
                return Err("a bonus cannot be negative".into());
            }
            if let Some(max) = max {
                let max = to_hundredths(*max);
                if awarded > max {
                    return Err(format!(
                        "bonus {} is above the item's maximum {}",
                        fmt(awarded),
                        fmt(max)
                    ));
                }
                o.capped = awarded == max;
            }
            o.bonus = awarded;
        }
        (rule, value) => {
            return Err(format!(
                "a `{}` answer does not fit a `{}` item (expected {})",
                value.kind_name(),
                rule.kind_name(),
                expected_values(rule)
            ));
        }
    }
    if !matches!(item.rule, Rule::PerOccurrence { .. }) {
        o.raw_deduction = o.deduction;
    }

    let records_something = o.deduction > 0
        || o.bonus > 0
        || o.veto
        || matches!(
            answer.value,
            AnswerValue::Observed | AnswerValue::Deduction { .. }
        );
    let note_blank = answer.note.as_deref().is_none_or(|n| n.trim().is_empty());
    if item.note_required && records_something && note_blank {
        return Err("a note is required: say why points were taken off (or awarded)".into());
    }
    Ok(o)
}

fn fmt(h: i64) -> String {
    crate::standard::fmt_points(h)
}
