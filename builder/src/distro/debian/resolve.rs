//! Which packages a guest gets: a variant's seed set (Essential, priorities,
//! apt) plus `--include`, closed under Depends and Pre-Depends.
//!
//! The resolver is ours (debian-packaging's collects every alternative and
//! provider and ignores Conflicts/Breaks); debian-packaging parses versions
//! and relation fields. Strategy, in the spirit of apt's choices:
//! 1. select every seed;
//! 2. propagate: a dependency already satisfied by the selection is done, one
//!    with a single installable option selects it, one with none is an error;
//! 3. when only real choices remain, take the first open dependency (in name
//!    order) and try its options in preference order — alternatives in the
//!    order written, a real package before providers of a virtual name,
//!    providers by priority then name, higher versions first — backtracking
//!    when a choice later leads to a conflict or an unsatisfiable dependency.
//!
//! An option is installable when its version satisfies the relation, no other
//! version of it is selected, and neither it nor a selected package conflicts
//! with (or breaks) the other, directly or through Provides. Output is sorted
//! by name, so equal inputs give equal outputs.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::rc::Rc;
use std::str::FromStr;

use super::relation::{self, Group, Op, Relation};
use super::version::Version;

use super::index::{PackageIndex, Priority};

/// How many times the search may branch before giving up with the most
/// telling error found so far (real archives need a few dozen).
const BRANCH_BUDGET: usize = 20_000;

/// A base set of packages, as debootstrap and mmdebstrap name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    /// `Essential: yes` packages and their dependencies.
    Essential,
    /// Essential + `Priority: required` + apt: the smallest system with apt.
    Minbase,
    /// minbase + `Priority: important` and `standard`.
    Standard,
    /// Only what `--include` names plus its dependencies (mmdebstrap's
    /// `custom`): for private repositories and small test roots.
    Custom,
}

impl FromStr for Variant {
    type Err = ResolveError;

    fn from_str(s: &str) -> Result<Variant, ResolveError> {
        match s {
            "essential" => Ok(Variant::Essential),
            "minbase" => Ok(Variant::Minbase),
            "standard" => Ok(Variant::Standard),
            "custom" => Ok(Variant::Custom),
            _ => Err(ResolveError::UnknownVariant {
                variant: s.to_string(),
            }),
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Variant::Essential => "essential",
            Variant::Minbase => "minbase",
            Variant::Standard => "standard",
            Variant::Custom => "custom",
        })
    }
}

/// Why a package is in the set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// `Essential: yes`.
    Essential,
    /// Its priority is part of the variant.
    Priority(Priority),
    /// apt itself (minbase and standard).
    PackageManager,
    /// Named by `--include`.
    Requested,
    /// Needed by this package's Depends or Pre-Depends.
    DependencyOf(String),
}

/// One package of the result, with what downloading and installing need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedPackage {
    /// Package name.
    pub name: String,
    /// Version chosen.
    pub version: String,
    /// `amd64`-like or `all`.
    pub arch: String,
    /// Path of the .deb relative to the mirror root.
    pub filename: String,
    /// That mirror when it is not the build's main one (a package from the
    /// security archive); empty for the main mirror.
    pub mirror: String,
    /// Size of the .deb.
    pub size: u64,
    /// SHA-256 of the .deb.
    pub sha256: String,
    /// `Essential: yes`.
    pub essential: bool,
    /// `Priority:`.
    pub priority: Priority,
    /// Why it was selected (the first reason found).
    pub why: Why,
    /// Installed only to satisfy a dependency, outside the Essential set's
    /// own dependency closure: what apt marks `Auto-Installed` (and
    /// `apt autoremove` may remove once nothing needs it).
    pub automatic: bool,
}

