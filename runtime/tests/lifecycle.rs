//! A guest's lifecycle end to end, on a tiny rootfs assembled from the
//! host's static busybox with a shell-script init: start, what the guest
//! can and cannot see and do, exec, stop, a killed supervisor, bad input,
//! and one-shot `run`. Needs root (namespaces, cgroups, mounts).

mod common;
use common::{busybox_rootfs, eventually, root_or_skip, unique};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use vbuild_runtime::config::{GuestConfig, InitConfig, InitKind};
use vbuild_runtime::error::RuntimeError;
use vbuild_runtime::exec::ExecOptions;
use vbuild_runtime::name::GuestName;
use vbuild_runtime::net::{NetConfig, NetMode};
use vbuild_runtime::paths::Layout;
use vbuild_runtime::start::StartOptions;
use vbuild_runtime::state::State;
use vbuild_runtime::stop::Stopped;
use vbuild_runtime::supervisor::SupervisorProgram;

/// The busybox applets this file's guests get.
const APPLETS: &[&str] = &[
    "sh", "sleep", "cat", "ls", "ps", "hostname", "kill", "insmod", "date", "true", "false",
    "echo", "grep", "wc", "id", "mount", "touch", "test", "head", "yes", "ln", "rm",
];

const INIT: &str = "#!/bin/sh\n\
trap 'echo init: stopping; exit 0' TERM\n\
echo \"init: started as pid $$\"\n\
while :; do sleep 1 & wait $!; done\n";

const STUBBORN_INIT: &str = "#!/bin/sh\n\
trap 'echo init: ignoring TERM' TERM\n\
while :; do sleep 1 & wait $!; done\n";

/// A guest in its own state root; stops it and removes leftovers when dropped.
struct Guest {
    _dir: tempfile::TempDir,
    layout: Layout,
    name: GuestName,
}

impl Guest {
    fn new(init: &str, kind: InitKind) -> Guest {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(Some(dir.path()));
        let name = GuestName::parse(&unique("t")).unwrap();
        let n = name.as_str();
        busybox_rootfs(&layout.guest_rootfs(n), init, APPLETS);
        GuestConfig {
            name: n.to_string(),
            distro: "busybox".into(),
            release: "test".into(),
            variant: String::new(),
            created: 0,
            init: InitConfig {
                path: "/sbin/init".into(),
                args: vec![],
                kind,
            },
            limits: Default::default(),
            net: NetConfig {
                mode: NetMode::None,
                ..Default::default()
            },
            privileged: false,
            ids: None,
            template: None,
            autostart: false,
            restart: Default::default(),
        }
        .save(&layout.guest_config(n))
        .unwrap();
        Guest {
            _dir: dir,
            layout,
            name,
        }
    }

    fn start(&self) -> Result<vbuild_runtime::start::Started, RuntimeError> {
        vbuild_runtime::start::start(&self.layout, &self.name, &options())
    }

    fn exec(&self, cmd: &str) -> i32 {
        let argv = vec!["/bin/sh".to_string(), "-c".to_string(), cmd.to_string()];
        vbuild_runtime::exec::exec(&self.layout, &self.name, &argv, &ExecOptions::default())
            .unwrap()
    }

    /// Runs `cmd` in the guest with its output in a guest file, returns it.
    fn output(&self, cmd: &str) -> String {
        let code = self.exec(&format!("({cmd}) > /tmp/out 2>&1"));
        assert_eq!(code, 0, "writing output of {cmd}");
        let st = self.state();
        std::fs::read_to_string(format!("/proc/{}/root/tmp/out", st.init_pid)).unwrap()
    }

    fn state(&self) -> State {
        State::load(&self.layout, self.name.as_str())
            .unwrap()
            .expect("guest has state")
    }

    /// The guest's group in every hierarchy of this host.
    fn cgroup_dirs(&self) -> Vec<PathBuf> {
        let rel = format!("vbuild/{}", self.name);
        let hierarchies: Vec<PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
            .unwrap()
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect();
        let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
        if v2 || hierarchies.is_empty() {
            return vec![Path::new("/sys/fs/cgroup").join(&rel)];
        }
        hierarchies.iter().map(|h| h.join(&rel)).collect()
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        if let Ok(Some(_)) = State::load(&self.layout, self.name.as_str()) {
            let _ = vbuild_runtime::stop::stop(&self.layout, &self.name, Duration::from_secs(1));
        }
        for d in self.cgroup_dirs() {
            let _ = std::fs::remove_dir(d.join("guest"));
            let _ = std::fs::remove_dir(d);
        }
        let _ = vbuild_runtime::idrange::Registry::host()
            .release(self.layout.root(), self.name.as_str());
    }
}

