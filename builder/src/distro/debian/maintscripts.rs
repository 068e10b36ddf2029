//! Maintainer scripts, run the way dpkg runs them on a fresh install, inside
//! the build's script context: the configure order (Pre-Depends and
//! Depends before dependents, cycles broken deterministically), the
//! environment dpkg gives scripts, the build-time guards (`policy-rc.d`
//! refusing service starts, a no-op `start-stop-daemon` under a local
//! diversion) and trigger processing.

use super::deb::Unpacked;
use super::dpkgdb::{self, TriggerDecl};
use super::relation;
use crate::context::{ContextError, ScriptContext};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use vbuild_kernel::fsroot::Root;

/// Policy-rc.d that denies every service action (exit 101), so packages
/// never start daemons in the build.
const POLICY_RC_D: &str =
    "#!/bin/sh\n# Installed by vbuild while building; removed afterwards.\nexit 101\n";

/// Replacement start-stop-daemon for the build: does nothing.
const FAKE_SSD: &str =
    "#!/bin/sh\necho \"Warning: fake start-stop-daemon called, doing nothing\" >&2\nexit 0\n";

/// The order in which packages are configured: every package after the
/// packages its Pre-Depends and Depends are satisfied by (by name or
/// Provides, first installed alternative). Among the ready ones Essential
/// packages go first, then `Priority: required`, then the rest, as
/// mmdebstrap (Essential set first) and apt's ordering do: scripts may use
/// what every Debian system has without declaring it (locales' config
/// calls awk, which only mawk's postinst makes). When a cycle has to be
/// broken the choice is by fewest unmet Pre-Depends, then fewest unmet
/// Depends; names decide ties, so the order is deterministic.
pub fn configure_order(pkgs: &[Unpacked]) -> Vec<usize> {
    let mut by_name: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, u) in pkgs.iter().enumerate() {
        by_name.entry(u.name()).or_default().push(i);
    }
    let mut providers: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, u) in pkgs.iter().enumerate() {
        for p in names_in(u.control.get("Provides")) {
            providers.entry(p).or_default().push(i);
        }
    }
    let resolve = |name: &str| -> Option<usize> {
        by_name
            .get(name)
            .and_then(|v| v.first().copied())
            .or_else(|| providers.get(name).and_then(|v| v.first().copied()))
    };
    // deps[i] = (pre-depends targets, depends targets)
    let mut deps: Vec<(BTreeSet<usize>, BTreeSet<usize>)> = Vec::with_capacity(pkgs.len());
    for (i, u) in pkgs.iter().enumerate() {
        let mut pre = BTreeSet::new();
        let mut dep = BTreeSet::new();
        for (field, set) in [("Pre-Depends", &mut pre), ("Depends", &mut dep)] {
            for alts in requirements(u.control.get(field)) {
                if let Some(j) = alts.iter().find_map(|a| resolve(a)) {
                    if j != i {
                        set.insert(j);
                    }
                }
            }
        }
        deps.push((pre, dep));
    }
    let rank: Vec<u8> = pkgs
        .iter()
        .map(|u| {
            let field = |f: &str| u.control.get(f).map(str::trim).unwrap_or("");
            if field("Essential") == "yes" {
                0
            } else if field("Priority") == "required" {
                1
            } else {
                2
            }
        })
        .collect();
    let edges: Vec<Vec<usize>> = deps
        .iter()
        .map(|(p, d)| p.union(d).copied().collect())
        .collect();
    let cycle = strongly_connected(&edges);
    let mut done = vec![false; pkgs.len()];
    let mut started = vec![false; pkgs.len()];
    let mut order = Vec::with_capacity(pkgs.len());
    while order.len() < pkgs.len() {
        let unmet = |i: usize| -> (usize, usize) {
            let (p, d) = &deps[i];
            (
                p.iter().filter(|j| !done[**j]).count(),
                d.iter().filter(|j| !done[**j]).count(),
            )
        };
        // A cycle is broken only from inside: a package whose unmet
        // dependencies all lie in its own cycle (so libc6 <-> libgcc-s1
        // is broken before libc-bin, which needs libc6, runs).
        let breakable = |i: usize| edges[i].iter().all(|&j| done[j] || cycle[j] == cycle[i]);
        // A cycle once broken is finished before anything else.
        let next = (0..pkgs.len())
            .filter(|&i| !done[i] && breakable(i))
            .min_by_key(|&i| {
                let u = unmet(i);
                (
                    u.0 + u.1 > 0,
                    u,
                    !started[cycle[i]],
                    rank[i],
                    pkgs[i].name(),
                )
            })
            .expect("the remaining graph has a cycle with no way out, which cannot be");
        done[next] = true;
        started[cycle[next]] = true;
        order.push(next);
    }
    order
}

