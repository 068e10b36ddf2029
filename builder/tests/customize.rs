//! Build customisation through the real binary against a generated, signed
//! loopback repository: guest setup flags (files, modes, owners) and the
//! four hooks (each runs once, in stage order, seeing what exists then).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use vbuild_testkit::deb::DebBuilder;
use vbuild_testkit::http::TestServer;
use vbuild_testkit::pgp::TestKey;
use vbuild_testkit::repo::{TestPackage, TestRepo};

fn root_or_skip() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "needs root (CI=true)"
    );
    eprintln!("skipped: needs root");
    false
}

fn deb(b: DebBuilder, fields: &[(&str, &str)]) -> TestPackage {
    let mut p = TestPackage::new(b.name(), "1.0", "amd64");
    for (k, v) in fields {
        p = p.field(k, v);
    }
    p.deb(b.build())
}

/// The Essential `busybox-sh` package: the host's static busybox in
/// /usr/bin and a symlink to it for each of `apps`.
fn busybox_shell(apps: &[&str]) -> DebBuilder {
    let bb = std::fs::read("/bin/busybox").expect("busybox-static is installed by test.sh");
    let mut shell = DebBuilder::new("busybox-sh", "1.0", "amd64")
        .field("Essential", "yes")
        .dir("usr/bin", 0o755)
        .file("usr/bin/busybox", &bb, 0o755);
    for app in apps {
        shell = shell.symlink(&format!("usr/bin/{app}"), "busybox");
    }
    shell
}

/// A shell, accounts files and one time zone, all Essential.
fn mirror(dir: &Path) -> (TestServer, std::path::PathBuf) {
    let shell = busybox_shell(&[
        "sh", "cat", "echo", "mkdir", "ln", "rm", "true", "ls", "test",
    ]);
    let base = DebBuilder::new("base-test", "1.0", "amd64")
        .field("Essential", "yes")
        .file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n", 0o644)
        .file("etc/group", b"root:x:0:\nshadow:x:42:\n", 0o644)
        .file("etc/shadow", b"root:*:19000:0:99999:7:::\n", 0o640)
        .file("etc/skel/.profile", b"# skel\n", 0o644)
        .dir("root", 0o700)
        .file("usr/share/zoneinfo/Europe/Paris", b"TZif-test", 0o644);
    let mut repo = TestRepo::new("bookworm");
    repo.add(deb(
        shell,
        &[("Essential", "yes"), ("Priority", "required")],
    ))
    .add(deb(base, &[("Essential", "yes"), ("Priority", "required")]));
    let key = TestKey::generate("vbuild customize test <test@vbuild.invalid>");
    repo.write(dir, &key).unwrap();
    let key_file = dir.join("test-key.asc");
    std::fs::write(&key_file, key.public_armored()).unwrap();
    (TestServer::serve(dir), key_file)
}

fn vbuild(root: &Path, args: &[&str], stdin: &str) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vbuild"))
        .arg("--root")
        .arg(root)
        .arg("--quiet")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    c.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    c.wait_with_output().unwrap()
}

fn base_args<'a>(url: &'a str, key: &'a str, name: &'a str) -> Vec<&'a str> {
    vec![
        "debian",
        "bookworm",
        "--name",
        name,
        "--mirror",
        url,
        "--keyring",
        key,
        "--variant",
        "essential",
        "--no-init",
        "--net-mode",
        "none",
        "--copy",
    ]
}

