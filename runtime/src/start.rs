//! `vbuild start NAME`: checks everything that can be checked first (so a
//! bad request changes nothing), then takes its steps in this order, each
//! through the [`Host`] seam: claim the name and the addresses on the
//! bridge, activate the disk, prepare
//! the rootfs, allocate the id range, create the limits cgroup, restrict
//! its devices, apply its limits, create the guest's own cgroup below it
//! (and delegate it to an unprivileged guest's root), and start the
//! supervisor (which forks init into new namespaces). Then — while init
//! still waits — it puts init into its cgroup (privileged) or writes its id
//! maps and hands it its id-mapped root (unprivileged), builds its network,
//! lets it go, and returns once init is exec'd or says why it could not be.
//!
//! Until the supervisor runs, an error undoes what start made, in reverse
//! order and nothing else; after that, the supervisor owns the cleanup
//! (init exits, the supervisor sees it and removes everything), and start
//! waits for it before reporting the error. A supervisor that fails before
//! init exists has nothing to watch: once it is gone, start cleans up.

use crate::config::{GuestConfig, InitKind};
use crate::error::RuntimeError;
use crate::host::{Host, RealHost, SpawnRequest};
use crate::name::GuestName;
use crate::net::NetMode;
use crate::paths::Layout;
use crate::state::{self, Liveness, RunLock, State};
use crate::supervisor::SupervisorProgram;
use std::time::{Duration, Instant};

/// How to start a guest.
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// Run without a user namespace (the guest's root is the host's root:
    /// not a security boundary). Also on when guest.toml says
    /// `privileged = true`. Off by default: every other guest gets its own
    /// user namespace and id range.
    pub privileged: bool,
    /// The supervisor program to run.
    pub supervisor: SupervisorProgram,
    /// What the supervisor runs (program and arguments) after the guest
    /// rebooted itself, to start it again; `None`: a reboot stops it.
    pub on_reboot: Option<Vec<String>>,
    /// What the supervisor runs to start the guest again when its init
    /// ended on its own and its restart policy says so; `None`: never.
    pub on_exit: Option<Vec<String>>,
}

/// A started guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    /// Init's pid as the host sees it.
    pub init_pid: i32,
    /// The supervisor's pid.
    pub supervisor_pid: i32,
    /// This boot's id (`container_uuid`).
    pub boot_id: String,
    /// What did not work but does not stop the guest (its network's name
    /// responder could not start), one line each.
    pub warnings: Vec<String>,
}

/// The environment init gets: what systemd's container interface asks of
/// a container manager, and a sane PATH.
pub(crate) fn init_env(boot_id: &str, console: bool) -> Vec<String> {
    let mut env = vec![
        "container=vbuild".to_string(),
        format!("container_uuid={boot_id}"),
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
        "HOME=/".to_string(),
        "NOTIFY_SOCKET=/run/host/notify".to_string(),
    ];
    if console {
        env.push("TERM=vt220".to_string());
    }
    env
}

/// The host's os-release, for the guest's /run/host/os-release.
pub(crate) fn host_os_release() -> String {
    ["/etc/os-release", "/usr/lib/os-release"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default()
}

/// The cgroup that carries guest `name`'s limits (`vbuild/NAME`).
pub fn limits_cgroup(name: &str) -> String {
    crate::store::cgroup_name(name)
}

/// The group below it that init runs in and the guest's cgroup namespace
/// is rooted at (`vbuild/NAME/guest`): the guest can see and change only
/// what is below its limits, never the limits themselves.
pub fn guest_cgroup(name: &str) -> String {
    format!("{}/guest", crate::store::cgroup_name(name))
}

/// What start made before the supervisor took over, in the order made.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Made {
    Claim,
    Addresses,
    Disk,
    Rootfs,
    Cgroup(String),
    RunFiles,
}

/// Undoes what start made (in reverse order) unless disarmed: dropped on
/// every early return before the supervisor runs.
struct Undo<'a> {
    host: &'a dyn Host,
    layout: &'a Layout,
    name: &'a str,
    made: Vec<Made>,
}

