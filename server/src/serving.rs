//! How `serve` accepts and keeps HTTP connections (docs/deploy.md, "Connection limits").
//!
//! axum's own `serve` gives hyper no timer, so hyper's header-read timeout never runs: a client
//! that opens a connection and sends half a request head (or nothing, or stops between
//! keep-alive requests) holds a task and a file descriptor for as long as it likes, and ~1,000
//! of them use up the process's open-file limit until nothing new is accepted, `/healthz`
//! included. Here every connection is served by hyper's HTTP/1 server with:
//!
//! - a **head timeout**: the request line and headers must arrive whole within it, counted from
//!   the moment the server waits for them — so it also closes a keep-alive connection left idle
//!   between requests;
//! - a **body stall timeout**: the next piece of a request body must arrive within it (per piece,
//!   never a total: a large photo on a slow network keeps going as long as it moves, and a cut
//!   upload keeps what arrived, docs/media-sync.md), and the client must take the next piece of a
//!   response within it;
//! - a **connection cap**: at most `max_connections` are open at once; beyond it the server stops
//!   accepting (new connections wait in the kernel's queue) while the established ones carry on,
//!   and the timeouts above free slots held by clients that send nothing.
//!
//! HTTP/1.1 only: phones and browsers reach the server through a TLS proxy that speaks HTTP/1.1
//! to it; HTTP/2 on a plain socket (h2c) would be one more protocol for a hostile client.
//!
//! Every request carries a [`Peer`] (its connection's address and the [`HttpPolicy`]) in its
//! extensions: who the client is for sign-in limits, and whether cookies are `Secure`.

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tower::ServiceExt;
use tower_http::timeout::TimeoutBody;

/// File descriptors kept for what is not a connection: SQLite's and PostgreSQL's connections,
/// blob files being written or read, the log.
pub const RESERVED_FDS: u64 = 256;
/// The default cap on open connections (lowered to fit the open-file limit).
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a graceful stop waits for requests in flight before closing what is left.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(25);

/// The connection limits of one `serve`.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
        }
    }
}

/// What requests need to know about how the server is deployed.
#[derive(Debug, Clone, Default)]
pub struct HttpPolicy {
    /// Proxies whose `X-Forwarded-For` names the client (docs/deploy.md). Empty: the client is
    /// the connection's peer and `X-Forwarded-For` is ignored.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Plain HTTP for development: the session cookie without `Secure`.
    pub insecure_cookies: bool,
}

impl HttpPolicy {
    /// Parses `--trusted-proxy` values: IP addresses or CIDR networks, comma-separated.
    pub fn parse_proxies(values: &[String]) -> Result<Vec<ipnet::IpNet>, String> {
        values
            .iter()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(|v| {
                v.parse::<ipnet::IpNet>()
                    .or_else(|_| v.parse::<IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| format!("--trusted-proxy {v:?} is not an IP address or network"))
            })
            .collect()
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.trusted_proxies.iter().any(|n| n.contains(&ip))
    }
}

/// The connection a request came on, in the request's extensions.
#[derive(Debug, Clone)]
pub struct Peer {
    pub addr: SocketAddr,
    pub policy: Arc<HttpPolicy>,
}

impl Peer {
    /// The client's address: the peer's, or — when the peer is a trusted proxy — the rightmost
    /// `X-Forwarded-For` entry that is not itself a trusted proxy (entries to its left are
    /// whatever the client wrote and are never believed).
    pub fn client_ip(&self, headers: &HeaderMap) -> IpAddr {
        let mut client = canonical(self.addr.ip());
        if !self.policy.trusts(client) {
            return client;
        }
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        for hop in hops.iter().rev() {
            match hop.parse::<IpAddr>() {
                Ok(ip) => {
                    client = canonical(ip);
                    if !self.policy.trusts(client) {
                        break;
                    }
                }
                // Not an address: the hop to its right (a trusted proxy) is as far as we know.
                Err(_) => break,
            }
        }
        client
    }

