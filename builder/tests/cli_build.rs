//! `vbuild debian` through the real binary against a generated, signed
//! repository on loopback: a complete build (maintainer scripts ran, dpkg
//! database, tailoring, guest.toml), the one-line refusals that create
//! nothing, and Ctrl-C in the middle of a build.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;
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

/// A repository for suite `bookworm` whose packages really install: a
/// busybox shell (Essential) and `hello`, whose postinst leaves a mark.
struct Mirror {
    _dir: tempfile::TempDir,
    server: TestServer,
    key_file: PathBuf,
}

/// The index entry for `b`, with the control fields the resolver reads.
fn deb(b: DebBuilder, fields: &[(&str, &str)]) -> TestPackage {
    let mut p = TestPackage::new(b.name(), "1.0", "amd64");
    for (k, v) in fields {
        p = p.field(k, v);
    }
    p.deb(b.build())
}

fn mirror() -> Mirror {
    let bb = std::fs::read("/bin/busybox").expect("busybox-static is installed by test.sh");
    let mut shell = DebBuilder::new("busybox-sh", "1.0", "amd64")
        .field("Essential", "yes")
        .dir("usr/bin", 0o755)
        .file("usr/bin/busybox", &bb, 0o755);
    for app in ["sh", "cat", "echo", "mkdir", "ln", "rm", "true"] {
        shell = shell.symlink(&format!("usr/bin/{app}"), "busybox");
    }
    let hello = DebBuilder::new("hello", "1.0", "amd64")
        .field("Depends", "busybox-sh")
        .file("usr/share/hello/greeting", b"hi\n", 0o644)
        .script(
            "postinst",
            "#!/bin/sh\nset -e\n[ \"$1\" = configure ] && echo \"configured $DPKG_MAINTSCRIPT_PACKAGE\" > /var/lib/hello.done\n",
        );
    let mut repo = TestRepo::new("bookworm");
    repo.add(deb(
        shell,
        &[("Essential", "yes"), ("Priority", "required")],
    ))
    .add(deb(
        hello,
        &[("Depends", "busybox-sh"), ("Priority", "optional")],
    ));
    let dir = tempfile::tempdir().unwrap();
    let key = TestKey::generate("vbuild cli test <test@vbuild.invalid>");
    repo.write(dir.path(), &key).unwrap();
    let key_file = dir.path().join("test-key.asc");
    std::fs::write(&key_file, key.public_armored()).unwrap();
    let server = TestServer::serve(dir.path());
    Mirror {
        _dir: dir,
        server,
        key_file,
    }
}

fn vbuild(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vbuild"))
        .arg("--root")
        .arg(root)
        .arg("--quiet")
        .args(args)
        .output()
        .unwrap()
}

fn build_args<'a>(m: &'a Mirror, url: &'a str, name: &'a str) -> Vec<&'a str> {
    vec![
        "debian",
        "bookworm",
        "--name",
        name,
        "--mirror",
        url,
        "--keyring",
        m.key_file.to_str().unwrap(),
        "--variant",
        "essential",
        "--include",
        "hello",
        "--no-init",
        "--net-mode",
        "none",
        // A plain tree of its own, read here directly (overlay guests:
        // tests/templates.rs).
        "--copy",
    ]
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_build_from_a_signed_loopback_repository_gives_a_configured_guest() {
    if !root_or_skip() {
        return;
    }
    let m = mirror();
    let root = tempfile::tempdir().unwrap();
    let url = m.server.url();
    let out = vbuild(root.path(), &build_args(&m, &url, "t1"));
    assert!(out.status.success(), "{}", stderr(&out));
    // A --no-init tree does not boot: the summary points at the tree, not
    // at `vbuild start`.
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.starts_with("t1  debian bookworm  essential  2 packages"),
        "{summary}"
    );
    assert!(!summary.contains("vbuild start"), "{summary}");
    assert!(
        summary.trim_end().ends_with("guests/t1/rootfs"),
        "{summary}"
    );

    let rootfs = root.path().join("guests/t1/rootfs");
    assert_eq!(
        std::fs::read_to_string(rootfs.join("var/lib/hello.done")).unwrap(),
        "configured hello\n",
        "hello's postinst ran inside the guest"
    );
    let status = std::fs::read_to_string(rootfs.join("var/lib/dpkg/status")).unwrap();
    assert_eq!(status.matches("Status: install ok installed").count(), 2);
    assert_eq!(
        std::fs::read_to_string(rootfs.join("etc/hostname"))
            .unwrap()
            .trim(),
        "t1"
    );
    assert!(!rootfs.join("usr/sbin/policy-rc.d").exists());
    let config = std::fs::read_to_string(root.path().join("guests/t1/guest.toml")).unwrap();
    assert!(config.contains("release = \"bookworm\"") && config.contains("mode = \"none\""));

    let list = vbuild(root.path(), &["list", "--json"]);
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(list.contains("\"t1\""), "{list}");

    // A second build of another guest reads every .deb from the cache.
    let deb_requests = || -> usize {
        m.server
            .request_log()
            .iter()
            .filter(|(p, _)| p.ends_with(".deb"))
            .map(|(_, n)| n)
            .sum()
    };
    let before = deb_requests();
    assert_eq!(before, 2);
    // `vbuild debian` is the shorthand of `vbuild build debian`: same flags.
    let mut long_form = vec!["build"];
    long_form.extend(build_args(&m, &url, "t2"));
    long_form.insert(0, "--json");
    let out = vbuild(root.path(), &long_form);
    assert!(out.status.success(), "{}", stderr(&out));
    // The report names distro and release apart, as list and status do,
    // and times each step in an object.
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["distro"], "debian", "{report}");
    assert_eq!(report["release"], "bookworm", "{report}");
    assert_eq!(report["net_mode"], "none", "{report}");
    assert!(
        report["created"].as_u64().unwrap() > 1_700_000_000,
        "{report}"
    );
    let steps = report["seconds"].as_object().expect("seconds is an object");
    assert!(
        !steps.is_empty() && steps.values().all(|v| v.is_f64()),
        "{report}"
    );
    assert_eq!(
        deb_requests(),
        before,
        "second build downloaded .debs again"
    );

    // The name is now taken: one line, nothing changed.
    let out = vbuild(root.path(), &build_args(&m, &url, "t1"));
    assert!(!out.status.success());
    assert_eq!(
        stderr(&out).trim_end(),
        "vbuild: guest \"t1\" already exists (pick another --name, or `vbuild delete t1` first)"
    );
    assert!(rootfs.join("var/lib/hello.done").exists());
}