impl Undo<'_> {
    fn disarm(&mut self) {
        self.made.clear();
    }
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        let (h, l, n) = (self.host, self.layout, self.name);
        while let Some(m) = self.made.pop() {
            let _ = match m {
                Made::RunFiles => {
                    h.state_clear(l, n);
                    Ok(())
                }
                Made::Cgroup(rel) => h.cgroup_kill_and_remove(n, &rel),
                Made::Rootfs => h.rootfs_release(l, n),
                Made::Disk => h.disk_deactivate(l, n),
                Made::Addresses => h.addresses_release(l, n),
                Made::Claim => h.name_release(l, n),
            };
        }
    }
}

/// How long a start waits for someone else to let go of the guest's
/// state lock before it says the guest is busy.
const LOCK_WAIT: Duration = Duration::from_secs(1);

/// Starts guest `name`; returns once its init runs.
pub fn start(
    layout: &Layout,
    name: &GuestName,
    opts: &StartOptions,
) -> Result<Started, RuntimeError> {
    start_on(&RealHost, layout, name, opts)
}

/// [`start`] through `host` (the seam the unit tests use).
pub(crate) fn start_on(
    host: &dyn Host,
    layout: &Layout,
    name: &GuestName,
    opts: &StartOptions,
) -> Result<Started, RuntimeError> {
    let n = name.as_str();
    let cfg_path = layout.guest_config(n);
    if !cfg_path.is_file() {
        return Err(RuntimeError::NotFound(n.to_string()));
    }
    let mut cfg = GuestConfig::load(&cfg_path)?;
    let privileged = opts.privileged || cfg.privileged;
    if let Some(st) = State::load(layout, n)? {
        match st.liveness() {
            Liveness::Running { .. } => {
                return Err(RuntimeError::AlreadyRunning {
                    name: n.to_string(),
                    init_pid: st.init_pid,
                })
            }
            Liveness::Stopping => return Err(RuntimeError::Busy(n.to_string())),
            Liveness::Stale => {
                let _l = RunLock::take_within(layout, n, Duration::from_secs(5))?;
                crate::stop::cleanup_on(host, layout, n, &st.cgroup, true)?;
            }
        }
    }
    let rootfs_dir = layout.guest_rootfs(n);
    if !rootfs_dir.is_dir() {
        return Err(RuntimeError::RootfsMissing {
            name: n.to_string(),
            path: rootfs_dir,
        });
    }
    // Held for a moment by a stop or a copy finishing, or by a process
    // forked by another thread of ours that has not closed its copy yet:
    // wait for that. Another start's supervisor holds it for good: busy.
    let lock = RunLock::take_within(layout, n, LOCK_WAIT)?;
    if let Some(st) = State::load(layout, n)? {
        if let Liveness::Running { .. } = st.liveness() {
            return Err(RuntimeError::AlreadyRunning {
                name: n.to_string(),
                init_pid: st.init_pid,
            });
        }
    }
    let mut undo = Undo {
        host,
        layout,
        name: n,
        made: Vec::new(),
    };
    // Before anything named after the guest exists on the host.
    host.name_claim(layout, n)?;
    undo.made.push(Made::Claim);
    host.addresses_claim(layout, n, &cfg.net)?;
    undo.made.push(Made::Addresses);
    host.disk_activate(layout, n)?;
    undo.made.push(Made::Disk);
    // Before init can read it; a failure here costs the guest only its
    // name lookups of other guests: a warning.
    let mut warnings: Vec<String> = refresh_resolv_conf(layout, n, &cfg.net)
        .into_iter()
        .collect();
    let rootfs = host.rootfs_prepare(layout, n, &cfg.init.path)?;
    undo.made.push(Made::Rootfs);
    let ids = if privileged {
        None
    } else {
        Some(host.ids_allocate(layout, n, &mut cfg)?)
    };
    let rel = limits_cgroup(n);
    let cgroupns = host.cgroup_create(n, &rel)?;
    undo.made.push(Made::Cgroup(rel.clone()));
    host.cgroup_restrict_devices(n, &rel)?;
    host.cgroup_apply_limits(layout, n, &rel, &cfg.limits)?;
    // Made after the limits so that it inherits them (v1 devices copies
    // its parent's rules at creation); removed with its parent.
    let guest_rel = guest_cgroup(n);
    host.cgroup_create(n, &guest_rel)?;
    if let Some(r) = ids {
        // Delegate the guest's unified cgroup to its root (systemd makes
        // its own groups below it); the limits one level up stay the host's.
        host.cgroup_delegate(n, &guest_rel, r.base)?;
    }
    undo.made.push(Made::RunFiles);
    let mut boot = host.supervisor_spawn(
        layout,
        SpawnRequest {
            name: n,
            cfg: &cfg,
            rootfs: &rootfs,
            ids,
            cgroup: &rel,
            guest_cgroup: &guest_rel,
            cgroupns,
            supervisor: &opts.supervisor,
            on_reboot: opts.on_reboot.clone(),
            on_exit: opts.on_exit.clone(),
            lock,
        },
    )?;
    // The supervisor owns cleanup from here on.
    undo.disarm();

    // No pid means no init: the supervisor failed before it made one (or
    // never ran at all). Once it has let go of the guest, what start made
    // is nobody's: clean it up here, as a stop would.
    let init_pid = match boot.init_pid() {
        Ok(pid) => pid,
        Err(e) => {
            boot.abandon();
            if let Ok(_lock) = RunLock::take_within(layout, n, LOCK_WAIT) {
                let net = cfg.net.mode != NetMode::Host;
                let _ = crate::stop::cleanup_on(host, layout, n, &rel, net);
                let _ = host.rootfs_release(layout, n);
            }
            return Err(e);
        }
    };
    // Init waits on the go pipe: make it part of the guest first.
    let setup = (|| -> Result<(), RuntimeError> {
        match ids {
            // An unprivileged guest's init is in its group already: the
            // supervisor put the process that made it there.
            Some(r) => {
                host.ids_map(n, init_pid, r.base)?;
                boot.hand_root(&rootfs, init_pid)?;
            }
            None => {
                host.cgroup_attach(n, &guest_rel, init_pid)?;
                // A privileged overlay guest's root is a detached overlay too.
                if crate::layer::is_overlay(layout, n) {
                    boot.hand_root(&rootfs, init_pid)?;
                }
            }
        }
        if cfg.net.mode != NetMode::Host {
            host.network_attach(layout, n, &cfg.net, init_pid)?;
        }
        Ok(())
    })();
    if let Err(e) = setup {
        boot.abandon();
        return Err(e);
    }
    let mut started = boot.release()?;
    started.warnings.append(&mut warnings);
    // After its port is on the bridge (so the responder's "no guest left"
    // check sees it), and once init runs (it does not wait for this). A
    // guest without the responder still resolves through the network's
    // other resolvers: a warning, not a failed start.
    if cfg.net.mode == NetMode::Bridge {
        if let Err(e) = host.dns_ensure(layout, &cfg.net.network, &opts.supervisor) {
            started.warnings.push(e.to_string());
        }
    }
    Ok(started)
}

