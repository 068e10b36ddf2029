//! A running guest's state directory (`run_dir(NAME)`): `state.json` (who
//! runs: supervisor and init with their start times, the cgroup, the boot
//! id, readiness), the lock that whoever manages the guest holds, the
//! console log and the sockets.
//!
//! The state file and the cgroup are the truth, not the supervisor: a pid
//! is only taken as alive when its start time still matches, so a
//! recycled pid is never mistaken for the guest, and a guest whose
//! supervisor was killed is still found, reported and stopped.

use crate::config::{write_atomic, InitKind};
use crate::error::{io, RuntimeError};
use crate::paths::Layout;
use serde::{Deserialize, Serialize};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use vbuild_kernel::process;

/// What `state.json` records about a running guest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The guest.
    pub name: String,
    /// The supervisor's pid and start time (clock ticks after boot).
    pub supervisor_pid: i32,
    /// See `supervisor_pid`.
    pub supervisor_start: u64,
    /// Init's pid as the host sees it, and its start time.
    pub init_pid: i32,
    /// See `init_pid`.
    pub init_start: u64,
    /// When the guest started, seconds since the epoch.
    pub started_at: u64,
    /// The guest's cgroup, relative to each hierarchy (`vbuild/NAME`).
    pub cgroup: String,
    /// This boot's id, also the guest's `container_uuid`.
    pub boot_id: String,
    /// The kind of init (decides the stop signal).
    pub init_kind: InitKind,
    /// Whether the guest has its own user namespace.
    #[serde(default)]
    pub userns: bool,
    /// With `userns`: the host uid of the guest's root (its range base).
    #[serde(default)]
    pub id_base: u32,
    /// Init said READY=1 on the notify socket (systemd booted).
    #[serde(default)]
    pub ready: bool,
    /// The last STATUS= line init sent, cleaned ([`clean_status_text`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_text: Option<String>,
    /// How many times the supervisor wrote this file this boot (it
    /// coalesces notify messages, so a flood cannot turn into disk I/O).
    #[serde(default)]
    pub state_saves: u64,
}

/// The longest STATUS= text kept, in characters.
pub const STATUS_TEXT_MAX: usize = 256;

/// A guest's STATUS= text made safe to store and print: escape sequences
/// (CSI, OSC, and two-byte ESC ones) removed, other control characters
/// removed (tabs become spaces), cut to [`STATUS_TEXT_MAX`] characters.
pub fn clean_status_text(raw: &str) -> String {
    let mut out = String::new();
    let mut chars = raw.chars().peekable();
    let mut kept = 0;
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                // CSI: parameters up to a final byte in @..~.
                Some('[') => {
                    for d in chars.by_ref() {
                        if ('@'..='~').contains(&d) {
                            break;
                        }
                    }
                }
                // OSC, DCS, SOS, PM, APC: up to BEL or ST (ESC \\).
                Some(']' | 'P' | 'X' | '^' | '_') => skip_string(&mut chars),
                _ => {}
            },
            '\u{9b}' => {
                for d in chars.by_ref() {
                    if ('@'..='~').contains(&d) {
                        break;
                    }
                }
            }
            '\u{9d}' | '\u{90}' | '\u{98}' | '\u{9e}' | '\u{9f}' => skip_string(&mut chars),
            '\t' => {
                out.push(' ');
                kept += 1;
            }
            c if c.is_control() => {}
            c => {
                out.push(c);
                kept += 1;
            }
        }
        if kept >= STATUS_TEXT_MAX {
            break;
        }
    }
    out
}

fn skip_string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(d) = chars.next() {
        if d == '\u{7}' || d == '\u{9c}' {
            break;
        }
        if d == '\u{1b}' && chars.peek() == Some(&'\\') {
            chars.next();
            break;
        }
    }
}

/// Whether a guest runs, judged from its state file and processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// Init runs; `supervisor` tells whether its supervisor does too.
    Running {
        /// The supervisor is alive.
        supervisor: bool,
    },
    /// Init ended and the supervisor is still cleaning up.
    Stopping,
    /// Init and supervisor are gone but the state file remains (the
    /// supervisor was killed): cleanup is due.
    Stale,
}

