//! Evidence checks for the supervisor (flags a supervisor sees, never blockers),
//! computed by the server from what it holds and can verify itself — never from flags a device
//! claims: the inspection document (fixes with accuracy, mock flag and time; the window; the
//! evidence references), the community's point and geofence, the EXIF of the original it has
//! verified by hash (read with core's reader, `fenlei_core::media::read_photo_exif`), and reuse of
//! a hash across the inspections in its own `evidence_refs`. The checks themselves are core's
//! (`media::verify::check_geofence`, `check_evidence`), the same code the phone runs.
//!
//! Computed on read, not stored: every input can change after the fact (a later fix or
//! submission syncs in, the original arrives hours later on Wi-Fi, another inspection reuses the
//! hash), so stored rows would need invalidation on each of those paths; computing costs a few
//! microseconds per check plus one EXIF read per original, which is cached by hash (blobs are
//! immutable, so a cached EXIF never goes stale). No migration needed.
//!
//! JSON (docs/media.md, "Supervisor view"): `{computed_at_ms, geofence: [..], evidence: [..]}`;
//! every flag is `{code, detail, ...numbers}` with `code` core's `EvidenceFlag` / `MediaFlag`
//! variant name and `detail` a Chinese sentence for the dashboard.

use crate::error::ServerResult;
use crate::model::DeviceAuth;
use crate::store::Storage;
use fenlei_core::community::Community;
use fenlei_core::inspection::{GpsFix, Inspection, InspectionStatus, MediaKind, WorkflowEventKind};
use fenlei_core::media::verify::{self, EvidenceFlag, GeofenceCheck, GeofenceStatus, VerifyPolicy};
use fenlei_core::media::{MediaFlag, PhotoExif, read_photo_exif};
use fenlei_core::protocol::media::MediaRendition;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, LazyLock, Mutex};

/// EXIF read from a verified original, by evidence hash. Blobs are immutable: never stale.
type ExifEntry = Arc<(Option<PhotoExif>, Vec<MediaFlag>)>;
static EXIF_CACHE: LazyLock<Mutex<HashMap<String, ExifEntry>>> = LazyLock::new(Default::default);
const EXIF_CACHE_MAX: usize = 20_000;
/// The most of an original read for its EXIF: the device's photo size limit (JPEG EXIF sits in
/// the first 64 KiB, but a HEIF may keep it in a box after the image data).
const EXIF_READ_MAX: u64 = 100 * 1024 * 1024;

/// The EXIF of the verified original of `sha256` as the device that attached it (`device`) sent
/// it, or `None` when that device has not: the original of another device (of a document the
/// caller may not read) never speaks for this reference.
fn original_exif(
    storage: &dyn Storage,
    device: &str,
    sha256: &str,
) -> ServerResult<Option<ExifEntry>> {
    if device.is_empty() || storage.proved_at(device, sha256)?.is_none() {
        return Ok(None);
    }
    if let Some(hit) = EXIF_CACHE
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(sha256)
    {
        return Ok(Some(hit.clone()));
    }
    let Some(kept) = storage.media_blob(sha256, MediaRendition::Original, sha256)? else {
        return Ok(None);
    };
    let Some(reader) = storage.blobs().open(&kept.blob)? else {
        return Ok(None);
    };
    let mut bytes = Vec::with_capacity(kept.bytes.min(EXIF_READ_MAX) as usize);
    reader.take(EXIF_READ_MAX).read_to_end(&mut bytes)?;
    let entry: ExifEntry = Arc::new(read_photo_exif(&mut std::io::Cursor::new(bytes)));
    let mut cache = EXIF_CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if cache.len() >= EXIF_CACHE_MAX {
        cache.clear();
    }
    cache.insert(sha256.to_string(), entry.clone());
    Ok(Some(entry))
}

