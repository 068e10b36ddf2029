//! Seccomp: a classic-BPF filter that makes chosen system calls fail with an
//! errno (EPERM) and lets everything else through. A deny list rather than
//! an allow list, because a guest runs a whole distribution whose needs we
//! cannot enumerate; what it must never do (load kernel modules, kexec,
//! reach the host through file handles or the kernel keyring) is short.
//!
//! The filter also covers the other ABIs a process of this architecture can
//! enter the kernel through (i386 and x32 on x86_64), with their own
//! numbers, so a 32-bit binary in the guest cannot walk around it.
//!
//! It is installed without `no_new_privs` (the caller holds CAP_SYS_ADMIN
//! in its user namespace), so set-uid programs such as `su` keep working.

use nix::errno::Errno;

pub mod profile;

const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH_AARCH64: u32 = 0xC000_00B7;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

const RET_ALLOW: u32 = 0x7fff_0000;
const RET_ERRNO: u32 = 0x0005_0000;

const LD_W_ABS: u16 = 0x20;
const JEQ_K: u16 = 0x15;
const AND_K: u16 = 0x54;
const RET_K: u16 = 0x06;

/// Offsets in `struct seccomp_data`.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;

/// One system call by name, with its number on the native ABI and on the
/// compat ABI (i386 on x86_64), where it exists.
struct Sys {
    name: &'static str,
    native: Option<u32>,
    compat: Option<u32>,
}

const fn sys(name: &'static str, native: Option<u32>, compat: Option<u32>) -> Sys {
    Sys {
        name,
        native,
        compat,
    }
}

/// Numbers from the kernel's syscall tables (arch/x86/entry/syscalls).
#[cfg(target_arch = "x86_64")]
const TABLE: &[Sys] = &[
    sys("init_module", Some(175), Some(128)),
    sys("finit_module", Some(313), Some(350)),
    sys("delete_module", Some(176), Some(129)),
    sys("create_module", Some(174), Some(127)),
    sys("get_kernel_syms", Some(177), Some(130)),
    sys("query_module", Some(178), Some(167)),
    sys("kexec_load", Some(246), Some(283)),
    sys("kexec_file_load", Some(320), None),
    sys("open_by_handle_at", Some(304), Some(342)),
    sys("add_key", Some(248), Some(286)),
    sys("request_key", Some(249), Some(287)),
    sys("keyctl", Some(250), Some(288)),
    sys("perf_event_open", Some(298), Some(336)),
    sys("bpf", Some(321), Some(357)),
    sys("swapon", Some(167), Some(87)),
    sys("swapoff", Some(168), Some(115)),
    sys("acct", Some(163), Some(51)),
    sys("iopl", Some(172), Some(110)),
    sys("ioperm", Some(173), Some(101)),
    sys("lookup_dcookie", Some(212), Some(253)),
    sys("nfsservctl", Some(180), Some(169)),
    sys("uselib", Some(134), Some(86)),
    sys("_sysctl", Some(156), Some(149)),
    sys("userfaultfd", Some(323), Some(374)),
    sys("quotactl", Some(179), Some(131)),
    sys("quotactl_fd", Some(443), Some(443)),
    sys("vm86", None, Some(166)),
    sys("vm86old", None, Some(113)),
];

/// Numbers from the generic syscall table (include/uapi/asm-generic/unistd.h).
#[cfg(target_arch = "aarch64")]
const TABLE: &[Sys] = &[
    sys("init_module", Some(105), None),
    sys("finit_module", Some(273), None),
    sys("delete_module", Some(106), None),
    sys("kexec_load", Some(104), None),
    sys("kexec_file_load", Some(294), None),
    sys("open_by_handle_at", Some(265), None),
    sys("add_key", Some(217), None),
    sys("request_key", Some(218), None),
    sys("keyctl", Some(219), None),
    sys("perf_event_open", Some(241), None),
    sys("bpf", Some(280), None),
    sys("swapon", Some(224), None),
    sys("swapoff", Some(225), None),
    sys("acct", Some(89), None),
    sys("lookup_dcookie", Some(18), None),
    sys("nfsservctl", Some(42), None),
    sys("userfaultfd", Some(282), None),
    sys("quotactl", Some(60), None),
    sys("quotactl_fd", Some(443), None),
    // Not on this architecture; named so one deny list fits every CPU.
    sys("create_module", None, None),
    sys("get_kernel_syms", None, None),
    sys("query_module", None, None),
    sys("iopl", None, None),
    sys("ioperm", None, None),
    sys("uselib", None, None),
    sys("_sysctl", None, None),
    sys("vm86", None, None),
    sys("vm86old", None, None),
];

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const TABLE: &[Sys] = &[];