impl Liveness {
    /// A word for `status`/`list`.
    pub fn label(self) -> &'static str {
        match self {
            Liveness::Running { supervisor: true } => "running",
            Liveness::Running { supervisor: false } => "running (supervisor lost)",
            Liveness::Stopping => "stopping",
            Liveness::Stale => "stopped (not cleaned up)",
        }
    }
}

/// `run_dir/state.json`.
pub fn state_path(layout: &Layout, name: &str) -> PathBuf {
    layout.run_dir(name).join("state.json")
}

/// The console log of a guest.
pub fn console_log(layout: &Layout, name: &str) -> PathBuf {
    layout.run_dir(name).join("console.log")
}

/// The socket `vbuild console` connects to.
pub fn console_socket(layout: &Layout, name: &str) -> PathBuf {
    layout.run_dir(name).join("console.sock")
}

/// The socket init sends READY=1 to (the guest's /run/host/notify).
pub fn notify_socket(layout: &Layout, name: &str) -> PathBuf {
    layout.run_dir(name).join("notify")
}

/// Where the supervisor writes its own errors.
pub fn supervisor_log(layout: &Layout, name: &str) -> PathBuf {
    layout.run_dir(name).join("supervisor.log")
}

impl State {
    /// Reads the state of `name`; `None` when it has none (stopped).
    pub fn load(layout: &Layout, name: &str) -> Result<Option<State>, RuntimeError> {
        let p = state_path(layout, name);
        match std::fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| RuntimeError::Io {
                    path: p,
                    source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(p)(e)),
        }
    }

    /// Writes the state atomically.
    pub fn save(&self, layout: &Layout) -> Result<(), RuntimeError> {
        let p = state_path(layout, &self.name);
        let text = serde_json::to_vec_pretty(self).expect("state serializes");
        write_atomic(&p, &text).map_err(io(p))
    }

    /// The group the guest's processes run in and its cgroup namespace is
    /// rooted at (`vbuild/NAME/guest`), below the one carrying its limits
    /// (`cgroup`); where `exec` puts a process it runs in the guest.
    pub fn guest_cgroup(&self) -> String {
        format!("{}/guest", self.cgroup)
    }

    /// Judges whether the guest still runs.
    pub fn liveness(&self) -> Liveness {
        let init = process::is_alive(self.init_pid, self.init_start);
        let sup = process::is_alive(self.supervisor_pid, self.supervisor_start);
        match (init, sup) {
            (true, s) => Liveness::Running { supervisor: s },
            (false, true) => Liveness::Stopping,
            (false, false) => Liveness::Stale,
        }
    }
}

/// Marks that `vbuild stop` asked the guest to end, so the supervisor
/// does not take the reboot a sysvinit shutdown ends in for the guest's own.
pub fn request_stop(layout: &Layout, name: &str) {
    let _ = std::fs::write(layout.run_dir(name).join("stop-requested"), b"");
}

/// Whether `request_stop` was called for this run.
pub fn stop_requested(layout: &Layout, name: &str) -> bool {
    layout.run_dir(name).join("stop-requested").exists()
}

/// Removes the files of a stopped guest's state directory, keeping the
/// console log (and the lock, which must not vanish under a holder).
pub fn clear(layout: &Layout, name: &str) {
    for p in [
        state_path(layout, name),
        notify_socket(layout, name),
        console_socket(layout, name),
        layout.run_dir(name).join("launch.json"),
        layout.run_dir(name).join("stop-requested"),
    ] {
        let _ = std::fs::remove_file(p);
    }
}

/// An exclusive lock on a guest's state directory (flock on `lock`): held
/// by `start` until the supervisor takes over, by the supervisor for the
/// guest's whole life, and by whoever cleans up after a lost supervisor.
#[derive(Debug)]
pub struct RunLock {
    fd: OwnedFd,
}