#[test]
fn setup_flags_write_accounts_keys_zone_locale_and_apt_files() {
    if !root_or_skip() {
        return;
    }
    let repo = tempfile::tempdir().unwrap();
    let (server, key) = mirror(repo.path());
    let url = server.url();
    let root = tempfile::tempdir().unwrap();
    let (_, public) = vbuild_builder::tailor::sshkeys::ed25519_host_key("me@host").unwrap();
    let keyfile = root.path().join("id.pub");
    std::fs::write(&keyfile, &public).unwrap();
    let mut args = base_args(&url, key.to_str().unwrap(), "cucust1");
    args.extend([
        "--root-password",
        "--ssh-key",
        keyfile.to_str().unwrap(),
        "--user",
        "alice",
        "--timezone",
        "Europe/Paris",
        "--locale",
        "C.UTF-8",
        "--aptopt",
        "Acquire::Retries \"3\"",
        "--dpkgopt",
        "path-exclude=/usr/share/man/*",
        "--proxy",
        "http://127.0.0.1:3142",
    ]);
    // The proxy above is for the guest's apt; the build must not use it
    // here... except it does (--proxy is for both): so point it nowhere
    // else and check the refusal names it in the other test.
    args.retain(|a| *a != "--proxy" && *a != "http://127.0.0.1:3142");
    let out = vbuild(root.path(), &args, "s3cret\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fs = root.path().join("guests/cucust1/rootfs");
    let shadow = std::fs::read_to_string(fs.join("etc/shadow")).unwrap();
    let root_line = shadow.lines().find(|l| l.starts_with("root:")).unwrap();
    let hash = root_line.split(':').nth(1).unwrap();
    assert!(hash.starts_with("$6$") && hash.len() > 90, "{root_line}");
    let salt = hash.split('$').nth(2).unwrap();
    let check = Command::new("openssl")
        .args(["passwd", "-6", "-salt", salt, "s3cret"])
        .output();
    if let Ok(c) = check {
        if c.status.success() {
            assert_eq!(String::from_utf8_lossy(&c.stdout).trim(), hash);
        }
    }
    let m = std::fs::metadata(fs.join("etc/shadow")).unwrap();
    assert_eq!(m.permissions().mode() & 0o7777, 0o640);
    assert!(shadow.contains("\nalice:!:"), "{shadow}");
    let passwd = std::fs::read_to_string(fs.join("etc/passwd")).unwrap();
    assert!(
        passwd.contains("alice:x:1000:1000::/home/alice:/bin/sh\n"),
        "{passwd}"
    );
    let group = std::fs::read_to_string(fs.join("etc/group")).unwrap();
    assert!(group.contains("alice:x:1000:\n"), "{group}");
    let home = std::fs::metadata(fs.join("home/alice")).unwrap();
    assert_eq!(
        (home.uid(), home.gid(), home.mode() & 0o7777),
        (1000, 1000, 0o700)
    );
    let skel = std::fs::metadata(fs.join("home/alice/.profile")).unwrap();
    assert_eq!((skel.uid(), skel.gid()), (1000, 1000));
    for (p, uid) in [
        ("root/.ssh/authorized_keys", 0),
        ("home/alice/.ssh/authorized_keys", 1000),
    ] {
        assert_eq!(std::fs::read_to_string(fs.join(p)).unwrap(), public);
        let m = std::fs::metadata(fs.join(p)).unwrap();
        assert_eq!((m.uid(), m.mode() & 0o7777), (uid, 0o600), "{p}");
    }
    let ssh_dir = std::fs::metadata(fs.join("root/.ssh")).unwrap();
    assert_eq!(ssh_dir.mode() & 0o7777, 0o700);
    assert_eq!(
        std::fs::read_link(fs.join("etc/localtime")).unwrap(),
        Path::new("/usr/share/zoneinfo/Europe/Paris")
    );
    assert_eq!(
        std::fs::read_to_string(fs.join("etc/timezone")).unwrap(),
        "Europe/Paris\n"
    );
    assert_eq!(
        std::fs::read_to_string(fs.join("etc/default/locale")).unwrap(),
        "LANG=C.UTF-8\n"
    );
    assert_eq!(
        std::fs::read_to_string(fs.join("etc/apt/apt.conf.d/99vbuild")).unwrap(),
        "Acquire::Retries \"3\";\n"
    );
    assert_eq!(
        std::fs::read_to_string(fs.join("etc/dpkg/dpkg.cfg.d/99vbuild")).unwrap(),
        "path-exclude=/usr/share/man/*\n"
    );
    let _ = vbuild(root.path(), &["delete", "cucust1"], "");

    // An unknown zone is refused and nothing is kept.
    let mut args = base_args(&url, key.to_str().unwrap(), "cucust2");
    args.extend(["--timezone", "Mars/Olympus"]);
    let out = vbuild(root.path(), &args, "");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--timezone Mars/Olympus: no such zone in the guest's /usr/share/zoneinfo"),
        "{err}"
    );
    assert!(!root.path().join("guests/cucust2").exists());
}

