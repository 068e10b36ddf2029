//! `vbuild catalog add DIR IMAGE`: one image becomes a new version in both
//! catalog formats, and the manifest is rewritten (and signed with
//! `--sign`). The image's files are staged in a hidden directory of the
//! catalog and renamed into place before any index names them; an error
//! leaves the catalog as it was.

use super::encode::{self, Encodings, Squashfs};
use super::info::{self, ImageInfo};
use super::sign::{self, Manifest, MANIFEST, SIGNATURE};
use super::simplestreams::{self as ss, Item};
use super::{at, lxc, write_atomic, CatalogError};
use crate::image::TempOutput;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// How an image is added.
#[derive(Debug, Clone)]
pub struct AddOptions {
    /// The variant it is listed under (`default`).
    pub variant: String,
    /// Its creation time, seconds since the epoch: the serial is made of it.
    pub created: i64,
    /// The armored secret key that signs the manifest.
    pub sign_key: Option<PathBuf>,
}

/// One file the catalog gained.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AddedFile {
    /// From the catalog root.
    pub path: String,
    /// Bytes.
    pub size: u64,
    /// Hex sha256.
    pub sha256: String,
}

/// What `catalog add` did, for the CLI and `--json`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AddReport {
    /// The catalog.
    pub catalog: PathBuf,
    /// `debian:bookworm:default:amd64`.
    pub product: String,
    /// What the image is.
    pub image: ImageInfo,
    /// Its variant.
    pub variant: String,
    /// `YYYYMMDD_HHMM`.
    pub serial: String,
    /// The incus fingerprint of the tarball image (sha256 of metadata then
    /// rootfs.tar.xz: `combined_rootxz_sha256`).
    pub fingerprint: String,
    /// The same of the squashfs image (`combined_squashfs_sha256`), which
    /// incus prefers; `None` when tar2sqfs is not installed.
    pub fingerprint_squashfs: Option<String>,
    /// The image files written.
    pub files: Vec<AddedFile>,
    /// The signing key's fingerprint, when signed.
    pub signed_by: Option<String>,
}

/// The serial of a creation time: `YYYYMMDD_HHMM` in UTC.
pub fn serial_of(created: i64) -> String {
    chrono::DateTime::from_timestamp(created, 0)
        .unwrap_or_default()
        .format("%Y%m%d_%H%M")
        .to_string()
}

/// Holds the catalog's lock file (one `add` at a time).
struct CatalogLock(#[allow(dead_code)] File);

fn lock(dir: &Path) -> Result<CatalogLock, CatalogError> {
    let p = dir.join(".vbuild-catalog.lock");
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&p)
        .map_err(|e| CatalogError::io(&p, e))?;
    // SAFETY: flock on a descriptor this function owns.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(CatalogError::io(&p, std::io::Error::last_os_error()));
    }
    Ok(CatalogLock(f))
}

/// Reads a catalog file that may not exist yet.
fn read_opt(path: &Path) -> Result<Option<Vec<u8>>, CatalogError> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CatalogError::io(path, e)),
    }
}

/// Adds `image` to the catalog `dir` (created when missing, and removed
/// again when that first add fails).
pub fn add(dir: &Path, image: &Path, opts: &AddOptions) -> Result<AddReport, CatalogError> {
    let fresh = !dir.exists();
    let r = add_to(dir, image, opts);
    if r.is_err() && fresh && dir.is_dir() {
        let _ = std::fs::remove_dir_all(dir);
    }
    r
}

