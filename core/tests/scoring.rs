//! The scoring engine, rule by rule, with numbers checked by hand in the comments; then the sample
//! standard in a realistic inspection, re-scored under its next version; then properties.

use fenlei_core::CoreError;
use fenlei_core::answer::{AnswerValue, ItemAnswer, OccurrenceCount};
use fenlei_core::scoring::{ScoreCard, score, validate_answer};
use fenlei_core::standard::Standard;

/// A 50-point test standard with one item of each rule kind:
/// F01 fixed 10 (may be N/A), F02 fixed 5 deducting 3, P01 per occurrence 5 (sample 5: dirty −1,
/// overflow −2), P02 per occurrence 4 uncapped (missing −1.5), R01 range 1–5 of 5 (may be N/A),
/// Q01 rate bands 20, V01 veto 1 (note required), B01 bonus ≤ 3, B02 bonus uncapped.
/// 10 + 5 + 5 + 4 + 5 + 20 + 1 = 50.
const T: &str = r#"
format = 1
id = "test"
version = "1"
name = "测试"
max_points = 50
floor_at_zero = true
cap_total_at_max = true
not_applicable = "rescale"
veto_grade = "不合格"

[[grades]]
label = "优秀"
min = 45
[[grades]]
label = "合格"
min = 30
[[grades]]
label = "不合格"

[[sections]]
code = "S"
name = "扣分"

[[sections.items]]
code = "F01"
title = "固定"
kind = "fixed"
points = 10
allow_not_applicable = true

[[sections.items]]
code = "F02"
title = "固定，扣分小于分值"
kind = "fixed"
points = 5
deduction = 3

[[sections.items]]
code = "P01"
title = "按处，抽样"
kind = "per_occurrence"
points = 5
sample_size = 5
findings = [
  { code = "dirty", label = "脏污", points = 1 },
  { code = "overflow", label = "满溢", points = 2 },
]

[[sections.items]]
code = "P02"
title = "按处，上不封顶"
kind = "per_occurrence"
points = 4
uncapped = true
findings = [ { code = "missing", label = "缺失", points = 1.5 } ]

[[sections]]
code = "T"
name = "其他"

[[sections.items]]
code = "R01"
title = "酌情"
kind = "range"
points = 5
min = 1
max = 5
allow_not_applicable = true

[[sections.items]]
code = "Q01"
title = "准确率"
kind = "rate_bands"
points = 20
bands = [
  { from = 90, to = 100, deduction = 0 },
  { from = 80, to = 90, deduction = 2 },
  { from = 70, to = 80, deduction = 10 },
  { from = 50, to = 70, deduction = 15 },
  { from = 30, to = 50, deduction = 18 },
  { from = 0, to = 30, deduction = 20 },
]

[[sections.items]]
code = "V01"
title = "混装混运"
kind = "veto"
points = 1
veto_reason = "混装混运"
note_required = true

[[sections]]
code = "H"
name = "加分"

[[sections.items]]
code = "B01"
title = "创新"
kind = "bonus"
points = 3

[[sections.items]]
code = "B02"
title = "示范"
kind = "bonus"
uncapped = true
"#;

fn standard() -> Standard {
    Standard::from_toml_str(T).expect("test standard is valid")
}

/// The test standard with one header line replaced (policy variants).
fn variant(from: &str, to: &str) -> Standard {
    assert!(T.contains(from), "{from} not in the test standard");
    Standard::from_toml_str(&T.replacen(from, to, 1)).expect("variant is valid")
}

fn ans(code: &str, value: AnswerValue) -> ItemAnswer {
    ItemAnswer {
        item_code: code.into(),
        value,
        sampled_units: None,
        note: None,
    }
}

fn noted(code: &str, value: AnswerValue, note: &str) -> ItemAnswer {
    ItemAnswer {
        note: Some(note.into()),
        ..ans(code, value)
    }
}

fn occ(code: &str, counts: &[(&str, u32)], sampled: Option<u32>) -> ItemAnswer {
    ItemAnswer {
        sampled_units: sampled,
        ..ans(
            code,
            AnswerValue::Occurrences {
                counts: counts
                    .iter()
                    .map(|(f, c)| OccurrenceCount {
                        finding: (*f).into(),
                        count: *c,
                    })
                    .collect(),
            },
        )
    }
}

fn item<'a>(card: &'a ScoreCard, code: &str) -> &'a fenlei_core::scoring::ItemScore {
    card.items
        .iter()
        .find(|i| i.code == code)
        .expect("item on card")
}

fn invalid_reason(s: &Standard, a: &ItemAnswer) -> String {
    match validate_answer(s, a) {
        Err(CoreError::InvalidAnswer { item, reason }) => {
            assert_eq!(item, a.item_code);
            reason
        }
        other => panic!("expected InvalidAnswer, got {other:?}"),
    }
}

