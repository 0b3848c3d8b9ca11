//! From the raw file to a validated [`Standard`]. Each check names the item (or section, or
//! `grades`) at fault, so that the person who wrote the file can find the line to fix.

use super::raw::{RawBand, RawFinding, RawGrade, RawItem, RawSection, RawStandard};
use super::{
    FORMAT_VERSION, Finding, GradeBand, Item, NotApplicablePolicy, RateBand, Rule, Section,
    Standard, to_hundredths,
};
use crate::{CoreError, Result};
use std::collections::HashSet;

/// Largest number of points any figure may have. Far above any real standard; it keeps every sum
/// and product of the engine (counts up to u32::MAX, sample scaling) well inside i64.
const MAX_POINTS_VALUE: f64 = 100_000.0;
const MAX_CODE_LEN: usize = 32;
const RULE_KINDS: &str = "fixed, per_occurrence, range, rate_bands, veto, bonus";

fn invalid(at: Option<&str>, problem: impl Into<String>) -> CoreError {
    CoreError::InvalidStandard {
        item: at.map(str::to_owned),
        problem: problem.into(),
    }
}

pub(super) fn parse(text: &str) -> Result<Standard> {
    let raw: RawStandard = toml::from_str(text).map_err(|e| toml_error(text, &e))?;
    build(raw)
}

