//! Overlay roots: a guest's root as a detached overlayfs mount whose lower
//! layer is a shared, read-only template and whose upper layer is the
//! guest's own directory, made with the new mount API (fsopen, fsconfig,
//! fsmount) and handed to the guest's first process like any detached tree.
//!
//! Why the id mapping sits on the layers, not on the overlay: overlayfs
//! does not allow an id-mapped mount of itself (mount_setattr with
//! MOUNT_ATTR_IDMAP on an overlay answers EINVAL, checked on Linux 6.18),
//! but it accepts id-mapped *layers* (Linux 5.19+). So the template and the
//! guest's layer are each cloned as id-mapped trees and the overlay is
//! built on top of them: the guest's root sees the template's root-owned
//! files as its own, nothing on disk is chowned, and what the guest writes
//! lands in its upper layer owned by host root, like the template.
//! Overlayfs does its own work (work dir, copy-up) with the credentials of
//! whoever created it; host uid 0 has no mapping in the guest's id map
//! (EOVERFLOW, and overlayfs falls back to read-only), so the overlay is
//! created with the fs ids of the guest's root, keeping every capability.

use crate::idmap::{idmapped_tree, IdmapError};
use nix::errno::Errno;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

const FSOPEN_CLOEXEC: u32 = 1;
const FSCONFIG_SET_STRING: u32 = 1;
const FSCONFIG_CMD_CREATE: u32 = 6;
const FSMOUNT_CLOEXEC: u32 = 1;

/// Making an overlay root failed, naming the step and the path.
#[derive(Debug, thiserror::Error)]
#[error("overlay {op} {path}: {errno}")]
pub struct OverlayError {
    /// `fsopen`, `fsconfig lowerdir`, `create`, `fsmount`, or an id-map step.
    pub op: String,
    /// The layer involved.
    pub path: String,
    /// The kernel's answer.
    pub errno: Errno,
}

impl From<IdmapError> for OverlayError {
    fn from(e: IdmapError) -> Self {
        OverlayError {
            op: e.op.to_string(),
            path: e.path,
            errno: e.errno,
        }
    }
}

/// Whose ids the overlay's layers are shown as: the process whose user
/// namespace maps them, and the host uid/gid of that namespace's root.
#[derive(Debug, Clone, Copy)]
pub struct LayerIds {
    /// A process in the guest's user namespace (its init).
    pub userns_pid: i32,
    /// Host uid and gid of the guest's root.
    pub root: u32,
}

/// A detached overlay mount: lower `lower` (read-only, shared), upper
/// `layer/upper`, work `layer/work` (one filesystem). With `ids`, both are
/// id-mapped into that user namespace first (see the module comment).
/// Attach it with `crate::idmap::attach`.
pub fn overlay_tree(
    lower: &Path,
    layer: &Path,
    ids: Option<LayerIds>,
) -> Result<OwnedFd, OverlayError> {
    let fail = |op: &str, path: &Path| {
        let (op, path) = (op.to_string(), path.display().to_string());
        move |errno| OverlayError { op, path, errno }
    };
    // The layers as the overlay should see them: id-mapped clones, or the
    // paths themselves.
    let (lower_t, layer_t) = match ids {
        Some(i) => (
            Some(idmapped_tree(lower, i.userns_pid)?),
            Some(idmapped_tree(layer, i.userns_pid)?),
        ),
        None => (None, None),
    };
    let via = |t: &Option<OwnedFd>, p: &Path, sub: &str| -> String {
        let base = match t {
            Some(fd) => format!("/proc/self/fd/{}", fd.as_raw_fd()),
            None => p.display().to_string(),
        };
        if sub.is_empty() {
            base
        } else {
            format!("{base}/{sub}")
        }
    };
    // SAFETY: fsopen with a static NUL-terminated name; returns a new fd.
    let fs = unsafe { libc::syscall(libc::SYS_fsopen, c"overlay".as_ptr(), FSOPEN_CLOEXEC) };
    if fs < 0 {
        return Err(fail("fsopen", lower)(Errno::last()));
    }
    // SAFETY: a new descriptor, ours.
    let fs = unsafe { OwnedFd::from_raw_fd(fs as RawFd) };
    for (key, value, path) in [
        ("lowerdir", via(&lower_t, lower, ""), lower),
        ("upperdir", via(&layer_t, layer, "upper"), layer),
        ("workdir", via(&layer_t, layer, "work"), layer),
    ] {
        set_string(&fs, key, &value).map_err(fail(&format!("fsconfig {key}"), path))?;
    }
    let created = match ids {
        Some(i) => with_fs_ids(i.root, || fsconfig_create(&fs)),
        None => fsconfig_create(&fs),
    };
    created.map_err(fail("create", layer))?;
    // SAFETY: fsmount on our configured context; returns a new fd.
    let m = unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, 0) };
    if m < 0 {
        return Err(fail("fsmount", layer)(Errno::last()));
    }
    // SAFETY: a new descriptor, ours.
    Ok(unsafe { OwnedFd::from_raw_fd(m as RawFd) })
}