/// The `checks` object of `GET /v1/inspections/{id}`.
pub fn inspection_checks(
    storage: &dyn Storage,
    auth: &DeviceAuth,
    inspection: &Inspection,
    community: Option<&Community>,
    now_ms: i64,
) -> ServerResult<Value> {
    let Some(community) = community else {
        return Ok(json!({
            "computed_at_ms": now_ms,
            "error": "the inspection's community is not on the server: nothing to check against",
            "geofence": [],
            "evidence": [],
        }));
    };
    let geofence = geofence_checks(inspection, community);
    let mut evidence = Vec::with_capacity(inspection.evidence.len());
    for e in &inspection.evidence {
        let (readable, hidden) = storage.evidence_reuse(auth, &e.sha256, &inspection.id)?;
        let mut flags = Vec::new();
        let mut exif_seen = Value::Null;
        let state = match e.media {
            MediaKind::VoiceNote => {
                for f in
                    verify::check_evidence(e.media, None, inspection, community, vec![], now_ms)
                {
                    flags.push(flag_json(&f));
                }
                "checked"
            }
            MediaKind::Photo => match original_exif(storage, &e.device_id, &e.sha256)? {
                Some(entry) => {
                    let (exif, media_flags) = &*entry;
                    exif_seen = exif.as_ref().map(exif_summary).unwrap_or(Value::Null);
                    for f in media_flags {
                        if let Some(j) = media_flag_json(f) {
                            flags.push(j);
                        }
                    }
                    for f in verify::check_evidence(
                        e.media,
                        exif.as_ref(),
                        inspection,
                        community,
                        vec![],
                        now_ms,
                    ) {
                        flags.push(flag_json(&f));
                    }
                    "checked"
                }
                None => {
                    flags.push(json!({
                        "code": "OriginalNotReceived",
                        "detail": "原图尚未上传到服务器：EXIF 时间与位置待原图到达后核验",
                    }));
                    "original_not_received"
                }
            },
        };
        if !readable.is_empty() || hidden > 0 {
            let mut detail = format!(
                "同一照片（相同哈希）已用于另外 {} 次检查",
                readable.len() + hidden as usize
            );
            if hidden > 0 {
                detail.push_str(&format!("（其中 {hidden} 次不在您的管辖范围）"));
            }
            flags.push(json!({
                "code": "ReusedPhoto",
                "detail": detail,
                "inspection_ids": readable,
                "outside_scope": hidden,
            }));
        }
        evidence.push(json!({
            "sha256": e.sha256,
            "kind": e.media,
            "item_code": e.item_code,
            "state": state,
            "exif": exif_seen,
            "flags": flags,
        }));
    }
    Ok(json!({
        "computed_at_ms": now_ms,
        "geofence": geofence,
        "evidence": evidence,
    }))
}

/// What the server read from the original, for the supervisor to see beside the flags.
fn exif_summary(e: &PhotoExif) -> Value {
    let taken = e.taken_at_ms();
    json!({
        "taken_local": e.taken_local,
        "taken_at_ms": taken.map(|(t, _)| t),
        "offset_assumed": taken.map(|(_, a)| a),
        "lat": e.gps.as_ref().map(|g| g.location.lat),
        "lon": e.gps.as_ref().map(|g| g.location.lon),
        "make": e.make,
        "model": e.model,
        "software": e.software,
    })
}

/// "Inspector within the community's geofence" at the start (the first fix, used at the start or
/// when it came, whichever is later) and at every submission (the latest fix at or before it,
/// else the first after it). No submission yet: no `submit` entry.
fn geofence_checks(inspection: &Inspection, community: &Community) -> Vec<Value> {
    let policy = VerifyPolicy::default();
    let fixes = &inspection.gps_fixes;
    let mut out = Vec::new();
    let first = fixes.iter().min_by_key(|f| f.at_ms);
    let start_at = first
        .map(|f| f.at_ms.max(inspection.started_at_ms))
        .unwrap_or(inspection.started_at_ms);
    out.push(geofence_entry("start", start_at, first, community, &policy));
    let mut submissions: Vec<i64> = inspection
        .events
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                WorkflowEventKind::StatusChanged {
                    to: InspectionStatus::Submitted
                }
            )
        })
        .map(|e| e.at_ms)
        .collect();
    submissions.sort_unstable();
    for at in submissions {
        let fix = fixes
            .iter()
            .filter(|f| f.at_ms <= at)
            .max_by_key(|f| f.at_ms)
            .or_else(|| fixes.iter().min_by_key(|f| f.at_ms));
        out.push(geofence_entry("submit", at, fix, community, &policy));
    }
    out
}

fn geofence_entry(
    stage: &str,
    at_ms: i64,
    fix: Option<&GpsFix>,
    community: &Community,
    policy: &VerifyPolicy,
) -> Value {
    let check = match fix {
        Some(f) => verify::check_geofence(
            f,
            fenlei_core::geo::CoordSystem::Wgs84,
            community,
            at_ms,
            policy,
        ),
        None => GeofenceCheck {
            status: GeofenceStatus::Uncertain,
            distance_m: None,
            geofence_m: community.geofence_m,
            flags: vec![EvidenceFlag::NoDeviceFix],
        },
    };
    let status = match (fix, check.status) {
        (None, _) => "no_fix",
        (_, GeofenceStatus::Inside) => "inside",
        (_, GeofenceStatus::Outside) => "outside",
        (_, GeofenceStatus::Uncertain) => "uncertain",
    };
    json!({
        "stage": stage,
        "at_ms": at_ms,
        "status": status,
        "distance_m": check.distance_m.map(round1),
        "geofence_m": check.geofence_m,
        "fix": fix,
        "flags": check.flags.iter().map(flag_json).collect::<Vec<_>>(),
    })
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn metres(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.1} 公里", v / 1000.0)
    } else {
        format!("{v:.0} 米")
    }
}

fn duration(ms: i64) -> String {
    let m = ms.unsigned_abs() / 60_000;
    if m >= 48 * 60 {
        format!("{} 天", m / (24 * 60))
    } else if m >= 60 {
        format!("{} 小时 {} 分", m / 60, m % 60)
    } else if m >= 1 {
        format!("{m} 分钟")
    } else {
        format!("{} 秒", ms.unsigned_abs() / 1000)
    }
}