fn options() -> StartOptions {
    StartOptions {
        privileged: false,
        supervisor: SupervisorProgram {
            program: PathBuf::from(env!("CARGO_BIN_EXE_vbuild-supervisor")),
            args: vec![],
        },
        on_reboot: None,
        on_exit: None,
    }
}

#[test]
fn guest_runs_its_init_as_pid_1_in_its_own_context() {
    if !root_or_skip() {
        return;
    }
    let g = Guest::new(INIT, InitKind::Other);
    let started = g.start().unwrap();
    let n = g.name.as_str();
    assert_eq!(g.state().init_pid, started.init_pid);
    // PID 1 inside is our init script.
    assert_eq!(
        g.output("cat /proc/1/cmdline | tr '\\0' ' '")
            .split_whitespace()
            .last(),
        Some("/sbin/init")
    );
    // It sees only its own processes: init, its sleep, this shell and cat.
    let pids: Vec<u32> = g
        .output("ls /proc")
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(pids.contains(&1), "{pids:?}");
    assert!(pids.len() <= 6, "guest sees host processes: {pids:?}");
    // Its own hostname.
    assert_eq!(g.output("hostname").trim(), n);
    // No host mounts: nothing of the host's cgroup v1 mounts or of our state dir.
    let mountinfo = g.output("cat /proc/self/mountinfo");
    let points: Vec<&str> = mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .collect();
    // (Detached trees attached by move_mount, such as an unprivileged
    // guest's cgroup2 view, may be listed before the root.)
    assert!(points.contains(&"/"), "{mountinfo}");
    for host_only in [
        "/sys/fs/cgroup/memory",
        "/work",
        "/etc/hostname",
        "/proc/sys/fs/binfmt_misc",
    ] {
        assert!(
            !points.contains(&host_only),
            "host mount {host_only} visible: {mountinfo}"
        );
    }
    assert!(
        points.iter().all(|p| !p.starts_with("/tmp/")),
        "{mountinfo}"
    );
    assert!(
        mountinfo
            .lines()
            .any(|l| l.contains(" /sys/fs/cgroup ") && l.contains("cgroup2")),
        "guest cgroup2 view missing: {mountinfo}"
    );
    assert!(
        mountinfo.lines().any(|l| l.contains(" /sys ro,")),
        "/sys must be read-only: {mountinfo}"
    );
    assert!(
        mountinfo.lines().any(|l| l.contains(" /proc/sys ro,")),
        "/proc/sys must be read-only: {mountinfo}"
    );
    assert!(
        mountinfo.lines().any(|l| l.contains(" /proc/sys/net rw,")),
        "/proc/sys/net must be writable: {mountinfo}"
    );
    // The console log has init's greeting.
    let log = g.layout.run_dir(n).join("console.log");
    eventually("init's greeting in the console log", || {
        std::fs::read_to_string(&log)
            .map(|t| t.contains("init: started as pid 1"))
            .unwrap_or(false)
    });
    // Stop: graceful (init traps TERM), nothing left.
    let how = vbuild_runtime::stop::stop(&g.layout, &g.name, Duration::from_secs(20)).unwrap();
    assert_eq!(how, Stopped::Graceful);
    assert!(!vbuild_kernel::process::is_alive(
        started.init_pid,
        g_start_ticks(started.init_pid)
    ));
    for d in g.cgroup_dirs() {
        assert!(!d.exists(), "{} left behind", d.display());
    }
    assert!(State::load(&g.layout, n).unwrap().is_none());
}

fn g_start_ticks(pid: i32) -> u64 {
    vbuild_kernel::process::stat(pid)
        .map(|s| s.start_ticks)
        .unwrap_or(0)
}

