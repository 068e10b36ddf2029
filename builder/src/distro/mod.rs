//! One module per distribution family behind one small interface.
//!
//! A build (`crate::build`) only ever talks to [`Distribution`]: it asks
//! the family to turn the recipe's `[repository]` table into repositories,
//! fetch and verify their indices, resolve a package set, fetch the
//! packages, install them into a root, name the tailoring profile and
//! detect the init. Everything a family's packages need (Debian: InRelease,
//! Packages, .deb, dpkg's database, maintainer scripts, debconf) lives in
//! its own module below this one. Adding a family is one module that
//! implements the trait, an entry in [`FAMILIES`] and [`with_family`], and
//! its recipes.

pub mod debian;
pub mod fedora;

use crate::recipe::{Recipe, RecipeError};
use crate::tailor::{NetVars, TailorVars};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use vbuild_cache::Cache;
use vbuild_runtime::config::InitConfig;

/// Families that can be built today, in the order help texts list them.
pub const FAMILIES: &[&str] = &["debian", "fedora"];

/// A family that has no module (yet).
#[derive(Debug, thiserror::Error)]
#[error(
    "distribution family \"{family}\" cannot be built yet; families that exist: {}",
    FAMILIES.join(", ")
)]
pub struct UnknownFamily {
    /// What was asked for.
    pub family: String,
}

/// What the user chose about where packages come from (the same flags for
/// every family).
#[derive(Debug, Clone, Default)]
pub struct SourceOptions {
    /// A mirror instead of the recipe's (a local mirror or caching proxy).
    pub mirror: Option<String>,
    /// Extra trusted key files (a private mirror's signing key).
    pub keyrings: Vec<PathBuf>,
    /// Accept signed metadata whose validity period ended (snapshot mirrors).
    pub allow_expired: bool,
    /// Architecture in the family's spelling of the host's (`amd64`).
    pub arch: String,
    /// Also read the release's update suites (Debian's `RELEASE-updates`
    /// and `RELEASE-security`); off (`--no-updates`) builds the base alone.
    pub updates: bool,
    /// Archive components instead of the recipe's (`--components`; empty:
    /// the recipe's).
    pub components: Vec<String>,
    /// Extra one-line sources read too (`--source 'deb URL SUITE COMPONENT...'`),
    /// signed by a trusted key (the recipe's or `--keyring`).
    pub sources: Vec<String>,
}

/// Which packages the user asked for.
#[derive(Debug, Clone, Default)]
pub struct PackageRequest {
    /// Package-set variant; `None` = the recipe's default.
    pub variant: Option<String>,
    /// Extra packages (`NAME` or `NAME=VERSION`).
    pub include: Vec<String>,
    /// Add the recipe's init package so the guest boots (unless `include`
    /// already names an init).
    pub with_init: bool,
    /// Follow weak dependencies (Recommends) too (fedora; off by default,
    /// as in Fedora's container images).
    pub recommends: bool,
}

/// A resolved package, as generic code needs to see it.
pub trait Package {
    /// Its name.
    fn name(&self) -> &str;
    /// Bytes of the package file to fetch.
    fn size(&self) -> u64;
    /// What exactly is installed (`name=version`, with the file's hash
    /// where known): part of a template's id, so a new version on the
    /// mirror makes a new template.
    fn identity(&self) -> String {
        self.name().to_string()
    }
}

/// What the installation step reports as it goes, for a progress display.
#[derive(Debug, Clone)]
pub enum InstallEvent<'a> {
    /// A phase started (`unpack`, `database`, `preinst`, `configure`,
    /// `triggers`).
    Phase(&'static str),
    /// A package was unpacked (`done` of `total`).
    Unpacked {
        /// Package name.
        package: &'a str,
        /// Packages unpacked so far.
        done: usize,
        /// Packages to unpack.
        total: usize,
    },
    /// A package script is about to run.
    Script {
        /// Package name.
        package: &'a str,
        /// `preinst`, `postinst`, `%post`.
        script: &'static str,
    },
}

