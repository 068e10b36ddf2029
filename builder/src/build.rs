//! Building a guest from a recipe: the one place where the steps meet.
//!
//! recipe → verified InRelease → Packages → resolve → download (cache) →
//! disk backend → unpack + dpkg database + maintainer scripts → tailoring →
//! `guest.toml`. The guest directory is reserved first and removed again if
//! any step fails or Ctrl-C arrives, so a build either yields a complete
//! guest or nothing.

use crate::distro::debian::aptstate;
use crate::distro::debian::fetch::{fetch_debs, fetch_packages, fetch_release, Source};
use crate::distro::debian::install::{install, InstallEvent, InstallOptions};
use crate::distro::debian::keyring::Keyring;
use crate::distro::debian::release::VerifyOptions;
use crate::distro::debian::resolve::{resolve, Variant};
use crate::guests::{interrupted, GuestSlot};
use crate::progress::BuildProgress;
use crate::recipe::Recipe;
use crate::tailor::{self, NetVars, TailorVars};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use vbuild_cache::Cache;
use vbuild_runtime::config::GuestConfig;
use vbuild_runtime::limits::Limits;
use vbuild_runtime::net::NetConfig;
use vbuild_runtime::paths::Layout;

/// Everything a build needs, checked by the CLI before anything is created.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// Guest name (also hostname).
    pub name: String,
    /// The recipe (family + release).
    pub recipe: Recipe,
    /// Package-set variant; `None` = the recipe's default.
    pub variant: Option<Variant>,
    /// Extra packages.
    pub include: Vec<String>,
    /// Add the recipe's init package (`systemd-sysv`) so the guest boots;
    /// off gives the bare tree mmdebstrap's variants give.
    pub with_init: bool,
    /// Mirror instead of the recipe's (a local mirror or caching proxy).
    pub mirror: Option<String>,
    /// Extra trusted key files (a private mirror's signing key).
    pub keyrings: Vec<PathBuf>,
    /// Build from the cache alone.
    pub offline: bool,
    /// Accept a Release whose Valid-Until passed (snapshot mirrors only).
    pub allow_expired: bool,
    /// Architecture (`amd64`).
    pub arch: String,
    /// Parallel downloads and unpack workers.
    pub jobs: usize,
    /// Resource limits to record (and `disk` to apply at creation).
    pub limits: Limits,
    /// Network context to record.
    pub net: NetConfig,
    /// What the guest's own network files say.
    pub net_vars: NetVars,
}

/// What a build did, for the CLI's summary and `--json`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BuildReport {
    /// Guest name.
    pub name: String,
    /// `debian/bookworm`.
    pub distro: String,
    /// Variant built.
    pub variant: String,
    /// Packages installed.
    pub packages: usize,
    /// Bytes of .debs (downloaded or from the cache).
    pub deb_bytes: u64,
    /// Bytes unpacked into the rootfs.
    pub installed_bytes: u64,
    /// Maintainer scripts run.
    pub scripts: usize,
    /// Seconds per step, in order.
    pub seconds: Vec<(String, f64)>,
    /// Total seconds.
    pub total_seconds: f64,
    /// The rootfs.
    pub rootfs: PathBuf,
}

struct Timer {
    start: Instant,
    last: Instant,
    steps: Vec<(String, f64)>,
}

