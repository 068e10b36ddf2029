//! Templates and copy-on-write guests, through the real binary against a
//! generated, signed repository on loopback: 20 guests from one template
//! (each guest's own small layer, its own hostname and SSH host key),
//! writes inside one running guest that change neither the template nor
//! another guest, reuse on identical inputs and a new template for a new
//! package version, delete + prune, SIGKILL during a template build or a
//! guest's creation leaving nothing half-made, the updates suite (the
//! newest version across suites, `--no-updates` the base alone), `template
//! refresh`, and template ids that follow the tailoring templates' text.
//!
//! Needs root (namespaces, overlayfs, id-mapped mounts); run it under
//! `flock /tmp/vbuild-root-tests.lock`.

use std::collections::BTreeSet;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use vbuild_testkit::deb::DebBuilder;
use vbuild_testkit::http::TestServer;
use vbuild_testkit::pgp::TestKey;
use vbuild_testkit::repo::{TestPackage, TestRepo};
use vbuild_testsupport::require;

struct Mirror {
    dir: tempfile::TempDir,
    server: TestServer,
    key: TestKey,
    key_file: PathBuf,
}

fn deb(b: DebBuilder, version: &str, fields: &[(&str, &str)]) -> TestPackage {
    let mut p = TestPackage::new(b.name(), version, "amd64");
    for (k, v) in fields {
        p = p.field(k, v);
    }
    p.deb(b.build())
}

/// Writes the repository with `hello` at `hello_version`: a busybox shell
/// whose /sbin/init sleeps, `hello` (files to modify, delete and chmod),
/// and a stand-in openssh-server whose postinst makes a host key the way
/// the real one does (once, at build time, naming the build host).
fn write_repo(dir: &Path, key: &TestKey, hello_version: &str) {
    let bb = std::fs::read("/bin/busybox").expect("busybox-static is installed by test.sh");
    let mut shell = DebBuilder::new("busybox-sh", "1.0", "amd64")
        .field("Essential", "yes")
        .dir("usr/bin", 0o755)
        .dir("sbin", 0o755)
        .file("usr/bin/busybox", &bb, 0o755)
        .file(
            "sbin/init",
            b"#!/usr/bin/sh\nexec /usr/bin/busybox sleep 100000\n",
            0o755,
        );
    for app in [
        "sh", "cat", "echo", "mkdir", "ln", "rm", "true", "sleep", "chmod", "stat", "ls",
    ] {
        shell = shell.symlink(&format!("usr/bin/{app}"), "busybox");
    }
    let hello = DebBuilder::new("hello", hello_version, "amd64")
        .field("Depends", "busybox-sh")
        .dir("usr/share/hello", 0o755)
        .file("usr/share/hello/greeting", b"hi\n", 0o644)
        .file("usr/share/hello/doomed", b"delete me\n", 0o644)
        .file("usr/share/hello/mode", b"chmod me\n", 0o644);
    let ssh = DebBuilder::new("openssh-server", "1.0", "amd64")
        .field("Depends", "busybox-sh")
        .dir("etc/ssh", 0o755)
        .file("etc/ssh/sshd_config", b"# test\n", 0o644)
        .dir("usr/sbin", 0o755)
        .file("usr/sbin/sshd", b"#!/usr/bin/sh\n", 0o755)
        .script(
            "postinst",
            "#!/bin/sh\nset -e\necho 'BUILD HOST KEY root@vm' > /etc/ssh/ssh_host_ed25519_key\n",
        );
    let mut repo = TestRepo::new("bookworm");
    repo.add(deb(
        shell,
        "1.0",
        &[("Essential", "yes"), ("Priority", "required")],
    ))
    .add(deb(
        hello,
        hello_version,
        &[("Depends", "busybox-sh"), ("Priority", "optional")],
    ))
    .add(deb(
        ssh,
        "1.0",
        &[("Depends", "busybox-sh"), ("Priority", "optional")],
    ));
    repo.write(dir, key).unwrap();
}