#[test]
fn hooks_run_once_each_in_stage_order_and_a_failing_one_fails_the_build() {
    if !root_or_skip() {
        return;
    }
    let repo = tempfile::tempdir().unwrap();
    let (server, key) = mirror(repo.path());
    let url = server.url();
    let root = tempfile::tempdir().unwrap();
    let log = root.path().join("hooks.log");
    let l = log.display().to_string();
    let setup =
        format!("echo \"setup $VBUILD_DISTRO $VBUILD_RELEASE $(ls -A \"$1\" | wc -l)\" >> {l}");
    let extract =
        format!("test -e \"$1/usr/bin/busybox\" && echo \"extract $VBUILD_STAGE\" >> {l}");
    let essential = format!("test ! -e \"$1/etc/hostname\" && echo essential >> {l}");
    let customize = format!(
        "test -e \"$1/etc/hostname\" && [ \"$1\" = \"$VBUILD_ROOTFS\" ] && echo customize >> {l}"
    );
    let mut args = base_args(&url, key.to_str().unwrap(), "cuhook1");
    args.retain(|a| *a != "--copy");
    args.extend([
        "--setup-hook",
        &setup,
        "--extract-hook",
        &extract,
        "--essential-hook",
        &essential,
        "--customize-hook",
        &customize,
    ]);
    let out = vbuild(root.path(), &args, "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "setup debian bookworm 0\nextract extract\nessential\ncustomize\n"
    );
    // Hooks imply a tree of its own.
    assert!(root
        .path()
        .join("guests/cuhook1/rootfs/etc/hostname")
        .exists());
    let _ = vbuild(root.path(), &["delete", "cuhook1"], "");

    let mut args = base_args(&url, key.to_str().unwrap(), "cuhook2");
    args.extend(["--essential-hook", "exit 7"]);
    let out = vbuild(root.path(), &args, "");
    assert_eq!(out.status.code(), Some(7));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--essential-hook \"exit 7\" exited with status 7"),
        "{err}"
    );
    assert!(!root.path().join("guests/cuhook2").exists());
}

#[test]
fn a_refusing_proxy_is_named_in_one_line() {
    if !root_or_skip() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    // Port 9 (discard) on loopback: nothing listens, the connection is refused.
    let out = vbuild(
        root.path(),
        &[
            "debian",
            "bookworm",
            "--name",
            "cuprox1",
            "--mirror",
            "http://deb.debian.org/debian",
            "--variant",
            "essential",
            "--no-init",
            "--net-mode",
            "none",
            "--copy",
            "--proxy",
            "http://127.0.0.1:9",
        ],
        "",
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("http://127.0.0.1:9 (--proxy)"), "{err}");
    assert!(!root.path().join("guests/cuprox1").exists());
}

/// A copy of the embedded recipes whose bookworm recipe gains `table`.
fn recipes_with_customize(dir: &Path, table: &str) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../recipes");
    let o = Command::new("cp")
        .arg("-a")
        .arg(&src)
        .arg(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = dir.join("debian/bookworm.toml");
    let mut text = std::fs::read_to_string(&r).unwrap();
    text.push_str(table);
    std::fs::write(&r, text).unwrap();
}

