//! The Debian fetch/verify chain against a generated, signed repository on
//! loopback: InRelease signature (good, wrong key, tampered, expired, absent,
//! unsigned, wrong suite), Packages and .deb checksums, the cache on a second
//! build, offline mode.

use std::path::Path;

use chrono::{Duration, Utc};
use vbuild_builder::distro::debian::fetch::{
    fetch_debs, fetch_packages, fetch_release, FetchError, Source,
};
use vbuild_builder::distro::debian::release::{ReleaseError, VerifyOptions};
use vbuild_builder::distro::debian::resolve::{resolve, ResolvedPackage, Variant};
use vbuild_cache::{Cache, CacheError, NoProgress};
use vbuild_testkit::http::TestServer;
use vbuild_testkit::pgp::TestKey;
use vbuild_testkit::repo::{Compression, TestPackage, TestRepo};

/// A small but complete base system: essential packages with dependencies.
fn sample_repo(suite: &str) -> TestRepo {
    let mut repo = TestRepo::new(suite);
    repo.add(
        TestPackage::new("base-files", "13", "amd64")
            .field("Essential", "yes")
            .field("Priority", "required")
            .field("Depends", "libc6 (>= 2.36)"),
    )
    .add(TestPackage::new("libc6", "2.36-9", "amd64").field("Priority", "optional"))
    .add(
        TestPackage::new("dash", "0.5.12-2", "amd64")
            .field("Essential", "yes")
            .field("Priority", "required")
            .field("Pre-Depends", "libc6 (>= 2.34)"),
    )
    .add(
        TestPackage::new("apt", "2.6.1", "amd64")
            .field("Priority", "important")
            .field("Depends", "gpgv | gpgv2"),
    )
    .add(TestPackage::new("gpgv", "2.2.40-1", "amd64").field("Priority", "optional"))
    .add(TestPackage::new("tzdata", "2024a-0", "all").field("Priority", "required"))
    .add(TestPackage::new("nginx", "1.22", "amd64").field("Priority", "optional"));
    repo
}

struct Mirror {
    dir: tempfile::TempDir,
    key: TestKey,
    repo: TestRepo,
    server: TestServer,
}

impl Mirror {
    fn new(repo: TestRepo) -> Mirror {
        let dir = tempfile::tempdir().unwrap();
        let key = TestKey::generate("vbuild test archive <test@vbuild.invalid>");
        repo.write(dir.path(), &key).unwrap();
        let server = TestServer::serve(dir.path());
        Mirror {
            dir,
            key,
            repo,
            server,
        }
    }

    fn source(&self) -> Source {
        Source::new(&self.server.url(), &self.repo.suite)
    }

    fn path(&self, rel: &str) -> std::path::PathBuf {
        self.dir.path().join(rel)
    }

    fn inrelease(&self) -> String {
        format!("/dists/{}/InRelease", self.repo.suite)
    }
}

fn cache_at(dir: &Path) -> Cache {
    let mut cache = Cache::open(dir).unwrap();
    cache.set_retry(2, std::time::Duration::from_millis(1));
    cache
}

fn leftovers(cache: &Cache) -> Vec<String> {
    std::fs::read_dir(cache.dir().join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".lock"))
        .collect()
}

/// Fetches release, index and the minbase debs; returns the resolved set.
fn build(m: &Mirror, cache: &Cache) -> Result<Vec<ResolvedPackage>, FetchError> {
    let keyring = m.key.keyring();
    let release = fetch_release(cache, &m.source(), &keyring, &VerifyOptions::default())?;
    let index = fetch_packages(cache, &m.source(), &release, &["main".into()], "amd64")?;
    let set = resolve(&index, Variant::Minbase, &[]).unwrap();
    fetch_debs(cache, &m.server.url(), &set, 4, &NoProgress)?;
    Ok(set)
}

