//! The commands on an existing container: start, kill, delete, pause,
//! resume, ps, update, and the hooks that run around them.

use crate::cgroups;
use crate::error::{io, sys, OciError};
use crate::spec::{Hook, Resources};
use crate::state::{Root, Saved, Status};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// How long start waits for the created process to take the fifo.
const START_WAIT: Duration = Duration::from_secs(10);

fn wrong_state(s: &Saved, status: Status, what: &str) -> OciError {
    OciError::State {
        id: s.id.clone(),
        status: status.as_str().into(),
        what: what.into(),
    }
}

/// Runs `hooks` with the state on stdin; the first failure is returned.
pub fn run_hooks(kind: &str, hooks: &[Hook], state: &serde_json::Value) -> Result<(), OciError> {
    for h in hooks {
        let mut cmd = std::process::Command::new(&h.path);
        if let Some((first, rest)) = h.args.split_first() {
            use std::os::unix::process::CommandExt;
            cmd.arg0(first).args(rest);
        }
        cmd.env_clear();
        for e in &h.env {
            if let Some((k, v)) = e.split_once('=') {
                cmd.env(k, v);
            }
        }
        cmd.stdin(std::process::Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| OciError::Config(format!("hooks.{kind}: cannot run {}: {e}", h.path)))?;
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(state.to_string().as_bytes());
        }
        // The hook is waited for by pid from here on (std's Child is
        // dropped without a wait).
        crate::hooks::wait_hook(kind, h, child.id() as i32)?;
    }
    Ok(())
}

/// Releases a created container's program.
pub fn start(root: &Root, id: &str) -> Result<(), OciError> {
    let s = root.load(id)?;
    let status = root.status(&s);
    if status != Status::Created {
        return Err(wrong_state(
            &s,
            status,
            "only a created container can be started",
        ));
    }
    // startContainer hooks: in the container, before its program; a
    // failure stops the container.
    for h in &s.start_container {
        if let Err(e) =
            crate::hooks::run_in_container("startContainer", h, s.pid, &root.state_json(&s))
        {
            // SAFETY: kill with integer arguments.
            unsafe { libc::kill(s.pid, libc::SIGKILL) };
            return Err(e);
        }
    }
    let fifo = root.fifo(id);
    let f = nix::fcntl::open(
        &fifo,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(sys(format!("open {}", fifo.display())))?;
    // SAFETY: `open` returned a fresh descriptor we own.
    let f = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(f) };
    let until = Instant::now() + START_WAIT;
    loop {
        let mut b = [0u8; 1];
        match nix::unistd::read(f.as_raw_fd(), &mut b) {
            Ok(1) => break,
            Ok(_) | Err(nix::errno::Errno::EAGAIN) => {}
            Err(e) => return Err(sys("read the start fifo")(e)),
        }
        if !vbuild_kernel::process::is_alive(s.pid, s.start_ticks) {
            return Err(OciError::State {
                id: id.into(),
                status: "stopped".into(),
                what: "its process ended before it was started".into(),
            });
        }
        if Instant::now() > until {
            return Err(OciError::Sys {
                what: format!("container {id}: its process did not take the start fifo"),
                errno: nix::errno::Errno::ETIMEDOUT,
            });
        }
        let mut pfd = [nix::poll::PollFd::new(
            std::os::fd::AsFd::as_fd(&f),
            nix::poll::PollFlags::POLLIN,
        )];
        let _ = nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(20u16));
    }
    std::fs::remove_file(&fifo).map_err(io(&fifo))?;
    // Poststart failures do not stop the container (the spec: warn).
    if let Err(e) = run_hooks("poststart", &s.poststart, &root.state_json(&s)) {
        eprintln!("vbuild-runc: warning: {e}");
    }
    Ok(())
}

/// A signal by name (`TERM`, `SIGTERM`, `sigkill`) or number.
pub fn parse_signal(s: &str) -> Result<i32, OciError> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
    }
    let up = s.to_ascii_uppercase();
    let bare = up.strip_prefix("SIG").unwrap_or(&up);
    const NAMES: [(&str, i32); 31] = [
        ("HUP", 1),
        ("INT", 2),
        ("QUIT", 3),
        ("ILL", 4),
        ("TRAP", 5),
        ("ABRT", 6),
        ("IOT", 6),
        ("BUS", 7),
        ("FPE", 8),
        ("KILL", 9),
        ("USR1", 10),
        ("SEGV", 11),
        ("USR2", 12),
        ("PIPE", 13),
        ("ALRM", 14),
        ("TERM", 15),
        ("STKFLT", 16),
        ("CHLD", 17),
        ("CONT", 18),
        ("STOP", 19),
        ("TSTP", 20),
        ("TTIN", 21),
        ("TTOU", 22),
        ("URG", 23),
        ("XCPU", 24),
        ("XFSZ", 25),
        ("VTALRM", 26),
        ("PROF", 27),
        ("WINCH", 28),
        ("IO", 29),
        ("PWR", 30),
    ];
    if let Some((_, n)) = NAMES.iter().find(|(n, _)| *n == bare) {
        return Ok(*n);
    }
    if bare == "SYS" {
        return Ok(31);
    }
    if let Some(rest) = bare.strip_prefix("RTMIN") {
        let off: i32 = if rest.is_empty() {
            0
        } else {
            rest.trim_start_matches('+').parse().unwrap_or(-1)
        };
        if (0..=30).contains(&off) {
            return Ok(libc::SIGRTMIN() + off);
        }
    }
    Err(OciError::Usage(format!(
        "{s:?} is not a signal (a name like TERM or a number)"
    )))
}

