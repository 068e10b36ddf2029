//! Root-confined extraction of archive entries, whatever the archive
//! format: a reader (tar for a .deb's data.tar, `cpio` for an .rpm's
//! payload) hands over one [`Entry`] at a time, and every path is resolved by
//! the kernel as if the rootfs were `/` (see `vbuild_kernel::fsroot`), so
//! `..`, absolute names, symlinks in the archive or already in the rootfs
//! (merged-usr `/bin -> usr/bin`, which must be followed) and hardlinks can
//! never create or change anything outside it. Files are written under a
//! temporary name and renamed into place, as dpkg does, so an existing
//! symlink at a file's path is replaced, never written through.

use md5::{Digest, Md5};
use std::collections::{HashMap, HashSet};
use std::ffi::{CStr, CString};
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use vbuild_kernel::fsroot::{self, Kind, Root, IN_ROOT};

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file; its content is the entry's data.
    File,
    /// A directory.
    Dir,
    /// A symbolic link to this target (as stored, not resolved).
    Symlink(PathBuf),
    /// Another name for an earlier regular file of the same archive.
    Hardlink(PathBuf),
    /// A character device node (skipped unless [`ExtractOpts::devices`]:
    /// the runtime provides /dev).
    CharDevice,
    /// A block device node (as above).
    BlockDevice,
    /// A named pipe.
    Fifo,
}

/// One archive entry as the writer takes it, whichever format it came from.
pub struct Entry<'a> {
    /// The name as stored in the archive (`./usr/bin/x`, possibly hostile).
    pub path: PathBuf,
    /// What it is.
    pub kind: EntryKind,
    /// Permission bits (setuid, setgid and sticky included).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
    /// Extended attributes (`security.capability`...).
    pub xattrs: Vec<(CString, Vec<u8>)>,
    /// A device node's (major, minor); (0, 0) for everything else.
    pub rdev: (u32, u32),
    /// A regular file's content (empty for everything else).
    pub data: &'a mut dyn Read,
}

/// An archive format's entry stream.
pub trait EntryReader {
    /// Calls `f` with each entry in archive order; stops at the first error.
    fn for_each(
        &mut self,
        f: &mut dyn FnMut(Entry<'_>) -> Result<(), EntryError>,
    ) -> Result<(), EntryError>;
}

/// What extracting one archive produced.
#[derive(Debug, Default)]
pub struct Extracted {
    /// Every entry as dpkg lists it (`/.`, `/usr`, `/usr/bin/x`), in order.
    pub files: Vec<PathBuf>,
    /// md5 of each regular file that is not a conffile, when asked for.
    pub md5: Vec<(PathBuf, String)>,
    /// md5 of each conffile as installed.
    pub conffile_md5: HashMap<PathBuf, String>,
    /// Entries skipped on purpose (device nodes), one line each.
    pub notes: Vec<String>,
    /// Regular files written.
    pub regular_files: u64,
    /// Bytes of regular file content written.
    pub bytes: u64,
}

/// An entry that could not be extracted, naming it.
#[derive(Debug, thiserror::Error)]
#[error("entry {entry}: {message}")]
pub struct EntryError {
    /// The entry as named in the archive.
    pub entry: String,
    /// What is wrong.
    pub message: String,
}

impl EntryError {
    /// An error about `entry`.
    pub fn new(entry: &Path, message: impl std::fmt::Display) -> EntryError {
        EntryError {
            entry: entry.display().to_string(),
            message: message.to_string(),
        }
    }
}

/// Options for one extraction.
pub struct ExtractOpts<'a> {
    /// Conffiles of the package (absolute paths), hashed as written.
    pub conffiles: &'a HashSet<PathBuf>,
    /// Compute md5 of every regular file (the package lists no digests).
    pub compute_md5: bool,
    /// Make device nodes (an image import of a whole tree) instead of
    /// skipping them (packages: the runtime provides /dev).
    pub devices: bool,
}

static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

fn temp_name() -> CString {
    let n = TEMP_SEQ.fetch_add(1, Ordering::Relaxed);
    CString::new(format!(".vbuild-tmp.{}.{n}", std::process::id())).expect("no NUL")
}

