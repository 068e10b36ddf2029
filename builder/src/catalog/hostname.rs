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
//! long names, device nodes) passes through byte for byte.

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
    },
    Done,
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
        let keep = !REPLACED.contains(&plain(&name));
        if keep {
            self.out.write_all(&self.pending)?;
            self.out.write_all(&h)?;
        }
        self.pending.clear();
        self.state = if padded == 0 {
            State::Header
        } else {
            State::Data { left: padded, keep }
        };
        Ok(())
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
                b'x' => {
                    if let Some(p) = pax_path(data) {
                        self.pending_path = Some(p);
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
                State::Data { left, keep } => {
                    let n = (*left).min(input.len() as u64) as usize;
                    if *keep {
                        self.out.write_all(&input[..n])?;
                    }
                    *left -= n as u64;
                    if *left == 0 {
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

/// The `path` record of pax extension data (`LEN key=value\n` records).
fn pax_path(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut found = None;
    while !data.is_empty() {
        let sp = data.iter().position(|&b| b == b' ')?;
        let len: usize = std::str::from_utf8(&data[..sp]).ok()?.parse().ok()?;
        if len <= sp || len > data.len() {
            return found;
        }
        let rec = &data[sp + 1..len];
        let rec = rec.strip_suffix(b"\n").unwrap_or(rec);
        if let Some(v) = rec.strip_prefix(b"path=") {
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
}
