//! The verification chain: metalink (HTTPS) -> `repomd.xml` (its size and
//! sha256 in the metalink, or a detached `repomd.xml.asc`, or on a bare
//! baseurl nothing) -> `primary.xml` (repomd's sha256) -> each `.rpm`
//! (primary's sha256, then its OpenPGP header signature and the payload
//! digest that header carries, against the release's keys). The package
//! signature is never skipped: on a baseurl without a metalink it is what
//! carries trust, since Fedora signs no metadata. The last verified
//! `repomd.xml` of each repository is kept in the cache's index store, so
//! `--offline` builds from it; primary.xml, comps and packages are blobs
//! by sha256, fetched once.

use super::metalink::{self, Metalink};
use super::repodata::{self, DataFile, RpmEntry};
use super::resolve::FedoraPackage;
use crate::distro::debian::keyring::{Keyring, Rejection};
use pgp::composed::{Deserializable, DetachedSignature};
use std::io::Read;
use std::path::PathBuf;
use vbuild_cache::{Cache, CacheError, Fetch, Progress};

/// Largest metalink or repomd.xml accepted.
const SMALL_LIMIT: u64 = 8 << 20;
/// Largest decompressed primary.xml or comps accepted when repomd gives no size.
const PRIMARY_LIMIT: u64 = 2 << 30;

/// Why a repository or package was refused.
#[derive(Debug, thiserror::Error)]
pub enum FedoraFetchError {
    /// The download or the store failed.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// A metadata file does not parse.
    #[error("{what}: {message}")]
    Parse {
        /// The file (URL).
        what: String,
        /// What is wrong.
        message: String,
    },
    /// No mirror served a `repomd.xml` the metalink accepts.
    #[error("repository {repo}: repomd.xml from {tried} does not match the metalink's size and sha256 ({metalink}); the mirrors may be syncing: retry later or pass --mirror")]
    MetalinkMismatch {
        /// Repository id.
        repo: String,
        /// The URLs tried.
        tried: String,
        /// The metalink URL.
        metalink: String,
    },
    /// The repository publishes `repomd.xml.asc` and it does not verify.
    #[error("{url}: the detached signature does not verify against the release's keys ({message}); the mirror may be tampered with: use another --mirror, or pass the repository's key with --keyring")]
    RepomdSignature {
        /// The repomd.xml.asc URL.
        url: String,
        /// What the check said.
        message: String,
    },
    /// repomd.xml lists no primary.
    #[error("{url}: lists no primary metadata; is this an rpm repository?")]
    NoPrimary {
        /// The repomd.xml URL.
        url: String,
    },
    /// Offline, and this repository's metadata was never cached.
    #[error("offline: no verified repomd.xml of repository {repo} in the cache; run once without --offline")]
    OfflineNoRepomd {
        /// Repository id.
        repo: String,
    },
    /// No URL to read a repository from.
    #[error("repository {repo}: no metalink or baseurl to read it from")]
    NoSource {
        /// Repository id.
        repo: String,
    },
    /// A package's signature or digest did not verify.
    #[error("{package}: signature check failed ({message}); the package was removed from the cache, nothing was installed")]
    Signature {
        /// The package's NEVRA.
        package: String,
        /// What the check said.
        message: String,
    },
    /// A package's header is not the package primary.xml promised.
    #[error("{package}: the file's header says {actual}; the repository is inconsistent")]
    WrongPackage {
        /// NEVRA from primary.
        package: String,
        /// NEVRA of the header.
        actual: String,
    },
    /// A location that leaves the repository.
    #[error("{package}: location \"{href}\" is not a path inside the repository")]
    BadLocation {
        /// Package or file.
        package: String,
        /// The href.
        href: String,
    },
}

/// Where one repository is read from.
#[derive(Debug, Clone)]
pub struct RepoSource {
    /// Its id (`fedora`).
    pub id: String,
    /// Metalink URL, when the repository is located by one.
    pub metalink: Option<String>,
    /// Base URLs to try (after the metalink's mirrors).
    pub baseurls: Vec<String>,
}

