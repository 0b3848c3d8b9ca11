//! Validation: every rejection names where and what. Each test starts from one small valid file
//! and breaks exactly one thing, so a passing test shows that this one check fires.

use super::*;
use crate::CoreError;

/// A small valid standard: 10 points, one section of a fixed (4) and a per-occurrence (6) item,
/// and a bonus section.
const BASE: &str = r#"
format = 1
id = "t"
version = "1"
name = "测试标准"
max_points = 10
floor_at_zero = true
cap_total_at_max = true
not_applicable = "rescale"
veto_grade = "不合格"

[[grades]]
label = "合格"
min = 6

[[grades]]
label = "不合格"

[[sections]]
code = "A"
name = "甲"

[[sections.items]]
code = "A01"
title = "固定扣分"
kind = "fixed"
points = 4

[[sections.items]]
code = "A02"
title = "按处扣分"
kind = "per_occurrence"
points = 6
findings = [ { code = "x", label = "某问题", points = 1 } ]

[[sections]]
code = "H"
name = "加分"

[[sections.items]]
code = "H01"
title = "加分"
kind = "bonus"
points = 2
"#;

/// BASE with `item` appended to its last section (H) and `max_points` set to `max` (10 plus the
/// new item's points when it is a deduction item).
fn with_item(item: &str, max: &str) -> String {
    BASE.replace("max_points = 10", &format!("max_points = {max}"))
        + "\n[[sections.items]]\n"
        + item
}

fn err(text: &str) -> (Option<String>, String) {
    match Standard::from_toml_str(text) {
        Err(CoreError::InvalidStandard { item, problem }) => (item, problem),
        Err(other) => panic!("expected InvalidStandard, got {other:?}"),
        Ok(_) => panic!("expected an error, the file was accepted"),
    }
}

fn assert_err(text: &str, at: Option<&str>, needle: &str) {
    let (item, problem) = err(text);
    assert_eq!(item.as_deref(), at, "problem was: {problem}");
    assert!(
        problem.contains(needle),
        "expected {needle:?} in problem {problem:?}"
    );
}

#[test]
fn base_is_valid_and_keeps_file_order() {
    let s = Standard::from_toml_str(BASE).unwrap();
    assert_eq!(s.id, "t");
    assert_eq!(s.max_points, 10.0);
    let codes: Vec<_> = s.items().map(|i| i.code.as_str()).collect();
    assert_eq!(codes, ["A01", "A02", "H01"]);
    // Section points are derived from the items: 4 + 6 = 10; the bonus section is worth 0.
    assert_eq!(s.sections[0].points, 10.0);
    assert_eq!(s.sections[1].points, 0.0);
    assert_eq!(s.item("A01").unwrap().rule, Rule::Fixed { deduction: 4.0 });
    assert_eq!(s.item("H01").unwrap().rule, Rule::Bonus { max: Some(2.0) });
    assert_eq!(s.item("H01").unwrap().points, 0.0);
    assert!(s.item("Z99").is_none());
    assert_eq!(s.section("H").unwrap().items.len(), 1);
}

#[test]
fn toml_syntax_error_reports_the_line() {
    let text = BASE.replace("points = 6", "points = = 6");
    let (item, problem) = err(&text);
    assert_eq!(item, None);
    let line = BASE
        .lines()
        .position(|l| l == "points = 6")
        .map(|i| i + 1)
        .unwrap();
    assert!(
        problem.starts_with(&format!("line {line},")),
        "problem: {problem}"
    );
}

#[test]
fn unknown_field_is_rejected_with_its_line() {
    let text = BASE.replace("points = 4", "pionts = 4");
    let (_, problem) = err(&text);
    assert!(problem.contains("unknown field `pionts`"), "{problem}");
    assert!(problem.starts_with("line "), "{problem}");
    // Also at the top level and in grades.
    let (_, problem) = err(&BASE.replace("floor_at_zero", "floor_at_zer0"));
    assert!(problem.contains("floor_at_zer0"), "{problem}");
}

#[test]
fn unknown_fields_in_nested_tables_are_rejected() {
    let (_, p) = err(&BASE.replace("name = \"甲\"", "name = \"甲\"\nweight = 2"));
    assert!(p.contains("unknown field `weight`"), "{p}");
    let (_, p) = err(&BASE.replace("label = \"某问题\",", "label = \"某问题\", note = \"x\","));
    assert!(p.contains("unknown field `note`"), "{p}");
    let (_, p) = err(&BASE.replace("label = \"合格\"", "label = \"合格\"\nmax = 10"));
    assert!(p.contains("unknown field `max`"), "{p}");
}

