//! Root-confined file operations: every path is resolved by the kernel as if
//! a directory were `/` (openat2 with `RESOLVE_IN_ROOT`), so `..`, absolute
//! symlinks and symlinks planted in a guest's rootfs can never lead outside
//! it. The builder writes guest files (unpacked packages, the dpkg database,
//! tailoring) only through these functions.

use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// A root-confined operation that failed, naming the path inside the root.
#[derive(Debug, thiserror::Error)]
#[error("{op} {path}: {source}")]
pub struct FsError {
    /// What was attempted (`open`, `mkdir`, `write`, `symlink`).
    pub op: &'static str,
    /// The path, as seen from inside the root.
    pub path: PathBuf,
    /// The kernel's answer.
    pub source: io::Error,
}

impl FsError {
    fn new(op: &'static str, path: &Path, source: io::Error) -> FsError {
        FsError {
            op,
            path: Path::new("/").join(path),
            source,
        }
    }
}

/// Kind of an existing directory entry, as `lstat` sees it (no following).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A directory.
    Dir,
    /// A regular file.
    File,
    /// A symbolic link.
    Symlink,
    /// Anything else (fifo, socket, device).
    Other,
}

fn kind_of(mode: u32) -> Kind {
    match mode & libc::S_IFMT {
        libc::S_IFDIR => Kind::Dir,
        libc::S_IFREG => Kind::File,
        libc::S_IFLNK => Kind::Symlink,
        _ => Kind::Other,
    }
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn cstr(p: &OsStr) -> io::Result<CString> {
    CString::new(p.as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// Splits a path inside the root into its normal components, dropping `/`
/// and `.`; refuses `..` so callers can reject archive entries naming it.
pub fn normalize(path: &Path) -> io::Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "path contains `..`",
                ))
            }
        }
    }
    Ok(out)
}

/// openat2(2) relative to `dir` with `resolve` flags; retried on EAGAIN,
/// which the kernel returns when a concurrent rename raced the lookup.
pub fn openat2(
    dir: BorrowedFd<'_>,
    path: &CStr,
    flags: i32,
    mode: u32,
    resolve: u64,
) -> io::Result<OwnedFd> {
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.mode = if flags & (libc::O_CREAT | libc::O_TMPFILE) != 0 {
        mode as u64
    } else {
        0
    };
    how.resolve = resolve;
    loop {
        // SAFETY: `how` is a valid open_how and its size is passed.
        let r = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd(),
                path.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if r >= 0 {
            // SAFETY: the kernel returned a new descriptor we now own.
            return Ok(unsafe { OwnedFd::from_raw_fd(r as i32) });
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EAGAIN) {
            return Err(e);
        }
    }
}

/// The resolve flags every in-root lookup uses: the directory is `/`, and
/// /proc magic links (which could jump anywhere) are refused.
pub const IN_ROOT: u64 = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;