/// A progress callback for the installation step.
pub type InstallProgress = Arc<dyn Fn(&InstallEvent<'_>) + Send + Sync>;

/// How to install.
#[derive(Clone)]
pub struct InstallRequest {
    /// Architecture (`amd64`).
    pub arch: String,
    /// Parallel unpack workers.
    pub jobs: usize,
    /// The hostname package scripts see (the guest's name).
    pub hostname: String,
    /// Called with progress events; must be cheap.
    pub progress: Option<InstallProgress>,
    /// Called once every package is unpacked, before any package script
    /// runs (`--extract-hook`); a family that unpacks and runs scripts in
    /// one step refuses a request that has it.
    pub after_unpack: Option<AfterUnpack>,
}

/// The `--extract-hook` callback of an install.
pub type AfterUnpack = Arc<dyn Fn() -> Result<(), crate::hooks::HookFailed> + Send + Sync>;

/// What installing did.
#[derive(Debug, Clone, Default)]
pub struct Installed {
    /// Packages installed.
    pub packages: usize,
    /// Bytes unpacked into the root.
    pub bytes: u64,
    /// Package scripts run.
    pub scripts: usize,
    /// Seconds per phase (`install/unpack`, `install/scripts`...), in order.
    pub phases: Vec<(String, Duration)>,
}

/// One distribution family.
pub trait Distribution {
    /// The recipe's `[repository]` table, validated, with the user's
    /// overrides applied.
    type Repositories;
    /// Verified package indices of those repositories.
    type Indices;
    /// One resolved package.
    type Package: Package;

    /// The family's name in recipes and on the command line (`debian`).
    fn family(&self) -> &'static str;

    /// The package-set variants it knows (`minbase`); the first is not
    /// implied to be the default (the recipe names that).
    fn variants(&self) -> &'static [&'static str];

    /// Checks the recipe's `[repository]` table (`recipe.repository`, read
    /// with [`Recipe::repository_as`]) including that its key files exist,
    /// and names the file, line, field and fix on error; run when the recipe
    /// is loaded.
    fn check_repository(&self, recipe: &Recipe) -> Result<(), RecipeError>;

    /// The recipe's repositories with `opts` applied (a mirror override,
    /// extra keys).
    fn repositories(
        &self,
        recipe: &Recipe,
        opts: &SourceOptions,
    ) -> anyhow::Result<Self::Repositories>;

    /// Fetches the repositories' indices into `cache` and verifies them
    /// (signatures, checksums) before anything reads them.
    fn fetch_indices(
        &self,
        cache: &Cache,
        repos: &Self::Repositories,
        opts: &SourceOptions,
    ) -> anyhow::Result<Self::Indices>;

    /// A digest of exactly the signed metadata the indices would be read
    /// from now (Debian: every suite's InRelease, downloaded or offline
    /// the cached copy) and of the keys trusted for it, given only when
    /// those very bytes verified before with those very keys and nothing
    /// they rely on has expired. With the request, it names a resolution
    /// made before (`crate::build`), so an identical request skips reading
    /// the indices and resolving. `None` (the default): resolve as usual.
    fn signed_digest(
        &self,
        _cache: &Cache,
        _repos: &Self::Repositories,
        _opts: &SourceOptions,
    ) -> Option<String> {
        None
    }

    /// Resolves the package set; returns the variant built and the packages.
    fn resolve(
        &self,
        recipe: &Recipe,
        indices: &Self::Indices,
        request: &PackageRequest,
    ) -> anyhow::Result<(String, Vec<Self::Package>)>;

    /// Fetches the packages into `cache`, each verified against its index
    /// entry; returns their files in `packages`' order.
    fn fetch_packages(
        &self,
        cache: &Cache,
        repos: &Self::Repositories,
        packages: &[Self::Package],
        jobs: usize,
        progress: &dyn vbuild_cache::Progress,
    ) -> anyhow::Result<Vec<PathBuf>>;

    /// Installs the fetched packages into `rootfs` (an empty directory):
    /// unpacks them root-confined, writes the package database and runs
    /// their scripts in the build's script context.
    fn install(
        &self,
        rootfs: &Path,
        recipe: &Recipe,
        packages: &[Self::Package],
        files: &[PathBuf],
        request: &InstallRequest,
    ) -> anyhow::Result<Installed>;

    /// The variables the tailoring profile's templates get.
    fn tailor_vars(
        &self,
        recipe: &Recipe,
        repos: &Self::Repositories,
        hostname: &str,
        net: &NetVars,
    ) -> TailorVars;

    /// The tailoring profile that applies (`recipes/tailor/NAME.toml`).
    fn tailor_profile<'r>(&self, recipe: &'r Recipe) -> &'r str {
        &recipe.tailor
    }

    /// Which init the installed root boots, asked of the family's package
    /// database where the binary alone does not tell.
    fn detect_init(&self, rootfs: &Path) -> InitConfig;
}

/// Code that runs with whichever family a recipe names (generic over the
/// trait's associated types, which a trait object could not carry).
pub trait WithDistribution {
    /// What the code returns.
    type Output;
    /// Runs with family `d`.
    fn run<D: Distribution>(self, d: &D) -> Self::Output;
}

/// Runs `w` with the family named `family`.
pub fn with_family<W: WithDistribution>(family: &str, w: W) -> Result<W::Output, UnknownFamily> {
    match family {
        "debian" => Ok(w.run(&debian::Debian)),
        "fedora" => Ok(w.run(&fedora::Fedora)),
        other => Err(UnknownFamily {
            family: other.to_string(),
        }),
    }
}

/// Runs `recipe.family`'s check of the recipe's `[repository]` table.
pub fn check_repository(recipe: &Recipe) -> Result<Result<(), RecipeError>, UnknownFamily> {
    struct Check<'a>(&'a Recipe);
    impl WithDistribution for Check<'_> {
        type Output = Result<(), RecipeError>;
        fn run<D: Distribution>(self, d: &D) -> Self::Output {
            d.check_repository(self.0)
        }
    }
    with_family(&recipe.family, Check(recipe))
}

/// The variants family `family` knows.
pub fn variants(family: &str) -> Result<&'static [&'static str], UnknownFamily> {
    struct Variants;
    impl WithDistribution for Variants {
        type Output = &'static [&'static str];
        fn run<D: Distribution>(self, d: &D) -> Self::Output {
            d.variants()
        }
    }
    with_family(family, Variants)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_family_has_a_module_and_others_are_named_as_missing() {
        for f in FAMILIES {
            assert!(variants(f).is_ok(), "{f}");
        }
        let e = variants("alpine").unwrap_err().to_string();
        assert_eq!(
            e,
            "distribution family \"alpine\" cannot be built yet; families that exist: debian, fedora"
        );
    }
}
