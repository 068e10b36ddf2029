//! Namespaces: creating them for a new context and joining them (setns) for
//! `exec`/`enter`, the time namespace's clock offsets, and the id maps of a
//! user namespace.

use nix::errno::Errno;
use nix::sched::CloneFlags;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

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
/// the order they must be joined: cgroup first (an unprivileged guest's
/// cgroup namespace belongs to the host's user namespace, which a process
/// can no longer act in once it joined the guest's), then user, mount last
/// but one, pid last since it only applies to children.
pub const NAMESPACES: [(&str, CloneFlags); 8] = [
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
    ("user", CloneFlags::CLONE_NEWUSER),
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

/// CLONE_NEWTIME, which nix's `CloneFlags` does not name.
pub const CLONE_NEWTIME: u64 = 0x80;

/// True when this kernel has time namespaces (Linux 5.6+, CONFIG_TIME_NS).
pub fn has_time_ns() -> bool {
    std::path::Path::new("/proc/self/ns/time").exists()
}

/// Opens every namespace of process `pid` that differs from ours, in the
/// order they must be joined (`NAMESPACES`), for `enter`.
pub fn open_all(pid: i32) -> Result<Vec<(&'static str, OwnedFd)>, NsError> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    for (kind, _) in NAMESPACES {
        let theirs = format!("/proc/{pid}/ns/{kind}");
        let e = |errno| NsError {
            op: "open",
            what: theirs.clone(),
            errno,
        };
        let a = match std::fs::metadata(&theirs) {
            Ok(a) => a,
            // The kernel lacks this kind (time before 5.6).
            Err(_) if !std::path::Path::new(&format!("/proc/self/ns/{kind}")).exists() => continue,
            Err(io) => return Err(e(io_errno(&io))),
        };
        if let Ok(b) = std::fs::metadata(format!("/proc/self/ns/{kind}")) {
            if a.ino() == b.ino() && a.dev() == b.dev() {
                continue;
            }
        }
        let f = std::fs::File::open(&theirs).map_err(|io| e(io_errno(&io)))?;
        out.push((kind, OwnedFd::from(f)));
    }
    Ok(out)
}

