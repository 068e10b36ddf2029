//! Resolution (ours, as for Debian): from the requested names, follow
//! Requires (and Recommends when asked) to a closed set, choosing one
//! provider per dependency (its own name first, then the shortest name),
//! with file provides, rich dependencies, Obsoletes and Conflicts. Only
//! `noarch` and the host architecture are considered, and of each name
//! only the highest version across the repositories (dnf's "best").

use super::deps::{ranges_overlap, Dep, Rich};
use super::repodata::RpmEntry;
use super::version::compare;
use std::collections::{BTreeSet, HashMap};

/// A package chosen for installation, with the repository it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FedoraPackage {
    /// Its primary.xml entry.
    pub entry: RpmEntry,
    /// Index of its repository in the indices.
    pub repo: usize,
    /// That repository's base URL (set once resolved).
    pub base: String,
}

/// Why a request cannot be met.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ResolveError {
    /// Nothing provides a dependency.
    #[error("nothing provides \"{dep}\" needed by {by}; check the package name or add the repository that has it")]
    Unsatisfiable {
        /// The dependency.
        dep: String,
        /// Who needs it (a package's NEVRA, or the request).
        by: String,
    },
    /// Two chosen packages conflict.
    #[error("{a} conflicts with {b} (\"{dep}\"); leave one of them out of --include")]
    Conflict {
        /// The package stating the conflict.
        a: String,
        /// The one it conflicts with.
        b: String,
        /// The Conflicts entry.
        dep: String,
    },
}

/// Packages of the repositories that can be installed on `arch`.
pub struct Universe {
    pkgs: Vec<FedoraPackage>,
    by_cap: HashMap<String, Vec<usize>>,
}

impl Universe {
    /// The newest of each name among `repos` for `arch` (+ noarch).
    pub fn new(repos: &[Vec<RpmEntry>], arch: &str) -> Universe {
        let mut best: HashMap<String, FedoraPackage> = HashMap::new();
        for (r, entries) in repos.iter().enumerate() {
            for e in entries {
                if e.arch != arch && e.arch != "noarch" {
                    continue;
                }
                let newer = best.get(&e.name).is_none_or(|b| {
                    compare(&evr(&e.clone()), &evr(&b.entry)) == std::cmp::Ordering::Greater
                });
                if newer {
                    best.insert(
                        e.name.clone(),
                        FedoraPackage {
                            entry: e.clone(),
                            repo: r,
                            base: String::new(),
                        },
                    );
                }
            }
        }
        let mut pkgs: Vec<FedoraPackage> = best.into_values().collect();
        pkgs.sort_by(|a, b| a.entry.name.cmp(&b.entry.name));
        let mut by_cap: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, p) in pkgs.iter().enumerate() {
            by_cap.entry(p.entry.name.clone()).or_default().push(i);
            for d in &p.entry.provides {
                if let Dep::Simple { name, .. } = d {
                    by_cap.entry(name.clone()).or_default().push(i);
                }
            }
            for f in &p.entry.files {
                by_cap.entry(f.clone()).or_default().push(i);
            }
        }
        for v in by_cap.values_mut() {
            v.dedup();
        }
        Universe { pkgs, by_cap }
    }

    /// Whether package `i` provides the simple dependency `name range`.
    fn provides(&self, i: usize, name: &str, range: &Option<(super::deps::Op, String)>) -> bool {
        let e = &self.pkgs[i].entry;
        if e.files.iter().any(|f| f == name) {
            return true;
        }
        let own = Some((super::deps::Op::Eq, evr(e)));
        if e.name == name && ranges_overlap(&own, range) {
            return true;
        }
        e.provides.iter().any(|p| match p {
            Dep::Simple { name: n, range: pr } => n == name && ranges_overlap(pr, range),
            Dep::Rich(_) => false,
        })
    }

    /// Packages meeting `dep` as one package (simple, `with`, `without`).
    fn candidates(&self, dep: &Dep) -> Vec<usize> {
        match dep {
            Dep::Simple { name, range } => self
                .by_cap
                .get(name)
                .into_iter()
                .flatten()
                .copied()
                .filter(|&i| self.provides(i, name, range))
                .collect(),
            Dep::Rich(r) => match r.as_ref() {
                Rich::With(ds) => {
                    let mut c = self.candidates(&ds[0]);
                    for d in &ds[1..] {
                        let other = self.candidates(d);
                        c.retain(|i| other.contains(i));
                    }
                    c
                }
                Rich::Without(a, b) => {
                    let not = self.candidates(b);
                    self.candidates(a)
                        .into_iter()
                        .filter(|i| !not.contains(i))
                        .collect()
                }
                _ => Vec::new(),
            },
        }
    }
}

