//! Cgroups: one `Cgroup` API over the host's layout — cgroup v2 (unified) or
//! v1/hybrid (per-controller hierarchies plus an optional unified mount) —
//! detected once at run time from the files under /sys/fs/cgroup.
//!
//! vbuild only ever creates, changes and removes groups below its own
//! `vbuild/` directory at the root of each hierarchy; groups it did not
//! create (such as the one this process runs in) are never touched.

mod bpf;
mod devices;
mod fsio;
mod join;
mod layout;
mod limits;
mod usage;

pub use devices::{DeviceKind, DeviceRule};
pub use join::Joiner;
pub use limits::{EffectiveLimits, IoThrottle, MemoryExtras, MemoryLimit};
pub use usage::Usage;

use fsio::{read_to_string, write_value};
use layout::{Dir, DirKind, Layout};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A cgroup operation that failed, naming the file it failed on.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// I/O on a cgroup file or directory failed.
    #[error("{path}: {source}")]
    Io {
        /// The cgroupfs path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The host has no usable cgroup layout.
    #[error("{0}")]
    Unsupported(String),
    /// A group name that would leave vbuild's own subtree or is malformed.
    #[error("cgroup name {0:?} is not valid (use a relative path like vbuild/mail01)")]
    BadName(String),
    /// Processes were still running when the wait ran out.
    #[error("{path}: {count} process(es) still running after kill (stuck in the kernel?); retry vbuild stop")]
    StillRunning {
        /// The group that is not empty.
        path: PathBuf,
        /// How many processes were left.
        count: usize,
    },
    /// A limit value the kernel cannot take.
    #[error("{0}")]
    BadValue(String),
    /// A swap limit without a memory limit (v1 limits them together).
    #[error("{group}: a swap limit needs a memory limit too")]
    SwapWithoutMemory {
        /// The group.
        group: String,
    },
    /// A CPU bandwidth the kernel cannot take (not positive, or below its
    /// minimum quota).
    #[error("{group}: {cpus} CPUs is not a bandwidth the kernel takes (a positive number, at least {min})")]
    CpusOutOfRange {
        /// The group.
        group: String,
        /// What was asked.
        cpus: f64,
        /// The smallest the kernel takes.
        min: f64,
    },
    /// The kernel has no swap accounting: the swap control file is missing.
    #[error("{path}: missing, the kernel has no swap accounting")]
    NoSwapAccounting {
        /// The control file that would take the limit.
        path: PathBuf,
    },
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CgroupError + '_ {
    move |source| CgroupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The host's cgroup layout: where each hierarchy vbuild uses is mounted.
#[derive(Debug, Clone)]
pub struct Hierarchy {
    root: PathBuf,
    layout: Layout,
}

impl Hierarchy {
    /// Detects the layout mounted under /sys/fs/cgroup.
    pub fn detect() -> Result<Hierarchy, CgroupError> {
        Hierarchy::at(Path::new("/sys/fs/cgroup"))
    }

    /// Reads the layout below `root` by the files present: `cgroup.controllers`
    /// at the root means cgroup v2; otherwise each subdirectory holding
    /// `cgroup.procs` is a v1 hierarchy named by its controllers
    /// (`cpu,cpuacct`, `memory`, `systemd` for name=systemd) and one holding
    /// `cgroup.controllers` is the unified mount of a hybrid host. Tests point
    /// it at a fake tree laid out the same way.
    pub fn at(root: &Path) -> Result<Hierarchy, CgroupError> {
        let layout = layout::detect(root)?;
        Ok(Hierarchy {
            root: root.to_path_buf(),
            layout,
        })
    }

    /// True on a pure cgroup v2 host.
    pub fn is_v2(&self) -> bool {
        matches!(self.layout, Layout::Unified)
    }

    /// Where the hierarchies are mounted (normally /sys/fs/cgroup).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The controllers vbuild can limit with on this host (`memory`, `cpu`,
    /// `pids`, `io`/`blkio`, ...), for `vbuild check`.
    pub fn controllers(&self) -> Vec<String> {
        match &self.layout {
            Layout::Unified => fsio::read_words(&self.root.join("cgroup.controllers")),
            Layout::Legacy { mounts, .. } => {
                let mut all: Vec<String> = mounts
                    .iter()
                    .flat_map(|m| m.controllers.iter().cloned())
                    .collect();
                all.sort();
                all.dedup();
                all
            }
        }
    }

    /// The directories `Cgroup::create(rel)` would make: in every hierarchy
    /// vbuild uses, the group and those of its parents that do not exist
    /// yet, shallowest first. A caller records them before create so that
    /// `Cgroup::remove_made` later undoes exactly its own mkdirs.
    pub fn missing_dirs(&self, rel: &str) -> Result<Vec<PathBuf>, CgroupError> {
        check_rel(rel)?;
        let mut out = Vec::new();
        for d in self.dirs_for(rel) {
            let mut chain = Vec::new();
            let mut p = d.path;
            for _ in rel.split('/') {
                if p.is_dir() {
                    break;
                }
                chain.push(p.clone());
                p.pop();
            }
            out.extend(chain.into_iter().rev());
        }
        Ok(out)
    }

    /// The parents of `rel` in every hierarchy vbuild uses, below each
    /// hierarchy's root (for `a/b/c`: `a` and `a/b` there).
    pub fn parent_dirs(&self, rel: &str) -> Result<Vec<PathBuf>, CgroupError> {
        check_rel(rel)?;
        let depth = rel.split('/').count();
        let mut out = Vec::new();
        for d in self.dirs_for(rel) {
            let mut p = d.path;
            for _ in 1..depth {
                p.pop();
                out.push(p.clone());
            }
        }
        Ok(out)
    }

    /// Every directory `rel` lives in, one per hierarchy vbuild uses.
    fn dirs_for(&self, rel: &str) -> Vec<Dir> {
        match &self.layout {
            Layout::Unified => vec![Dir {
                kind: DirKind::Unified,
                path: self.root.join(rel),
            }],
            Layout::Legacy { mounts, unified } => {
                let mut dirs: Vec<Dir> = mounts
                    .iter()
                    .map(|m| Dir {
                        kind: DirKind::V1(m.controllers.clone()),
                        path: m.path.join(rel),
                    })
                    .collect();
                if let Some(u) = unified {
                    dirs.push(Dir {
                        kind: DirKind::Unified,
                        path: u.join(rel),
                    });
                }
                dirs
            }
        }
    }
}

/// One group (e.g. `vbuild/mail01`) across every hierarchy of the host.
#[derive(Debug, Clone)]
pub struct Cgroup {
    rel: String,
    v2: bool,
    dirs: Vec<Dir>,
}

/// The controllers vbuild enables for its groups on cgroup v2.
const V2_CONTROLLERS: [&str; 4] = ["cpu", "io", "memory", "pids"];

/// How long `kill_all` waits for a group to empty before giving up.
const KILL_WAIT: Duration = Duration::from_secs(10);

fn check_rel(rel: &str) -> Result<(), CgroupError> {
    let ok = !rel.is_empty()
        && rel.split('/').all(|c| {
            !c.is_empty()
                && c != "."
                && c != ".."
                && c.chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch))
        });
    if ok {
        Ok(())
    } else {
        Err(CgroupError::BadName(rel.to_string()))
    }
}