    /// Whether the session cookie carries `Secure`.
    pub fn secure_cookies(&self) -> bool {
        !self.policy.insecure_cookies
    }
}

/// IPv4-mapped IPv6 addresses as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// The key failed sign-ins are counted under for a client: its IPv4 address, or its IPv6 /64
/// (one subscriber's network; a client can pick any address inside it).
pub fn client_key(ip: IpAddr) -> String {
    match canonical(ip) {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// Raises the soft limit on open files to the hard limit (a login shell's default soft limit of
/// 1,024 is below what a few thousand connections need) and returns the soft limit in force.
#[cfg(unix)]
#[allow(clippy::unnecessary_cast)] // rlim_t is not u64 on every platform
pub fn raise_open_files_limit() -> io::Result<u64> {
    // SAFETY: getrlimit/setrlimit write and read only the struct passed.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Err(io::Error::last_os_error());
        }
        // An unlimited hard limit (macOS) is not a valid soft limit: stop at a million.
        let want = lim.rlim_max.min(1 << 20);
        if lim.rlim_cur < want {
            let raised = libc::rlimit {
                rlim_cur: want,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = want;
            }
        }
        Ok(lim.rlim_cur as u64)
    }
}

#[cfg(not(unix))]
pub fn raise_open_files_limit() -> io::Result<u64> {
    Ok(u64::MAX)
}

/// The connection cap that fits `open_files` (leaving [`RESERVED_FDS`] for everything else).
pub fn fit_connections(requested: usize, open_files: u64) -> usize {
    let room = open_files.saturating_sub(RESERVED_FDS).max(16);
    requested
        .min(usize::try_from(room).unwrap_or(usize::MAX))
        .max(1)
}

/// Serves `router` on `listener` until `shutdown` completes, then lets requests in flight finish
/// (at most [`SHUTDOWN_GRACE`]).
pub async fn serve_connections(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    policy: Arc<HttpPolicy>,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // A slot first: at the cap nothing more is accepted until a connection ends.
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = &mut shutdown => break,
        };
        let (stream, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let peer = Peer {
            addr,
            policy: policy.clone(),
        };
        let body_timeout = limits.body_timeout;
        let service = router.clone().map_request(move |req: Request<Incoming>| {
            let mut req = req.map(|body| TimeoutBody::new(body_timeout, body));
            req.extensions_mut().insert(peer.clone());
            req.extensions_mut().insert(ConnectInfo(addr));
            req
        });
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .serve_connection(
                TokioIo::new(WriteStall::new(stream, limits.body_timeout)),
                TowerToHyperService::new(service),
            );
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // Errors are the client's (reset, timed out, malformed): nothing to report.
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        eprintln!("fenlei-server: stopped with requests still in flight after the grace period");
    }
}

/// After a failed accept: a connection that died in the queue is nothing; anything else (out of
/// file descriptors) is reported and retried after a pause, as hyper did.
async fn accept_failed(e: io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    eprintln!("fenlei-server: accept failed: {e}");
    tokio::time::sleep(Duration::from_millis(250)).await;
}