#[test]
fn a_good_signature_verifies_and_names_the_signing_subkey() {
    let m = Mirror::new(sample_repo("testing"));
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = cache_at(cache_dir.path());
    let release = fetch_release(
        &cache,
        &m.source(),
        &m.key.keyring(),
        &VerifyOptions::default(),
    )
    .unwrap();
    assert_eq!(release.codename, "testing");
    assert_eq!(release.signers.len(), 1);
    assert_eq!(release.signers[0].key_id, m.key.signing_key_id());
    assert!(release.signers[0].user_id.contains("vbuild test archive"));
    let entry = release.file("main/binary-amd64/Packages.xz").unwrap();
    assert_eq!(
        entry.size,
        std::fs::metadata(m.path(&format!("{}.xz", m.repo.packages_path())))
            .unwrap()
            .len()
    );
    let set = build(&m, &cache).unwrap();
    let names: Vec<&str> = set.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["apt", "base-files", "dash", "gpgv", "libc6", "tzdata"]
    );
    for p in &set {
        let blob = cache.blob(&p.sha256).expect("deb cached");
        assert_eq!(
            std::fs::read(blob).unwrap(),
            std::fs::read(m.path(&p.filename)).unwrap()
        );
    }
}

#[test]
fn a_signature_by_another_key_is_refused_naming_the_key_and_the_keyring() {
    let m = Mirror::new(sample_repo("testing"));
    let stranger = TestKey::generate("someone else");
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = cache_at(cache_dir.path());
    let err = fetch_release(
        &cache,
        &m.source(),
        &stranger.keyring(),
        &VerifyOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(err, FetchError::Release(ReleaseError::UnknownSigner { .. })),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("dists/testing/InRelease"), "{text}");
    assert!(text.contains(&m.key.signing_key_id()), "{text}");
    assert!(text.contains("the keyring in recipes/keys"), "{text}");
    assert_eq!(
        cache
            .get_index(&format!("inrelease:{}{}", m.server.url(), m.inrelease()))
            .unwrap(),
        None,
        "a refused InRelease is not kept for --offline"
    );
}

