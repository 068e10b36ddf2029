//! config.json to what vbuild-runtime's launcher takes (`LaunchSpec` plus
//! `Custom`): namespaces, root plan, process user, capabilities, limits.
//! Every field that is set but cannot be honoured is an error here, before
//! anything is created.

use crate::error::OciError;
use crate::spec::{Capabilities, Hook, IdMapping, Spec};
use std::path::{Path, PathBuf};
use vbuild_kernel::caps;
use vbuild_runtime::launch::{CapSets, Custom, LaunchSpec};

/// A configuration ready to launch.
pub struct Translated {
    /// The launcher's plain data.
    pub launch: LaunchSpec,
    /// The OCI-specific rest.
    pub custom: Custom,
    /// The root filesystem (absolute).
    pub rootfs: PathBuf,
    /// The user namespace's id maps when the container has one.
    pub userns: Option<IdMaps>,
    /// A pid namespace to start the container in (`linux.namespaces` pid
    /// with a path).
    pub join_pid: Option<PathBuf>,
    /// cgroup limits.
    pub resources: crate::spec::Resources,
    /// `process.terminal`: the process wants a pty (create needs
    /// --console-socket then).
    pub terminal: bool,
    /// Hooks run by create once the namespaces exist, before the root is
    /// set up: prestart's, then createRuntime's.
    pub create_runtime: Vec<(&'static str, Hook)>,
    /// Hooks run by create in the container's namespaces, its root set up,
    /// right before pivot_root.
    pub create_container: Vec<Hook>,
    /// Hooks run by start in the container, before the program.
    pub start_container: Vec<Hook>,
    /// Hooks run by start.
    pub poststart: Vec<Hook>,
    /// Hooks run by delete.
    pub poststop: Vec<Hook>,
}

/// The spec versions this runtime reads.
fn check_version(v: &str) -> Result<(), OciError> {
    if v.starts_with("1.") {
        Ok(())
    } else {
        Err(OciError::Config(format!(
            "ociVersion {v:?} is not a 1.x runtime spec version"
        )))
    }
}

/// RLIMIT_* names and numbers.
const RLIMITS: [(&str, i32); 16] = [
    ("RLIMIT_CPU", 0),
    ("RLIMIT_FSIZE", 1),
    ("RLIMIT_DATA", 2),
    ("RLIMIT_STACK", 3),
    ("RLIMIT_CORE", 4),
    ("RLIMIT_RSS", 5),
    ("RLIMIT_NPROC", 6),
    ("RLIMIT_NOFILE", 7),
    ("RLIMIT_MEMLOCK", 8),
    ("RLIMIT_AS", 9),
    ("RLIMIT_LOCKS", 10),
    ("RLIMIT_SIGPENDING", 11),
    ("RLIMIT_MSGQUEUE", 12),
    ("RLIMIT_NICE", 13),
    ("RLIMIT_RTPRIO", 14),
    ("RLIMIT_RTTIME", 15),
];

/// The mask of one capability set (names read as before: `CAP_KILL`,
/// `kill`). A well-formed name this build or the kernel does not know
/// (`CAP_TEST`, or one newer than the running kernel) is dropped with a
/// warning on stderr, as the runtime spec asks (config.md, Linux
/// process: a value that cannot be mapped to a kernel interface is logged
/// as a warning, and runtimes should not fail for capabilities they cannot
/// grant); a string that is no capability name at all is refused.
fn cap_mask(names: &[String], set: &str) -> Result<u64, OciError> {
    let mut m = 0u64;
    for n in names {
        let well_formed = !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !well_formed {
            return Err(OciError::Config(format!(
                "process.capabilities.{set}: {n:?} is not a capability name (like CAP_KILL)"
            )));
        }
        match caps::number(n) {
            Ok(c) if c <= caps::last_cap() => m |= 1u64 << c,
            Ok(_) => eprintln!(
                "vbuild-runc: warning: process.capabilities.{set}: {n} is not known to this kernel; it is not granted"
            ),
            Err(_) => eprintln!(
                "vbuild-runc: warning: process.capabilities.{set}: {n} is not a capability vbuild-runc knows; it is ignored"
            ),
        }
    }
    Ok(m)
}

/// The process's capability sets (all empty when the config has none,
/// as runc does).
pub fn cap_sets(c: Option<&Capabilities>) -> Result<CapSets, OciError> {
    let Some(c) = c else {
        return Ok(CapSets::default());
    };
    let ambient = cap_mask(&c.ambient, "ambient")?;
    let permitted = cap_mask(&c.permitted, "permitted")?;
    if ambient & !permitted != 0 {
        return Err(OciError::Config(format!(
            "process.capabilities.ambient has {:?}, which permitted lacks (the kernel needs both)",
            caps::names(ambient & !permitted)
        )));
    }
    // The kernel raises an ambient capability only when it is inheritable
    // too, so the ambient set implies the inheritable one (runc's default
    // config lists ambient capabilities without inheritable ones).
    Ok(CapSets {
        bounding: cap_mask(&c.bounding, "bounding")?,
        effective: cap_mask(&c.effective, "effective")?,
        permitted,
        inheritable: cap_mask(&c.inheritable, "inheritable")? | ambient,
        ambient,
    })
}

/// `process.rlimits` as (RLIMIT_* number, soft, hard).
pub fn rlimits(list: &[crate::spec::Rlimit]) -> Result<Vec<(i32, u64, u64)>, OciError> {
    let mut rlimits = Vec::new();
    for r in list {
        let n = RLIMITS
            .iter()
            .find(|(name, _)| *name == r.kind)
            .map(|(_, n)| *n)
            .ok_or_else(|| {
                OciError::Config(format!("process.rlimits: unknown type {:?}", r.kind))
            })?;
        if r.soft > r.hard {
            return Err(OciError::Config(format!(
                "process.rlimits {}: soft {} is above hard {}",
                r.kind, r.soft, r.hard
            )));
        }
        rlimits.push((n, r.soft, r.hard));
    }
    Ok(rlimits)
}

/// A user namespace's uid and gid maps (one or more ranges each).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdMaps {
    /// uid ranges.
    pub uid: Vec<IdMapping>,
    /// gid ranges.
    pub gid: Vec<IdMapping>,
}

