//! containerd-shim-vbuild-v2 under containerd 1.7 (the test's own, see
//! oci/tests/common/containerd.rs), driven by `ctr run --runtime PATH`:
//! a foreground run's output and exit code, a detached run killed and
//! removed, and nothing left behind (shims, mounts, cgroups, tasks).
//! Needs root; run under `flock /tmp/vbuild-root-tests.lock`.

mod common;
use common::containerd::*;
use common::shim::*;

#[test]
fn ctr_run_rm_through_the_vbuild_shim() {
    if !preconditions() {
        return;
    }
    let c = with_busybox("shim-run");
    let o = run(
        &c,
        &[
            "--rm",
            IMAGE,
            "s1",
            "sh",
            "-c",
            "echo hi from $$; echo err >&2; exit 3",
        ],
    );
    assert_eq!(o.status.code(), Some(3), "{}\n{}", text(&o), c.log());
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "hi from 1\n",
        "{}",
        text(&o)
    );
    assert_eq!(String::from_utf8_lossy(&o.stderr), "err\n", "{}", text(&o));
    assert_gone(&c, "s1");
}

#[test]
fn ctr_detached_run_kill_and_rm_through_the_vbuild_shim() {
    if !preconditions() {
        return;
    }
    let c = with_busybox("shim-detach");
    let o = run(&c, &["-d", IMAGE, "s2", "sleep", "600"]);
    assert!(o.status.success(), "{}\n{}", text(&o), c.log());
    let ls = c.ok(&["task", "ls"]);
    assert!(
        ls.lines()
            .any(|l| l.starts_with("s2 ") && l.contains("RUNNING")),
        "task ls: {ls}"
    );
    c.ok(&["task", "kill", "--signal", "SIGKILL", "s2"]);
    c.wait_stopped("s2");
    c.ok(&["task", "rm", "s2"]);
    c.ok(&["container", "rm", "s2"]);
    assert_gone(&c, "s2");
}
