//! Coordinate systems (WGS-84 / GCJ-02 / BD-09) and distances.
//!
//! Everything Fenlei stores is WGS-84, the datum of phone GPS and photo EXIF. Chinese map
//! providers publish obfuscated coordinates: Amap (Gaode) and Tencent use GCJ-02, Baidu uses BD-09
//! (a further transform of GCJ-02). Comparing them raw is off by hundreds of metres, so anything
//! that comes from a map is converted with [`to_wgs84`] on the way in.
//!
//! The GCJ-02 forward transform is the widely published formula. It has no closed-form inverse;
//! the one-step "subtract the offset at the obfuscated point" shortcut most libraries use is off by
//! 1–2 m, which is a visible share of a 100 m geofence. [`to_wgs84`] instead iterates until the
//! forward transform of its answer reproduces the input to well under a centimetre.

use std::str::FromStr;
use std::sync::LazyLock;

use geographiclib_rs::{Geodesic, InverseGeodesic};
use serde::{Deserialize, Serialize};

use crate::{CoreError, Result};

/// A point in degrees. Which datum it is in depends on context; stored points are WGS-84.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct LatLon {
    pub lat: f64,
    pub lon: f64,
}

impl LatLon {
    /// A checked point: see [`validate`].
    pub fn new(lat: f64, lon: f64) -> Result<LatLon> {
        validate(LatLon { lat, lon })
    }
}

/// The coordinate systems a point can come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum CoordSystem {
    /// GPS, EXIF, OpenStreetMap. What Fenlei stores.
    Wgs84,
    /// China's official obfuscation ("Mars coordinates"): Amap/Gaode, Tencent, Apple Maps in China.
    Gcj02,
    /// Baidu Maps: GCJ-02 transformed once more.
    Bd09,
}

impl CoordSystem {
    /// The canonical spelling, as written in CSV files and docs.
    pub fn as_str(self) -> &'static str {
        match self {
            CoordSystem::Wgs84 => "WGS84",
            CoordSystem::Gcj02 => "GCJ02",
            CoordSystem::Bd09 => "BD09",
        }
    }
}

impl std::fmt::Display for CoordSystem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CoordSystem {
    type Err = CoreError;

    /// Accepts the spellings found in city spreadsheets: `WGS84`, `WGS-84`, `GCJ02`, `GCJ-02`,
    /// `BD09`, `BD-09` (any case, `-`/`_`/spaces ignored), plus the provider names people write
    /// instead (`GPS`, `高德`/`amap`/`腾讯`/`火星`, `百度`/`baidu`).
    fn from_str(s: &str) -> Result<Self> {
        let key: String = s
            .trim()
            .chars()
            .filter(|c| !matches!(c, '-' | '_' | ' ' | '\u{3000}'))
            .flat_map(char::to_lowercase)
            .collect();
        match key.as_str() {
            "wgs84" | "wgs" | "gps" | "epsg4326" => Ok(CoordSystem::Wgs84),
            "gcj02" | "gcj" | "amap" | "gaode" | "tencent" | "高德" | "腾讯" | "火星"
            | "火星坐标" | "国测局" => Ok(CoordSystem::Gcj02),
            "bd09" | "bd09ll" | "bd" | "baidu" | "百度" => Ok(CoordSystem::Bd09),
            // The value itself is not echoed: errors carry no input data.
            _ => Err(CoreError::InvalidArgument(
                "unknown coordinate system (expected WGS84, GCJ02 or BD09)".into(),
            )),
        }
    }
}

/// Checks that a point is usable: both numbers finite, latitude in [-90, 90], longitude in
/// [-180, 180]. The error says which number is wrong but not its value.
pub fn validate(p: LatLon) -> Result<LatLon> {
    if !p.lat.is_finite() {
        return Err(CoreError::InvalidArgument(
            "latitude is not a finite number".into(),
        ));
    }
    if !p.lon.is_finite() {
        return Err(CoreError::InvalidArgument(
            "longitude is not a finite number".into(),
        ));
    }
    if !(-90.0..=90.0).contains(&p.lat) {
        return Err(CoreError::InvalidArgument(
            "latitude is outside [-90, 90]".into(),
        ));
    }
    if !(-180.0..=180.0).contains(&p.lon) {
        return Err(CoreError::InvalidArgument(
            "longitude is outside [-180, 180]".into(),
        ));
    }
    Ok(p)
}

