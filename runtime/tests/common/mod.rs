//! What the runtime's root tests share: the precondition check, unique
//! guest names, a busybox rootfs with a shell-script init, polling.
//! (Each test binary uses a part of it.)
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The busybox the guests' rootfs copies.
pub const BUSYBOX: &str = "/bin/busybox";

/// Root and busybox-static, or a loud skip (a failure under `CI=true`).
pub fn root_or_skip() -> bool {
    vbuild_testsupport::require(
        vbuild_testsupport::is_root(),
        "root (run the tests as root: sudo ./test.sh)",
    ) && vbuild_testsupport::require(
        Path::new(BUSYBOX).is_file(),
        "busybox-static at /bin/busybox (apt-get install busybox-static; scripts/host-deps.sh does)",
    )
}

static SERIAL: AtomicU32 = AtomicU32::new(0);

/// A guest name no other test of this or another run uses.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        SERIAL.fetch_add(1, Ordering::Relaxed)
    )
}

/// Assembles a busybox rootfs at `root` with `init` as /sbin/init, the
/// busybox `applets` a test calls (and no others: a hostile test's guest
/// gets only what it needs), and a root entry in /etc/passwd.
pub fn busybox_rootfs(root: &Path, init: &str, applets: &[&str]) {
    for d in [
        "bin", "sbin", "etc", "root", "tmp", "proc", "sys", "dev", "run", "usr/bin",
    ] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy(BUSYBOX, root.join("bin/busybox"))
        .expect("busybox-static is installed at /bin/busybox");
    for t in applets {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(t)).unwrap();
    }
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(root.join("sbin/init"), init).unwrap();
    std::fs::set_permissions(
        root.join("sbin/init"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
}

/// Polls `f` until it holds (the bound only keeps a broken test from hanging).
pub fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < until, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
