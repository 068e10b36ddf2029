//! Fedora: metalink -> repomd.xml -> primary.xml -> .rpm, verified end to
//! end (Fedora signs no metadata: the HTTPS metalink pins repomd.xml and
//! each package's OpenPGP signature carries trust); our own resolution;
//! payloads unpacked root-confined, then the guest's own rpm writes its
//! database and runs the scriptlets. [`Fedora`] is the family's
//! [`Distribution`](super::Distribution).

pub mod deps;
pub mod fetch;
pub mod install;
pub mod metalink;
pub mod recipe;
pub mod repodata;
pub mod resolve;
pub mod version;

use super::{Distribution, InstallRequest, Installed, Package, PackageRequest, SourceOptions};
use crate::recipe::{Recipe, RecipeError};
use crate::tailor::{NetVars, TailorVars};
use anyhow::Context;
use fetch::{RepoIndex, RepoSource};
use resolve::{FedoraPackage, Universe};
use std::path::{Path, PathBuf};
use vbuild_cache::Cache;
use vbuild_runtime::config::InitConfig;

/// The Fedora family.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fedora;

/// What Fedora's container base image installs (its kickstart's package
/// list), plus systemd so that the guest boots its own init.
pub const MINIMAL: &[&str] = &[
    "fedora-release-container",
    "bash",
    "coreutils",
    "glibc-minimal-langpack",
    "rpm",
    "shadow-utils",
    "util-linux-core",
    "rootfiles",
    "tar",
    "vim-minimal",
    "dnf5",
    "sudo",
];

/// A Fedora recipe's repositories with the user's overrides, and the
/// verifier of the release's keys.
pub struct Repositories {
    /// Where each repository is read from.
    pub sources: Vec<RepoSource>,
    /// The trusted keys (recipe's plus `--keyring`), with their names.
    pub keys: Vec<(String, Vec<u8>)>,
    /// Architecture in rpm's spelling (`x86_64`).
    pub arch: String,
}

/// Verified metadata of every repository.
pub struct Indices {
    /// One per repository, in the recipe's order.
    pub repos: Vec<RepoIndex>,
    /// Architecture in rpm's spelling.
    pub arch: String,
    /// The keys packages must be signed with.
    pub keys: Vec<(String, Vec<u8>)>,
}

/// rpm's name of a Debian architecture (`amd64` -> `x86_64`).
pub fn rpm_arch(debian_arch: &str) -> &str {
    match debian_arch {
        "amd64" => "x86_64",
        "arm64" => "aarch64",
        "ppc64el" => "ppc64le",
        "i386" => "i686",
        other => other,
    }
}

/// A resolved package with the repositories it needs to be fetched.
impl Package for FedoraPackage {
    fn name(&self) -> &str {
        &self.entry.name
    }
    fn size(&self) -> u64 {
        self.entry.size
    }
}

/// The repository URL the guest is told about: the first baseurl, except
/// that a `file://` mirror is a directory of the build host the guest
/// cannot reach, so it gets the recipe's own baseurl instead.
fn guest_mirror(recipe: &Recipe, repos: &Repositories) -> String {
    let given = repos
        .sources
        .first()
        .and_then(|s| s.baseurls.first().cloned())
        .unwrap_or_default();
    if !given.starts_with("file://") {
        return given;
    }
    recipe::read(recipe)
        .ok()
        .and_then(|t| t.repos.iter().find_map(|r| r.baseurls.first().cloned()))
        .map(|b| {
            b.replace("$basearch", &repos.arch)
                .replace("$arch", &repos.arch)
        })
        .unwrap_or_default()
}

impl Fedora {
    fn verifier(keys: &[(String, Vec<u8>)]) -> anyhow::Result<rpm::signature::pgp::Verifier> {
        fetch::verifier(keys).map_err(|e| anyhow::anyhow!("{e}"))
    }
}

impl Distribution for Fedora {
    type Repositories = Repositories;
    type Indices = Indices;
    type Package = FedoraPackage;

