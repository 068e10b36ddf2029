//! The HTTP side: one shared blocking client, requests, and sorting failures
//! into "try again" and "give up".

use std::time::Duration;

use reqwest::blocking::{Client, Response};
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

/// What a (possibly ranged) GET answered.
pub(crate) enum Answer {
    /// The whole body follows.
    Full(Response),
    /// The body continues from the offset asked for.
    Partial(Response),
}

impl Cache {
    fn client(&self) -> Result<&Client, CacheError> {
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        let client = Client::builder()
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
        if url.starts_with("http://") {
            Ok(())
        } else {
            Err(CacheError::UnsupportedUrl {
                url: url.to_string(),
            })
        }
    }

    /// One GET, from byte `offset` on when it is not 0.
    pub(crate) fn get(&self, url: &str, offset: u64) -> Result<Answer, Failure> {
        let mut request = self.client()?.get(url);
        if offset > 0 {
            request = request.header(RANGE, format!("bytes={offset}-"));
        }
        let response = request.send().map_err(|e| Failure::Transient(chain(&e)))?;
        let status = response.status();
        match status {
            StatusCode::OK => Ok(Answer::Full(response)),
            StatusCode::PARTIAL_CONTENT if offset > 0 => {
                let start = response
                    .headers()
                    .get(CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(range_start);
                if start == Some(offset) {
                    Ok(Answer::Partial(response))
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
            s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => Err(
                Failure::Transient(format!("the server answered HTTP {}", s.as_u16())),
            ),
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
    use super::range_start;

    #[test]
    fn content_range_start_is_parsed() {
        assert_eq!(range_start("bytes 100-199/200"), Some(100));
        assert_eq!(range_start("bytes 0-0/*"), Some(0));
        assert_eq!(range_start("items 1-2/3"), None);
    }
}
