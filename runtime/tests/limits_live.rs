//! Limits on this host as the runtime applies them (root): a memory limit
//! raised live lets a process that was OOM-killed run in the same group; an
//! I/O-limited guest's `dd oflag=direct` runs at about the limit on its
//! loop image; disk limits through `runtime::disk`. Groups are named
//! `vbuild-test-<pid>-r<n>`, guests live in a temporary root; Drop guards
//! clean up even when an assertion fails.

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use vbuild_kernel::cgroup::{Cgroup, Hierarchy};
use vbuild_runtime::limits::{apply, apply_guest, Limits};
use vbuild_runtime::paths::Layout;

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

static N: AtomicU32 = AtomicU32::new(0);

struct Group(Cgroup);

impl Drop for Group {
    fn drop(&mut self) {
        let _ = self.0.kill_all();
        let _ = self.0.remove();
    }
}

fn group() -> Group {
    let h = Hierarchy::detect().unwrap();
    let rel = format!(
        "vbuild-test-{}-r{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    );
    Group(Cgroup::create(&h, &rel).unwrap())
}

/// Guests made under a temporary root; their disks are destroyed on drop.
struct Guests {
    layout: Layout,
    names: Vec<&'static str>,
    _tmp: tempfile::TempDir,
}

impl Guests {
    fn new() -> Guests {
        let tmp = tempfile::tempdir().unwrap();
        Guests {
            layout: Layout::new(Some(tmp.path())),
            names: Vec::new(),
            _tmp: tmp,
        }
    }
    fn add(&mut self, name: &'static str, disk: u64) {
        self.names.push(name);
        vbuild_runtime::disk::create(&self.layout, name, Some(disk)).unwrap();
    }
}

impl Drop for Guests {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = vbuild_runtime::disk::destroy(&self.layout, n);
        }
    }
}

/// Runs `script` in busybox sh inside `cg` (attached before it starts).
fn run_in(cg: &Cgroup, script: &str) -> (ExitStatus, Duration) {
    let mut c = Command::new("busybox")
        .args(["sh", "-c", &format!("read _go; {script}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("busybox");
    let attached = cg.attach(c.id() as i32);
    let t0 = Instant::now();
    c.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    let status = c.wait().unwrap();
    attached.unwrap();
    (status, t0.elapsed())
}

#[test]
fn raising_memory_live_lets_the_same_job_run() {
    if !is_root() {
        return;
    }
    let g = group();
    let hog = "exec busybox dd if=/dev/zero of=/dev/null bs=100M count=2";
    let mut l = Limits {
        memory: Some(64 << 20),
        swap: Some(0),
        ..Default::default()
    };
    apply(&g.0, &l).unwrap();
    let (s, _) = run_in(&g.0, hog);
    assert_eq!(s.signal(), Some(libc::SIGKILL), "{s:?}");
    // `vbuild limit NAME --memory 256M`: same group, no restart.
    l.memory = Some(256 << 20);
    apply(&g.0, &l).unwrap();
    let (s, _) = run_in(&g.0, hog);
    assert!(s.success(), "{s:?}");
}

#[test]
fn io_limited_guest_writes_at_about_the_limit() {
    if !is_root() {
        return;
    }
    let mut guests = Guests::new();
    guests.add("io", 256 << 20);
    let rootfs = guests.layout.guest_rootfs("io");
    let g = group();
    let dd = |name: &str| {
        format!(
            "busybox dd if=/dev/zero of={}/{name} bs=1M count=8 oflag=direct",
            rootfs.display()
        )
    };
    let (s, free) = run_in(&g.0, &dd("warm"));
    assert!(s.success());
    let l = Limits {
        io_write_bps: Some(4 << 20),
        ..Default::default()
    };
    apply_guest(&g.0, &l, &guests.layout, "io").unwrap();
    let (s, limited) = run_in(&g.0, &dd("limited"));
    assert!(s.success());
    let rate = 8.0 / limited.as_secs_f64();
    eprintln!(
        "8M with oflag=direct: unlimited {:.2}s, limited to 4M/s {:.2}s ({rate:.1} MB/s)",
        free.as_secs_f64(),
        limited.as_secs_f64()
    );
    // Wide tolerance: about 2 s expected.
    assert!(rate < 6.0, "throttle not enforced: {rate:.1} MB/s");
    assert!(rate > 1.5, "far below the limit: {rate:.1} MB/s");
    let u = g.0.usage().unwrap();
    assert!(u.io_write.unwrap() >= 8 << 20, "{u:?}");
}

fn fill(path: &Path, bytes: usize) -> std::io::Result<()> {
    let mut f = std::fs::File::create(path)?;
    let chunk = vec![7u8; 1 << 20];
    for _ in 0..bytes.div_ceil(chunk.len()) {
        f.write_all(&chunk)?;
    }
    f.sync_all()
}

#[test]
fn disk_limits_through_the_runtime() {
    if !is_root() {
        return;
    }
    use vbuild_runtime::disk;
    let mut guests = Guests::new();
    guests.add("a", 32 << 20);
    guests.add("b", 64 << 20);
    let lay = guests.layout.clone();
    assert!(disk::backend(&lay, "a").is_some());
    let e = fill(&lay.guest_rootfs("a").join("big"), 48 << 20).unwrap_err();
    assert!(
        matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT)),
        "{e}"
    );
    fill(&lay.guest_rootfs("b").join("ok"), 8 << 20).unwrap();
    let u = disk::usage(&lay, "a").unwrap().unwrap();
    assert_eq!(u.limit, 32 << 20);

    // Grow: live where the backend and capabilities allow, else offline.
    std::fs::remove_file(lay.guest_rootfs("a").join("big")).unwrap();
    if disk::grow(&lay, "a", 64 << 20).is_err() {
        disk::deactivate(&lay, "a").unwrap();
        disk::grow(&lay, "a", 64 << 20).unwrap();
        disk::activate(&lay, "a").unwrap();
    }
    assert_eq!(disk::usage(&lay, "a").unwrap().unwrap().limit, 64 << 20);
    fill(&lay.guest_rootfs("a").join("big"), 48 << 20).unwrap();

    // A guest without --disk has nothing to grow: a clear refusal.
    disk::create(&lay, "plain", None).unwrap();
    let e = disk::grow(&lay, "plain", 1 << 30).unwrap_err().to_string();
    assert!(e.contains("without --disk"), "{e}");
    assert_eq!(disk::usage(&lay, "plain").unwrap(), None);

    disk::destroy(&lay, "a").unwrap();
    assert!(!lay.guest_rootfs("a").exists());
    assert!(!disk::image_path(&lay, "a").exists());
}