/// Sends `sig` to the container's process (or, with `all`, to every
/// process of its cgroup).
pub fn kill(root: &Root, id: &str, sig: i32, all: bool) -> Result<(), OciError> {
    let s = root.load(id)?;
    let status = root.status(&s);
    if all {
        if let Some(cg) = cgroups::open(&s.cgroup) {
            for pid in cg.pids()? {
                // SAFETY: kill with integer arguments.
                unsafe { libc::kill(pid, sig) };
            }
            if sig == libc::SIGKILL {
                cg.thaw_all();
            }
        }
        return Ok(());
    }
    if status == Status::Stopped {
        return Err(wrong_state(&s, status, "there is no process to signal"));
    }
    // SAFETY: kill with integer arguments.
    if unsafe { libc::kill(s.pid, sig) } != 0 {
        return Err(sys(format!("signal {sig} to process {}", s.pid))(
            nix::errno::Errno::last(),
        ));
    }
    if sig == libc::SIGKILL {
        if let Some(cg) = cgroups::open(&s.cgroup) {
            cg.thaw_all();
        }
    }
    Ok(())
}

/// Removes the container: its process (with `force`, or when it never
/// started), its cgroup and its state directory; then the poststop hooks.
pub fn delete(root: &Root, id: &str, force: bool) -> Result<(), OciError> {
    let s = match root.load(id) {
        Ok(s) => s,
        Err(OciError::NotFound(_)) if force => {
            // A state directory left by a create that died midway.
            let _ = std::fs::remove_dir_all(root.dir(id));
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let status = root.status(&s);
    if matches!(status, Status::Running | Status::Paused) && !force {
        return Err(wrong_state(
            &s,
            status,
            "stop it first (kill), or delete --force",
        ));
    }
    if status != Status::Stopped {
        // SAFETY: kill with integer arguments.
        unsafe { libc::kill(s.pid, libc::SIGKILL) };
    }
    if let Some(cg) = cgroups::open(&s.cgroup) {
        cg.kill_all()?;
        cgroups::remove(&cg, s.cgroup_made.as_deref())?;
    }
    let until = Instant::now() + Duration::from_secs(5);
    while vbuild_kernel::process::is_alive(s.pid, s.start_ticks) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(2));
    }
    let state = root.state_json(&s);
    let dir = root.dir(id);
    std::fs::remove_dir_all(&dir).map_err(io(&dir))?;
    // Poststop failures are warnings too: the container is gone.
    if let Err(e) = run_hooks("poststop", &s.poststop, &state) {
        eprintln!("vbuild-runc: warning: {e}");
    }
    Ok(())
}

/// Freezes (`on`) or thaws the container's processes.
pub fn pause(root: &Root, id: &str, on: bool) -> Result<(), OciError> {
    let s = root.load(id)?;
    let status = root.status(&s);
    let want = if on { Status::Running } else { Status::Paused };
    if status != want {
        return Err(wrong_state(
            &s,
            status,
            if on {
                "only a running container can be paused"
            } else {
                "only a paused container can be resumed"
            },
        ));
    }
    let cg = cgroups::open(&s.cgroup)
        .ok_or_else(|| OciError::NotFound(format!("{id} (its cgroup {})", s.cgroup)))?;
    if !cg.set_frozen(on) {
        return Err(OciError::Unsupported(
            "pause: this host has no cgroup freezer (mount the v1 freezer or use cgroup v2)".into(),
        ));
    }
    Ok(())
}

/// The pids (host namespace) of the container's processes.
pub fn ps(root: &Root, id: &str) -> Result<Vec<i32>, OciError> {
    let s = root.load(id)?;
    let mut pids = match cgroups::open(&s.cgroup) {
        Some(cg) => cg.pids()?,
        None => Vec::new(),
    };
    pids.sort_unstable();
    Ok(pids)
}

/// Applies new limits (`--resources` JSON) to a container's cgroup.
pub fn update(root: &Root, id: &str, r: &Resources) -> Result<(), OciError> {
    let s = root.load(id)?;
    let status = root.status(&s);
    if status == Status::Stopped {
        return Err(wrong_state(
            &s,
            status,
            "a stopped container cannot be updated",
        ));
    }
    if !r.devices.is_empty() {
        return Err(OciError::Unsupported(
            "update: device rules cannot change after create".into(),
        ));
    }
    let cg = cgroups::open(&s.cgroup)
        .ok_or_else(|| OciError::NotFound(format!("{id} (its cgroup {})", s.cgroup)))?;
    cgroups::apply(&cg, r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_by_name_and_number() {
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert_eq!(parse_signal("TERM").unwrap(), 15);
        assert_eq!(parse_signal("SIGKILL").unwrap(), 9);
        assert_eq!(parse_signal("sigusr1").unwrap(), 10);
        assert_eq!(parse_signal("RTMIN+3").unwrap(), libc::SIGRTMIN() + 3);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("0").is_err());
    }
}
