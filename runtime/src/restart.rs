//! A guest's restart policy (`--restart no|on-failure|always`) and what
//! its supervisor keeps about restarts: `run_dir/restart.json` (the
//! restarts so far, the last exit, a restart waiting out its backoff, or
//! why the guest was left stopped). The file outlives each boot's state
//! (`state::clear` keeps it); a start by hand begins a new record.
//!
//! The policy applies only when init ends on its own: never after `vbuild
//! stop` (the stop request is checked first), and a guest's own reboot is
//! the reboot path's business. At most [`LIMIT`] restarts fall within any
//! [`WINDOW`]; the next exit within it leaves the guest stopped, and
//! `vbuild status` says why.

use crate::error::{io, RuntimeError};
use crate::paths::Layout;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;
use vbuild_kernel::process;

/// When a guest whose init ended on its own is started again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Never (the default).
    #[default]
    No,
    /// When init exited with a status other than 0, or was killed by a
    /// signal (a halt from inside, `poweroff`, is not a failure).
    OnFailure,
    /// Whenever init ends on its own, status 0 and halts included.
    Always,
}

impl RestartPolicy {
    /// The word `guest.toml`, `--restart` and `status` use.
    pub fn as_str(self) -> &'static str {
        match self {
            RestartPolicy::No => "no",
            RestartPolicy::OnFailure => "on-failure",
            RestartPolicy::Always => "always",
        }
    }

    /// `self == No`, for `skip_serializing_if` (old guest.toml files stay
    /// as they were).
    pub fn is_no(&self) -> bool {
        *self == RestartPolicy::No
    }
}

impl std::fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for RestartPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "no" => Ok(RestartPolicy::No),
            "on-failure" => Ok(RestartPolicy::OnFailure),
            "always" => Ok(RestartPolicy::Always),
            "unless-stopped" => Err(
                "restart policy \"unless-stopped\": use `always` (vbuild never restarts a guest stopped by `vbuild stop`)"
                    .into(),
            ),
            _ if s.starts_with("on-failure:") => Err(format!(
                "restart policy {s:?}: a retry count is not supported; use `on-failure` (at most {LIMIT} restarts in {} s)",
                WINDOW.as_secs()
            )),
            _ => Err(format!(
                "restart policy {s:?} is not one of no, on-failure, always (e.g. --restart on-failure)"
            )),
        }
    }
}

/// Restarts allowed within [`WINDOW`]; the next exit leaves the guest stopped.
pub const LIMIT: usize = 5;
/// See [`LIMIT`].
pub const WINDOW: Duration = Duration::from_secs(60);
/// The first restart's delay; each further one within the window doubles it.
pub const BACKOFF_FIRST: Duration = Duration::from_millis(250);
/// The longest delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// How init ended, from its wait status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this status.
    Code(i32),
    /// A signal ended it.
    Signal(i32),
}

impl Exit {
    /// From a `waitpid` status.
    pub fn from_wait_status(status: i32) -> Exit {
        if libc::WIFSIGNALED(status) {
            Exit::Signal(libc::WTERMSIG(status))
        } else {
            Exit::Code(process::exit_code(status))
        }
    }

    /// Whether `on-failure` counts it as a failure: a status other than 0
    /// or a signal, except SIGINT (in a PID namespace reboot(2) ends init
    /// with SIGINT for a halt or power-off: the guest asked to stop).
    pub fn is_failure(self) -> bool {
        match self {
            Exit::Code(c) => c != 0,
            Exit::Signal(s) => s != libc::SIGINT,
        }
    }

    /// For `status` and the console log.
    pub fn describe(self) -> String {
        match self {
            Exit::Code(c) => format!("init exited with status {c}"),
            Exit::Signal(libc::SIGINT) => "the guest halted".into(),
            Exit::Signal(s) => format!("init was killed by {}", vbuild_kernel::signal::name(s)),
        }
    }
}

/// A restart waiting out its backoff in the supervisor of the boot that ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// That supervisor's pid and start time.
    pub supervisor_pid: i32,
    /// See `supervisor_pid`.
    pub supervisor_start: u64,
    /// When it starts the guest again, milliseconds since the epoch.
    pub due_ms: u64,
}

impl Pending {
    /// The pending restart of the calling process (a supervisor).
    pub fn mine(due_ms: u64) -> Pending {
        let me = std::process::id() as i32;
        Pending {
            supervisor_pid: me,
            supervisor_start: process::stat(me).map(|s| s.start_ticks).unwrap_or(0),
            due_ms,
        }
    }

    /// Its supervisor still runs (it is not a recycled pid).
    pub fn is_alive(&self) -> bool {
        process::is_alive(self.supervisor_pid, self.supervisor_start)
    }
}

/// `run_dir/restart.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartRecord {
    /// Restarts by the policy since the guest was last started by hand.
    #[serde(default)]
    pub count: u32,
    /// When each recent restart happened, milliseconds since the epoch
    /// (only those within [`WINDOW`] are kept).
    #[serde(default)]
    pub recent_ms: Vec<u64>,
    /// How init last ended on its own ([`Exit::describe`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_exit: Option<String>,
    /// Its exit status, when it exited (not killed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_exit_code: Option<i32>,
    /// A restart waits out its backoff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<Pending>,
    /// Why the policy left the guest stopped (the limit, a failed start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gave_up: Option<String>,
}

