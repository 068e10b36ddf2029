//! The task's root filesystem: containerd's snapshot mounts put on
//! BUNDLE/rootfs at create and taken off at delete.

use containerd_shim_protos::types::mount::Mount;
use nix::mount::MsFlags;
use std::path::{Path, PathBuf};

/// BUNDLE/rootfs, checked to be a real directory (not a symlink).
fn target(bundle: &Path) -> Result<PathBuf, String> {
    let t = bundle.join("rootfs");
    match std::fs::symlink_metadata(&t) {
        Ok(m) if m.is_dir() => Ok(t),
        Ok(_) => Err(format!("{} is not a directory", t.display())),
        Err(e) => Err(format!("{}: {e}", t.display())),
    }
}

/// Mounts `mounts` (overlay or bind, as containerd's snapshotters give)
/// on BUNDLE/rootfs, in order.
pub fn mount(bundle: &Path, mounts: &[Mount]) -> Result<(), String> {
    if mounts.is_empty() {
        return Ok(());
    }
    let dst = target(bundle)?;
    for m in mounts {
        let (mut flags, mut data, mut bind) = (MsFlags::empty(), Vec::new(), false);
        for o in &m.options {
            match o.as_str() {
                "ro" => flags |= MsFlags::MS_RDONLY,
                "rw" => {}
                "bind" => bind = true,
                "rbind" => bind = true,
                "nosuid" => flags |= MsFlags::MS_NOSUID,
                "nodev" => flags |= MsFlags::MS_NODEV,
                "noexec" => flags |= MsFlags::MS_NOEXEC,
                other => data.push(other),
            }
        }
        let res = if bind || m.type_ == "bind" {
            vbuild_kernel::mount::bind(
                Path::new(&m.source),
                &dst,
                flags.contains(MsFlags::MS_RDONLY),
            )
        } else {
            let data = data.join(",");
            vbuild_kernel::mount::mount_fs(&m.type_, &dst, flags, Some(&data))
        };
        res.map_err(|e| format!("rootfs mount {} ({}): {e}", m.type_, m.source))?;
    }
    Ok(())
}

/// Unmounts everything at or below BUNDLE/rootfs (deepest first).
pub fn unmount(bundle: &Path) -> Result<(), String> {
    let dst = bundle.join("rootfs");
    let below = vbuild_kernel::mount::mounts_below(&dst)
        .map_err(|e| format!("read mounts below {}: {e}", dst.display()))?;
    for p in below {
        vbuild_kernel::mount::unmount(&p, true).map_err(|e| e.to_string())?;
    }
    Ok(())
}