fn evr(e: &RpmEntry) -> String {
    format!("{}:{}-{}", e.epoch, e.version, e.release)
}

/// Options of one resolution.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Follow Recommends too.
    pub recommends: bool,
}

struct State<'u> {
    u: &'u Universe,
    chosen: BTreeSet<usize>,
    queue: Vec<usize>,
    opts: Options,
}

impl State<'_> {
    fn satisfied(&self, dep: &Dep) -> bool {
        match dep {
            Dep::Simple { .. } => self
                .u
                .candidates(dep)
                .iter()
                .any(|i| self.chosen.contains(i)),
            Dep::Rich(r) => match r.as_ref() {
                Rich::And(ds) => ds.iter().all(|d| self.satisfied(d)),
                Rich::Or(ds) => ds.iter().any(|d| self.satisfied(d)),
                Rich::If {
                    then,
                    cond,
                    otherwise,
                } => match (self.satisfied(cond), otherwise) {
                    (true, _) => self.satisfied(then),
                    (false, Some(o)) => self.satisfied(o),
                    (false, None) => true,
                },
                Rich::Unless {
                    then,
                    cond,
                    otherwise,
                } => match (self.satisfied(cond), otherwise) {
                    (false, _) => self.satisfied(then),
                    (true, Some(o)) => self.satisfied(o),
                    (true, None) => true,
                },
                Rich::With(_) | Rich::Without(..) => self
                    .u
                    .candidates(dep)
                    .iter()
                    .any(|i| self.chosen.contains(i)),
            },
        }
    }

    /// Whether a chosen package obsoletes package `i`.
    fn obsoleted(&self, i: usize) -> bool {
        let e = &self.u.pkgs[i].entry;
        let own = Some((super::deps::Op::Eq, evr(e)));
        self.chosen.iter().any(|&c| {
            c != i
                && self.u.pkgs[c].entry.obsoletes.iter().any(|o| match o {
                    Dep::Simple { name, range } => *name == e.name && ranges_overlap(&own, range),
                    Dep::Rich(_) => false,
                })
        })
    }

    fn pick(&self, dep: &Dep) -> Option<usize> {
        let want = match dep {
            Dep::Simple { name, .. } => name.as_str(),
            _ => "",
        };
        let mut c: Vec<usize> = self
            .u
            .candidates(dep)
            .into_iter()
            .filter(|&i| !self.obsoleted(i))
            .collect();
        c.sort_by_key(|&i| {
            let n = &self.u.pkgs[i].entry.name;
            (n != want, n.len(), n.clone())
        });
        c.first().copied()
    }

    fn add(&mut self, i: usize) {
        if self.chosen.insert(i) {
            self.queue.push(i);
        }
    }

    /// Makes `dep` hold (when it can), choosing packages.
    fn require(&mut self, dep: &Dep, by: &str) -> Result<(), ResolveError> {
        if self.satisfied(dep) {
            return Ok(());
        }
        let unsat = || ResolveError::Unsatisfiable {
            dep: dep.to_string(),
            by: by.to_string(),
        };
        match dep {
            Dep::Rich(r) => match r.as_ref() {
                Rich::And(ds) => {
                    for d in ds {
                        self.require(d, by)?;
                    }
                    Ok(())
                }
                Rich::Or(ds) => {
                    for d in ds {
                        if self.require(d, by).is_ok() {
                            return Ok(());
                        }
                    }
                    Err(unsat())
                }
                Rich::If {
                    then,
                    cond,
                    otherwise,
                } => {
                    if self.satisfied(cond) {
                        self.require(then, by)
                    } else if let Some(o) = otherwise {
                        self.require(o, by)
                    } else {
                        Ok(())
                    }
                }
                Rich::Unless {
                    then,
                    cond,
                    otherwise,
                } => {
                    if !self.satisfied(cond) {
                        self.require(then, by)
                    } else if let Some(o) = otherwise {
                        self.require(o, by)
                    } else {
                        Ok(())
                    }
                }
                Rich::With(_) | Rich::Without(..) => {
                    let i = self.pick(dep).ok_or_else(unsat)?;
                    self.add(i);
                    Ok(())
                }
            },
            Dep::Simple { .. } => {
                let i = self.pick(dep).ok_or_else(unsat)?;
                self.add(i);
                Ok(())
            }
        }
    }

    fn deps_of(&self, i: usize) -> Vec<Dep> {
        let e = &self.u.pkgs[i].entry;
        let mut d = e.requires.clone();
        if self.opts.recommends {
            d.extend(e.recommends.iter().cloned());
        }
        d
    }
}

