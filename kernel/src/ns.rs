//! Namespaces: creating them for a new context and joining them (setns) for
//! `exec`/`enter`.

use nix::sched::CloneFlags;
use std::os::fd::AsFd;

/// A namespace call that failed, naming which namespace.
#[derive(Debug, thiserror::Error)]
#[error("{op} {what}: {errno}")]
pub struct NsError {
    /// `unshare` or `setns`.
    pub op: &'static str,
    /// Which namespaces, or the /proc path joined.
    pub what: String,
    /// The kernel's answer.
    pub errno: nix::Error,
}

/// Moves the calling process into new namespaces of the kinds in `flags`.
pub fn unshare(flags: CloneFlags) -> Result<(), NsError> {
    nix::sched::unshare(flags).map_err(|errno| NsError {
        op: "unshare",
        what: format!("{flags:?}"),
        errno,
    })
}

/// The namespace kinds a guest may have, with their /proc/PID/ns names, in
/// the order they must be joined (user first, mount last but one, pid last
/// since it only applies to children).
pub const NAMESPACES: [(&str, CloneFlags); 8] = [
    ("user", CloneFlags::CLONE_NEWUSER),
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("time", CloneFlags::empty()),
    ("mnt", CloneFlags::CLONE_NEWNS),
    ("pid", CloneFlags::CLONE_NEWPID),
];

/// Joins namespace `kind` (`net`, `mnt`, ...) of process `pid`. Returns
/// `Ok(false)` when the process shares that namespace with us already.
pub fn join(pid: i32, kind: &str) -> Result<bool, NsError> {
    let theirs = format!("/proc/{pid}/ns/{kind}");
    let ours = format!("/proc/self/ns/{kind}");
    let e = |errno| NsError {
        op: "setns",
        what: theirs.clone(),
        errno,
    };
    let same = match (std::fs::metadata(&theirs), std::fs::metadata(&ours)) {
        (Ok(a), Ok(b)) => {
            use std::os::unix::fs::MetadataExt;
            a.ino() == b.ino() && a.dev() == b.dev()
        }
        (Err(_), _) => return Err(e(nix::Error::ESRCH)),
        _ => false,
    };
    if same {
        return Ok(false);
    }
    let f = std::fs::File::open(&theirs)
        .map_err(|io| e(nix::Error::from_raw(io.raw_os_error().unwrap_or(libc::EIO))))?;
    nix::sched::setns(f.as_fd(), CloneFlags::empty()).map_err(e)?;
    Ok(true)
}
