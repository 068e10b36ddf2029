//! `vbuild pull URL OS/RELEASE --name N [--key catalog.asc]`: one image from
//! a catalog becomes a guest, verified before anything is unpacked.
//!
//! With `--key`, trust comes from the catalog's signed manifest: the
//! signature must verify against the pinned key, `images.json` must be the
//! file the manifest lists, and the image must be the size and sha256 both
//! list; the server's certificate is then not needed (and not checked).
//! Without `--key` the certificate must verify (system roots, or
//! `SSL_CERT_FILE`) and `images.json`'s own sizes and hashes are checked.
//! The image is downloaded into an unnamed (`O_TMPFILE`) file of the state
//! root, so nothing is left whatever happens, even SIGKILL (a hidden named
//! file, removed on every error, where the filesystem cannot), and unpacked
//! once as the image's template (`image::pulled`): the guest is an overlay
//! of it, and a later pull of the same image downloads nothing. With
//! `--copy` it is imported exactly like `vbuild import` instead.

use super::sign::{self, Manifest, MANIFEST, SIGNATURE};
use super::simplestreams::{self as ss};
use super::CatalogError;
use crate::image::import::{self, ImportError};
use crate::image::{pulled, TempOutput};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;
use vbuild_cache::templates::TemplateStore;
use vbuild_runtime::config::NetConfig;
use vbuild_runtime::paths::Layout;

/// What to pull.
#[derive(Debug, Clone)]
pub struct PullRequest {
    /// The catalog's base URL (`https://host:port` or with a path).
    pub url: String,
    /// `OS/RELEASE` or `OS/RELEASE/VARIANT`.
    pub image: String,
    /// The new guest.
    pub name: String,
    /// The pinned public key (armored) and how to show it.
    pub key: Option<PathBuf>,
    /// The architecture to pull (this host's by default).
    pub arch: String,
    /// A full tree of the guest's own instead of an overlay of the image's
    /// template.
    pub copy: bool,
}

/// What a pull made.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PullReport {
    /// The catalog product pulled.
    pub product: String,
    /// Its version.
    pub serial: String,
    /// The item downloaded: `root.tar.zst` (vbuild's own) or `root.tar.xz`.
    pub item: String,
    /// Bytes downloaded (none when the image's template was there).
    pub bytes: u64,
    /// The template the guest is an overlay of (the image's sha256);
    /// `None` with `--copy`.
    pub template: Option<String>,
    /// Whether an earlier pull had made that template (nothing downloaded).
    pub template_reused: bool,
    /// sha256 of the rootfs archive.
    pub sha256: String,
    /// Whether the catalog signature was checked (and by which key).
    pub verified_by: Option<String>,
    /// The import.
    pub guest: import::ImportReport,
}

