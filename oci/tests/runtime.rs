//! vbuild-runc driven through its command line as containerd and podman
//! drive runc: a static-busybox bundle is created, started, inspected,
//! signalled and deleted, with and without a user namespace, with limits;
//! bad configs fail with one clear error and leave nothing behind. Needs
//! root (namespaces, cgroups, mounts); run under
//! `flock /tmp/vbuild-root-tests.lock`.

mod common;
use common::bundle::{output_in_files, root_or_skip, unique, user_namespace, Bundle, BIN};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A change to a test config.
type Edit = Box<dyn Fn(&mut Value)>;

/// The group's directory holding `file` (v1 controller dir or v2 group).
fn cgroup_file(id: &str, controller: &str, file: &str) -> PathBuf {
    let v1 = Path::new("/sys/fs/cgroup")
        .join(controller)
        .join("vbuild/oci")
        .join(id)
        .join(file);
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        Path::new("/sys/fs/cgroup/vbuild/oci").join(id).join(file)
    } else {
        v1
    }
}

fn group_exists_anywhere(id: &str) -> bool {
    std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .any(|h| h.path().join("vbuild/oci").join(id).exists())
        || Path::new("/sys/fs/cgroup/vbuild/oci").join(id).exists()
}

#[test]
fn create_start_state_kill_delete_round_trip() {
    if !root_or_skip() {
        return;
    }
    let mut b = Bundle::new();
    b.config(
        "echo \"$(hostname) $(id -u):$(id -g) $(pwd) $O14\" > /out/who; \
         grep -E '^(CapEff|NoNewPrivs)' /proc/self/status > /out/status; \
         cat /proc/self/limits | grep 'open files' > /out/limits; \
         touch /rootfs-write 2>/out/ro-err && echo wrote > /out/ro-err; \
         echo $$ > /out/pid; trap 'echo term > /out/term; exit 3' TERM; \
         while :; do sleep 1; done",
        |_| {},
    );
    let id = unique("rt");
    let pid = b.create(&id);
    let s = b.state(&id);
    assert_eq!(s["status"], "created");
    assert_eq!(s["id"], id.as_str());
    assert_eq!(s["pid"].to_string(), pid.trim());
    assert_eq!(s["bundle"], b.path().to_str().unwrap());
    assert_eq!(b.out("who"), "", "the program must not run before start");
    let list = b.ok(&["list", "--format", "json"]);
    let list: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["status"], "created");
    // start is refused twice, and only a created container starts.
    b.ok(&["start", &id]);
    let e = b.fails(&["start", &id]);
    assert!(e.contains("only a created container can be started"), "{e}");
    assert_eq!(b.state(&id)["status"], "running");
    let until = Instant::now() + Duration::from_secs(20);
    while b.out("pid").is_empty() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(b.out("who"), "o14box 0:0 /out yes\n");
    assert_eq!(
        b.out("pid"),
        "1\n",
        "the program is PID 1 of its pid namespace"
    );
    assert_eq!(
        b.out("status"),
        "CapEff:\t0000000020000420\nNoNewPrivs:\t1\n"
    );
    assert!(b.out("limits").contains(" 512 "), "{}", b.out("limits"));
    assert!(
        b.out("ro-err").contains("Read-only file system"),
        "{}",
        b.out("ro-err")
    );
    // A running container is not deleted without --force.
    let e = b.fails(&["delete", &id]);
    assert!(e.contains("is running") && e.contains("--force"), "{e}");
    b.ok(&["kill", &id, "TERM"]);
    let s = b.wait_status(&id, "stopped");
    assert_eq!(s["status"], "stopped");
    assert_eq!(s["pid"], 0);
    assert_eq!(b.out("term"), "term\n");
    b.ok(&["delete", &id]);
    assert!(!b.state_root().join(&id).exists(), "state dir left behind");
    assert!(!group_exists_anywhere(&id), "cgroup left behind");
    let e = b.fails(&["state", &id]);
    assert!(e.contains(&format!("container {id} does not exist")), "{e}");
}