/// lstat of `name` in directory `dir`; `None` when it does not exist.
pub fn lstat_at(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<Option<libc::stat>> {
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid fd, NUL-terminated name, `st` is writable.
    let r = unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    match cvt(r) {
        Ok(_) => Ok(Some(st)),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The kind of an existing entry `name` in `dir` (never follows a symlink).
pub fn kind_at(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<Option<Kind>> {
    Ok(lstat_at(dir, name)?.map(|st| kind_of(st.st_mode)))
}

/// mkdirat(2).
pub fn mkdir_at(dir: BorrowedFd<'_>, name: &CStr, mode: u32) -> io::Result<()> {
    // SAFETY: valid fd and NUL-terminated name.
    cvt(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode) }).map(drop)
}

/// symlinkat(2): creates `name` in `dir` pointing at `target` (not checked).
pub fn symlink_at(target: &CStr, dir: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    // SAFETY: valid fd and NUL-terminated strings.
    cvt(unsafe { libc::symlinkat(target.as_ptr(), dir.as_raw_fd(), name.as_ptr()) }).map(drop)
}

/// linkat(2) without following a symlink at the source.
pub fn link_at(
    odir: BorrowedFd<'_>,
    oname: &CStr,
    ndir: BorrowedFd<'_>,
    nname: &CStr,
) -> io::Result<()> {
    // SAFETY: valid fds and NUL-terminated names.
    cvt(unsafe {
        libc::linkat(
            odir.as_raw_fd(),
            oname.as_ptr(),
            ndir.as_raw_fd(),
            nname.as_ptr(),
            0,
        )
    })
    .map(drop)
}

/// mknodat(2), for fifos.
pub fn mknod_at(dir: BorrowedFd<'_>, name: &CStr, mode: u32, dev: u64) -> io::Result<()> {
    // SAFETY: valid fd and NUL-terminated name.
    cvt(unsafe { libc::mknodat(dir.as_raw_fd(), name.as_ptr(), mode, dev) }).map(drop)
}

/// renameat(2) within or across directories; replaces `nname` atomically.
pub fn rename_at(
    odir: BorrowedFd<'_>,
    oname: &CStr,
    ndir: BorrowedFd<'_>,
    nname: &CStr,
) -> io::Result<()> {
    // SAFETY: valid fds and NUL-terminated names.
    cvt(unsafe {
        libc::renameat(
            odir.as_raw_fd(),
            oname.as_ptr(),
            ndir.as_raw_fd(),
            nname.as_ptr(),
        )
    })
    .map(drop)
}

/// unlinkat(2); `dir_entry` removes an (empty) directory.
pub fn unlink_at(dir: BorrowedFd<'_>, name: &CStr, dir_entry: bool) -> io::Result<()> {
    let flags = if dir_entry { libc::AT_REMOVEDIR } else { 0 };
    // SAFETY: valid fd and NUL-terminated name.
    cvt(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), flags) }).map(drop)
}

