//! Garbage collection: drop blobs no guest or template needs any more.

use std::collections::HashSet;
use std::fs;

use crate::{lock, Cache, CacheError};

/// What [`Cache::gc`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct GcStats {
    /// Blobs deleted.
    pub removed: u64,
    /// Bytes those blobs took.
    pub freed_bytes: u64,
    /// Blobs kept.
    pub kept: u64,
}

impl Cache {
    /// Removes the per-blob lock files in `tmp/` that nobody holds (left by
    /// killed builds or by versions that kept them); returns how many.
    /// Safe while builds run: a held lock is never touched.
    pub fn sweep_stale_locks(&self) -> Result<usize, CacheError> {
        lock::sweep(&self.tmp_dir())
    }

    /// Deletes every blob whose SHA-256 is not in `keep`, and leftover
    /// partial downloads. Refuses with [`CacheError::Busy`] while another
    /// build fetches into this cache, rather than waiting or racing it.
    pub fn gc(&self, keep: &HashSet<String>) -> Result<GcStats, CacheError> {
        let _alone = self.alone()?;
        let keep: HashSet<String> = keep.iter().map(|k| k.to_ascii_lowercase()).collect();
        self.gc_locked(&|name, _| keep.contains(name))
    }

    /// The store lock taken alone, or [`CacheError::Busy`] while any build
    /// fetches into or holds the cache.
    pub(crate) fn alone(&self) -> Result<lock::LockGuard, CacheError> {
        lock::try_exclusive(&self.store_lock_path())?.ok_or(CacheError::Busy {
            dir: self.dir().to_path_buf(),
        })
    }

    /// `gc` for a caller holding [`Cache::alone`]: deletes every blob for
    /// which `keep(digest, path)` is false.
    pub(crate) fn gc_locked(
        &self,
        keep: &dyn Fn(&str, &std::path::Path) -> bool,
    ) -> Result<GcStats, CacheError> {
        let mut stats = GcStats::default();
        let root = self.dir().join("blobs/sha256");
        for fan in read_dir(&root)? {
            for entry in read_dir(&fan)? {
                let name = entry.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if keep(name, &entry) {
                    stats.kept += 1;
                    continue;
                }
                let len = fs::metadata(&entry).map(|m| m.len()).unwrap_or(0);
                fs::remove_file(&entry).map_err(|e| CacheError::io(&entry, e))?;
                stats.removed += 1;
                stats.freed_bytes += len;
            }
            let _ = fs::remove_dir(&fan); // only succeeds when empty
        }
        // Nobody fetches now, so partials and per-blob lock files are stale.
        for entry in read_dir(&self.tmp_dir())? {
            fs::remove_file(&entry).map_err(|e| CacheError::io(&entry, e))?;
        }
        Ok(stats)
    }
}

fn read_dir(dir: &std::path::Path) -> Result<Vec<std::path::PathBuf>, CacheError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| CacheError::io(dir, e))? {
        out.push(entry.map_err(|e| CacheError::io(dir, e))?.path());
    }
    out.sort();
    Ok(out)
}
