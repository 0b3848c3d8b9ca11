//! STUB — replaced by the standard helper.
use crate::Result;

#[derive(Debug, Clone, PartialEq)]
pub struct Standard {
    pub id: String,
    pub version: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub code: String,
}

impl Standard {
    pub fn from_toml_str(_text: &str) -> Result<Standard> {
        todo!()
    }
    pub fn items(&self) -> impl Iterator<Item = &Item> {
        std::iter::empty()
    }
    pub fn item(&self, _code: &str) -> Option<&Item> {
        None
    }
}