// ---- no answers, fixed -------------------------------------------------------------------------

#[test]
fn no_answers_is_full_marks_with_everything_unanswered() {
    let card = score(&standard(), &[]);
    assert_eq!(card.total, 50.0);
    assert_eq!(card.max_points, 50.0);
    assert_eq!(card.applicable_points, 50.0);
    assert_eq!(card.deductions, 0.0);
    assert_eq!(card.grade, "优秀");
    assert!(!card.vetoed);
    assert_eq!(
        card.unanswered,
        [
            "F01", "F02", "P01", "P02", "R01", "Q01", "V01", "B01", "B02"
        ]
    );
    assert_eq!(card.items.len(), 9);
    assert!(card.skipped.is_empty());
}

#[test]
fn fixed_deducts_its_points_or_its_deduction() {
    let s = standard();
    // F01 −10 → 40 (合格); F02 deducts its `deduction` 3, not its points 5 → 37.
    let card = score(
        &s,
        &[
            ans("F01", AnswerValue::Observed),
            ans("F02", AnswerValue::Observed),
        ],
    );
    assert_eq!(item(&card, "F01").deduction, 10.0);
    assert_eq!(item(&card, "F02").deduction, 3.0);
    assert_eq!(card.deductions, 13.0);
    assert_eq!(card.total, 37.0);
    assert_eq!(card.grade, "合格");
    // Compliant deducts nothing.
    let card = score(&s, &[ans("F01", AnswerValue::Compliant)]);
    assert_eq!(card.total, 50.0);
    assert!(item(&card, "F01").answered);
    assert!(!card.unanswered.contains(&"F01".to_string()));
}

// ---- per occurrence, cap, sample normalisation -------------------------------------------------

#[test]
fn per_occurrence_sums_findings_below_the_cap() {
    // 2 dirty × 1 + 1 overflow × 2 = 4 < 5: not capped.
    let card = score(
        &standard(),
        &[occ("P01", &[("dirty", 2), ("overflow", 1)], None)],
    );
    let p = item(&card, "P01");
    assert_eq!(p.deduction, 4.0);
    assert_eq!(p.raw_deduction, 4.0);
    assert!(!p.capped && !p.normalised);
    assert_eq!(card.total, 46.0);
}

#[test]
fn per_occurrence_stops_at_the_items_points() {
    // 3 overflowing × 2 = 6, capped at the item's 5 (扣完为止).
    let card = score(&standard(), &[occ("P01", &[("overflow", 3)], None)]);
    let p = item(&card, "P01");
    assert_eq!(p.raw_deduction, 6.0);
    assert_eq!(p.deduction, 5.0);
    assert!(p.capped);
    assert_eq!(card.total, 45.0);
    // Exactly at the cap: 1 dirty + 2 overflow = 5 → reached, so marked capped.
    let card = score(
        &standard(),
        &[occ("P01", &[("dirty", 1), ("overflow", 2)], None)],
    );
    assert_eq!(item(&card, "P01").deduction, 5.0);
    assert!(item(&card, "P01").capped);
}

#[test]
fn uncapped_per_occurrence_goes_past_the_items_points() {
    // 5 missing × 1.5 = 7.5 > the item's 4, but the item is uncapped: 50 − 7.5 = 42.5.
    let card = score(&standard(), &[occ("P02", &[("missing", 5)], None)]);
    let p = item(&card, "P02");
    assert_eq!(p.deduction, 7.5);
    assert!(!p.capped);
    assert_eq!(card.total, 42.5);
    assert_eq!(card.grade, "合格");
}

#[test]
fn sample_normalisation_scales_before_the_cap() {
    let s = standard();
    // 1 dirty in 3 of 5 points: 1 × 5/3 = 1.666… → 1.67.
    let card = score(&s, &[occ("P01", &[("dirty", 1)], Some(3))]);
    let p = item(&card, "P01");
    assert_eq!(p.deduction, 1.67);
    assert!(p.normalised && !p.capped);
    assert_eq!(card.total, 48.33);
    // 1 dirty in 4 of 5: 1 × 5/4 = 1.25.
    let card = score(&s, &[occ("P01", &[("dirty", 1)], Some(4))]);
    assert_eq!(item(&card, "P01").deduction, 1.25);
    // 2 overflows in 2 of 5: 4 × 5/2 = 10, then capped at 5 (scaling comes first).
    let card = score(&s, &[occ("P01", &[("overflow", 2)], Some(2))]);
    let p = item(&card, "P01");
    assert_eq!(p.raw_deduction, 10.0);
    assert_eq!(p.deduction, 5.0);
    assert!(p.normalised && p.capped);
    // The full sample (5, or not given) is not scaled: 1 dirty = 1.
    for sampled in [Some(5), None] {
        let card = score(&s, &[occ("P01", &[("dirty", 1)], sampled)]);
        assert_eq!(item(&card, "P01").deduction, 1.0);
        assert!(!item(&card, "P01").normalised);
    }
}

