//! How the dashboard's overview shows scores: a percentage of full marks, item titles.

use crate::model::ItemTitle;

/// A score as a percentage of full marks, to two decimals (every engine's overview).
pub(crate) fn percent_of(total: f64, max_points: f64) -> f64 {
    (total * 10_000.0 / max_points).round() / 100.0
}

/// A standard's items as the inspection detail names them (every engine).
pub(crate) fn item_titles(standard: &fenlei_core::standard::Standard) -> Vec<ItemTitle> {
    standard
        .sections
        .iter()
        .flat_map(|s| {
            s.items.iter().map(|i| ItemTitle {
                code: i.code.clone(),
                section: s.name.clone(),
                title: i.title.clone(),
                points: i.points,
            })
        })
        .collect()
}
