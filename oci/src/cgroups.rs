//! `linux.cgroupsPath` and `linux.resources` on the kernel crate's cgroup
//! API: an absolute cgroupsPath is taken at the root of each hierarchy (as
//! the runtime spec says), a relative one (or none) lives below
//! `vbuild/oci/` (v1, hybrid or v2, as the host has it), and the limits are
//! written through the same calls vbuild's guests use. Delete removes only
//! the directories create made (`Saved::cgroup_made`).

use crate::error::OciError;
use crate::spec::{DeviceCgroup, Resources};
use std::path::PathBuf;
use vbuild_kernel::cgroup::{Cgroup, DeviceKind, DeviceRule, Hierarchy, MemoryExtras, MemoryLimit};

/// Where the groups of relative (or absent) cgroupsPaths live.
const PARENT: &str = "vbuild/oci";

/// The group of a container, relative to each hierarchy root: an absolute
/// `cgroupsPath` (`/a/b`) as it is there, a relative one (`a/b`) or
/// systemd's `slice:prefix:name` (with --systemd-cgroup) below
/// `vbuild/oci/`, or `vbuild/oci/<id>` when there is none. Paths with
/// empty, `.` or `..` components or other characters than letters, digits
/// and `-_.` are refused, as are `/` itself and vbuild's own guests' groups
/// (`/vbuild/NAME` other than `/vbuild/oci/...`).
pub fn group_of(path: Option<&str>, id: &str, systemd: bool) -> Result<String, OciError> {
    let full = match path {
        None | Some("") => format!("{PARENT}/{id}"),
        Some(p) if systemd || (p.contains(':') && !p.starts_with('/')) => {
            let parts: Vec<&str> = p.split(':').collect();
            if parts.len() != 3 {
                return Err(OciError::Config(format!(
                    "cgroupsPath {p:?}: with --systemd-cgroup it is slice:prefix:name"
                )));
            }
            let slice = if parts[0].is_empty() {
                "system.slice"
            } else {
                parts[0]
            };
            format!("{PARENT}/{slice}/{}-{}.scope", parts[1], parts[2])
        }
        Some("/") => {
            return Err(OciError::Config(
                "cgroupsPath \"/\" names the root of the cgroup hierarchy, which belongs to the host; give a group below it (like /mygroup/ctr1)".into(),
            ))
        }
        Some(p) if p.starts_with('/') => p[1..].to_string(),
        Some(p) => format!("{PARENT}/{p}"),
    };
    let ok = full.split('/').all(|c| {
        !c.is_empty()
            && c != "."
            && c != ".."
            && c.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch))
    });
    if !ok {
        return Err(OciError::Config(format!(
            "cgroupsPath {:?} is not a cgroup path (letters, digits, - _ . between single slashes, no . or ..)",
            path.unwrap_or(id)
        )));
    }
    let mut comps = full.split('/');
    if comps.next() == Some("vbuild") && comps.next() != Some("oci") {
        return Err(OciError::Config(format!(
            "cgroupsPath {:?}: /vbuild/ holds vbuild's guests; use another group (or one below /vbuild/oci/)",
            path.unwrap_or(id)
        )));
    }
    Ok(full)
}

/// Creates the container's group `rel` and returns it with the
/// directories this create made (what delete may remove later): those
/// missing before, plus the parents another container of the same state
/// root made and recorded (`siblings`), so that whichever of them is
/// deleted last removes a shared parent such as containerd's
/// `/<namespace>`.
pub fn create(
    h: &Hierarchy,
    rel: &str,
    siblings: &[Vec<PathBuf>],
) -> Result<(Cgroup, Vec<PathBuf>), OciError> {
    let mut made = h.missing_dirs(rel)?;
    let parents = h.parent_dirs(rel)?;
    for p in siblings.iter().flatten() {
        if parents.contains(p) && p.is_dir() && !made.contains(p) {
            made.push(p.clone());
        }
    }
    let cg = Cgroup::create(h, rel)?;
    Ok((cg, made))
}

