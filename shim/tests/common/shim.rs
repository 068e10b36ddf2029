//! What the shim's ctr tests share: the busybox image in a containerd of
//! the test's own, `ctr run --runtime SHIM`, and the check that nothing of
//! a container is left.

use super::containerd::*;

pub const IMAGE: &str = "localhost/vb-busybox:latest";
pub const SHIM: &str = env!("CARGO_BIN_EXE_containerd-shim-vbuild-v2");

/// A containerd (see oci/tests/common/containerd.rs) with busybox imported.
pub fn with_busybox(tag: &str) -> Containerd {
    let c = Containerd::start(tag);
    let archive = busybox_archive(c.path());
    c.import(&archive, "localhost/vb-busybox");
    c
}

/// `ctr run --runtime SHIM` with our FIFO dir, then `extra`.
pub fn run(c: &Containerd, extra: &[&str]) -> std::process::Output {
    let fifo = c.path().join("fifo").display().to_string();
    let mut a = vec!["run", "--runtime", SHIM, "--fifo-dir", &fifo];
    a.extend(extra);
    c.ctr(&a)
}

/// Nothing of container `id` is left: tasks, containers, bundles, mounts,
/// cgroups, shims.
pub fn assert_gone(c: &Containerd, id: &str) {
    assert_eq!(c.ok(&["task", "ls", "--quiet"]), "", "tasks left");
    assert_eq!(c.shims_after_exit(), Vec::<i32>::new(), "shims left");
    assert_eq!(c.bundles_left(), Vec::<String>::new(), "task bundles left");
    assert_eq!(c.mounts_below(), Vec::<String>::new(), "mounts left");
    let groups = cgroups_with(&format!("{}/{id}", c.ns));
    assert_eq!(groups, Vec::<std::path::PathBuf>::new(), "cgroups left");
    assert_eq!(c.ok(&["container", "ls", "--quiet"]), "", "containers left");
}
