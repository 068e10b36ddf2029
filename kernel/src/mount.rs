//! Mounts: the small set of mount(2)/umount(2)/pivot_root(2) calls the
//! builder's script context and the runtime's guest rootfs are made of.
//! Every error names the path it failed on.

use nix::mount::{MntFlags, MsFlags};
use std::path::{Path, PathBuf};

/// A mount operation that failed, with the target path.
#[derive(Debug, thiserror::Error)]
#[error("{op} {path}: {errno}")]
pub struct MountError {
    /// What was attempted (`bind`, `mount proc`, `umount`).
    pub op: &'static str,
    /// The target.
    pub path: PathBuf,
    /// The kernel's answer.
    pub errno: nix::Error,
}

fn err(op: &'static str, path: &Path) -> impl FnOnce(nix::Error) -> MountError {
    let path = path.to_path_buf();
    move |errno| MountError { op, path, errno }
}

/// Makes every mount below `/` private in the current mount namespace, so
/// nothing we mount propagates back to the host.
pub fn make_rprivate() -> Result<(), MountError> {
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(err("make private", Path::new("/")))
}

/// Bind-mounts `src` on `dst` (recursively), optionally read-only.
pub fn bind(src: &Path, dst: &Path, readonly: bool) -> Result<(), MountError> {
    nix::mount::mount(
        Some(src),
        dst,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(err("bind", dst))?;
    if readonly {
        nix::mount::mount(
            None::<&str>,
            dst,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(err("remount read-only", dst))?;
    }
    Ok(())
}

/// Mounts a filesystem of type `fstype` (`proc`, `sysfs`, `tmpfs`,
/// `devpts`, `cgroup2`, `mqueue`) on `dst` with `flags` and `data`.
pub fn mount_fs(
    fstype: &str,
    dst: &Path,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), MountError> {
    nix::mount::mount(Some(fstype), dst, Some(fstype), flags, data).map_err(err("mount", dst))
}

/// Mounts a tmpfs with `data` options (`mode=755,size=64m`).
pub fn tmpfs(dst: &Path, flags: MsFlags, data: &str) -> Result<(), MountError> {
    mount_fs("tmpfs", dst, flags, Some(data))
}

/// Remounts an existing mount point read-only, keeping its other flags.
pub fn remount_readonly(dst: &Path, flags: MsFlags) -> Result<(), MountError> {
    nix::mount::mount(
        None::<&str>,
        dst,
        None::<&str>,
        flags | MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY,
        None::<&str>,
    )
    .map_err(err("remount read-only", dst))
}

/// Unmounts `dst`; `lazy` detaches it even when busy.
pub fn unmount(dst: &Path, lazy: bool) -> Result<(), MountError> {
    let flags = if lazy {
        MntFlags::MNT_DETACH
    } else {
        MntFlags::empty()
    };
    nix::mount::umount2(dst, flags).map_err(err("umount", dst))
}

/// Makes `new_root` the root of this mount namespace and detaches the old
/// root, so the host's filesystem is unreachable from inside.
pub fn pivot_root(new_root: &Path) -> Result<(), MountError> {
    // A bind mount of itself makes new_root a mount point, as pivot_root needs.
    bind(new_root, new_root, false)?;
    nix::unistd::chdir(new_root).map_err(err("chdir", new_root))?;
    // pivot_root(".", ".") stacks the old root under the new one; unmounting
    // "." afterwards drops it without needing a directory for it.
    nix::unistd::pivot_root(".", ".").map_err(err("pivot_root", new_root))?;
    nix::mount::umount2(".", MntFlags::MNT_DETACH).map_err(err("detach old root", new_root))?;
    nix::unistd::chdir("/").map_err(err("chdir", Path::new("/")))
}

/// chroot(2) into `dir` and chdir to its `/`: the builder's script context,
/// where pivot_root is not needed because the process is short-lived.
pub fn chroot(dir: &Path) -> Result<(), MountError> {
    nix::unistd::chroot(dir).map_err(err("chroot", dir))?;
    nix::unistd::chdir("/").map_err(err("chdir", Path::new("/")))
}

/// Lists the mount points at or below `prefix` from /proc/self/mountinfo,
/// deepest first, so they can be unmounted in order.
pub fn mounts_below(prefix: &Path) -> std::io::Result<Vec<PathBuf>> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")?;
    let mut out: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_mountinfo(p)))
        .filter(|p| p.starts_with(prefix))
        .collect();
    out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    out.dedup();
    Ok(out)
}

/// Decodes the octal escapes (`\040` for space) mountinfo uses in paths.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(unescape_mountinfo("/a\\040b"), "/a b");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
    }

    #[test]
    fn root_is_listed_below_root() {
        let m = mounts_below(Path::new("/")).unwrap();
        assert!(m.contains(&PathBuf::from("/")));
        // deepest first
        let depths: Vec<usize> = m.iter().map(|p| p.components().count()).collect();
        assert!(depths.windows(2).all(|w| w[0] >= w[1]));
    }
}
