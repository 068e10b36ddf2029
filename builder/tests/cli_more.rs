//! The everyday commands of issue 13 through the real binary, on busybox
//! guests booted in a temporary state root: several names per command and
//! `--all`, `stop --kill`, `delete --force`, `exec --user/--workdir`,
//! `enter -- CMD`, `cp` in and out (against planted symlinks and `..`),
//! `completions` and `man`. The guest tests need root and busybox-static.

use serde_json::Value;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const BUSYBOX: &str = "/bin/busybox";

const APPLETS: &[&str] = &[
    "sh", "sleep", "cat", "id", "pwd", "ls", "echo", "true", "stat", "ln", "mkdir", "readlink",
    "printf",
];

/// An init that ends on SIGTERM.
const INIT: &str = "#!/bin/sh\ntrap 'exit 0' TERM\nwhile :; do sleep 1 & wait $!; done\n";

/// An init that ignores SIGTERM: a graceful stop would wait its timeout.
const STUBBORN: &str = "#!/bin/sh\ntrap '' TERM\nwhile :; do sleep 1 & wait $!; done\n";

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

/// A state root with busybox guests; every guest is killed and deleted
/// (cgroups, id ranges and all) when dropped.
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

    /// A stopped guest: a busybox rootfs with `init`, `passwd` and `group`.
    fn guest(&mut self, init: &str, passwd: &str, group: &str) -> String {
        let name = unique("cm");
        let g = self.path().join("guests").join(&name);
        let r = g.join("rootfs");
        for d in [
            "bin", "sbin", "etc", "root", "tmp", "proc", "sys", "dev", "run", "srv",
        ] {
            std::fs::create_dir_all(r.join(d)).unwrap();
        }
        std::fs::copy(BUSYBOX, r.join("bin/busybox")).unwrap();
        for a in APPLETS {
            std::os::unix::fs::symlink("busybox", r.join("bin").join(a)).unwrap();
        }
        std::fs::write(r.join("etc/passwd"), passwd).unwrap();
        std::fs::write(r.join("etc/group"), group).unwrap();
        std::fs::write(r.join("sbin/init"), init).unwrap();
        std::fs::set_permissions(r.join("sbin/init"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
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

    /// Output of `sh -c CMD` in guest `g`.
    fn sh(&self, g: &str, cmd: &str) -> String {
        self.ok(&["exec", g, "--", "/bin/sh", "-c", cmd])
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

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nbob:x:1000:1000:Bob:/home/bob:/bin/sh\n";
const GROUP: &str = "root:x:0:\nbob:x:1000:\nstaff:x:50:bob\n";

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
fn several_names_all_kill_and_force() {
    if !root_or_skip() {
        return;
    }
    let mut r = Root::new();
    let a = r.guest(STUBBORN, PASSWD, GROUP);
    let b = r.guest(INIT, PASSWD, GROUP);

    let (code, v) = r.json(&["start", &a, &b]);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(
        results(&v),
        [
            (a.clone(), true, String::new()),
            (b.clone(), true, String::new())
        ]
    );
    assert_eq!(v["failed"], 0);
    assert_eq!(v["results"][0]["state"], "running", "{v}");

    // One failure does not stop the others; the exit code says one failed.
    let (code, v) = r.json(&["start", "cmnosuch", &a]);
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(
        results(&v),
        [
            ("cmnosuch".to_string(), false, "not_found".to_string()),
            (a.clone(), false, "running".to_string())
        ]
    );
    assert_eq!(v["failed"], 2);
    let o = r.run(&["start", "cmnosuch", &a]);
    assert_eq!(o.status.code(), Some(1));
    let e = err(&o);
    assert!(e.contains("guest cmnosuch does not exist"), "{e}");
    assert!(e.contains(&format!("guest {a} is already running")), "{e}");
    assert!(e.contains("start: 2 of 2 failed"), "{e}");

    // A running guest is not deleted without --force, and the message says so.
    let (code, v) = r.json(&["delete", &a]);
    assert_eq!(code, Some(1));
    assert_eq!(v["error"]["kind"], "running", "{v}");
    let m = v["error"]["message"].as_str().unwrap();
    assert!(m.contains(&format!("vbuild delete --force {a}")), "{m}");
    assert!(r.path().join("guests").join(&a).is_dir());

    // --kill: at once, although this init ignores SIGTERM.
    let t = Instant::now();
    let (code, v) = r.json(&["stop", &a, "--kill"]);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["how"], "killed", "{v}");
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
    let (_, st) = r.json(&["status", &a]);
    assert_eq!(st["state"], "stopped", "{st}");

    // --all stops what runs, and only that.
    let (code, v) = r.json(&["stop", "--all"]);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(results(&v), [(b.clone(), true, String::new())]);
    let (code, v) = r.json(&["stop", "--all"]);
    assert_eq!((code, v["results"].as_array().unwrap().len()), (Some(0), 0));

    // --all starts every stopped guest; delete --force kills and deletes.
    let (code, v) = r.json(&["start", "--all"]);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(results(&v).len(), 2, "{v}");
    let (code, v) = r.json(&["delete", "--force", &a, &b]);
    assert_eq!(code, Some(0), "{v}");
    for res in v["results"].as_array().unwrap() {
        assert_eq!(res["deleted"], true, "{v}");
        assert_eq!(res["was_running"], true, "{v}");
    }
    assert!(!r.path().join("guests").join(&a).exists());
    assert!(!r.path().join("guests").join(&b).exists());
    assert!(!Path::new("/sys/fs/cgroup/pids/vbuild").join(&a).exists());
}

#[test]
fn several_names_refused_one_by_one_without_root() {
    let r = Root::new();
    let (code, v) = r.json(&["delete", "cmnone1", "cmnone2"]);
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(v["failed"], 2);
    assert_eq!(
        results(&v),
        [
            ("cmnone1".to_string(), false, "not_found".to_string()),
            ("cmnone2".to_string(), false, "not_found".to_string())
        ]
    );
    let (code, v) = r.json(&["stop", "--all"]);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v, serde_json::json!({"results": [], "failed": 0}));
    let o = r.run(&["stop", "--all", "x1"]);
    assert_eq!(o.status.code(), Some(2), "--all and names conflict");
    let o = r.run(&["start", "--console", "a1", "a2"]);
    assert!(
        err(&o).contains("--console attaches to one guest"),
        "{}",
        err(&o)
    );
}

#[test]
fn exec_as_a_guest_user_in_a_workdir_and_enter_with_a_command() {
    if !root_or_skip() {
        return;
    }
    let mut r = Root::new();
    let g = r.guest(INIT, PASSWD, GROUP);
    r.ok(&["-q", "start", &g]);
    r.sh(&g, "mkdir -p /home/bob");

    let id = |args: &[&str]| -> String {
        let mut a = vec!["exec", &g];
        a.extend_from_slice(args);
        r.ok(&a).trim().to_string()
    };
    assert_eq!(id(&["--user", "bob", "--", "id", "-u"]), "1000");
    let mut groups: Vec<String> = id(&["--user", "bob", "--", "id", "-G"])
        .split_whitespace()
        .map(String::from)
        .collect();
    groups.sort();
    groups.dedup();
    assert_eq!(groups, ["1000", "50"]);
    assert_eq!(id(&["--user", "bob:staff", "--", "id", "-g"]), "50");
    assert_eq!(id(&["-u", "4242:7", "--", "id", "-u"]), "4242");
    assert_eq!(id(&["-u", "4242:7", "--", "id", "-g"]), "7");
    assert_eq!(
        id(&["--user", "bob", "--", "/bin/sh", "-c", "echo $HOME $USER"]),
        "/home/bob bob"
    );
    // The user has no capabilities: root's files stay root's.
    let o = r.run(&[
        "exec",
        &g,
        "--user",
        "bob",
        "--",
        "/bin/sh",
        "-c",
        "echo x > /etc/passwd",
    ]);
    assert!(!o.status.success());
    assert_eq!(r.sh(&g, "cat /etc/passwd"), PASSWD);
    assert_eq!(id(&["--workdir", "/home/bob", "--", "pwd"]), "/home/bob");
    assert_eq!(id(&["-w", "/tmp", "-u", "bob", "--", "pwd"]), "/tmp");

    // Names come from the guest's files, never the host's: the host has a
    // `daemon` user (Debian's base-passwd), the guest does not.
    assert!(std::fs::read_to_string("/etc/passwd")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("daemon:")));
    let (code, v) = r.json(&["exec", &g, "--user", "daemon", "--", "true"]);
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(v["error"]["kind"], "not_found", "{v}");
    let m = v["error"]["message"].as_str().unwrap();
    assert!(
        m.contains("no user \"daemon\" in the guest's /etc/passwd"),
        "{m}"
    );
    let (_, v) = r.json(&["exec", &g, "--user", "bob:wheel", "--", "true"]);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no group \"wheel\""),
        "{v}"
    );
    let (_, v) = r.json(&["exec", &g, "--user", "70000", "--", "true"]);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("outside the guest's ids"),
        "{v}"
    );
    let (_, v) = r.json(&["exec", &g, "--workdir", "/nonexistent", "--", "true"]);
    assert_eq!(v["error"]["kind"], "not_found", "{v}");
    // A guest passwd that is a symlink (here to the host's path) is not read.
    r.sh(&g, "mkdir -p /x && cat /etc/passwd > /x/p");
    r.sh(&g, "ln -sf /x/p /etc/passwd");
    let (_, v) = r.json(&["exec", &g, "--user", "bob", "--", "true"]);
    let m = v["error"]["message"].as_str().unwrap_or_default();
    assert!(m.contains("/etc/passwd is not usable"), "{v}");

    // enter with a command: it runs on a terminal, its output comes back.
    let o = r.run(&["enter", &g, "--", "/bin/sh", "-c", "echo entered; id -u"]);
    assert!(o.status.success(), "{}", err(&o));
    let text = out(&o);
    assert!(text.contains("entered"), "{text}");
    let o = r.run(&["enter", &g, "--", "/bin/sh", "-c", "exit 3"]);
    assert_eq!(o.status.code(), Some(3));
}

