//! Getting a Debian repository's files through the cache, each verified
//! against what signed it: InRelease (signature) -> Packages (SHA256 in the
//! Release) -> .deb (SHA256 in Packages).
//!
//! Only InRelease is fetched on every build (it is small and tells whether
//! anything changed); a Packages index already in the cache under the hash
//! the Release names is used as is, decompressed form included.
//! `--offline` starts from the last verified InRelease kept in the cache's
//! index store, and verifies it again.

use std::io::Read;
use std::path::PathBuf;

use sha2::{Digest, Sha256};
use vbuild_cache::{Cache, CacheError, Fetch, Progress};

use super::index::{IndexError, PackageIndex};
use super::keyring::{Keyring, KeyringError};
use super::release::{verify_inrelease, Release, ReleaseError, VerifyOptions};
use super::resolve::ResolvedPackage;
use crate::recipe::Recipe;

/// Largest InRelease accepted (Debian's are ~150 kB).
const INRELEASE_LIMIT: u64 = 16 << 20;
/// Largest decompressed Packages accepted when the Release gives no size.
const PACKAGES_LIMIT: u64 = 1 << 30;

/// Why a repository file could not be had.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The download or the store failed.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// The InRelease was refused.
    #[error(transparent)]
    Release(#[from] ReleaseError),
    /// A Packages index does not parse.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// The mirror has no InRelease for the suite.
    #[error("{url}: not found; check the mirror URL and that it carries {suite} (vbuild never falls back to an unsigned Release)")]
    NoInRelease {
        /// The InRelease URL.
        url: String,
        /// The suite.
        suite: String,
    },
    /// Offline, and no verified InRelease was ever cached for this suite.
    #[error(
        "offline: no InRelease of {suite} from {mirror} in the cache; run once without --offline"
    )]
    OfflineNoRelease {
        /// The mirror.
        mirror: String,
        /// The suite.
        suite: String,
    },
    /// The Release lists no index for this component and architecture.
    #[error("dists/{suite}/InRelease lists no {component}/binary-{arch}/Packages; check the architecture and the recipe's components (the release has: {available})")]
    NoIndex {
        /// The suite.
        suite: String,
        /// The component.
        component: String,
        /// The architecture.
        arch: String,
        /// Components and architectures the release lists.
        available: String,
    },
    /// A compressed index does not decompress.
    #[error("{path}: cannot decompress ({message}); retry or use another mirror")]
    Decompress {
        /// The index path in the release.
        path: String,
        /// What the decoder said.
        message: String,
    },
    /// A decompressed index does not match the Release.
    #[error("{path}: sha256 mismatch after decompression: expected {expected}, got {actual}; the mirror is inconsistent, retry later or use another mirror")]
    IndexChecksum {
        /// The index path in the release.
        path: String,
        /// What the Release says.
        expected: String,
        /// What the content hashes to.
        actual: String,
    },
    /// The recipe's keyring could not be loaded.
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    /// A package's Filename would leave the mirror's tree.
    #[error(
        "{package}: Filename \"{filename}\" is not a relative path inside the mirror; refusing it"
    )]
    BadFilename {
        /// The package.
        package: String,
        /// Its Filename.
        filename: String,
    },
}

/// A mirror and the suite on it to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Mirror base URL without trailing slash (`http://deb.debian.org/debian`).
    pub mirror: String,
    /// Suite under `dists/`.
    pub suite: String,
}

impl Source {
    /// A source; a trailing `/` on the mirror is dropped.
    pub fn new(mirror: &str, suite: &str) -> Source {
        Source {
            mirror: mirror.trim_end_matches('/').to_string(),
            suite: suite.to_string(),
        }
    }

    /// URL of a file under `dists/SUITE/`.
    fn dists_url(&self, path: &str) -> String {
        format!("{}/dists/{}/{}", self.mirror, self.suite, path)
    }
}