/// A TOML error as one line: "line L, column C: message". The toml crate's own Display is a
/// multi-line snippet of the file; we keep the position and the message.
fn toml_error(text: &str, e: &toml::de::Error) -> CoreError {
    let message = e.message().trim();
    let problem = match e.span() {
        // An empty span at the start or one over the whole document (a missing top-level field)
        // locates nothing.
        Some(span) if span.start == 0 && (span.end == 0 || span.end >= text.len()) => {
            message.to_owned()
        }
        Some(span) => {
            let start = span.start.min(text.len());
            // The span may fall inside a multi-byte character only if the crate misreports it;
            // fall back to the nearest boundary rather than slicing at it.
            let start = (0..=start)
                .rev()
                .find(|&i| text.is_char_boundary(i))
                .unwrap_or(0);
            let before = &text[..start];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message.to_owned(),
    };
    invalid(None, problem)
}

fn build(raw: RawStandard) -> Result<Standard> {
    if raw.format != FORMAT_VERSION {
        return Err(invalid(
            None,
            format!(
                "unsupported format {} (this build reads format {FORMAT_VERSION})",
                raw.format
            ),
        ));
    }
    let id = raw.id.trim();
    if id.is_empty() {
        return Err(invalid(None, "`id` is empty"));
    }
    if id.chars().any(char::is_whitespace) {
        return Err(invalid(None, "`id` contains whitespace"));
    }
    if raw.version.trim().is_empty() {
        return Err(invalid(None, "`version` is empty"));
    }
    if raw.name.trim().is_empty() {
        return Err(invalid(None, "`name` is empty"));
    }
    let max_h = amount(None, "max_points", raw.max_points, Sign::Positive)?;
    if let Some(b) = raw.max_total_bonus {
        amount(None, "max_total_bonus", b, Sign::Positive)?;
    }
    let not_applicable = match raw.not_applicable.as_str() {
        "rescale" => NotApplicablePolicy::Rescale,
        "full_marks" => NotApplicablePolicy::FullMarks,
        other => {
            return Err(invalid(
                None,
                format!(
                    "unknown `not_applicable` policy `{other}` (expected rescale or full_marks)"
                ),
            ));
        }
    };
    let grades = grades(&raw.grades)?;
    if !grades.iter().any(|g| g.label == raw.veto_grade) {
        return Err(invalid(
            Some("grades"),
            format!(
                "`veto_grade` `{}` is not one of the grade labels",
                raw.veto_grade
            ),
        ));
    }

    if raw.sections.is_empty() {
        return Err(invalid(None, "the standard has no sections"));
    }
    let mut section_codes = HashSet::new();
    let mut item_codes = HashSet::new();
    let mut sections = Vec::with_capacity(raw.sections.len());
    let mut sum_h: i64 = 0;
    for rs in raw.sections {
        let section = section(rs, &mut section_codes, &mut item_codes)?;
        sum_h += to_hundredths(section.points);
        sections.push(section);
    }
    if sum_h != max_h {
        return Err(invalid(
            None,
            format!(
                "`max_points` is {} but the deduction items' points add up to {}",
                fmt_h(max_h),
                fmt_h(sum_h)
            ),
        ));
    }

    Ok(Standard {
        id: id.to_owned(),
        version: raw.version.trim().to_owned(),
        name: raw.name,
        name_en: raw.name_en,
        max_points: raw.max_points,
        floor_at_zero: raw.floor_at_zero,
        cap_total_at_max: raw.cap_total_at_max,
        max_total_bonus: raw.max_total_bonus,
        not_applicable,
        veto_grade: raw.veto_grade,
        grades,
        sections,
    })
}

fn grades(raw: &[RawGrade]) -> Result<Vec<GradeBand>> {
    let at = Some("grades");
    if raw.is_empty() {
        return Err(invalid(
            at,
            "no grades: at least one `[[grades]]` is needed",
        ));
    }
    let mut labels = HashSet::new();
    let mut previous: Option<i64> = None;
    for (i, g) in raw.iter().enumerate() {
        let label = g.label.trim();
        if label.is_empty() {
            return Err(invalid(at, format!("grade #{} has an empty label", i + 1)));
        }
        if !labels.insert(label) {
            return Err(invalid(at, format!("grade `{label}` appears twice")));
        }
        let last = i + 1 == raw.len();
        match (g.min, last) {
            (None, true) => {}
            (None, false) => {
                return Err(invalid(
                    at,
                    format!(
                        "grade `{label}` has no `min`; only the last (lowest) grade may omit it"
                    ),
                ));
            }
            (Some(_), true) => {
                return Err(invalid(
                    at,
                    format!(
                        "the last grade `{label}` must not have a `min`: it takes every total below the others"
                    ),
                ));
            }
            (Some(min), false) => {
                let h = amount(at, &format!("min of grade `{label}`"), min, Sign::Any)?;
                if let Some(p) = previous
                    && h >= p
                {
                    return Err(invalid(
                        at,
                        format!(
                            "grade `{label}` (min {}) is not below the grade before it (min {}): list grades best first with strictly decreasing `min`",
                            fmt_h(h),
                            fmt_h(p)
                        ),
                    ));
                }
                previous = Some(h);
            }
        }
    }
    Ok(raw
        .iter()
        .map(|g| GradeBand {
            label: g.label.trim().to_owned(),
            label_en: g.label_en.clone(),
            min: g.min,
        })
        .collect())
}

fn section(
    rs: RawSection,
    section_codes: &mut HashSet<String>,
    item_codes: &mut HashSet<String>,
) -> Result<Section> {
    check_code(None, "section", &rs.code)?;
    let at = Some(rs.code.as_str());
    if !section_codes.insert(rs.code.clone()) {
        return Err(invalid(at, "duplicate section code"));
    }
    if rs.name.trim().is_empty() {
        return Err(invalid(at, "section `name` is empty"));
    }
    if rs.items.is_empty() {
        return Err(invalid(at, "section has no items"));
    }
    let mut items = Vec::with_capacity(rs.items.len());
    let mut sum_h: i64 = 0;
    for (i, ri) in rs.items.into_iter().enumerate() {
        let item = item(ri, &rs.code, i, item_codes)?;
        sum_h += to_hundredths(item.points);
        items.push(item);
    }
    if let Some(declared) = rs.points {
        let declared_h = amount(at, "section points", declared, Sign::NonNegative)?;
        if declared_h != sum_h {
            return Err(invalid(
                at,
                format!(
                    "section declares {} points but its deduction items add up to {}",
                    fmt_h(declared_h),
                    fmt_h(sum_h)
                ),
            ));
        }
    }
    Ok(Section {
        code: rs.code,
        name: rs.name,
        name_en: rs.name_en,
        points: sum_h as f64 / 100.0,
        items,
    })
}

fn item(
    ri: RawItem,
    section_code: &str,
    index: usize,
    item_codes: &mut HashSet<String>,
) -> Result<Item> {
    let fallback = format!("section {section_code}, item #{}", index + 1);
    if ri.code.is_empty() {
        return Err(invalid(Some(&fallback), "item `code` is empty"));
    }
    check_code(Some(&fallback), "item", &ri.code)?;
    let code = ri.code.as_str();
    let at = Some(code);
    if !item_codes.insert(ri.code.clone()) {
        return Err(invalid(
            at,
            "duplicate item code (item codes are unique across all sections)",
        ));
    }
    if ri.title.trim().is_empty() {
        return Err(invalid(at, "item `title` is empty"));
    }

    let kind = ri.kind.as_str();
    let present = [
        ("points", ri.points.is_some()),
        ("deduction", ri.deduction.is_some()),
        ("findings", ri.findings.is_some()),
        ("sample_size", ri.sample_size.is_some()),
        ("uncapped", ri.uncapped.is_some()),
        ("min", ri.min.is_some()),
        ("max", ri.max.is_some()),
        ("bands", ri.bands.is_some()),
        ("veto_reason", ri.veto_reason.is_some()),
    ];
    let Some(parsed_kind) = Kind::parse(kind) else {
        return Err(invalid(
            at,
            format!("unknown rule kind `{kind}` (expected one of {RULE_KINDS})"),
        ));
    };
    let allowed: &[&str] = match parsed_kind {
        Kind::Fixed => &["points", "deduction"],
        Kind::PerOccurrence => &["points", "findings", "sample_size", "uncapped"],
        Kind::Range => &["points", "min", "max"],
        Kind::RateBands => &["points", "bands"],
        Kind::Veto => &["points", "veto_reason"],
        Kind::Bonus => &["points", "uncapped"],
    };
    if let Some((field, _)) = present
        .iter()
        .find(|(field, is_set)| *is_set && !allowed.contains(field))
    {
        return Err(invalid(
            at,
            format!("field `{field}` does not apply to rule kind `{kind}`"),
        ));
    }

    let required_points = |points: Option<f64>| -> Result<i64> {
        match points {
            Some(p) => amount(at, "points", p, Sign::Positive),
            None => Err(invalid(at, format!("rule kind `{kind}` needs `points`"))),
        }
    };

    let mut note_required = ri.note_required;
    let (points, rule) = match parsed_kind {
        Kind::Fixed => {
            let points_h = required_points(ri.points)?;
            let deduction = match ri.deduction {
                Some(d) => {
                    let d_h = amount(at, "deduction", d, Sign::Positive)?;
                    if d_h > points_h {
                        return Err(invalid(
                            at,
                            format!(
                                "deduction {} is more than the item's points {}",
                                fmt_h(d_h),
                                fmt_h(points_h)
                            ),
                        ));
                    }
                    d
                }
                None => ri.points.unwrap_or_default(),
            };
            (points_h, Rule::Fixed { deduction })
        }
        Kind::PerOccurrence => {
            let points_h = required_points(ri.points)?;
            let findings = findings(at, ri.findings.unwrap_or_default())?;
            if ri.sample_size == Some(0) {
                return Err(invalid(at, "`sample_size` must be at least 1"));
            }
            let rule = Rule::PerOccurrence {
                findings,
                sample_size: ri.sample_size,
                uncapped: ri.uncapped.unwrap_or(false),
            };
            (points_h, rule)
        }
        Kind::Range => {
            let points_h = required_points(ri.points)?;
            let (Some(min), Some(max)) = (ri.min, ri.max) else {
                return Err(invalid(at, "rule kind `range` needs `min` and `max`"));
            };
            let min_h = amount(at, "min", min, Sign::Positive)?;
            let max_h = amount(at, "max", max, Sign::Positive)?;
            if min_h > max_h {
                return Err(invalid(
                    at,
                    format!("min {} is greater than max {}", fmt_h(min_h), fmt_h(max_h)),
                ));
            }
            if max_h > points_h {
                return Err(invalid(
                    at,
                    format!(
                        "max {} is more than the item's points {}",
                        fmt_h(max_h),
                        fmt_h(points_h)
                    ),
                ));
            }
            // A discretionary deduction is only defensible with a written reason.
            note_required = true;
            (points_h, Rule::Range { min, max })
        }
        Kind::RateBands => {
            let points_h = required_points(ri.points)?;
            let bands = bands(at, points_h, ri.bands.unwrap_or_default())?;
            (points_h, Rule::RateBands { bands })
        }
        Kind::Veto => {
            let reason = ri.veto_reason.as_deref().map(str::trim).unwrap_or("");
            if reason.is_empty() {
                return Err(invalid(
                    at,
                    "a veto item needs a `veto_reason` (shown on the score card when it fails the inspection)",
                ));
            }
            let points_h = match ri.points {
                Some(p) => amount(at, "points", p, Sign::NonNegative)?,
                None => 0,
            };
            (
                points_h,
                Rule::Veto {
                    reason: reason.to_owned(),
                },
            )
        }
        Kind::Bonus => {
            let uncapped = ri.uncapped.unwrap_or(false);
            let max = match (ri.points, uncapped) {
                (Some(_), true) => {
                    return Err(invalid(
                        at,
                        "an uncapped bonus item must not give `points` (its maximum)",
                    ));
                }
                (None, true) => None,
                (Some(p), false) => {
                    amount(at, "points", p, Sign::Positive)?;
                    Some(p)
                }
                (None, false) => {
                    return Err(invalid(
                        at,
                        "a bonus item needs `points` (its maximum) or `uncapped = true`",
                    ));
                }
            };
            // Bonus items are outside full marks.
            (0, Rule::Bonus { max })
        }
    };

    let rectification = match ri.rectification {
        None => None,
        Some(r) => {
            if r.responsible.trim().is_empty() {
                return Err(invalid(at, "rectification `responsible` is empty"));
            }
            if r.deadline_days > 366 {
                return Err(invalid(at, "rectification `deadline_days` is over a year"));
            }
            if r.min_deduction.is_some_and(|m| !m.is_finite() || m <= 0.0) {
                return Err(invalid(
                    at,
                    "rectification `min_deduction` must be a positive number",
                ));
            }
            for e in &r.evidence {
                if !super::EVIDENCE_KINDS.contains(&e.as_str()) {
                    return Err(invalid(
                        at,
                        format!(
                            "unknown rectification evidence `{e}` (expected one of {})",
                            super::EVIDENCE_KINDS.join(", ")
                        ),
                    ));
                }
            }
            Some(crate::standard::RectificationRule {
                responsible: r.responsible.trim().to_string(),
                deadline_days: r.deadline_days,
                min_deduction: r.min_deduction,
                on_veto: r.on_veto,
                evidence: r.evidence,
            })
        }
    };

    Ok(Item {
        rectification,
        code: ri.code.clone(),
        section_code: section_code.to_owned(),
        title: ri.title,
        title_en: ri.title_en,
        method: ri.method,
        method_en: ri.method_en,
        points: points as f64 / 100.0,
        allow_not_applicable: ri.allow_not_applicable,
        note_required,
        rule,
    })
}

#[derive(Clone, Copy)]
enum Kind {
    Fixed,
    PerOccurrence,
    Range,
    RateBands,
    Veto,
    Bonus,
}

impl Kind {
    fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "fixed" => Kind::Fixed,
            "per_occurrence" => Kind::PerOccurrence,
            "range" => Kind::Range,
            "rate_bands" => Kind::RateBands,
            "veto" => Kind::Veto,
            "bonus" => Kind::Bonus,
            _ => return None,
        })
    }
}

