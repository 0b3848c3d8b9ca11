//! Coordinate conversions and distances against published values and round trips.

use fenlei_core::geo::{
    CoordSystem, LatLon, bounding_box, distance_m, from_wgs84, gcj02_applies, to_wgs84, validate,
};
use geographiclib_rs::{DirectGeodesic, Geodesic};

fn ll(lat: f64, lon: f64) -> LatLon {
    LatLon { lat, lon }
}

/// WGS-84 positions of city centres across China's extent (north-east to south, west to east).
const CITIES: &[(&str, f64, f64)] = &[
    ("Hohhot", 40.8424, 111.7490),
    ("Beijing", 39.9042, 116.4074),
    ("Shanghai", 31.2304, 121.4737),
    ("Guangzhou", 23.1291, 113.2644),
    ("Shenzhen", 22.5431, 114.0579),
    ("Chengdu", 30.5728, 104.0668),
    ("Urumqi", 43.8256, 87.6168),
    ("Kashgar", 39.4704, 75.9898),
    ("Lhasa", 29.6520, 91.1721),
    ("Harbin", 45.8038, 126.5350),
    ("Mohe", 52.9721, 122.5386),
    ("Sanya", 18.2528, 109.5119),
    ("Kunming", 24.8801, 102.8329),
    ("Xi'an", 34.3416, 108.9398),
    ("Baotou", 40.6574, 109.8403),
];

#[test]
fn published_vectors_forward() {
    // Values printed by the widely used coordtransform implementation (Krasovsky a = 6378245).
    let g = from_wgs84(ll(39.915, 116.404), CoordSystem::Gcj02);
    assert!((g.lat - 39.91640428150164).abs() < 1e-12, "{g:?}");
    assert!((g.lon - 116.41024449916938).abs() < 1e-12, "{g:?}");

    // eviltransform's vectors use a = 6378137 instead; the two variants agree within ~1 cm.
    for (wlat, wlon, glat, glon) in [
        (31.1774276, 121.5272106, 31.17530398364597, 121.531541859215),
        (22.543847, 113.912316, 22.540796131694766, 113.9171764808363),
        (39.911954, 116.377817, 39.91334545536069, 116.38404722455657),
    ] {
        let g = from_wgs84(ll(wlat, wlon), CoordSystem::Gcj02);
        assert!(
            distance_m(g, ll(glat, glon)) < 0.05,
            "{g:?} vs {glat},{glon}"
        );
    }
}

#[test]
fn published_vectors_bd09() {
    // GCJ-02 (39.915, 116.404) → BD-09 per Baidu's formula. Reach it via WGS-84.
    let wgs = to_wgs84(ll(39.915, 116.404), CoordSystem::Gcj02);
    let bd = from_wgs84(wgs, CoordSystem::Bd09);
    assert!((bd.lat - 39.92133699351021).abs() < 1e-9, "{bd:?}");
    assert!((bd.lon - 116.41036949371029).abs() < 1e-9, "{bd:?}");
}

#[test]
fn gcj02_inverse_beats_one_step() {
    // coordtransform's one-step gcj02towgs84 prints (39.91359571849836, 116.39775550083061) for
    // GCJ-02 (39.915, 116.404); ours must map back onto the input exactly.
    let g = ll(39.915, 116.404);
    let w = to_wgs84(g, CoordSystem::Gcj02);
    let again = from_wgs84(w, CoordSystem::Gcj02);
    assert!(
        distance_m(again, g) < 1e-4,
        "forward(inverse(g)) off by {} m",
        distance_m(again, g)
    );
    let one_step = ll(39.91359571849836, 116.39775550083061);
    assert!(distance_m(from_wgs84(one_step, CoordSystem::Gcj02), g) > 0.01);

    // Over a grid, the one-step shortcut (subtract the shift seen at the GCJ point) errs by
    // decimetres to metres; the iterative inverse by less than a millimetre.
    let (mut worst_one_step, mut worst_iter) = (0.0f64, 0.0f64);
    let mut lat = 18.05;
    while lat < 53.5 {
        let mut lon = 74.05;
        while lon < 134.9 {
            let wgs = ll(lat, lon);
            let gcj = from_wgs84(wgs, CoordSystem::Gcj02);
            let shift = from_wgs84(gcj, CoordSystem::Gcj02);
            let approx = ll(
                gcj.lat - (shift.lat - gcj.lat),
                gcj.lon - (shift.lon - gcj.lon),
            );
            worst_one_step = worst_one_step.max(distance_m(approx, wgs));
            worst_iter = worst_iter.max(distance_m(to_wgs84(gcj, CoordSystem::Gcj02), wgs));
            lon += 0.25;
        }
        lat += 0.25;
    }
    println!("worst one-step error {worst_one_step} m, iterative {worst_iter} m");
    assert!(worst_one_step > 0.5, "{worst_one_step}");
    assert!(worst_iter < 1e-3, "{worst_iter}");
}

