//! Residential communities (小区) and the import of a city's community list from CSV.
//!
//! Cities keep these lists in spreadsheets, so the importer takes what Excel and WPS export:
//! UTF-8 with or without a BOM, Chinese or English headers in any order, extra columns, CRLF.
//! It is all or nothing: the first bad row stops the import with its spreadsheet row number
//! (header = row 1) and a reason that names the column, never the cell's value (addresses and
//! property managers' names are not to end up in logs). The format is described in
//! `docs/community-csv.md`.

use std::collections::HashMap;

use crate::geo::{self, CoordSystem, LatLon};
use crate::{CoreError, Result};
use serde::{Deserialize, Serialize};

/// Geofence radius when the list has no 围栏半径 column or leaves the cell empty: large enough for
/// phone GPS error plus a compound of a few buildings.
pub const DEFAULT_GEOFENCE_M: f64 = 150.0;
/// Largest accepted geofence radius. Beyond this "was the inspector there" means nothing.
pub const MAX_GEOFENCE_M: f64 = 5_000.0;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Community {
    /// The city's own code for the community, unique within the list.
    pub id: String,
    pub name: String,
    /// 区/县. Empty if the list has no such column.
    pub district: String,
    /// 街道 (street office).
    pub street: String,
    /// 社区 (community committee).
    pub committee: String,
    pub address: String,
    /// Always WGS-84, whatever the list was in.
    pub location: LatLon,
    pub geofence_m: f64,
    /// 物业. Empty if none is given.
    pub property_manager: String,
    /// 户数; 0 when the list does not say.
    pub households: u32,
}

/// The columns the importer understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Id,
    Name,
    District,
    Street,
    Committee,
    Address,
    Lat,
    Lon,
    CoordSystem,
    Geofence,
    PropertyManager,
    Households,
}

const FIELDS: [Field; 12] = [
    Field::Id,
    Field::Name,
    Field::District,
    Field::Street,
    Field::Committee,
    Field::Address,
    Field::Lat,
    Field::Lon,
    Field::CoordSystem,
    Field::Geofence,
    Field::PropertyManager,
    Field::Households,
];

impl Field {
    /// How the column is named in messages about a column that is missing.
    fn label(self) -> &'static str {
        match self {
            Field::Id => "小区编号 (id)",
            Field::Name => "小区名称 (name)",
            Field::District => "区 (district)",
            Field::Street => "街道 (street)",
            Field::Committee => "社区 (committee)",
            Field::Address => "地址 (address)",
            Field::Lat => "纬度 (lat)",
            Field::Lon => "经度 (lon)",
            Field::CoordSystem => "坐标系 (coord_system)",
            Field::Geofence => "围栏半径 (geofence_m)",
            Field::PropertyManager => "物业 (property_manager)",
            Field::Households => "户数 (households)",
        }
    }

    /// Header spellings, compared after [`normalize_header`]. Keep in step with the docs.
    fn aliases(self) -> &'static [&'static str] {
        match self {
            Field::Id => &[
                "id",
                "编号",
                "小区编号",
                "小区代码",
                "小区id",
                "code",
                "community_id",
            ],
            Field::Name => &[
                "name",
                "名称",
                "小区名称",
                "小区名",
                "小区",
                "community",
                "community_name",
            ],
            Field::District => &[
                "district",
                "区",
                "区县",
                "区/县",
                "所属区",
                "所属区县",
                "行政区",
            ],
            Field::Street => &[
                "street",
                "街道",
                "街道办",
                "街道办事处",
                "所属街道",
                "街道(乡镇)",
                "乡镇街道",
            ],
            Field::Committee => &[
                "committee",
                "社区",
                "社区居委会",
                "居委会",
                "所属社区",
                "社区名称",
            ],
            Field::Address => &["address", "地址", "详细地址", "小区地址"],
            Field::Lat => &["lat", "latitude", "纬度"],
            Field::Lon => &["lon", "lng", "long", "longitude", "经度"],
            Field::CoordSystem => &["coord_system", "coordsystem", "crs", "坐标系", "坐标系统"],
            Field::Geofence => &[
                "geofence_m",
                "geofence",
                "radius_m",
                "radius",
                "围栏半径",
                "围栏半径(米)",
                "围栏半径(m)",
                "电子围栏半径",
                "半径",
            ],
            Field::PropertyManager => &[
                "property_manager",
                "property",
                "物业",
                "物业公司",
                "物业服务企业",
                "物业管理单位",
            ],
            Field::Households => &["households", "户数", "总户数", "住户数", "户数(户)"],
        }
    }

    fn required(self) -> bool {
        matches!(self, Field::Id | Field::Name | Field::Lat | Field::Lon)
    }

    fn from_header(header: &str) -> Option<Field> {
        let key = normalize_header(header);
        FIELDS
            .into_iter()
            .find(|f| f.aliases().iter().any(|a| normalize_header(a) == key))
    }
}