#[test]
fn guest_root_cannot_load_modules_set_the_clock_or_kill_the_host() {
    if !root_or_skip() {
        return;
    }
    let mut sleeper = std::process::Command::new("sleep")
        .arg("300")
        .spawn()
        .unwrap();
    struct Reap<'a>(&'a mut std::process::Child);
    impl Drop for Reap<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let sleeper = Reap(&mut sleeper);
    let g = Guest::new(INIT, InitKind::Other);
    let s = g.start().unwrap();
    // Capabilities: the bounding set lacks what must be dropped.
    let bnd = vbuild_kernel::caps::bounding_of(s.init_pid).unwrap();
    for c in vbuild_runtime::security::MUST_DROP {
        let bit = 1u64 << vbuild_kernel::caps::number(c).unwrap();
        assert_eq!(bnd & bit, 0, "{c} kept");
    }
    let status = std::fs::read_to_string(format!("/proc/{}/status", s.init_pid)).unwrap();
    assert!(
        status.lines().any(|l| l == "Seccomp:\t2"),
        "no seccomp filter: {status}"
    );
    // init_module: refused (a real module file is not needed to see EPERM).
    let out = g.output("echo junk > /tmp/x.ko; insmod /tmp/x.ko; echo rc=$?");
    assert!(out.contains("not permitted"), "{out}");
    assert!(out.contains("rc=1"), "{out}");
    // Devices: a node can be made, but not opened (device cgroup).
    let out = g.output("mknod /tmp/sda b 8 0 && cat /tmp/sda > /dev/null; echo rc=$?");
    assert!(
        out.contains("Permission denied") || out.contains("not permitted"),
        "{out}"
    );
    assert!(out.contains("rc=1"), "{out}");
    // The clock.
    let out = g.output("date -s 2001-01-01; echo rc=$?");
    assert!(out.contains("not permitted"), "{out}");
    // kill -9 -1 inside kills only the guest's processes.
    let _ = g.exec("kill -9 -1");
    assert!(
        sleeper.0.try_wait().unwrap().is_none(),
        "host sleeper was killed"
    );
    assert!(
        vbuild_kernel::process::is_alive(s.init_pid, g.state().init_start),
        "init must survive"
    );
}

#[test]
fn exec_passes_exit_codes_through() {
    if !root_or_skip() {
        return;
    }
    let g = Guest::new(INIT, InitKind::Other);
    g.start().unwrap();
    assert_eq!(g.exec("exit 7"), 7);
    assert_eq!(g.exec("true"), 0);
    assert_eq!(g.exec("kill -9 $$"), 128 + 9);
    let e = vbuild_runtime::exec::exec(
        &g.layout,
        &g.name,
        &["no-such-cmd".into()],
        &ExecOptions::default(),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("cannot run no-such-cmd: not found"),
        "{e}"
    );
    // The command runs in the guest's cgroup and environment.
    assert_eq!(g.output("echo $container").trim(), "vbuild");
    let cg = g.output("cat /proc/self/cgroup");
    assert!(
        cg.lines().any(|l| l == "0::/"),
        "exec must be at the root of the guest's cgroup namespace: {cg}"
    );
}

