//! On this host's real cgroups (root): create a group in every hierarchy,
//! attach processes, see them (recursively through sub-groups), kill them
//! all, remove the group. Groups are named `vbuild-test-<pid>-<n>` at the
//! hierarchy roots and removed by a Drop guard even when an assertion fails.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use vbuild_kernel::cgroup::{Cgroup, Hierarchy};

fn is_root() -> bool {
    vbuild_testsupport::require(
        nix::unistd::geteuid().is_root(),
        "root (run the tests as root: sudo ./test.sh)",
    )
}

static N: AtomicU32 = AtomicU32::new(0);

/// A test group plus the processes the test spawned; both cleaned up on drop.
struct Guard {
    cg: Cgroup,
    children: Vec<Child>,
}

impl Guard {
    fn new(h: &Hierarchy) -> Guard {
        let rel = format!(
            "vbuild-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        Guard {
            cg: Cgroup::create(h, &rel).unwrap(),
            children: Vec::new(),
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.cg.kill_all();
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = self.cg.remove();
    }
}

/// Starts `busybox sh -c script` blocked on stdin, so it can be attached to
/// a group before it runs; `go` releases it.
fn held_shell(script: &str) -> Child {
    Command::new("busybox")
        .args(["sh", "-c", &format!("read _go; {script}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("busybox (apt install busybox-static)")
}

fn go(c: &mut Child) {
    c.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn create_attach_kill_all_remove_on_this_host() {
    if !is_root() {
        return;
    }
    let h = Hierarchy::detect().unwrap();
    let mut g = Guard::new(&h);
    let rel = g.cg.rel().to_string();
    let mut sh = held_shell("busybox sleep 1000 & busybox sleep 1000 & wait");
    let sh_pid = sh.id() as i32;
    g.cg.attach(sh_pid).unwrap();
    go(&mut sh);
    g.children.push(sh);
    wait_for("three processes", || g.cg.pids().unwrap().len() == 3);
    assert!(g.cg.pids().unwrap().contains(&sh_pid));

    // Every hierarchy holds the processes, including the unified mount.
    if let Some(u) = g.cg.unified_dir() {
        let procs = std::fs::read_to_string(u.join("cgroup.procs")).unwrap();
        assert!(procs.lines().any(|l| l == sh_pid.to_string()), "{procs}");
    }
    let self_cg = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    assert!(!self_cg.contains(&rel), "the test itself must stay out");

    let opened = Cgroup::open(&h, &rel).unwrap().expect("group exists");
    opened.kill_all().unwrap();
    assert_eq!(opened.pids().unwrap(), Vec::<i32>::new());
    let status = g.children[0].wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL));

    opened.remove().unwrap();
    assert!(Cgroup::open(&h, &rel).unwrap().is_none());
    for d in ["memory", "pids", "freezer", "unified"] {
        assert!(!h.root().join(d).join(&rel).exists(), "{d} left behind");
    }
    // Removing again is fine.
    opened.remove().unwrap();
}

#[test]
fn kill_all_reaches_processes_in_sub_groups() {
    if !is_root() {
        return;
    }
    let h = Hierarchy::detect().unwrap();
    let Some(_) = Cgroup::create(&h, "vbuild-probe-unused")
        .ok()
        .and_then(|c| {
            let u = c.unified_dir();
            let _ = c.remove();
            u
        })
    else {
        vbuild_testsupport::require(false, "a cgroup2 mount (unified hierarchy) on this host");
        return;
    };
    let mut g = Guard::new(&h);
    let unified = g.cg.unified_dir().unwrap();
    // What a guest's systemd does: a sub-group of its own in cgroup2.
    let sub = unified.join("init.scope");
    std::fs::create_dir(&sub).unwrap();
    let mut sh = held_shell("busybox sleep 1000 & wait");
    let pid = sh.id() as i32;
    g.cg.attach(pid).unwrap();
    std::fs::write(sub.join("cgroup.procs"), pid.to_string()).unwrap();
    go(&mut sh);
    g.children.push(sh);
    wait_for("sleep in the sub-group", || {
        std::fs::read_to_string(sub.join("cgroup.procs"))
            .unwrap()
            .lines()
            .count()
            == 2
    });
    assert_eq!(g.cg.pids().unwrap().len(), 2);
    g.cg.kill_all().unwrap();
    assert!(g.cg.pids().unwrap().is_empty());
    g.children[0].wait().unwrap();
    g.cg.remove().unwrap();
    assert!(!sub.exists() && !unified.exists());
}

#[test]
fn remove_of_a_busy_group_names_it() {
    if !is_root() {
        return;
    }
    let h = Hierarchy::detect().unwrap();
    let mut g = Guard::new(&h);
    let mut sh = held_shell("busybox sleep 1000");
    g.cg.attach(sh.id() as i32).unwrap();
    go(&mut sh);
    g.children.push(sh);
    let e = g.cg.remove().unwrap_err().to_string();
    assert!(e.contains(g.cg.rel()), "{e}");
}

#[test]
fn removing_the_last_guest_group_removes_the_shared_parent() {
    if !is_root() {
        return;
    }
    let h = Hierarchy::detect().unwrap();
    let parent = format!("vbuild-test-parent-{}", std::process::id());
    let a = Cgroup::create(&h, &format!("{parent}/a")).unwrap();
    let b = Cgroup::create(&h, &format!("{parent}/b")).unwrap();
    let dirs = |rel: &str| -> Vec<std::path::PathBuf> {
        ["memory", "pids", "unified"]
            .iter()
            .map(|d| h.root().join(d).join(rel))
            .filter(|p| p.parent().is_some_and(|p| p.is_dir()))
            .collect()
    };
    // A sibling still lives there: the parent stays.
    a.remove().unwrap();
    for d in dirs(&parent) {
        assert!(d.is_dir(), "{} removed while b uses it", d.display());
    }
    // The last one goes: so does the parent, in every hierarchy.
    b.remove().unwrap();
    for d in dirs(&parent) {
        assert!(!d.exists(), "{} left behind", d.display());
    }
    // And it can be made again at once.
    let c = Cgroup::create(&h, &format!("{parent}/c")).unwrap();
    assert!(Cgroup::open(&h, &format!("{parent}/c")).unwrap().is_some());
    c.remove().unwrap();
}
