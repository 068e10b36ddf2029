//! Pseudo-terminals: a guest's console (a pty whose slave becomes the
//! guest's /dev/console while the supervisor holds the master), the tty of
//! `vbuild enter`, and the raw mode a terminal needs while it relays them.

use nix::errno::Errno;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

/// A new pty pair: the master end and the path of its slave.
#[derive(Debug)]
pub struct Pty {
    /// The controlling side, kept by whoever relays the terminal.
    pub master: OwnedFd,
    /// The slave's path (`/dev/pts/N`) in the devpts instance it came from.
    pub slave: PathBuf,
}

/// Opening a pty failed.
#[derive(Debug, thiserror::Error)]
#[error("{op}: {errno} (is devpts mounted at /dev/pts?)")]
pub struct PtyError {
    /// The step (`posix_openpt`, `grantpt`, ...).
    pub op: &'static str,
    /// The kernel's answer.
    pub errno: Errno,
}

fn perr(op: &'static str) -> impl FnOnce(Errno) -> PtyError {
    move |errno| PtyError { op, errno }
}

/// Opens a new pty in this mount namespace's /dev/ptmx.
pub fn open() -> Result<Pty, PtyError> {
    use nix::fcntl::OFlag;
    let m = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(perr("posix_openpt"))?;
    nix::pty::grantpt(&m).map_err(perr("grantpt"))?;
    nix::pty::unlockpt(&m).map_err(perr("unlockpt"))?;
    let slave = nix::pty::ptsname_r(&m).map_err(perr("ptsname"))?;
    // SAFETY: PtyMaster owns the descriptor; we take ownership from it.
    let master = unsafe { OwnedFd::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(m)) };
    Ok(Pty {
        master,
        slave: PathBuf::from(slave),
    })
}

/// Opens a new pty through the `ptmx` device at `ptmx` (a guest's
/// `/dev/pts/ptmx` after joining its mount namespace) and returns master
/// and slave descriptors, the slave opened through the master (TIOCGPTPEER)
/// so no path lookup can be redirected. Allocation-free.
pub fn open_pair_at(ptmx: &std::ffi::CStr) -> Result<(OwnedFd, OwnedFd), Errno> {
    // SAFETY: open with a NUL-terminated path.
    let m = unsafe {
        libc::open(
            ptmx.as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if m < 0 {
        return Err(Errno::last());
    }
    // SAFETY: m is ours.
    let master = unsafe { OwnedFd::from_raw_fd(m) };
    let mut unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK takes a pointer to int.
    if unsafe { libc::ioctl(m, libc::TIOCSPTLCK, &mut unlock) } != 0 {
        return Err(Errno::last());
    }
    // SAFETY: TIOCGPTPEER takes open flags and returns a new descriptor.
    let s = unsafe { libc::ioctl(m, libc::TIOCGPTPEER, libc::O_RDWR | libc::O_NOCTTY) };
    if s < 0 {
        return Err(Errno::last());
    }
    // SAFETY: s is ours.
    Ok((master, unsafe { OwnedFd::from_raw_fd(s) }))
}

/// Makes `tty` the controlling terminal of a new session led by the caller
/// and its stdin, stdout and stderr. Allocation-free, for a child before exec.
pub fn become_session_on(tty: RawFd) -> Result<(), Errno> {
    // SAFETY: plain syscalls on descriptors we hold.
    unsafe {
        if libc::setsid() < 0 {
            return Err(Errno::last());
        }
        if libc::ioctl(tty, libc::TIOCSCTTY, 0) < 0 {
            return Err(Errno::last());
        }
        for target in 0..3 {
            if tty != target && libc::dup2(tty, target) < 0 {
                return Err(Errno::last());
            }
        }
    }
    Ok(())
}

/// In a process inside a container's mount namespace: opens a pty of the
/// container's own devpts (so `tty` and ttyname name it there), sends the
/// master over `sock` and makes the slave the controlling terminal of a
/// new session and stdio. Allocation-free, for a child before exec.
pub fn take_terminal(sock: RawFd, size: Option<&libc::winsize>) -> Result<(), Errno> {
    let (m, s) = open_pair_at(c"/dev/pts/ptmx").or_else(|_| open_pair_at(c"/dev/ptmx"))?;
    if let Some(ws) = size {
        set_window_size(m.as_fd(), ws)?;
    }
    crate::fdpass::send_fd(sock, m.as_raw_fd())?;
    drop(m);
    become_session_on(s.as_raw_fd())?;
    if s.as_raw_fd() > 2 {
        drop(s);
    } else {
        std::mem::forget(s);
    }
    Ok(())
}

/// The window size of terminal `fd`, if it is one.
pub fn window_size(fd: BorrowedFd<'_>) -> Option<libc::winsize> {
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ fills a winsize.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    (r == 0).then_some(ws)
}

/// Sets the window size of the terminal behind `fd` (a pty master).
pub fn set_window_size(fd: BorrowedFd<'_>, ws: &libc::winsize) -> Result<(), Errno> {
    // SAFETY: TIOCSWINSZ reads a winsize.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, ws) };
    if r != 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// Puts a terminal into raw mode (keys reach the guest unchanged, Ctrl-C
/// included) and restores the previous mode when dropped.
pub struct RawMode {
    fd: RawFd,
    saved: nix::sys::termios::Termios,
}

impl RawMode {
    /// Switches `fd` to raw mode; `None` when it is not a terminal.
    pub fn enter(fd: BorrowedFd<'_>) -> Option<RawMode> {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        let saved = tcgetattr(fd).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(fd, SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode {
            fd: fd.as_raw_fd(),
            saved,
        })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        use nix::sys::termios::{tcsetattr, SetArg};
        // SAFETY: the descriptor outlives the guard (it is stdin).
        let fd = unsafe { BorrowedFd::borrow_raw(self.fd) };
        let _ = tcsetattr(fd, SetArg::TCSANOW, &self.saved);
    }
}

/// True when `fd` is a terminal.
pub fn is_tty(fd: impl AsFd) -> bool {
    nix::unistd::isatty(fd.as_fd().as_raw_fd()).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_pty_relays_bytes_from_slave_to_master() {
        let p = match open() {
            Ok(p) => p,
            Err(e) => {
                vbuild_testsupport::require(
                    false,
                    &format!("a pty (/dev/ptmx and a devpts mount): {e}"),
                );
                return;
            }
        };
        assert!(p.slave.starts_with("/dev/pts"));
        let s = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&p.slave)
            .unwrap();
        assert!(is_tty(&s));
        nix::unistd::write(&s, b"hi\n").unwrap();
        let mut buf = [0u8; 16];
        let n = nix::unistd::read(p.master.as_raw_fd(), &mut buf).unwrap();
        assert!(buf[..n].starts_with(b"hi"), "{:?}", &buf[..n]);
        let ws = libc::winsize {
            ws_row: 33,
            ws_col: 101,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        set_window_size(p.master.as_fd(), &ws).unwrap();
        let got = window_size(s.as_fd()).unwrap();
        assert_eq!((got.ws_row, got.ws_col), (33, 101));
    }
}