#[test]
fn round_trips_within_a_centimetre_over_china() {
    let mut points: Vec<LatLon> = CITIES.iter().map(|&(_, lat, lon)| ll(lat, lon)).collect();
    // Plus a regular grid over the mainland's extent, odd steps so no point sits on a whole degree.
    let mut lat = 18.3;
    while lat < 53.5 {
        let mut lon = 74.1;
        while lon < 134.9 {
            points.push(ll(lat, lon));
            lon += 1.37;
        }
        lat += 0.91;
    }
    let mut worst = 0.0f64;
    for p in points {
        for cs in [CoordSystem::Gcj02, CoordSystem::Bd09] {
            let back = to_wgs84(from_wgs84(p, cs), cs);
            let err = distance_m(p, back);
            worst = worst.max(err);
            assert!(err < 0.01, "{cs} round trip at {p:?} off by {err} m");
        }
    }
    assert!(worst < 1e-3, "worst round trip {worst} m");
}

#[test]
fn shift_magnitudes_in_cities() {
    for &(city, lat, lon) in CITIES {
        let p = ll(lat, lon);
        let gcj = distance_m(p, from_wgs84(p, CoordSystem::Gcj02));
        // GCJ-02 moves points by tens to several hundred metres, never kilometres.
        assert!((20.0..1_000.0).contains(&gcj), "{city}: GCJ shift {gcj} m");
        let bd = distance_m(p, from_wgs84(p, CoordSystem::Bd09));
        assert!((300.0..2_000.0).contains(&bd), "{city}: BD shift {bd} m");
    }
    let hohhot = ll(40.8424, 111.7490);
    let shift = distance_m(hohhot, from_wgs84(hohhot, CoordSystem::Gcj02));
    assert!(
        (100.0..800.0).contains(&shift),
        "Hohhot GCJ shift {shift} m"
    );
    let beijing = ll(39.9042, 116.4074);
    let shift = distance_m(beijing, from_wgs84(beijing, CoordSystem::Gcj02));
    assert!(
        (300.0..800.0).contains(&shift),
        "Beijing GCJ shift {shift} m"
    );
}

#[test]
fn identity_outside_china() {
    for p in [
        ll(48.8566, 2.3522),
        ll(40.7128, -74.0060),
        ll(-33.8688, 151.2093),
        ll(0.0, 0.0),
    ] {
        assert!(!gcj02_applies(p));
        assert_eq!(from_wgs84(p, CoordSystem::Gcj02), p);
        assert_eq!(to_wgs84(p, CoordSystem::Gcj02), p);
        // BD-09 still applies its own fixed shift everywhere, and round trips.
        let back = to_wgs84(from_wgs84(p, CoordSystem::Bd09), CoordSystem::Bd09);
        assert!(distance_m(p, back) < 0.01);
    }
    assert_eq!(to_wgs84(ll(1.0, 2.0), CoordSystem::Wgs84), ll(1.0, 2.0));
}

#[test]
fn distances_against_known_values() {
    // One degree of latitude: 110.57 km at the equator, 111.69 km at the poles.
    let eq = distance_m(ll(0.0, 0.0), ll(1.0, 0.0));
    assert!((110_570.0..110_580.0).contains(&eq), "{eq}");
    let pole = distance_m(ll(89.0, 0.0), ll(90.0, 0.0));
    assert!((111_690.0..111_700.0).contains(&pole), "{pole}");
    let hohhot = distance_m(ll(40.3, 111.7), ll(41.3, 111.7));
    assert!((110_600.0..111_700.0).contains(&hohhot), "{hohhot}");
    // Beijing – Shanghai city centres: about 1,067 km.
    let bs = distance_m(ll(39.9042, 116.4074), ll(31.2304, 121.4737));
    assert!((1_060_000.0..1_075_000.0).contains(&bs), "{bs}");
    // One degree of longitude on the equator: 111.32 km.
    let lon = distance_m(ll(0.0, 0.0), ll(0.0, 1.0));
    assert!((111_315.0..111_325.0).contains(&lon), "{lon}");
    assert_eq!(distance_m(ll(40.8, 111.7), ll(40.8, 111.7)), 0.0);
    // Symmetric, and across the antimeridian the short way.
    let a = distance_m(ll(10.0, 179.9), ll(10.0, -179.9));
    assert!(a < 25_000.0, "{a}");
    assert!(distance_m(ll(91.0, 0.0), ll(0.0, 0.0)).is_nan());
}

