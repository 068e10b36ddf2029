//! Mirror transports through the real binary: a generated, signed
//! repository served over https by a loopback TLS server whose CA is made
//! for the test (trusted with `SSL_CERT_FILE`, refused without it), and the
//! same repository as a `file://` directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use vbuild_testkit::deb::DebBuilder;
use vbuild_testkit::pgp::TestKey;
use vbuild_testkit::repo::{TestPackage, TestRepo};
use vbuild_testsupport::http::TestServer;
use vbuild_testsupport::tls::TlsTestServer;
use vbuild_testsupport::{is_root, require};

/// A signed repository for suite `bookworm` on disk: a busybox shell
/// (Essential) and `hello`, whose postinst leaves a mark.
struct Repo {
    dir: tempfile::TempDir,
    key_file: PathBuf,
}

fn deb(b: DebBuilder, fields: &[(&str, &str)]) -> TestPackage {
    let mut p = TestPackage::new(b.name(), "1.0", "amd64");
    for (k, v) in fields {
        p = p.field(k, v);
    }
    p.deb(b.build())
}

fn repo() -> Repo {
    repo_for("bookworm", "bookworm")
}

/// The repository with `Suite: suite` and `Codename: codename`, under
/// `dists/SUITE/` (and `dists/CODENAME` linking there, as on Debian's mirrors).
fn repo_for(suite: &str, codename: &str) -> Repo {
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
    let mut repo = TestRepo::new(suite);
    repo.codename = codename.to_string();
    repo.add(deb(
        shell,
        &[("Essential", "yes"), ("Priority", "required")],
    ))
    .add(deb(
        hello,
        &[("Depends", "busybox-sh"), ("Priority", "optional")],
    ));
    let dir = tempfile::tempdir().unwrap();
    let key = TestKey::generate("vbuild mirror test <test@vbuild.invalid>");
    repo.write(dir.path(), &key).unwrap();
    if suite != codename {
        std::os::unix::fs::symlink(suite, dir.path().join("dists").join(codename)).unwrap();
    }
    let key_file = dir.path().join("test-key.asc");
    std::fs::write(&key_file, key.public_armored()).unwrap();
    Repo { dir, key_file }
}

/// `vbuild --root ROOT --quiet debian bookworm --name NAME --mirror URL ...`,
/// with `SSL_CERT_FILE` set to `ca` when given (and unset otherwise, so
/// the caller's environment cannot make the refusal case pass or fail).
fn build(root: &Path, repo: &Repo, url: &str, name: &str, ca: Option<&Path>) -> Output {
    build_release(root, repo, url, "bookworm", name, ca, &[])
}

/// `build` of `release`, with `extra` global options first (`--json`).
fn build_release(
    root: &Path,
    repo: &Repo,
    url: &str,
    release: &str,
    name: &str,
    ca: Option<&Path>,
    extra: &[&str],
) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vbuild"));
    cmd.env_remove("SSL_CERT_FILE").env_remove("SSL_CERT_DIR");
    if let Some(ca) = ca {
        cmd.env("SSL_CERT_FILE", ca);
    }
    cmd.arg("--root")
        .arg(root)
        .arg("--quiet")
        .args(extra)
        .args(["debian", release, "--name", name, "--mirror", url])
        .arg("--keyring")
        .arg(&repo.key_file)
        .args([
            "--variant",
            "essential",
            "--include",
            "hello",
            "--no-init",
            "--net-mode",
            "none",
            "--copy",
        ])
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Names under `dir`, without dot files; empty when `dir` does not exist.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Every file under the cache's blob store, recursively.
fn blobs(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&root.join("cache/blobs"), &mut out);
    out
}

fn assert_built(root: &Path, name: &str) {
    let rootfs = root.join("guests").join(name).join("rootfs");
    assert_eq!(
        std::fs::read_to_string(rootfs.join("var/lib/hello.done")).unwrap(),
        "configured hello\n",
        "hello's postinst ran inside the guest"
    );
    let status = std::fs::read_to_string(rootfs.join("var/lib/dpkg/status")).unwrap();
    assert_eq!(status.matches("Status: install ok installed").count(), 2);
}

#[test]
fn an_https_mirror_builds_when_its_ca_is_trusted_and_is_refused_in_one_line_otherwise() {
    if !require(
        is_root(),
        "root (run the tests as root, e.g. sudo ./test.sh)",
    ) {
        return;
    }
    let repo = repo();
    let server = TlsTestServer::serve(repo.dir.path());
    let url = server.url();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let root = tempfile::tempdir().unwrap();

    // Untrusted: refused at the first request, in one line that names the
    // mirror URL and the certificate problem, and with the fix.
    let out = build(root.path(), &repo, &url, "a8https1", None);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("{url}/dists/bookworm/InRelease")),
        "{err}"
    );
    assert!(
        err.contains("TLS certificate was not accepted (invalid peer certificate: UnknownIssuer)"),
        "{err}"
    );
    assert!(err.contains("SSL_CERT_FILE"), "{err}");
    // A certificate does not heal: one attempt, no retries.
    assert_eq!(
        server.files().total_requests(),
        0,
        "{:?}",
        server.files().request_log()
    );
    assert!(blobs(root.path()).is_empty(), "{:?}", blobs(root.path()));
    assert!(entries(&root.path().join("guests")).is_empty());
    assert!(entries(&root.path().join("cache/tmp"))
        .iter()
        .all(|n| !n.ends_with(".partial")));

    // Trusted through SSL_CERT_FILE: the same build succeeds, over TLS.
    let out = build(root.path(), &repo, &url, "a8https1", Some(server.ca_file()));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_built(root.path(), "a8https1");
    assert_eq!(server.files().requests("/dists/bookworm/InRelease"), 1);
    let debs: usize = server
        .files()
        .request_log()
        .iter()
        .filter(|(p, _)| p.ends_with(".deb"))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(debs, 2);
}

