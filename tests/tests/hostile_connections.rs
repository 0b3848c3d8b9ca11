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

// ---- connections

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Raises this test process's soft open-file limit to its hard one; the hard limit.
fn raise_own_open_files() -> u64 {
    // SAFETY: getrlimit/setrlimit read and write only the struct passed.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        lim.rlim_max
    }
}

/// A connection that sent the start of a request and stops there (half a request line).
fn half_open(server: &Server) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    s.write_all(b"GET /heal").unwrap();
    s
}

/// One response read off a raw connection: status and body (Content-Length bodies only), or
/// `None` when the server closed the connection first.
fn read_response(s: &mut TcpStream) -> Option<(u16, String)> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(0) => return None,
            Ok(_) => head.push(byte[0]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
            Err(e) => panic!("no answer from the server: {e}"),
        }
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let status = head[9..12].parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    s.read_exact(&mut body).unwrap();
    Some((status, String::from_utf8_lossy(&body).to_string()))
}

/// Whether the server has closed `s` (without waiting).
fn closed_by_server(s: &mut TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 64];
    let closed = match s.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    };
    s.set_nonblocking(false).unwrap();
    closed
}

/// Waits (at most `limit`) for the server to close `s`; whether it did.
fn server_closes(s: &mut TcpStream, limit: Duration) -> bool {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false;
            }
            Err(_) => return true,
        }
    }
}

fn healthz_client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// 1,200 connections that sent half a request line and wait, on a server started with the
/// common login default of 1,024 open files: `/healthz` still answers while they are all open.
#[test]
fn healthz_answers_under_a_flood_of_half_open_connections() {
    const FLOOD: usize = 1200;
    if raise_own_open_files() < FLOOD as u64 + 200 {
        eprintln!("skipped: this machine's hard open-file limit is below {FLOOD} connections");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // A head timeout longer than the test, so the flood stays open throughout.
    let server = Server::start_with(
        &dir.path().join("server"),
        &["--header-timeout", "120"],
        Some(1024),
    );
    let mut flood: Vec<TcpStream> = (0..FLOOD).map(|_| half_open(&server)).collect();
    let r = healthz_client()
        .get(format!("{}/healthz", server.url()))
        .send()
        .expect("/healthz answers under the flood");
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().unwrap(), "ok");
    // The flood was still there (nothing was dropped to make room).
    let open = flood
        .iter_mut()
        .map(closed_by_server)
        .filter(|closed| !closed)
        .count();
    assert_eq!(open, FLOOD);
}

/// A slowloris client trickles header bytes and never ends its head: the server closes the
/// connection once the head timeout has passed, however the bytes keep coming.
#[test]
fn a_request_head_that_never_ends_is_cut_at_the_head_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(&dir.path().join("server"), &["--header-timeout", "2"], None);
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    let mut trickle = s.try_clone().unwrap();
    let dripping = std::thread::spawn(move || {
        for _ in 0..120 {
            std::thread::sleep(Duration::from_millis(250));
            if trickle.write_all(b"a").is_err() {
                return true;
            }
        }
        false
    });
    assert!(
        server_closes(&mut s, Duration::from_secs(30)),
        "the server kept a never-ending request head open"
    );
    assert!(dripping.join().unwrap(), "the trickle was cut off");
}

/// A keep-alive connection left idle after its request is closed by the server.
#[test]
fn an_idle_keep_alive_connection_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(&dir.path().join("server"), &["--header-timeout", "2"], None);
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut s), Some((200, "ok".into())));
    assert!(
        server_closes(&mut s, Duration::from_secs(30)),
        "an idle keep-alive connection stayed open"
    );
}

