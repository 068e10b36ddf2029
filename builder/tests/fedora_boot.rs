//! A booting RPM guest made of real binaries: vbuild builds Debian bookworm
//! with systemd from the live mirror, the test splits that tree into four
//! signed RPMs (`fd-filesystem`: directories, /etc and Debian-owned /var
//! files; `fd-rest`: the rest of /usr; `systemd`: the files of Debian's
//! systemd, systemd-sysv and libsystemd-shared; `rpm`: the host's rpm 4.18
//! as `vbuild_testkit::hostrpm` packages it, minus what the tree already
//! has), with shell and Lua scriptlets and an ldconfig file trigger like
//! glibc's, serves them over loopback, and builds a guest through the
//! Fedora module (`vbuild fedora 44 --mirror URL --keyring KEY`). The guest
//! is tailored by the Fedora profile, boots systemd to `running`, and its
//! own rpm lists exactly the four packages and verifies every file.
//!
//! Live (deb.debian.org): runs when `VBUILD_E2E=1` (test.sh's live phase),
//! as root. With `CI=true` a missing precondition fails the test.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use vbuild_testkit::hostrpm;
use vbuild_testkit::http::TestServer;
use vbuild_testkit::pgp::TestKey;
use vbuild_testkit::rpmrepo::{TestRpm, TestRpmRepo};

/// Where the scriptlets write what they did (owned by no package).
const LOG: &str = "/var/log/fd-scriptlets";

fn enabled() -> bool {
    let ci = std::env::var("CI").as_deref() == Ok("true");
    if std::env::var("VBUILD_E2E").as_deref() != Ok("1") {
        assert!(!ci, "CI=true but VBUILD_E2E is not 1: run ./test.sh");
        eprintln!("skipping the RPM guest boot test: set VBUILD_E2E=1 (needs deb.debian.org)");
        return false;
    }
    if !vbuild_testsupport::require(nix::unistd::geteuid().is_root(), "root (build and boot)") {
        return false;
    }
    match hostrpm::missing() {
        Some(m) => vbuild_testsupport::require(false, &m),
        None => true,
    }
}

/// A `--root` state directory of the test's own, with its guests removed
/// at the end.
struct Root {
    dir: tempfile::TempDir,
    guests: Vec<String>,
}

impl Root {
    fn new() -> Root {
        let base = std::env::var("VBUILD_E2E_DIR").unwrap_or_else(|_| "/var/tmp".into());
        Root {
            dir: tempfile::Builder::new()
                .prefix("vbuild-fd-boot-")
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
    fn build(&mut self, args: &[&str], name: &str) -> String {
        self.guests.push(name.to_string());
        let mut a = args.to_vec();
        a.extend(["--name", name]);
        self.ok(&a)
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        for g in self.guests.clone() {
            let _ = self.vbuild(&["stop", &g, "--timeout", "5"]);
            let _ = self.vbuild(&["delete", &g]);
        }
    }
}

/// id -> name from a passwd or group file of the tree.
fn names(file: &Path) -> BTreeMap<u32, String> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some((f.get(2)?.parse().ok()?, f[0].to_string()))
        })
        .collect()
}

/// A dpkg file list's paths as they lie in a merged-/usr tree.
fn dpkg_paths(tree: &Path, lists: &[&str]) -> HashSet<String> {
    let mut out = HashSet::new();
    for l in lists {
        let text = std::fs::read_to_string(tree.join("var/lib/dpkg/info").join(l))
            .unwrap_or_else(|e| panic!("{l}: {e}"));
        for p in text.lines() {
            let merged = ["/bin/", "/sbin/", "/lib/", "/lib64/"]
                .iter()
                .any(|d| p.starts_with(d));
            out.insert(if merged {
                format!("/usr{p}")
            } else {
                p.to_string()
            });
        }
    }
    out
}

