//! STUB — replaced by the geo helper. Coordinate systems and distances.
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct LatLon {
    pub lat: f64,
    pub lon: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum CoordSystem {
    Wgs84,
    Gcj02,
    Bd09,
}

pub fn to_wgs84(p: LatLon, _from: CoordSystem) -> LatLon {
    p
}
pub fn from_wgs84(p: LatLon, _to: CoordSystem) -> LatLon {
    p
}
pub fn distance_m(_a: LatLon, _b: LatLon) -> f64 {
    0.0
}
/// (min_lat, max_lat, min_lon, max_lon) of a box that contains the circle.
pub fn bounding_box(c: LatLon, _radius_m: f64) -> (f64, f64, f64, f64) {
    (c.lat, c.lat, c.lon, c.lon)
}
pub fn validate(p: LatLon) -> crate::Result<LatLon> {
    Ok(p)
}
