//! Bulletins (docs/bulletins.md): the weekly bulletin (周通报) and the monthly ranking (月排名)
//! as XLSX (rust_xlsxwriter), CSV (the csv crate) and printable HTML. Columns are stable: the
//! same headers in the same order every time, documented in docs/bulletins.md.

use crate::error::{ServerError, ServerResult};
use crate::storage::{DeviceAuth, RankingRow, ScopeKind, Storage};
use crate::supervision::Finding;
use rust_xlsxwriter::{Format as CellFormat, Workbook};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    /// 周通报: a week, communities ranked, the worst findings with photos.
    Weekly,
    /// 月排名: a month, streets ranked by default.
    Monthly,
}

impl ReportKind {
    pub fn parse(s: &str) -> ServerResult<ReportKind> {
        match s {
            "weekly" => Ok(ReportKind::Weekly),
            "monthly" => Ok(ReportKind::Monthly),
            other => Err(ServerError::NotFound(format!(
                "no report {other:?} (weekly or monthly)"
            ))),
        }
    }
    pub fn period(self) -> &'static str {
        match self {
            ReportKind::Weekly => "week",
            ReportKind::Monthly => "month",
        }
    }
    pub fn default_by(self) -> &'static str {
        match self {
            ReportKind::Weekly => "community",
            ReportKind::Monthly => "street",
        }
    }
    pub fn file_stem(self) -> &'static str {
        match self {
            ReportKind::Weekly => "weekly-bulletin",
            ReportKind::Monthly => "monthly-ranking",
        }
    }
    fn title(self) -> &'static str {
        match self {
            ReportKind::Weekly => "生活垃圾分类工作周通报",
            ReportKind::Monthly => "生活垃圾分类工作月排名",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Xlsx,
    Csv,
    Html,
}

impl Format {
    pub fn parse(s: &str) -> ServerResult<Format> {
        match s {
            "xlsx" => Ok(Format::Xlsx),
            "csv" => Ok(Format::Csv),
            "html" => Ok(Format::Html),
            other => Err(ServerError::NotFound(format!(
                "no report format {other:?} (xlsx, csv or html)"
            ))),
        }
    }
    pub fn ext(self) -> &'static str {
        match self {
            Format::Xlsx => "xlsx",
            Format::Csv => "csv",
            Format::Html => "html",
        }
    }
    pub fn mime(self) -> &'static str {
        match self {
            Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Html => "text/html; charset=utf-8",
        }
    }
}

/// The grade columns every ranking sheet has, in this order; other labels count under 其他等级.
pub const GRADE_COLUMNS: &[&str] = &["优秀", "良好", "合格", "不合格"];

/// Everything one bulletin shows.
#[derive(Debug, Clone)]
pub struct Report {
    pub kind: ReportKind,
    pub by: ScopeKind,
    pub from_ms: i64,
    pub to_ms: i64,
    pub rows: Vec<RankingRow>,
    pub findings: Vec<Finding>,
    pub open_rectifications: u32,
    pub overdue_rectifications: u32,
}

fn parse_by(by: &str) -> ServerResult<ScopeKind> {
    match by {
        "community" => Ok(ScopeKind::Community),
        "street" => Ok(ScopeKind::Street),
        "district" => Ok(ScopeKind::District),
        other => Err(ServerError::BadRequest(format!(
            "by must be community, street or district, not {other:?}"
        ))),
    }
}

/// The day `YYYY-MM-DD` (UTC+8) of a time.
/// The file name of a report: `<stem>-<first day>.<ext>` (docs/bulletins.md).
pub fn file_name(kind: ReportKind, from_ms: i64, format: Format) -> String {
    format!(
        "{}-{}.{}",
        kind.file_stem(),
        day_label(from_ms),
        format.ext()
    )
}

pub fn day_label(ms: i64) -> String {
    let (y, m, d) = crate::api::civil_date(ms);
    format!("{y:04}-{m:02}-{d:02}")
}

pub fn build(
    storage: &dyn Storage,
    auth: &DeviceAuth,
    kind: ReportKind,
    by: &str,
    from_ms: i64,
    to_ms: i64,
) -> ServerResult<Report> {
    let by = parse_by(by)?;
    let rows = storage.rankings(auth, by, from_ms, to_ms)?;
    let findings = storage.worst_findings(auth, from_ms, to_ms, 10)?;
    let tasks = storage.list_tasks(
        auth,
        &crate::supervision::TaskFilter {
            limit: Some(5000),
            ..Default::default()
        },
    )?;
    let open = tasks.iter().filter(|t| t.status != "closed").count() as u32;
    let overdue = tasks.iter().filter(|t| t.overdue).count() as u32;
    Ok(Report {
        kind,
        by,
        from_ms,
        to_ms,
        rows,
        findings,
        open_rectifications: open,
        overdue_rectifications: overdue,
    })
}

