//! Cgroups: one `Cgroup` API over the host's layout — cgroup v2 (unified) or
//! v1/hybrid (per-controller hierarchies plus an optional unified mount) —
//! detected once at run time. (STUB: the signatures are the contract; the
//! bodies are being written.)

use std::path::{Path, PathBuf};

/// A cgroup operation that failed, naming the file it failed on.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// I/O on a cgroup file or directory failed.
    #[error("{path}: {source}")]
    Io {
        /// The cgroupfs path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The host has no usable cgroup layout.
    #[error("{0}")]
    Unsupported(String),
}

/// The host's cgroup layout.
#[derive(Debug, Clone)]
pub struct Hierarchy {
    _root: PathBuf,
}

impl Hierarchy {
    /// Detects the layout mounted under /sys/fs/cgroup.
    pub fn detect() -> Result<Hierarchy, CgroupError> {
        Hierarchy::at(Path::new("/sys/fs/cgroup"))
    }
    /// Reads the layout below `root` (a fake tree in tests).
    pub fn at(root: &Path) -> Result<Hierarchy, CgroupError> {
        Ok(Hierarchy {
            _root: root.to_path_buf(),
        })
    }
    /// True on a pure cgroup v2 host.
    pub fn is_v2(&self) -> bool {
        unimplemented!("cgroup stub")
    }
}

/// One group (e.g. `vbuild/mail01`) across every hierarchy of the host.
#[derive(Debug, Clone)]
pub struct Cgroup {
    _rel: String,
}

impl Cgroup {
    /// Creates `rel` in every hierarchy (enabling v2 controllers on the way).
    pub fn create(_h: &Hierarchy, rel: &str) -> Result<Cgroup, CgroupError> {
        Ok(Cgroup { _rel: rel.into() })
    }
    /// Opens `rel` if it exists.
    pub fn open(_h: &Hierarchy, _rel: &str) -> Result<Option<Cgroup>, CgroupError> {
        Ok(None)
    }
    /// Moves `pid` into this group in every hierarchy.
    pub fn attach(&self, _pid: i32) -> Result<(), CgroupError> {
        unimplemented!("cgroup stub")
    }
    /// The cgroup2 directory to root the guest's cgroup namespace at and to
    /// mount as its /sys/fs/cgroup (the unified mount on hybrid hosts).
    pub fn unified_dir(&self) -> Option<PathBuf> {
        unimplemented!("cgroup stub")
    }
    /// Every process in the group.
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        unimplemented!("cgroup stub")
    }
    /// Kills every process in the group and waits until it is empty.
    pub fn kill_all(&self) -> Result<(), CgroupError> {
        unimplemented!("cgroup stub")
    }
    /// Removes the (empty) group from every hierarchy.
    pub fn remove(&self) -> Result<(), CgroupError> {
        unimplemented!("cgroup stub")
    }
}