/// What a build reads from a recipe's repository: where, what the archive
/// signed, and the packages on offer.
#[derive(Debug, Clone)]
pub struct Repository {
    /// Mirror and suite read.
    pub source: Source,
    /// The verified InRelease.
    pub release: Release,
    /// Packages of the recipe's components for the architecture.
    pub index: PackageIndex,
}

/// Verifies and reads the recipe's suite: keyring from the recipe, InRelease,
/// then its Packages indices for `arch`. `mirror` replaces the recipe's
/// (`--mirror`, e.g. a local caching proxy).
pub fn open_repository(
    cache: &Cache,
    recipe: &Recipe,
    mirror: Option<&str>,
    arch: &str,
    opts: &VerifyOptions,
) -> Result<Repository, FetchError> {
    let keyring = Keyring::for_recipe(recipe)?;
    let table = super::recipe::read(recipe).map_err(super::keyring::KeyringError::from)?;
    let source = Source::new(mirror.unwrap_or(&table.mirror), &table.suite);
    let release = fetch_release(cache, &source, &keyring, opts)?;
    let index = fetch_packages(cache, &source, &release, &table.components, arch)?;
    Ok(Repository {
        source,
        release,
        index,
    })
}

/// Fetches and verifies `dists/SUITE/InRelease`, keeping it in the cache for
/// `--offline` (which reads that copy instead, and verifies it again).
pub fn fetch_release(
    cache: &Cache,
    source: &Source,
    keyring: &Keyring,
    opts: &VerifyOptions,
) -> Result<Release, FetchError> {
    fetch_release_digest(cache, source, keyring, opts).map(|(r, _)| r)
}

/// [`fetch_release`], also returning the sha256 (hex) of exactly the bytes
/// it verified.
pub fn fetch_release_digest(
    cache: &Cache,
    source: &Source,
    keyring: &Keyring,
    opts: &VerifyOptions,
) -> Result<(Release, String), FetchError> {
    let bytes = inrelease_bytes(cache, source)?;
    let release = verify_inrelease(&bytes, &source.suite, keyring, opts)?;
    if !cache.is_offline() {
        cache.put_index(&inrelease_key(source), &bytes)?;
    }
    Ok((release, hex::encode(Sha256::digest(&bytes))))
}

fn inrelease_key(source: &Source) -> String {
    format!("inrelease:{}", source.dists_url("InRelease"))
}

/// The suite's InRelease as it is now, not verified: downloaded, or offline
/// the copy the cache kept when it was last verified.
pub fn inrelease_bytes(cache: &Cache, source: &Source) -> Result<Vec<u8>, FetchError> {
    if cache.is_offline() {
        return cache.get_index(&inrelease_key(source))?.ok_or_else(|| {
            FetchError::OfflineNoRelease {
                mirror: source.mirror.clone(),
                suite: source.suite.clone(),
            }
        });
    }
    match cache.download(&source.dists_url("InRelease"), INRELEASE_LIMIT) {
        Ok(bytes) => Ok(bytes),
        Err(CacheError::NotFound { url }) => Err(FetchError::NoInRelease {
            url,
            suite: source.suite.clone(),
        }),
        Err(e) => Err(e.into()),
    }
}

/// What verifying one InRelease established, kept so that the same bytes
/// with the same keys need no second verification while nothing in it
/// expired: the time checks are all that depend on when it is read.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Verified {
    /// Its Valid-Until (seconds since the epoch), if any.
    pub valid_until: Option<i64>,
    /// When the longest-lived good signature (its key, its signature)
    /// stops counting; `None`: never.
    pub good_until: Option<i64>,
}

fn verified_key(source: &Source, sha256: &str, key_digest: &str) -> String {
    format!(
        "inrelease-verified:{}:{sha256}:{key_digest}",
        source.dists_url("InRelease")
    )
}

