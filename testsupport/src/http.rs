//! A tiny HTTP/1.1 file server on loopback for hermetic tests: serves a
//! directory with GET, HEAD and `Range`, counts requests per path (so a test
//! can prove a cached item caused no request), can be told to fail or cut
//! answers short, and stops when dropped.
//!
//! Uses only `std`, so every crate's tests can use it.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A running server; dropping it stops the server and joins its threads.
pub struct TestServer {
    addr: std::net::SocketAddr,
    state: Arc<State>,
    accept: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct State {
    root: PathBuf,
    stop: AtomicBool,
    counts: Mutex<HashMap<String, usize>>,
    partials: Mutex<HashMap<String, usize>>,
    faults: Mutex<HashMap<String, Vec<Fault>>>,
    ranges: AtomicBool,
    delay: Mutex<Duration>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

/// A misbehaviour queued for one path, used once per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and an empty body.
    Status(u16),
    /// Announce the full length but close the connection after this many body bytes.
    CutAfter(usize),
}

impl TestServer {
    /// Serves files under `root` on 127.0.0.1 at a free port.
    pub fn serve(root: impl AsRef<Path>) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(State {
            root: root.as_ref().to_path_buf(),
            ranges: AtomicBool::new(true),
            ..State::default()
        });
        let accept_state = Arc::clone(&state);
        let accept = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if accept_state.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let state = Arc::clone(&accept_state);
                let worker = std::thread::spawn(move || {
                    let _ = handle(&state, stream);
                });
                accept_state.workers.lock().unwrap().push(worker);
            }
        });
        TestServer {
            addr,
            state,
            accept: Some(accept),
        }
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The loopback address the server listens on.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// How many requests asked for `path` (e.g. `/dists/x/InRelease`).
    pub fn requests(&self, path: &str) -> usize {
        let counts = self.state.counts.lock().unwrap();
        counts.get(path).copied().unwrap_or(0)
    }

    /// How many answers to `path` were `206 Partial Content` (resumed downloads).
    pub fn partial_answers(&self, path: &str) -> usize {
        let partials = self.state.partials.lock().unwrap();
        partials.get(path).copied().unwrap_or(0)
    }

    /// How many requests arrived in all.
    pub fn total_requests(&self) -> usize {
        self.state.counts.lock().unwrap().values().sum()
    }

    /// Every requested path with its count, sorted, for assertion messages.
    pub fn request_log(&self) -> Vec<(String, usize)> {
        let mut log: Vec<_> = self
            .state
            .counts
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        log.sort();
        log
    }

    /// Queues `fault` for the next request of `path` (several queue up in order).
    pub fn inject(&self, path: &str, fault: Fault) {
        let mut faults = self.state.faults.lock().unwrap();
        faults.entry(path.to_string()).or_default().push(fault);
    }

    /// Turns `Range` support off (answers 200 with the whole file) or on.
    pub fn set_ranges(&self, enabled: bool) {
        self.state.ranges.store(enabled, Ordering::SeqCst);
    }

    /// Sleeps this long before each answer, so that concurrent clients overlap.
    pub fn set_delay(&self, delay: Duration) {
        *self.state.delay.lock().unwrap() = delay;
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        let workers: Vec<_> = self.state.workers.lock().unwrap().drain(..).collect();
        for worker in workers {
            let _ = worker.join();
        }
    }
}

fn handle(state: &State, stream: TcpStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("/").to_string();
    let mut range = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.trim().eq_ignore_ascii_case("range") {
                range = parse_range(value.trim());
            }
        }
    }
    if state.stop.load(Ordering::SeqCst) {
        return Ok(());
    }
    let path = target.split('?').next().unwrap_or("/").to_string();
    *state
        .counts
        .lock()
        .unwrap()
        .entry(path.clone())
        .or_default() += 1;
    let delay = *state.delay.lock().unwrap();
    if !delay.is_zero() {
        std::thread::sleep(delay);
    }
    let fault = {
        let mut faults = state.faults.lock().unwrap();
        faults
            .get_mut(&path)
            .and_then(|queue| (!queue.is_empty()).then(|| queue.remove(0)))
    };
    let mut out = stream;
    if let Some(Fault::Status(code)) = fault {
        return respond(&mut out, code, &[], None, method == "HEAD");
    }
    if method != "GET" && method != "HEAD" {
        return respond(&mut out, 405, &[], None, false);
    }
    let Some(file) = resolve(&state.root, &path) else {
        return respond(&mut out, 404, &[], None, method == "HEAD");
    };
    let body = std::fs::read(file)?;
    let len = body.len() as u64;
    let (status, slice, content_range) = match range {
        Some((start, end)) if state.ranges.load(Ordering::SeqCst) => {
            let end = end
                .unwrap_or(len.saturating_sub(1))
                .min(len.saturating_sub(1));
            if start >= len || start > end {
                let cr = format!("bytes */{len}");
                return respond(&mut out, 416, &[], Some(cr), method == "HEAD");
            }
            let cr = format!("bytes {start}-{end}/{len}");
            *state
                .partials
                .lock()
                .unwrap()
                .entry(path.clone())
                .or_default() += 1;
            (206, &body[start as usize..=end as usize], Some(cr))
        }
        _ => (200, &body[..], None),
    };
    if let Some(Fault::CutAfter(n)) = fault {
        let head = header(status, slice.len(), content_range);
        out.write_all(head.as_bytes())?;
        out.write_all(&slice[..n.min(slice.len())])?;
        out.flush()?;
        return out.shutdown(Shutdown::Both);
    }
    respond(&mut out, status, slice, content_range, method == "HEAD")
}

fn header(status: u16, len: usize, content_range: Option<String>) -> String {
    let reason = match status {
        200 => "OK",
        206 => "Partial Content",
        404 => "Not Found",
        405 => "Method Not Allowed",
        416 => "Range Not Satisfiable",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Length: {len}\r\nAccept-Ranges: bytes\r\nConnection: close\r\n"
    );
    if let Some(cr) = content_range {
        head.push_str(&format!("Content-Range: {cr}\r\n"));
    }
    head.push_str("\r\n");
    head
}

fn respond(
    out: &mut TcpStream,
    status: u16,
    body: &[u8],
    content_range: Option<String>,
    head_only: bool,
) -> std::io::Result<()> {
    out.write_all(header(status, body.len(), content_range).as_bytes())?;
    if !head_only {
        out.write_all(body)?;
    }
    out.flush()?;
    // Drain what the client may still send so closing does not reset the answer.
    let _ = out.shutdown(Shutdown::Write);
    let mut sink = [0u8; 512];
    let _ = out.set_read_timeout(Some(Duration::from_millis(200)));
    while matches!(out.read(&mut sink), Ok(n) if n > 0) {}
    Ok(())
}

/// `bytes=10-` or `bytes=10-20` (one range only).
fn parse_range(value: &str) -> Option<(u64, Option<u64>)> {
    let spec = value.strip_prefix("bytes=")?;
    let (start, end) = spec.split_once('-')?;
    let start = start.trim().parse().ok()?;
    let end = match end.trim() {
        "" => None,
        e => Some(e.parse().ok()?),
    };
    Some((start, end))
}

/// Maps a URL path to a file under `root`, refusing `..`.
fn resolve(root: &Path, path: &str) -> Option<PathBuf> {
    let mut file = root.to_path_buf();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        if part == ".." || part == "." {
            return None;
        }
        file.push(part);
    }
    file.is_file().then_some(file)
}