#[test]
fn a_user_namespace_bundle_maps_root_to_its_host_range() {
    if !root_or_skip() {
        return;
    }
    let mut b = Bundle::new();
    b.config(
        "cat /proc/self/uid_map > /out/map; id -u > /out/uid; sleep 60",
        |c| {
            user_namespace(c);
        },
    );
    let id = unique("userns");
    let pid = b.create(&id);
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid.trim())).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert_eq!(uid_line, "Uid:\t231072\t231072\t231072\t231072");
    b.ok(&["start", &id]);
    let until = Instant::now() + Duration::from_secs(20);
    while b.out("uid").is_empty() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    let map: Vec<String> = b.out("map").split_whitespace().map(String::from).collect();
    assert_eq!(map, ["0", "231072", "65536"]);
    assert_eq!(b.out("uid"), "0\n");
    b.ok(&["delete", "--force", &id]);
    assert!(!b.state_root().join(&id).exists());
    assert!(!group_exists_anywhere(&id));
}

#[test]
fn resources_land_in_the_cgroup_and_update_changes_them() {
    if !root_or_skip() {
        return;
    }
    let mut b = Bundle::new();
    b.config("sleep 60", |c| {
        c["linux"]["resources"] = json!({
            "memory": {"limit": 67108864},
            "pids": {"limit": 42},
            "cpu": {"quota": 50000, "period": 100000, "shares": 512}
        });
    });
    let id = unique("limits");
    let pid = b.create(&id);
    let read = |c: &str, f: &str| {
        std::fs::read_to_string(cgroup_file(&id, c, f))
            .unwrap()
            .trim()
            .to_string()
    };
    let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    if v2 {
        assert_eq!(read("", "memory.max"), "67108864");
        assert_eq!(read("", "pids.max"), "42");
        assert_eq!(read("", "cpu.max"), "50000 100000");
        assert_eq!(read("", "cpu.weight"), "20", "shares 512 as a v2 weight");
    } else {
        assert_eq!(read("memory", "memory.limit_in_bytes"), "67108864");
        assert_eq!(read("pids", "pids.max"), "42");
        assert_eq!(read("cpu", "cpu.cfs_quota_us"), "50000");
        assert_eq!(read("cpu", "cpu.shares"), "512");
        let procs = read("memory", "cgroup.procs");
        assert_eq!(procs, pid.trim(), "the container's process is in its group");
    }
    let upd = b.path().join("res.json");
    std::fs::write(&upd, r#"{"pids": {"limit": 99}, "cpu": {"shares": 2048}}"#).unwrap();
    b.ok(&["update", "--resources", upd.to_str().unwrap(), &id]);
    assert_eq!(read(if v2 { "" } else { "pids" }, "pids.max"), "99");
    // What update does not name stays (the quota).
    if v2 {
        assert_eq!(read("", "cpu.weight"), "79");
        assert_eq!(read("", "cpu.max"), "50000 100000");
    } else {
        assert_eq!(read("cpu", "cpu.shares"), "2048");
        assert_eq!(read("cpu", "cpu.cfs_quota_us"), "50000");
    }
    b.ok(&["delete", &id]);
    assert!(!group_exists_anywhere(&id), "cgroup left behind");
    assert!(!b.state_root().join(&id).exists());
}

#[test]
fn what_cannot_be_honoured_is_one_clear_error_and_leaves_nothing() {
    if !root_or_skip() {
        return;
    }
    let b = Bundle::new();
    let bundle = b.path().to_str().unwrap().to_string();
    let log = b.path().join("log.json");
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|c| c["linux"]["intelRdt"] = json!({"closID": "x"})),
            "linux.intelRdt is not supported by vbuild-runc; remove it",
        ),
        (
            Box::new(|c| c["linux"]["resources"] = json!({"blockIO": {"weight": 10}})),
            "linux.resources.blockIO is not supported",
        ),
        (
            Box::new(|c| c["process"]["args"] = json!([])),
            "process.args is empty",
        ),
        (
            Box::new(|c| c["mounts"][0]["destination"] = json!("/../../etc")),
            "mount destination \"/../../etc\" must be an absolute path",
        ),
        (
            Box::new(|c| c["process"]["args"] = json!(["/bin/nope"])),
            "cannot run /bin/nope",
        ),
    ];
    for (n, (edit, want)) in cases.into_iter().enumerate() {
        b.config("true", |c| edit(c));
        let id = unique(&format!("bad{n}"));
        let o = output_in_files(
            b.path(),
            Command::new(BIN)
                .arg("--root")
                .arg(b.state_root())
                .args(["--log", log.to_str().unwrap(), "--log-format", "json"])
                .args(["create", "--bundle", &bundle, &id]),
        );
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert!(!o.status.success(), "case {n} was accepted");
        // stderr has the text form, with quotes escaped.
        assert!(err.contains(&want.replace('"', "\\\"")), "case {n}: {err}");
        let last = std::fs::read_to_string(&log).unwrap();
        let line: Value = serde_json::from_str(last.lines().last().unwrap()).unwrap();
        assert_eq!(line["level"], "error");
        assert!(line["msg"].as_str().unwrap().contains(want), "{line}");
        assert!(
            !b.state_root().join(&id).exists(),
            "case {n} left its state dir"
        );
        assert!(!group_exists_anywhere(&id), "case {n} left its cgroup");
    }
    // An id in use is refused.
    b.config("sleep 30", |_| {});
    let mut b = b;
    let id = unique("twice");
    b.create(&id);
    let e = b.fails(&["create", "--bundle", &bundle, &id]);
    assert!(e.contains(&format!("container {id} already exists")), "{e}");
    assert_eq!(b.state(&id)["status"], "created");
    // A property the runtime spec does not define is ignored (the spec's
    // extensibility rule), with a warning naming it.
    b.config("sleep 30", |c| {
        c["vendorThing"] = json!("x");
        c["linux"]["vendorLinuxThing"] = json!(1);
    });
    let id = unique("unknown");
    b.ids.push(id.clone());
    let o = b.runc(&["create", "--bundle", &bundle, &id]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("vendorThing is not a runtime spec property; ignored"),
        "{err}"
    );
    assert!(
        err.contains("linux.vendorLinuxThing is not a runtime spec property"),
        "{err}"
    );
}

