//! `vbuild status NAME` and `vbuild list`: what each guest is and does —
//! distribution, state (from the state file and live processes, so a guest
//! whose supervisor was killed is reported as such), init pid, uptime,
//! boot state, and processes, memory and CPU time from its cgroup.

use crate::config::GuestConfig;
use crate::error::RuntimeError;
use crate::limits::Limits;
use crate::name::GuestName;
use crate::paths::Layout;
use crate::state::{self, Liveness, State};
use serde::Serialize;
use std::path::PathBuf;
use vbuild_kernel::cgroup::{Cgroup, Hierarchy};

/// One guest as `status` and `list` show it.
#[derive(Debug, Clone, Serialize)]
pub struct GuestStatus {
    /// The guest.
    pub name: String,
    /// Distribution family.
    pub distro: String,
    /// Release.
    pub release: String,
    /// `running`, `running (supervisor lost)`, `stopping`, `stopped`...
    pub state: String,
    /// True when init runs.
    pub running: bool,
    /// Init said READY=1 (systemd finished booting), or a sysvinit guest
    /// is in its default runlevel with that runlevel's rc done.
    pub booted: bool,
    /// The last STATUS= text from init.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot_status: Option<String>,
    /// Init's pid on the host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init_pid: Option<i32>,
    /// The supervisor's pid, when it runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supervisor_pid: Option<i32>,
    /// This boot's id (`container_uuid`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
    /// The context's cgroup (`vbuild/NAME`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    /// Seconds since start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uptime_secs: Option<u64>,
    /// Processes in the cgroup.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processes: Option<usize>,
    /// Memory charged to the guest, bytes (page cache included: what its
    /// memory limit is measured against).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<u64>,
    /// Of `memory`, what its processes hold (anonymous memory, RSS), bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_rss: Option<u64>,
    /// Of `memory`, page cache the kernel reclaims under pressure, bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_cache: Option<u64>,
    /// Processes the kernel's OOM killer ended in the guest this boot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oom_kills: Option<u64>,
    /// CPU time used, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_secs: Option<f64>,
    /// Disk space in use and the limit, bytes, for a guest with `--disk`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk: Option<DiskUse>,
    /// Configured addresses.
    pub addresses: Vec<String>,
    /// Variant it was built as (minbase, standard...).
    pub variant: String,
    /// When it was built, seconds since the epoch.
    pub created: u64,
    /// bridge, none or host.
    pub net_mode: crate::net::NetMode,
    /// The network it joins (bridge mode only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Published ports, `HOST:GUEST/PROTO`.
    pub ports: Vec<String>,
    /// Configured limits (guest.toml).
    pub limits: Limits,
    /// The limits the kernel enforces right now, read from the guest's
    /// cgroup (while it runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effective_limits: Option<vbuild_kernel::cgroup::EffectiveLimits>,
    /// Runs without a user namespace: its root is the host's root (not a
    /// security boundary).
    pub privileged: bool,
    /// The host uid of the guest's root (its id range's first id); `None`
    /// for a privileged guest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_uid: Option<u32>,
    /// Started at host boot (`vbuild autostart NAME on`).
    pub autostart: bool,
    /// Its restart policy and what it did.
    pub restart: RestartStatus,
    /// The console log.
    pub console_log: PathBuf,
}

/// A guest's restart policy beside its restarts (`run_dir/restart.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RestartStatus {
    /// `no`, `on-failure` or `always`.
    pub policy: crate::restart::RestartPolicy,
    /// Restarts by the policy since the guest was last started by hand.
    pub count: u32,
    /// How init last ended on its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_exit: Option<String>,
    /// Its exit status, when it exited (not killed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_exit_code: Option<i32>,
    /// A restart waits out its backoff.
    pub pending: bool,
    /// Why the policy left the guest stopped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_because: Option<String>,
}

fn restart_status(layout: &Layout, n: &str, cfg: &GuestConfig) -> RestartStatus {
    let rec = crate::restart::RestartRecord::load(layout, n);
    RestartStatus {
        policy: cfg.restart,
        count: rec.count,
        last_exit: rec.last_exit.clone(),
        last_exit_code: rec.last_exit_code,
        pending: rec.live_pending().is_some(),
        stopped_because: rec.gave_up.clone(),
    }
}

/// Disk use beside the limit, in bytes (the same figures `vbuild limit`
/// shows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DiskUse {
    /// Bytes in use.
    pub used: u64,
    /// The limit.
    pub limit: u64,
}

fn base(layout: &Layout, n: &str, cfg: &GuestConfig) -> GuestStatus {
    GuestStatus {
        name: n.to_string(),
        distro: cfg.distro.clone(),
        release: cfg.release.clone(),
        state: "stopped".into(),
        running: false,
        booted: false,
        boot_status: None,
        init_pid: None,
        supervisor_pid: None,
        boot_id: None,
        cgroup: None,
        uptime_secs: None,
        processes: None,
        memory: None,
        memory_rss: None,
        memory_cache: None,
        oom_kills: None,
        cpu_secs: None,
        disk: None,
        addresses: cfg.net.addresses.clone(),
        variant: cfg.variant.clone(),
        created: cfg.created,
        net_mode: cfg.net.mode,
        network: (cfg.net.mode == crate::net::NetMode::Bridge).then(|| cfg.net.network.clone()),
        ports: cfg.net.publish.clone(),
        limits: cfg.limits.clone(),
        effective_limits: None,
        privileged: cfg.privileged,
        host_uid: if cfg.privileged {
            None
        } else {
            cfg.ids.map(|r| r.base)
        },
        autostart: cfg.autostart,
        restart: restart_status(layout, n, cfg),
        console_log: state::console_log(layout, n),
    }
}

