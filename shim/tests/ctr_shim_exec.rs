//! containerd-shim-vbuild-v2's exec processes and freezer under the test's
//! own containerd 1.7, driven by `ctr task exec` and `ctr task
//! pause/resume`: output, exit codes, the TaskExit event naming the exec,
//! the pid namespace and cgroups, exec ids in use and reused, an exec in
//! a stopped task refused, PAUSED then RUNNING, and nothing left behind.
//! Needs root; run under `flock /tmp/vbuild-root-tests.lock`.

mod common;
use common::containerd::*;
use common::shim::*;
use std::process::{Command, Stdio};

/// The host pids of task `id` (`ctr task ps`).
fn task_pids(c: &Containerd, id: &str) -> Vec<i64> {
    let ps = c.ok(&["task", "ps", id]);
    ps.lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect()
}

fn link(pid: i64, what: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/{what}"))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|e| panic!("/proc/{pid}/{what}: {e}"))
}

fn cgroup(pid: i64) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap()
}

#[test]
fn ctr_task_exec_through_the_vbuild_shim() {
    if !preconditions() {
        return;
    }
    let c = with_busybox("shim-exec");
    let o = run(&c, &["-d", IMAGE, "x1", "sleep", "600"]);
    assert!(o.status.success(), "{}\n{}", text(&o), c.log());
    let init = c.ok(&["task", "ls"]);
    let init: i64 = init
        .lines()
        .find(|l| l.starts_with("x1 "))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or_else(|| panic!("no pid for x1 in {init}"));

    // containerd's events, to see the exec's TaskExit.
    let events_out = c.path().join("events.out");
    let mut events = Command::new(std::path::Path::new(CTRD_BIN).join("ctr"))
        .arg("--address")
        .arg(c.path().join("c.sock"))
        .args(["--namespace", &c.ns, "events"])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&events_out).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));

    let o = c.exec(
        "x1",
        "e1",
        &["sh", "-c", "echo out $$; echo err >&2; exit 7"],
    );
    assert_eq!(o.status.code(), Some(7), "{}\n{}", text(&o), c.log());
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let own: i64 = out
        .strip_prefix("out ")
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("exec stdout {out:?}"));
    assert!(
        own > 1,
        "the exec's pid in the container's namespace: {own}"
    );
    assert_eq!(String::from_utf8_lossy(&o.stderr), "err\n", "{}", text(&o));

    // ctr deleted e1 after its exit: the id can be used again.
    let o = c.exec(
        "x1",
        "e1",
        &["sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '"],
    );
    assert!(o.status.success(), "{}\n{}", text(&o), c.log());
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "sleep 600 ",
        "{}",
        text(&o)
    );

    // A detached exec: in the container's pid namespace and cgroups.
    let fifo = c.path().join("fifo").display().to_string();
    let d = [
        "task",
        "exec",
        "-d",
        "--fifo-dir",
        &fifo,
        "--exec-id",
        "e2",
        "x1",
    ];
    let o = c.ctr(&[&d[..], &["sleep", "600"]].concat());
    assert!(o.status.success(), "{}\n{}", text(&o), c.log());
    let pids = task_pids(&c, "x1");
    assert_eq!(pids.len(), 2, "ctr task ps x1: {pids:?}");
    let exec_pid = *pids.iter().find(|p| **p != init).expect("the exec's pid");
    assert_eq!(link(exec_pid, "ns/pid"), link(init, "ns/pid"));
    assert_eq!(link(exec_pid, "ns/mnt"), link(init, "ns/mnt"));
    assert_eq!(cgroup(exec_pid), cgroup(init));

    // e2 is in use (never deleted): refused, naming the id.
    let o = c.exec("x1", "e2", &["true"]);
    assert!(!o.status.success(), "a second e2 ran: {}", text(&o));
    let said = text(&o);
    assert!(
        said.contains("already exists") && said.contains("e2"),
        "{said}"
    );

    c.ok(&[
        "task",
        "kill",
        "--exec-id",
        "e2",
        "--signal",
        "SIGKILL",
        "x1",
    ]);
    for _ in 0..100 {
        if !alive(exec_pid) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(!alive(exec_pid), "exec e2 ({exec_pid}) survived SIGKILL");

    // The exec's TaskExit named it, with its status.
    std::thread::sleep(std::time::Duration::from_millis(300));
    // SAFETY: kill of our own child.
    unsafe { libc::kill(events.id() as i32, libc::SIGTERM) };
    let _ = events.wait();
    let ev = std::fs::read_to_string(&events_out).unwrap();
    assert!(
        ev.lines().any(|l| l.contains("/tasks/exit")
            && l.contains("\"container_id\":\"x1\"")
            && l.contains("\"id\":\"e1\"")
            && l.contains("\"exit_status\":7")),
        "no TaskExit for e1 with status 7 in:\n{ev}"
    );
    assert!(
        ev.lines()
            .any(|l| l.contains("/tasks/exec-started") && l.contains("\"exec_id\":\"e2\"")),
        "no TaskExecStarted for e2 in:\n{ev}"
    );

    // An exec in a stopped task is refused with the reason.
    c.ok(&["task", "kill", "--signal", "SIGKILL", "x1"]);
    c.wait_stopped("x1");
    let o = c.exec("x1", "e3", &["true"]);
    assert!(
        !o.status.success(),
        "exec ran in a stopped task: {}",
        text(&o)
    );
    let said = text(&o);
    assert!(
        said.contains("stopped") && said.contains("needs a running task"),
        "{said}"
    );
    c.ok(&["task", "rm", "x1"]);
    c.ok(&["container", "rm", "x1"]);
    assert_gone(&c, "x1");
}

#[test]
fn ctr_task_pause_and_resume_through_the_vbuild_shim() {
    if !preconditions() {
        return;
    }
    let c = with_busybox("shim-pause");
    let o = run(&c, &["-d", IMAGE, "p1", "sleep", "600"]);
    assert!(o.status.success(), "{}\n{}", text(&o), c.log());
    c.ok(&["task", "pause", "p1"]);
    assert_eq!(c.task_status("p1").as_deref(), Some("PAUSED"));
    let pid = task_pids(&c, "p1")[0];
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    // A frozen task sleeps in the freezer (state D or S, never R).
    assert!(!st.contains("State:\tR"), "{st}");
    let o = c.exec("p1", "e1", &["true"]);
    assert!(
        !o.status.success(),
        "exec ran in a paused task: {}",
        text(&o)
    );
    let o = c.ctr(&["task", "pause", "p1"]);
    assert!(!o.status.success(), "paused twice: {}", text(&o));
    c.ok(&["task", "resume", "p1"]);
    assert_eq!(c.task_status("p1").as_deref(), Some("RUNNING"));
    let o = c.exec("p1", "e1", &["sh", "-c", "echo resumed"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "resumed\n",
        "{}",
        text(&o)
    );
    c.ok(&["task", "kill", "--signal", "SIGKILL", "p1"]);
    c.wait_stopped("p1");
    c.ok(&["task", "rm", "p1"]);
    c.ok(&["container", "rm", "p1"]);
    assert_gone(&c, "p1");
}