/// What the Fedora profile writes or vbuild's Debian profile left (masks,
/// network files, host-specific files), build-time state, the loader
/// cache the file trigger makes again, and Debian's package database:
/// none of it is any package's file.
fn not_packaged(p: &str, link: Option<&Path>) -> bool {
    const EXACT: &[&str] = &[
        "/etc/hostname",
        "/etc/hosts",
        "/etc/machine-id",
        "/etc/resolv.conf",
        "/etc/fstab",
        "/etc/ld.so.cache",
        "/var/cache/ldconfig/aux-cache",
        "/etc/systemd/network/80-vbuild-eth0.network",
        "/etc/network/interfaces",
        "/etc/systemd/system/getty.target.wants/console-getty.service",
        "/etc/systemd/system/sockets.target.wants/systemd-networkd.socket",
        "/etc/systemd/system/multi-user.target.wants/systemd-networkd.service",
    ];
    let under = |d: &str| p.starts_with(&format!("{d}/"));
    EXACT.contains(&p)
        || ["/proc", "/sys", "/dev", "/run", "/tmp", "/var/tmp", "/var/lib/dpkg"]
            .iter()
            .any(|d| under(d))
        // Mount points the build context and the runtime mount over (rpm
        // cannot chmod a mounted sysfs); the context makes them.
        || ["/var/lib/dpkg", "/proc", "/sys", "/dev"].contains(&p)
        || (p.starts_with("/etc/") && !p[5..].contains('/') && p.ends_with('-'))
        || (under("/etc/systemd/system")
            && (p.contains("vbuild-") || link == Some(Path::new("/dev/null"))))
}

/// The tree split into the four packages (see the file's doc).
fn split(tree: &Path) -> Vec<TestRpm> {
    let users = names(&tree.join("etc/passwd"));
    let groups = names(&tree.join("etc/group"));
    let systemd_files = dpkg_paths(
        tree,
        &[
            "systemd.list",
            "systemd-sysv.list",
            "libsystemd-shared:amd64.list",
        ],
    );
    let info = tree.join("var/lib/dpkg/info");
    let lists: Vec<String> = std::fs::read_dir(&info)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".list"))
        .collect();
    let dpkg_owned = dpkg_paths(tree, &lists.iter().map(String::as_str).collect::<Vec<_>>());

    let mut fs = TestRpm::new("fd-filesystem", "1.0");
    fs.pretrans_lua = Some(lua_append("filesystem pretrans lua"));
    let mut rest = TestRpm::new("fd-rest", "1.0")
        .requires("fd-filesystem")
        .provides("/bin/sh");
    rest.post_lua = Some(lua_append("rest post lua"));
    // glibc's own trigger: every library installed in the transaction
    // makes ldconfig run once at its end.
    rest.file_trigger = Some((
        "/usr/lib/x86_64-linux-gnu".into(),
        format!("cat >/dev/null\n/usr/sbin/ldconfig\necho 'rest trigger ldconfig' >> {LOG}\n"),
    ));
    let mut systemd = TestRpm::new("systemd", "252").requires("fd-rest");
    systemd.post = Some(format!("echo 'systemd post' >> {LOG}\n"));

    let mut stack = vec![PathBuf::from("/")];
    let mut tree_paths = HashSet::new();
    while let Some(dir) = stack.pop() {
        let host = tree.join(dir.strip_prefix("/").unwrap());
        let mut entries: Vec<_> = std::fs::read_dir(&host)
            .unwrap()
            .map(|e| e.unwrap())
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let path = dir.join(e.file_name());
            let p = path.to_str().expect("UTF-8 paths").to_string();
            let md = e.path().symlink_metadata().unwrap();
            tree_paths.insert(p.clone());
            let link = md
                .file_type()
                .is_symlink()
                .then(|| std::fs::read_link(e.path()).unwrap());
            if not_packaged(&p, link.as_deref()) {
                continue;
            }
            let owner = |pkg: TestRpm| {
                if md.uid() == 0 && md.gid() == 0 {
                    return pkg;
                }
                pkg.owned(&p, &users[&md.uid()], &groups[&md.gid()])
            };
            if md.is_dir() {
                fs = owner(fs.dir_with_mode(&p, md.mode() & 0o7777));
                stack.push(path);
                continue;
            }
            if !md.is_file() && link.is_none() {
                continue; // sockets and fifos: none is a package's
            }
            let config_or_state = ["/etc/", "/var/", "/root/"]
                .iter()
                .any(|d| p.starts_with(d))
                || !p[1..].contains('/');
            // Files under /var that no Debian package owns are build state.
            if p.starts_with("/var/") && md.is_file() && !dpkg_owned.contains(&p) {
                continue;
            }
            let add = |pkg: TestRpm| match &link {
                Some(t) => owner(pkg.symlink(&p, t.to_str().unwrap())),
                None => {
                    let data = std::fs::read(e.path()).unwrap();
                    owner(pkg.file(&p, &data, md.mode() & 0o7777))
                }
            };
            if systemd_files.contains(&p) {
                systemd = add(systemd);
            } else if config_or_state {
                fs = add(fs);
            } else {
                rest = add(rest);
            }
        }
    }
    // The host's rpm, without what the tree has already (its libc, zlib...).
    let mut rpm = hostrpm::rpm();
    let had = rpm.files.len();
    rpm.files.retain(|(p, _, _)| !tree_paths.contains(p));
    assert!(rpm.files.len() < had, "the tree shares libraries with rpm");
    // hostrpm's own `filesystem` is replaced by fd-filesystem here.
    rpm.requires.retain(|r| r != "filesystem");
    let rpm = rpm.requires("fd-rest");
    vec![fs, rest, systemd, rpm]
}

