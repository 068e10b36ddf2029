//! Opt-in check against real Debian packages: installs every .deb in the
//! directory named by `VBUILD_TEST_DEBS` (for example a bookworm minbase set
//! saved by mmdebstrap) and asks the guest's own dpkg, inside the build
//! context, whether it accepts the result: `dpkg --audit` silent,
//! `dpkg --verify` clean, every package `ii`. Without the variable it does
//! nothing (the hermetic tests cover the logic; this covers real scripts).

use std::path::PathBuf;
use vbuild_builder::context::ScriptContext;
use vbuild_builder::distro::debian::install::{install, InstallOptions};

#[test]
fn real_package_set_installs_and_dpkg_accepts_it() {
    let Some(dir) = std::env::var_os("VBUILD_TEST_DEBS") else {
        eprintln!("skipped: set VBUILD_TEST_DEBS to a directory of .debs");
        return;
    };
    if !nix::unistd::geteuid().is_root() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("needs root");
        }
        eprintln!("skipped: needs root");
        return;
    }
    let mut debs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "deb"))
        .collect();
    debs.sort();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("rootfs");
    std::fs::create_dir(&root).unwrap();
    let t = std::time::Instant::now();
    let report = install(&root, &debs, &InstallOptions::default()).unwrap();
    eprintln!(
        "installed {} packages, {} files, {} bytes in {:?}: {:?}",
        report.packages,
        report.files,
        report.bytes,
        t.elapsed(),
        report.times
    );
    assert!(vbuild_kernel::mount::mounts_below(&root)
        .unwrap()
        .is_empty());
    let ctx = ScriptContext::new(&root).unwrap();
    let audit = ctx
        .run("dpkg --audit", &["/usr/bin/dpkg", "--audit"], &[])
        .unwrap();
    assert!(
        audit.output.is_empty(),
        "{}",
        String::from_utf8_lossy(&audit.output)
    );
    let verify = ctx
        .run("dpkg --verify", &["/usr/bin/dpkg", "--verify"], &[])
        .unwrap();
    assert!(
        verify.output.is_empty(),
        "{}",
        String::from_utf8_lossy(&verify.output)
    );
    let q = ctx
        .run(
            "dpkg-query",
            &[
                "/usr/bin/dpkg-query",
                "-W",
                "-f",
                "${db:Status-Abbrev}${binary:Package}\\n",
            ],
            &[],
        )
        .unwrap();
    let q = String::from_utf8(q.output).unwrap();
    let not_ii: Vec<&str> = q.lines().filter(|l| !l.starts_with("ii ")).collect();
    assert!(not_ii.is_empty(), "{not_ii:?}");
    assert_eq!(q.lines().count(), debs.len());
    if std::env::var_os("VBUILD_TEST_KEEP").is_some() {
        let kept = tmp.keep();
        eprintln!("rootfs kept at {}", kept.join("rootfs").display());
    }
}