fn findings(at: Option<&str>, raw: Vec<RawFinding>) -> Result<Vec<Finding>> {
    if raw.is_empty() {
        return Err(invalid(
            at,
            "rule kind `per_occurrence` needs at least one entry in `findings`",
        ));
    }
    let mut codes = HashSet::new();
    let mut out = Vec::with_capacity(raw.len());
    for f in raw {
        check_code(at, "finding", &f.code)?;
        if !codes.insert(f.code.clone()) {
            return Err(invalid(at, format!("duplicate finding code `{}`", f.code)));
        }
        if f.label.trim().is_empty() {
            return Err(invalid(
                at,
                format!("finding `{}` has an empty label", f.code),
            ));
        }
        amount(
            at,
            &format!("points of finding `{}`", f.code),
            f.points,
            Sign::Positive,
        )?;
        out.push(Finding {
            code: f.code,
            label: f.label,
            label_en: f.label_en,
            points: f.points,
        });
    }
    Ok(out)
}

/// Bands must tile 0..=100 exactly: sorted by `from`, the first starts at 0, each starts where
/// the previous one ends, the last ends at 100.
fn bands(at: Option<&str>, points_h: i64, raw: Vec<RawBand>) -> Result<Vec<RateBand>> {
    if raw.is_empty() {
        return Err(invalid(
            at,
            "rule kind `rate_bands` needs at least one entry in `bands`",
        ));
    }
    let mut checked = Vec::with_capacity(raw.len());
    for b in &raw {
        let from = amount(at, "band `from`", b.from, Sign::NonNegative)?;
        let to = amount(at, "band `to`", b.to, Sign::NonNegative)?;
        let label = format!("band {}–{}%", fmt_h(from), fmt_h(to));
        if from > 10_000 || to > 10_000 {
            return Err(invalid(at, format!("{label} is outside 0..=100")));
        }
        if from >= to {
            return Err(invalid(at, format!("{label}: `from` must be below `to`")));
        }
        let d = amount(
            at,
            &format!("deduction of {label}"),
            b.deduction,
            Sign::NonNegative,
        )?;
        if d > points_h {
            return Err(invalid(
                at,
                format!(
                    "{label} deducts {} but the item has only {} points",
                    fmt_h(d),
                    fmt_h(points_h)
                ),
            ));
        }
        checked.push((from, to, b));
    }
    checked.sort_by_key(|(from, to, _)| (*from, *to));
    let mut expected_from = 0;
    for (from, to, _) in &checked {
        if *from < expected_from {
            return Err(invalid(
                at,
                format!(
                    "bands overlap: band {}–{}% starts before {}%",
                    fmt_h(*from),
                    fmt_h(*to),
                    fmt_h(expected_from)
                ),
            ));
        }
        if *from > expected_from {
            return Err(invalid(
                at,
                format!(
                    "bands leave a gap: no band covers {}–{}%",
                    fmt_h(expected_from),
                    fmt_h(*from)
                ),
            ));
        }
        expected_from = *to;
    }
    if expected_from != 10_000 {
        return Err(invalid(
            at,
            format!(
                "bands leave a gap: no band covers {}–100%",
                fmt_h(expected_from)
            ),
        ));
    }
    Ok(checked
        .into_iter()
        .map(|(_, _, b)| RateBand {
            from_percent: b.from,
            to_percent: b.to,
            deduction: b.deduction,
        })
        .collect())
}

