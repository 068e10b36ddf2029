//! What a hostile root inside a default (unprivileged) guest tries with
//! `mount` and the kernel's per-user counters, and why each fails: /proc/sys
//! writes that would reach the host (core_pattern), the host's binfmt_misc,
//! tracefs and debugfs, every cgroup v1 hierarchy (limits, devices, the
//! freezer), and holding inotify instances that would be charged to host
//! root. After all of it the guest still answers exec, and a group the guest
//! froze does not keep `stop`, `delete` or a new `start` from working.
//! Needs root; uses the busybox rootfs of `lifecycle.rs`.

mod common;
use common::{busybox_rootfs, root_or_skip, unique};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use vbuild_runtime::config::{GuestConfig, InitConfig, InitKind};
use vbuild_runtime::exec::ExecOptions;
use vbuild_runtime::limits::Limits;
use vbuild_runtime::name::GuestName;
use vbuild_runtime::net::{NetConfig, NetMode};
use vbuild_runtime::paths::Layout;
use vbuild_runtime::start::StartOptions;
use vbuild_runtime::state::State;
use vbuild_runtime::supervisor::SupervisorProgram;

/// The busybox applets this file's guests get.
const APPLETS: &[&str] = &[
    "sh", "sleep", "cat", "ls", "echo", "mount", "mkdir", "true", "grep", "id", "test",
];

const INIT: &str = "#!/bin/sh\n\
trap 'exit 0' TERM\n\
while :; do sleep 1 & wait $!; done\n";

const MEMORY_LIMIT: u64 = 256 << 20;

/// A default guest (memory-limited) in its own state root; stopped, its
/// cgroups and id range removed when dropped.
struct Guest {
    _dir: tempfile::TempDir,
    layout: Layout,
    name: GuestName,
}

impl Guest {
    fn new() -> Guest {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(Some(dir.path()));
        let name = GuestName::parse(&unique("h")).unwrap();
        let n = name.as_str();
        busybox_rootfs(&layout.guest_rootfs(n), INIT, APPLETS);
        GuestConfig {
            name: n.to_string(),
            distro: "busybox".into(),
            release: "test".into(),
            variant: String::new(),
            created: 0,
            init: InitConfig {
                path: "/sbin/init".into(),
                args: vec![],
                kind: InitKind::Other,
            },
            limits: Limits {
                memory: Some(MEMORY_LIMIT),
                ..Default::default()
            },
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

    fn start(&self) -> vbuild_runtime::start::Started {
        let opts = StartOptions {
            privileged: false,
            supervisor: SupervisorProgram {
                program: PathBuf::from(env!("CARGO_BIN_EXE_vbuild-supervisor")),
                args: vec![],
            },
            on_reboot: None,
            on_exit: None,
        };
        vbuild_runtime::start::start(&self.layout, &self.name, &opts).unwrap()
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
        std::fs::read_to_string(format!("/proc/{}/root/tmp/out", self.state().init_pid)).unwrap()
    }

    fn state(&self) -> State {
        State::load(&self.layout, self.name.as_str())
            .unwrap()
            .expect("guest has state")
    }

    /// The guest's memory limit as the kernel enforces it.
    fn kernel_memory_limit(&self) -> Option<u64> {
        let h = vbuild_kernel::cgroup::Hierarchy::detect().unwrap();
        let cg = vbuild_kernel::cgroup::Cgroup::open(&h, &format!("vbuild/{}", self.name))
            .unwrap()
            .expect("the guest's cgroup exists");
        cg.effective_limits().memory
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        if let Ok(Some(_)) = State::load(&self.layout, self.name.as_str()) {
            let _ = vbuild_runtime::stop::stop(&self.layout, &self.name, Duration::from_secs(1));
        }
        let _ = vbuild_runtime::idrange::Registry::host()
            .release(self.layout.root(), self.name.as_str());
    }
}

/// The `rc=N` a guest command line printed.
fn rc(out: &str, tag: &str) -> i32 {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{tag} rc=")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `{tag} rc=` in {out}"))
}

