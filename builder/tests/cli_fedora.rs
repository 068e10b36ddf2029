//! `vbuild fedora` through the real binary against a generated, signed RPM
//! repository on loopback (`--mirror` baseurl, `--keyring` the repository's
//! key, `--variant custom`): the payloads land in the guest's root, the
//! guest is tailored and recorded; a package signed by a key nobody trusts
//! and an unsatisfiable request are refused in one line, leaving nothing.

use std::path::Path;
use std::process::{Command, Output};
use vbuild_testkit::http::TestServer;
use vbuild_testkit::pgp::TestKey;
use vbuild_testkit::rpmrepo::{TestRpm, TestRpmRepo};

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

fn vbuild(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vbuild"))
        .arg("--root")
        .arg(root)
        .arg("--quiet")
        .args(args)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

struct Mirror {
    _dir: tempfile::TempDir,
    server: TestServer,
    key_file: std::path::PathBuf,
}

fn mirror(signer: &TestKey, trusted: &TestKey) -> Mirror {
    let bb = std::fs::read("/bin/busybox").expect("busybox-static is installed by test.sh");
    let mut shell = TestRpm::new("busybox-sh", "1.36")
        .dir("/usr")
        .dir("/usr/bin")
        .file("/usr/bin/busybox", &bb, 0o755)
        .symlink("/bin", "usr/bin");
    for app in ["sh", "cat", "echo"] {
        shell = shell.symlink(&format!("/usr/bin/{app}"), "busybox");
    }
    let hello = TestRpm::new("hello", "2.12")
        .file("/usr/share/hello/greeting", b"hi\n", 0o644)
        .requires("/usr/bin/sh");
    let mut repo = TestRpmRepo::new();
    repo.add(shell, signer).add(hello, signer);
    let dir = tempfile::tempdir().unwrap();
    repo.write(&dir.path().join("os")).unwrap();
    let key_file = dir.path().join("repo-key.asc");
    std::fs::write(&key_file, trusted.public_armored()).unwrap();
    let server = TestServer::serve(dir.path());
    Mirror {
        _dir: dir,
        server,
        key_file,
    }
}

fn args<'a>(m: &'a Mirror, url: &'a str, name: &'a str, include: &'a str) -> Vec<&'a str> {
    vec![
        "fedora",
        "44",
        "--name",
        name,
        "--mirror",
        url,
        "--keyring",
        m.key_file.to_str().unwrap(),
        "--variant",
        "custom",
        "--include",
        include,
        "--no-init",
        // A plain tree the test reads (default guests are template overlays).
        "--copy",
        "--net-mode",
        "none",
    ]
}

fn guests_left(root: &Path) -> Vec<String> {
    std::fs::read_dir(root.join("guests"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_fedora_build_from_a_signed_loopback_repository() {
    if !root_or_skip() {
        return;
    }
    let key = TestKey::generate("vbuild fedora cli <test@vbuild.invalid>");
    let m = mirror(&key, &key);
    let root = tempfile::tempdir().unwrap();
    let url = format!("{}/os/", m.server.url());
    let out = vbuild(root.path(), &args(&m, &url, "f1", "hello"));
    assert!(out.status.success(), "{}", stderr(&out));
    let rootfs = root.path().join("guests/f1/rootfs");
    assert_eq!(
        std::fs::read_to_string(rootfs.join("usr/share/hello/greeting")).unwrap(),
        "hi\n"
    );
    assert_eq!(
        std::fs::read_link(rootfs.join("usr/bin/sh")).unwrap(),
        Path::new("busybox"),
        "the file dependency /usr/bin/sh pulled busybox-sh in"
    );
    assert_eq!(
        std::fs::read_to_string(rootfs.join("etc/hostname"))
            .unwrap()
            .trim(),
        "f1"
    );
    assert_eq!(std::fs::read(rootfs.join("etc/machine-id")).unwrap(), b"");
    let config = std::fs::read_to_string(root.path().join("guests/f1/guest.toml")).unwrap();
    assert!(config.contains("release = \"44\""), "{config}");

    // Unsatisfiable: one line naming the dependency and who needs it.
    let out = vbuild(root.path(), &args(&m, &url, "f2", "nope"));
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("nothing provides \"nope\" needed by the request"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert_eq!(guests_left(root.path()), ["f1"]);
}

#[test]
fn packages_signed_by_an_untrusted_key_build_nothing() {
    if !root_or_skip() {
        return;
    }
    let signer = TestKey::generate("someone <x@vbuild.invalid>");
    let trusted = TestKey::generate("the repository <y@vbuild.invalid>");
    let m = mirror(&signer, &trusted);
    let root = tempfile::tempdir().unwrap();
    let url = format!("{}/os/", m.server.url());
    let out = vbuild(root.path(), &args(&m, &url, "f3", "hello"));
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("signature check failed"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(guests_left(root.path()).is_empty());
}

#[test]
fn a_file_mirror_builds_like_an_http_one() {
    if !root_or_skip() {
        return;
    }
    let key = TestKey::generate("vbuild fedora cli <test@vbuild.invalid>");
    let m = mirror(&key, &key);
    let root = tempfile::tempdir().unwrap();
    let url = format!("file://{}/os/", m._dir.path().display());
    let out = vbuild(root.path(), &args(&m, &url, "fd-file", "hello"));
    assert!(out.status.success(), "{}", stderr(&out));
    let rootfs = root.path().join("guests/fd-file/rootfs");
    assert_eq!(
        std::fs::read_to_string(rootfs.join("usr/share/hello/greeting")).unwrap(),
        "hi\n"
    );
}

/// Weak dependencies are left out unless `--recommends` asks for them.
#[test]
fn recommends_are_installed_only_with_the_flag() {
    if !root_or_skip() {
        return;
    }
    let key = TestKey::generate("vbuild fedora cli <test@vbuild.invalid>");
    let mut tool = TestRpm::new("tool", "1.0").file("/usr/share/tool/x", b"x\n", 0o644);
    tool.recommends.push("tool-docs".into());
    let docs = TestRpm::new("tool-docs", "1.0").file("/usr/share/doc/tool/README", b"r\n", 0o644);
    let mut repo = TestRpmRepo::new();
    repo.add(tool, &key).add(docs, &key);
    let dir = tempfile::tempdir().unwrap();
    repo.write(&dir.path().join("os")).unwrap();
    let key_file = dir.path().join("key.asc");
    std::fs::write(&key_file, key.public_armored()).unwrap();
    let url = format!("file://{}/os/", dir.path().display());
    let root = tempfile::tempdir().unwrap();
    let build = |name: &str, extra: &[&str]| {
        let mut a = vec![
            "fedora",
            "44",
            "--name",
            name,
            "--mirror",
            &url,
            "--keyring",
            key_file.to_str().unwrap(),
            "--variant",
            "custom",
            "--include",
            "tool",
            "--no-init",
            "--copy",
            "--net-mode",
            "none",
        ];
        a.extend_from_slice(extra);
        let out = vbuild(root.path(), &a);
        assert!(out.status.success(), "{}", stderr(&out));
        root.path().join("guests").join(name).join("rootfs")
    };
    let plain = build("fd-weak1", &[]);
    assert!(plain.join("usr/share/tool/x").is_file());
    assert!(
        !plain.join("usr/share/doc/tool/README").exists(),
        "a Recommends came in without --recommends"
    );
    let weak = build("fd-weak2", &["--recommends"]);
    assert_eq!(
        std::fs::read_to_string(weak.join("usr/share/doc/tool/README")).unwrap(),
        "r\n"
    );
}
