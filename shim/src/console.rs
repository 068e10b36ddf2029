//! Terminals (`ctr run -t`, `ctr task exec -t`): vbuild-oci makes the pty
//! and sends its master to a console socket of ours, as it does to
//! runc's clients; the shim copies between that master and containerd's
//! fifos, and ResizePty sets the master's window size.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

static SERIAL: AtomicU32 = AtomicU32::new(0);

/// A listening socket the pty's master is sent to, in a directory only
/// root can enter (so no other user can connect first and be handed the
/// user's keystrokes); both go when this is dropped. Its path is short
/// (in /tmp, not the bundle, whose path may be longer than a socket
/// address allows).
pub struct ConsoleSocket {
    dir: PathBuf,
    path: PathBuf,
    listener: UnixListener,
}

impl ConsoleSocket {
    /// Binds a new socket in a new private directory.
    pub fn bind() -> Result<ConsoleSocket, String> {
        use std::os::unix::fs::DirBuilderExt;
        // A name someone else made first is skipped: mkdir only succeeds
        // for a directory that is ours, made 0700.
        let mut tries = 0;
        let dir = loop {
            let dir = std::env::temp_dir().join(format!(
                "vbuild-shim-{}-{}",
                std::process::id(),
                SERIAL.fetch_add(1, Ordering::Relaxed)
            ));
            match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => break dir,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && tries < 100 => {
                    tries += 1
                }
                Err(e) => {
                    return Err(format!(
                        "make a directory for the console socket {}: {e}",
                        dir.display()
                    ))
                }
            }
        };
        let path = dir.join("console.sock");
        let listener = match UnixListener::bind(&path) {
            Ok(l) => l,
            Err(e) => {
                let _ = std::fs::remove_dir(&dir);
                return Err(format!("bind the console socket {}: {e}", path.display()));
            }
        };
        Ok(ConsoleSocket {
            dir,
            path,
            listener,
        })
    }

    /// Where vbuild-oci connects.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The master vbuild-oci sent (it connected and sent before it
    /// returned, so this does not wait for a peer).
    pub fn receive(self) -> Result<OwnedFd, String> {
        self.listener
            .set_nonblocking(true)
            .map_err(|e| e.to_string())?;
        let (conn, _) = self
            .listener
            .accept()
            .map_err(|e| format!("no terminal was sent to the console socket: {e}"))?;
        conn.set_nonblocking(false).map_err(|e| e.to_string())?;
        vbuild_kernel::fdpass::recv_fd(conn.as_raw_fd())
            .map_err(|e| format!("receive the terminal: {e}"))
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// A process's terminal: the master, shared by the copies and ResizePty.
pub struct Console {
    master: Arc<File>,
    /// The copy of the process's output, done once the terminal hung up.
    output: Mutex<Option<JoinHandle<()>>>,
}

impl Console {
    /// Copies containerd's `stdin` fifo into `master` and `master` into
    /// its `stdout` fifo (empty paths: nothing to copy), in threads.
    pub fn relay(master: OwnedFd, stdin: &str, stdout: &str) -> Console {
        let master = Arc::new(File::from(master));
        if !stdin.is_empty() {
            let (m, path) = (master.clone(), stdin.to_string());
            std::thread::spawn(move || {
                // Blocks until containerd opens the fifo's write end.
                if let Ok(mut input) = File::open(&path) {
                    copy(&mut input, &mut &*m);
                }
            });
        }
        let output = (!stdout.is_empty()).then(|| {
            let (m, path) = (master.clone(), stdout.to_string());
            std::thread::spawn(move || {
                if let Ok(mut out) = std::fs::OpenOptions::new().write(true).open(&path) {
                    // Ends with EIO once the last holder of the slave closed it.
                    copy(&mut &*m, &mut out);
                }
            })
        });
        Console {
            master,
            output: Mutex::new(output),
        }
    }

    /// Sets the terminal's window size (ResizePty).
    pub fn resize(&self, width: u32, height: u32) -> Result<(), String> {
        let ws = libc::winsize {
            ws_row: height.min(u16::MAX as u32) as u16,
            ws_col: width.min(u16::MAX as u32) as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        vbuild_kernel::pty::set_window_size(self.master.as_fd(), &ws)
            .map_err(|e| format!("set the terminal's size: {e}"))
    }

    /// Waits at most `timeout` for the output copy to finish (all of the
    /// process's output reached containerd's fifo), before a delete.
    pub fn drain(&self, timeout: Duration) {
        let Some(h) = self.output.lock().unwrap_or_else(|p| p.into_inner()).take() else {
            return;
        };
        let until = Instant::now() + timeout;
        while !h.is_finished() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        if h.is_finished() {
            let _ = h.join();
        }
    }
}

/// Copies until end of file or an error (EIO from a hung-up terminal).
fn copy(from: &mut impl Read, to: &mut impl Write) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_master_sent_to_the_socket_is_received_and_the_file_goes() {
        let s = ConsoleSocket::bind().unwrap();
        let path = s.path().to_path_buf();
        assert!(path.as_os_str().len() < 100, "{}", path.display());
        let c = std::os::unix::net::UnixStream::connect(&path).unwrap();
        let p = vbuild_kernel::pty::open().unwrap();
        vbuild_kernel::fdpass::send_fd(c.as_raw_fd(), p.master.as_raw_fd()).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let dir = path.parent().unwrap().to_path_buf();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "only root may reach the socket");
        let got = s.receive().unwrap();
        assert!(vbuild_kernel::pty::is_tty(&got));
        assert!(
            !path.exists() && !dir.exists(),
            "socket or its directory left"
        );
    }

    #[test]
    fn a_name_taken_by_someone_else_is_skipped() {
        // The next names, planted; one another test's bind took first
        // (they run in parallel) is not ours to plant or remove.
        let next = SERIAL.load(Ordering::Relaxed);
        let planted: Vec<PathBuf> = (next..next + 4)
            .map(|n| std::env::temp_dir().join(format!("vbuild-shim-{}-{n}", std::process::id())))
            .filter(|d| std::fs::create_dir(d).is_ok())
            .collect();
        assert!(!planted.is_empty());
        let s = ConsoleSocket::bind().unwrap();
        assert!(
            !planted.iter().any(|d| s.path().starts_with(d)),
            "{}",
            s.path().display()
        );
        for d in planted {
            std::fs::remove_dir(d).unwrap();
        }
    }

    #[test]
    fn nothing_sent_is_an_error_not_a_hang() {
        let s = ConsoleSocket::bind().unwrap();
        assert!(s.receive().unwrap_err().contains("no terminal"));
    }

    #[test]
    fn output_is_copied_until_the_terminal_hangs_up_and_resize_shows() {
        let p = vbuild_kernel::pty::open().unwrap();
        let slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&p.slave)
            .unwrap();
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("out");
        std::fs::write(&out, "").unwrap();
        let c = Console::relay(p.master, "", out.to_str().unwrap());
        c.resize(111, 33).unwrap();
        let ws = vbuild_kernel::pty::window_size(slave.as_fd()).unwrap();
        assert_eq!((ws.ws_row, ws.ws_col), (33, 111));
        (&slave).write_all(b"hello\n").unwrap();
        drop(slave);
        c.drain(Duration::from_secs(5));
        // The terminal's own line discipline turns \n into \r\n.
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "hello\r\n");
    }
}
