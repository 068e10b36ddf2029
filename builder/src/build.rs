//! Building a guest from a recipe: the one place where the steps meet,
//! for any distribution family (`crate::distro::Distribution`).
//!
//! recipe → repositories → verified indices → resolve → download (cache) →
//! disk backend → install (unpack, package database, scripts) → tailoring →
//! `guest.toml`. The guest directory is reserved first and removed again if
//! any step fails or Ctrl-C arrives, so a build either yields a complete
//! guest or nothing.

use crate::customize::Customize;
use crate::distro::{
    with_family, Distribution, InstallEvent, InstallRequest, Package, PackageRequest,
    SourceOptions, WithDistribution,
};
use crate::guests::{interrupted, GuestSlot};
use crate::hooks::{HookEnv, Stage};
use crate::progress::BuildProgress;
use crate::recipe::Recipe;
use crate::tailor::{self, NetVars};
use anyhow::{bail, Result};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use vbuild_cache::templates::{Resolution, TemplateMeta, TemplateStore};
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
    pub variant: Option<String>,
    /// Extra packages.
    pub include: Vec<String>,
    /// Add the recipe's init package (`systemd-sysv`) so the guest boots;
    /// off gives a bare tree (mmdebstrap's variants, for Debian).
    pub with_init: bool,
    /// Follow weak dependencies too (`--recommends`).
    pub recommends: bool,
    /// Mirror instead of the recipe's (a local mirror or caching proxy).
    pub mirror: Option<String>,
    /// Extra trusted key files (a private mirror's signing key).
    pub keyrings: Vec<PathBuf>,
    /// Build from the cache alone.
    pub offline: bool,
    /// Read the release's security and updates suites too (the newest
    /// version across suites wins); off is `--no-updates`.
    pub updates: bool,
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
    /// Record the guest as privileged (no user namespace) in guest.toml.
    pub privileged: bool,
    /// Record it as started at host boot (`--autostart`).
    pub autostart: bool,
    /// Its restart policy (`--restart`).
    pub restart: vbuild_runtime::restart::RestartPolicy,
    /// A full copy of its own (a plain tree another manager can boot)
    /// instead of an overlay of the shared template.
    pub copy: bool,
    /// Guest setup, hooks, components and extra sources (`--user`,
    /// `--customize-hook`, `--components`...); hooks imply `copy`.
    pub customize: Customize,
}

/// What a build did, for the CLI's summary and `--json`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BuildReport {
    /// Guest name.
    pub name: String,
    /// The family (`debian`), as `list` and `status` name it.
    pub distro: String,
    /// The release (`bookworm`).
    pub release: String,
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
    /// Seconds per step, in order (a JSON object, step name to seconds).
    #[serde(serialize_with = "steps_as_object")]
    pub seconds: Vec<(String, f64)>,
    /// Total seconds.
    pub total_seconds: f64,
    /// The rootfs (the template's, for an overlay guest).
    pub rootfs: PathBuf,
    /// The template the guest is an overlay of; `None` for `--copy`.
    pub template: Option<String>,
    /// Whether that template was built by this run (else reused).
    pub template_built: bool,
}

/// Writes the step timings as one JSON object, keeping the steps' order.
fn steps_as_object<S: serde::Serializer>(
    steps: &[(String, f64)],
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(Some(steps.len()))?;
    for (k, v) in steps {
        m.serialize_entry(k, v)?;
    }
    m.end()
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
            bail!("interrupted during {name}");
        }
        Ok(())
    }
}

#[cfg(test)]
mod disk_full_tests {
    use super::explain_disk_full;

    #[test]
    fn a_full_disk_names_the_limit_and_the_fix() {
        let raw = std::io::Error::from_raw_os_error(libc::ENOSPC);
        let e = anyhow::Error::new(raw).context("unpacking coreutils: ./usr/bin/ls");
        let m = explain_disk_full(e, Some(100 << 20)).to_string();
        assert!(
            m.starts_with("the guest's disk (--disk 100M) filled up during the build"),
            "{m}"
        );
        assert!(m.contains("give it more room"), "{m}");
        // Without a disk limit, or for another error, the error stays.
        let raw = std::io::Error::from_raw_os_error(libc::ENOSPC);
        assert!(!explain_disk_full(anyhow::Error::new(raw), None)
            .to_string()
            .contains("--disk"));
        let other = anyhow::anyhow!("bad signature");
        assert_eq!(
            explain_disk_full(other, Some(1 << 30)).to_string(),
            "bad signature"
        );
    }
}

fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

/// Builds the guest `req.name` under `layout` with the family the recipe
/// names. On error nothing of the guest remains (the cache keeps only
/// verified, complete files).
pub fn build(
    layout: &Layout,
    req: &BuildRequest,
    progress: Arc<BuildProgress>,
) -> Result<BuildReport> {
    struct Build<'a> {
        layout: &'a Layout,
        req: &'a BuildRequest,
        progress: Arc<BuildProgress>,
    }
    impl WithDistribution for Build<'_> {
        type Output = Result<BuildReport>;
        fn run<D: Distribution>(self, d: &D) -> Result<BuildReport> {
            build_with(d, self.layout, self.req, self.progress)
        }
    }
    with_family(
        &req.recipe.family,
        Build {
            layout,
            req,
            progress,
        },
    )?
    .map_err(|e| explain_disk_full(e, req.limits.disk))
}

/// A build that fills the guest's `--disk` fails deep inside unpacking or
/// a maintainer script, with a bare "No space left on device" on some
/// path: say instead that the limit is too small and what to do.
fn explain_disk_full(e: anyhow::Error, disk: Option<u64>) -> anyhow::Error {
    let Some(limit) = disk else { return e };
    let full = e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .and_then(|io| io.raw_os_error())
            == Some(libc::ENOSPC)
            || c.to_string().contains("No space left on device")
    });
    if !full {
        return e;
    }
    let size = vbuild_runtime::size::format_size(limit);
    anyhow::anyhow!(
        "the guest's disk (--disk {size}) filled up during the build: \
         give it more room (a bookworm --copy tree unpacks to 150-180M: try --disk 1G; \
         an overlay guest shares its template and needs room only for its own changes) \
         [{}]",
        e.root_cause()
    )
}

fn build_with<D: Distribution>(
    distro: &D,
    layout: &Layout,
    req: &BuildRequest,
    progress: Arc<BuildProgress>,
) -> Result<BuildReport> {
    let mut t = Timer::new();
    let recipe = &req.recipe;
    let slot = GuestSlot::reserve(layout, &req.name)?;
    let mut cache = Cache::open(layout.cache_dir())?;
    cache.set_offline(req.offline);
    // `vbuild cache prune` waits its turn until this build is done with its blobs.
    let _hold = cache.hold()?;
    cache.set_proxy(req.customize.build_proxy());

    // 1-2. indices, verified, and the package set (or the template a
    // resolution of exactly these indices and inputs made before).
    let set = resolve_set(distro, layout, req, &cache, &progress, &mut t, !req.copy)?;
    let repos = &set.repos;
    let variant = set.variant.clone();

    // 3-5. the root filesystem: a full copy, or the shared template (built
    // once per distinct input) under the guest's own layer.
    let vars = distro.tailor_vars(recipe, repos, &req.name, &req.net_vars);
    let profile = distro.tailor_profile(recipe);
    let hooks = &req.customize.hooks;
    let env = hook_env(req, &variant);
    let (rootfs, template, template_built, report) = if req.copy || req.customize.needs_own_tree() {
        vbuild_runtime::disk::create(layout, &req.name, req.limits.disk)?;
        let rootfs = layout.guest_rootfs(&req.name);
        hooks.run(Stage::Setup, &rootfs, &env)?;
        let report = make_root(
            distro,
            &rootfs,
            req,
            repos,
            &set.packages,
            &cache,
            &progress,
            &mut t,
        )?;
        hooks.run(Stage::Essential, &rootfs, &env)?;
        progress.note("tailoring");
        tailor::tailor(&rootfs, profile, &vars)?;
        tailor::apply_setup(&rootfs, &rootfs, &req.customize.setup)?;
        hooks.run(Stage::Customize, &rootfs, &env)?;
        t.lap("tailor")?;
        (rootfs, None, false, Some(report))
    } else {
        let (id, report) = set.template(distro, layout, req, &cache, &progress, &mut t)?;
        let store = TemplateStore::new(&layout.templates_dir());
        let built = report.is_some();
        progress.note("creating the guest's layer");
        vbuild_runtime::layer::create(layout, &req.name, req.limits.disk)?;
        let upper = layout.guest_layer(&req.name).join("upper");
        tailor::tailor_guest(&store.rootfs(&id), &upper, profile, &vars)?;
        tailor::apply_setup(&store.rootfs(&id), &upper, &req.customize.setup)?;
        t.lap("guest layer")?;
        (store.rootfs(&id), Some(id), built, report)
    };
    let init = distro.detect_init(&rootfs);

    // 6. the config makes it a guest.
    let config = GuestConfig {
        name: req.name.clone(),
        distro: recipe.family.clone(),
        release: recipe.release.clone(),
        variant: variant.clone(),
        created: now(),
        init,
        limits: req.limits.clone(),
        net: req.net.clone(),
        privileged: req.privileged,
        ids: None,
        template: template.clone(),
        autostart: req.autostart,
        restart: req.restart,
    };
    config.save(&layout.guest_config(&req.name))?;
    if interrupted() {
        bail!("interrupted; nothing was kept");
    }
    slot.commit();
    progress.finish();
    Ok(BuildReport {
        name: req.name.clone(),
        distro: recipe.family.to_string(),
        release: recipe.release.to_string(),
        variant,
        packages: set.package_count(),
        deb_bytes: set.package_bytes(),
        installed_bytes: report.as_ref().map_or(0, |r| r.bytes),
        scripts: report.as_ref().map_or(0, |r| r.scripts),
        total_seconds: secs(t.start.elapsed()),
        seconds: t.steps,
        rootfs,
        template,
        template_built,
    })
}

