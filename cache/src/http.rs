//! The transport side: one shared blocking client for `http://` and
//! `https://` (rustls, no OpenSSL; the system's and the webpki roots), a
//! local-directory reader for `file://` mirrors, and sorting failures into
//! "try again" and "give up". Whatever the scheme, the bytes go through the
//! same size and sha256 checks and into the same store.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::Duration;

use reqwest::blocking::Client;
use reqwest::header::{CONTENT_RANGE, RANGE};
use reqwest::StatusCode;

use crate::{Cache, CacheError};

/// The outcome of one attempt that did not succeed.
pub(crate) enum Failure {
    /// Worth another attempt (connection refused/reset, timeout, 5xx, 416).
    Transient(String),
    /// Final: retrying will not help.
    Fatal(CacheError),
    /// The server cannot resume from our offset: start over from byte 0.
    Restart,
}

impl From<CacheError> for Failure {
    fn from(e: CacheError) -> Self {
        Failure::Fatal(e)
    }
}

/// A body being received: from the network or from a local file.
pub(crate) struct Body {
    reader: Box<dyn Read + Send>,
    /// Bytes the sender announced (Content-Length, or the file's rest).
    pub length: Option<u64>,
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.reader.read(buf)
    }
}

/// What a (possibly ranged) GET answered.
pub(crate) enum Answer {
    /// The whole body follows.
    Full(Body),
    /// The body continues from the offset asked for.
    Partial(Body),
}

/// The local path a `file://` URL names (`file:///srv/mirror/...`).
fn file_url_path(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("file://")?;
    // Only local files: `file:///path` or `file://localhost/path`.
    let path = rest.strip_prefix("localhost").unwrap_or(rest);
    path.starts_with('/').then(|| PathBuf::from(path))
}

/// The proxy reqwest will use for `url`, from the environment, named as
/// the variable it came from (`http://proxy:3128 (HTTPS_PROXY)`), so a
/// failure can say it was the proxy's.
pub(crate) fn proxy_for(url: &str) -> Option<String> {
    let host = url
        .split_once("://")
        .map(|(_, rest)| rest.split(['/', ':']).next().unwrap_or(""))
        .unwrap_or("");
    let env = |name: &str| {
        [name.to_ascii_lowercase(), name.to_string()]
            .into_iter()
            .find_map(|n| {
                std::env::var(&n)
                    .ok()
                    .filter(|v| !v.is_empty())
                    .map(|v| (n, v))
            })
    };
    if let Some((_, no)) = env("NO_PROXY") {
        let bypass = no.split(',').map(str::trim).any(|pat| {
            let pat = pat.trim_start_matches('.');
            pat == "*" || (!pat.is_empty() && (host == pat || host.ends_with(&format!(".{pat}"))))
        });
        if bypass {
            return None;
        }
    }
    let scheme_var = if url.starts_with("https://") {
        "HTTPS_PROXY"
    } else if url.starts_with("http://") {
        "HTTP_PROXY"
    } else {
        return None;
    };
    env(scheme_var)
        .or_else(|| env("ALL_PROXY"))
        .map(|(var, value)| format!("{value} ({var})"))
}

