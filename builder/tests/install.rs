//! Installing synthetic packages into a temp rootfs (the host's static
//! busybox packaged as /bin/sh): maintainer scripts run in dependency
//! order inside the context, triggers fire, the build guards are in place
//! during the build and gone after it, the database is what dpkg expects,
//! and nothing stays mounted.

use std::path::{Path, PathBuf};
use vbuild_builder::distro::debian::install::{install, InstallError, InstallOptions};
use vbuild_builder::unpack::Compression;
use vbuild_testkit::deb::DebBuilder;

fn is_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("needs root");
    }
    eprintln!("skipped: needs root");
    false
}

fn busybox() -> Option<Vec<u8>> {
    match std::fs::read("/bin/busybox") {
        Ok(b) => Some(b),
        Err(_) if std::env::var("CI").as_deref() == Ok("true") => panic!("needs busybox-static"),
        Err(_) => {
            eprintln!("skipped: needs /bin/busybox (busybox-static)");
            None
        }
    }
}

/// Logs `PKG SCRIPT ACTION [TRIGGERS]` to /order.log.
const LOG: &str = r#"#!/bin/sh
set -e
if [ "$1" = triggered ]; then
  echo "$DPKG_MAINTSCRIPT_PACKAGE $DPKG_MAINTSCRIPT_NAME triggered $2" >> /order.log
else
  echo "$DPKG_MAINTSCRIPT_PACKAGE $DPKG_MAINTSCRIPT_NAME $1" >> /order.log
fi
"#;

fn shell_pkg(bb: &[u8]) -> DebBuilder {
    let mut d = DebBuilder::new("busybox-sh", "1.36", "amd64")
        .field("Essential", "yes")
        .compression(Compression::Zstd)
        .dir("bin", 0o755)
        .file("bin/busybox", bb, 0o755)
        .dir("usr/sbin", 0o755)
        .dir("var/log", 0o755);
    for app in ["sh", "echo", "cat"] {
        d = d.symlink(&format!("bin/{app}"), "busybox");
    }
    d
}

/// The package set of the order test, deliberately listed out of order.
fn package_set(bb: &[u8]) -> Vec<DebBuilder> {
    vec![
        DebBuilder::new("trigpkg", "1", "all")
            .field("Depends", "base")
            .triggers("interest-await mytrig\n")
            .script("postinst", LOG),
        DebBuilder::new("app", "2.0-1", "amd64")
            .field("Depends", "libfoo (>= 1), virtual-thing | nonexistent")
            .triggers("interest /usr/lib/foo\n")
            .script("preinst", LOG)
            .script(
                "postinst",
                &format!(
                    "{LOG}if [ \"$1\" = configure ]; then\n  /sbin/start-stop-daemon --start --exec /x > /ssd.out 2>&1\n  /usr/sbin/policy-rc.d x start || echo \"policy=$?\" >> /ssd.out\nfi\n"
                ),
            ),
        DebBuilder::new("libfoo", "1.5", "amd64")
            .field("Multi-Arch", "same")
            .field("Pre-Depends", "base")
            .dir("usr/lib/foo", 0o755)
            .file("usr/lib/foo/plugin.so", b"plugin", 0o644)
            .triggers("activate-noawait mytrig\n")
            .script("postinst", LOG),
        DebBuilder::new("provider", "1", "all")
            .field("Provides", "virtual-thing")
            .field("Depends", "base")
            .script("postinst", LOG),
        DebBuilder::new("dpkg", "1.21.22", "amd64")
            .field("Depends", "busybox-sh")
            .dir("sbin", 0o755)
            .file("sbin/start-stop-daemon", b"#!/bin/sh\necho real-ssd\n", 0o755),
        DebBuilder::new("base", "12", "all")
            .field("Depends", "busybox-sh")
            .dir("etc", 0o755)
            .conffile("etc/base.conf", b"setting=1\n")
            .script("preinst", LOG)
            .script("postinst", LOG),
        shell_pkg(bb),
    ]
}

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new(pkgs: &[DebBuilder]) -> (Fixture, Vec<PathBuf>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("root")).unwrap();
        std::fs::create_dir(dir.path().join("debs")).unwrap();
        let debs = pkgs
            .iter()
            .map(|p| p.write_to(&dir.path().join("debs")).unwrap())
            .collect();
        (Fixture { dir }, debs)
    }
    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }
    fn read(&self, p: &str) -> String {
        std::fs::read_to_string(self.root().join(p)).unwrap_or_else(|e| panic!("{p}: {e}"))
    }
}

