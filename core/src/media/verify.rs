//! Evidence checks: flags a supervisor sees next to a photo or a GPS fix. None of them blocks
//! anything; each says what was found, with the numbers, so a person can judge.
//!
//! Coordinates: the community is stored in WGS-84 (converted on import); EXIF GPS is WGS-84 by
//! the standard; the device fix is WGS-84 unless the app says its location SDK returned GCJ-02
//! or BD-09 (Amap, Baidu, Tencent SDKs do by default). Some Chinese phones also write GCJ-02 into
//! EXIF: when a photo's position is far off as WGS-84 but fits once read as GCJ-02, that is
//! flagged ([`EvidenceFlag::ExifGpsLooksGcj02`]) and the converted position is used.
//!
//! Time: an EXIF time with an offset (OffsetTimeOriginal) is exact. One without is read as
//! China Standard Time (UTC+8), and [`EvidenceFlag::ExifTimeZoneAssumed`] says so.

use serde::{Deserialize, Serialize};

use super::{CHINA_OFFSET_MINUTES, PhotoExif};
use crate::community::Community;
use crate::geo::{self, CoordSystem, LatLon};
use crate::inspection::{GpsFix, Inspection, MediaKind};

/// Thresholds of the checks. The defaults suit phone GPS in Chinese residential compounds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct VerifyPolicy {
    /// Room beyond the community's geofence for a photo's EXIF position (photos are taken at
    /// bin points on the compound's edge, and EXIF positions are often a few seconds old).
    pub photo_slack_m: f64,
    /// EXIF position vs the device fix at capture: farther apart than this (plus both
    /// accuracies) and they disagree.
    pub exif_vs_device_max_m: f64,
    /// How far before the start or after the end of the inspection a photo may be taken.
    pub time_tolerance_ms: i64,
    /// A fix older than this (against `now`, or against the capture time for a photo) is stale.
    pub max_fix_age_ms: i64,
    /// A fix whose accuracy radius is larger than this is too coarse to prove presence.
    pub max_accuracy_m: f64,
}

impl Default for VerifyPolicy {
    fn default() -> Self {
        VerifyPolicy {
            photo_slack_m: 100.0,
            exif_vs_device_max_m: 150.0,
            time_tolerance_ms: 10 * 60_000,
            max_fix_age_ms: 2 * 60_000,
            max_accuracy_m: 100.0,
        }
    }
}

/// Where a fix is relative to a community's geofence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum GeofenceStatus {
    /// The whole accuracy circle is inside the fence.
    Inside,
    /// The whole accuracy circle is outside the fence.
    Outside,
    /// The accuracy circle straddles the fence, or the fix is unusable.
    Uncertain,
}

/// One finding. Distances in metres, times in ms since the epoch (UTC).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum EvidenceFlag {
    /// The photo has no camera EXIF (no time, camera, or GPS).
    NoExif,
    /// The photo's EXIF has no capture time.
    NoExifTime,
    /// The photo's EXIF has no position.
    NoExifGps,
    /// The EXIF time had no offset and was read as UTC+8.
    ExifTimeZoneAssumed { offset_minutes: i64 },
    /// The photo was taken outside the inspection (beyond the tolerance). `off_by_ms` is how far
    /// outside the window it is.
    ExifTimeOutsideWindow {
        taken_at_ms: i64,
        window_start_ms: i64,
        window_end_ms: i64,
        off_by_ms: i64,
        offset_assumed: bool,
    },
    /// The photo's EXIF position is outside the community's geofence plus slack.
    PhotoFarFromCommunity { distance_m: f64, geofence_m: f64 },
    /// The photo's EXIF position disagrees with where the device said it was.
    PhotoFarFromDevice { distance_m: f64 },
    /// The EXIF position only fits when read as GCJ-02: the phone wrote map coordinates.
    ExifGpsLooksGcj02 {
        raw_distance_m: f64,
        converted_distance_m: f64,
    },
    /// The same photo (same SHA-256) is evidence in other inspections.
    ReusedPhoto { inspection_ids: Vec<String> },
    /// The file was last saved by an image editor.
    EditedInSoftware { software: String },
    /// No device fix was recorded.
    NoDeviceFix,
    /// The device fix is outside the community's geofence (its whole accuracy circle).
    OutsideGeofence {
        distance_m: f64,
        accuracy_m: Option<f64>,
        geofence_m: f64,
    },
    /// The accuracy circle straddles the fence: cannot tell inside from outside.
    GeofenceUncertain {
        distance_m: f64,
        accuracy_m: f64,
        geofence_m: f64,
    },
    /// The platform reported a mock (fake) location.
    MockLocation,
    /// The fix was this old when it was used.
    StaleFix { age_ms: i64 },
    /// The fix claims a time this far after the moment it was used (device clock wrong).
    FixFromFuture { ahead_ms: i64 },
    /// The accuracy radius is too coarse to prove presence.
    LowAccuracy { accuracy_m: f64 },
    /// The platform gave no accuracy.
    AccuracyUnknown,
    /// The fix's coordinates are not a valid position.
    InvalidFix,
}

