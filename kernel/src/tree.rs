//! Reading a whole root filesystem for an image, without ever following a
//! symlink: every directory is opened relative to its parent's descriptor
//! with `O_NOFOLLOW`, every regular file is opened the same way and checked
//! to be the inode `lstat` saw, so a guest that swaps a path for a link to a
//! host file mid-walk gets its own link archived, never the host file. The
//! walk stays on the root's filesystem (mounts below it are skipped) and
//! visits the names of each directory in byte order, so the same tree always
//! gives the same sequence.

use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::fsroot;

/// A node of the tree that failed to read, naming it.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct WalkError {
    /// The path inside the tree (`/etc/passwd`).
    pub path: PathBuf,
    /// The kernel's answer.
    pub source: io::Error,
}

fn werr(rel: &Path) -> impl FnOnce(io::Error) -> WalkError + '_ {
    move |source| WalkError {
        path: Path::new("/").join(rel),
        source,
    }
}

/// What a node is, with what the archive needs of it.
pub enum NodeKind {
    /// A directory (its children follow it).
    Dir,
    /// A regular file, opened for reading.
    File(File),
    /// A symbolic link and its target as stored.
    Symlink(PathBuf),
    /// A named pipe.
    Fifo,
    /// A character device with its device number.
    Char(u64),
    /// A block device with its device number.
    Block(u64),
    /// A socket (never archived: it is live state).
    Socket,
}

/// One node of the tree.
pub struct Node {
    /// Path relative to the root (empty for the root itself).
    pub path: PathBuf,
    /// What it is.
    pub kind: NodeKind,
    /// Its `lstat`.
    pub stat: libc::stat,
    /// Extended attributes (files and directories), sorted by name.
    pub xattrs: Vec<(CString, Vec<u8>)>,
}

/// Calls `visit` for the root and every node below it, parents before
/// children, names in byte order.
pub fn walk(
    root: &Path,
    visit: &mut dyn FnMut(Node) -> Result<(), WalkError>,
) -> Result<(), WalkError> {
    let here = Path::new("");
    let fd = open_dir(None, &cpath(root.as_os_str()).map_err(werr(here))?).map_err(|source| {
        WalkError {
            path: root.to_path_buf(),
            source,
        }
    })?;
    let stat = fsroot::fstat(fd.as_fd()).map_err(werr(here))?;
    let xattrs = xattrs(fd.as_fd()).map_err(werr(here))?;
    let dev = stat.st_dev;
    visit(Node {
        path: PathBuf::new(),
        kind: NodeKind::Dir,
        stat,
        xattrs,
    })?;
    walk_dir(fd, PathBuf::new(), dev, visit)
}

fn walk_dir(
    dir: OwnedFd,
    rel: PathBuf,
    dev: u64,
    visit: &mut dyn FnMut(Node) -> Result<(), WalkError>,
) -> Result<(), WalkError> {
    for name in list(dir.as_fd()).map_err(werr(&rel))? {
        let child = rel.join(OsStr::from_bytes(name.as_bytes()));
        let Some(stat) = fsroot::lstat_at(dir.as_fd(), &name).map_err(werr(&child))? else {
            continue; // removed meanwhile
        };
        match stat.st_mode & libc::S_IFMT {
            libc::S_IFDIR => {
                if stat.st_dev != dev {
                    continue; // a mount point: not part of this tree
                }
                let fd = open_dir(Some(dir.as_fd()), &name).map_err(werr(&child))?;
                same_inode(&fd, &stat).map_err(werr(&child))?;
                let xattrs = xattrs(fd.as_fd()).map_err(werr(&child))?;
                visit(Node {
                    path: child.clone(),
                    kind: NodeKind::Dir,
                    stat,
                    xattrs,
                })?;
                walk_dir(fd, child, dev, visit)?;
            }
            libc::S_IFREG => {
                let fd = open_file(dir.as_fd(), &name).map_err(werr(&child))?;
                same_inode(&fd, &stat).map_err(werr(&child))?;
                let xattrs = xattrs(fd.as_fd()).map_err(werr(&child))?;
                visit(Node {
                    path: child,
                    kind: NodeKind::File(File::from(fd)),
                    stat,
                    xattrs,
                })?;
            }
            mode => {
                let kind = match mode {
                    libc::S_IFLNK => NodeKind::Symlink(
                        fsroot::read_link_at(dir.as_fd(), &name).map_err(werr(&child))?,
                    ),
                    libc::S_IFIFO => NodeKind::Fifo,
                    libc::S_IFCHR => NodeKind::Char(stat.st_rdev),
                    libc::S_IFBLK => NodeKind::Block(stat.st_rdev),
                    _ => NodeKind::Socket,
                };
                visit(Node {
                    path: child,
                    kind,
                    stat,
                    xattrs: vec![],
                })?;
            }
        }
    }
    Ok(())
}

