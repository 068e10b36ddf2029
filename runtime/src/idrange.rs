//! Host uid/gid ranges for guests' user namespaces: each unprivileged guest
//! owns 65536 ids of its own (root inside is the range's first id outside),
//! never shared with another guest, so one guest's root can never touch
//! another guest's files or processes.
//!
//! Ranges are handed out from one host-wide registry file, so guests of
//! different state roots (`--root`) never overlap either. Slot `i` is the
//! ids `BASE + i * SIZE .. BASE + (i + 1) * SIZE`: from 0x100000 (1048576,
//! above the ids distributions and `/etc/subuid` normally hand out) up to
//! 0xFFFF0000, which keeps clear of `(uid_t)-1` and `(uid_t)-2`. The file
//! (`id-ranges.toml`) is read and rewritten under an exclusive `flock` on a
//! sibling lock file; a range is released when its guest is deleted and is
//! then the first one handed out again.

use serde::{Deserialize, Serialize};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// The first host id handed to guests.
pub const BASE: u32 = 0x10_0000;
/// Ids per guest (what a Debian system uses: 0..65535, nobody at 65534).
pub const SIZE: u32 = 0x1_0000;
/// How many ranges fit between `BASE` and 0xFFFF0000.
pub const SLOTS: u32 = (0xFFFF_0000 - BASE) / SIZE;

/// The host-wide registry (under the default state root, whatever `--root`
/// a guest lives in; `VBUILD_IDRANGES` moves it, for tests).
pub fn default_registry() -> PathBuf {
    std::env::var_os("VBUILD_IDRANGES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(crate::paths::DEFAULT_ROOT).join("id-ranges.toml"))
}

/// A guest's id range: host ids `base .. base + count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdRange {
    /// The host uid (and gid) of the guest's root.
    pub base: u32,
    /// How many ids.
    pub count: u32,
}

impl IdRange {
    /// True when the two ranges share an id.
    pub fn overlaps(&self, other: &IdRange) -> bool {
        let (a0, a1) = (self.base as u64, self.base as u64 + self.count as u64);
        let (b0, b1) = (other.base as u64, other.base as u64 + other.count as u64);
        a0 < b1 && b0 < a1
    }
}