/// Makes header matching forgiving about what people vary without meaning anything: case,
/// spaces (also the full-width one), `_` and `-`, full-width parentheses.
fn normalize_header(h: &str) -> String {
    h.trim()
        .trim_start_matches('\u{feff}')
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '_' | '-'))
        .map(|c| match c {
            '（' => '(',
            '）' => ')',
            c => c,
        })
        .flat_map(char::to_lowercase)
        .collect()
}

fn row_error(row: u64, reason: impl Into<String>) -> CoreError {
    CoreError::InvalidCsvRow {
        row,
        reason: reason.into(),
    }
}

/// Tracks spreadsheet row numbers: one per record (a quoted cell with a line break stays one
/// row), plus one per blank line, since a spreadsheet shows those as empty rows. The csv reader
/// skips blank lines silently and reports a record's start as just after the previous record's
/// terminator, so the blank lines are counted here from the bytes between.
struct RowCounter<'a> {
    bytes: &'a [u8],
    last_row: u64,
}

impl RowCounter<'_> {
    fn row_of(&mut self, rec: &csv::ByteRecord) -> u64 {
        let start = rec
            .position()
            .map_or(0, |p| usize::try_from(p.byte()).unwrap_or(usize::MAX));
        let rest = self.bytes.get(start..).unwrap_or_default();
        // The reader stops a CRLF record after its `\r`; the `\n` still belongs to that record.
        let prev_cr = start > 0 && self.bytes.get(start - 1) == Some(&b'\r');
        let mut i = usize::from(prev_cr && rest.first() == Some(&b'\n'));
        let mut blank_lines = 0;
        while let Some(&b) = rest.get(i) {
            match (b, rest.get(i + 1)) {
                (b'\r', Some(b'\n')) => i += 2,
                (b'\r' | b'\n', _) => i += 1,
                _ => break,
            }
            blank_lines += 1;
        }
        self.last_row += 1 + blank_lines;
        self.last_row
    }
}

/// Parses a city's community list. See the module docs and `docs/community-csv.md`.
///
/// Returns every community (coordinates converted to WGS-84) or the first problem as
/// [`CoreError::InvalidCsvRow`]. Rows whose cells are all empty (Excel leaves them at the end of
/// a sheet) are skipped.
pub fn parse_csv(bytes: &[u8]) -> Result<Vec<Community>> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    // flexible: field counts are checked here, to report them with the spreadsheet row.
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut rows = RowCounter { bytes, last_row: 0 };
    let mut rec = csv::ByteRecord::new();

    let read = |reader: &mut csv::Reader<&[u8]>, rec: &mut csv::ByteRecord, next_row: u64| {
        reader
            .read_byte_record(rec)
            .map_err(|_| row_error(next_row, "the file is not readable CSV"))
    };

    if !read(&mut reader, &mut rec, 1)? {
        return Err(row_error(1, "the file is empty: expected a header row"));
    }
    let header_row = rows.row_of(&rec);
    let columns = map_header(&rec, header_row)?;
    let width = rec.len();

    let mut out = Vec::new();
    let mut seen_ids: HashMap<String, u64> = HashMap::new();
    while read(&mut reader, &mut rec, rows.last_row + 1)? {
        let row = rows.row_of(&rec);
        if rec.len() != width {
            return Err(row_error(
                row,
                format!("has {} fields but the header has {width}", rec.len()),
            ));
        }
        if rec.iter().all(|f| f.trim_ascii().is_empty()) {
            continue;
        }
        let c = parse_row(&rec, &columns, row)?;
        if let Some(first) = seen_ids.insert(c.id.clone(), row) {
            return Err(row_error(
                row,
                format!("duplicate id (already used on row {first})"),
            ));
        }
        out.push(c);
    }
    Ok(out)
}

