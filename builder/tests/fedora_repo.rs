//! The Fedora chain against a generated, signed RPM repository on loopback:
//! metalink -> repomd.xml -> primary.xml.zst -> .rpm, each link checked
//! (good, tampered payload, tampered header, unsigned, wrong key, metalink
//! mismatch, primary checksum), resolution over the parsed metadata, and
//! payloads unpacked root-confined (files, directories, symlinks; a payload
//! that tries to write through a symlink out of the root is refused).

use std::path::Path;

use vbuild_builder::distro::fedora::fetch::{
    fetch_repo, fetch_rpms, verifier, FedoraFetchError, RepoIndex, RepoSource,
};
use vbuild_builder::distro::fedora::install::unpack_rpm;
use vbuild_builder::distro::fedora::resolve::{resolve, FedoraPackage, Options, Universe};
use vbuild_cache::{Cache, CacheError, NoProgress};
use vbuild_kernel::fsroot::Root;
use vbuild_testkit::http::TestServer;
use vbuild_testkit::pgp::TestKey;
use vbuild_testkit::rpmrepo::{metalink, metalink_with_alternates, TestRpm, TestRpmRepo};

fn base_set(key: &TestKey) -> TestRpmRepo {
    let mut repo = TestRpmRepo::new();
    let mut filesystem = TestRpm::new("filesystem", "3.18")
        .dir("/usr")
        .dir("/usr/bin")
        .dir("/usr/lib")
        .dir("/etc")
        .symlink("/bin", "usr/bin")
        .symlink("/lib", "usr/lib");
    filesystem.pretrans_lua = Some("posix.mkdir(\"/proc\")".into());
    let mut bash = TestRpm::new("bash", "5.2.37")
        .file("/usr/bin/bash", b"#!fake bash\n", 0o755)
        .symlink("/usr/bin/sh", "bash")
        .requires("filesystem")
        .requires("libc.so.6()(64bit)")
        .requires("(coreutils or coreutils-single)")
        .provides("/bin/sh");
    bash.post_lua = Some("print(\"bash post\")".into());
    bash.compression = rpm::CompressionWithLevel::Gzip(6);
    let mut glibc = TestRpm::new("glibc", "2.41")
        .file("/usr/lib/libc.so.6", b"\x7fELF fake libc", 0o755)
        .file("/etc/ld.so.conf", b"include ld.so.conf.d/*.conf\n", 0o644)
        .provides("libc.so.6()(64bit)")
        .requires("filesystem");
    glibc.file_trigger = Some(("/usr/lib".into(), "/sbin/ldconfig || :".into()));
    let coreutils_single = TestRpm::new("coreutils-single", "9.6")
        .file("/usr/bin/ls", b"fake ls", 0o755)
        .requires("/usr/bin/bash");
    let mut coreutils = TestRpm::new("coreutils", "9.6")
        .file("/usr/bin/ls", b"fake ls", 0o755)
        .requires("/usr/bin/bash")
        .requires("glibc >= 2.40");
    coreutils.post = Some("echo coreutils post".into());
    let mut noarch = TestRpm::new("fedora-release-container", "44");
    noarch.arch = "noarch".into();
    let noarch = noarch.file("/etc/os-release", b"ID=fedora\nVERSION_ID=44\n", 0o644);
    let mut other_arch = TestRpm::new("aarch64-only", "1");
    other_arch.arch = "aarch64".into();
    repo.add(filesystem, key)
        .add(bash, key)
        .add(glibc, key)
        .add(coreutils, key)
        .add(coreutils_single, key)
        .add(noarch, key)
        .add(other_arch, key);
    repo.core = Some(vec!["bash".into(), "fedora-release-container".into()]);
    repo
}

struct Mirror {
    dir: tempfile::TempDir,
    server: TestServer,
}

impl Mirror {
    /// Writes `repo` under `os/` and a metalink pinning it at `metalink`.
    fn new(repo: &TestRpmRepo) -> Mirror {
        let dir = tempfile::tempdir().unwrap();
        let server = TestServer::serve(dir.path());
        let repomd = repo.write(&dir.path().join("os")).unwrap();
        let base = format!("{}/os/", server.url());
        std::fs::write(dir.path().join("metalink"), metalink(&repomd, &base)).unwrap();
        Mirror { dir, server }
    }
    fn source(&self, with_metalink: bool) -> RepoSource {
        RepoSource {
            id: "fedora".into(),
            metalink: with_metalink.then(|| format!("{}/metalink", self.server.url())),
            baseurls: vec![format!("{}/os/", self.server.url())],
        }
    }
}

fn cache() -> (tempfile::TempDir, Cache) {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path().join("cache")).unwrap();
    (dir, cache)
}