/// At the connection cap the server stops accepting: an established connection keeps being
/// served, a new one waits until a slot frees (a half-open one timing out) and is then served.
#[test]
fn at_the_connection_cap_new_connections_wait_and_established_ones_go_on() {
    const CAP: usize = 32;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        &dir.path().join("server"),
        &[
            "--max-connections",
            &CAP.to_string(),
            "--header-timeout",
            "4",
        ],
        None,
    );
    let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut established = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    established.write_all(request).unwrap();
    assert_eq!(read_response(&mut established), Some((200, "ok".into())));
    // Fill every other slot, and some: the extra ones wait in the kernel's queue.
    let mut flood: Vec<TcpStream> = (0..CAP + 8).map(|_| half_open(&server)).collect();
    // The established connection is still served.
    established.write_all(request).unwrap();
    assert_eq!(read_response(&mut established), Some((200, "ok".into())));
    // A new client is answered, but only once the server has closed a connection to make room.
    let mut late = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    late.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    late.write_all(request).unwrap();
    assert_eq!(read_response(&mut late), Some((200, "ok".into())));
    let freed = flood.iter_mut().any(closed_by_server) || closed_by_server(&mut established);
    assert!(
        freed,
        "a connection beyond the cap was served while the cap was full"
    );
}

/// A request body that moves slowly but steadily is read whole, even when it takes longer
/// than both timeouts together; one that stops for longer than the body timeout is cut.
#[test]
fn slow_bodies_that_move_are_read_and_stalled_ones_are_cut() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        &dir.path().join("server"),
        &["--header-timeout", "2", "--body-timeout", "2"],
        None,
    );
    let body = br#"{"code": "no-such-code", "device_id": "6f1c1d6e-3b1a-4c8e-9a57-0d2f8c1b7e42"}"#;
    let head = format!(
        "POST /v1/enroll HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    // 80 pieces, 100 ms apart: 8 s in all.
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    for piece in body.chunks(1) {
        std::thread::sleep(Duration::from_millis(100));
        s.write_all(piece).unwrap();
    }
    // The whole body arrived: the enrollment code is judged (and refused), not the body.
    let (status, answer) = read_response(&mut s).expect("an answer");
    assert_eq!(status, 401, "{answer}");

    // Half the body, then silence.
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&body[..20]).unwrap();
    assert!(
        server_closes_or_refuses(&mut s),
        "a stalled body held its connection"
    );
}

/// Whether the server answers a stalled request with an error and/or closes the connection
/// (within 30 s).
fn server_closes_or_refuses(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut buf = [0u8; 4096];
    match s.read(&mut buf) {
        Ok(0) => true,
        Ok(n) => {
            let text = String::from_utf8_lossy(&buf[..n]);
            text.starts_with("HTTP/1.1 4")
        }
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

// ---- files

/// Every file and folder under the data folder after a server ran, received a photo and a
/// partial upload: the database with its WAL and shared-memory files, the signing key, the
/// port and lock files, blobs and staged bytes — none readable by group or others.
#[cfg(unix)]
#[test]
fn everything_the_server_creates_is_private() {
    use fenlei_core::media::MediaStore;
    use fenlei_core::sync::media::{MediaSyncOptions, NetworkKind};
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let (street, communities, _) = sample_places();
    server.admin(&["add-user", "--id", "insp", "--role", "inspector"]);
    server.admin(&["assign", "--user", "insp", "--street", &street]);
    let phone = Device::enroll(&server, dir.path(), "insp");
    phone.sync();
    let id = new_inspection(&phone, &communities[0]);
    let item = compliant_items(&phone.store)[0].clone();
    let media = MediaStore::open(dir.path().join("media")).unwrap();
    let attach = |name: &str, seed: u64| {
        let photo = fenlei_e2e::photos::write_photo(dir.path(), name, 640, 480, seed);
        phone
            .store
            .attach_photo(&media, &id, &item, &photo, None, "insp")
            .unwrap()
            .record
    };
    // One photo uploaded whole (blobs), one half (staged bytes).
    attach("whole.jpg", 1);
    let report = phone
        .client()
        .sync_media(
            &phone.store,
            &media,
            &MediaSyncOptions {
                network: NetworkKind::Wifi,
                ..Default::default()
            },
            &fenlei_core::progress::NoProgress,
            &fenlei_core::progress::CancelToken::new(),
        )
        .unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let half = attach("half.jpg", 2);
    phone.sync();
    let bytes = std::fs::read(dir.path().join("half.jpg")).unwrap();
    let r = Client::new()
        .put(format!(
            "{}/v1/media/{sha}/original?blob={sha}&offset=0&total={}",
            server.url(),
            bytes.len(),
            sha = half.sha256
        ))
        .bearer_auth(&phone.token)
        .header("content-type", "image/jpeg")
        .body(bytes[..bytes.len() / 2].to_vec())
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().unwrap());

    let mut seen = Vec::new();
    let mut open_to_others = Vec::new();
    let mut stack = vec![server.data.clone()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            open_to_others.push(format!("{} {mode:03o}", path.display()));
        }
        let name = path
            .strip_prefix(&server.data)
            .unwrap()
            .display()
            .to_string();
        seen.push(name);
        if meta.is_dir() {
            stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        }
    }
    assert!(
        open_to_others.is_empty(),
        "open to others: {open_to_others:#?}"
    );
    let mut expected = vec!["port"];
    if !on_postgres() {
        expected.extend([
            "serve.lock",
            "fenlei-server.sqlite",
            "fenlei-server.sqlite-wal",
            "fenlei-server.sqlite-shm",
            "server-signing.key",
        ]);
    }
    for name in expected {
        assert!(seen.iter().any(|s| s == name), "{name} not in {seen:?}");
    }
    if !test_s3() {
        assert!(
            seen.iter()
                .any(|s| s.starts_with("blobs/staging/") && s.len() > 20)
        );
        assert!(
            seen.iter()
                .filter(|s| s.starts_with("blobs/") && !s.starts_with("blobs/staging"))
                .count()
                > 3,
            "{seen:?}"
        );
    }
}