#[test]
fn bounding_box_contains_the_circle() {
    let geod = Geodesic::wgs84();
    let centres = [
        ll(40.8424, 111.7490),
        ll(0.0, 0.0),
        ll(-45.0, 170.0),
        ll(60.0, 10.0),
        ll(80.0, -30.0),
        ll(-85.0, 0.0),
        ll(89.9, 0.0),
        ll(10.0, 179.999),
    ];
    for c in centres {
        for r in [0.0, 1.0, 150.0, 300.0, 5_000.0, 100_000.0, 2_000_000.0] {
            let (min_lat, max_lat, min_lon, max_lon) = bounding_box(c, r);
            assert!(min_lat <= c.lat && c.lat <= max_lat && min_lon <= c.lon && c.lon <= max_lon);
            for az in 0..360 {
                let (lat, lon): (f64, f64) = geod.direct(c.lat, c.lon, az as f64, r);
                let lon = if lon > 180.0 {
                    lon - 360.0
                } else if lon < -180.0 {
                    lon + 360.0
                } else {
                    lon
                };
                assert!(
                    min_lat <= lat && lat <= max_lat && min_lon <= lon && lon <= max_lon,
                    "centre {c:?} r {r} az {az}: ({lat}, {lon}) outside {:?}",
                    (min_lat, max_lat, min_lon, max_lon)
                );
            }
        }
    }
}

#[test]
fn bounding_box_is_tight_in_china() {
    // A prefilter is only useful if it is not much bigger than the circle.
    let c = ll(40.8424, 111.7490);
    let (min_lat, max_lat, min_lon, max_lon) = bounding_box(c, 150.0);
    let ns = distance_m(ll(min_lat, c.lon), ll(max_lat, c.lon));
    let ew = distance_m(ll(c.lat, min_lon), ll(c.lat, max_lon));
    assert!((300.0..305.0).contains(&ns), "{ns}");
    assert!((300.0..305.0).contains(&ew), "{ew}");
}

#[test]
fn bounding_box_edges() {
    // Reaching a pole: full longitude range.
    let b = bounding_box(ll(89.99, 45.0), 5_000.0);
    assert_eq!((b.1, b.2, b.3), (90.0, -180.0, 180.0));
    // Crossing the antimeridian: full longitude range, never an inverted range.
    let b = bounding_box(ll(0.0, 179.99), 5_000.0);
    assert_eq!((b.2, b.3), (-180.0, 180.0));
    // Negative or NaN radius: the point itself; infinite: the world.
    let c = ll(40.0, 111.0);
    for r in [-5.0, f64::NAN] {
        let b = bounding_box(c, r);
        assert!(b.0 <= 40.0 && b.1 >= 40.0 && b.1 - b.0 < 1e-6, "{b:?}");
    }
    assert_eq!(bounding_box(c, f64::INFINITY), (-90.0, 90.0, -180.0, 180.0));
}

#[test]
fn validation() {
    assert!(validate(ll(40.8, 111.7)).is_ok());
    assert!(validate(ll(90.0, -180.0)).is_ok());
    assert!(LatLon::new(-90.0, 180.0).is_ok());
    for p in [
        ll(f64::NAN, 0.0),
        ll(0.0, f64::INFINITY),
        ll(90.0001, 0.0),
        ll(0.0, -180.0001),
        ll(111.7, 40.8), // swapped
    ] {
        let e = validate(p).unwrap_err();
        assert!(
            matches!(e, fenlei_core::CoreError::InvalidArgument(_)),
            "{e}"
        );
        // No coordinates in the message.
        assert!(!e.to_string().contains("111"), "{e}");
    }
}

#[test]
fn convert_goes_between_any_two_systems_and_refuses_bad_points() {
    let wgs = fenlei_core::geo::LatLon {
        lat: 40.8414,
        lon: 111.7519,
    };
    let bd = fenlei_core::geo::convert(wgs, CoordSystem::Wgs84, CoordSystem::Bd09).unwrap();
    let gcj = fenlei_core::geo::convert(bd, CoordSystem::Bd09, CoordSystem::Gcj02).unwrap();
    let back = fenlei_core::geo::convert(gcj, CoordSystem::Gcj02, CoordSystem::Wgs84).unwrap();
    assert!(fenlei_core::geo::distance_m(wgs, back) < 0.01);
    assert!(fenlei_core::geo::distance_m(wgs, gcj) > 100.0);
    let nan = fenlei_core::geo::LatLon {
        lat: f64::NAN,
        lon: 0.0,
    };
    assert!(fenlei_core::geo::convert(nan, CoordSystem::Wgs84, CoordSystem::Gcj02).is_err());
}