/// Resolves `names` (package names or capabilities) to a closed set,
/// sorted by name.
pub fn resolve(
    u: &Universe,
    names: &[String],
    opts: &Options,
) -> Result<Vec<FedoraPackage>, ResolveError> {
    let mut s = State {
        u,
        chosen: BTreeSet::new(),
        queue: Vec::new(),
        opts: opts.clone(),
    };
    for n in names {
        let dep = Dep::simple(n.clone(), None);
        s.require(&dep, "the request")?;
    }
    loop {
        while let Some(i) = s.queue.pop() {
            let by = u.pkgs[i].entry.nevra();
            for d in s.deps_of(i) {
                match s.require(&d, &by) {
                    Err(e) if opts.recommends && u.pkgs[i].entry.recommends.contains(&d) => {
                        let _ = e; // a weak dependency that cannot be met is left out
                    }
                    other => other?,
                }
            }
        }
        // Conditional dependencies may hold now that more is chosen.
        let chosen: Vec<usize> = s.chosen.iter().copied().collect();
        for i in chosen {
            let by = u.pkgs[i].entry.nevra();
            for d in s.deps_of(i) {
                if !s.satisfied(&d) {
                    s.require(&d, &by)?;
                }
            }
        }
        if s.queue.is_empty() {
            break;
        }
    }
    // Drop what a chosen package obsoletes, then check everything still holds.
    let gone: Vec<usize> = s
        .chosen
        .iter()
        .copied()
        .filter(|&i| s.obsoleted(i))
        .collect();
    for i in gone {
        s.chosen.remove(&i);
    }
    for &i in &s.chosen {
        let e = &u.pkgs[i].entry;
        for d in &e.requires {
            if !s.satisfied(d) {
                return Err(ResolveError::Unsatisfiable {
                    dep: d.to_string(),
                    by: e.nevra(),
                });
            }
        }
        for c in &e.conflicts {
            if let Some(&j) = u
                .candidates(c)
                .iter()
                .find(|&&j| j != i && s.chosen.contains(&j))
            {
                return Err(ResolveError::Conflict {
                    a: e.nevra(),
                    b: u.pkgs[j].entry.nevra(),
                    dep: c.to_string(),
                });
            }
        }
    }
    Ok(s.chosen.iter().map(|&i| u.pkgs[i].clone()).collect())
}

#[cfg(test)]
mod tests {
    use super::super::deps::Op;
    use super::*;