#[cfg(target_arch = "x86_64")]
const NATIVE: u32 = AUDIT_ARCH_X86_64;
#[cfg(target_arch = "aarch64")]
const NATIVE: u32 = AUDIT_ARCH_AARCH64;
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const NATIVE: u32 = 0;

/// Building a filter failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SeccompError {
    /// A name that is not in our syscall table.
    #[error("unknown system call {0:?} in the seccomp deny list (add its numbers to kernel/src/seccomp.rs)")]
    UnknownSyscall(String),
    /// No syscall table for this CPU architecture.
    #[error("no seccomp syscall table for this architecture (x86_64 and aarch64 have one)")]
    UnsupportedArch,
    /// A profile that cannot be compiled (the message names the rule).
    #[error("{0}")]
    Profile(String),
}

/// A compiled filter, ready to install.
#[derive(Debug, Clone)]
pub struct Filter {
    prog: Vec<libc::sock_filter>,
    /// SECCOMP_FILTER_FLAG_* bits passed when installing.
    flags: u32,
}

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// One ABI's block: load the number, compare against each denied number,
/// allow on no match. Preceded by an architecture check that skips it.
fn abi_block(arch: u32, numbers: &[u32], mask_x32: bool, errno: u32) -> Vec<libc::sock_filter> {
    let mut body = vec![stmt(LD_W_ABS, OFF_NR)];
    if mask_x32 {
        // x32 calls are the x86_64 numbers with bit 30 set; fold them onto
        // the native numbers so one comparison covers both.
        body.push(stmt(AND_K, !X32_SYSCALL_BIT));
    }
    let k = numbers.len();
    for (i, n) in numbers.iter().enumerate() {
        body.push(jump(JEQ_K, *n, (k - i) as u8, 0));
    }
    body.push(stmt(RET_K, RET_ALLOW));
    body.push(stmt(RET_K, RET_ERRNO | (errno & 0xffff)));
    let mut out = vec![jump(JEQ_K, arch, 0, body.len() as u8)];
    out.extend(body);
    out
}

impl Filter {
    /// A filter under which every system call in `names` fails with
    /// `errno` and every other call is allowed, on all ABIs of this CPU.
    pub fn deny(names: &[&str], errno: Errno) -> Result<Filter, SeccompError> {
        if TABLE.is_empty() {
            return Err(SeccompError::UnsupportedArch);
        }
        let mut native = Vec::new();
        let mut compat = Vec::new();
        for name in names {
            let s = TABLE
                .iter()
                .find(|s| s.name == *name)
                .ok_or_else(|| SeccompError::UnknownSyscall(name.to_string()))?;
            native.extend(s.native);
            compat.extend(s.compat);
        }
        native.sort_unstable();
        native.dedup();
        compat.sort_unstable();
        compat.dedup();
        // Jump offsets are 8 bits: keep each block well below 255.
        assert!(
            native.len() < 200 && compat.len() < 200,
            "deny list too long"
        );
        let e = errno as u32;
        let mut prog = vec![stmt(LD_W_ABS, OFF_ARCH)];
        prog.extend(abi_block(NATIVE, &native, NATIVE == AUDIT_ARCH_X86_64, e));
        if !compat.is_empty() {
            prog.extend(abi_block(AUDIT_ARCH_I386, &compat, false, e));
        }
        // Another ABI (none exists on these CPUs): allow, like no match.
        prog.push(stmt(RET_K, RET_ALLOW));
        Ok(Filter { prog, flags: 0 })
    }

