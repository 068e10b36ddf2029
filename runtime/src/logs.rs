//! `vbuild logs NAME`: the guest's console log (what init and the guest
//! wrote to /dev/console, rotated at 1 MiB with one old file kept) and its
//! supervisor's log, both host-side files in the guest's run directory,
//! which the guest cannot reach. They are still opened with `O_NOFOLLOW`
//! and must be regular files, and no more than [`READ_CAP`] bytes of each
//! are read, so a huge or strange file cannot exhaust memory.

use crate::error::RuntimeError;
use crate::name::GuestName;
use crate::paths::Layout;
use crate::state::{self, Liveness, State};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The most bytes read from one log file at a time.
pub const READ_CAP: u64 = 4 << 20;

/// Which log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogKind {
    /// The guest's console.
    Console,
    /// The supervisor's own messages (why a start or a stop went wrong).
    Supervisor,
}

/// The files of `kind` for guest `name`, oldest first.
pub fn files(layout: &Layout, name: &str, kind: LogKind) -> Vec<PathBuf> {
    match kind {
        LogKind::Console => {
            let cur = state::console_log(layout, name);
            vec![cur.with_extension("log.1"), cur]
        }
        LogKind::Supervisor => vec![state::supervisor_log(layout, name)],
    }
}

/// Opens a log file: a regular file, not followed through a symlink,
/// without blocking on a FIFO. `None` when it does not exist.
fn open(path: &Path) -> Result<Option<File>, RuntimeError> {
    let io = |e: std::io::Error| RuntimeError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let f = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    let meta = f.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not a regular file; refusing to read it",
        )));
    }
    Ok(Some(f))
}

/// The last `lines` lines of guest `name`'s `kind` log (all when `None`),
/// from at most [`READ_CAP`] bytes of each file.
pub fn tail(
    layout: &Layout,
    name: &GuestName,
    kind: LogKind,
    lines: Option<usize>,
) -> Result<Vec<u8>, RuntimeError> {
    let n = name.as_str();
    if !layout.guest_config(n).is_file() {
        return Err(RuntimeError::NotFound(n.to_string()));
    }
    let mut all = Vec::new();
    for p in files(layout, n, kind) {
        if let Some(mut f) = open(&p)? {
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            let _ = f.seek(SeekFrom::Start(len.saturating_sub(READ_CAP)));
            f.take(READ_CAP)
                .read_to_end(&mut all)
                .map_err(|e| RuntimeError::Io {
                    path: p.clone(),
                    source: e,
                })?;
        }
    }
    Ok(match lines {
        Some(k) => last_lines(&all, k).to_vec(),
        None => all,
    })
}

/// The last `k` lines of `data` (a last line without a newline counts).
pub fn last_lines(data: &[u8], k: usize) -> &[u8] {
    if k == 0 {
        return &[];
    }
    let body = data.strip_suffix(b"\n").unwrap_or(data);
    let mut seen = 0;
    for (i, b) in body.iter().enumerate().rev() {
        if *b == b'\n' {
            seen += 1;
            if seen == k {
                return &data[i + 1..];
            }
        }
    }
    data
}

/// Whether guest `name` is running now (its follow should go on).
fn running(layout: &Layout, name: &str) -> bool {
    match State::load(layout, name) {
        Ok(Some(st)) => matches!(st.liveness(), Liveness::Running { .. }),
        _ => false,
    }
}

