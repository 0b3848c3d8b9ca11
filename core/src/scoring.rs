//! STUB — replaced by the standard helper.
use crate::Result;
use crate::answer::ItemAnswer;
use crate::standard::Standard;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct ScoreCard {
    pub standard_id: String,
    pub standard_version: String,
    pub total: f64,
    pub grade: String,
    pub vetoed: bool,
}

pub fn validate_answer(_standard: &Standard, _answer: &ItemAnswer) -> Result<()> {
    Ok(())
}

pub fn score(s: &Standard, _answers: &[ItemAnswer]) -> ScoreCard {
    ScoreCard { standard_id: s.id.clone(), standard_version: s.version.clone(), total: 100.0, grade: String::new(), vetoed: false }
}
