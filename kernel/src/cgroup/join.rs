//! A new process joining its group by itself, as it starts.
//!
//! Moving a process in by writing its pid to `cgroup.procs` takes the
//! kernel's cgroup threadgroup lock for writing, and the first such write
//! waits for an RCU grace period: 7 to 17 ms on these machines, on every
//! start, exec and OCI create. Two ways in skip that lock:
//! - cgroup2 (the whole host on v2, the unified mount on hybrid): `clone3`
//!   with `CLONE_INTO_CGROUP` and the group's directory descriptor puts
//!   the child there as it is made;
//! - a v1 hierarchy: the single-threaded child writes `0` ("this thread")
//!   to the group's `tasks` file, through a descriptor root opened before
//!   the fork (v1 checks the opener's credentials, so a child that has
//!   already become another uid may still write it).
//!
//! The descriptors are close-on-exec and the child closes them right after
//! it joined, so no process of a guest ever holds one.

use super::{io_err, Cgroup, CgroupError, DirKind};
use nix::errno::Errno;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// What a child needs to join a group by itself: the v1 `tasks` files to
/// write `0` to and the cgroup2 directory for `clone3`.
#[derive(Debug)]
pub struct Joiner {
    tasks: Vec<OwnedFd>,
    unified: Option<OwnedFd>,
}

fn open_raw(path: &Path, flags: i32) -> Result<OwnedFd, CgroupError> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| CgroupError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::from_raw_os_error(libc::EINVAL),
    })?;
    // SAFETY: open with a NUL-terminated path; the result is owned below.
    let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC | libc::O_NOFOLLOW) };
    if fd < 0 {
        return Err(io_err(path)(std::io::Error::last_os_error()));
    }
    // SAFETY: a descriptor we just opened and nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl Cgroup {
    /// Opens what a new process needs to join this group itself (see the
    /// module's comment): every v1 hierarchy's `tasks` and the cgroup2
    /// directory.
    pub fn joiner(&self) -> Result<Joiner, CgroupError> {
        self.joiner_with_unified(None)
    }

    /// Like [`Cgroup::joiner`], with the cgroup2 side at `unified` instead
    /// of the group itself (a sub-group a guest's init lives in, because a
    /// cgroup2 group that delegates controllers holds no processes).
    pub fn joiner_with_unified(&self, unified: Option<&Path>) -> Result<Joiner, CgroupError> {
        let mut tasks = Vec::new();
        let mut dir = None;
        for d in &self.dirs {
            match d.kind {
                DirKind::V1(_) => {
                    tasks.push(open_raw(&d.path.join("tasks"), libc::O_WRONLY)?);
                }
                DirKind::Unified => {
                    let at = unified.unwrap_or(&d.path);
                    dir = Some(open_raw(at, libc::O_PATH | libc::O_DIRECTORY)?);
                }
            }
        }
        Ok(Joiner {
            tasks,
            unified: dir,
        })
    }
}

impl Joiner {
    /// The cgroup2 directory to give `clone3` (`CLONE_INTO_CGROUP`).
    pub fn unified_fd(&self) -> Option<RawFd> {
        self.unified.as_ref().map(|f| f.as_raw_fd())
    }

    /// Every descriptor held, for a child's list of descriptors to keep
    /// until it has joined.
    pub fn fds(&self) -> impl Iterator<Item = RawFd> + '_ {
        self.tasks
            .iter()
            .chain(self.unified.as_ref())
            .map(|f| f.as_raw_fd())
    }

    /// In the new, single-threaded child: joins every v1 hierarchy's group
    /// (the cgroup2 one was joined by `clone3`) and closes the child's
    /// copies of the descriptors. Allocation-free, so safe in a child
    /// forked from a multi-threaded process; the parent's copies are
    /// untouched.
    pub fn join_in_child(&self) -> Result<(), Errno> {
        let mut failed = None;
        for f in &self.tasks {
            // SAFETY: a one-byte write from a static buffer.
            let n = unsafe { libc::write(f.as_raw_fd(), b"0".as_ptr().cast(), 1) };
            if n != 1 && failed.is_none() {
                failed = Some(Errno::last());
            }
        }
        for fd in self.fds() {
            // SAFETY: closing this process's copy; the memory of the
            // `OwnedFd` is never dropped here (the child execs or exits).
            unsafe { libc::close(fd) };
        }
        match failed {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }
}
