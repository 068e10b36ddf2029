//! A general seccomp compiler: a profile (default action, architectures,
//! rules by system call name with argument comparisons) turned into a
//! classic-BPF [`Filter`]. This is what an OCI runtime needs for the
//! runtime spec's `linux.seccomp`; the parsing of the JSON lives with the
//! runtime, the instruction layout here.
//!
//! Layout, per architecture: load the number; every call with argument
//! rules gets its own block (its rules in profile order, each falling to
//! the next on a mismatch, then the call's unconditional action or the
//! default); the calls with only an unconditional action are compared in
//! chains of at most [`CHAIN`] that jump to one shared return. Jumps are
//! 8-bit, so anything longer goes through an unconditional `JA`.
//!
//! Semantics follow libseccomp as runc uses it: names this table does not
//! know are skipped, rules whose action is the default are dropped, the
//! comparisons of one rule are all required (AND), and a call newer than
//! every call the profile names answers ENOSYS when the default is an
//! errno, so a C library falls back to an older call.

use super::{jump, stmt, Filter, SeccompError, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64};
use super::{LD_W_ABS, RET_K, X32_SYSCALL_BIT};

const JA: u16 = 0x05;
const JEQ_K: u16 = 0x15;
const JGT_K: u16 = 0x25;
const JGE_K: u16 = 0x35;
const JSET_K: u16 = 0x45;
const AND_K: u16 = 0x54;

/// The most comparisons in one chain sharing a return (below 255).
const CHAIN: usize = 200;
/// The kernel's limit on a filter's length.
const MAX_INSNS: usize = 4096;

/// What a matching rule (or the default) does to the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Kill the calling thread.
    KillThread,
    /// Kill the whole process.
    KillProcess,
    /// Send SIGSYS.
    Trap,
    /// Fail with this errno.
    Errno(u16),
    /// Notify a ptrace tracer with this value.
    Trace(u16),
    /// Allow and log.
    Log,
    /// Allow.
    Allow,
}

impl Action {
    /// The SECCOMP_RET_* value.
    fn ret(self) -> u32 {
        match self {
            Action::KillThread => 0,
            Action::KillProcess => 0x8000_0000,
            Action::Trap => 0x0003_0000,
            Action::Errno(e) => 0x0005_0000 | e as u32,
            Action::Trace(e) => 0x7ff0_0000 | e as u32,
            Action::Log => 0x7ffc_0000,
            Action::Allow => 0x7fff_0000,
        }
    }
}

/// An argument comparison (libseccomp's SCMP_CMP_*).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `arg != value`.
    Ne,
    /// `arg < value` (unsigned).
    Lt,
    /// `arg <= value`.
    Le,
    /// `arg == value`.
    Eq,
    /// `arg >= value`.
    Ge,
    /// `arg > value`.
    Gt,
    /// `arg & value == value_two`.
    MaskedEq,
}

/// One comparison of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArgCmp {
    /// Which argument, 0 to 5.
    pub index: u8,
    /// The value (the mask for `MaskedEq`).
    pub value: u64,
    /// The value a masked argument must equal.
    pub value_two: u64,
    /// The comparison.
    pub op: Op,
}

/// One rule: calls by name, an action, and comparisons that must all hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// System call names (unknown ones are skipped).
    pub names: Vec<String>,
    /// What happens when the rule matches.
    pub action: Action,
    /// All must hold (none: the rule always matches).
    pub args: Vec<ArgCmp>,
}

/// An ABI a process can enter the kernel through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// x86_64's native ABI.
    X86_64,
    /// i386 (compat).
    X86,
    /// x32 (x86_64 numbers with bit 30 set).
    X32,
}

/// A whole profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// What calls no rule matches get.
    pub default: Action,
    /// The ABIs the rules apply to; calls through any other ABI kill the
    /// process (libseccomp's bad-architecture action). Empty: native only.
    pub arches: Vec<Arch>,
    /// The rules.
    pub rules: Vec<Rule>,
    /// SECCOMP_FILTER_FLAG_* bits for installing.
    pub flags: u32,
}

