//! `vbuild cp SRC NAME:DST` and `vbuild cp NAME:SRC DST`: files between
//! the host and a guest, running or stopped, made so that a hostile guest
//! root gains nothing from it.
//!
//! Every guest-side path is resolved by the kernel inside the guest's root
//! as its init sees it (`/proc/PID/root`, openat2 with `RESOLVE_IN_ROOT`):
//! `..`, absolute and relative symlinks planted by the guest all stay
//! inside it, even when the guest swaps directories while we copy. A guest
//! path naming `..` is refused outright. Below a directory being copied
//! (`-r`), no symlink is followed at all: entries are opened one level at a
//! time with `RESOLVE_NO_SYMLINKS`, and symlinks are copied as symlinks.
//!
//! Into the guest: files are created as the guest's root (the thread's
//! filesystem ids are the guest's mapped root while it writes, so the
//! kernel checks access as it would for the guest's root without
//! capabilities, and new files belong to it), with the source's mode,
//! under a temporary name and renamed into place, so an existing file or
//! symlink at the destination is replaced, never written through.
//! Directories on proc-like pseudo filesystems are refused.
//!
//! Out of the guest: only regular files are read (opened `O_PATH` first,
//! checked, then reopened: a FIFO or device is never opened, a pseudo
//! filesystem file never read); set-id bits are dropped on the host.

use crate::error::RuntimeError;
use crate::name::GuestName;
use crate::paths::Layout;
use crate::state::{Liveness, State};
use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use vbuild_kernel::fsroot::{self, Root};
use vbuild_kernel::process;

/// What a copy did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Copied {
    /// Regular files copied.
    pub files: u64,
    /// Directories made (or merged into).
    pub dirs: u64,
    /// Symlinks copied as symlinks.
    pub symlinks: u64,
    /// Bytes of file data copied.
    pub bytes: u64,
    /// Entries left out (devices, FIFOs, sockets), as paths.
    pub skipped: Vec<String>,
    /// Where the copy went: a guest path (`NAME:/x`) or a host path.
    pub to: String,
}

/// A copy that was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The guest does not exist or does not run.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// Bad input; nothing was copied.
    #[error("{0}")]
    Refused(String),
    /// A guest-side operation failed.
    #[error("{guest}:{path}: {source}", path = .path.display())]
    Guest {
        /// The guest.
        guest: String,
        /// The path inside it.
        path: PathBuf,
        /// The kernel's answer.
        source: io::Error,
    },
    /// A host-side operation failed.
    #[error("{path}: {source}", path = .path.display())]
    Host {
        /// The host path.
        path: PathBuf,
        /// The kernel's answer.
        source: io::Error,
    },
}

impl CopyError {
    /// Whether the failure is a missing file or directory.
    pub fn is_not_found(&self) -> bool {
        match self {
            CopyError::Guest { source, .. } | CopyError::Host { source, .. } => {
                source.raw_os_error() == Some(libc::ENOENT)
            }
            CopyError::Runtime(RuntimeError::NotFound(_)) => true,
            _ => false,
        }
    }
}

/// The guest's root as a copy sees it, the host uid of the guest's root
/// there, and, for a stopped guest, its run lock (held for the copy, so the
/// guest cannot start while its tree is written).
struct GuestTree {
    root: Root,
    uid: u32,
    _stopped: Option<crate::state::RunLock>,
}

/// A running guest's root as its init sees it (its uid that of the guest's
/// mapped root); a stopped guest's tree as it is on disk (uid 0: the tree
/// is stored unshifted), an overlay guest's through a private overlay of
/// its layer over its template, which nothing else mounts while the run
/// lock is held.
fn guest_root(layout: &Layout, name: &GuestName) -> Result<GuestTree, CopyError> {
    let n = name.as_str();
    if !layout.guest_config(n).is_file() {
        return Err(RuntimeError::NotFound(n.to_string()).into());
    }
    let open = |p: &Path| {
        Root::open(p).map_err(|e| RuntimeError::Io {
            path: e.path,
            source: e.source,
        })
    };
    if let Some(st) = State::load(layout, n)? {
        if matches!(st.liveness(), Liveness::Running { .. }) {
            let root = open(Path::new(&format!("/proc/{}/root", st.init_pid)))?;
            // The root is pinned; make sure it still is the guest's init's.
            if !process::is_alive(st.init_pid, st.init_start) {
                return Err(RuntimeError::NotRunning(n.to_string()).into());
            }
            let uid = if st.userns { st.id_base } else { 0 };
            return Ok(GuestTree {
                root,
                uid,
                _stopped: None,
            });
        }
    }
    // Stopped: nobody may start it while we copy.
    let lock = crate::state::RunLock::try_take(layout, n)?
        .ok_or_else(|| RuntimeError::Busy(n.to_string()))?;
    crate::disk::activate(layout, n).map_err(|e| CopyError::Refused(e.to_string()))?;
    let root = if crate::layer::is_overlay(layout, n) {
        let cfg = crate::config::GuestConfig::load(&layout.guest_config(n))
            .map_err(RuntimeError::from)?;
        let tree = crate::layer::root_tree(layout, &cfg, n, None).map_err(RuntimeError::from)?;
        // Root keeps the detached mount alive through its own descriptor.
        open(Path::new(&format!("/proc/self/fd/{}", tree.as_raw_fd())))?
    } else {
        open(&layout.guest_rootfs(n))?
    };
    Ok(GuestTree {
        root,
        uid: 0,
        _stopped: Some(lock),
    })
}