fn c(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in name"))
}

/// Extracts every entry of `entries` into `root`.
pub fn extract(
    root: &Root,
    entries: &mut dyn EntryReader,
    opts: &ExtractOpts<'_>,
) -> Result<Extracted, EntryError> {
    let mut out = Extracted::default();
    let mut hashes: HashMap<PathBuf, String> = HashMap::new();
    let mut buf = vec![0u8; 128 * 1024];
    entries
        .for_each(&mut |entry| write_entry(root, entry, opts, &mut out, &mut hashes, &mut buf))?;
    Ok(out)
}

fn write_entry(
    root: &Root,
    entry: Entry<'_>,
    opts: &ExtractOpts<'_>,
    out: &mut Extracted,
    hashes: &mut HashMap<PathBuf, String>,
    buf: &mut [u8],
) -> Result<(), EntryError> {
    let raw = entry.path;
    let rel = fsroot::normalize(&raw)
        .map_err(|_| EntryError::new(&raw, "names `..`: refusing to write outside the rootfs"))?;
    let abs = Path::new("/").join(&rel);
    if rel.as_os_str().is_empty() {
        // The archive's `./`: the rootfs itself, left as it is.
        if out.files.is_empty() || out.files[0] != Path::new("/.") {
            out.files.insert(0, PathBuf::from("/."));
        }
        return Ok(());
    }
    let (mode, uid, gid, mtime) = (entry.mode & 0o7777, entry.uid, entry.gid, entry.mtime);
    let xattrs = entry.xattrs;
    let fail = |e: &dyn std::fmt::Display| EntryError::new(&raw, e);
    match entry.kind {
        EntryKind::Dir => {
            make_dir(root, &rel, mode, uid, gid).map_err(|e| fail(&e))?;
            if !xattrs.is_empty() {
                let fd = root
                    .open_at(&rel, libc::O_RDONLY | libc::O_DIRECTORY, 0, false)
                    .map_err(|e| fail(&e))?;
                for (k, v) in &xattrs {
                    fsroot::set_xattr(fd.as_fd(), k, v).map_err(|e| fail(&e))?;
                }
            }
        }
        EntryKind::File => {
            let want_hash = opts.compute_md5 || opts.conffiles.contains(&abs);
            let (n, hash) = write_file(
                root,
                &rel,
                entry.data,
                buf,
                Meta {
                    mode,
                    uid,
                    gid,
                    mtime,
                    xattrs: &xattrs,
                },
                want_hash,
            )
            .map_err(|e| fail(&e))?;
            out.regular_files += 1;
            out.bytes += n;
            if let Some(hash) = hash {
                record_hash(out, hashes, opts, &abs, rel.clone(), hash);
            }
        }
        EntryKind::Symlink(target) => {
            if target.as_os_str().is_empty() {
                return Err(fail(&"symlink without a target"));
            }
            make_symlink(root, &rel, &target, uid, gid, mtime).map_err(|e| fail(&e))?;
        }
        EntryKind::Hardlink(target) => {
            let trel = fsroot::normalize(&target).map_err(|_| {
                fail(&format!(
                    "hardlink to {} names `..`: refusing to link outside the rootfs",
                    target.display()
                ))
            })?;
            make_hardlink(root, &rel, &trel).map_err(|e| fail(&e))?;
            out.regular_files += 1;
            let t_hash = hashes.get(&trel).cloned();
            if let Some(hash) = t_hash {
                record_hash(out, hashes, opts, &abs, rel.clone(), hash);
            } else if opts.compute_md5 || opts.conffiles.contains(&abs) {
                let data = root.read(&rel).map_err(|e| fail(&e))?;
                let hash = hex::encode(Md5::digest(&data));
                record_hash(out, hashes, opts, &abs, rel.clone(), hash);
            }
        }
        EntryKind::Fifo => {
            make_node(root, &rel, libc::S_IFIFO, 0, (mode, uid, gid, mtime))
                .map_err(|e| fail(&e))?;
        }
        k @ (EntryKind::CharDevice | EntryKind::BlockDevice) if opts.devices => {
            let t = if k == EntryKind::CharDevice {
                libc::S_IFCHR
            } else {
                libc::S_IFBLK
            };
            let dev = libc::makedev(entry.rdev.0, entry.rdev.1);
            make_node(root, &rel, t, dev, (mode, uid, gid, mtime)).map_err(|e| fail(&e))?;
        }
        EntryKind::CharDevice | EntryKind::BlockDevice => {
            out.notes.push(format!(
                "{}: device node skipped (the runtime provides /dev)",
                abs.display()
            ));
            return Ok(());
        }
    }
    out.files.push(abs);
    Ok(())
}

