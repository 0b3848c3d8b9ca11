//! EXIF fields Fenlei uses, read with kamadak-exif and checked: a value that cannot be right
//! (latitude 95°, a zero denominator, NaN, month 13, year 1904) becomes `None` plus a
//! [`MediaFlag::ExifValueIgnored`], never a panic and never a plausible-looking wrong number.

use std::io::{BufRead, Seek};

use exif::{Field, In, Rational, Tag, Value};

use super::{ExifGps, MediaFlag, PhotoExif};
use crate::geo::LatLon;

/// Oldest and newest capture year taken as real. Cameras with a flat clock battery write
/// 1970/1980/2000-01-01; those are kept (they are real EXIF) but anything outside this range is
/// not a date a photo of an inspection can have.
const MIN_YEAR: u16 = 1990;
const MAX_YEAR: u16 = 2100;
/// Longest make/model string kept.
const MAX_TEXT: usize = 64;

/// Reads EXIF from a container (JPEG, PNG, WebP, HEIF). `Ok(None)`: the file has no EXIF.
/// A damaged EXIF block gives whatever could be read plus a flag.
pub(crate) fn read<R: BufRead + Seek>(
    reader: &mut R,
    flags: &mut Vec<MediaFlag>,
) -> Option<PhotoExif> {
    let parsed = exif::Reader::new()
        .continue_on_error(true)
        .read_from_container(reader);
    let exif = match parsed {
        Ok(e) => e,
        Err(exif::Error::PartialResult(partial)) => {
            flags.push(MediaFlag::ExifDamaged);
            partial.into_inner().0
        }
        Err(exif::Error::NotFound(_)) => return None,
        Err(_) => {
            flags.push(MediaFlag::ExifDamaged);
            return None;
        }
    };
    Some(extract(&exif, flags))
}

fn ignored(flags: &mut Vec<MediaFlag>, field: &str, reason: &str) {
    flags.push(MediaFlag::ExifValueIgnored {
        field: field.to_string(),
        reason: reason.to_string(),
    });
}

fn field(exif: &exif::Exif, tag: Tag) -> Option<&Field> {
    exif.get_field(tag, In::PRIMARY)
}

fn ascii(f: &Field) -> Option<&[u8]> {
    match &f.value {
        Value::Ascii(v) => v.first().map(|s| s.as_slice()),
        _ => None,
    }
}

fn rationals(f: &Field) -> Option<&[Rational]> {
    match &f.value {
        Value::Rational(v) => Some(v),
        _ => None,
    }
}

/// A rational as f64: `None` for a zero denominator or a non-finite result.
fn ratio(r: &Rational) -> Option<f64> {
    if r.denom == 0 {
        return None;
    }
    let v = r.num as f64 / r.denom as f64;
    v.is_finite().then_some(v)
}

fn extract(exif: &exif::Exif, flags: &mut Vec<MediaFlag>) -> PhotoExif {
    let (taken_local, taken_local_ms) = taken(exif, flags);
    let offset_minutes = offset(exif, flags);
    let orientation = match field(exif, Tag::Orientation).map(|f| f.value.get_uint(0)) {
        None => None,
        Some(Some(o @ 1..=8)) => Some(o),
        Some(_) => {
            ignored(flags, "Orientation", "not a value from 1 to 8");
            None
        }
    };
    PhotoExif {
        taken_local,
        taken_local_ms,
        offset_minutes,
        gps: gps(exif, flags),
        orientation,
        make: text(exif, Tag::Make),
        model: text(exif, Tag::Model),
        software: text(exif, Tag::Software),
        pixel_width: field(exif, Tag::PixelXDimension).and_then(|f| f.value.get_uint(0)),
        pixel_height: field(exif, Tag::PixelYDimension).and_then(|f| f.value.get_uint(0)),
    }
}

fn text(exif: &exif::Exif, tag: Tag) -> Option<String> {
    let raw = ascii(field(exif, tag)?)?;
    let s: String = String::from_utf8_lossy(raw)
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_TEXT)
        .collect();
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: u16, m: u8) -> u8 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400) => 29,
        2 => 28,
        _ => 0,
    }
}

