//! Debian: InRelease -> Packages -> .deb, verified end to end; resolution;
//! installation into a rootfs with dpkg's database and maintainer scripts.
//! [`Debian`] is the family's [`Distribution`](super::Distribution).

pub mod alias;
pub mod aptstate;
pub mod deb;
pub mod deb822;
pub mod debconf;
pub mod dpkgdb;
pub mod fetch;
pub mod index;
pub mod init;
pub mod install;
pub mod keyring;
pub mod maintscripts;
pub mod recipe;
pub mod relation;
pub mod release;
pub mod resolve;
pub mod version;

use super::{
    Distribution, InstallEvent, InstallRequest, Installed, Package, PackageRequest, SourceOptions,
};
use crate::recipe::{Recipe, RecipeError};
use crate::tailor::{NetVars, TailorVars};
use anyhow::Context;
use fetch::Source;
use index::PackageIndex;
use keyring::Keyring;
use resolve::{ResolvedPackage, Variant};
use std::path::{Path, PathBuf};
use vbuild_cache::Cache;
use vbuild_runtime::config::InitConfig;

/// The Debian family.
#[derive(Debug, Clone, Copy, Default)]
pub struct Debian;

/// A Debian recipe's repositories: the suite to build from, its mirror
/// (the user's or the recipe's) and the keys that may sign it.
pub struct Repositories {
    /// The recipe's `[repository]` table.
    pub table: recipe::Repository,
    /// Mirror and suite.
    pub source: Source,
    /// Archive components to read (`main`).
    pub components: Vec<String>,
    /// The trusted keys' files (recipe keys, system keyring, `--keyring`),
    /// read but parsed only when an InRelease is verified.
    pub key_material: Vec<(String, Vec<u8>)>,
    /// [`keyring::material_digest`] of them.
    pub key_digest: String,
    keyring: std::cell::OnceCell<Keyring>,
    /// Suites read on top of `source` (updates, then security), newest
    /// version across all of them winning.
    pub extra: Vec<ExtraSuite>,
}

impl Repositories {
    /// Keys trusted for the InRelease (parsed on first use: a request whose
    /// InReleases verified before with these very keys needs none).
    pub fn keyring(&self) -> anyhow::Result<&Keyring> {
        if let Some(k) = self.keyring.get() {
            return Ok(k);
        }
        let k = Keyring::from_material(&self.key_material)?;
        Ok(self.keyring.get_or_init(|| k))
    }
}

/// A suite read in addition to the base one.
pub struct ExtraSuite {
    /// Mirror and suite.
    pub source: Source,
    /// Where its packages are downloaded from: empty when that is the
    /// main mirror (`source.mirror` otherwise).
    pub download_from: String,
    /// Skipped, with a note, when the mirror lacks it: set when the user's
    /// `--mirror` replaces the recipe's archives, which a private mirror
    /// of the base suite alone may not carry.
    pub optional: bool,
    /// Its own components (a `--source` line's); `None`: the build's.
    pub components: Option<Vec<String>>,
}

/// The suites read on top of the base one: `RELEASE-updates` on the main
/// mirror, then `RELEASE-security` on the security archive. A `--mirror`
/// replaces every archive (its suites are then looked for there, as a
/// local mirror or a test repository carries them, and skipped when
/// absent); the recipe's archives must carry every suite they name.
fn extra_suites(table: &recipe::Repository, opts: &SourceOptions) -> Vec<ExtraSuite> {
    if !opts.updates {
        return vec![];
    }
    let main = opts.mirror.clone().unwrap_or_else(|| table.mirror.clone());
    let optional = opts.mirror.is_some();
    let mut out = vec![];
    if let Some(u) = &table.updates_suite {
        out.push(ExtraSuite {
            source: Source::new(&main, u),
            download_from: String::new(),
            optional,
            components: None,
        });
    }
    if let Some(s) = &table.security {
        let mirror = opts.mirror.clone().unwrap_or_else(|| s.mirror.clone());
        let source = Source::new(&mirror, &s.suite);
        let download_from = if source.mirror == Source::new(&main, "").mirror {
            String::new()
        } else {
            source.mirror.clone()
        };
        out.push(ExtraSuite {
            source,
            download_from,
            optional,
            components: None,
        });
    }
    out
}