fn mirror() -> Mirror {
    let dir = tempfile::tempdir().unwrap();
    let key = TestKey::generate("vbuild templates test <test@vbuild.invalid>");
    write_repo(dir.path(), &key, "1.0");
    let key_file = dir.path().join("test-key.asc");
    std::fs::write(&key_file, key.public_armored()).unwrap();
    let server = TestServer::serve(dir.path());
    Mirror {
        dir,
        server,
        key,
        key_file,
    }
}

struct Root {
    dir: tempfile::TempDir,
    guests: Vec<String>,
}

impl Root {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_vbuild"));
        c.arg("--root")
            .arg(self.dir.path())
            .arg("--quiet")
            .env("VBUILD_IDRANGES", self.dir.path().join("id-ranges.toml"))
            .args(args);
        c
    }
    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }
    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "vbuild {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    fn build_args<'a>(&self, m: &'a Mirror, url: &'a str, name: &'a str) -> Vec<&'a str> {
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
            "hello,openssh-server",
            "--no-init",
            "--net-mode",
            "none",
        ]
    }
    fn build(&mut self, m: &Mirror, name: &str) {
        let url = m.server.url();
        let args = self.build_args(m, &url, name);
        self.ok(&args);
        self.guests.push(name.to_string());
    }
    fn template_of(&self, name: &str) -> String {
        let cfg = std::fs::read_to_string(self.path(&format!("guests/{name}/guest.toml"))).unwrap();
        cfg.lines()
            .find_map(|l| l.strip_prefix("template = "))
            .expect("an overlay guest pins its template")
            .trim_matches('"')
            .to_string()
    }
    fn templates(&self) -> BTreeSet<String> {
        std::fs::read_dir(self.path("templates"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect()
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        for g in self.guests.clone() {
            let _ = self.run(&["stop", &g, "--timeout", "1"]);
            let _ = self.run(&["delete", &g]);
        }
    }
}

/// Bytes of regular files below `dir` (a guest's own layer).
fn bytes_below(dir: &Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let md = e.path().symlink_metadata().unwrap();
        if md.is_dir() {
            total += bytes_below(&e.path());
        } else {
            total += md.len();
        }
    }
    total
}

fn root_or_skip() -> bool {
    require(nix::unistd::geteuid().is_root(), "needs root")
}