/// One repository's verified metadata.
#[derive(Debug, Clone)]
pub struct RepoIndex {
    /// Its id.
    pub id: String,
    /// The base URL that served it (packages come from there too).
    pub baseurl: String,
    /// Its packages.
    pub packages: Vec<RpmEntry>,
    /// The comps group `core` (mandatory and default), when comps exists.
    pub core: Option<Vec<String>>,
}

fn with_slash(u: &str) -> String {
    if u.ends_with('/') {
        u.to_string()
    } else {
        format!("{u}/")
    }
}

fn safe_href(what: &str, href: &str) -> Result<(), FedoraFetchError> {
    let ok = !href.is_empty()
        && !href.starts_with('/')
        && !href.contains("://")
        && href
            .split('/')
            .all(|p| p != ".." && p != "." && !p.is_empty());
    if ok {
        Ok(())
    } else {
        Err(FedoraFetchError::BadLocation {
            package: what.to_string(),
            href: href.to_string(),
        })
    }
}

/// Decompresses by file suffix, at most `limit` bytes.
fn decompress(name: &str, raw: &[u8], limit: u64) -> Result<Vec<u8>, String> {
    let reader: Box<dyn Read + '_> = if name.ends_with(".zst") {
        Box::new(zstd::stream::read::Decoder::new(raw).map_err(|e| e.to_string())?)
    } else if name.ends_with(".gz") {
        Box::new(flate2::read::MultiGzDecoder::new(raw))
    } else if name.ends_with(".xz") {
        Box::new(xz2::read::XzDecoder::new_multi_decoder(raw))
    } else {
        Box::new(raw)
    };
    let mut out = Vec::new();
    reader
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("does not decompress: {e}"))?;
    if out.len() as u64 > limit {
        return Err(format!("decompresses to more than {limit} bytes"));
    }
    Ok(out)
}

/// Reads `repomd.xml` of `repo`: through its metalink when it has one
/// (trying the metalink's mirrors, then the baseurls, until one serves a
/// copy the metalink accepts), else from the first baseurl that answers.
fn fetch_repomd(cache: &Cache, repo: &RepoSource) -> Result<(String, Vec<u8>), FedoraFetchError> {
    let ml: Option<(String, Metalink)> = match &repo.metalink {
        Some(url) => {
            let bytes = cache.download(url, SMALL_LIMIT)?;
            let text = String::from_utf8_lossy(&bytes);
            let m = metalink::parse(&text).map_err(|message| FedoraFetchError::Parse {
                what: url.clone(),
                message,
            })?;
            Some((url.clone(), m))
        }
        None => None,
    };
    let mut bases: Vec<String> = ml.iter().flat_map(|(_, m)| m.baseurls.clone()).collect();
    bases.extend(repo.baseurls.iter().cloned());
    if bases.is_empty() {
        return Err(FedoraFetchError::NoSource {
            repo: repo.id.clone(),
        });
    }
    let mut tried = Vec::new();
    let mut last_err = None;
    for base in &bases {
        let base = with_slash(base);
        let url = format!("{base}repodata/repomd.xml");
        match cache.download(&url, SMALL_LIMIT) {
            Ok(bytes) => match &ml {
                Some((_, m)) if !m.accepts(&bytes) => tried.push(url),
                _ => return Ok((base, bytes)),
            },
            Err(e) => {
                tried.push(url);
                last_err = Some(e);
            }
        }
    }
    match (ml, last_err) {
        (Some((metalink, _)), _) => Err(FedoraFetchError::MetalinkMismatch {
            repo: repo.id.clone(),
            tried: tried.join(", "),
            metalink,
        }),
        (None, Some(e)) => Err(e.into()),
        (None, None) => Err(FedoraFetchError::NoSource {
            repo: repo.id.clone(),
        }),
    }
}