#[test]
fn missing_id_or_version_is_rejected() {
    let (_, p) = err(&BASE.replace("id = \"t\"\n", ""));
    // No misleading "line 1" for a field that is missing from the whole document.
    assert_eq!(p, "missing field `id`");
    let (_, p) = err(&BASE.replace("version = \"1\"\n", ""));
    assert!(p.contains("missing field `version`"), "{p}");
    assert_err(
        &BASE.replace("id = \"t\"", "id = \" \""),
        None,
        "`id` is empty",
    );
    assert_err(
        &BASE.replace("version = \"1\"", "version = \"\""),
        None,
        "`version` is empty",
    );
}

#[test]
fn unsupported_format_is_rejected() {
    assert_err(
        &BASE.replace("format = 1", "format = 2"),
        None,
        "unsupported format 2",
    );
}

#[test]
fn unknown_not_applicable_policy_is_rejected() {
    assert_err(
        &BASE.replace("\"rescale\"", "\"ignore\""),
        None,
        "unknown `not_applicable` policy `ignore`",
    );
}

#[test]
fn duplicate_item_code_across_sections_is_rejected() {
    let text = with_item(
        "code = \"A01\"\ntitle = \"又一个\"\nkind = \"bonus\"\npoints = 1\n",
        "10",
    );
    assert_err(&text, Some("A01"), "duplicate item code");
}

#[test]
fn duplicate_section_code_is_rejected() {
    let text = BASE.replace("code = \"H\"", "code = \"A\"");
    assert_err(&text, Some("A"), "duplicate section code");
}

#[test]
fn section_without_items_is_rejected() {
    let text = BASE.to_owned() + "\n[[sections]]\ncode = \"Z\"\nname = \"空\"\n";
    assert_err(&text, Some("Z"), "no items");
}

#[test]
fn no_sections_is_rejected() {
    let cut = BASE.find("[[sections]]").unwrap();
    assert_err(&BASE[..cut], None, "no sections");
}

#[test]
fn max_points_must_equal_the_items_sum() {
    // Items add up to 4 + 6 = 10.
    assert_err(
        &BASE.replace("max_points = 10", "max_points = 100"),
        None,
        "`max_points` is 100 but the deduction items' points add up to 10",
    );
}

#[test]
fn declared_section_points_must_equal_the_items_sum() {
    let text = BASE.replace("name = \"甲\"", "name = \"甲\"\npoints = 12");
    assert_err(
        &text,
        Some("A"),
        "declares 12 points but its deduction items add up to 10",
    );
}

#[test]
fn zero_or_negative_points_are_rejected() {
    assert_err(
        &BASE.replace("points = 4", "points = 0"),
        Some("A01"),
        "must be above 0",
    );
    assert_err(
        &BASE.replace("points = 4", "points = -4"),
        Some("A01"),
        "must be above 0",
    );
    let text = BASE.replace(
        "{ code = \"x\", label = \"某问题\", points = 1 }",
        "{ code = \"x\", label = \"某问题\", points = 0 }",
    );
    assert_err(&text, Some("A02"), "points of finding `x`");
}

#[test]
fn more_than_two_decimals_is_rejected() {
    assert_err(
        &BASE.replace("points = 4", "points = 3.995"),
        Some("A01"),
        "more than two decimal places",
    );
}

#[test]
fn decimal_points_are_accepted() {
    // 2.5 + 1.5 = 4 keeps max_points at 10.
    let text = BASE.replace("points = 4", "points = 2.5")
        + "\n[[sections.items]]\ncode = \"H02\"\ntitle = \"x\"\nkind = \"bonus\"\npoints = 0.5\n";
    let text = text.replace("max_points = 10", "max_points = 8.5");
    let s = Standard::from_toml_str(&text).unwrap();
    assert_eq!(s.item("A01").unwrap().points, 2.5);
    assert_eq!(s.max_points, 8.5);
}

#[test]
fn unknown_rule_kind_is_rejected() {
    assert_err(
        &BASE.replace("kind = \"fixed\"", "kind = \"fixd\""),
        Some("A01"),
        "unknown rule kind `fixd`",
    );
}

#[test]
fn field_of_another_kind_is_rejected() {
    assert_err(
        &BASE.replace("kind = \"fixed\"", "kind = \"fixed\"\nmin = 1"),
        Some("A01"),
        "field `min` does not apply to rule kind `fixed`",
    );
}

#[test]
fn fixed_deduction_above_points_is_rejected() {
    assert_err(
        &BASE.replace("points = 4", "points = 4\ndeduction = 5"),
        Some("A01"),
        "deduction 5 is more than the item's points 4",
    );
}