/// The descriptors a process holds, as numbers, sorted.
fn fds_of(pid: &str) -> Vec<i32> {
    let mut v: Vec<i32> = std::fs::read_dir(format!("/proc/{}/fd", pid.trim()))
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    v.sort_unstable();
    v
}

/// Waits until process `pid` runs the program named `comm`.
fn wait_comm(pid: &str, comm: &str) {
    let until = Instant::now() + Duration::from_secs(20);
    let path = format!("/proc/{}/comm", pid.trim());
    while std::fs::read_to_string(&path).unwrap_or_default().trim() != comm {
        assert!(Instant::now() < until, "{pid} never ran {comm}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A process JSON for `exec --process`.
fn exec_process(b: &Bundle, name: &str, args: &[&str]) -> PathBuf {
    let f = b.path().join(name);
    let p = json!({
        "user": {"uid": 0, "gid": 0},
        "args": args,
        "env": ["PATH=/bin"],
        "cwd": "/",
        "noNewPrivileges": true
    });
    std::fs::write(&f, p.to_string()).unwrap();
    f
}

#[test]
fn a_profile_denying_close_still_runs_the_process_and_no_runtime_fd_leaks() {
    if !root_or_skip() {
        return;
    }
    // With and without no_new_privs the filter goes in at different
    // points; the descriptors must be marked before both.
    for nnp in [true, false] {
        let mut b = Bundle::new();
        b.config("", |c| {
            c["process"]["args"] = json!(["sleep", "60"]);
            c["process"]["noNewPrivileges"] = json!(nnp);
            c["process"]["capabilities"]["bounding"]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_SYS_ADMIN"));
            c["process"]["capabilities"]["permitted"]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_SYS_ADMIN"));
            c["process"]["capabilities"]["effective"]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_SYS_ADMIN"));
            c["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64"],
                "syscalls": [{"names": ["close", "close_range"],
                              "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
            });
        });
        let id = unique(&format!("noclose{nnp}"));
        let pid = b.create(&id);
        b.ok(&["start", &id]);
        wait_comm(&pid, "sleep");
        assert_eq!(
            fds_of(&pid),
            [0, 1, 2],
            "nnp {nnp}: the init holds only stdio"
        );
        let p = exec_process(&b, "sleep.json", &["sleep", "60"]);
        let pid_file = b.path().join("exec.pid");
        b.ok(&[
            "exec",
            "--process",
            p.to_str().unwrap(),
            "--detach",
            "--pid-file",
            pid_file.to_str().unwrap(),
            &id,
        ]);
        let epid = std::fs::read_to_string(&pid_file).unwrap();
        wait_comm(&epid, "sleep");
        assert_eq!(
            fds_of(&epid),
            [0, 1, 2],
            "nnp {nnp}: exec's process holds only stdio"
        );
        let sc = std::fs::read_to_string(format!("/proc/{}/status", epid.trim())).unwrap();
        assert!(
            sc.contains("Seccomp:\t2"),
            "nnp {nnp}: exec's process is filtered"
        );
        b.ok(&["delete", "--force", &id]);
        assert!(!group_exists_anywhere(&id), "cgroup left behind");
    }
}

/// Runs vbuild-runc with `files` opened as descriptors 3, 4, ... (write
/// only), as a caller of `--preserve-fds` passes them.
fn runc_with_fds(b: &Bundle, files: &[PathBuf], args: &[&str]) -> std::process::Output {
    use std::os::fd::IntoRawFd;
    use std::os::unix::process::CommandExt;
    assert!(files.len() <= 4);
    let mut fds = [-1i32; 4];
    for (i, f) in files.iter().enumerate() {
        fds[i] = std::fs::File::create(f).unwrap().into_raw_fd();
    }
    let n = files.len();
    let mut cmd = Command::new(BIN);
    cmd.arg("--root").arg(b.state_root()).args(args);
    // SAFETY: only fcntl and dup2 (async-signal-safe, no allocation)
    // between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // Above every target first, so no dup2 overwrites a source.
            let mut high = [-1i32; 4];
            for i in 0..n {
                high[i] = libc::fcntl(fds[i], libc::F_DUPFD, 100);
            }
            for (i, fd) in high.iter().take(n).enumerate() {
                if libc::dup2(*fd, 3 + i as i32) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let o = output_in_files(b.path(), &mut cmd);
    for fd in fds.iter().take(n) {
        // SAFETY: closing the test's own copies.
        unsafe { libc::close(*fd) };
    }
    o
}

#[test]
fn preserve_fds_hands_descriptors_3_on_to_the_process() {
    if !root_or_skip() {
        return;
    }
    let mut b = Bundle::new();
    b.config("echo three >&3; echo four >&4; exec sleep 60", |_| {});
    let id = unique("keepfds");
    b.ids.push(id.clone());
    let (f3, f4) = (b.path().join("fd3"), b.path().join("fd4"));
    let bundle = b.path().to_str().unwrap().to_string();
    let pid_file = b.path().join("init.pid");
    let o = runc_with_fds(
        &b,
        &[f3.clone(), f4.clone()],
        &[
            "create",
            "--bundle",
            &bundle,
            "--pid-file",
            pid_file.to_str().unwrap(),
            "--preserve-fds",
            "2",
            &id,
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    b.ok(&["start", &id]);
    wait_comm(&pid, "sleep");
    assert_eq!(std::fs::read_to_string(&f3).unwrap(), "three\n");
    assert_eq!(std::fs::read_to_string(&f4).unwrap(), "four\n");
    assert_eq!(fds_of(&pid), [0, 1, 2, 3, 4], "exactly stdio and the two");
    // exec: one descriptor.
    let p = exec_process(&b, "e.json", &["sh", "-c", "echo exec >&3; exec sleep 60"]);
    let f5 = b.path().join("fd-exec");
    let epid_file = b.path().join("exec.pid");
    let o = runc_with_fds(
        &b,
        std::slice::from_ref(&f5),
        &[
            "exec",
            "--process",
            p.to_str().unwrap(),
            "--preserve-fds=1",
            "--detach",
            "--pid-file",
            epid_file.to_str().unwrap(),
            &id,
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let epid = std::fs::read_to_string(&epid_file).unwrap();
    wait_comm(&epid, "sleep");
    assert_eq!(std::fs::read_to_string(&f5).unwrap(), "exec\n");
    assert_eq!(fds_of(&epid), [0, 1, 2, 3]);
    // A descriptor the caller did not pass is an error naming it.
    let bad = unique("keepfds-bad");
    let e = b.fails(&["create", "--bundle", &bundle, "--preserve-fds", "900", &bad]);
    assert!(
        e.contains("--preserve-fds 900: descriptor") && e.contains("is not open"),
        "{e}"
    );
    assert!(!b.state_root().join(&bad).exists());
    b.ok(&["delete", "--force", &id]);
    assert!(!group_exists_anywhere(&id));
}

#[test]
fn every_hook_runs_in_order_where_the_spec_says_with_the_state_and_fails_cleanly() {
    if !root_or_skip() {
        return;
    }
    let mut b = Bundle::new();
    let out = b.path().join("out");
    let hook = |name: &str| {
        json!({"path": "/bin/sh", "args": ["sh", "-c", format!(
            "cat > {o}/{name}.json; echo {name} >> {o}/order; readlink /proc/self/ns/mnt > {o}/{name}.mnt",
            o = out.display()
        )]})
    };
    let (pre, cr, cc) = (
        hook("prestart"),
        hook("createRuntime"),
        hook("createContainer"),
    );
    // startContainer: in the container (its /bin/sh, its /out, its uts).
    let sc = json!({"path": "/bin/sh", "args": ["sh", "-c",
        "cat > /out/startContainer.json; echo startContainer >> /out/order; hostname > /out/sc.host"]});
    b.config("echo run >> /out/order; sleep 60", |c| {
        c["hooks"] = json!({"createRuntime": [cr], "prestart": [pre], "startContainer": [sc], "createContainer": [cc]});
    });
    let id = unique("hooks");
    let pid = b.create(&id);
    assert_eq!(
        b.out("order"),
        "prestart\ncreateRuntime\ncreateContainer\n",
        "prestart first, all before start"
    );
    for name in ["prestart", "createRuntime", "createContainer"] {
        let s: Value = serde_json::from_str(&b.out(&format!("{name}.json"))).unwrap();
        assert_eq!(s["id"], id.as_str());
        assert_eq!(s["status"], "creating");
        assert_eq!(s["pid"].to_string(), pid.trim());
        assert_eq!(s["bundle"], b.path().to_str().unwrap());
        // The runtime's mount namespace (the container's for createContainer).
        let host = std::fs::read_link("/proc/self/ns/mnt").unwrap();
        let cont = std::fs::read_link(format!("/proc/{}/ns/mnt", pid.trim())).unwrap();
        assert_ne!(host, cont);
        let want = if name == "createContainer" {
            cont
        } else {
            host
        };
        assert_eq!(
            b.out(&format!("{name}.mnt")).trim(),
            want.to_str().unwrap(),
            "{name}"
        );
    }
    b.ok(&["start", &id]);
    let until = Instant::now() + Duration::from_secs(20);
    while !b.out("order").ends_with("run\n") && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        b.out("order"),
        "prestart\ncreateRuntime\ncreateContainer\nstartContainer\nrun\n"
    );
    assert_eq!(
        b.out("sc.host"),
        "o14box\n",
        "startContainer runs in the uts namespace"
    );
    let s: Value = serde_json::from_str(&b.out("startContainer.json")).unwrap();
    assert_eq!((&s["id"], &s["status"]), (&json!(id), &json!("created")));
    b.ok(&["delete", "--force", &id]);

    // A failing hook and one past its timeout fail create and leave nothing.
    let bundle = b.path().to_str().unwrap().to_string();
    let cases = [
        (
            json!({"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}]}),
            "hooks.createRuntime: /bin/sh failed: exit status: 3",
        ),
        (
            json!({"prestart": [{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]}),
            "hooks.prestart: /bin/sleep did not finish within its timeout of 1 s",
        ),
        (
            json!({"prestart": [{"path": "sh"}]}),
            "hooks.prestart: path \"sh\" must be absolute",
        ),
        (
            json!({"createContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 5"]}]}),
            "hooks.createContainer: /bin/sh failed: exit status: 5",
        ),
    ];
    for (n, (hooks, want)) in cases.into_iter().enumerate() {
        b.config("echo ran > /out/ran", |c| c["hooks"] = hooks);
        let id = unique(&format!("badhook{n}"));
        let t = Instant::now();
        let e = b.fails(&["create", "--bundle", &bundle, &id]);
        assert!(e.contains(&want.replace('"', "\\\"")), "case {n}: {e}");
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "case {n} took {:?}",
            t.elapsed()
        );
        assert!(
            !b.state_root().join(&id).exists(),
            "case {n} left its state dir"
        );
        assert!(!group_exists_anywhere(&id), "case {n} left its cgroup");
        assert_eq!(b.out("ran"), "", "case {n}: the program never ran");
    }
    // A failing startContainer hook fails start and stops the container.
    b.config("echo ran > /out/ran", |c| {
        c["hooks"] =
            json!({"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 4"]}]});
    });
    let id = unique("badstart");
    b.create(&id);
    let e = b.fails(&["start", &id]);
    assert!(
        e.contains("hooks.startContainer: /bin/sh failed: exit status: 4"),
        "{e}"
    );
    assert_eq!(b.wait_status(&id, "stopped")["status"], "stopped");
    assert_eq!(b.out("ran"), "", "the program never ran");
    b.ok(&["delete", &id]);
    assert!(!group_exists_anywhere(&id));
}

/// Adds busybox applets `names` to the bundle's rootfs.
fn applets(b: &Bundle, names: &[&str]) {
    for a in names {
        let l = b.path().join("rootfs/bin").join(a);
        if !l.exists() {
            std::os::unix::fs::symlink("busybox", l).unwrap();
        }
    }
}

/// Waits until the bundle's output file `name` is there and not empty.
fn wait_out(b: &Bundle, name: &str) -> String {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let s = b.out(name);
        if !s.is_empty() || Instant::now() > until {
            return s;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn block_fifo_and_char_devices_get_their_mode_and_owner() {
    if !root_or_skip() {
        return;
    }
    let mut b = Bundle::new();
    applets(&b, &["stat"]);
    b.config(
        "stat -c '%n %F %a %u:%g %t:%T' /dev/blk /dev/fifo /dev/sub/cnull > /out/devs.tmp; \
         echo x > /dev/sub/cnull && echo wrote >> /out/devs.tmp; mv /out/devs.tmp /out/devs; sleep 60",
        |c| {
            c["linux"]["devices"] = json!([
                {"path": "/dev/blk", "type": "b", "major": 7, "minor": 200,
                 "fileMode": 0o640, "uid": 1, "gid": 2},
                {"path": "/dev/fifo", "type": "p", "fileMode": 0o600, "uid": 3, "gid": 4},
                {"path": "/dev/sub/cnull", "type": "c", "major": 1, "minor": 3, "fileMode": 0o620}
            ]);
        },
    );
    applets(&b, &["mv"]);
    let id = unique("devs");
    b.create(&id);
    b.ok(&["start", &id]);
    assert_eq!(
        wait_out(&b, "devs"),
        "/dev/blk block special file 640 1:2 7:c8\n\
         /dev/fifo fifo 600 3:4 0:0\n\
         /dev/sub/cnull character special file 620 0:0 1:3\n\
         wrote\n"
    );
    b.ok(&["delete", "--force", &id]);
    // An unknown type is refused, naming the device.
    b.config("true", |c| {
        c["linux"]["devices"] = json!([{"path": "/dev/x", "type": "q", "major": 1, "minor": 3}]);
    });
    let bundle = b.path().to_str().unwrap().to_string();
    let e = b.fails(&["create", "--bundle", &bundle, &unique("devs-bad")]);
    assert!(
        e.contains("device /dev/x: type \\\"q\\\" is not a device type"),
        "{e}"
    );
}

#[test]
fn several_id_map_ranges_make_the_user_namespace_and_exec_joins_it() {
    if !root_or_skip() {
        return;
    }
    let mut b = Bundle::new();
    b.config(
        "cat /proc/self/uid_map /proc/self/gid_map > /out/maps; sleep 60",
        |c| {
            c["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "user"}));
            c["linux"]["uidMappings"] = json!([
                {"containerID": 0, "hostID": 231072, "size": 1000},
                {"containerID": 1000, "hostID": 300000, "size": 64536}
            ]);
            c["linux"]["gidMappings"] = json!([
                {"containerID": 0, "hostID": 231072, "size": 1000},
                {"containerID": 1000, "hostID": 400000, "size": 64536}
            ]);
        },
    );
    let id = unique("maps");
    let pid = b.create(&id);
    b.ok(&["start", &id]);
    let maps: Vec<Vec<String>> = wait_out(&b, "maps")
        .lines()
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect();
    assert_eq!(
        maps,
        [
            ["0", "231072", "1000"],
            ["1000", "300000", "64536"],
            ["0", "231072", "1000"],
            ["1000", "400000", "64536"]
        ]
    );
    // exec joins that user namespace: uid 1000 inside is host 300000.
    let p = b.path().join("u1000.json");
    std::fs::write(
        &p,
        json!({"user": {"uid": 1000, "gid": 1000}, "args": ["sleep", "60"],
               "env": ["PATH=/bin"], "cwd": "/"})
        .to_string(),
    )
    .unwrap();
    let pid_file = b.path().join("e.pid");
    b.ok(&[
        "exec",
        "--process",
        p.to_str().unwrap(),
        "--detach",
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
    ]);
    let epid = std::fs::read_to_string(&pid_file).unwrap();
    wait_comm(&epid, "sleep");
    let status = std::fs::read_to_string(format!("/proc/{}/status", epid.trim())).unwrap();
    assert!(
        status.contains("Uid:\t300000\t300000\t300000\t300000"),
        "{status}"
    );
    assert!(
        status.contains("Gid:\t400000\t400000\t400000\t400000"),
        "{status}"
    );
    let ns = |p: &str, n: &str| std::fs::read_link(format!("/proc/{}/ns/{n}", p.trim())).unwrap();
    for n in ["user", "mnt", "pid"] {
        assert_eq!(
            ns(&epid, n),
            ns(&pid, n),
            "exec's process is in the {n} namespace"
        );
    }
    b.ok(&["delete", "--force", &id]);
    // Overlapping ranges and a map without container id 0 are refused.
    let bundle = b.path().to_str().unwrap().to_string();
    let cases = [
        (
            json!([{"containerID": 0, "hostID": 231072, "size": 1000},
                   {"containerID": 500, "hostID": 300000, "size": 10}]),
            "linux.uidMappings[0] and [1] overlap",
        ),
        (
            json!([{"containerID": 1, "hostID": 231072, "size": 1000}]),
            "a range must start at containerID 0",
        ),
    ];
    for (n, (maps, want)) in cases.into_iter().enumerate() {
        b.config("true", |c| {
            c["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "user"}));
            c["linux"]["uidMappings"] = maps;
            c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 231072, "size": 1000}]);
        });
        let e = b.fails(&[
            "create",
            "--bundle",
            &bundle,
            &unique(&format!("maps-bad{n}")),
        ]);
        assert!(e.contains(want), "case {n}: {e}");
    }
}

#[test]
fn rootfs_propagation_shared_slave_private_and_unbindable_hold_inside() {
    if !root_or_skip() {
        return;
    }
    for (prop, want) in [
        ("shared", "f\n"),
        ("slave", "\n"),
        ("private", "\n"),
        ("unbindable", "refused\n"),
    ] {
        let mut b = Bundle::new();
        applets(&b, &["mkdir", "mount", "ls"]);
        // A bind of / sees a later mount below / only when / is shared.
        b.config(
            "mkdir -p /t /m /s && touch /s/f && \
             if mount --rbind / /t 2>/out/err; then mount --bind /s /m && echo \"$(ls /t/m)\" > /out/seen; \
             else echo refused > /out/seen; fi; sleep 60",
            |c| {
                c["root"]["readonly"] = json!(false);
                c["linux"]["rootfsPropagation"] = json!(prop);
                for set in ["bounding", "effective", "permitted"] {
                    c["process"]["capabilities"][set]
                        .as_array_mut()
                        .unwrap()
                        .push(json!("CAP_SYS_ADMIN"));
                }
            },
        );
        let id = unique(&format!("prop-{prop}"));
        b.create(&id);
        b.ok(&["start", &id]);
        assert_eq!(wait_out(&b, "seen"), want, "{prop}: {}", b.out("err"));
        b.ok(&["delete", "--force", &id]);
        let host = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let bundle = b.path().to_str().unwrap();
        assert!(!host.contains(bundle), "{prop}: a mount reached the host");
    }
}

#[test]
fn pid_cgroup_and_mount_namespaces_are_joined_by_path() {
    if !root_or_skip() {
        return;
    }
    // A holder of a pid and a cgroup namespace, as the suite makes one.
    struct Holder(std::process::Child);
    impl Drop for Holder {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let holder = Holder(
        Command::new("unshare")
            .args(["--pid", "--cgroup", "--fork", "--kill-child", "sleep", "60"])
            .spawn()
            .expect("unshare (util-linux)"),
    );
    let hp = holder.0.id();
    let ns = |p: &str, n: &str| {
        std::fs::read_link(format!("/proc/{}/ns/{n}", p.trim()))
            .map(|l| l.display().to_string())
            .unwrap_or_default()
    };
    let until = Instant::now() + Duration::from_secs(10);
    while ns(&hp.to_string(), "cgroup") == ns("self", "cgroup") && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut b = Bundle::new();
    b.config("sleep 60", |c| {
        let nss = c["linux"]["namespaces"].as_array_mut().unwrap();
        nss.retain(|n| n["type"] != "pid" && n["type"] != "cgroup");
        nss.push(json!({"type": "pid", "path": format!("/proc/{hp}/ns/pid_for_children")}));
        nss.push(json!({"type": "cgroup", "path": format!("/proc/{hp}/ns/cgroup")}));
    });
    let id = unique("nspath");
    let pid = b.create(&id);
    let want_pid = ns(&hp.to_string(), "pid_for_children");
    assert_eq!(
        ns(&pid, "pid"),
        want_pid,
        "the container is in the holder's pid namespace"
    );
    assert_eq!(ns(&pid, "cgroup"), ns(&hp.to_string(), "cgroup"));
    assert_eq!(
        ns("self", "pid_for_children"),
        ns("self", "pid"),
        "the test's own namespaces are untouched"
    );
    b.ok(&["start", &id]);
    b.ok(&["delete", "--force", &id]);
    drop(holder);
    // A mount namespace joined by path: the container's mounts and root
    // are made in it, not in the test's.
    let holder = Holder(
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sleep", "60"])
            .spawn()
            .expect("unshare (util-linux)"),
    );
    let hp = holder.0.id().to_string();
    let until = Instant::now() + Duration::from_secs(10);
    while ns(&hp, "mnt") == ns("self", "mnt") && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    b.config("sleep 60", |c| {
        let nss = c["linux"]["namespaces"].as_array_mut().unwrap();
        nss.retain(|n| n["type"] != "mount");
        nss.push(json!({"type": "mount", "path": format!("/proc/{hp}/ns/mnt")}));
    });
    let id = unique("nspath-mnt");
    let pid = b.create(&id);
    assert_eq!(ns(&pid, "mnt"), ns(&hp, "mnt"), "in the holder's mount ns");
    let bundle = b.path().to_str().unwrap().to_string();
    let host = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !host.contains(&bundle),
        "a container mount reached the test's namespace"
    );
    b.ok(&["start", &id]);
    b.ok(&["delete", "--force", &id]);
    drop(holder);
    // With a new user namespace it cannot be entered: a clear error.
    b.config("true", |c| {
        let nss = c["linux"]["namespaces"].as_array_mut().unwrap();
        nss.retain(|n| n["type"] != "mount");
        let own = format!("/proc/{}/ns/mnt", std::process::id());
        nss.push(json!({"type": "mount", "path": own}));
        user_namespace(c);
    });
    let e = b.fails(&["create", "--bundle", &bundle, &unique("nspath-mnt-user")]);
    assert!(
        e.contains("joining a mount namespace by path together with a new user namespace"),
        "{e}"
    );
}