/// Sets owner of `name` in `dir` without following a symlink.
pub fn chown_at(dir: BorrowedFd<'_>, name: &CStr, uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: valid fd and NUL-terminated name.
    cvt(unsafe {
        libc::fchownat(
            dir.as_raw_fd(),
            name.as_ptr(),
            uid,
            gid,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
    .map(drop)
}

/// Sets the modification (and access) time of `name` in `dir` without
/// following a symlink.
pub fn set_mtime_at(dir: BorrowedFd<'_>, name: &CStr, secs: i64) -> io::Result<()> {
    let t = libc::timespec {
        tv_sec: secs as libc::time_t,
        tv_nsec: 0,
    };
    let times = [t, t];
    // SAFETY: valid fd, name and a two-element timespec array.
    cvt(unsafe {
        libc::utimensat(
            dir.as_raw_fd(),
            name.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
    .map(drop)
}

/// fchown(2) on an open file.
pub fn fchown(fd: BorrowedFd<'_>, uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: valid fd.
    cvt(unsafe { libc::fchown(fd.as_raw_fd(), uid, gid) }).map(drop)
}

/// fchmod(2) on an open file; called after fchown, which clears set-id bits.
pub fn fchmod(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    // SAFETY: valid fd.
    cvt(unsafe { libc::fchmod(fd.as_raw_fd(), mode) }).map(drop)
}

/// futimens(2): sets access and modification time of an open file.
pub fn set_mtime(fd: BorrowedFd<'_>, secs: i64) -> io::Result<()> {
    let t = libc::timespec {
        tv_sec: secs as libc::time_t,
        tv_nsec: 0,
    };
    let times = [t, t];
    // SAFETY: valid fd and two-element timespec array.
    cvt(unsafe { libc::futimens(fd.as_raw_fd(), times.as_ptr()) }).map(drop)
}

/// fsetxattr(2): extended attributes and file capabilities
/// (`security.capability`), set after chown, which drops capabilities.
pub fn set_xattr(fd: BorrowedFd<'_>, name: &CStr, value: &[u8]) -> io::Result<()> {
    // SAFETY: valid fd, NUL-terminated name, value pointer and length.
    cvt(unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    })
    .map(drop)
}

/// readlinkat(2) of `name` in `dir`.
pub fn read_link_at(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<PathBuf> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: valid fd, name and buffer of the given length.
    let n = unsafe {
        libc::readlinkat(
            dir.as_raw_fd(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(PathBuf::from(
        <std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(buf),
    ))
}

/// fstat(2).
pub fn fstat(fd: BorrowedFd<'_>) -> io::Result<libc::stat> {
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid fd and a writable stat.
    cvt(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) })?;
    Ok(st)
}

/// A word for a file type, for error messages.
fn describe_mode(mode: u32) -> &'static str {
    match mode & libc::S_IFMT {
        libc::S_IFDIR => "a directory",
        libc::S_IFLNK => "a symlink",
        libc::S_IFIFO => "a FIFO",
        libc::S_IFCHR => "a character device",
        libc::S_IFBLK => "a block device",
        libc::S_IFSOCK => "a socket",
        _ => "a regular file",
    }
}

/// Whether `fd` lies on a kernel pseudo filesystem (proc, sysfs, debugfs,
/// tracefs, securityfs, configfs, cgroup), whose files are not data.
fn is_pseudo_fs(fd: BorrowedFd<'_>) -> io::Result<bool> {
    const PSEUDO: [i64; 8] = [
        0x9fa0,      // proc
        0x6265_6572, // sysfs
        0x6462_6720, // debugfs
        0x7472_6163, // tracefs
        0x7363_6673, // securityfs
        0x6265_6570, // configfs
        0x0027_e0eb, // cgroup (v1)
        0x6367_7270, // cgroup2
    ];
    let mut sfs: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid fd and a writable statfs.
    cvt(unsafe { libc::fstatfs(fd.as_raw_fd(), &mut sfs) })?;
    Ok(PSEUDO.contains(&(sfs.f_type as i64)))
}

/// Opens the inode behind an `O_PATH` descriptor anew with `flags`
/// (through /proc/self/fd, which names exactly that inode).
fn reopen(fd: BorrowedFd<'_>, flags: i32) -> io::Result<OwnedFd> {
    let p = CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).expect("no NUL");
    // SAFETY: NUL-terminated path.
    let r = unsafe { libc::open(p.as_ptr(), flags | libc::O_CLOEXEC) };
    cvt(r)?;
    // SAFETY: a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(r) })
}

/// A directory treated as `/`: the handle every in-root operation starts from.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

impl Root {
    /// Opens `dir` (which must exist) as a root.
    pub fn open(dir: &Path) -> Result<Root, FsError> {
        let c = cstr(dir.as_os_str()).map_err(|e| FsError {
            op: "open root",
            path: dir.to_path_buf(),
            source: e,
        })?;
        // SAFETY: NUL-terminated path.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(FsError {
                op: "open root",
                path: dir.to_path_buf(),
                source: io::Error::last_os_error(),
            });
        }
        Ok(Root {
            // SAFETY: a fresh descriptor we own.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            path: dir.to_path_buf(),
        })
    }

    /// The root's path on the host.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The root's directory descriptor.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Opens `rel` resolved inside the root (symlinks followed, but only
    /// within it). `follow_last: false` refuses a symlink as the last
    /// component (ELOOP) instead of following it.
    pub fn open_at(
        &self,
        rel: &Path,
        flags: i32,
        mode: u32,
        follow_last: bool,
    ) -> Result<OwnedFd, FsError> {
        let rel = normalize(rel).map_err(|e| FsError::new("open", rel, e))?;
        let c = if rel.as_os_str().is_empty() {
            CString::new(".").expect("no NUL")
        } else {
            cstr(rel.as_os_str()).map_err(|e| FsError::new("open", &rel, e))?
        };
        let flags = if follow_last {
            flags
        } else {
            flags | libc::O_NOFOLLOW
        };
        openat2(self.fd(), &c, flags, mode, IN_ROOT).map_err(|e| FsError::new("open", &rel, e))
    }

    /// Opens the directory containing `rel` (resolved inside the root) and
    /// returns it with the last component's name, for the `*_at` calls.
    /// Fails with EINVAL for the root itself.
    pub fn parent(&self, rel: &Path) -> Result<(OwnedFd, CString), FsError> {
        let rel = normalize(rel).map_err(|e| FsError::new("resolve", rel, e))?;
        let name = rel.file_name().ok_or_else(|| {
            FsError::new("resolve", &rel, io::Error::from_raw_os_error(libc::EINVAL))
        })?;
        let name = cstr(name).map_err(|e| FsError::new("resolve", &rel, e))?;
        let parent = rel.parent().unwrap_or(Path::new(""));
        let fd = self.open_at(parent, libc::O_PATH | libc::O_DIRECTORY, 0, true)?;
        Ok((fd, name))
    }

    /// Like [`Root::parent`], creating missing parent directories (0755,
    /// root-owned) first.
    pub fn parent_create(&self, rel: &Path) -> Result<(OwnedFd, CString), FsError> {
        match self.parent(rel) {
            Err(e) if e.source.raw_os_error() == Some(libc::ENOENT) => {
                let rel = normalize(rel).map_err(|e| FsError::new("resolve", rel, e))?;
                if let Some(p) = rel.parent() {
                    self.mkdir_all(p, 0o755)?;
                }
                self.parent(&rel)
            }
            r => r,
        }
    }

    /// The kind of `rel` without following a final symlink; `None` if absent
    /// (or if a parent directory is absent).
    pub fn kind(&self, rel: &Path) -> Result<Option<Kind>, FsError> {
        if normalize(rel)
            .map(|p| p.as_os_str().is_empty())
            .unwrap_or(false)
        {
            return Ok(Some(Kind::Dir));
        }
        let (dir, name) = match self.parent(rel) {
            Ok(x) => x,
            Err(e) if matches!(e.source.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => {
                return Ok(None)
            }
            Err(e) => return Err(e),
        };
        kind_at(dir.as_fd(), &name).map_err(|e| FsError::new("stat", rel, e))
    }

    /// Whether `rel` exists, following symlinks inside the root.
    pub fn exists(&self, rel: &Path) -> bool {
        self.open_at(rel, libc::O_PATH, 0, true).is_ok()
    }

    /// Whether `rel`, following symlinks inside the root, is a directory.
    pub fn is_dir(&self, rel: &Path) -> bool {
        self.open_at(rel, libc::O_PATH | libc::O_DIRECTORY, 0, true)
            .is_ok()
    }

    /// Creates `rel` and its missing parents with `mode`; existing
    /// directories (or symlinks to directories inside the root) are kept.
    pub fn mkdir_all(&self, rel: &Path, mode: u32) -> Result<(), FsError> {
        let rel = normalize(rel).map_err(|e| FsError::new("mkdir", rel, e))?;
        let mut cur = PathBuf::new();
        for c in rel.components() {
            cur.push(c);
            if self.is_dir(&cur) {
                continue;
            }
            let (dir, name) = self.parent(&cur)?;
            match mkdir_at(dir.as_fd(), &name, mode) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) && self.is_dir(&cur) => {}
                Err(e) => return Err(FsError::new("mkdir", &cur, e)),
            }
        }
        Ok(())
    }

    /// Writes `data` to `rel` atomically (temporary sibling + rename), so a
    /// symlink already at `rel` is replaced, never written through.
    pub fn write(&self, rel: &Path, data: &[u8], mode: u32) -> Result<(), FsError> {
        use std::io::Write;
        let (dir, name) = self.parent_create(rel)?;
        let tmp = temp_name(&name);
        let _ = unlink_at(dir.as_fd(), &tmp, false);
        let fd = openat2(
            dir.as_fd(),
            &tmp,
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
            0o600,
            IN_ROOT,
        )
        .map_err(|e| FsError::new("create", rel, e))?;
        let res = (|| {
            let mut f = std::fs::File::from(fd);
            f.write_all(data)?;
            fchmod(f.as_fd(), mode)?;
            rename_at(dir.as_fd(), &tmp, dir.as_fd(), &name)
        })();
        res.map_err(|e| {
            let _ = unlink_at(dir.as_fd(), &tmp, false);
            FsError::new("write", rel, e)
        })
    }

    /// Reads `rel` (following symlinks inside the root).
    pub fn read(&self, rel: &Path) -> Result<Vec<u8>, FsError> {
        use std::io::Read;
        let fd = self.open_at(rel, libc::O_RDONLY, 0, true)?;
        let mut v = Vec::new();
        std::fs::File::from(fd)
            .read_to_end(&mut v)
            .map_err(|e| FsError::new("read", rel, e))?;
        Ok(v)
    }

    /// Reads `rel` when it is a regular file of at most `max` bytes on a
    /// real filesystem — what the host may safely read of a hostile tree:
    /// a symlink as the last component is refused (never followed), as are FIFOs and
    /// devices (opened `O_PATH` first, so opening has no side effect and
    /// cannot block), files on /proc-like pseudo filesystems (their size
    /// says nothing and some reveal the reader) and anything larger than
    /// `max` (EFBIG, checked before and while reading).
    pub fn read_regular(&self, rel: &Path, max: u64) -> Result<Vec<u8>, FsError> {
        use std::io::Read;
        let err = |e: io::Error| FsError::new("read", rel, e);
        let path_fd = self.open_at(rel, libc::O_PATH, 0, false)?;
        let st = fstat(path_fd.as_fd()).map_err(err)?;
        if kind_of(st.st_mode) != Kind::File {
            return Err(err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not a regular file (it is {})", describe_mode(st.st_mode)),
            )));
        }
        if st.st_size as u64 > max {
            return Err(err(io::Error::from_raw_os_error(libc::EFBIG)));
        }
        if is_pseudo_fs(path_fd.as_fd()).map_err(err)? {
            return Err(err(io::Error::new(
                io::ErrorKind::InvalidData,
                "on a pseudo filesystem (proc, sysfs, ...), not a real file",
            )));
        }
        // Reopen the inode we checked for reading (never a path lookup again).
        let fd = reopen(
            path_fd.as_fd(),
            libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY,
        )
        .map_err(err)?;
        let mut v = Vec::with_capacity(st.st_size as usize);
        std::fs::File::from(fd)
            .take(max + 1)
            .read_to_end(&mut v)
            .map_err(err)?;
        if v.len() as u64 > max {
            return Err(err(io::Error::from_raw_os_error(libc::EFBIG)));
        }
        Ok(v)
    }

    /// Reads the target of symlink `rel`.
    pub fn read_link(&self, rel: &Path) -> Result<PathBuf, FsError> {
        let (dir, name) = self.parent(rel)?;
        read_link_at(dir.as_fd(), &name).map_err(|e| FsError::new("readlink", rel, e))
    }

    /// Makes `rel` a symlink to `target`, replacing a file or symlink there.
    pub fn symlink(&self, rel: &Path, target: &Path) -> Result<(), FsError> {
        let (dir, name) = self.parent_create(rel)?;
        let tmp = temp_name(&name);
        let t = cstr(target.as_os_str()).map_err(|e| FsError::new("symlink", rel, e))?;
        let _ = unlink_at(dir.as_fd(), &tmp, false);
        symlink_at(&t, dir.as_fd(), &tmp).map_err(|e| FsError::new("symlink", rel, e))?;
        rename_at(dir.as_fd(), &tmp, dir.as_fd(), &name).map_err(|e| {
            let _ = unlink_at(dir.as_fd(), &tmp, false);
            FsError::new("symlink", rel, e)
        })
    }

    /// Renames `from` to `to`, both inside the root.
    pub fn rename(&self, from: &Path, to: &Path) -> Result<(), FsError> {
        let (od, on) = self.parent(from)?;
        let (nd, nn) = self.parent(to)?;
        rename_at(od.as_fd(), &on, nd.as_fd(), &nn).map_err(|e| FsError::new("rename", from, e))
    }

    /// Removes `rel` (a file, symlink or directory tree), never following a
    /// symlink; absent is fine.
    pub fn remove_all(&self, rel: &Path) -> Result<(), FsError> {
        let (dir, name) = match self.parent(rel) {
            Ok(x) => x,
            Err(e) if matches!(e.source.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => {
                return Ok(())
            }
            Err(e) => return Err(e),
        };
        remove_entry(dir.as_fd(), &name).map_err(|e| FsError::new("remove", rel, e))
    }

    /// Removes everything inside directory `rel` but keeps the directory.
    pub fn clear_dir(&self, rel: &Path) -> Result<(), FsError> {
        for name in self.list(rel)? {
            self.remove_all(&rel.join(name))?;
        }
        Ok(())
    }

    /// Names in directory `rel` (following symlinks inside the root), sorted;
    /// an absent directory lists as empty.
    pub fn list(&self, rel: &Path) -> Result<Vec<std::ffi::OsString>, FsError> {
        let fd = match self.open_at(rel, libc::O_RDONLY | libc::O_DIRECTORY, 0, true) {
            Ok(fd) => fd,
            Err(e) if e.source.raw_os_error() == Some(libc::ENOENT) => return Ok(vec![]),
            Err(e) => return Err(e),
        };
        let mut names = list_fd(fd).map_err(|e| FsError::new("list", rel, e))?;
        names.sort();
        Ok(names)
    }
}