#[test]
fn a_file_mirror_builds_without_a_server() {
    if !require(
        is_root(),
        "root (run the tests as root, e.g. sudo ./test.sh)",
    ) {
        return;
    }
    let repo = repo();
    let url = format!("file://{}", repo.dir.path().display());
    let root = tempfile::tempdir().unwrap();
    let out = build(root.path(), &repo, &url, "a8file1", None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_built(root.path(), "a8file1");
    let config = std::fs::read_to_string(root.path().join("guests/a8file1/guest.toml")).unwrap();
    assert!(config.contains("release = \"bookworm\""), "{config}");
    // The guest's apt cannot reach a directory of the build host: it gets
    // the recipe's own mirror.
    let sources = std::fs::read_to_string(
        root.path()
            .join("guests/a8file1/rootfs/etc/apt/sources.list"),
    )
    .unwrap();
    assert!(
        sources.contains("deb http://deb.debian.org/debian bookworm main"),
        "{sources}"
    );
    assert!(!sources.contains("file:"), "{sources}");

    // A directory that is not a mirror: one line naming the missing file.
    let empty = tempfile::tempdir().unwrap();
    let bad = format!("file://{}", empty.path().display());
    let out = build(root.path(), &repo, &bad, "a8file2", None);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!(
            "{}/dists/bookworm/InRelease does not exist in the local mirror",
            empty.path().display()
        )),
        "{err}"
    );
    assert!(!root.path().join("guests/a8file2").exists());
}

#[test]
fn a_suite_name_resolves_to_the_codename_the_mirror_signed() {
    if !require(
        is_root(),
        "root (run the tests as root, e.g. sudo ./test.sh)",
    ) {
        return;
    }
    let repo = repo_for("stable", "bookworm");
    let server = TestServer::serve(repo.dir.path());
    let url = server.url();
    let root = tempfile::tempdir().unwrap();

    let out = build_release(
        root.path(),
        &repo,
        &url,
        "stable",
        "a8st1",
        None,
        &["--json"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["release"], "bookworm", "{report}");
    assert_eq!(report["suite"], "stable", "{report}");
    assert_built(root.path(), "a8st1");
    let config = std::fs::read_to_string(root.path().join("guests/a8st1/guest.toml")).unwrap();
    assert!(config.contains("release = \"bookworm\""), "{config}");
    assert_eq!(server.requests("/dists/stable/InRelease"), 1);
    assert_eq!(server.requests("/dists/bookworm/InRelease"), 1);

    // The text report says what the name stood for.
    let out = build_release(root.path(), &repo, &url, "stable", "a8st2", None, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.starts_with("a8st2  debian stable = bookworm  essential  2 packages"),
        "{summary}"
    );

    // A suite the mirror does not have: one line naming its InRelease.
    let out = build_release(root.path(), &repo, &url, "testing", "a8st3", None, &[]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("looking up what \"testing\" is on"), "{err}");
    assert!(err.contains("/dists/testing/InRelease"), "{err}");
    assert!(!root.path().join("guests/a8st3").exists());

    // Signed by a key nobody trusts: refused, the name is not resolved.
    let stranger = repo_for("stable", "bookworm");
    let out = build_release(root.path(), &stranger, &url, "stable", "a8st4", None, &[]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("dists/stable/InRelease is signed by key"),
        "{err}"
    );
    assert!(!root.path().join("guests/a8st4").exists());
}

#[test]
fn testing_unstable_and_oldstable_resolve_through_the_signed_suite_like_stable() {
    if !require(
        is_root(),
        "root (run the tests as root, e.g. sudo ./test.sh)",
    ) {
        return;
    }
    // Each alias on a mirror where it names another release (a state root each).
    for (i, (suite, codename)) in [
        ("testing", "forky"),
        ("unstable", "sid"),
        ("oldstable", "bookworm"),
    ]
    .into_iter()
    .enumerate()
    {
        let root = tempfile::tempdir().unwrap();
        let repo = repo_for(suite, codename);
        let server = TestServer::serve(repo.dir.path());
        let url = server.url();
        let name = format!("a8al{i}");
        let out = build_release(root.path(), &repo, &url, suite, &name, None, &["--json"]);
        assert!(out.status.success(), "{suite}: {}", stderr(&out));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["release"], codename, "{suite}: {report}");
        assert_eq!(report["suite"], suite, "{suite}: {report}");
        assert_built(root.path(), &name);
        let config =
            std::fs::read_to_string(root.path().join("guests").join(&name).join("guest.toml"))
                .unwrap();
        assert!(
            config.contains(&format!("release = \"{codename}\"")),
            "{suite}: {config}"
        );
        // The alias's InRelease said which release; that one's was used.
        assert_eq!(
            server.requests(&format!("/dists/{suite}/InRelease")),
            1,
            "{suite}"
        );
        assert_eq!(
            server.requests(&format!("/dists/{codename}/InRelease")),
            1,
            "{suite}"
        );
    }
}
