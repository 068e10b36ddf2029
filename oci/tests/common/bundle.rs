//! A static-busybox bundle driven through vbuild-runc's command line, as
//! containerd and podman drive runc (the runtime and exec tests).

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub const BUSYBOX: &str = "/bin/busybox";
pub const BIN: &str = env!("CARGO_BIN_EXE_vbuild-runc");

pub fn root_or_skip() -> bool {
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
pub struct Bundle {
    pub dir: tempfile::TempDir,
    pub ids: Vec<String>,
}

impl Bundle {
    pub fn new() -> Bundle {
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
            "sh", "sleep", "cat", "echo", "id", "hostname", "pwd", "grep", "touch", "true",
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

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn state_root(&self) -> PathBuf {
        self.path().join("state")
    }

    pub fn out(&self, name: &str) -> String {
        std::fs::read_to_string(self.path().join("out").join(name)).unwrap_or_default()
    }

    /// Writes config.json: runc's defaults (as `runc spec` makes them)
    /// with `script` as the process and `edit` applied.
    pub fn config(&self, script: &str, edit: impl FnOnce(&mut Value)) {
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
    pub fn runc(&self, args: &[&str]) -> std::process::Output {
        output_in_files(
            self.path(),
            Command::new(BIN)
                .arg("--root")
                .arg(self.state_root())
                .args(args),
        )
    }

    /// Runs vbuild-runc and returns stdout; panics with stderr on failure.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.runc(args);
        assert!(
            o.status.success(),
            "vbuild-runc {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    /// Runs vbuild-runc expecting failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let o = self.runc(args);
        assert!(!o.status.success(), "vbuild-runc {args:?} succeeded");
        String::from_utf8(o.stderr).unwrap()
    }

    pub fn create(&mut self, id: &str) -> String {
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

    pub fn state(&self, id: &str) -> Value {
        serde_json::from_str(&self.ok(&["state", id])).unwrap()
    }

    pub fn wait_status(&self, id: &str, want: &str) -> Value {
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

/// Runs `cmd` with its stdout and stderr in files below `dir` (a created
/// container or conmon keeps them open, so pipes would not end).
pub fn output_in_files(dir: &Path, cmd: &mut Command) -> std::process::Output {
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

/// Gives a config its own user namespace, root mapped to host uid and
/// gid 231072 (65536 ids).
pub fn user_namespace(c: &mut Value) {
    c["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 231072, "size": 65536}]);
    c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 231072, "size": 65536}]);
}

pub fn unique(tag: &str) -> String {
    format!("o14-{tag}-{}", std::process::id())
}