/// A socket whose writes fail once the client has taken nothing for `timeout`: a client that
/// stops reading a response otherwise holds its connection (and whatever the response holds)
/// forever, TCP's zero-window probes keeping it alive.
pub struct WriteStall<T> {
    inner: T,
    timeout: Duration,
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<T> WriteStall<T> {
    pub fn new(inner: T, timeout: Duration) -> Self {
        WriteStall {
            inner,
            timeout,
            stalled: None,
        }
    }

    /// Called when a write made no progress: pending until the stall outlasts the timeout.
    fn stall<R>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        let timeout = self.timeout;
        let sleep = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client stopped reading",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn progressed<R>(
        &mut self,
        r: Poll<io::Result<R>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<R>> {
        match r {
            Poll::Ready(r) => {
                self.stalled = None;
                Poll::Ready(r)
            }
            Poll::Pending => self.stall(cx),
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteStall<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteStall<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.progressed(r, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.progressed(r, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_flush(cx);
        this.progressed(r, cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.progressed(r, cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use tokio::io::AsyncWriteExt;

    fn peer(addr: &str, proxies: &[&str]) -> Peer {
        Peer {
            addr: addr.parse().unwrap(),
            policy: Arc::new(HttpPolicy {
                trusted_proxies: HttpPolicy::parse_proxies(
                    &proxies.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
                )
                .unwrap(),
                insecure_cookies: false,
            }),
        }
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let spoof = xff(&["198.51.100.7"]);
        // No proxy configured: the peer, whatever the header says.
        assert_eq!(
            peer("203.0.113.9:5000", &[]).client_ip(&spoof).to_string(),
            "203.0.113.9"
        );
        // A trusted proxy: the address it appended (the rightmost untrusted hop).
        let p = peer("127.0.0.1:5000", &["127.0.0.1", "10.0.0.0/8"]);
        assert_eq!(p.client_ip(&spoof).to_string(), "198.51.100.7");
        let chain = xff(&["1.2.3.4, 198.51.100.7", "10.1.2.3"]);
        assert_eq!(p.client_ip(&chain).to_string(), "198.51.100.7");
        // Garbage the client wrote left of the proxy's entry changes nothing.
        assert_eq!(
            p.client_ip(&xff(&["not-an-ip, 198.51.100.7"])).to_string(),
            "198.51.100.7"
        );
        // Only trusted hops, or none: the last one known.
        assert_eq!(p.client_ip(&xff(&["10.9.9.9"])).to_string(), "10.9.9.9");
        assert_eq!(p.client_ip(&HeaderMap::new()).to_string(), "127.0.0.1");
        // An IPv4-mapped peer is its IPv4 address.
        assert_eq!(
            peer("[::ffff:127.0.0.1]:1", &["127.0.0.1"])
                .client_ip(&spoof)
                .to_string(),
            "198.51.100.7"
        );
        assert!(HttpPolicy::parse_proxies(&["10.0.0.1, fd00::/8".into()]).is_ok());
        assert!(HttpPolicy::parse_proxies(&["proxy.example".into()]).is_err());
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        assert_eq!(
            client_key("2001:db8:1:2:aaaa::1".parse().unwrap()),
            "2001:db8:1:2::/64"
        );
        assert_eq!(
            client_key("2001:db8:1:2:ffff::9".parse().unwrap()),
            client_key("2001:db8:1:2::1".parse().unwrap())
        );
        assert_eq!(client_key("192.0.2.1".parse().unwrap()), "192.0.2.1");
        assert_eq!(client_key("::ffff:192.0.2.1".parse().unwrap()), "192.0.2.1");
    }

    #[test]
    fn connections_fit_the_open_file_limit() {
        assert_eq!(fit_connections(4096, 1024), 768);
        assert_eq!(fit_connections(4096, 20_000), 4096);
        assert_eq!(fit_connections(4096, 10), 16);
        assert_eq!(fit_connections(0, 1024), 1);
    }

    #[tokio::test]
    async fn a_write_the_client_never_takes_fails_after_the_stall_timeout() {
        // A pipe of 64 bytes whose other end never reads.
        let (near, _far) = tokio::io::duplex(64);
        let mut w = WriteStall::new(near, Duration::from_millis(100));
        let err = w.write_all(&[0u8; 4096]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn a_slow_reader_that_keeps_taking_is_never_cut() {
        let (near, mut far) = tokio::io::duplex(64);
        let reader = tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let mut buf = [0u8; 16];
            let mut n = 0;
            while n < 2048 {
                tokio::time::sleep(Duration::from_millis(10)).await;
                n += far.read(&mut buf).await.unwrap();
            }
            n
        });
        // Each piece is taken well within the timeout, while the whole (128 reads, 10 ms
        // apart) takes more than twice as long.
        let mut w = WriteStall::new(near, Duration::from_millis(500));
        w.write_all(&[1u8; 2048]).await.unwrap();
        assert_eq!(reader.await.unwrap(), 2048);
    }
}
