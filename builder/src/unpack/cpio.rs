//! The newc ("070701") cpio entry reader: RPM payloads are cpio archives
//! in this format. It turns the stream into the root-confined writer's
//! entries (`safe::Entry`), so an .rpm gets exactly the `..`, absolute
//! name, symlink and hardlink protection a .deb gets.
//!
//! Format: a 110-byte ASCII header (magic, then 13 fields of 8 hex digits:
//! ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor,
//! rdevmajor, rdevminor, namesize, check), the NUL-terminated name padded
//! to a multiple of 4 bytes (counting the header), the data padded the
//! same way; the archive ends with an entry named `TRAILER!!!`. Hardlinked
//! files share an inode number; writers put the data on one of the names
//! (rpm: the last) and give the others size 0.

use super::safe::{Entry, EntryError, EntryKind, EntryReader};
use std::collections::HashMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Longest name accepted (PATH_MAX).
const MAX_NAME: usize = 4096;

/// Longest symlink target accepted (PATH_MAX).
const MAX_LINK: u64 = 4096;

const TRAILER: &str = "TRAILER!!!";

/// One parsed header.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Header {
    ino: u32,
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u32,
    mtime: u32,
    filesize: u32,
    dev: (u32, u32),
    name: PathBuf,
}

fn hex_field(h: &[u8], i: usize) -> Result<u32, String> {
    let f = &h[6 + i * 8..6 + (i + 1) * 8];
    let s = std::str::from_utf8(f).map_err(|_| "header field is not ASCII".to_string())?;
    u32::from_str_radix(s, 16).map_err(|_| format!("header field {s:?} is not hexadecimal"))
}

fn path_of(bytes: Vec<u8>) -> PathBuf {
    PathBuf::from(<std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(bytes))
}

fn pad4(n: u64) -> u64 {
    (4 - n % 4) % 4
}

fn skip<R: Read>(r: &mut R, n: u64) -> io::Result<()> {
    let got = io::copy(&mut r.take(n), &mut io::sink())?;
    if got != n {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "archive ends inside an entry",
        ));
    }
    Ok(())
}

/// Reads a newc cpio stream entry by entry.
pub struct CpioReader<R> {
    r: R,
}

impl<R: Read> CpioReader<R> {
    /// A reader over a (decompressed) cpio stream.
    pub fn new(r: R) -> CpioReader<R> {
        CpioReader { r }
    }

    /// The next header, `None` at the trailer.
    fn header(&mut self, last: &Path) -> Result<Option<Header>, EntryError> {
        let err = |m: String| EntryError::new(last, m);
        let mut h = [0u8; 110];
        self.r.read_exact(&mut h).map_err(|e| {
            err(if e.kind() == io::ErrorKind::UnexpectedEof {
                "archive ends without a TRAILER!!! entry (truncated)".into()
            } else {
                format!("after this entry: {e}")
            })
        })?;
        if &h[..6] != b"070701" && &h[..6] != b"070702" {
            return Err(err(format!(
                "after this entry: bad magic {:?}; only newc cpio (070701) is read",
                String::from_utf8_lossy(&h[..6])
            )));
        }
        let f = |i| hex_field(&h, i).map_err(&err);
        let namesize = f(11)? as usize;
        if namesize == 0 || namesize > MAX_NAME {
            return Err(err(format!(
                "next entry's name is {namesize} bytes; expected 1 to {MAX_NAME}"
            )));
        }
        let mut name = vec![0u8; namesize];
        self.r
            .read_exact(&mut name)
            .map_err(|e| err(format!("next entry's name: {e}")))?;
        if name.pop() != Some(0) || name.contains(&0) {
            return Err(err("next entry's name is not NUL-terminated".into()));
        }
        skip(&mut self.r, pad4(110 + namesize as u64)).map_err(|e| err(e.to_string()))?;
        let name = path_of(name);
        if name == Path::new(TRAILER) {
            return Ok(None);
        }
        Ok(Some(Header {
            ino: f(0)?,
            mode: f(1)?,
            uid: f(2)?,
            gid: f(3)?,
            nlink: f(4)?,
            mtime: f(5)?,
            filesize: f(6)?,
            dev: (f(7)?, f(8)?),
            name,
        }))
    }
}