/// `{code, detail, ...}`: the variant name, a Chinese sentence, and the variant's fields
/// (distances rounded to 0.1 m).
pub fn flag_json(f: &EvidenceFlag) -> Value {
    use EvidenceFlag::*;
    let detail = match f {
        NoExif => "照片没有相机 EXIF（可能是截图、转发或编辑过的图片）".to_string(),
        NoExifTime => "照片 EXIF 没有拍摄时间".to_string(),
        NoExifGps => "照片 EXIF 没有位置信息".to_string(),
        ExifTimeZoneAssumed { .. } => "EXIF 时间未带时区，按北京时间（UTC+8）解读".to_string(),
        ExifTimeOutsideWindow { off_by_ms, .. } => {
            format!("拍摄时间不在检查时段内（相差 {}）", duration(*off_by_ms))
        }
        PhotoFarFromCommunity {
            distance_m,
            geofence_m,
        } => format!(
            "照片 EXIF 位置距小区 {}（围栏半径 {}）",
            metres(*distance_m),
            metres(*geofence_m)
        ),
        PhotoFarFromDevice { distance_m } => {
            format!("照片 EXIF 位置与手机定位相距 {}", metres(*distance_m))
        }
        ExifGpsLooksGcj02 {
            raw_distance_m,
            converted_distance_m,
        } => format!(
            "EXIF 坐标似为火星坐标（GCJ-02）：按 WGS-84 相距 {}，换算后 {}",
            metres(*raw_distance_m),
            metres(*converted_distance_m)
        ),
        ReusedPhoto { inspection_ids } => {
            format!("同一照片已用于另外 {} 次检查", inspection_ids.len())
        }
        EditedInSoftware { software } => format!("照片经编辑软件保存（{software}）"),
        NoDeviceFix => "没有手机定位".to_string(),
        OutsideGeofence {
            distance_m,
            geofence_m,
            ..
        } => format!(
            "定位在小区围栏外：距小区 {}（围栏半径 {}）",
            metres(*distance_m),
            metres(*geofence_m)
        ),
        GeofenceUncertain {
            distance_m,
            accuracy_m,
            ..
        } => format!(
            "无法判断是否在围栏内：距小区 {}，定位精度 ±{}",
            metres(*distance_m),
            metres(*accuracy_m)
        ),
        MockLocation => "手机报告为模拟定位（虚拟位置）".to_string(),
        StaleFix { age_ms } => format!("定位已过时（{} 前）", duration(*age_ms)),
        FixFromFuture { ahead_ms } => {
            format!(
                "定位时间晚于使用时间 {}（手机时钟可能有误）",
                duration(*ahead_ms)
            )
        }
        LowAccuracy { accuracy_m } => format!("定位精度太低（±{}）", metres(*accuracy_m)),
        AccuracyUnknown => "定位没有精度信息".to_string(),
        InvalidFix => "定位坐标无效".to_string(),
    };
    with_fields(serde_json::to_value(f).unwrap_or(Value::Null), detail)
}

/// Ingest-level findings of the server's own EXIF read worth a supervisor's eye (`NoExif` is
/// already an evidence flag).
fn media_flag_json(f: &MediaFlag) -> Option<Value> {
    let detail = match f {
        MediaFlag::ExifDamaged => "照片 EXIF 已损坏，仅保留可读部分".to_string(),
        MediaFlag::ExifValueIgnored { field, .. } => {
            format!("EXIF 字段 {field} 的值不可能正确，已忽略")
        }
        _ => return None,
    };
    Some(with_fields(
        serde_json::to_value(f).unwrap_or(Value::Null),
        detail,
    ))
}

/// serde's external tagging (`"Code"` or `{"Code": {fields}}`) → `{code, detail, fields...}`.
fn with_fields(tagged: Value, detail: String) -> Value {
    let mut out = serde_json::Map::new();
    match tagged {
        Value::String(code) => {
            out.insert("code".into(), Value::String(code));
        }
        Value::Object(map) => {
            for (code, fields) in map {
                out.insert("code".into(), Value::String(code));
                if let Value::Object(fields) = fields {
                    for (k, v) in fields {
                        let v = match v.as_f64() {
                            Some(x) if k.ends_with("_m") => json!(round1(x)),
                            _ => v,
                        };
                        out.insert(k, v);
                    }
                }
            }
        }
        _ => {}
    }
    out.insert("detail".into(), Value::String(detail));
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_code_detail_and_fields() {
        let j = flag_json(&EvidenceFlag::PhotoFarFromCommunity {
            distance_m: 3456.78,
            geofence_m: 300.0,
        });
        assert_eq!(j["code"], "PhotoFarFromCommunity");
        assert_eq!(j["distance_m"], 3456.8);
        assert_eq!(j["geofence_m"], 300.0);
        assert_eq!(
            j["detail"],
            "照片 EXIF 位置距小区 3.5 公里（围栏半径 300 米）"
        );
        let j = flag_json(&EvidenceFlag::MockLocation);
        assert_eq!(j["code"], "MockLocation");
        assert!(j["detail"].as_str().unwrap().contains("模拟定位"));
    }
}