/// The temporary sibling name used for atomic replacement.
fn temp_name(name: &CStr) -> CString {
    let mut v = b".vbuild-new.".to_vec();
    let b = name.to_bytes();
    // Keep within NAME_MAX (255).
    v.extend_from_slice(&b[..b.len().min(200)]);
    CString::new(v).expect("no NUL in a C string")
}

/// The names in directory `fd` (without `.` and `..`), in directory
/// order; takes the descriptor.
pub fn list_fd(fd: OwnedFd) -> io::Result<Vec<std::ffi::OsString>> {
    let raw = fd.as_raw_fd();
    // SAFETY: fdopendir takes ownership of the descriptor on success.
    let dirp = unsafe { libc::fdopendir(raw) };
    if dirp.is_null() {
        return Err(io::Error::last_os_error());
    }
    std::mem::forget(fd);
    let mut out = Vec::new();
    loop {
        // SAFETY: dirp is a valid DIR*.
        let ent = unsafe { libc::readdir64(dirp) };
        if ent.is_null() {
            break;
        }
        // SAFETY: d_name is NUL-terminated inside the dirent.
        let name = unsafe { CStr::from_ptr((*ent).d_name.as_ptr()) };
        let b = name.to_bytes();
        if b != b"." && b != b".." {
            out.push(OsStr::from_bytes(b).to_os_string());
        }
    }
    // SAFETY: dirp is valid and closed once.
    unsafe { libc::closedir(dirp) };
    Ok(out)
}