/// The strongly connected component of every node (Tarjan): nodes that
/// depend on each other, directly or around a cycle, share a number.
fn strongly_connected(edges: &[Vec<usize>]) -> Vec<usize> {
    struct Walk<'a> {
        edges: &'a [Vec<usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        component: Vec<usize>,
        components: usize,
    }
    impl Walk<'_> {
        fn visit(&mut self, v: usize) {
            self.index[v] = Some(self.next);
            self.low[v] = self.next;
            self.next += 1;
            self.stack.push(v);
            self.on_stack[v] = true;
            for k in 0..self.edges[v].len() {
                let w = self.edges[v][k];
                match self.index[w] {
                    None => {
                        self.visit(w);
                        self.low[v] = self.low[v].min(self.low[w]);
                    }
                    Some(iw) if self.on_stack[w] => self.low[v] = self.low[v].min(iw),
                    Some(_) => {}
                }
            }
            if Some(self.low[v]) == self.index[v] {
                while let Some(w) = self.stack.pop() {
                    self.on_stack[w] = false;
                    self.component[w] = self.components;
                    if w == v {
                        break;
                    }
                }
                self.components += 1;
            }
        }
    }
    let n = edges.len();
    let mut walk = Walk {
        edges,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        next: 0,
        component: vec![0; n],
        components: 0,
    };
    for v in 0..n {
        if walk.index[v].is_none() {
            walk.visit(v);
        }
    }
    walk.component
}

/// Package names of a dependency field, alternatives flattened.
fn names_in(field: Option<&str>) -> Vec<String> {
    requirements(field).into_iter().flatten().collect()
}

/// The requirements of a dependency field, each a list of alternative
/// package names (architecture qualifiers such as `:any` dropped).
fn requirements(field: Option<&str>) -> Vec<Vec<String>> {
    let Some(text) = field.map(|f| f.replace('\n', " ")) else {
        return vec![];
    };
    if text.trim().is_empty() {
        return vec![];
    }
    match relation::parse(&text) {
        Ok(list) => list
            .into_iter()
            .map(|alts| alts.into_iter().map(|d| d.name).collect())
            .collect(),
        // Ordering only: fall back to a plain split rather than fail.
        Err(_) => text
            .split(',')
            .map(|req| {
                req.split('|')
                    .filter_map(|a| a.split_whitespace().next())
                    .map(|n| n.split(':').next().unwrap_or_default().to_string())
                    .collect()
            })
            .collect(),
    }
}

/// A maintainer script that failed, naming package and script.
#[derive(Debug, thiserror::Error)]
#[error("package {package}: {script} failed: {source}")]
pub struct ScriptError {
    /// The package.
    pub package: String,
    /// `preinst install`, `postinst configure`, `postinst triggered`.
    pub script: String,
    /// What happened, with the last lines of output.
    #[source]
    pub source: ContextError,
}

/// Runs maintainer scripts of unpacked packages in a context.
pub struct Runner<'a> {
    ctx: &'a ScriptContext,
    dpkg_version: String,
}

