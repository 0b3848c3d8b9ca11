//! A hostile client against the server's connections and accounts (docs/deploy.md "Limits",
//! docs/dashboard.md): half-open connection floods, slow request heads, sign-in probing and
//! locking, cookie flags, reserved device ids, extreme query values, file modes, and admin
//! commands run beside a busy server.

mod common;

use common::*;
use fenlei_core::inspection::{EditContext, InspectionKind, NewInspection};
use reqwest::blocking::Client;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

fn new_inspection(device: &Device, community: &str) -> String {
    device
        .store
        .create_inspection(
            &NewInspection {
                community_id: community.into(),
                standard_id: "hohhot-residential".into(),
                standard_version: "2026.1".into(),
                kind: InspectionKind::DailyPatrol,
                co_inspectors: vec![],
            },
            &device.user,
        )
        .unwrap()
}

/// Admin commands on the SQLite folder while `serve` writes to it: every command waits for the
/// lock instead of failing with "database is locked", and so does every server request.
#[test]
fn admin_commands_wait_while_serve_syncs_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let (street, communities, district) = sample_places();
    let inspectors = ["insp.0", "insp.1", "insp.2"];
    for user in inspectors {
        server.admin(&["add-user", "--id", user, "--role", "inspector"]);
        server.admin(&["assign", "--user", user, "--street", &street]);
    }
    server.admin(&["add-user", "--id", "sup", "--role", "supervisor"]);
    let devices: Vec<Device> = inspectors
        .iter()
        .map(|u| Device::enroll(&server, dir.path(), u))
        .collect();
    for d in &devices {
        d.sync();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let csv = dir.path().join("city.csv");
    std::fs::write(&csv, fenlei_core::sample::CITY_CSV).unwrap();
    std::thread::scope(|s| {
        // Load: every phone records and syncs in a loop (each sync writes documents).
        for (n, d) in devices.iter().enumerate() {
            let (stop, failures, communities) = (stop.clone(), failures.clone(), &communities);
            s.spawn(move || {
                let client = d.client_with(fenlei_core::sync::SyncOptions {
                    max_retries: 0,
                    ..Default::default()
                });
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    let id = new_inspection(d, &communities[(n + i) % communities.len()]);
                    let item = compliant_items(&d.store)[0].clone();
                    d.store
                        .record_answer(
                            &id,
                            &fenlei_core::answer::ItemAnswer {
                                item_code: item,
                                value: fenlei_core::answer::AnswerValue::Compliant,
                                sampled_units: None,
                                note: None,
                            },
                            &EditContext::by(&d.user),
                        )
                        .unwrap();
                    let r = client.sync(
                        &d.store,
                        &fenlei_core::progress::NoProgress,
                        &fenlei_core::progress::CancelToken::new(),
                    );
                    if let Err(e) = r {
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("sync of {}: {e}", d.user));
                    }
                    i += 1;
                }
            });
        }
        // Enrollments over HTTP (one transaction that reads, then writes) beside the admin
        // commands' writes.
        {
            let (stop, failures, server) = (stop.clone(), failures.clone(), &server);
            s.spawn(move || {
                let http = Client::new();
                while !stop.load(Ordering::SeqCst) {
                    let code = server.enroll_code("insp.0");
                    let r = http
                        .post(format!("{}/v1/enroll", server.url()))
                        .json(&json!({"code": code, "device_id": uuid_v4()}))
                        .send()
                        .unwrap();
                    if r.status() != 200 {
                        failures.lock().unwrap().push(format!(
                            "enroll: {} {}",
                            r.status(),
                            r.text().unwrap()
                        ));
                    }
                }
            });
        }
        // The admin's commands meanwhile.
        for n in 0..25 {
            let user = format!("late.{n}");
            for args in [
                vec!["add-user", "--id", &user, "--role", "inspector"],
                vec!["assign", "--user", &user, "--street", &street],
                vec!["assign", "--user", "sup", "--district", &district],
                vec!["import-communities", csv.to_str().unwrap()],
                vec!["enroll", "--user", &user],
            ] {
                let out = server
                    .command()
                    .args(&args)
                    .envs(blob_env(&server.data))
                    .output()
                    .unwrap();
                if !out.status.success() {
                    failures.lock().unwrap().push(format!(
                        "admin {args:?}: {}",
                        String::from_utf8_lossy(&out.stderr)
                    ));
                }
            }
            let out = server
                .command()
                .args(["set-password", "sup"])
                .env("FENLEI_PASSWORD", "a-long-enough-password")
                .output()
                .unwrap();
            if !out.status.success() {
                failures.lock().unwrap().push(format!(
                    "admin set-password: {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
        stop.store(true, Ordering::SeqCst);
    });
    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} failures: {failures:#?}",
        failures.len()
    );
}

fn uuid_v4() -> String {
    uuid::Uuid::new_v4().to_string()
}
