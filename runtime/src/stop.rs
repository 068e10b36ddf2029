//! `vbuild stop NAME`: asks init to shut down with the signal its kind
//! understands (systemd SIGRTMIN+3; sysvinit SIGPWR, then SIGINT halfway;
//! anything else SIGTERM), waits up to the timeout, then kills everything
//! left in the guest's cgroup. The supervisor sees init end and cleans up;
//! when the supervisor is gone (killed), stop does the cleanup itself, so
//! state file and cgroup, not the supervisor, decide what runs.

use crate::config::InitKind;
use crate::error::RuntimeError;
use crate::name::GuestName;
use crate::paths::Layout;
use crate::state::{self, Liveness, RunLock, State};
use std::time::{Duration, Instant};
use vbuild_kernel::cgroup::{Cgroup, Hierarchy};
use vbuild_kernel::process;

/// How a stop went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Init shut down on the signal within the timeout.
    Graceful,
    /// The timeout ran out and the cgroup was killed.
    Killed,
    /// Nothing ran any more; leftovers of a lost supervisor were removed.
    CleanedUp,
    /// The supervisor was gone, so was the guest's console, and init did
    /// not finish its shutdown within `LOST_SUPERVISOR_WAIT` (systemd
    /// retries a hung-up console for about a second per status line): its
    /// processes got SIGTERM, then SIGKILL.
    KilledWithoutConsole,
    /// It was not running but waited to be started again by its restart
    /// policy: that restart was cancelled, and it stays stopped.
    RestartCancelled,
}

/// How long a guest whose supervisor is gone gets to shut down: its
/// console's pty went with the supervisor, and systemd's shutdown stalls on
/// reopening it, so waiting the full timeout only delays the same kill.
pub const LOST_SUPERVISOR_WAIT: Duration = Duration::from_secs(5);

/// How long the processes of such a guest get between SIGTERM and SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(2);

/// How long to wait for a supervisor to finish its cleanup.
const CLEANUP_WAIT: Duration = Duration::from_secs(30);

/// Removes what a guest's start made: kills whatever is left in its cgroup
/// and removes it, detaches its network and disk, clears its state and gives its
/// addresses and name back. Every step runs even if an earlier one failed; the
/// first error is returned. Idempotent.
pub(crate) fn cleanup(
    layout: &Layout,
    name: &str,
    cgroup: &str,
    net: bool,
) -> Result<(), RuntimeError> {
    cleanup_on(&crate::host::RealHost, layout, name, cgroup, net)
}

