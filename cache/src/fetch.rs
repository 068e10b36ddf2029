//! Fetching one blob: lock it, resume its `.partial`, verify, rename into place.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest, Sha256};

use crate::http::{chain, Answer, Failure};
use crate::store::normalize_digest;
use crate::{lock, Cache, CacheError, Fetch, Progress};

const CHUNK: usize = 64 * 1024;

impl Cache {
    /// Returns the blob for `item`, downloading and verifying it first when
    /// it is not in the store yet.
    pub fn fetch(&self, item: &Fetch, progress: &dyn Progress) -> Result<PathBuf, CacheError> {
        let _store = lock::shared(&self.store_lock_path())?;
        let never = AtomicBool::new(false);
        self.fetch_locked(item, progress, &never)
    }

    /// `fetch` for callers already holding the store lock; stops early when
    /// `cancel` turns true.
    pub(crate) fn fetch_locked(
        &self,
        item: &Fetch,
        progress: &dyn Progress,
        cancel: &AtomicBool,
    ) -> Result<PathBuf, CacheError> {
        let digest = normalize_digest(&item.sha256)?;
        let dest = self.blob_path(&digest);
        if dest.is_file() {
            crate::inventory::touch(&dest);
            return Ok(dest);
        }
        if self.is_offline() {
            return Err(CacheError::Offline {
                what: format!("{} (sha256 {digest})", item.url),
                dir: self.dir().to_path_buf(),
            });
        }
        self.check_url(&item.url)?;
        let tmp = self.tmp_dir();
        // One downloader per blob across threads and processes; whoever waited
        // finds the blob present once the lock is theirs.
        let _blob = lock::exclusive_removable(&tmp.join(format!("{digest}.lock")))?;
        if dest.is_file() {
            return Ok(dest);
        }
        let partial = tmp.join(format!("{digest}.partial"));
        match self.download_to(item, &digest, &partial, progress, cancel) {
            Ok(()) => self.publish(&partial, &digest),
            Err(e) => {
                let _ = fs::remove_file(&partial);
                Err(e)
            }
        }
    }