#[test]
fn cp_in_and_out_stays_inside_the_guest_root() {
    if !root_or_skip() {
        return;
    }
    let mut r = Root::new();
    let g = r.guest(INIT, PASSWD, GROUP);
    let (_, st) = {
        r.ok(&["-q", "start", &g]);
        r.json(&["status", &g])
    };
    let host_uid = st["host_uid"].as_u64().expect("a user namespace guest") as u32;
    let init_pid = st["init_pid"].as_u64().unwrap();
    let host = tempfile::tempdir().unwrap();
    let h = host.path();
    let src = h.join("app.conf");
    std::fs::write(&src, "key = value\n").unwrap();
    std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o640)).unwrap();

    // In: owned by the guest's root, mode kept.
    let (code, v) = r.json(&["cp", src.to_str().unwrap(), &format!("{g}:/etc/app.conf")]);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(
        (v["files"].as_u64(), v["bytes"].as_u64()),
        (Some(1), Some(12)),
        "{v}"
    );
    assert_eq!(r.sh(&g, "cat /etc/app.conf"), "key = value\n");
    assert_eq!(r.sh(&g, "stat -c '%u %g %a' /etc/app.conf"), "0 0 640\n");
    let seen = std::fs::metadata(format!("/proc/{init_pid}/root/etc/app.conf")).unwrap();
    assert_eq!((seen.uid(), seen.gid()), (host_uid, host_uid));
    // Into a directory, under its own name.
    r.ok(&["cp", src.to_str().unwrap(), &format!("{g}:/tmp/")]);
    assert_eq!(r.sh(&g, "cat /tmp/app.conf"), "key = value\n");

    // Out: into a host directory; mode kept.
    let outd = h.join("out");
    std::fs::create_dir(&outd).unwrap();
    r.ok(&["cp", &format!("{g}:/etc/app.conf"), outd.to_str().unwrap()]);
    let got = outd.join("app.conf");
    assert_eq!(std::fs::read_to_string(&got).unwrap(), "key = value\n");
    assert_eq!(
        std::fs::metadata(&got).unwrap().permissions().mode() & 0o7777,
        0o640
    );

    // A planted symlink to a host path reads the guest's file of that
    // path, or nothing; never the host's.
    let secret_dir = h.join("secret");
    std::fs::create_dir(&secret_dir).unwrap();
    let secret = secret_dir.join("shadow");
    std::fs::write(&secret, "host secret\n").unwrap();
    let s = secret.display().to_string();
    r.sh(
        &g,
        &format!("ln -s {s} /etc/x && ln -s ../../../../../../../..{s} /etc/rel"),
    );
    for link in ["/etc/x", "/etc/rel"] {
        let to = h.join("leak");
        let (code, v) = r.json(&["cp", &format!("{g}:{link}"), to.to_str().unwrap()]);
        assert_eq!(code, Some(1), "{link}: {v}");
        assert_eq!(v["error"]["kind"], "not_found", "{link}: {v}");
        assert!(!to.exists(), "{link}");
    }
    r.sh(
        &g,
        &format!("mkdir -p {} && echo guest > {s}", secret_dir.display()),
    );
    let to = h.join("leak");
    r.ok(&["cp", &format!("{g}:/etc/x"), to.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&to).unwrap(), "guest\n");

    // Writing to a planted symlink replaces it; a host file it names is untouched.
    let keep = h.join("keep");
    std::fs::write(&keep, "host keep\n").unwrap();
    r.sh(
        &g,
        &format!(
            "ln -s {} /etc/y && ln -s {} /etc/d",
            keep.display(),
            h.display()
        ),
    );
    r.ok(&["cp", src.to_str().unwrap(), &format!("{g}:/etc/y")]);
    assert_eq!(std::fs::read_to_string(&keep).unwrap(), "host keep\n");
    assert_eq!(r.sh(&g, "cat /etc/y"), "key = value\n");
    // Through a planted directory symlink: inside the guest, or refused.
    let o = r.run(&["cp", src.to_str().unwrap(), &format!("{g}:/etc/d/planted")]);
    assert!(!h.join("planted").exists(), "{}", err(&o));

    // `..` is refused in guest paths, both ways, before anything is done.
    for (a, b) in [
        (
            format!("{g}:../../etc/shadow"),
            h.join("dd").display().to_string(),
        ),
        (
            src.display().to_string(),
            format!("{g}:/../../{}", h.join("dd").display()),
        ),
    ] {
        let (code, v) = r.json(&["cp", &a, &b]);
        assert_eq!(code, Some(1), "{v}");
        assert_eq!(v["error"]["kind"], "invalid", "{v}");
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`..` is not allowed"));
        assert!(!h.join("dd").exists());
    }
    // proc files are not copied; directories need -r.
    let (_, v) = r.json(&[
        "cp",
        &format!("{g}:/proc/1/status"),
        h.join("p").to_str().unwrap(),
    ]);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("pseudo filesystem"),
        "{v}"
    );
    let (_, v) = r.json(&["cp", &format!("{g}:/etc"), h.join("e").to_str().unwrap()]);
    assert!(
        v["error"]["message"].as_str().unwrap().contains("cp -r"),
        "{v}"
    );

    // -r both ways; symlinks stay symlinks and are not followed.
    let tree = h.join("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    std::fs::write(tree.join("sub/f"), "f\n").unwrap();
    std::os::unix::fs::symlink("sub/f", tree.join("l")).unwrap();
    let (code, v) = r.json(&["cp", "-r", tree.to_str().unwrap(), &format!("{g}:/srv/")]);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(
        (
            v["files"].as_u64(),
            v["dirs"].as_u64(),
            v["symlinks"].as_u64()
        ),
        (Some(1), Some(2), Some(1)),
        "{v}"
    );
    assert_eq!(
        r.sh(
            &g,
            "cat /srv/tree/sub/f; readlink /srv/tree/l; stat -c %u /srv/tree/sub"
        ),
        "f\nsub/f\n0\n"
    );
    r.sh(&g, &format!("ln -s {s} /srv/tree/sub/trap"));
    let back = h.join("back");
    r.ok(&[
        "cp",
        "-r",
        &format!("{g}:/srv/tree"),
        back.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read_to_string(back.join("sub/f")).unwrap(), "f\n");
    assert_eq!(
        std::fs::read_link(back.join("l")).unwrap(),
        Path::new("sub/f")
    );
    let trap = back.join("sub/trap");
    assert!(std::fs::symlink_metadata(&trap)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read_link(&trap).unwrap(), PathBuf::from(&s));

    // A stopped guest: its tree on disk, stored unshifted (root's files are
    // uid 0 there), with the same confinement; the guest sees the file.
    r.ok(&["-q", "stop", &g, "--kill"]);
    let (code, v) = r.json(&["cp", src.to_str().unwrap(), &format!("{g}:/etc/z")]);
    assert_eq!(code, Some(0), "{v}");
    let rootfs = r.dir.path().join("guests").join(&g).join("rootfs");
    let md = std::fs::symlink_metadata(rootfs.join("etc/z")).unwrap();
    assert_eq!((md.uid(), md.gid(), md.mode() & 0o7777), (0, 0, 0o640));
    r.ok(&["cp", src.to_str().unwrap(), &format!("{g}:/etc/y")]);
    assert_eq!(std::fs::read_to_string(&keep).unwrap(), "host keep\n");
    // The planted links resolve inside the stopped tree, where the file
    // they name (made on the guest's /tmp, a tmpfs) is gone: not found,
    // never the host's file.
    for link in ["/etc/x", "/etc/rel"] {
        let to = h.join("stopped-out");
        let (code, v) = r.json(&["cp", &format!("{g}:{link}"), to.to_str().unwrap()]);
        assert_eq!(code, Some(1), "{link}: {v}");
        assert_eq!(v["error"]["kind"], "not_found", "{link}: {v}");
        assert!(!to.exists(), "{link}");
    }
    let o = r.run(&["cp", src.to_str().unwrap(), &format!("{g}:/etc/d/planted")]);
    assert!(!h.join("planted").exists(), "{}", err(&o));
    r.ok(&["-q", "start", &g]);
    assert_eq!(
        r.sh(&g, "cat /etc/z; stat -c '%u %g' /etc/z"),
        "key = value\n0 0\n"
    );
    r.ok(&["-q", "stop", &g, "--kill"]);
    let (code, v) = r.json(&["cp", src.to_str().unwrap(), "nosuch:/etc/z"]);
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(v["error"]["kind"], "not_found", "{v}");
}

#[test]
fn completions_and_man_pages_come_from_the_definitions() {
    let r = Root::new();
    let help = r.ok(&["--help"]);
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(
        commands.contains(&"cp") && commands.contains(&"man"),
        "{help}"
    );
    let bash = r.ok(&["completions", "bash"]);
    for c in &commands {
        assert!(
            bash.contains(&format!("vbuild,{c})")) || bash.contains(&format!("vbuild__{c}")),
            "{c} not in the bash completion"
        );
    }
    for shell in ["zsh", "fish"] {
        let s = r.ok(&["completions", shell]);
        assert!(s.contains("logs") && s.contains("cp"), "{shell}");
    }
    let (code, v) = r.json(&["completions", "bash"]);
    assert_eq!(code, Some(0));
    assert_eq!(v["shell"], "bash");
    assert!(v["script"].as_str().unwrap().contains("complete"), "{v}");
    let o = r.run(&["completions", "tcsh"]);
    assert_eq!(o.status.code(), Some(2));

    let man = r.ok(&["man"]);
    assert!(
        man.contains(".SH NAME") && man.contains(".SH SYNOPSIS"),
        "{man}"
    );
    let dir = tempfile::tempdir().unwrap();
    let (code, v) = r.json(&["man", "--output", dir.path().to_str().unwrap()]);
    assert_eq!(code, Some(0), "{v}");
    for page in [
        "vbuild.1",
        "vbuild-cp.1",
        "vbuild-start.1",
        "vbuild-net-create.1",
    ] {
        let t = std::fs::read_to_string(dir.path().join(page)).unwrap();
        assert!(
            t.contains(".SH NAME") && t.contains(".SH SYNOPSIS"),
            "{page}"
        );
    }
    assert_eq!(
        v["files"].as_array().unwrap().len(),
        std::fs::read_dir(dir.path()).unwrap().count()
    );
}

/// Runs `f` on a thread in a network namespace of its own (the commands
/// it spawns are born there), so a test's bridges and tables vanish with it.
fn in_fresh_netns<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: unshare with a flag constant; affects this thread only.
            assert_eq!(
                unsafe { libc::unshare(libc::CLONE_NEWNET) },
                0,
                "unshare net"
            );
            f()
        })
        .join()
        .expect("test thread")
    })
}