impl Cache {
    fn client(&self) -> Result<&Client, CacheError> {
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        // reqwest honours HTTP(S)_PROXY, ALL_PROXY and NO_PROXY itself,
        // unless a proxy is set explicitly.
        let mut builder = Client::builder();
        if let Some(p) = &self.proxy {
            let proxy = reqwest::Proxy::all(p).map_err(|e| CacheError::Proxy {
                url: String::new(),
                proxy: format!("{p} (--proxy)"),
                message: format!("not a proxy URL: {}", chain(&e)),
            })?;
            builder = builder.no_proxy().proxy(proxy);
        }
        let client = builder
            .use_rustls_tls()
            .user_agent(concat!("vbuild/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(15))
            // Applies to each read: a stalled mirror fails, a slow one does not.
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| CacheError::Network {
                url: String::new(),
                message: chain(&e),
                attempts: 0,
            })?;
        Ok(self.client.get_or_init(|| client))
    }

    /// Refuses URLs this build cannot fetch, before any attempt.
    pub(crate) fn check_url(&self, url: &str) -> Result<(), CacheError> {
        let ok = url.starts_with("http://")
            || url.starts_with("https://")
            || file_url_path(url).is_some();
        if ok {
            Ok(())
        } else {
            Err(CacheError::UnsupportedUrl {
                url: url.to_string(),
            })
        }
    }

    /// One GET, from byte `offset` on when it is not 0.
    pub(crate) fn get(&self, url: &str, offset: u64) -> Result<Answer, Failure> {
        if let Some(path) = file_url_path(url) {
            return get_file(url, path, offset);
        }
        let proxy = match &self.proxy {
            Some(p) if url.starts_with("http") => Some(format!("{p} (--proxy)")),
            _ => proxy_for(url),
        };
        let mut request = self.client()?.get(url);
        if offset > 0 {
            request = request.header(RANGE, format!("bytes={offset}-"));
        }
        let response = request.send().map_err(|e| {
            let message = chain(&e);
            if let Some(problem) = certificate_problem(&message) {
                return Failure::Fatal(CacheError::Certificate {
                    url: url.to_string(),
                    problem,
                });
            }
            Failure::Transient(match &proxy {
                Some(p) => format!("through the proxy {p}: {message}"),
                None => message,
            })
        })?;
        let status = response.status();
        let length = response.content_length();
        let response_range_start = response
            .headers()
            .get(CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(range_start);
        let body = Body {
            reader: Box::new(response),
            length,
        };
        match status {
            StatusCode::PROXY_AUTHENTICATION_REQUIRED => Err(Failure::Fatal(CacheError::Proxy {
                url: url.to_string(),
                proxy: proxy.unwrap_or_else(|| "(none configured)".into()),
                message: "it answered HTTP 407 (proxy authentication required); put the credentials in the proxy URL (http://user:password@host:port)".into(),
            })),
            StatusCode::OK => Ok(Answer::Full(body)),
            StatusCode::PARTIAL_CONTENT if offset > 0 => {
                let start = response_range_start;
                if start == Some(offset) {
                    Ok(Answer::Partial(body))
                } else {
                    Err(Failure::Transient(format!(
                        "the server resumed at the wrong offset (asked {offset}, got {start:?})"
                    )))
                }
            }
            StatusCode::NOT_FOUND => Err(Failure::Fatal(CacheError::NotFound {
                url: url.to_string(),
            })),
            StatusCode::RANGE_NOT_SATISFIABLE if offset > 0 => Err(Failure::Restart),
            s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => {
                Err(Failure::Transient(match &proxy {
                    // 502/503/504 from a proxy is the proxy failing to reach the mirror.
                    Some(p) => format!("the server or the proxy {p} answered HTTP {}", s.as_u16()),
                    None => format!("the server answered HTTP {}", s.as_u16()),
                }))
            }
            s => Err(Failure::Fatal(CacheError::Http {
                url: url.to_string(),
                status: s.as_u16(),
            })),
        }
    }

    /// Sleeps before attempt number `attempt` (1-based retries).
    pub(crate) fn backoff(&self, attempt: u32) {
        let factor = 1u32 << attempt.saturating_sub(1).min(6);
        std::thread::sleep(self.first_delay * factor);
    }
}

/// A `file://` GET: the file from `offset` on. A missing file is final (a
/// local mirror does not heal by retrying); so is any other read error.
fn get_file(url: &str, path: PathBuf, offset: u64) -> Result<Answer, Failure> {
    let mut file = File::open(&path).map_err(|e| {
        Failure::Fatal(if e.kind() == std::io::ErrorKind::NotFound {
            CacheError::NotInLocalMirror {
                url: url.to_string(),
                path: path.clone(),
            }
        } else {
            CacheError::io(&path, e)
        })
    })?;
    let meta = file.metadata().map_err(|e| CacheError::io(&path, e))?;
    if !meta.is_file() {
        return Err(Failure::Fatal(CacheError::NotInLocalMirror {
            url: url.to_string(),
            path,
        }));
    }
    let len = meta.len();
    if offset > len {
        return Err(Failure::Restart);
    }
    if offset > 0 {
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| CacheError::io(&path, e))?;
    }
    let body = Body {
        reader: Box::new(file),
        length: Some(len - offset),
    };
    Ok(if offset > 0 {
        Answer::Partial(body)
    } else {
        Answer::Full(body)
    })
}

/// The certificate complaint in a connection error's text, if that is what
/// it was (rustls says "invalid peer certificate: UnknownIssuer" and the
/// like). A certificate does not fix itself, so the caller stops at once.
fn certificate_problem(message: &str) -> Option<String> {
    let at = message.find("invalid peer certificate")?;
    let problem = message[at..]
        .split(": ")
        .take(2)
        .collect::<Vec<_>>()
        .join(": ");
    Some(problem)
}

/// `bytes 100-199/200` -> 100.
fn range_start(value: &str) -> Option<u64> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (start, _) = rest.split_once('-')?;
    start.trim().parse().ok()
}

