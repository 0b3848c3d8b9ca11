//! Communities, standards and the reference-data feed on PostgreSQL.

use super::conn::Sql;
use super::{PgStorage, log_reference};
use crate::error::ServerResult;
use crate::model::*;
use fenlei_core::community::Community;
use fenlei_core::geo::LatLon;
use fenlei_core::inspection::Inspection;
use fenlei_core::protocol::{ReferenceUpdate, StandardSource};
use fenlei_core::scoring::ScoreCard;
use fenlei_core::standard::Standard;
use fenlei_core::store::StandardInfo;
use postgres::Row;
use std::collections::HashSet;
use std::sync::Arc;

const COMMUNITY_COLUMNS: &str = "id, name, district, street, committee, address, lat, lon, geofence_m, property_manager, households";

/// One community of an imported list, inserted or replacing the stored one.
const UPSERT_COMMUNITY: &str =
    "INSERT INTO communities (id, name, district, street, committee, address, lat, lon,
         geofence_m, property_manager, households)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
     ON CONFLICT (id) DO UPDATE SET name = excluded.name, district = excluded.district,
         street = excluded.street, committee = excluded.committee, address = excluded.address,
         lat = excluded.lat, lon = excluded.lon, geofence_m = excluded.geofence_m,
         property_manager = excluded.property_manager, households = excluded.households";

fn community_row(r: &Row) -> Community {
    Community {
        id: r.get(0),
        name: r.get(1),
        district: r.get(2),
        street: r.get(3),
        committee: r.get(4),
        address: r.get(5),
        location: LatLon {
            lat: r.get(6),
            lon: r.get(7),
        },
        geofence_m: r.get(8),
        property_manager: r.get(9),
        households: r.get::<_, i64>(10).clamp(0, u32::MAX as i64) as u32,
    }
}

pub(super) fn community_in(client: &mut impl Sql, id: &str) -> ServerResult<Option<Community>> {
    let sql = format!("SELECT {COMMUNITY_COLUMNS} FROM communities WHERE id = $1");
    Ok(client.query_opt(&sql, &[&id])?.as_ref().map(community_row))
}

impl PgStorage {
    /// A standard by id and exact version, parsed once per process (versions are immutable).
    pub(crate) fn standard(&self, id: &str, version: &str) -> ServerResult<Option<Arc<Standard>>> {
        let key = (id.to_string(), version.to_string());
        if let Some(s) = crate::store::lock(&self.standards).get(&key) {
            return Ok(Some(s.clone()));
        }
        let Some(row) = self.client()?.query_opt(
            "SELECT source FROM standards WHERE id = $1 AND version = $2",
            &[&id, &version],
        )?
        else {
            return Ok(None);
        };
        let standard = Arc::new(Standard::from_toml_str(row.get(0))?);
        crate::store::lock(&self.standards).insert(key, standard.clone());
        Ok(Some(standard))
    }
}

impl crate::store::ReferenceStore for PgStorage {
    fn import_communities_csv(&self, bytes: &[u8]) -> ServerResult<u32> {
        // All rows or none: a bad row is reported (with its row number) before anything is written.
        let communities = fenlei_core::community::parse_csv(bytes)?;
        for c in &communities {
            fenlei_core::geo::validate(c.location)?;
        }
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        for c in &communities {
            tx.execute(
                UPSERT_COMMUNITY,
                &[
                    &c.id,
                    &c.name,
                    &c.district,
                    &c.street,
                    &c.committee,
                    &c.address,
                    &c.location.lat,
                    &c.location.lon,
                    &c.geofence_m,
                    &c.property_manager,
                    &(c.households as i64),
                ],
            )?;
        }
        let mut seen = HashSet::new();
        let keys: Vec<&str> = communities
            .iter()
            .map(|c| c.id.as_str())
            .filter(|id| seen.insert(*id))
            .collect();
        log_reference(&mut tx, "community", &keys)?;
        tx.commit()?;
        Ok(communities.len() as u32)
    }

