//! The shipped standard files and the format document: they load, they are what they claim to be,
//! the document's worked example scores as the document says, and no input makes the parser panic.

use fenlei_core::answer::{AnswerValue, ItemAnswer};
use fenlei_core::scoring::score;
use fenlei_core::standard::{NotApplicablePolicy, Rule, Standard};
use fenlei_core::{CoreError, sample};

const V2: &str = include_str!("../../data/standards/residential-community-2026.2.toml");
const DOC: &str = include_str!("../../docs/standard-format.md");

fn kinds(s: &Standard) -> Vec<&'static str> {
    let mut k: Vec<_> = s.items().map(|i| i.rule.kind_name()).collect();
    k.sort_unstable();
    k.dedup();
    k
}

#[test]
fn sample_2026_1_is_a_100_point_standard_of_25_indicators() {
    let s = Standard::from_toml_str(sample::STANDARD_TOML).unwrap();
    assert_eq!(
        (s.id.as_str(), s.version.as_str()),
        ("hohhot-residential", "2026.1")
    );
    assert_eq!(s.max_points, 100.0);
    assert_eq!(s.items().count(), 25);
    let sections: Vec<(&str, f64, usize)> = s
        .sections
        .iter()
        .map(|x| (x.code.as_str(), x.points, x.items.len()))
        .collect();
    assert_eq!(
        sections,
        [
            ("A", 10.0, 3),
            ("B", 15.0, 5),
            ("C", 20.0, 4),
            ("D", 15.0, 4),
            ("E", 25.0, 2),
            ("F", 10.0, 3),
            ("G", 5.0, 2),
            ("H", 0.0, 2),
        ]
    );
    // Every rule kind is used.
    assert_eq!(
        kinds(&s),
        [
            "bonus",
            "fixed",
            "per_occurrence",
            "range",
            "rate_bands",
            "veto"
        ]
    );
    // Renovation (B04) and bulky waste (F03) may be not applicable; sampled items sample 5.
    let na: Vec<_> = s
        .items()
        .filter(|i| i.allow_not_applicable)
        .map(|i| i.code.as_str())
        .collect();
    assert_eq!(na, ["B04", "F03"]);
    assert_eq!(s.not_applicable, NotApplicablePolicy::Rescale);
    assert!(s.items().all(|i| match &i.rule {
        Rule::PerOccurrence { sample_size, .. } => matches!(sample_size, Some(5) | None),
        _ => true,
    }));
    // The veto item is mixed transport and carries its reason.
    let f01 = s.item("F01").unwrap();
    assert!(matches!(&f01.rule, Rule::Veto { reason } if reason.contains("混装混运")));
    // Chinese with English notes throughout.
    assert!(s.items().all(|i| i.title_en.is_some()));
    let labels: Vec<_> = s.grades.iter().map(|g| g.label.as_str()).collect();
    assert_eq!(labels, ["优秀", "良好", "合格", "不合格"]);
    assert_eq!(s.veto_grade, "不合格");
}

#[test]
fn sample_2026_2_changes_points_and_adds_c05() {
    let v1 = Standard::from_toml_str(sample::STANDARD_TOML).unwrap();
    let v2 = Standard::from_toml_str(V2).unwrap();
    assert_eq!(v2.id, v1.id);
    assert_eq!(v2.version, "2026.2");
    assert_eq!(v2.max_points, 100.0);
    assert_eq!(v2.items().count(), 26);
    let new: Vec<_> = v2
        .items()
        .filter(|i| v1.item(&i.code).is_none())
        .map(|i| i.code.as_str())
        .collect();
    assert_eq!(new, ["C05"]);
    let changed: Vec<_> = v2
        .items()
        .filter(|i| v1.item(&i.code).is_some_and(|old| old != *i))
        .map(|i| i.code.as_str())
        .collect();
    assert_eq!(changed, ["A02", "A03", "C01", "C03", "C04", "E01"]);
    assert!(!v2.cap_total_at_max);
    assert_eq!(v2.max_total_bonus, Some(5.0));
}