/// Fetches one metadata file by repomd's sha256 (the cache checks it) and
/// returns it decompressed.
fn fetch_data(cache: &Cache, base: &str, f: &DataFile) -> Result<Vec<u8>, FedoraFetchError> {
    safe_href("repomd.xml", &f.href)?;
    let url = format!("{base}{}", f.href);
    let blob = cache.fetch(
        &Fetch {
            url: url.clone(),
            sha256: f.sha256.clone(),
            size: f.size,
        },
        &vbuild_cache::NoProgress,
    )?;
    let raw = std::fs::read(&blob).map_err(|e| CacheError::Io {
        path: blob.clone(),
        source: e,
    })?;
    decompress(&f.href, &raw, f.open_size.unwrap_or(PRIMARY_LIMIT))
        .map_err(|message| FedoraFetchError::Parse { what: url, message })
}

/// Checks `repomd.xml.asc` when the repository publishes one: a detached
/// OpenPGP signature over `repomd` by one of `keys`. A repository without
/// one (Fedora's own) is trusted through the metalink and the packages'
/// signatures instead.
fn check_repomd_signature(
    cache: &Cache,
    base: &str,
    repomd: &[u8],
    keys: &[(String, Vec<u8>)],
) -> Result<(), FedoraFetchError> {
    let url = format!("{base}repodata/repomd.xml.asc");
    let asc = match cache.download(&url, SMALL_LIMIT) {
        Ok(b) => b,
        Err(CacheError::NotFound { .. } | CacheError::NotInLocalMirror { .. }) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let bad = |message: String| FedoraFetchError::RepomdSignature {
        url: url.clone(),
        message,
    };
    let mut keyring = Keyring::new();
    for (name, bytes) in keys {
        keyring.add(name, bytes).map_err(|e| bad(e.to_string()))?;
    }
    let sig = DetachedSignature::from_armor_single(std::io::Cursor::new(&asc))
        .map(|(s, _)| s)
        .or_else(|_| DetachedSignature::from_bytes(std::io::Cursor::new(&asc)))
        .map_err(|e| bad(format!("not an OpenPGP signature: {e}")))?;
    keyring
        .check(&sig.signature, repomd, chrono::Utc::now())
        .map(|_| ())
        .map_err(|r| {
            bad(match r {
                Rejection::UnknownKey(id) => {
                    format!("signed by key {id}, which no trusted key file holds")
                }
                Rejection::InvalidKey { key_id, why } => format!("key {key_id}: {why}"),
                Rejection::BadSignature { key_id, message } => {
                    format!("key {key_id}: the signature does not match the file ({message})")
                }
            })
        })
}

/// The cache's name for a repository's last verified `repomd.xml`: its id
/// and where it is read from, so another mirror never serves a stale copy.
fn cache_key(repo: &RepoSource) -> String {
    format!(
        "fedora-repomd:{}:{}:{}",
        repo.id,
        repo.metalink.as_deref().unwrap_or(""),
        repo.baseurls.join(" ")
    )
}

/// The base URL and repomd.xml a kept entry holds (`BASE\nREPOMD`).
fn split_kept(kept: &[u8]) -> Option<(String, Vec<u8>)> {
    let nl = kept.iter().position(|b| *b == b'\n')?;
    let base = std::str::from_utf8(&kept[..nl]).ok()?.to_string();
    Some((base, kept[nl + 1..].to_vec()))
}

/// Fetches and verifies one repository's metadata; `keys` check its
/// `repomd.xml.asc` when it has one.
pub fn fetch_repo(
    cache: &Cache,
    repo: &RepoSource,
    keys: &[(String, Vec<u8>)],
) -> Result<RepoIndex, FedoraFetchError> {
    let key = cache_key(repo);
    let (base, repomd) = if cache.is_offline() {
        let kept = cache
            .get_index(&key)?
            .ok_or_else(|| FedoraFetchError::OfflineNoRepomd {
                repo: repo.id.clone(),
            })?;
        split_kept(&kept).ok_or_else(|| FedoraFetchError::OfflineNoRepomd {
            repo: repo.id.clone(),
        })?
    } else {
        let (base, repomd) = fetch_repomd(cache, repo)?;
        check_repomd_signature(cache, &base, &repomd, keys)?;
        let mut kept = format!("{base}\n").into_bytes();
        kept.extend_from_slice(&repomd);
        cache.put_index(&key, &kept)?;
        (base, repomd)
    };
    let url = format!("{base}repodata/repomd.xml");
    let files = repodata::parse_repomd(&String::from_utf8_lossy(&repomd)).map_err(|message| {
        FedoraFetchError::Parse {
            what: url.clone(),
            message,
        }
    })?;
    let primary = files
        .iter()
        .find(|f| f.kind == "primary")
        .filter(|f| f.sha256.len() == 64)
        .ok_or(FedoraFetchError::NoPrimary { url: url.clone() })?;
    let text = fetch_data(cache, &base, primary)?;
    let packages = repodata::parse_primary(&String::from_utf8_lossy(&text)).map_err(|message| {
        FedoraFetchError::Parse {
            what: format!("{base}{}", primary.href),
            message,
        }
    })?;
    let mut core = None;
    for kind in ["group_zst", "group_xz", "group_gz", "group"] {
        if let Some(g) = files
            .iter()
            .find(|f| f.kind == kind && f.sha256.len() == 64)
        {
            let text = fetch_data(cache, &base, g)?;
            core = repodata::comps_group(&String::from_utf8_lossy(&text), "core").map_err(
                |message| FedoraFetchError::Parse {
                    what: format!("{base}{}", g.href),
                    message,
                },
            )?;
            break;
        }
    }
    Ok(RepoIndex {
        id: repo.id.clone(),
        baseurl: base,
        packages,
        core,
    })
}

/// The release's keys as the rpm crate's verifier.
pub fn verifier(keys: &[(String, Vec<u8>)]) -> Result<rpm::signature::pgp::Verifier, String> {
    let mut v = rpm::signature::pgp::Verifier::new();
    for (name, bytes) in keys {
        v.load_from_asc_bytes(bytes)
            .map_err(|e| format!("{name}: not an OpenPGP public key ({e})"))?;
    }
    Ok(v)
}

/// Checks one fetched .rpm: header signature by one of the keys, header
/// and payload digests, and that it is the package primary named.
pub fn verify_package(
    path: &std::path::Path,
    p: &RpmEntry,
    verifier: &rpm::signature::pgp::Verifier,
) -> Result<(), FedoraFetchError> {
    let bad = |message: String| FedoraFetchError::Signature {
        package: p.nevra(),
        message,
    };
    let pkg = rpm::Package::open(path).map_err(|e| bad(format!("not an rpm: {e}")))?;
    pkg.verify_signature(verifier)
        .map_err(|e| bad(e.to_string()))?;
    let m = &pkg.metadata;
    let actual = RpmEntry {
        name: m.get_name().unwrap_or_default().to_string(),
        arch: m.get_arch().unwrap_or_default().to_string(),
        epoch: m.get_epoch().unwrap_or(0),
        version: m.get_version().unwrap_or_default().to_string(),
        release: m.get_release().unwrap_or_default().to_string(),
        ..RpmEntry::default()
    }
    .nevra();
    if actual != p.nevra() {
        return Err(FedoraFetchError::WrongPackage {
            package: p.nevra(),
            actual,
        });
    }
    Ok(())
}

/// Downloads the packages (`jobs` in parallel, by primary's sha256), then
/// verifies each one's signature; a package that fails is removed from the
/// cache so that no later build trusts it.
pub fn fetch_rpms(
    cache: &Cache,
    packages: &[FedoraPackage],
    verifier: &rpm::signature::pgp::Verifier,
    jobs: usize,
    progress: &dyn Progress,
) -> Result<Vec<PathBuf>, FedoraFetchError> {
    let mut items = Vec::with_capacity(packages.len());
    for p in packages {
        safe_href(&p.entry.nevra(), &p.entry.href)?;
        items.push(Fetch {
            url: format!("{}{}", p.base, p.entry.href),
            sha256: p.entry.sha256.clone(),
            size: Some(p.entry.size),
        });
    }
    let paths = cache.fetch_all(&items, jobs, progress)?;
    for (path, p) in paths.iter().zip(packages) {
        if let Err(e) = verify_package(path, &p.entry, verifier) {
            let _ = std::fs::remove_file(path);
            return Err(e);
        }
    }
    Ok(paths)
}
