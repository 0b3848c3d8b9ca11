//! Evaluation standards (评价标准) as data: the model, the TOML file format and its validation.
//!
//! A standard is reference data pinned by `(id, version)`: an inspection records which version it
//! was scored under, and can be re-scored under another one. The file format is documented in
//! `docs/standard-format.md`; this module is its reference implementation.
//!
//! Every [`Standard`] obtained from [`Standard::from_toml_str`] has passed validation, so the
//! scoring engine can rely on its invariants (points in exact hundredths, contiguous rate bands,
//! ordered grades...). The scoring engine still never panics on a hand-built, invalid one.

mod raw;
mod validate;

pub(crate) use validate::fmt_h as fmt_points;

use crate::Result;
use serde::Serialize;

/// The version of the file format this build reads (`format = 1` in the file).
pub const FORMAT_VERSION: u32 = 1;

/// A validated evaluation standard.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Standard {
    /// Stable identifier of the standard across its versions, e.g. "hohhot-residential".
    pub id: String,
    /// Version label, e.g. "2026.1". Compared as an opaque string.
    pub version: String,
    /// Display name, e.g. "呼和浩特市居民小区生活垃圾分类考核评价标准".
    pub name: String,
    pub name_en: Option<String>,
    /// Full marks: the sum of the points of all deduction items (bonus items are outside it).
    pub max_points: f64,
    /// `true`: full marks minus deductions never goes below 0 (扣完为止).
    /// `false`: it may (下不封底).
    pub floor_at_zero: bool,
    /// `true`: the total never exceeds `max_points`, bonuses included.
    /// `false`: bonuses may lift the total above full marks (上不封顶).
    pub cap_total_at_max: bool,
    /// Cap on the sum of all bonuses, if any.
    pub max_total_bonus: Option<f64>,
    /// What a "not applicable" answer does to the total.
    pub not_applicable: NotApplicablePolicy,
    /// The grade label forced by a veto (一票否决); one of `grades`.
    pub veto_grade: String,
    /// Grade bands, best first; the last one has no `min` and takes every lower total.
    pub grades: Vec<GradeBand>,
    /// Sections in file order, each with its items in file order.
    pub sections: Vec<Section>,
}

/// How items answered "not applicable" are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum NotApplicablePolicy {
    /// 按比例折算: the item's points leave the base; the points obtained on the applicable items
    /// are scaled back to full marks: `obtained / applicable_max × max_points`.
    Rescale,
    /// The item counts as compliant: its points stay in the base, nothing is deducted.
    FullMarks,
}

/// One grade band: totals `>= min` get `label` (the first matching band, best first).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct GradeBand {
    pub label: String,
    pub label_en: Option<String>,
    /// Lowest total of the band; `None` only on the last band (everything below the others).
    pub min: Option<f64>,
}

/// A section (一级指标) of the standard, e.g. "投放点管理".
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Section {
    pub code: String,
    pub name: String,
    pub name_en: Option<String>,
    /// The section's share of full marks: the sum of its deduction items' points.
    pub points: f64,
    pub items: Vec<Item>,
}

/// One checklist item (二级指标 / 评分细则).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Item {
    /// Unique across the whole standard, e.g. "C01".
    pub code: String,
    pub section_code: String,
    pub title: String,
    pub title_en: Option<String>,
    /// How to inspect (检查方法), shown to the inspector.
    pub method: Option<String>,
    pub method_en: Option<String>,
    /// The item's share of full marks, which is also its deduction cap (扣完为止). 0 for bonus
    /// items (outside full marks) and for veto items that deduct nothing.
    pub points: f64,
    /// Whether the inspector may answer "not applicable" (e.g. no renovation-waste point because
    /// nothing is being renovated).
    pub allow_not_applicable: bool,
    /// Whether an answer that records a finding (or awards a bonus) must carry a note. Always
    /// `true` for range items.
    pub note_required: bool,
    pub rule: Rule,
    /// When a finding on this item opens a rectification task (整改), if the standard says so.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub rectification: Option<RectificationRule>,
}

/// The closure evidence kinds, adapted from the six things of a strict closure rule (六个有):
/// cause analysis, collective discussion, actions taken, results, supporting photos, closure report.
pub const EVIDENCE_KINDS: &[&str] = &[
    "cause",
    "discussion",
    "actions",
    "result",
    "photo_after",
    "report",
];

