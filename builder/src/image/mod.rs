//! Images: a root filesystem written out as a file or directory other hosts
//! and tools read (`vbuild build ... --output`, `vbuild export`), and read
//! back (`vbuild import`).
//!
//! Every output is written under a temporary name beside its destination
//! and renamed into place once complete, so an error or Ctrl-C never leaves
//! a half-written image under the name asked for.

pub mod import;
pub mod normalise;
pub mod oci;
pub mod pulled;
pub mod squashfs;
pub mod tar;

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

pub use self::tar::{write_tar, TarOptions, TarStats};

/// The image formats `--output`/`--format` know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// `.tar`.
    Tar,
    /// `.tar.zst` (multithreaded zstd).
    TarZst,
    /// `.tar.xz`.
    TarXz,
    /// A plain directory tree (`DIR/`).
    Dir,
    /// An OCI image layout directory (one layer).
    Oci,
    /// `.squashfs` (zstd; written by the host's tar2sqfs).
    Squashfs,
    /// A directory with `incus.tar.xz` and `rootfs.squashfs`, what
    /// `incus image import` takes (`catalog::split`).
    Incus,
    /// A directory with `meta.tar.xz` and `rootfs.tar.xz`, what
    /// `lxc-create -t local` takes (`catalog::split`).
    Lxc,
}

/// A format that cannot be told from `--output`/`--format`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FormatError(String);

impl Format {
    /// The format of `output`, from `--format` when given, else from its
    /// name: `.tar`, `.tar.zst`, `.tar.xz`, or a trailing `/` (a directory).
    pub fn choose(output: &Path, format: Option<&str>) -> Result<Format, FormatError> {
        if let Some(f) = format {
            return match f {
                "tar" => Ok(Format::Tar),
                "tar.zst" | "zst" | "zstd" => Ok(Format::TarZst),
                "tar.xz" | "xz" => Ok(Format::TarXz),
                "dir" => Ok(Format::Dir),
                "oci" => Ok(Format::Oci),
                "squashfs" | "sqfs" => Ok(Format::Squashfs),
                "incus" => Ok(Format::Incus),
                "lxc" => Ok(Format::Lxc),
                other => Err(FormatError(format!(
                    "--format {other}: use tar, tar.zst, tar.xz, squashfs, dir, oci, incus or lxc"
                ))),
            };
        }
        let s = output.to_string_lossy();
        if s.ends_with('/') {
            Ok(Format::Dir)
        } else if s.ends_with(".tar.zst") || s.ends_with(".tzst") {
            Ok(Format::TarZst)
        } else if s.ends_with(".tar.xz") || s.ends_with(".txz") {
            Ok(Format::TarXz)
        } else if s.ends_with(".tar") {
            Ok(Format::Tar)
        } else if s.ends_with(".squashfs") || s.ends_with(".sqfs") {
            Ok(Format::Squashfs)
        } else {
            Err(FormatError(format!(
                "--output {s}: cannot tell the format from the name (end it in .tar, .tar.zst, \
                 .tar.xz, .squashfs or / for a directory, or give --format \
                 tar|tar.zst|tar.xz|squashfs|dir|oci|incus|lxc)"
            )))
        }
    }

    /// Whether this format is a single archive file.
    pub fn is_file(self) -> bool {
        matches!(
            self,
            Format::Tar | Format::TarZst | Format::TarXz | Format::Squashfs
        )
    }
}

/// Refuses an output that exists already (vbuild never overwrites an image)
/// or whose parent directory is missing: checked before any build starts.
pub fn check_output(output: &Path) -> Result<(), FormatError> {
    let p = strip_slash(output);
    if p.symlink_metadata().is_ok() {
        return Err(FormatError(format!(
            "--output {}: exists already (remove it, or pick another name)",
            output.display()
        )));
    }
    let parent = p.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(d) = parent {
        if !d.is_dir() {
            return Err(FormatError(format!(
                "--output {}: directory {} does not exist (create it first)",
                output.display(),
                d.display()
            )));
        }
    }
    Ok(())
}

/// `DIR/` without its trailing slash.
pub fn strip_slash(p: &Path) -> PathBuf {
    let s = p.as_os_str().as_encoded_bytes();
    let mut n = s.len();
    while n > 1 && s[n - 1] == b'/' {
        n -= 1;
    }
    // SAFETY-free: slicing at an ASCII '/' keeps the encoding valid.
    PathBuf::from(std::ffi::OsStr::new(
        std::str::from_utf8(&s[..n]).unwrap_or(&p.to_string_lossy()),
    ))
}

/// A temporary sibling of `dest` (same directory, so a rename completes it).
pub fn temp_sibling(dest: &Path) -> PathBuf {
    let dest = strip_slash(dest);
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".into());
    dest.with_file_name(format!(".{name}.vbuild-tmp.{}", std::process::id()))
}