#[test]
fn bad_requests_are_refused_and_change_nothing() {
    if !root_or_skip() {
        return;
    }
    let g = Guest::new(INIT, InitKind::Other);
    let n = g.name.as_str();
    // Stop of a stopped guest.
    let e = vbuild_runtime::stop::stop(&g.layout, &g.name, Duration::from_secs(1)).unwrap_err();
    assert!(matches!(e, RuntimeError::NotRunning(_)), "{e}");
    // Unknown guest.
    let nobody = GuestName::parse(&unique("nobody")).unwrap();
    let e = vbuild_runtime::start::start(&g.layout, &nobody, &options()).unwrap_err();
    assert!(e.to_string().contains("does not exist"), "{e}");
    // Non-executable init: nothing created.
    let init = g.layout.guest_rootfs(n).join("sbin/init");
    std::fs::set_permissions(&init, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = g.start().unwrap_err();
    assert!(
        e.to_string().contains("/sbin/init") && e.to_string().contains("not an executable"),
        "{e}"
    );
    for d in g.cgroup_dirs() {
        assert!(!d.exists(), "{} created", d.display());
    }
    assert!(!g.layout.run_dir(n).join("state.json").exists());
    std::fs::set_permissions(&init, std::fs::Permissions::from_mode(0o755)).unwrap();
    // Start twice.
    let s = g.start().unwrap();
    let e = g.start().unwrap_err();
    assert!(
        matches!(e, RuntimeError::AlreadyRunning { init_pid, .. } if init_pid == s.init_pid),
        "{e}"
    );
    assert_eq!(
        g.state().init_pid,
        s.init_pid,
        "second start changed the state"
    );
    // Stopped right after start: the halt signal is repeated until init,
    // which may not have set up its handler yet, acts on it.
    let how = vbuild_runtime::stop::stop(&g.layout, &g.name, Duration::from_secs(20)).unwrap();
    assert_eq!(how, Stopped::Graceful);
    let e = vbuild_runtime::stop::stop(&g.layout, &g.name, Duration::from_secs(1)).unwrap_err();
    assert!(e.to_string().contains("is not running"), "{e}");
    // Missing rootfs.
    std::fs::rename(
        g.layout.guest_rootfs(n),
        g.layout.guest_dir(n).join("moved"),
    )
    .unwrap();
    let e = g.start().unwrap_err();
    assert!(matches!(e, RuntimeError::RootfsMissing { .. }), "{e}");
    assert!(e.to_string().contains("rootfs"), "{e}");
    for d in g.cgroup_dirs() {
        assert!(!d.exists(), "{} created", d.display());
    }
}

/// A supervisor that fails before init exists (it never ran, or it found
/// the guest's cgroup gone and made no namespaces) leaves nothing behind:
/// start reports its words and cleans up once it is gone.
#[test]
fn a_supervisor_that_fails_before_init_leaves_no_cgroup_or_state() {
    if !root_or_skip() {
        return;
    }
    let g = Guest::new(INIT, InitKind::Other);
    let n = g.name.as_str();
    let real = env!("CARGO_BIN_EXE_vbuild-supervisor");
    // The real supervisor, with the guest's own cgroup taken away first.
    let remove_group = format!(
        "d=\"$1\"; for h in /sys/fs/cgroup/*/; do rmdir \"$h\"vbuild/{n}/guest 2>/dev/null; done; exec {real} \"$d\""
    );
    let cases = [
        ("never ran", vec!["-c".to_string(), "exit 7".to_string()]),
        (
            "cgroup missing",
            vec!["-c".to_string(), remove_group, "sup".to_string()],
        ),
    ];
    for (what, args) in cases {
        let opts = StartOptions {
            supervisor: SupervisorProgram {
                program: PathBuf::from("/bin/sh"),
                args,
            },
            ..options()
        };
        let e = vbuild_runtime::start::start(&g.layout, &g.name, &opts).unwrap_err();
        assert!(matches!(e, RuntimeError::Supervisor { .. }), "{what}: {e}");
        if what == "cgroup missing" {
            assert!(e.to_string().contains("is missing"), "{what}: {e}");
        }
        for d in g.cgroup_dirs() {
            assert!(!d.exists(), "{what}: {} left behind", d.display());
        }
        assert!(
            State::load(&g.layout, n).unwrap().is_none(),
            "{what}: state left"
        );
        assert!(
            !g.layout.run_dir(n).join("launch.json").exists(),
            "{what}: launch.json left"
        );
        // Nothing is held: the next start with the real supervisor goes.
        g.start().unwrap();
        vbuild_runtime::stop::stop(&g.layout, &g.name, Duration::from_secs(20)).unwrap();
    }
}

/// A guest whose supervisor was killed has lost its console too (the pty
/// went with it), and systemd's shutdown stalls on reopening it: stop waits
/// `LOST_SUPERVISOR_WAIT`, not the whole timeout, then gives every process
/// a SIGTERM of its own before the kill.
#[test]
fn stop_after_a_lost_supervisor_terms_the_guest_after_a_short_wait() {
    if !root_or_skip() {
        return;
    }
    let g = Guest::new(STUBBORN_INIT, InitKind::Other);
    let s = g.start().unwrap();
    // A "service" that saves its state on SIGTERM.
    assert_eq!(
        g.exec("sh -c 'trap \"echo saved > /termed; exit 0\" TERM; while :; do sleep 1 & wait $!; done' >/dev/null 2>&1 &"),
        0
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(s.supervisor_pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    eventually("supervisor gone", || {
        !vbuild_kernel::process::is_alive(s.supervisor_pid, g.state().supervisor_start)
    });
    let t = std::time::Instant::now();
    let how = vbuild_runtime::stop::stop(&g.layout, &g.name, Duration::from_secs(60)).unwrap();
    let took = t.elapsed();
    assert_eq!(how, Stopped::KilledWithoutConsole);
    assert!(
        took >= vbuild_runtime::stop::LOST_SUPERVISOR_WAIT && took < Duration::from_secs(20),
        "stop took {took:?}"
    );
    let rootfs = g.layout.guest_rootfs(g.name.as_str());
    assert_eq!(
        std::fs::read_to_string(rootfs.join("termed")).unwrap(),
        "saved\n",
        "the service got its SIGTERM before the kill"
    );
    assert!(State::load(&g.layout, g.name.as_str()).unwrap().is_none());
}

#[test]
fn a_killed_supervisor_is_reported_and_stop_still_cleans_up() {
    if !root_or_skip() {
        return;
    }
    let g = Guest::new(INIT, InitKind::Other);
    let s = g.start().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(s.supervisor_pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    eventually("supervisor gone", || {
        !vbuild_kernel::process::is_alive(s.supervisor_pid, g.state().supervisor_start)
    });
    let st = vbuild_runtime::status::status(&g.layout, &g.name).unwrap();
    assert_eq!(st.state, "running (supervisor lost)");
    assert_eq!(st.init_pid, Some(s.init_pid));
    // exec still works without the supervisor.
    assert_eq!(g.exec("exit 3"), 3);
    vbuild_runtime::stop::stop(&g.layout, &g.name, Duration::from_secs(20)).unwrap();
    for d in g.cgroup_dirs() {
        assert!(!d.exists(), "{} left behind", d.display());
    }
    assert!(State::load(&g.layout, g.name.as_str()).unwrap().is_none());
}

#[test]
fn status_splits_memory_into_rss_and_cache_and_counts_oom_kills() {
    if !root_or_skip() {
        return;
    }
    let g = Guest::new(INIT, InitKind::Other);
    let path = g.layout.guest_config(g.name.as_str());
    let mut cfg = GuestConfig::load(&path).unwrap();
    cfg.limits.memory = Some(48 << 20);
    cfg.save(&path).unwrap();
    g.start().unwrap();
    // 8 MiB of file data in the guest's root: page cache, not RSS.
    assert_eq!(g.exec("head -c 8388608 /dev/zero > /cachefill"), 0);
    // The kernel flushes a cgroup's memory.stat counters lazily (at most
    // every 2 s when read): wait until the write shows.
    let mut st = vbuild_runtime::status::status(&g.layout, &g.name).unwrap();
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while st.memory_cache.unwrap_or(0) < 8 << 20 && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(200));
        st = vbuild_runtime::status::status(&g.layout, &g.name).unwrap();
    }
    let (mem, rss, cache) = (
        st.memory.unwrap(),
        st.memory_rss.unwrap(),
        st.memory_cache.unwrap(),
    );
    assert!(
        cache >= 8 << 20,
        "cache {cache} after writing 8 MiB: {st:?}"
    );
    assert!(rss > 0 && rss < cache, "rss {rss}, cache {cache}");
    assert!(
        rss + cache <= mem,
        "rss {rss} + cache {cache} > charged {mem}"
    );
    assert_eq!(st.oom_kills, Some(0));
    // A shell that holds 100 MB of text in a variable meets the 48M limit.
    let code = g.exec("x=$(yes | head -c 100000000); echo survived");
    assert_eq!(code, 128 + libc::SIGKILL, "the OOM killer ends it");
    let st = vbuild_runtime::status::status(&g.layout, &g.name).unwrap();
    assert!(st.oom_kills.unwrap() >= 1, "{st:?}");
    let json = serde_json::to_value(&st).unwrap();
    assert!(json["oom_kills"].as_u64().unwrap() >= 1, "{json}");
    assert!(json["memory_rss"].is_u64() && json["memory_cache"].is_u64());
    // The guest itself is still there: only the greedy process died.
    assert_eq!(g.exec("true"), 0);
    // Stop: both logs name the OOM kill (nothing else in them would).
    vbuild_runtime::stop::stop(&g.layout, &g.name, Duration::from_secs(20)).unwrap();
    let n = g.name.as_str();
    for log in ["console.log", "supervisor.log"] {
        let text = std::fs::read_to_string(g.layout.run_dir(n).join(log)).unwrap();
        assert!(
            text.contains(&format!("{n}: the kernel's OOM killer ended ")),
            "{log}: {text}"
        );
        assert!(
            text.contains(&format!("vbuild limit {n} --memory SIZE")),
            "{log}: {text}"
        );
    }
}

/// Plays sysvinit's boot as seen from the host: runlevel S first (with
/// /run/utmp a symlink to a valid record, which the host must not follow),
/// then, once the test says so, a utmp RUN_LVL record for runlevel 2 and
/// `/etc/init.d/rc 2` run as init's child until the test lets it finish.
const SYSV_INIT: &str = "#!/bin/sh\n\
trap 'echo init: halting; exit 0' 30 2 15\n\
ln -s /runlevel.utmp /run/utmp\n\
while ! test -e /tmp/entered; do sleep 0.1; done\n\
rm /run/utmp\n\
cat /runlevel.utmp > /run/utmp\n\
/etc/init.d/rc 2 &\n\
while :; do sleep 1 & wait $!; done\n";

/// A utmp file as sysvinit leaves it on entering runlevel `level` from S:
/// a BOOT_TIME record, then RUN_LVL (glibc's 384-byte `struct utmp`:
/// ut_type at 0, ut_pid = level + 256 * previous at 4, ut_id at 40,
/// ut_user at 44).
fn utmp_entering(level: u8) -> Vec<u8> {
    let record = |ty: i16, pid: i32, user: &[u8]| {
        let mut r = vec![0u8; 384];
        r[0..2].copy_from_slice(&ty.to_ne_bytes());
        r[4..8].copy_from_slice(&pid.to_ne_bytes());
        r[8] = b'~';
        r[40..42].copy_from_slice(b"~~");
        r[44..44 + user.len()].copy_from_slice(user);
        r
    };
    let mut u = record(2, 0, b"reboot");
    u.extend(record(1, level as i32 + 256 * b'S' as i32, b"runlevel"));
    u
}

#[test]
fn start_wait_on_a_sysvinit_guest_waits_for_its_default_runlevel_and_its_rc() {
    if !root_or_skip() {
        return;
    }
    let g = Guest::new(SYSV_INIT, InitKind::Sysvinit);
    let root = g.layout.guest_rootfs(g.name.as_str());
    std::fs::write(
        root.join("etc/inittab"),
        "id:2:initdefault:\nsi::sysinit:/etc/init.d/rcS\nl2:2:wait:/etc/init.d/rc 2\n",
    )
    .unwrap();
    std::fs::create_dir_all(root.join("etc/init.d")).unwrap();
    std::fs::write(
        root.join("etc/init.d/rc"),
        "#!/bin/sh\nwhile ! test -e /tmp/rc-done; do sleep 0.1; done\n",
    )
    .unwrap();
    std::fs::set_permissions(
        root.join("etc/init.d/rc"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(root.join("runlevel.utmp"), utmp_entering(b'2')).unwrap();
    g.start().unwrap();
    let check = |secs: u64| {
        vbuild_runtime::start::wait_ready(&g.layout, &g.name, Duration::from_secs(secs))
    };
    // Runlevel S, and /run/utmp a symlink: not followed, so not booted.
    eventually("init's symlinked /run/utmp", || {
        std::fs::symlink_metadata(format!("/proc/{}/root/run/utmp", g.state().init_pid))
            .is_ok_and(|m| m.file_type().is_symlink())
    });
    let e = check(1).unwrap_err().to_string();
    assert!(
        e.contains("sysvinit's default runlevel did not happen within 1 s"),
        "{e}"
    );
    assert!(e.contains("no usable /run/utmp yet"), "{e}");
    assert!(e.contains("--timeout"), "{e}");
    // Runlevel 2 entered, but its rc still runs: still not booted.
    assert_eq!(g.exec("touch /tmp/entered"), 0);
    eventually("runlevel 2 with its rc running", || {
        check(0)
            .unwrap_err()
            .to_string()
            .contains("runlevel 2's `/etc/init.d/rc 2` is still running")
    });
    let e = check(1).unwrap_err().to_string();
    assert!(e.contains("`/etc/init.d/rc 2` is still running"), "{e}");
    // rc done: booted.
    assert_eq!(g.exec("touch /tmp/rc-done"), 0);
    check(60).unwrap();
    let how = vbuild_runtime::stop::stop(&g.layout, &g.name, Duration::from_secs(20)).unwrap();
    assert_eq!(how, Stopped::Graceful, "SIGPWR halts it");
}

#[test]
fn stop_kills_an_init_that_ignores_its_signal() {
    if !root_or_skip() {
        return;
    }
    let g = Guest::new(STUBBORN_INIT, InitKind::Other);
    let s = g.start().unwrap();
    let st = vbuild_runtime::status::status(&g.layout, &g.name).unwrap();
    assert!(st.running && st.processes.unwrap_or(0) >= 1, "{st:?}");
    let how = vbuild_runtime::stop::stop(&g.layout, &g.name, Duration::from_secs(1)).unwrap();
    assert_eq!(how, Stopped::Killed);
    assert!(vbuild_kernel::process::stat(s.init_pid)
        .is_none_or(|p| p.start_ticks != g_start_ticks(s.init_pid) || p.state == 'Z'));
    for d in g.cgroup_dirs() {
        assert!(!d.exists(), "{} left behind", d.display());
    }
}

#[test]
fn one_shot_run_is_pid_1_in_a_fresh_context_and_returns_its_code() {
    if !root_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("box1");
    busybox_rootfs(&root, INIT, APPLETS);
    let layout = Layout::new(Some(&dir.path().join("state")));
    let run = |cmd: &str| {
        vbuild_runtime::oneshot::run(
            &layout,
            &vbuild_runtime::oneshot::RunOptions {
                rootfs: root.clone(),
                argv: vec!["sh".into(), "-c".into(), cmd.into()],
                ..Default::default()
            },
        )
        .unwrap()
    };
    assert_eq!(run("exit 5"), 5);
    assert_eq!(
        run("test $$ = 1 && test \"$(hostname)\" = box1 && test \"$container\" = vbuild"),
        0
    );
    assert_eq!(
        run("test $(ls /proc | grep -c '^[0-9]') -le 6"),
        0,
        "sees host processes"
    );
    assert_eq!(
        run("test -c /dev/null && test ! -e /dev/sda && test -e /run/host/container-manager"),
        0
    );
    assert_eq!(
        run("touch /proc/sys/kernel/hostname 2>/dev/null && echo x > /proc/sys/kernel/hostname"),
        1,
        "/proc/sys must be read-only"
    );
    // Nothing of it remains: no cgroup below vbuild/ named after us.
    let mine = format!("run-{}-", std::process::id());
    for h in ["pids", "memory", "unified"] {
        let d = Path::new("/sys/fs/cgroup").join(h).join("vbuild");
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd.flatten() {
                let name = e.file_name().into_string().unwrap();
                assert!(
                    !name.starts_with(&mine),
                    "{} left behind",
                    e.path().display()
                );
            }
        }
    }
}

const ECHO_INIT: &str = "#!/bin/sh\n\
trap 'exit 0' TERM\n\
echo ready\n\
while :; do if read -r line; then echo \"echo:$line\"; fi; done\n";

#[test]
fn console_relays_both_ways_and_admits_one_client() {
    if !root_or_skip() {
        return;
    }
    let g = Guest::new(ECHO_INIT, InitKind::Other);
    g.start().unwrap();
    let mut c = vbuild_runtime::console::connect(&g.layout, &g.name).unwrap();
    let e = vbuild_runtime::console::connect(&g.layout, &g.name)
        .err()
        .expect("second console refused");
    assert!(
        e.to_string()
            .contains("another `vbuild console` is attached"),
        "{e}"
    );
    // No window size (0x0) header, then a line typed at the console.
    c.send(&[0, 0, 0, 0]).unwrap();
    c.send(b"hello console\n").unwrap();
    let log = g.layout.run_dir(g.name.as_str()).join("console.log");
    eventually("the guest's answer in the console log", || {
        std::fs::read_to_string(&log)
            .map(|t| t.contains("echo:hello console"))
            .unwrap_or(false)
    });
    drop(c);
    // Once the first client left, the next one is admitted.
    eventually("a new console client is admitted", || {
        vbuild_runtime::console::connect(&g.layout, &g.name).is_ok()
    });
}

#[test]
fn delete_refuses_a_running_guest_and_removes_a_stopped_one() {
    if !root_or_skip() {
        return;
    }
    let g = Guest::new(INIT, InitKind::Other);
    g.start().unwrap();
    let e = vbuild_runtime::delete::delete(&g.layout, &g.name).unwrap_err();
    assert!(e.to_string().contains("is running; stop it first"), "{e}");
    assert!(
        g.layout.guest_config(g.name.as_str()).is_file(),
        "refused delete changed something"
    );
    let listed = vbuild_runtime::status::list(&g.layout).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].state, "running");
    assert!(listed[0].processes.unwrap_or(0) >= 1);
    vbuild_runtime::stop::stop(&g.layout, &g.name, Duration::from_secs(20)).unwrap();
    vbuild_runtime::delete::delete(&g.layout, &g.name).unwrap();
    assert!(!g.layout.guest_dir(g.name.as_str()).exists());
    assert!(!g.layout.run_dir(g.name.as_str()).exists());
    assert!(vbuild_runtime::status::list(&g.layout).unwrap().is_empty());
    let e = vbuild_runtime::delete::delete(&g.layout, &g.name).unwrap_err();
    assert!(e.to_string().contains("does not exist"), "{e}");
}

#[test]
fn user_namespace_guest_is_root_inside_and_unprivileged_outside() {
    if !root_or_skip() {
        return;
    }
    let g = Guest::new(INIT, InitKind::Other);
    // The default: no option asks for it.
    let s = match g.start() {
        Ok(s) => s,
        Err(e) if e.to_string().contains("id-mapped mounts need") => {
            vbuild_testsupport::require(
                false,
                &format!("a filesystem that supports id-mapped mounts for the guest store: {e}"),
            );
            return;
        }
        Err(e) => panic!("{e}"),
    };
    // Its range was allocated at first start and recorded in guest.toml
    // and the host-wide registry.
    let cfg = GuestConfig::load(&g.layout.guest_config(g.name.as_str())).unwrap();
    let range = cfg.ids.expect("guest.toml records the id range");
    let base = range.base;
    assert_eq!(range.count, 65536);
    assert!(base >= vbuild_runtime::idrange::BASE);
    assert!(vbuild_runtime::idrange::Registry::host()
        .list()
        .unwrap()
        .iter()
        .any(|(r, root, name)| *r == range && root == g.layout.root() && name == g.name.as_str()));
    assert_eq!(g.state().id_base, base);
    // The user namespace was created by the guest's own host uid.
    let owner = std::fs::read_to_string(format!("/proc/{}/status", s.init_pid)).unwrap();
    assert!(owner.contains("Uid:"), "{owner}");
    let status = std::fs::read_to_string(format!("/proc/{}/status", s.init_pid)).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid_line
            .split_whitespace()
            .skip(1)
            .all(|u| u == base.to_string()),
        "{uid_line}"
    );
    // Inside: root, owning its (id-mapped) rootfs, able to write to it.
    assert_eq!(g.output("id -u").trim(), "0");
    assert_eq!(g.exec("echo hi > /root/made-inside"), 0);
    let made = g
        .layout
        .guest_rootfs(g.name.as_str())
        .join("root/made-inside");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(&made).unwrap().uid(),
        0,
        "on disk the file belongs to the host's root"
    );
    // And nothing of the host's root: module loading stays refused.
    let out = g.output("echo junk > /tmp/x.ko; insmod /tmp/x.ko; echo rc=$?");
    assert!(out.contains("rc=1"), "{out}");
}