/// Removes the container's group as create made it: with `made` (what
/// create recorded), only those directories; without (a state written
/// before vbuild-runc recorded them), the group and its empty parents.
/// Groups below `vbuild/` (vbuild's own) also lose their empty
/// `vbuild/oci` parents, as before.
pub fn remove(cg: &Cgroup, made: Option<&[PathBuf]>) -> Result<(), OciError> {
    match made {
        None => cg.remove()?,
        Some(m) if cg.rel().starts_with("vbuild/") && !m.is_empty() => cg.remove()?,
        Some(m) => cg.remove_made(m)?,
    }
    Ok(())
}

/// Opens the group `rel` if it exists.
pub fn open(rel: &str) -> Option<Cgroup> {
    let h = Hierarchy::detect().ok()?;
    Cgroup::open(&h, rel).ok().flatten()
}

/// Whether the container's group is frozen.
pub fn is_frozen(rel: &str) -> bool {
    open(rel).is_some_and(|c| c.is_frozen())
}

fn unsupported_rest(what: &str, rest: &crate::spec::Rest) -> Result<(), OciError> {
    if let Some((k, _)) = rest.iter().find(|(_, v)| !v.is_null()) {
        return Err(OciError::Unsupported(format!(
            "linux.resources.{what}{k} is not supported by vbuild-runc; remove it"
        )));
    }
    Ok(())
}

/// Checks that every field of `r` is one vbuild-runc applies.
pub fn check(r: &Resources) -> Result<(), OciError> {
    unsupported_rest("", &r.rest)?;
    if let Some(m) = &r.memory {
        unsupported_rest("memory.", &m.rest)?;
    }
    if let Some(c) = &r.cpu {
        unsupported_rest("cpu.", &c.rest)?;
        if c.shares.is_some_and(|s| s > 262_144) {
            return Err(OciError::Config(format!(
                "linux.resources.cpu.shares {} is above 262144",
                c.shares.unwrap_or(0)
            )));
        }
    }
    device_rules(&r.devices)?;
    Ok(())
}

/// Writes the memory, cpu and pids limits of `r` into `cg`.
pub fn apply(cg: &Cgroup, r: &Resources) -> Result<(), OciError> {
    check(r)?;
    if let Some(m) = &r.memory {
        let pos = |v: Option<i64>| v.filter(|v| *v > 0).map(|v| v as u64);
        let max = pos(m.limit);
        // The spec's swap is memory plus swap; the kernel API takes swap
        // on top of memory.
        let swap = match (pos(m.swap), max) {
            (Some(total), Some(mem)) if total >= mem => Some(total - mem),
            (Some(total), Some(mem)) => {
                return Err(OciError::Config(format!(
                    "linux.resources.memory.swap {total} is below memory.limit {mem} (swap is memory plus swap)"
                )))
            }
            (Some(_), None) => {
                return Err(OciError::Config(
                    "linux.resources.memory.swap needs memory.limit too".into(),
                ))
            }
            (None, _) => None,
        };
        cg.set_memory(&MemoryLimit { max, swap })?;
        cg.set_memory_extras(&memory_extras(m, cg.is_v2())?)?;
    }
    if let Some(c) = &r.cpu {
        // Quota and period are written as the spec gives them; an absent
        // quota is left as it is (update changes what it names).
        let period = c.period.filter(|p| *p > 0).unwrap_or(100_000);
        match c.quota {
            Some(q) if q > 0 => cg.set_cpu_bandwidth(Some(q as u64), period)?,
            Some(_) => cg.set_cpu_bandwidth(None, period)?,
            None => {}
        }
        if c.cpus.is_some() || c.mems.is_some() {
            cg.set_cpuset(
                c.cpus.as_deref().filter(|s| !s.is_empty()),
                c.mems.as_deref().filter(|s| !s.is_empty()),
            )?;
        }
        // A zero share is what clients send when they mean none.
        if let Some(shares) = c.shares.filter(|s| *s > 0) {
            cg.set_cpu_shares(shares)?;
        }
    }
    if let Some(p) = &r.pids {
        cg.set_pids_max((p.limit > 0).then_some(p.limit as u64))?;
    }
    Ok(())
}

