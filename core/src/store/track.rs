//! GPS beyond single fixes: fixes given in any coordinate system (converted to WGS-84 when
//! recorded, so the document only ever holds WGS-84), the optional patrol track recorded during
//! an inspection, and the explicit "check geofence now". The track lives in the document's fix
//! list (it syncs and merges like every fix: list inserts from two phones both survive); a batch
//! of track points is one change.

use serde::{Deserialize, Serialize};

use super::Store;
use super::media::{GeofenceStage, RecordedGeofenceCheck, record_geofence};
use super::projection::Touched;
use crate::geo::{self, CoordSystem};
use crate::inspection::GpsFix;
use crate::media::verify::{self, GeofenceStatus, VerifyPolicy};
use crate::{CoreError, Result};

/// Most fixes one `add_track_fixes` call takes (an hour at one fix a second).
pub const MAX_TRACK_BATCH: usize = 3_600;

/// The inspection's fixes as a walk: what an auditor checks ("no track, or a track outside the
/// grid").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct PatrolTrack {
    /// Every fix of the inspection (single fixes and track points), oldest first, WGS-84.
    pub fixes: Vec<GpsFix>,
    /// Walked distance along the fixes, metres.
    pub length_m: f64,
    /// From the first fix to the last, ms.
    pub duration_ms: i64,
    /// The longest time between two consecutive fixes, ms (a gap in the track).
    pub longest_gap_ms: i64,
    /// Fixes whose whole accuracy circle is outside the community's geofence.
    pub outside_geofence: u32,
    /// Fixes the platform flagged as mock locations.
    pub mock_fixes: u32,
}

fn to_wgs84(fix: &GpsFix, system: CoordSystem) -> Result<GpsFix> {
    let mut f = fix.clone();
    f.location = geo::convert(fix.location, system, CoordSystem::Wgs84)?;
    Ok(f)
}

impl Store {
    /// Records a fix whose coordinates are in `system` (an SDK that reports GCJ-02, a point
    /// picked on a Chinese map): converted to WGS-84 before it is stored.
    pub fn add_gps_fix_in(
        &self,
        inspection_id: &str,
        fix: &GpsFix,
        system: CoordSystem,
        by: &str,
    ) -> Result<()> {
        self.add_gps_fix(inspection_id, &to_wgs84(fix, system)?, by)
    }

    /// Appends patrol-track points (in `system`, converted to WGS-84) as one change. The first
    /// fix of an inspection also records the start geofence check, as a single fix does.
    pub fn add_track_fixes(
        &self,
        inspection_id: &str,
        fixes: &[GpsFix],
        system: CoordSystem,
        by: &str,
    ) -> Result<()> {
        if fixes.len() > MAX_TRACK_BATCH {
            return Err(CoreError::InvalidArgument(format!(
                "at most {MAX_TRACK_BATCH} track points per call"
            )));
        }
        if fixes.is_empty() {
            return Ok(());
        }
        let fixes: Vec<GpsFix> = fixes
            .iter()
            .map(|f| to_wgs84(f, system))
            .collect::<Result<_>>()?;
        let now = self.now_ms();
        self.edit_with(
            inspection_id,
            Touched::Header,
            |doc, _| doc.add_track_fixes(&fixes, by),
            |tx, doc| record_geofence(tx, doc, GeofenceStage::Start, now),
        )
    }

    /// The inspection's fixes read as a patrol track, with its length, gaps and the fixes
    /// outside the community's geofence.
    pub fn patrol_track(&self, inspection_id: &str) -> Result<PatrolTrack> {
        let inspection = self.inspection(inspection_id)?;
        let community = self.community(&inspection.community_id).ok();
        let mut fixes = inspection.gps_fixes;
        fixes.sort_by_key(|f| f.at_ms);
        let policy = VerifyPolicy::default();
        let now = self.now_ms();
        let mut track = PatrolTrack {
            length_m: 0.0,
            duration_ms: match (fixes.first(), fixes.last()) {
                (Some(a), Some(b)) => b.at_ms - a.at_ms,
                _ => 0,
            },
            longest_gap_ms: 0,
            outside_geofence: 0,
            mock_fixes: fixes.iter().filter(|f| f.is_mock).count() as u32,
            fixes: Vec::new(),
        };
        for pair in fixes.windows(2) {
            track.length_m += geo::distance_m(pair[0].location, pair[1].location);
            track.longest_gap_ms = track.longest_gap_ms.max(pair[1].at_ms - pair[0].at_ms);
        }
        if let Some(c) = &community {
            track.outside_geofence = fixes
                .iter()
                .filter(|f| {
                    verify::check_geofence(f, CoordSystem::Wgs84, c, now, &policy).status
                        == GeofenceStatus::Outside
                })
                .count() as u32;
        }
        track.fixes = fixes;
        Ok(track)
    }

    /// "Check geofence now": records `fix` (in `system`) in the inspection and a geofence check
    /// with it (stage `OnDemand`), and returns the check.
    pub fn check_geofence_now(
        &self,
        inspection_id: &str,
        fix: &GpsFix,
        system: CoordSystem,
        by: &str,
    ) -> Result<RecordedGeofenceCheck> {
        let fix = to_wgs84(fix, system)?;
        let now = self.now_ms();
        self.edit_with(
            inspection_id,
            Touched::Header,
            |doc, _| doc.add_gps_fix(&fix, by),
            |tx, doc| {
                record_geofence(tx, doc, GeofenceStage::Start, now)?;
                record_geofence(tx, doc, GeofenceStage::OnDemand, now)
            },
        )?;
        self.geofence_checks(inspection_id)?
            .into_iter()
            .rev()
            .find(|c| c.stage == GeofenceStage::OnDemand)
            .ok_or_else(|| {
                CoreError::UnknownCommunity("the inspection's community is not held here".into())
            })
    }
}