/// The record's file.
pub fn record_path(layout: &Layout, name: &str) -> PathBuf {
    layout.run_dir(name).join("restart.json")
}

impl RestartRecord {
    /// The record of `name` (empty when there is none or it is unreadable:
    /// it only ever informs, and a bad one must not block a start).
    pub fn load(layout: &Layout, name: &str) -> RestartRecord {
        std::fs::read(record_path(layout, name))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Writes it atomically.
    pub fn save(&self, layout: &Layout, name: &str) -> Result<(), RuntimeError> {
        let p = record_path(layout, name);
        let text = serde_json::to_vec_pretty(self).expect("record serializes");
        crate::fsutil::write_atomic(&p, &text).map_err(io(p))
    }

    /// A restart that still waits (its supervisor runs).
    pub fn live_pending(&self) -> Option<&Pending> {
        self.pending.as_ref().filter(|p| p.is_alive())
    }
}

/// Forgets the record of `name`: a start by hand begins a new count, and a
/// restart still waiting sees that it is no longer wanted.
pub fn reset(layout: &Layout, name: &str) {
    let _ = std::fs::remove_file(record_path(layout, name));
}

/// What the supervisor does after init ended on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nothing: the policy does not restart this exit.
    Stay,
    /// Start the guest again after this delay.
    Restart(Duration),
    /// The limit is reached: stay stopped, for this reason.
    GiveUp(String),
}

/// The delay before the restart that follows `recent` restarts within the
/// window: [`BACKOFF_FIRST`] doubled each time, at most [`BACKOFF_MAX`].
pub fn backoff(recent: usize) -> Duration {
    let d = BACKOFF_FIRST.saturating_mul(1u32 << recent.min(16));
    d.min(BACKOFF_MAX)
}

