//! `vbuild console NAME`: attaches our terminal to a running guest's
//! console through the supervisor's socket (`console.sock` in the state
//! directory). Keys go to the guest unchanged (raw mode) except Ctrl-],
//! which detaches; the guest keeps running. Everything the console prints
//! is also in `console.log`, attached or not.

use crate::error::{io, RuntimeError};
use crate::name::GuestName;
use crate::paths::Layout;
use crate::state::{self, Liveness, State};
use crate::supervisor::ACK;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;

/// The key that detaches (Ctrl-]).
pub const DETACH: u8 = 0x1d;

/// Why the console session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detached {
    /// The user pressed Ctrl-].
    ByUser,
    /// Our input ended (not a terminal, end of file).
    InputClosed,
    /// The guest stopped.
    GuestStopped,
}

/// A connection to a running guest's console.
pub struct Console {
    stream: UnixStream,
    name: String,
    path: std::path::PathBuf,
}

/// Connects to the console of running guest `name` (refused while another
/// `vbuild console` is attached).
pub fn connect(layout: &Layout, name: &GuestName) -> Result<Console, RuntimeError> {
    let n = name.as_str();
    let st = State::load(layout, n)?.ok_or_else(|| {
        if layout.guest_config(n).is_file() {
            RuntimeError::NotRunning(n.to_string())
        } else {
            RuntimeError::NotFound(n.to_string())
        }
    })?;
    match st.liveness() {
        Liveness::Running { supervisor: true } => {}
        Liveness::Running { supervisor: false } => {
            return Err(RuntimeError::Console {
                name: n.to_string(),
                reason: format!("its supervisor is gone (the console went with it); `vbuild exec {n}` still works, and a restart brings the console back"),
            })
        }
        _ => return Err(RuntimeError::NotRunning(n.to_string())),
    }
    let path = state::console_socket(layout, n);
    let mut s = UnixStream::connect(&path).map_err(io(&path))?;
    let mut b = [0u8; 1];
    match s.read(&mut b) {
        Ok(1) if b[0] == ACK => Ok(Console {
            stream: s,
            name: n.to_string(),
            path,
        }),
        _ => Err(RuntimeError::Console {
            name: n.to_string(),
            reason: "another `vbuild console` is attached; detach it first (Ctrl-])".into(),
        }),
    }
}

impl Console {
    /// Relays stdin/stdout to the guest's console until Ctrl-], end of
    /// input or the guest stopping.
    pub fn relay(self) -> Result<Detached, RuntimeError> {
        let Console {
            stream: mut s,
            name,
            path,
        } = self;
        let _ = name;
        let stdin = std::io::stdin();
        let stdout = std::io::stdout();
        let ws = vbuild_kernel::pty::window_size(stdout.as_fd());
        let (rows, cols) = ws.map(|w| (w.ws_row, w.ws_col)).unwrap_or((0, 0));
        let mut header = [0u8; 4];
        header[..2].copy_from_slice(&rows.to_le_bytes());
        header[2..].copy_from_slice(&cols.to_le_bytes());
        s.write_all(&header).map_err(io(&path))?;
        let _raw = vbuild_kernel::pty::RawMode::enter(stdin.as_fd());
        let mut buf = [0u8; 8192];
        let mut out = stdout.lock();
        loop {
            let mut p = [
                libc::pollfd {
                    fd: s.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: 0,
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // SAFETY: poll over our array.
            if unsafe { libc::poll(p.as_mut_ptr(), 2, -1) } < 0 {
                if nix::errno::Errno::last() == nix::errno::Errno::EINTR {
                    continue;
                }
                return Ok(Detached::GuestStopped);
            }
            if p[0].revents != 0 {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => return Ok(Detached::GuestStopped),
                    Ok(k) => {
                        let _ = out.write_all(&buf[..k]);
                        let _ = out.flush();
                    }
                }
            }
            if p[1].revents != 0 {
                match nix::unistd::read(0, &mut buf) {
                    Ok(0) | Err(_) => return Ok(Detached::InputClosed),
                    Ok(k) => {
                        let data = &buf[..k];
                        if let Some(i) = data.iter().position(|b| *b == DETACH) {
                            let _ = s.write_all(&data[..i]);
                            return Ok(Detached::ByUser);
                        }
                        if s.write_all(data).is_err() {
                            return Ok(Detached::GuestStopped);
                        }
                    }
                }
            }
        }
    }

    /// Sends bytes to the console (as if typed), for scripted use.
    pub fn send(&mut self, data: &[u8]) -> Result<(), RuntimeError> {
        self.stream.write_all(data).map_err(io(&self.path))
    }

    /// The guest this console belongs to.
    pub fn guest(&self) -> &str {
        &self.name
    }
}
