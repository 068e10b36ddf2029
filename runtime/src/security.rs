//! The security policy of a guest context, in one place: which
//! capabilities root inside keeps, which system calls are blocked, which
//! devices exist, and which /proc and /sys paths are hidden or read-only.
//! `start`, `exec`/`enter` and `run` all apply exactly these lists.
//!
//! What this protects, and what it does not: by default the guest's root
//! is an unprivileged host uid (its own user namespace and id range, see
//! `idrange`), so its capabilities count only inside its own namespaces:
//! host-wide sysctls, binfmt_misc, tracefs/debugfs and every cgroup
//! hierarchy stay out of reach. On top of that (and alone for a
//! `--privileged` guest, whose root is the host's uid 0) the capability
//! set is reduced: it cannot load modules, set the clock, reach raw I/O
//! ports, use kexec, keyrings, perf or bpf, open block or unlisted
//! character devices, or see processes, mounts, hostname or network of the
//! host; `reboot()` inside ends only the guest (its PID namespace). It
//! keeps CAP_SYS_ADMIN because systemd needs it in its own namespaces, so,
//! as with systemd-nspawn and privileged LXC, a hostile root of a
//! privileged guest could remount its own /proc/sys writable: a privileged
//! guest is not a security boundary.
//!
//! The memory-backed mounts (/dev/shm, /tmp, /run) are sized from the
//! guest's memory limit (`crate::tmpfs`) so filling them cannot OOM-kill
//! the guest's init; `exec`/`enter` apply `KEPT_CAPS` and
//! `BLOCKED_SYSCALLS` before the guest can see the entering process
//! (`crate::exec`).

/// Capabilities the guest's root keeps (systemd-nspawn's set plus
/// NET_ADMIN for its own network namespace). Every other capability —
/// including any the kernel adds later — is dropped from the bounding set.
/// Dropped in particular: SYS_MODULE, SYS_RAWIO, SYS_TIME, SYS_PACCT,
/// MAC_ADMIN, MAC_OVERRIDE, WAKE_ALARM, BLOCK_SUSPEND, SYSLOG, BPF,
/// PERFMON, AUDIT_CONTROL, AUDIT_READ, IPC_LOCK, CHECKPOINT_RESTORE.
/// SYS_BOOT is kept: in a PID namespace reboot() only ends the namespace.
pub const KEPT_CAPS: [&str; 26] = [
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
    "IPC_OWNER",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "SETFCAP",
];

/// The capabilities that must never be kept (checked by a test against
/// `KEPT_CAPS`, so an edit cannot quietly re-add one).
pub const MUST_DROP: [&str; 8] = [
    "SYS_MODULE",
    "SYS_TIME",
    "SYS_RAWIO",
    "MAC_ADMIN",
    "MAC_OVERRIDE",
    "SYS_PACCT",
    "WAKE_ALARM",
    "BPF",
];

/// System calls that fail with EPERM inside a guest: kernel modules,
/// kexec, file handles that escape a mount namespace (open_by_handle_at),
/// the kernel keyring (not namespaced), perf and bpf (kernel attack
/// surface, host-wide visibility), swap, process accounting, raw I/O
/// ports, quotas of the host's filesystems, userfaultfd, and obsolete calls.
/// Time-setting calls are not listed: CAP_SYS_TIME is dropped, and
/// read-only adjtimex must keep working for NTP clients.
pub const BLOCKED_SYSCALLS: [&str; 28] = [
    "init_module",
    "finit_module",
    "delete_module",
    "create_module",
    "get_kernel_syms",
    "query_module",
    "kexec_load",
    "kexec_file_load",
    "open_by_handle_at",
    "add_key",
    "request_key",
    "keyctl",
    "perf_event_open",
    "bpf",
    "swapon",
    "swapoff",
    "acct",
    "iopl",
    "ioperm",
    "lookup_dcookie",
    "nfsservctl",
    "uselib",
    "_sysctl",
    "userfaultfd",
    "quotactl",
    "quotactl_fd",
    "vm86",
    "vm86old",
];

/// The device nodes of a guest's /dev: the kernel crate's one table,
/// shared with one-shot runs and the build's script context.
pub use vbuild_kernel::devices::STANDARD as DEVICES;

/// Hidden from the guest (files covered by /dev/null, directories by an
/// empty read-only tmpfs): kernel memory, the kernel keyring list, timers
/// and scheduler internals of the whole host, SysRq, firmware tables.
pub const MASKED: [&str; 12] = [
    "/proc/kcore",
    "/proc/keys",
    "/proc/key-users",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/latency_stats",
    "/proc/sysrq-trigger",
    "/proc/acpi",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/kernel/debug",
];

/// Read-only for the guest (besides /proc/sys, which is read-only except
/// /proc/sys/net, and /sys as a whole): host-wide kernel settings.
pub const READONLY: [&str; 3] = ["/proc/bus", "/proc/fs", "/proc/irq"];

/// The capability mask of `KEPT_CAPS`.
pub fn kept_mask() -> u64 {
    vbuild_kernel::caps::mask(&KEPT_CAPS).expect("KEPT_CAPS are known names")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_capabilities_are_dropped() {
        for c in MUST_DROP {
            assert!(!KEPT_CAPS.contains(&c), "{c} must be dropped");
        }
        assert!(KEPT_CAPS.contains(&"SYS_ADMIN"), "systemd needs it");
        assert_eq!(kept_mask().count_ones() as usize, KEPT_CAPS.len());
    }

    #[test]
    fn every_blocked_syscall_is_in_the_filter_table() {
        let f = vbuild_kernel::seccomp::Filter::deny(&BLOCKED_SYSCALLS, nix::errno::Errno::EPERM);
        assert!(f.is_ok(), "{f:?}");
    }
}
