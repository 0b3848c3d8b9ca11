//! What an inspector records for one checklist item. The scoring engine turns these into points;
//! the inspection document stores them; the FFI layer hands them to apps as they are.

use serde::{Deserialize, Serialize};

/// One item's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct ItemAnswer {
    /// The item's code in the standard, e.g. "B03".
    pub item_code: String,
    pub value: AnswerValue,
    /// Sample units (drop-off points) actually inspected, for items whose standard normalises to a
    /// sample size (`sample_size` in the standard file). `None` means "the full sample".
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub sampled_units: Option<u32>,
    /// The inspector's reason, typed or transcribed from a voice note. Required by discretionary
    /// (range) items.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub note: Option<String>,
}

/// The recorded value; which variant fits is decided by the item's rule kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum AnswerValue {
    /// The item does not apply here (e.g. no renovation-waste point because no renovation):
    /// excluded from the score.
    NotApplicable,
    /// Checked, nothing found: no deduction.
    Compliant,
    /// The finding of a fixed-deduction or veto item was observed.
    Observed,
    /// Per-occurrence items: how many times each finding was seen.
    Occurrences { counts: Vec<OccurrenceCount> },
    /// Discretionary items: the deduction the inspector chose within the item's bounds.
    Deduction { points: f64 },
    /// Rate-band items: the measured rate in percent (0–100).
    Rate { percent: f64 },
    /// Bonus items: the points awarded.
    Bonus { points: f64 },
}

/// How many times one finding of a per-occurrence item was seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct OccurrenceCount {
    /// The finding's code within the item, e.g. "overflow".
    pub finding: String,
    pub count: u32,
}

impl AnswerValue {
    /// A stable lower-case name of the variant, used in documents and the projection.
    pub fn kind_name(&self) -> &'static str {
        match self {
            AnswerValue::NotApplicable => "not_applicable",
            AnswerValue::Compliant => "compliant",
            AnswerValue::Observed => "observed",
            AnswerValue::Occurrences { .. } => "occurrences",
            AnswerValue::Deduction { .. } => "deduction",
            AnswerValue::Rate { .. } => "rate",
            AnswerValue::Bonus { .. } => "bonus",
        }
    }
}

impl std::fmt::Display for AnswerValue {
    /// A short human form, e.g. "overflow×3", "rate 76%", "−2.5".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AnswerValue::NotApplicable => f.write_str("not applicable"),
            AnswerValue::Compliant => f.write_str("compliant"),
            AnswerValue::Observed => f.write_str("observed"),
            AnswerValue::Occurrences { counts } => {
                let parts: Vec<String> = counts
                    .iter()
                    .map(|c| format!("{}×{}", c.finding, c.count))
                    .collect();
                f.write_str(&parts.join(", "))
            }
            AnswerValue::Deduction { points } => write!(f, "−{points}"),
            AnswerValue::Rate { percent } => write!(f, "rate {percent}%"),
            AnswerValue::Bonus { points } => write!(f, "+{points}"),
        }
    }
}