/// Brings a bridged guest's resolv.conf up to date when it is still the
/// one vbuild wrote before its network had a name responder (see
/// `net::resolv`); says why when that fails.
fn refresh_resolv_conf(layout: &Layout, n: &str, net: &crate::net::NetConfig) -> Option<String> {
    if net.mode != NetMode::Bridge {
        return None;
    }
    let root = crate::layer::writable_root(layout, n);
    // No tree of its own to look at (yet): nothing vbuild wrote is there.
    let root = vbuild_kernel::fsroot::Root::open(&root).ok()?;
    let text = crate::net::resolv::vbuilds(&root)?;
    let network = crate::net::Network::load(layout, &net.network).ok()?;
    crate::net::resolv::update(&root, &text, &network, &net.addresses)
        .err()
        .map(|e| format!("{n}: /etc/resolv.conf was not brought up to date: {e}"))
}

/// Waits until the guest has booted, at most `timeout`: systemd says
/// READY=1; sysvinit has entered its default runlevel and finished that
/// runlevel's `wait` entries (its rc scripts: see `sysv_ready`). Guests
/// with another init (busybox, a script) count as ready once init runs.
pub fn wait_ready(
    layout: &Layout,
    name: &GuestName,
    timeout: Duration,
) -> Result<(), RuntimeError> {
    let n = name.as_str();
    let until = Instant::now() + timeout;
    loop {
        let st = State::load(layout, n)?.ok_or_else(|| RuntimeError::InitExited {
            name: n.to_string(),
            log: state::console_log(layout, n),
        })?;
        if !matches!(st.liveness(), Liveness::Running { .. }) {
            return Err(RuntimeError::InitExited {
                name: n.to_string(),
                log: state::console_log(layout, n),
            });
        }
        let waiting = match st.init_kind {
            InitKind::Systemd if st.ready => return Ok(()),
            InitKind::Systemd => None,
            InitKind::Sysvinit => match crate::sysv_ready::check(st.init_pid) {
                crate::sysv_ready::Boot::Ready => return Ok(()),
                crate::sysv_ready::Boot::Waiting(why) => Some(why),
            },
            InitKind::Other => return Ok(()),
        };
        if Instant::now() >= until {
            return Err(match waiting {
                None => RuntimeError::Timeout {
                    name: n.to_string(),
                    what: "READY=1 from init",
                    secs: timeout.as_secs(),
                    hint: "see `vbuild console` or the console log; systemd may still be booting"
                        .into(),
                },
                Some(why) => RuntimeError::Timeout {
                    name: n.to_string(),
                    what: "sysvinit's default runlevel",
                    secs: timeout.as_secs(),
                    hint: format!(
                        "{why}; see `vbuild console` or the console log, or wait longer with --timeout"
                    ),
                },
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_gets_the_container_interface_environment() {
        let env = init_env("1234", true);
        assert!(env.contains(&"container=vbuild".to_string()));
        assert!(env.contains(&"container_uuid=1234".to_string()));
        assert!(env.contains(&"NOTIFY_SOCKET=/run/host/notify".to_string()));
    }

    #[test]
    fn limits_sit_above_the_guests_own_group() {
        assert_eq!(limits_cgroup("mail01"), "vbuild/mail01");
        assert!(guest_cgroup("mail01").starts_with(&format!("{}/", limits_cgroup("mail01"))));
    }

    mod seam {
        use super::super::*;
        use crate::config::{InitConfig, NetConfig};
        use crate::host::fake::RecordingHost;
        use crate::limits::Limits;

        /// A guest `g` in a fresh state root: a config and a rootfs dir.
        fn guest(privileged: bool, mode: NetMode) -> (tempfile::TempDir, Layout, GuestName) {
            let d = tempfile::tempdir().unwrap();
            let l = Layout::new(Some(d.path()));
            std::fs::create_dir_all(l.guest_rootfs("g")).unwrap();
            GuestConfig {
                name: "g".into(),
                distro: "debian".into(),
                release: "bookworm".into(),
                variant: "minbase".into(),
                created: 1,
                init: InitConfig::default(),
                limits: Limits::default(),
                net: NetConfig {
                    mode,
                    ..NetConfig::default()
                },
                privileged,
                ids: None,
                template: None,
                autostart: false,
                restart: Default::default(),
            }
            .save(&l.guest_config("g"))
            .unwrap();
            (d, l, GuestName::parse("g").unwrap())
        }

        fn opts() -> StartOptions {
            StartOptions {
                privileged: false,
                supervisor: SupervisorProgram {
                    program: "/nonexistent/vbuild-supervisor".into(),
                    args: vec![],
                },
                on_reboot: None,
                on_exit: None,
            }
        }

        /// Start's steps for an unprivileged guest on a bridge, in order;
        /// the supervisor runs from `supervisor_spawn` on.
        const UNPRIVILEGED: [&str; 17] = [
            "name_claim",
            "addresses_claim",
            "disk_activate",
            "rootfs_prepare",
            "ids_allocate",
            "cgroup_create vbuild/g",
            "cgroup_restrict_devices",
            "cgroup_apply_limits",
            "cgroup_create vbuild/g/guest",
            "cgroup_delegate",
            "supervisor_spawn",
            "init_pid",
            "ids_map",
            "hand_root",
            "network_attach",
            "release",
            "dns_ensure",
        ];

        const PRIVILEGED: [&str; 14] = [
            "name_claim",
            "addresses_claim",
            "disk_activate",
            "rootfs_prepare",
            "cgroup_create vbuild/g",
            "cgroup_restrict_devices",
            "cgroup_apply_limits",
            "cgroup_create vbuild/g/guest",
            "supervisor_spawn",
            "init_pid",
            "cgroup_attach",
            "network_attach",
            "release",
            "dns_ensure",
        ];

        /// What undoes a step start made itself (a guest's own cgroup goes
        /// with the limits group above it).
        fn undo_of(step: &str) -> Option<&'static str> {
            match step {
                "name_claim" => Some("name_release"),
                "addresses_claim" => Some("addresses_release"),
                "disk_activate" => Some("disk_deactivate"),
                "rootfs_prepare" => Some("rootfs_release"),
                "cgroup_create vbuild/g" => Some("cgroup_kill_and_remove"),
                _ => None,
            }
        }

        #[test]
        fn start_takes_its_steps_in_order() {
            for (privileged, order) in [(false, &UNPRIVILEGED[..]), (true, &PRIVILEGED[..])] {
                let (_d, l, g) = guest(privileged, NetMode::Bridge);
                let h = RecordingHost::default();
                let s = start_on(&h, &l, &g, &opts()).unwrap();
                assert_eq!(s.init_pid, crate::host::fake::FAKE_INIT);
                assert_eq!(*h.calls.borrow(), order, "privileged {privileged}");
            }
            // --privileged on the command line is the same as in guest.toml.
            let (_d, l, g) = guest(false, NetMode::Bridge);
            let h = RecordingHost::default();
            let o = StartOptions {
                privileged: true,
                ..opts()
            };
            start_on(&h, &l, &g, &o).unwrap();
            assert_eq!(*h.calls.borrow(), PRIVILEGED);
        }

        #[test]
        fn a_host_network_guest_gets_no_network_built() {
            let (_d, l, g) = guest(false, NetMode::Host);
            let h = RecordingHost::default();
            start_on(&h, &l, &g, &opts()).unwrap();
            let want: Vec<&str> = UNPRIVILEGED
                .iter()
                .copied()
                .filter(|c| *c != "network_attach" && *c != "dns_ensure")
                .collect();
            assert_eq!(*h.calls.borrow(), want);
        }

        #[test]
        fn a_failure_before_the_supervisor_undoes_everything_in_reverse() {
            for order in [&UNPRIVILEGED[..], &PRIVILEGED[..]] {
                let spawn = order.iter().position(|c| *c == "supervisor_spawn").unwrap();
                for k in 0..=spawn {
                    let privileged = order.len() == PRIVILEGED.len();
                    let (_d, l, g) = guest(privileged, NetMode::Bridge);
                    let h = RecordingHost::default();
                    h.fail.borrow_mut().insert(order[k].to_string());
                    let e = start_on(&h, &l, &g, &opts()).unwrap_err();
                    assert!(e.to_string().contains(order[k]), "{}: {e}", order[k]);
                    let mut want: Vec<&str> = order[..=k].to_vec();
                    if k == spawn {
                        // The files it made before it failed.
                        want.push("state_clear");
                    }
                    want.extend(order[..k].iter().rev().filter_map(|c| undo_of(c)));
                    assert_eq!(*h.calls.borrow(), want, "failing {}", order[k]);
                    assert!(
                        h.present.borrow().is_empty(),
                        "failing {}: left {:?}",
                        order[k],
                        h.present.borrow()
                    );
                    // The run lock was given back: the next start can go.
                    h.calls.borrow_mut().clear();
                    start_on(&h, &l, &g, &opts()).unwrap();
                    assert_eq!(*h.calls.borrow(), order, "after failing {}", order[k]);
                }
            }
        }

        #[test]
        fn after_the_supervisor_runs_a_failure_leaves_cleanup_to_it() {
            for order in [&UNPRIVILEGED[..], &PRIVILEGED[..]] {
                let spawn = order.iter().position(|c| *c == "supervisor_spawn").unwrap();
                let privileged = order.len() == PRIVILEGED.len();
                // Not the last step, dns_ensure: it only warns (below).
                for k in spawn + 1..order.len() - 1 {
                    let (_d, l, g) = guest(privileged, NetMode::Bridge);
                    let h = RecordingHost::default();
                    h.fail.borrow_mut().insert(order[k].to_string());
                    let e = start_on(&h, &l, &g, &opts()).unwrap_err();
                    assert!(e.to_string().contains(order[k]), "{}: {e}", order[k]);
                    let mut want: Vec<&str> = order[..=k].to_vec();
                    if order[k] != "release" {
                        // Init is told to end; start waits for the
                        // supervisor's cleanup (release waits by itself).
                        want.push("abandon");
                    }
                    if order[k] == "init_pid" {
                        // No init: nobody else will clean up, start does.
                        want.extend(crate::stop::tests::seam::ORDER);
                        want.push("rootfs_release");
                        assert!(
                            h.present.borrow().is_empty(),
                            "left {:?}",
                            h.present.borrow()
                        );
                    }
                    assert_eq!(*h.calls.borrow(), want, "failing {}", order[k]);
                }
            }
        }

        #[test]
        fn a_name_responder_that_cannot_start_is_a_warning_not_a_failure() {
            let (_d, l, g) = guest(false, NetMode::Bridge);
            let h = RecordingHost::default();
            h.fail.borrow_mut().insert("dns_ensure".into());
            let s = start_on(&h, &l, &g, &opts()).unwrap();
            assert_eq!(*h.calls.borrow(), UNPRIVILEGED);
            assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
            assert!(s.warnings[0].contains("dns_ensure"), "{:?}", s.warnings);
            // A loopback-only guest has no network to resolve on.
            let (_d, l, g) = guest(false, NetMode::None);
            let h = RecordingHost::default();
            let s = start_on(&h, &l, &g, &opts()).unwrap();
            assert!(!h.calls.borrow().iter().any(|c| c == "dns_ensure"));
            assert!(s.warnings.is_empty());
        }

        #[test]
        fn a_rolled_back_start_leaves_cleanup_idempotent() {
            let (_d, l, g) = guest(false, NetMode::Bridge);
            let h = RecordingHost::default();
            h.fail.borrow_mut().insert("cgroup_delegate".into());
            start_on(&h, &l, &g, &opts()).unwrap_err();
            assert!(h.present.borrow().is_empty());
            for _ in 0..2 {
                crate::stop::cleanup_on(&h, &l, "g", "vbuild/g", true).unwrap();
                assert!(h.present.borrow().is_empty());
            }
        }

        #[test]
        fn a_bad_request_touches_nothing_on_the_host() {
            let (_d, l, _) = guest(false, NetMode::Bridge);
            let h = RecordingHost::default();
            let other = GuestName::parse("nobody").unwrap();
            let e = start_on(&h, &l, &other, &opts()).unwrap_err();
            assert!(matches!(e, RuntimeError::NotFound(_)), "{e}");
            let (_d, l, g) = guest(false, NetMode::Bridge);
            std::fs::remove_dir(l.guest_rootfs("g")).unwrap();
            let e = start_on(&h, &l, &g, &opts()).unwrap_err();
            assert!(matches!(e, RuntimeError::RootfsMissing { .. }), "{e}");
            // A start under way elsewhere holds the run lock.
            let (_d, l, g) = guest(false, NetMode::Bridge);
            let _held = RunLock::try_take(&l, "g").unwrap().unwrap();
            let e = start_on(&h, &l, &g, &opts()).unwrap_err();
            assert!(matches!(e, RuntimeError::Busy(_)), "{e}");
            assert!(h.calls.borrow().is_empty(), "{:?}", h.calls.borrow());
        }

        #[test]
        fn a_lock_held_for_a_moment_is_waited_for() {
            let (_d, l, g) = guest(false, NetMode::Bridge);
            let h = RecordingHost::default();
            let held = RunLock::try_take(&l, "g").unwrap().unwrap();
            let t0 = Instant::now();
            let release = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(200));
                drop(held);
            });
            start_on(&h, &l, &g, &opts()).unwrap();
            assert!(t0.elapsed() >= Duration::from_millis(200));
            release.join().unwrap();
            assert_eq!(*h.calls.borrow(), UNPRIVILEGED);
        }
    }
}