/// The status of guest `name`.
pub fn status(layout: &Layout, name: &GuestName) -> Result<GuestStatus, RuntimeError> {
    let n = name.as_str();
    let path = layout.guest_config(n);
    if !path.is_file() {
        return Err(RuntimeError::NotFound(n.to_string()));
    }
    let cfg = GuestConfig::load(&path)?;
    let h = Hierarchy::detect().ok();
    of(layout, n, &cfg, h.as_ref())
}

fn of(
    layout: &Layout,
    n: &str,
    cfg: &GuestConfig,
    h: Option<&Hierarchy>,
) -> Result<GuestStatus, RuntimeError> {
    let mut s = base(layout, n, cfg);
    s.disk = crate::disk::usage(layout, n)
        .ok()
        .flatten()
        .map(|u| DiskUse {
            used: u.used,
            limit: u.limit,
        });
    let Some(st) = State::load(layout, n)? else {
        if s.restart.pending {
            s.state = "restarting".into();
        }
        return Ok(s);
    };
    // What a running guest's last boot left is history, not a reason now.
    s.restart.stopped_because = None;
    let live = st.liveness();
    s.state = live.label().to_string();
    s.boot_id = Some(st.boot_id.clone());
    s.cgroup = Some(st.cgroup.clone());
    if let Liveness::Running { supervisor } = live {
        // What this boot runs as, whatever guest.toml says now.
        s.privileged = !st.userns;
        s.host_uid = st.userns.then_some(st.id_base);
        s.running = true;
        // sysvinit says nothing: booted as `start --wait` sees it (default
        // runlevel reached, its rc done).
        s.booted = match st.init_kind {
            crate::config::InitKind::Sysvinit => {
                crate::sysv_ready::check(st.init_pid) == crate::sysv_ready::Boot::Ready
            }
            _ => st.ready,
        };
        // Cleaned again: the text came from the guest.
        s.boot_status = st.status_text.as_deref().map(state::clean_status_text);
        s.init_pid = Some(st.init_pid);
        s.supervisor_pid = supervisor.then_some(st.supervisor_pid);
        s.uptime_secs = Some(state::now_secs().saturating_sub(st.started_at));
        if let Some(cg) = h.and_then(|h| Cgroup::open(h, &st.cgroup).ok().flatten()) {
            s.processes = cg.pids().ok().map(|p| p.len());
            s.effective_limits = Some(cg.effective_limits());
            if let Ok(u) = cg.usage() {
                s.memory = u.memory;
                s.memory_rss = u.memory_anon;
                s.memory_cache = u.memory_cache;
                s.oom_kills = u.oom_kills;
                s.cpu_secs = u.cpu.map(|d| d.as_secs_f64());
            }
        }
    }
    Ok(s)
}

/// Every guest with a `guest.toml`, by name. A guest whose config cannot
/// be read is listed with state `broken: REASON` rather than hiding it.
pub fn list(layout: &Layout) -> Result<Vec<GuestStatus>, RuntimeError> {
    let h = Hierarchy::detect().ok();
    let mut out = Vec::new();
    for (n, cfg) in crate::store::GuestStore::new(layout).list()? {
        match cfg {
            Ok(cfg) => out.push(of(layout, &n, &cfg, h.as_ref())?),
            Err(e) => {
                let cfg = GuestConfig {
                    name: n.clone(),
                    distro: "?".into(),
                    release: "?".into(),
                    variant: String::new(),
                    created: 0,
                    init: Default::default(),
                    limits: Default::default(),
                    net: Default::default(),
                    privileged: false,
                    ids: None,
                    template: None,
                    autostart: false,
                    restart: Default::default(),
                };
                let mut s = base(layout, &n, &cfg);
                s.state = format!("broken: {e}");
                out.push(s);
            }
        }
    }
    Ok(out)
}

/// Formats seconds as `3d 4h`, `2h 05m`, `4m 10s`, `12s`.
pub fn format_uptime(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m:02}m")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptimes_read_like_uptime() {
        assert_eq!(format_uptime(12), "12s");
        assert_eq!(format_uptime(250), "4m 10s");
        assert_eq!(format_uptime(7500), "2h 05m");
        assert_eq!(format_uptime(3 * 86400 + 4 * 3600 + 5), "3d 4h");
    }

    #[test]
    fn list_shows_stopped_and_broken_guests() {
        let d = tempfile::tempdir().unwrap();
        let l = Layout::new(Some(d.path()));
        assert!(list(&l).unwrap().is_empty());
        for n in ["b", "a"] {
            std::fs::create_dir_all(l.guest_dir(n)).unwrap();
        }
        std::fs::write(
            l.guest_config("a"),
            "name = \"a\"\ndistro = \"debian\"\nrelease = \"trixie\"\n",
        )
        .unwrap();
        std::fs::write(l.guest_config("b"), "name = 3").unwrap();
        let all = list(&l).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(
            (all[0].name.as_str(), all[0].state.as_str()),
            ("a", "stopped")
        );
        assert_eq!(all[0].release, "trixie");
        assert!(all[1].state.starts_with("broken: "), "{}", all[1].state);
        let g = GuestName::parse("zz").unwrap();
        assert!(matches!(status(&l, &g), Err(RuntimeError::NotFound(_))));
    }
}
