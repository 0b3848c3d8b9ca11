//! The community-list importer: headers, aliases, defaults, coordinate systems, every error.

use fenlei_core::CoreError;
use fenlei_core::community::{Community, DEFAULT_GEOFENCE_M, parse_csv};
use fenlei_core::geo::{CoordSystem, LatLon, distance_m, from_wgs84};
use proptest::prelude::*;

const HEADER: &str = "小区编号,小区名称,区,街道,社区,地址,纬度,经度,坐标系,围栏半径,物业公司,户数";
const ROW: &str = "150105-0001,如意和苑,赛罕区,大学东路街道,如意社区,赛罕区大学东街18号,40.8123,111.7234,WGS84,120,呼和浩特市如意物业服务有限公司,860";

fn ok(csv: &str) -> Vec<Community> {
    parse_csv(csv.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{csv}"))
}

/// The (row, reason) of an import that must fail.
fn err(csv: &str) -> (u64, String) {
    match parse_csv(csv.as_bytes()) {
        Err(CoreError::InvalidCsvRow { row, reason }) => (row, reason),
        other => panic!("expected InvalidCsvRow, got {other:?}\n{csv}"),
    }
}

fn file(rows: &[&str]) -> String {
    let mut s = HEADER.to_string();
    for r in rows {
        s.push('\n');
        s.push_str(r);
    }
    s.push('\n');
    s
}

/// ROW with column `i` replaced.
fn row_with(i: usize, value: &str) -> String {
    let mut cells: Vec<&str> = ROW.split(',').collect();
    cells[i] = value;
    cells.join(",")
}

#[test]
fn parses_a_full_chinese_row() {
    let list = ok(&file(&[ROW]));
    assert_eq!(list.len(), 1);
    let c = &list[0];
    assert_eq!(c.id, "150105-0001");
    assert_eq!(c.name, "如意和苑");
    assert_eq!(c.district, "赛罕区");
    assert_eq!(c.street, "大学东路街道");
    assert_eq!(c.committee, "如意社区");
    assert_eq!(c.address, "赛罕区大学东街18号");
    assert_eq!(
        c.location,
        LatLon {
            lat: 40.8123,
            lon: 111.7234
        }
    );
    assert_eq!(c.geofence_m, 120.0);
    assert_eq!(c.property_manager, "呼和浩特市如意物业服务有限公司");
    assert_eq!(c.households, 860);
}

#[test]
fn english_headers_any_order_extra_columns_and_defaults() {
    let csv = "Remark, longitude ,Latitude,NAME,id,extra\n\
               old compound,111.65,40.83,  Tiedao Jiashuyuan ,  A-1  ,x\n";
    let c = &ok(csv)[0];
    assert_eq!(
        (c.id.as_str(), c.name.as_str()),
        ("A-1", "Tiedao Jiashuyuan")
    );
    assert_eq!(
        c.location,
        LatLon {
            lat: 40.83,
            lon: 111.65
        }
    );
    assert_eq!(c.geofence_m, DEFAULT_GEOFENCE_M);
    assert_eq!(c.households, 0);
    assert_eq!(
        (c.district.as_str(), c.street.as_str(), c.address.as_str()),
        ("", "", "")
    );
    assert_eq!(c.property_manager, "");
}

#[test]
fn header_aliases() {
    // Each line: one spelling per column, in the canonical order of HEADER.
    let spellings = [
        "编号,名称,区县,街道办事处,社区居委会,详细地址,latitude,lng,coord_system,geofence_m,物业,总户数",
        "id,name,district,street,committee,address,lat,lon,crs,radius_m,property_manager,households",
        "小区代码,小区名,区/县,所属街道,居委会,小区地址,纬度,long,坐标系统,围栏半径（米）,物业服务企业,住户数",
        "code,小区,所属区县,街道办,所属社区,地址,LAT,LONGITUDE,Coord System,电子围栏半径,物业管理单位,户数（户）",
        "community_id,community_name,行政区,乡镇街道,committee,address,Latitude,经度,坐标系,Geofence,property,户数",
    ];
    for header in spellings {
        let c = &ok(&format!("{header}\n{ROW}\n"))[0];
        assert_eq!(c.id, "150105-0001", "{header}");
        assert_eq!(c.name, "如意和苑", "{header}");
        assert_eq!(c.district, "赛罕区", "{header}");
        assert_eq!(c.street, "大学东路街道", "{header}");
        assert_eq!(c.committee, "如意社区", "{header}");
        assert_eq!(c.address, "赛罕区大学东街18号", "{header}");
        assert_eq!(
            c.location,
            LatLon {
                lat: 40.8123,
                lon: 111.7234
            },
            "{header}"
        );
        assert_eq!(c.geofence_m, 120.0, "{header}");
        assert_eq!(
            c.property_manager, "呼和浩特市如意物业服务有限公司",
            "{header}"
        );
        assert_eq!(c.households, 860, "{header}");
    }
}

#[test]
fn bom_crlf_and_quotes() {
    let plain = ok(&file(&[ROW]));
    let with_bom = format!("\u{feff}{}", file(&[ROW]).replace('\n', "\r\n"));
    assert_eq!(ok(&with_bom), plain);
    let quoted = format!(
        "{HEADER}\n{}\n",
        row_with(5, "\"赛罕区大学东街18号, 2号门\"")
    );
    assert_eq!(ok(&quoted)[0].address, "赛罕区大学东街18号, 2号门");
}

#[test]
fn gcj02_and_bd09_input_is_converted_to_wgs84() {
    let wgs = LatLon {
        lat: 40.8123,
        lon: 111.7234,
    };
    for (name, cs) in [
        ("GCJ02", CoordSystem::Gcj02),
        ("bd-09", CoordSystem::Bd09),
        ("高德", CoordSystem::Gcj02),
    ] {
        let p = from_wgs84(wgs, cs);
        let row = row_with(8, name);
        let row = row
            .replace("40.8123", &p.lat.to_string())
            .replace("111.7234", &p.lon.to_string());
        let c = &ok(&file(&[&row]))[0];
        let d = distance_m(c.location, wgs);
        assert!(d < 0.01, "{name}: {d} m off");
        // The raw map coordinates would have been hundreds of metres off.
        assert!(distance_m(p, wgs) > 100.0);
    }
    // Empty coordinate-system cell: WGS-84.
    assert_eq!(ok(&file(&[&row_with(8, "")]))[0].location, wgs);
}

#[test]
fn blank_and_empty_rows_are_skipped() {
    let row2 = ROW.replace("150105-0001", "150105-0002");
    let csv = format!("{HEADER}\n{ROW}\n\n,,,,,,,,,,,\n{row2}\n , ,,,,,,,,,,\n");
    assert_eq!(ok(&csv).len(), 2);
    assert!(ok(HEADER).is_empty());
}

#[test]
fn missing_required_columns() {
    for (drop, label) in [
        ("小区编号", "id"),
        ("小区名称", "name"),
        ("纬度", "lat"),
        ("经度", "lon"),
    ] {
        let header = HEADER.replace(drop, "备注");
        let (row, reason) = err(&format!("{header}\n{ROW}\n"));
        assert_eq!(row, 1);
        assert!(
            reason.contains("missing required column") && reason.contains(label),
            "{reason}"
        );
    }
}

#[test]
fn ambiguous_header() {
    let (row, reason) = err(&format!("{HEADER},名称\n{ROW},x\n"));
    assert_eq!(row, 1);
    assert!(reason.contains("columns 2 and 13"), "{reason}");
}

#[test]
fn empty_file_and_non_utf8() {
    assert_eq!(err("").0, 1);
    assert_eq!(err("\u{feff}").0, 1);
    // "小区编号" in GBK.
    let mut gbk = b"\xd0\xa1\xc7\xf8\xb1\xe0\xba\xc5,name,lat,lon\n".to_vec();
    let (row, reason) = match parse_csv(&gbk) {
        Err(CoreError::InvalidCsvRow { row, reason }) => (row, reason),
        other => panic!("{other:?}"),
    };
    assert_eq!(row, 1);
    assert!(reason.contains("UTF-8"), "{reason}");
    // A GBK cell in an otherwise UTF-8 file.
    gbk = b"id,name,lat,lon\n1,".to_vec();
    gbk.extend_from_slice(b"\xc8\xe7\xd2\xe2,40.8,111.7\n");
    match parse_csv(&gbk) {
        Err(CoreError::InvalidCsvRow { row: 2, reason }) => {
            assert!(reason.contains("name"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

/// (column index in HEADER, bad value, expected words in the reason)
const BAD_CELLS: &[(usize, &str, &str)] = &[
    (0, "", "小区编号 is empty"),
    (1, "  ", "小区名称 is empty"),
    (6, "", "纬度 is empty"),
    (6, "北纬40度", "纬度 is not a number"),
    (6, "NaN", "纬度 is not a number"),
    (6, "inf", "纬度 is not a number"),
    (6, "95", "纬度 is outside [-90, 90]"),
    (7, "181", "经度 is outside [-180, 180]"),
    (7, "111,7", "fields"),
    (8, "UTM", "坐标系 is not one of"),
    (9, "0", "围栏半径 must be more than 0"),
    (9, "-50", "围栏半径 must be more than 0"),
    (9, "9000", "at most 5000"),
    (9, "150米", "围栏半径 is not a number"),
    (11, "-3", "户数 is negative"),
    (11, "12.5", "户数 is not a whole number"),
    (11, "五百", "户数 is not a whole number"),
    (11, "99999999999", "户数 is too large"),
];

#[test]
fn bad_cells_name_the_row_and_column() {
    for &(i, value, expect) in BAD_CELLS {
        let bad = row_with(i, value).replace("150105-0001", "150105-0009");
        let other = ROW.replace("150105-0001", "150105-0002");
        let (row, reason) = err(&file(&[ROW, &other, &bad]));
        assert_eq!(row, 4, "{value:?}: {reason}");
        assert!(
            reason.contains(expect),
            "{value:?}: expected {expect:?} in {reason:?}"
        );
    }
}

#[test]
fn swapped_and_zero_coordinates() {
    let swapped = ROW.replace("40.8123,111.7234", "111.7234,40.8123");
    let (_, reason) = err(&file(&[&swapped]));
    assert!(reason.contains("swapped"), "{reason}");
    let zero = ROW.replace("40.8123,111.7234", "0,0");
    let (_, reason) = err(&file(&[&zero]));
    assert!(reason.contains("missing?"), "{reason}");
}

#[test]
fn wrong_field_counts() {
    let (row, reason) = err(&file(&[ROW, &format!("{},x", ROW.replace("0001", "0002"))]));
    assert_eq!(row, 3);
    assert!(
        reason.contains("13 fields but the header has 12"),
        "{reason}"
    );
    let short = "150105-0003,如意和苑,赛罕区";
    let (row, reason) = err(&file(&[ROW, short]));
    assert_eq!(row, 3);
    assert!(reason.contains("3 fields"), "{reason}");
}

#[test]
fn duplicate_id() {
    let other = ROW.replace("150105-0001", "150105-0002");
    let dup = ROW.replace("如意和苑", "如意和苑二期");
    let (row, reason) = err(&file(&[ROW, &other, &dup]));
    assert_eq!(row, 4);
    assert!(
        reason.contains("duplicate id") && reason.contains("row 2"),
        "{reason}"
    );
    // Surrounding spaces do not make a different id.
    let spaced = ROW.replace("150105-0001", " 150105-0001 ");
    assert_eq!(err(&file(&[ROW, &spaced])).0, 3);
}

#[test]
fn row_numbers_are_spreadsheet_rows() {
    // A quoted address with a line break is one spreadsheet row spanning two lines.
    let multi = row_with(5, "\"赛罕区大学东街18号\n2号门\"");
    let r2 = ROW.replace("0001", "0002");
    let bad = row_with(11, "-1").replace("0001", "0003");
    assert_eq!(err(&file(&[&multi, &r2, &bad])).0, 4);
    // With CRLF and a BOM too.
    let crlf = format!(
        "\u{feff}{}",
        file(&[&multi, &r2, &bad]).replace('\n', "\r\n")
    );
    assert_eq!(err(&crlf).0, 4);
    // A blank line shows as an empty spreadsheet row, so it counts.
    assert_eq!(err(&format!("{HEADER}\n{ROW}\n\n{bad}\n")).0, 4);
    assert_eq!(err(&format!("{HEADER}\r\n{ROW}\r\n\r\n\r\n{bad}\r\n")).0, 5);
    assert_eq!(err(&format!("\n{HEADER}\n{bad}\n")).0, 3);
    // Old Mac line ends (lone CR).
    assert_eq!(err(&format!("{HEADER}\r{ROW}\r{bad}\r")).0, 3);
    // Errors in the header itself are on its row.
    assert_eq!(
        err(&format!("\r\n\r\nfoo,bar\r\n{ROW}")),
        (3, err("foo,bar").1)
    );
}

#[test]
fn messages_carry_no_cell_values() {
    let bad = "150105-0002,张家大院,赛罕区,大学东路街道,如意社区,秘密胡同7号,40.8,111.7,WGS84,120,张三物业,-5";
    let (_, reason) = err(&file(&[bad]));
    for secret in [
        "张家大院",
        "秘密胡同",
        "张三",
        "40.8",
        "111.7",
        "-5",
        "150105-0002",
    ] {
        assert!(!reason.contains(secret), "{reason:?} echoes {secret}");
    }
    let e = parse_csv(file(&[ROW, ROW]).as_bytes())
        .unwrap_err()
        .to_string();
    assert!(!e.contains("150105-0001"), "{e}");
}

#[test]
fn three_thousand_rows() {
    let mut csv = String::from("\u{feff}");
    csv.push_str(HEADER);
    csv.push_str("\r\n");
    for i in 0..3000u32 {
        let lat = 40.78 + f64::from(i % 100) * 0.001;
        let lon = 111.58 + f64::from(i / 100) * 0.006;
        let cs = ["WGS84", "GCJ02", "BD09"][(i % 3) as usize];
        csv.push_str(&format!(
            "HH-{i:05},小区{i},新城区,东街街道,社区{},地址{i}号,{lat:.6},{lon:.6},{cs},{},物业{},{}\r\n",
            i % 40,
            100 + i % 200,
            i % 17,
            50 + i
        ));
    }
    let list = ok(&csv);
    assert_eq!(list.len(), 3000);
    assert_eq!(list[2999].id, "HH-02999");
    assert_eq!(list[2999].households, 3049);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = parse_csv(&bytes);
    }

    #[test]
    fn never_panics_on_csv_like_text(body in "[0-9a-z,.\"\\-\r\n 　\u{feff}小区纬度e+]{0,300}") {
        let _ = parse_csv(format!("{HEADER}\n{body}").as_bytes());
        let _ = parse_csv(format!("id,name,lat,lon,坐标系\n{body}").as_bytes());
        let _ = parse_csv(body.as_bytes());
    }

    #[test]
    fn any_valid_row_round_trips(
        lat in 18.0f64..53.0,
        lon in 74.0f64..134.0,
        households in 0u32..100_000,
        geofence in 1.0f64..5000.0,
    ) {
        let csv = format!("id,name,lat,lon,households,geofence_m\nx,y,{lat},{lon},{households},{geofence}\n");
        let c = &parse_csv(csv.as_bytes()).unwrap()[0];
        prop_assert_eq!(c.location, LatLon { lat, lon });
        prop_assert_eq!(c.households, households);
        prop_assert_eq!(c.geofence_m, geofence);
    }
}

#[test]
fn examples_in_the_docs_parse() {
    let doc = include_str!("../../docs/community-csv.md");
    let blocks: Vec<&str> = doc
        .split("```csv\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap_or_default())
        .collect();
    assert_eq!(blocks.len(), 2);
    let first = ok(blocks[0]);
    assert_eq!(first.len(), 2);
    assert_eq!(first[1].address, "新城区锡林北路12号, 东门");
    assert_eq!(first[1].households, 212);
    assert_eq!(ok(blocks[1]).len(), 1);
}