/// An error and its causes on one line (reqwest's own message is terse).
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{certificate_problem, file_url_path, proxy_for, range_start};
    use std::path::PathBuf;

    #[test]
    fn file_urls_name_local_paths_only() {
        assert_eq!(
            file_url_path("file:///srv/mirror/dists/x"),
            Some(PathBuf::from("/srv/mirror/dists/x"))
        );
        assert_eq!(
            file_url_path("file://localhost/srv/m"),
            Some(PathBuf::from("/srv/m"))
        );
        assert_eq!(file_url_path("file://otherhost/srv/m"), None);
        assert_eq!(file_url_path("file:relative"), None);
        assert_eq!(file_url_path("http://x/"), None);
    }

    #[test]
    fn the_proxy_in_use_is_named_with_its_variable() {
        // One test touches the environment, so no other test races it.
        for v in [
            "http_proxy",
            "HTTP_PROXY",
            "https_proxy",
            "HTTPS_PROXY",
            "all_proxy",
            "ALL_PROXY",
            "no_proxy",
            "NO_PROXY",
        ] {
            std::env::remove_var(v);
        }
        assert_eq!(proxy_for("https://deb.debian.org/debian"), None);
        std::env::set_var("HTTPS_PROXY", "http://proxy.corp:3128");
        assert_eq!(
            proxy_for("https://deb.debian.org/debian").as_deref(),
            Some("http://proxy.corp:3128 (HTTPS_PROXY)")
        );
        assert_eq!(proxy_for("http://deb.debian.org/debian"), None);
        std::env::set_var("all_proxy", "socks5://s:1080");
        assert_eq!(
            proxy_for("http://deb.debian.org/debian").as_deref(),
            Some("socks5://s:1080 (all_proxy)")
        );
        std::env::set_var("NO_PROXY", ".debian.org,localhost");
        assert_eq!(proxy_for("https://deb.debian.org/debian"), None);
        assert!(proxy_for("https://mirror.example/debian").is_some());
        assert_eq!(proxy_for("file:///srv/mirror"), None);
        for v in ["HTTPS_PROXY", "all_proxy", "NO_PROXY"] {
            std::env::remove_var(v);
        }
    }

    #[test]
    fn a_refused_certificate_is_recognised_and_named() {
        assert_eq!(
            certificate_problem(
                "error sending request for url (https://127.0.0.1:1/x): client error (Connect): invalid peer certificate: UnknownIssuer"
            )
            .as_deref(),
            Some("invalid peer certificate: UnknownIssuer")
        );
        assert_eq!(certificate_problem("connection refused"), None);
    }

    #[test]
    fn content_range_start_is_parsed() {
        assert_eq!(range_start("bytes 100-199/200"), Some(100));
        assert_eq!(range_start("bytes 0-0/*"), Some(0));
        assert_eq!(range_start("items 1-2/3"), None);
    }
}
