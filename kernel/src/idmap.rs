//! Id-mapped mounts: a copy of a directory tree whose file owners appear
//! shifted into a user namespace, so a guest whose root is an unprivileged
//! uid on the host still owns its root filesystem — without rewriting a
//! single file's ownership on disk. Made with the new mount API
//! (open_tree, mount_setattr, move_mount; Linux 5.12+, and a filesystem
//! that supports it: ext4, xfs, btrfs, tmpfs 6.3+).

use nix::errno::Errno;
use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

const OPEN_TREE_CLONE: u32 = 1;
const OPEN_TREE_CLOEXEC: u32 = libc::O_CLOEXEC as u32;
const AT_RECURSIVE: u32 = 0x8000;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x4;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Making an id-mapped tree failed, naming the step and the path.
#[derive(Debug, thiserror::Error)]
#[error("{op} {path}: {errno} (id-mapped mounts need Linux 5.12+ and a filesystem that supports them, e.g. ext4, xfs, btrfs)")]
pub struct IdmapError {
    /// `open_tree`, `open user namespace`, `mount_setattr`.
    pub op: &'static str,
    /// The directory or namespace file.
    pub path: String,
    /// The kernel's answer.
    pub errno: Errno,
}

/// A detached copy of the mount tree at `src` (with everything mounted
/// below it) whose ids are mapped through the user namespace of process
/// `userns_pid`. Attach it in the guest's mount namespace with `attach`.
pub fn idmapped_tree(src: &Path, userns_pid: i32) -> Result<OwnedFd, IdmapError> {
    let e = |op, path: String| move |errno| IdmapError { op, path, errno };
    let c = CString::new(src.as_os_str().as_bytes())
        .map_err(|_| e("open_tree", src.display().to_string())(Errno::EINVAL))?;
    // SAFETY: open_tree with a NUL-terminated path; returns a new descriptor.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            c.as_ptr(),
            OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE,
        )
    };
    if fd < 0 {
        return Err(e("open_tree", src.display().to_string())(Errno::last()));
    }
    // SAFETY: fd is new and ours.
    let tree = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    let ns_path = format!("/proc/{userns_pid}/ns/user");
    let ns = std::fs::File::open(&ns_path).map_err(|io| {
        e("open user namespace", ns_path.clone())(Errno::from_raw(
            io.raw_os_error().unwrap_or(libc::EIO),
        ))
    })?;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: ns.as_raw_fd() as u64,
    };
    // SAFETY: mount_setattr on our tree with a valid attr struct.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH as u32 | AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r < 0 {
        return Err(e("mount_setattr (idmap)", src.display().to_string())(
            Errno::last(),
        ));
    }
    Ok(tree)
}

/// Mounts a detached tree (from `idmapped_tree`) on `dst` in the caller's
/// mount namespace. Allocation-free, for a guest's first process.
pub fn attach(tree: RawFd, dst: &CStr) -> Result<(), Errno> {
    // SAFETY: move_mount from our descriptor onto a NUL-terminated path.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree,
            c"".as_ptr(),
            libc::AT_FDCWD,
            dst.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if r < 0 {
        return Err(Errno::last());
    }
    Ok(())
}