/// DateTimeOriginal (falling back to DateTimeDigitized): the text and the wall-clock time as ms.
fn taken(exif: &exif::Exif, flags: &mut Vec<MediaFlag>) -> (Option<String>, Option<i64>) {
    let (tag, name, sub) = if field(exif, Tag::DateTimeOriginal).is_some() {
        (
            Tag::DateTimeOriginal,
            "DateTimeOriginal",
            Tag::SubSecTimeOriginal,
        )
    } else {
        (
            Tag::DateTimeDigitized,
            "DateTimeDigitized",
            Tag::SubSecTimeDigitized,
        )
    };
    let Some(raw) = field(exif, tag).and_then(ascii) else {
        return (None, None);
    };
    let mut dt = match exif::DateTime::from_ascii(raw) {
        Ok(dt) => dt,
        Err(exif::Error::BlankValue(_)) => return (None, None),
        Err(_) => {
            ignored(flags, name, "not an EXIF date and time");
            return (None, None);
        }
    };
    if !(MIN_YEAR..=MAX_YEAR).contains(&dt.year)
        || !(1..=12).contains(&dt.month)
        || dt.day == 0
        || dt.day > days_in_month(dt.year, dt.month)
        || dt.hour > 23
        || dt.minute > 59
        || dt.second > 60
    {
        ignored(flags, name, "date or time out of range");
        return (None, None);
    }
    if let Some(s) = field(exif, sub).and_then(ascii) {
        // Sub-seconds are a nicety: a bad value just leaves them out.
        let _ = dt.parse_subsec(s);
    }
    let ms_part = dt.nanosecond.map(|n| n / 1_000_000).unwrap_or(0);
    let days = days_from_civil(dt.year as i64, dt.month as i64, dt.day as i64);
    let secs = days * 86_400 + dt.hour as i64 * 3600 + dt.minute as i64 * 60 + dt.second as i64;
    let text = if dt.nanosecond.is_some() {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{ms_part:03}",
            dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second
        )
    } else {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second
        )
    };
    (Some(text), Some(secs * 1000 + ms_part as i64))
}

/// OffsetTimeOriginal (EXIF 2.31), falling back to OffsetTime: minutes east of UTC.
fn offset(exif: &exif::Exif, flags: &mut Vec<MediaFlag>) -> Option<i64> {
    let (name, raw) = if let Some(f) = field(exif, Tag::OffsetTimeOriginal) {
        ("OffsetTimeOriginal", ascii(f)?)
    } else {
        ("OffsetTime", ascii(field(exif, Tag::OffsetTime)?)?)
    };
    let mut dt = exif::DateTime {
        year: 0,
        month: 0,
        day: 0,
        hour: 0,
        minute: 0,
        second: 0,
        nanosecond: None,
        offset: None,
    };
    match dt.parse_offset(raw) {
        Ok(()) => {}
        Err(exif::Error::BlankValue(_)) => return None,
        Err(_) => {
            ignored(flags, name, "not a ±HH:MM offset");
            return None;
        }
    }
    // Real offsets run from −12:00 to +14:00.
    match dt.offset.map(i64::from) {
        Some(o) if (-12 * 60..=14 * 60).contains(&o) => Some(o),
        _ => {
            ignored(flags, name, "offset out of range");
            None
        }
    }
}

/// Degrees from an EXIF (degrees, minutes, seconds) triple.
fn dms(f: &Field) -> Result<f64, &'static str> {
    let r = rationals(f).ok_or("not rational numbers")?;
    if r.is_empty() || r.len() > 3 {
        return Err("not degrees, minutes, seconds");
    }
    let mut parts = [0.0f64; 3];
    for (i, x) in r.iter().enumerate() {
        parts[i] = ratio(x).ok_or("zero denominator")?;
    }
    let [d, m, s] = parts;
    if m >= 60.0 || s >= 60.0 {
        return Err("minutes or seconds of 60 or more");
    }
    Ok(d + m / 60.0 + s / 3600.0)
}