/// Which column index holds each field, with the header text as the file spells it.
struct Columns {
    index: [Option<(usize, String)>; FIELDS.len()],
}

impl Columns {
    fn get(&self, f: Field) -> Option<&(usize, String)> {
        self.index[f as usize].as_ref()
    }
}

fn map_header(rec: &csv::ByteRecord, row: u64) -> Result<Columns> {
    let mut index: [Option<(usize, String)>; FIELDS.len()] = Default::default();
    for (i, raw) in rec.iter().enumerate() {
        let Ok(text) = std::str::from_utf8(raw) else {
            return Err(row_error(
                row,
                "the header is not UTF-8 text (in Excel save as \"CSV UTF-8\"; GBK is not supported)",
            ));
        };
        let text = text.trim().trim_start_matches('\u{feff}').trim();
        let Some(field) = Field::from_header(text) else {
            continue; // unknown columns are the city's own business
        };
        let slot = &mut index[field as usize];
        if let Some((j, _)) = slot {
            return Err(row_error(
                row,
                format!(
                    "columns {} and {} both mean {}",
                    *j + 1,
                    i + 1,
                    field.label()
                ),
            ));
        }
        *slot = Some((i, text.to_string()));
    }
    if let Some(missing) = FIELDS
        .into_iter()
        .find(|f| f.required() && index[*f as usize].is_none())
    {
        return Err(row_error(
            row,
            format!("missing required column {}", missing.label()),
        ));
    }
    Ok(Columns { index })
}