/// The result of "is the inspector within the community's geofence".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct GeofenceCheck {
    pub status: GeofenceStatus,
    /// From the fix (in WGS-84) to the community's point; `None` for an unusable fix.
    pub distance_m: Option<f64>,
    pub geofence_m: f64,
    pub flags: Vec<EvidenceFlag>,
}

/// What [`check_photo`] needs about one photo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct PhotoCheckInput {
    /// The record's EXIF (`MediaRecord::exif`).
    pub exif: Option<PhotoExif>,
    /// The device fix when the photo was taken, if the app had one.
    pub device_fix: Option<GpsFix>,
    /// The datum the app's location SDK reports in (phone GPS: WGS-84).
    pub device_fix_system: CoordSystem,
    pub community: Community,
    /// The inspection's start and end (end: submission, or now while it is open).
    pub window_start_ms: i64,
    pub window_end_ms: i64,
    /// Other inspections that already use this photo's hash (from the store).
    pub other_inspections_with_same_photo: Vec<String>,
}

/// Software names of image editors (lower case, matched as substrings of the Software tag).
/// Phones write their firmware version there, which matches none of these.
const EDITORS: &[&str] = &[
    "photoshop",
    "lightroom",
    "gimp",
    "snapseed",
    "picsart",
    "meitu",
    "美图",
    "醒图",
    "faceu",
    "paint.net",
    "affinity",
    "pixelmator",
    "capture one",
];

fn usable(p: LatLon) -> bool {
    geo::validate(p).is_ok()
}

fn accuracy(fix: &GpsFix) -> Option<f64> {
    fix.accuracy_m.filter(|a| a.is_finite() && *a >= 0.0)
}

/// The device fix in WGS-84, if its coordinates are usable.
fn fix_wgs84(fix: &GpsFix, system: CoordSystem) -> Option<LatLon> {
    usable(fix.location)
        .then(|| geo::to_wgs84(fix.location, system))
        .filter(|p| usable(*p))
}

/// Age, mock-location and accuracy flags of a fix used at `at_ms`.
fn fix_quality(fix: &GpsFix, at_ms: i64, policy: &VerifyPolicy, flags: &mut Vec<EvidenceFlag>) {
    if fix.is_mock {
        flags.push(EvidenceFlag::MockLocation);
    }
    let age = at_ms.saturating_sub(fix.at_ms);
    if age > policy.max_fix_age_ms {
        flags.push(EvidenceFlag::StaleFix { age_ms: age });
    } else if -age > policy.max_fix_age_ms {
        flags.push(EvidenceFlag::FixFromFuture { ahead_ms: -age });
    }
    match accuracy(fix) {
        None => flags.push(EvidenceFlag::AccuracyUnknown),
        Some(a) if a > policy.max_accuracy_m => {
            flags.push(EvidenceFlag::LowAccuracy { accuracy_m: a })
        }
        Some(_) => {}
    }
}

