//! Simulated devices for the main job (`scripts/run.sh`): inspectors' phones built from the
//! core library record sample inspections and sync them to a running server; a supervisor's
//! device approves or returns them; the rankings are read back through the supervisor API.
//! Runs outside any tokio runtime (the core's sync client is blocking).

use crate::error::{ServerError, ServerResult};
use crate::model::{Role, ScopeKind};
use crate::store::Storage;
use fenlei_core::geo::LatLon;
use fenlei_core::inspection::{
    EditContext, GpsFix, InspectionKind, InspectionStatus, NewInspection,
};
use fenlei_core::media::MediaStore;
use fenlei_core::progress::{CancelToken, NoProgress};
use fenlei_core::sample::{self, SampleRng};
use fenlei_core::store::{Clock, Store, SystemClock};
use fenlei_core::sync::media::{MediaSyncOptions, NetworkKind};
use fenlei_core::sync::{SyncClient, enroll};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

fn core(e: fenlei_core::CoreError) -> ServerError {
    ServerError::Internal(e.to_string())
}

pub const SUPERVISOR: &str = "sup.wang";

/// A device clock that can be set back, so the simulation can record inspections over past weeks
/// (the dashboard's trend chart needs a history).
struct ShiftedClock(AtomicI64);

impl Clock for ShiftedClock {
    fn now_ms(&self) -> i64 {
        SystemClock.now_ms() + self.0.load(Ordering::Relaxed)
    }
}

