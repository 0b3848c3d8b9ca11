//! A TCP proxy on loopback that counts the bytes a client sends to the server and can cut the
//! connection after a given number of them: a dead network in the middle of an upload.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

pub struct CutProxy {
    pub port: u16,
    state: Arc<State>,
}

struct State {
    upstream: u16,
    /// Bytes forwarded client → server.
    sent_up: AtomicU64,
    /// Cut every connection once `sent_up` reaches this (u64::MAX: never). One-shot: after a cut
    /// the proxy forwards freely again, as a network that came back.
    cut_at: AtomicU64,
    cuts: AtomicU64,
    stop: AtomicBool,
}

impl CutProxy {
    /// A proxy to `127.0.0.1:upstream` on a free port.
    pub fn start(upstream: u16) -> CutProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(State {
            upstream,
            sent_up: AtomicU64::new(0),
            cut_at: AtomicU64::new(u64::MAX),
            cuts: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let s = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = conn else { continue };
                let s = s.clone();
                std::thread::spawn(move || pump_connection(client, s));
            }
        });
        CutProxy { port, state }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Cuts the connection once `more` further bytes went to the server.
    pub fn cut_after(&self, more: u64) {
        let now = self.state.sent_up.load(Ordering::SeqCst);
        self.state.cut_at.store(now + more, Ordering::SeqCst);
    }

    /// Bytes the client sent to the server through the proxy so far (headers included).
    pub fn sent_up(&self) -> u64 {
        self.state.sent_up.load(Ordering::SeqCst)
    }

    pub fn cuts(&self) -> u64 {
        self.state.cuts.load(Ordering::SeqCst)
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn pump_connection(client: TcpStream, s: Arc<State>) {
    let Ok(server) = TcpStream::connect(("127.0.0.1", s.upstream)) else {
        return;
    };
    let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    // Server → client: plain copy.
    let down = std::thread::spawn(move || {
        let (mut from, mut to) = (s2, c2);
        let mut buf = [0u8; 16 * 1024];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 || to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Both);
    });
    // Client → server: counted, and cut at the threshold.
    let (mut from, mut to) = (client, server);
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let before = s.sent_up.load(Ordering::SeqCst);
        let cut_at = s.cut_at.load(Ordering::SeqCst);
        let allowed = cut_at.saturating_sub(before).min(n as u64) as usize;
        if allowed > 0 && to.write_all(&buf[..allowed]).is_err() {
            break;
        }
        s.sent_up.fetch_add(allowed as u64, Ordering::SeqCst);
        if allowed < n {
            // The network dies: both sides see the connection go.
            s.cut_at.store(u64::MAX, Ordering::SeqCst);
            s.cuts.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(50));
            let _ = to.shutdown(Shutdown::Both);
            let _ = from.shutdown(Shutdown::Both);
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
    let _ = down.join();
}
