//! `linux.seccomp` of the runtime spec read into the kernel crate's
//! seccomp profile and compiled. Every field is checked here, so a typo
//! in an action or operator is one error naming it, before anything is
//! created.

use crate::error::OciError;
use serde::Deserialize;
use vbuild_kernel::seccomp::profile::{Action, Arch, ArgCmp, Op, Profile, Rule};
use vbuild_kernel::seccomp::Filter;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SpecSeccomp {
    default_action: String,
    default_errno_ret: Option<u32>,
    #[serde(default)]
    architectures: Option<Vec<String>>,
    #[serde(default)]
    flags: Option<Vec<String>>,
    listener_path: Option<String>,
    listener_metadata: Option<String>,
    #[serde(default)]
    syscalls: Option<Vec<SpecSyscall>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SpecSyscall {
    names: Vec<String>,
    action: String,
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<SpecArg>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SpecArg {
    index: u32,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: String,
}

fn bad(what: String) -> OciError {
    OciError::Config(format!("linux.seccomp: {what}"))
}

fn action(name: &str, errno: Option<u32>, at: &str) -> Result<Action, OciError> {
    let errno = |default: u32| -> Result<u16, OciError> {
        let e = errno.unwrap_or(default);
        u16::try_from(e)
            .ok()
            .filter(|e| *e < 4096)
            .ok_or_else(|| bad(format!("{at}: errnoRet {e} is not an errno (0..4095)")))
    };
    Ok(match name {
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => Action::KillThread,
        "SCMP_ACT_KILL_PROCESS" => Action::KillProcess,
        "SCMP_ACT_TRAP" => Action::Trap,
        "SCMP_ACT_ERRNO" => Action::Errno(errno(libc::EPERM as u32)?),
        "SCMP_ACT_TRACE" => Action::Trace(errno(libc::EPERM as u32)?),
        "SCMP_ACT_LOG" => Action::Log,
        "SCMP_ACT_ALLOW" => Action::Allow,
        "SCMP_ACT_NOTIFY" => {
            return Err(OciError::Unsupported(format!(
                "linux.seccomp: {at}: SCMP_ACT_NOTIFY (a seccomp agent) is not supported by vbuild-runc; use another action"
            )))
        }
        other => {
            return Err(bad(format!(
                "{at}: {other:?} is not a seccomp action (SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, SCMP_ACT_KILL_PROCESS...)"
            )))
        }
    })
}

fn op(name: &str, at: &str) -> Result<Op, OciError> {
    Ok(match name {
        "SCMP_CMP_NE" => Op::Ne,
        "SCMP_CMP_LT" => Op::Lt,
        "SCMP_CMP_LE" => Op::Le,
        "SCMP_CMP_EQ" => Op::Eq,
        "SCMP_CMP_GE" => Op::Ge,
        "SCMP_CMP_GT" => Op::Gt,
        "SCMP_CMP_MASKED_EQ" => Op::MaskedEq,
        other => {
            return Err(bad(format!(
            "{at}: {other:?} is not a comparison (SCMP_CMP_EQ, SCMP_CMP_NE, SCMP_CMP_MASKED_EQ...)"
        )))
        }
    })
}

/// SECCOMP_FILTER_FLAG_* by name.
fn flag(name: &str) -> Result<u32, OciError> {
    Ok(match name {
        "SECCOMP_FILTER_FLAG_TSYNC" => 1,
        "SECCOMP_FILTER_FLAG_LOG" => 2,
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => 4,
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" => 32,
        "SECCOMP_FILTER_FLAG_NEW_LISTENER" => {
            return Err(OciError::Unsupported(
                "linux.seccomp.flags: SECCOMP_FILTER_FLAG_NEW_LISTENER (a seccomp agent) is not supported by vbuild-runc; remove it".into(),
            ))
        }
        other => return Err(bad(format!("flags: {other:?} is not a seccomp filter flag"))),
    })
}

/// The profile of `linux.seccomp` (the raw JSON value).
pub fn profile(v: &serde_json::Value) -> Result<Profile, OciError> {
    let s: SpecSeccomp = serde_json::from_value(v.clone()).map_err(|e| bad(e.to_string()))?;
    if s.listener_path.as_deref().is_some_and(|p| !p.is_empty())
        || s.listener_metadata
            .as_deref()
            .is_some_and(|p| !p.is_empty())
    {
        return Err(OciError::Unsupported(
            "linux.seccomp.listenerPath: seccomp agents are not supported by vbuild-runc; remove it".into(),
        ));
    }
    let default = action(&s.default_action, s.default_errno_ret, "defaultAction")?;
    let mut arches = Vec::new();
    for a in s.architectures.unwrap_or_default() {
        match a.as_str() {
            "SCMP_ARCH_X86_64" => arches.push(Arch::X86_64),
            "SCMP_ARCH_X86" => arches.push(Arch::X86),
            "SCMP_ARCH_X32" => arches.push(Arch::X32),
            // Another CPU's ABI cannot enter this kernel: nothing to filter.
            a if a.starts_with("SCMP_ARCH_") => {}
            a => {
                return Err(bad(format!(
                    "architectures: {a:?} is not an SCMP_ARCH_ name"
                )))
            }
        }
    }
    let mut flags = 0;
    for f in s.flags.unwrap_or_default() {
        flags |= flag(&f)?;
    }
    let mut rules = Vec::new();
    for (i, sc) in s.syscalls.unwrap_or_default().into_iter().enumerate() {
        let at = format!("syscalls[{i}] ({})", sc.names.join(","));
        if sc.names.is_empty() {
            return Err(bad(format!("syscalls[{i}] has no names")));
        }
        let act = action(&sc.action, sc.errno_ret, &at)?;
        let mut args = Vec::new();
        for a in sc.args.unwrap_or_default() {
            if a.index > 5 {
                return Err(bad(format!("{at}: argument index {} is above 5", a.index)));
            }
            args.push(ArgCmp {
                index: a.index as u8,
                value: a.value,
                value_two: a.value_two,
                op: op(&a.op, &at)?,
            });
        }
        rules.push(Rule {
            names: sc.names,
            action: act,
            args,
        });
    }
    Ok(Profile {
        default,
        arches,
        rules,
        flags,
    })
}

/// `linux.seccomp` compiled to the filter the container's process installs.
pub fn compile(v: &serde_json::Value) -> Result<Filter, OciError> {
    profile(v)?.compile().map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_profile_reads_into_actions_arches_and_comparisons() {
        let p = profile(&json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 38,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"],
            "flags": ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
            "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                 "args": [{"index": 1, "value": 448, "op": "SCMP_CMP_MASKED_EQ", "valueTwo": 64}]}
            ]
        }))
        .unwrap();
        assert_eq!(p.default, Action::Errno(38));
        assert_eq!(p.arches, vec![Arch::X86_64]);
        assert_eq!(p.flags, 4);
        assert_eq!(p.rules[1].action, Action::Errno(libc::EPERM as u16));
        assert_eq!(
            p.rules[1].args,
            vec![ArgCmp {
                index: 1,
                value: 448,
                value_two: 64,
                op: Op::MaskedEq
            }]
        );
    }

    #[test]
    fn bad_actions_operators_and_agents_are_named() {
        let e = profile(&json!({"defaultAction": "SCMP_ACT_ALOW"}))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("\"SCMP_ACT_ALOW\" is not a seccomp action"),
            "{e}"
        );
        let e = profile(&json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["write"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "EQ"}]}
        ]}))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("syscalls[0] (write)") && e.contains("\"EQ\""),
            "{e}"
        );
        let e =
            profile(&json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock"}))
                .unwrap_err()
                .to_string();
        assert!(e.contains("seccomp agents are not supported"), "{e}");
        let e = profile(&json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 5000}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("errnoRet 5000"), "{e}");
    }
}