#[test]
fn twenty_guests_share_one_template_and_write_only_their_own_layer() {
    if !root_or_skip() {
        return;
    }
    let m = mirror();
    let mut r = Root {
        dir: tempfile::tempdir().unwrap(),
        guests: vec![],
    };
    let names: Vec<String> = (0..20).map(|i| format!("g{i:02}")).collect();
    r.build(&m, &names[0]);
    let id = r.template_of(&names[0]);
    let tpl = r.path(&format!("templates/{id}/rootfs"));
    assert!(tpl.join("usr/share/hello/greeting").is_file());
    let meta = std::fs::read_to_string(r.path(&format!("templates/{id}/template.toml"))).unwrap();
    assert!(meta.contains("hello=1.0"), "{meta}");
    let deb_requests = || -> usize {
        m.server
            .request_log()
            .iter()
            .filter(|(p, _)| p.ends_with(".deb"))
            .map(|(_, n)| n)
            .sum()
    };
    let debs = deb_requests();

    // 19 more: the same template, nothing downloaded or unpacked again.
    let mut slowest = Duration::ZERO;
    for n in &names[1..] {
        let t = Instant::now();
        r.build(&m, n);
        slowest = slowest.max(t.elapsed());
        assert_eq!(
            r.template_of(n),
            id,
            "{n}: identical inputs reuse the template"
        );
    }
    eprintln!(
        "slowest guest creation from the template (online: with the InRelease check): {slowest:?}"
    );
    assert_eq!(deb_requests(), debs, "no .deb fetched again");
    assert_eq!(r.templates(), BTreeSet::from([id.clone()]));

    // Each guest: a small layer of its own with its name and host key.
    let mut keys = BTreeSet::new();
    for n in &names {
        let layer = r.path(&format!("guests/{n}/layer"));
        let used = bytes_below(&layer);
        assert!(used < 64 * 1024, "{n}: its layer holds {used} bytes");
        let upper = layer.join("upper");
        assert_eq!(
            std::fs::read_to_string(upper.join("etc/hostname"))
                .unwrap()
                .trim(),
            n.as_str()
        );
        assert_eq!(std::fs::read(upper.join("etc/machine-id")).unwrap(), b"");
        let key = upper.join("etc/ssh/ssh_host_ed25519_key");
        assert_eq!(key.metadata().unwrap().permissions().mode() & 0o777, 0o600);
        let public =
            std::fs::read_to_string(upper.join("etc/ssh/ssh_host_ed25519_key.pub")).unwrap();
        assert!(
            public.trim_end().ends_with(&format!("root@{n}")),
            "{public}"
        );
        keys.insert(public.split_whitespace().nth(1).unwrap().to_string());
        // The real tool reads the private key and derives the same public key.
        if n == &names[0]
            && require(
                Path::new("/usr/bin/ssh-keygen").exists(),
                "ssh-keygen (openssh-client)",
            )
        {
            let o = Command::new("ssh-keygen")
                .arg("-y")
                .arg("-f")
                .arg(&key)
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            let derived = String::from_utf8_lossy(&o.stdout);
            assert_eq!(
                derived.split_whitespace().nth(1),
                public.split_whitespace().nth(1)
            );
        }
    }
    assert_eq!(keys.len(), 20, "every guest has its own SSH host key");
    let in_template: Vec<_> = std::fs::read_dir(tpl.join("etc/ssh"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|f| f.starts_with("ssh_host_"))
        .collect();
    assert!(
        in_template.is_empty(),
        "template keeps host keys: {in_template:?}"
    );

    // Writes inside a running (unprivileged) guest stay in its layer.
    let (a, b) = (&names[0], &names[1]);
    r.ok(&["start", a]);
    r.ok(&["start", b]);
    r.ok(&[
        "exec", a, "--", "/usr/bin/sh", "-c",
        "echo changed > /usr/share/hello/greeting && rm /usr/share/hello/doomed && chmod 600 /usr/share/hello/mode && echo new > /usr/share/hello/added",
    ]);
    let view = |g: &str| {
        r.ok(&[
            "exec", g, "--", "/usr/bin/sh", "-c",
            "cat /usr/share/hello/greeting; ls /usr/share/hello; stat -c %a:%u /usr/share/hello/mode",
        ])
    };
    let va = view(a);
    assert_eq!(
        va, "changed\nadded\ngreeting\nmode\n600:0\n",
        "guest {a} sees its own writes"
    );
    assert_eq!(
        view(b),
        "hi\ndoomed\ngreeting\nmode\n644:0\n",
        "guest {b} sees the template"
    );
    let h = tpl.join("usr/share/hello");
    assert_eq!(std::fs::read_to_string(h.join("greeting")).unwrap(), "hi\n");
    assert!(h.join("doomed").is_file());
    assert!(!h.join("added").exists());
    assert_eq!(
        h.join("mode").metadata().unwrap().permissions().mode() & 0o777,
        0o644
    );
    // What the guest's root wrote is owned by host root on disk, like the
    // template (id-mapped layers), never by the guest's host uid.
    let up = r.path(&format!("guests/{a}/layer/upper/usr/share/hello/greeting"));
    assert_eq!(up.metadata().unwrap().uid(), 0);
    r.ok(&["stop", a, "--timeout", "1"]);
    r.ok(&["stop", b, "--timeout", "1"]);

    // cp with the guests stopped: out of the merged view (its layer over
    // the template, whiteouts hiding), into its layer, never the template.
    let host = tempfile::tempdir().unwrap();
    let got = host.path().join("greeting");
    r.ok(&[
        "cp",
        &format!("{a}:/usr/share/hello/greeting"),
        got.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read_to_string(&got).unwrap(), "changed\n");
    let o = r.run(&[
        "cp",
        &format!("{a}:/usr/share/hello/doomed"),
        got.to_str().unwrap(),
    ]);
    assert!(!o.status.success(), "a deleted file was copied out");
    let src = host.path().join("put");
    std::fs::write(&src, "put while stopped\n").unwrap();
    r.ok(&[
        "cp",
        src.to_str().unwrap(),
        &format!("{b}:/usr/share/hello/greeting"),
    ]);
    assert_eq!(
        std::fs::read_to_string(
            r.path(&format!("guests/{b}/layer/upper/usr/share/hello/greeting"))
        )
        .unwrap(),
        "put while stopped\n"
    );
    assert_eq!(std::fs::read_to_string(h.join("greeting")).unwrap(), "hi\n");
    assert!(
        !std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .contains(&format!("guests/{b}")),
        "the private overlay stays private"
    );
    r.ok(&["start", b]);
    assert_eq!(
        view(b),
        "put while stopped\ndoomed\ngreeting\nmode\n644:0\n"
    );
    r.ok(&["stop", b, "--timeout", "1"]);

    // A new version on the mirror makes a new template; old guests keep theirs.
    write_repo(m.dir.path(), &m.key, "1.1");
    r.build(&m, "g20");
    let id2 = r.template_of("g20");
    assert_ne!(id2, id);
    assert_eq!(r.template_of(a), id);
    assert_eq!(r.templates(), BTreeSet::from([id.clone(), id2.clone()]));
    let list = r.ok(&["template", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&list).unwrap();
    let used_by = |t: &str| {
        v.as_array().unwrap().iter().find(|x| x["id"] == t).unwrap()["guests"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!((used_by(&id), used_by(&id2)), (20, 1));

    // Prune refuses a template in use and removes unused ones; delete
    // frees exactly the guest's own directory.
    let o = r.run(&["template", "prune", &id2]);
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("in use by g20") && e.trim().lines().count() == 1,
        "{e}"
    );
    r.ok(&["delete", "g20"]);
    r.guests.retain(|g| g != "g20");
    assert!(!r.path("guests/g20").exists());
    assert!(
        r.path(&format!("templates/{id2}/rootfs")).is_dir(),
        "delete leaves the template"
    );
    r.ok(&["template", "prune"]);
    assert_eq!(r.templates(), BTreeSet::from([id.clone()]));
    r.ok(&["delete", b]);
    r.guests.retain(|g| g != b);
    assert!(tpl.join("usr/share/hello/greeting").is_file());
    r.ok(&["template", "prune"]);
    assert_eq!(
        r.templates(),
        BTreeSet::from([id.clone()]),
        "still in use by 18 guests"
    );
}

#[test]
fn sigkill_during_a_template_build_leaves_no_template_and_check_fix_clears_it() {
    if !root_or_skip() {
        return;
    }
    let m = mirror();
    let mut r = Root {
        dir: tempfile::tempdir().unwrap(),
        guests: vec![],
    };
    m.server.set_delay(Duration::from_millis(300));
    let url = m.server.url();
    let mut child = r.cmd(&r.build_args(&m, &url, "k1")).spawn().unwrap();
    // Wait until the template is being built, then kill -9.
    let t = Instant::now();
    let building = || {
        std::fs::read_dir(r.path("templates"))
            .map(|d| {
                d.flatten()
                    .any(|e| e.file_name().to_string_lossy().starts_with(".build-"))
            })
            .unwrap_or(false)
    };
    while !building() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "template build never started"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        r.templates().is_empty(),
        "no template under its id: {:?}",
        r.templates()
    );
    let check = r.run(&["check", "--json"]);
    let text = String::from_utf8_lossy(&check.stdout);
    assert!(text.contains("half-built template"), "{text}");
    r.ok(&["check", "--fix"]);
    let left: Vec<_> = std::fs::read_dir(r.path("templates"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".lock"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // The next build makes the whole template.
    m.server.set_delay(Duration::ZERO);
    r.build(&m, "k1");
    let id = r.template_of("k1");
    assert!(r.path(&format!("templates/{id}/template.toml")).is_file());
}

/// Adds `bookworm-updates` to the mirror: `hello` at 1.1, whose greeting
/// differs, the way a stable update carries a newer version of one package.
fn add_updates_suite(dir: &Path, key: &TestKey) {
    let hello = DebBuilder::new("hello", "1.1", "amd64")
        .field("Depends", "busybox-sh")
        .dir("usr/share/hello", 0o755)
        .file("usr/share/hello/greeting", b"updated\n", 0o644)
        .file("usr/share/hello/doomed", b"delete me\n", 0o644)
        .file("usr/share/hello/mode", b"chmod me\n", 0o644);
    let mut repo = TestRepo::new("bookworm-updates");
    repo.add(deb(
        hello,
        "1.1",
        &[("Depends", "busybox-sh"), ("Priority", "optional")],
    ));
    repo.write(dir, key).unwrap();
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn updates_suite_refresh_and_tailoring_text_decide_the_template() {
    if !root_or_skip() {
        return;
    }
    let m = mirror();
    let mut r = Root {
        dir: tempfile::tempdir().unwrap(),
        guests: vec![],
    };
    let url = m.server.url();
    let key = m.key_file.to_str().unwrap();
    let refresh = [
        "template",
        "refresh",
        "debian",
        "bookworm",
        "--mirror",
        &url,
        "--keyring",
        key,
        "--variant",
        "essential",
        "--include",
        "hello,openssh-server",
        "--no-init",
    ];
    // The mirror has the base suite alone: the updates and security suites
    // a --mirror lacks are skipped.
    r.build(&m, "u0");
    let id0 = r.template_of("u0");
    let rootfs = |id: &str| r.path(&format!("templates/{id}/rootfs"));
    assert_eq!(
        std::fs::read_to_string(rootfs(&id0).join("usr/share/hello/greeting")).unwrap(),
        "hi\n"
    );
    let mut args = refresh.to_vec();
    args.push("--json");
    let same = json(&r.ok(&args));
    assert_eq!(same["id"], id0.as_str());
    assert_eq!(same["built"], false);
    assert!(
        r.ok(&refresh).contains("up to date"),
        "nothing changed on the mirror"
    );

    // bookworm-updates carries hello 1.1: refresh makes a new template
    // with it; the guest built before keeps its own.
    add_updates_suite(m.dir.path(), &m.key);
    let new = json(&r.ok(&args));
    let id1 = new["id"].as_str().unwrap().to_string();
    assert_ne!(id1, id0);
    assert_eq!(new["built"], true);
    assert_eq!(new["previous"], serde_json::json!([id0]));
    assert_eq!(new["changed"], serde_json::json!(["hello=1.1"]));
    assert_eq!(
        std::fs::read_to_string(rootfs(&id1).join("usr/share/hello/greeting")).unwrap(),
        "updated\n"
    );
    let meta = std::fs::read_to_string(r.path(&format!("templates/{id1}/template.toml"))).unwrap();
    assert!(
        meta.contains("hello=1.1 ") && !meta.contains("hello=1.0"),
        "{meta}"
    );
    assert_eq!(r.template_of("u0"), id0);
    assert_eq!(
        std::fs::read_to_string(rootfs(&id0).join("usr/share/hello/greeting")).unwrap(),
        "hi\n",
        "the old template is never written"
    );

    // A build now gets the newer version (the refreshed template, reused);
    // --no-updates builds the base suite alone: the first template again.
    r.build(&m, "u1");
    assert_eq!(r.template_of("u1"), id1);
    let mut base = r.build_args(&m, &url, "u2");
    base.push("--no-updates");
    r.ok(&base);
    r.guests.push("u2".into());
    assert_eq!(r.template_of("u2"), id0);

    // One changed byte in a tailoring template (.hbs) makes another id.
    let recipes = tempfile::tempdir().unwrap();
    let hosts = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../recipes/templates/hosts.hbs"
    ))
    .unwrap();
    // The override directory replaces the recipes: a copy of the
    // shipped ones with one byte added to hosts.hbs.
    let copied = Command::new("cp")
        .arg("-a")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../recipes/."))
        .arg(recipes.path())
        .status()
        .unwrap();
    assert!(copied.success());
    std::fs::write(
        recipes.path().join("templates/hosts.hbs"),
        format!("{hosts}#"),
    )
    .unwrap();
    let o = r
        .cmd(&r.build_args(&m, &url, "u3"))
        .env("VBUILD_RECIPES", recipes.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    r.guests.push("u3".into());
    let id3 = r.template_of("u3");
    assert!(id3 != id1 && id3 != id0, "{id3}");

    // CREATED reads as a UTC date; --json keeps the number.
    let list = r.ok(&["template", "list"]);
    let row = list.lines().find(|l| l.starts_with(&id1)).unwrap();
    let date = row
        .split("  ")
        .map(str::trim)
        .find(|c| c.len() == 16 && c.as_bytes()[4] == b'-' && c.as_bytes()[13] == b':')
        .unwrap_or_else(|| panic!("no date in {row:?}"));
    assert!(date.starts_with("20"), "{date}");
    let rows = json(&r.ok(&["template", "list", "--json"]));
    assert!(rows
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["created"].is_u64()));
}

#[test]
fn sigkill_during_guest_creation_leaves_nothing_half_made() {
    if !root_or_skip() {
        return;
    }
    let m = mirror();
    let mut r = Root {
        dir: tempfile::tempdir().unwrap(),
        guests: vec![],
    };
    r.build(&m, "base0");
    let id = r.template_of("base0");
    let url = m.server.url();
    let files_of = |p: &Path| -> BTreeSet<(PathBuf, u64)> {
        let mut out = BTreeSet::new();
        let mut stack = vec![p.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let md = e.path().symlink_metadata().unwrap();
                if md.is_dir() {
                    stack.push(e.path());
                }
                out.insert((e.path(), md.len()));
            }
        }
        out
    };
    let before = files_of(&r.path(&format!("templates/{id}")));
    // Kill -9 at increasing points of the guest's creation (the template
    // exists, so the whole build is the guest's): reserving the name, the
    // InRelease check, the layer, its tailoring, guest.toml.
    for delay_ms in [0u64, 1, 2, 4, 8, 15, 25, 40, 60, 90, 130, 200] {
        let mut child = r.cmd(&r.build_args(&m, &url, "k2")).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap();
        let finished = child.wait().unwrap().success();
        let list = json(&r.ok(&["list", "--json"]));
        let listed = list.to_string().contains("\"k2\"");
        let complete = r.path("guests/k2/guest.toml").is_file();
        assert_eq!(
            listed, complete,
            "after {delay_ms} ms: listed only when whole"
        );
        if complete {
            // The build got to the end before the kill: a whole guest.
            assert!(r.path("guests/k2/layer/upper/etc/hostname").is_file());
            r.ok(&["delete", "k2"]);
        } else {
            assert!(!finished);
            let check = json(
                &r.run(&["check", "--json"])
                    .stdout
                    .iter()
                    .map(|&b| b as char)
                    .collect::<String>(),
            );
            let text = check.to_string();
            assert!(
                !text.contains("template is gone"),
                "after {delay_ms} ms: {text}"
            );
            r.ok(&["check", "--fix"]);
            let left: Vec<_> = std::fs::read_dir(r.path("guests"))
                .unwrap()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains("k2"))
                .collect();
            assert!(
                left.is_empty(),
                "after {delay_ms} ms, check --fix left {left:?}"
            );
        }
        assert_eq!(
            r.templates(),
            BTreeSet::from([id.clone()]),
            "after {delay_ms} ms"
        );
    }
    assert_eq!(
        files_of(&r.path(&format!("templates/{id}"))),
        before,
        "the template is untouched"
    );
    // The next build of the same name works and pins the same template.
    r.build(&m, "k2");
    assert_eq!(r.template_of("k2"), id);
    let list = json(&r.ok(&["list", "--json"]));
    assert!(list.to_string().contains("\"k2\""));
}

#[test]
fn an_identical_request_skips_resolution_and_a_changed_index_resolves_again() {
    if !root_or_skip() {
        return;
    }
    let m = mirror();
    let mut r = Root {
        dir: tempfile::tempdir().unwrap(),
        guests: vec![],
    };
    let url = m.server.url();
    let build = |r: &mut Root, name: &str, offline: bool| {
        let mut args = r.build_args(&m, &url, name);
        args.push("--json");
        if offline {
            args.push("--offline");
        }
        let out = json(&r.ok(&args));
        r.guests.push(name.to_string());
        out
    };
    // The first build resolves; the next one remembers that resolution
    // (its InRelease had verified once); identical requests then read no
    // index: the report has no resolve step.
    let f0 = build(&mut r, "f0", false);
    assert!(f0["seconds"].get("resolve").is_some(), "{f0}");
    let id0 = r.template_of("f0");
    build(&mut r, "f1", false);
    for (name, offline) in [("f2", false), ("f3", true)] {
        let f = build(&mut r, name, offline);
        assert!(f["seconds"].get("resolve").is_none(), "{name}: {f}");
        assert_eq!(f["template"], id0.as_str(), "{f}");
        assert_eq!(f["template_built"], false, "{f}");
        assert_eq!(f["packages"], f0["packages"], "{f}");
        assert_eq!(f["deb_bytes"], f0["deb_bytes"], "{f}");
    }
    assert_eq!(
        std::fs::read_dir(r.path("templates/.resolved"))
            .unwrap()
            .count(),
        1,
        "one request, one remembered resolution"
    );
    // Another request (one include less) resolves on its own.
    let mut other = r.build_args(&m, &url, "f4");
    let at = other
        .iter()
        .position(|a| *a == "hello,openssh-server")
        .unwrap();
    other[at] = "hello";
    other.push("--json");
    let f4 = json(&r.ok(&other));
    r.guests.push("f4".into());
    assert!(f4["seconds"].get("resolve").is_some(), "{f4}");
    assert_ne!(r.template_of("f4"), id0);

    // A new version on the mirror: a new InRelease, so a full resolution,
    // and a new template.
    write_repo(m.dir.path(), &m.key, "1.2");
    let f5 = build(&mut r, "f5", false);
    assert!(f5["seconds"].get("resolve").is_some(), "{f5}");
    let id5 = r.template_of("f5");
    assert_ne!(id5, id0);
    let meta = std::fs::read_to_string(r.path(&format!("templates/{id5}/template.toml"))).unwrap();
    assert!(meta.contains("hello=1.2 "), "{meta}");

    // Pruning a template forgets what led to it: the next identical
    // request (to the old index) cannot find a removed template.
    for g in ["f0", "f1", "f2", "f3"] {
        r.ok(&["delete", g]);
        r.guests.retain(|n| n != g);
    }
    r.ok(&["template", "prune"]);
    assert!(!r.templates().contains(&id0));
    let kept: Vec<String> = std::fs::read_dir(r.path("templates/.resolved"))
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    assert!(kept.iter().all(|t| !t.contains(&id0)), "{kept:?}");
}
