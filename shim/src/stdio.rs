//! The task's stdio: containerd's fifos, opened without blocking and put
//! on descriptors 0..2 only while the container's process is cloned.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Mutex;

/// Serialises the borrowing of our descriptors 0..2.
static STDIO: Mutex<()> = Mutex::new(());

/// Opens a fifo (or file) path from containerd; empty means /dev/null.
/// O_NONBLOCK so a fifo without a peer cannot hang us; cleared after.
fn open(path: &str, write: bool) -> Result<File, String> {
    let path = if path.is_empty() { "/dev/null" } else { path };
    let mut o = std::fs::OpenOptions::new();
    o.custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY);
    let f = if write {
        match o.clone().write(true).open(path) {
            // A fifo without a reader yet: hold both ends ourselves.
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => o.read(true).write(true).open(path),
            r => r,
        }
    } else {
        o.read(true).open(path)
    }
    .map_err(|e| format!("open stdio {path}: {e}"))?;
    // SAFETY: fcntl on a descriptor we own, integer arguments.
    unsafe {
        let fl = libc::fcntl(f.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(f.as_raw_fd(), libc::F_SETFL, fl & !libc::O_NONBLOCK);
    }
    Ok(f)
}

/// Runs `f` with descriptors 0..2 set to the given stdio paths, so the
/// process it clones inherits them; ours are put back after.
pub fn with_stdio<T>(paths: [&str; 3], f: impl FnOnce() -> T) -> Result<T, String> {
    let files = [
        open(paths[0], false)?,
        open(paths[1], true)?,
        open(paths[2], true)?,
    ];
    let _g = STDIO.lock().unwrap_or_else(|p| p.into_inner());
    let mut saved = Vec::new();
    for (fd, file) in files.iter().enumerate() {
        let fd = fd as i32;
        // SAFETY: dup/dup2 with integer arguments; the copy is owned below.
        unsafe {
            let s = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3);
            saved.push((fd, (s >= 0).then(|| OwnedFd::from_raw_fd(s))));
            libc::dup2(file.as_raw_fd(), fd);
        }
    }
    let out = f();
    for (fd, s) in saved {
        // SAFETY: dup2/close with integer arguments.
        unsafe {
            match s {
                Some(s) => libc::dup2(s.as_raw_fd(), fd),
                None => libc::close(fd),
            };
        }
    }
    Ok(out)
}
