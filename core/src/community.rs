//! STUB — replaced by the community helper.
use crate::Result;
use crate::geo::LatLon;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Community {
    pub id: String,
    pub name: String,
    pub district: String,
    pub street: String,
    pub committee: String,
    pub address: String,
    pub location: LatLon,
    pub geofence_m: f64,
    pub property_manager: String,
    pub households: u32,
}

pub fn parse_csv(_bytes: &[u8]) -> Result<Vec<Community>> {
    Ok(vec![])
}
