//! moto's S3-compatible server (PyPI `moto[server]`, installed by `scripts/moto.sh`) as a child
//! process on a free loopback port: the real S3 endpoint the object-storage tests use.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The variable naming moto's executable (`scripts/moto.sh path`).
pub const MOTO_VAR: &str = "FENLEI_MOTO_SERVER";

pub struct Moto {
    child: Child,
    pub port: u16,
}

/// Credentials moto accepts (it checks none); the server reads them like real ones.
pub const CREDENTIALS: [(&str, &str); 2] = [
    ("AWS_ACCESS_KEY_ID", "fenlei-test"),
    ("AWS_SECRET_ACCESS_KEY", "fenlei-test-secret"),
];

impl Moto {
    /// Starts moto (`$FENLEI_MOTO_SERVER`) on a free loopback port and waits until it listens.
    pub fn start() -> Moto {
        let bin = std::env::var(MOTO_VAR).unwrap_or_else(|_| {
            panic!("{MOTO_VAR} must name moto_server: run `scripts/moto.sh path` (scripts/test.sh does)")
        });
        // moto_server's own `main`, run by its venv's Python with one addition: it exits when
        // its stdin closes, so a test process that ends (even killed) takes its moto with it.
        let python = std::path::Path::new(&bin).with_file_name("python3");
        let mut child = Command::new(&python)
            .args([
                "-c",
                "import os, sys, threading\n\
                 threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()\n\
                 from moto.server import main\n\
                 main(sys.argv[1:])",
                "-H",
                "127.0.0.1",
                "-p",
                "0",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", python.display()));
        // werkzeug prints "Running on http://127.0.0.1:PORT" once bound.
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            // Keep reading (moto logs every request), or moto would block on a full pipe.
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("http://127.0.0.1:").nth(1)
                    && let Some(tx) = tx.take()
                {
                    let port: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
                    let _ = tx.send(port.parse::<u16>().unwrap_or(0));
                }
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("moto did not start");
        let moto = Moto { child, port };
        // Wait until it answers HTTP.
        let deadline = Instant::now() + Duration::from_secs(30);
        while reqwest::blocking::get(moto.endpoint()).is_err() {
            assert!(Instant::now() < deadline, "moto does not answer");
            std::thread::sleep(Duration::from_millis(50));
        }
        moto
    }

    /// One moto for the whole test process, started on first use.
    pub fn shared() -> &'static Moto {
        static MOTO: OnceLock<Moto> = OnceLock::new();
        MOTO.get_or_init(Moto::start)
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates a bucket (an existing one is fine).
    pub fn create_bucket(&self, name: &str) {
        let resp = reqwest::blocking::Client::new()
            .put(format!("{}/{name}", self.endpoint()))
            // moto picks the service and region from the credential scope; it checks no signature.
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=fenlei-test/20260101/us-east-1/s3/aws4_request, \
                 SignedHeaders=host, Signature=0",
            )
            .send()
            .expect("create bucket");
        assert!(
            resp.status().is_success() || resp.status().as_u16() == 409,
            "create bucket {name}: {}",
            resp.status()
        );
    }

    /// The `--blobs` URL of `bucket` under `prefix`.
    pub fn blobs_url(&self, bucket: &str, prefix: &str) -> String {
        format!(
            "s3://{bucket}/{prefix}?endpoint={}&region=us-east-1",
            self.endpoint()
        )
    }

    /// Sets the credentials in this process's environment (for stores opened in the test itself).
    pub fn set_credentials() {
        for (k, v) in CREDENTIALS {
            // SAFETY: test set-up; every test sets the same values.
            unsafe { std::env::set_var(k, v) };
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