/// `weeks`: 0 records every inspection now; N spreads each inspector's inspections evenly over
/// the past N weeks (the newest now).
pub fn simulate(
    storage: &dyn Storage,
    url: &str,
    inspectors: u32,
    per_inspector: u32,
    weeks: u32,
    dir: PathBuf,
) -> ServerResult<()> {
    std::fs::create_dir_all(&dir)?;
    // Several instances behind one database (`--url A,B`): inspector n syncs through instance
    // n mod N, the supervisor through the last one, so it reads what others wrote elsewhere.
    let urls: Vec<&str> = url
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .collect();
    let url = *urls
        .last()
        .ok_or_else(|| ServerError::BadRequest("give --url".into()))?;
    let communities = fenlei_core::community::parse_csv(sample::CITY_CSV.as_bytes())?;
    let mut streets: Vec<String> = communities.iter().map(|c| c.street.clone()).collect();
    streets.sort();
    streets.dedup();
    let mut districts: Vec<String> = communities.iter().map(|c| c.district.clone()).collect();
    districts.sort();
    districts.dedup();

    storage.add_user(SUPERVISOR, "王督导", Role::Supervisor)?;
    for d in &districts {
        storage.add_scope(SUPERVISOR, ScopeKind::District, d)?;
    }

    let handles: Vec<_> = (0..inspectors)
        .map(|n| {
            let user = format!("inspector.{}", n + 1);
            let street = streets[n as usize % streets.len()].clone();
            storage.add_user(&user, &user, Role::Inspector)?;
            storage.add_scope(&user, ScopeKind::Street, &street)?;
            let code = crate::issue_enrollment_code(storage, &user, 1)?;
            let in_street: Vec<String> = communities
                .iter()
                .filter(|c| c.street == street)
                .map(|c| c.id.clone())
                .collect();
            // The communities to visit, in order: round the street.
            let visits: Vec<String> = (0..per_inspector as usize)
                .map(|k| in_street[k % in_street.len()].clone())
                .collect();
            let url = urls[n as usize % urls.len()].to_string();
            let path = dir.join(format!("{user}.sqlite"));
            Ok(std::thread::spawn(move || {
                inspector_day(&url, &path, &user, &code, &visits, weeks, n as u64)
            }))
        })
        .collect::<ServerResult<_>>()?;
    let mut photo = None;
    for h in handles {
        let (line, sha) = h
            .join()
            .map_err(|_| ServerError::Internal("a simulated device crashed".into()))??;
        println!("{line}");
        photo = photo.or(sha);
    }

    // The supervisor's phone: receives everything in scope, approves most, returns one.
    let code = crate::issue_enrollment_code(storage, SUPERVISOR, 1)?;
    let store = Store::open(dir.join("supervisor.sqlite")).map_err(core)?;
    let creds = enroll(url, &code, &store).map_err(core)?;
    let client = SyncClient::new(url, &creds.token).map_err(core)?;
    let report = client
        .sync(&store, &NoProgress, &CancelToken::new())
        .map_err(core)?;
    let submitted = store
        .list_inspections(&fenlei_core::store::InspectionFilter {
            status: Some(InspectionStatus::Submitted),
            limit: 1000,
            ..Default::default()
        })
        .map_err(core)?;
    let ctx = EditContext::by(SUPERVISOR);
    // The last one is left for a review on the server (through the supervisor API below) and
    // the two before it stay "submitted", so the dashboard has something awaiting review.
    let (on_server, on_device) = submitted
        .split_last()
        .map_or((None, &[][..]), |(l, r)| (Some(l), r));
    let waiting = on_device.len().min(2);
    for (n, i) in on_device.iter().enumerate().skip(waiting) {
        if n % 5 == 4 {
            store
                .set_status(
                    &i.id,
                    InspectionStatus::Returned,
                    &ctx,
                    Some("照片不清晰，请补充"),
                )
                .map_err(core)?;
        } else {
            store
                .set_status(&i.id, InspectionStatus::Approved, &ctx, None)
                .map_err(core)?;
        }
    }
    let pushed = client
        .sync(&store, &NoProgress, &CancelToken::new())
        .map_err(core)?;
    println!(
        "supervisor {SUPERVISOR}: received {} documents (inspections and rectification tasks), reviewed {}, left {waiting} awaiting review ({} round trips)",
        report.documents_received,
        on_device.len() - waiting,
        report.round_trips + pushed.round_trips
    );

    // A credential for the supervisor's dashboard, to try the API with curl.
    let code = crate::issue_enrollment_code(storage, SUPERVISOR, 1)?;
    let dashboard = Store::open(dir.join("dashboard.sqlite")).map_err(core)?;
    let token = enroll(url, &code, &dashboard).map_err(core)?.token;
    println!();
    println!("Supervisor token ({SUPERVISOR}): {token}");
    println!("Try:");
    println!("  curl -H 'Authorization: Bearer {token}' '{url}/v1/rankings?by=street&period=week'");
    println!(
        "  curl -H 'Authorization: Bearer {token}' '{url}/v1/inspections?status=approved&limit=5'"
    );
    if let Some(sha) = photo {
        println!(
            "  curl -o thumb.jpg -H 'Authorization: Bearer {token}' '{url}/v1/media/{sha}?rendition=thumb'"
        );
    }
    let http = reqwest::blocking::Client::new();
    if let Some(i) = on_server {
        let body: serde_json::Value = http
            .post(format!("{url}/v1/inspections/{}/review", i.id))
            .bearer_auth(&token)
            .json(&serde_json::json!({"decision": "approve", "comment": "同意"}))
            .send()
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.json())
            .map_err(|e| ServerError::Internal(format!("review: {e}")))?;
        println!(
            "supervisor {SUPERVISOR}: reviewed {} on the server -> {}",
            i.id, body["status"]
        );
    }
    rectify_one(url, &dir, &http, &token)?;
    println!();
    print_rankings(url, &token)?;
    print_tasks(&http, url, &token)
}

