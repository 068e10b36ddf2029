//! cgroup v2 device filter. cgroup2 has no devices.allow file: the kernel
//! asks a BPF_PROG_TYPE_CGROUP_DEVICE program attached to the group (and
//! its ancestors) on every open and mknod of a device node. We assemble that
//! program from the allowlist — a chain of compare-and-jump blocks, one per
//! rule, returning 1 (allow) on the first match and 0 (deny) after the last —
//! load it with bpf(2) and attach it with BPF_F_ALLOW_MULTI, so programs a
//! guest's systemd attaches to its own sub-groups only add restrictions.
//! Earlier programs we attached to the same group are detached afterwards,
//! so a second call replaces the list instead of intersecting with it.

use super::{io_err, CgroupError, DeviceKind, DeviceRule};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

// bpf(2) commands, program and attach types (include/uapi/linux/bpf.h).
const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_DETACH: libc::c_int = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_int = 13;
const BPF_PROG_QUERY: libc::c_int = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

// struct bpf_cgroup_dev_ctx: access_type = (access << 16) | type, major, minor.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;

/// One eBPF instruction (struct bpf_insn).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Insn {
    code: u8,
    regs: u8, // dst in the low nibble, src in the high one
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

// Opcodes used (class | op | source).
const LDX_MEM_W: u8 = 0x61; // dst = *(u32 *)(src + off)
const ALU64_MOV_K: u8 = 0xb7; // dst = imm
const ALU64_MOV_X: u8 = 0xbf; // dst = src
const ALU64_AND_K: u8 = 0x57; // dst &= imm
const ALU64_RSH_K: u8 = 0x77; // dst >>= imm
const JMP_JNE_K: u8 = 0x55; // if dst != imm goto pc + off
const EXIT: u8 = 0x95;

/// Registers: r1 = context; r2 = device type; r3 = requested access;
/// r4 = major; r5 = minor; r6 = scratch; r0 = verdict.
pub(crate) fn program(rules: &[DeviceRule]) -> Vec<Insn> {
    let mut p = vec![
        insn(LDX_MEM_W, 2, 1, 0, 0),
        insn(ALU64_MOV_X, 3, 2, 0, 0),
        insn(ALU64_AND_K, 2, 0, 0, 0xffff),
        insn(ALU64_RSH_K, 3, 0, 0, 16),
        insn(LDX_MEM_W, 4, 1, 4, 0),
        insn(LDX_MEM_W, 5, 1, 8, 0),
    ];
    for r in rules {
        let allowed = (if r.read { ACC_READ } else { 0 })
            | (if r.write { ACC_WRITE } else { 0 })
            | (if r.mknod { ACC_MKNOD } else { 0 });
        if allowed == 0 {
            continue;
        }
        // (instruction, jumps to the next rule when true)
        let mut block: Vec<(Insn, bool)> = Vec::new();
        match r.kind {
            DeviceKind::Char => block.push((insn(JMP_JNE_K, 2, 0, 0, DEV_CHAR), true)),
            DeviceKind::Block => block.push((insn(JMP_JNE_K, 2, 0, 0, DEV_BLOCK), true)),
            DeviceKind::All => {}
        }
        let all = ACC_READ | ACC_WRITE | ACC_MKNOD;
        if allowed != all {
            // Every requested bit must be allowed: (access & !allowed) == 0.
            block.push((insn(ALU64_MOV_X, 6, 3, 0, 0), false));
            block.push((insn(ALU64_AND_K, 6, 0, 0, all & !allowed), false));
            block.push((insn(JMP_JNE_K, 6, 0, 0, 0), true));
        }
        if let Some(major) = r.major {
            block.push((insn(JMP_JNE_K, 4, 0, 0, major as i32), true));
        }
        if let Some(minor) = r.minor {
            block.push((insn(JMP_JNE_K, 5, 0, 0, minor as i32), true));
        }
        block.push((insn(ALU64_MOV_K, 0, 0, 0, 1), false));
        block.push((insn(EXIT, 0, 0, 0, 0), false));
        let len = block.len();
        for (i, (mut ins, to_next)) in block.into_iter().enumerate() {
            if to_next {
                ins.off = (len - i - 1) as i16;
            }
            p.push(ins);
        }
    }
    p.push(insn(ALU64_MOV_K, 0, 0, 0, 0));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
}

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

#[repr(C)]
#[derive(Default)]
struct GetFdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

