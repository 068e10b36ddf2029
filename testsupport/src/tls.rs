//! An `https://` front for [`TestServer`]: a loopback TLS server whose
//! certificate is signed by a CA generated for this server alone, so a test
//! can build from an https mirror with that CA trusted (the client is given
//! [`TlsTestServer::ca_file`]) and see the build refused without it.
//!
//! Each TLS connection carries one request (the file server answers
//! `Connection: close`): it is read, passed to the plain server on loopback,
//! and its answer is sent back encrypted. Behind the `tls` feature, so only
//! the crates that test https pay for rustls and rcgen.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

use crate::http::TestServer;

/// A running https server; dropping it stops it and joins its threads.
pub struct TlsTestServer {
    plain: TestServer,
    addr: SocketAddr,
    ca_file: PathBuf,
    _ca_dir: TempDir,
    stop: Arc<AtomicBool>,
    workers: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: Option<JoinHandle<()>>,
}

/// A directory removed on drop (testsupport stays free of `tempfile`).
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh CA and a certificate for `127.0.0.1` and `localhost` it signed.
struct Certificates {
    ca_pem: String,
    server_der: CertificateDer<'static>,
    server_key: PrivateKeyDer<'static>,
}

fn generate() -> Certificates {
    let ca_key = KeyPair::generate().expect("generate the CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "vbuild test CA (throwaway)");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).expect("self-sign the CA");
    let issuer = Issuer::new(ca, ca_key);

    let key = KeyPair::generate().expect("generate the server key");
    let mut params =
        CertificateParams::new(vec!["localhost".to_string()]).expect("server parameters");
    params
        .subject_alt_names
        .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
    params
        .distinguished_name
        .push(DnType::CommonName, "vbuild test mirror");
    let cert = params
        .signed_by(&key, &issuer)
        .expect("sign the server certificate");
    Certificates {
        ca_pem: ca_cert.pem(),
        server_der: cert.der().clone(),
        server_key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    }
}

impl TlsTestServer {
    /// Serves files under `root` over https on 127.0.0.1 at a free port.
    pub fn serve(root: impl AsRef<Path>) -> TlsTestServer {
        let certs = generate();
        let ca_dir = std::env::temp_dir().join(format!(
            "vbuild-test-ca-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos()
        ));
        std::fs::create_dir_all(&ca_dir).expect("create the CA directory");
        let ca_dir = TempDir(ca_dir);
        let ca_file = ca_dir.0.join("ca.pem");
        std::fs::write(&ca_file, &certs.ca_pem).expect("write the CA certificate");

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(vec![certs.server_der], certs.server_key)
            .expect("server certificate");
        let config = Arc::new(config);

        let plain = TestServer::serve(root);
        let backend = plain.addr();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let stop = Arc::new(AtomicBool::new(false));
        let workers = Arc::new(Mutex::new(Vec::new()));
        let (accept_stop, accept_workers) = (Arc::clone(&stop), Arc::clone(&workers));
        let accept = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if accept_stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let config = Arc::clone(&config);
                let worker = std::thread::spawn(move || {
                    let _ = relay(config, stream, backend);
                });
                accept_workers.lock().unwrap().push(worker);
            }
        });
        TlsTestServer {
            plain,
            addr,
            ca_file,
            _ca_dir: ca_dir,
            stop,
            workers,
            accept: Some(accept),
        }
    }

    /// `https://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// A PEM file holding the CA that signed this server's certificate (and
    /// nothing else): what `SSL_CERT_FILE` points at to trust it.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// The plain server behind the TLS front: its request counts and faults.
    pub fn files(&self) -> &TestServer {
        &self.plain
    }
}

impl Drop for TlsTestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        let workers: Vec<_> = self.workers.lock().unwrap().drain(..).collect();
        for worker in workers {
            let _ = worker.join();
        }
    }
}

/// One connection: handshake, read the request head, pass it to the plain
/// server, send its whole answer back, close with a close_notify.
fn relay(config: Arc<ServerConfig>, stream: TcpStream, backend: SocketAddr) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let conn = ServerConnection::new(config).map_err(std::io::Error::other)?;
    let mut tls = StreamOwned::new(conn, stream);
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tls.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        request.extend_from_slice(&buf[..n]);
    }
    let mut plain = TcpStream::connect(backend)?;
    plain.write_all(&request)?;
    let mut answer = Vec::new();
    plain.read_to_end(&mut answer)?;
    tls.write_all(&answer)?;
    tls.conn.send_close_notify();
    tls.flush()?;
    Ok(())
}
