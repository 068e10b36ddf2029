//! The host probe behind `vbuild check`: what this kernel offers a guest
//! context (namespaces, cgroup layout, overlayfs, seccomp, openat2, loop
//! devices, btrfs, quotas, the sysctls that cap guest density), each as one finding with a plain verdict.
//! Other parts of vbuild add their own findings by returning `Finding`s
//! from a function of theirs; the CLI prints them all together.

mod density;
mod net;

pub use density::{density, density_findings, DensityLimit, Scope, LIMITS, TARGET_GUESTS};

use crate::cgroup::Hierarchy;
use serde::Serialize;
use std::path::Path;

/// How well the host supports one feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Works.
    Ok,
    /// Works with a restriction the detail explains.
    Warn,
    /// Not available; the detail says what is lost.
    Missing,
}

/// One line of `vbuild check`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Area (`namespaces`, `cgroups`, `filesystems`, `security`, `disk`, `network`).
    pub area: &'static str,
    /// The feature.
    pub name: String,
    /// Verdict.
    pub level: Level,
    /// What was found, or what is lost and how to get it.
    pub detail: String,
}

impl Finding {
    /// A finding with verdict `level`.
    pub fn new(area: &'static str, name: &str, level: Level, detail: impl Into<String>) -> Finding {
        Finding {
            area,
            name: name.to_string(),
            level,
            detail: detail.into(),
        }
    }
}

fn filesystems() -> String {
    std::fs::read_to_string("/proc/filesystems").unwrap_or_default()
}

fn has_fs(all: &str, name: &str) -> bool {
    all.lines()
        .any(|l| l.split_whitespace().last() == Some(name))
}

/// Whether this host can run unprivileged guests (the default) with their
/// root filesystem under `store`: user namespaces can be created by an
/// unprivileged uid, `user.max_user_namespaces` leaves room, and `store`'s
/// filesystem takes id-mapped mounts. Each "no" says why and what to do.
pub fn unprivileged(store: &Path) -> Vec<Finding> {
    const AREA: &str = "unprivileged";
    let mut out = Vec::new();
    let max = std::fs::read_to_string("/proc/sys/user/max_user_namespaces")
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok());
    out.push(match max {
        Some(0) => Finding::new(AREA, "user.max_user_namespaces", Level::Missing,
            "0: no user namespaces may be made, so only --privileged guests run (sysctl user.max_user_namespaces=10000)"),
        Some(n) if n < 64 => Finding::new(AREA, "user.max_user_namespaces", Level::Warn,
            format!("{n}: few guests fit (each needs one, and systemd in it more); raise it with sysctl user.max_user_namespaces=10000")),
        Some(n) => Finding::new(AREA, "user.max_user_namespaces", Level::Ok, format!("{n}")),
        None => Finding::new(AREA, "user.max_user_namespaces", Level::Missing,
            "not readable: this kernel has no user namespaces (CONFIG_USER_NS), so only --privileged guests run"),
    });
    if matches!(max, Some(0) | None) {
        return out;
    }
    let dir = store
        .ancestors()
        .find(|d| d.is_dir())
        .unwrap_or(Path::new("/"));
    out.push(match try_idmapped(dir) {
        Ok(()) => Finding::new(AREA, "id-mapped mounts", Level::Ok,
            format!("a user namespace made by an unprivileged uid, and an id-mapped mount of {}", dir.display())),
        Err(why) => Finding::new(AREA, "id-mapped mounts", Level::Missing,
            format!("{why}: unprivileged guests cannot start; put the state root (--root) on ext4, xfs or btrfs with Linux 5.12+, or use --privileged (not a security boundary)")),
    });
    out
}