/// [`cleanup`] through `host` (the seam the unit tests use).
pub(crate) fn cleanup_on(
    host: &dyn crate::host::Host,
    layout: &Layout,
    name: &str,
    cgroup: &str,
    net: bool,
) -> Result<(), RuntimeError> {
    let mut first: Option<RuntimeError> = None;
    let mut keep = |r: Result<(), RuntimeError>| {
        if let Err(e) = r {
            first.get_or_insert(e);
        }
    };
    // The cgroup, links and tables are named after the guest host-wide: when
    // another state root runs a guest of this name now, they are its own.
    let elsewhere = host.name_held_elsewhere(layout, name);
    let ours = matches!(elsewhere, Ok(None));
    keep(elsewhere.map(drop));
    if ours {
        keep(host.cgroup_kill_and_remove(name, cgroup));
        if net {
            keep(host.network_detach(layout, name));
        }
    }
    keep(host.disk_deactivate(layout, name));
    host.state_clear(layout, name);
    keep(host.addresses_release(layout, name));
    keep(host.name_release(layout, name));
    match first {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The signals that ask `kind` of init to halt, each with when to send it
/// (after the start of a stop that may take `timeout`).
fn halt_plan(kind: InitKind, timeout: Duration) -> Vec<(i32, Duration)> {
    match kind {
        InitKind::Systemd => vec![(vbuild_kernel::signal::rtmin_plus(3), Duration::ZERO)],
        // sysvinit runs its powerfail entry on SIGPWR (LXC's halt signal).
        // Debian's stock inittab points that at a script that does not
        // exist, so SIGINT (ctrlaltdel: shutdown -r, which ends a guest
        // just the same) follows soon.
        InitKind::Sysvinit => vec![
            (libc::SIGPWR, Duration::ZERO),
            (libc::SIGINT, (timeout / 2).min(SYSV_FALLBACK)),
        ],
        InitKind::Other => vec![(libc::SIGTERM, Duration::ZERO)],
    }
}

/// How long a sysvinit guest gets to act on SIGPWR before SIGINT.
const SYSV_FALLBACK: Duration = Duration::from_secs(3);

/// Stops guest `name`, waiting at most `timeout` for a graceful shutdown.
pub fn stop(layout: &Layout, name: &GuestName, timeout: Duration) -> Result<Stopped, RuntimeError> {
    stop_with(layout, name, timeout, false)
}

/// Stops guest `name` at once (`vbuild stop --kill`): SIGKILL to its init
/// and to everything in its cgroup, no halt signal, no graceful wait. The
/// cleanup is the same as after a graceful stop.
pub fn kill(layout: &Layout, name: &GuestName) -> Result<Stopped, RuntimeError> {
    stop_with(layout, name, Duration::ZERO, true)
}

/// Stops the guest and makes sure its restart policy does not bring it
/// back: a restart waiting out its backoff is cancelled first, and a
/// supervisor that went ahead with one before it saw the stop is waited
/// for, its new boot stopped in turn.
fn stop_with(
    layout: &Layout,
    name: &GuestName,
    timeout: Duration,
    at_once: bool,
) -> Result<Stopped, RuntimeError> {
    let n = name.as_str();
    let mut cancelled = crate::restart::cancel_pending(layout, n, CLEANUP_WAIT);
    let mut outcome = None;
    for _ in 0..3 {
        match stop_once(layout, name, timeout, at_once) {
            Ok(o) => {
                outcome.get_or_insert(o);
            }
            Err(RuntimeError::NotRunning(_)) if cancelled || outcome.is_some() => {}
            Err(e) => return Err(e),
        }
        cancelled |= crate::restart::cancel_pending(layout, n, CLEANUP_WAIT);
        if State::load(layout, n)?.is_none() {
            break;
        }
    }
    Ok(outcome.unwrap_or(Stopped::RestartCancelled))
}

fn stop_once(
    layout: &Layout,
    name: &GuestName,
    timeout: Duration,
    at_once: bool,
) -> Result<Stopped, RuntimeError> {
    let n = name.as_str();
    let Some(st) = State::load(layout, n)? else {
        if !layout.guest_config(n).is_file() {
            return Err(RuntimeError::NotFound(n.to_string()));
        }
        return Err(RuntimeError::NotRunning(n.to_string()));
    };
    let supervisor = match st.liveness() {
        Liveness::Running { supervisor } => supervisor,
        Liveness::Stopping => {
            // Init ended on its own just now: its supervisor may be about
            // to restart it by policy, which this stop takes back.
            wait_supervisor_cancelling(layout, &st);
            return after_supervisor(layout, &st, Stopped::CleanedUp);
        }
        Liveness::Stale => {
            let _l = RunLock::take_within(layout, n, Duration::from_secs(5))?;
            cleanup(layout, n, &st.cgroup, true)?;
            return Ok(Stopped::CleanedUp);
        }
    };
    // A pidfd pins the process: no signal can reach a recycled pid.
    let pidfd = process::pidfd_open(st.init_pid)
        .ok()
        .filter(|_| process::is_alive(st.init_pid, st.init_start));
    let mut outcome = Stopped::Graceful;
    state::request_stop(layout, n);
    if let (Some(fd), true) = (&pidfd, at_once) {
        outcome = Stopped::Killed;
        // Init first (through its pidfd: never a recycled pid), then the
        // rest of the cgroup, so nothing gets to act on init's end.
        let _ = process::pidfd_signal(fd, libc::SIGKILL);
        kill_cgroup(n, &st.cgroup)?;
        let _ = process::wait_pidfd(fd, Some(Duration::from_secs(10)));
    } else if let Some(fd) = &pidfd {
        let wait = if supervisor {
            timeout
        } else {
            timeout.min(LOST_SUPERVISOR_WAIT)
        };
        let ended = ask_to_halt(&crate::host::RealHost, fd, st.init_kind, wait);
        if !ended && !supervisor {
            // Give services a SIGTERM of their own before the kill.
            outcome = Stopped::KilledWithoutConsole;
            if term_cgroup(n, &st.cgroup)? > 0 {
                let _ = process::wait_pidfd(fd, Some(TERM_GRACE));
            }
            kill_cgroup(n, &st.cgroup)?;
            let _ = process::wait_pidfd(fd, Some(Duration::from_secs(10)));
        } else if !ended {
            outcome = Stopped::Killed;
            kill_cgroup(n, &st.cgroup)?;
            let _ = process::wait_pidfd(fd, Some(Duration::from_secs(10)));
        }
    }
    if supervisor {
        wait_supervisor(&st);
        return after_supervisor(layout, &st, outcome);
    }
    // No supervisor: the cleanup is ours.
    let _l = RunLock::take_within(layout, n, Duration::from_secs(5))?;
    cleanup(layout, n, &st.cgroup, true)?;
    Ok(outcome)
}

/// How often the current halt signal is sent again: an init that has not
/// installed its handlers yet (a guest stopped right after start) ignores
/// signals from outside its PID namespace, so a single one can be lost.
const RESEND: Duration = Duration::from_secs(1);

/// Sends the halt signals of `kind` on schedule (repeating the latest every
/// `RESEND`) until init ends or `timeout` runs out; true when it ended.
fn ask_to_halt(
    host: &dyn crate::host::Host,
    fd: &std::os::fd::OwnedFd,
    kind: InitKind,
    timeout: Duration,
) -> bool {
    let plan = halt_plan(kind, timeout);
    let start = Instant::now();
    let mut next = 0;
    let mut last: Option<(i32, Instant)> = None;
    loop {
        let now = start.elapsed();
        while next < plan.len() && plan[next].1 <= now {
            let _ = host.pidfd_signal(fd, plan[next].0);
            last = Some((plan[next].0, Instant::now()));
            next += 1;
        }
        if let Some((sig, at)) = last {
            if at.elapsed() >= RESEND {
                let _ = host.pidfd_signal(fd, sig);
                last = Some((sig, Instant::now()));
            }
        }
        if now >= timeout {
            return false;
        }
        let mut pause = (timeout - now).min(RESEND);
        if let Some((_, at)) = plan.get(next) {
            pause = pause.min(at.saturating_sub(now));
        }
        if host.pidfd_wait(fd, pause).unwrap_or(false) {
            return true;
        }
    }
}

/// After the supervisor exited: if it could not finish (its state file is
/// still there), finish its cleanup.
fn after_supervisor(
    layout: &Layout,
    st: &State,
    outcome: Stopped,
) -> Result<Stopped, RuntimeError> {
    if State::load(layout, &st.name)?.is_some() {
        let _l = RunLock::take_within(layout, &st.name, Duration::from_secs(5))?;
        cleanup(layout, &st.name, &st.cgroup, true)?;
    }
    Ok(outcome)
}

/// SIGTERM to everything in the guest's cgroup; how many got it.
fn term_cgroup(name: &str, rel: &str) -> Result<usize, RuntimeError> {
    let cg_err = |source| RuntimeError::Cgroup {
        name: name.to_string(),
        source,
    };
    let h = Hierarchy::detect().map_err(cg_err)?;
    match Cgroup::open(&h, rel).map_err(cg_err)? {
        Some(cg) => cg
            .signal_all(nix::sys::signal::Signal::SIGTERM)
            .map_err(cg_err),
        None => Ok(0),
    }
}

fn kill_cgroup(name: &str, rel: &str) -> Result<(), RuntimeError> {
    let cg_err = |source| RuntimeError::Cgroup {
        name: name.to_string(),
        source,
    };
    let h = Hierarchy::detect().map_err(cg_err)?;
    if let Some(cg) = Cgroup::open(&h, rel).map_err(cg_err)? {
        cg.kill_all().map_err(cg_err)?;
    }
    Ok(())
}

/// Waits for the supervisor of `st` to exit, cancelling any restart it
/// sets up meanwhile (it checks again after its backoff).
fn wait_supervisor_cancelling(layout: &Layout, st: &State) {
    let until = Instant::now() + CLEANUP_WAIT;
    while process::is_alive(st.supervisor_pid, st.supervisor_start) && Instant::now() < until {
        let mut rec = crate::restart::RestartRecord::load(layout, &st.name);
        if rec
            .pending
            .as_ref()
            .is_some_and(|p| p.supervisor_pid == st.supervisor_pid)
        {
            rec.pending = None;
            rec.gave_up = Some("restart cancelled by `vbuild stop`".into());
            let _ = rec.save(layout, &st.name);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits for the supervisor of `st` to exit (it cleans up first).
fn wait_supervisor(st: &State) {
    if let Ok(fd) = process::pidfd_open(st.supervisor_pid) {
        if process::is_alive(st.supervisor_pid, st.supervisor_start) {
            let _ = process::wait_pidfd(&fd, Some(CLEANUP_WAIT));
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn each_init_gets_its_halt_signal() {
        let t = Duration::from_secs(30);
        assert_eq!(
            halt_plan(InitKind::Systemd, t),
            vec![(libc::SIGRTMIN() + 3, Duration::ZERO)]
        );
        assert_eq!(
            halt_plan(InitKind::Sysvinit, t),
            vec![
                (libc::SIGPWR, Duration::ZERO),
                (libc::SIGINT, SYSV_FALLBACK)
            ]
        );
        let short = halt_plan(InitKind::Sysvinit, Duration::from_secs(2));
        assert_eq!(short[1].1, Duration::from_secs(1));
        assert_eq!(
            halt_plan(InitKind::Other, t),
            vec![(libc::SIGTERM, Duration::ZERO)]
        );
    }

    #[test]
    fn stopping_an_unknown_or_stopped_guest_is_refused_by_name() {
        let d = tempfile::tempdir().unwrap();
        let l = Layout::new(Some(d.path()));
        let g = GuestName::parse("nobody").unwrap();
        let e = stop(&l, &g, Duration::from_secs(1)).unwrap_err();
        assert!(matches!(e, RuntimeError::NotFound(_)), "{e}");
        std::fs::create_dir_all(l.guest_dir("nobody")).unwrap();
        std::fs::write(l.guest_config("nobody"), "").unwrap();
        let e = stop(&l, &g, Duration::from_secs(1)).unwrap_err();
        assert!(e.to_string().contains("is not running"), "{e}");
    }

    pub(crate) mod seam {
        use super::super::cleanup_on;
        use crate::config::InitKind;
        use crate::host::fake::RecordingHost;
        use crate::paths::Layout;
        use std::time::Duration;

        fn layout() -> Layout {
            Layout::new(Some(std::path::Path::new("/nonexistent/vbuild-test")))
        }

        /// Cleanup's calls, in order (start's tests expect them too).
        pub(crate) const ORDER: [&str; 7] = [
            "held_elsewhere",
            "cgroup_kill_and_remove",
            "network_detach",
            "disk_deactivate",
            "state_clear",
            "addresses_release",
            "name_release",
        ];

        #[test]
        fn cleanup_undoes_in_order_and_is_idempotent() {
            let h = RecordingHost::with(&["cgroup", "net", "disk", "state", "addresses", "claim"]);
            cleanup_on(&h, &layout(), "g", "vbuild/g", true).unwrap();
            assert_eq!(*h.calls.borrow(), ORDER);
            assert!(h.present.borrow().is_empty(), "everything was removed");
            // Again, with nothing left: the same steps, all fine.
            h.calls.borrow_mut().clear();
            cleanup_on(&h, &layout(), "g", "vbuild/g", true).unwrap();
            assert_eq!(*h.calls.borrow(), ORDER);
        }

        #[test]
        fn a_failing_step_does_not_stop_the_others_and_is_reported() {
            for failing in &ORDER[1..] {
                if *failing == "state_clear" {
                    continue; // cannot fail: it only removes files
                }
                let h =
                    RecordingHost::with(&["cgroup", "net", "disk", "state", "addresses", "claim"]);
                h.fail.borrow_mut().insert(failing.to_string());
                let e = cleanup_on(&h, &layout(), "g", "vbuild/g", true).unwrap_err();
                assert!(e.to_string().contains(failing), "{failing}: {e}");
                assert_eq!(*h.calls.borrow(), ORDER, "{failing}");
                let left: Vec<String> = h.present.borrow().iter().cloned().collect();
                assert_eq!(left.len(), 1, "only the failed resource is left: {left:?}");
                // A second cleanup finishes the job.
                cleanup_on(&h, &layout(), "g", "vbuild/g", true).unwrap();
                assert!(h.present.borrow().is_empty(), "{failing}");
            }
        }

        #[test]
        fn another_roots_guest_keeps_its_cgroup_and_links() {
            let mut h =
                RecordingHost::with(&["cgroup", "net", "disk", "state", "addresses", "claim"]);
            h.elsewhere = Some("/srv/a".into());
            cleanup_on(&h, &layout(), "g", "vbuild/g", true).unwrap();
            assert_eq!(
                *h.calls.borrow(),
                [
                    "held_elsewhere",
                    "disk_deactivate",
                    "state_clear",
                    "addresses_release",
                    "name_release"
                ]
            );
            assert!(h.present.borrow().contains("cgroup") && h.present.borrow().contains("net"));
        }

        /// Any descriptor will do: the fake never uses it.
        fn some_fd() -> std::os::fd::OwnedFd {
            std::fs::File::open("/dev/null").unwrap().into()
        }

        #[test]
        fn systemd_gets_one_signal_and_a_quick_init_is_not_killed() {
            let h = RecordingHost {
                init_ends_after: Some(1),
                ..RecordingHost::default()
            };
            let ended =
                super::ask_to_halt(&h, &some_fd(), InitKind::Systemd, Duration::from_secs(5));
            assert!(ended);
            let sigs: Vec<i32> = h.signals.borrow().iter().map(|s| s.0).collect();
            assert_eq!(sigs, [libc::SIGRTMIN() + 3]);
        }

        #[test]
        fn a_deaf_sysvinit_gets_sigpwr_then_sigint_resent_until_the_timeout() {
            let h = RecordingHost::default();
            let t = Duration::from_millis(2500);
            let ended = super::ask_to_halt(&h, &some_fd(), InitKind::Sysvinit, t);
            assert!(!ended, "an init that never ends is reported as not ended");
            let sigs = h.signals.borrow();
            assert_eq!(sigs[0].0, libc::SIGPWR, "{sigs:?}");
            // SIGPWR (resent every RESEND) until half the timeout, then
            // SIGINT, resent until the timeout.
            let first_int = sigs.iter().position(|s| s.0 == libc::SIGINT).unwrap();
            assert!(
                sigs[..first_int].iter().all(|s| s.0 == libc::SIGPWR),
                "{sigs:?}"
            );
            assert!(
                sigs[first_int..].iter().all(|s| s.0 == libc::SIGINT),
                "{sigs:?}"
            );
            let at = sigs[first_int].1;
            assert!(
                at >= t / 2 && at < t / 2 + Duration::from_millis(300),
                "{sigs:?}"
            );
            assert!(sigs.len() > first_int + 1, "SIGINT resent: {sigs:?}");
            assert!(sigs.last().unwrap().1 <= t, "{sigs:?}");
        }

        #[test]
        fn loopback_guests_have_no_network_to_detach() {
            let h = RecordingHost::default();
            cleanup_on(&h, &layout(), "g", "vbuild/g", false).unwrap();
            assert!(!h.calls.borrow().iter().any(|c| c == "network_detach"));
        }
    }
}