/// The ranking sheet's headers (stable; docs/bulletins.md).
pub fn ranking_headers(by: ScopeKind) -> Vec<&'static str> {
    let mut h = vec![
        "排名",
        "编码",
        match by {
            ScopeKind::Community => "小区",
            ScopeKind::Street => "街道",
            ScopeKind::District => "区",
        },
        "检查次数",
        "平均得分率(%)",
        "最低得分率(%)",
        "一票否决次数",
        "在管小区数",
        "已检查小区数",
        "覆盖率(%)",
        "未销号整改",
        "逾期整改",
    ];
    h.extend_from_slice(GRADE_COLUMNS);
    h.push("其他等级");
    h
}

enum Cell {
    Text(String),
    Num(f64),
}

fn ranking_cells(r: &RankingRow) -> Vec<Cell> {
    let mut cells = vec![
        Cell::Num(r.rank as f64),
        Cell::Text(r.key.clone()),
        Cell::Text(r.name.clone()),
        Cell::Num(r.inspections as f64),
        Cell::Num(r.average),
        Cell::Num(r.lowest),
        Cell::Num(r.vetoed as f64),
        Cell::Num(r.communities_in_scope as f64),
        Cell::Num(r.communities_inspected as f64),
        Cell::Num((r.coverage * 10_000.0).round() / 100.0),
        Cell::Num(r.open_rectifications as f64),
        Cell::Num(r.overdue_rectifications as f64),
    ];
    for g in GRADE_COLUMNS {
        cells.push(Cell::Num(r.grades.get(*g).copied().unwrap_or(0) as f64));
    }
    let other: u32 = r
        .grades
        .iter()
        .filter(|(k, _)| !GRADE_COLUMNS.contains(&k.as_str()))
        .map(|(_, v)| v)
        .sum();
    cells.push(Cell::Num(other as f64));
    cells
}

/// The findings sheet's headers (stable; docs/bulletins.md).
pub const FINDING_HEADERS: &[&str] = &[
    "序号",
    "检查时间",
    "区",
    "街道",
    "小区",
    "检查项",
    "扣分",
    "问题说明",
    "照片",
    "检查记录",
];

fn finding_cells(n: usize, f: &Finding) -> Vec<Cell> {
    vec![
        Cell::Num(n as f64 + 1.0),
        Cell::Text(day_label(f.started_at_ms)),
        Cell::Text(f.district.clone()),
        Cell::Text(f.street.clone()),
        Cell::Text(f.community_name.clone()),
        Cell::Text(format!("{} {}", f.item_code, f.item_title)),
        Cell::Num(f.deduction),
        Cell::Text(f.note.clone().unwrap_or_default()),
        Cell::Num(f.photos.len() as f64),
        Cell::Text(f.inspection_id.clone()),
    ]
}

pub fn render(
    _storage: &dyn Storage,
    report: &Report,
    format: Format,
    base_url: &str,
) -> ServerResult<Vec<u8>> {
    match format {
        Format::Xlsx => xlsx(report),
        Format::Csv => csv_ranking(report),
        Format::Html => Ok(html(report, base_url).into_bytes()),
    }
}

fn xlsx_err(e: rust_xlsxwriter::XlsxError) -> ServerError {
    ServerError::Internal(format!("xlsx: {e}"))
}

fn xlsx(report: &Report) -> ServerResult<Vec<u8>> {
    let mut book = Workbook::new();
    let bold = CellFormat::new().set_bold();
    let title_fmt = CellFormat::new().set_bold().set_font_size(14);
    let sheet = book.add_worksheet();
    sheet.set_name("排名").map_err(xlsx_err)?;
    sheet
        .write_string_with_format(0, 0, report.kind.title(), &title_fmt)
        .map_err(xlsx_err)?;
    sheet
        .write_string(
            1,
            0,
            format!(
                "统计周期：{} 至 {}",
                day_label(report.from_ms),
                day_label(report.to_ms - 1)
            ),
        )
        .map_err(xlsx_err)?;
    let headers = ranking_headers(report.by);
    for (c, h) in headers.iter().enumerate() {
        sheet
            .write_string_with_format(3, c as u16, *h, &bold)
            .map_err(xlsx_err)?;
    }
    for (n, row) in report.rows.iter().enumerate() {
        write_cells(sheet, 4 + n as u32, &ranking_cells(row))?;
    }
    sheet.set_column_width(2, 24).map_err(xlsx_err)?;

    let sheet = book.add_worksheet();
    sheet.set_name("问题清单").map_err(xlsx_err)?;
    for (c, h) in FINDING_HEADERS.iter().enumerate() {
        sheet
            .write_string_with_format(0, c as u16, *h, &bold)
            .map_err(xlsx_err)?;
    }
    for (n, f) in report.findings.iter().enumerate() {
        write_cells(sheet, 1 + n as u32, &finding_cells(n, f))?;
    }
    book.save_to_buffer().map_err(xlsx_err)
}

