//! What the cache holds, for `vbuild cache list` and `vbuild cache prune`:
//! every blob and kept index with its size, what it is and when a build
//! last used it. Blobs are named by digest only, so what one is comes from
//! its first bytes (a `.deb` is an ar archive, an `.rpm` starts with the
//! RPM lead magic, a Debian index has `Package:` stanzas, a Fedora one is
//! repodata XML). "Last used" is the blob's mtime: a fetch that finds the
//! blob already stored sets it to now.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::{lock, Cache, CacheError, GcStats};

/// What a cached file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// A package (`.deb`, `.rpm`).
    Package,
    /// A repository index (Packages, InRelease, repodata).
    Index,
}

/// One cached file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// `debian`, `fedora`, or `other` when the content says neither.
    pub distro: &'static str,
    /// Package or index.
    pub kind: EntryKind,
    /// Bytes on disk.
    pub size: u64,
    /// Seconds since the epoch of the last build that used it.
    pub last_used: u64,
    /// Where it is.
    #[serde(skip)]
    pub path: PathBuf,
    /// Whether it is a blob (under `blobs/`) rather than a kept index.
    #[serde(skip)]
    pub blob: bool,
}

/// Entries of one distro and kind added up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    /// `debian`, `fedora` or `other`.
    pub distro: &'static str,
    /// Package or index.
    pub kind: EntryKind,
    /// How many files.
    pub count: u64,
    /// Their bytes.
    pub bytes: u64,
    /// The most recent use of any of them, seconds since the epoch.
    pub last_used: u64,
}

/// How much to remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prune {
    /// Every blob and kept index.
    All,
    /// Blobs and kept indices no build used within this long.
    OlderThan(Duration),
}

/// The first bytes looked at to tell what a file is.
const SNIFF: usize = 4096;

impl Cache {
    /// Every blob and kept index, in path order. Reads at most
    /// [`SNIFF`] bytes of each.
    pub fn inventory(&self) -> Result<Vec<Entry>, CacheError> {
        let mut out = Vec::new();
        let root = self.dir().join("blobs/sha256");
        for fan in read_dir(&root)? {
            for path in read_dir(&fan)? {
                if let Some(e) = entry(&path, true)? {
                    out.push(e);
                }
            }
        }
        for path in read_dir(&self.index_dir())? {
            if let Some(e) = entry(&path, false)? {
                out.push(Entry {
                    kind: EntryKind::Index,
                    ..e
                });
            }
        }
        Ok(out)
    }

    /// Removes what `how` selects. Refuses with [`CacheError::Busy`] while
    /// a build holds the cache (see [`Cache::hold`]), so a blob a build has
    /// fetched but not yet unpacked is never removed under it.
    pub fn prune(&self, how: Prune) -> Result<GcStats, CacheError> {
        let cutoff = match how {
            Prune::All => None,
            Prune::OlderThan(d) => Some(
                SystemTime::now()
                    .checked_sub(d)
                    .unwrap_or(SystemTime::UNIX_EPOCH),
            ),
        };
        let recent = |p: &Path| match cutoff {
            None => false,
            Some(c) => fs::metadata(p)
                .and_then(|m| m.modified())
                .map(|t| t >= c)
                .unwrap_or(true),
        };
        // Alone from the choice to the last removal: no build can fetch or
        // start using a blob in between.
        let _alone = self.alone()?;
        let mut stats = self.gc_locked(&|_, p| recent(p))?;
        for e in self.inventory()?.iter().filter(|e| !e.blob) {
            if recent(&e.path) {
                stats.kept += 1;
            } else if fs::remove_file(&e.path).is_ok() {
                stats.removed += 1;
                stats.freed_bytes += e.size;
            }
        }
        Ok(stats)
    }

    /// Keeps [`Cache::gc`] and [`Cache::prune`] out until the returned
    /// guard drops. A build holds it from its first fetch until its root
    /// filesystem is complete.
    pub fn hold(&self) -> Result<CacheHold, CacheError> {
        Ok(CacheHold {
            _lock: lock::shared(&self.store_lock_path())?,
        })
    }
}

/// A build's hold on the cache (see [`Cache::hold`]).
pub struct CacheHold {
    _lock: lock::LockGuard,
}

impl std::fmt::Debug for CacheHold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CacheHold")
    }
}

/// Adds up `entries` per distro and kind, sorted by distro then kind.
pub fn groups(entries: &[Entry]) -> Vec<Group> {
    let mut out: Vec<Group> = Vec::new();
    for e in entries {
        match out
            .iter_mut()
            .find(|g| g.distro == e.distro && g.kind == e.kind)
        {
            Some(g) => {
                g.count += 1;
                g.bytes += e.size;
                g.last_used = g.last_used.max(e.last_used);
            }
            None => out.push(Group {
                distro: e.distro,
                kind: e.kind,
                count: 1,
                bytes: e.size,
                last_used: e.last_used,
            }),
        }
    }
    out.sort_by(|a, b| (a.distro, a.kind).cmp(&(b.distro, b.kind)));
    out
}

