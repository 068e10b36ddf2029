//! The name of a container in its own files. `lxc-create -t download`
//! replaces `LXC_NAME` in the files `meta.tar.xz` lists under `templates`
//! (`/etc/hostname`, `/etc/hosts`), so the catalog's `rootfs.tar.xz` must
//! hold that placeholder there: a filter over the image's tar stream drops
//! the image's own `etc/hostname` and `etc/hosts` (whatever their type, so a
//! planted symlink goes too) and writes placeholder files just before the
//! end-of-archive blocks. Incus's templates overwrite both files anyway;
//! `vbuild pull` puts the guest's name in (`fill_name`).
//!
//! It works on the raw 512-byte blocks, so every other entry (pax xattrs,
//! long names, device nodes) passes through byte for byte — except a hard
//! link whose target is a dropped `etc/hostname` or `etc/hosts` (another
//! name of the same inode, `etc/mailname` say, sorting after it): the link
//! would otherwise name the placeholder and the client's template writing
//! (LXC's `sed -i`, incus's in-place write) would reach that other file, or
//! the link would dangle. Such an entry becomes a regular file of its own
//! with the dropped file's bytes, so the other name keeps its content and
//! the placeholder file has no other name.

use std::io::{self, Write};
use std::path::Path;

/// The placeholder LXC replaces with the container's name.
pub const PLACEHOLDER: &str = "LXC_NAME";

/// `/etc/hostname` for `name`.
pub fn hostname_file(name: &str) -> String {
    format!("{name}\n")
}

/// `/etc/hosts` for `name` (Debian's default lines plus `127.0.1.1 name`).
pub fn hosts_file(name: &str) -> String {
    format!(
        "127.0.0.1\tlocalhost\n127.0.1.1\t{name}\n::1\t\tlocalhost ip6-localhost ip6-loopback\n\
         ff02::1\t\tip6-allnodes\nff02::2\t\tip6-allrouters\n"
    )
}

/// The entries the filter replaces.
const REPLACED: [&[u8]; 2] = [b"etc/hostname", b"etc/hosts"];

/// Upper bound of extension headers (pax, GNU long names) held back while
/// the entry they belong to is not yet known.
const MAX_PENDING: usize = 16 << 20;

enum State {
    Header,
    /// Extension data of `kind` starting at `start` of `pending`, `size` bytes.
    Ext {
        left: u64,
        kind: u8,
        start: usize,
        size: usize,
    },
    Data {
        left: u64,
        keep: bool,
        /// Bytes of a dropped regular file to hold (its size) in `captured`.
        capture: Option<usize>,
    },
    Done,
}

/// What a dropped entry was, for hard links to it that come later.
enum Dropped {
    /// A regular file and its bytes.
    File(Vec<u8>),
    /// Anything else (symlink, directory, device, or itself a hard link).
    Other,
}

/// A writer of a tar stream that passes it on to `out` with `etc/hostname`
/// and `etc/hosts` holding `LXC_NAME`.
pub struct PlaceholderFilter<W: Write> {
    out: W,
    mtime: u64,
    state: State,
    header: Vec<u8>,
    pending: Vec<u8>,
    pending_path: Option<Vec<u8>>,
    pending_link: Option<Vec<u8>>,
    /// The replaced entries seen so far, by plain name.
    dropped: Vec<(Vec<u8>, Dropped)>,
    captured: Vec<u8>,
}

impl<W: Write> PlaceholderFilter<W> {
    /// A filter writing to `out`; the new files get mtime `mtime`.
    pub fn new(out: W, mtime: i64) -> Self {
        PlaceholderFilter {
            out,
            mtime: mtime.max(0) as u64,
            state: State::Header,
            header: Vec::with_capacity(512),
            pending: Vec::new(),
            pending_path: None,
            pending_link: None,
            dropped: Vec::new(),
            captured: Vec::new(),
        }
    }

    /// The writer back, once the end of the archive went through (an error
    /// for a stream that stopped before it).
    pub fn finish(self) -> io::Result<W> {
        match self.state {
            State::Done => Ok(self.out),
            _ => Err(io::Error::other(
                "the tar stream ended before its end-of-archive blocks (truncated?)",
            )),
        }
    }

