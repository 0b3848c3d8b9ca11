//! No credentials or personal data in logs (docs/reliability.md): a real server process runs
//! with its standard output and error captured while devices enroll, sync real inspections
//! (names, notes, GPS), send wrong tokens, used codes and malformed bodies; nothing secret or
//! personal may appear in what it wrote. On the client, error messages (what apps log) name
//! neither the token nor the code.

mod common;

use common::*;
use fenlei_core::CoreError;
use fenlei_core::answer::{AnswerValue, ItemAnswer};
use fenlei_core::geo::LatLon;
use fenlei_core::inspection::{EditContext, GpsFix, InspectionKind, NewInspection};
use fenlei_core::progress::{CancelToken, NoProgress};
use fenlei_core::store::Store;
use fenlei_core::sync::{SyncClient, SyncOptions, enroll};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const NAME: &str = "张三丰-canary-name";
const NOTE: &str = "canary-note-垃圾满溢";
/// A GPS fix with digits no other number shares.
const LAT: f64 = 40.8371937;
const LON: f64 = 111.7291846;

fn admin(data: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(["--data", data.to_str().unwrap()])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn server_logs_and_client_errors_hold_no_tokens_codes_or_personal_data() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("server");
    admin(&data, &["init", "--sample"]);
    let (street, communities, district) = sample_places();
    admin(
        &data,
        &[
            "add-user",
            "--id",
            "insp.log",
            "--name",
            NAME,
            "--role",
            "inspector",
        ],
    );
    admin(
        &data,
        &["assign", "--user", "insp.log", "--street", &street],
    );
    admin(
        &data,
        &["add-user", "--id", "sup.log", "--role", "supervisor"],
    );
    admin(
        &data,
        &["assign", "--user", "sup.log", "--district", &district],
    );

    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let port_file = data.join("port");
    let mut child = Command::new(BIN)
        .args([
            "--data",
            data.to_str().unwrap(),
            "serve",
            "--addr",
            "127.0.0.1:0",
        ])
        .arg("--port-file")
        .arg(&port_file)
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let port: u16 = loop {
        if let Some(p) = std::fs::read_to_string(&port_file)
            .ok()
            .and_then(|t| t.trim().parse().ok())
        {
            break p;
        }
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(20));
    };
    let url = format!("http://127.0.0.1:{port}");

    // Enroll, record with a note and GPS, sync; a supervisor syncs and reads the API.
    let code = admin(&data, &["enroll", "--user", "insp.log"])
        .trim()
        .to_string();
    let store = Store::open(dir.path().join("phone.sqlite")).unwrap();
    let creds = enroll(&url, &code, &store).unwrap();
    let client = SyncClient::new(&url, &creds.token).unwrap();
    client
        .sync(&store, &NoProgress, &CancelToken::new())
        .unwrap();
    let id = store
        .create_inspection(
            &NewInspection {
                community_id: communities[0].clone(),
                standard_id: "hohhot-residential".into(),
                standard_version: "2026.1".into(),
                kind: InspectionKind::DailyPatrol,
                co_inspectors: vec![],
            },
            "insp.log",
        )
        .unwrap();
    store
        .add_gps_fix(
            &id,
            &GpsFix {
                location: LatLon { lat: LAT, lon: LON },
                accuracy_m: Some(5.0),
                altitude_m: None,
                provider: "gps".into(),
                at_ms: store.now_ms(),
                is_mock: false,
            },
            "insp.log",
        )
        .unwrap();
    let item = compliant_items(&store)[0].clone();
    store
        .record_answer(
            &id,
            &ItemAnswer {
                item_code: item,
                value: AnswerValue::Compliant,
                sampled_units: None,
                note: Some(NOTE.into()),
            },
            &EditContext::by("insp.log"),
        )
        .unwrap();
    client
        .sync(&store, &NoProgress, &CancelToken::new())
        .unwrap();
    let sup_code = admin(&data, &["enroll", "--user", "sup.log"])
        .trim()
        .to_string();
    let sup_store = Store::open(dir.path().join("sup.sqlite")).unwrap();
    let sup = enroll(&url, &sup_code, &sup_store).unwrap();
    SyncClient::new(&url, &sup.token)
        .unwrap()
        .sync(&sup_store, &NoProgress, &CancelToken::new())
        .unwrap();
    let http = reqwest::blocking::Client::new();
    for path in ["/v1/me".to_string(), format!("/v1/inspections/{id}")] {
        let r = http
            .get(format!("{url}{path}"))
            .bearer_auth(&sup.token)
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }

    // Failures: a used code, a wrong token, garbage bodies — and what the client reports.
    let reused = enroll(&url, &code, &store).unwrap_err();
    assert!(!reused.to_string().contains(&code), "{reused}");
    let wrong = format!("{}x", creds.token);
    let quick = SyncOptions {
        max_retries: 0,
        ..Default::default()
    };
    let e = SyncClient::with_options(&url, &wrong, quick.clone())
        .unwrap()
        .sync(&store, &NoProgress, &CancelToken::new())
        .unwrap_err();
    assert!(matches!(e, CoreError::Unauthorized(_)));
    assert!(!e.to_string().contains(&wrong), "{e}");
    for body in [
        &b"{not json"[..],
        br#"{"protocol":1,"docs":[{"id":"x","message":"%%"}]}"#,
    ] {
        http.post(format!("{url}/v1/sync"))
            .bearer_auth(&creds.token)
            .body(body.to_vec())
            .send()
            .unwrap();
    }
    admin(&data, &["revoke-device", "--device", store.device_id()]);
    let e = SyncClient::with_options(&url, &creds.token, quick)
        .unwrap()
        .sync(&store, &NoProgress, &CancelToken::new())
        .unwrap_err();
    assert!(!e.to_string().contains(&creds.token), "{e}");

    let _ = child.kill();
    let _ = child.wait();
    let logged = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        logged.contains("listening"),
        "the log was captured: {logged}"
    );
    let lat = format!("{LAT}");
    let lon = format!("{LON}");
    for (what, secret) in [
        ("inspector token", creds.token.as_str()),
        ("supervisor token", sup.token.as_str()),
        ("enrollment code", code.as_str()),
        ("supervisor enrollment code", sup_code.as_str()),
        ("user name", NAME),
        ("note", NOTE),
        ("latitude", &lat[..7]),
        ("longitude", &lon[..8]),
    ] {
        assert!(
            !logged.contains(secret),
            "the server log holds the {what}: {logged}"
        );
    }
}
