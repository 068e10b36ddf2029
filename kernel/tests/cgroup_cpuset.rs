//! On this host's real cgroups (root): a new nested group gets usable
//! cpus/mems (v1 copies them down from the parent), `set_cpuset` confines
//! a process in the group to the cpus named, and removal leaves nothing.

use std::process::Command;
use vbuild_kernel::cgroup::{Cgroup, Hierarchy};

fn is_root() -> bool {
    vbuild_testsupport::require(
        nix::unistd::geteuid().is_root(),
        "root (run the tests as root: sudo ./test.sh)",
    )
}

fn allowed_cpus(pid: u32) -> String {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn a_process_in_the_group_runs_only_on_the_cpus_set() {
    if !is_root() {
        return;
    }
    let h = Hierarchy::detect().unwrap();
    let top = format!("vbuild-test-cpuset-{}", std::process::id());
    let cg = Cgroup::create(&h, &format!("{top}/inner")).unwrap();
    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    let attached = cg.attach(child.id() as i32);
    let set = cg.set_cpuset(Some("0"), Some("0"));
    let cpus = allowed_cpus(child.id());
    let _ = child.kill();
    let _ = child.wait();
    let removed = Cgroup::open(&h, &top).unwrap().unwrap().remove();
    attached.expect("a new nested cpuset group takes a task");
    set.expect("set_cpuset");
    assert_eq!(cpus, "0", "the process runs only on cpu 0");
    removed.unwrap();
    assert!(
        Cgroup::open(&h, &top).unwrap().is_none(),
        "group left behind"
    );
}