#[test]
fn one_guest_json_successes_are_objects_with_their_fields() {
    if !root_or_skip() {
        return;
    }
    let mut r = Root::new();
    let g = r.guest(INIT, PASSWD, GROUP);

    let (code, s) = r.json(&["start", &g]);
    assert_eq!(code, Some(0), "{s}");
    assert_eq!(s["name"], g.as_str(), "{s}");
    assert_eq!(s["state"], "running", "{s}");
    assert_eq!(s["privileged"], false, "{s}");
    let pid = s["init_pid"].as_u64().expect("init_pid is a number");
    assert!(pid > 1, "{s}");
    assert!(s["host_uid"].as_u64().is_some(), "{s}");
    let boot = s["boot_id"]
        .as_str()
        .expect("boot_id is a string")
        .to_string();
    assert!(!boot.is_empty(), "{s}");

    // restart: a new boot of the same guest, with start's fields.
    let (code, s2) = r.json(&["restart", &g]);
    assert_eq!(code, Some(0), "{s2}");
    assert_eq!(s2["name"], g.as_str(), "{s2}");
    assert_eq!(s2["state"], "running", "{s2}");
    assert!(s2["init_pid"].as_u64().is_some_and(|p| p != pid), "{s2}");
    assert_ne!(s2["boot_id"], boot.as_str(), "{s2}");

    let (code, st) = r.json(&["stop", &g]);
    assert_eq!(code, Some(0), "{st}");
    assert_eq!(
        st,
        serde_json::json!({"name": g, "state": "stopped", "how": "graceful"})
    );

    // run: the rootfs and the command's exit code, which is also vbuild's.
    let rootfs = r.path().join("guests").join(&g).join("rootfs");
    let rootfs = rootfs.to_str().unwrap();
    let (code, v) = r.json(&["run", "--rootfs", rootfs, "--", "/bin/sh", "-c", "exit 3"]);
    assert_eq!(code, Some(3), "{v}");
    assert_eq!(v, serde_json::json!({"rootfs": rootfs, "exit_code": 3}));

    // net create / delete, in a namespace of the test's own.
    in_fresh_netns(|| {
        let (code, v) = r.json(&["net", "create", "cmjson0", "--subnet", "10.91.7.0/24"]);
        assert_eq!(code, Some(0), "{v}");
        assert_eq!(v["name"], "cmjson0", "{v}");
        let (code, v) = r.json(&["net", "delete", "cmjson0"]);
        assert_eq!(code, Some(0), "{v}");
        assert_eq!(v, serde_json::json!({"name": "cmjson0", "deleted": true}));
    });
    assert!(!r.path().join("networks/cmjson0.toml").exists());
}