/// The memory fields past limit and swap. `kernel` is ignored with a
/// warning, as runc 1.1 does: kernel 6.x no longer enforces
/// memory.kmem.limit_in_bytes. On cgroup v2 `swappiness` is ignored with a
/// warning (runc and crun do the same: v2 has no such knob), while
/// `kernelTCP` and `disableOOMKiller` are refused by the kernel crate.
fn memory_extras(m: &crate::spec::Memory, v2: bool) -> Result<MemoryExtras, OciError> {
    let bytes = |v: Option<i64>, what: &str| match v {
        None | Some(-1) => Ok(None),
        Some(n) if n >= 0 => Ok(Some(n as u64)),
        Some(n) => Err(OciError::Config(format!(
            "linux.resources.memory.{what} {n} is not a byte count (or -1)"
        ))),
    };
    if m.kernel.is_some() {
        eprintln!("vbuild-runc: warning: linux.resources.memory.kernel is ignored (the kernel no longer limits kernel memory on its own)");
    }
    if let Some(s) = m.swappiness.filter(|s| *s > 100) {
        return Err(OciError::Config(format!(
            "linux.resources.memory.swappiness {s} is above 100"
        )));
    }
    let mut swappiness = m.swappiness;
    if v2 && swappiness.is_some() {
        eprintln!("vbuild-runc: warning: linux.resources.memory.swappiness is ignored on cgroup v2 (it has no such setting)");
        swappiness = None;
    }
    let kernel_tcp = bytes(m.kernel_tcp, "kernelTCP")?;
    let disable_oom_killer = m.disable_oom_killer == Some(true);
    if v2 && (kernel_tcp.is_some() || disable_oom_killer) {
        let what = if disable_oom_killer {
            "disableOOMKiller"
        } else {
            "kernelTCP"
        };
        return Err(OciError::Unsupported(format!(
            "linux.resources.memory.{what} has no cgroup v2 equivalent; remove it"
        )));
    }
    Ok(MemoryExtras {
        reservation: bytes(m.reservation, "reservation")?,
        swappiness,
        disable_oom_killer,
        kernel_tcp,
    })
}

fn num(v: Option<i64>, what: &str) -> Result<Option<u32>, OciError> {
    match v {
        None | Some(-1) => Ok(None),
        Some(n) if (0..=u32::MAX as i64).contains(&n) => Ok(Some(n as u32)),
        Some(n) => Err(OciError::Config(format!(
            "linux.resources.devices: {what} {n} is not a device number"
        ))),
    }
}

