//! `--console-socket`: a process with `process.terminal` gets a pty; its
//! master goes to the client over the unix socket (SCM_RIGHTS, as runc
//! sends it), its slave becomes the process's controlling terminal and
//! stdio.

use crate::error::{sys, OciError};
use crate::spec::ConsoleSize;
use nix::errno::Errno;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use vbuild_kernel::{fdpass, pty};

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

/// Opens a pty on this host's devpts, sends its master over `sock` and
/// returns the slave's path (the container's first process opens it
/// before it pivots and makes it its terminal).
pub fn send_host_pty(
    sock: &OwnedFd,
    size: Option<ConsoleSize>,
) -> Result<std::path::PathBuf, OciError> {
    let p = pty::open().map_err(|e| OciError::Sys {
        what: format!("open a terminal: {}", e.op),
        errno: e.errno,
    })?;
    if let Some(ws) = size.map(winsize) {
        pty::set_window_size(std::os::fd::AsFd::as_fd(&p.master), &ws)
            .map_err(sys("set the terminal's size (process.consoleSize)"))?;
    }
    fdpass::send_fd(sock.as_raw_fd(), p.master.as_raw_fd())
        .map_err(sys("send the terminal over --console-socket"))?;
    Ok(p.slave)
}

/// In a process that has joined the container's mount namespace: opens a
/// pty of the container's devpts, sends the master over `sock` and makes
/// the slave the controlling terminal of a new session and stdio.
/// Allocation-free.
pub fn take_terminal(sock: RawFd, size: Option<&libc::winsize>) -> Result<(), Errno> {
    let (m, s) =
        pty::open_pair_at(c"/dev/pts/ptmx").or_else(|_| pty::open_pair_at(c"/dev/ptmx"))?;
    if let Some(ws) = size {
        pty::set_window_size(std::os::fd::AsFd::as_fd(&m), ws)?;
    }
    fdpass::send_fd(sock, m.as_raw_fd())?;
    drop(m);
    pty::become_session_on(s.as_raw_fd())?;
    if s.as_raw_fd() > 2 {
        drop(s);
    } else {
        std::mem::forget(s);
    }
    Ok(())
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
