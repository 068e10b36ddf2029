//! The guest store: the one place that knows how guests sit under
//! `guests/` — which names exist, loading their configs, their paths and
//! their cgroup's name — so `list`, `status`, the address allocator, the
//! published-port check, `net list` and `net delete` all see the same set.
//!
//! A guest exists exactly when `guests/NAME/guest.toml` exists: the builder
//! writes it last. While a build runs it holds [`BuildLock`] on
//! `guests/.NAME.lock`; a directory without `guest.toml` whose lock nobody
//! holds is the remains of a killed build ([`Leftover`]), removed at the
//! next build of that name or by `vbuild check --fix`.

use crate::config::{ConfigError, GuestConfig, NetMode};
use crate::error::{io, RuntimeError};
use crate::name::GuestName;
use crate::paths::Layout;
use nix::fcntl::{Flock, FlockArg};
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use vbuild_kernel::cgroup::{Cgroup, CgroupError, Hierarchy};

/// The cgroup (relative to each hierarchy) a guest named `name` runs in.
/// Every caller names it through here, so the layout can change in one place.
pub fn cgroup_name(name: &str) -> String {
    format!("vbuild/{name}")
}

/// One guest of the store: its name and its config, or why that cannot be
/// read.
pub type StoredGuest = (String, Result<GuestConfig, ConfigError>);

/// The guests of one state root.
#[derive(Debug, Clone, Copy)]
pub struct GuestStore<'a> {
    layout: &'a Layout,
}

impl<'a> GuestStore<'a> {
    /// The store under `layout`.
    pub fn new(layout: &'a Layout) -> GuestStore<'a> {
        GuestStore { layout }
    }

    /// The layout it reads.
    pub fn layout(&self) -> &'a Layout {
        self.layout
    }

    /// Whether guest `name` exists (its `guest.toml` does).
    pub fn exists(&self, name: &str) -> bool {
        self.layout.guest_config(name).is_file()
    }

    /// Whether guest `name` has a state file (runs, or was not cleaned up).
    pub fn has_run_state(&self, name: &str) -> bool {
        crate::state::state_path(self.layout, name).exists()
    }

    /// Names of every guest, sorted; entries that are not valid guest names
    /// (lock files, leftovers of other tools) are skipped.
    pub fn names(&self) -> Result<Vec<String>, RuntimeError> {
        let dir = self.layout.guests_dir();
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&dir)(e)),
        };
        let mut names: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| GuestName::parse(n).is_ok())
            .filter(|n| self.exists(n))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Guest `name`'s config; `NotFound` when there is no such guest. The
    /// directory's name is the guest's name, whatever the file says.
    pub fn load(&self, name: &str) -> Result<GuestConfig, RuntimeError> {
        if !self.exists(name) {
            return Err(RuntimeError::NotFound(name.to_string()));
        }
        let mut cfg = GuestConfig::load(&self.layout.guest_config(name))?;
        cfg.name = name.to_string();
        Ok(cfg)
    }

    /// Every guest with its config, or why the config cannot be read (so
    /// `list` can show a broken guest rather than hide it).
    pub fn list(&self) -> Result<Vec<StoredGuest>, RuntimeError> {
        Ok(self
            .names()?
            .into_iter()
            .map(|n| {
                let cfg = GuestConfig::load(&self.layout.guest_config(&n)).map(|mut c| {
                    c.name = n.clone();
                    c
                });
                (n, cfg)
            })
            .collect())
    }

    /// The configs that can be read (for checks across guests: addresses,
    /// published ports; an unreadable config is reported by `list`).
    pub fn configs(&self) -> Vec<GuestConfig> {
        self.list()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(_, c)| c.ok())
            .collect()
    }

    /// The guests whose config puts them on network `network` in bridge mode.
    pub fn on_network(&self, network: &str) -> Vec<GuestConfig> {
        self.configs()
            .into_iter()
            .filter(|c| c.net.mode == NetMode::Bridge && c.net.network == network)
            .collect()
    }

    /// Guest `name`'s cgroup when processes run in it.
    pub fn live_cgroup(&self, name: &str) -> Result<Option<Cgroup>, CgroupError> {
        let h = Hierarchy::detect()?;
        let cg = Cgroup::open(&h, &cgroup_name(name))?;
        Ok(cg.filter(|c| c.pids().map(|p| !p.is_empty()).unwrap_or(false)))
    }

    /// Guest `name`'s cgroup if it exists (running or not cleaned up yet).
    pub fn cgroup(&self, name: &str) -> Option<Cgroup> {
        let h = Hierarchy::detect().ok()?;
        Cgroup::open(&h, &cgroup_name(name)).ok().flatten()
    }

    /// What killed builds left behind: guest directories without
    /// `guest.toml` and lock files, each only while no build holds its lock.
    pub fn leftovers(&self) -> Result<Vec<Leftover>, RuntimeError> {
        let dir = self.layout.guests_dir();
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&dir)(e)),
        };
        let mut out = Vec::new();
        for e in rd.flatten() {
            let Ok(file) = e.file_name().into_string() else {
                continue;
            };
            let (name, is_lock) = match file.strip_prefix('.').and_then(|f| f.strip_suffix(".lock"))
            {
                Some(n) => (n.to_string(), true),
                None => (file.clone(), false),
            };
            if GuestName::parse(&name).is_err() {
                continue;
            }
            if is_lock && self.layout.guest_dir(&name).exists() {
                continue; // reported (and removed) with its directory
            }
            if !is_lock && self.exists(&name) {
                continue;
            }
            // Held: a build is running right now. Looking leaves the lock
            // file as it found it.
            let had_file = self
                .layout
                .guests_dir()
                .join(format!(".{name}.lock"))
                .exists();
            let Some(lock) = BuildLock::try_take(self.layout, &name).map_err(io(e.path()))? else {
                continue;
            };
            if had_file {
                lock.keep_file();
            }
            out.push(if is_lock {
                Leftover::LockFile(e.path())
            } else {
                Leftover::HalfBuilt(name)
            });
        }
        out.sort();
        Ok(out)
    }

    /// Removes what [`GuestStore::leftovers`] finds, each under its build
    /// lock (so a build that started meanwhile is never touched); returns
    /// what was removed.
    pub fn remove_leftovers(&self) -> Result<Vec<Leftover>, RuntimeError> {
        let mut removed = Vec::new();
        for l in self.leftovers()? {
            let name = l.name().to_string();
            let Some(_lock) =
                BuildLock::try_take(self.layout, &name).map_err(io(l.path(self.layout)))?
            else {
                continue;
            };
            if self.exists(&name) {
                continue;
            }
            if let Leftover::HalfBuilt(_) = &l {
                remove_guest_tree(self.layout, &name).map_err(io(self.layout.guest_dir(&name)))?;
            }
            // The lock file goes when `_lock` drops.
            removed.push(l);
        }
        Ok(removed)
    }
}