    fn publish_standard(&self, source: &str) -> ServerResult<StandardInfo> {
        let standard = Standard::from_toml_str(source)?;
        let info = StandardInfo::of(&standard);
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        // Inserted first, so a second instance publishing the same version waits on the key
        // and then compares against what the first committed.
        tx.execute(
            "INSERT INTO standards (id, version, name, source, imported_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id, version) DO NOTHING",
            &[
                &info.id,
                &info.version,
                &info.name,
                &source,
                &crate::model::now(),
            ],
        )?;
        let stored: String = tx
            .query_one(
                "SELECT source FROM standards WHERE id = $1 AND version = $2",
                &[&info.id, &info.version],
            )?
            .get(0);
        if stored != source {
            return Err(fenlei_core::store::standard_version_taken(&info).into());
        }
        let key = format!("{}\u{1f}{}", info.id, info.version);
        let known = tx
            .query_opt(
                "SELECT 1 FROM reference_log WHERE kind = 'standard' AND key = $1",
                &[&key],
            )?
            .is_some();
        if !known {
            log_reference(&mut tx, "standard", &[key.as_str()])?;
        }
        tx.commit()?;
        crate::store::lock(&self.standards)
            .insert((info.id.clone(), info.version.clone()), Arc::new(standard));
        Ok(info)
    }

    fn reference_after(
        &self,
        cursor: u64,
        user: &User,
        limit: usize,
    ) -> ServerResult<ReferenceUpdate> {
        let mut client = self.client()?;
        // One snapshot: the counter and the log agree (every seq up to the counter is committed,
        // since the counter row's lock orders the commits).
        let mut tx = client.snapshot()?;
        let latest: i64 = tx
            .query_one("SELECT seq FROM reference_counter WHERE id = 1", &[])?
            .get(0);
        let rows = tx.query(
            "SELECT seq, kind, key FROM reference_log WHERE seq > $1 AND seq <= $2
               AND (kind != 'assignments' OR key = $3)
             ORDER BY seq LIMIT $4",
            &[&(cursor as i64), &latest, &user.id, &(limit as i64)],
        )?;
        let more = rows.len() == limit;
        let mut update = ReferenceUpdate {
            cursor: if more {
                rows.last().map(|r| r.get::<_, i64>(0)).unwrap_or(0) as u64
            } else {
                (latest as u64).max(cursor)
            },
            more,
            ..Default::default()
        };
        for r in rows {
            let key: String = r.get(2);
            match r.get::<_, &str>(1) {
                "community" => {
                    if let Some(c) = community_in(&mut tx, &key)? {
                        update.communities.push(c);
                    }
                }
                "standard" => {
                    let Some((id, version)) = key.split_once('\u{1f}') else {
                        continue;
                    };
                    if let Some(s) = tx.query_opt(
                        "SELECT source FROM standards WHERE id = $1 AND version = $2",
                        &[&id, &version],
                    )? {
                        update.standards.push(StandardSource {
                            id: id.into(),
                            version: version.into(),
                            source: s.get(0),
                        });
                    }
                }
                _ => update.assignments = Some(super::accounts::scope_of(&mut tx, user)?),
            }
        }
        tx.commit()?;
        Ok(update)
    }

    fn community(&self, id: &str) -> ServerResult<Option<Community>> {
        community_in(&mut *self.client()?, id)
    }

    fn score_of(&self, inspection: &Inspection) -> ServerResult<Option<ScoreCard>> {
        Ok(self
            .standard(&inspection.standard_id, &inspection.standard_version)?
            .map(|s| fenlei_core::scoring::score(&s, &inspection.item_answers())))
    }

    fn published_standard(&self, id: &str, version: &str) -> ServerResult<Option<Arc<Standard>>> {
        self.standard(id, version)
    }
}