#[test]
fn sampled_units_are_checked() {
    let s = standard();
    let r = invalid_reason(&s, &occ("P01", &[("dirty", 1)], Some(0)));
    assert!(r.contains("sampled_units is 0"), "{r}");
    let r = invalid_reason(&s, &occ("P01", &[("dirty", 1)], Some(6)));
    assert!(r.contains("more than the item's sample size 5"), "{r}");
    // An item without a sample size takes no sampled_units.
    let r = invalid_reason(&s, &occ("P02", &[("missing", 1)], Some(3)));
    assert!(r.contains("no sample size"), "{r}");
    let a = ItemAnswer {
        sampled_units: Some(2),
        ..ans("F01", AnswerValue::Observed)
    };
    assert!(invalid_reason(&s, &a).contains("no sample size"));
}

#[test]
fn unknown_or_repeated_findings_are_rejected() {
    let s = standard();
    let r = invalid_reason(&s, &occ("P01", &[("smelly", 1)], None));
    assert!(r.contains("unknown finding `smelly`"), "{r}");
    let r = invalid_reason(&s, &occ("P01", &[("dirty", 1), ("dirty", 2)], None));
    assert!(r.contains("counted twice"), "{r}");
    // Zero counts and an empty list are fine: nothing deducted.
    assert!(validate_answer(&s, &occ("P01", &[("dirty", 0)], None)).is_ok());
    assert!(validate_answer(&s, &occ("P01", &[], None)).is_ok());
}

#[test]
fn huge_counts_do_not_overflow() {
    // u32::MAX × 1.5 is far past any cap; uncapped it is still a finite deduction and the
    // total floors at 0.
    let card = score(&standard(), &[occ("P02", &[("missing", u32::MAX)], None)]);
    assert_eq!(item(&card, "P02").deduction, 4_294_967_295.0 * 1.5);
    assert_eq!(card.total, 0.0);
}

// ---- range -------------------------------------------------------------------------------------

#[test]
fn range_deducts_the_chosen_points_with_a_note() {
    let s = standard();
    let a = noted("R01", AnswerValue::Deduction { points: 2.5 }, "宣传栏褪色");
    assert!(validate_answer(&s, &a).is_ok());
    let card = score(&s, &[a]);
    assert_eq!(item(&card, "R01").deduction, 2.5);
    assert_eq!(card.total, 47.5);
    // Bounds are inclusive: 1 and 5 are allowed.
    for p in [1.0, 5.0] {
        assert!(
            validate_answer(&s, &noted("R01", AnswerValue::Deduction { points: p }, "x")).is_ok()
        );
    }
}

#[test]
fn range_rejects_out_of_bounds_missing_note_and_nan() {
    let s = standard();
    for p in [0.5, 5.01, -1.0] {
        let r = invalid_reason(&s, &noted("R01", AnswerValue::Deduction { points: p }, "x"));
        assert!(r.contains("outside the item's range 1–5"), "{p}: {r}");
    }
    for p in [f64::NAN, f64::INFINITY] {
        let r = invalid_reason(&s, &noted("R01", AnswerValue::Deduction { points: p }, "x"));
        assert!(r.contains("not a finite number"), "{r}");
    }
    let r = invalid_reason(&s, &ans("R01", AnswerValue::Deduction { points: 2.0 }));
    assert!(r.contains("a note is required"), "{r}");
    let r = invalid_reason(
        &s,
        &noted("R01", AnswerValue::Deduction { points: 2.0 }, "  \n"),
    );
    assert!(r.contains("a note is required"), "{r}");
    // Compliant needs no note.
    assert!(validate_answer(&s, &ans("R01", AnswerValue::Compliant)).is_ok());
    // An invalid answer is skipped when scoring, and the item counts as unanswered.
    let card = score(&s, &[ans("R01", AnswerValue::Deduction { points: 2.0 })]);
    assert_eq!(card.total, 50.0);
    assert_eq!(card.skipped.len(), 1);
    assert_eq!(card.skipped[0].item_code, "R01");
    assert!(card.unanswered.contains(&"R01".to_string()));
}

// ---- rate bands --------------------------------------------------------------------------------