fn gps(exif: &exif::Exif, flags: &mut Vec<MediaFlag>) -> Option<ExifGps> {
    let lat_f = field(exif, Tag::GPSLatitude);
    let lon_f = field(exif, Tag::GPSLongitude);
    let (lat_f, lon_f) = match (lat_f, lon_f) {
        (Some(a), Some(b)) => (a, b),
        (None, None) => return None,
        _ => {
            ignored(
                flags,
                "GPSLatitude/GPSLongitude",
                "only one of the pair present",
            );
            return None;
        }
    };
    let lat = match dms(lat_f) {
        Ok(v) => v,
        Err(why) => {
            ignored(flags, "GPSLatitude", why);
            return None;
        }
    };
    let lon = match dms(lon_f) {
        Ok(v) => v,
        Err(why) => {
            ignored(flags, "GPSLongitude", why);
            return None;
        }
    };
    let sign =
        |tag: Tag, name: &str, neg: u8, pos: u8, flags: &mut Vec<MediaFlag>| -> Option<f64> {
            match field(exif, tag)
                .and_then(ascii)
                .and_then(|s| s.first().copied())
            {
                Some(c) if c.eq_ignore_ascii_case(&pos) => Some(1.0),
                Some(c) if c.eq_ignore_ascii_case(&neg) => Some(-1.0),
                _ => {
                    ignored(flags, name, "missing or not a compass direction");
                    None
                }
            }
        };
    let lat_sign = sign(Tag::GPSLatitudeRef, "GPSLatitudeRef", b'S', b'N', flags)?;
    let lon_sign = sign(Tag::GPSLongitudeRef, "GPSLongitudeRef", b'W', b'E', flags)?;
    let location = LatLon {
        lat: lat * lat_sign,
        lon: lon * lon_sign,
    };
    if crate::geo::validate(location).is_err() {
        ignored(
            flags,
            "GPSLatitude/GPSLongitude",
            "outside the range of degrees",
        );
        return None;
    }
    if location.lat == 0.0 && location.lon == 0.0 {
        // Phones without a fix sometimes write 0/0 ("null island") rather than nothing.
        ignored(
            flags,
            "GPSLatitude/GPSLongitude",
            "0,0 written without a fix",
        );
        return None;
    }
    let positive = |tag: Tag, name: &str, max: f64, flags: &mut Vec<MediaFlag>| -> Option<f64> {
        let f = field(exif, tag)?;
        match rationals(f).and_then(|r| r.first()).and_then(ratio) {
            Some(v) if (0.0..=max).contains(&v) => Some(v),
            _ => {
                ignored(flags, name, "not a usable number");
                None
            }
        }
    };
    let altitude_m = positive(Tag::GPSAltitude, "GPSAltitude", 100_000.0, flags).map(|a| {
        let below = field(exif, Tag::GPSAltitudeRef).and_then(|f| f.value.get_uint(0)) == Some(1);
        if below { -a } else { a }
    });
    let h_error_m = positive(
        Tag::GPSHPositioningError,
        "GPSHPositioningError",
        100_000.0,
        flags,
    );
    let dop = positive(Tag::GPSDOP, "GPSDOP", 1_000.0, flags);
    let datum = text(exif, Tag::GPSMapDatum);
    Some(ExifGps {
        location,
        altitude_m,
        h_error_m,
        dop,
        fix_time_ms: gps_time(exif, flags),
        datum,
    })
}

/// GPSDateStamp + GPSTimeStamp: the fix's UTC time.
fn gps_time(exif: &exif::Exif, flags: &mut Vec<MediaFlag>) -> Option<i64> {
    let date = field(exif, Tag::GPSDateStamp).and_then(ascii)?;
    let time = field(exif, Tag::GPSTimeStamp)?;
    let parse_date = || -> Option<(u16, u8, u8)> {
        let s = std::str::from_utf8(date).ok()?;
        let mut it = s.trim().split(':');
        let y = it.next()?.parse().ok()?;
        let m = it.next()?.parse().ok()?;
        let d = it.next()?.parse().ok()?;
        Some((y, m, d))
    };
    let hms = rationals(time)
        .filter(|r| r.len() == 3)
        .and_then(|r| Some((ratio(&r[0])?, ratio(&r[1])?, ratio(&r[2])?)));
    match (parse_date(), hms) {
        (Some((y, mo, d)), Some((h, mi, s)))
            if (MIN_YEAR..=MAX_YEAR).contains(&y)
                && (1..=12).contains(&mo)
                && d >= 1
                && d <= days_in_month(y, mo)
                && h < 24.0
                && mi < 60.0
                && s < 61.0 =>
        {
            let days = days_from_civil(y as i64, mo as i64, d as i64);
            let ms = (h * 3_600_000.0 + mi * 60_000.0 + s * 1000.0).round() as i64;
            Some(days * 86_400_000 + ms)
        }
        _ => {
            ignored(
                flags,
                "GPSDateStamp/GPSTimeStamp",
                "not a valid UTC date and time",
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::days_from_civil;

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2024, 2, 29), 19_782);
    }
}