/// A fifo or device node, made under a temporary name and renamed into place.
fn make_node(
    root: &Root,
    rel: &Path,
    kind: u32,
    dev: u64,
    (mode, uid, gid, mtime): (u32, u32, u32, i64),
) -> io::Result<()> {
    let (dir, name) = root.parent_create(rel).map_err(io::Error::other)?;
    let tmp = temp_name();
    fsroot::mknod_at(dir.as_fd(), &tmp, kind | 0o600, dev)
        .and_then(|_| fsroot::chown_at(dir.as_fd(), &tmp, uid, gid))
        .and_then(|_| {
            let fd = fsroot::openat2(
                dir.as_fd(),
                &tmp,
                libc::O_PATH | libc::O_NOFOLLOW,
                0,
                IN_ROOT,
            )?;
            chmod_path_fd(&fd, mode)
        })
        .and_then(|_| fsroot::set_mtime_at(dir.as_fd(), &tmp, mtime))
        .and_then(|_| fsroot::rename_at(dir.as_fd(), &tmp, dir.as_fd(), &name))
        .inspect_err(|_| {
            let _ = fsroot::unlink_at(dir.as_fd(), &tmp, false);
        })
}

fn record_hash(
    out: &mut Extracted,
    hashes: &mut HashMap<PathBuf, String>,
    opts: &ExtractOpts<'_>,
    abs: &Path,
    rel: PathBuf,
    hash: String,
) {
    if opts.conffiles.contains(abs) {
        out.conffile_md5.insert(abs.to_path_buf(), hash.clone());
    } else if opts.compute_md5 {
        out.md5.push((rel.clone(), hash.clone()));
    }
    hashes.insert(rel, hash);
}

struct Meta<'a> {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
    xattrs: &'a [(CString, Vec<u8>)],
}

/// A directory entry: created if absent; an existing directory, or a
/// symlink resolving (inside the root) to one, is kept as it is, as dpkg
/// does, so merged-usr links are followed.
fn make_dir(root: &Root, rel: &Path, mode: u32, uid: u32, gid: u32) -> io::Result<()> {
    let (dir, name) = root.parent_create(rel).map_err(io::Error::other)?;
    match fsroot::kind_at(dir.as_fd(), &name)? {
        Some(Kind::Dir) => return Ok(()),
        Some(Kind::Symlink) if root.is_dir(rel) => return Ok(()),
        Some(Kind::Symlink) | Some(Kind::File) | Some(Kind::Other) => {
            return Err(io::Error::other(
                "exists and is not a directory (another package ships it as a file or link)",
            ))
        }
        None => {}
    }
    match fsroot::mkdir_at(dir.as_fd(), &name, 0o700) {
        Ok(()) => {}
        // Another package, unpacked in parallel, made it first.
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => return Ok(()),
        Err(e) => return Err(e),
    }
    let fd = fsroot::openat2(
        dir.as_fd(),
        &name,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        0,
        IN_ROOT,
    )?;
    fsroot::fchown(fd.as_fd(), uid, gid)?;
    fsroot::fchmod(fd.as_fd(), mode)
}