#[test]
fn rate_bands_include_the_lower_bound_and_100() {
    let s = standard();
    let deduction = |percent: f64| {
        let card = score(&s, &[ans("Q01", AnswerValue::Rate { percent })]);
        assert!(card.skipped.is_empty(), "{percent}: {:?}", card.skipped);
        item(&card, "Q01").deduction
    };
    assert_eq!(deduction(100.0), 0.0); // top band [90, 100] includes 100
    assert_eq!(deduction(90.0), 0.0); // 90 is in [90, 100]
    assert_eq!(deduction(89.99), 2.0); // [80, 90)
    assert_eq!(deduction(80.0), 2.0);
    assert_eq!(deduction(79.99), 10.0); // [70, 80)
    assert_eq!(deduction(69.0), 15.0); // [50, 70)
    assert_eq!(deduction(30.0), 18.0); // [30, 50)
    assert_eq!(deduction(29.99), 20.0); // [0, 30)
    assert_eq!(deduction(0.0), 20.0);
    // Rates are rounded to 0.01 % first: 79.996 → 80.00 → [80, 90).
    assert_eq!(deduction(79.996), 2.0);
    // 85% → −2 → 48.
    let card = score(&s, &[ans("Q01", AnswerValue::Rate { percent: 85.0 })]);
    assert_eq!(card.total, 48.0);
}

#[test]
fn rate_outside_0_100_or_nan_is_rejected() {
    let s = standard();
    for percent in [-0.01, 100.01, f64::NAN, f64::NEG_INFINITY] {
        let r = invalid_reason(&s, &ans("Q01", AnswerValue::Rate { percent }));
        assert!(r.contains("from 0 to 100"), "{percent}: {r}");
    }
    // A rate item needs a measured rate, not "compliant".
    let r = invalid_reason(&s, &ans("Q01", AnswerValue::Compliant));
    assert!(r.contains("expected rate"), "{r}");
}

// ---- veto --------------------------------------------------------------------------------------

#[test]
fn veto_forces_the_veto_grade_whatever_the_total() {
    let s = standard();
    let card = score(&s, &[noted("V01", AnswerValue::Observed, "3号车混装")]);
    // The veto item also deducts its 1 point: 49 would be 优秀, but the veto forces 不合格.
    assert_eq!(card.total, 49.0);
    assert!(card.vetoed);
    assert_eq!(card.grade, "不合格");
    assert_eq!(card.veto_reasons, ["V01: 混装混运"]);
    assert!(item(&card, "V01").vetoed);
    // Compliant: no veto.
    let card = score(&s, &[ans("V01", AnswerValue::Compliant)]);
    assert!(!card.vetoed && card.veto_reasons.is_empty());
    assert_eq!(card.grade, "优秀");
}

#[test]
fn veto_item_requiring_a_note_rejects_an_observation_without_one() {
    let s = standard();
    let r = invalid_reason(&s, &ans("V01", AnswerValue::Observed));
    assert!(r.contains("a note is required"), "{r}");
    // Skipped when scoring: an unjustified veto does not fail the inspection.
    let card = score(&s, &[ans("V01", AnswerValue::Observed)]);
    assert!(!card.vetoed);
    assert_eq!(card.skipped.len(), 1);
}

// ---- bonus -------------------------------------------------------------------------------------

#[test]
fn bonus_is_added_after_deductions_and_capped_at_full_marks() {
    let s = standard();
    // 50 − 10 + 3 = 43.
    let card = score(
        &s,
        &[
            ans("F01", AnswerValue::Observed),
            ans("B01", AnswerValue::Bonus { points: 3.0 }),
        ],
    );
    assert_eq!(card.total, 43.0);
    assert_eq!(card.bonuses, 3.0);
    assert!(item(&card, "B01").capped); // reached its maximum
    // cap_total_at_max = true: 50 + 3 stays 50.
    let card = score(&s, &[ans("B01", AnswerValue::Bonus { points: 3.0 })]);
    assert_eq!(card.total, 50.0);
    // Bonus sections have no points of their own: subtotal = 0 − 0 + 3.
    let h = card.sections.iter().find(|x| x.code == "H").unwrap();
    assert_eq!((h.max_points, h.bonuses, h.subtotal), (0.0, 3.0, 3.0));
}

#[test]
fn bonus_may_exceed_full_marks_when_the_standard_allows_it() {
    let s = variant("cap_total_at_max = true", "cap_total_at_max = false");
    // 50 + 3 + 10 = 63 (B02 has no per-item maximum).
    let card = score(
        &s,
        &[
            ans("B01", AnswerValue::Bonus { points: 3.0 }),
            ans("B02", AnswerValue::Bonus { points: 10.0 }),
        ],
    );
    assert_eq!(card.total, 63.0);
    // With max_total_bonus = 4: 3 + 10 = 13 counts as 4 → 54.
    let s = variant(
        "cap_total_at_max = true",
        "cap_total_at_max = false\nmax_total_bonus = 4",
    );
    let card = score(
        &s,
        &[
            ans("B01", AnswerValue::Bonus { points: 3.0 }),
            ans("B02", AnswerValue::Bonus { points: 10.0 }),
        ],
    );
    assert_eq!(card.bonuses, 4.0);
    assert_eq!(card.total, 54.0);
}