#[test]
fn a_password_hash_and_a_recipes_customize_table_reach_the_guest_flags_winning() {
    if !root_or_skip() {
        return;
    }
    let repo = tempfile::tempdir().unwrap();
    let (server, key) = mirror(repo.path());
    let url = server.url();
    let root = tempfile::tempdir().unwrap();
    let recipe_hash = format!("$6$recipe${}", "r".repeat(86));
    let flag_hash = format!("$6$flag${}", "f".repeat(86));
    let recipes = root.path().join("recipes");
    recipes_with_customize(
        &recipes,
        &format!(
            "\n[customize]\nroot_password_hash = \"{recipe_hash}\"\ntimezone = \"Europe/Paris\"\n\
             user = \"bob\"\ndpkgopt = [\"path-exclude=/usr/share/doc/*\"]\n"
        ),
    );
    let with_recipes = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_vbuild"))
            .arg("--root")
            .arg(root.path())
            .arg("--quiet")
            .args(args)
            .env("VBUILD_RECIPES", &recipes)
            .output()
            .unwrap()
    };
    let shadow_root = |name: &str| {
        let fs = root.path().join("guests").join(name).join("rootfs");
        let shadow = std::fs::read_to_string(fs.join("etc/shadow")).unwrap();
        shadow
            .lines()
            .find(|l| l.starts_with("root:"))
            .unwrap()
            .split(':')
            .nth(1)
            .unwrap()
            .to_string()
    };
    // The recipe's table alone: its hash as is, its zone, user and dpkg line.
    let out = with_recipes(&base_args(&url, key.to_str().unwrap(), "cucust3"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(shadow_root("cucust3"), recipe_hash);
    let fs = root.path().join("guests/cucust3/rootfs");
    assert_eq!(
        std::fs::read_link(fs.join("etc/localtime")).unwrap(),
        Path::new("/usr/share/zoneinfo/Europe/Paris")
    );
    assert!(std::fs::read_to_string(fs.join("etc/passwd"))
        .unwrap()
        .contains("\nbob:x:1000:1000::/home/bob:/bin/sh\n"));
    assert_eq!(
        std::fs::read_to_string(fs.join("etc/dpkg/dpkg.cfg.d/99vbuild")).unwrap(),
        "path-exclude=/usr/share/doc/*\n"
    );
    // --root-password-hash replaces the recipe's; list flags add to it.
    let mut args = base_args(&url, key.to_str().unwrap(), "cucust4");
    args.extend([
        "--root-password-hash",
        &flag_hash,
        "--dpkgopt",
        "path-exclude=/usr/share/man/*",
    ]);
    let out = with_recipes(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(shadow_root("cucust4"), flag_hash);
    assert_eq!(
        std::fs::read_to_string(
            root.path()
                .join("guests/cucust4/rootfs/etc/dpkg/dpkg.cfg.d/99vbuild")
        )
        .unwrap(),
        "path-exclude=/usr/share/doc/*\npath-exclude=/usr/share/man/*\n"
    );
    // A hash that is not crypt(3), from the flag or from the recipe: refused
    // before anything is made.
    let mut args = base_args(&url, key.to_str().unwrap(), "cucust5");
    args.extend(["--root-password-hash", "s3cret"]);
    let out = with_recipes(&args);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--root-password-hash: does not start with $ID$"),
        "{err}"
    );
    assert!(!root.path().join("guests/cucust5").exists());
    recipes_with_customize(
        &root.path().join("bad-recipes"),
        "\n[customize]\nroot_password_hash = \"plain\"\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_vbuild"))
        .arg("--root")
        .arg(root.path())
        .arg("--quiet")
        .args(base_args(&url, key.to_str().unwrap(), "cucust5"))
        .env("VBUILD_RECIPES", root.path().join("bad-recipes"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not start with $ID$"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!root.path().join("guests/cucust5").exists());
    for g in ["cucust3", "cucust4"] {
        let _ = vbuild(root.path(), &["delete", g], "");
    }
}

/// A repository whose one optional package's postinst leaves a mark in the
/// tree, sleeps an hour, then leaves another: a build in `configure` that
/// only an interrupt ends in any reasonable time.
fn slow_mirror(dir: &Path) -> (TestServer, std::path::PathBuf) {
    let shell = busybox_shell(&[
        "sh", "cat", "echo", "mkdir", "ln", "rm", "true", "sleep", "touch",
    ]);
    let slow = DebBuilder::new("slow", "1.0", "amd64")
        .field("Depends", "busybox-sh")
        .file("usr/share/slow/x", b"x\n", 0o644)
        .script(
            "postinst",
            "#!/bin/sh\ntouch /slow-began\nsleep 3600\ntouch /slow-ended\n",
        );
    let mut repo = TestRepo::new("bookworm");
    repo.add(deb(
        shell,
        &[("Essential", "yes"), ("Priority", "required")],
    ))
    .add(deb(
        slow,
        &[("Depends", "busybox-sh"), ("Priority", "optional")],
    ));
    let key = TestKey::generate("vbuild ctrl-c test <test@vbuild.invalid>");
    repo.write(dir, &key).unwrap();
    let key_file = dir.join("test-key.asc");
    std::fs::write(&key_file, key.public_armored()).unwrap();
    (TestServer::serve(dir), key_file)
}

/// Starts a build of `name` that installs `slow`, in a process group of its
/// own (as a shell puts a foreground job), and waits until its postinst runs.
fn start_slow_build(root: &Path, url: &str, key: &Path, name: &str) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    let mut args = base_args(url, key.to_str().unwrap(), name);
    args.extend(["--include", "slow"]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_vbuild"))
        .arg("--root")
        .arg(root)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let mark = root.join("guests").join(name).join("rootfs/slow-began");
    for _ in 0..1200 {
        if mark.exists() {
            return child;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // SAFETY: signalling the process group of our own child.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
    let _ = child.wait();
    panic!("the postinst never began ({})", mark.display());
}

/// Pids of the processes whose root directory is under `dir` (a build
/// context's chroot).
fn rooted_in(dir: &Path) -> Vec<i32> {
    let mut pids = vec![];
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if std::fs::read_link(e.path().join("root")).is_ok_and(|r| r.starts_with(dir)) {
            pids.push(pid);
        }
    }
    pids
}

/// Waits for vbuild to end. Its script sleeps an hour, so ending within
/// two minutes shows the interrupt ended the script (a liveness bound, not
/// a speed target); past it the build's group is killed and the test fails.
fn finish(child: std::process::Child) -> std::process::Output {
    let group = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(std::time::Duration::from_secs(120)) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            // SAFETY: signalling the process group of our own child.
            unsafe { libc::kill(-group, libc::SIGKILL) };
            panic!("vbuild was still waiting for its maintainer script two minutes after Ctrl-C");
        }
    }
}

#[test]
fn ctrl_c_in_a_maintainer_script_says_so_once_and_keeps_nothing_and_twice_exits_130() {
    if !root_or_skip() {
        return;
    }
    let repo = tempfile::tempdir().unwrap();
    let (server, key) = slow_mirror(repo.path());
    let url = server.url();
    let root = tempfile::tempdir().unwrap();
    let group = |c: &std::process::Child, sig: i32| {
        // SAFETY: signalling the process group of our own child.
        unsafe { libc::kill(-(c.id() as i32), sig) };
    };

    // One Ctrl-C (SIGINT to the whole foreground group, as a terminal sends
    // it): the message at once, the script ended, nothing kept.
    let child = start_slow_build(root.path(), &url, &key, "cuint1");
    group(&child, libc::SIGINT);
    let out = finish(child);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(
        err.matches("vbuild: interrupting: stopping after the current step")
            .count(),
        1,
        "{err}"
    );
    assert!(
        err.contains("interrupted while running maintainer scripts (configure)"),
        "{err}"
    );
    assert_eq!(err.matches("nothing was kept").count(), 1, "{err}");
    // The script ran in a session of its own, out of the terminal's reach:
    // vbuild ended its build context, and the guest is gone.
    assert!(!root.path().join("guests/cuint1").exists(), "{err}");
    let check = Command::new(env!("CARGO_BIN_EXE_vbuild"))
        .arg("--root")
        .arg(root.path())
        .args(["--json", "check"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&check.stdout).contains("cuint1"),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );

    // Ctrl-C twice: exit 130 at once, and what is left is named by check
    // and removed by check --fix.
    // The second one goes as soon as vbuild said it heard the first: before
    // its watcher (which looks every 50 ms) has ended the script, so vbuild
    // is still in the step.
    let mut child = start_slow_build(root.path(), &url, &key, "cuint2");
    let mut stderr = child.stderr.take().unwrap();
    group(&child, libc::SIGINT);
    let mut said = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&said).contains("vbuild: interrupting") {
        use std::io::Read;
        let n = stderr.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "vbuild ended before it said it was interrupted: {}",
            String::from_utf8_lossy(&said)
        );
        said.extend_from_slice(&buf[..n]);
    }
    group(&child, libc::SIGINT);
    let rest = std::thread::spawn(move || {
        use std::io::Read;
        let mut v = Vec::new();
        let _ = stderr.read_to_end(&mut v);
        v
    });
    let out = finish(child);
    said.extend(rest.join().unwrap());
    let err = String::from_utf8_lossy(&said);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("vbuild: stopped at once"), "{err}");
    // vbuild's end took its build context's PID 1 along (parent-death
    // signals), and with it the script.
    let mut left = rooted_in(root.path());
    for _ in 0..40 {
        if left.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        left = rooted_in(root.path());
    }
    assert!(
        left.is_empty(),
        "processes still inside the build: {left:?}"
    );
    std::thread::sleep(std::time::Duration::from_millis(500));
    let fix = Command::new(env!("CARGO_BIN_EXE_vbuild"))
        .arg("--root")
        .arg(root.path())
        .args(["check", "--fix"])
        .output()
        .unwrap();
    assert!(
        !root.path().join("guests/cuint2").exists(),
        "check --fix: {}{}",
        String::from_utf8_lossy(&fix.stdout),
        String::from_utf8_lossy(&fix.stderr)
    );
    assert!(
        !root.path().join("guests/cuint1/rootfs/slow-ended").exists()
            && !root.path().join("guests/cuint2/rootfs/slow-ended").exists()
    );
}

