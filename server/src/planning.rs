//! Planning: which in-scope communities have not been inspected this period, and an
//! unannounced visit list (四不两直) per inspector for the next days. The plan is random but
//! seeded (the same seed and data give the same plan, so it can be tested and re-printed),
//! covers the uninspected communities first, and never sends an inspector to a community
//! they visited last (no two visits in a row by the same inspector at one community).

use crate::error::{ServerError, ServerResult};
use crate::model::DeviceAuth;
use crate::store::Storage;
use fenlei_core::sample::SampleRng;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap, HashSet};

const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Uninspected {
    pub id: String,
    pub name: String,
    pub street: String,
    pub district: String,
    /// The last visit before the period, if any.
    pub last_visit_ms: Option<i64>,
    pub last_inspector: Option<String>,
}

/// In-scope communities without a submitted or approved inspection in [from, to).
pub fn uninspected(
    storage: &dyn Storage,
    auth: &DeviceAuth,
    from_ms: i64,
    to_ms: i64,
) -> ServerResult<Vec<Uninspected>> {
    let inspected: HashSet<String> = storage
        .period_inspections(auth, from_ms, to_ms)?
        .into_iter()
        .map(|i| i.community_id)
        .collect();
    let last: HashMap<String, (String, i64)> = storage
        .last_visits(auth, to_ms)?
        .into_iter()
        .map(|(c, who, at)| (c, (who, at)))
        .collect();
    Ok(storage
        .scope_communities(auth)?
        .into_iter()
        .filter(|c| !inspected.contains(&c.id))
        .map(|c| {
            let l = last.get(&c.id);
            Uninspected {
                last_visit_ms: l.map(|l| l.1),
                last_inspector: l.map(|l| l.0.clone()),
                id: c.id,
                name: c.name,
                street: c.street,
                district: c.district,
            }
        })
        .collect())
}

pub struct PlanRequest {
    /// The period whose coverage the plan completes.
    pub from_ms: i64,
    pub to_ms: i64,
    /// The first day of the plan (any time in it).
    pub start_ms: i64,
    pub days: u32,
    pub per_day: u32,
    pub seed: u64,
    /// Inspectors to plan for; empty: everyone who inspected in scope before.
    pub inspectors: Vec<String>,
}