/// Numbers of `name` on x86_64 and i386, if the table knows it.
pub fn numbers(name: &str) -> Option<(Option<u32>, Option<u32>)> {
    #[cfg(target_arch = "x86_64")]
    {
        let t = crate::syscall_table::X86;
        t.binary_search_by(|(n, _, _)| (*n).cmp(name))
            .ok()
            .map(|i| (t[i].1, t[i].2))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = name;
        None
    }
}

/// One call's rules on one ABI.
struct Call {
    nr: u32,
    /// (action, comparisons) in profile order.
    conditional: Vec<(Action, Vec<ArgCmp>)>,
    unconditional: Option<Action>,
}

/// An instruction whose jumps may still name the rule's failure exit.
#[derive(Clone, Copy)]
enum To {
    /// The next instruction, or this many ahead.
    Ahead(u8),
    /// The first instruction after the rule's return.
    Fail,
}

struct Ins {
    code: u16,
    k: u32,
    jt: To,
    jf: To,
}

fn ins(code: u16, k: u32) -> Ins {
    Ins {
        code,
        k,
        jt: To::Ahead(0),
        jf: To::Ahead(0),
    }
}

fn cond(code: u16, k: u32, jt: To, jf: To) -> Ins {
    Ins { code, k, jt, jf }
}

/// Offsets in `struct seccomp_data` of argument `i`'s low and high words
/// (little-endian).
fn arg_words(i: u8) -> (u32, u32) {
    let lo = 16 + 8 * i as u32;
    (lo, lo + 4)
}

/// Instructions that fall through when `c` holds and go to `Fail` when not.
fn compare(c: &ArgCmp, out: &mut Vec<Ins>) {
    let (lo, hi) = arg_words(c.index);
    let (vlo, vhi) = (c.value as u32, (c.value >> 32) as u32);
    let a = To::Ahead(0);
    let f = To::Fail;
    match c.op {
        Op::Eq => {
            out.push(ins(LD_W_ABS, hi));
            out.push(cond(JEQ_K, vhi, a, f));
            out.push(ins(LD_W_ABS, lo));
            out.push(cond(JEQ_K, vlo, a, f));
        }
        Op::Ne => {
            out.push(ins(LD_W_ABS, hi));
            out.push(cond(JEQ_K, vhi, a, To::Ahead(2)));
            out.push(ins(LD_W_ABS, lo));
            out.push(cond(JEQ_K, vlo, f, a));
        }
        Op::MaskedEq => {
            let (dlo, dhi) = (c.value_two as u32, (c.value_two >> 32) as u32);
            out.push(ins(LD_W_ABS, hi));
            out.push(ins(AND_K, vhi));
            out.push(cond(JEQ_K, dhi, a, f));
            out.push(ins(LD_W_ABS, lo));
            out.push(ins(AND_K, vlo));
            out.push(cond(JEQ_K, dlo, a, f));
        }
        Op::Gt | Op::Ge => {
            let low = if c.op == Op::Gt { JGT_K } else { JGE_K };
            out.push(ins(LD_W_ABS, hi));
            out.push(cond(JGT_K, vhi, To::Ahead(3), a));
            out.push(cond(JEQ_K, vhi, a, f));
            out.push(ins(LD_W_ABS, lo));
            out.push(cond(low, vlo, a, f));
        }
        Op::Lt | Op::Le => {
            // Not (arg >= v) / not (arg > v).
            let low = if c.op == Op::Lt { JGE_K } else { JGT_K };
            out.push(ins(LD_W_ABS, hi));
            out.push(cond(JGT_K, vhi, f, a));
            out.push(cond(JEQ_K, vhi, a, To::Ahead(2)));
            out.push(ins(LD_W_ABS, lo));
            out.push(cond(low, vlo, f, a));
        }
    }
}

/// One conditional rule: its comparisons, then the return. `Fail` is the
/// instruction after it.
fn rule_block(action: Action, args: &[ArgCmp]) -> Result<Vec<libc::sock_filter>, SeccompError> {
    let mut body = Vec::new();
    for c in args {
        compare(c, &mut body);
    }
    body.push(ins(RET_K, action.ret()));
    let n = body.len();
    if n > 255 {
        return Err(SeccompError::Profile(
            "a seccomp rule has too many argument comparisons".into(),
        ));
    }
    let resolve = |i: usize, t: To| match t {
        To::Ahead(k) => k,
        To::Fail => (n - (i + 1)) as u8,
    };
    Ok(body
        .iter()
        .enumerate()
        .map(|(i, b)| jump(b.code, b.k, resolve(i, b.jt), resolve(i, b.jf)))
        .collect())
}

