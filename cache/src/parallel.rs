//! Fetching many blobs with a pool of worker threads.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::store::normalize_digest;
use crate::{lock, Cache, CacheError, Fetch, Progress};

impl Cache {
    /// Fetches every item with up to `jobs` parallel downloads and returns
    /// their paths in the order given. The first failure wins: the other
    /// downloads stop, their partial files are deleted, and that error is
    /// returned. Blobs already completed stay in the store (they are valid).
    pub fn fetch_all(
        &self,
        items: &[Fetch],
        jobs: usize,
        progress: &dyn Progress,
    ) -> Result<Vec<PathBuf>, CacheError> {
        for item in items {
            normalize_digest(&item.sha256)?;
        }
        let _store = lock::shared(&self.store_lock_path())?;
        let total: u64 = items.iter().filter_map(|i| i.size).sum();
        progress.begin(items.len() as u64, total);

        let mut paths: Vec<Option<PathBuf>> = vec![None; items.len()];
        let mut missing = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match self.blob(&item.sha256) {
                Some(path) => {
                    progress.cached(item.size.unwrap_or(0), file_name(&item.url));
                    paths[i] = Some(path);
                }
                None => missing.push(i),
            }
        }
        if self.is_offline() {
            // Name every one: the user fetches them all before going offline.
            let what = match missing.as_slice() {
                [] => None,
                [i] => Some(format!("{} (sha256 {})", items[*i].url, items[*i].sha256)),
                many => Some(format!(
                    "{} files ({})",
                    many.len(),
                    many.iter()
                        .map(|&i| file_name(&items[i].url))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            };
            if let Some(what) = what {
                return Err(CacheError::Offline {
                    what,
                    dir: self.dir().to_path_buf(),
                });
            }
        }

        let next = AtomicUsize::new(0);
        let cancel = AtomicBool::new(false);
        let first_error: Mutex<Option<CacheError>> = Mutex::new(None);
        let done: Mutex<Vec<(usize, PathBuf)>> = Mutex::new(Vec::new());
        let workers = jobs.clamp(1, 32).min(missing.len());
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    if k >= missing.len() || cancel.load(Ordering::Relaxed) {
                        break;
                    }
                    let item = &items[missing[k]];
                    match self.fetch_locked(item, progress, &cancel) {
                        Ok(path) => {
                            progress.item_done(file_name(&item.url));
                            done.lock().unwrap().push((missing[k], path));
                        }
                        Err(CacheError::Cancelled) => break,
                        Err(e) => {
                            cancel.store(true, Ordering::Relaxed);
                            first_error.lock().unwrap().get_or_insert(e);
                            break;
                        }
                    }
                });
            }
        });
        if let Some(e) = first_error.into_inner().unwrap() {
            return Err(e);
        }
        for (i, path) in done.into_inner().unwrap() {
            paths[i] = Some(path);
        }
        Ok(paths
            .into_iter()
            .map(|p| p.expect("every item fetched or an error returned"))
            .collect())
    }
}

/// The last path segment of a URL, for progress messages.
fn file_name(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}