/// "Is the inspector within the community's geofence", from a fix used at `now_ms` (at the
/// start or at submission). Inside / outside only when the whole accuracy circle is; otherwise
/// uncertain. Without an accuracy the point alone decides, and `AccuracyUnknown` is flagged.
pub fn check_geofence(
    fix: &GpsFix,
    fix_system: CoordSystem,
    community: &Community,
    now_ms: i64,
    policy: &VerifyPolicy,
) -> GeofenceCheck {
    let fence = community.geofence_m;
    let mut flags = Vec::new();
    let Some(p) = fix_wgs84(fix, fix_system) else {
        flags.push(EvidenceFlag::InvalidFix);
        if fix.is_mock {
            flags.push(EvidenceFlag::MockLocation);
        }
        return GeofenceCheck {
            status: GeofenceStatus::Uncertain,
            distance_m: None,
            geofence_m: fence,
            flags,
        };
    };
    let d = geo::distance_m(p, community.location);
    let acc = accuracy(fix);
    let r = acc.unwrap_or(0.0);
    let status = if d + r <= fence {
        GeofenceStatus::Inside
    } else if d - r > fence {
        GeofenceStatus::Outside
    } else {
        GeofenceStatus::Uncertain
    };
    match status {
        GeofenceStatus::Inside => {}
        GeofenceStatus::Outside => flags.push(EvidenceFlag::OutsideGeofence {
            distance_m: d,
            accuracy_m: acc,
            geofence_m: fence,
        }),
        GeofenceStatus::Uncertain => flags.push(EvidenceFlag::GeofenceUncertain {
            distance_m: d,
            accuracy_m: r,
            geofence_m: fence,
        }),
    }
    fix_quality(fix, now_ms, policy, &mut flags);
    GeofenceCheck {
        status,
        distance_m: Some(d),
        geofence_m: fence,
        flags,
    }
}

/// All flags for one photo: EXIF present, time vs the inspection window, EXIF position vs the
/// device fix vs the community, reuse in other inspections, editing software.
pub fn check_photo(input: &PhotoCheckInput, policy: &VerifyPolicy) -> Vec<EvidenceFlag> {
    let mut flags = Vec::new();
    let community = &input.community;
    let device = input
        .device_fix
        .as_ref()
        .and_then(|f| fix_wgs84(f, input.device_fix_system).map(|p| (f, p)));

    let exif = input.exif.as_ref().filter(|e| {
        e.taken_local.is_some() || e.make.is_some() || e.model.is_some() || e.gps.is_some()
    });
    let mut taken_at = None;
    match exif {
        None => flags.push(EvidenceFlag::NoExif),
        Some(exif) => {
            // Time.
            match exif.taken_at_ms() {
                None => flags.push(EvidenceFlag::NoExifTime),
                Some((t, assumed)) => {
                    taken_at = Some(t);
                    if assumed {
                        flags.push(EvidenceFlag::ExifTimeZoneAssumed {
                            offset_minutes: CHINA_OFFSET_MINUTES,
                        });
                    }
                    let lo = input
                        .window_start_ms
                        .saturating_sub(policy.time_tolerance_ms);
                    let hi = input.window_end_ms.saturating_add(policy.time_tolerance_ms);
                    let off_by = if t < lo {
                        Some(input.window_start_ms - t)
                    } else if t > hi {
                        Some(t - input.window_end_ms)
                    } else {
                        None
                    };
                    if let Some(off_by_ms) = off_by {
                        flags.push(EvidenceFlag::ExifTimeOutsideWindow {
                            taken_at_ms: t,
                            window_start_ms: input.window_start_ms,
                            window_end_ms: input.window_end_ms,
                            off_by_ms,
                            offset_assumed: assumed,
                        });
                    }
                }
            }
            // Position.
            match &exif.gps {
                None => flags.push(EvidenceFlag::NoExifGps),
                Some(gps) => photo_position(gps, device, community, policy, &mut flags),
            }
            if let Some(sw) = &exif.software {
                let lower = sw.to_lowercase();
                if EDITORS.iter().any(|e| lower.contains(e)) {
                    flags.push(EvidenceFlag::EditedInSoftware {
                        software: sw.clone(),
                    });
                }
            }
        }
    }

    // The device fix at capture: present, fresh against the capture time, inside the fence.
    // Without an EXIF time only a fix from outside the inspection window counts as stale.
    match (input.device_fix.as_ref(), device) {
        (None, _) => flags.push(EvidenceFlag::NoDeviceFix),
        (Some(_), None) => flags.push(EvidenceFlag::InvalidFix),
        (Some(fix), Some(_)) => {
            let at = taken_at.unwrap_or_else(|| {
                fix.at_ms.clamp(
                    input.window_start_ms,
                    input.window_end_ms.max(input.window_start_ms),
                )
            });
            let check = check_geofence(fix, input.device_fix_system, community, at, policy);
            flags.extend(check.flags);
        }
    }
    if !input.other_inspections_with_same_photo.is_empty() {
        let mut ids = input.other_inspections_with_same_photo.clone();
        ids.sort();
        ids.dedup();
        flags.push(EvidenceFlag::ReusedPhoto {
            inspection_ids: ids,
        });
    }
    flags
}

