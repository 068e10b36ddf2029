//! Real Debian packages, installed by vbuild and checked by the guest's
//! own dpkg inside the build context: `dpkg --audit` silent,
//! `dpkg --verify` clean, every package `ii`. The packages are bookworm's
//! minbase set, fetched from the live mirror through vbuild's own verified
//! fetch (InRelease signature, index and .deb SHA256) into a fresh cache,
//! so this runs in test.sh's phase 2 (`VBUILD_E2E=1`); or every .deb in
//! the directory named by `VBUILD_TEST_DEBS` (for example a set saved by
//! mmdebstrap). Under `CI=true` a missing precondition fails.

use std::path::PathBuf;
use vbuild_builder::context::ScriptContext;
use vbuild_builder::distro::debian::fetch::{fetch_debs, open_repository};
use vbuild_builder::distro::debian::index::host_arch;
use vbuild_builder::distro::debian::install::{install, InstallOptions};
use vbuild_builder::distro::debian::release::VerifyOptions;
use vbuild_builder::distro::debian::resolve::{resolve, Variant};
use vbuild_builder::recipe::Recipe;
use vbuild_cache::{Cache, NoProgress, DEFAULT_JOBS};

/// bookworm minbase from the live mirror, downloaded into `cache_dir`.
fn fetch_minbase(cache_dir: &std::path::Path) -> Vec<PathBuf> {
    let cache = Cache::open(cache_dir).unwrap();
    let recipe = Recipe::load("debian", "bookworm").unwrap();
    let repo = open_repository(
        &cache,
        &recipe,
        None,
        host_arch(),
        &VerifyOptions::default(),
    )
    .unwrap_or_else(|e| panic!("the live mirror (phase 2 needs deb.debian.org): {e}"));
    let set = resolve(&repo.index, Variant::Minbase, &[]).unwrap();
    assert!(set.len() > 50, "minbase is {} packages", set.len());
    let debs = fetch_debs(&cache, &repo.source.mirror, &set, DEFAULT_JOBS, &NoProgress)
        .unwrap_or_else(|e| panic!("fetching minbase from the live mirror: {e}"));
    assert_eq!(debs.len(), set.len());
    debs
}

#[test]
fn real_package_set_installs_and_dpkg_accepts_it() {
    let given = std::env::var_os("VBUILD_TEST_DEBS");
    let live = std::env::var("VBUILD_E2E").as_deref() == Ok("1");
    if !vbuild_testsupport::require(
        given.is_some() || live,
        "real .debs: VBUILD_E2E=1 (test.sh phase 2 fetches bookworm minbase from deb.debian.org) or VBUILD_TEST_DEBS=DIR",
    ) {
        return;
    }
    if !vbuild_testsupport::require(
        vbuild_testsupport::is_root(),
        "root (the maintainer scripts run in a build context; run as root, e.g. sudo ./test.sh)",
    ) {
        return;
    }
    let fetched = tempfile::tempdir().unwrap();
    let mut debs: Vec<PathBuf> = match &given {
        Some(dir) => std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "deb"))
            .collect(),
        None => fetch_minbase(fetched.path()),
    };
    assert!(!debs.is_empty(), "no .debs in {given:?}");
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