/// A comparison of the loaded number with `nr` that skips `len`
/// instructions when it differs (through a JA when that is far).
fn skip_unless(nr: u32, len: usize, out: &mut Vec<libc::sock_filter>) {
    if len <= 255 {
        out.push(jump(JEQ_K, nr, 0, len as u8));
    } else {
        out.push(jump(JEQ_K, nr, 1, 0));
        out.push(stmt(JA, len as u32));
    }
}

/// The block of one ABI: the calls' comparisons, then the default.
fn abi_block(
    calls: &[Call],
    default: Action,
    x32: Option<bool>,
) -> Result<Vec<libc::sock_filter>, SeccompError> {
    let mut out = vec![stmt(LD_W_ABS, 0)];
    match x32 {
        // x32 calls share the native rules, the bit folded away.
        Some(true) => out.push(stmt(AND_K, !X32_SYSCALL_BIT)),
        Some(false) => {
            out.push(jump(JSET_K, X32_SYSCALL_BIT, 0, 1));
            out.push(stmt(RET_K, Action::KillProcess.ret()));
        }
        None => {}
    }
    for c in calls.iter().filter(|c| !c.conditional.is_empty()) {
        let mut block = Vec::new();
        for (action, args) in &c.conditional {
            block.extend(rule_block(*action, args)?);
        }
        block.push(stmt(RET_K, c.unconditional.unwrap_or(default).ret()));
        // The block reloads argument words: reload the number after it.
        skip_unless(c.nr, block.len(), &mut out);
        out.extend(block);
    }
    // Calls with one unconditional action, grouped by action into chains.
    let mut by_action: Vec<(Action, Vec<u32>)> = Vec::new();
    for c in calls.iter().filter(|c| c.conditional.is_empty()) {
        let a = c.unconditional.expect("a call has a rule");
        match by_action.iter_mut().find(|(x, _)| *x == a) {
            Some((_, v)) => v.push(c.nr),
            None => by_action.push((a, vec![c.nr])),
        }
    }
    for (action, nrs) in &by_action {
        for chunk in nrs.chunks(CHAIN) {
            let k = chunk.len();
            for (i, nr) in chunk.iter().enumerate() {
                // On a match jump over the rest and the JA to the return.
                out.push(jump(JEQ_K, *nr, (k - i) as u8, 0));
            }
            out.push(stmt(JA, 1));
            out.push(stmt(RET_K, action.ret()));
        }
    }
    // Calls newer than the profile fail with ENOSYS, not the default errno.
    let newest = calls.iter().map(|c| c.nr).max();
    if let (Action::Errno(e), Some(max)) = (default, newest) {
        if e != libc::ENOSYS as u16 {
            out.push(jump(JGT_K, max, 0, 1));
            out.push(stmt(RET_K, Action::Errno(libc::ENOSYS as u16).ret()));
        }
    }
    out.push(stmt(RET_K, default.ret()));
    Ok(out)
}