// ---- sign-in

fn set_password(server: &Server, user: &str, password: &str) {
    let out = server
        .command()
        .args(["set-password", user])
        .env("FENLEI_PASSWORD", password)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An HTTP client whose connections come from `ip` (any 127.0.0.0/8 address reaches the server
/// on Linux): another client, as the server sees it.
fn client_from(ip: [u8; 4]) -> Client {
    Client::builder()
        .local_address(std::net::IpAddr::from(ip))
        .build()
        .unwrap()
}

/// One sign-in: status, the body without the parts that are random, and the Set-Cookie header.
fn sign_in_as(
    http: &Client,
    url: &str,
    user: &str,
    password: &str,
    forwarded_for: Option<&str>,
) -> (u16, serde_json::Value, Option<String>) {
    let mut r = http
        .post(format!("{url}/v1/session"))
        .json(&json!({"user": user, "password": password}));
    if let Some(f) = forwarded_for {
        r = r.header("x-forwarded-for", f);
    }
    let r = r.send().unwrap();
    let status = r.status().as_u16();
    let cookie = r
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_string());
    (status, r.json().unwrap(), cookie)
}

/// Dashboard users: `sup` (supervisor), `other.sup` (supervisor), `former` (a supervisor with a
/// password, now an inspector) and `insp` (an inspector without one), on `server`.
fn dashboard_users(server: &Server) {
    for (user, role) in [
        ("sup", "supervisor"),
        ("other.sup", "supervisor"),
        ("former", "supervisor"),
        ("insp", "inspector"),
    ] {
        server.admin(&["add-user", "--id", user, "--role", role]);
    }
    set_password(server, "sup", "the-right-password");
    set_password(server, "other.sup", "the-other-password");
    set_password(server, "former", "former-password");
    server.admin(&["add-user", "--id", "former", "--role", "inspector"]);
}

/// A prober learns nothing about which accounts exist: an unknown user, a wrong password, an
/// inspector with or without a password, and — after five tries each — a locked known account
/// and a "locked" unknown one all get the same status and body.
#[test]
fn sign_in_answers_the_same_for_unknown_known_locked_and_inspector_accounts() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    dashboard_users(&server);
    let url = server.url();

    let http = client_from([127, 0, 0, 1]);
    let refused: Vec<_> = [
        ("sup", "a-wrong-password"),
        ("nobody.at.all", "a-wrong-password"),
        ("insp", "a-wrong-password"),
        ("former", "a-wrong-password"),
        // The inspector's right password tells nothing either.
        ("former", "former-password"),
    ]
    .iter()
    .map(|(u, p)| sign_in_as(&http, &url, u, p, None))
    .collect();
    for (i, r) in refused.iter().enumerate() {
        assert_eq!(
            (r.0, &r.1, &r.2),
            (refused[0].0, &refused[0].1, &None),
            "attempt {i}"
        );
    }
    assert_eq!(refused[0].0, 401);

    // Another client probes a known and an unknown name, five wrong passwords each, then once
    // more (the known one with the right password): step by step the same answers.
    let prober = client_from([127, 0, 0, 2]);
    let story = |user: &str, right: &str| -> Vec<(u16, serde_json::Value)> {
        let mut steps: Vec<_> = (0..5)
            .map(|_| sign_in_as(&prober, &url, user, "a-wrong-password", None))
            .map(|(s, b, _)| (s, b))
            .collect();
        let (s, b, c) = sign_in_as(&prober, &url, user, right, None);
        assert!(c.is_none());
        steps.push((s, b));
        steps
    };
    let known = story("sup", "the-right-password");
    let unknown = story("ghost", "any-password-at-all");
    assert_eq!(known, unknown);
    assert_eq!(known[4].0, 401);
    assert_eq!(known[5].0, 429);
    assert_eq!(known[5].1["error"], "too_many_requests");
}

