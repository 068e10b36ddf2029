//! Autostart and restart policies (issue 13) through the real binary:
//! `vbuild autostart NAME on|off`, `start --autostart` / `stop
//! --autostart`, `autostart install|uninstall` into a temporary root
//! (never /etc), and `--restart no|on-failure|always` on busybox guests
//! whose init ends on its own. The guest tests need root and busybox-static.

use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const BUSYBOX: &str = "/bin/busybox";

const APPLETS: &[&str] = &["sh", "sleep", "cat", "echo", "true"];

/// An init that ends on SIGTERM with status 0.
const INIT: &str = "#!/bin/sh\ntrap 'exit 0' TERM\nwhile :; do sleep 1 & wait $!; done\n";

/// An init that fails a moment after it starts.
const FAILING: &str = "#!/bin/sh\necho failing soon\nsleep 1\nexit 1\n";

/// An init that ends well a moment after it starts.
const DONE: &str = "#!/bin/sh\necho done soon\nsleep 1\nexit 0\n";

fn root_or_skip() -> bool {
    vbuild_testsupport::require(
        vbuild_testsupport::is_root(),
        "root (run the tests as root: sudo ./test.sh)",
    ) && vbuild_testsupport::require(
        Path::new(BUSYBOX).is_file(),
        "busybox-static at /bin/busybox (scripts/host-deps.sh installs it)",
    )
}

static SERIAL: AtomicU32 = AtomicU32::new(0);

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        SERIAL.fetch_add(1, Ordering::Relaxed)
    )
}

/// A state root with guests; every guest is killed and deleted (cgroups,
/// id ranges and all) when dropped.
struct Root {
    dir: tempfile::TempDir,
    names: Vec<String>,
}