/// The rectification loop once: the first inspector's phone receives the tasks its findings
/// opened, works one with closure evidence and submits it; the supervisor approves it on the
/// server.
fn rectify_one(
    url: &str,
    dir: &std::path::Path,
    http: &reqwest::blocking::Client,
    token: &str,
) -> ServerResult<()> {
    use fenlei_core::rectification::{ClosureEvidence, RectificationStatus};
    let user = "inspector.1";
    let store = Store::open(dir.join(format!("{user}.sqlite"))).map_err(core)?;
    let Some(creds) = store.sync_meta("sim_token").map_err(core)? else {
        return Ok(());
    };
    let client = SyncClient::new(url, &creds).map_err(core)?;
    client
        .sync(&store, &NoProgress, &CancelToken::new())
        .map_err(core)?;
    let tasks = store
        .list_rectifications(Some(RectificationStatus::Open))
        .map_err(core)?;
    let Some(task) = tasks.first() else {
        println!("{user}: no rectification task to work on");
        return Ok(());
    };
    store
        .set_rectification_status(&task.id, RectificationStatus::InProgress, user, None)
        .map_err(core)?;
    let full = store.rectification(&task.id).map_err(core)?;
    let media = MediaStore::open(dir.join(format!("{user}.media"))).map_err(core)?;
    for kind in &full.required_evidence {
        if kind == "photo_after" {
            // The "after" photo: ingested with its media row, so media sync uploads it.
            let file = dir.join(format!("{user}.after.jpg"));
            std::fs::write(&file, demo_photo(0xAF7E)?)?;
            store
                .attach_closure_photo(&media, &task.id, kind, &file, None, user)
                .map_err(core)?;
            continue;
        }
        store
            .add_closure_evidence(
                &task.id,
                &ClosureEvidence {
                    kind: kind.clone(),
                    text: Some(format!("{}：物业已完成整改（模拟）", kind)),
                    sha256: None,
                    by: user.into(),
                    at_ms: 0,
                    ..Default::default()
                },
            )
            .map_err(core)?;
    }
    store
        .set_rectification_status(&task.id, RectificationStatus::Submitted, user, None)
        .map_err(core)?;
    let options = MediaSyncOptions {
        network: NetworkKind::Wifi,
        ..Default::default()
    };
    client
        .sync_media(&store, &media, &options, &NoProgress, &CancelToken::new())
        .map_err(core)?;
    let body: serde_json::Value = http
        .post(format!("{url}/v1/rectifications/{}/approve", task.id))
        .bearer_auth(token)
        .json(&serde_json::json!({"comment": "同意销号"}))
        .send()
        .and_then(|r| r.error_for_status())
        .and_then(|r| r.json())
        .map_err(|e| ServerError::Internal(format!("approve task: {e}")))?;
    println!(
        "{user}: {} open tasks; worked {} ({}) and submitted it; supervisor -> {}",
        tasks.len(),
        task.item_code,
        task.responsible,
        body["status"]
    );
    Ok(())
}

fn print_tasks(http: &reqwest::blocking::Client, url: &str, token: &str) -> ServerResult<()> {
    let body: serde_json::Value = http
        .get(format!("{url}/v1/rectifications"))
        .bearer_auth(token)
        .send()
        .and_then(|r| r.error_for_status())
        .and_then(|r| r.json())
        .map_err(|e| ServerError::Internal(format!("rectifications: {e}")))?;
    let tasks = body["tasks"].as_array().cloned().unwrap_or_default();
    println!("Rectification board ({} tasks):", tasks.len());
    println!(
        "{:<12} {:<6} {:<10} {:<12} {:<20}",
        "status", "item", "party", "deadline", "community"
    );
    for t in tasks.iter().take(12) {
        println!(
            "{:<12} {:<6} {:<10} {:<12} {:<20}",
            t["status"].as_str().unwrap_or(""),
            t["item_code"].as_str().unwrap_or(""),
            t["responsible"].as_str().unwrap_or(""),
            crate::domain::calendar::day_label(t["deadline_ms"].as_i64().unwrap_or(0)),
            t["community_name"].as_str().unwrap_or("")
        );
    }
    println!();
    println!(
        "Bulletins: curl -H 'Authorization: Bearer {token}' -o weekly.xlsx '{url}/v1/reports/weekly.xlsx'"
    );
    println!(
        "           (weekly|monthly).(xlsx|csv|html); planning: '{url}/v1/planning/visits?days=7&seed=1'"
    );
    Ok(())
}