/// Status of every package in `status`, as (package, Status value).
fn statuses(status: &str) -> Vec<(String, String)> {
    status
        .split("\n\n")
        .filter(|s| !s.trim().is_empty())
        .map(|stanza| {
            let get = |f: &str| {
                stanza
                    .lines()
                    .find_map(|l| l.strip_prefix(&format!("{f}: ")))
                    .unwrap_or("")
                    .to_string()
            };
            (get("Package"), get("Status"))
        })
        .collect()
}

fn assert_nothing_mounted(root: &Path) {
    let m = vbuild_kernel::mount::mounts_below(root).unwrap();
    assert!(m.is_empty(), "left mounted: {m:?}");
}

#[test]
fn scripts_run_in_dependency_order_and_the_database_is_complete() {
    if !is_root() {
        return;
    }
    let Some(bb) = busybox() else { return };
    let (fx, debs) = Fixture::new(&package_set(&bb));
    let report = install(&fx.root(), &debs, &InstallOptions::default()).unwrap();
    assert_nothing_mounted(&fx.root());
    assert_eq!(report.packages, 7);

    assert_eq!(
        fx.read("order.log"),
        "base preinst install\n\
         app preinst install\n\
         base postinst configure\n\
         libfoo postinst configure\n\
         provider postinst configure\n\
         app postinst configure\n\
         trigpkg postinst configure\n\
         app postinst triggered /usr/lib/foo\n\
         trigpkg postinst triggered mytrig\n"
    );
    // During the build: fake start-stop-daemon, policy-rc.d denies starts.
    let ssd = fx.read("ssd.out");
    assert!(
        !ssd.contains("real-ssd") && ssd.contains("policy=101"),
        "{ssd}"
    );
    // After it: both gone, the real start-stop-daemon back, no diversion.
    assert!(!fx.root().join("usr/sbin/policy-rc.d").exists());
    assert_eq!(
        fx.read("sbin/start-stop-daemon"),
        "#!/bin/sh\necho real-ssd\n"
    );
    assert!(!fx.root().join("sbin/start-stop-daemon.REAL").exists());
    assert_eq!(fx.read("var/lib/dpkg/diversions"), "");

    // merged-usr
    assert_eq!(
        std::fs::read_link(fx.root().join("bin")).unwrap(),
        Path::new("usr/bin")
    );
    assert_eq!(
        std::fs::read_link(fx.root().join("lib64")).unwrap(),
        Path::new("usr/lib64")
    );
    assert!(fx.root().join("usr/bin/busybox").is_file());

    // The database.
    let status = fx.read("var/lib/dpkg/status");
    let st = statuses(&status);
    assert_eq!(st.len(), 7);
    assert!(
        st.iter().all(|(_, s)| s == "install ok installed"),
        "{st:?}"
    );
    assert!(status.contains(
        "Conffiles:\n /etc/base.conf 7d1aa4cd55bdf8e0a4a0b1a1f11b2db8\n"
            .replace("7d1aa4cd55bdf8e0a4a0b1a1f11b2db8", &md5hex(b"setting=1\n"))
            .as_str()
    ));
    assert_eq!(fx.read("var/lib/dpkg/arch"), "amd64\n");
    assert_eq!(fx.read("var/lib/dpkg/info/format"), "1\n");
    let list = fx.read("var/lib/dpkg/info/libfoo:amd64.list");
    assert_eq!(
        list,
        "/.\n/usr\n/usr/lib\n/usr/lib/foo\n/usr/lib/foo/plugin.so\n"
    );
    assert_eq!(
        fx.read("var/lib/dpkg/info/libfoo:amd64.md5sums"),
        format!("{}  usr/lib/foo/plugin.so\n", md5hex(b"plugin"))
    );
    assert_eq!(
        fx.read("var/lib/dpkg/info/base.conffiles"),
        "/etc/base.conf\n"
    );
    assert!(fx.root().join("var/lib/dpkg/info/app.postinst").is_file());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(fx.root().join("var/lib/dpkg/info/app.postinst"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
    assert_eq!(fx.read("var/lib/dpkg/triggers/File"), "/usr/lib/foo app\n");
    assert_eq!(fx.read("var/lib/dpkg/triggers/mytrig"), "trigpkg\n");
    assert_eq!(fx.read("var/lib/dpkg/triggers/Unincorp"), "");

    // The host's dpkg, only observing, agrees.
    if Path::new("/usr/bin/dpkg").exists() {
        let root = fx.root();
        let audit = std::process::Command::new("dpkg")
            .arg(format!("--root={}", root.display()))
            .arg("--audit")
            .output()
            .unwrap();
        assert!(
            audit.status.success() && audit.stdout.is_empty(),
            "{audit:?}"
        );
        let verify = std::process::Command::new("dpkg")
            .arg(format!("--root={}", root.display()))
            .arg("--verify")
            .output()
            .unwrap();
        assert!(
            verify.status.success() && verify.stdout.is_empty(),
            "{verify:?}"
        );
        let q = std::process::Command::new("dpkg-query")
            .arg(format!("--admindir={}/var/lib/dpkg", root.display()))
            .args(["-W", "-f", "${db:Status-Abbrev}${binary:Package}\n"])
            .output()
            .unwrap();
        let q = String::from_utf8(q.stdout).unwrap();
        assert_eq!(q.lines().filter(|l| l.starts_with("ii ")).count(), 7, "{q}");
    }
}

fn md5hex(data: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(data))
}

#[test]
fn a_failing_postinst_stops_with_a_named_error() {
    if !is_root() {
        return;
    }
    let Some(bb) = busybox() else { return };
    let pkgs = vec![
        shell_pkg(&bb),
        DebBuilder::new("broken", "1", "all")
            .field("Depends", "busybox-sh")
            .script(
                "postinst",
                "#!/bin/sh\necho setting things up\necho cannot continue >&2\nexit 7\n",
            ),
        DebBuilder::new("after", "1", "all")
            .field("Depends", "broken")
            .script("postinst", LOG),
    ];
    let (fx, debs) = Fixture::new(&pkgs);
    let err = install(&fx.root(), &debs, &InstallOptions::default()).unwrap_err();
    assert!(matches!(err, InstallError::Script(_)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("package broken"), "{msg}");
    assert!(msg.contains("postinst configure"), "{msg}");
    assert!(msg.contains("exit status 7"), "{msg}");
    assert!(msg.contains("cannot continue"), "{msg}");
    // Stopped there: the dependent never ran, the failed one stays unpacked.
    assert!(!fx.root().join("order.log").exists());
    let st = statuses(&fx.read("var/lib/dpkg/status"));
    assert!(
        st.contains(&("busybox-sh".into(), "install ok installed".into())),
        "{st:?}"
    );
    assert!(
        st.contains(&("broken".into(), "install ok unpacked".into())),
        "{st:?}"
    );
    assert!(
        st.contains(&("after".into(), "install ok unpacked".into())),
        "{st:?}"
    );
    // The build guards are gone even on failure.
    assert!(!fx.root().join("usr/sbin/policy-rc.d").exists());
    assert_nothing_mounted(&fx.root());
}

#[test]
fn bad_input_is_refused_before_anything_runs() {
    if !is_root() {
        return;
    }
    let a = DebBuilder::new("twice", "1", "all");
    let b = DebBuilder::new("twice", "2", "all");
    let (fx, debs) = Fixture::new(&[a, b]);
    let e = install(&fx.root(), &debs, &InstallOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("twice") && e.contains("given twice"), "{e}");

    let missing = fx.dir.path().join("nope");
    let e = install(&missing, &[], &InstallOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("nope"), "{e}");

    // A rootfs with a real /bin directory cannot be merged.
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("bin")).unwrap();
    let e = install(d.path(), &[], &InstallOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("/bin") && e.contains("merged-usr"), "{e}");
}