impl Root {
    fn new() -> Root {
        Root {
            dir: tempfile::tempdir().unwrap(),
            names: Vec::new(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A guest.toml as written before autostart and restart policies
    /// existed (neither field), and, with `init`, a busybox rootfs.
    fn guest(&mut self, init: Option<&str>) -> String {
        let name = unique("au");
        let g = self.path().join("guests").join(&name);
        std::fs::create_dir_all(&g).unwrap();
        if let Some(init) = init {
            let r = g.join("rootfs");
            for d in [
                "bin", "sbin", "etc", "root", "tmp", "proc", "sys", "dev", "run",
            ] {
                std::fs::create_dir_all(r.join(d)).unwrap();
            }
            std::fs::copy(BUSYBOX, r.join("bin/busybox")).unwrap();
            for a in APPLETS {
                std::os::unix::fs::symlink("busybox", r.join("bin").join(a)).unwrap();
            }
            std::fs::write(r.join("sbin/init"), init).unwrap();
            std::fs::set_permissions(r.join("sbin/init"), std::fs::Permissions::from_mode(0o755))
                .unwrap();
        }
        std::fs::write(
            g.join("guest.toml"),
            format!(
                "name = \"{name}\"\ndistro = \"busybox\"\nrelease = \"test\"\nvariant = \"\"\ncreated = 0\n[init]\npath = \"/sbin/init\"\nkind = \"other\"\n[net]\nmode = \"none\"\n"
            ),
        )
        .unwrap();
        self.names.push(name.clone());
        name
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_vbuild"));
        c.arg("--root")
            .arg(self.path())
            .env_remove("VBUILD_ROOT")
            .env_remove("VBUILD_AUTOSTART_SYSROOT")
            .env("VBUILD_IDRANGES", self.path().join("id-ranges.toml"))
            .args(args)
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// `args` must succeed; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(o.status.success(), "{args:?}: {}{}", out(&o), err(&o));
        out(&o)
    }

    fn json(&self, args: &[&str]) -> (Option<i32>, Value) {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let o = self.run(&a);
        let v = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {}{}", out(&o), err(&o)));
        (o.status.code(), v)
    }

    fn status(&self, g: &str) -> Value {
        let (code, v) = self.json(&["status", g]);
        assert_eq!(code, Some(0), "{v}");
        v
    }

    fn config(&self, g: &str) -> String {
        std::fs::read_to_string(self.path().join("guests").join(g).join("guest.toml")).unwrap()
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = self.run(&["-q", "delete", "--force", n]);
            for h in [
                "pids", "memory", "devices", "unified", "freezer", "cpu", "cpuacct", "blkio",
            ] {
                let d = Path::new("/sys/fs/cgroup").join(h).join("vbuild").join(n);
                let _ = std::fs::remove_dir(d.join("guest"));
                let _ = std::fs::remove_dir(d);
            }
        }
    }
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Polls `f` until it holds (at most two minutes: a slow CI machine is
/// not a failure, a guest that never gets there is).
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(120);
    while !f() {
        assert!(Instant::now() < until, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The results of a several-names `--json` answer, as (name, ok, kind).
fn results(v: &Value) -> Vec<(String, bool, String)> {
    v["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results: {v}"))
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_string(),
                r["ok"].as_bool().unwrap(),
                r["error"]["kind"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn marks_are_recorded_shown_and_bad_requests_refused_without_root() {
    let mut r = Root::new();
    let a = r.guest(None);
    let b = r.guest(None);
    // Old guest.toml files load: both off.
    let (_, v) = r.json(&["status", &a]);
    assert_eq!(v["autostart"], false, "{v}");
    assert_eq!(v["restart"]["policy"], "no", "{v}");
    assert_eq!(v["restart"]["count"], 0, "{v}");

    let (code, v) = r.json(&["autostart", &a, "on"]);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(
        v,
        serde_json::json!({"name": a, "autostart": true, "changed": true})
    );
    assert!(
        r.config(&a).contains("autostart = true"),
        "{}",
        r.config(&a)
    );
    assert!(!r.config(&b).contains("autostart"), "{}", r.config(&b));
    let (_, v) = r.json(&["autostart", &a, "on"]);
    assert_eq!(v["changed"], false, "{v}");
    let (_, v) = r.json(&["list"]);
    let marks: Vec<(String, bool)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["name"].as_str().unwrap().into(),
                g["autostart"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(marks, [(a.clone(), true), (b.clone(), false)]);
    let list = r.ok(&["list"]);
    assert!(list.lines().next().unwrap().contains("AUTOSTART"), "{list}");
    let row = list.lines().find(|l| l.starts_with(&a)).unwrap();
    assert!(row.split_whitespace().any(|w| w == "on"), "{list}");
    assert!(r.ok(&["status", &a]).contains("autostart:  on"));
    let (_, v) = r.json(&["autostart"]);
    assert_eq!(v["guests"], serde_json::json!([a]), "{v}");

    // Several names: each reported, an unknown one fails alone.
    let (code, v) = r.json(&["autostart", &b, "aunosuch", "on"]);
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(
        results(&v),
        [
            (b.clone(), true, String::new()),
            ("aunosuch".to_string(), false, "not_found".to_string())
        ]
    );
    assert!(!r.path().join("guests/aunosuch").exists());
    let (code, v) = r.json(&["autostart", "--all", "off"]);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(results(&v).len(), 2, "{v}");
    assert!(!r.config(&a).contains("autostart"), "{}", r.config(&a));

    // Bad words: one line naming the thing and the fix.
    let (code, v) = r.json(&["autostart", &a, "maybe"]);
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(v["error"]["kind"], "invalid", "{v}");
    let m = v["error"]["message"].as_str().unwrap();
    assert!(m.contains("\"maybe\" is not `on` or `off`"), "{m}");
    let (code, v) = r.json(&["autostart", "on"]);
    assert_eq!(code, Some(1), "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("which guests?"),
        "{v}"
    );

    // The restart policy: set alone touches guest.toml only; bad ones refused.
    let (code, v) = r.json(&["set", &a, "--restart", "on-failure"]);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["restart"], "on-failure", "{v}");
    assert!(
        r.config(&a).contains("restart = \"on-failure\""),
        "{}",
        r.config(&a)
    );
    assert_eq!(r.status(&a)["restart"]["policy"], "on-failure");
    let o = r.run(&["set", &a, "--restart", "sometimes"]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(err(&o).contains("no, on-failure, always"), "{}", err(&o));
    let o = r.run(&["set", &a, "--restart", "unless-stopped"]);
    assert!(err(&o).contains("use `always`"), "{}", err(&o));
    assert!(r.config(&a).contains("restart = \"on-failure\""));
    r.ok(&["set", &a, "--restart", "no"]);
    assert!(!r.config(&a).contains("restart"), "{}", r.config(&a));

    // An image is never started on this host: both flags are refused there.
    let img = r.path().join("img.tar");
    let img = img.to_str().unwrap();
    for flag in [&["--autostart"][..], &["--restart", "always"][..]] {
        let mut args = vec!["build", "debian", "bookworm", "--output", img];
        args.extend_from_slice(flag);
        let (code, v) = r.json(&args);
        assert_eq!(code, Some(1), "{v}");
        let m = v["error"]["message"].as_str().unwrap();
        assert!(m.contains("an image is not started on this host"), "{m}");
    }
    assert!(!Path::new(img).exists());
}

#[test]
fn install_writes_the_unit_or_the_init_script_and_uninstall_removes_exactly_them() {
    let r = Root::new();
    let sys = tempfile::tempdir().unwrap();
    let s = sys.path().to_str().unwrap();
    let exe = std::fs::canonicalize(env!("CARGO_BIN_EXE_vbuild")).unwrap();
    let want_start = format!(
        "{} --root {} start --autostart",
        exe.display(),
        r.path().display()
    );
    let want_stop = want_start.replace(" start ", " stop ");

    // systemd.
    let (code, v) = r.json(&["autostart", "install", "--init", "systemd", "--sysroot", s]);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["init"], "systemd", "{v}");
    let unit = sys
        .path()
        .join("etc/systemd/system/vbuild-autostart.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    for line in [
        "After=network-online.target".to_string(),
        "Wants=network-online.target".to_string(),
        format!("ExecStart={want_start}"),
        format!("ExecStop={want_stop}"),
        "Type=oneshot".to_string(),
        "RemainAfterExit=yes".to_string(),
        "WantedBy=multi-user.target".to_string(),
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
    }
    let wants = sys
        .path()
        .join("etc/systemd/system/multi-user.target.wants/vbuild-autostart.service");
    assert_eq!(
        std::fs::read_link(&wants).unwrap(),
        Path::new("/etc/systemd/system/vbuild-autostart.service")
    );
    // Again: the same files, no error.
    r.ok(&["autostart", "install", "--init", "systemd", "--sysroot", s]);
    assert_eq!(std::fs::read_to_string(&unit).unwrap(), text);

    // sysvinit, chosen by the environment variable this time.
    let o = r
        .cmd(&["--json", "autostart", "install", "--init", "sysvinit"])
        .env("VBUILD_AUTOSTART_SYSROOT", s)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}{}", out(&o), err(&o));
    let script = sys.path().join("etc/init.d/vbuild-autostart");
    let text = std::fs::read_to_string(&script).unwrap();
    assert!(text.starts_with("#!/bin/sh\n"), "{text}");
    assert!(text.contains("### BEGIN INIT INFO"), "{text}");
    assert!(text.contains("# Default-Start:     2 3 4 5"), "{text}");
    assert!(
        text.contains(&format!("start) exec {want_start} ;;")),
        "{text}"
    );
    assert!(
        text.contains(&format!("stop) exec {want_stop} ;;")),
        "{text}"
    );
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&script).unwrap().mode() & 0o777, 0o755);
    for (l, kind) in [
        (2, 'S'),
        (3, 'S'),
        (4, 'S'),
        (5, 'S'),
        (0, 'K'),
        (1, 'K'),
        (6, 'K'),
    ] {
        let n = if kind == 'S' { 99 } else { 1 };
        let link = sys
            .path()
            .join(format!("etc/rc{l}.d/{kind}{n:02}vbuild-autostart"));
        assert_eq!(
            std::fs::read_link(&link).unwrap(),
            Path::new("../init.d/vbuild-autostart"),
            "{}",
            link.display()
        );
    }
    // The script runs as sysvinit would run it (with `status`, which
    // starts nothing).
    let o = Command::new(&script).arg("status").output().unwrap();
    assert!(o.status.success(), "{}", err(&o));

    // Uninstall removes both, and only vbuild's files.
    let keep = sys.path().join("etc/rc2.d/S20other");
    std::fs::write(&keep, "not ours").unwrap();
    let (code, v) = r.json(&["autostart", "uninstall", "--sysroot", s]);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["removed"].as_array().unwrap().len(), 2 + 8, "{v}");
    assert!(!unit.exists() && std::fs::symlink_metadata(&wants).is_err());
    assert!(!script.exists());
    assert!(std::fs::symlink_metadata(sys.path().join("etc/rc2.d/S99vbuild-autostart")).is_err());
    assert!(keep.exists());
    let (_, v) = r.json(&["autostart", "uninstall", "--sysroot", s]);
    assert_eq!(v["removed"], serde_json::json!([]), "{v}");

    // A script that is not vbuild's is refused, and nothing is made.
    std::fs::write(&script, "#!/bin/sh\necho someone else's\n").unwrap();
    let (code, v) = r.json(&["autostart", "install", "--init", "openrc", "--sysroot", s]);
    assert_eq!(code, Some(1), "{v}");
    let m = v["error"]["message"].as_str().unwrap();
    assert!(m.contains("was not written by vbuild"), "{m}");
    assert_eq!(
        std::fs::read_to_string(&script).unwrap(),
        "#!/bin/sh\necho someone else's\n"
    );
    assert!(!sys.path().join("etc/runlevels").exists());
    r.ok(&["autostart", "uninstall", "--sysroot", s]);
    assert!(
        script.exists(),
        "uninstall removed a file that is not vbuild's"
    );
    std::fs::remove_file(&script).unwrap();

    // OpenRC.
    r.ok(&["autostart", "install", "--init", "openrc", "--sysroot", s]);
    let text = std::fs::read_to_string(&script).unwrap();
    assert!(text.starts_with("#!/sbin/openrc-run\n"), "{text}");
    assert!(
        text.contains(&want_start) && text.contains(&want_stop),
        "{text}"
    );
    let link = sys.path().join("etc/runlevels/default/vbuild-autostart");
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        Path::new("/etc/init.d/vbuild-autostart")
    );
    r.ok(&["autostart", "uninstall", "--sysroot", s]);
    assert!(!script.exists() && std::fs::symlink_metadata(&link).is_err());
}

#[test]
fn start_autostart_starts_only_the_marked_guests_past_a_failing_one() {
    if !root_or_skip() {
        return;
    }
    let mut r = Root::new();
    let a = r.guest(Some(INIT));
    let unmarked = r.guest(Some(INIT));
    let broken = r.guest(Some(INIT));
    let c = r.guest(Some(INIT));
    std::fs::remove_dir_all(r.path().join("guests").join(&broken).join("rootfs")).unwrap();
    r.ok(&["autostart", &a, &broken, &c, "on"]);

    let (code, v) = r.json(&["start", "--autostart"]);
    assert_eq!(code, Some(1), "one failed: {v}");
    let got = results(&v);
    assert_eq!(got.len(), 3, "{v}");
    assert_eq!(got[0], (a.clone(), true, String::new()));
    assert_eq!((got[1].0.as_str(), got[1].1), (broken.as_str(), false));
    assert_eq!(got[2], (c.clone(), true, String::new()));
    assert_eq!(v["failed"], 1, "{v}");
    for g in [&a, &c] {
        assert_eq!(r.status(g)["running"], true, "{g}");
    }
    assert_eq!(r.status(&unmarked)["running"], false);
    // Again: the marked ones run already, nothing is left to start.
    let (code, v) = r.json(&["start", "--autostart"]);
    assert_eq!(code, Some(1), "the broken one still fails: {v}");
    assert_eq!(results(&v).len(), 1, "{v}");

    // stop --autostart stops the marked ones only.
    r.ok(&["start", &unmarked]);
    let (code, v) = r.json(&["stop", "--autostart"]);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(
        results(&v),
        [
            (a.clone(), true, String::new()),
            (c.clone(), true, String::new())
        ]
    );
    for g in [&a, &c] {
        assert_eq!(r.status(g)["state"], "stopped", "{g}");
    }
    assert_eq!(r.status(&unmarked)["running"], true);
    r.ok(&["stop", &unmarked]);
}

#[test]
fn on_failure_restarts_until_the_limit_and_no_does_not() {
    if !root_or_skip() {
        return;
    }
    let mut r = Root::new();
    let g = r.guest(Some(FAILING));
    let plain = r.guest(Some(FAILING));
    r.ok(&["set", &g, "--restart", "on-failure"]);
    r.ok(&["start", &g]);
    r.ok(&["start", &plain]);

    // The count grows, one restart at a time, up to the limit.
    let mut seen = Vec::new();
    eventually("the restart limit is reached", || {
        let s = r.status(&g);
        let n = s["restart"]["count"].as_u64().unwrap();
        if seen.last() != Some(&n) {
            seen.push(n);
        }
        s["restart"]["stopped_because"]
            .as_str()
            .is_some_and(|w| w.contains("restart limit reached"))
    });
    assert!(seen.windows(2).all(|w| w[1] == w[0] + 1), "{seen:?}");
    let s = r.status(&g);
    assert_eq!(s["restart"]["count"], 5, "{s}");
    assert_eq!(s["restart"]["last_exit_code"], 1, "{s}");
    assert_eq!(s["restart"]["pending"], false, "{s}");
    assert_eq!(s["state"], "stopped", "{s}");
    let text = r.ok(&["status", &g]);
    assert!(
        text.contains("restart:    on-failure (restarted 5 times)"),
        "{text}"
    );
    assert!(
        text.contains("last exit:  init exited with status 1"),
        "{text}"
    );
    assert!(text.contains("stopped:    restart limit reached"), "{text}");
    let log = r.ok(&["logs", &g]);
    assert!(log.contains("failing soon"), "{log}");
    for h in ["pids", "memory"] {
        let d = Path::new("/sys/fs/cgroup").join(h).join("vbuild").join(&g);
        assert!(!d.exists(), "{} left behind", d.display());
    }
    // A start by hand begins a new count.
    r.ok(&["start", &g]);
    assert_eq!(r.status(&g)["restart"]["count"], 0);
    r.ok(&["set", &g, "--restart", "no"]);

    // Policy `no`: the exit is recorded, no restart is made or waiting.
    eventually("the guest without a policy ended", || {
        let s = r.status(&plain);
        s["state"] == "stopped" && s["restart"]["last_exit"].is_string()
    });
    let s = r.status(&plain);
    assert_eq!(s["restart"]["count"], 0, "{s}");
    assert_eq!(s["restart"]["pending"], false, "{s}");
    assert_eq!(
        s["restart"]["last_exit"], "init exited with status 1",
        "{s}"
    );
}

#[test]
fn always_restarts_after_status_0_and_a_stop_is_never_undone() {
    if !root_or_skip() {
        return;
    }
    let mut r = Root::new();
    let g = r.guest(Some(DONE));
    r.ok(&["set", &g, "--restart", "always"]);
    r.ok(&["start", &g]);
    eventually("a restart after status 0", || {
        r.status(&g)["restart"]["count"].as_u64().unwrap() >= 2
    });
    assert_eq!(r.status(&g)["restart"]["last_exit_code"], 0);
    // Caught between boots or while one runs: after the stop nothing is
    // left to bring it back (no supervisor, no restart waiting).
    let (code, v) = r.json(&["stop", &g]);
    assert_eq!(code, Some(0), "{v}");
    let s = r.status(&g);
    assert_eq!(
        (s["state"].as_str(), s["restart"]["pending"].as_bool()),
        (Some("stopped"), Some(false)),
        "{s}"
    );
    let count = s["restart"]["count"].clone();
    std::thread::sleep(Duration::from_secs(3));
    let s = r.status(&g);
    assert_eq!(s["state"], "stopped", "restarted after stop: {s}");
    assert_eq!(s["restart"]["count"], count, "{s}");

    // A guest that runs and is stopped: its init's end is not the
    // policy's business at all (no exit is recorded for it).
    let w = r.guest(Some(INIT));
    r.ok(&["set", &w, "--restart", "always"]);
    r.ok(&["start", &w]);
    let (code, v) = r.json(&["stop", &w]);
    assert_eq!(
        (code, v["how"].as_str()),
        (Some(0), Some("graceful")),
        "{v}"
    );
    let s = r.status(&w);
    assert_eq!(s["state"], "stopped", "{s}");
    assert_eq!(s["restart"]["count"], 0, "{s}");
    assert!(s["restart"].get("last_exit").is_none(), "{s}");
    let pids: PathBuf = Path::new("/sys/fs/cgroup/pids/vbuild").join(&w);
    assert!(!pids.exists());
}
