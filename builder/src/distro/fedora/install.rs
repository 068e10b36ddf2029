//! Installing fetched .rpm files into a rootfs: each payload (a cpio
//! archive, zstd/xz/gzip compressed) goes through the same root-confined
//! writer as a .deb's data.tar. When the unpacked root has its own rpm,
//! that rpm then installs the same files again inside the build's script
//! context, which writes its database (`/usr/lib/sysimage/rpm`) and runs
//! every scriptlet (shell and Lua, %pretrans, triggers and file triggers)
//! in rpm's own order, once.

use crate::context::ScriptContext;
use crate::unpack::compress::decoder;
use crate::unpack::{extract, Compression, CpioReader, ExtractOpts};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use vbuild_kernel::fsroot::Root;

/// Where the package files are put inside the root for the guest's rpm.
const STAGING: &str = "var/tmp/vbuild-rpms";

/// What installing did.
#[derive(Debug, Default)]
pub struct Report {
    /// Packages unpacked.
    pub packages: usize,
    /// Bytes of file content written.
    pub bytes: u64,
    /// Whether the guest's rpm wrote the database and ran the scriptlets.
    pub rpm_ran: bool,
    /// Install-time scriptlets (%pretrans, %pre, %post, %posttrans) the
    /// packages carry and the guest's rpm ran; 0 when the root has no rpm.
    /// Triggers are not counted: whether one fires depends on the set.
    pub scriptlets: usize,
    /// Time unpacking, then in the guest's rpm.
    pub times: (Duration, Duration),
}

fn compression_of(payload: &[u8]) -> Compression {
    match rpm::CompressionType::detect(payload) {
        rpm::CompressionType::Gzip => Compression::Gzip,
        rpm::CompressionType::Zstd => Compression::Zstd,
        rpm::CompressionType::Xz => Compression::Xz,
        _ => Compression::None,
    }
}

/// Unpacks one .rpm's payload into `root`; returns bytes written.
pub fn unpack_rpm(root: &Root, file: &Path) -> anyhow::Result<u64> {
    Ok(unpack_counting(root, file)?.0)
}

/// How many install-time scriptlets the package's header carries.
fn install_scriptlets(m: &rpm::PackageMetadata) -> usize {
    [
        m.get_pre_trans_script().is_ok(),
        m.get_pre_install_script().is_ok(),
        m.get_post_install_script().is_ok(),
        m.get_post_trans_script().is_ok(),
    ]
    .into_iter()
    .filter(|&b| b)
    .count()
}

/// [`unpack_rpm`], also returning the package's install-time scriptlets.
fn unpack_counting(root: &Root, file: &Path) -> anyhow::Result<(u64, usize)> {
    let pkg = rpm::Package::open(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let scriptlets = install_scriptlets(&pkg.metadata);
    let c = compression_of(&pkg.payload);
    let reader = decoder(c, std::io::Cursor::new(pkg.payload.as_slice()))?;
    let mut entries = CpioReader::new(reader);
    let none = HashSet::new();
    let done = extract(
        root,
        &mut entries,
        &ExtractOpts {
            conffiles: &none,
            compute_md5: false,
            devices: false,
        },
    )
    .map_err(|e| anyhow::anyhow!("{}: {e}", pkg.metadata.get_name().unwrap_or("package")))?;
    Ok((done.bytes, scriptlets))
}

/// Unpacks every file, then lets the guest's rpm (when there is one)
/// record and configure them.
pub fn install(rootfs: &Path, files: &[PathBuf], hostname: &str) -> anyhow::Result<Report> {
    let root = Root::open(rootfs).map_err(|e| anyhow::anyhow!("{}: {e}", rootfs.display()))?;
    let t = Instant::now();
    let mut report = Report::default();
    let mut scriptlets = 0;
    for f in files {
        let (bytes, n) = unpack_counting(&root, f)?;
        report.bytes += bytes;
        scriptlets += n;
        report.packages += 1;
    }
    report.times.0 = t.elapsed();
    let t = Instant::now();
    if root.kind(Path::new("usr/bin/rpm")).ok().flatten().is_some() {
        run_guest_rpm(rootfs, files, hostname)?;
        report.rpm_ran = true;
        report.scriptlets = scriptlets;
    }
    report.times.1 = t.elapsed();
    Ok(report)
}

fn run_guest_rpm(rootfs: &Path, files: &[PathBuf], hostname: &str) -> anyhow::Result<()> {
    let staging = rootfs.join(STAGING);
    std::fs::create_dir_all(&staging)?;
    let mut args: Vec<String> = vec![
        "/usr/bin/rpm".into(),
        "--install".into(),
        "--nodeps".into(),
        "--replacepkgs".into(),
        "--replacefiles".into(),
        // Signatures and digests were checked before anything was unpacked.
        "--nosignature".into(),
        "--define".into(),
        "_pkgverify_level none".into(),
    ];
    for (i, f) in files.iter().enumerate() {
        let name = format!("{i:05}.rpm");
        std::fs::copy(f, staging.join(&name))?;
        args.push(format!("/{STAGING}/{name}"));
    }
    let ctx = ScriptContext::new(rootfs)?.with_hostname(hostname);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = ctx.run("rpm --install inside the guest", &argv, &[]);
    let _ = std::fs::remove_dir_all(&staging);
    out?;
    Ok(())
}