#[test]
fn a_reboot_inside_runs_the_restart_command_but_stop_does_not() {
    if !root_or_skip() {
        return;
    }
    let g = Guest::new(INIT, InitKind::Other);
    let marker = g.layout.root().join("restarted");
    let opts = StartOptions {
        on_reboot: Some(vec![
            "/bin/sh".into(),
            "-c".into(),
            format!("echo again >> {}", marker.display()),
        ]),
        ..options()
    };
    let s = vbuild_runtime::start::start(&g.layout, &g.name, &opts).unwrap();
    // reboot(2) in a PID namespace ends its init with SIGHUP; CAP_SYS_BOOT
    // is kept for exactly this.
    let _ = g.exec("reboot -f");
    eventually("the guest is down after its reboot", || {
        State::load(&g.layout, g.name.as_str()).unwrap().is_none()
            && vbuild_kernel::process::stat(s.init_pid).is_none_or(|p| p.state == 'Z')
    });
    eventually("the restart command ran", || marker.exists());
    let log =
        std::fs::read_to_string(g.layout.run_dir(g.name.as_str()).join("console.log")).unwrap();
    assert!(log.contains("rebooted"), "{log}");
    for d in g.cgroup_dirs() {
        assert!(!d.exists(), "{} left behind", d.display());
    }
    // A stop is not a reboot, even for an init that reboots to stop (as
    // sysvinit's ctrlaltdel entry does).
    std::fs::remove_file(&marker).unwrap();
    let init = g.layout.guest_rootfs(g.name.as_str()).join("sbin/init");
    std::fs::write(
        &init,
        "#!/bin/sh\ntrap 'reboot -f' TERM\nwhile :; do sleep 1 & wait $!; done\n",
    )
    .unwrap();
    vbuild_runtime::start::start(&g.layout, &g.name, &opts).unwrap();
    vbuild_runtime::stop::stop(&g.layout, &g.name, Duration::from_secs(20)).unwrap();
    assert!(!marker.exists(), "stop restarted the guest");
}

