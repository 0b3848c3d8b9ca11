//! A fault-injecting HTTP proxy between devices and a real server (docs/reliability.md).
//!
//! It reads each HTTP/1.1 request whole (head + `Content-Length` body), then, by a seeded
//! random draw per request, passes it, delays it, drops it before the server sees it, drops the
//! server's answer after the server acted on it, sends it twice, replays the previous request
//! of the connection after it (a stale message arriving late: reordering), or cuts the request
//! or the answer in the middle of its body. Every cut or drop closes the device's connection,
//! as a broken network does.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Chances, in percent per request, of each fault; the rest pass untouched.
#[derive(Debug, Clone, Copy, Default)]
pub struct FaultPlan {
    pub drop_request: u32,
    pub drop_response: u32,
    pub duplicate: u32,
    pub reorder: u32,
    pub cut_request: u32,
    pub cut_response: u32,
    pub delay: u32,
    /// Longest delay, ms.
    pub delay_max_ms: u64,
    pub seed: u64,
}

impl FaultPlan {
    /// Every fault at `percent` each.
    pub fn all(percent: u32, seed: u64) -> FaultPlan {
        FaultPlan {
            drop_request: percent,
            drop_response: percent,
            duplicate: percent,
            reorder: percent,
            cut_request: percent,
            cut_response: percent,
            delay: percent,
            delay_max_ms: 150,
            seed,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Pass,
    Delay,
    DropRequest,
    DropResponse,
    Duplicate,
    Reorder,
    CutRequest,
    CutResponse,
}

/// How many requests met each fault.
#[derive(Debug, Default, Clone)]
pub struct FaultStats {
    pub requests: u64,
    pub counts: Vec<(Fault, u64)>,
}

impl FaultStats {
    fn add(&mut self, f: Fault) {
        self.requests += 1;
        match self.counts.iter_mut().find(|(k, _)| *k == f) {
            Some((_, n)) => *n += 1,
            None => self.counts.push((f, 1)),
        }
    }

    pub fn count(&self, f: Fault) -> u64 {
        self.counts
            .iter()
            .find(|(k, _)| *k == f)
            .map_or(0, |(_, n)| *n)
    }
}

struct Shared {
    upstream: u16,
    plan: Mutex<FaultPlan>,
    draws: AtomicU64,
    stats: Mutex<FaultStats>,
    stop: AtomicBool,
}

pub struct FaultProxy {
    port: u16,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// A proxy on a free loopback port in front of `127.0.0.1:upstream`.
    pub fn start(upstream: u16, plan: FaultPlan) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            upstream,
            plan: Mutex::new(plan),
            draws: AtomicU64::new(0),
            stats: Mutex::new(FaultStats::default()),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let s = s.clone();
                std::thread::spawn(move || {
                    let _ = serve(conn, &s);
                });
            }
        });
        FaultProxy {
            port,
            shared,
            accept: Some(accept),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn set_plan(&self, plan: FaultPlan) {
        *self.shared.plan.lock().unwrap() = plan;
    }

    pub fn stats(&self) -> FaultStats {
        self.shared.stats.lock().unwrap().clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

/// A draw in 0..100 from the plan's seed and a global counter (deterministic per request order).
fn draw(s: &Shared, seed: u64) -> u64 {
    let n = s.draws.fetch_add(1, Ordering::SeqCst);
    let mut x = seed ^ n.wrapping_mul(0x9E3779B97F4A7C15);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51afd7ed558ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ceb9fe1a85ec53);
    x ^= x >> 33;
    x
}

fn choose(s: &Shared) -> (Fault, u64) {
    let plan = *s.plan.lock().unwrap();
    let roll = draw(s, plan.seed) % 100;
    let extra = draw(s, plan.seed);
    let mut edge = 0;
    for (p, f) in [
        (plan.drop_request, Fault::DropRequest),
        (plan.drop_response, Fault::DropResponse),
        (plan.duplicate, Fault::Duplicate),
        (plan.reorder, Fault::Reorder),
        (plan.cut_request, Fault::CutRequest),
        (plan.cut_response, Fault::CutResponse),
        (plan.delay, Fault::Delay),
    ] {
        edge += p as u64;
        if roll < edge {
            let extra = if f == Fault::Delay {
                extra % plan.delay_max_ms.max(1)
            } else {
                extra
            };
            return (f, extra);
        }
    }
    (Fault::Pass, 0)
}

/// One HTTP message: head (through the blank line) and body.
struct Message {
    head: Vec<u8>,
    body: Vec<u8>,
}

impl Message {
    fn bytes(&self) -> Vec<u8> {
        let mut b = self.head.clone();
        b.extend_from_slice(&self.body);
        b
    }
}

fn read_message(r: &mut impl BufRead) -> io::Result<Option<Message>> {
    let mut head = Vec::new();
    let mut length = 0usize;
    loop {
        let mut line = Vec::new();
        if r.read_until(b'\n', &mut line)? == 0 {
            return if head.is_empty() {
                Ok(None)
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
        let text = String::from_utf8_lossy(&line).to_ascii_lowercase();
        if let Some(v) = text.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        head.extend_from_slice(&line);
        if line == b"\r\n" {
            break;
        }
    }
    let mut body = vec![0; length];
    r.read_exact(&mut body)?;
    Ok(Some(Message { head, body }))
}

/// Sends `request` to the server on a new connection and reads its answer whole.
fn exchange(upstream: u16, request: &[u8]) -> io::Result<Message> {
    let mut up = TcpStream::connect(("127.0.0.1", upstream))?;
    up.set_read_timeout(Some(Duration::from_secs(60)))?;
    up.write_all(request)?;
    read_message(&mut BufReader::new(up))?.ok_or_else(|| io::ErrorKind::UnexpectedEof.into())
}

fn serve(client: TcpStream, s: &Shared) -> io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut client = client;
    let mut previous: Option<Vec<u8>> = None;
    while let Some(request) = read_message(&mut reader)? {
        let raw = request.bytes();
        let (fault, extra) = choose(s);
        s.stats.lock().unwrap().add(fault);
        match fault {
            Fault::DropRequest => {
                let _ = client.shutdown(Shutdown::Both);
                return Ok(());
            }
            Fault::CutRequest => {
                // The head and part of the body reach the server, then the line dies.
                let cut = request.head.len() + (extra as usize % request.body.len().max(1));
                if let Ok(mut up) = TcpStream::connect(("127.0.0.1", s.upstream)) {
                    let _ = up.write_all(&raw[..cut]);
                    let _ = up.shutdown(Shutdown::Both);
                }
                let _ = client.shutdown(Shutdown::Both);
                return Ok(());
            }
            Fault::Delay => std::thread::sleep(Duration::from_millis(extra)),
            _ => {}
        }
        let mut answer = exchange(s.upstream, &raw)?;
        match fault {
            Fault::Duplicate => answer = exchange(s.upstream, &raw)?,
            Fault::Reorder => {
                // The connection's previous request arrives again, after this one.
                if let Some(old) = &previous {
                    let _ = exchange(s.upstream, old);
                }
            }
            Fault::DropResponse => {
                let _ = client.shutdown(Shutdown::Both);
                return Ok(());
            }
            Fault::CutResponse => {
                let bytes = answer.bytes();
                let cut = answer.head.len() + (extra as usize % answer.body.len().max(1));
                let _ = client.write_all(&bytes[..cut]);
                let _ = client.shutdown(Shutdown::Both);
                return Ok(());
            }
            _ => {}
        }
        client.write_all(&answer.bytes())?;
        previous = Some(raw);
    }
    Ok(())
}
