//! vbuild-runc driven through its command line as containerd and podman
//! drive runc: a static-busybox bundle is created, started, inspected,
//! signalled and deleted, with and without a user namespace, with limits;
//! bad configs fail with one clear error and leave nothing behind. Needs
//! root (namespaces, cgroups, mounts); run under
//! `flock /tmp/vbuild-root-tests.lock`.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const BUSYBOX: &str = "/bin/busybox";
const BIN: &str = env!("CARGO_BIN_EXE_vbuild-runc");

fn root_or_skip() -> bool {
    vbuild_testsupport::require(
        vbuild_testsupport::is_root(),
        "root (run the tests as root: sudo ./test.sh)",
    ) && vbuild_testsupport::require(
        Path::new(BUSYBOX).is_file(),
        "busybox-static at /bin/busybox (apt-get install busybox-static; scripts/host-deps.sh does)",
    )
}

/// A bundle with a busybox rootfs, an output directory bound at /out, and
/// its own state root; deletes its containers when dropped.
struct Bundle {
    dir: tempfile::TempDir,
    ids: Vec<String>,
}

impl Bundle {
    fn new() -> Bundle {
        let dir = tempfile::Builder::new().prefix("o14-").tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        // Mount points exist in real images; a user namespace's root
        // could not make them in a rootfs owned by host root.
        for d in ["bin", "proc", "sys", "dev", "out"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::create_dir_all(dir.path().join("out")).unwrap();
        std::fs::copy(BUSYBOX, rootfs.join("bin/busybox")).unwrap();
        for a in [
            "sh", "sleep", "cat", "echo", "id", "hostname", "pwd", "grep", "touch",
        ] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).unwrap();
        }
        use std::os::unix::fs::PermissionsExt;
        // A user namespace's root (a host uid) must reach the rootfs and
        // write the output directory.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(
            dir.path().join("out"),
            std::fs::Permissions::from_mode(0o777),
        )
        .unwrap();
        Bundle { dir, ids: vec![] }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn state_root(&self) -> PathBuf {
        self.path().join("state")
    }

    fn out(&self, name: &str) -> String {
        std::fs::read_to_string(self.path().join("out").join(name)).unwrap_or_default()
    }

    /// Writes config.json: runc's defaults (as `runc spec` makes them)
    /// with `script` as the process and `edit` applied.
    fn config(&self, script: &str, edit: impl FnOnce(&mut Value)) {
        let mut c = json!({
            "ociVersion": "1.0.2-dev",
            "process": {
                "terminal": false,
                "user": {"uid": 0, "gid": 0},
                "args": ["sh", "-c", script],
                "env": ["PATH=/bin", "TERM=xterm", "O14=yes"],
                "cwd": "/out",
                "capabilities": {
                    "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                    "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                    "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                    "ambient": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
                },
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 512}],
                "noNewPrivileges": true
            },
            "root": {"path": "rootfs", "readonly": true},
            "hostname": "o14box",
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                 "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
                {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
                 "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
                {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                 "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
                {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
                 "options": ["nosuid", "noexec", "nodev"]},
                {"destination": "/sys", "type": "sysfs", "source": "sysfs",
                 "options": ["nosuid", "noexec", "nodev", "ro"]},
                {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                 "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
                {"destination": "/out", "type": "bind", "source": "out", "options": ["rbind", "rw"]}
            ],
            "linux": {
                "namespaces": [
                    {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                    {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}
                ],
                "maskedPaths": ["/proc/kcore", "/proc/keys", "/sys/firmware"],
                "readonlyPaths": ["/proc/sys", "/proc/sysrq-trigger"]
            }
        });
        edit(&mut c);
        std::fs::write(self.path().join("config.json"), c.to_string()).unwrap();
    }

    /// Runs vbuild-runc with stdout and stderr in files: a created
    /// container keeps them open (as runc's does), so pipes would not end.
    fn runc(&self, args: &[&str]) -> std::process::Output {
        runc_in(
            self.path(),
            Command::new(BIN)
                .arg("--root")
                .arg(self.state_root())
                .args(args),
        )
    }

    /// Runs vbuild-runc and returns stdout; panics with stderr on failure.
    fn ok(&self, args: &[&str]) -> String {
        let o = self.runc(args);
        assert!(
            o.status.success(),
            "vbuild-runc {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    /// Runs vbuild-runc expecting failure; returns stderr.
    fn fails(&self, args: &[&str]) -> String {
        let o = self.runc(args);
        assert!(!o.status.success(), "vbuild-runc {args:?} succeeded");
        String::from_utf8(o.stderr).unwrap()
    }

    fn create(&mut self, id: &str) -> String {
        let bundle = self.path().to_str().unwrap().to_string();
        let pid_file = self.path().join(format!("{id}.pid"));
        self.ids.push(id.to_string());
        self.ok(&[
            "create",
            "--bundle",
            &bundle,
            "--pid-file",
            pid_file.to_str().unwrap(),
            id,
        ]);
        std::fs::read_to_string(pid_file).unwrap()
    }

    fn state(&self, id: &str) -> Value {
        serde_json::from_str(&self.ok(&["state", id])).unwrap()
    }

    fn wait_status(&self, id: &str, want: &str) -> Value {
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            let s = self.state(id);
            if s["status"] == want || Instant::now() > until {
                return s;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        for id in self.ids.clone() {
            let _ = self.runc(&["delete", "--force", &id]);
        }
    }
}

/// Runs `cmd` with its stdout and stderr in files below `dir`.
fn runc_in(dir: &Path, cmd: &mut Command) -> std::process::Output {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (o, e) = (
        dir.join(format!("stdout.{n}")),
        dir.join(format!("stderr.{n}")),
    );
    let status = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&o).unwrap())
        .stderr(std::fs::File::create(&e).unwrap())
        .status()
        .unwrap();
    std::process::Output {
        status,
        stdout: std::fs::read(&o).unwrap(),
        stderr: std::fs::read(&e).unwrap(),
    }
}

/// A change to a test config.
type Edit = Box<dyn Fn(&mut Value)>;

fn unique(tag: &str) -> String {
    format!("o14-{tag}-{}", std::process::id())
}

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
            c["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "user"}));
            c["linux"]["uidMappings"] =
                json!([{"containerID": 0, "hostID": 231072, "size": 65536}]);
            c["linux"]["gidMappings"] =
                json!([{"containerID": 0, "hostID": 231072, "size": 65536}]);
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
            "cpu": {"quota": 50000, "period": 100000}
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
    } else {
        assert_eq!(read("memory", "memory.limit_in_bytes"), "67108864");
        assert_eq!(read("pids", "pids.max"), "42");
        assert_eq!(read("cpu", "cpu.cfs_quota_us"), "50000");
        let procs = read("memory", "cgroup.procs");
        assert_eq!(procs, pid.trim(), "the container's process is in its group");
    }
    let upd = b.path().join("res.json");
    std::fs::write(&upd, r#"{"pids": {"limit": 99}}"#).unwrap();
    b.ok(&["update", "--resources", upd.to_str().unwrap(), &id]);
    assert_eq!(read(if v2 { "" } else { "pids" }, "pids.max"), "99");
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
        let o = runc_in(
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
}