fn check_code(at: Option<&str>, what: &str, code: &str) -> Result<()> {
    let ok = !code.is_empty()
        && code.len() <= MAX_CODE_LEN
        && code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        return Ok(());
    }
    // Name the code itself when it is usable as a location, otherwise the fallback location.
    let at = match (what, at) {
        ("section", _) | ("item", None) if !code.is_empty() => Some(code),
        _ => at,
    };
    Err(invalid(
        at,
        format!(
            "{what} code `{code}` is not valid: use 1–{MAX_CODE_LEN} characters among A–Z, a–z, 0–9, `-`, `_`, `.`"
        ),
    ))
}

#[derive(Clone, Copy, PartialEq)]
enum Sign {
    Positive,
    NonNegative,
    Any,
}

/// Checks a points or percent figure and returns it in hundredths.
fn amount(at: Option<&str>, field: &str, x: f64, sign: Sign) -> Result<i64> {
    if !x.is_finite() {
        return Err(invalid(at, format!("`{field}` is not a finite number")));
    }
    if x.abs() > MAX_POINTS_VALUE {
        return Err(invalid(
            at,
            format!("`{field}` = {x} is too large (limit {MAX_POINTS_VALUE})"),
        ));
    }
    let scaled = x * 100.0;
    if (scaled - scaled.round()).abs() > 1e-6 {
        return Err(invalid(
            at,
            format!("`{field}` = {x} has more than two decimal places"),
        ));
    }
    let h = to_hundredths(x);
    match sign {
        Sign::Positive if h <= 0 => Err(invalid(at, format!("`{field}` must be above 0"))),
        Sign::NonNegative if h < 0 => Err(invalid(at, format!("`{field}` must not be negative"))),
        _ => Ok(h),
    }
}

/// Hundredths as a short decimal for messages: 1000 → "10", 250 → "2.5", 5 → "0.05".
pub(crate) fn fmt_h(h: i64) -> String {
    let sign = if h < 0 { "-" } else { "" };
    let a = h.unsigned_abs();
    let (whole, frac) = (a / 100, a % 100);
    match frac {
        0 => format!("{sign}{whole}"),
        f if f % 10 == 0 => format!("{sign}{whole}.{}", f / 10),
        f => format!("{sign}{whole}.{f:02}"),
    }
}