/// A guest path as given (`/etc/x`, `etc/x`): absolute inside the guest,
/// `..` refused, `.` dropped. Returns it relative to the guest's root.
fn guest_path(spec: &str) -> Result<PathBuf, CopyError> {
    let mut out = PathBuf::new();
    for c in Path::new(spec).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(CopyError::Refused(format!(
                    "guest path {spec}: `..` is not allowed (give the path from the guest's /)"
                )))
            }
        }
    }
    Ok(out)
}

fn shown(rel: &Path) -> PathBuf {
    Path::new("/").join(rel)
}

fn cstr(p: &OsStr) -> io::Result<CString> {
    CString::new(p.as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// The thread's filesystem ids set to the guest's root while alive (a
/// no-op for uid 0); restored when dropped. setfsuid/setfsgid act on the
/// calling thread only.
struct AsGuestRoot(bool);

impl AsGuestRoot {
    fn new(uid: u32) -> AsGuestRoot {
        if uid == 0 {
            return AsGuestRoot(false);
        }
        // SAFETY: plain id syscalls of this thread.
        unsafe {
            libc::setfsgid(uid);
            libc::setfsuid(uid);
        }
        AsGuestRoot(true)
    }
}

impl Drop for AsGuestRoot {
    fn drop(&mut self) {
        if self.0 {
            // SAFETY: back to root's filesystem ids (our real ones).
            unsafe {
                libc::setfsuid(0);
                libc::setfsgid(0);
            }
        }
    }
}

/// Whether `fd` lies on a kernel pseudo filesystem (proc, sysfs, ...).
fn is_pseudo_fs(fd: BorrowedFd<'_>) -> io::Result<bool> {
    const PSEUDO: [i64; 9] = [
        0x9fa0,      // proc
        0x6265_6572, // sysfs
        0x6462_6720, // debugfs
        0x7472_6163, // tracefs
        0x7363_6673, // securityfs
        0x6265_6570, // configfs
        0x0027_e0eb, // cgroup (v1)
        0x6367_7270, // cgroup2
        0x6e73_6673, // nsfs
    ];
    let mut sfs: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid fd and a writable statfs.
    if unsafe { libc::fstatfs(fd.as_raw_fd(), &mut sfs) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(PSEUDO.contains(&(sfs.f_type as i64)))
}

/// Opens the inode behind an `O_PATH` descriptor anew for reading
/// (through /proc/self/fd, which names exactly that inode).
fn reopen_read(fd: BorrowedFd<'_>) -> io::Result<std::fs::File> {
    let p = CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).expect("no NUL");
    // SAFETY: NUL-terminated path.
    let r = unsafe {
        libc::open(
            p.as_ptr(),
            libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor we own.
    Ok(std::fs::File::from(unsafe { OwnedFd::from_raw_fd(r) }))
}

/// Opens entry `name` of directory `dir` without following any symlink.
fn open_entry(dir: BorrowedFd<'_>, name: &CStr, flags: i32) -> io::Result<OwnedFd> {
    fsroot::openat2(
        dir,
        name,
        flags | libc::O_NOFOLLOW,
        0,
        libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS,
    )
}

/// The temporary name a file is written under before it is renamed.
fn temp_name(name: &CStr) -> CString {
    let mut v = b".vbuild-cp.".to_vec();
    let b = name.to_bytes();
    v.extend_from_slice(&b[..b.len().min(200)]);
    CString::new(v).expect("no NUL in a C string")
}

/// Copies host `src` into running guest `name` at guest path `dst`: into
/// `dst` when it is a directory there, else to `dst` (whose parent must
/// exist). A directory needs `recursive`.
pub fn copy_in(
    layout: &Layout,
    name: &GuestName,
    src: &Path,
    dst: &str,
    recursive: bool,
) -> Result<Copied, CopyError> {
    let host_err = |source| CopyError::Host {
        path: src.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(src).map_err(host_err)?;
    if meta.is_dir() && !recursive {
        return Err(CopyError::Refused(format!(
            "{} is a directory (copy it with `vbuild cp -r`)",
            src.display()
        )));
    }
    if !meta.is_dir() && !meta.is_file() {
        return Err(CopyError::Refused(format!(
            "{}: not a regular file or directory",
            src.display()
        )));
    }
    let rel = guest_path(dst)?;
    let tree = guest_root(layout, name)?;
    let (root, uid) = (&tree.root, tree.uid);
    let n = name.as_str();
    let gerr = |path: &Path| {
        let path = shown(path);
        move |source| CopyError::Guest {
            guest: n.to_string(),
            path,
            source,
        }
    };
    // Guest-side lookups and writes as the guest's root; host-side reads
    // (the source may be readable by root only) as ourselves.
    let ids = AsGuestRoot::new(uid);
    // Into an existing directory, under the source's name.
    let target = if root.is_dir(&rel) {
        let base = src
            .file_name()
            .ok_or_else(|| CopyError::Refused(format!("{}: names no file", src.display())))?;
        rel.join(base)
    } else if dst.ends_with('/') {
        return Err(gerr(&rel)(io::Error::from_raw_os_error(libc::ENOENT)));
    } else {
        rel
    };
    let (parent, leaf) = root.parent(&target).map_err(|e| gerr(&target)(e.source))?;
    if is_pseudo_fs(parent.as_fd()).map_err(gerr(&target))? {
        return Err(CopyError::Refused(format!(
            "{n}:{}: on a pseudo filesystem (proc, sysfs, ...); not copied",
            shown(&target).display()
        )));
    }
    let mut done = Copied {
        to: format!("{n}:{}", shown(&target).display()),
        ..Copied::default()
    };
    drop(ids);
    let mut w = InGuest {
        guest: n,
        uid,
        done: &mut done,
    };
    w.put(parent.as_fd(), &leaf, src, &target, &meta)?;
    Ok(done)
}

/// The writer of [`copy_in`].
struct InGuest<'a> {
    guest: &'a str,
    /// The host uid of the guest's root, which guest-side writes run as.
    uid: u32,
    done: &'a mut Copied,
}

impl InGuest<'_> {
    fn err(&self, path: &Path) -> impl Fn(io::Error) -> CopyError {
        let guest = self.guest.to_string();
        let path = shown(path);
        move |source| CopyError::Guest {
            guest: guest.clone(),
            path: path.clone(),
            source,
        }
    }

    /// Puts host `src` (of `meta`) as entry `leaf` of guest directory `dir`
    /// (shown as `at`).
    fn put(
        &mut self,
        dir: BorrowedFd<'_>,
        leaf: &CStr,
        src: &Path,
        at: &Path,
        meta: &std::fs::Metadata,
    ) -> Result<(), CopyError> {
        let mode = meta.permissions().mode() & 0o7777;
        let ft = meta.file_type();
        if ft.is_file() {
            return self.put_file(dir, leaf, src, at, mode);
        }
        if ft.is_symlink() {
            let target = std::fs::read_link(src).map_err(|source| CopyError::Host {
                path: src.to_path_buf(),
                source,
            })?;
            let t = cstr(target.as_os_str()).map_err(self.err(at))?;
            let _ids = AsGuestRoot::new(self.uid);
            let tmp = temp_name(leaf);
            let _ = fsroot::unlink_at(dir, &tmp, false);
            fsroot::symlink_at(&t, dir, &tmp).map_err(self.err(at))?;
            fsroot::rename_at(dir, &tmp, dir, leaf).map_err(|e| {
                let _ = fsroot::unlink_at(dir, &tmp, false);
                self.err(at)(e)
            })?;
            self.done.symlinks += 1;
            return Ok(());
        }
        if !ft.is_dir() {
            self.done.skipped.push(src.display().to_string());
            return Ok(());
        }
        // A directory: made, or an existing one (never a symlink) merged into.
        let ids = AsGuestRoot::new(self.uid);
        match fsroot::mkdir_at(dir, leaf, 0o700) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
            Err(e) => return Err(self.err(at)(e)),
        }
        let sub =
            open_entry(dir, leaf, libc::O_RDONLY | libc::O_DIRECTORY).map_err(self.err(at))?;
        if is_pseudo_fs(sub.as_fd()).map_err(self.err(at))? {
            return Err(CopyError::Refused(format!(
                "{}:{}: on a pseudo filesystem (proc, sysfs, ...); not copied",
                self.guest,
                shown(at).display()
            )));
        }
        let _ = fsroot::fchmod(sub.as_fd(), mode);
        drop(ids);
        self.done.dirs += 1;
        let mut names: Vec<_> = std::fs::read_dir(src)
            .map_err(|source| CopyError::Host {
                path: src.to_path_buf(),
                source,
            })?
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        names.sort();
        for name in names {
            let from = src.join(&name);
            let m = std::fs::symlink_metadata(&from).map_err(|source| CopyError::Host {
                path: from.clone(),
                source,
            })?;
            let c = cstr(&name).map_err(self.err(at))?;
            self.put(sub.as_fd(), &c, &from, &at.join(&name), &m)?;
        }
        Ok(())
    }

    fn put_file(
        &mut self,
        dir: BorrowedFd<'_>,
        leaf: &CStr,
        src: &Path,
        at: &Path,
        mode: u32,
    ) -> Result<(), CopyError> {
        let mut from = std::fs::File::open(src).map_err(|source| CopyError::Host {
            path: src.to_path_buf(),
            source,
        })?;
        let _ids = AsGuestRoot::new(self.uid);
        if let Ok(Some(st)) = fsroot::lstat_at(dir, leaf) {
            if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
                return Err(self.err(at)(io::Error::from_raw_os_error(libc::EISDIR)));
            }
        }
        let tmp = temp_name(leaf);
        let _ = fsroot::unlink_at(dir, &tmp, false);
        let fd = fsroot::openat2(
            dir,
            &tmp,
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
            0o600,
            libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS,
        )
        .map_err(self.err(at))?;
        let res = (|| -> io::Result<u64> {
            let mut to = std::fs::File::from(fd);
            let n = io::copy(&mut from, &mut to)?;
            fsroot::fchmod(to.as_fd(), mode)?;
            fsroot::rename_at(dir, &tmp, dir, leaf)?;
            Ok(n)
        })();
        match res {
            Ok(n) => {
                self.done.files += 1;
                self.done.bytes += n;
                Ok(())
            }
            Err(e) => {
                let _ = fsroot::unlink_at(dir, &tmp, false);
                Err(self.err(at)(e))
            }
        }
    }
}

/// Copies guest path `src` of running guest `name` to host path `dst`:
/// into `dst` when it is a directory, else to `dst`. A directory needs
/// `recursive`.
pub fn copy_out(
    layout: &Layout,
    name: &GuestName,
    src: &str,
    dst: &Path,
    recursive: bool,
) -> Result<Copied, CopyError> {
    let rel = guest_path(src)?;
    let tree = guest_root(layout, name)?;
    let root = &tree.root;
    let n = name.as_str();
    let gerr = |path: &Path| {
        let path = shown(path);
        move |source| CopyError::Guest {
            guest: n.to_string(),
            path,
            source,
        }
    };
    // The source, followed inside the guest's root; O_PATH: opening it
    // has no side effect whatever it is.
    let fd = root
        .open_at(&rel, libc::O_PATH, 0, true)
        .map_err(|e| gerr(&rel)(e.source))?;
    let st = fsroot::fstat(fd.as_fd()).map_err(gerr(&rel))?;
    let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
    if is_dir && !recursive {
        return Err(CopyError::Refused(format!(
            "{n}:{} is a directory (copy it with `vbuild cp -r`)",
            shown(&rel).display()
        )));
    }
    let base = rel
        .file_name()
        .map(|b| b.to_os_string())
        .unwrap_or_else(|| n.into());
    let target = if dst.is_dir() {
        dst.join(base)
    } else {
        dst.to_path_buf()
    };
    let mut done = Copied {
        to: target.display().to_string(),
        ..Copied::default()
    };
    let mut r = OutOfGuest {
        guest: n,
        done: &mut done,
    };
    if is_dir {
        let dir = root
            .open_at(&rel, libc::O_RDONLY | libc::O_DIRECTORY, 0, true)
            .map_err(|e| gerr(&rel)(e.source))?;
        r.get_dir(dir, &rel, &target, st.st_mode)?;
    } else {
        r.get_file(fd.as_fd(), &st, &rel, &target)?;
    }
    Ok(done)
}

/// The reader of [`copy_out`].
struct OutOfGuest<'a> {
    guest: &'a str,
    done: &'a mut Copied,
}