fn remove_entry(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    match kind_at(dir, name)? {
        None => Ok(()),
        Some(Kind::Dir) => {
            let sub = openat2(
                dir,
                name,
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                0,
                libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_BENEATH,
            )?;
            let keep = sub.try_clone()?;
            for n in list_fd(sub)? {
                remove_entry(keep.as_fd(), &cstr(&n)?)?;
            }
            unlink_at(dir, name, true)
        }
        Some(_) => unlink_at(dir, name, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_small_regular_files_are_read_from_a_hostile_tree() {
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(outside.path(), "secret").unwrap();
        let root = Root::open(d.path()).unwrap();
        root.write(
            Path::new("etc/passwd"),
            b"root:x:0:0::/root:/bin/sh\n",
            0o644,
        )
        .unwrap();
        let got = root.read_regular(Path::new("etc/passwd"), 1 << 20).unwrap();
        assert!(got.starts_with(b"root:"));
        // A symlink at the last component, even to a file inside, is refused.
        std::os::unix::fs::symlink(outside.path(), d.path().join("etc/link")).unwrap();
        let e = root
            .read_regular(Path::new("etc/link"), 1 << 20)
            .unwrap_err();
        assert!(e.to_string().contains("a symlink"), "{e}");
        assert!(!e.to_string().contains("secret"));
        // A FIFO is refused without blocking.
        let fifo = CString::new(d.path().join("etc/fifo").as_os_str().as_bytes()).unwrap();
        // SAFETY: NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        let e = root
            .read_regular(Path::new("etc/fifo"), 1 << 20)
            .unwrap_err();
        assert!(e.to_string().contains("a FIFO"), "{e}");
        // A huge sparse file is refused by its size, unread.
        let f = std::fs::File::create(d.path().join("etc/big")).unwrap();
        f.set_len(2 << 30).unwrap();
        let e = root
            .read_regular(Path::new("etc/big"), 1 << 20)
            .unwrap_err();
        assert_eq!(e.source.raw_os_error(), Some(libc::EFBIG), "{e}");
        // A directory is not a file.
        let e = root.read_regular(Path::new("etc"), 1 << 20).unwrap_err();
        assert!(e.to_string().contains("a directory"), "{e}");
        // /proc files (bound or reached otherwise) are not data.
        let proc_root = Root::open(Path::new("/proc/self")).unwrap();
        let e = proc_root
            .read_regular(Path::new("status"), 1 << 20)
            .unwrap_err();
        assert!(e.to_string().contains("pseudo filesystem"), "{e}");
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root = Root::open(d.path()).unwrap();
        std::os::unix::fs::symlink(outside.path(), d.path().join("escape")).unwrap();
        std::os::unix::fs::symlink("../../../../", d.path().join("up")).unwrap();
        // Writing through an absolute symlink lands inside the root.
        root.mkdir_all(outside.path(), 0o755).unwrap();
        root.write(Path::new("escape/x/f"), b"hi", 0o644).unwrap();
        assert!(!outside.path().join("x").exists());
        let inside = d.path().join(outside.path().strip_prefix("/").unwrap());
        assert_eq!(std::fs::read(inside.join("x/f")).unwrap(), b"hi");
        root.write(Path::new("up/g"), b"g", 0o600).unwrap();
        assert_eq!(std::fs::read(d.path().join("g")).unwrap(), b"g");
        assert!(normalize(Path::new("a/../b")).is_err());
    }

    #[test]
    fn write_replaces_a_symlink_instead_of_following_it() {
        let d = tempfile::tempdir().unwrap();
        let root = Root::open(d.path()).unwrap();
        std::fs::write(d.path().join("target"), "keep").unwrap();
        std::os::unix::fs::symlink("target", d.path().join("link")).unwrap();
        root.write(Path::new("/link"), b"new", 0o644).unwrap();
        assert_eq!(std::fs::read(d.path().join("target")).unwrap(), b"keep");
        assert_eq!(root.kind(Path::new("link")).unwrap(), Some(Kind::File));
        root.mkdir_all(Path::new("a/b/c"), 0o755).unwrap();
        root.write(Path::new("a/b/c/f"), b"x", 0o644).unwrap();
        root.remove_all(Path::new("a")).unwrap();
        assert_eq!(root.kind(Path::new("a")).unwrap(), None);
    }
}