    fn pkg(name: &str, ver: &str) -> RpmEntry {
        RpmEntry {
            name: name.into(),
            arch: "x86_64".into(),
            version: ver.into(),
            release: "1".into(),
            sha256: "0".repeat(64),
            href: format!("{name}.rpm"),
            ..RpmEntry::default()
        }
    }
    fn req(n: &str) -> Dep {
        Dep::simple(n.into(), None)
    }
    fn names(r: &[FedoraPackage]) -> Vec<&str> {
        r.iter().map(|p| p.entry.name.as_str()).collect()
    }

    #[test]
    fn requires_provides_files_rich_and_versions() {
        let mut bash = pkg("bash", "5.2");
        bash.requires = vec![req("libc.so.6()(64bit)"), req("/usr/bin/sh-helper")];
        let mut glibc = pkg("glibc", "2.40");
        glibc.provides = vec![Dep::simple("libc.so.6()(64bit)".into(), None)];
        glibc.requires = vec![req("(glibc-langpack or glibc-minimal-langpack)")];
        let mut helper = pkg("helper", "1");
        helper.files = vec!["/usr/bin/sh-helper".into()];
        let minimal = pkg("glibc-minimal-langpack", "2.40");
        let mut old = pkg("bash", "5.1");
        old.requires = vec![req("missing")];
        let mut ifdep = pkg("tool", "1");
        ifdep.requires = vec![req("(tool-bash-completion if bash)")];
        let completion = pkg("tool-bash-completion", "1");
        let u = Universe::new(
            &[
                vec![old, glibc, helper, minimal, ifdep, completion],
                vec![bash],
            ],
            "x86_64",
        );
        let r = resolve(&u, &["bash".into()], &Options::default()).unwrap();
        assert_eq!(
            names(&r),
            ["bash", "glibc", "glibc-minimal-langpack", "helper"]
        );
        assert_eq!(r[0].entry.version, "5.2");
        assert_eq!(r[0].repo, 1);
        let r = resolve(&u, &["tool".into(), "bash".into()], &Options::default()).unwrap();
        assert!(names(&r).contains(&"tool-bash-completion"));
        let r = resolve(&u, &["tool".into()], &Options::default()).unwrap();
        assert_eq!(names(&r), ["tool"]);
    }

    #[test]
    fn unsatisfiable_names_package_and_dependency_and_conflicts_are_refused() {
        let mut a = pkg("a", "1");
        a.requires = vec![Dep::simple("b".into(), Some((Op::Ge, "2".into())))];
        let b = pkg("b", "1");
        let mut c = pkg("c", "1");
        c.conflicts = vec![req("b")];
        let u = Universe::new(&[vec![a, b, c]], "x86_64");
        let e = resolve(&u, &["a".into()], &Options::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "nothing provides \"b >= 2\" needed by a-1-1.x86_64; check the package name or add the repository that has it"
        );
        let e = resolve(&u, &["nope".into()], &Options::default()).unwrap_err();
        assert!(
            e.to_string().contains("\"nope\" needed by the request"),
            "{e}"
        );
        let e = resolve(&u, &["b".into(), "c".into()], &Options::default()).unwrap_err();
        assert!(matches!(e, ResolveError::Conflict { .. }), "{e}");
    }

    #[test]
    fn obsoletes_replace_and_recommends_are_opt_in_and_arch_is_filtered() {
        let mut new = pkg("new", "1");
        new.obsoletes = vec![req("old")];
        new.recommends = vec![req("extra")];
        let old = pkg("old", "1");
        let mut user = pkg("user", "1");
        user.requires = vec![req("(old or new)"), req("new")];
        let extra = pkg("extra", "1");
        let mut arm = pkg("armonly", "1");
        arm.arch = "aarch64".into();
        let u = Universe::new(&[vec![new, old, user, extra, arm]], "x86_64");
        let r = resolve(&u, &["user".into()], &Options::default()).unwrap();
        assert_eq!(names(&r), ["new", "user"]);
        let r = resolve(&u, &["user".into()], &Options { recommends: true }).unwrap();
        assert_eq!(names(&r), ["extra", "new", "user"]);
        assert!(resolve(&u, &["armonly".into()], &Options::default()).is_err());
    }
}