/// The pure input of the planner.
#[derive(Debug, Clone)]
pub struct PlanInput {
    /// Every in-scope community, in a stable order.
    pub communities: Vec<String>,
    /// Those not inspected this period.
    pub uninspected: BTreeSet<String>,
    /// Who visited each community last (before the plan).
    pub last_visitor: HashMap<String, String>,
    pub inspectors: Vec<String>,
    pub days: u32,
    pub per_day: u32,
    pub seed: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Visit {
    /// 0 for the first day of the plan.
    pub day: u32,
    pub inspector: String,
    pub community_id: String,
    /// Not inspected in the period when planned.
    pub uninspected: bool,
}

fn shuffle<T>(items: &mut [T], rng: &mut SampleRng) {
    for i in (1..items.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

/// The planner. Slots are filled day by day, inspectors in a shuffled order each day, each
/// taking the first community of the queue (uninspected ones first, each group shuffled) that
/// they did not visit last; a community leaves the queue once planned and the queue refills
/// (reshuffled) when every community has been planned once.
pub fn plan(input: &PlanInput) -> Vec<Visit> {
    let mut rng = SampleRng::new(input.seed ^ 0x5eed_0f4b_1a2c);
    let mut inspectors = input.inspectors.clone();
    inspectors.sort();
    inspectors.dedup();
    let mut last = input.last_visitor.clone();
    let mut fresh: BTreeSet<String> = input.uninspected.clone();
    let round = |rng: &mut SampleRng, fresh: &BTreeSet<String>| -> Vec<String> {
        let mut first: Vec<String> = input
            .communities
            .iter()
            .filter(|c| fresh.contains(*c))
            .cloned()
            .collect();
        let mut rest: Vec<String> = input
            .communities
            .iter()
            .filter(|c| !fresh.contains(*c))
            .cloned()
            .collect();
        shuffle(&mut first, rng);
        shuffle(&mut rest, rng);
        first.extend(rest);
        first
    };
    let mut queue = round(&mut rng, &fresh);
    let mut visits = Vec::new();
    if input.communities.is_empty() || inspectors.is_empty() {
        return visits;
    }
    for day in 0..input.days {
        let mut today: HashSet<String> = HashSet::new();
        let mut order = inspectors.clone();
        shuffle(&mut order, &mut rng);
        for _ in 0..input.per_day {
            for who in &order {
                if queue.iter().all(|c| today.contains(c)) {
                    queue = round(&mut rng, &fresh);
                }
                let pick = queue
                    .iter()
                    .position(|c| !today.contains(c) && last.get(c).is_none_or(|l| l != who));
                let Some(at) = pick else { continue };
                let community = queue.remove(at);
                today.insert(community.clone());
                last.insert(community.clone(), who.clone());
                visits.push(Visit {
                    day,
                    inspector: who.clone(),
                    uninspected: fresh.remove(&community),
                    community_id: community,
                });
            }
        }
    }
    visits
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedVisit {
    pub day: u32,
    /// The day (YYYY-MM-DD, UTC+8).
    pub date: String,
    pub inspector: String,
    pub community_id: String,
    pub community_name: String,
    pub street: String,
    pub district: String,
    pub uninspected: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub seed: u64,
    pub days: u32,
    pub inspectors: Vec<String>,
    pub uninspected: usize,
    pub uninspected_covered: usize,
    pub visits: Vec<PlannedVisit>,
}

pub fn plan_visits(
    storage: &dyn Storage,
    auth: &DeviceAuth,
    req: &PlanRequest,
) -> ServerResult<Plan> {
    if req.days == 0 || req.days > 92 {
        return Err(ServerError::BadRequest("days must be 1 to 92".into()));
    }
    if req.per_day == 0 || req.per_day > 50 {
        return Err(ServerError::BadRequest("per_day must be 1 to 50".into()));
    }
    let communities = storage.scope_communities(auth)?;
    let missing = uninspected(storage, auth, req.from_ms, req.to_ms)?;
    let last_visitor: HashMap<String, String> = storage
        .last_visits(auth, i64::MAX)?
        .into_iter()
        .map(|(c, who, _)| (c, who))
        .collect();
    let inspectors = if req.inspectors.is_empty() {
        let mut all: Vec<String> = storage
            .period_inspections(auth, 0, i64::MAX)?
            .into_iter()
            .map(|i| i.inspector)
            .collect();
        all.sort();
        all.dedup();
        all
    } else {
        req.inspectors.clone()
    };
    let input = PlanInput {
        communities: communities.iter().map(|c| c.id.clone()).collect(),
        uninspected: missing.iter().map(|c| c.id.clone()).collect(),
        last_visitor,
        inspectors: inspectors.clone(),
        days: req.days,
        per_day: req.per_day,
        seed: req.seed,
    };
    let by_id: HashMap<&str, _> = communities.iter().map(|c| (c.id.as_str(), c)).collect();
    let start_day = crate::domain::calendar::day_start(req.start_ms);
    let visits: Vec<PlannedVisit> = plan(&input)
        .into_iter()
        .map(|v| {
            let c = by_id.get(v.community_id.as_str());
            PlannedVisit {
                day: v.day,
                date: crate::domain::calendar::day_label(start_day + v.day as i64 * DAY_MS),
                inspector: v.inspector,
                community_name: c.map(|c| c.name.clone()).unwrap_or_default(),
                street: c.map(|c| c.street.clone()).unwrap_or_default(),
                district: c.map(|c| c.district.clone()).unwrap_or_default(),
                community_id: v.community_id,
                uninspected: v.uninspected,
            }
        })
        .collect();
    Ok(Plan {
        seed: req.seed,
        days: req.days,
        inspectors,
        uninspected: missing.len(),
        uninspected_covered: visits.iter().filter(|v| v.uninspected).count(),
        visits,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn input() -> impl Strategy<Value = PlanInput> {
        (
            1usize..30,
            1usize..5,
            1u32..6,
            1u32..4,
            any::<u64>(),
            proptest::collection::vec(any::<bool>(), 30),
            proptest::collection::vec(0usize..6, 30),
        )
            .prop_map(|(n, k, days, per_day, seed, fresh, last)| {
                let communities: Vec<String> = (0..n).map(|i| format!("c{i:02}")).collect();
                let inspectors: Vec<String> = (0..k).map(|i| format!("i{i}")).collect();
                let uninspected = communities
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| fresh[*i])
                    .map(|(_, c)| c.clone())
                    .collect();
                // Some communities were last visited by one of the inspectors (or someone else).
                let last_visitor = communities
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| last[*i] < 5)
                    .map(|(i, c)| (c.clone(), format!("i{}", last[i])))
                    .collect();
                PlanInput {
                    communities,
                    uninspected,
                    last_visitor,
                    inspectors,
                    days,
                    per_day,
                    seed,
                }
            })
    }

    proptest! {
        #[test]
        fn the_same_seed_gives_the_same_plan(input in input()) {
            prop_assert_eq!(plan(&input), plan(&input));
        }

        #[test]
        fn never_the_same_inspector_twice_in_a_row(input in input()) {
            let mut last = input.last_visitor.clone();
            for v in plan(&input) {
                prop_assert_ne!(last.get(&v.community_id), Some(&v.inspector));
                last.insert(v.community_id.clone(), v.inspector.clone());
            }
        }

        #[test]
        fn uninspected_communities_come_first(input in input()) {
            // Replaying the plan: a visit to an already-inspected community happens only when
            // every uninspected one still waiting was last visited by that same inspector or
            // is already planned that day.
            let mut last = input.last_visitor.clone();
            let mut waiting = input.uninspected.clone();
            let mut today: HashSet<String> = HashSet::new();
            let mut day = 0;
            for v in plan(&input) {
                if v.day != day { day = v.day; today.clear(); }
                if waiting.contains(&v.community_id) {
                    prop_assert!(v.uninspected);
                    waiting.remove(&v.community_id);
                } else {
                    prop_assert!(!v.uninspected);
                    for w in &waiting {
                        prop_assert!(
                            last.get(w) == Some(&v.inspector) || today.contains(w),
                            "{} visited {} while {} waited", v.inspector, v.community_id, w
                        );
                    }
                }
                today.insert(v.community_id.clone());
                last.insert(v.community_id.clone(), v.inspector.clone());
            }
        }

        #[test]
        fn at_most_per_day_visits_per_inspector_and_one_per_community_a_day(input in input()) {
            let visits = plan(&input);
            let mut per: HashMap<(u32, String), u32> = HashMap::new();
            let mut seen: HashSet<(u32, String)> = HashSet::new();
            for v in &visits {
                *per.entry((v.day, v.inspector.clone())).or_default() += 1;
                prop_assert!(seen.insert((v.day, v.community_id.clone())));
            }
            prop_assert!(per.values().all(|n| *n <= input.per_day));
        }
    }

    #[test]
    fn enough_slots_cover_every_uninspected_community_first() {
        let communities: Vec<String> = (0..10).map(|i| format!("c{i}")).collect();
        let mut input = PlanInput {
            uninspected: communities[..6].iter().cloned().collect(),
            last_visitor: communities
                .iter()
                .map(|c| (c.clone(), "someone.else".to_string()))
                .collect(),
            communities,
            inspectors: vec!["a".into(), "b".into()],
            days: 2,
            per_day: 2,
            seed: 7,
        };
        let visits = plan(&input);
        assert_eq!(visits.len(), 8);
        assert!(visits[..6].iter().all(|v| v.uninspected));
        assert!(visits[6..].iter().all(|v| !v.uninspected));

        // Every community was last visited by "a": in this round "a" has nowhere to go, and
        // "b" covers as many uninspected communities as its slots allow.
        input.last_visitor = input
            .communities
            .iter()
            .map(|c| (c.clone(), "a".to_string()))
            .collect();
        let visits = plan(&input);
        assert!(visits.iter().all(|v| v.inspector == "b" && v.uninspected));
        assert_eq!(visits.len(), 4);
    }
}