/// Makes a user namespace from an unprivileged uid (as `start` does for a
/// guest) and an id-mapped copy of the mount at `dir` through it.
fn try_idmapped(dir: &Path) -> Result<(), String> {
    use std::os::fd::AsRawFd;
    const PROBE_UID: u32 = 0x10_0000;
    let (r1, w1) = nix::unistd::pipe().map_err(|e| format!("pipe: {e}"))?;
    let (r2, w2) = nix::unistd::pipe().map_err(|e| format!("pipe: {e}"))?;
    let (r1f, w1f, r2f, w2f) = (
        r1.as_raw_fd(),
        w1.as_raw_fd(),
        r2.as_raw_fd(),
        w2.as_raw_fd(),
    );
    // SAFETY: the child only makes system calls and exits.
    let pid = match unsafe { crate::process::fork_into(0) } {
        Err(e) => return Err(format!("fork: {e}")),
        Ok(crate::process::Forked::Child) => {
            let ok: u8 = if crate::ns::become_id(PROBE_UID).is_ok()
                && crate::ns::unshare_raw(libc::CLONE_NEWUSER as u64).is_ok()
            {
                1
            } else {
                0
            };
            let mut b = [ok];
            // SAFETY: small reads and writes on our pipes.
            unsafe {
                libc::close(r1f);
                libc::close(w2f);
                libc::write(w1f, b.as_ptr().cast(), 1);
                libc::read(r2f, b.as_mut_ptr().cast(), 1);
            }
            crate::process::exit_now(0)
        }
        Ok(crate::process::Forked::Parent(pid)) => pid,
    };
    drop(w1);
    drop(r2);
    let mut b = [0u8; 1];
    let made = matches!(nix::unistd::read(r1.as_raw_fd(), &mut b), Ok(1)) && b[0] == 1;
    let result = if !made {
        Err(format!("uid {PROBE_UID} may not create a user namespace (a sysctl such as kernel.unprivileged_userns_clone or an LSM forbids it)"))
    } else {
        crate::ns::write_id_maps(pid, PROBE_UID, 65536)
            .map_err(|e| e.to_string())
            .and_then(|()| {
                crate::idmap::idmapped_tree(dir, pid)
                    .map(drop)
                    .map_err(|e| e.to_string())
            })
    };
    drop(w2);
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
    result
}

/// One finding per namespace kind a guest context uses.
pub fn namespaces() -> Vec<Finding> {
    let kinds = [
        ("mnt", "mount", true),
        ("pid", "PID", true),
        ("uts", "UTS (hostname)", true),
        ("ipc", "IPC", true),
        ("net", "network", true),
        ("cgroup", "cgroup", true),
        ("time", "time (guest uptime)", false),
        ("user", "user (unprivileged guests)", true),
    ];
    kinds
        .iter()
        .map(|(k, what, needed)| {
            let present = Path::new(&format!("/proc/self/ns/{k}")).exists();
            let (level, detail) = match (present, needed) {
                (true, _) => (Level::Ok, format!("{what} namespaces available")),
                (false, true) => (
                    Level::Missing,
                    format!(
                        "{what} namespaces missing: guests cannot start (enable CONFIG_{}_NS)",
                        k.to_uppercase()
                    ),
                ),
                (false, false) => (
                    Level::Warn,
                    format!("{what} namespaces missing: guests start without them"),
                ),
            };
            Finding::new("namespaces", k, level, detail)
        })
        .collect()
}

/// The cgroup layout (v2 or v1/hybrid) and its controllers.
pub fn cgroups() -> Vec<Finding> {
    let mut out = Vec::new();
    match Hierarchy::detect() {
        Err(e) => out.push(Finding::new(
            "cgroups",
            "layout",
            Level::Missing,
            format!("no usable cgroup layout: {e}"),
        )),
        Ok(h) => {
            let ctl = h.controllers().join(" ");
            if h.is_v2() {
                out.push(Finding::new(
                    "cgroups",
                    "layout",
                    Level::Ok,
                    format!("cgroup v2 (unified); controllers: {ctl}"),
                ));
            } else {
                out.push(Finding::new(
                    "cgroups",
                    "layout",
                    Level::Ok,
                    format!("cgroup v1 hierarchies; controllers: {ctl}"),
                ));
                let unified = h.root().join("unified/cgroup.controllers").exists();
                out.push(if unified {
                    Finding::new("cgroups", "guest cgroup2 view", Level::Ok, "hybrid: guests get their own subtree of the unified hierarchy at /sys/fs/cgroup (systemd 256+ needs it)")
                } else {
                    Finding::new("cgroups", "guest cgroup2 view", Level::Warn, "no unified (cgroup2) mount: guests see no /sys/fs/cgroup; systemd 256 and later will not boot (mount cgroup2 at /sys/fs/cgroup/unified)")
                });
            }
        }
    }
    out
}