/// The sources part of a request, as every family reads it.
fn source_options(req: &BuildRequest) -> SourceOptions {
    SourceOptions {
        mirror: req.mirror.clone(),
        keyrings: req.keyrings.clone(),
        allow_expired: req.allow_expired,
        arch: req.arch.clone(),
        updates: req.updates,
        components: req.customize.components.clone(),
        sources: req.customize.setup.sources.clone(),
    }
}

/// What the build's hooks are told about it.
fn hook_env(req: &BuildRequest, variant: &str) -> HookEnv {
    let variant = match variant {
        "" => req
            .variant
            .clone()
            .unwrap_or_else(|| req.recipe.build.default_variant.clone()),
        v => v.to_string(),
    };
    HookEnv {
        name: req.name.clone(),
        distro: req.recipe.family.clone(),
        release: req.recipe.release.clone(),
        variant,
        arch: req.arch.clone(),
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The first half of every build and refresh: the repositories, their
/// verified indices and the package set resolved from them.
struct ResolvedSet<D: Distribution> {
    repos: D::Repositories,
    /// The variant resolved.
    variant: String,
    /// The packages resolved now; empty when `known` names the template.
    packages: Vec<D::Package>,
    /// A resolution of exactly these signed indices and inputs made before,
    /// whose template exists: nothing was read or resolved.
    known: Option<Resolution>,
    /// The key resolutions of this request are remembered under; `None`
    /// when the family has no signed digest (or it did not verify before).
    key: Option<String>,
}

impl<D: Distribution> ResolvedSet<D> {
    fn package_count(&self) -> usize {
        self.known
            .as_ref()
            .map_or(self.packages.len(), |k| k.packages)
    }

    fn package_bytes(&self) -> u64 {
        self.known.as_ref().map_or_else(
            || self.packages.iter().map(|p| p.size()).sum(),
            |k| k.package_bytes,
        )
    }

    /// The set's template: the known one, or built now (when missing) and
    /// remembered under the request's key. Returns its id and, when this
    /// call built it, what the install did.
    fn template(
        &self,
        distro: &D,
        layout: &Layout,
        req: &BuildRequest,
        cache: &Cache,
        progress: &Arc<BuildProgress>,
        t: &mut Timer,
    ) -> Result<(String, Option<crate::distro::Installed>)> {
        if let Some(k) = &self.known {
            return Ok((k.id.clone(), None));
        }
        let (id, report) = ensure_template(
            distro,
            layout,
            req,
            &self.repos,
            &self.variant,
            &self.packages,
            cache,
            progress,
            t,
        )?;
        if let Some(key) = &self.key {
            let r = Resolution {
                id: id.clone(),
                variant: self.variant.clone(),
                packages: self.package_count(),
                package_bytes: self.package_bytes(),
            };
            // Losing it only costs the next identical request a resolution.
            if let Err(e) = TemplateStore::new(&layout.templates_dir()).remember(key, &r) {
                crate::progress::say(&format!(
                    "vbuild: note: could not remember the resolution of template {id}: {e}"
                ));
            }
        }
        Ok((id, report))
    }
}

/// Reads the repositories and resolves `req`'s package set; with
/// `reuse`, first asks the family for a digest of its signed indices and
/// takes a resolution remembered under it and the request (no index is
/// parsed, nothing resolved: the template exists).
fn resolve_set<D: Distribution>(
    distro: &D,
    layout: &Layout,
    req: &BuildRequest,
    cache: &Cache,
    progress: &Arc<BuildProgress>,
    t: &mut Timer,
    reuse: bool,
) -> Result<ResolvedSet<D>> {
    let recipe = &req.recipe;
    progress.note("verifying the repository's indices");
    let sources = source_options(req);
    let repos = distro.repositories(recipe, &sources)?;
    let key = match reuse.then(|| distro.signed_digest(cache, &repos, &sources)) {
        Some(Some(digest)) => Some(request_key(req, distro.tailor_profile(recipe), &digest)?),
        _ => None,
    };
    let store = TemplateStore::new(&layout.templates_dir());
    if let Some(known) = key.as_deref().and_then(|k| store.resolution(k)) {
        t.lap("indices")?;
        return Ok(ResolvedSet {
            repos,
            variant: known.variant.clone(),
            packages: vec![],
            known: Some(known),
            key,
        });
    }
    let indices = distro.fetch_indices(cache, &repos, &sources)?;
    t.lap("indices")?;
    let request = PackageRequest {
        variant: req.variant.clone(),
        include: req.include.clone(),
        with_init: req.with_init,
        recommends: req.recommends,
    };
    let (variant, packages) = distro.resolve(recipe, &indices, &request)?;
    t.lap("resolve")?;
    Ok(ResolvedSet {
        repos,
        variant,
        packages,
        known: None,
        key,
    })
}

/// The key a resolution is remembered under: sha256 over the signed
/// indices' digest and everything else the resolution and the template id
/// read (recipe, variant asked for, includes, init, weak dependencies,
/// mirror, architecture, suites, tailoring profile) and this vbuild
/// binary (another resolver may choose otherwise), so equal keys mean the
/// same template id.
fn request_key(req: &BuildRequest, profile: &str, signed_digest: &str) -> Result<String> {
    use sha2::{Digest, Sha256};
    let recipe = &req.recipe;
    let binary = std::env::current_exe()
        .and_then(std::fs::metadata)
        .map(|m| {
            use std::os::unix::fs::MetadataExt;
            format!(
                "{} {} {} {}",
                m.dev(),
                m.ino(),
                m.size(),
                m.mtime_nsec() + m.mtime() * 1_000_000_000
            )
        })
        .unwrap_or_default();
    let mut h = Sha256::new();
    for part in [
        TEMPLATE_FORMAT.to_string(),
        env!("CARGO_PKG_VERSION").to_string(),
        binary,
        signed_digest.to_string(),
        format!("{:?}", recipe.repository),
        format!("{:?}", recipe.build),
        recipe.family.clone(),
        recipe.release.clone(),
        format!("{:?}", recipe.init),
        format!("{:?}", req.variant),
        req.include.join(","),
        req.with_init.to_string(),
        req.recommends.to_string(),
        format!("{:?}", req.mirror),
        req.arch.clone(),
        req.updates.to_string(),
        tailor::profile_fingerprint(profile)?,
    ] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Template ids change when anything that went into the tree changes.
/// Bump when the builder's own way of making a tree changes.
const TEMPLATE_FORMAT: &str = "vbuild-template-1";

/// A template's id: sha256 over everything that went into it — the
/// recipe, variant, includes, init, mirror, architecture, the tailoring
/// profile and the exact packages resolved (name, version, file hash) — so
/// identical inputs reuse it and any change (a new version on the mirror
/// included) makes a new one. The guest's name and network are not in it:
/// they live in the guest's own layer.
fn template_id<P: Package>(
    recipe: &Recipe,
    req: &BuildRequest,
    variant: &str,
    profile: &str,
    packages: &[P],
) -> Result<String> {
    use sha2::{Digest, Sha256};
    let mut pkgs: Vec<String> = packages.iter().map(|p| p.identity()).collect();
    pkgs.sort();
    let mut include = req.include.clone();
    include.sort();
    let mut h = Sha256::new();
    for part in [
        TEMPLATE_FORMAT.to_string(),
        format!("{:?}", recipe.repository),
        recipe.family.clone(),
        recipe.release.clone(),
        format!("{:?}", recipe.init),
        variant.to_string(),
        include.join(","),
        req.with_init.to_string(),
        format!("{:?}", req.mirror),
        req.arch.clone(),
        tailor::profile_fingerprint(profile)?,
        req.customize.template_part(),
        pkgs.join("\n"),
    ] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    Ok(hex::encode(&h.finalize()[..16]))
}

/// The template for these inputs: reused when one with the same id exists,
/// else built in the store's temporary directory and renamed into place.
/// Returns its id and, when this call built it, what the install did.
#[allow(clippy::too_many_arguments)]
fn ensure_template<D: Distribution>(
    distro: &D,
    layout: &Layout,
    req: &BuildRequest,
    repos: &D::Repositories,
    variant: &str,
    packages: &[D::Package],
    cache: &Cache,
    progress: &Arc<BuildProgress>,
    t: &mut Timer,
) -> Result<(String, Option<crate::distro::Installed>)> {
    let recipe = &req.recipe;
    let profile = distro.tailor_profile(recipe);
    let id = template_id(recipe, req, variant, profile, packages)?;
    let store = TemplateStore::new(&layout.templates_dir());
    let Some(b) = store.begin(&id)? else {
        return Ok((id, None));
    };
    // The template carries no guest's name or addresses: those live in
    // each guest's own layer.
    let neutral_req = BuildRequest {
        name: "localhost".into(),
        ..req.clone()
    };
    let rootfs = b.rootfs();
    let r = make_root(
        distro,
        &rootfs,
        &neutral_req,
        repos,
        packages,
        cache,
        progress,
        t,
    )?;
    progress.note("tailoring the template");
    let neutral = distro.tailor_vars(recipe, repos, "localhost", &NetVars::default());
    tailor::tailor(&rootfs, profile, &neutral)?;
    t.lap("tailor")?;
    if interrupted() {
        bail!("interrupted; nothing was kept");
    }
    let mut pkgs: Vec<String> = packages.iter().map(|p| p.identity()).collect();
    pkgs.sort();
    b.commit(&TemplateMeta {
        id: id.clone(),
        distro: recipe.family.clone(),
        release: recipe.release.clone(),
        variant: variant.to_string(),
        packages: pkgs,
        size: r.bytes,
        created: now(),
    })?;
    Ok((id, Some(r)))
}

/// What `vbuild template refresh` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RefreshReport {
    /// The template for today's packages.
    pub id: String,
    /// Whether it was built now (else it existed: up to date).
    pub built: bool,
    /// Templates of the same distro/release/variant that existed before;
    /// their guests keep them.
    pub previous: Vec<String>,
    /// Packages in the template.
    pub packages: usize,
    /// `name=version` of packages that differ from the newest previous
    /// template's (added or changed), sorted.
    pub changed: Vec<String>,
}

/// Re-reads the repositories and resolves `req`'s package set with today's
/// packages, building a new template when anything changed (no guest is
/// made, existing guests keep the template they are pinned to).
pub fn refresh(
    layout: &Layout,
    req: &BuildRequest,
    progress: Arc<BuildProgress>,
) -> Result<RefreshReport> {
    struct Refresh<'a> {
        layout: &'a Layout,
        req: &'a BuildRequest,
        progress: Arc<BuildProgress>,
    }
    impl WithDistribution for Refresh<'_> {
        type Output = Result<RefreshReport>;
        fn run<D: Distribution>(self, d: &D) -> Result<RefreshReport> {
            refresh_with(d, self.layout, self.req, self.progress)
        }
    }
    with_family(
        &req.recipe.family,
        Refresh {
            layout,
            req,
            progress,
        },
    )?
}

