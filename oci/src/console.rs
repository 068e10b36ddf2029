//! `--console-socket`: a process with `process.terminal` gets a pty of
//! the container's devpts (`pty::take_terminal`, in the process); its
//! master goes to the client over the unix socket (SCM_RIGHTS, as runc
//! sends it), its slave becomes the process's controlling terminal and
//! stdio.

use crate::error::{sys, OciError};
use crate::spec::ConsoleSize;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

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

/// `process.consoleSize` as the kernel's window size.
pub fn winsize(c: ConsoleSize) -> libc::winsize {
    libc::winsize {
        ws_row: c.height,
        ws_col: c.width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}