fn kind_of(h: &Header, link_target: Option<PathBuf>) -> Result<EntryKind, EntryError> {
    Ok(match h.mode & libc::S_IFMT {
        libc::S_IFREG => EntryKind::File,
        libc::S_IFDIR => EntryKind::Dir,
        libc::S_IFLNK => EntryKind::Symlink(link_target.unwrap_or_default()),
        libc::S_IFCHR => EntryKind::CharDevice,
        libc::S_IFBLK => EntryKind::BlockDevice,
        libc::S_IFIFO => EntryKind::Fifo,
        t => {
            return Err(EntryError::new(
                &h.name,
                format!("unsupported cpio entry type {:o}", t >> 12),
            ))
        }
    })
}

fn entry<'a>(h: &Header, kind: EntryKind, data: &'a mut dyn Read) -> Entry<'a> {
    Entry {
        path: h.name.clone(),
        kind,
        mode: h.mode & 0o7777,
        uid: h.uid,
        gid: h.gid,
        mtime: i64::from(h.mtime),
        xattrs: Vec::new(),
        // rpm payloads' device nodes are skipped (the runtime provides /dev).
        rdev: (0, 0),
        data,
    }
}

impl<R: Read> EntryReader for CpioReader<R> {
    fn for_each(
        &mut self,
        f: &mut dyn FnMut(Entry<'_>) -> Result<(), EntryError>,
    ) -> Result<(), EntryError> {
        // Hardlinked names waiting for the name that carries the data, and
        // the name that did, per (device, inode).
        let mut pending: HashMap<((u32, u32), u32), Vec<Header>> = HashMap::new();
        let mut written: HashMap<((u32, u32), u32), PathBuf> = HashMap::new();
        let mut order: Vec<((u32, u32), u32)> = Vec::new();
        let mut last = PathBuf::from("cpio archive");
        while let Some(h) = self.header(&last)? {
            last = h.name.clone();
            let size = u64::from(h.filesize);
            let is_file = h.mode & libc::S_IFMT == libc::S_IFREG;
            let key = (h.dev, h.ino);
            if is_file && h.nlink > 1 {
                if let Some(first) = written.get(&key) {
                    // Data already written under another name.
                    skip(&mut self.r, size + pad4(size))
                        .map_err(|e| EntryError::new(&h.name, e.to_string()))?;
                    f(entry(
                        &h,
                        EntryKind::Hardlink(first.clone()),
                        &mut io::empty(),
                    ))?;
                    continue;
                }
                if size == 0 {
                    if !pending.contains_key(&key) {
                        order.push(key);
                    }
                    pending.entry(key).or_default().push(h);
                    continue;
                }
            }
            let target = if h.mode & libc::S_IFMT == libc::S_IFLNK {
                if size > MAX_LINK {
                    return Err(EntryError::new(
                        &h.name,
                        format!("symlink target is {size} bytes; at most {MAX_LINK}"),
                    ));
                }
                let mut t = vec![0u8; size as usize];
                self.r
                    .read_exact(&mut t)
                    .map_err(|e| EntryError::new(&h.name, format!("symlink target: {e}")))?;
                skip(&mut self.r, pad4(size))
                    .map_err(|e| EntryError::new(&h.name, e.to_string()))?;
                Some(path_of(t))
            } else {
                None
            };
            let kind = kind_of(&h, target.clone())?;
            if target.is_some() {
                f(entry(&h, kind, &mut io::empty()))?;
                continue;
            }
            let mut data = (&mut self.r).take(size);
            f(entry(&h, kind, &mut data))?;
            // Whatever the writer did not read, and the padding.
            let rest = data.limit();
            skip(&mut self.r, rest + pad4(size))
                .map_err(|e| EntryError::new(&h.name, e.to_string()))?;
            if is_file && h.nlink > 1 {
                for other in pending.remove(&key).unwrap_or_default() {
                    f(entry(
                        &other,
                        EntryKind::Hardlink(h.name.clone()),
                        &mut io::empty(),
                    ))?;
                }
                written.insert(key, h.name.clone());
            }
        }
        // Hardlinked names whose data never came: an empty file and links.
        for key in order {
            let Some(group) = pending.remove(&key) else {
                continue;
            };
            let mut names = group.into_iter();
            if let Some(first) = names.next() {
                f(entry(&first, EntryKind::File, &mut io::empty()))?;
                for other in names {
                    f(entry(
                        &other,
                        EntryKind::Hardlink(first.name.clone()),
                        &mut io::empty(),
                    ))?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vbuild_testkit::cpio::CpioBuilder;

    /// One entry as (path, kind, mode, uid, data).
    type Seen = (PathBuf, EntryKind, u32, u32, Vec<u8>);

    /// Every entry of `bytes`.
    fn read_all(bytes: &[u8]) -> Result<Vec<Seen>, String> {
        let mut out = Vec::new();
        CpioReader::new(bytes)
            .for_each(&mut |e: Entry<'_>| {
                let mut data = Vec::new();
                e.data.read_to_end(&mut data).unwrap();
                out.push((e.path, e.kind, e.mode, e.uid, data));
                Ok(())
            })
            .map_err(|e| e.to_string())?;
        Ok(out)
    }

    #[test]
    fn files_dirs_links_and_metadata_are_read_in_order() {
        let bytes = CpioBuilder::new()
            .dir("./usr", 0o755)
            .file_owned("./usr/odd", b"12345", 0o4750, 7, 8)
            .file("./usr/even", b"1234", 0o644)
            .symlink("./usr/link", "odd")
            .fifo("./usr/pipe")
            .build();
        let got = read_all(&bytes).unwrap();
        let summary: Vec<_> = got
            .iter()
            .map(|(p, k, m, u, d)| (p.to_str().unwrap(), k.clone(), *m, *u, d.as_slice()))
            .collect();
        assert_eq!(
            summary,
            [
                ("./usr", EntryKind::Dir, 0o755, 0, &b""[..]),
                ("./usr/odd", EntryKind::File, 0o4750, 7, b"12345"),
                ("./usr/even", EntryKind::File, 0o644, 0, b"1234"),
                (
                    "./usr/link",
                    EntryKind::Symlink("odd".into()),
                    0o777,
                    0,
                    b""
                ),
                ("./usr/pipe", EntryKind::Fifo, 0o644, 0, b""),
            ]
        );
    }

    #[test]
    fn hardlinks_follow_the_name_that_carries_the_data() {
        // rpm's order: the data comes with the last name of the inode.
        let bytes = CpioBuilder::new()
            .hardlinked(&["./a", "./b", "./c"], b"shared", 0o644)
            .build();
        let got = read_all(&bytes).unwrap();
        let summary: Vec<_> = got
            .iter()
            .map(|(p, k, ..)| (p.to_str().unwrap(), k.clone()))
            .collect();
        assert_eq!(
            summary,
            [
                ("./c", EntryKind::File),
                ("./a", EntryKind::Hardlink("./c".into())),
                ("./b", EntryKind::Hardlink("./c".into())),
            ]
        );
        assert_eq!(got[0].4, b"shared");
    }

    #[test]
    fn truncated_and_foreign_archives_are_named() {
        let bytes = CpioBuilder::new().file("./x", b"data", 0o644).build();
        let e = read_all(&bytes[..bytes.len() - 130]).unwrap_err();
        assert!(e.contains("truncated") || e.contains("ends"), "{e}");
        let e = read_all(b"070707000000").unwrap_err();
        assert!(e.contains("truncated"), "{e}");
        let mut odc = vec![b'0'; 200];
        odc[..6].copy_from_slice(b"070707");
        let e = read_all(&odc).unwrap_err();
        assert!(e.contains("only newc cpio"), "{e}");
        let mut huge = CpioBuilder::new().file("./x", b"", 0o644).build();
        huge[6 + 11 * 8..6 + 12 * 8].copy_from_slice(b"00100000");
        let e = read_all(&huge).unwrap_err();
        assert!(e.contains("expected 1 to 4096"), "{e}");
    }
}