/// Records that the InRelease of `source` whose bytes hash to `sha256`
/// verified as `release` with the keys whose material hashes to `key_digest`.
pub fn note_verified(
    cache: &Cache,
    source: &Source,
    sha256: &str,
    key_digest: &str,
    release: &Release,
) -> Result<(), FetchError> {
    let good_until = if release.signers.iter().any(|s| s.good_until.is_none()) {
        None
    } else {
        release
            .signers
            .iter()
            .filter_map(|s| s.good_until)
            .max()
            .map(|t| t.timestamp())
    };
    let v = Verified {
        valid_until: release.valid_until.map(|t| t.timestamp()),
        good_until,
    };
    let text = serde_json::to_vec(&v).expect("plain struct");
    Ok(cache.put_index(&verified_key(source, sha256, key_digest), &text)?)
}

/// Whether the InRelease bytes hashing to `sha256` verified before with
/// the keys of `key_digest`, and nothing it relied on has expired by
/// `opts.now` (Valid-Until only when `opts` checks it).
pub fn verified_before(
    cache: &Cache,
    source: &Source,
    sha256: &str,
    key_digest: &str,
    opts: &VerifyOptions,
) -> bool {
    let Ok(Some(text)) = cache.get_index(&verified_key(source, sha256, key_digest)) else {
        return false;
    };
    let Ok(v) = serde_json::from_slice::<Verified>(&text) else {
        return false;
    };
    let now = opts.now.timestamp();
    let still = |t: Option<i64>| t.is_none_or(|t| t > now);
    still(v.good_until) && (!opts.check_valid_until || still(v.valid_until))
}

/// Fetches, verifies and parses `COMPONENT/binary-ARCH/Packages` of every
/// component into one index (packages for `arch` and `all`).
pub fn fetch_packages(
    cache: &Cache,
    source: &Source,
    release: &Release,
    components: &[String],
    arch: &str,
) -> Result<PackageIndex, FetchError> {
    let mut index = PackageIndex::new(arch);
    add_packages(&mut index, cache, source, release, components, "")?;
    Ok(index)
}

/// Adds the verified `Packages` of every component of another suite to
/// `index` (packages for its architecture and `all`), each recording
/// `mirror` as where it is downloaded from (empty: the main mirror).
pub fn add_packages(
    index: &mut PackageIndex,
    cache: &Cache,
    source: &Source,
    release: &Release,
    components: &[String],
    mirror: &str,
) -> Result<(), FetchError> {
    let arch = index.arch().to_string();
    for component in components {
        let path = format!("{component}/binary-{arch}/Packages");
        let text = packages_text(cache, source, release, &path).and_then(|t| {
            t.ok_or_else(|| FetchError::NoIndex {
                suite: source.suite.clone(),
                component: component.clone(),
                arch: arch.clone(),
                available: format!(
                    "components {}; architectures {}",
                    release.components.join(" "),
                    release.architectures.join(" ")
                ),
            })
        })?;
        index.add_text_from(&format!("{}/{path}", source.suite), &text, mirror)?;
    }
    Ok(())
}

/// The verified text of one Packages index, `None` when the Release lists
/// neither it nor a compressed form.
fn packages_text(
    cache: &Cache,
    source: &Source,
    release: &Release,
    path: &str,
) -> Result<Option<String>, FetchError> {
    let plain = release.file(path);
    if let Some(blob) = plain.and_then(|e| cache.blob(&e.sha256)) {
        return read_text(
            path,
            std::fs::read(&blob).map_err(|e| CacheError::Io {
                path: blob,
                source: e,
            })?,
        )
        .map(Some);
    }
    for (suffix, codec) in [(".xz", Codec::Xz), (".gz", Codec::Gz), ("", Codec::None)] {
        let file = format!("{path}{suffix}");
        let Some(entry) = release.file(&file) else {
            continue;
        };
        let blob = fetch_index_file(cache, source, release, &file, entry)?;
        let raw = std::fs::read(&blob).map_err(|e| CacheError::Io {
            path: blob.clone(),
            source: e,
        })?;
        let limit = plain.map(|p| p.size).unwrap_or(PACKAGES_LIMIT);
        let bytes = codec
            .decode(&raw, limit)
            .map_err(|message| FetchError::Decompress {
                path: file.clone(),
                message,
            })?;
        if let Some(plain) = plain.filter(|_| codec != Codec::None) {
            let actual = hex::encode(Sha256::digest(&bytes));
            if actual != plain.sha256 || bytes.len() as u64 != plain.size {
                return Err(FetchError::IndexChecksum {
                    path: file,
                    expected: plain.sha256.clone(),
                    actual,
                });
            }
            // Next time the decompressed index is found by its own hash.
            cache.put_blob(&bytes)?;
        }
        return read_text(path, bytes).map(Some);
    }
    Ok(None)
}