    fn placeholders(&mut self) -> io::Result<()> {
        for (path, text) in [
            ("etc/hostname", hostname_file(PLACEHOLDER)),
            ("etc/hosts", hosts_file(PLACEHOLDER)),
        ] {
            let mut h = tar::Header::new_ustar();
            h.set_path(path)?;
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(self.mtime);
            h.set_size(text.len() as u64);
            h.set_cksum();
            self.out.write_all(h.as_bytes())?;
            self.out.write_all(text.as_bytes())?;
            let pad = (512 - text.len() % 512) % 512;
            self.out.write_all(&[0u8; 512][..pad])?;
        }
        Ok(())
    }

    fn on_header(&mut self) -> io::Result<()> {
        let h: [u8; 512] = self.header[..].try_into().expect("a whole block");
        self.header.clear();
        if h.iter().all(|&b| b == 0) {
            if !self.pending.is_empty() {
                return Err(io::Error::other(
                    "tar extension header without an entry before the end of the archive",
                ));
            }
            self.placeholders()?;
            self.out.write_all(&h)?;
            self.state = State::Done;
            return Ok(());
        }
        let size = entry_size(&h)?;
        let padded = size.div_ceil(512) * 512;
        let kind = h[156];
        if matches!(kind, b'x' | b'L' | b'K') {
            if self.pending.len() as u64 + 512 + padded > MAX_PENDING as u64 {
                return Err(io::Error::other("tar extension header too large"));
            }
            self.pending.extend_from_slice(&h);
            self.state = State::Ext {
                left: padded,
                kind,
                start: self.pending.len(),
                size: size as usize,
            };
            if padded == 0 {
                self.end_ext();
            }
            return Ok(());
        }
        let name = self.pending_path.take().unwrap_or_else(|| header_name(&h));
        let link = self.pending_link.take().unwrap_or_else(|| link_name(&h));
        let replaced = REPLACED.contains(&plain(&name));
        if !replaced && kind == b'1' {
            if let Some((target, d)) = self
                .dropped
                .iter()
                .find(|(n, _)| n.as_slice() == plain(&link))
            {
                let Dropped::File(data) = d else {
                    return Err(io::Error::other(format!(
                        "{} is a hard link to {}, which is not a regular file: \
                         cannot keep it apart from the LXC_NAME placeholder",
                        String::from_utf8_lossy(&name),
                        String::from_utf8_lossy(target)
                    )));
                };
                // The same inode under another name: a file of its own now.
                let copy = as_regular(&h, data.len() as u64);
                self.out.write_all(&self.pending)?;
                self.out.write_all(&copy)?;
                self.out.write_all(data)?;
                let pad = (512 - data.len() % 512) % 512;
                self.out.write_all(&[0u8; 512][..pad])?;
                self.pending.clear();
                self.state = if padded == 0 {
                    State::Header
                } else {
                    // A link entry carries no data; skip whatever it claims.
                    State::Data {
                        left: padded,
                        keep: false,
                        capture: None,
                    }
                };
                return Ok(());
            }
        }
        let keep = !replaced;
        let mut capture = None;
        if replaced {
            let regular = matches!(kind, b'0' | 0 | b'7');
            if regular && size > MAX_PENDING as u64 {
                return Err(io::Error::other(format!(
                    "{} is larger than {} MiB",
                    String::from_utf8_lossy(&name),
                    MAX_PENDING >> 20
                )));
            }
            let d = if regular {
                capture = Some(size as usize);
                self.captured.clear();
                Dropped::File(Vec::new())
            } else {
                Dropped::Other
            };
            let p = plain(&name).to_vec();
            self.dropped.retain(|(n, _)| *n != p);
            self.dropped.push((p, d));
        }
        if keep {
            self.out.write_all(&self.pending)?;
            self.out.write_all(&h)?;
        }
        self.pending.clear();
        self.state = if padded == 0 {
            State::Header
        } else {
            State::Data {
                left: padded,
                keep,
                capture,
            }
        };
        Ok(())
    }

