//! Which hierarchies a host has and where: detected from the files present
//! under the cgroup root, so a fake tree in a test directory reads the same
//! way as /sys/fs/cgroup.

use super::{io_err, CgroupError};
use std::path::{Path, PathBuf};

/// The v1 hierarchies vbuild puts its groups in (by controller or name).
/// A new cpuset group gets its parent's cpus and mems on create (v1 starts
/// them empty, and an empty cpuset takes no task).
const V1_WANTED: [&str; 9] = [
    "memory", "cpu", "cpuacct", "pids", "blkio", "devices", "freezer", "systemd", "cpuset",
];

/// The host's layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Layout {
    /// Pure cgroup v2 at the root.
    Unified,
    /// Per-controller v1 mounts, plus the cgroup2 mount of a hybrid host.
    Legacy {
        mounts: Vec<V1Mount>,
        unified: Option<PathBuf>,
    },
}

/// One v1 hierarchy: its mount point and the controllers it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct V1Mount {
    pub(crate) controllers: Vec<String>,
    pub(crate) path: PathBuf,
}

/// What kind of hierarchy a group directory is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DirKind {
    /// A v1 hierarchy with these controllers.
    V1(Vec<String>),
    /// A cgroup2 hierarchy (the whole host on v2, the unified mount on hybrid).
    Unified,
}

/// A group's directory in one hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Dir {
    pub(crate) kind: DirKind,
    pub(crate) path: PathBuf,
}

/// Reads the layout below `root`.
pub(crate) fn detect(root: &Path) -> Result<Layout, CgroupError> {
    if root.join("cgroup.controllers").is_file() {
        return Ok(Layout::Unified);
    }
    let rd = std::fs::read_dir(root).map_err(io_err(root))?;
    let mut names: Vec<String> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    // Real directories (`cpu,cpuacct`) before their symlinks (`cpu`), so a
    // co-mounted hierarchy is named by all its controllers.
    names.sort_by_key(|n| {
        (
            std::fs::symlink_metadata(root.join(n))
                .map(|m| m.is_symlink())
                .unwrap_or(true),
            n.clone(),
        )
    });
    let mut mounts: Vec<V1Mount> = Vec::new();
    let mut seen: Vec<PathBuf> = Vec::new();
    let mut unified = None;
    for name in names {
        let path = root.join(&name);
        let Ok(real) = std::fs::canonicalize(&path) else {
            continue;
        };
        if seen.contains(&real) {
            continue;
        }
        if path.join("cgroup.controllers").is_file() {
            seen.push(real);
            unified = Some(path);
            continue;
        }
        if !path.join("cgroup.procs").is_file() {
            continue;
        }
        let controllers: Vec<String> = name
            .split(',')
            .map(|c| c.trim_start_matches("name=").to_string())
            .collect();
        if controllers.iter().any(|c| V1_WANTED.contains(&c.as_str())) {
            seen.push(real);
            mounts.push(V1Mount { controllers, path });
        }
    }
    if mounts.is_empty() && unified.is_none() {
        return Err(CgroupError::Unsupported(format!(
            "no cgroup hierarchy found under {} (mount cgroup2 there, or the v1 controllers memory, cpu, pids)",
            root.display()
        )));
    }
    Ok(Layout::Legacy { mounts, unified })
}