    /// Fills `partial` with the verified content, retrying transient failures
    /// and resuming from what is already there.
    fn download_to(
        &self,
        item: &Fetch,
        digest: &str,
        partial: &Path,
        progress: &dyn Progress,
        cancel: &AtomicBool,
    ) -> Result<(), CacheError> {
        let mut reported = 0u64;
        let mut last = String::new();
        for attempt in 0..self.attempts {
            if attempt > 0 {
                self.backoff(attempt);
            }
            if cancel.load(Ordering::Relaxed) {
                return Err(CacheError::Cancelled);
            }
            match self.attempt(item, partial, progress, cancel, &mut reported) {
                Ok(()) => return verify(item, digest, partial),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Restart) => last = "the server refused to resume".into(),
                Err(Failure::Transient(message)) => last = message,
            }
        }
        Err(CacheError::Network {
            url: item.url.clone(),
            message: last,
            attempts: self.attempts,
        })
    }

    /// One GET into `partial`; leaves what arrived there for the next try.
    fn attempt(
        &self,
        item: &Fetch,
        partial: &Path,
        progress: &dyn Progress,
        cancel: &AtomicBool,
        reported: &mut u64,
    ) -> Result<(), Failure> {
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(partial)
            .map_err(|e| CacheError::io(partial, e))?;
        let mut have = file
            .metadata()
            .map_err(|e| CacheError::io(partial, e))?
            .len();
        if item.size.is_some_and(|size| have > size) {
            have = 0;
        }
        if have > 0 && Some(have) == item.size {
            return Ok(()); // complete from an earlier run; verify decides
        }
        let answer = match self.get(&item.url, have) {
            Err(Failure::Restart) => {
                // Our partial is longer than the file now served: start over.
                file.set_len(0).map_err(|e| CacheError::io(partial, e))?;
                return Err(Failure::Transient(
                    "the server refused to resume (HTTP 416)".to_string(),
                ));
            }
            other => other?,
        };
        let mut response = match answer {
            Answer::Partial(response) => response,
            Answer::Full(response) => {
                have = 0;
                response
            }
        };
        let announced = response.length;
        file.set_len(have)
            .and_then(|_| file.seek(SeekFrom::Start(have)).map(|_| ()))
            .map_err(|e| CacheError::io(partial, e))?;
        let mut pos = have;
        let mut buf = vec![0u8; CHUNK];
        loop {
            if cancel.load(Ordering::Relaxed) {
                return Err(Failure::Fatal(CacheError::Cancelled));
            }
            let n = match response.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Failure::Transient(chain(&e))),
            };
            pos += n as u64;
            if let Some(size) = item.size.filter(|&size| pos > size) {
                return Err(Failure::Fatal(CacheError::Size {
                    url: item.url.clone(),
                    expected: size,
                    actual: pos,
                }));
            }
            file.write_all(&buf[..n])
                .map_err(|e| CacheError::io(partial, e))?;
            if pos > *reported {
                progress.advance(pos - *reported);
                *reported = pos;
            }
        }
        if let Some(size) = item.size.filter(|&size| pos < size) {
            if announced == Some(pos - have) {
                // The whole body arrived and it is short: not a network fault.
                return Err(Failure::Fatal(CacheError::Size {
                    url: item.url.clone(),
                    expected: size,
                    actual: pos,
                }));
            }
            // The connection closed early: resume on the next attempt.
            return Err(Failure::Transient(format!(
                "the connection closed after {pos} of {size} bytes"
            )));
        }
        file.sync_data().map_err(|e| CacheError::io(partial, e))?;
        Ok(())
    }

    /// Downloads a small file that is not content-addressed (an `InRelease`),
    /// with the same retries; refuses anything above `limit` bytes.
    pub fn download(&self, url: &str, limit: u64) -> Result<Vec<u8>, CacheError> {
        if self.is_offline() {
            return Err(CacheError::Offline {
                what: url.to_string(),
                dir: self.dir().to_path_buf(),
            });
        }
        self.check_url(url)?;
        let mut last = String::new();
        for attempt in 0..self.attempts {
            if attempt > 0 {
                self.backoff(attempt);
            }
            let response = match self.get(url, 0) {
                Ok(Answer::Full(response)) | Ok(Answer::Partial(response)) => response,
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Restart) => continue,
                Err(Failure::Transient(message)) => {
                    last = message;
                    continue;
                }
            };
            let mut body = Vec::new();
            match response.take(limit + 1).read_to_end(&mut body) {
                Ok(_) if body.len() as u64 > limit => {
                    return Err(CacheError::TooLarge {
                        url: url.to_string(),
                        limit,
                    })
                }
                Ok(_) => return Ok(body),
                Err(e) => last = chain(&e),
            }
        }
        Err(CacheError::Network {
            url: url.to_string(),
            message: last,
            attempts: self.attempts,
        })
    }
}

/// Checks size and SHA-256 of the finished partial file.
fn verify(item: &Fetch, digest: &str, partial: &Path) -> Result<(), CacheError> {
    let mut file = File::open(partial).map_err(|e| CacheError::io(partial, e))?;
    let mut hasher = Sha256::new();
    let size = std::io::copy(&mut file, &mut hasher).map_err(|e| CacheError::io(partial, e))?;
    if let Some(expected) = item.size.filter(|&expected| expected != size) {
        return Err(CacheError::Size {
            url: item.url.clone(),
            expected,
            actual: size,
        });
    }
    let actual = hex::encode(hasher.finalize());
    if actual != digest {
        return Err(CacheError::Checksum {
            url: item.url.clone(),
            expected: digest.to_string(),
            actual,
        });
    }
    Ok(())
}
