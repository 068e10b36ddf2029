//! A root filesystem as a reproducible tar stream: the same tree always
//! gives the same bytes.
//!
//! - entries in a fixed order: parents first, names of each directory in
//!   byte order (`vbuild_kernel::tree`), named `./`, `./etc/`, `./etc/passwd`;
//! - numeric owners only (no user or group names), permission bits with
//!   setuid/setgid/sticky, no atime/ctime;
//! - extended attributes (`security.capability` included) as pax
//!   `SCHILY.xattr.NAME` records, which GNU tar, bsdtar and vbuild's own
//!   reader understand;
//! - a regular file seen again under another name (same inode) becomes a
//!   hardlink to its first name; device nodes and fifos are kept, sockets
//!   dropped (live state);
//! - with a clamp (`SOURCE_DATE_EPOCH`), every mtime later than it becomes it.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use vbuild_kernel::tree::{self, Node, NodeKind, WalkError};

/// How the stream is written.
#[derive(Debug, Clone, Default)]
pub struct TarOptions {
    /// Latest mtime an entry may carry (`SOURCE_DATE_EPOCH`).
    pub clamp_mtime: Option<i64>,
    /// Leave out POSIX ACLs (`system.posix_acl_*` xattrs): squashfs has no
    /// place for them.
    pub skip_acls: bool,
}

/// What was archived.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TarStats {
    /// Entries written.
    pub entries: u64,
    /// Bytes of regular file content.
    pub file_bytes: u64,
    /// Sockets left out.
    pub skipped_sockets: u64,
    /// POSIX ACLs left out (`skip_acls`).
    pub skipped_acls: u64,
}

/// Writes the tree at `rootfs` as a tar stream to `w` (uncompressed).
pub fn write_tar<W: Write>(rootfs: &Path, w: W, opts: &TarOptions) -> Result<TarStats, WalkError> {
    let mut b = tar::Builder::new(w);
    let mut stats = TarStats::default();
    let mut seen: HashMap<(u64, u64), PathBuf> = HashMap::new();
    tree::walk(rootfs, &mut |node: Node| {
        let rel = node.path.clone();
        append(&mut b, node, opts, &mut seen, &mut stats).map_err(|source| WalkError {
            path: Path::new("/").join(&rel),
            source,
        })
    })?;
    b.into_inner()
        .and_then(|mut w| w.flush())
        .map_err(|source| WalkError {
            path: rootfs.to_path_buf(),
            source,
        })?;
    Ok(stats)
}

/// The archive name of a node: `./` + path, directories with a trailing `/`.
fn entry_name(rel: &Path, dir: bool) -> PathBuf {
    let mut s = b"./".to_vec();
    s.extend_from_slice(rel.as_os_str().as_bytes());
    if dir && !rel.as_os_str().is_empty() {
        s.push(b'/');
    }
    PathBuf::from(<std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(s))
}

