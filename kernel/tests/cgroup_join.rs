//! On this host's real cgroups (root): a child forked with a group's
//! `Joiner` is in that group in every hierarchy (cgroup2 through clone3's
//! CLONE_INTO_CGROUP, v1 through its own write to `tasks`), keeps none of
//! the joiner's descriptors, and the group is removed afterwards.

use vbuild_kernel::cgroup::{Cgroup, Hierarchy};
use vbuild_kernel::process::{self, Forked};

fn is_root() -> bool {
    vbuild_testsupport::require(
        nix::unistd::geteuid().is_root(),
        "root (run the tests as root: sudo ./test.sh)",
    )
}

#[test]
fn a_child_forked_with_the_joiner_starts_in_the_group_everywhere() {
    if !is_root() {
        return;
    }
    let h = Hierarchy::detect().unwrap();
    let rel = format!("vbuild-test-join-{}", std::process::id());
    let cg = Cgroup::create(&h, &rel).unwrap();
    let joiner = cg.joiner().unwrap();
    let held: Vec<i32> = joiner.fds().collect();
    let (r, w) = nix::unistd::pipe().unwrap();
    use std::os::fd::AsRawFd;
    let (rfd, wfd) = (r.as_raw_fd(), w.as_raw_fd());
    // SAFETY: the child only makes system calls and exits.
    let pid = match unsafe { process::fork_into_cgroup(0, joiner.unified_fd()) }.unwrap() {
        Forked::Child => {
            let code = match joiner.join_in_child() {
                Ok(()) => 0,
                Err(e) => e as i32,
            };
            // Still open here would mean a descriptor leaked into the child.
            let mut open = 0;
            for fd in &held {
                // SAFETY: fcntl on an integer.
                if unsafe { libc::fcntl(*fd, libc::F_GETFD) } >= 0 {
                    open += 1;
                }
            }
            let mut b = [0u8; 1];
            // SAFETY: close our write end, then wait for the parent's end.
            unsafe {
                libc::close(wfd);
                libc::read(rfd, b.as_mut_ptr().cast(), 1);
            }
            process::exit_now(if code != 0 { code } else { 100 + open });
        }
        Forked::Parent(pid) => pid,
    };
    drop(r);
    // The child blocks on the pipe once it joined (or failed) until we
    // close our write end: read its groups while it is still alive.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let groups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    drop(w);
    let code = process::wait_exit_code(pid).unwrap();
    let removed = cg.remove();
    assert_eq!(
        code, 100,
        "join failed (errno) or descriptors left open in the child"
    );
    let lines: Vec<&str> = groups.lines().collect();
    assert!(!lines.is_empty());
    for l in &lines {
        let path = l.splitn(3, ':').nth(2).unwrap();
        assert_eq!(path, format!("/{rel}"), "hierarchy not joined: {l}");
    }
    removed.unwrap();
    assert!(
        Cgroup::open(&h, &rel).unwrap().is_none(),
        "group left behind"
    );
}
