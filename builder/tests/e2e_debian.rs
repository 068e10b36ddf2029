//! End to end against the real Debian mirror: build bookworm minbase and
//! compare it with mmdebstrap's, check the dpkg database and apt inside it,
//! then build systemd guests of bookworm and trixie and boot them, and a
//! sysvinit guest of bookworm.
//!
//! Runs when `VBUILD_E2E=1` (the README's test command sets it); needs root
//! and deb.debian.org. With `CI=true` a missing precondition fails the test.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn enabled() -> bool {
    let ci = std::env::var("CI").as_deref() == Ok("true");
    if std::env::var("VBUILD_E2E").as_deref() != Ok("1") {
        assert!(!ci, "CI=true but VBUILD_E2E is not 1: run ./test.sh");
        eprintln!("skipping end-to-end test: set VBUILD_E2E=1");
        return false;
    }
    if !nix::unistd::geteuid().is_root() {
        assert!(!ci, "end-to-end test needs root");
        eprintln!("skipping end-to-end test: needs root");
        return false;
    }
    true
}

struct Root {
    dir: tempfile::TempDir,
    guests: Vec<String>,
}

impl Root {
    fn new() -> Root {
        let base = std::env::var("VBUILD_E2E_DIR").unwrap_or_else(|_| "/var/tmp".into());
        Root {
            dir: tempfile::Builder::new()
                .prefix("vbuild-e2e-")
                .tempdir_in(base)
                .unwrap(),
            guests: vec![],
        }
    }
    fn vbuild(&self, args: &[&str]) -> Output {
        let out = Command::new(env!("CARGO_BIN_EXE_vbuild"))
            .arg("--root")
            .arg(self.dir.path())
            .arg("--quiet")
            .args(args)
            .output()
            .unwrap();
        eprintln!(
            "$ vbuild {}\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
    fn ok(&self, args: &[&str]) -> String {
        let out = self.vbuild(args);
        assert!(out.status.success(), "vbuild {} failed", args.join(" "));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
    fn rootfs(&self, name: &str) -> PathBuf {
        self.dir.path().join("guests").join(name).join("rootfs")
    }
    fn build(&mut self, args: &[&str], name: &str) {
        self.guests.push(name.to_string());
        let mut a = args.to_vec();
        a.extend(["--name", name]);
        self.ok(&a);
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        for g in self.guests.clone() {
            let _ = self.vbuild(&["stop", &g, "--timeout", "5"]);
            let _ = self.vbuild(&["delete", &g]);
        }
        // The default network's bridge and tables were made for this root.
        let _ = self.vbuild(&["net", "delete", "vbuild0"]);
    }
}

/// Held by each test that boots guests, for its whole run: each root
/// makes its own `vbuild0` but they share the host's bridge of that name
/// (one test's guest found its address taken by the other's, and one
/// test's cleanup deleted the bridge under the other's guests); and with
/// the sysvinit test running beside it, the apt test's apt-get once could
/// not resolve deb.debian.org ("Temporary failure resolving"; seen once,
/// cause not found; each passes alone). Serial costs about 20 s.
static BOOTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_boot_test_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    BOOTS.lock().unwrap_or_else(|e| e.into_inner())
}

fn sh(cmd: &str) -> Output {
    Command::new("sh").arg("-c").arg(cmd).output().unwrap()
}

/// Installed packages of a rootfs by name; every one must be `ii`.
fn installed(rootfs: &Path) -> BTreeSet<String> {
    let status = std::fs::read_to_string(rootfs.join("var/lib/dpkg/status")).unwrap();
    let mut out = BTreeSet::new();
    for para in status.split("\n\n") {
        let field = |f: &str| {
            para.lines()
                .find_map(|l| l.strip_prefix(f).map(|v| v.trim().to_string()))
        };
        if let (Some(p), Some(s)) = (field("Package:"), field("Status:")) {
            assert_eq!(s, "install ok installed", "{p} is not installed cleanly");
            out.insert(p);
        }
    }
    out
}

/// Runs `cmd` chrooted in `rootfs` with /dev, /proc and the host's DNS, in
/// a private mount namespace (test tooling only; vbuild never does this).
fn chroot(rootfs: &Path, cmd: &str) -> Output {
    let r = rootfs.display();
    sh(&format!(
        "cp /etc/resolv.conf {r}/run/resolv.conf.e2e && \
         unshare --mount --fork sh -c 'mount --bind /dev {r}/dev && mount -t proc proc {r}/proc && \
         rm -f {r}/etc/resolv.conf.e2e-keep; \
         if [ -e {r}/etc/resolv.conf ] || [ -L {r}/etc/resolv.conf ]; then mv {r}/etc/resolv.conf {r}/etc/resolv.conf.e2e-keep; fi; \
         cp {r}/run/resolv.conf.e2e {r}/etc/resolv.conf; \
         chroot {r} {cmd}; rc=$?; \
         rm -f {r}/etc/resolv.conf; [ -e {r}/etc/resolv.conf.e2e-keep ] || [ -L {r}/etc/resolv.conf.e2e-keep ] && mv {r}/etc/resolv.conf.e2e-keep {r}/etc/resolv.conf; \
         exit $rc'; rc=$?; rm -f {r}/run/resolv.conf.e2e; exit $rc"
    ))
}

#[test]
fn bookworm_minbase_matches_mmdebstrap_and_systemd_guests_boot() {
    if !enabled() {
        return;
    }
    // Declared before the root: released after its cleanup.
    let _boots = one_boot_test_at_a_time();
    let mut root = Root::new();

    // 1. bookworm minbase, compared with mmdebstrap's minbase of the same day.
    // A full copy: compared with mmdebstrap's tree and chrooted into.
    root.build(&["debian", "bookworm", "--no-init", "--copy"], "e2e-min");
    let ours = installed(&root.rootfs("e2e-min"));
    let reference = root.dir.path().join("mmdebstrap-ref");
    let out = sh(&format!(
        "mmdebstrap --quiet --variant=minbase --mode=root bookworm {} http://deb.debian.org/debian",
        reference.display()
    ));
    assert!(
        out.status.success(),
        "mmdebstrap: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs = installed(&reference);
    // apt's automatic marks (extended_states) match too, so `apt autoremove`
    // treats both trees alike.
    let auto = |r: &Path| -> BTreeSet<String> {
        let out = chroot(r, "apt-mark showauto");
        assert!(out.status.success(), "apt-mark showauto in {}", r.display());
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    };
    let (our_auto, their_auto) = (auto(&root.rootfs("e2e-min")), auto(&reference));
    let _ = std::fs::remove_dir_all(&reference);
    assert_eq!(
        ours.symmetric_difference(&theirs).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "package sets differ from mmdebstrap minbase"
    );
    assert_eq!(
        our_auto
            .symmetric_difference(&their_auto)
            .collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "automatically installed packages differ from mmdebstrap minbase"
    );
    assert!(our_auto.contains("libapt-pkg6.0") && !our_auto.contains("apt"));
    assert!(ours.len() > 50 && ours.contains("apt") && ours.contains("dpkg"));

    // 2. the dpkg database is consistent and apt works against the mirror.
    let rootfs = root.rootfs("e2e-min");
    let audit = chroot(&rootfs, "dpkg --audit");
    assert!(audit.status.success());
    assert_eq!(
        String::from_utf8_lossy(&audit.stdout).trim(),
        "",
        "dpkg --audit is not silent"
    );
    let verify = chroot(&rootfs, "dpkg -V");
    assert!(
        verify.status.success(),
        "dpkg -V: {}",
        String::from_utf8_lossy(&verify.stdout)
    );
    let update = chroot(&rootfs, "apt-get update");
    assert!(
        update.status.success(),
        "apt-get update: {}{}",
        String::from_utf8_lossy(&update.stdout),
        String::from_utf8_lossy(&update.stderr)
    );

    // 3. tailoring: hostname, empty machine-id.
    assert_eq!(
        std::fs::read_to_string(rootfs.join("etc/hostname"))
            .unwrap()
            .trim(),
        "e2e-min"
    );
    assert_eq!(
        std::fs::read_to_string(rootfs.join("etc/machine-id")).unwrap(),
        ""
    );

    // 4. systemd guests boot to running (degraded only for units that cannot
    //    work in any container) and stop leaving nothing behind.
    for release in ["bookworm", "trixie"] {
        let name = format!("e2e-{release}");
        root.build(&["debian", release], &name);
        root.ok(&["start", &name, "--wait"]);
        let state = root.vbuild(&[
            "exec",
            &name,
            "--",
            "systemctl",
            "is-system-running",
            "--wait",
        ]);
        let state = String::from_utf8_lossy(&state.stdout).trim().to_string();
        let failed = root.ok(&[
            "exec",
            &name,
            "--",
            "systemctl",
            "--failed",
            "--no-legend",
            "--plain",
        ]);
        eprintln!("{release}: {state}; failed units: {failed}");
        assert!(
            state == "running",
            "{release}: system state {state}, failed units: {failed}"
        );
        // networkd takes over the addresses the runtime set without a fight
        // (bookworm's 252 used to loop on an IPv4 address lacking its
        // broadcast until "Numerical result out of range").
        let networkd = root.ok(&[
            "exec",
            &name,
            "--",
            "journalctl",
            "-b",
            "-u",
            "systemd-networkd",
            "--no-pager",
            "-o",
            "cat",
        ]);
        assert!(
            !networkd.contains("Failed to configure")
                && !networkd.contains("eth0: Failed")
                && !networkd.contains("out of range"),
            "{release}: systemd-networkd failed:\n{networkd}"
        );
        let pid1 = root.ok(&["exec", &name, "--", "cat", "/proc/1/comm"]);
        assert_eq!(pid1.trim(), "systemd");
        // A default guest is unprivileged: init's uid on the host is the
        // first id of the guest's own range, and status says so.
        let running = root.ok(&["status", &name, "--json"]);
        let v: serde_json::Value = serde_json::from_str(&running).unwrap();
        assert_eq!(v["privileged"], serde_json::json!(false), "{running}");
        let base = v["host_uid"].as_u64().expect("host_uid in status --json");
        assert!(base >= 0x10_0000, "{running}");
        let init_pid = v["init_pid"].as_i64().unwrap();
        let st = std::fs::read_to_string(format!("/proc/{init_pid}/status")).unwrap();
        let uid = st.lines().find(|l| l.starts_with("Uid:")).unwrap();
        assert!(
            uid.split_whitespace()
                .skip(1)
                .all(|u| u == base.to_string()),
            "{release}: init runs as {uid}, not the range base {base}"
        );
        // dpkg and apt work as the unprivileged root.
        let dpkg = root.vbuild(&["exec", &name, "--", "dpkg", "--audit"]);
        assert!(dpkg.status.success(), "{release}: dpkg --audit failed");
        root.ok(&["stop", &name]);
        let status = root.ok(&["status", &name, "--json"]);
        assert!(status.contains("stopped"), "{status}");
        assert!(!Path::new(&format!("/sys/fs/cgroup/pids/vbuild/{name}")).exists());
        assert!(!Path::new(&format!("/sys/fs/cgroup/unified/vbuild/{name}")).exists());
    }
}

/// Every entry below `dir` (path, kind, size, mode, owner): what an overlay
/// guest's writes must never change in its template.
fn tree_listing(dir: &Path) -> BTreeSet<String> {
    use std::os::unix::fs::MetadataExt;
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let md = e.path().symlink_metadata().unwrap();
            if md.is_dir() {
                stack.push(e.path());
            }
            out.insert(format!(
                "{} {:o} {}:{} {} {}",
                e.path().strip_prefix(dir).unwrap().display(),
                md.mode(),
                md.uid(),
                md.gid(),
                md.len(),
                md.mtime()
            ));
        }
    }
    out
}

#[test]
fn apt_install_and_upgrade_in_an_overlay_guest_leave_the_template_and_others_alone() {
    if !enabled() {
        return;
    }
    let _boots = one_boot_test_at_a_time();
    let mut root = Root::new();
    root.build(&["debian", "bookworm"], "e2e-apt1");
    root.build(&["debian", "bookworm"], "e2e-apt2");
    let cfg = |g: &str| {
        std::fs::read_to_string(root.dir.path().join(format!("guests/{g}/guest.toml"))).unwrap()
    };
    let tpl_line = |g: &str| {
        cfg(g)
            .lines()
            .find(|l| l.starts_with("template = "))
            .map(str::to_string)
            .expect("an overlay guest pins its template")
    };
    assert_eq!(tpl_line("e2e-apt1"), tpl_line("e2e-apt2"));
    let id = tpl_line("e2e-apt1")
        .trim_start_matches("template = ")
        .trim_matches('"')
        .to_string();
    let tpl = root.dir.path().join(format!("templates/{id}/rootfs"));
    let before = tree_listing(&tpl);
    root.ok(&["start", "e2e-apt1", "--wait"]);
    root.ok(&["start", "e2e-apt2", "--wait"]);
    let apt = root.vbuild(&[
        "exec",
        "e2e-apt1",
        "--",
        "sh",
        "-c",
        "apt-get update && apt-get install -y hello && apt-get upgrade -y && hello",
    ]);
    assert!(apt.status.success(), "apt-get in the overlay guest failed");
    assert_eq!(
        String::from_utf8_lossy(&apt.stdout).lines().last(),
        Some("Hello, world!")
    );
    let dpkg = root.ok(&[
        "exec",
        "e2e-apt1",
        "--",
        "dpkg-query",
        "-W",
        "-f",
        "${Status}",
        "hello",
    ]);
    assert_eq!(dpkg, "install ok installed");
    // The other guest of the same template has no hello.
    let other = root.vbuild(&[
        "exec",
        "e2e-apt2",
        "--",
        "sh",
        "-c",
        "command -v hello; dpkg-query -W hello",
    ]);
    assert!(!other.status.success(), "e2e-apt2 sees hello");
    assert_eq!(String::from_utf8_lossy(&other.stdout).trim(), "");
    assert!(!tpl.join("usr/bin/hello").exists());
    assert_eq!(
        tree_listing(&tpl),
        before,
        "apt-get in a guest changed its template"
    );
    let upper = root.dir.path().join("guests/e2e-apt1/layer/upper");
    assert!(
        upper.join("usr/bin/hello").is_file(),
        "hello is in the guest's own layer"
    );
    root.ok(&["stop", "e2e-apt1"]);
    root.ok(&["stop", "e2e-apt2"]);
}

/// Deletes network `.1` of root `.0` when dropped, after every guest of
/// that root is stopped and deleted.
struct NetGuard(PathBuf, &'static str);

impl Drop for NetGuard {
    fn drop(&mut self) {
        let vbuild = |args: &[&str]| {
            let _ = Command::new(env!("CARGO_BIN_EXE_vbuild"))
                .arg("--root")
                .arg(&self.0)
                .arg("--quiet")
                .args(args)
                .output();
        };
        let guests = std::fs::read_dir(self.0.join("guests"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| !n.starts_with('.'))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        for g in &guests {
            vbuild(&["stop", g, "--timeout", "5"]);
            vbuild(&["delete", g]);
        }
        vbuild(&["net", "delete", self.1]);
    }
}

/// Every process of running guest `name` as its command line (one line each).
fn guest_processes(root: &Root, name: &str) -> Vec<String> {
    let out = root.ok(&[
        "exec",
        name,
        "--",
        "sh",
        "-c",
        "for p in /proc/[0-9]*; do [ -r $p/cmdline ] && tr '\\0' ' ' < $p/cmdline && echo; done",
    ]);
    out.lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn a_sysvinit_bookworm_boots_to_runlevel_2_and_stops_cleanly() {
    if !enabled() {
        return;
    }
    let _boots = one_boot_test_at_a_time();
    let mut root = Root::new();
    let name = "e2e-sysv";
    // A network of its own: the other tests here share vbuild0's bridge.
    let net = "e2esysv0";
    root.ok(&["net", "create", net, "--subnet", "10.79.7.0/24"]);
    let _net = NetGuard(root.dir.path().to_path_buf(), net);
    // sysvinit-core in --include replaces the recipe's systemd-sysv.
    root.build(
        &[
            "debian",
            "bookworm",
            "--include",
            "sysvinit-core",
            "--net",
            net,
        ],
        name,
    );
    let cfg = std::fs::read_to_string(root.dir.path().join("guests/e2e-sysv/guest.toml")).unwrap();
    assert!(cfg.contains("kind = \"sysvinit\""), "{cfg}");

    let started = std::time::Instant::now();
    root.ok(&["start", name, "--wait"]);
    let boot = started.elapsed();
    // `start --wait` returned once init was in its default runlevel and
    // that runlevel's rc had finished: nothing of `rc 2` still runs.
    let runlevel = root.ok(&["exec", name, "--", "runlevel"]);
    assert_eq!(runlevel.trim(), "N 2", "runlevel after start --wait");
    let procs = guest_processes(&root, name);
    eprintln!("sysvinit guest booted in {boot:?}; processes: {procs:#?}");
    assert!(
        !procs.iter().any(|p| p.contains("/etc/init.d/rc")),
        "start --wait returned while rc still ran: {procs:#?}"
    );
    assert!(
        procs.iter().any(|p| p.starts_with("init")),
        "init is not PID 1's name: {procs:#?}"
    );
    let pid1 = root.ok(&["exec", name, "--", "cat", "/proc/1/comm"]);
    assert_eq!(pid1.trim(), "init");
    let v: serde_json::Value = serde_json::from_str(&root.ok(&["status", name, "--json"])).unwrap();
    assert_eq!(v["state"], "running", "{v}");
    assert_eq!(
        v["booted"], true,
        "status calls the booted guest booted: {v}"
    );

    // stop: SIGPWR runs the inittab's powerwait entry (shutdown -h), init
    // halts and the guest ends by itself within a few seconds.
    let t = std::time::Instant::now();
    let out = root.ok(&["--json", "stop", name, "--timeout", "20"]);
    let took = t.elapsed();
    eprintln!("sysvinit guest stopped in {took:?}: {out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["how"], "graceful", "not a clean shutdown: {out}");
    assert!(
        took < std::time::Duration::from_secs(10),
        "stop took {took:?}"
    );
    let status = root.ok(&["status", name, "--json"]);
    assert!(status.contains("stopped"), "{status}");
    for h in ["pids", "memory", "unified"] {
        assert!(
            !Path::new(&format!("/sys/fs/cgroup/{h}/vbuild/{name}")).exists(),
            "{h} cgroup left behind"
        );
    }

    // delete: nothing of it is left.
    root.ok(&["delete", name]);
    assert!(!root.dir.path().join("guests").join(name).exists());
    assert!(
        !root.dir.path().join("run").join(name).exists(),
        "run files left behind"
    );
    let list = root.ok(&["list", "--json"]);
    assert!(!list.contains(name), "{list}");
}
