//! Bulletins (docs/bulletins.md): the weekly bulletin (周通报) and the monthly ranking (月排名)
//! as XLSX (rust_xlsxwriter), CSV (the csv crate) and printable HTML (an askama template,
//! `server/templates/bulletin.html`). Columns are stable: the same headers in the same order
//! every time, documented in docs/bulletins.md.
//!
//! Everything here treats the report's text as hostile (notes come from inspectors, names from
//! the city's lists): text reaches a person only through [`crate::output::readable`], CSV text
//! cells through [`crate::output::spreadsheet_text`], XLSX text only as string cells, HTML only
//! through the template's escaping, and an attribute only from a checked value ([`BaseUrl`], a
//! well-formed media hash).

use crate::domain::calendar::day_label;
use crate::error::{ServerError, ServerResult};
use crate::model::Finding;
use crate::model::{DeviceAuth, RankingRow, ScopeKind};
use crate::output::{bulletin_style_hash, readable, spreadsheet_text};
use crate::store::Storage;
use askama::Template;
use fenlei_core::protocol::media::is_sha256_hex;
use rust_xlsxwriter::{Format as CellFormat, Workbook};
use std::borrow::Cow;

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

/// The file name of a report: `<stem>-<first day>.<ext>` (docs/bulletins.md).
pub fn file_name(kind: ReportKind, from_ms: i64, format: Format) -> String {
    format!(
        "{}-{}.{}",
        kind.file_stem(),
        day_label(from_ms),
        format.ext()
    )
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
        &crate::model::TaskFilter {
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
    /// Text as a person reads it ([`readable`]).
    Text(String),
    Num(f64),
}

impl Cell {
    fn text(t: &str) -> Cell {
        Cell::Text(readable(t).into_owned())
    }
}

fn ranking_cells(r: &RankingRow) -> Vec<Cell> {
    let mut cells = vec![
        Cell::Num(r.rank as f64),
        Cell::text(&r.key),
        Cell::text(&r.name),
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
        Cell::text(&day_label(f.started_at_ms)),
        Cell::text(&f.district),
        Cell::text(&f.street),
        Cell::text(&f.community_name),
        Cell::text(&format!("{} {}", f.item_code, f.item_title)),
        Cell::Num(f.deduction),
        Cell::text(f.note.as_deref().unwrap_or_default()),
        Cell::Num(f.photos.len() as f64),
        Cell::text(&f.inspection_id),
    ]
}

/// Where the HTML bulletin's photo links point (`?base=` of the route, `--base-url` of the CLI):
/// nothing (links relative to the page's server), an absolute path on it (`/fenlei`, behind a
/// proxy that serves the server under a prefix), or an absolute `http`/`https` URL without user,
/// query or fragment. Anything else is refused, so no request value reaches the page unchecked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BaseUrl(String);

/// Longest `base` accepted.
pub const MAX_BASE_CHARS: usize = 512;

impl BaseUrl {
    pub fn parse(text: &str) -> ServerResult<BaseUrl> {
        let bad = || {
            ServerError::BadRequest(
                "base must be an absolute http(s) URL without user, query or fragment, \
                 or a path of letters, digits and -._~ starting with a single /"
                    .into(),
            )
        };
        if text.is_empty() {
            return Ok(BaseUrl::default());
        }
        if text.len() > MAX_BASE_CHARS {
            return Err(bad());
        }
        if text.starts_with('/') {
            // `//host` and `/\host` are other servers to a browser.
            let path_only = !text.starts_with("//")
                && text
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~/".contains(&b));
            return match path_only {
                true => Ok(BaseUrl(text.trim_end_matches('/').to_string())),
                false => Err(bad()),
            };
        }
        let url = url::Url::parse(text).map_err(|_| bad())?;
        let plain = matches!(url.scheme(), "http" | "https")
            && url.host().is_some()
            && url.username().is_empty()
            && url.password().is_none()
            && url.query().is_none()
            && url.fragment().is_none();
        if !plain {
            return Err(bad());
        }
        // The parser's own serialisation: normalised and percent-encoded.
        Ok(BaseUrl(url.as_str().trim_end_matches('/').to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The thumbnail link of a photo, or `None` when `sha256` is not a well-formed hash.
    fn thumbnail(&self, sha256: &str) -> Option<String> {
        is_sha256_hex(sha256).then(|| format!("{}/v1/media/{sha256}?rendition=thumb", self.0))
    }
}

pub fn render(
    _storage: &dyn Storage,
    report: &Report,
    format: Format,
    base: &BaseUrl,
) -> ServerResult<Vec<u8>> {
    match format {
        Format::Xlsx => xlsx(report),
        Format::Csv => csv_ranking(report),
        Format::Html => Ok(html(report, base)?.into_bytes()),
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

/// Most characters an XLSX cell holds (Excel's limit; rust_xlsxwriter refuses longer strings).
const XLSX_MAX_CHARS: usize = 32_767;

/// A text cell's value in XLSX: a string cell (never a formula or a link, whatever it starts
/// with), cut with a visible mark where longer than a cell holds, so one long note cannot fail
/// the whole bulletin.
fn xlsx_text(t: &str) -> Cow<'_, str> {
    const CUT: &str = "…（已截断）";
    if t.chars().count() <= XLSX_MAX_CHARS {
        return Cow::Borrowed(t);
    }
    let keep = XLSX_MAX_CHARS - CUT.chars().count();
    Cow::Owned(t.chars().take(keep).chain(CUT.chars()).collect())
}

fn write_cells(
    sheet: &mut rust_xlsxwriter::Worksheet,
    row: u32,
    cells: &[Cell],
) -> ServerResult<()> {
    for (c, cell) in cells.iter().enumerate() {
        match cell {
            Cell::Text(t) => sheet.write_string(row, c as u16, xlsx_text(t)),
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
                    Cell::Text(t) => spreadsheet_text(&t),
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

/// The printable page (`server/templates/bulletin.html`). Every field is text the template
/// escapes; photos are a checked link or `None` (shown as a note, never as an image).
#[derive(Template)]
#[template(path = "bulletin.html")]
struct BulletinPage {
    page_csp: String,
    title: &'static str,
    first_day: String,
    last_day: String,
    open_rectifications: u32,
    overdue_rectifications: u32,
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
    findings: Vec<FindingView>,
}

struct FindingView {
    n: usize,
    district: String,
    street: String,
    community: String,
    item_code: String,
    item_title: String,
    deduction: String,
    day: String,
    note: String,
    photos: Vec<Option<String>>,
}

/// A printable page: summary, the ranking table, the worst findings with their photos
/// (thumbnails from `GET /v1/media/{sha256}?rendition=thumb`, relative to `base`).
fn html(report: &Report, base: &BaseUrl) -> ServerResult<String> {
    let text = |t: &str| readable(t).into_owned();
    let page = BulletinPage {
        // Images may come from another server when the page is saved and opened elsewhere (an
        // absolute `base`); served by this server, its header policy keeps them on it.
        page_csp: format!(
            "default-src 'none'; style-src '{}'; img-src 'self' http: https:; base-uri 'none'; \
             form-action 'none'",
            bulletin_style_hash()
        ),
        title: report.kind.title(),
        first_day: day_label(report.from_ms),
        last_day: day_label(report.to_ms - 1),
        open_rectifications: report.open_rectifications,
        overdue_rectifications: report.overdue_rectifications,
        headers: ranking_headers(report.by),
        rows: report
            .rows
            .iter()
            .map(|r| {
                ranking_cells(r)
                    .into_iter()
                    .map(|c| match c {
                        Cell::Text(t) => t,
                        Cell::Num(x) => format_number(x),
                    })
                    .collect()
            })
            .collect(),
        findings: report
            .findings
            .iter()
            .enumerate()
            .map(|(n, f)| FindingView {
                n: n + 1,
                district: text(&f.district),
                street: text(&f.street),
                community: text(&f.community_name),
                item_code: text(&f.item_code),
                item_title: text(&f.item_title),
                deduction: format_number(f.deduction),
                day: day_label(f.started_at_ms),
                note: text(f.note.as_deref().unwrap_or_default()),
                photos: f.photos.iter().map(|p| base.thumbnail(p)).collect(),
            })
            .collect(),
    };
    page.render()
        .map_err(|e| ServerError::Internal(format!("bulletin page: {e}")))
}

#[cfg(test)]
mod tests {
    //! The renderers fed hostile values directly, so the output is proven safe whatever the
    //! checks where documents enter let through.
    use super::*;
    use crate::output::is_bidi_control;
    use base64::Engine;
    use sha2::{Digest, Sha256};

    const GOOD: &str = "5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f";
    const CRAFTED: &[&str] = &[
        "\"><script>window.__pwned=1</script>",
        "x\" onerror=\"window.__pwned=1",
        "javascript:alert(1)",
        // Right length, wrong alphabet (upper case, a quote).
        "5F5F5F5F5F5F5F5F5F5F5F5F5F5F5F5F5F5F5F5F5F5F5F5F5F5F5F5F5F5F5F5F",
        "5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5\"",
        "",
    ];
    const NAME: &str =
        "=HYPERLINK(\"http://evil.example\",\"点我\")<script>window.__pwned=1</script>\u{202E}区小";
    const NOTE: &str =
        "\"onerror=alert(1) <img src=x onerror=alert(1)> @SUM(1+1) \u{2066}满溢\u{2069}\u{200F}";

    fn report() -> Report {
        Report {
            kind: ReportKind::Weekly,
            by: ScopeKind::Community,
            from_ms: 1_780_000_000_000,
            to_ms: 1_780_000_000_000 + 7 * 86_400_000,
            rows: vec![RankingRow {
                rank: 1,
                key: "-1+1".into(),
                name: NAME.into(),
                inspections: 2,
                average: -3.5,
                lowest: 90.25,
                vetoed: 0,
                communities_in_scope: 1,
                communities_inspected: 1,
                coverage: 1.0,
                open_rectifications: 1,
                overdue_rectifications: 0,
                grades: [("优秀".to_string(), 2)].into_iter().collect(),
            }],
            findings: vec![Finding {
                inspection_id: "insp-1".into(),
                community_id: "c1".into(),
                community_name: NAME.into(),
                street: "<b>街道</b>".into(),
                district: "'区'".into(),
                item_code: "C01".into(),
                item_title: "\"title\" onload=alert(1)".into(),
                deduction: 4.0,
                note: Some(NOTE.into()),
                started_at_ms: 1_780_000_000_000,
                photos: std::iter::once(GOOD)
                    .chain(CRAFTED.iter().copied())
                    .map(str::to_string)
                    .collect(),
            }],
            open_rectifications: 1,
            overdue_rectifications: 0,
        }
    }

    fn srcs(html: &str) -> Vec<&str> {
        html.split(" src=\"")
            .skip(1)
            .map(|rest| rest.split('"').next().unwrap())
            .collect()
    }

    #[test]
    fn html_escapes_text_and_links_only_well_formed_hashes() {
        let base = BaseUrl::parse("https://fenlei.example.org/").unwrap();
        let html = html(&report(), &base).unwrap();
        // No markup but the template's own: one image (the good hash), no script, no handler.
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img src=x"), "{html}");
        assert!(!html.contains("<b>"), "{html}");
        assert!(
            !html.contains("\"onerror") && !html.contains("\" onload"),
            "{html}"
        );
        assert_eq!(
            srcs(&html),
            vec![format!(
                "https://fenlei.example.org/v1/media/{GOOD}?rendition=thumb"
            )],
            "{html}"
        );
        // Every crafted hash is a visible note instead of an image.
        assert_eq!(
            html.matches("data-testid=\"photo-invalid\"").count(),
            CRAFTED.len(),
            "{html}"
        );
        assert!(html.contains("照片编号无效"), "{html}");
        // The text is there, escaped, without bidi controls.
        assert!(
            html.contains("&#60;script&#62;window.__pwned=1&#60;/script&#62;"),
            "{html}"
        );
        assert!(html.contains("@SUM(1+1)"), "{html}");
        assert!(!html.contains(is_bidi_control), "{html}");
        assert!(html.contains("区小") && html.contains("满溢"), "{html}");
    }

    #[test]
    fn the_page_style_is_the_one_the_policy_allows() {
        let html = html(&report(), &BaseUrl::default()).unwrap();
        let style = html
            .split("<style>")
            .nth(1)
            .and_then(|s| s.split("</style>").next())
            .unwrap();
        let digest = Sha256::digest(style.as_bytes());
        let hash = format!(
            "sha256-{}",
            base64::engine::general_purpose::STANDARD.encode(digest)
        );
        assert_eq!(hash, bulletin_style_hash());
        let policy = crate::output::CSP.to_str().unwrap().to_string();
        assert!(
            policy.contains(&format!("style-src 'self' '{hash}'")),
            "{policy}"
        );
        // The page's own policy (for saved copies): no script at all.
        assert!(
            html.contains("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src &#39;none&#39;; style-src &#39;sha256-"),
            "{html}"
        );
        assert_eq!(html.matches("<style").count(), 1);
        assert!(
            !html.contains(" style="),
            "no inline style attributes: {html}"
        );
    }

    #[test]
    fn csv_text_cells_cannot_start_formulas_and_numbers_stay_numbers() {
        let bytes = csv_ranking(&report()).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert!(!text.contains(is_bidi_control), "{text}");
        let mut reader = csv::Reader::from_reader(text.trim_start_matches('\u{feff}').as_bytes());
        let row = reader.records().next().unwrap().unwrap();
        assert_eq!(&row[0], "1");
        assert_eq!(&row[1], "'-1+1", "a text cell that reads as a formula");
        assert!(
            row[2].starts_with("'=HYPERLINK(\"http://evil.example\""),
            "{row:?}"
        );
        assert!(row[2].ends_with("区小"), "{row:?}");
        assert_eq!(&row[4], "-3.50", "a negative number is a number");
        assert_eq!(&row[5], "90.25");
        assert_eq!(&row[12], "2");
    }

    #[test]
    fn xlsx_text_is_string_cells_never_formulas_and_long_text_is_cut() {
        use calamine::{Data, Reader, Xlsx};
        let mut r = report();
        let long = "长".repeat(40_000);
        r.findings.push(Finding {
            note: Some(long),
            ..r.findings[0].clone()
        });
        let bytes = xlsx(&r).unwrap();
        let mut book: Xlsx<_> = Xlsx::new(std::io::Cursor::new(bytes)).unwrap();
        for sheet in ["排名", "问题清单"] {
            let formulas = book.worksheet_formula(sheet).unwrap();
            assert!(
                formulas.used_cells().all(|(_, _, f)| f.is_empty()),
                "{sheet}"
            );
        }
        let ranking = book.worksheet_range("排名").unwrap();
        assert_eq!(
            ranking.get_value((4, 1)),
            Some(&Data::String("-1+1".into()))
        );
        assert_eq!(
            ranking.get_value((4, 2)),
            Some(&Data::String(NAME.replace(is_bidi_control, "")))
        );
        assert_eq!(ranking.get_value((4, 4)), Some(&Data::Float(-3.5)));
        let findings = book.worksheet_range("问题清单").unwrap();
        assert_eq!(
            findings.get_value((1, 7)),
            Some(&Data::String(NOTE.replace(is_bidi_control, "")))
        );
        let Some(Data::String(cut)) = findings.get_value((2, 7)) else {
            panic!("the long note is a string cell");
        };
        assert_eq!(cut.chars().count(), XLSX_MAX_CHARS);
        assert!(cut.ends_with("…（已截断）"));
    }

    #[test]
    fn base_is_a_plain_url_or_path_or_refused() {
        for (given, kept) in [
            ("", ""),
            ("/", ""),
            ("/fenlei/", "/fenlei"),
            ("/a-b_c.d~e/f", "/a-b_c.d~e/f"),
            ("https://fenlei.example.org", "https://fenlei.example.org"),
            ("https://fenlei.example.org/", "https://fenlei.example.org"),
            (
                "HTTP://Fenlei.Example.org:8080/x/",
                "http://fenlei.example.org:8080/x",
            ),
            ("https://分类.example/", "https://xn--kbry84h.example"),
            (
                "https://fenlei.example.org/a b",
                "https://fenlei.example.org/a%20b",
            ),
        ] {
            assert_eq!(BaseUrl::parse(given).unwrap().as_str(), kept, "{given:?}");
        }
        for bad in [
            "\"><script>alert(1)</script>",
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            "java\tscript:alert(1)",
            "data:text/html,x",
            "vbscript:x",
            "ftp://example.org",
            "//evil.example",
            "/\\evil.example",
            "/a\"b",
            "/a<b",
            "/a?b",
            "/a#b",
            "relative",
            "https://",
            "https://user@evil.example",
            "https://user:pw@evil.example",
            "https://evil.example/?q",
            "https://evil.example/#f",
            "file:///etc/passwd",
            &format!("https://example.org/{}", "a".repeat(600)),
        ] {
            let e = BaseUrl::parse(bad).unwrap_err();
            assert!(matches!(e, ServerError::BadRequest(_)), "{bad:?}");
            assert!(!e.to_string().contains(bad), "not reflected: {e}");
        }
    }
}