/// An HTTPS client: certificate checked unless trust comes from a key.
fn client(verify_cert: bool) -> Result<reqwest::blocking::Client, CatalogError> {
    reqwest::blocking::Client::builder()
        .connect_timeout(Duration::from_secs(15))
        .timeout(None)
        .danger_accept_invalid_certs(!verify_cert)
        .user_agent(concat!("vbuild/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| CatalogError(format!("HTTPS client: {e}")))
}

/// `base` + `rel` (a path inside the catalog, checked).
fn url_of(base: &str, rel: &str) -> Result<String, CatalogError> {
    let bad = rel.starts_with('/')
        || rel.split('/').any(|p| p == ".." || p.is_empty())
        || rel.contains(['?', '#', '\\']);
    if bad {
        return Err(CatalogError(format!(
            "the catalog names the file {rel:?}, which is not a plain path inside it \
             (a broken or hostile catalog)"
        )));
    }
    Ok(format!("{}/{rel}", base.trim_end_matches('/')))
}

/// The chain of an error, one line (reqwest hides the cause otherwise).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut c = e.source();
    while let Some(x) = c {
        let t = x.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        c = x.source();
    }
    s
}

fn get(
    c: &reqwest::blocking::Client,
    url: &str,
) -> Result<reqwest::blocking::Response, CatalogError> {
    let r = c.get(url).send().map_err(|e| {
        let msg = chain(&e);
        let hint = if msg.contains("certificate") || msg.contains("UnknownIssuer") {
            " (the server's certificate does not verify: pin the catalog's key with --key, \
             or trust its certificate with SSL_CERT_FILE=cert.pem)"
        } else {
            ""
        };
        CatalogError(format!("{url}: {msg}{hint}"))
    })?;
    if !r.status().is_success() {
        return Err(CatalogError(format!(
            "{url}: the server answered {}",
            r.status()
        )));
    }
    Ok(r)
}

/// A small index file, at most `max` bytes.
fn get_small(c: &reqwest::blocking::Client, url: &str, max: u64) -> Result<Vec<u8>, CatalogError> {
    let r = get(c, url)?;
    let mut b = Vec::new();
    r.take(max + 1)
        .read_to_end(&mut b)
        .map_err(|e| CatalogError(format!("{url}: {}", chain(&e))))?;
    if b.len() as u64 > max {
        return Err(CatalogError(format!(
            "{url}: larger than {max} bytes, not an index"
        )));
    }
    Ok(b)
}

/// Pulls `req` into a new guest under `layout`, recording `net`.
pub fn pull(
    layout: &Layout,
    req: &PullRequest,
    net: NetConfig,
    mut say: impl FnMut(&str),
) -> Result<PullReport, CatalogError> {
    let parts: Vec<&str> = req.image.split('/').collect();
    let (os, release, variant) = match parts[..] {
        [o, r] => (o, r, "default"),
        [o, r, v] => (o, r, v),
        _ => {
            return Err(CatalogError(format!(
                "{}: give the image as OS/RELEASE or OS/RELEASE/VARIANT (debian/bookworm)",
                req.image
            )))
        }
    };
    for w in [os, release, variant] {
        if !super::info::valid_word(w) {
            return Err(CatalogError(format!(
                "{}: {w:?} is not a plain word",
                req.image
            )));
        }
    }
    if !req.url.starts_with("https://") {
        return Err(CatalogError(format!(
            "{}: give an https:// URL (catalogs are served over TLS, as `vbuild catalog serve` does)",
            req.url
        )));
    }
    if layout.guest_config(&req.name).exists() {
        return Err(CatalogError(format!(
            "guest \"{}\" already exists (pick another --name, or `vbuild delete {}` first)",
            req.name, req.name
        )));
    }
    let key = match &req.key {
        Some(p) => Some((
            std::fs::read(p).map_err(|e| {
                CatalogError(format!(
                    "--key {}: {e} (give the catalog's armored public key)",
                    p.display()
                ))
            })?,
            p.display().to_string(),
        )),
        None => None,
    };
    let c = client(key.is_none())?;
    let mut manifest: Option<Manifest> = None;
    let mut verified_by = None;
    if let Some((kb, shown)) = &key {
        say(&format!(
            "not checking the TLS certificate of {}: trust comes from the catalog's signature (--key {shown})",
            req.url
        ));
        let m = get_small(&c, &url_of(&req.url, MANIFEST)?, 64 << 20)?;
        let asc = get_small(&c, &url_of(&req.url, SIGNATURE)?, 1 << 20).map_err(|e| {
            CatalogError(format!("{e} (the catalog is not signed; pull without --key only from a server whose certificate verifies)"))
        })?;
        verified_by = Some(sign::verify(kb, shown, &asc, &m)?);
        manifest = Some(Manifest::parse(&m)?);
    }
    let images_bytes = get_small(&c, &url_of(&req.url, ss::IMAGES)?, 64 << 20)?;
    if let Some(m) = &manifest {
        m.check(ss::IMAGES, &images_bytes)?;
    }
    let images = ss::parse_images(Some(&images_bytes))?;
    let product = format!("{os}:{release}:{variant}:{}", req.arch);
    let Some(versions) = images["products"][&product]["versions"].as_object() else {
        let others: Vec<&str> = images["products"]
            .as_object()
            .map(|p| {
                p.values()
                    .filter(|v| v["os"] == os && v["release"] == release && v["variant"] == variant)
                    .filter_map(|v| v["arch"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        return Err(CatalogError(if others.is_empty() {
            format!(
                "{}: has no image {}/{release}/{variant} (see its streams/v1/images.json)",
                req.url, os
            )
        } else {
            format!(
                "{}: has {os}/{release}/{variant} only for {}, not for this host's {} \
                 (an image of another architecture cannot run here)",
                req.url,
                others.join(", "),
                req.arch
            )
        }));
    };
    let serial = versions
        .keys()
        .max()
        .cloned()
        .ok_or_else(|| CatalogError(format!("{product}: lists no versions")))?;
    // vbuild's zstd rootfs when the catalog has one (it unpacks about ten
    // times faster), else the xz one every simplestreams catalog has.
    let (ftype, item) = [ss::ROOT_TAR_ZST, "root.tar.xz"]
        .into_iter()
        .find_map(|t| ss::find_item(&images, &product, &serial, t).map(|i| (t, i)))
        .ok_or_else(|| CatalogError(format!("{product} {serial}: has no root.tar.xz item")))?;
    let rel = item["path"].as_str().unwrap_or("").to_string();
    let size = item["size"]
        .as_u64()
        .ok_or_else(|| CatalogError(format!("{product} {serial}: {ftype} has no size")))?;
    let sha = item["sha256"].as_str().unwrap_or("").to_string();
    if sha.len() != 64 {
        return Err(CatalogError(format!(
            "{product} {serial}: {ftype} has no sha256"
        )));
    }
    if let Some(m) = &manifest {
        let want = m
            .files
            .get(&rel)
            .ok_or_else(|| CatalogError(format!("{rel}: not listed in the signed {MANIFEST}")))?;
        if want.size != size || want.sha256 != sha {
            return Err(CatalogError(format!(
                "{rel}: images.json and the signed {MANIFEST} disagree about it"
            )));
        }
    }
    let url = url_of(&req.url, &rel)?;
    let report = |bytes, template: Option<&str>, template_reused, guest| PullReport {
        product: product.clone(),
        serial: serial.clone(),
        item: ftype.to_string(),
        bytes,
        sha256: sha.clone(),
        verified_by: verified_by.clone(),
        template: template.map(str::to_string),
        template_reused,
        guest,
    };
    let store = TemplateStore::new(&layout.templates_dir());
    let failed = |e: ImportError| CatalogError(format!("{url}: {e}; nothing was kept"));
    if !req.copy {
        if let Some(meta) = pulled::find(&store, &sha) {
            say(&format!(
                "{product} {serial}: pulled before (template {}), nothing to download",
                &sha[..12]
            ));
            let guest = pulled::guest(layout, &req.name, &store, &meta, net).map_err(failed)?;
            return Ok(report(0, Some(&sha), true, guest));
        }
    }

    // Download into an unnamed file of the state root (a SIGKILL leaves
    // nothing), or a hidden named one removed in every other case.
    std::fs::create_dir_all(layout.root()).map_err(|e| CatalogError::io(layout.root(), e))?;
    let named = layout
        .root()
        .join(format!(".pull-{}.{}.{ftype}", req.name, std::process::id()));
    let (mut file, guard) = download_file(layout.root(), &named)?;
    let got = download(
        &c,
        &url,
        &mut file,
        guard.as_ref().map_or(layout.root(), |g| g.path()),
        size,
    )?;
    if got.0 != size {
        return Err(CatalogError(format!(
            "{url}: truncated download: {} of {size} bytes (nothing was kept; try again)",
            got.0
        )));
    }
    if got.1 != sha {
        return Err(CatalogError(format!(
            "{url}: sha256 {} but the catalog says {sha} (corrupt or tampered; nothing was kept)",
            got.1
        )));
    }
    if crate::guests::interrupted() {
        return Err(CatalogError("interrupted; nothing was kept".into()));
    }
    let path = match &guard {
        Some(g) => g.path().to_path_buf(),
        None => PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd())),
    };
    if req.copy {
        let guest = import::import(layout, &req.name, &path, net).map_err(failed)?;
        return Ok(report(size, None, false, guest));
    }
    let (meta, entries) = pulled::unpack(&store, &sha, &path).map_err(failed)?;
    drop(file);
    drop(guard);
    let mut guest = pulled::guest(layout, &req.name, &store, &meta, net).map_err(failed)?;
    guest.entries = entries;
    Ok(report(size, Some(&sha), false, guest))
}

/// The file a download goes to: an `O_TMPFILE` in `dir` (no name, so
/// nothing outlives the process however it ends), or where the filesystem
/// cannot make one, the new hidden file `named`, guarded.
fn download_file(
    dir: &Path,
    named: &Path,
) -> Result<(std::fs::File, Option<TempOutput>), CatalogError> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::File::options()
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_TMPFILE)
        .open(dir)
    {
        Ok(f) => Ok((f, None)),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL)
            ) =>
        {
            let guard = TempOutput::new(named.to_path_buf());
            let f = std::fs::File::options()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(named)
                .map_err(|e| CatalogError::io(named, e))?;
            Ok((f, Some(guard)))
        }
        Err(e) => Err(CatalogError::io(dir, e)),
    }
}

/// Streams `url` into `f` (shown as `shown`), at most `max + 1` bytes;
/// returns the bytes received and their sha256.
fn download(
    c: &reqwest::blocking::Client,
    url: &str,
    f: &mut std::fs::File,
    shown: &Path,
    max: u64,
) -> Result<(u64, String), CatalogError> {
    let mut r = get(c, url)?;
    let mut h = Sha256::new();
    let mut n = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        if crate::guests::interrupted() {
            return Err(CatalogError("interrupted; nothing was kept".into()));
        }
        let k = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) => {
                return Err(CatalogError(format!(
                    "{url}: download broke off after {n} of {max} bytes ({}); nothing was kept",
                    chain(&e)
                )))
            }
        };
        n += k as u64;
        if n > max {
            return Err(CatalogError(format!(
                "{url}: more than the {max} bytes the catalog lists (nothing was kept)"
            )));
        }
        h.update(&buf[..k]);
        f.write_all(&buf[..k])
            .map_err(|e| CatalogError::io(shown, e))?;
    }
    // No fsync: the file is read back at once and never outlives the pull.
    Ok((n, hex::encode(h.finalize())))
}
