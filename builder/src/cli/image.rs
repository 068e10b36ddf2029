//! Images: `vbuild build ... --output FILE|DIR/` (a build that yields an
//! image instead of a guest), `vbuild export NAME --output FILE` and
//! `vbuild import FILE --name NAME`.

use super::build::BuildFlags;
use super::Ctx;
use anyhow::Context;
use clap::Args;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use vbuild_builder::build::{build, BuildRequest};
use vbuild_builder::image::{self, normalise, Format, TarOptions, TempOutput};
use vbuild_builder::progress::BuildProgress;
use vbuild_builder::tailor::NetVars;
use vbuild_runtime::config::{NetConfig, NetMode};
use vbuild_runtime::name::GuestName;
use vbuild_runtime::paths::Layout;
use vbuild_runtime::size::format_size;

/// Where a build's image goes, checked before anything is built.
pub struct ImageTarget {
    output: PathBuf,
    format: Format,
    /// The image's hostname (`--name`, default the release).
    pub hostname: GuestName,
    epoch: Option<i64>,
}

impl ImageTarget {
    /// Checks `--output`, `--format`, `SOURCE_DATE_EPOCH` and the flags an
    /// image cannot carry.
    pub fn check(
        output: &Path,
        format: Option<&str>,
        a: &BuildFlags,
        release: &str,
    ) -> anyhow::Result<ImageTarget> {
        let format = Format::choose(output, format)?;
        image::check_output(output)?;
        let epoch = image::source_date_epoch()?;
        anyhow::ensure!(
            a.net.ip.is_empty() && a.net.publish.is_empty() && a.net.net.is_none(),
            "--output: an image carries no address or network of this host \
             (drop --ip/--net/--publish; give them to the guest made from it)"
        );
        anyhow::ensure!(
            a.limits.disk.is_none(),
            "--output: an image has no disk limit (drop --disk)"
        );
        anyhow::ensure!(
            !a.autostart && a.restart.is_no(),
            "--output: an image is not started on this host (drop --autostart/--restart; give them to the guest made from it)"
        );
        let hostname = GuestName::parse(a.name.as_deref().unwrap_or(release))?;
        Ok(ImageTarget {
            output: output.to_path_buf(),
            format,
            hostname,
            epoch,
        })
    }
}

/// The network an image is built for: none recorded, DHCP on eth0.
pub fn image_net() -> (NetConfig, NetVars) {
    (
        NetConfig {
            mode: NetMode::None,
            ..NetConfig::default()
        },
        NetVars {
            dhcp: true,
            ..NetVars::default()
        },
    )
}

/// Builds into a private state root beside the output (sharing this
/// root's package cache), normalises the tree, writes the image, and
/// removes the build whatever happens.
pub fn build_image(ctx: &Ctx, img: ImageTarget, mut req: BuildRequest) -> anyhow::Result<i32> {
    let dest = image::strip_slash(&img.output);
    let work = TempOutput::new(PathBuf::from(format!(
        "{}.build",
        image::temp_sibling(&dest).display()
    )));
    std::fs::create_dir_all(work.path()).with_context(|| {
        format!(
            "{}: cannot create the build directory",
            work.path().display()
        )
    })?;
    let cache = ctx.layout.cache_dir();
    std::fs::create_dir_all(&cache).with_context(|| format!("{}", cache.display()))?;
    std::os::unix::fs::symlink(&cache, work.path().join("cache"))
        .with_context(|| format!("{}/cache", work.path().display()))?;
    let layout = Layout::new(Some(work.path()));
    req.limits.disk = None;
    // An image is a plain tree of its own, never an overlay of a template.
    req.copy = true;
    let name = req.name.clone();
    let progress = Arc::new(BuildProgress::new(ctx.quiet || ctx.json));
    let result = (|| -> anyhow::Result<_> {
        let built = build(&layout, &req, progress)?;
        let changed = normalise::normalise(&built.rootfs, img.epoch)?;
        let opts = TarOptions {
            clamp_mtime: img.epoch,
            ..Default::default()
        };
        let report = if img.format == Format::Dir {
            std::fs::rename(&built.rootfs, &dest)
                .with_context(|| format!("--output {}", dest.display()))?;
            image::ImageReport {
                output: dest.clone(),
                format: Format::Dir,
                bytes: 0,
                sha256: None,
                tar: Default::default(),
                files: Vec::new(),
            }
        } else {
            let init = vec!["/sbin/init".to_string()];
            image::write_image(&built.rootfs, &img.output, img.format, &opts, &init)?
        };
        Ok((built, report, changed))
    })();
    // The private build goes in every case (its rootfs may be a mount).
    if layout.guest_dir(&name).exists() {
        if let Ok(n) = GuestName::parse(&name) {
            let _ = vbuild_runtime::delete::delete(&layout, &n);
        }
    }
    drop(work);
    let (built, report, changed) = result
        .with_context(|| format!("{}: image build failed, nothing was kept", dest.display()))?;
    if ctx.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "build": built,
                "image": report,
                "normalised": changed,
            }))?
        );
    } else {
        println!(
            "{}  {}  {} packages  ->  {} ({:?}{})",
            built.distro,
            built.variant,
            built.packages,
            report.output.display(),
            report.format,
            if report.bytes > 0 {
                format!(", {}", format_size(report.bytes))
            } else {
                String::new()
            }
        );
    }
    Ok(0)
}