#[test]
fn bad_requests_are_refused_in_one_line_and_create_nothing() {
    if !root_or_skip() {
        return;
    }
    let m = mirror();
    let root = tempfile::tempdir().unwrap();
    let url = m.server.url();
    let long = "a".repeat(64);
    let missing = format!("{url}/nope");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (build_args(&m, &url, "../x"), "guest name"),
        (build_args(&m, &url, "Mail"), "guest name"),
        (build_args(&m, &url, &long), "longer than 63"),
        (build_args(&m, &missing, "t3"), "not found"),
        (vec!["debian", "potato", "--name", "t4"], "bookworm"),
        (
            vec!["build", "debian", "potato", "--name", "t4"],
            "bookworm",
        ),
        (
            vec!["build", "alpine", "3.20", "--name", "t6"],
            "distribution family \"alpine\" cannot be built yet; families that exist: debian, fedora",
        ),
        (
            vec!["fedora", "99", "--name", "t6"],
            "unknown release fedora/99; known: 43, 44, 45, rawhide",
        ),
        (
            {
                let mut a = build_args(&m, &url, "t7");
                let v = a.iter().position(|x| *x == "essential").unwrap();
                a[v] = "huge";
                a
            },
            "--variant huge: debian has essential, minbase, standard, custom",
        ),
        (
            {
                let mut a = build_args(&m, &url, "t5");
                a.extend(["--memory", "12Q"]);
                a
            },
            "is not a size (try --memory 512M",
        ),
    ];
    for (args, expect) in cases {
        let out = vbuild(root.path(), &args);
        let err = stderr(&out);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(err.contains(expect), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(!err.contains("panicked") && !err.contains("backtrace"));
    }
    let guests = root.path().join("guests");
    let left: Vec<_> = std::fs::read_dir(&guests)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(!root.path().join("x").exists());
}

#[test]
fn ctrl_c_during_a_build_leaves_no_guest_and_no_partial_download() {
    if !root_or_skip() {
        return;
    }
    let m = mirror();
    m.server.set_delay(Duration::from_millis(400));
    let root = tempfile::tempdir().unwrap();
    let url = m.server.url();
    let child = Command::new(env!("CARGO_BIN_EXE_vbuild"))
        .arg("--root")
        .arg(root.path())
        .arg("--quiet")
        .args(build_args(&m, &url, "t6"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(600));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("interrupted"), "{}", stderr(&out));
    // Said once: "t6: build failed, nothing was kept: interrupted during ...".
    assert_eq!(
        stderr(&out).matches("nothing was kept").count(),
        1,
        "{}",
        stderr(&out)
    );
    assert!(!root.path().join("guests/t6").exists());
    let tmp = root.path().join("cache/tmp");
    let partial: Vec<_> = std::fs::read_dir(&tmp)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".partial"))
                .collect()
        })
        .unwrap_or_default();
    assert!(partial.is_empty(), "{partial:?}");
    // Rerunning works.
    m.server.set_delay(Duration::ZERO);
    let out = vbuild(root.path(), &build_args(&m, &url, "t6"));
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn help_claims_only_families_that_exist() {
    let out = Command::new(env!("CARGO_BIN_EXE_vbuild"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(help.contains("Debian") && help.contains("Fedora"), "{help}");
    assert!(!help.to_lowercase().contains("alpine"), "{help}");
    assert!(help.contains("vbuild build debian bookworm"), "{help}");
    let out = Command::new(env!("CARGO_BIN_EXE_vbuild"))
        .args(["build", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("FAMILY") && help.contains("--name"), "{help}");
    assert!(help.contains("debian, fedora"), "{help}");
}