impl Timer {
    fn new() -> Timer {
        let now = Instant::now();
        Timer {
            start: now,
            last: now,
            steps: vec![],
        }
    }
    /// Closes the step `name`, and stops the build if Ctrl-C arrived during it.
    fn lap(&mut self, name: &str) -> Result<()> {
        let now = Instant::now();
        self.steps
            .push((name.to_string(), secs(now.duration_since(self.last))));
        self.last = now;
        if interrupted() {
            bail!("interrupted during {name}; nothing was kept");
        }
        Ok(())
    }
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

fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

/// Builds the guest `req.name` under `layout`. On error nothing of the
/// guest remains (the cache keeps only verified, complete files).
pub fn build_debian(
    layout: &Layout,
    req: &BuildRequest,
    progress: Arc<BuildProgress>,
) -> Result<BuildReport> {
    let mut t = Timer::new();
    let recipe = &req.recipe;
    let slot = GuestSlot::reserve(layout, &req.name)?;
    let mut cache = Cache::open(layout.cache_dir())?;
    cache.set_offline(req.offline);

    // 1. indices, verified.
    progress.step("verifying InRelease and Packages");
    let mut keyring = Keyring::for_recipe(recipe)?;
    for k in &req.keyrings {
        keyring
            .add_file(k)
            .with_context(|| format!("--keyring {}", k.display()))?;
    }
    let mirror = req
        .mirror
        .clone()
        .unwrap_or_else(|| recipe.repository.mirror.clone());
    let source = Source::new(&mirror, &recipe.repository.suite);
    let verify = VerifyOptions {
        check_valid_until: !req.allow_expired,
        ..VerifyOptions::default()
    };
    let release = fetch_release(&cache, &source, &keyring, &verify)?;
    let index = fetch_packages(
        &cache,
        &source,
        &release,
        &recipe.repository.components,
        &req.arch,
    )?;
    t.lap("indices")?;

    // 2. the package set.
    let variant = match req.variant {
        Some(v) => v,
        None => recipe
            .build
            .default_variant
            .parse()
            .map_err(|e| anyhow::anyhow!("recipe {}: default_variant: {e}", recipe.release))?,
    };
    let mut include = req.include.clone();
    if req.with_init && !include.iter().any(|p| names_an_init(p)) {
        include.extend(recipe.init.clone());
    }
    let packages = resolve(&index, variant, &include)?;
    t.lap("resolve")?;

    // 3. the .debs, verified into the cache.
    let deb_bytes: u64 = packages.iter().map(|p| p.size).sum();
    progress.stage("downloading", packages.len() as u64);
    let debs = fetch_debs(&cache, &mirror, &packages, req.jobs, progress.as_ref())?;
    t.lap("download")?;

    // 4. rootfs (disk backend), unpack, database, maintainer scripts.
    vbuild_runtime::disk::create(layout, &req.name, req.limits.disk)?;
    let rootfs = layout.guest_rootfs(&req.name);
    progress.stage("installing", debs.len() as u64);
    let p = progress.clone();
    let opts = InstallOptions {
        arch: req.arch.clone(),
        merged_usr: recipe.build.merged_usr,
        jobs: req.jobs.clamp(1, 16),
        progress: Some(Box::new(move |e: &InstallEvent| match e {
            InstallEvent::Phase(name) => p.step(name),
            InstallEvent::Unpacked { package, .. } => {
                vbuild_cache::Progress::item_done(&*p, package)
            }
            InstallEvent::Script { package, script } => p.step(&format!("{script} {package}")),
        })),
        hostname: Some(req.name.clone()),
    };
    let report = install(&rootfs, &debs, &opts)?;
    t.lap("install")?;
    let root = vbuild_kernel::fsroot::Root::open(&rootfs)
        .map_err(|e| anyhow::anyhow!("{}: {e}", rootfs.display()))?;
    aptstate::write_extended_states(&root, &packages, &req.arch)
        .map_err(|e| anyhow::anyhow!("writing apt's extended_states: {e}"))?;
    let phases = &report.times;
    for (name, d) in [
        ("install/unpack", phases.unpack),
        ("install/database", phases.database),
        ("install/scripts", phases.scripts),
        ("install/triggers", phases.triggers),
    ] {
        t.steps.push((name.to_string(), secs(d)));
    }

    // 5. container tailoring from the recipe's profile.
    progress.step("tailoring");
    let mut suites = vec![recipe.repository.suite.clone()];
    suites.extend(recipe.repository.updates_suite.clone());
    let vars = TailorVars {
        hostname: req.name.clone(),
        release: recipe.release.clone(),
        mirror: mirror.clone(),
        security_mirror: recipe
            .repository
            .security
            .as_ref()
            .map(|s| s.mirror.clone()),
        suites,
        security_suites: recipe
            .repository
            .security
            .iter()
            .map(|s| s.suite.clone())
            .collect(),
        components: recipe.repository.components.clone(),
        net: req.net_vars.clone(),
    };
    tailor::tailor(&rootfs, &recipe.tailor, &vars)?;
    let init = tailor::detect_init(&rootfs);
    t.lap("tailor")?;

    // 6. the config makes it a guest.
    let config = GuestConfig {
        name: req.name.clone(),
        distro: recipe.family.clone(),
        release: recipe.release.clone(),
        variant: variant.to_string(),
        created: SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        init,
        limits: req.limits.clone(),
        net: req.net.clone(),
    };
    config.save(&layout.guest_config(&req.name))?;
    if interrupted() {
        bail!("interrupted; nothing was kept");
    }
    slot.commit();
    progress.finish();
    Ok(BuildReport {
        name: req.name.clone(),
        distro: format!("{}/{}", recipe.family, recipe.release),
        variant: variant.to_string(),
        packages: report.packages,
        deb_bytes,
        installed_bytes: report.bytes,
        scripts: report.scripts,
        total_seconds: secs(t.start.elapsed()),
        seconds: t.steps,
        rootfs,
    })
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