/// One thing a killed build left behind.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Leftover {
    /// `guests/NAME/` without `guest.toml`: a build that never finished.
    HalfBuilt(String),
    /// `guests/.NAME.lock` whose build is gone.
    LockFile(PathBuf),
}

impl Leftover {
    /// The guest name it belongs to.
    pub fn name(&self) -> &str {
        match self {
            Leftover::HalfBuilt(n) => n,
            Leftover::LockFile(p) => p
                .file_name()
                .and_then(|f| f.to_str())
                .and_then(|f| f.strip_prefix('.'))
                .and_then(|f| f.strip_suffix(".lock"))
                .unwrap_or(""),
        }
    }

    /// The path it occupies.
    pub fn path(&self, layout: &Layout) -> PathBuf {
        match self {
            Leftover::HalfBuilt(n) => layout.guest_dir(n),
            Leftover::LockFile(p) => p.clone(),
        }
    }
}

impl std::fmt::Display for Leftover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Leftover::HalfBuilt(n) => write!(f, "guests/{n}/ (a build that never finished)"),
            Leftover::LockFile(p) => write!(f, "{} (a stale build lock)", p.display()),
        }
    }
}

/// Removes a guest's directory: releases its disk backend, unmounts anything
/// still mounted below it (a disk image, a script context that outlived its
/// build), then deletes the tree. A missing directory counts as removed.
pub fn remove_guest_tree(layout: &Layout, name: &str) -> std::io::Result<()> {
    let dir = layout.guest_dir(name);
    let _ = crate::disk::deactivate(layout, name);
    if let Ok(mounts) = vbuild_kernel::mount::mounts_below(&dir) {
        for m in mounts {
            let _ = vbuild_kernel::mount::unmount(&m, true);
        }
    }
    match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The exclusive lock a build of guest NAME holds on `guests/.NAME.lock`.
/// The file is removed when the lock is released, so lock files do not pile
/// up; a process that opened the file before it was removed notices (the
/// path no longer names the inode it locked) and tries again, so two
/// holders can never coexist.
#[derive(Debug)]
pub struct BuildLock {
    path: PathBuf,
    lock: Option<Flock<File>>,
    remove: bool,
}

impl BuildLock {
    /// Takes the build lock of `name` without waiting; `None` when another
    /// build holds it.
    pub fn try_take(layout: &Layout, name: &str) -> std::io::Result<Option<BuildLock>> {
        let dir = layout.guests_dir();
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!(".{name}.lock"));
        loop {
            let file = File::options()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)?;
            let lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(l) => l,
                Err((_, nix::errno::Errno::EWOULDBLOCK)) => return Ok(None),
                Err((_, e)) => return Err(e.into()),
            };
            if same_file(&lock, &path) {
                return Ok(Some(BuildLock {
                    path,
                    lock: Some(lock),
                    remove: true,
                }));
            }
            // Its holder removed the file between our open and our lock.
        }
    }

    /// Releases the lock but leaves the file (for a look that must change
    /// nothing).
    pub fn keep_file(mut self) {
        self.remove = false;
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for BuildLock {
    fn drop(&mut self) {
        // Unlink while still holding the lock, then unlock.
        if self.remove {
            let _ = std::fs::remove_file(&self.path);
        }
        drop(self.lock.take());
    }
}

/// Whether the open file `f` is still what `path` names.
fn same_file(f: &File, path: &Path) -> bool {
    match (f.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guest(l: &Layout, name: &str, network: &str) {
        std::fs::create_dir_all(l.guest_dir(name)).unwrap();
        std::fs::write(
            l.guest_config(name),
            format!("name = \"{name}\"\ndistro = \"debian\"\nrelease = \"bookworm\"\n[net]\nnetwork = \"{network}\"\n"),
        )
        .unwrap();
    }

    #[test]
    fn one_listing_for_every_reader() {
        let d = tempfile::tempdir().unwrap();
        let l = Layout::new(Some(d.path()));
        let s = GuestStore::new(&l);
        assert!(s.names().unwrap().is_empty());
        guest(&l, "b", "lan0");
        guest(&l, "a", "vbuild0");
        std::fs::create_dir_all(l.guest_dir("half")).unwrap();
        std::fs::create_dir_all(l.guest_dir("Not_A_Name")).unwrap();
        std::fs::write(l.guest_config("Not_A_Name"), "").unwrap();
        std::fs::write(l.guests_dir().join(".a.lock"), "").unwrap();
        assert_eq!(s.names().unwrap(), ["a", "b"]);
        assert!(s.exists("a") && !s.exists("half"));
        let on: Vec<String> = s.on_network("lan0").into_iter().map(|c| c.name).collect();
        assert_eq!(on, ["b"]);
        assert!(matches!(s.load("half"), Err(RuntimeError::NotFound(_))));
        assert_eq!(s.load("a").unwrap().release, "bookworm");
        assert_eq!(cgroup_name("a"), "vbuild/a");
    }

    #[test]
    fn build_locks_exclude_each_other_and_leave_no_file() {
        let d = tempfile::tempdir().unwrap();
        let l = Layout::new(Some(d.path()));
        let a = BuildLock::try_take(&l, "g").unwrap().unwrap();
        assert!(a.path().exists());
        assert!(BuildLock::try_take(&l, "g").unwrap().is_none());
        let p = a.path().to_path_buf();
        drop(a);
        assert!(!p.exists(), "the lock file goes with the lock");
        // Many takers in turn, in threads: never two at once, no file left.
        let held = std::sync::atomic::AtomicU32::new(0);
        std::thread::scope(|sc| {
            for _ in 0..8 {
                sc.spawn(|| {
                    for _ in 0..200 {
                        if let Some(lk) = BuildLock::try_take(&l, "g").unwrap() {
                            let now = held.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            assert_eq!(now, 0, "two holders of one build lock");
                            held.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                            drop(lk);
                        }
                    }
                });
            }
        });
        assert!(!p.exists());
    }

    #[test]
    fn leftovers_are_found_unless_a_build_holds_them_and_then_removed() {
        let d = tempfile::tempdir().unwrap();
        let l = Layout::new(Some(d.path()));
        let s = GuestStore::new(&l);
        guest(&l, "ok", "vbuild0");
        std::fs::create_dir_all(l.guest_rootfs("killed").join("etc")).unwrap();
        std::fs::write(l.guests_dir().join(".gone.lock"), "").unwrap();
        std::fs::create_dir_all(l.guest_rootfs("building")).unwrap();
        let busy = BuildLock::try_take(&l, "building").unwrap().unwrap();
        let found = s.leftovers().unwrap();
        assert_eq!(
            found,
            vec![
                Leftover::HalfBuilt("killed".into()),
                Leftover::LockFile(l.guests_dir().join(".gone.lock")),
            ]
        );
        // Looking changed nothing.
        assert!(l.guest_dir("killed").exists());
        assert!(l.guests_dir().join(".gone.lock").exists());
        assert_eq!(s.remove_leftovers().unwrap(), found);
        assert!(!l.guest_dir("killed").exists());
        assert!(!l.guests_dir().join(".gone.lock").exists());
        assert!(!l.guests_dir().join(".killed.lock").exists());
        assert!(
            l.guest_rootfs("building").exists(),
            "a running build is left alone"
        );
        assert!(s.exists("ok"));
        drop(busy);
        assert!(s.leftovers().unwrap() == vec![Leftover::HalfBuilt("building".into())]);
    }
}
