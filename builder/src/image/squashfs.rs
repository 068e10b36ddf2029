//! `.squashfs` images: vbuild's own tar stream (sorted, numeric owners,
//! xattrs, mtimes clamped, build-specific files already normalised away)
//! piped into the host's `tar2sqfs` (squashfs-tools-ng) with zstd.
//!
//! Why tar2sqfs and not `mksquashfs DIR`: fed this stream, the squashfs
//! holds exactly what the `.tar*` outputs hold (one walk of the tree, the
//! same normalisation), and it is the faster of the two: on a bookworm
//! minbase tree it takes 0.87 of `mksquashfs -comp zstd`'s time on a quiet
//! 2-core machine (bench/squashfs.sh prints the ratio). Its output does
//! not depend on the number of compressor jobs; the superblock time is
//! `SOURCE_DATE_EPOCH` (the clamp) or 0, so the same tree gives the same bytes.
//! Squashfs stores `user.`, `trusted.` and `security.` xattrs (file
//! capabilities included) but no POSIX ACLs: those are left out and counted
//! (`skipped_acls`), as `mksquashfs` drops them with a warning.

use super::tar::{write_tar, TarOptions, TarStats};
use super::ImageError;
use std::io::{self, BufWriter};
use std::path::Path;
use std::process::{Command, Stdio};

/// The squashfs writer vbuild runs.
pub const TOOL: &str = "tar2sqfs";

/// Starts `tar2sqfs` writing a zstd squashfs at `dest` from the tar stream
/// on its stdin (piped; its stderr is piped for the error message).
/// `strict` aborts on an entry squashfs cannot hold instead of skipping it.
pub fn spawn_tar2sqfs(
    dest: &Path,
    clamp_mtime: Option<i64>,
    strict: bool,
) -> io::Result<std::process::Child> {
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut cmd = Command::new(TOOL);
    cmd.arg("--quiet");
    if strict {
        cmd.arg("--no-skip");
    }
    cmd.args(["--compressor", "zstd", "--num-jobs"])
        .arg(jobs.to_string())
        .arg(dest)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    match clamp_mtime {
        Some(t) => cmd.env("SOURCE_DATE_EPOCH", t.max(0).to_string()),
        None => cmd.env_remove("SOURCE_DATE_EPOCH"),
    };
    cmd.spawn().map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "cannot run {TOOL} ({e}); .squashfs output needs it: \
                 apt-get install squashfs-tools-ng (or write .tar.zst)"
            ),
        )
    })
}

/// Writes `rootfs` as a zstd squashfs at `dest` (which must not exist).
pub fn write_squashfs(
    rootfs: &Path,
    dest: &Path,
    opts: &TarOptions,
) -> Result<TarStats, ImageError> {
    let io_err = |source: io::Error| ImageError::Io {
        path: dest.to_path_buf(),
        source,
    };
    let mut child = spawn_tar2sqfs(dest, opts.clamp_mtime, true).map_err(io_err)?;
    let stdin = child.stdin.take().expect("piped stdin");
    let opts = TarOptions {
        skip_acls: true,
        ..opts.clone()
    };
    let written = write_tar(rootfs, BufWriter::with_capacity(1 << 20, stdin), &opts);
    // The pipe is closed once `write_tar` returns (its writer is dropped).
    let out = child.wait_with_output().map_err(io_err)?;
    // A tool that failed broke the pipe: its own message says why.
    if !out.status.success() {
        return Err(io_err(io::Error::other(format!(
            "{TOOL} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))));
    }
    Ok(written?)
}