#[test]
fn bonus_bounds_are_checked() {
    let s = standard();
    let r = invalid_reason(&s, &ans("B01", AnswerValue::Bonus { points: 3.5 }));
    assert!(r.contains("above the item's maximum 3"), "{r}");
    let r = invalid_reason(&s, &ans("B02", AnswerValue::Bonus { points: -1.0 }));
    assert!(r.contains("cannot be negative"), "{r}");
    let r = invalid_reason(&s, &ans("B02", AnswerValue::Bonus { points: f64::NAN }));
    assert!(r.contains("not a finite number"), "{r}");
    assert!(validate_answer(&s, &ans("B02", AnswerValue::Bonus { points: 1e4 })).is_ok());
}

// ---- not applicable ----------------------------------------------------------------------------

#[test]
fn not_applicable_rescales_to_full_marks() {
    let s = standard();
    // F01 (10) excluded: applicable 40; R01 −4 → 36 obtained; 36 / 40 × 50 = 45 → 优秀.
    let card = score(
        &s,
        &[
            ans("F01", AnswerValue::NotApplicable),
            noted("R01", AnswerValue::Deduction { points: 4.0 }, "x"),
        ],
    );
    assert_eq!(card.applicable_points, 40.0);
    assert_eq!(card.deductions, 4.0);
    assert_eq!(card.total, 45.0);
    assert_eq!(card.grade, "优秀");
    assert!(!item(&card, "F01").applicable);
    let sec = &card.sections[0];
    // Section S: 10 + 5 + 5 + 4 = 24, applicable 14; subtotal 14 − 0 = 14.
    assert_eq!(
        (sec.max_points, sec.applicable_points, sec.subtotal),
        (24.0, 14.0, 14.0)
    );
    // Rounding: R01 (5) excluded: applicable 45; F02 −3 → 42; 42 / 45 × 50 = 46.666… → 46.67.
    let card = score(
        &s,
        &[
            ans("R01", AnswerValue::NotApplicable),
            ans("F02", AnswerValue::Observed),
        ],
    );
    assert_eq!(card.total, 46.67);
}

#[test]
fn not_applicable_as_full_marks_counts_as_compliant() {
    let s = variant(
        "not_applicable = \"rescale\"",
        "not_applicable = \"full_marks\"",
    );
    // F01 stays in the base: 50 − 4 = 46.
    let card = score(
        &s,
        &[
            ans("F01", AnswerValue::NotApplicable),
            noted("R01", AnswerValue::Deduction { points: 4.0 }, "x"),
        ],
    );
    assert_eq!(card.applicable_points, 50.0);
    assert_eq!(card.total, 46.0);
    assert!(!item(&card, "F01").applicable);
    assert_eq!(card.sections[0].subtotal, 24.0);
}

#[test]
fn everything_not_applicable_keeps_full_marks() {
    let s = standard();
    // A one-item standard (the test standard cut after F01, 10 points) whose item is N/A:
    // applicable 0, nothing could lose points, the total stays at full marks.
    let one = Standard::from_toml_str(
        T.replace("max_points = 50", "max_points = 10")
            .split("[[sections.items]]\ncode = \"F02\"")
            .next()
            .unwrap(),
    )
    .unwrap();
    let card = score(&one, &[ans("F01", AnswerValue::NotApplicable)]);
    assert_eq!(card.applicable_points, 0.0);
    assert_eq!(card.total, 10.0);
    // And N/A on an item that does not allow it is rejected.
    let r = invalid_reason(&s, &ans("F02", AnswerValue::NotApplicable));
    assert!(r.contains("cannot be answered not applicable"), "{r}");
}

// ---- totals, floor, grades ---------------------------------------------------------------------

#[test]
fn total_floors_at_zero_or_goes_below_when_declared() {
    // 100 missing × 1.5 = 150 (uncapped): 50 − 150 = −100, floored to 0.
    let heavy = occ("P02", &[("missing", 100)], None);
    let card = score(&standard(), std::slice::from_ref(&heavy));
    assert_eq!(card.total, 0.0);
    assert_eq!(card.grade, "不合格");
    // The floor applies before bonuses: 0 + 3 = 3.
    let card = score(
        &standard(),
        &[
            heavy.clone(),
            ans("B01", AnswerValue::Bonus { points: 3.0 }),
        ],
    );
    assert_eq!(card.total, 3.0);
    // 下不封底: −100.
    let s = variant("floor_at_zero = true", "floor_at_zero = false");
    let card = score(&s, &[heavy]);
    assert_eq!(card.total, -100.0);
    assert_eq!(card.grade, "不合格");
}