impl Cgroup {
    /// Creates `rel` in every hierarchy vbuild uses. On v2 the controllers
    /// vbuild limits with are enabled in `cgroup.subtree_control` of every
    /// ancestor (never in the group itself, so a guest's init can live in it
    /// and later move to sub-groups it creates). Existing groups are reused.
    pub fn create(h: &Hierarchy, rel: &str) -> Result<Cgroup, CgroupError> {
        check_rel(rel)?;
        if h.is_v2() {
            let root_controllers: BTreeSet<String> =
                fsio::read_words(&h.root.join("cgroup.controllers"))
                    .into_iter()
                    .collect();
            // Another guest's `remove` may take away a shared parent between
            // our steps: then walk down again.
            let mut tries = 0;
            'walk: loop {
                let mut available = root_controllers.clone();
                let mut dir = h.root.clone();
                for comp in rel.split('/') {
                    available = enable_controllers(&dir, &available)?;
                    dir.push(comp);
                    match std::fs::create_dir(&dir) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound && tries < 5 => {
                            tries += 1;
                            continue 'walk;
                        }
                        Err(e) => return Err(io_err(&dir)(e)),
                    }
                }
                break;
            }
        } else {
            let mut made: Vec<PathBuf> = Vec::new();
            for d in h.dirs_for(rel) {
                let existed = d.path.is_dir();
                let cpuset = matches!(&d.kind, DirKind::V1(c) if c.iter().any(|c| c == "cpuset"));
                let made_ok = if cpuset {
                    create_cpuset_dirs(&d.path, rel)
                } else {
                    create_dir_racing_remove(&d.path)
                };
                if let Err(e) = made_ok {
                    // Leave no half-created group behind.
                    for p in made.iter().rev() {
                        let _ = std::fs::remove_dir(p);
                    }
                    return Err(io_err(&d.path)(e));
                }
                if !existed {
                    made.push(d.path);
                }
            }
        }
        Ok(Cgroup {
            rel: rel.to_string(),
            v2: h.is_v2(),
            dirs: h.dirs_for(rel),
        })
    }

    /// Opens `rel` if it exists (in the first hierarchy vbuild uses).
    pub fn open(h: &Hierarchy, rel: &str) -> Result<Option<Cgroup>, CgroupError> {
        check_rel(rel)?;
        let dirs = h.dirs_for(rel);
        if !dirs.iter().any(|d| d.path.is_dir()) {
            return Ok(None);
        }
        Ok(Some(Cgroup {
            rel: rel.to_string(),
            v2: h.is_v2(),
            dirs,
        }))
    }

    /// The group's path relative to each hierarchy root (`vbuild/mail01`).
    pub fn rel(&self) -> &str {
        &self.rel
    }

    /// Moves `pid` (a whole process) into this group in every hierarchy.
    pub fn attach(&self, pid: i32) -> Result<(), CgroupError> {
        for d in &self.dirs {
            let f = d.path.join("cgroup.procs");
            write_value(&f, &pid.to_string())?;
        }
        Ok(())
    }

    /// The cgroup2 directory to root the guest's cgroup namespace at and to
    /// mount as its /sys/fs/cgroup (the unified mount on hybrid hosts).
    pub fn unified_dir(&self) -> Option<PathBuf> {
        self.dirs
            .iter()
            .find(|d| d.kind == DirKind::Unified)
            .map(|d| d.path.clone())
    }

    /// The group's directory in the hierarchy holding `controller` (v1), or
    /// the group itself (v2).
    pub(crate) fn dir_of(&self, controller: &str) -> Option<&Path> {
        if self.v2 {
            return self.dirs.first().map(|d| d.path.as_path());
        }
        self.dirs
            .iter()
            .find(|d| matches!(&d.kind, DirKind::V1(c) if c.iter().any(|c| c == controller)))
            .map(|d| d.path.as_path())
    }

    /// True when the group lives on a pure cgroup v2 host.
    pub fn is_v2(&self) -> bool {
        self.v2
    }

    /// Every process in the group and its sub-groups, in every hierarchy,
    /// sorted and without duplicates.
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let mut all = BTreeSet::new();
        for d in &self.dirs {
            collect_pids(&d.path, &mut all)?;
        }
        Ok(all.into_iter().collect())
    }

    /// Kills every process in the group and its sub-groups and waits until
    /// it is empty (at most 10 s). Uses `cgroup.kill` where the kernel has
    /// it; otherwise (and for stragglers) freezes the group so nothing can
    /// fork or exit under us, sends SIGKILL to each process and thaws.
    pub fn kill_all(&self) -> Result<(), CgroupError> {
        // A guest may have frozen a group of its own (cgroup2's
        // cgroup.freeze in its delegated subtree): thaw every group first,
        // since a process frozen by the v1 freezer does not die.
        self.thaw_all();
        if let Some(u) = self.unified_dir() {
            let kill = u.join("cgroup.kill");
            if kill.exists() && !self.pids()?.is_empty() {
                write_value(&kill, "1")?;
            }
        }
        let deadline = Instant::now() + KILL_WAIT;
        let mut pause = Duration::from_millis(1);
        loop {
            let pids = self.pids()?;
            if pids.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(CgroupError::StillRunning {
                    path: self.dirs[0].path.clone(),
                    count: pids.len(),
                });
            }
            self.thaw_all();
            let frozen = self.freeze(true);
            for pid in self.pids()? {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            if frozen {
                self.freeze(false);
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// Sends `signal` once to every process in the group and its
    /// sub-groups, with the group frozen meanwhile so that no pid read from
    /// it can exit and be reused by a process outside before the signal
    /// lands (when no freezer is available, a pid is signalled only while it
    /// is still listed in the group). Frozen processes act on it when
    /// thawed. Returns how many were signalled.
    pub fn signal_all(&self, signal: nix::sys::signal::Signal) -> Result<usize, CgroupError> {
        self.thaw_all();
        let frozen = self.freeze(true);
        let pids = self.pids()?;
        for pid in &pids {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid), signal);
        }
        if frozen {
            self.freeze(false);
        }
        Ok(pids.len())
    }

    /// Thaws the group and every group below it, in every hierarchy (v1
    /// `freezer.state`, cgroup2 `cgroup.freeze`), top-down. Best effort.
    pub fn thaw_all(&self) {
        fn walk(dir: &Path) {
            let v1 = dir.join("freezer.state");
            if v1.exists() {
                let _ = write_value(&v1, "THAWED");
            }
            let v2 = dir.join("cgroup.freeze");
            if v2.exists() {
                let _ = write_value(&v2, "0");
            }
            if let Ok(subs) = subdirs(dir) {
                for s in subs {
                    walk(&s);
                }
            }
        }
        for d in &self.dirs {
            walk(&d.path);
        }
    }

    /// Freezes or thaws every process of the group (an OCI runtime's
    /// pause and resume); returns whether the host has a freezer for it.
    pub fn set_frozen(&self, on: bool) -> bool {
        self.freeze(on)
    }

    /// Whether the group is frozen now (v1 `freezer.state` FROZEN, v2
    /// `cgroup.freeze` 1).
    pub fn is_frozen(&self) -> bool {
        if let Some(dir) = self.dir_of("freezer").filter(|_| !self.v2) {
            return read_to_string(&dir.join("freezer.state")).is_ok_and(|s| s.trim() == "FROZEN");
        }
        if let Some(dir) = self.unified_dir().filter(|_| self.v2) {
            return read_to_string(&dir.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1");
        }
        false
    }

    /// Freezes (or thaws) the group; returns whether a freezer was found.
    /// Best effort: kill_all still works without a freezer, only racier.
    fn freeze(&self, on: bool) -> bool {
        if let Some(dir) = self.dir_of("freezer").filter(|_| !self.v2) {
            let state = dir.join("freezer.state");
            if write_value(&state, if on { "FROZEN" } else { "THAWED" }).is_err() {
                return false;
            }
            if on {
                // FREEZING until every task stopped; bounded wait.
                let until = Instant::now() + Duration::from_secs(1);
                while Instant::now() < until {
                    match read_to_string(&state) {
                        Ok(s) if s.trim() == "FREEZING" => {
                            std::thread::sleep(Duration::from_millis(1))
                        }
                        _ => break,
                    }
                }
            }
            return true;
        }
        if let Some(dir) = self.unified_dir().filter(|_| self.v2) {
            let f = dir.join("cgroup.freeze");
            return f.exists() && write_value(&f, if on { "1" } else { "0" }).is_ok();
        }
        false
    }

    /// Removes the group and every sub-group (bottom-up) from every
    /// hierarchy, then the parents vbuild made for it (`vbuild/`) once no
    /// other guest uses them, so a host without guests keeps no trace.
    /// Already-gone directories are fine; a group that still has processes
    /// fails with EBUSY naming it (call `kill_all` first).
    pub fn remove(&self) -> Result<(), CgroupError> {
        let depth = self.rel.split('/').count() - 1;
        for d in &self.dirs {
            rmdir_tree(&d.path)?;
            // Best effort: a parent still holding another guest's group is
            // busy (ENOTEMPTY/EBUSY) and stays.
            let mut parent = d.path.parent();
            for _ in 0..depth {
                match parent {
                    Some(p) if std::fs::remove_dir(p).is_ok() => parent = p.parent(),
                    _ => break,
                }
            }
        }
        Ok(())
    }
}

impl Cgroup {
    /// Removes only what a caller made (`made`, from
    /// `Hierarchy::missing_dirs` before create): the group's own directory
    /// with its sub-groups where it is listed, then the listed parents of
    /// the group, deepest first, each only while empty (one still holding
    /// another group stays). A group or parent that existed before is never
    /// removed; listed paths that are not this group's ancestors are
    /// ignored. A group still holding processes fails with EBUSY naming it
    /// (call `kill_all` first).
    pub fn remove_made(&self, made: &[PathBuf]) -> Result<(), CgroupError> {
        for d in self.dirs.iter().filter(|d| made.contains(&d.path)) {
            rmdir_tree(&d.path)?;
        }
        let mut parents: Vec<&PathBuf> = made
            .iter()
            .filter(|p| {
                self.dirs
                    .iter()
                    .any(|d| d.path != **p && d.path.starts_with(p))
            })
            .collect();
        parents.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for p in parents {
            // Busy (another group below it) or already gone: it stays.
            let _ = std::fs::remove_dir(p);
        }
        Ok(())
    }
}

/// Enables the wanted controllers among `available` in `dir`'s
/// `cgroup.subtree_control`; returns the set its children get.
fn enable_controllers(
    dir: &Path,
    available: &BTreeSet<String>,
) -> Result<BTreeSet<String>, CgroupError> {
    let control = dir.join("cgroup.subtree_control");
    let mut enabled: BTreeSet<String> = fsio::read_words(&control)
        .into_iter()
        .map(|w| w.trim_start_matches('+').to_string())
        .collect();
    let missing: Vec<&str> = V2_CONTROLLERS
        .iter()
        .copied()
        .filter(|c| available.contains(*c) && !enabled.contains(*c))
        .collect();
    if missing.is_empty() {
        return Ok(enabled);
    }
    let line: Vec<String> = missing.iter().map(|c| format!("+{c}")).collect();
    if write_value(&control, &line.join(" ")).is_ok() {
        enabled.extend(missing.iter().map(|c| c.to_string()));
        return Ok(enabled);
    }
    // One refused controller (e.g. cpu while realtime tasks run) fails the
    // whole write: enable the others one by one. A limit that needs a
    // missing controller is refused later, naming it (`supports`).
    for c in missing {
        if write_value(&control, &format!("+{c}")).is_ok() {
            enabled.insert(c.to_string());
        }
    }
    Ok(enabled)
}

/// `create_dir_all` that survives another guest's `remove` taking away a
/// shared parent between our mkdirs (the parent is made again).
fn create_dir_racing_remove(dir: &Path) -> std::io::Result<()> {
    let mut tries = 0;
    loop {
        match std::fs::create_dir_all(dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && tries < 5 => tries += 1,
            other => return other,
        }
    }
}

/// Makes the v1 cpuset group `dir` (whose path below its hierarchy is
/// `rel`) one level at a time, giving each new level its parent's
/// `cpuset.cpus` and `cpuset.mems`: v1 starts both empty, and a task cannot
/// join a cpuset without cpus and mems.
fn create_cpuset_dirs(dir: &Path, rel: &str) -> std::io::Result<()> {
    let mut root = dir.to_path_buf();
    for _ in rel.split('/') {
        root.pop();
    }
    let mut cur = root;
    for comp in rel.split('/') {
        let parent = cur.clone();
        cur.push(comp);
        match std::fs::create_dir(&cur) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        for f in ["cpuset.cpus", "cpuset.mems"] {
            let mine = cur.join(f);
            let have = std::fs::read_to_string(&mine).unwrap_or_default();
            if !have.trim().is_empty() {
                continue;
            }
            match std::fs::read_to_string(parent.join(f)) {
                Ok(v) if !v.trim().is_empty() => std::fs::write(&mine, v.trim())?,
                _ => {}
            }
        }
    }
    Ok(())
}

fn collect_pids(dir: &Path, out: &mut BTreeSet<i32>) -> Result<(), CgroupError> {
    let procs = dir.join("cgroup.procs");
    match std::fs::read_to_string(&procs) {
        Ok(s) => out.extend(s.lines().filter_map(|l| l.trim().parse::<i32>().ok())),
        Err(e) if gone(&e) => return Ok(()),
        Err(e) => return Err(io_err(&procs)(e)),
    }
    for sub in subdirs(dir)? {
        collect_pids(&sub, out)?;
    }
    Ok(())
}

/// Sub-directories of `dir` (sub-groups); a vanished dir has none.
fn subdirs(dir: &Path) -> Result<Vec<PathBuf>, CgroupError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if gone(&e) => return Ok(Vec::new()),
        Err(e) => return Err(io_err(dir)(e)),
    };
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(io_err(dir))?;
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            out.push(entry.path());
        }
    }
    Ok(out)
}

fn gone(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENODEV)
}

fn rmdir_tree(dir: &Path) -> Result<(), CgroupError> {
    for sub in subdirs(dir)? {
        rmdir_tree(&sub)?;
    }
    match std::fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if gone(&e) => Ok(()),
        Err(e) => Err(io_err(dir)(e)),
    }
}

#[cfg(test)]
mod tests;