    fn family(&self) -> &'static str {
        "fedora"
    }

    fn variants(&self) -> &'static [&'static str] {
        &["minimal", "core", "custom"]
    }

    fn check_repository(&self, recipe: &Recipe) -> Result<(), RecipeError> {
        recipe::read(recipe).map(|_| ())
    }

    fn repositories(&self, recipe: &Recipe, opts: &SourceOptions) -> anyhow::Result<Repositories> {
        anyhow::ensure!(
            opts.components.is_empty() && opts.sources.is_empty(),
            "--components and --source are Debian's archive layout; a fedora build reads the recipe's repositories (or --mirror)"
        );
        let table = recipe::read(recipe)?;
        let arch = rpm_arch(&opts.arch).to_string();
        let subst = |u: &str| u.replace("$basearch", &arch).replace("$arch", &arch);
        let sources = match &opts.mirror {
            // A baseurl instead of the metalinks: one repository, trusted
            // through its packages' signatures.
            Some(m) => vec![RepoSource {
                id: "mirror".into(),
                metalink: None,
                baseurls: vec![subst(m)],
            }],
            None => table
                .repos
                .iter()
                .map(|r| RepoSource {
                    id: r.id.clone(),
                    metalink: r.metalink.as_deref().map(subst),
                    baseurls: r.baseurls.iter().map(|b| subst(b)).collect(),
                })
                .collect(),
        };
        let mut keys = recipe.key_files(&table.keys)?;
        for k in &opts.keyrings {
            let bytes = std::fs::read(k).with_context(|| format!("--keyring {}", k.display()))?;
            keys.push((k.display().to_string(), bytes));
        }
        Fedora::verifier(&keys)?;
        Ok(Repositories {
            sources,
            keys,
            arch,
        })
    }

    fn fetch_indices(
        &self,
        cache: &Cache,
        repos: &Repositories,
        _opts: &SourceOptions,
    ) -> anyhow::Result<Indices> {
        let mut out = Vec::new();
        for s in &repos.sources {
            out.push(fetch::fetch_repo(cache, s, &repos.keys)?);
        }
        Ok(Indices {
            repos: out,
            arch: repos.arch.clone(),
            keys: repos.keys.clone(),
        })
    }

    fn resolve(
        &self,
        recipe: &Recipe,
        indices: &Indices,
        request: &PackageRequest,
    ) -> anyhow::Result<(String, Vec<FedoraPackage>)> {
        let variant = request
            .variant
            .clone()
            .unwrap_or_else(|| recipe.build.default_variant.clone());
        let mut names: Vec<String> = match variant.as_str() {
            "minimal" => MINIMAL.iter().map(|s| s.to_string()).collect(),
            "core" => indices
                .repos
                .iter()
                .find_map(|r| r.core.clone())
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "--variant core: no repository has comps with a \"core\" group; use --variant minimal or custom"
                    )
                })?,
            "custom" => Vec::new(),
            other => anyhow::bail!(
                "--variant: \"{other}\" is not a Fedora variant; use one of {}",
                self.variants().join(", ")
            ),
        };
        for i in &request.include {
            if i.contains('=') {
                anyhow::bail!("--include {i}: Fedora packages are named without a version here; give the name only");
            }
            names.push(i.clone());
        }
        if request.with_init && !request.include.iter().any(|p| p == "systemd") {
            names.extend(recipe.init.clone());
        }
        if names.is_empty() {
            anyhow::bail!(
                "--variant custom installs only what --include names; name at least one package"
            );
        }
        let universe = Universe::new(
            &indices
                .repos
                .iter()
                .map(|r| r.packages.clone())
                .collect::<Vec<_>>(),
            &indices.arch,
        );
        let opts = resolve::Options {
            recommends: request.recommends,
        };
        let mut chosen = resolve::resolve(&universe, &names, &opts)?;
        for p in &mut chosen {
            p.base = indices.repos[p.repo].baseurl.clone();
        }
        Ok((variant, chosen))
    }

    fn fetch_packages(
        &self,
        cache: &Cache,
        repos: &Repositories,
        packages: &[FedoraPackage],
        jobs: usize,
        progress: &dyn vbuild_cache::Progress,
    ) -> anyhow::Result<Vec<PathBuf>> {
        let verifier = Fedora::verifier(&repos.keys)?;
        Ok(fetch::fetch_rpms(
            cache, packages, &verifier, jobs, progress,
        )?)
    }

    fn install(
        &self,
        rootfs: &Path,
        _recipe: &Recipe,
        _packages: &[FedoraPackage],
        files: &[PathBuf],
        request: &InstallRequest,
    ) -> anyhow::Result<Installed> {
        anyhow::ensure!(
            request.after_unpack.is_none(),
            "--extract-hook: fedora unpacks and runs its scripts in one rpm transaction; use --essential-hook"
        );
        let r = install::install(rootfs, files, &request.hostname)?;
        Ok(Installed {
            packages: r.packages,
            bytes: r.bytes,
            scripts: r.scriptlets,
            phases: vec![
                ("install/unpack".into(), r.times.0),
                ("install/rpm".into(), r.times.1),
            ],
        })
    }

    fn tailor_vars(
        &self,
        recipe: &Recipe,
        repos: &Repositories,
        hostname: &str,
        net: &NetVars,
    ) -> TailorVars {
        TailorVars {
            hostname: hostname.to_string(),
            release: recipe.release.clone(),
            mirror: guest_mirror(recipe, repos),
            security_mirror: None,
            // The variables are apt-shaped; Fedora's profile writes no
            // sources file, so the repository ids stand in for suites.
            suites: repos.sources.iter().map(|s| s.id.clone()).collect(),
            security_suites: Vec::new(),
            components: vec!["Everything".into()],
            net: net.clone(),
        }
    }

    fn detect_init(&self, rootfs: &Path) -> InitConfig {
        crate::tailor::detect_init(rootfs, &|_| false)
    }
}