fn parse_row(rec: &csv::ByteRecord, cols: &Columns, row: u64) -> Result<Community> {
    // The trimmed cell of a field, "" when the column is absent. Messages use the file's header.
    let cell = |f: Field| -> Result<(&str, &str)> {
        let Some((i, header)) = cols.get(f) else {
            return Ok(("", f.label()));
        };
        let raw = rec.get(*i).unwrap_or_default();
        match std::str::from_utf8(raw) {
            Ok(s) => Ok((s.trim(), header.as_str())),
            Err(_) => Err(row_error(row, format!("column {header} is not UTF-8 text"))),
        }
    };
    let required = |f: Field| -> Result<&str> {
        let (v, h) = cell(f)?;
        if v.is_empty() {
            Err(row_error(row, format!("column {h} is empty")))
        } else {
            Ok(v)
        }
    };

    let id = required(Field::Id)?;
    let name = required(Field::Name)?;

    let coord = |f: Field| -> Result<f64> {
        let (_, h) = cell(f)?;
        match required(f)?.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err(row_error(row, format!("column {h} is not a number"))),
        }
    };
    let (lat, lon) = (coord(Field::Lat)?, coord(Field::Lon)?);
    let (lat_h, lon_h) = (cell(Field::Lat)?.1, cell(Field::Lon)?.1);
    if !(-90.0..=90.0).contains(&lat) {
        let hint = if (-90.0..=90.0).contains(&lon) {
            " (latitude and longitude swapped?)"
        } else {
            ""
        };
        return Err(row_error(
            row,
            format!("column {lat_h} is outside [-90, 90]{hint}"),
        ));
    }
    if !(-180.0..=180.0).contains(&lon) {
        return Err(row_error(
            row,
            format!("column {lon_h} is outside [-180, 180]"),
        ));
    }
    if lat == 0.0 && lon == 0.0 {
        // Spreadsheets fill missing coordinates with 0; no community is in the Gulf of Guinea.
        return Err(row_error(
            row,
            format!("columns {lat_h} and {lon_h} are 0 (missing?)"),
        ));
    }

    let (cs, cs_h) = cell(Field::CoordSystem)?;
    let system = if cs.is_empty() {
        CoordSystem::Wgs84
    } else {
        cs.parse::<CoordSystem>().map_err(|_| {
            row_error(
                row,
                format!("column {cs_h} is not one of WGS84, GCJ02, BD09"),
            )
        })?
    };
    let location = geo::validate(geo::to_wgs84(LatLon { lat, lon }, system)).map_err(|_| {
        row_error(
            row,
            format!("columns {lat_h}/{lon_h} are out of range after conversion"),
        )
    })?;

    let (g, g_h) = cell(Field::Geofence)?;
    let geofence_m = if g.is_empty() {
        DEFAULT_GEOFENCE_M
    } else {
        match g.parse::<f64>() {
            Ok(v) if v.is_finite() && v > 0.0 && v <= MAX_GEOFENCE_M => v,
            Ok(v) if v.is_finite() => {
                return Err(row_error(
                    row,
                    format!("column {g_h} must be more than 0 and at most {MAX_GEOFENCE_M} metres"),
                ));
            }
            _ => return Err(row_error(row, format!("column {g_h} is not a number"))),
        }
    };

    let (h, h_h) = cell(Field::Households)?;
    let households = if h.is_empty() {
        0
    } else {
        match h.parse::<i64>() {
            Ok(v) if v < 0 => return Err(row_error(row, format!("column {h_h} is negative"))),
            Ok(v) => u32::try_from(v)
                .map_err(|_| row_error(row, format!("column {h_h} is too large")))?,
            Err(_) => {
                return Err(row_error(
                    row,
                    format!("column {h_h} is not a whole number"),
                ));
            }
        }
    };

    Ok(Community {
        id: id.to_string(),
        name: name.to_string(),
        district: cell(Field::District)?.0.to_string(),
        street: cell(Field::Street)?.0.to_string(),
        committee: cell(Field::Committee)?.0.to_string(),
        address: cell(Field::Address)?.0.to_string(),
        location,
        geofence_m,
        property_manager: cell(Field::PropertyManager)?.0.to_string(),
        households,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_alias_maps_to_its_field_and_only_it() {
        for f in FIELDS {
            for a in f.aliases() {
                assert_eq!(Field::from_header(a), Some(f), "{a}");
                assert_eq!(
                    Field::from_header(&format!("  {}  ", a.to_uppercase())),
                    Some(f),
                    "{a}"
                );
            }
        }
    }

    #[test]
    fn header_normalisation() {
        assert_eq!(Field::from_header("围栏半径（米）"), Some(Field::Geofence));
        assert_eq!(Field::from_header("Geofence M"), Some(Field::Geofence));
        assert_eq!(Field::from_header("\u{feff}编号"), Some(Field::Id));
        assert_eq!(Field::from_header("户数 （户）"), Some(Field::Households));
        assert_eq!(Field::from_header("备注"), None);
        assert_eq!(Field::from_header(""), None);
    }

    #[test]
    fn sample_city_parses() {
        let list = parse_csv(crate::sample::CITY_CSV.as_bytes()).expect("sample city parses");
        assert!((150..=300).contains(&list.len()), "{}", list.len());
        for c in &list {
            assert!((40.76..=40.90).contains(&c.location.lat), "{}", c.id);
            assert!((111.56..=111.80).contains(&c.location.lon), "{}", c.id);
            assert!((100.0..=300.0).contains(&c.geofence_m), "{}", c.id);
            assert!(!c.district.is_empty() && !c.street.is_empty() && !c.committee.is_empty());
            assert!(c.households > 0);
        }
        for d in ["新城区", "回民区", "玉泉区", "赛罕区"] {
            assert!(list.iter().filter(|c| c.district == d).count() >= 20, "{d}");
        }
    }
}