#[test]
fn grade_bands_include_their_minimum() {
    let s = standard();
    // R01 −5 → exactly 45 → 优秀 (≥ 45).
    let card = score(
        &s,
        &[noted("R01", AnswerValue::Deduction { points: 5.0 }, "x")],
    );
    assert_eq!((card.total, card.grade.as_str()), (45.0, "优秀"));
    // Q01 < 30% −20 → 30 → 合格 (≥ 30).
    let card = score(&s, &[ans("Q01", AnswerValue::Rate { percent: 10.0 })]);
    assert_eq!((card.total, card.grade.as_str()), (30.0, "合格"));
    // ... and F02 −3 more → 27 → 不合格.
    let card = score(
        &s,
        &[
            ans("Q01", AnswerValue::Rate { percent: 10.0 }),
            ans("F02", AnswerValue::Observed),
        ],
    );
    assert_eq!((card.total, card.grade.as_str()), (27.0, "不合格"));
}

#[test]
fn decimals_add_up_without_float_noise() {
    // 0.1 + 0.2 is 0.30000000000000004 in f64; in hundredths it is 30.
    let s = Standard::from_toml_str(
        &T.replace(
            "{ code = \"missing\", label = \"缺失\", points = 1.5 }",
            "{ code = \"missing\", label = \"缺失\", points = 0.1 }, { code = \"other\", label = \"其他\", points = 0.2 }",
        ),
    )
    .unwrap();
    let card = score(&s, &[occ("P02", &[("missing", 1), ("other", 1)], None)]);
    assert_eq!(item(&card, "P02").deduction, 0.3);
    assert_eq!(card.total, 49.7);
}

#[test]
fn section_subtotals_add_up() {
    let s = standard();
    let card = score(
        &s,
        &[
            ans("F01", AnswerValue::Observed),               // S −10
            occ("P01", &[("overflow", 1)], None),            // S −2
            ans("Q01", AnswerValue::Rate { percent: 75.0 }), // T −10
            ans("B01", AnswerValue::Bonus { points: 1.5 }),  // H +1.5
        ],
    );
    let sub: Vec<(&str, f64, f64, f64)> = card
        .sections
        .iter()
        .map(|x| (x.code.as_str(), x.max_points, x.deductions, x.subtotal))
        .collect();
    // S: 24 − 12 = 12; T: 26 − 10 = 16; H: 0 + 1.5.
    assert_eq!(
        sub,
        [
            ("S", 24.0, 12.0, 12.0),
            ("T", 26.0, 10.0, 16.0),
            ("H", 0.0, 0.0, 1.5)
        ]
    );
    // 50 − 22 + 1.5 = 29.5 = 12 + 16 + 1.5.
    assert_eq!(card.total, 29.5);
}

// ---- wrong kinds, unknown items, duplicates ----------------------------------------------------

#[test]
fn answers_of_the_wrong_kind_are_rejected() {
    let s = standard();
    let cases = [
        ans("F01", AnswerValue::Rate { percent: 50.0 }),
        ans("F01", AnswerValue::Bonus { points: 1.0 }),
        occ("F01", &[("dirty", 1)], None),
        ans("P01", AnswerValue::Observed),
        ans("R01", AnswerValue::Observed),
        ans("Q01", AnswerValue::Deduction { points: 2.0 }),
        ans("V01", AnswerValue::Deduction { points: 1.0 }),
        ans("B01", AnswerValue::Observed),
    ];
    for a in &cases {
        let r = invalid_reason(&s, a);
        assert!(r.contains("does not fit"), "{}: {r}", a.item_code);
    }
}

#[test]
fn unknown_item_is_reported_and_skipped() {
    let s = standard();
    match validate_answer(&s, &ans("Z99", AnswerValue::Compliant)) {
        Err(CoreError::UnknownItem { standard, item }) => {
            assert_eq!(standard, "test 1");
            assert_eq!(item, "Z99");
        }
        other => panic!("expected UnknownItem, got {other:?}"),
    }
    let card = score(&s, &[ans("Z99", AnswerValue::Observed)]);
    assert_eq!(card.total, 50.0);
    assert_eq!(card.skipped[0].item_code, "Z99");
    assert!(card.skipped[0].reason.contains("no item Z99"));
}

#[test]
fn the_last_of_several_answers_for_an_item_wins() {
    let s = standard();
    let card = score(
        &s,
        &[
            ans("F01", AnswerValue::Observed),
            ans("F02", AnswerValue::Observed),
            ans("F01", AnswerValue::Compliant),
        ],
    );
    // F01 Compliant (last) + F02 −3 = 47.
    assert_eq!(card.total, 47.0);
    assert_eq!(card.skipped.len(), 1);
    assert_eq!(card.skipped[0].item_code, "F01");
    assert!(card.skipped[0].reason.contains("superseded"));
}