/// Gathers the rules by call number on one ABI (`compat`: i386 numbers).
fn calls_for(p: &Profile, compat: bool) -> Result<Vec<Call>, SeccompError> {
    let mut calls: Vec<Call> = Vec::new();
    for r in &p.rules {
        if r.action == p.default {
            continue;
        }
        for a in &r.args {
            if a.index > 5 {
                return Err(SeccompError::Profile(format!(
                    "seccomp rule for {:?}: argument index {} is above 5",
                    r.names, a.index
                )));
            }
        }
        // Two comparisons of one argument cannot both hold in most cases
        // a profile means: runc adds each as its own rule (OR), so do we.
        let mut seen = [0u8; 6];
        for a in &r.args {
            seen[a.index as usize] += 1;
        }
        let alternatives: Vec<Vec<ArgCmp>> = if seen.iter().any(|n| *n > 1) {
            r.args.iter().map(|a| vec![*a]).collect()
        } else {
            vec![r.args.clone()]
        };
        for name in &r.names {
            let Some((native, i386)) = numbers(name) else {
                continue;
            };
            let Some(nr) = (if compat { i386 } else { native }) else {
                continue;
            };
            let i = match calls.iter().position(|c| c.nr == nr) {
                Some(i) => i,
                None => {
                    calls.push(Call {
                        nr,
                        conditional: vec![],
                        unconditional: None,
                    });
                    calls.len() - 1
                }
            };
            let c = &mut calls[i];
            if r.args.is_empty() {
                // The first rule without arguments wins, as in libseccomp
                // (runc 1.1 answers a call listed ERRNO(1) then ERRNO(13)
                // with EPERM). podman's default profile relies on it: it
                // allows setns, mount, unshare... and lists them again as
                // ERRNO(EPERM) for containers without CAP_SYS_ADMIN.
                if c.unconditional.is_none() {
                    c.unconditional = Some(r.action);
                }
            } else {
                for alt in &alternatives {
                    c.conditional.push((r.action, alt.clone()));
                }
            }
        }
    }
    Ok(calls)
}