impl<'a> Runner<'a> {
    /// A runner for `ctx`; `dpkg_version` goes into DPKG_RUNNING_VERSION.
    pub fn new(ctx: &'a ScriptContext, dpkg_version: &str) -> Runner<'a> {
        Runner {
            ctx,
            dpkg_version: dpkg_version.to_string(),
        }
    }

    /// Runs script `name` of `u` with `args` if the package has it; returns
    /// whether it ran.
    pub fn run(&self, u: &Unpacked, name: &str, args: &[&str]) -> Result<bool, ScriptError> {
        if !u.control_files.contains_key(name) {
            return Ok(false);
        }
        let path = Path::new("/").join(dpkgdb::info_path(u, name));
        let path = path.to_string_lossy().into_owned();
        let mut argv = vec![path.as_str()];
        argv.extend_from_slice(args);
        let what = format!("{name} {}", args.first().copied().unwrap_or(""));
        let env = [
            ("DPKG_MAINTSCRIPT_PACKAGE", u.name()),
            ("DPKG_MAINTSCRIPT_PACKAGE_REFCOUNT", "1"),
            ("DPKG_MAINTSCRIPT_ARCH", u.arch()),
            ("DPKG_MAINTSCRIPT_NAME", name),
            ("DPKG_MAINTSCRIPT_DEBUG", "0"),
            ("DPKG_RUNNING_VERSION", self.dpkg_version.as_str()),
            ("DPKG_ADMINDIR", "/var/lib/dpkg"),
            ("DPKG_ROOT", ""),
        ];
        self.ctx
            .run(&format!("{what} of {}", u.name()), &argv, &env)
            .map_err(|source| ScriptError {
                package: u.name().to_string(),
                script: what,
                source,
            })?;
        Ok(true)
    }
}

/// Triggers to process after configuration: for each interested package
/// (index into `pkgs`), the trigger names activated, in configure order.
/// Activations come from `activate*` lines of installed packages, from
/// installed paths at or below a file trigger's path, and from
/// `triggers/Unincorp` (what `dpkg-trigger` recorded while scripts ran).
pub fn pending_triggers(
    root: &Root,
    pkgs: &[Unpacked],
    order: &[usize],
) -> Vec<(usize, Vec<String>)> {
    let mut activated: BTreeSet<String> = BTreeSet::new();
    let mut interests: Vec<(usize, String)> = Vec::new();
    for (i, u) in pkgs.iter().enumerate() {
        for d in dpkgdb::parse_triggers(u.triggers().unwrap_or("")) {
            match d {
                TriggerDecl::Activate { name } => {
                    activated.insert(name);
                }
                TriggerDecl::Interest { name, .. } => interests.push((i, name)),
            }
        }
    }
    let unincorp = root
        .read(&Path::new(dpkgdb::ADMIN).join("triggers/Unincorp"))
        .unwrap_or_default();
    for line in String::from_utf8_lossy(&unincorp).lines() {
        if let Some(name) = line.split_whitespace().next() {
            activated.insert(name.to_string());
        }
    }
    // File triggers: any installed path at or below the interest path.
    for (_, name) in interests.iter().filter(|(_, n)| n.starts_with('/')) {
        let p = Path::new(name);
        if pkgs
            .iter()
            .any(|u| u.files.iter().any(|f| f.starts_with(p)))
        {
            activated.insert(name.clone());
        }
    }
    let mut per_pkg: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for (i, name) in interests {
        if activated.contains(&name) {
            let v = per_pkg.entry(i).or_default();
            if !v.contains(&name) {
                v.push(name);
            }
        }
    }
    order
        .iter()
        .filter_map(|i| per_pkg.remove(i).map(|names| (*i, names)))
        .collect()
}

/// The build-time guards: `/usr/sbin/policy-rc.d` (exit 101) and a no-op
/// start-stop-daemon with the real one moved aside under a local
/// diversion. [`BuildGuards::remove`] (or drop) restores everything.
pub struct BuildGuards<'r> {
    root: &'r Root,
    policy_rc_d: bool,
    ssd: Option<String>,
}