/// Allocating or releasing a range failed; names the registry file.
#[derive(Debug, thiserror::Error)]
pub enum IdRangeError {
    /// Reading, locking or writing the registry failed.
    #[error("id-range registry {path}: {source}")]
    Io {
        /// The registry (or its lock file).
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The registry is not valid TOML.
    #[error("id-range registry {path}: {message} (fix or remove the entry named there)")]
    Parse {
        /// The registry.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// Every range is taken.
    #[error("no free id range for guest {name}: all {slots} ranges of {size} ids in {path} are taken (delete unused guests with `vbuild delete NAME`)")]
    Exhausted {
        /// The guest that asked.
        name: String,
        /// How many ranges there are.
        slots: u32,
        /// Ids per range.
        size: u32,
        /// The registry.
        path: PathBuf,
    },
    /// A guest's recorded range belongs to another guest in the registry.
    #[error("guest {name}: its id range {base:#x} (guest.toml) is registered to {other} in {path}; remove `[ids]` from its guest.toml to get a new one")]
    Conflict {
        /// The guest.
        name: String,
        /// Its recorded range's first id.
        base: u32,
        /// Who holds it (`ROOT:NAME`).
        other: String,
        /// The registry.
        path: PathBuf,
    },
}

/// One registered range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    base: u32,
    count: u32,
    /// The state root the guest lives in.
    root: PathBuf,
    /// The guest.
    name: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct RegistryFile {
    #[serde(default, rename = "range")]
    ranges: Vec<Entry>,
}

/// The registry: where it is and how many slots it hands out.
#[derive(Debug, Clone)]
pub struct Registry {
    path: PathBuf,
    slots: u32,
}

impl Registry {
    /// The registry at `path` with every slot available.
    pub fn at(path: &Path) -> Registry {
        Registry {
            path: path.to_path_buf(),
            slots: SLOTS,
        }
    }

    /// The host-wide registry.
    pub fn host() -> Registry {
        Registry::at(&default_registry())
    }

    /// The same registry limited to the first `slots` ranges (tests of
    /// exhaustion).
    pub fn with_slots(mut self, slots: u32) -> Registry {
        self.slots = slots.min(SLOTS);
        self
    }

    /// Where the registry lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The range of guest `name` of state root `root`: its registered one,
    /// else `wanted` (the range its guest.toml records) if still free, else
    /// the lowest free one. Recorded before it returns.
    pub fn allocate(
        &self,
        root: &Path,
        name: &str,
        wanted: Option<IdRange>,
    ) -> Result<IdRange, IdRangeError> {
        self.locked(|file| {
            if let Some(e) = file
                .ranges
                .iter()
                .find(|e| e.root == root && e.name == name)
            {
                let have = IdRange {
                    base: e.base,
                    count: e.count,
                };
                if wanted.is_none_or(|w| w == have) {
                    return Ok((have, false));
                }
            }
            if let Some(w) = wanted {
                if let Some(other) = file
                    .ranges
                    .iter()
                    .find(|e| !(e.root == root && e.name == name) && w.overlaps(&e.range()))
                {
                    return Err(IdRangeError::Conflict {
                        name: name.to_string(),
                        base: w.base,
                        other: format!("{}:{}", other.root.display(), other.name),
                        path: self.path.clone(),
                    });
                }
                file.ranges.retain(|e| !(e.root == root && e.name == name));
                file.ranges.push(Entry {
                    base: w.base,
                    count: w.count,
                    root: root.to_path_buf(),
                    name: name.to_string(),
                });
                return Ok((w, true));
            }
            let free = (0..self.slots)
                .map(|i| IdRange {
                    base: BASE + i * SIZE,
                    count: SIZE,
                })
                .find(|r| !file.ranges.iter().any(|e| r.overlaps(&e.range())))
                .ok_or_else(|| IdRangeError::Exhausted {
                    name: name.to_string(),
                    slots: self.slots,
                    size: SIZE,
                    path: self.path.clone(),
                })?;
            file.ranges.push(Entry {
                base: free.base,
                count: free.count,
                root: root.to_path_buf(),
                name: name.to_string(),
            });
            Ok((free, true))
        })
    }

    /// Forgets the range of guest `name` of `root` (at delete); a guest
    /// without one is fine.
    pub fn release(&self, root: &Path, name: &str) -> Result<(), IdRangeError> {
        if !self.path.exists() {
            return Ok(());
        }
        self.locked(|file| {
            let before = file.ranges.len();
            file.ranges.retain(|e| !(e.root == root && e.name == name));
            Ok(((), file.ranges.len() != before))
        })
    }

    /// Every registered range with its owner (`ROOT`, `NAME`).
    pub fn list(&self) -> Result<Vec<(IdRange, PathBuf, String)>, IdRangeError> {
        self.locked(|file| {
            Ok((
                file.ranges
                    .iter()
                    .map(|e| (e.range(), e.root.clone(), e.name.clone()))
                    .collect(),
                false,
            ))
        })
    }

    /// Runs `f` on the registry under its lock; `f` says whether it changed
    /// the registry (then it is written back atomically).
    fn locked<T>(
        &self,
        f: impl FnOnce(&mut RegistryFile) -> Result<(T, bool), IdRangeError>,
    ) -> Result<T, IdRangeError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| IdRangeError::Io { path, source }
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        let lock_path = self.path.with_extension("lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        loop {
            // SAFETY: flock on a descriptor we own; released when it closes.
            if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } == 0 {
                break;
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(io(&lock_path)(e));
            }
        }
        let mut file: RegistryFile = match std::fs::read_to_string(&self.path) {
            Ok(text) => toml::from_str(&text).map_err(|e| IdRangeError::Parse {
                path: self.path.clone(),
                message: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => RegistryFile::default(),
            Err(e) => return Err(io(&self.path)(e)),
        };
        let (out, changed) = f(&mut file)?;
        if changed {
            file.ranges.sort_by_key(|e| e.base);
            let text = toml::to_string_pretty(&file).expect("registry serializes");
            crate::config::write_atomic(&self.path, text.as_bytes()).map_err(io(&self.path))?;
        }
        drop(lock);
        Ok(out)
    }
}

impl Entry {
    fn range(&self) -> IdRange {
        IdRange {
            base: self.base,
            count: self.count,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(d: &tempfile::TempDir) -> Registry {
        Registry::at(&d.path().join("id-ranges.toml"))
    }

    #[test]
    fn ranges_never_overlap_and_are_stable_per_guest() {
        let d = tempfile::tempdir().unwrap();
        let r = reg(&d);
        let root = Path::new("/a");
        let got: Vec<IdRange> = (0..20)
            .map(|i| r.allocate(root, &format!("g{i}"), None).unwrap())
            .collect();
        for (i, a) in got.iter().enumerate() {
            assert_eq!(a.count, SIZE);
            assert!(a.base >= BASE && a.base % SIZE == 0);
            for b in &got[i + 1..] {
                assert!(!a.overlaps(b), "{a:?} {b:?}");
            }
        }
        assert_eq!(r.allocate(root, "g3", None).unwrap(), got[3]);
        // The same name in another state root is another guest.
        let other = r.allocate(Path::new("/b"), "g3", None).unwrap();
        assert!(got.iter().all(|g| !g.overlaps(&other)));
    }

    #[test]
    fn a_deleted_guests_range_is_handed_out_again() {
        let d = tempfile::tempdir().unwrap();
        let r = reg(&d);
        let root = Path::new("/a");
        let a = r.allocate(root, "a", None).unwrap();
        let b = r.allocate(root, "b", None).unwrap();
        r.release(root, "a").unwrap();
        assert_eq!(r.list().unwrap().len(), 1);
        let c = r.allocate(root, "c", None).unwrap();
        assert_eq!(c, a);
        assert!(!c.overlaps(&b));
        r.release(root, "never-had-one").unwrap();
    }

    #[test]
    fn exhaustion_is_a_clear_error() {
        let d = tempfile::tempdir().unwrap();
        let r = reg(&d).with_slots(2);
        let root = Path::new("/a");
        r.allocate(root, "a", None).unwrap();
        r.allocate(root, "b", None).unwrap();
        let e = r.allocate(root, "c", None).unwrap_err().to_string();
        assert!(e.contains("no free id range for guest c"), "{e}");
        assert!(e.contains("vbuild delete"), "{e}");
        assert!(e.contains("id-ranges.toml"), "{e}");
    }

    #[test]
    fn a_recorded_range_is_kept_unless_another_guest_holds_it() {
        let d = tempfile::tempdir().unwrap();
        let r = reg(&d);
        let root = Path::new("/a");
        let want = IdRange {
            base: BASE + 7 * SIZE,
            count: SIZE,
        };
        assert_eq!(r.allocate(root, "a", Some(want)).unwrap(), want);
        let e = r.allocate(root, "b", Some(want)).unwrap_err().to_string();
        assert!(e.contains("registered to /a:a"), "{e}");
        // The next free range skips the recorded one.
        let next: Vec<IdRange> = (0..8)
            .map(|i| r.allocate(root, &format!("n{i}"), None).unwrap())
            .collect();
        assert!(next.iter().all(|n| !n.overlaps(&want)));
    }

    #[test]
    fn the_slot_bounds_stay_clear_of_special_ids() {
        const { assert!(BASE as u64 + SLOTS as u64 * SIZE as u64 <= 0xFFFF_0000) };
        const { assert!(BASE > 65536) };
    }

    /// Run as a child process by the concurrency test: allocates
    /// `VBUILD_IDRANGE_CHILD_COUNT` ranges from `VBUILD_IDRANGES`.
    #[test]
    fn concurrent_allocation_child() {
        let (Some(path), Some(tag)) = (
            std::env::var_os("VBUILD_IDRANGES"),
            std::env::var_os("VBUILD_IDRANGE_CHILD"),
        ) else {
            return;
        };
        let r = Registry::at(Path::new(&path));
        for i in 0..25 {
            r.allocate(
                Path::new("/c"),
                &format!("{}-{i}", tag.to_string_lossy()),
                None,
            )
            .unwrap();
        }
    }

    #[test]
    fn two_processes_allocating_at_once_never_share_a_range() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("id-ranges.toml");
        let exe = std::env::current_exe().unwrap();
        let children: Vec<_> = ["p1", "p2"]
            .iter()
            .map(|tag| {
                std::process::Command::new(&exe)
                    .args([
                        "--exact",
                        "idrange::tests::concurrent_allocation_child",
                        "--test-threads=1",
                    ])
                    .env("VBUILD_IDRANGES", &path)
                    .env("VBUILD_IDRANGE_CHILD", tag)
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for mut c in children {
            assert!(c.wait().unwrap().success());
        }
        let all = Registry::at(&path).list().unwrap();
        assert_eq!(
            all.len(),
            50,
            "every allocation of both processes is recorded"
        );
        for (i, (a, _, _)) in all.iter().enumerate() {
            for (b, _, _) in &all[i + 1..] {
                assert!(!a.overlaps(b), "{a:?} {b:?}");
            }
        }
    }
}
