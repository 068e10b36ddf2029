//! vbuild-runc under a real client: Debian's podman (4.3, with conmon)
//! runs a locally imported busybox image through it with podman's default
//! seccomp profile; `run --rm`, exit codes, `run -d` + `exec` + `stop` +
//! `rm`, and nothing left behind (state dirs, cgroups, mounts). Podman
//! keys `--log-format json` on the runtime's name, so vbuild-runc is
//! exposed as a symlink named `runc`. Everything podman keeps (storage,
//! run root, libpod tmp dir, events, the runtime's state root, containers
//! and storage configs) lives in one temporary directory; the network is
//! `none` so the host's interfaces and firewall are not touched. Needs
//! root; run under `flock /tmp/vbuild-root-tests.lock`.

mod common;
use common::podman::*;
use std::path::PathBuf;
use std::process::Command;

#[test]
fn podman_runs_busybox_through_vbuild_runc_with_its_default_seccomp_profile() {
    if !preconditions() {
        return;
    }
    let p = Podman::with_busybox("run");
    // `run --rm`: output and a clean exit, under podman's default seccomp
    // profile (no seccomp=unconfined): the filter is in place.
    let o = p.run(&[
        "--rm",
        IMAGE,
        "sh",
        "-c",
        "echo hi; grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; ulimit -n; ulimit -Hu",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "hi\nNoNewPrivs:\t0\nSeccomp:\t2\n1000\n4096\n",
        "{}",
        text(&o)
    );
    let o = p.run(&["--rm", IMAGE, "busybox", "echo", "hi"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "hi\n", "{}", text(&o));
    // The exit code passes through.
    let o = p.run(&["--rm", IMAGE, "sh", "-c", "exit 7"]);
    assert_eq!(o.status.code(), Some(7), "{}", text(&o));
    // no-new-privileges is honoured with the same profile.
    let o = p.run(&[
        "--rm",
        "--security-opt",
        "no-new-privileges",
        IMAGE,
        "grep",
        "-E",
        "^(Seccomp|NoNewPrivs):",
        "/proc/self/status",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "NoNewPrivs:\t1\nSeccomp:\t2\n",
        "{}",
        text(&o)
    );
    assert_eq!(
        p.ok(&["ps", "--all", "--quiet"]),
        "",
        "run --rm left containers"
    );
    assert_eq!(p.state_left(), Vec::<String>::new(), "state dirs left");
    let groups: Vec<PathBuf> = Podman::cgroups_with(&p.cgroup_parent)
        .into_iter()
        .filter(|g| g.to_string_lossy().contains("libpod-"))
        .collect();
    assert_eq!(groups, Vec::<PathBuf>::new(), "container cgroups left");
    assert_eq!(p.mounts_below(), Vec::<String>::new(), "mounts left");
}

#[test]
fn podman_run_detached_exec_stop_and_rm() {
    if !preconditions() {
        return;
    }
    let p = Podman::with_busybox("det");
    let name = format!("o14p-det-{}", std::process::id());
    let args = p.run_args(&[
        "-d",
        "--name",
        &name,
        IMAGE,
        "sh",
        "-c",
        "trap 'exit 0' TERM; while :; do sleep 1; done",
    ]);
    let id = p.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let id = id.trim().to_string();
    assert_eq!(id.len(), 64, "{id}");
    let state: serde_json::Value = serde_json::from_str(&{
        let o = Command::new(BIN)
            .arg("--root")
            .arg(p.state_root())
            .args(["state", &id])
            .output()
            .unwrap();
        String::from_utf8(o.stdout).unwrap()
    })
    .unwrap();
    assert_eq!(state["status"], "running", "{state}");
    let ps = p.ok(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.starts_with(&format!("{name} Up")), "{ps}");

    // exec: joins the container (its pid namespace: pid 1 is the shell),
    // takes the process's environment and cwd, exit codes pass through.
    let o = p.podman(&[
        "exec",
        "--env",
        "O14=yes",
        "--workdir",
        "/tmp",
        &name,
        "sh",
        "-c",
        "echo \"$O14 $(pwd) $(cat /proc/1/cmdline | tr '\\0' ' ')\"; grep Seccomp: /proc/self/status",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "yes /tmp sh -c trap 'exit 0' TERM; while :; do sleep 1; done \nSeccomp:\t2\n",
        "{}",
        text(&o)
    );
    let o = p.podman(&["exec", &name, "sh", "-c", "exit 5"]);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    let o = p.podman(&["exec", "--user", "1000:1000", &name, "id"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "uid=1000 gid=1000\n",
        "{}",
        text(&o)
    );

    p.ok(&["stop", "--time", "5", &name]);
    let st = p.ok(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.ExitCode}}",
        &name,
    ]);
    assert_eq!(st.trim(), "exited 0", "the TERM trap ended it");
    p.ok(&["rm", &name]);
    assert_eq!(p.ok(&["ps", "--all", "--quiet"]), "");
    assert_eq!(p.state_left(), Vec::<String>::new(), "state dirs left");
    let groups: Vec<PathBuf> = Podman::cgroups_with(&id);
    assert_eq!(groups, Vec::<PathBuf>::new(), "container cgroups left");
    assert_eq!(p.mounts_below(), Vec::<String>::new(), "mounts left");
}

#[test]
fn podman_run_and_exec_with_a_terminal() {
    if !preconditions() {
        return;
    }
    let p = Podman::with_busybox("tty");
    // `run -t`: the pty master reached conmon over --console-socket; the
    // program's stdio is the terminal, its controlling one.
    let o = p.run(&[
        "--rm",
        "-t",
        IMAGE,
        "sh",
        "-c",
        "[ -t 0 ] && [ -t 1 ] && echo tty && busybox tty; exit 4",
    ]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    // A pty of the container's own devpts: ttyname finds it there.
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "tty\r\n/dev/pts/0\r\n",
        "{}",
        text(&o)
    );
    let name = format!("o14p-tty-{}", std::process::id());
    let args = p.run_args(&["-d", "--name", &name, IMAGE, "sleep", "600"]);
    p.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let o = p.podman(&[
        "exec",
        "-t",
        &name,
        "sh",
        "-c",
        "[ -t 0 ] && [ -t 1 ] && echo tty; exit 6",
    ]);
    assert_eq!(o.status.code(), Some(6), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "tty\r\n",
        "{}",
        text(&o)
    );
    p.ok(&["rm", "--force", "--time", "0", &name]);
    assert_eq!(p.ok(&["ps", "--all", "--quiet"]), "");
    assert_eq!(p.state_left(), Vec::<String>::new(), "state dirs left");
    assert_eq!(p.mounts_below(), Vec::<String>::new(), "mounts left");
}