/// Fetches one index file into the cache by its hash: from `by-hash/` when
/// the release offers it (immune to a mirror updating meanwhile), else (or
/// when by-hash is missing) from its plain path.
fn fetch_index_file(
    cache: &Cache,
    source: &Source,
    release: &Release,
    file: &str,
    entry: &super::release::FileEntry,
) -> Result<PathBuf, FetchError> {
    let item = |url: String| Fetch {
        url,
        sha256: entry.sha256.clone(),
        size: Some(entry.size),
    };
    let quiet = vbuild_cache::NoProgress;
    if release.acquire_by_hash {
        let dir = file.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        let by_hash = source.dists_url(&format!("{dir}/by-hash/SHA256/{}", entry.sha256));
        match cache.fetch(&item(by_hash), &quiet) {
            Err(CacheError::NotFound { .. }) => {}
            other => return Ok(other?),
        }
    }
    Ok(cache.fetch(&item(source.dists_url(file)), &quiet)?)
}

fn read_text(path: &str, bytes: Vec<u8>) -> Result<String, FetchError> {
    String::from_utf8(bytes).map_err(|e| {
        FetchError::Index(IndexError {
            index: path.to_string(),
            line: 0,
            message: format!("not UTF-8 ({e})"),
        })
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Codec {
    Xz,
    Gz,
    None,
}

impl Codec {
    /// Decompresses, refusing output beyond `limit` bytes.
    fn decode(self, raw: &[u8], limit: u64) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        let reader: Box<dyn Read + '_> = match self {
            Codec::Xz => Box::new(xz2::read::XzDecoder::new_multi_decoder(raw)),
            Codec::Gz => Box::new(flate2::read::MultiGzDecoder::new(raw)),
            Codec::None => return Ok(raw.to_vec()),
        };
        reader
            .take(limit + 1)
            .read_to_end(&mut out)
            .map_err(|e| e.to_string())?;
        if out.len() as u64 > limit {
            return Err(format!(
                "larger than the {limit} bytes the release promises"
            ));
        }
        Ok(out)
    }
}

/// Downloads every package's .deb into the cache (`jobs` in parallel,
/// verified against the SHA256 of the signed Packages index) and returns
/// their paths in the same order.
pub fn fetch_debs(
    cache: &Cache,
    mirror: &str,
    packages: &[ResolvedPackage],
    jobs: usize,
    progress: &dyn Progress,
) -> Result<Vec<PathBuf>, FetchError> {
    let mirror = mirror.trim_end_matches('/');
    let mut items = Vec::with_capacity(packages.len());
    for p in packages {
        let safe = !p.filename.is_empty()
            && !p.filename.starts_with('/')
            && !p.filename.contains("://")
            && p.filename
                .split('/')
                .all(|part| part != ".." && part != ".");
        if !safe {
            return Err(FetchError::BadFilename {
                package: p.name.clone(),
                filename: p.filename.clone(),
            });
        }
        let base = if p.mirror.is_empty() {
            mirror
        } else {
            p.mirror.trim_end_matches('/')
        };
        items.push(Fetch {
            url: format!("{base}/{}", p.filename),
            sha256: p.sha256.clone(),
            size: Some(p.size),
        });
    }
    Ok(cache.fetch_all(&items, jobs, progress)?)
}