#[test]
fn proc_sys_writes_never_reach_the_host_kernel() {
    if !root_or_skip() {
        return;
    }
    let before = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    let g = Guest::new();
    g.start();
    let out = g.output(
        "mount -o remount,rw /proc/sys; echo remount rc=$?; \
         echo '|/tmp/pwn %p' > /proc/sys/kernel/core_pattern; echo core rc=$?; \
         echo 1 > /proc/sys/kernel/sysrq; echo sysrq rc=$?",
    );
    assert_ne!(rc(&out, "core"), 0, "{out}");
    assert_ne!(rc(&out, "sysrq"), 0, "{out}");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap(),
        before
    );
    assert_eq!(g.output("echo alive").trim(), "alive");
}

#[test]
fn binfmt_misc_tracefs_and_debugfs_give_nothing_of_the_host() {
    if !root_or_skip() {
        return;
    }
    let host_binfmt = |_: ()| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir("/proc/sys/fs/binfmt_misc")
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    let before = host_binfmt(());
    let g = Guest::new();
    g.start();
    let out = g.output(
        "mkdir -p /tmp/b /tmp/t /tmp/d; \
         mount -t binfmt_misc none /tmp/b; echo binfmt rc=$?; \
         echo ':vbuildpwn:E::vbpwn::/bin/true:' > /tmp/b/register; echo register rc=$?; \
         mount -t tracefs none /tmp/t; echo tracefs rc=$?; \
         mount -t debugfs none /tmp/d; echo debugfs rc=$?",
    );
    assert_ne!(rc(&out, "tracefs"), 0, "{out}");
    assert_ne!(rc(&out, "debugfs"), 0, "{out}");
    // Linux 6.7+ gives a user namespace a binfmt_misc instance of its own;
    // whatever the guest registers there, the host's instance is untouched.
    eprintln!(
        "binfmt_misc in the guest: mount rc={}, register rc={}",
        rc(&out, "binfmt"),
        rc(&out, "register")
    );
    let after = host_binfmt(());
    assert_eq!(before, after, "{out}");
    assert!(!after.iter().any(|e| e == "vbuildpwn"));
    assert_eq!(g.output("echo alive").trim(), "alive");
}

#[test]
fn no_cgroup_v1_hierarchy_is_mountable_and_the_limits_hold() {
    if !root_or_skip() {
        return;
    }
    let g = Guest::new();
    g.start();
    assert_eq!(g.kernel_memory_limit(), Some(MEMORY_LIMIT));
    let mut script = String::from("mkdir -p /tmp/c; ");
    for c in ["devices", "memory", "pids", "freezer", "cpu", "blkio"] {
        script.push_str(&format!(
            "mkdir -p /tmp/c/{c}; mount -t cgroup -o {c} none /tmp/c/{c}; echo {c} rc=$?; "
        ));
    }
    script.push_str(
        "mkdir -p /tmp/c/named; mount -t cgroup -o none,name=pwn none /tmp/c/named; echo named rc=$?; \
         test -e /tmp/c/devices/devices.allow && echo 'b 7:0 r' > /tmp/c/devices/devices.allow; echo allow rc=$?; \
         test -e /tmp/c/memory/memory.limit_in_bytes && echo -1 > /tmp/c/memory/memory.limit_in_bytes; echo limit rc=$?; \
         test -e /tmp/c/freezer/freezer.state && echo THAWED > /tmp/c/freezer/freezer.state; echo freezer rc=$?; \
         mount -o remount,rw /sys/fs/cgroup; echo remount rc=$?; \
         echo max > /sys/fs/cgroup/memory.max; echo v2limit rc=$?; \
         grep -c . /proc/self/cgroup; echo cgroupfile rc=$?",
    );
    let out = g.output(&script);
    for tag in [
        "devices", "memory", "pids", "freezer", "cpu", "blkio", "named", "allow", "limit",
        "freezer", "remount", "v2limit",
    ] {
        assert_ne!(rc(&out, tag), 0, "{tag} succeeded inside the guest: {out}");
    }
    assert_eq!(
        g.kernel_memory_limit(),
        Some(MEMORY_LIMIT),
        "the guest changed its own memory limit: {out}"
    );
    // In every hierarchy its view is rooted at its own group: never `/..`.
    let groups = g.output("cat /proc/self/cgroup");
    assert!(groups.lines().any(|l| l == "0::/"), "{groups}");
    assert!(groups.lines().all(|l| l.ends_with(":/")), "{groups}");
    assert_eq!(g.output("echo alive").trim(), "alive");
}