#[test]
fn scoring_is_deterministic_and_order_independent() {
    let s = standard();
    let answers = vec![
        occ("P01", &[("dirty", 1)], Some(3)),
        ans("R01", AnswerValue::NotApplicable),
        ans("F02", AnswerValue::Observed),
        ans("Q01", AnswerValue::Rate { percent: 72.5 }),
    ];
    let a = score(&s, &answers);
    let mut reversed = answers.clone();
    reversed.reverse();
    let b = score(&s, &reversed);
    assert_eq!(a, b);
    // Hand check: deductions 1.67 + 3 + 10 = 14.67; applicable 45; 30.33 / 45 × 50 = 33.7.
    assert_eq!(a.deductions, 14.67);
    assert_eq!(a.total, 33.7);
}

// ---- the sample standard, re-scored under its next version -------------------------------------

const V2: &str = include_str!("../../data/standards/residential-community-2026.2.toml");

/// A realistic inspection: a few problems, two items not applicable, one bonus.
fn sample_inspection() -> Vec<ItemAnswer> {
    let mut answers = vec![
        noted(
            "A02",
            AnswerValue::Deduction { points: 2.0 },
            "宣传栏仍为旧版分类标识",
        ),
        occ("B01", &[("missing_category", 1)], Some(3)),
        ans("B04", AnswerValue::NotApplicable),
        occ("C01", &[("dirty", 2), ("overflow", 2)], Some(5)),
        noted(
            "C03",
            AnswerValue::Deduction { points: 1.5 },
            "2号投放点积水",
        ),
        occ("D01", &[("absent", 1)], Some(5)),
        ans("E01", AnswerValue::Rate { percent: 85.0 }),
        occ("E02", &[("impurity", 3)], Some(5)),
        ans("F03", AnswerValue::NotApplicable),
        noted("H01", AnswerValue::Bonus { points: 2.0 }, "智能积分兑换"),
    ];
    for code in [
        "A01", "A03", "B02", "B03", "B05", "C02", "C04", "D02", "D03", "D04", "F01", "F02", "G01",
        "G02", "H02",
    ] {
        answers.push(ans(code, AnswerValue::Compliant));
    }
    answers
}

#[test]
fn sample_inspection_under_2026_1() {
    let s = Standard::from_toml_str(fenlei_core::sample::STANDARD_TOML).unwrap();
    let answers = sample_inspection();
    for a in &answers {
        validate_answer(&s, a).unwrap();
    }
    let card = score(&s, &answers);
    // A02 2 + B01 1×5/3 = 1.67 + C01 2×1 + 2×2 = 6 + C03 1.5 + D01 2 + E01 85% → 2 + E02 3
    // = 18.17. B04 and F03 (3 each) not applicable: applicable 94; obtained 94 − 18.17 = 75.83;
    // 75.83 / 94 × 100 = 80.670… → 80.67; + bonus 2 = 82.67 → 良好.
    assert_eq!(card.deductions, 18.17);
    assert_eq!(card.applicable_points, 94.0);
    assert_eq!(card.total, 82.67);
    assert_eq!(card.grade, "良好");
    assert!(card.unanswered.is_empty());
    assert!(card.skipped.is_empty());
    assert_eq!(card.standard_version, "2026.1");
}

#[test]
fn sample_inspection_rescored_under_2026_2() {
    let s = Standard::from_toml_str(V2).unwrap();
    let card = score(&s, &sample_inspection());
    // C01 overflow is now −3: 2 + 2×3 = 8, reaching the item's 8 (capped). E01 80–90% is now −3.
    // 2 + 1.67 + 8 + 1.5 + 2 + 3 + 3 = 21.17; 94 − 21.17 = 72.83; 72.83 / 94 × 100 = 77.478…
    // → 77.48; + 2 = 79.48 → 合格 (was 良好 under 2026.1).
    assert_eq!(card.deductions, 21.17);
    assert!(item(&card, "C01").capped);
    assert_eq!(card.total, 79.48);
    assert_eq!(card.grade, "合格");
    assert_eq!(card.standard_version, "2026.2");
    // C05 is new in 2026.2: the old inspection never answered it.
    assert_eq!(card.unanswered, ["C05"]);
    assert!(card.skipped.is_empty());
}

#[test]
fn answers_that_no_longer_fit_are_skipped_when_rescoring() {
    let v1 = Standard::from_toml_str(fenlei_core::sample::STANDARD_TOML).unwrap();
    let v2 = Standard::from_toml_str(V2).unwrap();
    let answers = [noted(
        "A02",
        AnswerValue::Deduction { points: 5.0 },
        "宣传栏严重破损",
    )];
    // 2026.1 allows 1–5: 100 − 5 = 95.
    let card = score(&v1, &answers);
    assert_eq!(card.total, 95.0);
    // 2026.2 allows 1–4: the answer is skipped with the reason, nothing deducted.
    let card = score(&v2, &answers);
    assert_eq!(card.total, 100.0);
    assert_eq!(card.skipped.len(), 1);
    assert!(
        card.skipped[0]
            .reason
            .contains("outside the item's range 1–4")
    );
}