/// Why no package set could be found. Each names the package involved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// Not one of the variants.
    #[error("\"{variant}\" is not a variant; use essential, minbase, standard or custom")]
    UnknownVariant {
        /// What was asked for.
        variant: String,
    },
    /// `--include` names something that is not `NAME` or `NAME=VERSION`.
    #[error("--include \"{request}\" is not a package name (use NAME or NAME=VERSION)")]
    BadRequest {
        /// The rejected item.
        request: String,
    },
    /// `--include` names a package the repository does not have.
    #[error("{name}: no such package in the repository for {arch}{}", suggest(.suggestions))]
    NoSuchPackage {
        /// The name asked for.
        name: String,
        /// The index's architecture.
        arch: String,
        /// Similar names that exist.
        suggestions: Vec<String>,
    },
    /// `--include NAME=VERSION` with a version the repository does not have.
    #[error("{name}: version {wanted} is not available (available: {})", available.join(", "))]
    NoSuchVersion {
        /// The package.
        name: String,
        /// The version asked for.
        wanted: String,
        /// Versions the repository has.
        available: Vec<String>,
    },
    /// `--include` names a virtual package several packages provide.
    #[error("{name} is a virtual package provided by {}; include one of them by name", providers.join(", "))]
    AmbiguousVirtual {
        /// The virtual name.
        name: String,
        /// Its providers.
        providers: Vec<String>,
    },
    /// A dependency no installable package satisfies.
    #[error("{package}: {kind} {relation} but {reason}")]
    Unsatisfiable {
        /// The package whose dependency fails.
        package: String,
        /// `depends on` or `pre-depends on`.
        kind: String,
        /// The relation as written (`libfoo (>= 2)`).
        relation: String,
        /// Why nothing satisfies it.
        reason: String,
    },
    /// Two packages that must both be installed cannot be.
    #[error("{package} conflicts with {other} ({declared}); they cannot be installed together")]
    Conflict {
        /// The package being added.
        package: String,
        /// The package already selected.
        other: String,
        /// Which side declares what (`other: Breaks: package (<< 2)`).
        declared: String,
    },
    /// A relation field of the index does not parse.
    #[error("{package}: cannot parse its {field}: {message}; the index is corrupt or too new for vbuild")]
    BadField {
        /// The package.
        package: String,
        /// `Depends`, `Version`, ...
        field: String,
        /// What the parser said.
        message: String,
    },
}

fn suggest(names: &[String]) -> String {
    if names.is_empty() {
        String::new()
    } else {
        format!("; did you mean {}?", names.join(", "))
    }
}

/// Resolves `variant` plus `include` against `index`.
pub fn resolve(
    index: &PackageIndex,
    variant: Variant,
    include: &[String],
) -> Result<Vec<ResolvedPackage>, ResolveError> {
    let resolver = Resolver {
        index,
        versions: RefCell::default(),
        relations: RefCell::default(),
        branches: Cell::new(0),
    };
    let mut state = State::default();
    for (id, why) in resolver.seeds(variant)? {
        resolver.select(&mut state, id, why)?;
    }
    for request in include {
        let id = resolver.requested(request)?;
        resolver.select(&mut state, id, Why::Requested)?;
    }
    let state = resolver.solve(state)?;
    let essential = resolver.essential_closure(&state)?;
    Ok(state
        .selected
        .values()
        .map(|&id| {
            let p = index.get(id);
            ResolvedPackage {
                name: p.name.clone(),
                version: p.version.clone(),
                arch: p.arch.clone(),
                filename: p.filename.clone(),
                mirror: p.mirror.clone(),
                size: p.size,
                sha256: p.sha256.clone(),
                essential: p.essential,
                priority: p.priority,
                why: state.why[&id].clone(),
                automatic: matches!(state.why[&id], Why::DependencyOf(_))
                    && !essential.contains(&id),
            }
        })
        .collect())
}

/// A package's relation fields, parsed once.
struct Relations {
    pre_depends: Vec<Group>,
    depends: Vec<Group>,
    /// Conflicts then Breaks, with the field each came from.
    conflicts: Vec<(&'static str, Relation)>,
    provides: Vec<(String, Option<Version>)>,
}

struct Resolver<'a> {
    index: &'a PackageIndex,
    versions: RefCell<HashMap<usize, Rc<Version>>>,
    relations: RefCell<HashMap<usize, Rc<Relations>>>,
    branches: Cell<usize>,
}

/// A dependency not yet satisfied: `(package id, pre-depends?, position)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Open {
    from: usize,
    pre: bool,
    k: usize,
}

