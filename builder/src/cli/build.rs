//! `vbuild build FAMILY RELEASE --name NAME` (and its shorthand `vbuild
//! debian RELEASE`): build a guest of any family that has a module.

use super::limit::LimitFlags;
use super::net::{net_vars, NetFlags};
use super::Ctx;
use anyhow::Context;
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;
use vbuild_builder::build::{build, BuildRequest};
use vbuild_builder::distro::debian::alias as debian_alias;
use vbuild_builder::distro::{self, UnknownFamily};
use vbuild_builder::guests::catch_interrupts;
use vbuild_builder::progress::BuildProgress;
use vbuild_builder::recipe::Recipe;
use vbuild_runtime::name::GuestName;
use vbuild_runtime::size::format_size;

/// Arguments of `vbuild build`.
///
/// Examples:
///   vbuild build debian bookworm --name mail01 --ip 10.77.0.11/24 --memory 512M
///   vbuild build debian trixie --name web01 --variant standard --include openssh-server,nginx
///   SOURCE_DATE_EPOCH=1700000000 vbuild build debian bookworm --output bookworm.tar.zst
///   vbuild build debian bookworm --output bookworm-oci/ --format oci
///   vbuild build debian bookworm --output bookworm-incus/ --format incus   # incus image import
///   vbuild build fedora 44 --name web02 --variant core
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct BuildArgs {
    /// Distribution family (debian, fedora).
    pub family: String,
    /// Release of that family (debian: bookworm, trixie, forky or sid, or
    /// a suite name: stable, testing, unstable, oldstable, oldoldstable,
    /// looked up on the mirror; fedora: 43, 44, 45 or rawhide).
    pub release: String,
    /// Everything else, the same for every family.
    #[command(flatten)]
    pub flags: BuildFlags,
}

/// Arguments of `vbuild debian`, the shorthand of `vbuild build debian`.
///
/// Examples:
///   vbuild debian bookworm --name mail01 --ip 10.77.0.11/24 --memory 512M
///   vbuild debian trixie --name web01 --variant standard --include openssh-server,nginx
///   vbuild debian bookworm --name t1 --mirror http://127.0.0.1:3142/debian
///   vbuild debian stable --name st1   (the mirror says which release stable is)
///   SSL_CERT_FILE=/etc/ssl/corp-ca.pem vbuild debian bookworm --name c1 --mirror https://mirror.corp/debian
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct DebianArgs {
    /// Release: bookworm, trixie, forky or sid; or a suite name (stable,
    /// testing, unstable, oldstable, oldoldstable), which the mirror's
    /// signed InRelease resolves to its codename.
    pub release: String,
    /// Everything else, as for `vbuild build`.
    #[command(flatten)]
    pub flags: BuildFlags,
}