/// Marks `path` (a blob a fetch found already stored) as used now.
pub(crate) fn touch(path: &Path) {
    if let Ok(f) = fs::File::options().write(true).open(path) {
        let _ = f.set_modified(SystemTime::now());
    }
}

fn entry(path: &Path, blob: bool) -> Result<Option<Entry>, CacheError> {
    // symlink_metadata: the cache only ever holds regular files.
    let meta = fs::symlink_metadata(path).map_err(|e| CacheError::io(path, e))?;
    if !meta.is_file() {
        return Ok(None);
    }
    let mut head = Vec::with_capacity(SNIFF);
    if let Ok(f) = fs::File::open(path) {
        let _ = f.take(SNIFF as u64).read_to_end(&mut head);
    }
    let (distro, kind) = sniff(&head);
    let last_used = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    Ok(Some(Entry {
        distro,
        kind,
        size: meta.len(),
        last_used,
        path: path.to_path_buf(),
        blob,
    }))
}

/// What a file is, from its first bytes.
pub(crate) fn sniff(head: &[u8]) -> (&'static str, EntryKind) {
    let has = |needle: &[u8]| head.windows(needle.len()).any(|w| w == needle);
    if head.starts_with(b"!<arch>\ndebian-binary") {
        ("debian", EntryKind::Package)
    } else if head.starts_with(&[0xed, 0xab, 0xee, 0xdb]) {
        ("fedora", EntryKind::Package)
    } else if head.starts_with(b"Package: ")
        || has(b"\nPackage: ")
        || has(b"\nOrigin: Debian")
        || has(b"\nSuite: ")
    {
        ("debian", EntryKind::Index)
    } else if has(b"<repomd") || has(b"xmlns:rpm") || has(b"linux.duke.edu/metadata") {
        ("fedora", EntryKind::Index)
    } else {
        ("other", EntryKind::Index)
    }
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>, CacheError> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(CacheError::io(dir, e)),
    };
    let mut out = Vec::new();
    for e in rd {
        out.push(e.map_err(|e| CacheError::io(dir, e))?.path());
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contents_say_what_a_blob_is() {
        assert_eq!(
            sniff(b"!<arch>\ndebian-binary   1342"),
            ("debian", EntryKind::Package)
        );
        assert_eq!(
            sniff(&[0xed, 0xab, 0xee, 0xdb, 3, 0]),
            ("fedora", EntryKind::Package)
        );
        assert_eq!(
            sniff(b"Package: bash\nVersion: 5\n"),
            ("debian", EntryKind::Index)
        );
        assert_eq!(
            sniff(b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\nOrigin: Debian\n"),
            ("debian", EntryKind::Index)
        );
        assert_eq!(
            sniff(b"<?xml version=\"1.0\"?>\n<repomd xmlns=\"x\">"),
            ("fedora", EntryKind::Index)
        );
        assert_eq!(sniff(b"\xfd7zXZ\0"), ("other", EntryKind::Index));
    }

    fn age(path: &Path, days: u64) {
        let t = SystemTime::now() - Duration::from_secs(days * 86400);
        fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(t)
            .unwrap();
    }

    #[test]
    fn prune_older_than_keeps_recent_blobs_and_refuses_while_held() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let (_, old) = cache.put_blob(b"!<arch>\ndebian-binary old").unwrap();
        let (_, new) = cache.put_blob(b"!<arch>\ndebian-binary new").unwrap();
        cache.put_index("inrelease:x", b"Origin: Debian\n").unwrap();
        age(&old, 40);
        let inv = cache.inventory().unwrap();
        assert_eq!(inv.len(), 3);
        let g = groups(&inv);
        assert_eq!(g.len(), 2, "{g:?}");
        assert_eq!(
            (g[0].distro, g[0].kind, g[0].count),
            ("debian", EntryKind::Package, 2)
        );
        assert_eq!(g[0].bytes, 50);

        let hold = cache.hold().unwrap();
        assert!(matches!(
            cache.prune(Prune::All),
            Err(CacheError::Busy { .. })
        ));
        assert!(old.is_file() && new.is_file(), "nothing removed while held");
        drop(hold);

        let s = cache
            .prune(Prune::OlderThan(Duration::from_secs(30 * 86400)))
            .unwrap();
        assert_eq!((s.removed, s.freed_bytes, s.kept), (1, 25, 2));
        assert!(!old.exists() && new.is_file());

        let s = cache.prune(Prune::All).unwrap();
        assert_eq!((s.removed, s.kept), (2, 0));
        assert!(cache.inventory().unwrap().is_empty());
    }
}