impl OutOfGuest<'_> {
    fn err(&self, path: &Path) -> impl Fn(io::Error) -> CopyError {
        let guest = self.guest.to_string();
        let path = shown(path);
        move |source| CopyError::Guest {
            guest: guest.clone(),
            path: path.clone(),
            source,
        }
    }

    /// Copies the regular file behind `O_PATH` descriptor `fd` (of `st`)
    /// to host path `to`.
    fn get_file(
        &mut self,
        fd: BorrowedFd<'_>,
        st: &libc::stat,
        at: &Path,
        to: &Path,
    ) -> Result<(), CopyError> {
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(CopyError::Refused(format!(
                "{}:{}: not a regular file",
                self.guest,
                shown(at).display()
            )));
        }
        if is_pseudo_fs(fd).map_err(self.err(at))? {
            return Err(CopyError::Refused(format!(
                "{}:{}: on a pseudo filesystem (proc, sysfs, ...); not copied",
                self.guest,
                shown(at).display()
            )));
        }
        let mut from = reopen_read(fd).map_err(self.err(at))?;
        let host_err = |source| CopyError::Host {
            path: to.to_path_buf(),
            source,
        };
        // Set-id bits never reach the host.
        let mode = st.st_mode & 0o777;
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW)
            .open(to)
            .map_err(host_err)?;
        let n = io::copy(&mut from, &mut out).map_err(host_err)?;
        out.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(host_err)?;
        self.done.files += 1;
        self.done.bytes += n;
        Ok(())
    }

    /// Copies guest directory `dir` (shown as `at`) to host path `to`,
    /// made if missing; nothing below it is followed.
    fn get_dir(&mut self, dir: OwnedFd, at: &Path, to: &Path, mode: u32) -> Result<(), CopyError> {
        let host_err = |source| CopyError::Host {
            path: to.to_path_buf(),
            source,
        };
        match std::fs::symlink_metadata(to) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(host_err(io::Error::from_raw_os_error(libc::EEXIST))),
            Err(_) => {
                std::fs::create_dir(to).map_err(host_err)?;
                std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode & 0o777))
                    .map_err(host_err)?;
            }
        }
        self.done.dirs += 1;
        let names = {
            let listing = dir.try_clone().map_err(self.err(at))?;
            list(listing).map_err(self.err(at))?
        };
        for name in names {
            let c = cstr(&name).map_err(self.err(at))?;
            let sub_at = at.join(&name);
            let sub_to = to.join(&name);
            let st = match fsroot::lstat_at(dir.as_fd(), &c).map_err(self.err(&sub_at))? {
                Some(st) => st,
                None => continue, // gone meanwhile
            };
            match st.st_mode & libc::S_IFMT {
                libc::S_IFDIR => {
                    let sub = open_entry(dir.as_fd(), &c, libc::O_RDONLY | libc::O_DIRECTORY)
                        .map_err(self.err(&sub_at))?;
                    self.get_dir(sub, &sub_at, &sub_to, st.st_mode)?;
                }
                libc::S_IFREG => {
                    let f = open_entry(dir.as_fd(), &c, libc::O_PATH).map_err(self.err(&sub_at))?;
                    // Checked again on the descriptor: it may have been swapped.
                    let st = fsroot::fstat(f.as_fd()).map_err(self.err(&sub_at))?;
                    if st.st_mode & libc::S_IFMT == libc::S_IFREG {
                        self.get_file(f.as_fd(), &st, &sub_at, &sub_to)?;
                    } else {
                        self.done.skipped.push(shown(&sub_at).display().to_string());
                    }
                }
                libc::S_IFLNK => {
                    let target =
                        fsroot::read_link_at(dir.as_fd(), &c).map_err(self.err(&sub_at))?;
                    std::os::unix::fs::symlink(&target, &sub_to).map_err(|source| {
                        CopyError::Host {
                            path: sub_to.clone(),
                            source,
                        }
                    })?;
                    self.done.symlinks += 1;
                }
                _ => self.done.skipped.push(shown(&sub_at).display().to_string()),
            }
        }
        Ok(())
    }
}

/// The names in directory `fd`, sorted.
fn list(fd: OwnedFd) -> io::Result<Vec<std::ffi::OsString>> {
    let mut names = fsroot::list_fd(fd)?;
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_paths_refuse_dotdot_and_are_taken_from_the_root() {
        assert_eq!(guest_path("/etc/x").unwrap(), Path::new("etc/x"));
        assert_eq!(guest_path("etc/./x").unwrap(), Path::new("etc/x"));
        assert_eq!(guest_path("/").unwrap(), Path::new(""));
        for bad in ["../etc/shadow", "/etc/../../x", "a/.."] {
            let e = guest_path(bad).unwrap_err();
            assert!(e.to_string().contains("`..` is not allowed"), "{bad}: {e}");
        }
    }
}
