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
    pub max_points: f64,
    pub items: Vec<ItemScore>,
    pub sections: Vec<SectionScore>,
}
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct ItemScore { pub code: String, pub deduction: f64, pub bonus: f64 }
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct SectionScore { pub code: String, pub max_points: f64, pub subtotal: f64 }


pub fn validate_answer(_standard: &Standard, _answer: &ItemAnswer) -> Result<()> {
    Ok(())
}

pub fn score(s: &Standard, _answers: &[ItemAnswer]) -> ScoreCard {
    ScoreCard { standard_id: s.id.clone(), standard_version: s.version.clone(), total: 100.0, grade: String::new(), vetoed: false, max_points: 100.0, items: vec![], sections: vec![] }
}