fn append<W: Write>(
    b: &mut tar::Builder<W>,
    node: Node,
    opts: &TarOptions,
    seen: &mut HashMap<(u64, u64), PathBuf>,
    stats: &mut TarStats,
) -> io::Result<()> {
    let st = node.stat;
    let mut h = tar::Header::new_gnu();
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(st.st_uid as u64);
    h.set_gid(st.st_gid as u64);
    let mtime = st.st_mtime.max(0);
    let mtime = opts.clamp_mtime.map_or(mtime, |c| mtime.min(c.max(0)));
    h.set_mtime(mtime as u64);
    h.set_size(0);
    let is_dir = matches!(node.kind, NodeKind::Dir);
    let name = entry_name(&node.path, is_dir);
    let acl = |k: &std::ffi::CString| k.as_bytes().starts_with(b"system.posix_acl_");
    if opts.skip_acls && node.xattrs.iter().any(|(k, _)| acl(k)) {
        let kept: Vec<_> = node
            .xattrs
            .iter()
            .filter(|(k, _)| !acl(k))
            .cloned()
            .collect();
        stats.skipped_acls += (node.xattrs.len() - kept.len()) as u64;
        if !kept.is_empty() {
            pax_xattrs(b, &name, &kept)?;
        }
    } else if !node.xattrs.is_empty() {
        pax_xattrs(b, &name, &node.xattrs)?;
    }
    stats.entries += 1;
    match node.kind {
        NodeKind::Dir => {
            h.set_entry_type(tar::EntryType::Directory);
            b.append_data(&mut h, &name, io::empty())
        }
        NodeKind::File(f) => {
            let key = (st.st_dev, st.st_ino);
            if st.st_nlink > 1 {
                if let Some(first) = seen.get(&key) {
                    h.set_entry_type(tar::EntryType::Link);
                    return b.append_link(&mut h, &name, first);
                }
                seen.insert(key, name.clone());
            }
            h.set_entry_type(tar::EntryType::Regular);
            let size = st.st_size as u64;
            h.set_size(size);
            stats.file_bytes += size;
            b.append_data(&mut h, &name, Exact::new(f, size))
        }
        NodeKind::Symlink(target) => {
            h.set_entry_type(tar::EntryType::Symlink);
            b.append_link(&mut h, &name, target)
        }
        NodeKind::Fifo => {
            h.set_entry_type(tar::EntryType::Fifo);
            b.append_data(&mut h, &name, io::empty())
        }
        NodeKind::Char(dev) | NodeKind::Block(dev) => {
            let (major, minor) = tree::major_minor(dev);
            h.set_entry_type(if matches!(node.kind, NodeKind::Char(_)) {
                tar::EntryType::Char
            } else {
                tar::EntryType::Block
            });
            h.set_device_major(major)?;
            h.set_device_minor(minor)?;
            b.append_data(&mut h, &name, io::empty())
        }
        NodeKind::Socket => {
            stats.entries -= 1;
            stats.skipped_sockets += 1;
            Ok(())
        }
    }
}

/// One pax record: `LEN key=value\n`, LEN counting the whole record.
fn pax_record(key: &[u8], value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    let mut r = len.to_string().into_bytes();
    r.push(b' ');
    r.extend_from_slice(key);
    r.push(b'=');
    r.extend_from_slice(value);
    r.push(b'\n');
    r
}

/// A pax extended header carrying the next entry's extended attributes.
fn pax_xattrs<W: Write>(
    b: &mut tar::Builder<W>,
    name: &Path,
    xattrs: &[(std::ffi::CString, Vec<u8>)],
) -> io::Result<()> {
    let mut data = Vec::new();
    for (k, v) in xattrs {
        let mut key = b"SCHILY.xattr.".to_vec();
        key.extend_from_slice(k.as_bytes());
        data.extend(pax_record(&key, v));
    }
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::XHeader);
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    // GNU tar's naming of these headers; only its length matters (<100).
    let base = name.file_name().map(|n| n.as_bytes()).unwrap_or(b"root");
    let mut hname = b"./PaxHeaders/".to_vec();
    hname.extend_from_slice(&base[..base.len().min(80)]);
    h.set_path(Path::new(std::ffi::OsStr::from_bytes(&hname)))?;
    h.set_cksum();
    b.append(&h, &data[..])
}

/// Reads exactly `size` bytes of a file, or fails if it changed size while
/// archived (a header already promised `size`).
struct Exact<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Exact<R> {
    fn new(inner: R, size: u64) -> Exact<R> {
        Exact { inner, left: size }
    }
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(self.left as usize);
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::other(
                "shrank while being archived (is the guest running?); stop it and try again",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_records_count_their_own_length() {
        let r = pax_record(b"SCHILY.xattr.user.a", b"1");
        let s = String::from_utf8(r.clone()).unwrap();
        let (n, _) = s.split_once(' ').unwrap();
        assert_eq!(n.parse::<usize>().unwrap(), r.len());
        // The length's own digits can carry it over a power of ten.
        let r = pax_record(&[b'k'; 4], &[b'v'; 89]);
        let s = String::from_utf8(r.clone()).unwrap();
        assert_eq!(
            s.split_once(' ').unwrap().0.parse::<usize>().unwrap(),
            r.len()
        );
    }
}
