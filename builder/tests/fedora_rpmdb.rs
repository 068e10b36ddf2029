//! The rpm database and the scriptlets: packages made of real binaries
//! (the host's rpm and its libraries, a static busybox shell; see
//! `vbuild_testkit::hostrpm`) plus packages with shell and Lua scriptlets
//! of every transaction phase and a `%transfiletriggerin` are installed by
//! Fedora's install step. Afterwards the root's own rpm, run inside the
//! build's script context, lists every package (`rpm -qa`), verifies every
//! file (`rpm -Va` prints nothing) from `/usr/lib/sysimage/rpm/rpmdb.sqlite`,
//! and each scriptlet ran exactly once, in rpm's order.

use std::path::{Path, PathBuf};
use vbuild_builder::context::ScriptContext;
use vbuild_builder::distro::fedora::install::install;
use vbuild_testkit::hostrpm;
use vbuild_testkit::pgp::TestKey;
use vbuild_testkit::rpmrepo::TestRpm;

const LOG: &str = "/var/log/scriptlets";

fn append(line: &str) -> String {
    format!("echo '{line}' >> {LOG}\n")
}

fn lua_append(line: &str) -> String {
    format!("local f = io.open(\"{LOG}\", \"a\")\nf:write(\"{line}\\n\")\nf:close()\n")
}

/// alpha: shell %pre, %post, %posttrans and a Lua %pretrans; beta (needs
/// alpha): a Lua %post and a file trigger on /usr/share/watched; gamma
/// (needs beta): a file the trigger sees and a shell %post.
fn scripted() -> Vec<TestRpm> {
    let mut alpha = TestRpm::new("alpha", "1.0")
        .file("/usr/share/alpha/data", b"alpha\n", 0o644)
        .requires("busybox-sh");
    alpha.pretrans_lua = Some(lua_append("alpha pretrans lua"));
    alpha.pre = Some(append("alpha pre"));
    alpha.post = Some(append("alpha post"));
    alpha.posttrans = Some(append("alpha posttrans"));
    let mut beta = TestRpm::new("beta", "2.0")
        .file("/usr/share/beta/data", b"beta\n", 0o644)
        .requires("alpha");
    beta.post_lua = Some(lua_append("beta post lua"));
    beta.file_trigger = Some((
        "/usr/share/watched".into(),
        format!("while read f; do echo \"beta trigger $f\" >> {LOG}; done\n"),
    ));
    let mut gamma = TestRpm::new("gamma", "3.0")
        .file("/usr/share/watched/gamma.conf", b"gamma\n", 0o644)
        .requires("beta");
    gamma.post = Some(append("gamma post"));
    vec![alpha, beta, gamma]
}

fn guest_rpm(rootfs: &Path, args: &[&str]) -> (i32, String) {
    let ctx = ScriptContext::new(rootfs).unwrap();
    let mut argv = vec!["/usr/bin/rpm"];
    argv.extend_from_slice(args);
    let out = ctx.run_status("rpm in the guest", &argv, &[]).unwrap();
    (out.code, String::from_utf8_lossy(&out.output).into_owned())
}

#[test]
fn the_guests_rpm_records_every_package_and_runs_each_scriptlet_once_in_order() {
    if !vbuild_testsupport::require(nix::unistd::geteuid().is_root(), "root (script context)") {
        return;
    }
    if let Some(m) = hostrpm::missing() {
        if !vbuild_testsupport::require(false, &m) {
            return;
        }
    }
    let key = TestKey::generate("vbuild rpmdb test <rpmdb@vbuild.invalid>");
    let tmp = tempfile::tempdir().unwrap();
    let mut packages = vec![hostrpm::filesystem(), hostrpm::busybox_sh(), hostrpm::rpm()];
    packages.extend(scripted());
    let mut files: Vec<PathBuf> = Vec::new();
    for p in &packages {
        let f = tmp.path().join(p.file_name());
        std::fs::write(&f, p.build(&key)).unwrap();
        files.push(f);
    }
    let rootfs = tmp.path().join("root");
    std::fs::create_dir(&rootfs).unwrap();

    let report = install(&rootfs, &files, "f11-rpmdb").unwrap();
    assert_eq!(report.packages, 6);
    assert!(report.rpm_ran, "the root has /usr/bin/rpm");
    // alpha's %pretrans, %pre, %post, %posttrans, beta's and gamma's %post.
    assert_eq!(report.scriptlets, 6);
    assert!(rootfs.join("usr/lib/sysimage/rpm/rpmdb.sqlite").is_file());
    assert!(
        !rootfs.join("var/tmp/vbuild-rpms").exists(),
        "the staged package files are removed"
    );

    let (code, qa) = guest_rpm(&rootfs, &["-qa", "--qf", "%{NAME}-%{VERSION}-%{RELEASE}\n"]);
    assert_eq!(code, 0, "{qa}");
    let mut listed: Vec<&str> = qa.lines().collect();
    listed.sort_unstable();
    assert_eq!(
        listed,
        [
            "alpha-1.0-1",
            "beta-2.0-1",
            "busybox-sh-1.36-1",
            "filesystem-3.18-1",
            "gamma-3.0-1",
            "rpm-4.18.0-1"
        ]
    );
    let (code, va) = guest_rpm(&rootfs, &["-Va"]);
    assert_eq!((code, va.as_str()), (0, ""), "rpm -Va is clean");
    let (code, owner) = guest_rpm(&rootfs, &["-qf", "/usr/share/watched/gamma.conf"]);
    assert_eq!((code, owner.trim()), (0, "gamma-3.0-1.x86_64"));

    // rpm's order: every %pretrans first, then per package (dependencies
    // first) %pre and %post, then every %posttrans, then the transaction
    // file triggers with the files that set them off.
    let log = std::fs::read_to_string(rootfs.join(LOG.trim_start_matches('/'))).unwrap();
    assert_eq!(
        log.lines().collect::<Vec<_>>(),
        [
            "alpha pretrans lua",
            "alpha pre",
            "alpha post",
            "beta post lua",
            "gamma post",
            "alpha posttrans",
            "beta trigger /usr/share/watched/gamma.conf",
        ]
    );
}
