//! `vbuild catalog add|serve`: catalogs of images that Incus, LXC and
//! `vbuild pull` read from static files.

use super::Ctx;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use vbuild_builder::catalog::add::{self, AddOptions};
use vbuild_runtime::size::format_size;

/// Image catalogs: static files in the simplestreams (Incus) and LXC
/// download formats, with vbuild's signed manifest.
#[derive(Subcommand, Debug)]
pub enum CatalogCommand {
    /// Add an image archive to a catalog directory (both formats; signed with --sign).
    Add(AddArgs),
    /// Serve a catalog directory over HTTPS (TLS 1.3; self-signed unless --cert/--key).
    Serve(ServeArgs),
}

/// Arguments of `vbuild catalog serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The catalog directory.
    pub dir: PathBuf,
    /// Address and port to listen on (port 0: any free one, printed).
    #[arg(long, default_value = "127.0.0.1:8443", value_name = "ADDR:PORT")]
    pub listen: std::net::SocketAddr,
    /// PEM certificate chain (with --key); default: a self-signed one kept in ROOT/catalog-tls.
    #[arg(long, value_name = "CERT.pem", requires = "key")]
    pub cert: Option<PathBuf>,
    /// PEM private key of --cert.
    #[arg(long, value_name = "KEY.pem", requires = "cert")]
    pub key: Option<PathBuf>,
}

/// Arguments of `vbuild catalog add`.
#[derive(Args, Debug)]
pub struct AddArgs {
    /// The catalog directory (created when missing).
    pub dir: PathBuf,
    /// The image archive (.tar, .tar.zst, .tar.xz), as `vbuild build --output` writes.
    pub image: PathBuf,
    /// Armored OpenPGP secret key (no passphrase) that signs vbuild-catalog.json.
    #[arg(long, value_name = "KEY.asc")]
    pub sign: Option<PathBuf>,
    /// The variant the image is listed under.
    #[arg(long, default_value = "default")]
    pub variant: String,
}

/// Runs a `vbuild catalog` command.
pub fn catalog(ctx: &Ctx, c: CatalogCommand) -> anyhow::Result<i32> {
    match c {
        CatalogCommand::Add(a) => add_cmd(ctx, a),
        CatalogCommand::Serve(a) => serve_cmd(ctx, a),
    }
}

fn serve_cmd(ctx: &Ctx, a: ServeArgs) -> anyhow::Result<i32> {
    use vbuild_builder::catalog::serve::{self, Tls};
    let tls = match (a.cert, a.key) {
        (Some(cert), Some(key)) => Tls::Files { cert, key },
        _ => Tls::SelfSigned(ctx.layout.root().join("catalog-tls")),
    };
    vbuild_builder::guests::catch_interrupts();
    let json = ctx.json;
    serve::serve(&a.dir, a.listen, &tls, |l| {
        if json {
            let _ = super::output::json(l);
        } else {
            println!(
                "serving {} on https://{} (TLS 1.3); certificate{}: {}",
                l.dir.display(),
                l.address,
                if l.self_signed { " (self-signed)" } else { "" },
                l.cert.display()
            );
        }
        use std::io::Write;
        let _ = std::io::stdout().flush();
    })?;
    if !json {
        eprintln!("vbuild: catalog server stopped");
    }
    Ok(0)
}

fn add_cmd(ctx: &Ctx, a: AddArgs) -> anyhow::Result<i32> {
    let created = match vbuild_builder::image::source_date_epoch()? {
        Some(t) => t,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64),
    };
    vbuild_builder::guests::catch_interrupts();
    let report = add::add(
        &a.dir,
        &a.image,
        &AddOptions {
            variant: a.variant,
            created,
            sign_key: a.sign,
        },
    )?;
    if ctx.json {
        super::output::json(&report)?;
    } else {
        let bytes: u64 = report.files.iter().map(|f| f.size).sum();
        println!(
            "{}  {}  ->  {} ({}, {}){}",
            report.product,
            report.serial,
            report.catalog.display(),
            format_size(bytes),
            &report.fingerprint[..12],
            match &report.signed_by {
                Some(fp) => format!(", signed by {fp}"),
                None => ", unsigned".into(),
            }
        );
    }
    Ok(0)
}

/// Arguments of `vbuild pull`.
#[derive(Args, Debug)]
pub struct PullArgs {
    /// The catalog's base URL (https://HOST:PORT[/PATH]).
    pub url: String,
    /// The image: OS/RELEASE or OS/RELEASE/VARIANT (debian/bookworm).
    pub image: String,
    /// The new guest's name.
    #[arg(long)]
    pub name: String,
    /// The catalog's pinned public key (armored): its signature is then checked and the TLS certificate is not.
    #[arg(long, value_name = "catalog.asc")]
    pub key: Option<PathBuf>,
    /// Give the guest a full tree of its own instead of an overlay of the image's template (kept after the first pull).
    #[arg(long)]
    pub copy: bool,
    /// Network context of the new guest.
    #[command(flatten)]
    pub net: super::net::NetFlags,
}

/// `vbuild pull URL OS/RELEASE --name N`: verified download, then import.
pub fn pull(ctx: &Ctx, a: PullArgs) -> anyhow::Result<i32> {
    use anyhow::Context;
    use vbuild_builder::catalog::pull::{self, PullRequest};
    let name = vbuild_runtime::name::GuestName::parse(&a.name)?;
    if ctx.layout.guest_config(name.as_str()).exists() {
        anyhow::bail!(
            "guest \"{name}\" already exists (pick another --name, or `vbuild delete {name}` first)"
        );
    }
    let reserved = a.net.to_config(&ctx.layout, name.as_str())?;
    vbuild_builder::guests::catch_interrupts();
    let req = PullRequest {
        url: a.url,
        image: a.image,
        name: name.as_str().to_string(),
        key: a.key,
        arch: vbuild_builder::distro::debian::index::host_arch().to_string(),
        copy: a.copy,
    };
    let quiet = ctx.quiet;
    let report = pull::pull(&ctx.layout, &req, reserved.config().clone(), |m| {
        if !quiet {
            eprintln!("vbuild: {m}");
        }
    })
    .with_context(|| format!("{name}: pull failed"))?;
    reserved.keep();
    if ctx.json {
        super::output::json(&report)?;
    } else {
        let made = match (&report.template, report.template_reused) {
            (Some(t), true) => format!("overlay of template {} (pulled before)", &t[..12]),
            (Some(t), false) => format!(
                "{} entries, {} as template {}",
                report.guest.entries,
                format_size(report.guest.bytes),
                &t[..12]
            ),
            (None, _) => format!(
                "{} entries, {}",
                report.guest.entries,
                format_size(report.guest.bytes)
            ),
        };
        println!(
            "{}  {}  {}  {made}  ->  vbuild start {}",
            report.guest.name, report.product, report.serial, report.guest.name
        );
    }
    Ok(0)
}