    /// Number of BPF instructions.
    pub fn len(&self) -> usize {
        self.prog.len()
    }

    /// True for a filter with no instructions (never built by `deny`).
    pub fn is_empty(&self) -> bool {
        self.prog.is_empty()
    }

    /// Installs the filter on the calling thread; it is inherited by every
    /// child and survives execve. Needs CAP_SYS_ADMIN (or no_new_privs set
    /// by the caller). Allocation-free, for use between clone and exec.
    pub fn install(&self) -> Result<(), Errno> {
        let fprog = libc::sock_fprog {
            len: self.prog.len() as u16,
            filter: self.prog.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: fprog points to our instructions, alive for the call.
        let r = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                self.flags as libc::c_ulong,
                &fprog as *const libc::sock_fprog,
            )
        };
        if r != 0 {
            return Err(Errno::last());
        }
        Ok(())
    }
}

/// Whether this kernel can filter system calls (`Seccomp:` in
/// /proc/self/status), for `vbuild check`.
pub fn available() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| s.lines().any(|l| l.starts_with("Seccomp:")))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_are_refused_by_name() {
        let e = Filter::deny(&["init_module", "frobnicate"], Errno::EPERM).unwrap_err();
        assert_eq!(e, SeccompError::UnknownSyscall("frobnicate".into()));
        assert!(e.to_string().contains("frobnicate"));
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn jumps_land_on_the_deny_return() {
        let f = Filter::deny(&["init_module", "keyctl", "vm86"], Errno::EPERM).unwrap();
        // Walk every comparison's true branch and check it lands on RET errno.
        for (i, ins) in f.prog.iter().enumerate() {
            if ins.code == JEQ_K && ins.k < 0x1000 {
                let target = &f.prog[i + 1 + ins.jt as usize];
                assert_eq!(target.code, RET_K);
                assert_eq!(target.k, RET_ERRNO | libc::EPERM as u32, "from {i}");
            }
        }
        // vm86 exists only on i386: one native comparison fewer.
        let native = f
            .prog
            .iter()
            .filter(|i| i.code == JEQ_K && (i.k == 175 || i.k == 250 || i.k == 166))
            .count();
        assert_eq!(native, 2 + 1, "175 and 250 native, 166 (vm86) compat");
    }

    /// Runs `f` in a forked child and returns its exit code.
    fn in_child(f: impl FnOnce() -> i32) -> i32 {
        // SAFETY: the child only makes system calls and exits.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                let code = f();
                unsafe { libc::_exit(code) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                match nix::sys::wait::waitpid(child, None).unwrap() {
                    nix::sys::wait::WaitStatus::Exited(_, c) => c,
                    other => panic!("child ended with {other:?}"),
                }
            }
        }
    }

    #[test]
    fn denied_calls_fail_with_eperm_and_others_still_work() {
        let f = Filter::deny(&["keyctl", "init_module"], Errno::EPERM).unwrap();
        let code = in_child(|| {
            // no_new_privs lets an unprivileged test install the filter too.
            unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
            if f.install().is_err() {
                return 10;
            }
            // KEYCTL_GET_KEYRING_ID of the session keyring.
            let r = unsafe { libc::syscall(libc::SYS_keyctl, 0, -3, 0) };
            if r != -1 || Errno::last() != Errno::EPERM {
                return 11;
            }
            let r = unsafe { libc::syscall(libc::SYS_init_module, 0usize, 0usize, 0usize) };
            if r != -1 || Errno::last() != Errno::EPERM {
                return 12;
            }
            if unsafe { libc::getppid() } <= 0 {
                return 13;
            }
            0
        });
        assert_eq!(code, 0);
        // Without the filter keyctl answers something other than EPERM.
        let code = in_child(|| {
            let r = unsafe { libc::syscall(libc::SYS_keyctl, 0, -3, 0) };
            if r == -1 && Errno::last() == Errno::EPERM {
                1
            } else {
                0
            }
        });
        assert_eq!(code, 0);
    }
}