#[test]
fn without_a_tty_each_stage_is_one_plain_line_and_the_steps_are_timed() {
    if !root_or_skip() {
        return;
    }
    let repo = tempfile::tempdir().unwrap();
    let (server, key) = mirror(repo.path());
    let url = server.url();
    let root = tempfile::tempdir().unwrap();
    // Not --quiet, stderr a pipe: no bars, plain lines as the build goes.
    let out = Command::new(env!("CARGO_BIN_EXE_vbuild"))
        .arg("--root")
        .arg(root.path())
        .args(base_args(&url, key.to_str().unwrap(), "cutty1"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    let at = |p: &str| {
        lines
            .iter()
            .position(|l| l.starts_with(p))
            .unwrap_or_else(|| panic!("no line starting {p:?}: {err}"))
    };
    // Both packages counted in each stage, the stages in order, each once.
    assert!(at("downloading: 2") < at("installing: 2"), "{err}");
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("installing:"))
            .count(),
        1
    );
    // No bar or terminal control codes in a pipe.
    assert!(!err.contains('\u{1b}') && !err.contains("[=="), "{err}");
    let timing = lines[at("vbuild: time per step: ")];
    assert!(timing.contains("s, ") && timing.ends_with('s'), "{timing}");
    let _ = vbuild(root.path(), &["delete", "cutty1"], "");
}