#[test]
fn a_group_the_guest_froze_does_not_block_stop_delete_or_start() {
    if !root_or_skip() {
        return;
    }
    let g = Guest::new();
    g.start();
    let out = g.output(
        "mkdir /sys/fs/cgroup/frozen; echo mkdir rc=$?; \
         sleep 1000 > /dev/null 2>&1 < /dev/null & \
         echo $! > /sys/fs/cgroup/frozen/cgroup.procs; echo move rc=$?; \
         echo 1 > /sys/fs/cgroup/frozen/cgroup.freeze; echo freeze rc=$?; \
         cat /sys/fs/cgroup/frozen/cgroup.events",
    );
    assert_eq!(rc(&out, "mkdir"), 0, "{out}");
    assert_eq!(rc(&out, "freeze"), 0, "{out}");
    vbuild_runtime::stop::stop(&g.layout, &g.name, Duration::from_secs(2)).unwrap();
    assert!(State::load(&g.layout, g.name.as_str()).unwrap().is_none());
    g.start();
    assert_eq!(g.output("echo again").trim(), "again");
    vbuild_runtime::stop::stop(&g.layout, &g.name, Duration::from_secs(2)).unwrap();
    vbuild_runtime::delete::delete(&g.layout, &g.name).unwrap();
    let left = Path::new("/sys/fs/cgroup/unified/vbuild").join(g.name.as_str());
    assert!(!left.exists(), "{} left behind", left.display());
}

#[test]
fn inotify_instances_held_in_a_guest_are_not_charged_to_host_root() {
    if !root_or_skip() {
        return;
    }
    if !Path::new("/usr/bin/python3").exists() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("needs /usr/bin/python3 to hold inotify instances");
        }
        eprintln!("skipping: needs /usr/bin/python3");
        return;
    }
    let g = Guest::new();
    let s = g.start();
    let ns = std::fs::File::open(format!("/proc/{}/ns/user", s.init_pid)).unwrap();
    use std::os::fd::AsRawFd;
    let ns_fd = ns.as_raw_fd();
    // A process in the guest's user namespace takes 200 instances and
    // holds them until its stdin closes.
    let mut holder = std::process::Command::new("/usr/bin/python3");
    holder
        .args([
            "-c",
            "import ctypes,sys\n\
             libc=ctypes.CDLL(None,use_errno=True)\n\
             n=sum(1 for _ in range(200) if libc.inotify_init1(0)>=0)\n\
             print(n,flush=True)\n\
             sys.stdin.read()\n",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    // SAFETY: setns between fork and exec (one thread there).
    unsafe {
        holder.pre_exec(move || {
            if libc::setns(ns_fd, libc::CLONE_NEWUSER) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = holder.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let held: u32 = line.trim().parse().unwrap();
    // The guest is bounded (its user.max_inotify_instances, and the host's
    // per-uid limit of its own host uid)...
    assert!(held > 0 && held <= 128, "held {held}");
    // ...and host root can still make instances.
    // SAFETY: plain syscall; the descriptor is closed at once.
    let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
    let err = std::io::Error::last_os_error();
    if fd >= 0 {
        // SAFETY: ours.
        unsafe { libc::close(fd) };
    }
    child.stdin.take().unwrap().write_all(b"").unwrap();
    let _ = child.wait();
    assert!(
        fd >= 0,
        "host root's inotify_init failed while the guest held {held}: {err}"
    );
    assert_eq!(
        g.output("cat /proc/sys/user/max_inotify_instances").trim(),
        "128"
    );
}
