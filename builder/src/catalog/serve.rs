//! `vbuild catalog serve DIR`: the catalog's static files over HTTPS, TLS
//! 1.3 only (incus refuses plain HTTP and TLS 1.2 for simplestreams).
//!
//! GET and HEAD of regular files only. The request path is split on `/`
//! (so lxc-download's `//meta/1.0/index-system` works), `..` is refused
//! outright, hidden names (`.vbuild-add.*`, the lock) are not served, and
//! every file is opened with `openat2(RESOLVE_IN_ROOT)` under DIR, so a
//! symlink in the catalog can never reach outside it. Ctrl-C or SIGTERM
//! stops the server at once.

use super::CatalogError;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use vbuild_kernel::fsroot::Root;

/// Where the TLS certificate and key come from.
#[derive(Debug, Clone)]
pub enum Tls {
    /// Given files (PEM).
    Files {
        /// Certificate chain.
        cert: PathBuf,
        /// Private key.
        key: PathBuf,
    },
    /// A self-signed certificate kept in this directory (made once).
    SelfSigned(PathBuf),
}

/// What the server listens with, for the CLI to print before it serves.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Listening {
    /// The bound address (the port chosen when 0 was asked for).
    pub address: SocketAddr,
    /// The certificate clients must trust.
    pub cert: PathBuf,
    /// Whether vbuild made it (self-signed).
    pub self_signed: bool,
    /// The catalog served.
    pub dir: PathBuf,
}

/// The self-signed certificate in `dir` (`cert.pem`, `key.pem`), made on
/// first use for `localhost`, 127.0.0.1, ::1 and `extra` names.
pub fn self_signed(dir: &Path, extra: &[String]) -> Result<(PathBuf, PathBuf), CatalogError> {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    if cert.is_file() && key.is_file() {
        return Ok((cert, key));
    }
    std::fs::create_dir_all(dir).map_err(|e| CatalogError::io(dir, e))?;
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    for n in extra {
        if !names.contains(n) {
            names.push(n.clone());
        }
    }
    let made = rcgen::generate_simple_self_signed(names)
        .map_err(|e| CatalogError(format!("cannot make a self-signed certificate: {e}")))?;
    let key_tmp = crate::image::TempOutput::new(crate::image::temp_sibling(&key));
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = File::options()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(key_tmp.path())
            .map_err(|e| CatalogError::io(key_tmp.path(), e))?;
        f.write_all(made.key_pair.serialize_pem().as_bytes())
            .map_err(|e| CatalogError::io(key_tmp.path(), e))?;
    }
    key_tmp
        .commit(&key)
        .map_err(|e| CatalogError::io(&key, e))?;
    super::write_atomic(&cert, made.cert.pem().as_bytes())?;
    Ok((cert, key))
}

/// A rustls server configuration: TLS 1.3 only, the given chain and key.
pub fn server_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, CatalogError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            CatalogError(format!(
                "--cert {}: {e} (give a PEM certificate)",
                cert.display()
            ))
        })?;
    if chain.is_empty() {
        return Err(CatalogError(format!(
            "--cert {}: holds no certificate (give a PEM file with BEGIN CERTIFICATE)",
            cert.display()
        )));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        CatalogError(format!(
            "--key {}: {e} (give a PEM private key)",
            key.display()
        ))
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| CatalogError(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| {
            CatalogError(format!(
                "--cert {} / --key {}: {e} (the key must belong to the certificate)",
                cert.display(),
                key.display()
            ))
        })
}

/// Binds `listen` and serves `dir` until Ctrl-C or SIGTERM; `ready` is told
/// the address and certificate first.
pub fn serve(
    dir: &Path,
    listen: SocketAddr,
    tls: &Tls,
    ready: impl FnOnce(&Listening),
) -> Result<(), CatalogError> {
    // A client that vanishes mid-download must cost its connection, not the
    // server: main() restores SIGPIPE's default (death) for the CLI's pipes.
    // SAFETY: setting a signal's disposition to ignore; no handler runs.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let root = Arc::new(Root::open(dir).map_err(|e| {
        CatalogError(format!(
            "{}: {e} (give the catalog directory)",
            dir.display()
        ))
    })?);
    if !dir.is_dir() {
        return Err(CatalogError(format!("{}: not a directory", dir.display())));
    }
    let (cert, key, self_signed) = match tls {
        Tls::Files { cert, key } => (cert.clone(), key.clone(), false),
        Tls::SelfSigned(d) => {
            let (c, k) = self_signed(d, &[listen.ip().to_string()])?;
            (c, k, true)
        }
    };
    let config = Arc::new(server_config(&cert, &key)?);
    let listener = TcpListener::bind(listen).map_err(|e| {
        CatalogError(format!(
            "--listen {listen}: {e} (pick a free port, or 127.0.0.1:0 for any)"
        ))
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|e| CatalogError(format!("--listen {listen}: {e}")))?;
    let address = listener
        .local_addr()
        .map_err(|e| CatalogError(format!("--listen {listen}: {e}")))?;
    ready(&Listening {
        address,
        cert,
        self_signed,
        dir: dir.to_path_buf(),
    });
    while !crate::guests::interrupted() {
        let mut pfd = libc::pollfd {
            fd: listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut pfd, 1, 200) };
        if n <= 0 {
            continue;
        }
        match listener.accept() {
            Ok((stream, _)) => {
                let root = Arc::clone(&root);
                let config = Arc::clone(&config);
                std::thread::spawn(move || {
                    let _ = connection(stream, config, &root);
                });
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    Ok(())
}

/// One client: requests answered in turn until it closes or asks to.
fn connection(stream: TcpStream, config: Arc<rustls::ServerConfig>, root: &Root) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_write_timeout(Some(Duration::from_secs(60)))?;
    let conn = rustls::ServerConnection::new(config).map_err(io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, stream);
    let mut buf = Vec::new();
    loop {
        let Some(head) = read_head(&mut tls, &mut buf)? else {
            return Ok(());
        };
        let keep = respond(&mut tls, &head, root)?;
        tls.flush()?;
        if !keep {
            tls.conn.send_close_notify();
            let _ = tls.flush();
            return Ok(());
        }
    }
}

/// Reads one request head (up to the blank line); `None` at a clean end.
fn read_head<S: Read>(s: &mut S, buf: &mut Vec<u8>) -> io::Result<Option<String>> {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end + 4);
            return Ok(Some(head));
        }
        if buf.len() > 16 << 10 {
            return Err(io::Error::other("request head too long"));
        }
        let n = match s.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The file a request path names inside the catalog, or why not.