impl IdMaps {
    /// The host id that container id 0 of `maps` is.
    fn root_of(maps: &[IdMapping]) -> u32 {
        maps.iter()
            .find(|m| m.container_id == 0)
            .map_or(0, |m| m.host_id)
    }

    /// The host uid of the container's root.
    pub fn root_uid(&self) -> u32 {
        Self::root_of(&self.uid)
    }

    /// The host gid of the container's root.
    pub fn root_gid(&self) -> u32 {
        Self::root_of(&self.gid)
    }

    /// `/proc/PID/uid_map` (`which` "uid") or gid_map text.
    pub fn text(&self, which: &str) -> String {
        let maps = if which == "uid" { &self.uid } else { &self.gid };
        maps.iter()
            .map(|m| format!("{} {} {}\n", m.container_id, m.host_id, m.size))
            .collect()
    }
}

/// The uid and gid maps: ranges that do not overlap inside or outside,
/// with container id 0 mapped in both (the container's first process is
/// made as the namespace's root).
fn id_maps(u: &[IdMapping], g: &[IdMapping]) -> Result<IdMaps, OciError> {
    for (what, maps) in [("uidMappings", u), ("gidMappings", g)] {
        if maps.is_empty() {
            return Err(OciError::Config(format!(
                "linux.{what} is empty but there is a user namespace (map containerID 0 at least)"
            )));
        }
        if maps.len() > 340 {
            return Err(OciError::Config(format!(
                "linux.{what} has {} ranges; the kernel takes at most 340",
                maps.len()
            )));
        }
        for (i, a) in maps.iter().enumerate() {
            if a.size == 0 {
                return Err(OciError::Config(format!("linux.{what}[{i}] has size 0")));
            }
            let end = |start: u32| start as u64 + a.size as u64;
            if end(a.container_id) > 1u64 << 32 || end(a.host_id) > 1u64 << 32 {
                return Err(OciError::Config(format!(
                    "linux.{what}[{i}] runs past id 4294967295"
                )));
            }
            for (j, b) in maps.iter().enumerate().skip(i + 1) {
                let overlap = |x: u32, y: u32| {
                    (x as u64) < y as u64 + b.size as u64 && (y as u64) < x as u64 + a.size as u64
                };
                if overlap(a.container_id, b.container_id) || overlap(a.host_id, b.host_id) {
                    return Err(OciError::Config(format!(
                        "linux.{what}[{i}] and [{j}] overlap (ranges must be disjoint inside and outside)"
                    )));
                }
            }
        }
        if !maps.iter().any(|m| m.container_id == 0) {
            return Err(OciError::Unsupported(format!(
                "linux.{what}: vbuild-runc makes the container's first process as root of its user namespace, so a range must start at containerID 0 (got {maps:?})"
            )));
        }
    }
    Ok(IdMaps {
        uid: u.to_vec(),
        gid: g.to_vec(),
    })
}

