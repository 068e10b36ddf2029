//! The device allowlist on this host (root): the v1 devices controller, and
//! the cgroup v2 eBPF filter exercised through this hybrid host's cgroup2
//! mount (`Hierarchy::at("/sys/fs/cgroup/unified")` reads as a v2 host).
//! Processes we spawn try to open devices inside the restricted group.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use vbuild_kernel::cgroup::{Cgroup, DeviceKind, DeviceRule, Hierarchy};

fn is_root() -> bool {
    vbuild_testsupport::require(
        nix::unistd::geteuid().is_root(),
        "root (run the tests as root: sudo ./test.sh)",
    )
}

static N: AtomicU32 = AtomicU32::new(0);

struct Guard(Cgroup);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill_all();
        let _ = self.0.remove();
    }
}

fn group(h: &Hierarchy) -> Guard {
    let rel = format!(
        "vbuild-test-{}-d{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    );
    Guard(Cgroup::create(h, &rel).unwrap())
}

/// Runs `script` in busybox sh inside `cg`; true when it exits 0.
fn runs_ok(cg: &Cgroup, script: &str) -> bool {
    let mut c = Command::new("busybox")
        .args(["sh", "-c", &format!("read _go; {script}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("busybox");
    let attached = cg.attach(c.id() as i32);
    c.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    let status = c.wait().unwrap();
    attached.unwrap();
    status.success()
}

const READ_ZERO: &str = "busybox head -c 1 /dev/zero >/dev/null";
const WRITE_NULL: &str = "echo x >/dev/null";
const READ_NULL: &str = "busybox cat /dev/null";

#[test]
fn v1_devices_allow_only_the_list() {
    if !is_root() {
        return;
    }
    let h = Hierarchy::detect().unwrap();
    if !vbuild_testsupport::require(
        !h.is_v2(),
        "a cgroup v1 or hybrid host (the v1 devices controller); this host is pure v2",
    ) {
        return;
    }
    let g = group(&h);
    assert!(
        runs_ok(&g.0, READ_ZERO),
        "unrestricted group reads /dev/zero"
    );
    g.0.restrict_devices(&[DeviceRule::char(1, 3)]).unwrap();
    assert!(runs_ok(&g.0, WRITE_NULL));
    assert!(!runs_ok(&g.0, READ_ZERO), "/dev/zero must be denied");
}

#[test]
fn v2_ebpf_filter_allows_only_the_list_and_replaces_itself() {
    if !is_root() {
        return;
    }
    let unified = std::path::Path::new("/sys/fs/cgroup/unified");
    let root = if Hierarchy::detect().unwrap().is_v2() {
        std::path::Path::new("/sys/fs/cgroup")
    } else if unified.join("cgroup.controllers").exists() {
        unified
    } else {
        vbuild_testsupport::require(false, "a cgroup2 mount (unified hierarchy) on this host");
        return;
    };
    let h = Hierarchy::at(root).unwrap();
    assert!(h.is_v2());
    let g = group(&h);
    assert!(runs_ok(&g.0, READ_ZERO));

    let null_read_only = DeviceRule {
        write: false,
        mknod: false,
        ..DeviceRule::char(1, 3)
    };
    g.0.restrict_devices(&[null_read_only]).unwrap();
    assert!(runs_ok(&g.0, READ_NULL), "reading /dev/null is allowed");
    assert!(!runs_ok(&g.0, WRITE_NULL), "writing /dev/null is not");
    assert!(!runs_ok(&g.0, READ_ZERO), "/dev/zero is not listed");

    // A second call replaces the list rather than adding to it.
    g.0.restrict_devices(&DeviceRule::standard()).unwrap();
    assert!(runs_ok(&g.0, WRITE_NULL));
    assert!(runs_ok(&g.0, READ_ZERO));
    // mknod of anything is allowed, opening it is not.
    let tmp = tempfile::tempdir().unwrap();
    let node = tmp.path().join("kmsg");
    let node = node.display();
    assert!(runs_ok(&g.0, &format!("busybox mknod {node} c 1 11")));
    assert!(!runs_ok(&g.0, &format!("busybox head -c 1 {node}")));

    // Block devices: none listed, none opened.
    let only_block = DeviceRule {
        kind: DeviceKind::Block,
        ..DeviceRule::char(1, 3)
    };
    g.0.restrict_devices(&[only_block]).unwrap();
    assert!(
        !runs_ok(&g.0, READ_NULL),
        "a block rule does not allow char 1:3"
    );
}
