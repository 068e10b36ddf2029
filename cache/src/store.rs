//! The store's layout on disk and the `Cache` handle callers keep.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::CacheError;

/// Parallel downloads when the caller has no opinion: enough to hide the
/// latency of one mirror without hammering it.
pub const DEFAULT_JOBS: usize = 6;

/// One blob to fetch: where from, and the size and SHA-256 a signed index
/// promised for it. The digest is the blob's name in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetch {
    /// Full http:// URL.
    pub url: String,
    /// Lowercase or uppercase hex SHA-256 of the content.
    pub sha256: String,
    /// Size in bytes, when the index gives it (checked before the hash).
    pub size: Option<u64>,
}

/// A handle on a cache directory. Cheap to share between threads (`&Cache`).
#[derive(Debug)]
pub struct Cache {
    dir: PathBuf,
    offline: bool,
    pub(crate) attempts: u32,
    pub(crate) first_delay: Duration,
    pub(crate) client: OnceLock<reqwest::blocking::Client>,
    /// The proxy every http(s) download goes through (`--proxy`), instead
    /// of the environment's.
    pub(crate) proxy: Option<String>,
}

impl Cache {
    /// Opens (creating if needed) the cache at `dir`.
    pub fn open(dir: impl AsRef<Path>) -> Result<Cache, CacheError> {
        let dir = dir.as_ref().to_path_buf();
        for sub in ["blobs/sha256", "tmp", "index"] {
            let path = dir.join(sub);
            fs::create_dir_all(&path).map_err(|e| CacheError::io(&path, e))?;
        }
        Ok(Cache {
            dir,
            offline: false,
            attempts: 4,
            first_delay: Duration::from_millis(250),
            client: OnceLock::new(),
            proxy: None,
        })
    }

    /// Offline mode: never touch the network; anything not cached is an
    /// [`CacheError::Offline`] naming what is missing.
    pub fn set_offline(&mut self, offline: bool) {
        self.offline = offline;
    }

    /// Sends every http:// and https:// download through the proxy at
    /// `url` (`http://HOST:PORT`), ignoring HTTP(S)_PROXY, ALL_PROXY and
    /// NO_PROXY; failures name it as `URL (--proxy)`. Call before the
    /// first download.
    pub fn set_proxy(&mut self, url: Option<String>) {
        self.proxy = url;
        self.client = OnceLock::new();
    }

    /// Whether [`Cache::set_offline`] is on.
    pub fn is_offline(&self) -> bool {
        self.offline
    }

    /// How often to try a download (at least 1) and the first backoff delay
    /// (doubled after each failure). Tests shorten the delay.
    pub fn set_retry(&mut self, attempts: u32, first_delay: Duration) {
        self.attempts = attempts.max(1);
        self.first_delay = first_delay;
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The stored blob with this SHA-256, if present. Invalid digests are
    /// simply absent.
    pub fn blob(&self, sha256: &str) -> Option<PathBuf> {
        let digest = normalize_digest(sha256).ok()?;
        let path = self.blob_path(&digest);
        path.is_file().then_some(path)
    }

    /// Stores `bytes` (for content the caller produced or verified itself,
    /// e.g. a decompressed index) and returns its SHA-256 and path.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<(String, PathBuf), CacheError> {
        let digest = hex::encode(Sha256::digest(bytes));
        let dest = self.blob_path(&digest);
        if dest.is_file() {
            return Ok((digest, dest));
        }
        let tmp = self.write_temp(bytes)?;
        self.publish(&tmp, &digest)?;
        Ok((digest, dest))
    }

    /// Where a blob with this (normalised) digest lives.
    pub(crate) fn blob_path(&self, digest: &str) -> PathBuf {
        self.dir
            .join("blobs/sha256")
            .join(&digest[..2])
            .join(digest)
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.dir.join("tmp")
    }

    pub(crate) fn index_dir(&self) -> PathBuf {
        self.dir.join("index")
    }

    /// The store-wide lock file: fetchers share it, gc takes it alone.
    pub(crate) fn store_lock_path(&self) -> PathBuf {
        self.dir.join("lock")
    }

    /// Writes `bytes` to a fresh, uniquely named file in `tmp/`, synced.
    pub(crate) fn write_temp(&self, bytes: &[u8]) -> Result<PathBuf, CacheError> {
        let tmp_dir = self.tmp_dir();
        let mut file = tempfile::Builder::new()
            .prefix("put-")
            .suffix(".tmp")
            .tempfile_in(&tmp_dir)
            .map_err(|e| CacheError::io(&tmp_dir, e))?;
        file.write_all(bytes)
            .and_then(|_| file.as_file().sync_data())
            .map_err(|e| CacheError::io(file.path(), e))?;
        let (_, path) = file.keep().map_err(|e| CacheError::io(&tmp_dir, e.error))?;
        Ok(path)
    }

    /// Moves a verified file into the store under `digest`. The rename is
    /// atomic: readers see nothing or the whole blob, and when two writers
    /// race the second rename replaces identical content.
    pub(crate) fn publish(&self, from: &Path, digest: &str) -> Result<PathBuf, CacheError> {
        let dest = self.blob_path(digest);
        let parent = dest.parent().expect("blob path has a parent");
        fs::create_dir_all(parent).map_err(|e| CacheError::io(parent, e))?;
        if let Err(e) = fs::rename(from, &dest) {
            let _ = fs::remove_file(from);
            return Err(CacheError::io(&dest, e));
        }
        Ok(dest)
    }
}

/// Checks that `s` is a SHA-256 in hex and returns it in lowercase.
pub(crate) fn normalize_digest(s: &str) -> Result<String, CacheError> {
    if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(CacheError::BadDigest {
            digest: s.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_checked_and_lowercased() {
        let upper = "AB".repeat(32);
        assert_eq!(normalize_digest(&upper).unwrap(), "ab".repeat(32));
        assert!(normalize_digest("abc").is_err());
        assert!(normalize_digest(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn put_blob_is_addressed_by_its_hash() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let (digest, path) = cache.put_blob(b"hello\n").unwrap();
        assert_eq!(
            digest,
            "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
        );
        assert_eq!(
            path,
            dir.path().join("blobs/sha256/58").join(&digest),
            "blobs live under a two-hex-digit fan-out directory"
        );
        assert_eq!(fs::read(&path).unwrap(), b"hello\n");
        assert_eq!(cache.blob(&digest.to_uppercase()), Some(path));
        assert_eq!(cache.blob(&"00".repeat(32)), None);
        assert_eq!(cache.blob("not-a-digest"), None);
        assert_eq!(
            fs::read_dir(cache.tmp_dir()).unwrap().count(),
            0,
            "no temp file left"
        );
    }
}