/// The flags of a build, whatever the family.
#[derive(Args, Debug)]
pub struct BuildFlags {
    /// Guest name (also its hostname): a-z, 0-9 and '-', up to 63 characters.
    /// With --output, the image's hostname (default: the release).
    // Hyphen values reach our own check, which says what a name may be.
    #[arg(long, allow_hyphen_values = true, required_unless_present = "output")]
    pub name: Option<String>,
    /// Write an image instead of making a guest: FILE.tar, FILE.tar.zst,
    /// FILE.tar.xz, FILE.squashfs or DIR/ (see --format); reproducible with
    /// SOURCE_DATE_EPOCH.
    #[arg(long, value_name = "FILE|DIR/")]
    pub output: Option<PathBuf>,
    /// Image format when --output's name does not tell: tar, tar.zst, tar.xz,
    /// squashfs, dir, oci (an OCI image layout directory), incus (DIR/ with
    /// incus.tar.xz + rootfs.squashfs) or lxc (DIR/ with meta.tar.xz +
    /// rootfs.tar.xz, for `lxc-create -t local`).
    #[arg(long, value_name = "FORMAT", requires = "output")]
    pub format: Option<String>,
    /// Package set; debian: essential (Essential: yes), minbase (adds
    /// required and apt, as mmdebstrap's minbase), standard (adds important
    /// and standard); fedora: minimal (the container base image + systemd), core (comps
    /// group core), custom (only --include and its dependencies).
    #[arg(long, value_name = "VARIANT")]
    pub variant: Option<String>,
    /// Extra packages, comma-separated or repeated (NAME or NAME=VERSION).
    #[arg(long, value_delimiter = ',', value_name = "PKGS")]
    pub include: Vec<String>,
    /// Also install weak dependencies (fedora: Recommends; off by default,
    /// as in Fedora's container images).
    #[arg(long)]
    pub recommends: bool,
    /// Leave out the recipe's init (debian: systemd-sysv): a bare tree, for
    /// chroots and images that never boot.
    #[arg(long)]
    pub no_init: bool,
    /// Mirror to use instead of the recipe's: http://, https:// (the system's
    /// CAs; SSL_CERT_FILE=PEM trusts a private CA instead) or file:///DIR (a
    /// local mirror). The guest's sources.list points at it too (at the
    /// recipe's mirror for file://, which the guest cannot reach).
    #[arg(long, value_name = "URL")]
    pub mirror: Option<String>,
    /// Also trust this OpenPGP key file (.asc or .gpg) for the repository's
    /// signed index (debian: InRelease).
    #[arg(long, value_name = "FILE")]
    pub keyring: Vec<PathBuf>,
    /// Build from the cache alone (no network); fails naming what is missing.
    #[arg(long)]
    pub offline: bool,
    /// Build from the release's base suite alone, without its security and
    /// updates suites (debian: RELEASE-security, RELEASE-updates).
    #[arg(long)]
    pub no_updates: bool,
    /// Accept a signed index whose validity has passed (debian: InRelease
    /// Valid-Until; frozen snapshot mirrors only).
    #[arg(long)]
    pub allow_expired: bool,
    /// Make a privileged guest: no user namespace, its root is the host's
    /// root. Not a security boundary; for trusted workloads only.
    #[arg(long)]
    pub privileged: bool,
    /// Start the guest at host boot (as `vbuild autostart NAME on`; the
    /// boot unit comes from `vbuild autostart install`).
    #[arg(long)]
    pub autostart: bool,
    /// Start the guest again when its init ends on its own: no (default),
    /// on-failure (a status other than 0, or killed), always. At most 5
    /// restarts in 60 s, with a growing delay; never after `vbuild stop`.
    #[arg(long, value_name = "POLICY", default_value = "no", value_parser = super::parse_restart)]
    pub restart: vbuild_runtime::restart::RestartPolicy,
    /// Give the guest a full copy of its own (a plain tree that another
    /// manager such as systemd-nspawn boots) instead of an overlay of the
    /// shared template.
    #[arg(long)]
    pub copy: bool,
    /// Parallel downloads and unpack workers.
    #[arg(long, default_value_t = 6)]
    pub jobs: usize,
    /// Resource limits, recorded in guest.toml and applied at every start.
    #[command(flatten)]
    pub limits: LimitFlags,
    /// Network context.
    #[command(flatten)]
    pub net: NetFlags,
    /// Guest setup, hooks, components, sources, apt/dpkg options, proxy.
    #[command(flatten)]
    pub customize: super::customize::CustomizeFlags,
}

/// Arguments of `vbuild fedora`, the shorthand of `vbuild build fedora`.
///
/// Examples:
///   vbuild fedora 44 --name web01
///   vbuild fedora 44 --name t1 --mirror http://127.0.0.1:8080/fedora/44/Everything/x86_64/os
///   vbuild fedora 44 --name t2 --mirror URL --keyring my-repo.asc --variant custom --include bash
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct FedoraArgs {
    /// Release: 43, 44, 45 or rawhide.
    pub release: String,
    /// Everything else, as for `vbuild build`.
    #[command(flatten)]
    pub flags: BuildFlags,
}

/// `vbuild fedora RELEASE ...`.
pub fn fedora(ctx: &Ctx, a: FedoraArgs) -> anyhow::Result<i32> {
    build_family(ctx, "fedora", &a.release, a.flags)
}

/// `vbuild debian RELEASE ...`.
pub fn debian(ctx: &Ctx, a: DebianArgs) -> anyhow::Result<i32> {
    build_family(ctx, "debian", &a.release, a.flags)
}

/// `vbuild build FAMILY RELEASE ...`.
pub fn build_cmd(ctx: &Ctx, a: BuildArgs) -> anyhow::Result<i32> {
    build_family(ctx, &a.family, &a.release, a.flags)
}

/// The host's architecture as Debian spells it (the one family today).
fn host_arch() -> &'static str {
    vbuild_builder::distro::debian::index::host_arch()
}