impl<'r> BuildGuards<'r> {
    /// Installs the guards. `ssd` is start-stop-daemon's path as its
    /// package lists it (`/sbin/start-stop-daemon`), if installed.
    pub fn install(root: &'r Root, ssd: Option<&str>) -> Result<BuildGuards<'r>, dpkgdb::DbError> {
        let mut g = BuildGuards {
            root,
            policy_rc_d: false,
            ssd: None,
        };
        let prc = Path::new("usr/sbin/policy-rc.d");
        if root.kind(prc)?.is_none() {
            root.write(prc, POLICY_RC_D.as_bytes(), 0o755)?;
            g.policy_rc_d = true;
        }
        if let Some(ssd) = ssd {
            let real = format!("{ssd}.REAL");
            if root.kind(Path::new(ssd))?.is_some() && root.kind(Path::new(&real))?.is_none() {
                root.rename(Path::new(ssd), Path::new(&real))?;
                g.ssd = Some(ssd.to_string());
                root.write(Path::new(ssd), FAKE_SSD.as_bytes(), 0o755)?;
                dpkgdb::add_local_diversion(root, ssd, &real)?;
            }
        }
        Ok(g)
    }

    /// Removes the guards, restoring the real start-stop-daemon.
    pub fn remove(mut self) -> Result<(), dpkgdb::DbError> {
        self.restore()
    }

    fn restore(&mut self) -> Result<(), dpkgdb::DbError> {
        if self.policy_rc_d {
            self.policy_rc_d = false;
            self.root.remove_all(Path::new("usr/sbin/policy-rc.d"))?;
        }
        if let Some(ssd) = self.ssd.take() {
            let real = PathBuf::from(format!("{ssd}.REAL"));
            self.root.rename(&real, Path::new(&ssd))?;
            dpkgdb::remove_local_diversion(self.root, &ssd)?;
        }
        Ok(())
    }
}

impl Drop for BuildGuards<'_> {
    fn drop(&mut self) {
        let _ = self.restore();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distro::debian::deb::Paragraph;

    fn pkg(name: &str, extra: &str) -> Unpacked {
        Unpacked {
            deb: PathBuf::from(format!("{name}.deb")),
            control: Paragraph::parse(&format!("Package: {name}\nVersion: 1\n{extra}")).unwrap(),
            files: vec![],
            md5sums: vec![],
            conffiles: vec![],
            control_files: Default::default(),
            notes: vec![],
            regular_files: 0,
            bytes: 0,
        }
    }

    fn names(pkgs: &[Unpacked]) -> Vec<&str> {
        configure_order(pkgs)
            .into_iter()
            .map(|i| pkgs[i].name())
            .collect()
    }

    #[test]
    fn dependencies_come_first_and_cycles_break_deterministically() {
        let pkgs = vec![
            pkg("app", "Depends: libfoo (>= 1), awk | mawk\n"),
            pkg("libfoo", "Pre-Depends: libc6\n"),
            pkg("mawk", "Provides: awk\nDepends: libc6\n"),
            pkg("libc6", "Depends: libgcc-s1\n"),
            pkg("libgcc-s1", "Depends: libc6\n"),
        ];
        assert_eq!(
            names(&pkgs),
            ["libc6", "libgcc-s1", "libfoo", "mawk", "app"]
        );
        let mut rev = pkgs.clone();
        rev.reverse();
        assert_eq!(names(&rev), ["libc6", "libgcc-s1", "libfoo", "mawk", "app"]);
    }

    #[test]
    fn a_cycle_is_broken_from_inside_before_its_users_run() {
        // trixie: libc-bin (Essential) needs libc6, which is in a cycle with
        // libgcc-s1; locales needs libc-bin and uses awk (mawk needs libc6).
        let pkgs = vec![
            pkg("libc-bin", "Essential: yes\nDepends: libc6\n"),
            pkg("libc6", "Priority: optional\nDepends: libgcc-s1\n"),
            pkg("libgcc-s1", "Priority: optional\nDepends: libc6\n"),
            pkg("locales", "Priority: standard\nDepends: libc-bin\n"),
            pkg("mawk", "Priority: required\nDepends: libc6\n"),
        ];
        assert_eq!(
            names(&pkgs),
            ["libc6", "libgcc-s1", "libc-bin", "mawk", "locales"]
        );
    }

    #[test]
    fn essential_then_required_packages_are_configured_before_the_rest() {
        // locales (standard) uses awk without depending on it; mawk
        // (required) must already be configured, whatever the names say.
        let pkgs = vec![
            pkg(
                "aaa-locales",
                "Priority: standard
Depends: libc6
",
            ),
            pkg(
                "mawk",
                "Priority: required
Depends: libc6
",
            ),
            pkg(
                "libc6",
                "Priority: optional
",
            ),
            pkg(
                "dash",
                "Essential: yes
Priority: required
Depends: libc6
",
            ),
        ];
        assert_eq!(names(&pkgs), ["libc6", "dash", "mawk", "aaa-locales"]);
    }
}