/// An item's rectification rule (docs/standard-format.md): which findings open a task, who must
/// fix it, by when, and what closure (销号) needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct RectificationRule {
    /// The responsible party: 物业, 街道, 收运单位, 社区...
    pub responsible: String,
    /// Days from the inspection to the deadline (0: the same day).
    pub deadline_days: u32,
    /// Threshold: a deduction of at least this many points opens a task. `None` with
    /// `on_veto = false`: any deduction does.
    pub min_deduction: Option<f64>,
    /// Flag: the item's veto (一票否决) opens a task whatever the deduction.
    pub on_veto: bool,
    /// The closure evidence required (kinds from [`EVIDENCE_KINDS`]).
    pub evidence: Vec<String>,
}

impl RectificationRule {
    /// Whether an item scored like this opens a task under the rule.
    pub fn triggers(&self, deduction: f64, vetoed: bool) -> bool {
        if self.on_veto && vetoed {
            return true;
        }
        match self.min_deduction {
            Some(min) => deduction > 0.0 && deduction + 1e-9 >= min,
            None => !self.on_veto && deduction > 0.0,
        }
    }
}

/// How an item turns an answer into points.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum Rule {
    /// `Observed` deducts `deduction` (≤ the item's points).
    Fixed { deduction: f64 },
    /// Each finding deducts its points per occurrence; with `sample_size` the sum is scaled by
    /// `sample_size / sampled_units`; then it is capped at the item's points unless `uncapped`.
    PerOccurrence {
        findings: Vec<Finding>,
        sample_size: Option<u32>,
        uncapped: bool,
    },
    /// The inspector chooses a deduction in `[min, max]` and must write why.
    Range { min: f64, max: f64 },
    /// A measured rate (percent) picks a band; the band's deduction applies.
    RateBands { bands: Vec<RateBand> },
    /// `Observed` fails the inspection (一票否决) and deducts the item's points (may be 0).
    Veto { reason: String },
    /// Awards up to `max` points (`None`: no per-item maximum); outside full marks.
    Bonus { max: Option<f64> },
}

/// A finding of a per-occurrence item, e.g. "overflowing bin: −2 each".
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Finding {
    /// Unique within its item, e.g. "overflow".
    pub code: String,
    pub label: String,
    pub label_en: Option<String>,
    /// Points deducted per occurrence.
    pub points: f64,
}

/// A rate band `[from_percent, to_percent)`; the band ending at 100 also includes 100.
/// Bands are sorted by `from_percent`, ascending, and tile 0..=100 exactly.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct RateBand {
    pub from_percent: f64,
    pub to_percent: f64,
    pub deduction: f64,
}

impl Rule {
    /// The rule kind as written in the file (`kind = "..."`).
    pub fn kind_name(&self) -> &'static str {
        match self {
            Rule::Fixed { .. } => "fixed",
            Rule::PerOccurrence { .. } => "per_occurrence",
            Rule::Range { .. } => "range",
            Rule::RateBands { .. } => "rate_bands",
            Rule::Veto { .. } => "veto",
            Rule::Bonus { .. } => "bonus",
        }
    }
}

impl Standard {
    /// Parses and validates a standard file. Errors are
    /// [`CoreError::InvalidStandard`](crate::CoreError::InvalidStandard) naming the item (or
    /// section, or `grades`) at fault and the problem; TOML syntax and unknown-field errors carry
    /// the line and column.
    pub fn from_toml_str(text: &str) -> Result<Standard> {
        validate::parse(text)
    }

    /// The item with this code, in any section.
    pub fn item(&self, code: &str) -> Option<&Item> {
        self.items().find(|i| i.code == code)
    }

    /// All items, in file order (sections in order, items in order within each).
    pub fn items(&self) -> impl Iterator<Item = &Item> {
        self.sections.iter().flat_map(|s| s.items.iter())
    }

    /// The section with this code.
    pub fn section(&self, code: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.code == code)
    }
}

impl Item {
    /// Whether this item awards points instead of deducting them.
    pub fn is_bonus(&self) -> bool {
        matches!(self.rule, Rule::Bonus { .. })
    }
}

/// Points (and percents) are decimals with at most two places. Internally every figure is an
/// integer number of hundredths, so sums are exact and results carry no float noise.
/// Saturating: NaN becomes 0, infinities the extreme values (only reachable for hand-built data).
pub(crate) fn to_hundredths(x: f64) -> i64 {
    (x * 100.0).round() as i64
}

/// Back to a decimal for display; `h / 100.0` is the closest f64 to the two-place decimal.
pub(crate) fn from_hundredths(h: i64) -> f64 {
    h as f64 / 100.0
}

#[cfg(test)]
mod tests;