/// Removes a temporary output, file or directory, when dropped unarmed.
pub struct TempOutput {
    path: PathBuf,
    keep: bool,
}

impl TempOutput {
    /// Guards `path`.
    pub fn new(path: PathBuf) -> TempOutput {
        TempOutput { path, keep: false }
    }
    /// The guarded path.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// Renames it to `dest` and stops guarding it.
    pub fn commit(mut self, dest: &Path) -> io::Result<()> {
        std::fs::rename(&self.path, strip_slash(dest))?;
        self.keep = true;
        Ok(())
    }
}

impl Drop for TempOutput {
    fn drop(&mut self) {
        if !self.keep {
            match self.path.symlink_metadata() {
                Ok(m) if m.is_dir() => {
                    let _ = std::fs::remove_dir_all(&self.path);
                }
                Ok(_) => {
                    let _ = std::fs::remove_file(&self.path);
                }
                Err(_) => {}
            }
        }
    }
}

/// Why an image could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The tree could not be read.
    #[error(transparent)]
    Walk(#[from] vbuild_kernel::tree::WalkError),
    /// The output could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The output.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The format is not written this way.
    #[error(transparent)]
    Format(#[from] FormatError),
}

/// What writing an image did, for the CLI's summary and `--json`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImageReport {
    /// Where it is.
    pub output: PathBuf,
    /// Its format.
    pub format: Format,
    /// Bytes of the output file (0 for directories).
    pub bytes: u64,
    /// sha256 of the output file (OCI: of the manifest).
    pub sha256: Option<String>,
    /// What the archive holds.
    pub tar: TarStats,
    /// The files of a directory output (`--format incus|lxc`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<crate::catalog::add::AddedFile>,
}

/// Zstd workers: every core (the output does not depend on their number).
fn zstd_workers() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

/// The zstd stream of every `.tar.zst` vbuild writes: level 3 on every
/// core, with a checksum. The parameters are fixed, so the bytes do not
/// depend on this machine.
pub fn zstd_encoder<W: Write>(w: W) -> io::Result<zstd::stream::write::Encoder<'static, W>> {
    let mut z = zstd::stream::write::Encoder::new(w, 3)?;
    z.multithread(zstd_workers())?;
    z.include_checksum(true)?;
    Ok(z)
}

/// A writer that hashes what it passes on, so an image's sha256 needs no
/// second read of the file.
pub struct Hashing<W> {
    inner: W,
    hash: sha2::Sha256,
    bytes: u64,
}

