//! The sample standard and sample city shipped with Fenlei, used by the demo, tests and benchmarks.

/// A 100-point residential-community standard of 25 indicators (Chinese, with English notes).
pub const STANDARD_TOML: &str = include_str!("../../data/standards/residential-community-2026.toml");
/// A sample city's communities (CSV, UTF-8, Chinese headers).
pub const CITY_CSV: &str = include_str!("../../data/cities/sample-city.csv");