/// Builds a guest: every input is checked before anything is created.
fn build_family(ctx: &Ctx, family: &str, release: &str, a: BuildFlags) -> anyhow::Result<i32> {
    if !distro::FAMILIES.contains(&family) {
        return Err(UnknownFamily {
            family: family.to_string(),
        }
        .into());
    }
    let image = match &a.output {
        Some(out) => Some(super::image::ImageTarget::check(
            out,
            a.format.as_deref(),
            &a,
            release,
        )?),
        None => None,
    };
    let name = match &image {
        Some(img) => img.hostname.clone(),
        None => GuestName::parse(a.name.as_deref().unwrap_or_default())?,
    };
    // Before any download: unpacking sets file owners and the build runs
    // maintainer scripts in a new context, both root's privileges.
    if !nix::unistd::geteuid().is_root() {
        super::output::invalid!(
            "{name}: building needs root (file ownership, namespaces, mounts); run it as root, e.g. `sudo vbuild ...`"
        );
    }
    if image.is_none() && ctx.layout.guest_config(name.as_str()).exists() {
        anyhow::bail!(
            "guest \"{name}\" already exists (pick another --name, or `vbuild delete {name}` first)"
        );
    }
    // `stable` and the like: the mirror's signed InRelease says which release.
    let alias =
        (family == "debian" && debian_alias::is_suite_alias(release)).then(|| release.to_string());
    let codename;
    let release = match &alias {
        Some(suite) => {
            let mut cache = vbuild_cache::Cache::open(ctx.layout.cache_dir())?;
            cache.set_offline(a.offline);
            cache.set_proxy(a.customize.proxy.clone());
            let lookup = debian_alias::AliasLookup {
                mirror: a.mirror.clone(),
                keyrings: a.keyring.clone(),
                allow_expired: a.allow_expired,
            };
            codename = debian_alias::resolve_suite_alias(&cache, suite, &lookup)?;
            codename.as_str()
        }
        None => release,
    };
    let recipe = Recipe::load(family, release)?;
    let customize = a.customize.to_customize(&recipe)?;
    let known = distro::variants(family)?;
    if let Some(v) = &a.variant {
        anyhow::ensure!(
            known.contains(&v.as_str()),
            "--variant {v}: {family} has {}",
            known.join(", ")
        );
    }
    let variant = a.variant.clone();
    for k in &a.keyring {
        anyhow::ensure!(
            k.is_file(),
            "--keyring {}: no such file (give an .asc or .gpg key file)",
            k.display()
        );
    }
    anyhow::ensure!((1..=64).contains(&a.jobs), "--jobs {}: use 1 to 64", a.jobs);
    let limits = a.limits.to_limits()?;
    // Reserves the guest's addresses; released again unless the build succeeds.
    // An image carries no address of this host: DHCP on eth0.
    let (reserved, net, vars) = if image.is_some() {
        let (net, vars) = super::image::image_net();
        (None, net, vars)
    } else {
        let reserved = a.net.to_config(&ctx.layout, name.as_str())?;
        let net = reserved.config().clone();
        let vars = net_vars(&ctx.layout, &net)?;
        (Some(reserved), net, vars)
    };
    let req = BuildRequest {
        name: name.to_string(),
        recipe,
        variant,
        include: a.include.into_iter().filter(|s| !s.is_empty()).collect(),
        with_init: !a.no_init,
        recommends: a.recommends,
        mirror: a.mirror,
        keyrings: a.keyring,
        offline: a.offline,
        updates: !a.no_updates,
        allow_expired: a.allow_expired,
        arch: host_arch().to_string(),
        jobs: a.jobs,
        limits,
        net: net.clone(),
        net_vars: vars,
        privileged: a.privileged,
        autostart: a.autostart,
        restart: a.restart,
        copy: a.copy,
        customize,
    };
    let (req_autostart, req_restart) = (req.autostart, req.restart);
    catch_interrupts();
    if let Some(img) = image {
        return super::image::build_image(ctx, img, req);
    }
    let progress = Arc::new(BuildProgress::new(ctx.quiet || ctx.json));
    let report = build(&ctx.layout, &req, progress)
        .with_context(|| format!("{name}: build failed, nothing was kept"))?;
    if let Some(r) = reserved {
        r.keep();
    }
    if ctx.json {
        let mut j = serde_json::to_value(&report)?;
        j["net_mode"] = serde_json::to_value(net.mode)?;
        j["autostart"] = req_autostart.into();
        j["restart"] = req_restart.as_str().into();
        // The suite name asked for (`stable`), when `release` was looked up.
        j["suite"] = alias.clone().into();
        if net.mode == vbuild_runtime::net::NetMode::Bridge {
            j["network"] = net.network.clone().into();
        }
        j["addresses"] = serde_json::json!(net.addresses);
        j["ports"] = serde_json::json!(net.publish);
        j["created"] = vbuild_runtime::store::GuestStore::new(&ctx.layout)
            .load(name.as_str())
            .map(|g| g.created)
            .unwrap_or_default()
            .into();
        super::output::json(&j)?;
    } else {
        // A tree without init is for chroots and images: it does not boot.
        let next = if a.no_init {
            format!("  ->  {}", report.rootfs.display())
        } else {
            format!("  ->  vbuild start {}", report.name)
        };
        println!(
            "{}  {} {}  {}  {} packages, {} unpacked, {} scripts in {:.1}s{next}",
            report.name,
            report.distro,
            match &alias {
                Some(suite) => format!("{suite} = {}", report.release),
                None => report.release.clone(),
            },
            report.variant,
            report.packages,
            format_size(report.installed_bytes),
            report.scripts,
            report.total_seconds,
        );
        if !ctx.quiet {
            let steps: Vec<String> = report
                .seconds
                .iter()
                .map(|(k, v)| format!("{k} {v:.1}s"))
                .collect();
            eprintln!("vbuild: time per step: {}", steps.join(", "));
        }
    }
    Ok(0)
}