fn io_errno(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

/// Joins each namespace in `fds` (as returned by `open_all`). The pid and
/// time namespaces apply to children forked afterwards. Allocation-free,
/// for a freshly forked child; on failure names the kind that failed.
pub fn enter_all(fds: &[(&'static str, OwnedFd)]) -> Result<(), (&'static str, Errno)> {
    for (kind, fd) in fds {
        // SAFETY: setns on a namespace descriptor we hold.
        if unsafe { libc::setns(fd.as_raw_fd(), 0) } != 0 {
            return Err((kind, Errno::last()));
        }
    }
    Ok(())
}

/// Joins the namespace `fd` refers to, which must be of kind `nstype`
/// (a CLONE_NEW* flag; 0 takes any). A pid namespace applies to children
/// forked afterwards.
pub fn enter(fd: &impl AsRawFd, nstype: i32) -> Result<(), Errno> {
    // SAFETY: setns on a namespace descriptor the caller holds.
    if unsafe { libc::setns(fd.as_raw_fd(), nstype) } != 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// Moves the caller into new namespaces `flags` (raw CLONE_NEW* bits, time
/// included). Allocation-free.
pub fn unshare_raw(flags: u64) -> Result<(), Errno> {
    // SAFETY: unshare has no memory effects.
    if unsafe { libc::unshare(flags as libc::c_int) } != 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// Sets the hostname of the caller's UTS namespace. Allocation-free.
pub fn set_hostname(name: &[u8]) -> Result<(), Errno> {
    // SAFETY: sethostname reads `name.len()` bytes of the slice.
    if unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) } != 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// Sets the boot-time offset of the time namespace the caller just
/// unshared (before any process entered it) so that the clock, and so
/// `uptime` inside, starts near zero: `boottime_now` is the host's
/// CLOCK_BOOTTIME reading in seconds. Allocation-free.
pub fn set_boottime_offset(boottime_now: u64) -> Result<(), Errno> {
    // "boottime -<secs> 0\n", formatted by hand into a stack buffer.
    let mut buf = [0u8; 48];
    let prefix = b"boottime -";
    buf[..prefix.len()].copy_from_slice(prefix);
    let mut n = prefix.len();
    let mut digits = [0u8; 20];
    let mut d = 0;
    let mut v = boottime_now;
    loop {
        digits[d] = b'0' + (v % 10) as u8;
        d += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    while d > 0 {
        d -= 1;
        buf[n] = digits[d];
        n += 1;
    }
    for b in b" 0\n" {
        buf[n] = *b;
        n += 1;
    }
    let path = c"/proc/self/timens_offsets";
    // SAFETY: open/write/close with valid buffers.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(Errno::last());
        }
        let w = libc::write(fd, buf.as_ptr().cast(), n);
        let e = Errno::last();
        libc::close(fd);
        if w != n as isize {
            return Err(e);
        }
    }
    Ok(())
}

/// A detached cgroup2 mount of the caller's cgroup namespace (rooted at the
/// group the caller was in when it unshared it): made by a host-side
/// process, so the superblock belongs to the host's user namespace and the
/// guest, whose own user namespace does not own that cgroup namespace, can
/// neither remount it nor mount any cgroup hierarchy (v1 or v2) itself.
/// Attach it with `idmap::attach`. Allocation-free.
pub fn cgroup2_detached_mount() -> Result<RawFd, Errno> {
    const FSOPEN_CLOEXEC: u32 = 1;
    const FSCONFIG_CMD_CREATE: u32 = 6;
    const FSMOUNT_CLOEXEC: u32 = 1;
    const MOUNT_ATTR_NOSUID: u32 = 0x2;
    const MOUNT_ATTR_NODEV: u32 = 0x4;
    const MOUNT_ATTR_NOEXEC: u32 = 0x8;
    // SAFETY: fsopen/fsconfig/fsmount with NUL-terminated strings; the
    // descriptors are ours.
    unsafe {
        let fs = libc::syscall(libc::SYS_fsopen, c"cgroup2".as_ptr(), FSOPEN_CLOEXEC);
        if fs < 0 {
            return Err(Errno::last());
        }
        let fs = fs as RawFd;
        let r = libc::syscall(
            libc::SYS_fsconfig,
            fs,
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        );
        if r < 0 {
            let e = Errno::last();
            libc::close(fs);
            return Err(e);
        }
        let m = libc::syscall(
            libc::SYS_fsmount,
            fs,
            FSMOUNT_CLOEXEC,
            MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
        );
        let e = Errno::last();
        libc::close(fs);
        if m < 0 {
            return Err(e);
        }
        Ok(m as RawFd)
    }
}

/// Becomes host uid and gid `id` (no supplementary groups), so that a user
/// namespace made next is owned by, and its per-user kernel counters are
/// charged to, that uid rather than host root. Allocation-free.
pub fn become_id(id: u32) -> Result<(), Errno> {
    crate::process::set_ids(id, id, true)
}

/// Writes the uid and gid maps of user namespace owner `pid`: ids
/// `0..count` inside are `base..base+count` outside.
pub fn write_id_maps(pid: i32, base: u32, count: u32) -> Result<(), NsError> {
    let line = format!("0 {base} {count}\n");
    write_id_map_lines(pid, &line, &line)
}

/// Writes the uid and gid maps of user namespace owner `pid` as given:
/// `inside outside count` lines, one range each. On failure `what` is the
/// file that refused them.
pub fn write_id_map_lines(pid: i32, uid: &str, gid: &str) -> Result<(), NsError> {
    for (file, text) in [("uid_map", uid), ("gid_map", gid)] {
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, text).map_err(|io| NsError {
            op: "write",
            what: path.clone(),
            errno: io_errno(&io),
        })?;
    }
    Ok(())
}

/// The user namespace id map of `pid` (`/proc/PID/uid_map` lines), to tell
/// whether a running guest has its own user namespace.
pub fn uid_map(pid: i32) -> std::io::Result<Vec<(u32, u32, u32)>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/uid_map"))?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let f: Vec<u32> = l
                .split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect();
            (f.len() == 3).then(|| (f[0], f[1], f[2]))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_namespaces_are_not_reopened() {
        let me = std::process::id() as i32;
        assert!(open_all(me).unwrap().is_empty());
    }

    #[test]
    fn initial_user_namespace_maps_everything() {
        let m = uid_map(std::process::id() as i32).unwrap();
        assert!(!m.is_empty());
    }
}