#[derive(Debug, Clone, Default)]
struct State {
    selected: BTreeMap<String, usize>,
    why: HashMap<usize, Why>,
    /// Virtual name -> selected packages providing it.
    provided: HashMap<String, Vec<usize>>,
    open: Vec<Open>,
}

impl Resolver<'_> {
    fn version(&self, id: usize) -> Result<Rc<Version>, ResolveError> {
        if let Some(v) = self.versions.borrow().get(&id) {
            return Ok(Rc::clone(v));
        }
        let p = self.index.get(id);
        let v = Rc::new(
            Version::parse(&p.version).map_err(|e| ResolveError::BadField {
                package: p.name.clone(),
                field: "Version".into(),
                message: e.to_string(),
            })?,
        );
        self.versions.borrow_mut().insert(id, Rc::clone(&v));
        Ok(v)
    }

    fn relations(&self, id: usize) -> Result<Rc<Relations>, ResolveError> {
        if let Some(r) = self.relations.borrow().get(&id) {
            return Ok(Rc::clone(r));
        }
        let p = self.index.get(id);
        let parse = |field: &str, raw: &Option<String>| -> Result<Vec<Group>, ResolveError> {
            match raw.as_deref().map(str::trim) {
                None | Some("") => Ok(Vec::new()),
                Some(text) => relation::parse(text).map_err(|e| ResolveError::BadField {
                    package: p.name.clone(),
                    field: field.into(),
                    message: e.to_string(),
                }),
            }
        };
        let mut conflicts = Vec::new();
        for (field, raw) in [("Conflicts", &p.conflicts), ("Breaks", &p.breaks)] {
            for variants in parse(field, raw)? {
                conflicts.extend(variants.iter().cloned().map(|d| (field, d)));
            }
        }
        let provides = parse("Provides", &p.provides)?
            .into_iter()
            .flatten()
            .map(|d| {
                let version = d
                    .constraint
                    .filter(|c| c.op == Op::Equal)
                    .map(|c| c.version);
                (d.name, version)
            })
            .collect();
        let r = Rc::new(Relations {
            pre_depends: parse("Pre-Depends", &p.pre_depends)?,
            depends: parse("Depends", &p.depends)?,
            conflicts,
            provides,
        });
        self.relations.borrow_mut().insert(id, Rc::clone(&r));
        Ok(r)
    }

    fn name(&self, id: usize) -> &str {
        &self.index.get(id).name
    }

    /// The package name a relation refers to, without an arch qualifier
    /// that means "this architecture"; `None` for another architecture.
    fn target<'d>(&self, d: &'d Relation) -> Option<&'d str> {
        let arch = self.index.arch();
        if d.arches.as_ref().is_some_and(|r| !r.applies_to(arch)) {
            return None;
        }
        match d.arch_qualifier.as_deref() {
            None | Some("any" | "native") => Some(&d.name),
            Some(q) if q == arch => Some(&d.name),
            Some(_) => None,
        }
    }

    /// Whether package `id` satisfies relation `d` (by name or Provides).
    fn satisfies(&self, id: usize, d: &Relation) -> Result<bool, ResolveError> {
        let Some(name) = self.target(d) else {
            return Ok(false);
        };
        if self.name(id) == name {
            return match &d.constraint {
                None => Ok(true),
                Some(c) => Ok(c.op.holds(&*self.version(id)?, &c.version)),
            };
        }
        for (provided, version) in &self.relations(id)?.provides {
            if provided != name {
                continue;
            }
            match (&d.constraint, version) {
                (None, _) => return Ok(true),
                // An unversioned Provides never satisfies a versioned relation.
                (Some(_), None) => {}
                (Some(c), Some(v)) => {
                    if c.op.holds(v, &c.version) {
                        return Ok(true);
                    }
                }
            }
        }
        Ok(false)
    }

    /// A conflict between `a` and `b` declared by `a`, as text.
    fn declared_conflict(&self, a: usize, b: usize) -> Result<Option<String>, ResolveError> {
        for (field, d) in &self.relations(a)?.conflicts {
            if self.satisfies(b, d)? {
                return Ok(Some(format!("{}: {field}: {d}", self.name(a))));
            }
        }
        Ok(None)
    }

    /// Why `id` cannot join the selection, if it cannot.
    fn blocker(&self, state: &State, id: usize) -> Result<Option<ResolveError>, ResolveError> {
        let name = self.name(id);
        if let Some(&other) = state.selected.get(name) {
            if other == id {
                return Ok(None);
            }
            return Ok(Some(ResolveError::Conflict {
                package: format!("{name} {}", self.index.get(id).version),
                other: format!("{name} {}", self.index.get(other).version),
                declared: "two versions of one package".into(),
            }));
        }
        for &other in state.selected.values() {
            let declared = match self.declared_conflict(id, other)? {
                Some(d) => Some(d),
                None => self.declared_conflict(other, id)?,
            };
            if let Some(declared) = declared {
                return Ok(Some(ResolveError::Conflict {
                    package: name.to_string(),
                    other: self.name(other).to_string(),
                    declared,
                }));
            }
        }
        Ok(None)
    }

    /// Adds `id` to the selection and opens its dependencies.
    fn select(&self, state: &mut State, id: usize, why: Why) -> Result<(), ResolveError> {
        if state.selected.get(self.name(id)) == Some(&id) {
            return Ok(());
        }
        if let Some(e) = self.blocker(state, id)? {
            return Err(e);
        }
        let relations = self.relations(id)?;
        state.selected.insert(self.name(id).to_string(), id);
        state.why.insert(id, why);
        for (provided, _) in &relations.provides {
            state.provided.entry(provided.clone()).or_default().push(id);
        }
        for k in 0..relations.pre_depends.len() {
            state.open.push(Open {
                from: id,
                pre: true,
                k,
            });
        }
        for k in 0..relations.depends.len() {
            state.open.push(Open {
                from: id,
                pre: false,
                k,
            });
        }
        Ok(())
    }

    fn dependency(&self, open: Open) -> Result<Group, ResolveError> {
        let r = self.relations(open.from)?;
        Ok(if open.pre {
            r.pre_depends[open.k].clone()
        } else {
            r.depends[open.k].clone()
        })
    }

    fn satisfied(&self, state: &State, dep: &Group) -> Result<bool, ResolveError> {
        Ok(self.satisfied_by(state, dep)?.is_some())
    }

    /// The Essential packages of the result and what their Depends and
    /// Pre-Depends pull in (the first alternative the result satisfies):
    /// the set mmdebstrap installs with dpkg before apt, never automatic.
    fn essential_closure(&self, state: &State) -> Result<HashSet<usize>, ResolveError> {
        let mut todo: Vec<usize> = state
            .selected
            .values()
            .copied()
            .filter(|id| state.why[id] == Why::Essential)
            .collect();
        let mut seen: HashSet<usize> = todo.iter().copied().collect();
        while let Some(id) = todo.pop() {
            let r = self.relations(id)?;
            for dep in r.pre_depends.iter().chain(r.depends.iter()) {
                if let Some(by) = self.satisfied_by(state, dep)? {
                    if seen.insert(by) {
                        todo.push(by);
                    }
                }
            }
        }
        Ok(seen)
    }

    /// The selected package satisfying `dep`'s first satisfiable alternative.
    fn satisfied_by(&self, state: &State, dep: &Group) -> Result<Option<usize>, ResolveError> {
        for d in dep.iter() {
            let Some(name) = self.target(d) else { continue };
            let direct = state.selected.get(name).copied();
            let provided = state.provided.get(name).map(Vec::as_slice).unwrap_or(&[]);
            for id in direct.into_iter().chain(provided.iter().copied()) {
                if self.satisfies(id, d)? {
                    return Ok(Some(id));
                }
            }
        }
        Ok(None)
    }

    /// Packages that would satisfy `d`, in preference order, installable or not.
    fn candidates(&self, d: &Relation) -> Result<Vec<usize>, ResolveError> {
        let Some(name) = self.target(d) else {
            return Ok(Vec::new());
        };
        let mut real = Vec::new();
        for &id in self.index.by_name(name) {
            if self.satisfies(id, d)? {
                real.push((self.version(id)?, id));
            }
        }
        real.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut virt = Vec::new();
        for &id in self.index.providers(name) {
            if self.name(id) != name && self.satisfies(id, d)? {
                let p = self.index.get(id);
                virt.push((p.priority, p.name.as_str(), self.version(id)?, id));
            }
        }
        virt.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(b.1)).then(b.2.cmp(&a.2)));
        Ok(real
            .into_iter()
            .map(|(_, id)| id)
            .chain(virt.into_iter().map(|(.., id)| id))
            .collect())
    }

    /// Installable options for a dependency, in preference order.
    fn options(&self, state: &State, dep: &Group) -> Result<Vec<usize>, ResolveError> {
        let mut out: Vec<usize> = Vec::new();
        for d in dep.iter() {
            for id in self.candidates(d)? {
                if !out.contains(&id) && self.blocker(state, id)?.is_none() {
                    out.push(id);
                }
            }
        }
        Ok(out)
    }

    /// The error for a dependency with no installable option.
    fn unsatisfiable(&self, state: &State, open: Open) -> Result<ResolveError, ResolveError> {
        let dep = self.dependency(open)?;
        let mut reasons = Vec::new();
        for d in dep.iter() {
            let reason = self.explain(state, d)?;
            reasons.push(if dep.len() > 1 {
                format!("{}: {reason}", d.name)
            } else {
                reason
            });
        }
        Ok(ResolveError::Unsatisfiable {
            package: self.name(open.from).to_string(),
            kind: if open.pre {
                "pre-depends on"
            } else {
                "depends on"
            }
            .into(),
            relation: relation::show_group(&dep),
            reason: reasons.join("; "),
        })
    }

    /// Why nothing satisfies the single relation `d`.
    fn explain(&self, state: &State, d: &Relation) -> Result<String, ResolveError> {
        let Some(name) = self.target(d) else {
            return Ok(format!("{d} is for another architecture"));
        };
        let candidates = self.candidates(d)?;
        if let Some(&first) = candidates.first() {
            return Ok(match self.blocker(state, first)? {
                Some(ResolveError::Conflict { declared, .. }) => {
                    format!("{} cannot be installed ({declared})", self.name(first))
                }
                _ => format!("{} cannot be installed", self.name(first)),
            });
        }
        let real = self.index.by_name(name);
        if !real.is_empty() {
            let mut versions: Vec<String> = real
                .iter()
                .map(|&id| self.index.get(id).version.clone())
                .collect();
            versions.dedup();
            return Ok(format!("only {} is available", versions.join(", ")));
        }
        let providers = self.index.providers(name);
        if !providers.is_empty() {
            let names: Vec<&str> = providers.iter().map(|&id| self.name(id)).collect();
            return Ok(format!(
                "{name} is only provided by {} without a matching version",
                names.join(", ")
            ));
        }
        Ok(format!("{name} is not in the repository"))
    }

    /// Selects everything a dependency forces, until only choices remain.
    fn propagate(&self, state: &mut State) -> Result<(), ResolveError> {
        loop {
            let mut changed = false;
            let open = std::mem::take(&mut state.open);
            let mut waiting = Vec::new();
            for o in open {
                let dep = self.dependency(o)?;
                if self.satisfied(state, &dep)? {
                    continue;
                }
                let options = self.options(state, &dep)?;
                match options.as_slice() {
                    [] => return Err(self.unsatisfiable(state, o)?),
                    [only] => {
                        self.select(state, *only, Why::DependencyOf(self.name(o.from).into()))?;
                        changed = true;
                    }
                    _ => waiting.push(o),
                }
            }
            waiting.append(&mut state.open);
            state.open = waiting;
            if !changed {
                return Ok(());
            }
        }
    }

    /// Propagates, then branches on the first real choice.
    fn solve(&self, mut state: State) -> Result<State, ResolveError> {
        self.propagate(&mut state)?;
        let Some(&open) = state
            .open
            .iter()
            .min_by_key(|o| (self.name(o.from), !o.pre, o.k))
        else {
            return Ok(state);
        };
        let dep = self.dependency(open)?;
        let why = Why::DependencyOf(self.name(open.from).to_string());
        let mut first_error = None;
        for id in self.options(&state, &dep)? {
            if self.branches.get() >= BRANCH_BUDGET {
                break;
            }
            self.branches.set(self.branches.get() + 1);
            let mut next = state.clone();
            let attempt = self
                .select(&mut next, id, why.clone())
                .and_then(|_| self.solve(next));
            match attempt {
                Ok(solved) => return Ok(solved),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(match first_error {
            Some(e) => e,
            None => self.unsatisfiable(&state, open)?,
        })
    }

    /// The seed packages of a variant, with why each is there.
    fn seeds(&self, variant: Variant) -> Result<Vec<(usize, Why)>, ResolveError> {
        let mut seeds = Vec::new();
        if variant == Variant::Custom {
            return Ok(seeds);
        }
        for name in self.index.names() {
            let id = self.best(name)?;
            let p = self.index.get(id);
            let wanted = match variant {
                Variant::Essential | Variant::Custom => false,
                Variant::Minbase => p.priority == Priority::Required,
                Variant::Standard => p.priority <= Priority::Standard,
            };
            if p.essential {
                seeds.push((id, Why::Essential));
            } else if wanted {
                seeds.push((id, Why::Priority(p.priority)));
            } else if name == "apt" && variant != Variant::Essential {
                seeds.push((id, Why::PackageManager));
            }
        }
        Ok(seeds)
    }

    /// The highest version of a real package name.
    fn best(&self, name: &str) -> Result<usize, ResolveError> {
        let mut best: Option<(Rc<Version>, usize)> = None;
        for &id in self.index.by_name(name) {
            let v = self.version(id)?;
            if best.as_ref().is_none_or(|(b, _)| *v > **b) {
                best = Some((v, id));
            }
        }
        Ok(best.expect("names come from the index").1)
    }

    /// The package an `--include` item names.
    fn requested(&self, request: &str) -> Result<usize, ResolveError> {
        let (name, wanted) = match request.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim())),
            None => (request.trim(), None),
        };
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b))
            && wanted.is_none_or(|v| !v.is_empty() && !v.contains(char::is_whitespace));
        if !valid {
            return Err(ResolveError::BadRequest {
                request: request.to_string(),
            });
        }
        let real = self.index.by_name(name);
        if let Some(wanted) = wanted {
            let wanted_v = Version::parse(wanted).map_err(|_| ResolveError::BadRequest {
                request: request.to_string(),
            })?;
            for &id in real {
                if *self.version(id)? == wanted_v {
                    return Ok(id);
                }
            }
            if !real.is_empty() {
                return Err(ResolveError::NoSuchVersion {
                    name: name.to_string(),
                    wanted: wanted.to_string(),
                    available: real
                        .iter()
                        .map(|&id| self.index.get(id).version.clone())
                        .collect(),
                });
            }
        } else if !real.is_empty() {
            return self.best(name);
        }
        let mut providers: Vec<&str> = self
            .index
            .providers(name)
            .iter()
            .map(|&id| self.name(id))
            .collect();
        providers.sort_unstable();
        providers.dedup();
        match providers.as_slice() {
            [] => Err(ResolveError::NoSuchPackage {
                name: name.to_string(),
                arch: self.index.arch().to_string(),
                suggestions: self.similar(name),
            }),
            [one] if wanted.is_none() => self.best(one),
            _ => Err(ResolveError::AmbiguousVirtual {
                name: name.to_string(),
                providers: providers.iter().map(|s| s.to_string()).collect(),
            }),
        }
    }

    /// Up to three existing names close to `name` (shared prefix or substring).
    fn similar(&self, name: &str) -> Vec<String> {
        let stem: String = name.chars().take(4).collect();
        self.index
            .names()
            .into_iter()
            .filter(|n| n.contains(name) || (stem.len() >= 3 && n.starts_with(&stem)))
            .take(3)
            .map(str::to_string)
            .collect()
    }
}