fn write_cells(
    sheet: &mut rust_xlsxwriter::Worksheet,
    row: u32,
    cells: &[Cell],
) -> ServerResult<()> {
    for (c, cell) in cells.iter().enumerate() {
        match cell {
            Cell::Text(t) => sheet.write_string(row, c as u16, t),
            Cell::Num(x) => sheet.write_number(row, c as u16, *x),
        }
        .map_err(xlsx_err)?;
    }
    Ok(())
}

/// CSV: the ranking sheet only, UTF-8 with a BOM so spreadsheet programs read the Chinese headers.
fn csv_ranking(report: &Report) -> ServerResult<Vec<u8>> {
    let mut out = vec![0xEF, 0xBB, 0xBF];
    {
        let mut w = csv::Writer::from_writer(&mut out);
        let io = |e: csv::Error| ServerError::Internal(format!("csv: {e}"));
        w.write_record(ranking_headers(report.by)).map_err(io)?;
        for row in &report.rows {
            let record: Vec<String> = ranking_cells(row)
                .into_iter()
                .map(|c| match c {
                    Cell::Text(t) => t,
                    Cell::Num(x) => format_number(x),
                })
                .collect();
            w.write_record(&record).map_err(io)?;
        }
        w.flush()
            .map_err(|e| ServerError::Internal(format!("csv: {e}")))?;
    }
    Ok(out)
}

fn format_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x:.2}")
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A printable page: summary, the ranking table, the worst findings with their photos (thumbnails
/// from `GET /v1/media/{sha256}?rendition=thumb`, relative to `base_url`).
fn html(report: &Report, base_url: &str) -> String {
    let base = base_url.trim_end_matches('/');
    let mut h = String::new();
    h += "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">";
    h += &format!("<title>{}</title>", report.kind.title());
    h += "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;width:100%;margin-bottom:2em}\
th,td{border:1px solid #999;padding:4px 6px;font-size:12px}th{background:#eee}\
.finding{page-break-inside:avoid;margin-bottom:1.5em}.finding img{height:160px;margin:4px;border:1px solid #ccc}\
@media print{body{margin:0}}</style></head><body>";
    h += &format!("<h1>{}</h1>", report.kind.title());
    h += &format!(
        "<p>统计周期：{} 至 {}。共 {} 个排名单位；未销号整改 {} 项，其中逾期 {} 项。</p>",
        day_label(report.from_ms),
        day_label(report.to_ms - 1),
        report.rows.len(),
        report.open_rectifications,
        report.overdue_rectifications
    );
    h += "<h2>排名</h2><table><thead><tr>";
    for col in ranking_headers(report.by) {
        h += &format!("<th>{}</th>", esc(col));
    }
    h += "</tr></thead><tbody>";
    for row in &report.rows {
        h += "<tr>";
        for c in ranking_cells(row) {
            match c {
                Cell::Text(t) => h += &format!("<td>{}</td>", esc(&t)),
                Cell::Num(x) => h += &format!("<td>{}</td>", format_number(x)),
            }
        }
        h += "</tr>";
    }
    h += "</tbody></table><h2>突出问题</h2>";
    if report.findings.is_empty() {
        h += "<p>本期无扣分问题。</p>";
    }
    for (n, f) in report.findings.iter().enumerate() {
        h += "<div class=\"finding\">";
        h += &format!(
            "<h3>{}. {} {} {} — {} {}（扣 {} 分）</h3>",
            n + 1,
            esc(&f.district),
            esc(&f.street),
            esc(&f.community_name),
            esc(&f.item_code),
            esc(&f.item_title),
            format_number(f.deduction)
        );
        h += &format!(
            "<p>检查时间：{}。{}</p>",
            day_label(f.started_at_ms),
            esc(f.note.as_deref().unwrap_or(""))
        );
        for p in &f.photos {
            h += &format!(
                "<img src=\"{base}/v1/media/{p}?rendition=thumb\" alt=\"{}\">",
                esc(&f.item_title)
            );
        }
        h += "</div>";
    }
    h += "</body></html>";
    h
}
