//! The cache against a loopback HTTP server: verification, retries, resume,
//! parallel and concurrent fetches, offline mode, gc.

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};
use vbuild_cache::{Cache, CacheError, Fetch, NoProgress, Progress};
use vbuild_testsupport::http::{Fault, TestServer};

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Deterministic content of `len` bytes that differs per `seed`.
fn content(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

struct Fixture {
    _served: tempfile::TempDir,
    root: std::path::PathBuf,
    server: TestServer,
    cache_dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let served = tempfile::tempdir().unwrap();
        let root = served.path().to_path_buf();
        let server = TestServer::serve(&root);
        Fixture {
            _served: served,
            root,
            server,
            cache_dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Puts `bytes` at `name` on the server and returns the matching Fetch.
    fn file(&self, name: &str, bytes: &[u8]) -> Fetch {
        std::fs::write(self.root.join(name), bytes).unwrap();
        Fetch {
            url: format!("{}/{name}", self.server.url()),
            sha256: sha(bytes),
            size: Some(bytes.len() as u64),
        }
    }

    fn cache(&self) -> Cache {
        let mut cache = Cache::open(self.cache_dir.path()).unwrap();
        cache.set_retry(4, Duration::from_millis(1));
        cache
    }
}

fn tmp_files(cache: &Cache) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(cache.dir().join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".lock"))
        .collect();
    names.sort();
    names
}

#[derive(Default)]
struct Counter {
    begun_items: AtomicU64,
    begun_bytes: AtomicU64,
    bytes: AtomicU64,
    items: AtomicU64,
}

impl Progress for Counter {
    fn begin(&self, items: u64, bytes: u64) {
        self.begun_items.store(items, Ordering::SeqCst);
        self.begun_bytes.store(bytes, Ordering::SeqCst);
    }
    fn advance(&self, bytes: u64) {
        self.bytes.fetch_add(bytes, Ordering::SeqCst);
    }
    fn item_done(&self, _name: &str) {
        self.items.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn fetch_stores_by_hash_and_second_fetch_needs_no_request() {
    let fx = Fixture::new();
    let body = content(1, 300_000);
    let item = fx.file("a.deb", &body);
    let cache = fx.cache();
    assert_eq!(cache.blob(&item.sha256), None);
    let path = cache.fetch(&item, &NoProgress).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), body);
    assert!(path.ends_with(format!(
        "blobs/sha256/{}/{}",
        &item.sha256[..2],
        item.sha256
    )));
    assert_eq!(cache.blob(&item.sha256), Some(path.clone()));
    assert_eq!(fx.server.requests("/a.deb"), 1);

    let again = fx.cache().fetch(&item, &NoProgress).unwrap();
    assert_eq!(again, path);
    assert_eq!(
        fx.server.requests("/a.deb"),
        1,
        "cached blob must not be requested"
    );
    assert!(tmp_files(&cache).is_empty());
}

