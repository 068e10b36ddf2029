//! A guest's disk space: where its writable root filesystem lives and how it
//! is limited (btrfs qgroup, project quota or a loop image at
//! `guests/NAME/disk.img`), through the kernel crate's `DiskLimit`. Which
//! backend a guest uses is read back from the filesystem (image present,
//! subvolume with a qgroup limit, project id), so no extra state is kept.

use crate::paths::Layout;
use vbuild_kernel::disk::{self as kdisk, Backend, DiskLimit, DiskUsage};

/// A disk-space operation failed; names the guest and the fix.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DiskError(pub String);

/// The kernel crate's error, with the flag to change named here.
fn err(name: &str) -> impl Fn(kdisk::DiskError) -> DiskError + '_ {
    move |e| {
        let hint = match &e {
            kdisk::DiskError::TooSmall { .. } => " (try --disk 1G)",
            kdisk::DiskError::NoBlockDevice { .. } => {
                "; I/O limits need the guest on a disk or a loop image (--disk)"
            }
            _ => "",
        };
        DiskError(format!("{name}: {e}{hint}"))
    }
}

/// Where a guest's loop image lives (whether or not it has one).
pub fn image_path(layout: &Layout, name: &str) -> std::path::PathBuf {
    layout.guest_dir(name).join("disk.img")
}

/// The guest's disk limit, if it was created with one.
pub fn find(layout: &Layout, name: &str) -> Option<DiskLimit> {
    DiskLimit::find(
        &crate::layer::disk_dir(layout, name),
        &image_path(layout, name),
    )
}

/// Which backend `--disk` uses under this layout's guest store, and why
/// the better ones were passed over (for `vbuild check`).
pub fn probe(layout: &Layout) -> Result<kdisk::Probe, DiskError> {
    let store = layout.guests_dir();
    std::fs::create_dir_all(&store).map_err(|e| DiskError(format!("{}: {e}", store.display())))?;
    kdisk::probe(&store).map_err(|e| DiskError(e.to_string()))
}

/// Prepares `guests/NAME/rootfs` before the builder unpacks into it: a plain
/// directory without a limit, or a limited backend with `size` bytes (a
/// loop image is left mounted). On failure nothing is left behind.
pub fn create(layout: &Layout, name: &str, size: Option<u64>) -> Result<(), DiskError> {
    create_at(layout, name, &layout.guest_rootfs(name), size)
}

/// `create` for directory `rootfs` of guest `name` (an overlay guest's
/// layer, see `crate::layer`).
pub fn create_at(
    layout: &Layout,
    name: &str,
    rootfs: &std::path::Path,
    size: Option<u64>,
) -> Result<(), DiskError> {
    let Some(size) = size else {
        return std::fs::create_dir_all(rootfs)
            .map_err(|e| DiskError(format!("{name}: {}: {e}", rootfs.display())));
    };
    let backend = probe(layout)?.backend;
    let dir = layout.guest_dir(name);
    let made_dir = !dir.exists();
    std::fs::create_dir_all(&dir).map_err(|e| DiskError(format!("{name}: {e}")))?;
    DiskLimit::create(backend, rootfs, &image_path(layout, name), size)
        .map_err(err(name))
        .inspect_err(|_| {
            if made_dir {
                let _ = std::fs::remove_dir(&dir);
            }
        })?;
    Ok(())
}

/// Makes the rootfs available (mounts a loop image) before start; no-op for
/// plain directories and the other backends.
pub fn activate(layout: &Layout, name: &str) -> Result<(), DiskError> {
    match find(layout, name) {
        Some(l) => l.activate().map_err(err(name)),
        None => Ok(()),
    }
}

/// Undoes `activate` after the guest stopped; idempotent.
pub fn deactivate(layout: &Layout, name: &str) -> Result<(), DiskError> {
    match find(layout, name) {
        Some(l) => l.deactivate().map_err(err(name)),
        None => Ok(()),
    }
}

/// Changes the guest's disk limit to `size` bytes: live on btrfs and
/// project quota, live or offline for loop images (they only grow).
/// Shrinking below what is in use is refused.
pub fn grow(layout: &Layout, name: &str, size: u64) -> Result<(), DiskError> {
    let l = find(layout, name).ok_or_else(|| {
        DiskError(format!(
            "{name} was created without --disk; a disk limit is chosen when the guest is built (rebuild it with --disk 2G)"
        ))
    })?;
    l.resize(size).map_err(err(name))
}

/// Disk use and limit of the guest, `None` when it has no limit.
pub fn usage(layout: &Layout, name: &str) -> Result<Option<DiskUsage>, DiskError> {
    match find(layout, name) {
        Some(l) => l.usage().map(Some).map_err(err(name)),
        None => Ok(None),
    }
}

/// The backend limiting the guest's disk, if any, for status output.
pub fn backend(layout: &Layout, name: &str) -> Option<Backend> {
    find(layout, name).map(|l| l.backend())
}

/// Removes the guest's rootfs with its limit (subvolume + qgroup, project
/// quota, or mounted image and the image file). Idempotent; a guest without
/// a limit is left to the caller's directory removal.
pub fn destroy(layout: &Layout, name: &str) -> Result<(), DiskError> {
    match find(layout, name) {
        Some(l) => l.destroy().map_err(err(name)),
        None => Ok(()),
    }
}

/// The whole-disk devices I/O limits of the guest apply to: the loop device
/// of its image, or the disk(s) holding its directory.
pub fn io_devices(layout: &Layout, name: &str) -> Result<Vec<(u32, u32)>, DiskError> {
    let rootfs = crate::layer::disk_dir(layout, name);
    let at = if rootfs.exists() {
        rootfs
    } else {
        layout.guest_dir(name)
    };
    kdisk::backing_devices(&at).map_err(err(name))
}
