//! GPS beyond single fixes through the bindings: fixes in any coordinate system, the patrol
//! track, "check geofence now". Each method delegates to core's store through [`guard`].

use crate::error::{FenleiError, guard};
use crate::store::FenleiStore;
use fenlei_core::geo::CoordSystem;
use fenlei_core::inspection::GpsFix;
use fenlei_core::store::{PatrolTrack, RecordedGeofenceCheck};

#[uniffi::export]
impl FenleiStore {
    /// Records a fix whose coordinates are in `system` (GCJ-02 from a Chinese map SDK...);
    /// stored as WGS-84.
    pub fn add_gps_fix_in(
        &self,
        inspection_id: String,
        fix: GpsFix,
        system: CoordSystem,
        by: String,
    ) -> Result<(), FenleiError> {
        guard("add_gps_fix_in", || {
            self.inner.add_gps_fix_in(&inspection_id, &fix, system, &by)
        })
    }

    /// Appends patrol-track points (at most 3,600 per call) as one change.
    pub fn add_track_fixes(
        &self,
        inspection_id: String,
        fixes: Vec<GpsFix>,
        system: CoordSystem,
        by: String,
    ) -> Result<(), FenleiError> {
        guard("add_track_fixes", || {
            self.inner
                .add_track_fixes(&inspection_id, &fixes, system, &by)
        })
    }

    /// The inspection's fixes as a walk: length, gaps, fixes outside the geofence.
    pub fn patrol_track(&self, inspection_id: String) -> Result<PatrolTrack, FenleiError> {
        guard("patrol_track", || self.inner.patrol_track(&inspection_id))
    }

    /// Records `fix` and checks it against the community's geofence now.
    pub fn check_geofence_now(
        &self,
        inspection_id: String,
        fix: GpsFix,
        system: CoordSystem,
        by: String,
    ) -> Result<RecordedGeofenceCheck, FenleiError> {
        guard("check_geofence_now", || {
            self.inner
                .check_geofence_now(&inspection_id, &fix, system, &by)
        })
    }
}