#[test]
fn a_privileged_guest_runs_as_host_root_and_is_reported_as_such() {
    if !root_or_skip() {
        return;
    }
    let g = Guest::new(INIT, InitKind::Other);
    let opts = StartOptions {
        privileged: true,
        ..options()
    };
    let s = vbuild_runtime::start::start(&g.layout, &g.name, &opts).unwrap();
    let status = std::fs::read_to_string(format!("/proc/{}/status", s.init_pid)).unwrap();
    let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(uid.split_whitespace().skip(1).all(|u| u == "0"), "{uid}");
    let st = vbuild_runtime::status::status(&g.layout, &g.name).unwrap();
    assert!(st.privileged);
    assert_eq!(st.host_uid, None);
    let json = serde_json::to_value(&st).unwrap();
    assert_eq!(json["privileged"], serde_json::json!(true));
    // No id range was taken for it.
    let cfg = GuestConfig::load(&g.layout.guest_config(g.name.as_str())).unwrap();
    assert_eq!(cfg.ids, None);
    assert_eq!(g.output("id -u").trim(), "0");
    vbuild_runtime::stop::stop(&g.layout, &g.name, Duration::from_secs(20)).unwrap();
    // Stopped, it is reported by its config: unprivileged by default.
    let st = vbuild_runtime::status::status(&g.layout, &g.name).unwrap();
    assert!(!st.privileged);
}