fn refresh_with<D: Distribution>(
    distro: &D,
    layout: &Layout,
    req: &BuildRequest,
    progress: Arc<BuildProgress>,
) -> Result<RefreshReport> {
    let mut t = Timer::new();
    let recipe = &req.recipe;
    let mut cache = Cache::open(layout.cache_dir())?;
    cache.set_offline(req.offline);
    // `vbuild cache prune` waits its turn until this build is done with its blobs.
    let _hold = cache.hold()?;
    cache.set_proxy(req.customize.build_proxy());
    let set = resolve_set(distro, layout, req, &cache, &progress, &mut t, true)?;
    let store = TemplateStore::new(&layout.templates_dir());
    let previous: Vec<TemplateMeta> = store
        .list()?
        .into_iter()
        .filter(|m| {
            m.distro == recipe.family && m.release == recipe.release && m.variant == set.variant
        })
        .collect();
    let (id, report) = set.template(distro, layout, req, &cache, &progress, &mut t)?;
    // What is in it: resolved now, or (a known resolution) as recorded.
    let identities: Vec<String> = match &set.known {
        None => set.packages.iter().map(|p| p.identity()).collect(),
        Some(_) => store.get(&id).map(|m| m.packages).unwrap_or_default(),
    };
    progress.finish();
    let name_version = |identity: &str| identity.split(' ').next().unwrap_or("").to_string();
    let before: std::collections::BTreeSet<String> = previous
        .iter()
        .rfind(|m| m.id != id)
        .map(|m| m.packages.iter().map(|p| name_version(p)).collect())
        .unwrap_or_default();
    let mut changed: Vec<String> = identities
        .iter()
        .map(|p| name_version(p))
        .filter(|p| !before.contains(p))
        .collect();
    changed.sort();
    Ok(RefreshReport {
        built: report.is_some(),
        previous: previous
            .into_iter()
            .map(|m| m.id)
            .filter(|p| *p != id)
            .collect(),
        packages: set.package_count(),
        changed,
        id,
    })
}