    /// The bytes of the dropped file just read go to its `dropped` entry.
    fn end_capture(&mut self) {
        if let Some((_, Dropped::File(data))) = self.dropped.last_mut() {
            *data = std::mem::take(&mut self.captured);
        }
    }

    fn end_ext(&mut self) {
        if let State::Ext {
            kind, start, size, ..
        } = self.state
        {
            let data = &self.pending[start..start + size.min(self.pending.len() - start)];
            match kind {
                b'L' => {
                    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
                    self.pending_path = Some(data[..end].to_vec());
                }
                b'K' => {
                    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
                    self.pending_link = Some(data[..end].to_vec());
                }
                b'x' => {
                    if let Some(p) = pax_record(data, b"path=") {
                        self.pending_path = Some(p);
                    }
                    if let Some(p) = pax_record(data, b"linkpath=") {
                        self.pending_link = Some(p);
                    }
                }
                _ => {}
            }
        }
        self.state = State::Header;
    }
}

impl<W: Write> Write for PlaceholderFilter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut input = buf;
        while !input.is_empty() {
            match &mut self.state {
                State::Done => {
                    self.out.write_all(input)?;
                    break;
                }
                State::Data {
                    left,
                    keep,
                    capture,
                } => {
                    let n = (*left).min(input.len() as u64) as usize;
                    if *keep {
                        self.out.write_all(&input[..n])?;
                    }
                    if let Some(want) = capture {
                        let k = (*want - self.captured.len()).min(n);
                        self.captured.extend_from_slice(&input[..k]);
                    }
                    *left -= n as u64;
                    if *left == 0 {
                        if capture.is_some() {
                            self.end_capture();
                        }
                        self.state = State::Header;
                    }
                    input = &input[n..];
                }
                State::Ext { left, .. } => {
                    let n = (*left).min(input.len() as u64) as usize;
                    self.pending.extend_from_slice(&input[..n]);
                    *left -= n as u64;
                    let done = *left == 0;
                    input = &input[n..];
                    if done {
                        self.end_ext();
                    }
                }
                State::Header => {
                    let n = (512 - self.header.len()).min(input.len());
                    self.header.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    if self.header.len() == 512 {
                        self.on_header()?;
                    }
                }
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// The size field of a header: octal, or GNU base-256 for large sizes.
fn entry_size(h: &[u8; 512]) -> io::Result<u64> {
    let f = &h[124..136];
    if f[0] & 0x80 != 0 {
        return Ok(f[4..].iter().fold(0u64, |a, &b| (a << 8) | u64::from(b)));
    }
    let s: Vec<u8> = f
        .iter()
        .copied()
        .filter(|b| !matches!(b, 0 | b' '))
        .collect();
    if s.is_empty() {
        return Ok(0);
    }
    u64::from_str_radix(std::str::from_utf8(&s).unwrap_or("x"), 8)
        .map_err(|_| io::Error::other("tar header with an unreadable size field"))
}

/// The name of a ustar/GNU header (prefix joined when it is ustar).
fn header_name(h: &[u8; 512]) -> Vec<u8> {
    let field = |b: &[u8]| b[..b.iter().position(|&c| c == 0).unwrap_or(b.len())].to_vec();
    let name = field(&h[0..100]);
    if &h[257..263] == b"ustar\0" {
        let prefix = field(&h[345..500]);
        if !prefix.is_empty() {
            return [prefix, b"/".to_vec(), name].concat();
        }
    }
    name
}

/// The link target of a header (its `linkname` field).
fn link_name(h: &[u8; 512]) -> Vec<u8> {
    let f = &h[157..257];
    f[..f.iter().position(|&c| c == 0).unwrap_or(f.len())].to_vec()
}

/// Header `h` of a hard link turned into a regular file of `size` bytes.
fn as_regular(h: &[u8; 512], size: u64) -> [u8; 512] {
    let mut c = *h;
    c[156] = b'0';
    c[157..257].fill(0);
    let digits = format!("{size:011o}");
    if digits.len() == 11 {
        c[124..135].copy_from_slice(digits.as_bytes());
        c[135] = 0;
    } else {
        // GNU base-256 for sizes beyond 8 GiB.
        c[124..136].fill(0);
        c[124] = 0x80;
        c[128..136].copy_from_slice(&size.to_be_bytes());
    }
    c[148..156].fill(b' ');
    let sum: u32 = c.iter().map(|&b| u32::from(b)).sum();
    let s = format!("{sum:06o}\0 ");
    c[148..156].copy_from_slice(s.as_bytes());
    c
}

/// The last `key` record (`path=`, `linkpath=`) of pax extension data
/// (`LEN key=value\n` records).
fn pax_record(mut data: &[u8], key: &[u8]) -> Option<Vec<u8>> {
    let mut found = None;
    while !data.is_empty() {
        let sp = data.iter().position(|&b| b == b' ')?;
        let len: usize = std::str::from_utf8(&data[..sp]).ok()?.parse().ok()?;
        if len <= sp || len > data.len() {
            return found;
        }
        let rec = &data[sp + 1..len];
        let rec = rec.strip_suffix(b"\n").unwrap_or(rec);
        if let Some(v) = rec.strip_prefix(key) {
            found = Some(v.to_vec());
        }
        data = &data[len..];
    }
    found
}

/// A name without its leading `./` or `/` and trailing `/`.
fn plain(name: &[u8]) -> &[u8] {
    let mut s = name;
    while let Some(r) = s.strip_prefix(b"./").or_else(|| s.strip_prefix(b"/")) {
        s = r;
    }
    while let Some(r) = s.strip_suffix(b"/") {
        s = r;
    }
    s
}

/// Puts `name` in a pulled guest's `/etc/hostname` and `/etc/hosts` where
/// they hold the catalog's placeholder (resolved inside the guest's root;
/// each file replaced by a rename, never written through a symlink).
pub fn fill_name(rootfs: &Path, name: &str) -> Result<(), String> {
    let root = vbuild_kernel::fsroot::Root::open(rootfs).map_err(|e| e.to_string())?;
    for (rel, text) in [
        ("etc/hostname", hostname_file(name)),
        ("etc/hosts", hosts_file(name)),
    ] {
        let rel = Path::new(rel);
        let Ok(old) = root.read_regular(rel, 64 << 10) else {
            continue;
        };
        if String::from_utf8_lossy(&old).contains(PLACEHOLDER) {
            root.write(rel, text.as_bytes(), 0o644)
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// `fill_name` for an overlay guest: reads the template `lower`, writes the
/// guest's files into its layer `upper` (its `etc` made with the template's
/// mode and owner, so the merged directory looks the same).
pub fn fill_name_over(lower: &Path, upper: &Path, name: &str) -> Result<(), String> {
    use vbuild_kernel::fsroot::{self, Root};
    let probe = Root::open(lower).map_err(|e| e.to_string())?;
    let target = Root::open(upper).map_err(|e| e.to_string())?;
    for (rel, text) in [
        ("etc/hostname", hostname_file(name)),
        ("etc/hosts", hosts_file(name)),
    ] {
        let rel = Path::new(rel);
        let Ok(old) = probe.read_regular(rel, 64 << 10) else {
            continue;
        };
        if !String::from_utf8_lossy(&old).contains(PLACEHOLDER) {
            continue;
        }
        let etc = Path::new("etc");
        if !target.is_dir(etc) {
            let fd = probe
                .open_at(etc, libc::O_PATH, 0, false)
                .map_err(|e| e.to_string())?;
            let st = fsroot::fstat(std::os::fd::AsFd::as_fd(&fd)).map_err(|e| e.to_string())?;
            target
                .mkdir_all(etc, st.st_mode & 0o7777)
                .map_err(|e| e.to_string())?;
            let dir = target
                .open_at(etc, libc::O_RDONLY | libc::O_DIRECTORY, 0, false)
                .map_err(|e| e.to_string())?;
            fsroot::fchmod(std::os::fd::AsFd::as_fd(&dir), st.st_mode & 0o7777)
                .map_err(|e| format!("chmod etc: {e}"))?;
            let (parent, leaf) = target.parent(etc).map_err(|e| e.to_string())?;
            fsroot::chown_at(
                std::os::fd::AsFd::as_fd(&parent),
                &leaf,
                st.st_uid,
                st.st_gid,
            )
            .map_err(|e| format!("chown etc: {e}"))?;
        }
        target
            .write(rel, text.as_bytes(), 0o644)
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(entries: &[(&str, &[u8])], long: bool) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, name, *data).unwrap();
        }
        if long {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            h.set_size(1);
            let deep = format!("./{}/hostname-like", "d".repeat(120));
            b.append_data(&mut h, deep, &b"x"[..]).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn filtered(tar: &[u8], chunk: usize) -> Vec<u8> {
        let mut f = PlaceholderFilter::new(Vec::new(), 1700000000);
        for c in tar.chunks(chunk) {
            f.write_all(c).unwrap();
        }
        f.finish().unwrap()
    }

    fn contents(tar: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut a = tar::Archive::new(tar);
        a.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let name = e.path().unwrap().display().to_string();
                let mut b = Vec::new();
                std::io::Read::read_to_end(&mut e, &mut b).unwrap();
                (name, b)
            })
            .collect()
    }

    #[test]
    fn hostname_and_hosts_become_the_placeholder_and_the_rest_passes_unchanged() {
        let input = archive(
            &[
                ("./etc/os-release", b"ID=debian\n"),
                ("./etc/hostname", b"builder\n"),
                ("./etc/hosts", b"127.0.0.1 localhost builder\n"),
                ("./usr/bin/x", &[7u8; 1000]),
            ],
            true,
        );
        for chunk in [1, 511, 512, 4096, input.len()] {
            let got = contents(&filtered(&input, chunk));
            let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
            let deep = format!("./{}/hostname-like", "d".repeat(120));
            assert_eq!(
                names,
                // The tar crate stores short names without their `./`; the
                // long name (a GNU long-name entry) keeps it.
                vec![
                    "etc/os-release",
                    "usr/bin/x",
                    deep.as_str(),
                    "etc/hostname",
                    "etc/hosts"
                ],
                "chunk {chunk}"
            );
            assert_eq!(got[1].1, vec![7u8; 1000]);
            assert_eq!(got[3].1, b"LXC_NAME\n");
            assert!(String::from_utf8_lossy(&got[4].1).contains("127.0.1.1\tLXC_NAME\n"));
        }
    }

    #[test]
    fn a_stream_without_its_end_blocks_is_an_error() {
        let input = archive(&[("etc/hostname", b"x\n")], false);
        let mut f = PlaceholderFilter::new(Vec::new(), 0);
        f.write_all(&input[..512]).unwrap();
        assert!(f.finish().is_err());
    }

    /// A tar with regular files, hard links (`=target`) and symlinks
    /// (`->target`), as GNU tar and vbuild's writer lay them out.
    fn linked(entries: &[(&str, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, what) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            h.set_mtime(5);
            h.set_size(0);
            if let Some(t) = what.strip_prefix('=') {
                h.set_entry_type(tar::EntryType::Link);
                b.append_link(&mut h, name, t).unwrap();
            } else if let Some(t) = what.strip_prefix("->") {
                h.set_entry_type(tar::EntryType::Symlink);
                b.append_link(&mut h, name, t).unwrap();
            } else if what.is_empty() {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                b.append_data(&mut h, name, std::io::empty()).unwrap();
            } else {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(what.len() as u64);
                b.append_data(&mut h, name, what.as_bytes()).unwrap();
            }
        }
        b.into_inner().unwrap()
    }

    fn unpacked(tar: &[u8]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        tar::Archive::new(tar).unpack(d.path()).unwrap();
        d
    }

    #[test]
    fn another_name_of_the_hostname_inode_keeps_its_bytes_and_is_not_linked_to_the_placeholder() {
        use std::os::unix::fs::MetadataExt;
        // etc/hostname and etc/hosts come first (their other names sort
        // after them), so the other names are hard link entries to them.
        let input = linked(&[
            ("etc", ""),
            ("etc/hostname", "builder\n"),
            ("etc/hosts", "127.0.0.1 localhost builder\n"),
            ("etc/hosts.orig", "=etc/hosts"),
            ("etc/mailname", "=etc/hostname"),
            ("srv", ""),
            ("srv/mail", "=./etc/hostname"),
        ]);
        for chunk in [1, 100, 512, 4096, input.len()] {
            let out = filtered(&input, chunk);
            let d = unpacked(&out);
            let read = |p: &str| std::fs::read_to_string(d.path().join(p)).unwrap();
            assert_eq!(read("etc/hostname"), "LXC_NAME\n", "chunk {chunk}");
            assert!(read("etc/hosts").contains("127.0.1.1\tLXC_NAME\n"));
            assert_eq!(read("etc/mailname"), "builder\n", "chunk {chunk}");
            assert_eq!(read("srv/mail"), "builder\n");
            assert_eq!(read("etc/hosts.orig"), "127.0.0.1 localhost builder\n");
            for p in ["etc/hostname", "etc/hosts"] {
                let md = std::fs::symlink_metadata(d.path().join(p)).unwrap();
                assert!(md.is_file(), "{p}");
                assert_eq!(md.nlink(), 1, "{p} has no other name");
            }
            // The two copies of the old hostname are entries of their own.
            let names: Vec<(String, tar::EntryType)> = tar::Archive::new(&out[..])
                .entries()
                .unwrap()
                .map(|e| {
                    let e = e.unwrap();
                    (
                        e.path().unwrap().display().to_string(),
                        e.header().entry_type(),
                    )
                })
                .collect();
            assert!(
                names.iter().all(|(_, t)| *t != tar::EntryType::Link),
                "{names:?}"
            );
        }
    }

    #[test]
    fn a_symlinked_hostname_becomes_a_file_and_its_target_stays() {
        let input = linked(&[
            ("etc", ""),
            ("etc/hostname", "->../srv/name"),
            ("etc/hosts", "->/srv/hosts"),
            ("srv", ""),
            ("srv/hosts", "127.0.0.1 localhost\n"),
            ("srv/name", "real\n"),
        ]);
        let d = unpacked(&filtered(&input, 700));
        let md = std::fs::symlink_metadata(d.path().join("etc/hostname")).unwrap();
        assert!(md.is_file());
        let read = |p: &str| std::fs::read_to_string(d.path().join(p)).unwrap();
        assert_eq!(read("etc/hostname"), "LXC_NAME\n");
        assert_eq!(read("srv/name"), "real\n");
        assert_eq!(read("srv/hosts"), "127.0.0.1 localhost\n");
    }

    #[test]
    fn a_hard_link_to_a_replaced_symlink_is_refused_in_words() {
        let input = linked(&[
            ("etc/hostname", "->name"),
            ("etc/mailname", "=etc/hostname"),
        ]);
        let mut f = PlaceholderFilter::new(Vec::new(), 0);
        let e = f.write_all(&input).unwrap_err().to_string();
        assert!(
            e.contains("etc/mailname is a hard link to etc/hostname"),
            "{e}"
        );
    }

    #[test]
    fn filling_the_name_replaces_the_file_and_never_writes_through_its_other_names() {
        use std::os::unix::fs::MetadataExt;
        let d = tempfile::tempdir().unwrap();
        let etc = d.path().join("etc");
        std::fs::create_dir_all(d.path().join("srv")).unwrap();
        std::fs::create_dir(&etc).unwrap();
        std::fs::write(etc.join("hostname"), "LXC_NAME\n").unwrap();
        std::fs::hard_link(etc.join("hostname"), etc.join("mailname")).unwrap();
        std::fs::write(d.path().join("srv/hosts"), "127.0.1.1 LXC_NAME\n").unwrap();
        std::os::unix::fs::symlink("../srv/hosts", etc.join("hosts")).unwrap();
        fill_name(d.path(), "web1").unwrap();
        let read = |p: &str| std::fs::read_to_string(d.path().join(p)).unwrap();
        assert_eq!(read("etc/hostname"), "web1\n");
        assert_eq!(
            read("etc/mailname"),
            "LXC_NAME\n",
            "the other name is untouched"
        );
        assert_eq!(std::fs::metadata(etc.join("hostname")).unwrap().nlink(), 1);
        // A symlinked hosts file is left alone, its target too.
        assert!(std::fs::symlink_metadata(etc.join("hosts"))
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(read("srv/hosts"), "127.0.1.1 LXC_NAME\n");
    }
}