/// One client failing on an account locks that account for itself only: another client signs
/// in with the right password. A client failing on many names is locked for every name, and
/// again only itself. X-Forwarded-For counts only from a proxy the operator named.
#[test]
fn one_client_cannot_lock_another_clients_account() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    dashboard_users(&server);
    let url = server.url();
    let attacker = client_from([127, 0, 0, 2]);
    let victim = client_from([127, 0, 0, 3]);
    for _ in 0..5 {
        assert_eq!(sign_in_as(&attacker, &url, "sup", "guess", None).0, 401);
    }
    assert_eq!(
        sign_in_as(&attacker, &url, "sup", "the-right-password", None).0,
        429
    );
    let (status, body, cookie) = sign_in_as(&victim, &url, "sup", "the-right-password", None);
    assert_eq!(status, 200, "{body}");
    assert!(cookie.is_some());

    // Spraying names: after 20 failures in all the attacker is refused for every name.
    for n in 0..15 {
        let (status, _, _) = sign_in_as(&attacker, &url, &format!("user.{n}"), "guess", None);
        assert_eq!(status, 401, "failure {n}");
    }
    assert_eq!(
        sign_in_as(&attacker, &url, "other.sup", "the-other-password", None).0,
        429
    );
    assert_eq!(
        sign_in_as(&victim, &url, "other.sup", "the-other-password", None).0,
        200
    );

    // Without a trusted proxy, X-Forwarded-For is the client's own word and changes nothing.
    let spoofer = client_from([127, 0, 0, 4]);
    for n in 0..5 {
        let f = format!("198.51.100.{n}");
        assert_eq!(sign_in_as(&spoofer, &url, "sup", "guess", Some(&f)).0, 401);
    }
    assert_eq!(
        sign_in_as(&spoofer, &url, "sup", "guess", Some("203.0.113.99")).0,
        429
    );

    // Behind a proxy the operator named, clients are told apart by the address it appends.
    let dir2 = tempfile::tempdir().unwrap();
    let proxied = Server::start_with(
        &dir2.path().join("server"),
        &["--trusted-proxy", "127.0.0.1"],
        None,
    );
    dashboard_users(&proxied);
    let url = proxied.url();
    let proxy = client_from([127, 0, 0, 1]);
    for _ in 0..5 {
        let (status, _, _) = sign_in_as(&proxy, &url, "sup", "guess", Some("198.51.100.7"));
        assert_eq!(status, 401);
    }
    // The attacker's own X-Forwarded-For entry, left of the one the proxy appended, is not
    // believed.
    let (status, _, _) = sign_in_as(
        &proxy,
        &url,
        "sup",
        "the-right-password",
        Some("203.0.113.5, 198.51.100.7"),
    );
    assert_eq!(status, 429);
    let (status, _, _) = sign_in_as(
        &proxy,
        &url,
        "sup",
        "the-right-password",
        Some("203.0.113.5"),
    );
    assert_eq!(status, 200);
}

