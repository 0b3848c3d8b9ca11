//! The harness: a real fenlei-server process on loopback, and devices built from fenlei-core.
#![allow(dead_code)]

pub mod raw;

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
    /// The server's own fresh PostgreSQL database, when the suite runs on PostgreSQL
    /// (`FENLEI_TEST_DATABASE_URL`); `None`: the SQLite file in `data`.
    pub database_url: Option<String>,
    /// Extra `serve` options (e.g. `--header-timeout 2`), kept across restarts.
    pub serve_args: Vec<String>,
    /// The soft open-file limit the server process starts with (its hard limit stays), as on a
    /// machine whose login default is 1,024; `None`: inherited from the test.
    pub open_files: Option<u64>,
    /// Extra environment of the `serve` process (e.g. `FENLEI_STAGING_QUOTA_MIB`).
    pub serve_env: Vec<(String, String)>,
}

/// The PostgreSQL cluster the e2e suite runs against (`FENLEI_TEST_DATABASE_URL`, the URL of
/// any database on it, e.g. what `scripts/postgres.sh start` prints), if set.
pub fn test_cluster() -> Option<String> {
    std::env::var("FENLEI_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
}

/// The cluster for a test that only makes sense on PostgreSQL. Such tests are `#[ignore]`d (the
/// default run lists them as ignored); run anyway without a cluster, they fail here.
pub fn required_cluster() -> String {
    test_cluster().expect(
        "FENLEI_TEST_DATABASE_URL names no PostgreSQL cluster (scripts/postgres.sh start DIR \
         prints one; scripts/test.sh does it)",
    )
}

/// Whether the servers of this run store their data in PostgreSQL.
pub fn on_postgres() -> bool {
    test_cluster().is_some()
}

/// For tests that read or damage the server's SQLite file directly: `true` (after printing
/// why) when the run is on PostgreSQL and the test must be skipped.
pub fn skip_on_postgres(why: &str) -> bool {
    if on_postgres() {
        eprintln!("skipped under PostgreSQL (FENLEI_TEST_DATABASE_URL is set): {why}");
        return true;
    }
    false
}

/// Creates a new, empty database on the cluster at `cluster` and returns its URL.
pub fn fresh_database(cluster: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let name = format!(
        "fenlei_t{}_{}_{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    );
    let mut client = postgres::Client::connect(cluster, postgres::NoTls)
        .unwrap_or_else(|e| panic!("connect to FENLEI_TEST_DATABASE_URL {cluster}: {e}"));
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("create test database");
    database_url(cluster, &name)
}

/// `cluster` (a postgres:// URL) naming database `name` instead of its own.
pub fn database_url(cluster: &str, name: &str) -> String {
    let (base, query) = match cluster.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (cluster, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let root = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{root}/{name}?{q}"),
        None => format!("{root}/{name}"),
    }
}

/// Drops a test database (after its server stopped); failures only leave garbage behind.
fn drop_database(url: &str) {
    let Some(cluster) = test_cluster() else {
        return;
    };
    let Some(name) = url
        .split('?')
        .next()
        .and_then(|u| u.rsplit_once('/'))
        .map(|(_, n)| n.to_string())
    else {
        return;
    };
    if let Ok(mut client) = postgres::Client::connect(&cluster, postgres::NoTls) {
        let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    }
}

impl Server {
    /// A fresh server with the sample city in `data`, on a free loopback port. With
    /// `FENLEI_TEST_DATABASE_URL` set, its data lives in a fresh database of that cluster (blobs
    /// stay in `data`).
    pub fn start(data: &Path) -> Server {
        Server::start_full(data, &[], None, &[])
    }

    /// [`Server::start`] with extra `serve` options and, if given, a soft open-file limit.
    pub fn start_with(data: &Path, serve_args: &[&str], open_files: Option<u64>) -> Server {
        Server::start_full(data, serve_args, open_files, &[])
    }

    /// [`Server::start`] with extra environment for the `serve` process (its limits).
    pub fn start_with_env(data: &Path, env: &[(&str, &str)]) -> Server {
        Server::start_full(data, &[], None, env)
    }

    fn start_full(
        data: &Path,
        serve_args: &[&str],
        open_files: Option<u64>,
        env: &[(&str, &str)],
    ) -> Server {
        let mut s = Server {
            child: None,
            data: data.to_path_buf(),
            port: 0,
            database_url: test_cluster().map(|c| fresh_database(&c)),
            serve_args: serve_args.iter().map(|a| a.to_string()).collect(),
            open_files,
            serve_env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        s.admin(&["init", "--sample"]);
        s.launch();
        s
    }

    /// The server binary with this server's storage options (`--data`, and `--database-url`
    /// under PostgreSQL); add the command and its arguments.
    pub fn command(&self) -> Command {
        let mut c = Command::new(BIN);
        c.args(["--data", self.data.to_str().unwrap()]);
        if let Some(url) = &self.database_url {
            c.args(["--database-url", url]);
        }
        c
    }

    fn launch(&mut self) {
        let port_file = self.data.join("port");
        let _ = std::fs::remove_file(&port_file);
        let mut command = self.command();
        command
            .args(["serve", "--addr"])
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--port-file")
            .arg(&port_file)
            .args(&self.serve_args)
            .envs(blob_env(&self.data))
            .envs(self.serve_env.iter().cloned())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if let Some(soft) = self.open_files {
            use std::os::unix::process::CommandExt;
            // SAFETY: only async-signal-safe calls between fork and exec.
            unsafe {
                command.pre_exec(move || {
                    let mut lim = libc::rlimit {
                        rlim_cur: 0,
                        rlim_max: 0,
                    };
                    if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    lim.rlim_cur = (soft as libc::rlim_t).min(lim.rlim_max);
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let child = command.spawn().expect("spawn server");
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
        let out = self
            .command()
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
        // The same database (this server's, dropped with this server) and blob store; the
        // second server never drops the database itself.
        let mut s = Server {
            child: None,
            data: self.data.clone(),
            port: 0,
            database_url: None,
            serve_args: self.serve_args.clone(),
            open_files: None,
            serve_env: self.serve_env.clone(),
        };
        let port_file = self.data.join(format!("port-{}", uuid_like()));
        let child = self
            .command()
            .args(["serve", "--addr"])
            .arg("127.0.0.1:0")
            .arg("--port-file")
            .arg(&port_file)
            .envs(blob_env(&self.data))
            .envs(self.serve_env.iter().cloned())
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
        if let Some(url) = &self.database_url {
            drop_database(url);
        }
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

    /// Syncs and returns the report, refused documents included.
    pub fn sync_allowing_refusals(&self) -> SyncReport {
        self.client()
            .sync(&self.store, &NoProgress, &CancelToken::new())
            .expect("sync")
    }

    pub fn sync(&self) -> SyncReport {
        let report = self.sync_allowing_refusals();
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

/// The usual city of the e2e tests: a server with the sample city; inspectors `insp.a` and
/// `insp.b` assigned its first street, supervisor `sup` its district; every device synced once.
pub struct City {
    pub dir: tempfile::TempDir,
    pub server: Server,
    pub a: Device,
    pub b: Device,
    pub sup: Device,
    /// Communities of the inspectors' street.
    pub communities: Vec<String>,
}

pub fn city() -> City {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let (street, communities, district) = sample_places();
    for (user, role, kind, scope) in [
        ("insp.a", "inspector", "--street", &street),
        ("insp.b", "inspector", "--street", &street),
        ("sup", "supervisor", "--district", &district),
    ] {
        server.admin(&["add-user", "--id", user, "--role", role]);
        server.admin(&["assign", "--user", user, kind, scope]);
    }
    let a = Device::enroll(&server, dir.path(), "insp.a");
    let b = Device::enroll(&server, dir.path(), "insp.b");
    let sup = Device::enroll(&server, dir.path(), "sup");
    for d in [&a, &b, &sup] {
        let r = d.sync();
        assert!(r.communities_received >= 200 && r.standards_received == 2);
    }
    City {
        dir,
        server,
        a,
        b,
        sup,
        communities,
    }
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

/// Several server processes behind one database: PostgreSQL (`database_url`) shared by every
/// instance, and one blob folder (`<data>/blobs`, all instances run on the same data folder).
/// Without a database URL it is the embedded SQLite mode, where only one instance may serve.
pub struct Instances {
    pub data: PathBuf,
    pub database_url: Option<String>,
    pub servers: Vec<Server>,
}

impl Drop for Instances {
    fn drop(&mut self) {
        self.servers.clear();
        if let Some(url) = &self.database_url {
            drop_database(url);
        }
    }
}

impl Instances {
    /// Initialises the database with the sample city once, then starts `n` instances.
    pub fn start(data: &Path, database_url: Option<String>, n: usize) -> Instances {
        let mut s = Instances {
            data: data.to_path_buf(),
            database_url,
            servers: Vec::new(),
        };
        s.admin(&["init", "--sample"]);
        for _ in 0..n {
            let server = s.spawn().expect("server started");
            s.servers.push(server);
        }
        s
    }

    fn command(&self) -> Command {
        let mut c = Command::new(BIN);
        c.args(["--data", self.data.to_str().unwrap()]);
        // Never inherit a database from the test's own environment: the instance's mode is
        // exactly what `database_url` says.
        c.env_remove("FENLEI_DATABASE_URL");
        if let Some(url) = &self.database_url {
            c.env("FENLEI_DATABASE_URL", url);
        }
        c
    }

    /// Starts one more `serve` process on a free port; its exit status and standard error when
    /// it stops before listening (a refused start).
    pub fn spawn(&self) -> Result<Server, (std::process::ExitStatus, String)> {
        let port_file = self.data.join(format!("port-{}", uuid_like()));
        let mut child = self
            .command()
            .args(["serve", "--addr", "127.0.0.1:0", "--port-file"])
            .arg(&port_file)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn server");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(text) = std::fs::read_to_string(&port_file)
                && let Ok(port) = text.trim().parse()
            {
                // Pass the server's log through to the test's standard error.
                if let Some(mut err) = child.stderr.take() {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut err, &mut std::io::stderr());
                    });
                }
                return Ok(Server {
                    child: Some(child),
                    data: self.data.clone(),
                    port,
                    // The database is the group's, dropped with it, not with one instance.
                    database_url: None,
                    serve_args: Vec::new(),
                    open_files: None,
                    serve_env: Vec::new(),
                });
            }
            if let Some(status) = child.try_wait().expect("server status") {
                let mut text = String::new();
                if let Some(mut err) = child.stderr.take() {
                    use std::io::Read;
                    let _ = err.read_to_string(&mut text);
                }
                return Err((status, text));
            }
            assert!(Instant::now() < deadline, "server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The URL of instance `i`.
    pub fn url(&self, i: usize) -> String {
        self.servers[i].url()
    }

    /// Runs an admin command against the shared database; returns its standard output.
    pub fn admin(&self, args: &[&str]) -> String {
        let out = self
            .command()
            .args(args)
            .output()
            .expect("run admin command");
        assert!(
            out.status.success(),
            "admin {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn enroll_code(&self, user: &str) -> String {
        self.admin(&["enroll", "--user", user]).trim().to_string()
    }

    /// Enrolls a device of `user` through instance `i`.
    pub fn enroll(&self, i: usize, dir: &Path, user: &str) -> Device {
        Device::enroll_with_code(&self.url(i), &self.enroll_code(user), dir, user)
    }
}

impl Device {
    /// Enrolls a new device with a code already issued, at the server `url`.
    pub fn enroll_with_code(url: &str, code: &str, dir: &Path, user: &str) -> Device {
        let store = Store::open(dir.join(format!("{user}-{}.sqlite", uuid_like()))).unwrap();
        let creds = enroll(url, code, &store).expect("enroll");
        Device {
            store,
            token: creds.token,
            user: user.to_string(),
            url: url.to_string(),
        }
    }

    /// One sync through the server at `url`; documents the server refuses are in the report.
    pub fn sync_via_allowing_refusals(&self, url: &str) -> SyncReport {
        SyncClient::new(url, &self.token)
            .unwrap()
            .sync(&self.store, &NoProgress, &CancelToken::new())
            .expect("sync")
    }

    /// One sync through the server at `url` (another instance than the one enrolled with).
    pub fn sync_via(&self, url: &str) -> SyncReport {
        let report = self.sync_via_allowing_refusals(url);
        assert!(
            report.rejected.is_empty(),
            "rejected: {:?}",
            report.rejected
        );
        report
    }
}

/// Inspections held in `store` (at most `limit + 1` counted), apart from the rectification tasks
/// the standard's rules open from findings, which sync alongside them.
pub fn inspection_count(store: &Store, limit: usize) -> usize {
    store
        .list_inspections(&fenlei_core::store::InspectionFilter {
            limit: limit as u32 + 1,
            ..Default::default()
        })
        .unwrap()
        .len()
}