/// EXIF position vs community and device, with the GCJ-02 mix-up recognised.
fn photo_position(
    gps: &super::ExifGps,
    device: Option<(&GpsFix, LatLon)>,
    community: &Community,
    policy: &VerifyPolicy,
    flags: &mut Vec<EvidenceFlag>,
) {
    let err = gps.h_error_m.unwrap_or(0.0);
    let allowed = community.geofence_m + policy.photo_slack_m + err;
    // What the photo is compared with: the device fix if there is one, else the community.
    let reference = device.map(|(_, p)| p).unwrap_or(community.location);
    let ref_allowed = match device {
        Some((fix, _)) => policy.exif_vs_device_max_m + err + accuracy(fix).unwrap_or(0.0),
        None => allowed,
    };
    let raw = gps.location;
    let mut p = raw;
    if geo::gcj02_applies(raw) {
        let as_wgs = geo::to_wgs84(raw, CoordSystem::Gcj02);
        let raw_d = geo::distance_m(raw, reference);
        let conv_d = geo::distance_m(as_wgs, reference);
        // Only when the raw reading does not fit and the GCJ-02 reading does: a real WGS-84
        // position a few hundred metres off stays what it is.
        if raw_d > ref_allowed && conv_d <= ref_allowed && conv_d < raw_d / 4.0 {
            flags.push(EvidenceFlag::ExifGpsLooksGcj02 {
                raw_distance_m: raw_d,
                converted_distance_m: conv_d,
            });
            p = as_wgs;
        }
    }
    let to_community = geo::distance_m(p, community.location);
    if to_community > allowed {
        flags.push(EvidenceFlag::PhotoFarFromCommunity {
            distance_m: to_community,
            geofence_m: community.geofence_m,
        });
    }
    if let Some((fix, dp)) = device {
        let d = geo::distance_m(p, dp);
        if d > policy.exif_vs_device_max_m + err + accuracy(fix).unwrap_or(0.0) {
            flags.push(EvidenceFlag::PhotoFarFromDevice { distance_m: d });
        }
    }
}

/// The flags of one piece of evidence of an inspection, from what the document holds (its fixes
/// are WGS-84) and the file's EXIF: the device's store calls it at attach and on read, the
/// server on read from the verified original it holds. Photos: [`check_photo`] against the fix
/// nearest their capture time (else the latest), in the window from the start to the end (`now`
/// while open). Voice notes carry no position or time of their own: the latest fix is checked
/// against the fence, and reuse is flagged as for photos.
pub fn check_evidence(
    kind: MediaKind,
    exif: Option<&PhotoExif>,
    inspection: &Inspection,
    community: &Community,
    other_inspections: Vec<String>,
    now_ms: i64,
) -> Vec<EvidenceFlag> {
    let policy = VerifyPolicy::default();
    let window_start_ms = inspection.started_at_ms;
    let window_end_ms = inspection
        .ended_at_ms
        .unwrap_or(now_ms)
        .max(window_start_ms);
    match kind {
        MediaKind::Photo => {
            let taken = exif.and_then(PhotoExif::taken_at_ms).map(|(t, _)| t);
            let input = PhotoCheckInput {
                exif: exif.cloned(),
                device_fix: fix_near(&inspection.gps_fixes, taken),
                device_fix_system: CoordSystem::Wgs84,
                community: community.clone(),
                window_start_ms,
                window_end_ms,
                other_inspections_with_same_photo: other_inspections,
            };
            check_photo(&input, &policy)
        }
        MediaKind::VoiceNote => {
            let mut flags = match fix_near(&inspection.gps_fixes, None) {
                Some(fix) => {
                    check_geofence(&fix, CoordSystem::Wgs84, community, now_ms, &policy).flags
                }
                None => vec![EvidenceFlag::NoDeviceFix],
            };
            if !other_inspections.is_empty() {
                flags.push(EvidenceFlag::ReusedPhoto {
                    inspection_ids: other_inspections,
                });
            }
            flags
        }
    }
}

/// The fix closest in time to `at`, or the latest one when the time is unknown.
pub fn fix_near(fixes: &[GpsFix], at: Option<i64>) -> Option<GpsFix> {
    match at {
        Some(t) => fixes
            .iter()
            .min_by_key(|f| f.at_ms.saturating_sub(t).unsigned_abs()),
        None => fixes.iter().max_by_key(|f| f.at_ms),
    }
    .cloned()
}
