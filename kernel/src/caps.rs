//! Capabilities: which of root's privileges a process in a context keeps.
//! The bounding set is what survives every later execve (root's permitted
//! set after exec is the bounding set), so dropping a capability there
//! takes it away from the whole guest for good.
//!
//! `restrict_to` runs between clone and exec of a guest's first process: it
//! makes no allocation and takes a plain bit mask prepared beforehand.

use nix::errno::Errno;

/// The capabilities the kernel knows, by number (`capability.h`).
pub const NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// A capability name that is not in `NAMES`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown capability {0:?} (use a name such as SYS_ADMIN or CAP_SYS_ADMIN)")]
pub struct UnknownCap(pub String);

/// The number of capability `name` (`SYS_ADMIN` or `CAP_SYS_ADMIN`, any case).
pub fn number(name: &str) -> Result<u32, UnknownCap> {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    NAMES
        .iter()
        .position(|n| *n == bare)
        .map(|i| i as u32)
        .ok_or_else(|| UnknownCap(name.to_string()))
}

/// The bit mask of the named capabilities.
pub fn mask(names: &[&str]) -> Result<u64, UnknownCap> {
    names
        .iter()
        .try_fold(0u64, |m, n| Ok(m | (1u64 << number(n)?)))
}

/// The names of the capabilities in `mask`, lowest number first.
pub fn names(mask: u64) -> Vec<&'static str> {
    (0..NAMES.len())
        .filter(|i| mask & (1u64 << i) != 0)
        .map(|i| NAMES[i])
        .collect()
}

/// The highest capability number this kernel knows
/// (/proc/sys/kernel/cap_last_cap), so newer capabilities than ours are
/// dropped too.
pub fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(NAMES.len() as u32 - 1)
        .min(63)
}

/// A capability change the kernel refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapError {
    /// The capability being dropped, or `None` for the final capset.
    pub cap: Option<u32>,
    /// The kernel's answer.
    pub errno: Errno,
}

impl std::fmt::Display for CapError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.cap {
            Some(c) => {
                let name = NAMES.get(c as usize).copied().unwrap_or("?");
                write!(
                    f,
                    "dropping CAP_{name} from the bounding set: {}",
                    self.errno
                )
            }
            None => write!(f, "capset: {}", self.errno),
        }
    }
}

impl std::error::Error for CapError {}

#[repr(C)]
struct Header {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Data {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const VERSION_3: u32 = 0x2008_0522;

/// Keeps only the capabilities in `keep` (a mask over numbers
/// `0..=last`): drops the others from the bounding set, clears the ambient
/// set and removes them from the effective, permitted and inheritable sets.
/// Allocation-free, for use between clone and exec.
pub fn restrict_to(keep: u64, last: u32) -> Result<(), CapError> {
    drop_bounding(keep, last)?;
    restrict_sets(keep)
}

/// Drops every capability not in `keep` from the bounding set only (the
/// process keeps what it holds until it changes user). Allocation-free.
pub fn drop_bounding(keep: u64, last: u32) -> Result<(), CapError> {
    for cap in 0..=last {
        if keep & (1u64 << cap) != 0 {
            continue;
        }
        // SAFETY: prctl with integer arguments only.
        let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
        if r != 0 {
            let errno = Errno::last();
            // EINVAL: this kernel does not know the capability; nothing to drop.
            if errno != Errno::EINVAL {
                return Err(CapError {
                    cap: Some(cap),
                    errno,
                });
            }
        }
    }
    Ok(())
}

/// Clears the ambient set and removes what is not in `keep` from the
/// effective, permitted and inheritable sets. Allocation-free.
fn restrict_sets(keep: u64) -> Result<(), CapError> {
    // Ambient capabilities would survive exec for non-root users; clear them.
    // SAFETY: prctl with integer arguments only.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    let mut hdr = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: header and a two-element data array as capget(2) expects.
    let r = unsafe { libc::syscall(libc::SYS_capget, &mut hdr, data.as_mut_ptr()) };
    if r != 0 {
        return Err(CapError {
            cap: None,
            errno: Errno::last(),
        });
    }
    for (i, d) in data.iter_mut().enumerate() {
        let k = (keep >> (32 * i)) as u32;
        d.effective &= k;
        d.permitted &= k;
        d.inheritable &= k;
    }
    // SAFETY: as above, for capset(2).
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut hdr, data.as_ptr()) };
    if r != 0 {
        return Err(CapError {
            cap: None,
            errno: Errno::last(),
        });
    }
    Ok(())
}

/// Sets the effective, permitted and inheritable sets to exactly these
/// masks (an OCI process's sets after a change of user). Allocation-free.
pub fn set_sets(effective: u64, permitted: u64, inheritable: u64) -> Result<(), CapError> {
    let mut hdr = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    for (i, d) in data.iter_mut().enumerate() {
        d.effective = (effective >> (32 * i)) as u32;
        d.permitted = (permitted >> (32 * i)) as u32;
        d.inheritable = (inheritable >> (32 * i)) as u32;
    }
    // SAFETY: header and a two-element data array as capset(2) expects.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut hdr, data.as_ptr()) };
    if r != 0 {
        return Err(CapError {
            cap: None,
            errno: Errno::last(),
        });
    }
    Ok(())
}

/// Makes the ambient set exactly `mask` (numbers `0..=last`); each must be
/// permitted and inheritable already. Allocation-free.
pub fn raise_ambient(mask: u64, last: u32) -> Result<(), CapError> {
    // SAFETY: prctl with integer arguments only.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    for cap in 0..=last {
        if mask & (1u64 << cap) == 0 {
            continue;
        }
        // SAFETY: prctl with integer arguments only.
        let r = unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                cap as libc::c_ulong,
                0,
                0,
            )
        };
        if r != 0 {
            return Err(CapError {
                cap: Some(cap),
                errno: Errno::last(),
            });
        }
    }
    Ok(())
}

/// The bounding set of process `pid` as a mask (`CapBnd` in
/// /proc/PID/status), to check what a running guest kept.
pub fn bounding_of(pid: i32) -> std::io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .ok_or_else(|| std::io::Error::other(format!("/proc/{pid}/status has no CapBnd line")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_agree_with_capability_h() {
        assert_eq!(number("SYS_ADMIN").unwrap(), 21);
        assert_eq!(number("cap_sys_module").unwrap(), 16);
        assert_eq!(number("BPF").unwrap(), 39);
        assert_eq!(number("CHECKPOINT_RESTORE").unwrap(), 40);
        let e = number("SYS_EVERYTHING").unwrap_err();
        assert!(e.to_string().contains("SYS_EVERYTHING"));
        let m = mask(&["CHOWN", "KILL"]).unwrap();
        assert_eq!(m, 1 | (1 << 5));
        assert_eq!(names(m), vec!["CHOWN", "KILL"]);
    }

    #[test]
    fn bounding_set_of_self_is_readable() {
        let b = bounding_of(std::process::id() as i32).unwrap();
        assert_ne!(b, 0, "a test process normally has a bounding set");
    }
}