fn nonempty(v: &Option<String>) -> bool {
    v.as_deref().is_some_and(|s| !s.is_empty())
}

/// Properties of the runtime spec (up to 1.3) that the structs do not
/// name, per object: set, they are refused (vbuild-runc cannot honour
/// them). A property the spec does not define is ignored with a warning,
/// as the spec's extensibility rule asks.
const KNOWN_REST: [(&str, &[&str]); 3] = [
    (
        "",
        &[
            "solaris",
            "windows",
            "vm",
            "zos",
            "uidMappings",
            "gidMappings",
        ],
    ),
    (
        "process.",
        &["commandLine", "scheduler", "ioPriority", "execCPUAffinity"],
    ),
    (
        "linux.",
        &[
            "intelRdt",
            "personality",
            "timeOffsets",
            "netDevices",
            "memoryPolicy",
        ],
    ),
];

fn refuse_rest(what: &str, rest: &crate::spec::Rest) -> Result<(), OciError> {
    let known = KNOWN_REST
        .iter()
        .find(|(w, _)| *w == what)
        .map_or(&[][..], |(_, k)| *k);
    for (k, _) in rest.iter().filter(|(_, v)| !v.is_null()) {
        if known.contains(&k.as_str()) {
            return Err(OciError::Unsupported(format!(
                "{what}{k} is not supported by vbuild-runc; remove it"
            )));
        }
        eprintln!(
            "vbuild-runc: warning: config.json: {what}{k} is not a runtime spec property; ignored"
        );
    }
    Ok(())
}

/// A hook's path is absolute and its timeout, when given, above zero.
fn check_hook(kind: &str, h: &Hook) -> Result<(), OciError> {
    if !h.path.starts_with('/') {
        return Err(OciError::Config(format!(
            "hooks.{kind}: path {:?} must be absolute",
            h.path
        )));
    }
    if h.timeout == Some(0) {
        return Err(OciError::Config(format!(
            "hooks.{kind}: {} has timeout 0 (give seconds above zero, or none)",
            h.path
        )));
    }
    Ok(())
}

