//! One pass over an image archive that writes the root filesystem in the
//! encodings catalogs and split images hold (`rootfs.tar.xz` for LXC and
//! incus, `rootfs.tar.zst` for `vbuild pull`, `rootfs.squashfs` for incus),
//! each with LXC's placeholder for the container's name in `/etc/hostname`
//! and `/etc/hosts` (see `hostname`), and says what the image is.

use super::info::{self, ImageInfo};
use super::{hostname, CatalogError};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Whether a squashfs is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Squashfs {
    /// Not at all.
    No,
    /// When the host has tar2sqfs (a catalog: incus then prefers it).
    IfInstalled,
    /// Always; a missing tar2sqfs is an error (`--format incus`).
    Required,
}

/// The encodings to write.
#[derive(Debug, Clone, Copy)]
pub struct Encodings {
    /// `rootfs.tar.xz`.
    pub xz: bool,
    /// `rootfs.tar.zst`.
    pub zst: bool,
    /// `rootfs.squashfs`.
    pub squashfs: Squashfs,
}

/// What `encode` wrote into its directory.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// What the image is.
    pub info: ImageInfo,
    /// `rootfs.tar.xz`, when asked for.
    pub xz: Option<PathBuf>,
    /// `rootfs.tar.zst`, when asked for.
    pub zst: Option<PathBuf>,
    /// `rootfs.squashfs`, when written.
    pub squashfs: Option<PathBuf>,
}

/// The tar stream re-encoded as multithreaded xz (fixed preset and block
/// size, so the bytes do not depend on the number of cores).
fn xz_writer(f: File) -> Result<xz2::write::XzEncoder<BufWriter<File>>, CatalogError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let stream = xz2::stream::MtStreamBuilder::new()
        .threads(threads)
        .preset(6)
        .block_size(24 << 20)
        .check(xz2::stream::Check::Crc64)
        .encoder()
        .map_err(|e| CatalogError(format!("xz: {e}")))?;
    Ok(xz2::write::XzEncoder::new_stream(
        BufWriter::with_capacity(1 << 20, f),
        stream,
    ))
}

fn create(path: &Path) -> Result<File, CatalogError> {
    File::options()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| CatalogError::io(path, e))
}

/// Reads `image` once and writes the encodings `enc` into the existing
/// directory `dir`, placeholders in, entry times clamped to `created`.
/// On error the caller removes `dir` (it is a staging directory).
pub fn encode(
    image: &Path,
    dir: &Path,
    enc: Encodings,
    created: i64,
) -> Result<Encoded, CatalogError> {
    let xz_path = dir.join("rootfs.tar.xz");
    let zst_path = dir.join("rootfs.tar.zst");
    let sq_path = dir.join("rootfs.squashfs");
    let mut xz = enc
        .xz
        .then(|| create(&xz_path).and_then(xz_writer))
        .transpose()?;
    let mut zst = enc
        .zst
        .then(|| {
            create(&zst_path).and_then(|f| {
                crate::image::zstd_encoder(BufWriter::with_capacity(1 << 20, f))
                    .map_err(|e| CatalogError::io(&zst_path, e))
            })
        })
        .transpose()?;
    let mut sqfs = match enc.squashfs {
        Squashfs::No => None,
        want => match crate::image::squashfs::spawn_tar2sqfs(&sq_path, Some(created), false) {
            Ok(c) => Some(c),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && want == Squashfs::IfInstalled => {
                None
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(CatalogError(format!(
                    "{}: tar2sqfs is not installed (apt-get install squashfs-tools-ng)",
                    sq_path.display()
                )))
            }
            Err(e) => return Err(CatalogError::io(&sq_path, e)),
        },
    };
    let mut sqfs_in = sqfs
        .as_mut()
        .and_then(|c| c.stdin.take())
        .map(|s| BufWriter::with_capacity(1 << 20, s));
    let streamed = {
        let mut outs: Vec<&mut dyn Write> = Vec::new();
        if let Some(x) = xz.as_mut() {
            outs.push(x);
        }
        if let Some(z) = zst.as_mut() {
            outs.push(z);
        }
        if let Some(s) = sqfs_in.as_mut() {
            outs.push(s);
        }
        let mut filter = hostname::PlaceholderFilter::new(Fanout(outs), created);
        info::read_image(image, &mut filter).and_then(|info| {
            filter
                .finish()
                .map_err(|e| CatalogError(format!("{}: {e}", image.display())))?;
            Ok(info)
        })
    };
    let flushed = sqfs_in.take().map(|mut s| s.flush());
    // tar2sqfs sees the end of its input here (its pipe was dropped).
    let sqfs_done = sqfs.map(|c| c.wait_with_output());
    let sqfs_failed = match &sqfs_done {
        Some(Ok(out)) if !out.status.success() => Some(format!(
            "{}: tar2sqfs failed ({}): {}",
            sq_path.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Some(Err(e)) => Some(format!("{}: tar2sqfs: {e}", sq_path.display())),
        _ => match flushed {
            Some(Err(e)) => Some(format!("{}: {e}", sq_path.display())),
            _ => None,
        },
    };
    // A failed tar2sqfs broke the pipe: its own message says why.
    let info = match (streamed, sqfs_failed) {
        (_, Some(m)) => return Err(CatalogError(m)),
        (r, None) => r?,
    };
    if let Some(x) = xz {
        x.finish()
            .and_then(|mut w| w.flush())
            .map_err(|e| CatalogError::io(&xz_path, e))?;
    }
    if let Some(z) = zst {
        z.finish()
            .and_then(|mut w| w.flush())
            .map_err(|e| CatalogError::io(&zst_path, e))?;
    }
    Ok(Encoded {
        info,
        xz: enc.xz.then_some(xz_path),
        zst: enc.zst.then_some(zst_path),
        squashfs: sqfs_done.is_some().then_some(sq_path),
    })
}

/// Writes every byte to each writer in turn.
struct Fanout<'a>(Vec<&'a mut dyn Write>);

impl Write for Fanout<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        for w in &mut self.0 {
            w.write_all(buf)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        for w in &mut self.0 {
            w.flush()?;
        }
        Ok(())
    }
}