impl<W: Write> Hashing<W> {
    /// Hashes everything written to `inner`.
    pub fn new(inner: W) -> Hashing<W> {
        use sha2::Digest;
        Hashing {
            inner,
            hash: sha2::Sha256::new(),
            bytes: 0,
        }
    }
    /// Hex sha256 and size of everything written.
    pub fn finish(self) -> (String, u64) {
        use sha2::Digest;
        (hex::encode(self.hash.finalize()), self.bytes)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        use sha2::Digest;
        let n = self.inner.write(b)?;
        self.hash.update(&b[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes `rootfs` as the archive `format` to `out` (already created).
pub fn write_archive<W: Write>(
    rootfs: &Path,
    out: W,
    format: Format,
    opts: &TarOptions,
) -> Result<TarStats, ImageError> {
    let io_err = |source| ImageError::Io {
        path: rootfs.to_path_buf(),
        source,
    };
    let w = BufWriter::with_capacity(1 << 20, out);
    match format {
        Format::Tar => {
            let stats = write_tar(rootfs, Sync(w), opts)?;
            Ok(stats)
        }
        Format::TarZst => {
            let z = zstd_encoder(w).map_err(io_err)?;
            let mut sink = Finish::Zstd(Some(z));
            let stats = write_tar(rootfs, &mut sink, opts)?;
            sink.finish().map_err(io_err)?;
            Ok(stats)
        }
        Format::TarXz => {
            let x = xz2::write::XzEncoder::new(w, 6);
            let mut sink = Finish::Xz(Some(x));
            let stats = write_tar(rootfs, &mut sink, opts)?;
            sink.finish().map_err(io_err)?;
            Ok(stats)
        }
        Format::Dir | Format::Oci | Format::Squashfs | Format::Incus | Format::Lxc => {
            Err(FormatError(format!(
                "{format:?} is not an archive file (internal error)"
            ))
            .into())
        }
    }
}

/// A plain writer whose flush also syncs nothing more: the tar writer's sink.
struct Sync<W: Write>(W);

impl<W: Write> Write for Sync<W> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.write(b)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// A compressor that must be finished (its last frame written) explicitly.
enum Finish<W: Write> {
    Zstd(Option<zstd::stream::write::Encoder<'static, W>>),
    Xz(Option<xz2::write::XzEncoder<W>>),
}

impl<W: Write> Finish<W> {
    fn finish(self) -> io::Result<()> {
        match self {
            Finish::Zstd(Some(z)) => z.finish()?.flush(),
            Finish::Xz(Some(x)) => x.finish()?.flush(),
            _ => Ok(()),
        }
    }
}

impl<W: Write> Write for &mut Finish<W> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        match &mut **self {
            Finish::Zstd(Some(z)) => z.write(b),
            Finish::Xz(Some(x)) => x.write(b),
            _ => Err(io::Error::other("compressor already finished")),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        // Flushing a compressor mid-stream would end a block early and make
        // the bytes depend on when the caller flushed: only `finish` ends it.
        Ok(())
    }
}

/// Hex sha256 and size of a file.
pub fn sha256_file(path: &Path) -> io::Result<(String, u64)> {
    use sha2::{Digest, Sha256};
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    let n = io::copy(&mut f, &mut h)?;
    Ok((hex::encode(h.finalize()), n))
}

/// Writes `rootfs` as `format` to `output` atomically. `Dir` is not handled
/// here (a build renames its tree into place instead).
pub fn write_image(
    rootfs: &Path,
    output: &Path,
    format: Format,
    opts: &TarOptions,
    entrypoint: &[String],
) -> Result<ImageReport, ImageError> {
    let io_at = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ImageError::Io { path, source }
    };
    let tmp = TempOutput::new(temp_sibling(output));
    let (tar, sha256, bytes) = match format {
        Format::Oci => {
            let arch = crate::distro::debian::index::host_arch();
            let r = oci::write_layout(rootfs, tmp.path(), opts, entrypoint, arch)?;
            (r.tar, Some(r.manifest_sha256), r.bytes)
        }
        Format::Dir => {
            return Err(FormatError("a directory output is made by the build itself".into()).into())
        }
        Format::Incus | Format::Lxc => return write_split(rootfs, output, format, opts),
        Format::Squashfs => {
            let stats = squashfs::write_squashfs(rootfs, tmp.path(), opts)?;
            let (sha, n) = sha256_file(tmp.path()).map_err(io_at(tmp.path()))?;
            (stats, Some(sha), n)
        }
        _ => {
            let f = File::options()
                .write(true)
                .create_new(true)
                .open(tmp.path())
                .map_err(io_at(tmp.path()))?;
            let mut hashed = Hashing::new(f);
            let stats = write_archive(rootfs, &mut hashed, format, opts)?;
            let (sha, n) = hashed.finish();
            (stats, Some(sha), n)
        }
    };
    if crate::guests::interrupted() {
        return Err(ImageError::Io {
            path: output.to_path_buf(),
            source: io::Error::other("interrupted; nothing was kept"),
        });
    }
    tmp.commit(output).map_err(io_at(output))?;
    Ok(ImageReport {
        output: strip_slash(output),
        format,
        bytes,
        sha256,
        tar,
        files: Vec::new(),
    })
}

/// `--format incus|lxc`: the tree as a plain tar beside the output, then
/// the two files each tool imports, made from it as `catalog add` makes
/// them (`catalog::split`).
fn write_split(
    rootfs: &Path,
    output: &Path,
    format: Format,
    opts: &TarOptions,
) -> Result<ImageReport, ImageError> {
    use crate::catalog::split::{self, Split};
    let tar_tmp = TempOutput::new(PathBuf::from(format!(
        "{}.tar",
        temp_sibling(output).display()
    )));
    let f = File::options()
        .write(true)
        .create_new(true)
        .open(tar_tmp.path())
        .map_err(|source| ImageError::Io {
            path: tar_tmp.path().to_path_buf(),
            source,
        })?;
    let tar = write_archive(rootfs, f, Format::Tar, opts)?;
    let created = opts.clamp_mtime.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    });
    let kind = if format == Format::Incus {
        Split::Incus
    } else {
        Split::Lxc
    };
    let r =
        split::write_split(tar_tmp.path(), output, kind, created).map_err(|e| ImageError::Io {
            path: output.to_path_buf(),
            source: io::Error::other(e.0),
        })?;
    Ok(ImageReport {
        output: r.output,
        format,
        bytes: r.files.iter().map(|f| f.size).sum(),
        sha256: Some(r.fingerprint),
        tar,
        files: r.files,
    })
}

/// `SOURCE_DATE_EPOCH` from the environment, checked.
pub fn source_date_epoch() -> Result<Option<i64>, FormatError> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Err(_) => Ok(None),
        Ok(s) if s.is_empty() => Ok(None),
        Ok(s) => s.trim().parse::<i64>().map(Some).map_err(|_| {
            FormatError(format!(
                "SOURCE_DATE_EPOCH={s:?} is not a number of seconds (try 1700000000)"
            ))
        }),
    }
}
