//! The TLS policy and the rustls connector, against a fake PostgreSQL that answers the
//! SSLRequest and completes a real TLS handshake (no database needed).

use super::require_tls_off_this_machine;
use super::tls::RustlsMakeTls;
use postgres::config::SslMode;
use std::io::{Read, Write};

fn mode(url: &str) -> SslMode {
    let mut c: postgres::Config = url.parse().unwrap();
    require_tls_off_this_machine(&mut c);
    c.get_ssl_mode()
}

#[test]
fn another_host_requires_tls_unless_disabled_explicitly() {
    assert_eq!(mode("postgres://u@db.example.org/fenlei"), SslMode::Require);
    assert_eq!(mode("postgres://u@10.0.0.5:5432/fenlei"), SslMode::Require);
    assert_eq!(
        mode("postgres://u@db.example.org/fenlei?sslmode=disable"),
        SslMode::Disable
    );
    assert_eq!(mode("postgres://u@127.0.0.1:5432/fenlei"), SslMode::Prefer);
    assert_eq!(mode("postgres://u@localhost/fenlei"), SslMode::Prefer);
    assert_eq!(mode("postgres://u@[::1]:5432/fenlei"), SslMode::Prefer);
}

/// A one-connection fake server: answers the SSLRequest with 'S', runs the TLS handshake with
/// `cert` for "localhost", and returns what the client sent first inside TLS.
fn fake_server(
    key: rcgen::KeyPair,
    cert: rcgen::Certificate,
) -> (u16, std::thread::JoinHandle<Option<Vec<u8>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let (mut tcp, _) = listener.accept().unwrap();
        let mut request = [0u8; 8];
        tcp.read_exact(&mut request).unwrap();
        assert_eq!(&request[4..], &[0x04, 0xd2, 0x16, 0x2f], "an SSLRequest");
        tcp.write_all(b"S").unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .unwrap();
        let mut conn = rustls::ServerConnection::new(std::sync::Arc::new(config)).unwrap();
        let mut tls = rustls::Stream::new(&mut conn, &mut tcp);
        let mut first = vec![0u8; 8];
        match tls.read_exact(&mut first) {
            Ok(()) => Some(first),
            Err(_) => None,
        }
    });
    (port, handle)
}

fn connect(port: u16, tls: RustlsMakeTls) -> Result<postgres::Client, postgres::Error> {
    let mut config: postgres::Config = format!("postgres://fenlei@localhost:{port}/fenlei")
        .parse()
        .unwrap();
    config
        .ssl_mode(SslMode::Require)
        .connect_timeout(std::time::Duration::from_secs(5));
    config.connect(tls)
}

#[test]
fn the_connector_speaks_tls_to_a_trusted_server_and_refuses_an_untrusted_one() {
    let make = || {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (key, cert)
    };
    // Trusted through FENLEI_DATABASE_CA's PEM: the handshake completes and the startup message
    // arrives encrypted (the fake server then hangs up, so the connection itself fails).
    let (key, cert) = make();
    let pem = cert.pem();
    let (port, server) = fake_server(key, cert);
    let _ = connect(port, RustlsMakeTls::new(Some(pem.as_bytes())).unwrap());
    let first = server.join().unwrap().expect("the TLS handshake completed");
    assert_eq!(
        &first[4..8],
        &[0, 3, 0, 0],
        "the startup message, inside TLS"
    );

    // Not trusted (the public roots only): refused during the handshake.
    let (key, cert) = make();
    let (port, server) = fake_server(key, cert);
    let Err(err) = connect(port, RustlsMakeTls::new(None).unwrap()) else {
        panic!("an untrusted certificate was accepted");
    };
    assert!(
        server.join().unwrap().is_none(),
        "no data after a refused handshake"
    );
    assert!(
        format!("{err:?}").to_lowercase().contains("certificate"),
        "{err:?}"
    );

    assert!(RustlsMakeTls::new(Some(b"not a certificate")).is_err());
}