/// Follows guest `name`'s console log from its end as it is now, handing
/// each new piece to `out`, until the guest stops (its last output is
/// delivered first) or `out` fails. Rotation is noticed by inode.
pub fn follow(
    layout: &Layout,
    name: &GuestName,
    out: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
) -> Result<(), RuntimeError> {
    let n = name.as_str();
    let path = state::console_log(layout, n);
    let mut cur: Option<(File, u64)> = None;
    let mut buf = vec![0u8; 64 * 1024];
    let mut first = true;
    loop {
        let alive = running(layout, n);
        // Reopen when the file was rotated or appeared.
        let ino_now = std::fs::symlink_metadata(&path).ok().map(|m| m.ino());
        if ino_now.is_some() && cur.as_ref().map(|(_, i)| Some(*i)) != Some(ino_now) {
            if let Some(mut f) = open(&path)? {
                let ino = f.metadata().map(|m| m.ino()).unwrap_or(0);
                if first {
                    // What was there before is `tail`'s job.
                    let _ = f.seek(SeekFrom::End(0));
                } else if let Some((old, _)) = cur.as_mut() {
                    drain(old, &mut buf, out).map_err(|e| io_err(&path, e))?;
                }
                cur = Some((f, ino));
            }
        }
        first = false;
        if let Some((f, _)) = cur.as_mut() {
            drain(f, &mut buf, out).map_err(|e| io_err(&path, e))?;
        }
        if !alive {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn io_err(path: &Path, e: std::io::Error) -> RuntimeError {
    RuntimeError::Io {
        path: path.to_path_buf(),
        source: e,
    }
}

/// Hands everything readable from `f` now to `out`, [`READ_CAP`] at most.
fn drain(
    f: &mut File,
    buf: &mut [u8],
    out: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut total = 0u64;
    while total < READ_CAP {
        let k = match f.read(buf) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        };
        total += k as u64;
        out(&buf[..k])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_lines_counts_from_the_end() {
        assert_eq!(last_lines(b"a\nb\nc\n", 2), b"b\nc\n");
        assert_eq!(last_lines(b"a\nb\nc", 2), b"b\nc");
        assert_eq!(last_lines(b"a\nb\n", 5), b"a\nb\n");
        assert_eq!(last_lines(b"a\nb\n", 0), b"");
        assert_eq!(last_lines(b"", 3), b"");
    }

    fn guest(root: &Path, name: &str) -> (Layout, GuestName) {
        let layout = Layout::new(Some(root));
        std::fs::create_dir_all(layout.guest_dir(name)).unwrap();
        std::fs::write(layout.guest_config(name), "").unwrap();
        std::fs::create_dir_all(layout.run_dir(name)).unwrap();
        (layout, GuestName::parse(name).unwrap())
    }

    #[test]
    fn tail_reads_the_rotated_file_then_the_current_one() {
        let dir = tempfile::tempdir().unwrap();
        let (layout, name) = guest(dir.path(), "cllog1");
        let log = state::console_log(&layout, "cllog1");
        std::fs::write(log.with_extension("log.1"), "one\ntwo\n").unwrap();
        std::fs::write(&log, "three\nfour\n").unwrap();
        let all = tail(&layout, &name, LogKind::Console, None).unwrap();
        assert_eq!(all, b"one\ntwo\nthree\nfour\n");
        let last = tail(&layout, &name, LogKind::Console, Some(3)).unwrap();
        assert_eq!(last, b"two\nthree\nfour\n");
        assert_eq!(
            tail(&layout, &name, LogKind::Supervisor, None).unwrap(),
            b"",
            "no supervisor log yet is empty, not an error"
        );
    }

    #[test]
    fn a_symlinked_or_special_log_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (layout, name) = guest(dir.path(), "cllog2");
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "host secret\n").unwrap();
        let log = state::console_log(&layout, "cllog2");
        std::os::unix::fs::symlink(&secret, &log).unwrap();
        let e = tail(&layout, &name, LogKind::Console, None).unwrap_err();
        assert!(e.to_string().contains("console.log"), "{e}");
        std::fs::remove_file(&log).unwrap();
        nix::unistd::mkfifo(&log, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let e = tail(&layout, &name, LogKind::Console, None).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }

    #[test]
    fn an_unknown_guest_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(Some(dir.path()));
        let name = GuestName::parse("clnone").unwrap();
        let e = tail(&layout, &name, LogKind::Console, None).unwrap_err();
        assert!(matches!(e, RuntimeError::NotFound(_)), "{e}");
    }
}
