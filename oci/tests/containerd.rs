//! vbuild-runc under containerd 1.7 (trixie's, unpacked by
//! scripts/host-deps.sh) and its runc shim (containerd-shim-runc-v2), driven
//! by `ctr --runc-binary`: a busybox OCI archive made here is imported;
//! `run --rm` (output, exit codes, the default seccomp profile), a detached
//! run with `task exec`, `task kill`, `task rm` and `container rm`, and
//! nothing left behind (vbuild-runc's state dirs, task bundles, mounts,
//! cgroups, processes and shims). containerd is the test's own (see
//! common/containerd.rs). Needs root; run under
//! `flock /tmp/vbuild-root-tests.lock`.

mod common;
use common::containerd::*;

const IMAGE: &str = "localhost/vb-busybox:latest";

fn with_busybox(tag: &str) -> Containerd {
    let c = Containerd::start(tag);
    let archive = busybox_archive(c.path());
    c.import(&archive, "localhost/vb-busybox");
    assert!(
        c.ok(&["image", "ls", "--quiet"])
            .lines()
            .any(|l| l == IMAGE),
        "the imported image is listed"
    );
    c
}

/// Nothing of container `id` is left: state dir, bundle, mounts, cgroups.
fn assert_gone(c: &Containerd, id: &str) {
    assert_eq!(c.state_left(), Vec::<String>::new(), "state dirs left");
    assert_eq!(c.bundles_left(), Vec::<String>::new(), "task bundles left");
    assert_eq!(c.mounts_below(), Vec::<String>::new(), "mounts left");
    let groups = cgroups_with(&format!("{}/{id}", c.ns));
    assert_eq!(groups, Vec::<std::path::PathBuf>::new(), "cgroups left");
    assert_eq!(c.shims_after_exit(), Vec::<i32>::new(), "shims left");
    assert_eq!(c.ok(&["container", "ls", "--quiet"]), "", "containers left");
}

#[test]
fn ctr_runs_busybox_through_vbuild_runc() {
    if !preconditions() {
        return;
    }
    let c = with_busybox("run");
    let script = format!(
        "echo hi; echo $$; grep -E '^(Seccomp|NoNewPrivs|CapEff):' /proc/self/status; \
         cat /proc/self/cgroup | grep -c ':/{}/r1$'",
        c.ns
    );
    let script = script.as_str();
    let o = c.run(&["--rm", IMAGE, "r1", "sh", "-c", script]);
    assert!(o.status.success(), "{}", text(&o));
    // The program is the container's pid 1; ctr's default spec asks for
    // no_new_privs, no seccomp filter and Docker's default capabilities,
    // as runc gives them; the cgroups are at the spec's place (the
    // absolute cgroupsPath /NAMESPACE/ID at every hierarchy's root, cpuset
    // too).
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "hi\n1\nCapEff:\t00000000a80425fb\nNoNewPrivs:\t1\nSeccomp:\t0\n10\n",
        "{}",
        text(&o)
    );
    assert_gone(&c, "r1");
    // vbuild-runc made the /NAMESPACE parent for r1, so delete removed it.
    assert_eq!(
        cgroups_with(&format!("/{}", c.ns)),
        Vec::<std::path::PathBuf>::new(),
        "the namespace's parent cgroup is left"
    );
    let r = c.run_with_runc(&["--rm", IMAGE, "ref1", "sh", "-c", script]);
    assert_eq!(
        String::from_utf8_lossy(&r.stdout)
            .lines()
            .take(5)
            .collect::<Vec<_>>(),
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .take(5)
            .collect::<Vec<_>>(),
        "runc's view of the same container: {}",
        text(&r)
    );
    // The exit code passes through the shim.
    let o = c.run(&["--rm", IMAGE, "r2", "sh", "-c", "exit 7"]);
    assert_eq!(o.status.code(), Some(7), "{}", text(&o));
    assert_gone(&c, "r2");
    // `--seccomp`: containerd's default profile, compiled by vbuild-runc.
    let o = c.run(&[
        "--rm",
        "--seccomp",
        IMAGE,
        "r3",
        "grep",
        "-E",
        "^Seccomp:",
        "/proc/self/status",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "Seccomp:\t2\n",
        "{}",
        text(&o)
    );
    assert_gone(&c, "r3");
    // A command that is not there: ctr fails, naming it, and leaves nothing.
    let o = c.run(&["--rm", IMAGE, "r4", "/bin/nonexistent"]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("/bin/nonexistent"),
        "{}",
        text(&o)
    );
    let _ = c.ctr(&["container", "rm", "r4"]);
    assert_gone(&c, "r4");
}

#[test]
fn ctr_detached_run_exec_kill_and_rm() {
    if !preconditions() {
        return;
    }
    let c = with_busybox("det");
    let id = "d1";
    c.ok(&c
        .run_args(&[
            "--detach",
            IMAGE,
            id,
            "sh",
            "-c",
            "trap 'exit 0' TERM; while :; do sleep 1; done",
        ])
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>());
    assert_eq!(c.task_status(id).as_deref(), Some("RUNNING"));
    // vbuild-runc is the runtime: its state root holds the container.
    let state = c.runtime_state(id);
    assert_eq!(state["status"], "running", "{state}");
    let pid = state["pid"].as_i64().expect("pid in state");
    assert!(alive(pid));
    assert_eq!(c.state_left(), vec![id.to_string()]);

    // exec joins the container: pid 1 is the trap loop; the exit code
    // passes through.
    let o = c.exec(
        id,
        "e1",
        &[
            "sh",
            "-c",
            "cat /proc/1/cmdline | tr '\\0' ' '; echo; exit 4",
        ],
    );
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "sh -c trap 'exit 0' TERM; while :; do sleep 1; done \n",
        "{}",
        text(&o)
    );
    let o = c.exec(id, "e2", &["id"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "uid=0 gid=0 groups=0\n",
        "{}",
        text(&o)
    );
    let ps = c.ok(&["task", "ps", id]);
    assert!(ps.lines().any(|l| l.starts_with(&pid.to_string())), "{ps}");

    // kill (SIGTERM): the trap ends the task with 0.
    c.ok(&["task", "kill", id]);
    c.wait_stopped(id);
    assert!(!alive(pid), "the task's process is gone");
    assert_eq!(c.runtime_state(id)["status"], "stopped");
    c.ok(&["task", "rm", id]);
    c.ok(&["container", "rm", id]);
    assert_gone(&c, id);

    // A second one, ended with SIGKILL (a status, not a trap).
    c.ok(&c
        .run_args(&["--detach", IMAGE, "d2", "sleep", "600"])
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>());
    let pid = c.runtime_state("d2")["pid"].as_i64().unwrap();
    c.ok(&["task", "kill", "--signal", "SIGKILL", "d2"]);
    c.wait_stopped("d2");
    assert!(!alive(pid));
    c.ok(&["task", "rm", "d2"]);
    c.ok(&["container", "rm", "d2"]);
    assert_gone(&c, "d2");
    assert_eq!(
        cgroups_with(&format!("/{}", c.ns)),
        Vec::<std::path::PathBuf>::new(),
        "the namespace's parent cgroup is left"
    );
}