/// Whether fetching an optional suite's InRelease failed because the mirror
/// does not carry that suite (it is then skipped).
fn absent(e: &fetch::FetchError) -> bool {
    matches!(
        e,
        fetch::FetchError::NoInRelease { .. }
            | fetch::FetchError::OfflineNoRelease { .. }
            | fetch::FetchError::Cache(vbuild_cache::CacheError::NotInLocalMirror { .. })
    )
}

fn note_absent(x: &ExtraSuite) {
    crate::progress::say(&format!(
        "vbuild: note: {} has no {}; building without it (--no-updates builds the base suite alone)",
        x.source.mirror, x.source.suite
    ));
}

/// A `--source 'deb [OPTIONS] URL SUITE COMPONENT...'` line as a suite the
/// build reads too (`deb-src` lines are for the guest only: `None`).
fn source_line_suite(line: &str, main: &str) -> anyhow::Result<Option<ExtraSuite>> {
    let mut words = line.split_whitespace().peekable();
    let kind = words.next().unwrap_or("");
    if kind == "deb-src" {
        return Ok(None);
    }
    if words.peek().is_some_and(|w| w.starts_with('[')) {
        for w in words.by_ref() {
            if w.ends_with(']') {
                break;
            }
        }
    }
    let rest: Vec<&str> = words.collect();
    let (url, suite, components) = match rest.as_slice() {
        [url, suite, components @ ..] if kind == "deb" && !components.is_empty() => {
            (*url, *suite, components)
        }
        _ => anyhow::bail!(
            "--source {line:?}: give `deb URL SUITE COMPONENT...` (like 'deb http://deb.debian.org/debian bookworm-backports main')"
        ),
    };
    crate::recipe::check_mirror(url).map_err(|m| anyhow::anyhow!("--source {line:?}: {m}"))?;
    let source = Source::new(url, suite);
    let download_from = if source.mirror == Source::new(main, "").mirror {
        String::new()
    } else {
        source.mirror.clone()
    };
    Ok(Some(ExtraSuite {
        source,
        download_from,
        optional: false,
        components: Some(components.iter().map(|c| c.to_string()).collect()),
    }))
}

/// Packages that make a Debian system's /sbin/init: one of them in
/// `--include` replaces the recipe's default init instead of conflicting with it.
const INIT_PACKAGES: [&str; 5] = [
    "systemd-sysv",
    "sysvinit-core",
    "runit-init",
    "openrc",
    "dinit-sysv",
];

fn names_an_init(include: &str) -> bool {
    let name = include.split('=').next().unwrap_or(include);
    INIT_PACKAGES.contains(&name)
}

impl Package for ResolvedPackage {
    fn name(&self) -> &str {
        &self.name
    }
    fn size(&self) -> u64 {
        self.size
    }
    fn identity(&self) -> String {
        format!(
            "{}={} {} {}",
            self.name, self.version, self.arch, self.sha256
        )
    }
}

impl Distribution for Debian {
    type Repositories = Repositories;
    type Indices = PackageIndex;
    type Package = ResolvedPackage;

