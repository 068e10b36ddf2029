//! `flock(2)` locks on files of the cache, released when the guard drops.
//!
//! flock locks belong to an open file description, so two threads of one
//! process that open the lock file separately exclude each other just like
//! two processes do.

use std::fs::{File, OpenOptions};
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};

use crate::CacheError;

/// A held lock; dropping it unlocks (and, for a removable lock, first
/// removes its file).
pub(crate) struct LockGuard {
    lock: Option<Flock<File>>,
    remove: Option<std::path::PathBuf>,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        // Unlink while still holding the lock, then unlock.
        if let Some(p) = self.remove.take() {
            let _ = std::fs::remove_file(p);
        }
        drop(self.lock.take());
    }
}

fn open(path: &Path) -> Result<File, CacheError> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| CacheError::io(path, e))
}

fn take(path: &Path, arg: FlockArg) -> Result<Option<LockGuard>, CacheError> {
    let file = open(path)?;
    match Flock::lock(file, arg) {
        Ok(lock) => Ok(Some(LockGuard {
            lock: Some(lock),
            remove: None,
        })),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, errno)) => Err(CacheError::io(path, std::io::Error::from(errno))),
    }
}

/// Waits for an exclusive lock on `path` (created if missing).
#[cfg(test)]
pub(crate) fn exclusive(path: &Path) -> Result<LockGuard, CacheError> {
    Ok(take(path, FlockArg::LockExclusive)?.expect("blocking flock returns a lock"))
}

/// Waits for a shared lock on `path` (created if missing).
pub(crate) fn shared(path: &Path) -> Result<LockGuard, CacheError> {
    Ok(take(path, FlockArg::LockShared)?.expect("blocking flock returns a lock"))
}

/// Takes an exclusive lock on `path` if nobody holds any lock on it.
pub(crate) fn try_exclusive(path: &Path) -> Result<Option<LockGuard>, CacheError> {
    take(path, FlockArg::LockExclusiveNonblock)
}

/// Whether the open file `f` is still what `path` names.
fn same_file(f: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (f.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Takes a lock whose file is removed again when it is released, so
/// per-item lock files (one per blob) do not pile up. A waiter that opened
/// the file before its holder removed it finds, once it has the lock, that
/// the path names another file (or none) and starts over, so two holders
/// never coexist. `wait: false` returns `None` instead of waiting.
fn take_removable(path: &Path, wait: bool) -> Result<Option<LockGuard>, CacheError> {
    let arg = if wait {
        FlockArg::LockExclusive
    } else {
        FlockArg::LockExclusiveNonblock
    };
    loop {
        let Some(mut g) = take(path, arg)? else {
            return Ok(None);
        };
        let lock = g.lock.take().expect("a fresh guard holds its lock");
        if same_file(&lock, path) {
            return Ok(Some(LockGuard {
                lock: Some(lock),
                remove: Some(path.to_path_buf()),
            }));
        }
    }
}

/// Waits for an exclusive lock on `path`, removing the file on release.
pub(crate) fn exclusive_removable(path: &Path) -> Result<LockGuard, CacheError> {
    Ok(take_removable(path, true)?.expect("blocking flock returns a lock"))
}

/// Removes the `*.lock` files in `dir` that nobody holds (left by killed
/// processes, or by versions that kept them); returns how many.
pub(crate) fn sweep(dir: &Path) -> Result<usize, CacheError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(CacheError::io(dir, e)),
    };
    let mut n = 0;
    for e in rd.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "lock") && take_removable(&p, false)?.is_some() {
            n += 1; // removed as the guard dropped
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removable_locks_exclude_each_other_and_leave_no_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.lock");
        let held = std::sync::atomic::AtomicU32::new(0);
        std::thread::scope(|s| {
            for _ in 0..6 {
                s.spawn(|| {
                    for _ in 0..100 {
                        let g = exclusive_removable(&p).unwrap();
                        let was = held.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        assert_eq!(was, 0, "two holders of one lock");
                        held.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                        drop(g);
                    }
                });
            }
        });
        assert!(!p.exists(), "the lock file goes with the last holder");
    }

    #[test]
    fn sweeping_removes_stale_locks_and_keeps_held_ones() {
        let d = tempfile::tempdir().unwrap();
        for i in 0..5 {
            std::fs::write(d.path().join(format!("{i}.lock")), "").unwrap();
        }
        std::fs::write(d.path().join("a.partial"), "keep").unwrap();
        let held = exclusive(&d.path().join("3.lock")).unwrap();
        assert_eq!(sweep(d.path()).unwrap(), 4);
        assert!(d.path().join("3.lock").exists());
        assert!(d.path().join("a.partial").exists());
        drop(held);
        assert_eq!(sweep(d.path()).unwrap(), 1);
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }
}