/// Converts a point in `from` to WGS-84. Non-finite input gives non-finite output, never a panic.
pub fn to_wgs84(p: LatLon, from: CoordSystem) -> LatLon {
    match from {
        CoordSystem::Wgs84 => p,
        CoordSystem::Gcj02 => gcj02_to_wgs84(p),
        CoordSystem::Bd09 => gcj02_to_wgs84(bd09_to_gcj02(p)),
    }
}

/// Converts a point between any two coordinate systems, refusing out-of-range input.
pub fn convert(p: LatLon, from: CoordSystem, to: CoordSystem) -> Result<LatLon> {
    Ok(from_wgs84(to_wgs84(validate(p)?, from), to))
}

/// Converts a WGS-84 point to `to`.
pub fn from_wgs84(p: LatLon, to: CoordSystem) -> LatLon {
    match to {
        CoordSystem::Wgs84 => p,
        CoordSystem::Gcj02 => wgs84_to_gcj02(p),
        CoordSystem::Bd09 => gcj02_to_bd09(wgs84_to_gcj02(p)),
    }
}

// ---------------------------------------------------------------------------------------------
// GCJ-02

/// Krasovsky 1940 ellipsoid, which the GCJ-02 formula is defined on.
const GCJ_A: f64 = 6_378_245.0;
const GCJ_EE: f64 = 0.006_693_421_622_965_943;

/// Whether GCJ-02 obfuscation applies: the rectangle the usual implementations use. It is a
/// coarse box (it includes parts of neighbouring countries), but it is what map providers' SDKs
/// behave like, and every Chinese city is well inside it.
pub fn gcj02_applies(p: LatLon) -> bool {
    (72.004..=137.8347).contains(&p.lon) && (0.8293..=55.8271).contains(&p.lat)
}