    fn family(&self) -> &'static str {
        "debian"
    }

    fn variants(&self) -> &'static [&'static str] {
        &["essential", "minbase", "standard", "custom"]
    }

    fn check_repository(&self, recipe: &Recipe) -> Result<(), RecipeError> {
        recipe::read(recipe).map(|_| ())
    }

    fn repositories(&self, recipe: &Recipe, opts: &SourceOptions) -> anyhow::Result<Repositories> {
        let table = recipe::read(recipe)?;
        let mut key_material = Keyring::recipe_material(recipe)?;
        for k in &opts.keyrings {
            key_material.push(
                keyring::read_material(k).with_context(|| format!("--keyring {}", k.display()))?,
            );
        }
        // A bad --keyring file is named now, not at the first verification.
        let n = key_material.len() - opts.keyrings.len();
        for ((source, bytes), k) in key_material[n..].iter().zip(&opts.keyrings) {
            Keyring::new()
                .add(source, bytes)
                .with_context(|| format!("--keyring {}", k.display()))?;
        }
        let mirror = opts.mirror.clone().unwrap_or_else(|| table.mirror.clone());
        let mut extra = extra_suites(&table, opts);
        for line in &opts.sources {
            extra.extend(source_line_suite(line, &mirror)?);
        }
        let components = if opts.components.is_empty() {
            table.components.clone()
        } else {
            opts.components.clone()
        };
        Ok(Repositories {
            source: Source::new(&mirror, &table.suite),
            components,
            key_digest: keyring::material_digest(&key_material),
            key_material,
            keyring: std::cell::OnceCell::new(),
            extra,
            table,
        })
    }

    fn fetch_indices(
        &self,
        cache: &Cache,
        repos: &Repositories,
        opts: &SourceOptions,
    ) -> anyhow::Result<PackageIndex> {
        let verify = release::VerifyOptions {
            check_valid_until: !opts.allow_expired,
            ..release::VerifyOptions::default()
        };
        let keyring = repos.keyring()?;
        let (release, sha) = fetch::fetch_release_digest(cache, &repos.source, keyring, &verify)?;
        fetch::note_verified(cache, &repos.source, &sha, &repos.key_digest, &release)?;
        let mut index = fetch::fetch_packages(
            cache,
            &repos.source,
            &release,
            &repos.components,
            &opts.arch,
        )?;
        for x in &repos.extra {
            let release = match fetch::fetch_release_digest(cache, &x.source, keyring, &verify) {
                Ok((r, sha)) => {
                    fetch::note_verified(cache, &x.source, &sha, &repos.key_digest, &r)?;
                    r
                }
                Err(e) if x.optional && absent(&e) => {
                    note_absent(x);
                    continue;
                }
                // A --source line's suite (it has components of its own).
                Err(e) if x.components.is_some() => {
                    return Err(anyhow::Error::new(e).context(format!(
                        "--source {} {} (a key it is signed with goes in with --keyring FILE)",
                        x.source.mirror, x.source.suite
                    )))
                }
                Err(e) => {
                    return Err(anyhow::Error::new(e).context(format!(
                        "the update suite {} (--no-updates builds {} alone)",
                        x.source.suite, repos.source.suite
                    )))
                }
            };
            fetch::add_packages(
                &mut index,
                cache,
                &x.source,
                &release,
                x.components.as_ref().unwrap_or(&repos.components),
                &x.download_from,
            )?;
        }
        Ok(index)
    }

    fn signed_digest(
        &self,
        cache: &Cache,
        repos: &Repositories,
        opts: &SourceOptions,
    ) -> Option<String> {
        use sha2::{Digest, Sha256};
        let verify = release::VerifyOptions {
            check_valid_until: !opts.allow_expired,
            ..release::VerifyOptions::default()
        };
        let mut h = Sha256::new();
        let mut part = |s: &str| {
            h.update(s.as_bytes());
            h.update([0u8]);
        };
        part(&repos.key_digest);
        part(&repos.components.join(" "));
        let suites = std::iter::once((&repos.source, "", None)).chain(
            repos
                .extra
                .iter()
                .map(|x| (&x.source, x.download_from.as_str(), Some(x))),
        );
        let mut skipped = vec![];
        for (source, download_from, extra) in suites {
            part(&source.mirror);
            part(&source.suite);
            part(download_from);
            // A `--source` line's own components choose packages too.
            let own = extra.and_then(|x| x.components.as_ref());
            part(&own.map(|c| c.join(" ")).unwrap_or_default());
            match fetch::inrelease_bytes(cache, source) {
                Ok(bytes) => {
                    let sha = hex::encode(Sha256::digest(&bytes));
                    if !fetch::verified_before(cache, source, &sha, &repos.key_digest, &verify) {
                        return None;
                    }
                    part(&sha);
                }
                // What the full path would skip, with the same note.
                Err(e) if extra.is_some_and(|x| x.optional) && absent(&e) => {
                    skipped.extend(extra);
                    part("absent");
                }
                Err(_) => return None,
            }
        }
        skipped.into_iter().for_each(note_absent);
        Some(hex::encode(h.finalize()))
    }

    fn resolve(
        &self,
        recipe: &Recipe,
        indices: &PackageIndex,
        request: &PackageRequest,
    ) -> anyhow::Result<(String, Vec<ResolvedPackage>)> {
        let variant: Variant =
            match &request.variant {
                Some(v) => v.parse().map_err(|e| anyhow::anyhow!("--variant: {e}"))?,
                None => recipe.build.default_variant.parse().map_err(|e| {
                    anyhow::anyhow!("recipe {}: default_variant: {e}", recipe.release)
                })?,
            };
        let mut include = request.include.clone();
        if request.with_init && !include.iter().any(|p| names_an_init(p)) {
            include.extend(recipe.init.clone());
        }
        if variant == Variant::Custom && include.is_empty() {
            anyhow::bail!(
                "--variant custom installs only what --include names; name at least one package"
            );
        }
        Ok((
            variant.to_string(),
            resolve::resolve(indices, variant, &include)?,
        ))
    }

    fn fetch_packages(
        &self,
        cache: &Cache,
        repos: &Repositories,
        packages: &[ResolvedPackage],
        jobs: usize,
        progress: &dyn vbuild_cache::Progress,
    ) -> anyhow::Result<Vec<PathBuf>> {
        Ok(fetch::fetch_debs(
            cache,
            &repos.source.mirror,
            packages,
            jobs,
            progress,
        )?)
    }

    fn install(
        &self,
        rootfs: &Path,
        recipe: &Recipe,
        packages: &[ResolvedPackage],
        files: &[PathBuf],
        request: &InstallRequest,
    ) -> anyhow::Result<Installed> {
        let progress = request.progress.clone();
        let opts = install::InstallOptions {
            arch: request.arch.clone(),
            merged_usr: recipe.build.merged_usr,
            jobs: request.jobs.clamp(1, 16),
            progress: progress
                .map(|p| Box::new(move |e: &InstallEvent<'_>| p(e)) as install::ProgressFn),
            hostname: Some(request.hostname.clone()),
            after_unpack: request.after_unpack.clone(),
        };
        let report = install::install(rootfs, files, &opts)?;
        let root = vbuild_kernel::fsroot::Root::open(rootfs)
            .map_err(|e| anyhow::anyhow!("{}: {e}", rootfs.display()))?;
        aptstate::write_extended_states(&root, packages, &request.arch)
            .map_err(|e| anyhow::anyhow!("writing apt's extended_states: {e}"))?;
        let t = &report.times;
        Ok(Installed {
            packages: report.packages,
            bytes: report.bytes,
            scripts: report.scripts,
            phases: vec![
                ("install/unpack".into(), t.unpack),
                ("install/database".into(), t.database),
                ("install/scripts".into(), t.scripts),
                ("install/triggers".into(), t.triggers),
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
        let r = &repos.table;
        let mut suites = vec![r.suite.clone()];
        suites.extend(r.updates_suite.clone());
        TailorVars {
            hostname: hostname.to_string(),
            release: recipe.release.clone(),
            // A `file://` mirror is a directory of the build host, which
            // the guest cannot reach: its apt gets the recipe's mirror.
            mirror: if repos.source.mirror.starts_with("file://") {
                r.mirror.clone()
            } else {
                repos.source.mirror.clone()
            },
            security_mirror: r.security.as_ref().map(|s| s.mirror.clone()),
            suites,
            security_suites: r.security.iter().map(|s| s.suite.clone()).collect(),
            components: repos.components.clone(),
            net: net.clone(),
        }
    }

    fn detect_init(&self, rootfs: &Path) -> InitConfig {
        init::detect_init(rootfs)
    }
}

#[cfg(test)]
mod tests {
    use super::names_an_init;

    #[test]
    fn an_included_init_replaces_the_default_one() {
        assert!(names_an_init("sysvinit-core"));
        assert!(names_an_init("systemd-sysv=252.30-1~deb12u2"));
        assert!(!names_an_init("nginx"));
        assert!(!names_an_init("systemd"));
    }
}
