//! `--console-socket`: a process with `process.terminal` gets a pty; its
//! master goes to the client over the unix socket (SCM_RIGHTS, as runc
//! sends it), its slave becomes the process's controlling terminal and
//! stdio.

use crate::error::{sys, OciError};
use crate::spec::ConsoleSize;
use nix::errno::Errno;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use vbuild_kernel::pty;

/// Connects to the client's console socket.
pub fn connect(path: &Path) -> Result<OwnedFd, OciError> {
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType, UnixAddr};
    let what = format!("--console-socket {}", path.display());
    let s = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(sys(what.clone()))?;
    let addr = UnixAddr::new(path).map_err(sys(what.clone()))?;
    nix::sys::socket::connect(s.as_raw_fd(), &addr).map_err(sys(what))?;
    Ok(s)
}

/// In a process that has joined the container's mount namespace: a pty
/// of the container's devpts as its terminal (see `pty::take_terminal`).
pub fn take_terminal(sock: RawFd, size: Option<&libc::winsize>) -> Result<(), Errno> {
    pty::take_terminal(sock, size)
}

/// `process.consoleSize` as the kernel's window size.
pub fn winsize(c: ConsoleSize) -> libc::winsize {
    libc::winsize {
        ws_row: c.height,
        ws_col: c.width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}
