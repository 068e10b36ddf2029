//! `vbuild import FILE --name NAME`: an image archive becomes a guest.
//!
//! The archive is untrusted. Its compression is told from its first bytes
//! (zstd, xz, gzip or a plain tar), and every entry goes through the
//! root-confined writer (`unpack::safe`), so `..`, absolute names, symlinks
//! and hardlinks pointing out, and paths through a symlink the archive
//! planted never reach outside the new rootfs. The guest is reserved first
//! (`GuestSlot`) and only becomes a guest when its `guest.toml` is written
//! last: any error, a truncated archive or Ctrl-C leaves nothing.

use crate::guests::{interrupted, GuestSlot};
use crate::unpack::{compress, safe, Compression, TarReader};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use vbuild_kernel::fsroot::Root;
use vbuild_runtime::config::{GuestConfig, InitConfig, NetConfig};
use vbuild_runtime::limits::Limits;
use vbuild_runtime::paths::Layout;

/// What an import made.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImportReport {
    /// The new guest.
    pub name: String,
    /// `debian/bookworm`, from the tree's `/etc/os-release`.
    pub distro: String,
    /// Entries written.
    pub entries: usize,
    /// Bytes of regular files.
    pub bytes: u64,
    /// The rootfs.
    pub rootfs: PathBuf,
}

/// Why an import failed (nothing of the guest is left).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The guest could not be reserved.
    #[error(transparent)]
    Slot(#[from] crate::guests::SlotError),
    /// The archive could not be read.
    #[error("{path}: {message}")]
    Archive {
        /// The archive.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// An entry was refused or could not be written.
    #[error("{path}: {source}")]
    Entry {
        /// The archive.
        path: PathBuf,
        /// The entry and why.
        source: safe::EntryError,
    },
    /// The store could not be written.
    #[error("{0}")]
    Store(String),
    /// Ctrl-C.
    #[error("interrupted; nothing was kept")]
    Interrupted,
}

/// The compression of a stream, from its magic bytes.
pub fn sniff(head: &[u8]) -> Compression {
    if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Compression::Xz
    } else if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else {
        Compression::None
    }
}

/// Unpacks the archive `file` into `rootfs` (an empty directory), confined.
pub fn unpack_archive(file: &Path, rootfs: &Path) -> Result<safe::Extracted, ImportError> {
    let arch = |message: String| ImportError::Archive {
        path: file.to_path_buf(),
        message,
    };
    let f = File::open(file).map_err(|e| arch(e.to_string()))?;
    let mut r = BufReader::with_capacity(1 << 20, f);
    let head = {
        use std::io::BufRead;
        r.fill_buf().map_err(|e| arch(e.to_string()))?.to_vec()
    };
    if head.is_empty() {
        return Err(arch("empty file, not an image archive".into()));
    }
    let c = sniff(&head);
    let dec = compress::decoder(c, r).map_err(|e| arch(e.to_string()))?;
    let mut reader = TarReader::new(Checked { inner: dec });
    let root = Root::open(rootfs).map_err(|e| arch(e.to_string()))?;
    let none = std::collections::HashSet::new();
    let out = safe::extract(
        &root,
        &mut reader,
        &safe::ExtractOpts {
            conffiles: &none,
            compute_md5: false,
            devices: true,
        },
    )
    .map_err(|source| ImportError::Entry {
        path: file.to_path_buf(),
        source,
    })?;
    if out.files.is_empty() {
        return Err(arch(
            "holds no entries (not a tar archive, or truncated)".into(),
        ));
    }
    Ok(out)
}

/// A decompressed stream that stops at Ctrl-C.
struct Checked<R> {
    inner: R,
}

impl<R: Read> Read for Checked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if interrupted() {
            return Err(std::io::Error::other("interrupted"));
        }
        self.inner.read(buf)
    }
}

/// `ID` and `VERSION_CODENAME` of the tree's os-release, read inside it.
pub(crate) fn os_release(rootfs: &Path) -> (String, String) {
    let text = Root::open(rootfs)
        .ok()
        .and_then(|r| {
            r.read_regular(Path::new("etc/os-release"), 64 << 10)
                .or_else(|_| r.read_regular(Path::new("usr/lib/os-release"), 64 << 10))
                .ok()
        })
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
            .map(|v| v.trim().trim_matches('"').to_string())
            .filter(|v| !v.is_empty())
    };
    (
        get("ID").unwrap_or_else(|| "unknown".into()),
        get("VERSION_CODENAME")
            .or_else(|| get("VERSION_ID"))
            .unwrap_or_else(|| "unknown".into()),
    )
}

/// Imports `file` as the new guest `name` under `layout`, recording `net`.
pub fn import(
    layout: &Layout,
    name: &str,
    file: &Path,
    net: NetConfig,
) -> Result<ImportReport, ImportError> {
    if !file.is_file() {
        return Err(ImportError::Archive {
            path: file.to_path_buf(),
            message: "no such file (give an image archive: .tar, .tar.zst, .tar.xz)".into(),
        });
    }
    let slot = GuestSlot::reserve(layout, name)?;
    let store = |e: &dyn std::fmt::Display| ImportError::Store(format!("{name}: {e}"));
    vbuild_runtime::disk::create(layout, name, None).map_err(|e| store(&e))?;
    let rootfs = layout.guest_rootfs(name);
    let out = unpack_archive(file, &rootfs)?;
    if interrupted() {
        return Err(ImportError::Interrupted);
    }
    // A catalog's rootfs holds LXC's placeholder for the container's name.
    crate::catalog::hostname::fill_name(&rootfs, name).map_err(|e| store(&e))?;
    let distro = save_config(layout, slot, &rootfs, net, None)?;
    Ok(ImportReport {
        name: name.to_string(),
        distro,
        entries: out.files.len(),
        bytes: out.bytes,
        rootfs,
    })
}

/// Writes the config of the guest `slot` whose tree (or template) is
/// `tree`, an overlay of `template` when given, and commits the slot; returns
/// `ID/RELEASE` from the tree's os-release.
pub(crate) fn save_config(
    layout: &Layout,
    slot: GuestSlot,
    tree: &Path,
    net: NetConfig,
    template: Option<String>,
) -> Result<String, ImportError> {
    let name = slot.name().as_str().to_string();
    let (id, release) = os_release(tree);
    let init = if id == "debian" {
        crate::distro::debian::init::detect_init(tree)
    } else {
        InitConfig::default()
    };
    let config = GuestConfig {
        name: name.clone(),
        distro: id.clone(),
        release: release.clone(),
        variant: "imported".into(),
        created: SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        init,
        limits: Limits::default(),
        net,
        privileged: false,
        ids: None,
        template,
        autostart: false,
        restart: Default::default(),
    };
    config
        .save(&layout.guest_config(&name))
        .map_err(|e| ImportError::Store(format!("{name}: {e}")))?;
    if interrupted() {
        return Err(ImportError::Interrupted);
    }
    slot.commit();
    Ok(format!("{id}/{release}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_is_told_by_magic_not_by_name() {
        assert_eq!(sniff(&[0x28, 0xb5, 0x2f, 0xfd, 0]), Compression::Zstd);
        assert_eq!(sniff(b"\xfd7zXZ\0rest"), Compression::Xz);
        assert_eq!(sniff(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(sniff(b"./\0\0\0"), Compression::None);
    }
}
