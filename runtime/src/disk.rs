//! A guest's disk space: where its writable root filesystem lives and how it
//! is limited (btrfs qgroup, project quota or a loop image). (STUB: being written.)

use crate::paths::Layout;

/// A disk-space operation failed; names the image, subvolume or path.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DiskError(pub String);

/// Prepares `guests/NAME/rootfs` before the builder unpacks into it: a plain
/// directory without a limit, or a limited backend with `size` bytes.
pub fn create(layout: &Layout, name: &str, size: Option<u64>) -> Result<(), DiskError> {
    let _ = size;
    std::fs::create_dir_all(layout.guest_rootfs(name)).map_err(|e| DiskError(e.to_string()))
}

/// Makes the rootfs available (mounts a loop image) before start; no-op for plain dirs.
pub fn activate(_layout: &Layout, _name: &str) -> Result<(), DiskError> {
    Ok(())
}

/// Undoes `activate` after the guest stopped; idempotent.
pub fn deactivate(_layout: &Layout, _name: &str) -> Result<(), DiskError> {
    Ok(())
}