#[test]
fn sample_bonus_may_exceed_100_only_under_2026_2() {
    let v1 = Standard::from_toml_str(fenlei_core::sample::STANDARD_TOML).unwrap();
    let v2 = Standard::from_toml_str(V2).unwrap();
    let answers = [
        noted("H01", AnswerValue::Bonus { points: 3.0 }, "垃圾分类积分制"),
        ans("H02", AnswerValue::Bonus { points: 2.0 }),
    ];
    assert_eq!(score(&v1, &answers).total, 100.0); // capped at full marks
    assert_eq!(score(&v2, &answers).total, 105.0); // 上不封顶, +5 at most
}

#[test]
fn sample_veto_fails_a_high_score() {
    let s = Standard::from_toml_str(fenlei_core::sample::STANDARD_TOML).unwrap();
    let card = score(&s, &[noted("F01", AnswerValue::Observed, "收运车辆混装")]);
    // The veto item deducts its 5 points: 95, which alone would be 优秀.
    assert_eq!(card.total, 95.0);
    assert_eq!(card.grade, "不合格");
    assert_eq!(
        card.veto_reasons,
        ["F01: 发现混装混运（先分后混），一票否决"]
    );
}

// ---- properties --------------------------------------------------------------------------------

mod props {
    use super::*;
    use proptest::prelude::*;

    const CODES: &[&str] = &[
        "F01", "F02", "P01", "P02", "R01", "Q01", "V01", "B01", "B02", "Z99", "",
    ];
    const FINDINGS: &[&str] = &["dirty", "overflow", "missing", "nope"];

    fn any_f64() -> impl Strategy<Value = f64> {
        prop_oneof![
            -10.0..110.0f64,
            any::<f64>(),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::MAX),
            Just(-0.0),
        ]
    }

    fn any_value() -> impl Strategy<Value = AnswerValue> {
        let counts = prop::collection::vec((prop::sample::select(FINDINGS), any::<u32>()), 0..4)
            .prop_map(|v| {
                v.into_iter()
                    .map(|(f, count)| OccurrenceCount {
                        finding: f.to_string(),
                        count,
                    })
                    .collect()
            });
        prop_oneof![
            Just(AnswerValue::NotApplicable),
            Just(AnswerValue::Compliant),
            Just(AnswerValue::Observed),
            counts.prop_map(|counts| AnswerValue::Occurrences { counts }),
            any_f64().prop_map(|points| AnswerValue::Deduction { points }),
            any_f64().prop_map(|percent| AnswerValue::Rate { percent }),
            any_f64().prop_map(|points| AnswerValue::Bonus { points }),
        ]
    }

    fn any_answer() -> impl Strategy<Value = ItemAnswer> {
        (
            prop::sample::select(CODES),
            any_value(),
            prop::option::of(any::<u32>()),
            prop::option::of(prop_oneof![Just(String::new()), Just("理由".to_string())]),
        )
            .prop_map(|(code, value, sampled_units, note)| ItemAnswer {
                item_code: code.to_string(),
                value,
                sampled_units,
                note,
            })
    }

    proptest! {
        #[test]
        fn score_and_validate_never_panic(answers in prop::collection::vec(any_answer(), 0..20)) {
            for s in [standard(), variant("floor_at_zero = true", "floor_at_zero = false")] {
                for a in &answers {
                    let _ = validate_answer(&s, a);
                }
                let card = score(&s, &answers);
                prop_assert!(card.total.is_finite());
                prop_assert_eq!(card.items.len(), 9);
                // Every answer is either used or listed as skipped, never both, never lost.
                let used = card.items.iter().filter(|i| i.answered).count();
                prop_assert_eq!(used + card.skipped.len(), answers.len());
                if s.floor_at_zero {
                    // Capped total and floored base: 0 ≤ total ≤ 50.
                    prop_assert!(card.total >= 0.0 && card.total <= 50.0, "total {}", card.total);
                }
                // Valid answers are exactly those that score() keeps (last per item).
                for i in &card.items {
                    if let Some(a) = answers.iter().rev().find(|a| a.item_code == i.code) {
                        prop_assert_eq!(i.answered, validate_answer(&s, a).is_ok());
                    }
                }
            }
        }

        #[test]
        fn totals_are_whole_hundredths(answers in prop::collection::vec(any_answer(), 0..20)) {
            let card = score(&standard(), &answers);
            for x in [card.total, card.deductions, card.bonuses] {
                let h = x * 100.0;
                prop_assert!((h - h.round()).abs() < 1e-6, "{}", x);
            }
        }
    }
}