pub fn request_path(target: &str) -> Result<PathBuf, u16> {
    let path = target.split(['?', '#']).next().unwrap_or("");
    if !path.starts_with('/') {
        return Err(400);
    }
    let decoded = percent_decode(path).ok_or(400u16)?;
    let mut out = PathBuf::new();
    for part in decoded.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err(403),
            p if p.starts_with(b".") => return Err(404),
            p if p.contains(&0) => return Err(400),
            p => out.push(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(p)),
        }
    }
    if out.as_os_str().is_empty() {
        return Err(404);
    }
    Ok(out)
}

fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

fn content_type(p: &Path) -> &'static str {
    match p.extension().and_then(|e| e.to_str()) {
        Some("json") => "application/json",
        Some("asc") => "application/pgp-signature",
        Some("xz") => "application/x-xz",
        Some("squashfs") => "application/octet-stream",
        _ if p.starts_with("meta") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Answers one request; returns whether the connection stays open.
fn respond<S: Write>(s: &mut S, head: &str, root: &Root) -> io::Result<bool> {
    let mut lines = head.split("\r\n");
    let line = lines.next().unwrap_or("");
    let mut parts = line.split(' ');
    let (method, target, version) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    let close_asked = lines.any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("connection") && v.trim().eq_ignore_ascii_case("close")
        })
    });
    let keep = version == "HTTP/1.1" && !close_asked;
    if !version.starts_with("HTTP/1.") {
        status(s, 400, "Bad Request", false)?;
        return Ok(false);
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => {
            status(s, 405, "Method Not Allowed", keep)?;
            return Ok(keep);
        }
    };
    let rel = match request_path(target) {
        Ok(r) => r,
        Err(400) => {
            status(s, 400, "Bad Request", keep)?;
            return Ok(keep);
        }
        Err(403) => {
            status(s, 403, "Forbidden", keep)?;
            return Ok(keep);
        }
        Err(_) => {
            status(s, 404, "Not Found", keep)?;
            return Ok(keep);
        }
    };
    let file = root
        .open_at(&rel, libc::O_RDONLY | libc::O_CLOEXEC, 0, true)
        .ok()
        .map(File::from)
        .filter(|f| f.metadata().is_ok_and(|m| m.is_file()));
    let Some(mut file) = file else {
        status(s, 404, "Not Found", keep)?;
        return Ok(keep);
    };
    let len = file.metadata()?.len();
    write!(
        s,
        "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: {len}\r\nConnection: {}\r\n\r\n",
        content_type(&rel),
        if keep { "keep-alive" } else { "close" }
    )?;
    if !head_only {
        let sent = io::copy(&mut (&mut file).take(len), s)?;
        if sent != len {
            // The file shrank while sent: the client must not take it as whole.
            return Err(io::Error::other("file changed while sent"));
        }
    }
    Ok(keep)
}

fn status<S: Write>(s: &mut S, code: u16, text: &str, keep: bool) -> io::Result<()> {
    let body = format!("{code} {text}\n");
    write!(
        s,
        "HTTP/1.1 {code} {text}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n{body}",
        body.len(),
        if keep { "keep-alive" } else { "close" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_paths_stay_inside_the_catalog() {
        assert_eq!(
            request_path("//meta/1.0/index-system").unwrap(),
            PathBuf::from("meta/1.0/index-system")
        );
        assert_eq!(
            request_path("/streams/v1/index.json?x=1").unwrap(),
            PathBuf::from("streams/v1/index.json")
        );
        assert_eq!(request_path("/a/../../etc/passwd"), Err(403));
        assert_eq!(request_path("/a/%2e%2e/etc/passwd"), Err(403));
        assert_eq!(request_path("/.vbuild-catalog.lock"), Err(404));
        assert_eq!(request_path("/a%00b"), Err(400));
        assert_eq!(request_path("http://x/"), Err(400));
        assert_eq!(request_path("/"), Err(404));
    }
}