/// The test mirror with a `contrib` component beside `main` (one signed
/// suite), and a second repository (suite `extras`, its own key) for
/// `--source`.
fn two_mirrors(
    dir: &Path,
) -> (
    TestServer,
    std::path::PathBuf,
    TestServer,
    std::path::PathBuf,
) {
    let shell = busybox_shell(&["sh", "cat", "echo", "mkdir", "ln", "rm", "true"]);
    let mut main = TestRepo::new("bookworm");
    main.add(deb(
        shell,
        &[("Essential", "yes"), ("Priority", "required")],
    ));
    let mut contrib = TestRepo::new("bookworm");
    contrib.component = "contrib".into();
    contrib.add(deb(
        DebBuilder::new("contrib-tool", "1.0", "amd64").file(
            "usr/share/contrib-tool/here",
            b"from contrib\n",
            0o644,
        ),
        &[("Priority", "optional")],
    ));
    let key = TestKey::generate("vbuild components test <test@vbuild.invalid>");
    let d1 = dir.join("mirror");
    vbuild_testkit::repo::write_suite(&d1, &key, &[&main, &contrib]).unwrap();
    let k1 = dir.join("mirror-key.asc");
    std::fs::write(&k1, key.public_armored()).unwrap();

    let mut extras = TestRepo::new("extras");
    extras.add(deb(
        DebBuilder::new("extra-tool", "2.0", "amd64").file(
            "usr/share/extra-tool/here",
            b"from extras\n",
            0o644,
        ),
        &[("Priority", "optional")],
    ));
    let other = TestKey::generate("vbuild extras test <extras@vbuild.invalid>");
    let d2 = dir.join("extras");
    extras.write(&d2, &other).unwrap();
    let k2 = dir.join("extras-key.asc");
    std::fs::write(&k2, other.public_armored()).unwrap();
    (TestServer::serve(&d1), k1, TestServer::serve(&d2), k2)
}