/// A regular file, written under a temporary name and renamed into place.
/// Returns the bytes written and the md5 when asked for.
fn write_file(
    root: &Root,
    rel: &Path,
    src: &mut dyn Read,
    buf: &mut [u8],
    meta: Meta<'_>,
    want_hash: bool,
) -> io::Result<(u64, Option<String>)> {
    let (dir, name) = root.parent_create(rel).map_err(io::Error::other)?;
    let tmp = temp_name();
    let fd = fsroot::openat2(
        dir.as_fd(),
        &tmp,
        libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
        0o600,
        IN_ROOT,
    )?;
    let result = (|| {
        let mut f = std::fs::File::from(fd);
        let mut hasher = want_hash.then(Md5::new);
        let mut n = 0u64;
        loop {
            let k = src.read(buf)?;
            if k == 0 {
                break;
            }
            f.write_all(&buf[..k])?;
            if let Some(h) = hasher.as_mut() {
                h.update(&buf[..k]);
            }
            n += k as u64;
        }
        fsroot::fchown(f.as_fd(), meta.uid, meta.gid)?;
        fsroot::fchmod(f.as_fd(), meta.mode)?;
        for (k, v) in meta.xattrs {
            fsroot::set_xattr(f.as_fd(), k, v)?;
        }
        fsroot::set_mtime(f.as_fd(), meta.mtime)?;
        fsroot::rename_at(dir.as_fd(), &tmp, dir.as_fd(), &name)?;
        Ok((n, hasher.map(|h| hex::encode(h.finalize()))))
    })();
    if result.is_err() {
        let _ = fsroot::unlink_at(dir.as_fd(), &tmp, false);
    }
    result
}

fn make_symlink(
    root: &Root,
    rel: &Path,
    target: &Path,
    uid: u32,
    gid: u32,
    mtime: i64,
) -> io::Result<()> {
    let (dir, name) = root.parent_create(rel).map_err(io::Error::other)?;
    if fsroot::kind_at(dir.as_fd(), &name)? == Some(Kind::Dir) {
        return Err(io::Error::other(
            "is a directory in the rootfs; refusing to replace it with a symlink",
        ));
    }
    let tmp = temp_name();
    let t = c(target)?;
    fsroot::symlink_at(&t, dir.as_fd(), &tmp)?;
    let r = fsroot::chown_at(dir.as_fd(), &tmp, uid, gid)
        .and_then(|_| fsroot::set_mtime_at(dir.as_fd(), &tmp, mtime))
        .and_then(|_| fsroot::rename_at(dir.as_fd(), &tmp, dir.as_fd(), &name));
    if r.is_err() {
        let _ = fsroot::unlink_at(dir.as_fd(), &tmp, false);
    }
    r
}

/// A hardlink to `target`, an earlier regular file of the archive; the
/// target is looked up inside the root, so it cannot name a host file.
fn make_hardlink(root: &Root, rel: &Path, target: &Path) -> io::Result<()> {
    let (tdir, tname) = root.parent(target).map_err(|e| {
        io::Error::other(format!(
            "hardlink target {}: {e}",
            Path::new("/").join(target).display()
        ))
    })?;
    match fsroot::kind_at(tdir.as_fd(), &tname)? {
        Some(Kind::File) => {}
        _ => {
            return Err(io::Error::other(format!(
                "hardlink target {} is not a regular file in the rootfs",
                Path::new("/").join(target).display()
            )))
        }
    }
    let (dir, name) = root.parent_create(rel).map_err(io::Error::other)?;
    let tmp = temp_name();
    fsroot::link_at(tdir.as_fd(), &tname, dir.as_fd(), &tmp)?;
    fsroot::rename_at(dir.as_fd(), &tmp, dir.as_fd(), &name).inspect_err(|_| {
        let _ = fsroot::unlink_at(dir.as_fd(), &tmp, false);
    })
}

/// chmod through an O_PATH descriptor (via its /proc/self/fd link), for
/// objects that cannot be opened for writing, such as fifos.
fn chmod_path_fd(fd: &std::os::fd::OwnedFd, mode: u32) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let p = CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).expect("no NUL");
    let p: &CStr = &p;
    // SAFETY: NUL-terminated path.
    if unsafe { libc::chmod(p.as_ptr(), mode) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