#[test]
fn range_min_above_max_is_rejected() {
    let text = with_item(
        "code = \"R01\"\ntitle = \"酌情\"\nkind = \"range\"\npoints = 5\nmin = 4\nmax = 2\n",
        "15",
    );
    assert_err(&text, Some("R01"), "min 4 is greater than max 2");
    let text = with_item(
        "code = \"R01\"\ntitle = \"酌情\"\nkind = \"range\"\npoints = 5\nmin = 1\nmax = 6\n",
        "15",
    );
    assert_err(&text, Some("R01"), "max 6 is more than the item's points 5");
    let text = with_item(
        "code = \"R01\"\ntitle = \"酌情\"\nkind = \"range\"\npoints = 5\nmax = 5\n",
        "15",
    );
    assert_err(&text, Some("R01"), "needs `min` and `max`");
}

#[test]
fn range_items_always_require_a_note() {
    let text = with_item(
        "code = \"R01\"\ntitle = \"酌情\"\nkind = \"range\"\npoints = 5\nmin = 1\nmax = 5\n",
        "15",
    );
    let s = Standard::from_toml_str(&text).unwrap();
    assert!(s.item("R01").unwrap().note_required);
}

fn rate_item(bands: &str) -> String {
    with_item(
        &format!(
            "code = \"Q01\"\ntitle = \"准确率\"\nkind = \"rate_bands\"\npoints = 20\nbands = [ {bands} ]\n"
        ),
        "30",
    )
}

#[test]
fn rate_bands_are_sorted_and_accepted_in_any_order() {
    let text = rate_item(
        "{ from = 0, to = 50, deduction = 20 }, { from = 90, to = 100, deduction = 0 }, { from = 50, to = 90, deduction = 5 }",
    );
    let s = Standard::from_toml_str(&text).unwrap();
    let Rule::RateBands { bands } = &s.item("Q01").unwrap().rule else {
        panic!("not rate bands")
    };
    let froms: Vec<f64> = bands.iter().map(|b| b.from_percent).collect();
    assert_eq!(froms, [0.0, 50.0, 90.0]);
}

#[test]
fn overlapping_bands_are_rejected() {
    let text =
        rate_item("{ from = 0, to = 60, deduction = 20 }, { from = 50, to = 100, deduction = 0 }");
    assert_err(&text, Some("Q01"), "bands overlap");
}

#[test]
fn gapped_bands_are_rejected() {
    let text =
        rate_item("{ from = 0, to = 50, deduction = 20 }, { from = 60, to = 100, deduction = 0 }");
    assert_err(&text, Some("Q01"), "no band covers 50–60%");
    let text =
        rate_item("{ from = 10, to = 50, deduction = 20 }, { from = 50, to = 100, deduction = 0 }");
    assert_err(&text, Some("Q01"), "no band covers 0–10%");
    let text = rate_item("{ from = 0, to = 90, deduction = 20 }");
    assert_err(&text, Some("Q01"), "no band covers 90–100%");
}

#[test]
fn bands_outside_0_100_or_empty_are_rejected() {
    let text = rate_item("{ from = 0, to = 120, deduction = 0 }");
    assert_err(&text, Some("Q01"), "outside 0..=100");
    let text = rate_item("{ from = -10, to = 100, deduction = 0 }");
    assert_err(&text, Some("Q01"), "must not be negative");
    let text = rate_item("{ from = 50, to = 50, deduction = 0 }");
    assert_err(&text, Some("Q01"), "`from` must be below `to`");
    let text = rate_item("{ from = 0, to = 100, deduction = 25 }");
    assert_err(
        &text,
        Some("Q01"),
        "deducts 25 but the item has only 20 points",
    );
}

#[test]
fn veto_without_reason_is_rejected() {
    let text = with_item(
        "code = \"V01\"\ntitle = \"混装混运\"\nkind = \"veto\"\n",
        "10",
    );
    assert_err(&text, Some("V01"), "needs a `veto_reason`");
    let text = with_item(
        "code = \"V01\"\ntitle = \"混装混运\"\nkind = \"veto\"\nveto_reason = \"  \"\n",
        "10",
    );
    assert_err(&text, Some("V01"), "needs a `veto_reason`");
}

#[test]
fn veto_points_are_optional_and_count_in_full_marks() {
    let text = with_item(
        "code = \"V01\"\ntitle = \"混装混运\"\nkind = \"veto\"\nveto_reason = \"一票否决\"\n",
        "10",
    );
    let s = Standard::from_toml_str(&text).unwrap();
    assert_eq!(s.item("V01").unwrap().points, 0.0);
    let text = with_item(
        "code = \"V01\"\ntitle = \"混装混运\"\nkind = \"veto\"\nveto_reason = \"一票否决\"\npoints = 5\n",
        "15",
    );
    let s = Standard::from_toml_str(&text).unwrap();
    assert_eq!(s.item("V01").unwrap().points, 5.0);
}