#[test]
fn components_and_an_extra_source_are_read_by_the_build_and_written_to_the_guest() {
    if !root_or_skip() {
        return;
    }
    let repo = tempfile::tempdir().unwrap();
    let (s1, k1, s2, k2) = two_mirrors(repo.path());
    let (url, url2) = (s1.url(), s2.url());
    let root = tempfile::tempdir().unwrap();
    let k1s = k1.to_str().unwrap();
    let build = |name: &str, more: &[&str]| {
        let mut a = base_args(&url, k1s, name);
        a.extend(more);
        vbuild(root.path(), &a, "")
    };
    let err = |o: &Output| String::from_utf8_lossy(&o.stderr).into_owned();

    // The recipe's components are main only: contrib's package is unknown.
    let o = build("comp1", &["--include", "contrib-tool"]);
    assert!(!o.status.success(), "contrib-tool found without contrib");
    assert!(err(&o).contains("contrib-tool"), "{}", err(&o));
    assert!(!root.path().join("guests/comp1").exists());

    // --components main,contrib: read by the build, listed in the guest.
    let o = build(
        "comp1",
        &["--components", "main,contrib", "--include", "contrib-tool"],
    );
    assert!(o.status.success(), "{}", err(&o));
    let r = root.path().join("guests/comp1/rootfs");
    assert_eq!(
        std::fs::read_to_string(r.join("usr/share/contrib-tool/here")).unwrap(),
        "from contrib\n"
    );
    let listed: String = [
        "etc/apt/sources.list",
        "etc/apt/sources.list.d/debian.sources",
    ]
    .iter()
    .filter_map(|f| std::fs::read_to_string(r.join(f)).ok())
    .collect();
    assert!(
        listed.contains("main contrib"),
        "the guest's sources: {listed}"
    );

    // --source: a second repository, trusted only through --keyring.
    let line = format!("deb {url2} extras main");
    let o = build("comp2", &["--source", &line, "--include", "extra-tool"]);
    assert!(!o.status.success(), "an unsigned-for-us source was read");
    assert!(
        err(&o).contains(&format!("--source {url2}"))
            && err(&o).contains("extras")
            && err(&o).contains("--keyring"),
        "names the source and the fix: {}",
        err(&o)
    );
    assert!(!root.path().join("guests/comp2").exists());
    let o = build(
        "comp2",
        &[
            "--source",
            &line,
            "--keyring",
            k2.to_str().unwrap(),
            "--include",
            "extra-tool",
        ],
    );
    assert!(o.status.success(), "{}", err(&o));
    let r = root.path().join("guests/comp2/rootfs");
    assert_eq!(
        std::fs::read_to_string(r.join("usr/share/extra-tool/here")).unwrap(),
        "from extras\n"
    );
    assert_eq!(
        std::fs::read_to_string(r.join("etc/apt/sources.list.d/vbuild.list")).unwrap(),
        format!("{line}\n")
    );
    for g in ["comp1", "comp2"] {
        assert!(vbuild(root.path(), &["delete", g], "").status.success());
    }
}
