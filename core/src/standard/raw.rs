//! The file as written: serde structs that mirror the TOML one to one. Every struct denies
//! unknown fields so that a typo (`pionts = 5`) is an error rather than a silently ignored line.
//! Rule-specific fields are optional here; `validate` checks which ones each rule kind takes.

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStandard {
    pub format: u32,
    pub id: String,
    pub version: String,
    pub name: String,
    pub name_en: Option<String>,
    pub max_points: f64,
    pub floor_at_zero: bool,
    pub cap_total_at_max: bool,
    pub max_total_bonus: Option<f64>,
    pub not_applicable: String,
    pub veto_grade: String,
    #[serde(default)]
    pub grades: Vec<RawGrade>,
    #[serde(default)]
    pub sections: Vec<RawSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGrade {
    pub label: String,
    pub label_en: Option<String>,
    pub min: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSection {
    pub code: String,
    pub name: String,
    pub name_en: Option<String>,
    pub points: Option<f64>,
    #[serde(default)]
    pub items: Vec<RawItem>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawItem {
    pub code: String,
    pub title: String,
    pub title_en: Option<String>,
    pub method: Option<String>,
    pub method_en: Option<String>,
    pub kind: String,
    pub points: Option<f64>,
    #[serde(default)]
    pub allow_not_applicable: bool,
    #[serde(default)]
    pub note_required: bool,
    // fixed
    pub deduction: Option<f64>,
    // per_occurrence
    pub findings: Option<Vec<RawFinding>>,
    pub sample_size: Option<u32>,
    // per_occurrence and bonus
    pub uncapped: Option<bool>,
    // range
    pub min: Option<f64>,
    pub max: Option<f64>,
    // rate_bands
    pub bands: Option<Vec<RawBand>>,
    // veto
    pub veto_reason: Option<String>,
    /// When a finding on this item opens a rectification task (整改).
    pub rectification: Option<RawRectification>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRectification {
    pub responsible: String,
    pub deadline_days: u32,
    pub min_deduction: Option<f64>,
    #[serde(default)]
    pub on_veto: bool,
    #[serde(default)]
    pub evidence: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFinding {
    pub code: String,
    pub label: String,
    pub label_en: Option<String>,
    pub points: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBand {
    pub from: f64,
    pub to: f64,
    pub deduction: f64,
}