impl RunLock {
    fn open(dir: &Path) -> Result<OwnedFd, RuntimeError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let p = dir.join("lock");
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(io(&p))?;
        Ok(OwnedFd::from(f))
    }

    /// Takes the lock of `name` without waiting; `Ok(None)` when someone
    /// holds it.
    pub fn try_take(layout: &Layout, name: &str) -> Result<Option<RunLock>, RuntimeError> {
        let fd = RunLock::open(&layout.run_dir(name))?;
        // SAFETY: flock on our descriptor.
        if unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = nix::errno::Errno::last();
            if e == nix::errno::Errno::EWOULDBLOCK {
                return Ok(None);
            }
            return Err(crate::error::sys(name, "flock")(e));
        }
        Ok(Some(RunLock { fd }))
    }

    /// Takes the lock, waiting at most `timeout` for its holder.
    pub fn take_within(
        layout: &Layout,
        name: &str,
        timeout: std::time::Duration,
    ) -> Result<RunLock, RuntimeError> {
        let until = std::time::Instant::now() + timeout;
        loop {
            if let Some(l) = RunLock::try_take(layout, name)? {
                return Ok(l);
            }
            if std::time::Instant::now() >= until {
                return Err(RuntimeError::Busy(name.to_string()));
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// The locked descriptor (to hand to the supervisor).
    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }
}

/// Seconds since the epoch.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A fresh random UUID (the kernel's), for a boot id and `container_uuid`.
pub fn new_uuid() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| format!("00000000-0000-4000-8000-{:012x}", now_secs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> State {
        let me = std::process::id() as i32;
        let start = process::stat(me).unwrap().start_ticks;
        State {
            name: name.into(),
            supervisor_pid: me,
            supervisor_start: start,
            init_pid: me,
            init_start: start,
            started_at: now_secs(),
            cgroup: format!("vbuild/{name}"),
            boot_id: new_uuid(),
            init_kind: InitKind::Other,
            userns: false,
            id_base: 0,
            ready: false,
            status_text: None,
            state_saves: 0,
        }
    }

    #[test]
    fn state_round_trips_and_recycled_pids_are_not_alive() {
        let d = tempfile::tempdir().unwrap();
        let l = Layout::new(Some(d.path()));
        assert_eq!(State::load(&l, "a").unwrap(), None);
        std::fs::create_dir_all(l.run_dir("a")).unwrap();
        let mut s = sample("a");
        s.save(&l).unwrap();
        assert_eq!(State::load(&l, "a").unwrap().unwrap(), s);
        assert_eq!(s.liveness(), Liveness::Running { supervisor: true });
        s.supervisor_start += 1;
        assert_eq!(s.liveness(), Liveness::Running { supervisor: false });
        s.init_start += 1;
        assert_eq!(s.liveness(), Liveness::Stale);
        clear(&l, "a");
        assert_eq!(State::load(&l, "a").unwrap(), None);
    }

    #[test]
    fn the_lock_is_exclusive_until_dropped() {
        let d = tempfile::tempdir().unwrap();
        let l = Layout::new(Some(d.path()));
        let a = RunLock::try_take(&l, "g").unwrap().unwrap();
        assert!(RunLock::try_take(&l, "g").unwrap().is_none());
        drop(a);
        assert!(RunLock::try_take(&l, "g").unwrap().is_some());
    }

    #[test]
    fn status_text_loses_escapes_and_control_characters_and_is_capped() {
        assert_eq!(
            clean_status_text("\u{1b}[31mred\u{1b}[0m \u{1b}]0;title\u{7}ok\u{7}\tdone\r\n"),
            "red ok done"
        );
        assert_eq!(clean_status_text("\u{1b}]2;x\u{1b}\\y\u{9b}2Jz"), "yz");
        assert_eq!(clean_status_text("Startup finished."), "Startup finished.");
        let long = "é".repeat(1000);
        assert_eq!(clean_status_text(&long).chars().count(), STATUS_TEXT_MAX);
        assert!(!clean_status_text("a\u{1b}").contains('\u{1b}'));
    }

    #[test]
    fn uuids_look_like_uuids() {
        let u = new_uuid();
        assert_eq!(u.len(), 36, "{u}");
        assert_eq!(u.matches('-').count(), 4);
    }
}