/// Downloads, unpacks and configures `packages` into `rootfs` (steps 3-4).
#[allow(clippy::too_many_arguments)]
fn make_root<D: Distribution>(
    distro: &D,
    rootfs: &std::path::Path,
    req: &BuildRequest,
    repos: &D::Repositories,
    packages: &[D::Package],
    cache: &Cache,
    progress: &Arc<BuildProgress>,
    t: &mut Timer,
) -> Result<crate::distro::Installed> {
    progress.stage("downloading", packages.len() as u64);
    let files = distro.fetch_packages(cache, repos, packages, req.jobs, progress.as_ref())?;
    t.lap("download")?;
    progress.stage("installing", files.len() as u64);
    let p = progress.clone();
    let install = InstallRequest {
        arch: req.arch.clone(),
        jobs: req.jobs,
        hostname: req.name.clone(),
        progress: Some(Arc::new(move |e: &InstallEvent<'_>| match e {
            InstallEvent::Phase(name) => p.note(name),
            InstallEvent::Unpacked { package, .. } => {
                vbuild_cache::Progress::item_done(&*p, package)
            }
            InstallEvent::Script { package, script } => p.detail(&format!("{script} {package}")),
        })),
        after_unpack: (!req.customize.hooks.extract.is_empty()).then(|| {
            let hooks = req.customize.hooks.clone();
            let rootfs = rootfs.to_path_buf();
            let env = hook_env(req, "");
            Arc::new(move || hooks.run(Stage::Extract, &rootfs, &env)) as crate::distro::AfterUnpack
        }),
    };
    let report = distro.install(rootfs, &req.recipe, packages, &files, &install)?;
    t.lap("install")?;
    for (name, d) in &report.phases {
        t.steps.push((name.clone(), secs(*d)));
    }
    Ok(report)
}
