//! Disk space limits for one directory tree (a guest's writable root), by
//! whichever of three mechanisms the host's filesystem supports:
//!
//! 1. btrfs: the directory is a subvolume with a qgroup limit (btrfs.rs);
//! 2. ext4/xfs project quota: the directory carries a project id with a
//!    quota on it (projquota.rs) — needs a kernel with quota support and a
//!    filesystem mounted with prjquota;
//! 3. otherwise a sparse ext4 image file, loop-mounted on the directory
//!    (loop.rs), which works on any host with loop devices.
//!
//! `DiskLimit` hides which one is in use: the runtime creates, activates,
//! grows, reads and destroys a limit without caring. Usage figures come from
//! the mechanism's own counters (qgroup, quota, statfs), never from walking
//! the tree.

mod btrfs;
mod device;
mod ioctl;
mod loopdev;
mod projquota;

pub use device::backing_devices;
pub use loopdev::LoopDevice;

use std::path::{Path, PathBuf};

/// A disk-limit operation that failed, naming the path and the fix.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    /// A system call on a path failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was attempted (`mount`, `create subvolume`).
        what: &'static str,
        /// The image, directory or device.
        path: PathBuf,
        /// The kernel's answer.
        source: std::io::Error,
    },
    /// The host cannot do what was asked; the message says what to change.
    #[error("{0}")]
    Unsupported(String),
    /// A size that cannot be applied (shrinking below use, zero).
    #[error("{0}")]
    BadSize(String),
    /// A limit too small to hold a filesystem.
    #[error("{}: a disk limit of {size} bytes is too small for a filesystem (at least {min} bytes)", .dir.display())]
    TooSmall {
        /// The directory to be limited.
        dir: PathBuf,
        /// What was asked.
        size: u64,
        /// The smallest that works.
        min: u64,
    },
    /// No block device backs the path (tmpfs, overlay), so nothing can be
    /// throttled on it.
    #[error("{}: no block device backs it (tmpfs or overlay?)", .path.display())]
    NoBlockDevice {
        /// The path looked at.
        path: PathBuf,
    },
}

impl DiskError {
    pub(crate) fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> DiskError {
        let path = path.to_path_buf();
        move |source| DiskError::Io { what, path, source }
    }
}

/// How a directory's disk space is limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A btrfs subvolume with a qgroup limit on referenced bytes.
    Btrfs,
    /// An ext4/xfs project quota on the directory's project id.
    ProjectQuota,
    /// A sparse ext4 image loop-mounted on the directory.
    LoopImage,
}

impl Backend {
    /// A short name for `vbuild check` and status output.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Btrfs => "btrfs-qgroup",
            Backend::ProjectQuota => "project-quota",
            Backend::LoopImage => "loop-image",
        }
    }
}

/// What `probe` found, with the reasons the better backends were passed
/// over, for `vbuild check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// The backend new limits under the store will use.
    pub backend: Backend,
    /// Why btrfs or project quota were not chosen (empty when they were).
    pub notes: Vec<String>,
}

/// Picks the backend for limits on directories under `store` (which must
/// exist): btrfs when `store` is on btrfs, project quota when its ext4/xfs
/// filesystem has project quota enforced, else loop images.
pub fn probe(store: &Path) -> Result<Probe, DiskError> {
    let mut notes = Vec::new();
    let magic = fs_magic(store)?;
    if magic == btrfs::BTRFS_SUPER_MAGIC {
        return Ok(Probe {
            backend: Backend::Btrfs,
            notes,
        });
    }
    notes.push(format!("{} is not on btrfs", store.display()));
    match projquota::probe(store, magic) {
        Ok(()) => {
            return Ok(Probe {
                backend: Backend::ProjectQuota,
                notes,
            })
        }
        Err(why) => notes.push(why),
    }
    Ok(Probe {
        backend: Backend::LoopImage,
        notes,
    })
}

/// The statfs f_type of the filesystem holding `path` (its word size
/// differs between architectures, hence the widening).
pub(crate) fn fs_magic(path: &Path) -> Result<i64, DiskError> {
    let st = nix::sys::statfs::statfs(path)
        .map_err(|e| DiskError::io("statfs", path)(std::io::Error::from(e)))?;
    #[allow(clippy::unnecessary_cast)]
    Ok(st.filesystem_type().0 as i64)
}

/// Current use and limit of one limited directory, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskUsage {
    /// Bytes in use.
    pub used: u64,
    /// The limit.
    pub limit: u64,
}