/// A detached read-only overlay of `layers` (topmost first; no upper or
/// work directory), so the merged view of an overlay guest can be read
/// whether or not the guest runs: a layer that is another overlay's upper
/// is only read here, which the kernel allows, and its whiteouts and
/// opaque directories hide what they hide in the guest.
pub fn readonly_view(layers: &[&Path]) -> Result<OwnedFd, OverlayError> {
    let first = layers.first().copied().unwrap_or(Path::new(""));
    let fail = |op: &str, path: &Path| {
        let (op, path) = (op.to_string(), path.display().to_string());
        move |errno| OverlayError { op, path, errno }
    };
    if layers.len() < 2 {
        return Err(fail("lowerdir", first)(Errno::EINVAL));
    }
    // SAFETY: fsopen with a static NUL-terminated name; returns a new fd.
    let fs = unsafe { libc::syscall(libc::SYS_fsopen, c"overlay".as_ptr(), FSOPEN_CLOEXEC) };
    if fs < 0 {
        return Err(fail("fsopen", first)(Errno::last()));
    }
    // SAFETY: a new descriptor, ours.
    let fs = unsafe { OwnedFd::from_raw_fd(fs as RawFd) };
    let lower: Vec<String> = layers.iter().map(|p| p.display().to_string()).collect();
    set_string(&fs, "lowerdir", &lower.join(":")).map_err(fail("fsconfig lowerdir", first))?;
    fsconfig_create(&fs).map_err(fail("create", first))?;
    // SAFETY: fsmount on our configured context; returns a new fd.
    let m = unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, 0) };
    if m < 0 {
        return Err(fail("fsmount", first)(Errno::last()));
    }
    // SAFETY: a new descriptor, ours.
    Ok(unsafe { OwnedFd::from_raw_fd(m as RawFd) })
}

fn set_string(fs: &OwnedFd, key: &str, value: &str) -> Result<(), Errno> {
    let k = CString::new(key).map_err(|_| Errno::EINVAL)?;
    let v = CString::new(value).map_err(|_| Errno::EINVAL)?;
    // SAFETY: fsconfig with NUL-terminated key and value.
    let r = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_SET_STRING,
            k.as_ptr(),
            v.as_ptr(),
            0,
        )
    };
    if r < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

fn fsconfig_create(fs: &OwnedFd) -> Result<(), Errno> {
    // SAFETY: fsconfig CREATE takes no key or value.
    let r = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    if r < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_V3: u32 = 0x2008_0522;

/// Runs `f` on this thread with fs uid/gid `id` and every permitted
/// capability effective (changing the fs uid away from 0 drops the file
/// capabilities; overlayfs records the creator's credentials as they are
/// at create time), then puts both back. Raw syscalls: per thread.
fn with_fs_ids<T>(id: u32, f: impl FnOnce() -> Result<T, Errno>) -> Result<T, Errno> {
    let mut hdr = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let mut saved = [CapData::default(); 2];
    // SAFETY: capget into our two-element array (version 3).
    if unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut hdr as *mut CapHeader,
            saved.as_mut_ptr(),
        )
    } < 0
    {
        return Err(Errno::last());
    }
    // SAFETY: per-thread fs id changes; restored below.
    unsafe {
        libc::syscall(libc::SYS_setfsgid, id);
        libc::syscall(libc::SYS_setfsuid, id);
    }
    let mut raised = saved;
    for d in raised.iter_mut() {
        d.effective = d.permitted;
    }
    // SAFETY: capset with our header and data.
    let r = unsafe {
        libc::syscall(
            libc::SYS_capset,
            &mut hdr as *mut CapHeader,
            raised.as_ptr(),
        )
    };
    let out = if r < 0 { Err(Errno::last()) } else { f() };
    // SAFETY: back to root's fs ids and the saved capabilities.
    unsafe {
        libc::syscall(libc::SYS_setfsuid, 0u32);
        libc::syscall(libc::SYS_setfsgid, 0u32);
        libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, saved.as_ptr());
    }
    out
}
