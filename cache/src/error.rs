//! Every way the cache can fail, each message naming the file or URL and a fix.

use std::path::PathBuf;

/// A failed cache operation. Nothing partial is left in the store after any
/// of these (a half-downloaded file is deleted or stays out of `blobs/`).
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// A file or directory of the cache could not be read or written.
    #[error("cache: {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// What the kernel said.
        source: std::io::Error,
    },
    /// The caller passed something that is not a SHA-256 digest.
    #[error("\"{digest}\" is not a sha256 digest (expected 64 hex digits)")]
    BadDigest {
        /// The rejected value.
        digest: String,
    },
    /// The URL's scheme is not one the cache fetches.
    #[error("{url}: not an http://, https:// or file:/// URL; give the mirror as one of those")]
    UnsupportedUrl {
        /// The rejected URL.
        url: String,
    },
    /// A `file://` mirror lacks the file.
    #[error("{url}: {} does not exist in the local mirror (or is not a file); check the mirror directory and the release name", path.display())]
    NotInLocalMirror {
        /// The URL asked for.
        url: String,
        /// The local path it names.
        path: PathBuf,
    },
    /// The configured proxy refused the request.
    #[error("{url}: the proxy {proxy} refused: {message}")]
    Proxy {
        /// The URL requested.
        url: String,
        /// The proxy and the variable it came from.
        proxy: String,
        /// What it said.
        message: String,
    },
    /// The https mirror's certificate was not accepted. Retrying cannot
    /// help, so this is final at the first attempt.
    #[error("{url}: the mirror's TLS certificate was not accepted ({problem}); if the mirror uses a private CA, point SSL_CERT_FILE at a PEM file holding that CA")]
    Certificate {
        /// The URL requested.
        url: String,
        /// What the TLS library said about the certificate.
        problem: String,
    },
    /// The server answered 404.
    #[error("{url}: not found (HTTP 404); check the mirror URL and the release name")]
    NotFound {
        /// The URL that does not exist.
        url: String,
    },
    /// The server answered with an error status that retrying did not fix.
    #[error("{url}: the server answered HTTP {status}; check the mirror or try another one")]
    Http {
        /// The URL requested.
        url: String,
        /// The HTTP status code.
        status: u16,
    },
    /// The network failed on every attempt.
    #[error("{url}: {message} (gave up after {attempts} attempts); check the network or the mirror, or build --offline from a warm cache")]
    Network {
        /// The URL requested.
        url: String,
        /// The underlying error, with its causes.
        message: String,
        /// How many attempts were made.
        attempts: u32,
    },
    /// The content did not hash to what the signed index promised.
    #[error("{url}: sha256 mismatch: expected {expected}, got {actual}; the mirror may be syncing, retry later or use another mirror")]
    Checksum {
        /// The URL fetched.
        url: String,
        /// The digest the caller expected.
        expected: String,
        /// The digest of what arrived.
        actual: String,
    },
    /// The content did not have the size the signed index promised.
    #[error("{url}: size mismatch: expected {expected} bytes, got {actual}; the mirror may be syncing, retry later or use another mirror")]
    Size {
        /// The URL fetched.
        url: String,
        /// The size the caller expected.
        expected: u64,
        /// The size that arrived (or at least this many bytes).
        actual: u64,
    },
    /// A small download was larger than the caller allows.
    #[error("{url}: larger than {limit} bytes; this is not the file expected there, check the mirror URL")]
    TooLarge {
        /// The URL fetched.
        url: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// Offline mode and the item is not cached.
    #[error("offline: {what} is not in the cache {dir}; run once without --offline to fetch it")]
    Offline {
        /// What was needed (a URL, with its digest when known).
        what: String,
        /// The cache directory searched.
        dir: PathBuf,
    },
    /// Another download failed first and this one was stopped.
    #[error("download cancelled because another download failed")]
    Cancelled,
    /// `gc` could not get the cache to itself.
    #[error(
        "cache {dir} is in use by a running build; run `vbuild cache prune` again when it finishes"
    )]
    Busy {
        /// The cache directory.
        dir: PathBuf,
    },
}

impl CacheError {
    /// Wraps an I/O error with the path it happened on.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CacheError::Io {
            path: path.into(),
            source,
        }
    }
}
