//! Limits enforced by this host's kernel (root): memory (OOM kill inside
//! the group only), pids (a fork bomb stops at the limit) and CPU bandwidth
//! (half a core). Processes are busybox shells we spawn into test groups
//! named `vbuild-test-<pid>-l<n>`, removed by a Drop guard.

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use vbuild_kernel::cgroup::{Cgroup, Hierarchy, MemoryLimit};

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

struct Guard {
    cg: Cgroup,
    children: Vec<Child>,
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

fn group() -> Guard {
    let h = Hierarchy::detect().unwrap();
    let rel = format!(
        "vbuild-test-{}-l{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    );
    Guard {
        cg: Cgroup::create(&h, &rel).unwrap(),
        children: Vec::new(),
    }
}

/// Starts `script` in busybox sh inside the guard's group (attached before
/// it runs anything) and returns its index in `g.children`.
fn start_in(g: &mut Guard, script: &str) -> usize {
    let mut c = Command::new("busybox")
        .args(["sh", "-c", &format!("read _go; {script}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("busybox");
    g.cg.attach(c.id() as i32).unwrap();
    c.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    g.children.push(c);
    g.children.len() - 1
}

#[test]
fn memory_hog_is_oom_killed_inside_the_group_only() {
    if !is_root() {
        return;
    }
    let mut g = group();
    g.cg.set_memory(&MemoryLimit {
        max: Some(64 << 20),
        swap: Some(0),
    })
    .or_else(|_| {
        g.cg.set_memory(&MemoryLimit {
            max: Some(64 << 20),
            swap: None,
        })
    })
    .unwrap();
    // dd's 256M buffer is touched as it copies: far over 64M.
    let i = start_in(
        &mut g,
        "exec busybox dd if=/dev/zero of=/dev/null bs=256M count=4",
    );
    let status = g.children[i].wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    let u = g.cg.usage().unwrap();
    assert!(u.memory_peak.unwrap() <= 64 << 20, "{u:?}");
    // The host side (this test process) lives on and can still allocate.
    let v = vec![1u8; 128 << 20];
    assert_eq!(v[v.len() - 1], 1);
}

#[test]
fn fork_bomb_stops_at_pids_max() {
    if !is_root() {
        return;
    }
    let mut g = group();
    g.cg.set_pids_max(Some(16)).unwrap();
    // The shell forks until fork fails, then exits; its sleeps remain.
    let i = start_in(&mut g, "while :; do busybox sleep 1000 & done");
    let status = g.children[i].wait().unwrap();
    assert!(!status.success());
    assert_eq!(g.cg.pids().unwrap().len(), 15);
    assert_eq!(g.cg.usage().unwrap().pids, Some(15));
    // Outside the group, forking is unaffected.
    assert!(Command::new("busybox")
        .arg("true")
        .status()
        .unwrap()
        .success());
    g.cg.kill_all().unwrap();
    assert!(g.cg.pids().unwrap().is_empty());
}

#[test]
fn half_a_cpu_gets_about_half_a_core() {
    if !is_root() {
        return;
    }
    let mut g = group();
    g.cg.set_cpus(Some(0.5)).unwrap();
    // Two spinners: unthrottled they would take both cores of this machine.
    start_in(&mut g, "while :; do :; done & while :; do :; done");
    std::thread::sleep(Duration::from_millis(300));
    let cpu0 = g.cg.usage().unwrap().cpu.unwrap();
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let cpu1 = g.cg.usage().unwrap().cpu.unwrap();
    let wall = t0.elapsed();
    let share = (cpu1 - cpu0).as_secs_f64() / wall.as_secs_f64();
    eprintln!("0.5 CPU limit: measured {share:.3} cores");
    // Wide tolerance: the machine is shared, other work can steal time.
    assert!(share < 0.7, "throttle not enforced: {share:.3} cores");
    assert!(share > 0.2, "far below the limit: {share:.3} cores");
}
