//! Against the real Debian mirror (network): every recipe's InRelease
//! verifies with the shipped keys, and bookworm minbase resolves to the set
//! mmdebstrap installs. Ignored by default (not hermetic); run with
//! `cargo test -p vbuild-builder --test live_mirror -- --ignored --nocapture`.
//! `VBUILD_H1_CACHE=DIR` reuses a cache; `VBUILD_H1_EXPECT=FILE` (one package
//! name per line, e.g. from mmdebstrap's dpkg status) is compared exactly;
//! `VBUILD_H1_RELEASE=trixie` resolves another release;
//! `VBUILD_H1_DEBS=1` also downloads the minbase .debs and times it.

use std::time::Instant;

use vbuild_builder::distro::debian::fetch::{fetch_debs, fetch_release, open_repository, Source};
use vbuild_builder::distro::debian::index::{host_arch, PackageIndex};
use vbuild_builder::distro::debian::keyring::Keyring;
use vbuild_builder::distro::debian::release::VerifyOptions;
use vbuild_builder::distro::debian::resolve::{resolve, Variant};
use vbuild_builder::recipe::Recipe;
use vbuild_cache::{Cache, NoProgress, DEFAULT_JOBS};

fn cache() -> (Option<tempfile::TempDir>, Cache) {
    match std::env::var("VBUILD_H1_CACHE") {
        Ok(dir) => (None, Cache::open(dir).unwrap()),
        Err(_) => {
            let tmp = tempfile::tempdir().unwrap();
            let cache = Cache::open(tmp.path()).unwrap();
            (Some(tmp), cache)
        }
    }
}

#[test]
#[ignore = "needs the Debian mirror"]
fn every_recipe_verifies_against_the_live_archive() {
    let (_tmp, cache) = cache();
    for release in ["bookworm", "trixie", "forky", "sid"] {
        let recipe = Recipe::load("debian", release).unwrap();
        let keyring = Keyring::for_recipe(&recipe).unwrap();
        let table = vbuild_builder::distro::debian::recipe::read(&recipe).unwrap();
        let source = Source::new(&table.mirror, &table.suite);
        let opts = VerifyOptions::default();
        match fetch_release(&cache, &source, &keyring, &opts) {
            Ok(r) => {
                let signers: Vec<_> = r.signers.iter().map(|s| s.key_id.as_str()).collect();
                eprintln!("{release}: verified, signed by {signers:?}");
            }
            Err(e) => {
                eprintln!("{release}: {e}");
                // A stale mirror is reported, not a failure of the keys:
                // verify again without the expiry check to prove the signature.
                let relaxed = VerifyOptions {
                    check_valid_until: false,
                    ..opts
                };
                let r = fetch_release(&cache, &source, &keyring, &relaxed).unwrap();
                eprintln!(
                    "{release}: signature good ({} signers) apart from Valid-Until",
                    r.signers.len()
                );
            }
        }
    }
}

#[test]
#[ignore = "needs the Debian mirror"]
fn minbase_matches_mmdebstrap() {
    let (_tmp, cache) = cache();
    let name = std::env::var("VBUILD_H1_RELEASE").unwrap_or_else(|_| "bookworm".into());
    let recipe = Recipe::load("debian", &name).unwrap();
    let t = Instant::now();
    let repo = open_repository(
        &cache,
        &recipe,
        None,
        host_arch(),
        &VerifyOptions::default(),
    )
    .unwrap();
    let (source, release, index) = (repo.source, repo.release, repo.index);
    eprintln!(
        "index (from cache or network): {} packages in {:?}",
        index.len(),
        t.elapsed()
    );
    // Parsing alone, from the decompressed index the cache now holds.
    let plain = release.file("main/binary-amd64/Packages").unwrap();
    let text = std::fs::read_to_string(cache.blob(&plain.sha256).unwrap()).unwrap();
    let t = Instant::now();
    let parsed = PackageIndex::parse("main/binary-amd64/Packages", &text, "amd64").unwrap();
    eprintln!(
        "parse: {} packages, {} MB in {:?}",
        parsed.len(),
        text.len() >> 20,
        t.elapsed()
    );
    let t = Instant::now();
    let set = resolve(&index, Variant::Minbase, &[]).unwrap();
    eprintln!(
        "minbase: {} packages resolved in {:?}",
        set.len(),
        t.elapsed()
    );
    let names: Vec<&str> = set.iter().map(|p| p.name.as_str()).collect();
    eprintln!("{}", names.join(" "));
    if let Ok(file) = std::env::var("VBUILD_H1_EXPECT") {
        let text = std::fs::read_to_string(file).unwrap();
        let mut expected: Vec<&str> = text
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        expected.sort_unstable();
        let missing: Vec<_> = expected.iter().filter(|n| !names.contains(n)).collect();
        let extra: Vec<_> = names.iter().filter(|n| !expected.contains(n)).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "missing {missing:?}, extra {extra:?}"
        );
    }
    if std::env::var_os("VBUILD_H1_DEBS").is_some() {
        let t = Instant::now();
        let debs = fetch_debs(&cache, &source.mirror, &set, DEFAULT_JOBS, &NoProgress).unwrap();
        let bytes: u64 = set.iter().map(|p| p.size).sum();
        eprintln!(
            "debs: {} files, {} MB in {:?}",
            debs.len(),
            bytes >> 20,
            t.elapsed()
        );
    }
    for variant in [Variant::Essential, Variant::Standard] {
        let set = resolve(&index, variant, &[]).unwrap();
        eprintln!("{variant}: {} packages", set.len());
    }
}