fn add_to(dir: &Path, image: &Path, opts: &AddOptions) -> Result<AddReport, CatalogError> {
    if !info::valid_word(&opts.variant) {
        return Err(CatalogError(format!(
            "--variant {:?}: use letters, digits, '.', '_' or '-'",
            opts.variant
        )));
    }
    if !image.is_file() {
        return Err(CatalogError(format!(
            "{}: no such file (give an image archive, as `vbuild build --output bookworm.tar.zst` writes)",
            image.display()
        )));
    }
    let key = opts
        .sign_key
        .as_deref()
        .map(sign::load_secret_key)
        .transpose()?;
    if !dir.is_dir() {
        std::fs::create_dir(dir).map_err(|e| {
            CatalogError(format!(
                "{}: cannot create the catalog directory ({e})",
                dir.display()
            ))
        })?;
    }
    let _lock = lock(dir)?;
    if key.is_none() && at(dir, SIGNATURE).exists() {
        return Err(CatalogError(format!(
            "{}: this catalog is signed; give --sign KEY.asc so its signature stays valid",
            dir.display()
        )));
    }
    let mut images = ss::parse_images(read_opt(&at(dir, ss::IMAGES))?.as_deref())?;
    let serial = serial_of(opts.created);

    // Stage the image's files in a hidden directory of the catalog.
    let stage = TempOutput::new(dir.join(format!(".vbuild-add.{}", std::process::id())));
    std::fs::create_dir(stage.path()).map_err(|e| CatalogError::io(stage.path(), e))?;
    // xz for incus and LXC, zstd for `vbuild pull` (it unpacks about ten
    // times faster), and the squashfs incus prefers when tar2sqfs is here.
    let enc = encode::encode(
        image,
        stage.path(),
        Encodings {
            xz: true,
            zst: true,
            squashfs: Squashfs::IfInstalled,
        },
        opts.created,
    )?;
    let info = enc.info.clone();
    let rootfs_tmp = stage.path().join("rootfs.tar.xz");
    let zst_tmp = stage.path().join("rootfs.tar.zst");
    let squashfs_tmp = stage.path().join("rootfs.squashfs");
    let with_squashfs = enc.squashfs.is_some();
    if crate::guests::interrupted() {
        return Err(CatalogError("interrupted; the catalog is unchanged".into()));
    }
    let product = ss::product_key(&info, &opts.variant);
    let rel_dir = format!(
        "images/{}/{}/{}/{}/{serial}",
        info.os, info.release, info.arch, opts.variant
    );
    let final_dir = at(dir, &rel_dir);
    if final_dir.exists()
        || images["products"][&product]["versions"]
            .get(&serial)
            .is_some()
    {
        return Err(CatalogError(format!(
            "{product} already has version {serial} (set SOURCE_DATE_EPOCH to another time \
             for a new version)"
        )));
    }
    let meta = ss::metadata_tarball(&info, &opts.variant, &serial, opts.created)
        .map_err(|e| CatalogError(format!("incus.tar.xz: {e}")))?;
    let lxc_meta = lxc::meta_tarball(&info, &serial, opts.created)
        .map_err(|e| CatalogError(format!("meta.tar.xz: {e}")))?;
    for (name, bytes) in [("incus.tar.xz", &meta), ("meta.tar.xz", &lxc_meta)] {
        let p = stage.path().join(name);
        std::fs::write(&p, bytes).map_err(|e| CatalogError::io(&p, e))?;
    }
    let (rootfs_sha, rootfs_size) =
        crate::image::sha256_file(&rootfs_tmp).map_err(|e| CatalogError::io(&rootfs_tmp, e))?;
    let combined = super::sha256_files(&[&stage.path().join("incus.tar.xz"), &rootfs_tmp])
        .map_err(|e| CatalogError::io(stage.path(), e))?;
    let (zst_sha, zst_size) =
        crate::image::sha256_file(&zst_tmp).map_err(|e| CatalogError::io(&zst_tmp, e))?;
    let squashfs = if with_squashfs {
        let (sha, size) = crate::image::sha256_file(&squashfs_tmp)
            .map_err(|e| CatalogError::io(&squashfs_tmp, e))?;
        let combined = super::sha256_files(&[&stage.path().join("incus.tar.xz"), &squashfs_tmp])
            .map_err(|e| CatalogError::io(stage.path(), e))?;
        Some((
            AddedFile {
                path: format!("{rel_dir}/rootfs.squashfs"),
                size,
                sha256: sha,
            },
            combined,
        ))
    } else {
        None
    };
    let mut files = vec![
        AddedFile {
            path: format!("{rel_dir}/incus.tar.xz"),
            size: meta.len() as u64,
            sha256: super::sha256_hex(&meta),
        },
        AddedFile {
            path: format!("{rel_dir}/rootfs.tar.xz"),
            size: rootfs_size,
            sha256: rootfs_sha,
        },
        AddedFile {
            path: format!("{rel_dir}/meta.tar.xz"),
            size: lxc_meta.len() as u64,
            sha256: super::sha256_hex(&lxc_meta),
        },
        AddedFile {
            path: format!("{rel_dir}/rootfs.tar.zst"),
            size: zst_size,
            sha256: zst_sha,
        },
    ];
    if let Some((f, _)) = &squashfs {
        files.push(f.clone());
    }
    let item = |f: &AddedFile| Item {
        path: f.path.clone(),
        size: f.size,
        sha256: f.sha256.clone(),
    };
    ss::add_version(
        &mut images,
        &info,
        &opts.variant,
        &serial,
        &item(&files[0]),
        (&item(&files[1]), &combined, &item(&files[3])),
        squashfs.as_ref().map(|(f, c)| (item(f), c.as_str())),
    )?;

    // The indices as they will be, checked and signed before anything moves.
    let images_bytes = json_bytes(&images);
    let index_bytes = json_bytes(&ss::index_for(&images));
    let old_lxc = read_opt(&at(dir, lxc::INDEX_SYSTEM))?.unwrap_or_default();
    let lxc_index = lxc::add_line(
        &String::from_utf8_lossy(&old_lxc),
        &lxc::index_line(&info, &opts.variant, &serial, &rel_dir),
    );
    let mut manifest = match read_opt(&at(dir, MANIFEST))? {
        Some(b) => Manifest::parse(&b)?,
        None => Manifest::new(),
    };
    for f in &files {
        manifest.files.insert(
            f.path.clone(),
            sign::FileSum {
                sha256: f.sha256.clone(),
                size: f.size,
            },
        );
    }
    manifest.record(ss::IMAGES, &images_bytes);
    manifest.record(ss::INDEX, &index_bytes);
    manifest.record(lxc::INDEX_SYSTEM, lxc_index.as_bytes());
    manifest.record(lxc::INDEX_USER, lxc_index.as_bytes());
    let manifest_bytes = manifest.to_bytes();
    let signature = match (&key, &opts.sign_key) {
        (Some(k), Some(p)) => Some(sign::sign(k, &manifest_bytes, p)?),
        _ => None,
    };

    // Files first, then the indices that name them.
    let parent = final_dir.parent().unwrap_or(dir);
    std::fs::create_dir_all(parent).map_err(|e| CatalogError::io(parent, e))?;
    stage
        .commit(&final_dir)
        .map_err(|e| CatalogError::io(&final_dir, e))?;
    let indices = (|| {
        for d in ["streams/v1", "meta/1.0"] {
            let p = at(dir, d);
            std::fs::create_dir_all(&p).map_err(|e| CatalogError::io(&p, e))?;
        }
        write_atomic(&at(dir, ss::IMAGES), &images_bytes)?;
        write_atomic(&at(dir, ss::INDEX), &index_bytes)?;
        write_atomic(&at(dir, lxc::INDEX_SYSTEM), lxc_index.as_bytes())?;
        write_atomic(&at(dir, lxc::INDEX_USER), lxc_index.as_bytes())?;
        write_atomic(&at(dir, MANIFEST), &manifest_bytes)?;
        if let Some(s) = &signature {
            write_atomic(&at(dir, SIGNATURE), s.as_bytes())?;
        }
        Ok(())
    })();
    if let Err(e) = indices {
        let _ = std::fs::remove_dir_all(&final_dir);
        return Err(e);
    }
    Ok(AddReport {
        catalog: dir.to_path_buf(),
        product,
        image: info,
        variant: opts.variant.clone(),
        serial,
        fingerprint: combined,
        fingerprint_squashfs: squashfs.map(|(_, c)| c),
        files,
        signed_by: key.as_ref().map(sign::signing_fingerprint),
    })
}

/// Pretty JSON with a final newline.
fn json_bytes(v: &serde_json::Value) -> Vec<u8> {
    let mut b = serde_json::to_vec_pretty(v).unwrap_or_default();
    b.push(b'\n');
    b
}
