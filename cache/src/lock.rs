//! `flock(2)` locks on files of the cache, released when the guard drops.
//!
//! flock locks belong to an open file description, so two threads of one
//! process that open the lock file separately exclude each other just like
//! two processes do.

use std::fs::{File, OpenOptions};
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};

use crate::CacheError;

/// A held lock; dropping it unlocks.
pub(crate) struct LockGuard {
    _lock: Flock<File>,
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
        Ok(lock) => Ok(Some(LockGuard { _lock: lock })),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, errno)) => Err(CacheError::io(path, std::io::Error::from(errno))),
    }
}

/// Waits for an exclusive lock on `path` (created if missing).
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