#[test]
fn a_typo_in_the_sample_is_reported_with_its_line() {
    // Misspell the first `sample_size` key.
    let line = sample::STANDARD_TOML
        .lines()
        .position(|l| l.starts_with("sample_size"))
        .unwrap()
        + 1;
    let text = sample::STANDARD_TOML.replacen("sample_size", "sample_sise", 1);
    match Standard::from_toml_str(&text) {
        Err(CoreError::InvalidStandard { problem, .. }) => {
            assert!(
                problem.starts_with(&format!(
                    "line {line}, column 1: unknown field `sample_sise`"
                )),
                "{problem}"
            );
        }
        other => panic!("expected InvalidStandard, got {other:?}"),
    }
}

/// The first fenced block of `lang` after `heading` in the format document.
fn doc_block(heading: &str, lang: &str) -> String {
    let section = DOC.split(heading).nth(1).expect("heading in the doc");
    let fence = format!("```{lang}\n");
    let start = section.find(&fence).expect("block in the section") + fence.len();
    let len = section[start..].find("```").expect("closed block");
    section[start..start + len].to_owned()
}

#[test]
fn the_documents_worked_example_scores_as_documented() {
    let s = Standard::from_toml_str(&doc_block("## 12. Worked example", "toml")).unwrap();
    let answers: Vec<ItemAnswer> =
        serde_json::from_str(&doc_block("## 12. Worked example", "json")).unwrap();
    let card = score(&s, &answers);
    assert_eq!(card.max_points, 30.0);
    assert_eq!(card.deductions, 8.25);
    assert_eq!(card.bonuses, 1.5);
    assert_eq!(card.applicable_points, 25.0);
    assert_eq!(card.total, 21.6);
    assert_eq!(card.grade, "合格");
    let a02 = card.items.iter().find(|i| i.code == "A02").unwrap();
    assert_eq!((a02.deduction, a02.normalised), (6.25, true));
    let subtotals: Vec<f64> = card.sections.iter().map(|x| x.subtotal).collect();
    assert_eq!(subtotals, [6.75, 10.0, 1.5]);
    assert!(card.skipped.is_empty() && card.unanswered.is_empty());

    // The variations in the document.
    let fm = Standard::from_toml_str(&doc_block("## 12. Worked example", "toml").replace(
        "not_applicable = \"rescale\"",
        "not_applicable = \"full_marks\"",
    ))
    .unwrap();
    assert_eq!(score(&fm, &answers).total, 23.25);
    let mut vetoed = answers.clone();
    vetoed.push(ItemAnswer {
        item_code: "B02".into(),
        value: AnswerValue::Observed,
        sampled_units: None,
        note: None,
    });
    let card = score(&s, &vetoed);
    assert_eq!((card.total, card.grade.as_str()), (21.6, "不合格"));
    assert_eq!(card.veto_reasons, ["B02: 混装混运，一票否决"]);
}

#[test]
fn the_documents_rate_band_snippet_is_the_samples() {
    // The doc's §6.4 example and the sample's E01 agree, so the boundaries quoted are real.
    let s = Standard::from_toml_str(sample::STANDARD_TOML).unwrap();
    let Rule::RateBands { bands } = &s.item("E01").unwrap().rule else {
        panic!("E01 is a rate-band item")
    };
    let doc = doc_block("### 6.4", "toml");
    for b in bands {
        let needle = format!("deduction = {} }}", b.deduction);
        assert!(doc.contains(&needle), "{needle} not in the doc's bands");
    }
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn arbitrary_text_never_panics(text in ".{0,400}") {
            let _ = Standard::from_toml_str(&text);
        }

        /// Cutting lines out of a valid file exercises every validation path on near-valid input.
        #[test]
        fn damaged_sample_never_panics(drop in prop::collection::vec(0usize..400, 1..6),
                                       cut in 0usize..20_000) {
            let lines: Vec<&str> = sample::STANDARD_TOML.lines().collect();
            let kept: Vec<&str> = lines
                .iter()
                .enumerate()
                .filter(|(i, _)| !drop.contains(i))
                .map(|(_, l)| *l)
                .collect();
            let text = kept.join("\n");
            let _ = Standard::from_toml_str(&text);
            let mut end = cut.min(text.len());
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            let _ = Standard::from_toml_str(&text[..end]);
        }
    }
}