#[test]
fn unknown_or_duplicate_finding_codes_are_rejected() {
    let text = BASE.replace(
        "findings = [ { code = \"x\", label = \"某问题\", points = 1 } ]",
        "findings = [ { code = \"x\", label = \"a\", points = 1 }, { code = \"x\", label = \"b\", points = 2 } ]",
    );
    assert_err(&text, Some("A02"), "duplicate finding code `x`");
    let text = BASE.replace(
        "findings = [ { code = \"x\", label = \"某问题\", points = 1 } ]",
        "findings = []",
    );
    assert_err(&text, Some("A02"), "at least one entry in `findings`");
    let text = BASE.replace("{ code = \"x\",", "{ code = \"bad code\",");
    assert_err(&text, Some("A02"), "finding code `bad code` is not valid");
}

#[test]
fn sample_size_zero_is_rejected() {
    let text = BASE.replace("points = 6", "points = 6\nsample_size = 0");
    assert_err(&text, Some("A02"), "`sample_size` must be at least 1");
}

#[test]
fn bonus_needs_a_maximum_or_uncapped() {
    let text = BASE.replace("kind = \"bonus\"\npoints = 2", "kind = \"bonus\"");
    assert_err(
        &text,
        Some("H01"),
        "needs `points` (its maximum) or `uncapped = true`",
    );
    let text = BASE.replace(
        "kind = \"bonus\"\npoints = 2",
        "kind = \"bonus\"\nuncapped = true\npoints = 2",
    );
    assert_err(&text, Some("H01"), "must not give `points`");
    let text = BASE.replace(
        "kind = \"bonus\"\npoints = 2",
        "kind = \"bonus\"\nuncapped = true",
    );
    let s = Standard::from_toml_str(&text).unwrap();
    assert_eq!(s.item("H01").unwrap().rule, Rule::Bonus { max: None });
}

#[test]
fn grades_must_be_ordered_unique_and_end_with_a_catch_all() {
    // Unordered: 合格 60 listed before 良好 80.
    let text = BASE.replace(
        "[[grades]]\nlabel = \"合格\"\nmin = 6\n",
        "[[grades]]\nlabel = \"合格\"\nmin = 6\n\n[[grades]]\nlabel = \"良好\"\nmin = 8\n",
    );
    assert_err(&text, Some("grades"), "is not below the grade before it");
    // Equal mins overlap.
    let text = BASE.replace(
        "[[grades]]\nlabel = \"合格\"\nmin = 6\n",
        "[[grades]]\nlabel = \"良好\"\nmin = 6\n\n[[grades]]\nlabel = \"合格\"\nmin = 6\n",
    );
    assert_err(&text, Some("grades"), "is not below the grade before it");
    // Duplicate label.
    let text = BASE.replace("label = \"合格\"", "label = \"不合格\"");
    assert_err(&text, Some("grades"), "appears twice");
    // The last grade must be the catch-all (no min), and only the last.
    let text = BASE.replace("label = \"不合格\"\n", "label = \"不合格\"\nmin = 0\n");
    assert_err(&text, Some("grades"), "must not have a `min`");
    let text = BASE.replace("label = \"合格\"\nmin = 6\n", "label = \"合格\"\n");
    assert_err(
        &text,
        Some("grades"),
        "only the last (lowest) grade may omit it",
    );
    // No grades at all.
    let text = BASE
        .replace("[[grades]]\nlabel = \"合格\"\nmin = 6\n", "")
        .replace("[[grades]]\nlabel = \"不合格\"\n", "");
    assert_err(&text, Some("grades"), "no grades");
}

#[test]
fn veto_grade_must_be_a_grade() {
    assert_err(
        &BASE.replace("veto_grade = \"不合格\"", "veto_grade = \"差\""),
        Some("grades"),
        "`veto_grade` `差` is not one of the grade labels",
    );
}

#[test]
fn invalid_codes_are_rejected() {
    assert_err(
        &BASE.replace("code = \"A01\"", "code = \"A 01\""),
        Some("section A, item #1"),
        "item code `A 01` is not valid",
    );
    assert_err(
        &BASE.replace("code = \"A01\"", "code = \"\""),
        Some("section A, item #1"),
        "item `code` is empty",
    );
}

#[test]
fn fmt_points_is_short() {
    assert_eq!(fmt_points(1000), "10");
    assert_eq!(fmt_points(250), "2.5");
    assert_eq!(fmt_points(5), "0.05");
    assert_eq!(fmt_points(-125), "-1.25");
}