/// bpf(2); returns the non-negative result or the errno.
fn bpf<T>(cmd: libc::c_int, attr: &mut T) -> std::io::Result<libc::c_long> {
    // SAFETY: attr is a live, properly laid out bpf_attr prefix of size_of::<T>().
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn fd_from(r: libc::c_long) -> OwnedFd {
    // SAFETY: the kernel just returned this fd to us; nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(r as i32) }
}

fn load(prog: &[Insn]) -> Result<OwnedFd, String> {
    let license = c"GPL";
    let mut log = vec![0u8; 64 * 1024];
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: prog.len() as u32,
        insns: prog.as_ptr() as u64,
        license: license.as_ptr() as u64,
        expected_attach_type: BPF_CGROUP_DEVICE,
        ..Default::default()
    };
    attr.prog_name[..7].copy_from_slice(b"vbuild\0");
    match bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => Ok(fd_from(fd)),
        Err(e) => {
            // Load again with the verifier's log for the message.
            attr.log_level = 1;
            attr.log_size = log.len() as u32;
            attr.log_buf = log.as_mut_ptr() as u64;
            let _ = bpf(BPF_PROG_LOAD, &mut attr);
            let text = String::from_utf8_lossy(&log);
            let text = text.trim_end_matches('\0').trim();
            let last = text.lines().last().unwrap_or("");
            Err(format!("loading the device filter program: {e} {last}"))
        }
    }
}

/// The ids of programs attached directly to the group (not inherited).
fn attached(cg: &OwnedFd) -> std::io::Result<Vec<u32>> {
    let mut ids = vec![0u32; 64];
    let mut attr = QueryAttr {
        target_fd: cg.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        ..Default::default()
    };
    bpf(BPF_PROG_QUERY, &mut attr)?;
    ids.truncate(attr.prog_cnt as usize);
    Ok(ids)
}

/// Attaches a program allowing only `rules` to the cgroup2 directory `dir`.
pub(crate) fn restrict(dir: &Path, rules: &[DeviceRule]) -> Result<(), CgroupError> {
    let fail = |msg: String| {
        CgroupError::Unsupported(format!(
            "{}: {msg} (the kernel needs CONFIG_CGROUP_BPF and CAP_SYS_ADMIN)",
            dir.display()
        ))
    };
    let cg: OwnedFd = std::fs::File::open(dir).map_err(io_err(dir))?.into();
    let old = attached(&cg).map_err(|e| fail(format!("querying device programs: {e}")))?;
    let prog = load(&program(rules)).map_err(fail)?;
    let mut attr = AttachAttr {
        target_fd: cg.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        ..Default::default()
    };
    bpf(BPF_PROG_ATTACH, &mut attr).map_err(|e| fail(format!("attaching: {e}")))?;
    for id in old {
        let mut get = GetFdAttr {
            prog_id: id,
            ..Default::default()
        };
        let Ok(fd) = bpf(BPF_PROG_GET_FD_BY_ID, &mut get) else {
            continue; // already gone
        };
        let old_fd = fd_from(fd);
        let mut det = AttachAttr {
            target_fd: cg.as_raw_fd() as u32,
            attach_bpf_fd: old_fd.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            ..Default::default()
        };
        bpf(BPF_PROG_DETACH, &mut det)
            .map_err(|e| fail(format!("detaching the old filter: {e}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_char_rule_compiles_to_type_major_minor_checks() {
        let p = program(&[DeviceRule::char(1, 3)]);
        // 6 loads, 3 compares + allow + exit, deny + exit.
        assert_eq!(p.len(), 6 + 5 + 2);
        assert_eq!(p[6], insn(JMP_JNE_K, 2, 0, 4, DEV_CHAR));
        assert_eq!(p[7], insn(JMP_JNE_K, 4, 0, 3, 1));
        assert_eq!(p[8], insn(JMP_JNE_K, 5, 0, 2, 3));
        assert_eq!(p[9], insn(ALU64_MOV_K, 0, 0, 0, 1));
        assert_eq!(p[11], insn(ALU64_MOV_K, 0, 0, 0, 0));
    }

    #[test]
    fn partial_access_checks_the_requested_bits() {
        let rule = DeviceRule {
            kind: DeviceKind::All,
            major: None,
            minor: None,
            read: false,
            write: false,
            mknod: true,
        };
        let p = program(&[rule]);
        assert_eq!(p[6], insn(ALU64_MOV_X, 6, 3, 0, 0));
        assert_eq!(p[7], insn(ALU64_AND_K, 6, 0, 0, ACC_READ | ACC_WRITE));
        assert_eq!(p[8], insn(JMP_JNE_K, 6, 0, 2, 0));
    }

    #[test]
    fn no_rules_denies_everything() {
        let p = program(&[]);
        assert_eq!(
            &p[6..],
            &[insn(ALU64_MOV_K, 0, 0, 0, 0), insn(EXIT, 0, 0, 0, 0)]
        );
    }
}
