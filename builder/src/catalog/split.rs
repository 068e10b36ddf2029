//! `--format incus` and `--format lxc` of `build` and `export`: an image as
//! the two files each tool imports without a catalog, the pairs that
//! distrobuilder's `build-incus` and `build-lxc` write:
//!
//! - incus: `incus.tar.xz` (metadata.yaml and the hostname/hosts templates)
//!   and `rootfs.squashfs`, for
//!   `incus image import incus.tar.xz rootfs.squashfs --alias NAME`;
//! - LXC: `meta.tar.xz` (`config`, `templates`) and `rootfs.tar.xz`, for
//!   `lxc-create -t local -- --metadata meta.tar.xz --fstree rootfs.tar.xz`.
//!
//! The files are the ones `catalog add` publishes, made by the same code,
//! so an image imported by hand and one pulled from a catalog are the same.

use super::add::{serial_of, AddedFile};
use super::encode::{self, Encodings, Squashfs};
use super::info::ImageInfo;
use super::{lxc, simplestreams as ss, CatalogError};
use std::path::{Path, PathBuf};

/// Which pair of files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// `incus.tar.xz` + `rootfs.squashfs`.
    Incus,
    /// `meta.tar.xz` + `rootfs.tar.xz`.
    Lxc,
}

/// What `write_split` made.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SplitReport {
    /// The directory holding the two files.
    pub output: PathBuf,
    /// What the image is.
    pub image: ImageInfo,
    /// The two files, metadata first, with sizes and hashes.
    pub files: Vec<AddedFile>,
    /// incus's fingerprint of the pair (sha256 of the metadata bytes then
    /// the rootfs bytes), what `incus image list` shows.
    pub fingerprint: String,
}

/// Writes the pair `kind` for the image archive `image` (a tar stream, any
/// compression) into the new directory `output`, entry times clamped to
/// `created`; an error leaves no `output`.
pub fn write_split(
    image: &Path,
    output: &Path,
    kind: Split,
    created: i64,
) -> Result<SplitReport, CatalogError> {
    let stage = crate::image::TempOutput::new(crate::image::temp_sibling(output));
    std::fs::create_dir(stage.path()).map_err(|e| CatalogError::io(stage.path(), e))?;
    let enc = encode::encode(
        image,
        stage.path(),
        Encodings {
            xz: kind == Split::Lxc,
            zst: false,
            squashfs: if kind == Split::Incus {
                Squashfs::Required
            } else {
                Squashfs::No
            },
        },
        created,
    )?;
    let serial = serial_of(created);
    let (meta_name, meta, rootfs) = match kind {
        Split::Incus => (
            "incus.tar.xz",
            ss::metadata_tarball(&enc.info, "default", &serial, created),
            enc.squashfs,
        ),
        Split::Lxc => (
            "meta.tar.xz",
            lxc::meta_tarball(&enc.info, &serial, created),
            enc.xz,
        ),
    };
    let meta = meta.map_err(|e| CatalogError(format!("{meta_name}: {e}")))?;
    let rootfs = rootfs.ok_or_else(|| CatalogError("the rootfs was not written".into()))?;
    let meta_path = stage.path().join(meta_name);
    std::fs::write(&meta_path, &meta).map_err(|e| CatalogError::io(&meta_path, e))?;
    let (sha, size) =
        crate::image::sha256_file(&rootfs).map_err(|e| CatalogError::io(&rootfs, e))?;
    let fingerprint = super::sha256_files(&[&meta_path, &rootfs])
        .map_err(|e| CatalogError::io(stage.path(), e))?;
    let name = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let files = vec![
        AddedFile {
            path: meta_name.to_string(),
            size: meta.len() as u64,
            sha256: super::sha256_hex(&meta),
        },
        AddedFile {
            path: name(&rootfs),
            size,
            sha256: sha,
        },
    ];
    if crate::guests::interrupted() {
        return Err(CatalogError("interrupted; nothing was kept".into()));
    }
    let dest = crate::image::strip_slash(output);
    stage
        .commit(&dest)
        .map_err(|e| CatalogError::io(&dest, e))?;
    Ok(SplitReport {
        output: dest,
        image: enc.info,
        files,
        fingerprint,
    })
}
