//! TLS on the client (docs/reliability.md): a local rustls server with certificates made here
//! (rcgen) forwards to a real fenlei-server process. The client trusts a test CA through
//! `SyncOptions.trusted_roots_pem`: a certificate from it for the right host passes (enroll and
//! sync work), while a self-signed, an expired and a wrong-host certificate are refused, and so
//! is the right one without the test CA. Plain HTTP to a host that is not this machine is a
//! typed error before any byte is sent.

mod common;

use common::*;
use fenlei_core::CoreError;
use fenlei_core::progress::{CancelToken, NoProgress};
use fenlei_core::store::Store;
use fenlei_core::sync::{SyncClient, SyncOptions, enroll_with};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, date_time_ymd,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::sync::Arc;

struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        Ca {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `host`, valid now unless `expired`.
    fn leaf(&self, host: &str, expired: bool) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        let mut params = CertificateParams::new(vec![host.to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, host);
        if expired {
            params.not_before = date_time_ymd(2020, 1, 1);
            params.not_after = date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (
            cert.der().clone(),
            PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
        )
    }
}

/// A self-signed certificate for `host` (its own issuer).
fn self_signed(host: &str) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let params = CertificateParams::new(vec![host.to_string()]).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (
        cert.der().clone(),
        PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
    )
}

/// A TLS front on a loopback port that forwards each connection to `backend` (the real server).
struct TlsFront {
    port: u16,
    _runtime: tokio::runtime::Runtime,
}

impl TlsFront {
    fn start(cert: (CertificateDer<'static>, PrivateKeyDer<'static>), backend: u16) -> TlsFront {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.0], cert.1)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        runtime.spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // A refused handshake ends here: nothing reaches the backend.
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Ok(mut plain) =
                        tokio::net::TcpStream::connect(("127.0.0.1", backend)).await
                    else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
        TlsFront {
            port,
            _runtime: runtime,
        }
    }

    fn url(&self) -> String {
        format!("https://localhost:{}", self.port)
    }
}

fn options(roots: Option<String>) -> SyncOptions {
    SyncOptions {
        max_retries: 0,
        timeout_ms: 10_000,
        trusted_roots_pem: roots,
        ..Default::default()
    }
}

fn tls_refusal(e: CoreError, what: &str) {
    match e {
        CoreError::Network(m) => assert!(
            m.to_lowercase().contains("certificate"),
            "{what}: the error names the certificate problem: {m}"
        ),
        other => panic!("{what}: expected a network error, got {other:?}"),
    }
}

#[test]
fn only_a_trusted_valid_certificate_for_the_right_host_passes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let (street, _, _) = sample_places();
    server.admin(&["add-user", "--id", "insp.tls", "--role", "inspector"]);
    server.admin(&["assign", "--user", "insp.tls", "--street", &street]);
    let ca = Ca::new("Fenlei test CA");
    let roots = Some(ca.pem());

    // Refused: each bad certificate, for enrollment and for sync; the code stays unused.
    let code = server.enroll_code("insp.tls");
    let store = Store::open(dir.path().join("device.sqlite")).unwrap();
    let other_ca = Ca::new("Someone else's CA");
    let bad = [
        ("self-signed", self_signed("localhost"), roots.clone()),
        ("expired", ca.leaf("localhost", true), roots.clone()),
        (
            "wrong host",
            ca.leaf("fenlei.example.org", false),
            roots.clone(),
        ),
        (
            "untrusted CA",
            other_ca.leaf("localhost", false),
            roots.clone(),
        ),
        (
            "right cert, test CA not trusted",
            ca.leaf("localhost", false),
            None,
        ),
    ];
    for (what, cert, roots) in bad {
        let front = TlsFront::start(cert, server.port);
        let e = enroll_with(&front.url(), &code, &store, &options(roots.clone())).unwrap_err();
        tls_refusal(e, what);
        let client = SyncClient::with_options(&front.url(), "some-token", options(roots)).unwrap();
        let e = client
            .sync(&store, &NoProgress, &CancelToken::new())
            .unwrap_err();
        tls_refusal(e, what);
    }

    // Passes: the test CA's certificate for localhost; enrollment and a full sync work.
    let front = TlsFront::start(ca.leaf("localhost", false), server.port);
    let creds = enroll_with(&front.url(), &code, &store, &options(roots.clone())).unwrap();
    let client = SyncClient::with_options(&front.url(), &creds.token, options(roots)).unwrap();
    let report = client
        .sync(&store, &NoProgress, &CancelToken::new())
        .unwrap();
    assert!(report.communities_received >= 200);
}

#[test]
fn bad_trusted_roots_are_a_typed_error() {
    let e = SyncClient::with_options(
        "https://localhost:1",
        "t",
        options(Some("not a certificate".into())),
    )
    .err()
    .unwrap();
    assert!(matches!(e, CoreError::InvalidArgument(_)), "{e:?}");
}

#[test]
fn plain_http_to_another_host_is_refused_before_any_byte_is_sent() {
    // A listener on every interface: a connection to it would show up as an accepted socket.
    let listener = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("device.sqlite")).unwrap();
    // This machine's own non-loopback address when it has one, and names that are not loopback.
    let mut hosts = vec![
        "fenlei.example.org".to_string(),
        "10.0.0.1".into(),
        "[2001:db8::1]".into(),
    ];
    if let Ok(sock) = std::net::UdpSocket::bind("0.0.0.0:0")
        && sock.connect("192.0.2.1:9").is_ok()
        && let Ok(local) = sock.local_addr()
        && !local.ip().is_loopback()
        && !local.ip().is_unspecified()
    {
        hosts.push(local.ip().to_string());
    }
    for host in &hosts {
        let url = format!("http://{host}:{port}");
        let e = SyncClient::new(&url, "token").err().unwrap();
        assert!(matches!(e, CoreError::InvalidArgument(_)), "{url}: {e:?}");
        let e = fenlei_core::sync::enroll(&url, "code", &store).unwrap_err();
        assert!(matches!(e, CoreError::InvalidArgument(_)), "{url}: {e:?}");
    }
    assert!(
        listener.accept().is_err(),
        "no connection was made to any host"
    );
    // Loopback over plain HTTP stays allowed (development and tests).
    assert!(SyncClient::new(&format!("http://127.0.0.1:{port}"), "token").is_ok());
    assert!(SyncClient::new(&format!("http://localhost:{port}"), "token").is_ok());
}