fn keys(key: &TestKey) -> Vec<(String, Vec<u8>)> {
    vec![("test.asc".into(), key.public_armored().into_bytes())]
}

fn chosen(index: &RepoIndex, names: &[&str]) -> Vec<FedoraPackage> {
    let u = Universe::new(std::slice::from_ref(&index.packages), "x86_64");
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let mut r = resolve(&u, &names, &Options::default()).unwrap();
    for p in &mut r {
        p.base = index.baseurl.clone();
    }
    r
}

#[test]
fn good_repository_verifies_resolves_and_unpacks() {
    let key = TestKey::generate("vbuild fedora test <test@vbuild.invalid>");
    let repo = base_set(&key);
    let m = Mirror::new(&repo);
    let (tmp, cache) = cache();
    let index = fetch_repo(&cache, &m.source(true), &[]).unwrap();
    assert_eq!(index.packages.len(), 7);
    assert_eq!(
        index.core.as_deref().unwrap(),
        ["bash", "fedora-release-container"]
    );
    let set = chosen(&index, &["bash", "fedora-release-container"]);
    let names: Vec<&str> = set.iter().map(|p| p.entry.name.as_str()).collect();
    // coreutils over coreutils-single: its own name is what the `or` names first.
    assert_eq!(
        names,
        [
            "bash",
            "coreutils",
            "fedora-release-container",
            "filesystem",
            "glibc"
        ]
    );
    let v = verifier(&keys(&key)).unwrap();
    let files = fetch_rpms(&cache, &set, &v, 4, &NoProgress).unwrap();
    let root_dir = tmp.path().join("root");
    std::fs::create_dir(&root_dir).unwrap();
    let root = Root::open(&root_dir).unwrap();
    // filesystem first, as rpm orders by Requires.
    let order = [
        "filesystem",
        "glibc",
        "bash",
        "coreutils",
        "fedora-release-container",
    ];
    for n in order {
        let i = set.iter().position(|p| p.entry.name == n).unwrap();
        unpack_rpm(&root, &files[i]).unwrap();
    }
    assert_eq!(
        std::fs::read(root_dir.join("usr/bin/bash")).unwrap(),
        b"#!fake bash\n"
    );
    assert_eq!(
        std::fs::read_link(root_dir.join("bin")).unwrap(),
        Path::new("usr/bin")
    );
    assert_eq!(
        std::fs::read_link(root_dir.join("usr/bin/sh")).unwrap(),
        Path::new("bash")
    );
    assert_eq!(
        std::fs::read_to_string(root_dir.join("etc/os-release")).unwrap(),
        "ID=fedora\nVERSION_ID=44\n"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(root_dir.join("usr/bin/ls"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
    // A second fetch is served from the cache.
    let before = m.server.total_requests();
    fetch_rpms(&cache, &set, &v, 4, &NoProgress).unwrap();
    assert_eq!(m.server.total_requests(), before);
    // A baseurl without metalink also works (trust from the package signatures).
    assert_eq!(
        fetch_repo(&cache, &m.source(false), &[])
            .unwrap()
            .packages
            .len(),
        7
    );
}

/// Builds the base set with `bash` replaced by `bytes`, fetches and returns
/// the error for bash, checking that it was not kept in the cache.
fn refuse(bytes_of_bash: impl FnOnce(&[u8]) -> Vec<u8>, signer: Option<&TestKey>) -> String {
    let key = TestKey::generate("vbuild fedora test <test@vbuild.invalid>");
    let good = base_set(&key);
    let mut repo = TestRpmRepo::new();
    let bash = TestRpm::new("bash", "5.2.37").file("/usr/bin/bash", b"#!fake bash\n", 0o755);
    let bytes = match signer {
        Some(k) => bytes_of_bash(&bash.build(k)),
        None => bytes_of_bash(good.bytes_of("bash").unwrap()),
    };
    repo.add_bytes(bash, bytes);
    let m = Mirror::new(&repo);
    let (_tmp, cache) = cache();
    let index = fetch_repo(&cache, &m.source(true), &[]).unwrap();
    let set = chosen(&index, &["bash"]);
    let v = verifier(&keys(&key)).unwrap();
    let err = fetch_rpms(&cache, &set, &v, 1, &NoProgress).unwrap_err();
    assert!(matches!(err, FedoraFetchError::Signature { .. }), "{err}");
    assert!(
        cache.blob(&set[0].entry.sha256).is_none(),
        "a refused package stays out of the cache"
    );
    err.to_string()
}

#[test]
fn tampered_payload_is_refused() {
    let e = refuse(
        |b| {
            let mut b = b.to_vec();
            let n = b.len() - 3;
            b[n] ^= 0xff;
            b
        },
        None,
    );
    assert!(
        e.starts_with("bash-5.2.37-1.x86_64: signature check failed"),
        "{e}"
    );
}

#[test]
fn tampered_header_is_refused() {
    let e = refuse(
        |b| {
            let needle = b"vbuild test package";
            let at = b.windows(needle.len()).position(|w| w == needle).unwrap();
            let mut b = b.to_vec();
            b[at] = b'V';
            b
        },
        None,
    );
    assert!(e.contains("signature check failed"), "{e}");
}

#[test]
fn unsigned_and_wrong_key_packages_are_refused() {
    let mut unsigned = TestRpm::new("bash", "5.2.37").file("/usr/bin/bash", b"x", 0o755);
    unsigned.signed = false;
    let other = TestKey::generate("someone else <x@vbuild.invalid>");
    let bytes = unsigned.build(&other);
    let e = refuse(move |_| bytes, None);
    assert!(e.contains("signature check failed"), "{e}");
    let e = refuse(|b| b.to_vec(), Some(&other));
    assert!(e.contains("signature check failed"), "{e}");
}

#[test]
fn metalink_mismatch_and_primary_checksum_are_refused() {
    let key = TestKey::generate("vbuild fedora test <test@vbuild.invalid>");
    let repo = base_set(&key);
    let m = Mirror::new(&repo);
    // The mirror's repomd.xml changes after the metalink pinned it.
    let path = m.dir.path().join("os/repodata/repomd.xml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("<!-- stale -->\n");
    std::fs::write(&path, &text).unwrap();
    let (_tmp, cache) = cache();
    let err = fetch_repo(&cache, &m.source(true), &[]).unwrap_err();
    assert!(
        matches!(err, FedoraFetchError::MetalinkMismatch { .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("repository fedora: repomd.xml from http://"),
        "{err}"
    );

    // primary.xml.zst that is not what repomd.xml says.
    let m = Mirror::new(&repo);
    let dir = m.dir.path().join("os/repodata");
    let primary = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().ends_with("primary.xml.zst"))
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&primary).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&primary, bytes).unwrap();
    let err = fetch_repo(&cache, &m.source(false), &[]).unwrap_err();
    assert!(
        matches!(
            err,
            FedoraFetchError::Cache(CacheError::Checksum { .. }) | FedoraFetchError::Cache(_)
        ),
        "{err}"
    );
}

/// A mirror that has not caught up yet serves the repomd.xml the metalink
/// lists among its `alternates`: accepted, as librepo does; a version the
/// metalink lists nowhere is still refused.
#[test]
fn a_repomd_the_metalink_lists_as_an_alternate_is_accepted() {
    let key = TestKey::generate("vbuild fedora test <test@vbuild.invalid>");
    let repo = base_set(&key);
    let m = Mirror::new(&repo);
    let served = std::fs::read(m.dir.path().join("os/repodata/repomd.xml")).unwrap();
    // What the master has now: the mirror's copy is one revision behind.
    let mut newer = served.clone();
    newer.extend_from_slice(b"<!-- revision 2 -->\n");
    let base = format!("{}/os/", m.server.url());
    let alternates: &[&[u8]] = &[b"an even older one", &served];
    std::fs::write(
        m.dir.path().join("metalink"),
        metalink_with_alternates(&newer, alternates, &base),
    )
    .unwrap();
    let (_tmp, cache) = cache();
    let index = fetch_repo(&cache, &m.source(true), &[]).unwrap();
    assert_eq!(index.packages.len(), 7);

    // Neither current nor an alternate: refused.
    std::fs::write(
        m.dir.path().join("metalink"),
        metalink_with_alternates(&newer, &[b"an even older one"], &base),
    )
    .unwrap();
    let (_tmp, cache) = self::cache();
    let err = fetch_repo(&cache, &m.source(true), &[]).unwrap_err();
    assert!(
        matches!(err, FedoraFetchError::MetalinkMismatch { .. }),
        "{err}"
    );
}

#[test]
fn a_payload_cannot_write_through_a_symlink_out_of_the_root() {
    let key = TestKey::generate("vbuild fedora test <test@vbuild.invalid>");
    let outside = tempfile::tempdir().unwrap();
    let evil = TestRpm::new("evil", "1")
        .symlink("/usr/escape", outside.path().to_str().unwrap())
        .file("/usr/escape/pwned", b"owned", 0o644);
    let bytes = evil.build(&key);
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("evil.rpm");
    std::fs::write(&file, bytes).unwrap();
    let root_dir = tmp.path().join("root");
    std::fs::create_dir(&root_dir).unwrap();
    let root = Root::open(&root_dir).unwrap();
    let r = unpack_rpm(&root, &file);
    assert!(
        !outside.path().join("pwned").exists(),
        "wrote outside the root"
    );
    let err = r.expect_err("a file below a symlink that leaves the root is refused");
    assert!(err.to_string().starts_with("evil: "), "{err}");
}

#[test]
fn a_published_repomd_signature_is_checked_against_the_keys() {
    let key = TestKey::generate("vbuild fedora test <test@vbuild.invalid>");
    let other = TestKey::generate("someone else <x@vbuild.invalid>");
    let repo = base_set(&key);
    let m = Mirror::new(&repo);
    let repomd_path = m.dir.path().join("os/repodata/repomd.xml");
    let asc_path = m.dir.path().join("os/repodata/repomd.xml.asc");
    let repomd = std::fs::read(&repomd_path).unwrap();
    let (_tmp, cache) = cache();

    // Good: signed by a trusted key.
    std::fs::write(&asc_path, key.detached_sign(&repomd)).unwrap();
    let index = fetch_repo(&cache, &m.source(false), &keys(&key)).unwrap();
    assert_eq!(index.packages.len(), 7);

    // Signed by a key nobody trusts.
    std::fs::write(&asc_path, other.detached_sign(&repomd)).unwrap();
    let err = fetch_repo(&cache, &m.source(false), &keys(&key)).unwrap_err();
    assert!(
        matches!(err, FedoraFetchError::RepomdSignature { .. }),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("repodata/repomd.xml.asc: the detached signature does not verify"),
        "{text}"
    );
    assert!(text.contains("which no trusted key file holds"), "{text}");

    // A good signature over other bytes: repomd.xml changed after signing.
    std::fs::write(&asc_path, key.detached_sign(b"another repomd")).unwrap();
    let err = fetch_repo(&cache, &m.source(false), &keys(&key)).unwrap_err();
    assert!(
        err.to_string()
            .contains("the signature does not match the file"),
        "{err}"
    );

    // Not a signature at all.
    std::fs::write(&asc_path, b"garbage").unwrap();
    let err = fetch_repo(&cache, &m.source(false), &keys(&key)).unwrap_err();
    assert!(
        err.to_string().contains("not an OpenPGP signature"),
        "{err}"
    );

    // No .asc published: the repository is read as before.
    std::fs::remove_file(&asc_path).unwrap();
    assert_eq!(
        fetch_repo(&cache, &m.source(false), &keys(&key))
            .unwrap()
            .packages
            .len(),
        7
    );
}

#[test]
fn a_second_read_asks_only_for_the_metalink_and_repomd_and_offline_reads_the_cache() {
    let key = TestKey::generate("vbuild fedora test <test@vbuild.invalid>");
    let repo = base_set(&key);
    let m = Mirror::new(&repo);
    let (tmp, mut cache) = cache();
    let index = fetch_repo(&cache, &m.source(true), &[]).unwrap();
    let set = chosen(&index, &["bash"]);
    let v = verifier(&keys(&key)).unwrap();
    let online_files = fetch_rpms(&cache, &set, &v, 2, &NoProgress).unwrap();
    let first = m.server.request_log();
    assert!(
        first.iter().any(|(p, _)| p.ends_with("primary.xml.zst")),
        "{first:?}"
    );

    // Warm: the metalink, repomd.xml and the probe for repomd.xml.asc; no
    // primary, no comps, no package.
    fetch_repo(&cache, &m.source(true), &[]).unwrap();
    let second: Vec<(String, usize)> = m
        .server
        .request_log()
        .into_iter()
        .filter(|e| !first.contains(e))
        .collect();
    let paths: Vec<&str> = second.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/metalink",
            "/os/repodata/repomd.xml",
            "/os/repodata/repomd.xml.asc"
        ]
    );

    // Offline: nothing is requested and the same index and packages come
    // back (packages verified again).
    cache.set_offline(true);
    let before = m.server.total_requests();
    let offline = fetch_repo(&cache, &m.source(true), &[]).unwrap();
    assert_eq!(offline.packages.len(), index.packages.len());
    assert_eq!(offline.baseurl, index.baseurl);
    let offline_set = chosen(&offline, &["bash"]);
    let files = fetch_rpms(&cache, &offline_set, &v, 2, &NoProgress).unwrap();
    assert_eq!(files, online_files);
    assert_eq!(m.server.total_requests(), before);

    // Offline with a cache that never saw the repository: one clear line.
    let mut fresh = Cache::open(tmp.path().join("fresh")).unwrap();
    fresh.set_offline(true);
    let err = fetch_repo(&fresh, &m.source(true), &[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "offline: no verified repomd.xml of repository fedora in the cache; run once without --offline"
    );
}