/// The device allowlist: vbuild's standard devices plus the spec's allow
/// rules. A leading deny-all is the baseline every container gets; other
/// deny rules cannot be expressed on an allowlist and are refused.
pub fn device_rules(spec: &[DeviceCgroup]) -> Result<Vec<DeviceRule>, OciError> {
    let mut rules = DeviceRule::standard();
    for d in spec {
        let kind = match d.kind.as_deref() {
            None | Some("a") => DeviceKind::All,
            Some("c") => DeviceKind::Char,
            Some("b") => DeviceKind::Block,
            Some(k) => {
                return Err(OciError::Config(format!(
                    "linux.resources.devices: type {k:?} is not a, c or b"
                )))
            }
        };
        let access = d.access.as_deref().unwrap_or("rwm");
        let rule = DeviceRule {
            kind,
            major: num(d.major, "major")?,
            minor: num(d.minor, "minor")?,
            read: access.contains('r'),
            write: access.contains('w'),
            mknod: access.contains('m'),
        };
        if d.allow {
            if rule.kind == DeviceKind::All && rule.major.is_none() && rule.minor.is_none() {
                return Err(OciError::Unsupported(
                    "linux.resources.devices: allowing every device is not supported (vbuild keeps a device allowlist); list the devices to allow".into(),
                ));
            }
            rules.push(rule);
        } else if rule.kind != DeviceKind::All || rule.major.is_some() || rule.minor.is_some() {
            return Err(OciError::Unsupported(format!(
                "linux.resources.devices: a deny rule for one device ({:?} {:?}:{:?}) is not supported; only the leading deny-all",
                d.kind, d.major, d.minor
            )));
        }
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_paths_are_at_the_root_and_relative_ones_below_vbuild_oci() {
        assert_eq!(group_of(None, "c1", false).unwrap(), "vbuild/oci/c1");
        assert_eq!(
            group_of(Some("/default/c1"), "c1", false).unwrap(),
            "default/c1"
        );
        assert_eq!(
            group_of(Some("default/c1"), "c1", false).unwrap(),
            "vbuild/oci/default/c1"
        );
        assert_eq!(
            group_of(Some("/vbuild/oci/x"), "c1", false).unwrap(),
            "vbuild/oci/x"
        );
        for bad in [
            "/",
            "//a",
            "/a//b",
            "/a/",
            "/a/./b",
            "/a/../b",
            "/..",
            "/a b",
            "/vbuild",
            "/vbuild/mail01",
            "a/../../x",
        ] {
            assert!(group_of(Some(bad), "c1", false).is_err(), "{bad}");
        }
        assert_eq!(
            group_of(Some("machine.slice:libpod:abc"), "abc", true).unwrap(),
            "vbuild/oci/machine.slice/libpod-abc.scope"
        );
        assert!(group_of(Some("/a/../../etc"), "c1", false).is_err());
    }

    #[test]
    fn memory_extras_map_ignore_kernel_and_refuse_what_v2_lacks() {
        let m: crate::spec::Memory = serde_json::from_value(serde_json::json!({
            "reservation": 1024, "swappiness": 10, "kernel": 4096,
            "kernelTCP": 2048, "disableOOMKiller": true
        }))
        .unwrap();
        let v1 = memory_extras(&m, false).unwrap();
        assert_eq!(
            v1,
            MemoryExtras {
                reservation: Some(1024),
                swappiness: Some(10),
                disable_oom_killer: true,
                kernel_tcp: Some(2048),
            }
        );
        let e = memory_extras(&m, true).unwrap_err().to_string();
        assert!(
            e.contains("memory.disableOOMKiller has no cgroup v2"),
            "{e}"
        );
        let only = crate::spec::Memory {
            reservation: Some(1024),
            swappiness: Some(10),
            ..Default::default()
        };
        let v2 = memory_extras(&only, true).unwrap();
        assert_eq!((v2.reservation, v2.swappiness), (Some(1024), None));
        let high = crate::spec::Memory {
            swappiness: Some(101),
            ..Default::default()
        };
        assert!(memory_extras(&high, true).is_err());
        let neg = crate::spec::Memory {
            reservation: Some(-2),
            ..Default::default()
        };
        assert!(memory_extras(&neg, false).is_err());
    }

    #[test]
    fn device_rules_keep_the_allowlist() {
        let deny_all = DeviceCgroup {
            allow: false,
            kind: None,
            major: None,
            minor: None,
            access: Some("rwm".into()),
        };
        let fuse = DeviceCgroup {
            allow: true,
            kind: Some("c".into()),
            major: Some(10),
            minor: Some(229),
            access: Some("rw".into()),
        };
        let r = device_rules(&[deny_all.clone(), fuse]).unwrap();
        let last = r.last().unwrap();
        assert_eq!(
            (last.major, last.minor, last.read, last.mknod),
            (Some(10), Some(229), true, false)
        );
        let one = DeviceCgroup {
            major: Some(1),
            minor: Some(3),
            kind: Some("c".into()),
            ..deny_all
        };
        assert!(device_rules(&[one]).is_err());
    }
}