/// Filesystems the builder and disk limits use.
pub fn filesystems_findings() -> Vec<Finding> {
    let all = filesystems();
    let mut out = Vec::new();
    out.push(if has_fs(&all, "overlay") {
        Finding::new(
            "filesystems",
            "overlayfs",
            Level::Ok,
            "copy-on-write guests over templates",
        )
    } else {
        Finding::new(
            "filesystems",
            "overlayfs",
            Level::Missing,
            "guests get full copies of templates (modprobe overlay)",
        )
    });
    out.push(if has_fs(&all, "btrfs") {
        Finding::new(
            "filesystems",
            "btrfs",
            Level::Ok,
            "btrfs qgroups can limit guest disk space",
        )
    } else {
        Finding::new(
            "filesystems",
            "btrfs",
            Level::Warn,
            "no btrfs: disk limits use loop images (modprobe btrfs)",
        )
    });
    out.push(if Path::new("/dev/loop-control").exists() {
        Finding::new(
            "filesystems",
            "loop devices",
            Level::Ok,
            "/dev/loop-control present: per-guest disk images work",
        )
    } else {
        Finding::new(
            "filesystems",
            "loop devices",
            Level::Missing,
            "no /dev/loop-control: loop-image disk limits unavailable (modprobe loop)",
        )
    });
    out.push(if Path::new("/proc/sys/fs/quota").exists() {
        Finding::new("filesystems", "quota subsystem", Level::Ok, "kernel quota support present (project quota also needs a quota format and a filesystem mounted with prjquota)")
    } else {
        Finding::new("filesystems", "quota subsystem", Level::Missing, "no kernel quota support: project quotas unavailable")
    });
    out
}

/// Seccomp, openat2 and capabilities.
pub fn security() -> Vec<Finding> {
    let mut out = Vec::new();
    out.push(if crate::seccomp::available() {
        Finding::new(
            "security",
            "seccomp",
            Level::Ok,
            "system call filter available",
        )
    } else {
        Finding::new(
            "security",
            "seccomp",
            Level::Missing,
            "no seccomp: guests start without the syscall filter (enable CONFIG_SECCOMP_FILTER)",
        )
    });
    out.push(if crate::rootfs::has_openat2() {
        Finding::new(
            "security",
            "openat2",
            Level::Ok,
            "paths inside guests resolve with RESOLVE_IN_ROOT",
        )
    } else {
        Finding::new(
            "security",
            "openat2",
            Level::Missing,
            "no openat2 (Linux 5.6+): cannot check a guest's init safely",
        )
    });
    let last = crate::caps::last_cap();
    out.push(Finding::new(
        "security",
        "capabilities",
        Level::Ok,
        format!("kernel knows {} capabilities", last + 1),
    ));
    out
}

/// Every finding of this crate, in display order.
pub fn all() -> Vec<Finding> {
    let mut out = namespaces();
    out.extend(cgroups());
    out.extend(filesystems_findings());
    out.extend(security());
    out.extend(net::network());
    out.extend(density::density());
    out.push(live_disk_growth());
    out
}

/// Whether this process may grow a running guest's disk: resizing a
/// mounted ext4 image needs CAP_SYS_RESOURCE (root on some VMs lacks it).
fn live_disk_growth() -> Finding {
    const CAP_SYS_RESOURCE: u32 = 24;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok());
    match eff {
        Some(e) if e & (1 << CAP_SYS_RESOURCE) != 0 => Finding::new(
            "disk",
            "live disk growth",
            Level::Ok,
            "`vbuild limit NAME --disk` grows a running guest's disk",
        ),
        _ => Finding::new(
            "disk",
            "live disk growth",
            Level::Warn,
            "this process lacks CAP_SYS_RESOURCE: `vbuild limit NAME --disk` cannot grow a running guest's disk image; stop the guest, change --disk, start it",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_host_has_the_namespaces_guests_need() {
        let f = namespaces();
        for k in ["mnt", "pid", "uts", "ipc", "net", "cgroup"] {
            let x = f.iter().find(|x| x.name == k).unwrap();
            assert_eq!(x.level, Level::Ok, "{x:?}");
        }
    }

    #[test]
    fn filesystem_names_are_matched_whole() {
        let all = "nodev\tsysfs\n\text4\nnodev\toverlay\n";
        assert!(has_fs(all, "overlay"));
        assert!(has_fs(all, "ext4"));
        assert!(!has_fs(all, "ext"));
    }
}
