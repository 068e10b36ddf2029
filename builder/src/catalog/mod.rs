//! Catalogs of images that other hosts pull: `vbuild catalog add` writes an
//! image into a directory of static files in the formats real clients read
//! (Incus simplestreams, the LXC download index) plus vbuild's own signed
//! manifest, which `vbuild pull` checks against a pinned key.
//!
//! Layout of a catalog directory:
//! - `images/OS/RELEASE/ARCH/VARIANT/SERIAL/{rootfs.tar.xz,rootfs.squashfs,incus.tar.xz,meta.tar.xz}`
//! - `streams/v1/index.json`, `streams/v1/images.json` (simplestreams)
//! - `meta/1.0/index-system`, `meta/1.0/index-user` (LXC download)
//! - `vbuild-catalog.json` and its detached signature `vbuild-catalog.json.asc`
//!
//! Every file is written under a temporary name and renamed into place, the
//! image's own files first and the indices last, so a reader never sees an
//! index naming a file that is not complete.

pub mod add;
pub mod encode;
pub mod hostname;
pub mod info;
pub mod lxc;
pub mod pull;
pub mod serve;
pub mod sign;
pub mod simplestreams;
pub mod split;

use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Why a catalog operation failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CatalogError(pub String);

impl CatalogError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, e: impl std::fmt::Display) -> CatalogError {
        CatalogError(format!("{}: {e}", path.display()))
    }
}

/// Writes `bytes` to `path` atomically (a temporary sibling renamed over it).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CatalogError> {
    let tmp = crate::image::TempOutput::new(crate::image::temp_sibling(path));
    let mut f = std::fs::File::options()
        .write(true)
        .create_new(true)
        .open(tmp.path())
        .map_err(|e| CatalogError::io(tmp.path(), e))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| CatalogError::io(tmp.path(), e))?;
    tmp.commit(path).map_err(|e| CatalogError::io(path, e))
}

/// Hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

/// Hex sha256 of files read one after another (incus's combined fingerprint).
pub fn sha256_files(paths: &[&Path]) -> io::Result<String> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for p in paths {
        io::copy(&mut std::fs::File::open(p)?, &mut h)?;
    }
    Ok(hex::encode(h.finalize()))
}

/// The path of a catalog file, relative to the catalog root, made absolute.
pub fn at(dir: &Path, rel: &str) -> PathBuf {
    dir.join(rel.trim_start_matches('/'))
}

/// A small archive (a metadata tarball) as `.tar.xz` bytes: `files` are
/// `(name, content)`, a name ending in `/` is a directory; owners root,
/// times `mtime`, so the same inputs give the same bytes.
pub fn small_tar_xz(files: &[(&str, &[u8])], mtime: i64) -> io::Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(mtime.max(0) as u64);
        if name.ends_with('/') {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            b.append_data(&mut h, name, io::empty())?;
        } else {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            b.append_data(&mut h, name, *data)?;
        }
    }
    let tar = b.into_inner()?;
    let mut x = xz2::write::XzEncoder::new(Vec::new(), 6);
    x.write_all(&tar)?;
    x.finish()
}