/// The session cookie is `Secure` (with HttpOnly, SameSite=Strict) without any proxy header;
/// only `serve --insecure-cookies` drops `Secure`, for development over plain HTTP.
#[test]
fn the_session_cookie_is_secure_unless_the_operator_says_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    dashboard_users(&server);
    let (status, _, cookie) = sign_in_as(
        &Client::new(),
        &server.url(),
        "sup",
        "the-right-password",
        None,
    );
    assert_eq!(status, 200);
    let cookie = cookie.unwrap();
    for attr in ["; Secure", "; HttpOnly", "; SameSite=Strict", "; Path=/"] {
        assert!(cookie.contains(attr), "{attr} in {cookie}");
    }

    let dir2 = tempfile::tempdir().unwrap();
    let dev = Server::start_with(&dir2.path().join("server"), &["--insecure-cookies"], None);
    dashboard_users(&dev);
    let (status, _, cookie) = sign_in_as(
        &Client::new(),
        &dev.url(),
        "sup",
        "the-right-password",
        None,
    );
    assert_eq!(status, 200);
    let cookie = cookie.unwrap();
    assert!(!cookie.contains("Secure"), "{cookie}");
    assert!(cookie.contains("; HttpOnly"), "{cookie}");
}

// ---- enrollment

/// A device may not enroll under an id the server writes or opens documents as — the nil UUID,
/// a supervisor's review actor (for an existing user or one not created yet), the standard's
/// actor, any version-8 id, the SQLite engine's own store id — nor under another spelling of a
/// UUID. The code is not spent by a refused request; a random id then enrolls with it.
#[test]
fn reserved_device_ids_are_refused_at_enrollment() {
    use fenlei_server::domain::review::STANDARD_USER;
    use fenlei_server::domain::review::server_actor;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    server.admin(&["add-user", "--id", "insp", "--role", "inspector"]);
    server.admin(&["add-user", "--id", "sup", "--role", "supervisor"]);
    let mut reserved = vec![
        "00000000-0000-0000-0000-000000000000".to_string(),
        "ffffffff-ffff-ffff-ffff-ffffffffffff".to_string(),
        server_actor("review", "sup"),
        server_actor("review", "someone.added.next.year"),
        server_actor("standard", STANDARD_USER),
        // Another spelling of the nil UUID and of a valid random id.
        "00000000000000000000000000000000".to_string(),
        "{00000000-0000-0000-0000-000000000000}".to_string(),
        "6F1C1D6E-3B1A-4C8E-9A57-0D2F8C1B7E42".to_string(),
        "phone-1".to_string(),
    ];
    if !on_postgres() {
        let conn = rusqlite::Connection::open(server.data.join("fenlei-server.sqlite")).unwrap();
        reserved.push(
            conn.query_row("SELECT value FROM meta WHERE key = 'device_id'", [], |r| {
                r.get(0)
            })
            .unwrap(),
        );
    }
    let http = Client::new();
    let code = server.enroll_code("insp");
    for id in &reserved {
        let r = http
            .post(format!("{}/v1/enroll", server.url()))
            .json(&json!({"code": code, "device_id": id}))
            .send()
            .unwrap();
        let status = r.status().as_u16();
        let body: serde_json::Value = r.json().unwrap();
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("bad_request")),
            "{id}: {body}"
        );
    }
    let r = http
        .post(format!("{}/v1/enroll", server.url()))
        .json(&json!({"code": code, "device_id": uuid_v4()}))
        .send()
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "the code was not spent by the refused requests"
    );
}

/// A device that an older server let enroll under a reserved id cannot act with its token.
#[test]
fn a_device_already_enrolled_under_a_reserved_id_is_refused() {
    if skip_on_postgres("writes a device row into the SQLite file") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    server.admin(&["add-user", "--id", "insp", "--role", "inspector"]);
    let token = "a-token-an-older-server-issued";
    let conn = rusqlite::Connection::open(server.data.join("fenlei-server.sqlite")).unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn.execute(
        "INSERT INTO devices (id, user_id, token_hash, enrolled_at) VALUES (?1, 'insp', ?2, 0)",
        rusqlite::params![
            "00000000-0000-0000-0000-000000000000",
            fenlei_server::domain::secrets::hash_secret(token)
        ],
    )
    .unwrap();
    let r = Client::new()
        .get(format!("{}/v1/me", server.url()))
        .bearer_auth(token)
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);
}