/// Decides what follows `exit` under `policy`, given the restarts in
/// `rec` (whose window is pruned to `now_ms`).
pub fn decide(policy: RestartPolicy, exit: Exit, rec: &mut RestartRecord, now_ms: u64) -> Decision {
    let wanted = match policy {
        RestartPolicy::No => false,
        RestartPolicy::OnFailure => exit.is_failure(),
        RestartPolicy::Always => true,
    };
    if !wanted {
        return Decision::Stay;
    }
    let window = WINDOW.as_millis() as u64;
    rec.recent_ms
        .retain(|t| now_ms.saturating_sub(*t) < window && *t <= now_ms);
    if rec.recent_ms.len() >= LIMIT {
        return Decision::GiveUp(format!(
            "restart limit reached: {LIMIT} restarts within {} s ({}); left stopped (start it with `vbuild start`)",
            WINDOW.as_secs(),
            exit.describe()
        ));
    }
    Decision::Restart(backoff(rec.recent_ms.len()))
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Cancels a restart of `name` that waits out its backoff and waits (at
/// most `wait`) for the supervisor that would make it to end; true when
/// there was one. If that supervisor had already gone ahead, the guest
/// runs again once this returns, and the caller stops it as usual.
pub fn cancel_pending(layout: &Layout, name: &str, wait: Duration) -> bool {
    let mut rec = RestartRecord::load(layout, name);
    let Some(p) = rec.live_pending().cloned() else {
        return false;
    };
    rec.pending = None;
    rec.gave_up = Some("restart cancelled by `vbuild stop`".into());
    let _ = rec.save(layout, name);
    if let Ok(fd) = process::pidfd_open(p.supervisor_pid) {
        if p.is_alive() {
            let _ = process::wait_pidfd(&fd, Some(wait));
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_and_bad_ones_are_refused_with_the_fix() {
        for p in [
            RestartPolicy::No,
            RestartPolicy::OnFailure,
            RestartPolicy::Always,
        ] {
            assert_eq!(p.as_str().parse::<RestartPolicy>().unwrap(), p);
        }
        let e = "sometimes".parse::<RestartPolicy>().unwrap_err();
        assert!(e.contains("no, on-failure, always"), "{e}");
        let e = "unless-stopped".parse::<RestartPolicy>().unwrap_err();
        assert!(e.contains("use `always`"), "{e}");
        let e = "on-failure:3".parse::<RestartPolicy>().unwrap_err();
        assert!(e.contains("use `on-failure`"), "{e}");
    }

    #[test]
    fn on_failure_restarts_failures_only_and_always_restarts_every_exit() {
        let mut r = RestartRecord::default();
        let fail = Exit::Code(1);
        let ok = Exit::Code(0);
        let killed = Exit::Signal(libc::SIGKILL);
        let halted = Exit::Signal(libc::SIGINT);
        assert_eq!(decide(RestartPolicy::No, fail, &mut r, 0), Decision::Stay);
        let on = RestartPolicy::OnFailure;
        assert!(matches!(decide(on, fail, &mut r, 0), Decision::Restart(_)));
        assert!(matches!(
            decide(on, killed, &mut r, 0),
            Decision::Restart(_)
        ));
        assert_eq!(decide(on, ok, &mut r, 0), Decision::Stay);
        assert_eq!(decide(on, halted, &mut r, 0), Decision::Stay);
        let always = RestartPolicy::Always;
        for e in [ok, halted, fail] {
            assert!(matches!(decide(always, e, &mut r, 0), Decision::Restart(_)));
        }
    }

    #[test]
    fn the_backoff_doubles_and_the_limit_holds_within_the_window() {
        assert_eq!(backoff(0), BACKOFF_FIRST);
        assert_eq!(backoff(1), BACKOFF_FIRST * 2);
        assert_eq!(backoff(40), BACKOFF_MAX);
        let mut r = RestartRecord::default();
        let t0 = 1_000_000u64;
        for i in 0..LIMIT {
            let now = t0 + i as u64 * 1000;
            assert_eq!(
                decide(RestartPolicy::Always, Exit::Code(0), &mut r, now),
                Decision::Restart(backoff(i))
            );
            r.recent_ms.push(now);
        }
        let now = t0 + 10_000;
        match decide(RestartPolicy::Always, Exit::Code(3), &mut r, now) {
            Decision::GiveUp(why) => {
                assert!(why.contains("restart limit reached"), "{why}");
                assert!(why.contains("status 3"), "{why}");
            }
            d => panic!("{d:?}"),
        }
        // Once the first restarts are older than the window, one more may go.
        let later = t0 + WINDOW.as_millis() as u64 + 500;
        assert!(matches!(
            decide(RestartPolicy::Always, Exit::Code(0), &mut r, later),
            Decision::Restart(_)
        ));
        assert_eq!(r.recent_ms.len(), LIMIT - 1);
    }

    #[test]
    fn exits_are_described_as_the_console_log_says_them() {
        assert_eq!(Exit::Code(1).describe(), "init exited with status 1");
        assert!(Exit::Signal(libc::SIGKILL).describe().contains("SIGKILL"));
        assert_eq!(Exit::Signal(libc::SIGINT).describe(), "the guest halted");
    }

    #[test]
    fn the_record_round_trips_and_a_missing_or_bad_one_is_empty() {
        let d = tempfile::tempdir().unwrap();
        let l = Layout::new(Some(d.path()));
        assert_eq!(RestartRecord::load(&l, "g"), RestartRecord::default());
        std::fs::create_dir_all(l.run_dir("g")).unwrap();
        let r = RestartRecord {
            count: 2,
            recent_ms: vec![1, 2],
            last_exit: Some(Exit::Code(1).describe()),
            last_exit_code: Some(1),
            pending: Some(Pending::mine(5)),
            gave_up: None,
        };
        r.save(&l, "g").unwrap();
        assert_eq!(RestartRecord::load(&l, "g"), r);
        // This process runs: the pending restart is live.
        assert!(RestartRecord::load(&l, "g").live_pending().is_some());
        std::fs::write(record_path(&l, "g"), "{").unwrap();
        assert_eq!(RestartRecord::load(&l, "g"), RestartRecord::default());
        reset(&l, "g");
        assert!(!record_path(&l, "g").exists());
    }

    #[test]
    fn a_stop_cancels_a_waiting_restart_and_waits_for_its_supervisor() {
        let d = tempfile::tempdir().unwrap();
        let l = Layout::new(Some(d.path()));
        std::fs::create_dir_all(l.run_dir("g")).unwrap();
        assert!(
            !cancel_pending(&l, "g", Duration::from_secs(1)),
            "nothing waits"
        );
        // A stand-in for the supervisor that waits out a backoff.
        let mut sup = std::process::Command::new("sleep")
            .arg("1")
            .spawn()
            .unwrap();
        let pid = sup.id() as i32;
        let rec = RestartRecord {
            pending: Some(Pending {
                supervisor_pid: pid,
                supervisor_start: process::stat(pid).unwrap().start_ticks,
                due_ms: now_ms(),
            }),
            ..Default::default()
        };
        rec.save(&l, "g").unwrap();
        assert!(RestartRecord::load(&l, "g").live_pending().is_some());
        assert!(cancel_pending(&l, "g", Duration::from_secs(60)));
        // It returned once that process ended (a zombie until reaped here).
        assert!(!process::is_alive(
            pid,
            rec.pending.as_ref().unwrap().supervisor_start
        ));
        sup.wait().unwrap();
        let after = RestartRecord::load(&l, "g");
        assert_eq!(after.pending, None);
        assert!(after
            .gave_up
            .unwrap()
            .contains("cancelled by `vbuild stop`"));
        // A pending restart whose supervisor is gone is not live.
        rec.save(&l, "g").unwrap();
        assert!(RestartRecord::load(&l, "g").live_pending().is_none());
        assert!(!cancel_pending(&l, "g", Duration::from_secs(1)));
    }
}