fn cpath(p: &OsStr) -> io::Result<CString> {
    CString::new(p.as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn open_dir(dir: Option<BorrowedFd<'_>>, name: &CStr) -> io::Result<OwnedFd> {
    let at = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC;
    // The root itself may be a symlink the admin gave; below it, never.
    let flags = if dir.is_some() {
        flags | libc::O_NOFOLLOW
    } else {
        flags
    };
    // SAFETY: valid fd (or AT_FDCWD) and NUL-terminated name.
    let fd = cvt(unsafe { libc::openat(at, name.as_ptr(), flags) })?;
    // SAFETY: a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn open_file(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<OwnedFd> {
    let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY;
    // SAFETY: valid fd and NUL-terminated name.
    let fd = cvt(unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags) })?;
    // SAFETY: a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Refuses a node that changed between `lstat` and `open`.
fn same_inode(fd: &OwnedFd, seen: &libc::stat) -> io::Result<()> {
    let st = fsroot::fstat(fd.as_fd())?;
    if st.st_dev != seen.st_dev || st.st_ino != seen.st_ino {
        return Err(io::Error::other(
            "changed while being read (is the guest running?); stop it and try again",
        ));
    }
    Ok(())
}

/// The names in directory `dir` (without `.` and `..`), in byte order.
fn list(dir: BorrowedFd<'_>) -> io::Result<Vec<CString>> {
    let dup = dir.try_clone_to_owned()?;
    let mut d = nix::dir::Dir::from_fd(dup.as_raw_fd()).map_err(io::Error::from)?;
    std::mem::forget(dup); // now owned by `d`
    let mut names = Vec::new();
    for e in d.iter() {
        let e = e.map_err(io::Error::from)?;
        let n = e.file_name();
        if n.to_bytes() != b"." && n.to_bytes() != b".." {
            names.push(n.to_owned());
        }
    }
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(names)
}

/// Every extended attribute of an open file or directory, sorted by name.
pub fn xattrs(fd: BorrowedFd<'_>) -> io::Result<Vec<(CString, Vec<u8>)>> {
    // SAFETY: a NULL buffer of size 0 asks for the needed size.
    let n = unsafe { libc::flistxattr(fd.as_raw_fd(), std::ptr::null_mut(), 0) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENOTSUP) => Ok(vec![]),
            _ => Err(e),
        };
    }
    if n == 0 {
        return Ok(vec![]);
    }
    let mut buf = vec![0u8; n as usize];
    // SAFETY: the buffer has the given length.
    let n = unsafe { libc::flistxattr(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    let mut out = Vec::new();
    for name in buf.split(|b| *b == 0).filter(|s| !s.is_empty()) {
        let name = CString::new(name).expect("split at NUL");
        // SAFETY: NULL buffer of size 0 asks for the value's size.
        let len =
            unsafe { libc::fgetxattr(fd.as_raw_fd(), name.as_ptr(), std::ptr::null_mut(), 0) };
        if len < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut v = vec![0u8; len as usize];
        // SAFETY: the buffer has the given length.
        let len = unsafe {
            libc::fgetxattr(
                fd.as_raw_fd(),
                name.as_ptr(),
                v.as_mut_ptr().cast(),
                v.len(),
            )
        };
        if len < 0 {
            return Err(io::Error::last_os_error());
        }
        v.truncate(len as usize);
        out.push((name, v));
    }
    out.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    Ok(out)
}

/// `makedev`'s inverse: (major, minor) of a device number.
pub fn major_minor(rdev: u64) -> (u32, u32) {
    (libc::major(rdev), libc::minor(rdev))
}