/// `status` and `limit` of one guest with a `--disk` limit: the same
/// figures (both read `runtime::disk::usage`), as numbers and as text.
#[test]
fn status_and_limit_report_the_same_disk_use() {
    if !root_or_skip() {
        return;
    }
    let mut r = Root::new();
    let name = unique("cmd");
    let layout = vbuild_runtime::paths::Layout::new(Some(r.path()));
    vbuild_runtime::disk::create(&layout, &name, Some(64 << 20)).unwrap();
    r.names.push(name.clone());
    let g = r.path().join("guests").join(&name);
    std::fs::write(g.join("rootfs/data"), vec![7u8; 3 << 20]).unwrap();
    std::fs::write(
        g.join("guest.toml"),
        format!(
            "name = \"{name}\"\ndistro = \"busybox\"\nrelease = \"test\"\nvariant = \"\"\ncreated = 0\n[limits]\ndisk = {}\n[init]\npath = \"/sbin/init\"\nkind = \"other\"\n[net]\nmode = \"none\"\n",
            64u64 << 20
        ),
    )
    .unwrap();
    // Written data reaches the filesystem's counters after a sync.
    // SAFETY: plain syscall.
    unsafe { libc::sync() };

    let (code, st) = r.json(&["status", &name]);
    assert_eq!(code, Some(0), "{st}");
    let (code, l) = r.json(&["limit", &name]);
    assert_eq!(code, Some(0), "{l}");
    assert_eq!(st["disk"], l["usage"]["disk"], "status {st} vs limit {l}");
    let used = st["disk"]["used"].as_u64().expect("used is a number");
    let limit = st["disk"]["limit"].as_u64().expect("limit is a number");
    assert!(used >= 3 << 20, "the 3 MiB written count: {st}");
    assert!(limit > used && limit <= 64 << 20, "{st}");

    // The text forms show the same two sizes.
    let text = r.ok(&["status", &name]);
    let (s_used, s_limit) = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("disk:"))
        .and_then(|l| l.trim().split_once(" of "))
        .unwrap_or_else(|| panic!("no disk line: {text}"));
    let text = r.ok(&["limit", &name]);
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("disk "))
        .unwrap_or_else(|| panic!("no disk line: {text}"));
    let (l_used, l_limit) = line.trim()["disk".len()..].split_once(" / ").unwrap();
    assert_eq!(
        (s_used.trim(), s_limit.trim()),
        (l_used.trim(), l_limit.trim()),
        "status {text:?}"
    );
}