#[test]
fn a_tampered_inrelease_is_refused() {
    let m = Mirror::new(sample_repo("testing"));
    let path = m.path("dists/testing/InRelease");
    let text = std::fs::read_to_string(&path).unwrap();
    // Point the index at other content, as an attacker would.
    let tampered = text.replacen("Label: vbuild-test", "Label: vbuild-evil", 1);
    assert_ne!(text, tampered);
    std::fs::write(&path, tampered).unwrap();
    let cache_dir = tempfile::tempdir().unwrap();
    let err = fetch_release(
        &cache_at(cache_dir.path()),
        &m.source(),
        &m.key.keyring(),
        &VerifyOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(err, FetchError::Release(ReleaseError::Tampered { .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains("altered"), "{err}");
}

#[test]
fn an_expired_valid_until_is_refused_with_the_date() {
    let mut repo = sample_repo("testing");
    repo.date = Utc::now() - Duration::days(30);
    repo.valid_until = Some(Utc::now() - Duration::days(23));
    let until = repo.valid_until.unwrap().format("%d %b %Y").to_string();
    let m = Mirror::new(repo);
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = cache_at(cache_dir.path());
    let err = fetch_release(
        &cache,
        &m.source(),
        &m.key.keyring(),
        &VerifyOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(err, FetchError::Release(ReleaseError::Expired { .. })),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains(&until) && text.contains("fresher mirror"),
        "{text}"
    );
    // A snapshot mirror may be accepted on purpose; the signature still counts.
    let relaxed = VerifyOptions {
        check_valid_until: false,
        ..VerifyOptions::default()
    };
    assert!(fetch_release(&cache, &m.source(), &m.key.keyring(), &relaxed).is_ok());
}

#[test]
fn a_missing_inrelease_never_falls_back_to_release() {
    let m = Mirror::new(sample_repo("testing"));
    std::fs::remove_file(m.path("dists/testing/InRelease")).unwrap();
    let cache_dir = tempfile::tempdir().unwrap();
    let err = fetch_release(
        &cache_at(cache_dir.path()),
        &m.source(),
        &m.key.keyring(),
        &VerifyOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, FetchError::NoInRelease { .. }), "{err:?}");
    assert!(err.to_string().contains("not found"), "{err}");
    assert_eq!(m.server.requests("/dists/testing/Release"), 0);
    assert_eq!(m.server.requests("/dists/testing/Release.gpg"), 0);
}

#[test]
fn an_unsigned_inrelease_is_refused() {
    let m = Mirror::new(sample_repo("testing"));
    std::fs::copy(
        m.path("dists/testing/Release"),
        m.path("dists/testing/InRelease"),
    )
    .unwrap();
    let cache_dir = tempfile::tempdir().unwrap();
    let err = fetch_release(
        &cache_at(cache_dir.path()),
        &m.source(),
        &m.key.keyring(),
        &VerifyOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(err, FetchError::Release(ReleaseError::NotSigned { .. })),
        "{err:?}"
    );
}

#[test]
fn a_signed_inrelease_of_another_suite_is_refused() {
    let m = Mirror::new(sample_repo("testing"));
    let mut other = sample_repo("stable");
    other.codename = "stable".into();
    other.write(m.dir.path(), &m.key).unwrap();
    std::fs::copy(
        m.path("dists/stable/InRelease"),
        m.path("dists/testing/InRelease"),
    )
    .unwrap();
    let cache_dir = tempfile::tempdir().unwrap();
    let err = fetch_release(
        &cache_at(cache_dir.path()),
        &m.source(),
        &m.key.keyring(),
        &VerifyOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(err, FetchError::Release(ReleaseError::WrongSuite { .. })),
        "{err:?}"
    );
}

#[test]
fn a_packages_checksum_mismatch_is_refused_and_not_cached() {
    let m = Mirror::new(sample_repo("testing"));
    let xz_path = m.path(&format!("{}.xz", m.repo.packages_path()));
    let good = std::fs::read(&xz_path).unwrap();
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    std::fs::write(&xz_path, &bad).unwrap();
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = cache_at(cache_dir.path());
    let release = fetch_release(
        &cache,
        &m.source(),
        &m.key.keyring(),
        &VerifyOptions::default(),
    )
    .unwrap();
    let err = fetch_packages(&cache, &m.source(), &release, &["main".into()], "amd64").unwrap_err();
    match &err {
        FetchError::Cache(CacheError::Checksum { url, expected, .. }) => {
            assert!(url.ends_with("main/binary-amd64/Packages.xz"), "{url}");
            assert_eq!(
                expected,
                &release
                    .file("main/binary-amd64/Packages.xz")
                    .unwrap()
                    .sha256
            );
        }
        other => panic!("expected a checksum error, got {other:?}"),
    }
    let entry = release.file("main/binary-amd64/Packages.xz").unwrap();
    assert_eq!(cache.blob(&entry.sha256), None);
    assert_eq!(
        cache.blob(&release.file("main/binary-amd64/Packages").unwrap().sha256),
        None
    );
    assert!(leftovers(&cache).is_empty(), "{:?}", leftovers(&cache));
}

#[test]
fn a_decompressed_index_must_match_the_signed_plain_hash() {
    // A mirror whose Packages.xz matches the Release but unpacks to an index
    // other than the one the Release describes: refused.
    let mut repo = sample_repo("testing");
    repo.indices = vec![Compression::Xz];
    let m = Mirror::new(repo);
    let plain = m.repo.packages_text();
    // Same length, other content: only the hash can tell.
    let evil = plain.replace("Package: nginx", "Package: nginy");
    assert_eq!(evil.len(), plain.len());
    let evil_xz = {
        use std::io::Write;
        let mut enc = xz2::write::XzEncoder::new(Vec::new(), 6);
        enc.write_all(evil.as_bytes()).unwrap();
        enc.finish().unwrap()
    };
    std::fs::write(m.path(&format!("{}.xz", m.repo.packages_path())), &evil_xz).unwrap();
    let release_text = m.repo.release_text(&[
        ("main/binary-amd64/Packages".into(), plain.into_bytes()),
        ("main/binary-amd64/Packages.xz".into(), evil_xz),
    ]);
    std::fs::write(
        m.path("dists/testing/InRelease"),
        m.key.clearsign(&release_text),
    )
    .unwrap();
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = cache_at(cache_dir.path());
    let release = fetch_release(
        &cache,
        &m.source(),
        &m.key.keyring(),
        &VerifyOptions::default(),
    )
    .unwrap();
    let err = fetch_packages(&cache, &m.source(), &release, &["main".into()], "amd64").unwrap_err();
    assert!(matches!(err, FetchError::IndexChecksum { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("sha256 mismatch after decompression"),
        "{err}"
    );
}

#[test]
fn a_deb_checksum_mismatch_is_refused_and_leaves_the_cache_clean() {
    let m = Mirror::new(sample_repo("testing"));
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = cache_at(cache_dir.path());
    let keyring = m.key.keyring();
    let release = fetch_release(&cache, &m.source(), &keyring, &VerifyOptions::default()).unwrap();
    let index = fetch_packages(&cache, &m.source(), &release, &["main".into()], "amd64").unwrap();
    let set = resolve(&index, Variant::Minbase, &[]).unwrap();
    let dash = set.iter().find(|p| p.name == "dash").unwrap();
    // Same size, different bytes: only the hash can tell.
    let mut trojan = std::fs::read(m.path(&dash.filename)).unwrap();
    trojan[0] ^= 0x20;
    std::fs::write(m.path(&dash.filename), trojan).unwrap();
    let err = fetch_debs(&cache, &m.server.url(), &set, 2, &NoProgress).unwrap_err();
    match &err {
        FetchError::Cache(CacheError::Checksum { url, expected, .. }) => {
            assert!(url.ends_with(&dash.filename), "{url}");
            assert_eq!(expected, &dash.sha256);
        }
        other => panic!("expected a checksum error, got {other:?}"),
    }
    assert!(err.to_string().contains(&dash.sha256), "{err}");
    assert_eq!(cache.blob(&dash.sha256), None);
    assert!(leftovers(&cache).is_empty(), "{:?}", leftovers(&cache));
}

#[test]
fn a_second_build_only_refetches_inrelease() {
    let m = Mirror::new(sample_repo("testing"));
    let cache_dir = tempfile::tempdir().unwrap();
    let first = build(&m, &cache_at(cache_dir.path())).unwrap();
    let xz = format!("/{}.xz", m.repo.packages_path());
    assert_eq!(m.server.requests(&xz), 1);
    let before = m.server.total_requests();
    let second = build(&m, &cache_at(cache_dir.path())).unwrap();
    assert_eq!(first, second);
    assert_eq!(m.server.requests(&m.inrelease()), 2);
    assert_eq!(
        m.server.total_requests(),
        before + 1,
        "only InRelease again: {:?}",
        m.server.request_log()
    );
}

#[test]
fn offline_builds_from_the_cache_and_still_verifies() {
    let m = Mirror::new(sample_repo("testing"));
    let cache_dir = tempfile::tempdir().unwrap();
    let online = build(&m, &cache_at(cache_dir.path())).unwrap();
    let before = m.server.total_requests();
    let mut offline = cache_at(cache_dir.path());
    offline.set_offline(true);
    assert_eq!(build(&m, &offline).unwrap(), online);
    assert_eq!(
        m.server.total_requests(),
        before,
        "offline touched the network"
    );
    // The cached InRelease is verified again: another keyring refuses it.
    let stranger = TestKey::generate("someone else");
    let err = fetch_release(
        &offline,
        &m.source(),
        &stranger.keyring(),
        &VerifyOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(err, FetchError::Release(ReleaseError::UnknownSigner { .. })),
        "{err:?}"
    );
}

#[test]
fn offline_without_a_cache_names_what_is_missing() {
    let m = Mirror::new(sample_repo("testing"));
    let cache_dir = tempfile::tempdir().unwrap();
    let mut offline = cache_at(cache_dir.path());
    offline.set_offline(true);
    let err = build(&m, &offline).unwrap_err();
    assert!(
        matches!(err, FetchError::OfflineNoRelease { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("run once without --offline"),
        "{err}"
    );

    // InRelease and Packages cached, but not the debs.
    let cache = cache_at(cache_dir.path());
    let release = fetch_release(
        &cache,
        &m.source(),
        &m.key.keyring(),
        &VerifyOptions::default(),
    )
    .unwrap();
    let index = fetch_packages(&cache, &m.source(), &release, &["main".into()], "amd64").unwrap();
    let set = resolve(&index, Variant::Minbase, &[]).unwrap();
    let err = fetch_debs(&offline, &m.server.url(), &set, 2, &NoProgress).unwrap_err();
    assert!(
        matches!(err, FetchError::Cache(CacheError::Offline { .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains(".deb"), "{err}");
    assert_eq!(m.server.total_requests(), 2);
}

#[test]
fn by_hash_indices_are_preferred_and_gz_is_a_fallback() {
    let mut repo = sample_repo("testing");
    repo.by_hash = true;
    repo.indices = vec![Compression::Gz];
    let m = Mirror::new(repo);
    let cache_dir = tempfile::tempdir().unwrap();
    let set = build(&m, &cache_at(cache_dir.path())).unwrap();
    assert_eq!(set.len(), 6);
    let plain = format!("/{}.gz", m.repo.packages_path());
    assert_eq!(m.server.requests(&plain), 0, "{:?}", m.server.request_log());
    assert!(m
        .server
        .request_log()
        .iter()
        .any(|(path, _)| path.contains("/by-hash/SHA256/")));
}

#[test]
fn a_missing_component_or_architecture_is_named() {
    let m = Mirror::new(sample_repo("testing"));
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = cache_at(cache_dir.path());
    let release = fetch_release(
        &cache,
        &m.source(),
        &m.key.keyring(),
        &VerifyOptions::default(),
    )
    .unwrap();
    let err = fetch_packages(&cache, &m.source(), &release, &["main".into()], "arm64").unwrap_err();
    assert!(matches!(err, FetchError::NoIndex { .. }), "{err:?}");
    assert!(
        err.to_string().contains("main/binary-arm64/Packages"),
        "{err}"
    );
}

#[test]
fn a_filename_leaving_the_mirror_is_refused() {
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = cache_at(cache_dir.path());
    let p = ResolvedPackage {
        name: "evil".into(),
        version: "1".into(),
        arch: "all".into(),
        filename: "pool/../../etc/passwd".into(),
        mirror: String::new(),
        size: 1,
        sha256: "00".repeat(32),
        essential: false,
        priority: vbuild_builder::distro::debian::index::Priority::Optional,
        why: vbuild_builder::distro::debian::resolve::Why::Requested,
        automatic: false,
    };
    let err = fetch_debs(&cache, "http://127.0.0.1:9", &[p], 1, &NoProgress).unwrap_err();
    assert!(matches!(err, FetchError::BadFilename { .. }), "{err:?}");
}

/// A local mirror directory as `file://`: the same signature, index and
/// .deb checks as over HTTP, into the same cache, with no server involved.
#[test]
fn a_file_mirror_is_verified_like_http_and_fills_the_same_cache() {
    let m = Mirror::new(sample_repo("bookworm"));
    let url = format!("file://{}", m.dir.path().display());
    let source = Source::new(&url, &m.repo.suite);
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = cache_at(cache_dir.path());
    let release = fetch_release(&cache, &source, &m.key.keyring(), &VerifyOptions::default())
        .expect("a file:// mirror verifies");
    let index = fetch_packages(&cache, &source, &release, &["main".into()], "amd64").unwrap();
    let set = resolve(&index, Variant::Minbase, &[]).unwrap();
    fetch_debs(&cache, &url, &set, 4, &NoProgress).unwrap();
    for p in &set {
        assert!(
            cache.blob(&p.sha256).is_some(),
            "{} is in the store",
            p.name
        );
    }
    assert_eq!(m.server.total_requests(), 0, "nothing went over HTTP");
    assert!(leftovers(&cache).is_empty());

    // A tampered .deb in the local mirror is refused by its checksum.
    let fresh = tempfile::tempdir().unwrap();
    let cache = cache_at(fresh.path());
    let dash = set.iter().find(|p| p.name == "dash").unwrap();
    let mut bytes = std::fs::read(m.path(&dash.filename)).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(m.path(&dash.filename), &bytes).unwrap();
    let err = fetch_debs(&cache, &url, &set, 4, &NoProgress).unwrap_err();
    assert!(err.to_string().contains("sha256 mismatch"), "{err}");
    assert!(cache.blob(&dash.sha256).is_none());
    assert!(leftovers(&cache).is_empty());

    // A missing file names the local path.
    std::fs::remove_file(m.path(&dash.filename)).unwrap();
    let err = fetch_debs(&cache, &url, &set, 4, &NoProgress).unwrap_err();
    assert!(
        err.to_string()
            .contains("does not exist in the local mirror"),
        "{err}"
    );
}