fn inspector_day(
    url: &str,
    path: &std::path::Path,
    user: &str,
    code: &str,
    visits: &[String],
    weeks: u32,
    seed: u64,
) -> ServerResult<(String, Option<String>)> {
    let count = visits.len() as u32;
    let clock = Arc::new(ShiftedClock(AtomicI64::new(0)));
    let store = Store::open_with_clock(path, clock.clone()).map_err(core)?;
    let step_ms = i64::from(weeks) * 7 * 86_400_000 / i64::from(count.max(1));
    let creds = enroll(url, code, &store).map_err(core)?;
    // Kept for the rectification step of the demo (a real app keeps it in the platform keystore).
    store
        .set_sync_meta("sim_token", &creds.token)
        .map_err(core)?;
    let client = SyncClient::new(url, &creds.token).map_err(core)?;
    let cancel = CancelToken::new();
    // First sync: communities, standards and this inspector's assignments arrive.
    client.sync(&store, &NoProgress, &cancel).map_err(core)?;
    let standard = store
        .standard("hohhot-residential", "2026.1")
        .map_err(core)?;
    let mut rng = SampleRng::new(seed * 7919 + 17);
    let ctx = EditContext::by(user);
    let media = MediaStore::open(path.with_extension("media")).map_err(core)?;
    let mut first_photo = None;
    for (n, community) in (0..count).zip(visits) {
        clock
            .0
            .store(-i64::from(count - 1 - n) * step_ms, Ordering::Relaxed);
        let id = store
            .create_inspection(
                &NewInspection {
                    community_id: community.clone(),
                    standard_id: standard.id.clone(),
                    standard_version: standard.version.clone(),
                    kind: InspectionKind::DailyPatrol,
                    co_inspectors: vec![],
                },
                user,
            )
            .map_err(core)?;
        // The phone's fix on arrival: inside the compound, a few metres off its point.
        let place = store.community(community).map_err(core)?;
        let fix = GpsFix {
            location: LatLon {
                lat: place.location.lat + 0.0001 * f64::from(n % 3),
                lon: place.location.lon,
            },
            accuracy_m: Some(12.0),
            altitude_m: None,
            provider: "gps".into(),
            at_ms: store.now_ms(),
            is_mock: false,
        };
        store.add_gps_fix(&id, &fix, user).map_err(core)?;
        let answers = sample::simulated_answers(&standard, &mut rng);
        for answer in &answers {
            store.record_answer(&id, answer, &ctx).map_err(core)?;
        }
        // A photo of the first item, as the inspector's evidence (made here: a real JPEG).
        if let Some(item) = answers.first() {
            let file = path.with_extension(format!("{n}.jpg"));
            std::fs::write(&file, demo_photo(seed * 1000 + n as u64)?)?;
            let attached = store
                .attach_photo(&media, &id, &item.item_code, &file, None, user)
                .map_err(core)?;
            first_photo.get_or_insert(attached.record.sha256);
        }
        store
            .set_status(&id, InspectionStatus::Submitted, &ctx, None)
            .map_err(core)?;
    }
    clock.0.store(0, Ordering::Relaxed);
    // Documents, then photos (on "Wi-Fi": originals too).
    let options = MediaSyncOptions {
        network: NetworkKind::Wifi,
        ..Default::default()
    };
    let sent = client
        .sync_media(&store, &media, &options, &NoProgress, &cancel)
        .map_err(core)?;
    let report = sent.documents.clone().unwrap_or_default();
    Ok((
        format!(
            "{user}: recorded {count} inspections, synced in {} round trips ({} bytes up, {} down); \
             {} photo files uploaded ({} bytes)",
            report.round_trips,
            report.bytes_sent,
            report.bytes_received,
            sent.uploaded,
            sent.bytes_sent
        ),
        first_photo,
    ))
}

/// A 960×720 JPEG for the demo: a gradient with grain, different for each seed.
fn demo_photo(seed: u64) -> ServerResult<Vec<u8>> {
    let (w, h) = (960u16, 720u16);
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut pixels = Vec::with_capacity(w as usize * h as usize * 3);
    for row in 0..h as u32 {
        for col in 0..w as u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let n = (x & 0x1f) as u32;
            pixels.push((row * 200 / h as u32 + n) as u8);
            pixels.push((col * 200 / w as u32 + n) as u8);
            pixels.push((90 + n) as u8);
        }
    }
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 85)
        .encode(&pixels, w, h, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| ServerError::Internal(format!("demo photo: {e}")))?;
    Ok(out)
}

fn print_rankings(url: &str, token: &str) -> ServerResult<()> {
    let http = reqwest::blocking::Client::new();
    for by in ["street", "district"] {
        let body: serde_json::Value = http
            .get(format!("{url}/v1/rankings?by={by}&period=week"))
            .bearer_auth(token)
            .send()
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.json())
            .map_err(|e| ServerError::Internal(format!("rankings: {e}")))?;
        println!("This week's ranking by {by}:");
        println!(
            "{:>4}  {:<24} {:>6} {:>8} {:>8} {:>6}",
            "rank", by, "count", "average", "lowest", "veto"
        );
        for row in body["rows"].as_array().into_iter().flatten() {
            println!(
                "{:>4}  {:<24} {:>6} {:>8.2} {:>8.2} {:>6}",
                row["rank"],
                row["name"].as_str().unwrap_or(""),
                row["inspections"],
                row["average"].as_f64().unwrap_or(0.0),
                row["lowest"].as_f64().unwrap_or(0.0),
                row["vetoed"]
            );
        }
        println!();
    }
    Ok(())
}