#[test]
fn checksum_mismatch_is_refused_and_leaves_nothing() {
    let fx = Fixture::new();
    let mut item = fx.file("bad.deb", b"the real content");
    let wanted = sha(b"what the index promised");
    item.sha256 = wanted.clone();
    let cache = fx.cache();
    let err = cache.fetch(&item, &NoProgress).unwrap_err();
    match &err {
        CacheError::Checksum {
            url,
            expected,
            actual,
        } => {
            assert_eq!(url, &item.url);
            assert_eq!(expected, &wanted);
            assert_eq!(actual, &sha(b"the real content"));
        }
        other => panic!("expected a checksum error, got {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains(&item.url) && text.contains(&wanted), "{text}");
    assert_eq!(cache.blob(&wanted), None);
    assert!(
        tmp_files(&cache).is_empty(),
        "left: {:?}",
        tmp_files(&cache)
    );
}

#[test]
fn size_mismatch_is_refused_before_hashing() {
    let fx = Fixture::new();
    let mut item = fx.file("long.deb", &content(2, 5000));
    item.size = Some(4000);
    let cache = fx.cache();
    let err = cache.fetch(&item, &NoProgress).unwrap_err();
    assert!(
        matches!(err, CacheError::Size { expected: 4000, .. }),
        "{err:?}"
    );
    assert!(tmp_files(&cache).is_empty());
}

#[test]
fn missing_file_says_not_found_with_the_url() {
    let fx = Fixture::new();
    let item = Fetch {
        url: format!("{}/nope.deb", fx.server.url()),
        sha256: sha(b"x"),
        size: Some(1),
    };
    let err = fx.cache().fetch(&item, &NoProgress).unwrap_err();
    assert!(matches!(err, CacheError::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("not found"), "{err}");
    assert!(err.to_string().contains(&item.url), "{err}");
    assert_eq!(fx.server.requests("/nope.deb"), 1, "404 is not retried");
}

#[test]
fn server_errors_are_retried_until_success() {
    let fx = Fixture::new();
    let item = fx.file("flaky.deb", &content(3, 10_000));
    fx.server.inject("/flaky.deb", Fault::Status(503));
    fx.server.inject("/flaky.deb", Fault::Status(500));
    let path = fx.cache().fetch(&item, &NoProgress).unwrap();
    assert_eq!(std::fs::read(path).unwrap(), content(3, 10_000));
    assert_eq!(fx.server.requests("/flaky.deb"), 3);
}

#[test]
fn persistent_server_errors_give_up_with_the_url_and_leave_nothing() {
    let fx = Fixture::new();
    let item = fx.file("down.deb", b"x");
    for _ in 0..4 {
        fx.server.inject("/down.deb", Fault::Status(503));
    }
    let cache = fx.cache();
    let err = cache.fetch(&item, &NoProgress).unwrap_err();
    assert!(
        matches!(err, CacheError::Network { attempts: 4, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains(&item.url), "{err}");
    assert_eq!(fx.server.requests("/down.deb"), 4);
    assert!(tmp_files(&cache).is_empty());
}

#[test]
fn a_cut_connection_resumes_with_a_range_request() {
    let fx = Fixture::new();
    let body = content(4, 200_000);
    let item = fx.file("cut.deb", &body);
    fx.server.inject("/cut.deb", Fault::CutAfter(70_000));
    let counter = Counter::default();
    let path = fx.cache().fetch(&item, &counter).unwrap();
    assert_eq!(std::fs::read(path).unwrap(), body);
    assert_eq!(fx.server.requests("/cut.deb"), 2);
    assert_eq!(
        fx.server.partial_answers("/cut.deb"),
        1,
        "second request resumed"
    );
    assert_eq!(
        counter.bytes.load(Ordering::SeqCst),
        200_000,
        "resumed bytes are not counted twice"
    );
}

#[test]
fn a_partial_left_by_an_interrupted_run_is_resumed() {
    let fx = Fixture::new();
    let body = content(5, 100_000);
    let item = fx.file("resume.deb", &body);
    let cache = fx.cache();
    std::fs::write(
        cache.dir().join(format!("tmp/{}.partial", item.sha256)),
        &body[..40_000],
    )
    .unwrap();
    let path = cache.fetch(&item, &NoProgress).unwrap();
    assert_eq!(std::fs::read(path).unwrap(), body);
    assert_eq!(fx.server.partial_answers("/resume.deb"), 1);
    assert!(tmp_files(&cache).is_empty());
}

#[test]
fn a_server_without_ranges_gets_the_partial_rewritten() {
    let fx = Fixture::new();
    let body = content(6, 50_000);
    let item = fx.file("norange.deb", &body);
    fx.server.set_ranges(false);
    let cache = fx.cache();
    // A stale partial with wrong bytes: a 200 answer must replace it.
    std::fs::write(
        cache.dir().join(format!("tmp/{}.partial", item.sha256)),
        vec![0xEE; 20_000],
    )
    .unwrap();
    let path = cache.fetch(&item, &NoProgress).unwrap();
    assert_eq!(std::fs::read(path).unwrap(), body);
    assert_eq!(fx.server.partial_answers("/norange.deb"), 0);
}

#[test]
fn fetch_all_returns_paths_in_order_and_reports_progress() {
    let fx = Fixture::new();
    let bodies: Vec<Vec<u8>> = (0..20)
        .map(|i| content(i, 1000 + 997 * i as usize))
        .collect();
    let items: Vec<Fetch> = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| fx.file(&format!("p{i}.deb"), b))
        .collect();
    let cache = fx.cache();
    // One already cached: counted as done without a request.
    cache.fetch(&items[7], &NoProgress).unwrap();
    let counter = Counter::default();
    let paths = cache.fetch_all(&items, 4, &counter).unwrap();
    for (path, body) in paths.iter().zip(&bodies) {
        assert_eq!(&std::fs::read(path).unwrap(), body);
    }
    let total: u64 = bodies.iter().map(|b| b.len() as u64).sum();
    assert_eq!(counter.begun_items.load(Ordering::SeqCst), 20);
    assert_eq!(counter.begun_bytes.load(Ordering::SeqCst), total);
    assert_eq!(counter.items.load(Ordering::SeqCst), 20);
    assert_eq!(counter.bytes.load(Ordering::SeqCst), total);
    assert_eq!(fx.server.requests("/p7.deb"), 1);
    assert_eq!(fx.server.total_requests(), 20);
}

#[test]
fn fetch_all_first_error_wins_and_leaves_no_partial() {
    let fx = Fixture::new();
    let mut items: Vec<Fetch> = (0..12)
        .map(|i| fx.file(&format!("q{i}.deb"), &content(i, 50_000)))
        .collect();
    items[5].sha256 = sha(b"tampered");
    fx.server.set_delay(Duration::from_millis(20));
    let cache = fx.cache();
    let err = cache.fetch_all(&items, 3, &NoProgress).unwrap_err();
    match &err {
        CacheError::Checksum { url, .. } => assert!(url.ends_with("/q5.deb"), "{url}"),
        other => panic!("expected the checksum error, got {other:?}"),
    }
    assert_eq!(cache.blob(&items[5].sha256), None);
    assert!(
        tmp_files(&cache).is_empty(),
        "left: {:?}",
        tmp_files(&cache)
    );
    // Whatever did complete is valid and stays usable.
    for item in &items {
        if let Some(path) = cache.blob(&item.sha256) {
            assert_eq!(sha(&std::fs::read(path).unwrap()), item.sha256);
        }
    }
}

#[test]
fn offline_uses_the_store_and_names_what_is_missing() {
    let fx = Fixture::new();
    let cached = fx.file("have.deb", b"have");
    let missing = fx.file("miss.deb", b"miss");
    fx.cache().fetch(&cached, &NoProgress).unwrap();
    let before = fx.server.total_requests();

    let mut cache = fx.cache();
    cache.set_offline(true);
    assert!(cache.fetch(&cached, &NoProgress).is_ok());
    let err = cache.fetch(&missing, &NoProgress).unwrap_err();
    assert!(matches!(err, CacheError::Offline { .. }), "{err:?}");
    assert!(err.to_string().contains(&missing.url), "{err}");
    let err = cache
        .fetch_all(&[cached.clone(), missing.clone()], 2, &NoProgress)
        .unwrap_err();
    assert!(err.to_string().contains("miss.deb"), "{err}");
    // Several missing: every one is named, none hidden behind "and N more".
    let others: Vec<_> = (0..7)
        .map(|i| fx.file(&format!("gone{i}.deb"), format!("gone{i}").as_bytes()))
        .collect();
    let mut all = vec![cached.clone(), missing.clone()];
    all.extend(others);
    let err = cache
        .fetch_all(&all, 2, &NoProgress)
        .unwrap_err()
        .to_string();
    assert!(err.contains("8 files (miss.deb, gone0.deb"), "{err}");
    assert!(err.contains("gone6.deb)") && !err.contains("more"), "{err}");
    let err = cache.download(&missing.url, 1 << 20).unwrap_err();
    assert!(matches!(err, CacheError::Offline { .. }), "{err:?}");
    assert_eq!(
        fx.server.total_requests(),
        before,
        "offline touched the network"
    );
}

#[test]
fn many_threads_fetching_one_blob_download_it_once() {
    let fx = Fixture::new();
    let body = content(7, 400_000);
    let item = fx.file("same.deb", &body);
    fx.server.set_delay(Duration::from_millis(50));
    let cache = fx.cache();
    let paths: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| cache.fetch(&item, &NoProgress).unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(paths.iter().all(|p| p == &paths[0]));
    assert_eq!(std::fs::read(&paths[0]).unwrap(), body);
    assert_eq!(fx.server.requests("/same.deb"), 1);
}

/// Runs as a child process when VBUILD_CACHE_CHILD is set (see the next test).
/// Not a test of its own: the child process of
/// `two_processes_fetching_one_blob_share_it_safely`, which runs it with
/// `--ignored` and its job in `VBUILD_CACHE_CHILD`.
#[test]
#[ignore = "child process of two_processes_fetching_one_blob_share_it_safely"]
fn child_fetch() {
    let spec = std::env::var("VBUILD_CACHE_CHILD").expect(
        "child_fetch runs only as the child of two_processes_fetching_one_blob_share_it_safely",
    );
    let mut parts = spec.splitn(4, '\n');
    let (dir, url, sha256, size) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let cache = Cache::open(dir).unwrap();
    let item = Fetch {
        url: url.into(),
        sha256: sha256.into(),
        size: Some(size.parse().unwrap()),
    };
    let path = cache.fetch(&item, &NoProgress).unwrap();
    assert_eq!(sha(&std::fs::read(path).unwrap()), sha256);
}

#[test]
fn two_processes_fetching_one_blob_share_it_safely() {
    let fx = Fixture::new();
    let body = content(8, 1_000_000);
    let item = fx.file("proc.deb", &body);
    fx.server.set_delay(Duration::from_millis(100));
    let spec = format!(
        "{}\n{}\n{}\n{}",
        fx.cache_dir.path().display(),
        item.url,
        item.sha256,
        body.len()
    );
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..2)
        .map(|_| {
            Command::new(&exe)
                .args(["--exact", "child_fetch", "--ignored", "--test-threads=1"])
                .env("VBUILD_CACHE_CHILD", &spec)
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success(), "a child fetch failed");
    }
    let cache = fx.cache();
    assert_eq!(
        std::fs::read(cache.blob(&item.sha256).unwrap()).unwrap(),
        body
    );
    assert_eq!(
        fx.server.requests("/proc.deb"),
        1,
        "the loser found it present"
    );
    assert!(tmp_files(&cache).is_empty());
}

#[test]
fn download_reads_small_files_and_refuses_huge_ones() {
    let fx = Fixture::new();
    fx.file("InRelease", b"Origin: test\n");
    let cache = fx.cache();
    let url = format!("{}/InRelease", fx.server.url());
    assert_eq!(cache.download(&url, 100).unwrap(), b"Origin: test\n");
    let err = cache.download(&url, 5).unwrap_err();
    assert!(
        matches!(err, CacheError::TooLarge { limit: 5, .. }),
        "{err:?}"
    );
    let err = cache
        .download(&format!("{}/missing", fx.server.url()), 5)
        .unwrap_err();
    assert!(matches!(err, CacheError::NotFound { .. }), "{err:?}");
}

#[test]
fn unknown_schemes_and_bad_digests_are_refused_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    let err = cache
        .fetch(
            &Fetch {
                url: "ftp://deb.debian.org/x.deb".into(),
                sha256: sha(b"x"),
                size: None,
            },
            &NoProgress,
        )
        .unwrap_err();
    assert!(matches!(err, CacheError::UnsupportedUrl { .. }), "{err:?}");
    let err = cache
        .fetch_all(
            &[Fetch {
                url: "http://127.0.0.1:9/x".into(),
                sha256: "abc".into(),
                size: None,
            }],
            2,
            &NoProgress,
        )
        .unwrap_err();
    assert!(err.to_string().contains("\"abc\" is not a sha256"), "{err}");
}

#[test]
fn gc_keeps_what_is_asked_and_refuses_while_in_use() {
    let fx = Fixture::new();
    let keep = fx.file("keep.deb", b"keep me");
    let gone = fx.file("drop.deb", b"drop me");
    let cache = fx.cache();
    cache
        .fetch_all(&[keep.clone(), gone.clone()], 2, &NoProgress)
        .unwrap();
    std::fs::write(cache.dir().join("tmp/stale.partial"), b"junk").unwrap();

    // A build holding the store lock (shared) keeps gc out.
    let lock_file = std::fs::File::open(cache.dir().join("lock")).unwrap();
    let held = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockShared).unwrap();
    let set: HashSet<String> = [keep.sha256.clone()].into();
    let err = cache.gc(&set).unwrap_err();
    assert!(matches!(err, CacheError::Busy { .. }), "{err:?}");
    assert!(
        cache.blob(&gone.sha256).is_some(),
        "refused gc changed nothing"
    );
    drop(held);

    let stats = cache.gc(&set).unwrap();
    assert_eq!((stats.removed, stats.kept, stats.freed_bytes), (1, 1, 7));
    assert!(cache.blob(&keep.sha256).is_some());
    assert!(cache.blob(&gone.sha256).is_none());
    assert!(tmp_files(&cache).is_empty());
    assert!(!Path::new(&cache.dir().join("tmp/stale.partial")).exists());
}

#[test]
fn a_complete_but_short_body_is_a_size_error_not_retried() {
    let fx = Fixture::new();
    let mut item = fx.file("short.deb", &content(9, 3000));
    item.size = Some(5000);
    let cache = fx.cache();
    let err = cache.fetch(&item, &NoProgress).unwrap_err();
    assert!(
        matches!(
            err,
            CacheError::Size {
                expected: 5000,
                actual: 3000,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(fx.server.requests("/short.deb"), 1);
    assert!(tmp_files(&cache).is_empty());
}

#[test]
fn a_partial_the_server_cannot_resume_is_started_over() {
    let fx = Fixture::new();
    let body = content(10, 10_000);
    let mut item = fx.file("changed.deb", &body);
    let cache = fx.cache();
    // A partial from an earlier run is longer than what the mirror now
    // serves (mid-sync): the server answers 416, the download starts from 0,
    // and the complete short answer is reported as a size mismatch.
    std::fs::write(
        cache.dir().join(format!("tmp/{}.partial", item.sha256)),
        &body[..9_500],
    )
    .unwrap();
    std::fs::write(fx.root.join("changed.deb"), &body[..9_000]).unwrap();
    let err = cache.fetch(&item, &NoProgress).unwrap_err();
    assert!(
        matches!(
            err,
            CacheError::Size {
                expected: 10_000,
                actual: 9_000,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        fx.server.requests("/changed.deb"),
        2,
        "416, then a full GET"
    );
    assert!(tmp_files(&cache).is_empty());
    // Once the mirror is consistent again, the same fetch succeeds.
    item = fx.file("changed.deb", &body);
    assert_eq!(
        std::fs::read(cache.fetch(&item, &NoProgress).unwrap()).unwrap(),
        body
    );
}

/// Not a test of its own: fetches through the proxy the parent set in the
/// environment (a port nothing listens on) and prints the error.
#[test]
#[ignore = "child process of a_failing_proxy_is_named_in_the_error"]
fn child_fetch_through_proxy() {
    let dir = std::env::var("VBUILD_CACHE_PROXY_CHILD")
        .expect("runs only as the child of a_failing_proxy_is_named_in_the_error");
    let mut cache = Cache::open(dir).unwrap();
    cache.set_retry(1, Duration::from_millis(1));
    let err = cache
        .download(
            "http://deb.debian.org/debian/dists/bookworm/InRelease",
            1 << 20,
        )
        .unwrap_err();
    println!("ERROR: {err}");
}

#[test]
fn a_failing_proxy_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on: connecting to the proxy is refused.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_fetch_through_proxy",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("VBUILD_CACHE_PROXY_CHILD", dir.path())
        .env("HTTP_PROXY", &proxy)
        .env_remove("http_proxy")
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("ERROR: ").map(|(_, e)| e))
        .expect("the child printed its error");
    assert!(
        line.contains(&format!("through the proxy {proxy} (HTTP_PROXY)")),
        "{line}"
    );
}

#[test]
fn a_file_url_serves_the_local_file_with_the_same_checks() {
    let dir = tempfile::tempdir().unwrap();
    let mirror = tempfile::tempdir().unwrap();
    let body = content(3, 200_000);
    std::fs::write(mirror.path().join("a.deb"), &body).unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    let url = format!("file://{}/a.deb", mirror.path().display());
    let good = Fetch {
        url: url.clone(),
        sha256: sha(&body),
        size: Some(body.len() as u64),
    };
    let path = cache.fetch(&good, &NoProgress).unwrap();
    assert_eq!(std::fs::read(path).unwrap(), body);
    let wrong = Fetch {
        url: url.clone(),
        sha256: sha(b"other"),
        size: Some(body.len() as u64),
    };
    let err = cache.fetch(&wrong, &NoProgress).unwrap_err();
    assert!(matches!(err, CacheError::Checksum { .. }), "{err:?}");
    let short = Fetch {
        url,
        sha256: sha(b"zz"),
        size: Some(10),
    };
    let err = cache.fetch(&short, &NoProgress).unwrap_err();
    assert!(matches!(err, CacheError::Size { .. }), "{err:?}");
    let missing = Fetch {
        url: format!("file://{}/nope.deb", mirror.path().display()),
        sha256: sha(b"y"),
        size: None,
    };
    let err = cache.fetch(&missing, &NoProgress).unwrap_err();
    assert!(
        matches!(err, CacheError::NotInLocalMirror { .. }),
        "{err:?}"
    );
    assert!(tmp_files(&cache).is_empty());
}