/// Translates the config of the bundle at `bundle` for container `id`.
pub fn translate(spec: &Spec, bundle: &Path, id: &str) -> Result<Translated, OciError> {
    check_version(&spec.oci_version)?;
    // Fields vbuild-runc does not know at all (solaris, windows, vm, ...).
    let rest: crate::spec::Rest = spec
        .rest
        .iter()
        .filter(|(k, _)| k.as_str() != "$schema")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    refuse_rest("", &rest)?;
    let root = spec
        .root
        .as_ref()
        .ok_or_else(|| OciError::Config("root is missing (root.path names the rootfs)".into()))?;
    let rootfs = if root.path.starts_with('/') {
        PathBuf::from(&root.path)
    } else {
        bundle.join(&root.path)
    };
    let rootfs = std::fs::canonicalize(&rootfs)
        .map_err(|e| OciError::Config(format!("root.path {}: {e}", rootfs.display())))?;
    let process = spec.process.as_ref().ok_or_else(|| {
        OciError::Config("process is missing (it names the program to run)".into())
    })?;
    refuse_rest("process.", &process.rest)?;
    if process.args.is_empty() {
        return Err(OciError::Config(
            "process.args is empty (name the program to run)".into(),
        ));
    }
    if nonempty(&process.apparmor_profile) {
        return Err(OciError::Unsupported(
            "process.apparmorProfile: AppArmor is not available to vbuild-runc; remove it".into(),
        ));
    }
    if nonempty(&process.selinux_label) {
        return Err(OciError::Unsupported(
            "process.selinuxLabel: SELinux is not available to vbuild-runc; remove it".into(),
        ));
    }
    if !process.cwd.starts_with('/') {
        return Err(OciError::Config(format!(
            "process.cwd {:?} must be absolute",
            process.cwd
        )));
    }
    let linux = spec.linux.clone().unwrap_or_default();
    refuse_rest("linux.", &linux.rest)?;
    if nonempty(&linux.mount_label) {
        return Err(OciError::Unsupported(
            "linux.mountLabel: SELinux is not available to vbuild-runc; remove it".into(),
        ));
    }
    let filter = match linux.seccomp.as_ref().filter(|v| !v.is_null()) {
        Some(v) => Some(crate::seccomp::compile(v)?),
        None => None,
    };
    if spec.domainname.as_deref().is_some_and(|d| !d.is_empty()) {
        return Err(OciError::Unsupported(
            "domainname is not supported yet; remove it".into(),
        ));
    }
    if let Some(h) = &spec.hooks {
        for (name, v) in [
            ("createContainer", &h.create_container),
            ("startContainer", &h.start_container),
            ("prestart", &h.prestart),
            ("createRuntime", &h.create_runtime),
            ("poststart", &h.poststart),
            ("poststop", &h.poststop),
        ] {
            for hook in v {
                check_hook(name, hook)?;
            }
        }
    }

    // Namespaces.
    let mut clone_flags: u64 = 0;
    let mut join = Vec::new();
    let mut userns = false;
    let mut cgroupns = false;
    let mut uts = false;
    let mut mnt = false;
    let mut join_mnt = false;
    let mut join_pid = None;
    for n in &linux.namespaces {
        let flag = match n.kind.as_str() {
            "pid" => libc::CLONE_NEWPID,
            "network" => libc::CLONE_NEWNET,
            "mount" => libc::CLONE_NEWNS,
            "ipc" => libc::CLONE_NEWIPC,
            "uts" => libc::CLONE_NEWUTS,
            "user" => libc::CLONE_NEWUSER,
            "cgroup" => libc::CLONE_NEWCGROUP,
            "time" => {
                return Err(OciError::Unsupported(
                    "linux.namespaces: a time namespace is not supported yet; remove it".into(),
                ))
            }
            k => {
                return Err(OciError::Config(format!(
                    "linux.namespaces: unknown type {k:?}"
                )))
            }
        };
        match n.path.as_deref().filter(|p| !p.is_empty()) {
            Some(p) => {
                if !matches!(
                    n.kind.as_str(),
                    "network" | "ipc" | "uts" | "cgroup" | "pid" | "mount"
                ) {
                    return Err(OciError::Unsupported(format!(
                        "linux.namespaces: joining a {} namespace by path is not supported (network, ipc, uts, cgroup, pid and mount are)",
                        n.kind
                    )));
                }
                if !Path::new(p).exists() {
                    return Err(OciError::Config(format!(
                        "linux.namespaces: {} path {p} does not exist",
                        n.kind
                    )));
                }
                if n.kind == "pid" {
                    // Joined by create itself: a pid namespace applies to
                    // the children of whoever enters it.
                    join_pid = Some(PathBuf::from(p));
                    continue;
                }
                // A joined mount namespace gets the container's mounts and
                // its pivot_root, as with runc: it is the caller's to give.
                join.push((PathBuf::from(p), flag));
                if n.kind == "uts" {
                    uts = true;
                }
                if n.kind == "mount" {
                    mnt = true;
                    join_mnt = true;
                }
            }
            None => match n.kind.as_str() {
                "user" => userns = true,
                "cgroup" => cgroupns = true,
                _ => {
                    if n.kind == "uts" {
                        uts = true;
                    }
                    if n.kind == "mount" {
                        mnt = true;
                    }
                    clone_flags |= flag as u64;
                }
            },
        }
    }
    if !mnt {
        return Err(OciError::Unsupported(
            "linux.namespaces: vbuild-runc needs a new mount namespace (add {\"type\": \"mount\"})"
                .into(),
        ));
    }
    if spec.hostname.as_deref().is_some_and(|h| !h.is_empty()) && !uts {
        return Err(OciError::Config(
            "hostname is set but there is no uts namespace (add {\"type\": \"uts\"})".into(),
        ));
    }
    if join_mnt && userns {
        return Err(OciError::Unsupported(
            "linux.namespaces: joining a mount namespace by path together with a new user namespace is not supported (the new user namespace may not enter it); give the container a new mount namespace, or drop the user namespace".into(),
        ));
    }
    if join_pid.is_some() && userns {
        return Err(OciError::Unsupported(
            "linux.namespaces: joining a pid namespace by path together with a new user namespace is not supported".into(),
        ));
    }
    let ids = if userns {
        clone_flags |= libc::CLONE_NEWUSER as u64;
        Some(id_maps(&linux.uid_mappings, &linux.gid_mappings)?)
    } else {
        if !linux.uid_mappings.is_empty() || !linux.gid_mappings.is_empty() {
            return Err(OciError::Config(
                "linux.uidMappings are set but there is no user namespace (add {\"type\": \"user\"})".into(),
            ));
        }
        None
    };

    let propagation = match linux.rootfs_propagation.as_deref() {
        None | Some("") => libc::MS_REC | libc::MS_PRIVATE,
        Some(p) => crate::plan::propagation(p).ok_or_else(|| {
            OciError::Config(format!(
                "linux.rootfsPropagation {p:?} is not a propagation"
            ))
        })?,
    };
    let sysctl: Vec<(String, String)> = linux.sysctl.clone().into_iter().collect();
    let plan = crate::plan::build(&crate::plan::PlanInput {
        root: &rootfs,
        bundle,
        readonly_root: root.readonly,
        mounts: &spec.mounts,
        devices: &linux.devices,
        sysctl: &sysctl,
        masked: &linux.masked_paths,
        readonly: &linux.readonly_paths,
        userns,
        cgroupns,
        propagation,
    })?;

    let rlimits = rlimits(&process.rlimits)?;
    let resources = linux.resources.clone().unwrap_or_default();
    crate::cgroups::check(&resources)?;

    let launch = LaunchSpec {
        rootfs: rootfs.clone(),
        argv: process.args.clone(),
        env: process.env.clone(),
        hostname: spec.hostname.clone().unwrap_or_else(|| id.to_string()),
        console: None,
        notify_socket: None,
        host_files: vec![],
        private_net: clone_flags & libc::CLONE_NEWNET as u64 != 0,
        cgroupns,
        timens: false,
        userns,
        id_base: ids.as_ref().map_or(0, |i| i.root_uid()),
        die_with_parent: false,
        keep_mknod: true,
        tmpfs: Default::default(),
        root_tree: false,
    };
    let custom = Custom {
        plan,
        clone_flags,
        join,
        hostname: spec.hostname.clone().filter(|h| !h.is_empty()),
        caps: cap_sets(process.capabilities.as_ref())?,
        filter,
        user: (
            process.user.uid,
            process.user.gid,
            process.user.additional_gids.clone(),
        ),
        rlimits,
        no_new_privs: process.no_new_privileges,
        oom_score_adj: process.oom_score_adj,
        umask: process.user.umask,
        cwd: process.cwd.clone(),
        start_fifo: None,
        preserve_fds: 0,
        pause_before_pivot: spec
            .hooks
            .as_ref()
            .is_some_and(|h| !h.create_container.is_empty()),
        console_socket: None,
        console_size: None,
    };
    let hooks = spec.hooks.clone().unwrap_or_default();
    Ok(Translated {
        launch,
        custom,
        rootfs,
        userns: ids,
        join_pid,
        resources,
        terminal: process.terminal,
        create_runtime: hooks
            .prestart
            .into_iter()
            .map(|h| ("prestart", h))
            .chain(
                hooks
                    .create_runtime
                    .into_iter()
                    .map(|h| ("createRuntime", h)),
            )
            .collect(),
        create_container: hooks.create_container,
        start_container: hooks.start_container,
        poststart: hooks.poststart,
        poststop: hooks.poststop,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn unknown_capability_names_are_dropped_and_malformed_ones_refused() {
        let kill = 1u64 << caps::number("CAP_KILL").unwrap();
        assert_eq!(
            cap_mask(&set(&["CAP_KILL", "CAP_TEST"]), "bounding").unwrap(),
            kill
        );
        assert_eq!(cap_mask(&set(&["kill"]), "bounding").unwrap(), kill);
        for bad in ["CAP KILL", "CAP_KILL ", "", "CAP_KILL,CAP_CHOWN"] {
            let e = cap_mask(&set(&[bad]), "bounding").unwrap_err().to_string();
            assert!(e.contains("is not a capability name"), "{bad}: {e}");
        }
        let c = Capabilities {
            bounding: set(&["CAP_KILL", "CAP_TEST"]),
            permitted: set(&["CAP_KILL"]),
            effective: set(&["CAP_KILL"]),
            ..Default::default()
        };
        let s = cap_sets(Some(&c)).unwrap();
        assert_eq!((s.bounding, s.permitted), (kill, kill));
    }
}
