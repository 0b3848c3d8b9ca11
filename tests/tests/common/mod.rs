//! The harness: a real fenlei-server process on loopback, and devices built from fenlei-core.
#![allow(dead_code)]

use fenlei_core::progress::{CancelToken, NoProgress};
use fenlei_core::store::Store;
use fenlei_core::sync::{SyncClient, SyncOptions, SyncReport, enroll};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_fenlei-e2e-server");

pub struct Server {
    child: Option<Child>,
    pub data: PathBuf,
    pub port: u16,
}

impl Server {
    /// A fresh server with the sample city in `data`, on a free loopback port.
    pub fn start(data: &Path) -> Server {
        let mut s = Server {
            child: None,
            data: data.to_path_buf(),
            port: 0,
        };
        s.admin(&["init", "--sample"]);
        s.launch();
        s
    }

    fn launch(&mut self) {
        let port_file = self.data.join("port");
        let _ = std::fs::remove_file(&port_file);
        let child = Command::new(BIN)
            .args(["--data", self.data.to_str().unwrap(), "serve", "--addr"])
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--port-file")
            .arg(&port_file)
            .envs(blob_env(&self.data))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(text) = std::fs::read_to_string(&port_file)
                && let Ok(port) = text.trim().parse()
            {
                self.port = port;
                return;
            }
            assert!(Instant::now() < deadline, "server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Runs an admin command on the data folder; returns its standard output.
    pub fn admin(&self, args: &[&str]) -> String {
        let out = Command::new(BIN)
            .args(["--data", self.data.to_str().unwrap()])
            .args(args)
            .envs(blob_env(&self.data))
            .output()
            .expect("run admin command");
        assert!(
            out.status.success(),
            "admin {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same port and data.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    pub fn enroll_code(&self, user: &str) -> String {
        self.admin(&["enroll", "--user", user]).trim().to_string()
    }
}

impl Server {
    /// Another server process on the same data folder and blob store: a second instance behind
    /// the same load balancer. Its port file is its own.
    pub fn another_instance(&self) -> Server {
        let mut s = Server {
            child: None,
            data: self.data.clone(),
            port: 0,
        };
        let port_file = self.data.join(format!("port-{}", uuid_like()));
        let child = Command::new(BIN)
            .args(["--data", self.data.to_str().unwrap(), "serve", "--addr"])
            .arg("127.0.0.1:0")
            .arg("--port-file")
            .arg(&port_file)
            .envs(blob_env(&self.data))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn server");
        s.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(text) = std::fs::read_to_string(&port_file)
                && let Ok(port) = text.trim().parse()
            {
                s.port = port;
                return s;
            }
            assert!(Instant::now() < deadline, "server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Whether the e2e servers keep blobs in S3 (moto) instead of their data folder:
/// `FENLEI_TEST_S3=1` (scripts/test.sh's object-storage block sets it).
pub fn test_s3() -> bool {
    std::env::var("FENLEI_TEST_S3").is_ok_and(|v| v == "1")
}

/// The environment of a server process on `data`: with [`test_s3`], `FENLEI_BLOBS` names a
/// prefix of its own (from the data folder's path) in a bucket on the test process's moto.
pub fn blob_env(data: &Path) -> Vec<(String, String)> {
    if !test_s3() {
        return Vec::new();
    }
    let moto = fenlei_e2e::moto::Moto::shared();
    static BUCKET: std::sync::Once = std::sync::Once::new();
    BUCKET.call_once(|| moto.create_bucket("fenlei-e2e"));
    use sha2::Digest;
    let prefix: String = sha2::Sha256::digest(data.to_string_lossy().as_bytes())[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut env = vec![(
        "FENLEI_BLOBS".to_string(),
        moto.blobs_url("fenlei-e2e", &format!("server-{prefix}")),
    )];
    env.extend(
        fenlei_e2e::moto::CREDENTIALS
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    env
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

pub struct Device {
    pub store: Store,
    pub token: String,
    pub user: String,
    pub url: String,
}

impl Device {
    pub fn enroll(server: &Server, dir: &Path, user: &str) -> Device {
        let store = Store::open(dir.join(format!("{user}-{}.sqlite", uuid_like()))).unwrap();
        let code = server.enroll_code(user);
        let creds = enroll(&server.url(), &code, &store).expect("enroll");
        Device {
            store,
            token: creds.token,
            user: user.to_string(),
            url: server.url(),
        }
    }

    pub fn client(&self) -> SyncClient {
        self.client_with(SyncOptions::default())
    }

    pub fn client_with(&self, options: SyncOptions) -> SyncClient {
        SyncClient::with_options(&self.url, &self.token, options).unwrap()
    }

    pub fn sync(&self) -> SyncReport {
        let report = self
            .client()
            .sync(&self.store, &NoProgress, &CancelToken::new())
            .expect("sync");
        assert!(
            report.rejected.is_empty(),
            "rejected: {:?}",
            report.rejected
        );
        report
    }
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// The first street of the sample city and two of its communities; a district.
pub fn sample_places() -> (String, Vec<String>, String) {
    let cs = fenlei_core::community::parse_csv(fenlei_core::sample::CITY_CSV.as_bytes()).unwrap();
    let street = cs[0].street.clone();
    let ids = cs
        .iter()
        .filter(|c| c.street == street)
        .map(|c| c.id.clone())
        .collect();
    (street, ids, cs[0].district.clone())
}

pub fn other_street() -> String {
    let cs = fenlei_core::community::parse_csv(fenlei_core::sample::CITY_CSV.as_bytes()).unwrap();
    cs.iter()
        .map(|c| c.street.clone())
        .find(|s| *s != cs[0].street)
        .unwrap()
}

/// The items of the sample standard 2026.1 that take a plain `Compliant` answer (rate-band,
/// per-occurrence and bonus items need other values), in standard order.
pub fn compliant_items(store: &Store) -> Vec<String> {
    let standard = store.standard("hohhot-residential", "2026.1").unwrap();
    standard
        .items()
        .filter(|i| {
            fenlei_core::scoring::validate_answer(
                &standard,
                &fenlei_core::answer::ItemAnswer {
                    item_code: i.code.clone(),
                    value: fenlei_core::answer::AnswerValue::Compliant,
                    sampled_units: None,
                    note: Some("-".into()),
                },
            )
            .is_ok()
        })
        .map(|i| i.code.clone())
        .collect()
}