// ---- extreme query values

/// Values a hostile client puts in numeric and date query parameters.
const EXTREMES: &[&str] = &[
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "-1",
    "0",
    "1e308",
    "NaN",
    "",
    "%00",
    "99999-12-31",
    "-99999-01-01",
    "0000-01-01",
    "2026-13-01",
    "2026-02-30",
    "2026-01-01T00:00:00Z",
    "２０２６-01-01",
];

/// Every route that reads a date or a number from its query, with every extreme value: a typed
/// answer (200, or 400 with the JSON error body; 403/409/413 where the route's own rules refuse
/// first), never a panic, a dropped connection or a 500. Times outside years 1–9999 are 400.
#[test]
fn extreme_query_values_get_typed_answers_on_every_route() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let (_, _, district) = sample_places();
    server.admin(&["add-user", "--id", "sup", "--role", "supervisor"]);
    server.admin(&["assign", "--user", "sup", "--district", &district]);
    let sup = Device::enroll(&server, dir.path(), "sup");
    let http = Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let sha = "a".repeat(64);
    // (route with {} for the value, whether the value is a time)
    let routes = [
        ("/v1/inspections?from={}", true),
        ("/v1/inspections?to={}", true),
        ("/v1/inspections?limit={}", false),
        ("/v1/rankings?at={}", true),
        ("/v1/rankings?period=month&at={}", true),
        ("/v1/reports/weekly.csv?at={}", true),
        ("/v1/reports/monthly.html?at={}", true),
        ("/v1/reports/weekly.xlsx?at={}", true),
        ("/v1/planning/uninspected?at={}", true),
        ("/v1/planning/uninspected?period=week&at={}", true),
        ("/v1/planning/visits?at={}", true),
        ("/v1/planning/visits?days={}", false),
        ("/v1/planning/visits?per_day={}", false),
        ("/v1/planning/visits?seed={}", false),
        ("/v1/rectifications?limit={}", false),
        ("/v1/rectifications?overdue={}", false),
        ("/v1/chain/links?from={}", false),
        ("/v1/chain/links?from=0&limit={}", false),
        ("/v1/chain/entries/{}", false),
    ];
    let mut wrong = Vec::new();
    let mut check = |what: String, r: reqwest::Result<reqwest::blocking::Response>, time: bool| {
        let r = match r {
            Ok(r) => r,
            Err(e) => return wrong.push(format!("{what}: no answer ({e})")),
        };
        let status = r.status().as_u16();
        let body: Option<serde_json::Value> = r.json().ok();
        let typed = body
            .as_ref()
            .and_then(|b| b["error"].as_str())
            .is_some_and(|e| !e.is_empty());
        let ok = match status {
            200 => !time || !what.contains("922337203685477580"),
            400 | 403 | 404 | 409 | 413 => typed,
            _ => false,
        };
        if !ok {
            wrong.push(format!("{what}: {status} {body:?}"));
        }
    };
    for (route, time) in routes {
        for v in EXTREMES {
            if route.ends_with("/{}") && v.is_empty() {
                continue; // another path: the router's own 404
            }
            let url = format!("{}{}", server.url(), route.replace("{}", v));
            check(
                format!("GET {route} = {v}"),
                http.get(&url).bearer_auth(&sup.token).send(),
                time,
            );
        }
    }
    // The upload route's offsets and sizes.
    for (param, other) in [("offset", "total=10"), ("total", "offset=0")] {
        for v in EXTREMES {
            let url = format!(
                "{}/v1/media/{sha}/original?blob={sha}&{param}={v}&{other}",
                server.url()
            );
            check(
                format!("PUT media {param} = {v}"),
                http.put(&url)
                    .bearer_auth(&sup.token)
                    .header("content-type", "image/jpeg")
                    .body(vec![0u8; 10])
                    .send(),
                false,
            );
        }
    }
    assert!(
        wrong.is_empty(),
        "{} answers not typed: {wrong:#?}",
        wrong.len()
    );
    // And the server is still there.
    let r = healthz_client()
        .get(format!("{}/healthz", server.url()))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
}
