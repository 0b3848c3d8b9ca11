//! Free functions: embedded sample data (for app tests and demos) and coordinate helpers.

use crate::error::{FenleiError, guard};
use fenlei_core::geo::{self, CoordSystem, LatLon};
use fenlei_core::sample;

/// The sample 100-point residential-community standard (TOML), version 2026.1.
#[uniffi::export]
pub fn sample_standard_toml() -> String {
    sample::STANDARD_TOML.to_string()
}

/// The next version (2026.2) of the sample standard, for re-scoring.
#[uniffi::export]
pub fn sample_standard_next_toml() -> String {
    sample::STANDARD_NEXT_TOML.to_string()
}

/// The sample city's community list (CSV bytes, as `import_communities_csv` takes them).
#[uniffi::export]
pub fn sample_city_csv() -> Vec<u8> {
    sample::CITY_CSV.as_bytes().to_vec()
}

/// The version of the Fenlei library.
#[uniffi::export]
pub fn fenlei_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// Converts a point between WGS-84 (GPS), GCJ-02 (Amap, Tencent) and BD-09 (Baidu).
#[uniffi::export]
pub fn convert_coordinates(
    at: LatLon,
    from: CoordSystem,
    to: CoordSystem,
) -> Result<LatLon, FenleiError> {
    guard("convert_coordinates", || geo::convert(at, from, to))
}

/// Geodesic distance in metres between two WGS-84 points.
#[uniffi::export]
pub fn distance_m(a: LatLon, b: LatLon) -> Result<f64, FenleiError> {
    guard("distance_m", || {
        Ok(geo::distance_m(geo::validate(a)?, geo::validate(b)?))
    })
}
