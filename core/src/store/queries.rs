//! Read-only queries over the projection and the reference data.

use crate::Result;
use crate::community::Community;
use crate::geo::{self, LatLon};
use crate::inspection::{InspectionKind, InspectionStatus};
use rusqlite::{Connection, OptionalExtension, Row, params_from_iter, types::Value};
use serde::{Deserialize, Serialize};

/// A community and how far it is from the asked point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct NearbyCommunity {
    pub community: Community,
    pub distance_m: f64,
}

/// Which inspections to list. Every field narrows the list; `None` does not filter.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct InspectionFilter {
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub community_id: Option<String>,
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub status: Option<InspectionStatus>,
    /// An inspector (creator or co-inspector).
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub inspector: Option<String>,
    /// Started at or after (ms since the epoch).
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub from_ms: Option<i64>,
    /// Started before (ms since the epoch).
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub to_ms: Option<i64>,
    /// At most this many (newest first); 0 means 50.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub limit: u32,
}

/// One row of an inspection list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct InspectionSummary {
    pub id: String,
    pub community_id: String,
    pub standard_id: String,
    pub standard_version: String,
    pub kind: InspectionKind,
    pub status: InspectionStatus,
    pub created_by: String,
    pub started_at_ms: i64,
    pub ended_at_ms: Option<i64>,
    /// `None` when the inspection's standard version is not in this store.
    pub total: Option<f64>,
    pub max_points: Option<f64>,
    pub grade: Option<String>,
    pub vetoed: bool,
    pub conflict_count: u32,
}

/// One point of a community's score history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct ScorePoint {
    pub inspection_id: String,
    pub started_at_ms: i64,
    pub status: InspectionStatus,
    pub total: f64,
    pub grade: String,
    pub vetoed: bool,
}

const COMMUNITY_COLUMNS: &str = "id, name, district, street, committee, address, lat, lon, geofence_m, property_manager, households";

fn community_row(r: &Row<'_>) -> rusqlite::Result<Community> {
    Ok(Community {
        id: r.get(0)?,
        name: r.get(1)?,
        district: r.get(2)?,
        street: r.get(3)?,
        committee: r.get(4)?,
        address: r.get(5)?,
        location: LatLon {
            lat: r.get(6)?,
            lon: r.get(7)?,
        },
        geofence_m: r.get(8)?,
        property_manager: r.get(9)?,
        households: r.get(10)?,
    })
}

pub(super) fn community(conn: &Connection, id: &str) -> Result<Option<Community>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COMMUNITY_COLUMNS} FROM communities WHERE id = ?1"
        ))?
        .query_row([id], community_row)
        .optional()?)
}

/// Nearest communities: a bounding-box prefilter on the (lat, lon) index, widened until it
/// holds `limit` communities inside its inscribed circle, then exact geodesic distances.
pub(super) fn nearest_communities(
    conn: &Connection,
    at: LatLon,
    limit: u32,
) -> Result<Vec<NearbyCommunity>> {
    let limit = limit.max(1) as usize;
    let total: i64 = conn.query_row("SELECT count(*) FROM communities", [], |r| r.get(0))?;
    let wanted = limit.min(total as usize);
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COMMUNITY_COLUMNS} FROM communities
         WHERE lat BETWEEN ?1 AND ?2 AND lon BETWEEN ?3 AND ?4"
    ))?;
    let mut radius_m = 2_000.0;
    loop {
        let (min_lat, max_lat, min_lon, max_lon) = geo::bounding_box(at, radius_m);
        let mut found: Vec<NearbyCommunity> = stmt
            .query_map([min_lat, max_lat, min_lon, max_lon], community_row)?
            .map(|c| {
                c.map(|c| NearbyCommunity {
                    distance_m: geo::distance_m(at, c.location),
                    community: c,
                })
            })
            .collect::<rusqlite::Result<_>>()?;
        let inside = found.iter().filter(|n| n.distance_m <= radius_m).count();
        // Past half the Earth's circumference the box holds everything there is.
        if inside >= wanted || radius_m > 20_100_000.0 {
            found.sort_by(|a, b| {
                a.distance_m
                    .total_cmp(&b.distance_m)
                    .then_with(|| a.community.id.cmp(&b.community.id))
            });
            found.truncate(limit);
            return Ok(found);
        }
        radius_m *= 4.0;
    }
}

pub(super) fn list_inspections(
    conn: &Connection,
    f: &InspectionFilter,
) -> Result<Vec<InspectionSummary>> {
    let mut sql = String::from(
        "SELECT i.id, i.community_id, i.standard_id, i.standard_version, i.kind, i.status, i.created_by,
                i.started_at, i.ended_at, i.total, i.max_points, i.grade, i.vetoed, i.conflict_count
         FROM inspections i WHERE 1 = 1",
    );
    let mut args: Vec<Value> = Vec::new();
    if let Some(c) = &f.community_id {
        args.push(Value::Text(c.clone()));
        sql += &format!(" AND i.community_id = ?{}", args.len());
    }
    if let Some(s) = f.status {
        args.push(Value::Text(s.as_str().into()));
        sql += &format!(" AND i.status = ?{}", args.len());
    }
    if let Some(u) = &f.inspector {
        args.push(Value::Text(u.clone()));
        sql += &format!(
            " AND EXISTS (SELECT 1 FROM inspection_inspectors x WHERE x.inspection_id = i.id AND x.user_id = ?{})",
            args.len()
        );
    }
    if let Some(from) = f.from_ms {
        args.push(Value::Integer(from));
        sql += &format!(" AND i.started_at >= ?{}", args.len());
    }
    if let Some(to) = f.to_ms {
        args.push(Value::Integer(to));
        sql += &format!(" AND i.started_at < ?{}", args.len());
    }
    let limit = if f.limit == 0 { 50 } else { f.limit };
    sql += &format!(" ORDER BY i.started_at DESC, i.id DESC LIMIT {limit}");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(args), |r| {
        Ok(InspectionSummary {
            id: r.get(0)?,
            community_id: r.get(1)?,
            standard_id: r.get(2)?,
            standard_version: r.get(3)?,
            kind: InspectionKind::parse(&r.get::<_, String>(4)?)
                .unwrap_or(InspectionKind::DailyPatrol),
            status: InspectionStatus::parse(&r.get::<_, String>(5)?)
                .unwrap_or(InspectionStatus::Draft),
            created_by: r.get(6)?,
            started_at_ms: r.get(7)?,
            ended_at_ms: r.get(8)?,
            total: r.get(9)?,
            max_points: r.get(10)?,
            grade: r.get(11)?,
            vetoed: r.get(12)?,
            conflict_count: r.get(13)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn score_trend(
    conn: &Connection,
    community_id: &str,
    limit: u32,
) -> Result<Vec<ScorePoint>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, started_at, status, total, grade, vetoed FROM inspections
         WHERE community_id = ?1 AND status IN ('submitted', 'approved') AND total IS NOT NULL
         ORDER BY started_at DESC, id DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(rusqlite::params![community_id, limit.max(1)], |r| {
        Ok(ScorePoint {
            inspection_id: r.get(0)?,
            started_at_ms: r.get(1)?,
            status: InspectionStatus::parse(&r.get::<_, String>(2)?)
                .unwrap_or(InspectionStatus::Submitted),
            total: r.get(3)?,
            grade: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
            vetoed: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
