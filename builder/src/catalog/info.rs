//! What an image is (distribution, release, architecture), read from the
//! image's own tree while it is re-encoded as the catalog's `rootfs.tar.xz`:
//! `/etc/os-release` (or `/usr/lib/os-release`) for the distribution, and the
//! ELF header of the first program in `/usr/bin` for the architecture, so an
//! image needs no side file and cannot be listed under the wrong machine.

use super::CatalogError;
use crate::image::import::sniff;
use crate::unpack::compress;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;

/// The identity of an image, as both catalog formats list it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImageInfo {
    /// `ID` of os-release: `debian`, `fedora`.
    pub os: String,
    /// `VERSION_CODENAME` (or `VERSION_ID`): `bookworm`, `44`.
    pub release: String,
    /// `PRETTY_NAME`, for titles.
    pub pretty: String,
    /// Debian's name of the architecture: `amd64`, `arm64`, ...
    pub arch: String,
}

/// Debian's architecture name (what simplestreams and lxc-download list)
/// and the kernel's (`uname -m`, what incus's metadata.yaml and LXC's
/// `lxc.arch` take) for an ELF `e_machine` and class.
pub fn arch_names(machine: u16, is64: bool) -> Option<(&'static str, &'static str)> {
    Some(match (machine, is64) {
        (62, true) => ("amd64", "x86_64"),
        (3, false) => ("i386", "i686"),
        (183, true) => ("arm64", "aarch64"),
        (40, false) => ("armhf", "armv7l"),
        (21, true) => ("ppc64el", "ppc64le"),
        (22, true) => ("s390x", "s390x"),
        (243, true) => ("riscv64", "riscv64"),
        _ => return None,
    })
}

/// The kernel's name of a Debian architecture name.
pub fn kernel_arch(debian: &str) -> Option<&'static str> {
    [
        (62, true),
        (3, false),
        (183, true),
        (40, false),
        (21, true),
        (22, true),
        (243, true),
    ]
    .into_iter()
    .filter_map(|(m, c)| arch_names(m, c))
    .find(|(d, _)| *d == debian)
    .map(|(_, k)| k)
}

/// Passes every byte read through to a writer as well.
struct Tee<R, W> {
    inner: R,
    copy: W,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// A name in the archive without its leading `./` or `/`.
fn plain(name: &[u8]) -> &[u8] {
    let mut s = name;
    while let Some(r) = s.strip_prefix(b"./").or_else(|| s.strip_prefix(b"/")) {
        s = r;
    }
    s
}

/// Reads the image archive `image` (tar, tar.zst, tar.xz, tar.gz), writing
/// its tar stream unchanged to `tar_out`, and says what it is.
pub fn read_image<W: Write>(image: &Path, tar_out: W) -> Result<ImageInfo, CatalogError> {
    let err = |m: String| CatalogError(format!("{}: {m}", image.display()));
    let f = File::open(image).map_err(|e| err(e.to_string()))?;
    let mut r = BufReader::with_capacity(1 << 20, f);
    let head = r.fill_buf().map_err(|e| err(e.to_string()))?.to_vec();
    if head.is_empty() {
        return Err(err("empty file, not an image archive".into()));
    }
    let dec = compress::decoder(sniff(&head), r).map_err(|e| err(e.to_string()))?;
    let mut tee = Tee {
        inner: dec,
        copy: tar_out,
    };
    let mut etc: Option<Vec<u8>> = None;
    let mut usr: Option<Vec<u8>> = None;
    let mut elf: Option<(u16, bool)> = None;
    let mut entries = 0u64;
    {
        let mut ar = tar::Archive::new(&mut tee);
        let it = ar
            .entries()
            .map_err(|e| err(format!("not a tar archive: {e}")))?;
        for e in it {
            let mut e = e.map_err(|e| err(format!("unreadable (truncated?): {e}")))?;
            entries += 1;
            if e.header().entry_type() != tar::EntryType::Regular {
                continue;
            }
            let name = e.path_bytes().into_owned();
            let name = plain(&name);
            let small = e.header().size().unwrap_or(u64::MAX) <= 64 << 10;
            if name == b"etc/os-release" && small {
                let mut b = Vec::new();
                e.read_to_end(&mut b).map_err(|e| err(e.to_string()))?;
                etc = Some(b);
            } else if name == b"usr/lib/os-release" && small {
                let mut b = Vec::new();
                e.read_to_end(&mut b).map_err(|e| err(e.to_string()))?;
                usr = Some(b);
            } else if elf.is_none() && (name.starts_with(b"usr/bin/") || name.starts_with(b"bin/"))
            {
                let mut h = [0u8; 20];
                if e.read_exact(&mut h).is_ok() && h.starts_with(b"\x7fELF") {
                    let machine = if h[5] == 2 {
                        u16::from_be_bytes([h[18], h[19]])
                    } else {
                        u16::from_le_bytes([h[18], h[19]])
                    };
                    elf = Some((machine, h[4] == 2));
                }
            }
        }
    }
    // The end-of-archive blocks and any padding after them.
    io::copy(&mut tee, &mut io::sink()).map_err(|e| err(format!("unreadable: {e}")))?;
    if entries == 0 {
        return Err(err(
            "holds no entries (not a tar archive, or truncated)".into()
        ));
    }
    let text = etc.or(usr).ok_or_else(|| {
        err(
            "has no /etc/os-release or /usr/lib/os-release, so its distribution is unknown \
             (catalog images are whole root filesystems, as `vbuild build --output` writes)"
                .into(),
        )
    })?;
    let text = String::from_utf8_lossy(&text);
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
            .map(|v| v.trim().trim_matches('"').to_string())
            .filter(|v| !v.is_empty())
    };
    let os = get("ID").ok_or_else(|| err("its os-release has no ID".into()))?;
    let release = get("VERSION_CODENAME")
        .or_else(|| get("VERSION_ID"))
        .ok_or_else(|| err("its os-release has neither VERSION_CODENAME nor VERSION_ID".into()))?;
    let (machine, is64) =
        elf.ok_or_else(|| err("has no program in /usr/bin to tell its architecture by".into()))?;
    let (arch, _) = arch_names(machine, is64).ok_or_else(|| {
        err(format!(
            "its programs are for ELF machine {machine}, which vbuild does not know"
        ))
    })?;
    for (what, v) in [("ID", &os), ("release", &release)] {
        if !valid_word(v) {
            return Err(err(format!(
                "its os-release {what} {v:?} is not a plain word (letters, digits, '.', '_', '-')"
            )));
        }
    }
    Ok(ImageInfo {
        pretty: get("PRETTY_NAME").unwrap_or_else(|| format!("{os} {release}")),
        os,
        release,
        arch: arch.to_string(),
    })
}

/// Whether `s` can be a path component and an index field (no `;`, `/`, `:`).
pub fn valid_word(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}