fn gcj_raw_dlat(x: f64, y: f64) -> f64 {
    use std::f64::consts::PI;
    let mut r = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * x.abs().sqrt();
    r += (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
    r += (20.0 * (y * PI).sin() + 40.0 * (y / 3.0 * PI).sin()) * 2.0 / 3.0;
    r += (160.0 * (y / 12.0 * PI).sin() + 320.0 * (y * PI / 30.0).sin()) * 2.0 / 3.0;
    r
}

fn gcj_raw_dlon(x: f64, y: f64) -> f64 {
    use std::f64::consts::PI;
    let mut r = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * x.abs().sqrt();
    r += (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
    r += (20.0 * (x * PI).sin() + 40.0 * (x / 3.0 * PI).sin()) * 2.0 / 3.0;
    r += (150.0 * (x / 12.0 * PI).sin() + 300.0 * (x / 30.0 * PI).sin()) * 2.0 / 3.0;
    r
}

/// WGS-84 → GCJ-02 (the published forward formula; identity outside [`gcj02_applies`]).
fn wgs84_to_gcj02(p: LatLon) -> LatLon {
    if !gcj02_applies(p) {
        return p;
    }
    let dlat = gcj_raw_dlat(p.lon - 105.0, p.lat - 35.0);
    let dlon = gcj_raw_dlon(p.lon - 105.0, p.lat - 35.0);
    let rad_lat = p.lat.to_radians();
    let w = 1.0 - GCJ_EE * rad_lat.sin().powi(2);
    let sqrt_w = w.sqrt();
    // The raw offsets are in metres on the Krasovsky ellipsoid: divide by the meridional and
    // prime-vertical radii of curvature to get degrees.
    let m = GCJ_A * (1.0 - GCJ_EE) / (w * sqrt_w);
    let n = GCJ_A / sqrt_w;
    LatLon {
        lat: p.lat + (dlat / m).to_degrees(),
        lon: p.lon + (dlon / (n * rad_lat.cos())).to_degrees(),
    }
}

/// GCJ-02 → WGS-84 by iteration: the offset varies slowly (its slope is ~1e-3), so the fixed
/// point `w ← w − (forward(w) − g)` converges by about three digits per step.
fn gcj02_to_wgs84(g: LatLon) -> LatLon {
    if !gcj02_applies(g) {
        return g;
    }
    invert(g, wgs84_to_gcj02)
}

/// Solves `forward(w) = target` for `w`, starting from `target`. Stops at 1e-11° (about a
/// micrometre) or after a bounded number of steps, returning the best point seen, so it neither
/// loops forever nor panics on odd input (NaN, the edge of China's box).
fn invert(target: LatLon, forward: impl Fn(LatLon) -> LatLon) -> LatLon {
    const TOLERANCE_DEG: f64 = 1e-11;
    const MAX_STEPS: usize = 30;
    let mut w = target;
    let mut best = (f64::INFINITY, target);
    for _ in 0..MAX_STEPS {
        let f = forward(w);
        let (dlat, dlon) = (f.lat - target.lat, f.lon - target.lon);
        let err = dlat.abs().max(dlon.abs());
        if err < best.0 {
            best = (err, w);
        }
        if err.is_nan() || err < TOLERANCE_DEG {
            break;
        }
        w = LatLon {
            lat: w.lat - dlat,
            lon: w.lon - dlon,
        };
    }
    best.1
}

// ---------------------------------------------------------------------------------------------
// BD-09

/// Baidu's constant: π·3000/180.
const BD_X_PI: f64 = std::f64::consts::PI * 3000.0 / 180.0;

/// GCJ-02 → BD-09, Baidu's published formula. Baidu applies it everywhere (no China box).
fn gcj02_to_bd09(g: LatLon) -> LatLon {
    let (x, y) = (g.lon, g.lat);
    let z = (x * x + y * y).sqrt() + 0.00002 * (y * BD_X_PI).sin();
    let theta = y.atan2(x) + 0.000003 * (x * BD_X_PI).cos();
    LatLon {
        lat: z * theta.sin() + 0.006,
        lon: wrap_lon(z * theta.cos() + 0.0065),
    }
}

/// BD-09 → GCJ-02: Baidu's published approximate inverse (decimetre-level error), refined by the
/// same fixed-point iteration as GCJ-02 so BD-09 round trips also close to micrometres.
fn bd09_to_gcj02(b: LatLon) -> LatLon {
    let (x, y) = (b.lon - 0.0065, b.lat - 0.006);
    let z = (x * x + y * y).sqrt() - 0.00002 * (y * BD_X_PI).sin();
    let theta = y.atan2(x) - 0.000003 * (x * BD_X_PI).cos();
    let first = LatLon {
        lat: z * theta.sin(),
        lon: z * theta.cos(),
    };
    // Iterate on the residual from the first guess rather than from `b` itself.
    let residual = |w: LatLon| {
        let f = gcj02_to_bd09(w);
        LatLon {
            lat: f.lat - b.lat,
            lon: wrap_lon(f.lon - b.lon),
        }
    };
    let mut w = first;
    for _ in 0..10 {
        let r = residual(w);
        let err = r.lat.abs().max(r.lon.abs());
        if err.is_nan() || err < 1e-11 {
            break;
        }
        w = LatLon {
            lat: w.lat - r.lat,
            lon: wrap_lon(w.lon - r.lon),
        };
    }
    w
}

/// Brings a longitude back into [-180, 180] after a shift pushed it just past the antimeridian.
fn wrap_lon(lon: f64) -> f64 {
    if lon > 180.0 {
        lon - 360.0
    } else if lon < -180.0 {
        lon + 360.0
    } else {
        lon
    }
}

// ---------------------------------------------------------------------------------------------
// Distances

static WGS84: LazyLock<Geodesic> = LazyLock::new(Geodesic::wgs84);

/// Geodesic distance in metres between two WGS-84 points, on the ellipsoid (Karney's algorithm,
/// accurate to nanometres). Haversine would be off by up to 0.5 %, which at 150 m geofences is
/// harmless, but the ellipsoidal answer costs only microseconds and removes the question.
/// Returns NaN if either point is invalid (see [`validate`]).
pub fn distance_m(a: LatLon, b: LatLon) -> f64 {
    if validate(a).is_err() || validate(b).is_err() {
        return f64::NAN;
    }
    InverseGeodesic::<f64>::inverse(&*WGS84, a.lat, a.lon, b.lat, b.lon)
}

/// The smallest radius of curvature of the WGS-84 ellipsoid (meridional, at the equator):
/// a·(1−e²). Converting metres to angles with it overestimates every angle, so the box is never
/// too small.
const MIN_RADIUS_M: f64 = 6_335_439.327;

/// `(min_lat, max_lat, min_lon, max_lon)` of a box that contains every point within `radius_m`
/// of `center`, for an SQL prefilter (`lat BETWEEN .. AND lon BETWEEN ..`) before exact distances.
///
/// It is slightly larger than the circle (about 0.5 % plus a centimetre), never smaller.
/// Limits, chosen so the box is always a plain `BETWEEN` range and never misses a point:
/// - a circle that reaches a pole gets the full longitude range and latitude clamped at ±90;
/// - a circle that crosses the antimeridian (±180°) gets the full longitude range (less
///   selective, still correct; no Chinese city is near it);
/// - a negative or NaN radius counts as 0; a radius of half the Earth or more (or infinite)
///   gives the whole world;
/// - `center` must be valid ([`validate`]); otherwise the box is NaN and matches nothing.
pub fn bounding_box(c: LatLon, radius_m: f64) -> (f64, f64, f64, f64) {
    const WORLD: (f64, f64, f64, f64) = (-90.0, 90.0, -180.0, 180.0);
    if validate(c).is_err() {
        return (f64::NAN, f64::NAN, f64::NAN, f64::NAN);
    }
    let r = if radius_m.is_nan() || radius_m < 0.0 {
        0.0
    } else {
        radius_m
    };
    // Margin: relative for the ellipsoid-vs-sphere approximation, absolute for rounding.
    let d = (r * 1.005 + 0.01) / MIN_RADIUS_M; // angular radius, radians
    if d >= std::f64::consts::FRAC_PI_2 {
        return WORLD;
    }
    let dlat = d.to_degrees();
    let (min_lat, max_lat) = (c.lat - dlat, c.lat + dlat);
    if min_lat <= -90.0 || max_lat >= 90.0 {
        return (min_lat.max(-90.0), max_lat.min(90.0), -180.0, 180.0);
    }
    // On a sphere the widest longitude of a circle is asin(sin d / cos φ), reached north of the
    // due-east point; the box's lat range already covers that point.
    let s = d.sin() / c.lat.to_radians().cos();
    if s.is_nan() || s >= 1.0 {
        return (min_lat, max_lat, -180.0, 180.0);
    }
    let dlon = s.asin().to_degrees();
    let (min_lon, max_lon) = (c.lon - dlon, c.lon + dlon);
    if min_lon < -180.0 || max_lon > 180.0 {
        return (min_lat, max_lat, -180.0, 180.0);
    }
    (min_lat, max_lat, min_lon, max_lon)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ll(lat: f64, lon: f64) -> LatLon {
        LatLon { lat, lon }
    }

    #[test]
    fn coord_system_spellings() {
        for s in ["WGS84", "wgs-84", " WGS_84 ", "GPS"] {
            assert_eq!(s.parse::<CoordSystem>().unwrap(), CoordSystem::Wgs84, "{s}");
        }
        for s in ["GCJ02", "gcj-02", "高德", "火星坐标", "Amap"] {
            assert_eq!(s.parse::<CoordSystem>().unwrap(), CoordSystem::Gcj02, "{s}");
        }
        for s in ["BD09", "bd-09", "百度", "BD09LL"] {
            assert_eq!(s.parse::<CoordSystem>().unwrap(), CoordSystem::Bd09, "{s}");
        }
        for s in ["", "UTM", "CGCS2000x"] {
            assert!(s.parse::<CoordSystem>().is_err(), "{s}");
        }
        for c in [CoordSystem::Wgs84, CoordSystem::Gcj02, CoordSystem::Bd09] {
            assert_eq!(c.as_str().parse::<CoordSystem>().unwrap(), c);
        }
    }

    #[test]
    fn nan_input_does_not_panic() {
        let p = ll(f64::NAN, 111.0);
        for cs in [CoordSystem::Gcj02, CoordSystem::Bd09] {
            let _ = to_wgs84(p, cs);
            let _ = from_wgs84(p, cs);
            let _ = to_wgs84(ll(40.0, f64::INFINITY), cs);
        }
        assert!(distance_m(p, ll(0.0, 0.0)).is_nan());
        assert!(bounding_box(p, 100.0).0.is_nan());
    }

    #[test]
    fn bd_inverse_is_refined() {
        let g = ll(40.8414, 111.7519);
        let back = bd09_to_gcj02(gcj02_to_bd09(g));
        assert!((back.lat - g.lat).abs() < 1e-9 && (back.lon - g.lon).abs() < 1e-9);
    }
}