/// One directory's disk limit: the directory, and for loop images the
/// image file mounted on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskLimit {
    backend: Backend,
    dir: PathBuf,
    image: PathBuf,
}

impl DiskLimit {
    /// Creates `dir` (absent or empty) limited to `size` bytes with
    /// `backend`; `image` is where a loop image goes (unused otherwise). A
    /// loop image is formatted and left mounted on `dir`. On failure
    /// everything made so far is undone.
    pub fn create(
        backend: Backend,
        dir: &Path,
        image: &Path,
        size: u64,
    ) -> Result<DiskLimit, DiskError> {
        if backend == Backend::LoopImage && image.exists() {
            return Err(DiskError::BadSize(format!(
                "{} already exists (delete the old guest's image first)",
                image.display()
            )));
        }
        if dir.exists() {
            // An empty directory (made by an earlier step) is replaced;
            // anything with content is not ours to take over.
            std::fs::remove_dir(dir).map_err(|_| {
                DiskError::BadSize(format!(
                    "{} already exists and is not empty; a disk limit is set up before anything is put there (delete it first)",
                    dir.display()
                ))
            })?;
        }
        let limit = DiskLimit::open(backend, dir, image);
        let made = match backend {
            Backend::Btrfs => btrfs::create(dir, size),
            Backend::ProjectQuota => projquota::create(dir, size),
            Backend::LoopImage => loopdev::create(dir, image, size),
        };
        if let Err(e) = made {
            let _ = limit.destroy();
            return Err(e);
        }
        Ok(limit)
    }

    /// A handle on an existing limit (nothing is checked or changed).
    pub fn open(backend: Backend, dir: &Path, image: &Path) -> DiskLimit {
        DiskLimit {
            backend,
            dir: dir.to_path_buf(),
            image: image.to_path_buf(),
        }
    }

    /// Finds which backend limits `dir`, if any: a loop image at `image`, a
    /// btrfs subvolume with a qgroup limit, or a project id with a quota.
    pub fn find(dir: &Path, image: &Path) -> Option<DiskLimit> {
        let backend = if image.is_file() {
            Backend::LoopImage
        } else if btrfs::is_limited_subvolume(dir) {
            Backend::Btrfs
        } else if projquota::has_project(dir) {
            Backend::ProjectQuota
        } else {
            return None;
        };
        Some(DiskLimit::open(backend, dir, image))
    }

    /// The mechanism in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The limited directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Makes the directory usable: mounts the loop image if it is not
    /// mounted yet; nothing to do for the others.
    pub fn activate(&self) -> Result<(), DiskError> {
        match self.backend {
            Backend::LoopImage => loopdev::mount_image(&self.image, &self.dir),
            _ => Ok(()),
        }
    }

    /// Undoes `activate` (unmounts a loop image; the loop device goes with
    /// it). Idempotent.
    pub fn deactivate(&self) -> Result<(), DiskError> {
        match self.backend {
            Backend::LoopImage => loopdev::unmount(&self.dir),
            _ => Ok(()),
        }
    }

    /// Changes the limit to `size` bytes, live where the backend allows.
    /// Shrinking below what is in use is refused; loop images only grow.
    pub fn resize(&self, size: u64) -> Result<(), DiskError> {
        let used = self.usage()?.used;
        if size < used {
            return Err(DiskError::BadSize(format!(
                "{}: {} bytes are in use, more than the new limit of {size} (free space first or pick a larger size)",
                self.dir.display(),
                used
            )));
        }
        match self.backend {
            Backend::Btrfs => btrfs::set_limit(&self.dir, size),
            Backend::ProjectQuota => projquota::set_limit(&self.dir, size),
            Backend::LoopImage => loopdev::grow(&self.image, &self.dir, size),
        }
    }

    /// Bytes used and the limit, from the backend's counters.
    pub fn usage(&self) -> Result<DiskUsage, DiskError> {
        match self.backend {
            Backend::Btrfs => btrfs::usage(&self.dir),
            Backend::ProjectQuota => projquota::usage(&self.dir),
            Backend::LoopImage => loopdev::usage(&self.image, &self.dir),
        }
    }

    /// Removes the directory with everything in it, its limit, and the
    /// image. Idempotent.
    pub fn destroy(&self) -> Result<(), DiskError> {
        match self.backend {
            Backend::Btrfs => btrfs::destroy(&self.dir),
            Backend::ProjectQuota => projquota::destroy(&self.dir),
            Backend::LoopImage => loopdev::destroy(&self.image, &self.dir),
        }
    }
}