fn lua_append(line: &str) -> String {
    format!("local f = io.open(\"{LOG}\", \"a\")\nf:write(\"{line}\\n\")\nf:close()\n")
}

#[test]
fn an_rpm_guest_made_of_debian_binaries_boots_through_the_fedora_module() {
    if !enabled() {
        return;
    }
    let mut root = Root::new();

    // 1. The binaries: bookworm with systemd, built by vbuild itself.
    root.build(
        &["debian", "bookworm", "--copy", "--net-mode", "none"],
        "fd-src",
    );
    let packages = split(&root.rootfs("fd-src"));
    root.ok(&["delete", "fd-src"]);
    root.guests.retain(|g| g != "fd-src");

    // 2. A signed repository of them on loopback, and its key.
    let key = TestKey::generate("vbuild fedora boot <fd-boot@vbuild.invalid>");
    let mut repo = TestRpmRepo::new();
    let expected: BTreeSet<String> = packages.iter().map(|p| p.name.clone()).collect();
    for p in packages {
        repo.add(p, &key);
    }
    let served = tempfile::tempdir().unwrap();
    repo.write(&served.path().join("os")).unwrap();
    let key_file = served.path().join("fd-boot.asc");
    std::fs::write(&key_file, key.public_armored()).unwrap();
    let server = TestServer::serve(served.path());
    let url = format!("{}/os/", server.url());

    // 3. The guest, through the Fedora module; systemd comes in as the
    //    recipe's init.
    let built = root.build(
        &[
            "--json",
            "fedora",
            "44",
            "--mirror",
            &url,
            "--keyring",
            key_file.to_str().unwrap(),
            "--variant",
            "custom",
            "--include",
            "fd-filesystem,fd-rest,rpm",
            "--copy",
            "--net-mode",
            "none",
        ],
        "fd-boot",
    );
    let rootfs = root.rootfs("fd-boot");
    let report: serde_json::Value = serde_json::from_str(&built).unwrap();
    assert_eq!(report["packages"], 4, "{built}");
    assert_eq!(
        report["scripts"], 3,
        "filesystem's %pretrans, rest's and systemd's %post: {built}"
    );

    // 4. The Fedora profile's tailoring, on disk before the first boot.
    let read = |p: &str| std::fs::read_to_string(rootfs.join(p)).unwrap();
    let link = |p: &str| std::fs::read_link(rootfs.join(p)).unwrap();
    assert_eq!(read("etc/hostname").trim(), "fd-boot");
    assert_eq!(read("etc/machine-id"), "");
    assert_eq!(read("etc/fstab"), "");
    assert_eq!(
        read("etc/selinux/config"),
        "SELINUX=disabled\nSELINUXTYPE=targeted\n"
    );
    let network = read("etc/systemd/network/80-vbuild-eth0.network");
    assert!(network.contains("Name=eth0"), "{network}");
    assert_eq!(
        link("etc/systemd/system/multi-user.target.wants/systemd-networkd.service"),
        Path::new("/usr/lib/systemd/system/systemd-networkd.service")
    );
    for unit in [
        "systemd-udevd.service",
        "systemd-udev-trigger.service",
        "systemd-modules-load.service",
        "getty@tty1.service",
    ] {
        assert_eq!(
            link(&format!("etc/systemd/system/{unit}")),
            Path::new("/dev/null"),
            "{unit} is masked"
        );
    }
    assert!(!rootfs.join("var/lib/dpkg").exists(), "no Debian database");
    assert!(rootfs.join("usr/lib/sysimage/rpm/rpmdb.sqlite").is_file());
    assert!(
        std::fs::metadata(rootfs.join("etc/ld.so.cache"))
            .unwrap()
            .len()
            > 0,
        "the file trigger ran ldconfig"
    );
    // rpm's order: %pretrans, then each package's %post (dependencies
    // first), then the transaction's file triggers; each once.
    assert_eq!(
        read(LOG.trim_start_matches('/'))
            .lines()
            .collect::<Vec<_>>(),
        [
            "filesystem pretrans lua",
            "rest post lua",
            "systemd post",
            "rest trigger ldconfig",
        ]
    );

    // 5. It boots, and its rpm knows every package and file.
    root.ok(&["start", "fd-boot", "--wait"]);
    let state = root.vbuild(&[
        "exec",
        "fd-boot",
        "--",
        "systemctl",
        "is-system-running",
        "--wait",
    ]);
    let state = String::from_utf8_lossy(&state.stdout).trim().to_string();
    let failed = root.ok(&[
        "exec",
        "fd-boot",
        "--",
        "systemctl",
        "--failed",
        "--no-legend",
        "--plain",
    ]);
    assert_eq!(state, "running", "failed units: {failed}");
    assert_eq!(
        root.ok(&["exec", "fd-boot", "--", "cat", "/proc/1/comm"])
            .trim(),
        "systemd"
    );
    // `is-enabled` answers a masked unit with exit status 1.
    let udev = root.vbuild(&[
        "exec",
        "fd-boot",
        "--",
        "systemctl",
        "is-enabled",
        "systemd-udevd.service",
    ]);
    assert_eq!(String::from_utf8_lossy(&udev.stdout).trim(), "masked");
    let mounts = root.ok(&["exec", "fd-boot", "--", "cat", "/proc/self/mounts"]);
    assert!(!mounts.contains("selinuxfs"), "{mounts}");
    let qa = root.ok(&["exec", "fd-boot", "--", "rpm", "-qa", "--qf", "%{NAME}\\n"]);
    assert_eq!(
        qa.lines().map(str::to_string).collect::<BTreeSet<_>>(),
        expected
    );
    assert_eq!(qa.lines().count(), expected.len(), "{qa}");
    let va = root.vbuild(&["exec", "fd-boot", "--", "rpm", "-Va"]);
    let va_text = String::from_utf8_lossy(&va.stdout).into_owned();
    assert_eq!(
        (va.status.code(), va_text.as_str()),
        (Some(0), ""),
        "rpm -Va in the running guest"
    );
    root.ok(&["stop", "fd-boot"]);
    let status = root.ok(&["status", "fd-boot", "--json"]);
    assert!(status.contains("stopped"), "{status}");
}
