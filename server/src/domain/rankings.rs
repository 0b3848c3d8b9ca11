//! Rankings: each row's average and lowest score rounded once, then coverage (communities
//! inspected of those in scope), open and overdue rectifications and grade counts, then ranks.
//! Both engines aggregate the scores; this finishes the rows.

use crate::model::*;
use std::collections::{BTreeMap, HashMap, HashSet};

/// A ranking row from its aggregate (both engines): scores as a percentage of full marks,
/// rounded to two decimals; the rest is filled by [`finish_rankings`].
pub(crate) fn ranking_row(
    key: String,
    name: String,
    inspections: i64,
    average: f64,
    lowest: f64,
    vetoed: i64,
) -> crate::model::RankingRow {
    crate::model::RankingRow {
        rank: 0,
        key,
        name,
        inspections: inspections as u32,
        average: (average * 100.0).round() / 100.0,
        lowest: (lowest * 100.0).round() / 100.0,
        vetoed: vetoed as u32,
        communities_in_scope: 0,
        communities_inspected: 0,
        coverage: 0.0,
        open_rectifications: 0,
        overdue_rectifications: 0,
        grades: Default::default(),
    }
}

/// Adds coverage, rectification counts and grade counts to ranking rows (in their order) and
/// numbers them. One implementation for every engine, which passes the caller's scoped
/// communities, the period's inspections and the tasks not closed (`store::sql::UNCLOSED_TASKS`).
pub(crate) fn finish_rankings(
    by: ScopeKind,
    communities: &[ScopedCommunity],
    period: Vec<PeriodInspection>,
    unclosed: Vec<(String, String, i64)>,
    mut rows: Vec<RankingRow>,
) -> Vec<RankingRow> {
    let key_of = |c: &ScopedCommunity| -> String {
        match by {
            ScopeKind::Community => c.id.clone(),
            ScopeKind::Street => c.street.clone(),
            ScopeKind::District => c.district.clone(),
        }
    };
    let by_id: HashMap<&str, &ScopedCommunity> =
        communities.iter().map(|c| (c.id.as_str(), c)).collect();
    let mut in_scope: HashMap<String, u32> = HashMap::new();
    for c in communities {
        *in_scope.entry(key_of(c)).or_default() += 1;
    }
    let mut inspected: HashMap<String, HashSet<String>> = HashMap::new();
    let mut grades: HashMap<String, BTreeMap<String, u32>> = HashMap::new();
    for i in period {
        let Some(c) = by_id.get(i.community_id.as_str()) else {
            continue;
        };
        let key = key_of(c);
        inspected
            .entry(key.clone())
            .or_default()
            .insert(i.community_id.clone());
        if let Some(g) = i.grade {
            *grades.entry(key).or_default().entry(g).or_default() += 1;
        }
    }
    let now = crate::model::now();
    let mut open: HashMap<String, (u32, u32)> = HashMap::new();
    for (community, status, deadline) in unclosed {
        let Some(c) = by_id.get(community.as_str()) else {
            continue;
        };
        let entry = open.entry(key_of(c)).or_default();
        entry.0 += 1;
        if crate::domain::tasks::is_overdue(&status, deadline, now) {
            entry.1 += 1;
        }
    }
    for row in rows.iter_mut() {
        row.communities_in_scope = in_scope.get(&row.key).copied().unwrap_or(0);
        row.communities_inspected = inspected.get(&row.key).map(|s| s.len() as u32).unwrap_or(0);
        row.coverage = if row.communities_in_scope == 0 {
            0.0
        } else {
            (row.communities_inspected as f64 / row.communities_in_scope as f64 * 10_000.0).round()
                / 10_000.0
        };
        let (o, d) = open.get(&row.key).copied().unwrap_or_default();
        row.open_rectifications = o;
        row.overdue_rectifications = d;
        row.grades = grades.remove(&row.key).unwrap_or_default();
    }
    for (n, row) in rows.iter_mut().enumerate() {
        row.rank = n as u32 + 1;
    }
    rows
}