/// Arguments of `vbuild export`.
///
/// Examples:
///   vbuild export mail01 --output mail01.tar.zst
///   vbuild export mail01 --output mail01-oci/ --format oci
///   vbuild export mail01 --output mail01-lxc/ --format lxc
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct ExportArgs {
    /// The guest (stop it first for a consistent image).
    pub name: String,
    /// The image file: .tar, .tar.zst, .tar.xz, .squashfs (or a directory with --format oci|incus|lxc).
    #[arg(long, value_name = "FILE")]
    pub output: PathBuf,
    /// tar, tar.zst, tar.xz, squashfs, oci, incus or lxc, when the name does not tell.
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
}

/// `vbuild export NAME --output FILE`: the guest's rootfs as it is now.
pub fn export(ctx: &Ctx, a: ExportArgs) -> anyhow::Result<i32> {
    let name = GuestName::parse(&a.name)?;
    // The guest first, in the wording every other command uses.
    if !ctx.layout.guest_config(name.as_str()).exists() {
        return Err(vbuild_runtime::error::RuntimeError::NotFound(name.to_string()).into());
    }
    let format = Format::choose(&a.output, a.format.as_deref())?;
    anyhow::ensure!(
        format != Format::Dir,
        "--output {}: export writes an archive (.tar, .tar.zst, .tar.xz, .squashfs) or --format oci|incus|lxc",
        a.output.display()
    );
    image::check_output(&a.output)?;
    let mut rootfs = ctx.layout.guest_rootfs(name.as_str());
    vbuild_runtime::disk::activate(&ctx.layout, name.as_str())
        .with_context(|| format!("{name}: its disk"))?;
    // An overlay guest's rootfs/ is an empty mount point: read its layer
    // over its template through a read-only overlay of the two instead.
    let _view = if vbuild_runtime::layer::is_overlay(&ctx.layout, name.as_str()) {
        let cfg =
            vbuild_runtime::config::GuestConfig::load(&ctx.layout.guest_config(name.as_str()))?;
        let fd = vbuild_runtime::layer::merged_view(&ctx.layout, &cfg, name.as_str())?;
        rootfs = std::path::PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
        Some(fd)
    } else {
        None
    };
    vbuild_builder::guests::catch_interrupts();
    let opts = TarOptions {
        clamp_mtime: image::source_date_epoch()?,
        ..Default::default()
    };
    let init = vbuild_runtime::config::GuestConfig::load(&ctx.layout.guest_config(name.as_str()))
        .map(|c| {
            std::iter::once(c.init.path)
                .chain(c.init.args)
                .collect::<Vec<_>>()
        })
        .unwrap_or_else(|_| vec!["/sbin/init".into()]);
    let report = image::write_image(&rootfs, &a.output, format, &opts, &init)
        .with_context(|| format!("{name}: export failed, nothing was kept"))?;
    if ctx.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{name}  ->  {} ({} entries, {})",
            report.output.display(),
            report.tar.entries,
            format_size(report.bytes)
        );
    }
    Ok(0)
}

/// Arguments of `vbuild import`.
///
/// Examples:
///   vbuild import mail01.tar.zst --name mail04
///   vbuild import bookworm.tar.xz --name web02 --ip 10.77.0.20/24
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct ImportArgs {
    /// The image archive (.tar, .tar.zst, .tar.xz, .tar.gz; told by its bytes).
    pub file: PathBuf,
    /// The new guest's name.
    #[arg(long)]
    pub name: String,
    /// Network context of the new guest.
    #[command(flatten)]
    pub net: super::net::NetFlags,
}

/// `vbuild import FILE --name NAME`: checked and confined, all or nothing.
pub fn import(ctx: &Ctx, a: ImportArgs) -> anyhow::Result<i32> {
    let name = GuestName::parse(&a.name)?;
    if ctx.layout.guest_config(name.as_str()).exists() {
        anyhow::bail!(
            "guest \"{name}\" already exists (pick another --name, or `vbuild delete {name}` first)"
        );
    }
    anyhow::ensure!(
        a.file.is_file(),
        "{}: no such file (give an image archive: .tar, .tar.zst, .tar.xz)",
        a.file.display()
    );
    let reserved = a.net.to_config(&ctx.layout, name.as_str())?;
    vbuild_builder::guests::catch_interrupts();
    let report = vbuild_builder::image::import::import(
        &ctx.layout,
        name.as_str(),
        &a.file,
        reserved.config().clone(),
    )
    .with_context(|| format!("{name}: import failed, nothing was kept"))?;
    reserved.keep();
    if ctx.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{}  {}  {} entries, {}  ->  vbuild start {}",
            report.name,
            report.distro,
            report.entries,
            format_size(report.bytes),
            report.name
        );
    }
    Ok(0)
}