impl Profile {
    /// Compiles the profile for this CPU.
    pub fn compile(&self) -> Result<Filter, SeccompError> {
        if !cfg!(target_arch = "x86_64") {
            return Err(SeccompError::UnsupportedArch);
        }
        let arches = if self.arches.is_empty() {
            vec![Arch::X86_64]
        } else {
            self.arches.clone()
        };
        let native = arches.contains(&Arch::X86_64) || arches.contains(&Arch::X32);
        let mut prog = vec![stmt(LD_W_ABS, 4)];
        let mut blocks = Vec::new();
        if native {
            let calls = calls_for(self, false)?;
            let x32 = match (arches.contains(&Arch::X86_64), arches.contains(&Arch::X32)) {
                (true, x) => Some(x),
                // x32 without x86_64: native calls are a bad architecture.
                (false, _) => {
                    return Err(SeccompError::Profile(
                        "seccomp architectures: SCMP_ARCH_X32 without SCMP_ARCH_X86_64 is not supported; add it".into(),
                    ))
                }
            };
            blocks.push((AUDIT_ARCH_X86_64, abi_block(&calls, self.default, x32)?));
        }
        if arches.contains(&Arch::X86) {
            let calls = calls_for(self, true)?;
            blocks.push((AUDIT_ARCH_I386, abi_block(&calls, self.default, None)?));
        }
        for (arch, block) in blocks {
            skip_unless(arch, block.len(), &mut prog);
            prog.extend(block);
        }
        prog.push(stmt(RET_K, Action::KillProcess.ret()));
        if prog.len() > MAX_INSNS {
            return Err(SeccompError::Profile(format!(
                "seccomp profile compiles to {} instructions, above the kernel's {MAX_INSNS}",
                prog.len()
            )));
        }
        Ok(Filter {
            prog,
            flags: self.flags,
        })
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    /// A tiny classic-BPF interpreter over `seccomp_data`, to check
    /// the compiled program's answers without installing it.
    fn run(f: &Filter, arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_le_bytes());
        data[4..8].copy_from_slice(&arch.to_le_bytes());
        for (i, a) in args.iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
        }
        let word = |off: u32| {
            let o = off as usize;
            u32::from_le_bytes(data[o..o + 4].try_into().unwrap())
        };
        let mut acc = 0u32;
        let mut pc = 0usize;
        loop {
            let i = f.prog[pc];
            pc += 1;
            let branch = |t: bool| if t { i.jt as usize } else { i.jf as usize };
            match i.code {
                LD_W_ABS => acc = word(i.k),
                AND_K => acc &= i.k,
                JA => pc += i.k as usize,
                JEQ_K => pc += branch(acc == i.k),
                JGT_K => pc += branch(acc > i.k),
                JGE_K => pc += branch(acc >= i.k),
                JSET_K => pc += branch(acc & i.k != 0),
                RET_K => return i.k,
                c => panic!("unexpected opcode {c:#x}"),
            }
        }
    }

    fn rule(names: &[&str], action: Action, args: Vec<ArgCmp>) -> Rule {
        Rule {
            names: names.iter().map(|s| s.to_string()).collect(),
            action,
            args,
        }
    }

    fn cmp(index: u8, op: Op, value: u64, value_two: u64) -> ArgCmp {
        ArgCmp {
            index,
            value,
            value_two,
            op,
        }
    }

    const EPERM: u32 = 0x0005_0000 | libc::EPERM as u32;
    const ALLOW: u32 = 0x7fff_0000;
    const X64: u32 = AUDIT_ARCH_X86_64;

    #[test]
    fn a_deny_list_answers_eperm_for_its_calls_only_and_skips_unknown_names() {
        let p = Profile {
            default: Action::Allow,
            arches: vec![Arch::X86_64, Arch::X86],
            rules: vec![rule(
                &["mkdir", "mkdirat", "no_such_call"],
                Action::Errno(libc::EPERM as u16),
                vec![],
            )],
            flags: 0,
        };
        let f = p.compile().unwrap();
        assert_eq!(run(&f, X64, 83, [0; 6]), EPERM);
        assert_eq!(run(&f, X64, 258, [0; 6]), EPERM);
        assert_eq!(run(&f, X64, 0, [0; 6]), ALLOW);
        // i386 mkdir is 39; 83 there is another call.
        assert_eq!(run(&f, AUDIT_ARCH_I386, 39, [0; 6]), EPERM);
        assert_eq!(run(&f, AUDIT_ARCH_I386, 83, [0; 6]), ALLOW);
        // x32 is not listed: its calls kill the process.
        assert_eq!(run(&f, X64, 83 | X32_SYSCALL_BIT, [0; 6]), 0x8000_0000);
        // Another architecture: killed.
        assert_eq!(run(&f, 0xC000_00B7, 83, [0; 6]), 0x8000_0000);
    }

    #[test]
    fn every_comparison_holds_exactly_where_it_should() {
        let big = 0x1_0000_0005u64;
        let values = [0u64, 4, 5, 6, big - 1, big, big + 1, u64::MAX];
        for op in [Op::Ne, Op::Lt, Op::Le, Op::Eq, Op::Ge, Op::Gt] {
            for v in [5u64, big] {
                let p = Profile {
                    default: Action::Allow,
                    arches: vec![],
                    rules: vec![rule(&["write"], Action::Errno(1), vec![cmp(2, op, v, 0)])],
                    flags: 0,
                };
                let f = p.compile().unwrap();
                for a in values {
                    let want = match op {
                        Op::Ne => a != v,
                        Op::Lt => a < v,
                        Op::Le => a <= v,
                        Op::Eq => a == v,
                        Op::Ge => a >= v,
                        Op::Gt => a > v,
                        Op::MaskedEq => unreachable!(),
                    };
                    let got = run(&f, X64, 1, [0, 0, a, 0, 0, 0]) == EPERM;
                    assert_eq!(got, want, "{op:?} {a:#x} against {v:#x}");
                }
            }
        }
        let p = Profile {
            default: Action::Allow,
            arches: vec![],
            rules: vec![rule(
                &["clone"],
                Action::Errno(1),
                vec![cmp(0, Op::MaskedEq, 0x1_0000_00ff, 0x1_0000_0011)],
            )],
            flags: 0,
        };
        let f = p.compile().unwrap();
        assert_eq!(run(&f, X64, 56, [0x1_0000_ab11, 0, 0, 0, 0, 0]), EPERM);
        assert_eq!(run(&f, X64, 56, [0xab11, 0, 0, 0, 0, 0]), ALLOW);
        assert_eq!(run(&f, X64, 56, [0x1_0000_ab12, 0, 0, 0, 0, 0]), ALLOW);
    }

    #[test]
    fn comparisons_of_one_rule_are_anded_and_rules_tried_in_order() {
        // podman's socket rules: audit netlink sockets fail with EINVAL.
        let p = Profile {
            default: Action::Errno(libc::ENOSYS as u16),
            arches: vec![],
            rules: vec![
                rule(
                    &["socket"],
                    Action::Errno(22),
                    vec![cmp(0, Op::Eq, 16, 0), cmp(2, Op::Eq, 9, 0)],
                ),
                rule(&["socket"], Action::Allow, vec![cmp(2, Op::Ne, 9, 0)]),
                rule(&["socket"], Action::Allow, vec![cmp(0, Op::Ne, 16, 0)]),
            ],
            flags: 0,
        };
        let f = p.compile().unwrap();
        assert_eq!(run(&f, X64, 41, [16, 3, 9, 0, 0, 0]), 0x0005_0000 | 22);
        assert_eq!(run(&f, X64, 41, [16, 3, 0, 0, 0, 0]), ALLOW);
        assert_eq!(run(&f, X64, 41, [2, 1, 9, 0, 0, 0]), ALLOW);
        // Not listed at all: the default.
        assert_eq!(run(&f, X64, 0, [0; 6]), 0x0005_0000 | libc::ENOSYS as u32);
    }

    #[test]
    fn long_allow_lists_chain_and_newer_calls_get_enosys() {
        let names: Vec<&str> = crate::syscall_table::X86
            .iter()
            .filter(|(n, a, _)| a.is_some() && *n != "mkdir")
            .map(|(n, _, _)| *n)
            .collect();
        let p = Profile {
            default: Action::Errno(libc::EPERM as u16),
            arches: vec![Arch::X86_64, Arch::X86, Arch::X32],
            rules: vec![rule(&names, Action::Allow, vec![])],
            flags: 0,
        };
        let f = p.compile().unwrap();
        assert!(f.len() < MAX_INSNS, "{}", f.len());
        for (n, nr, _) in crate::syscall_table::X86 {
            let Some(nr) = nr else { continue };
            let want = if *n == "mkdir" { EPERM } else { ALLOW };
            assert_eq!(run(&f, X64, *nr, [0; 6]), want, "{n}");
            // x32 is listed: the same rules with bit 30.
            assert_eq!(run(&f, X64, *nr | X32_SYSCALL_BIT, [0; 6]), want, "x32 {n}");
        }
        assert_eq!(
            run(&f, X64, 1000, [0; 6]),
            0x0005_0000 | libc::ENOSYS as u32
        );
    }

    #[test]
    fn the_kernel_accepts_the_filter_and_applies_it() {
        let p = Profile {
            default: Action::Allow,
            arches: vec![Arch::X86_64, Arch::X86, Arch::X32],
            rules: vec![
                rule(
                    &["mkdir", "mkdirat"],
                    Action::Errno(libc::EPERM as u16),
                    vec![],
                ),
                rule(
                    &["getpgid"],
                    Action::Errno(libc::EDOM as u16),
                    vec![cmp(0, Op::Eq, 1, 0)],
                ),
            ],
            flags: 0,
        };
        let f = p.compile().unwrap();
        // SAFETY: the child only makes system calls and exits.
        let code = match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => unsafe {
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
                let mut code = 0;
                if f.install().is_err() {
                    code = 10;
                } else if libc::mkdir(c"/nonexistent-vbuild-dir".as_ptr(), 0o755) != -1
                    || *libc::__errno_location() != libc::EPERM
                {
                    code = 11;
                } else if libc::getpgid(1) != -1 || *libc::__errno_location() != libc::EDOM {
                    code = 12;
                } else if libc::getpgid(0) <= 0 {
                    code = 13;
                }
                libc::_exit(code)
            },
            nix::unistd::ForkResult::Parent { child } => {
                match nix::sys::wait::waitpid(child, None).unwrap() {
                    nix::sys::wait::WaitStatus::Exited(_, c) => c,
                    other => panic!("child ended with {other:?}"),
                }
            }
        };
        assert_eq!(code, 0);
    }

    #[test]
    fn the_first_unconditional_rule_of_a_call_wins_as_in_libseccomp() {
        let p = Profile {
            default: Action::Errno(1),
            arches: vec![],
            rules: vec![
                rule(&["chroot", "setns"], Action::Allow, vec![]),
                rule(&["setns"], Action::KillProcess, vec![]),
                rule(&["chroot"], Action::Errno(13), vec![]),
            ],
            flags: 0,
        };
        let f = p.compile().unwrap();
        // chroot is 161, setns 308 on x86_64.
        assert_eq!(run(&f, X64, 161, [0; 6]), ALLOW);
        assert_eq!(run(&f, X64, 308, [0; 6]), ALLOW);
    }
}
