//! A containerd of the test's own, started by hand (the host's PID 1 is
//! not systemd, and the host's containerd, if any, is left alone): its
//! config, root, state, gRPC/ttrpc/debug sockets, the shim's runtime root
//! (`--runc-root`) and ctr's FIFO dir all live in one temporary
//! directory, and it works in a containerd namespace of its own. Dropping
//! it removes the namespace's tasks, containers and images, stops
//! containerd and any shim of the namespace, unmounts what is left below
//! the directory and removes the namespace's cgroups. The binaries are
//! trixie's containerd 1.7, which scripts/host-deps.sh unpacks into
//! /opt/vbuild-test/containerd/bin (bookworm has only 1.6).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// vbuild-runc (the shim crate's tests, which include this fixture, have
/// no such binary of their own and pass `--runtime` instead).
pub const BIN: &str = match option_env!("CARGO_BIN_EXE_vbuild-runc") {
    Some(b) => b,
    None => "vbuild-runc",
};
pub const CTRD_BIN: &str = "/opt/vbuild-test/containerd/bin";
pub const BUSYBOX: &str = "/bin/busybox";
/// containerd 1.7 puts the shims' sockets under /run/containerd/s whatever
/// its config says; when the directory was not there before the first
/// fixture, the last one to go removes it. (live fixtures, pre-existed)
static SYSTEM_RUN: super::SystemDir = super::SystemDir::new("/run/containerd");

pub fn containerd_present() -> bool {
    ["containerd", "containerd-shim-runc-v2", "ctr"]
        .iter()
        .all(|b| Path::new(CTRD_BIN).join(b).is_file())
}

/// Root and trixie's containerd; fails under CI=true, else skips loudly.
pub fn preconditions() -> bool {
    vbuild_testsupport::require(
        vbuild_testsupport::is_root(),
        "root (run the tests as root: sudo ./test.sh)",
    ) && vbuild_testsupport::require(
        Path::new(BUSYBOX).is_file(),
        "busybox-static at /bin/busybox (scripts/host-deps.sh installs it)",
    ) && vbuild_testsupport::require(
        containerd_present(),
        "containerd 1.7 in /opt/vbuild-test/containerd/bin (run scripts/host-deps.sh as root)",
    )
}

#[allow(unused_imports)] // not every test binary that has this module uses it
pub use super::text;

pub struct Containerd {
    dir: tempfile::TempDir,
    pub ns: String,
    child: Option<Child>,
}

impl Containerd {
    pub fn start(tag: &str) -> Containerd {
        SYSTEM_RUN.enter();
        let dir = tempfile::Builder::new()
            .prefix("o14c-")
            .tempdir_in("/var/tmp")
            .unwrap();
        let d = dir.path().display().to_string();
        // The CRI plugin is off: no CNI, no kubelet, nothing on the host's
        // network.
        let conf = format!(
            "version = 2\n\
             root = \"{d}/root\"\n\
             state = \"{d}/state\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{d}/c.sock\"\n\
             [ttrpc]\n  address = \"{d}/c.sock.ttrpc\"\n\
             [debug]\n  address = \"{d}/d.sock\"\n"
        );
        std::fs::write(dir.path().join("config.toml"), conf).unwrap();
        let log = std::fs::File::create(dir.path().join("containerd.log")).unwrap();
        let mut c = Containerd {
            ns: format!("o14c-{tag}-{}", std::process::id()),
            child: None,
            dir,
        };
        let child = Command::new(Path::new(CTRD_BIN).join("containerd"))
            .arg("--config")
            .arg(c.path().join("config.toml"))
            .env("PATH", c.search_path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        c.child = Some(child);
        // Ready when it answers (a readiness wait, not a timed assertion).
        for _ in 0..300 {
            if c.ctr(&["version"]).status.success() {
                return c;
            }
            if let Some(st) = c.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("containerd exited ({st}): {}", c.log());
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("containerd did not answer on its socket: {}", c.log());
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// containerd finds its shim on PATH.
    fn search_path(&self) -> String {
        format!(
            "{CTRD_BIN}:{}",
            std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into())
        )
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path().join("containerd.log")).unwrap_or_default()
    }

    /// The shim's runtime root: vbuild-runc's `--root` is this plus the
    /// namespace.
    pub fn runc_root(&self) -> PathBuf {
        self.path().join("runc")
    }

    pub fn state_root(&self) -> PathBuf {
        self.runc_root().join(&self.ns)
    }

    /// ctr against this containerd and namespace; stdout and stderr go to
    /// files (a shim may keep pipes open past ctr's exit).
    pub fn ctr(&self, args: &[&str]) -> Output {
        let d = self.path();
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (o, e) = (d.join(format!("out.{n}")), d.join(format!("err.{n}")));
        let status = Command::new(Path::new(CTRD_BIN).join("ctr"))
            .env("PATH", self.search_path())
            .arg("--address")
            .arg(d.join("c.sock"))
            .args(["--namespace", &self.ns])
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&o).unwrap())
            .stderr(std::fs::File::create(&e).unwrap())
            .status()
            .unwrap();
        let out = Output {
            status,
            stdout: std::fs::read(&o).unwrap(),
            stderr: std::fs::read(&e).unwrap(),
        };
        let _ = std::fs::remove_file(&o);
        let _ = std::fs::remove_file(&e);
        out
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.ctr(args);
        assert!(o.status.success(), "ctr {args:?}: {}", text(&o));
        String::from_utf8(o.stdout).unwrap()
    }

    /// `ctr run` with vbuild-runc, its state root and FIFO dir ours, then
    /// `extra` (options, image, id, command).
    pub fn run_args(&self, extra: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = vec![
            "run".into(),
            "--runc-binary".into(),
            BIN.into(),
            "--runc-root".into(),
            self.runc_root().display().to_string(),
            "--fifo-dir".into(),
            self.path().join("fifo").display().to_string(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    }

    pub fn run(&self, extra: &[&str]) -> Output {
        let a = self.run_args(extra);
        self.ctr(&a.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// The same `ctr run` with containerd's default runtime, the host's
    /// runc (the reference), in a state root of its own.
    pub fn run_with_runc(&self, extra: &[&str]) -> Output {
        let root = self.path().join("runc-ref").display().to_string();
        let fifo = self.path().join("fifo").display().to_string();
        let mut a = vec!["run", "--runc-root", &root, "--fifo-dir", &fifo];
        a.extend(extra);
        self.ctr(&a)
    }

    /// `ctr task exec` with our FIFO dir.
    pub fn exec(&self, id: &str, exec_id: &str, cmd: &[&str]) -> Output {
        let fifo = self.path().join("fifo").display().to_string();
        let mut a = vec![
            "task",
            "exec",
            "--fifo-dir",
            &fifo,
            "--exec-id",
            exec_id,
            id,
        ];
        a.extend(cmd);
        self.ctr(&a)
    }

    /// vbuild-runc's own view of a container (`state` JSON).
    pub fn runtime_state(&self, id: &str) -> serde_json::Value {
        let o = Command::new(BIN)
            .arg("--root")
            .arg(self.state_root())
            .args(["state", id])
            .output()
            .unwrap();
        assert!(o.status.success(), "vbuild-runc state {id}: {}", text(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    }

    /// The task's status column in `ctr task ls` (RUNNING, STOPPED...).
    pub fn task_status(&self, id: &str) -> Option<String> {
        self.ok(&["task", "ls"]).lines().skip(1).find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.first() == Some(&id)).then(|| f.get(2).unwrap_or(&"").to_string())
        })
    }

    /// Waits (bounded) until the task has stopped; panics if it never does.
    pub fn wait_stopped(&self, id: &str) {
        for _ in 0..600 {
            if self.task_status(id).as_deref() == Some("STOPPED") {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!(
            "task {id} did not stop: {:?}\n{}",
            self.task_status(id),
            self.log()
        );
    }

    /// Imports an OCI archive (a tar of an image layout) as `name`.
    pub fn import(&self, archive: &Path, base_name: &str) {
        self.ok(&[
            "image",
            "import",
            "--base-name",
            base_name,
            archive.to_str().unwrap(),
        ]);
    }

    /// Container directories left in vbuild-runc's state root.
    pub fn state_left(&self) -> Vec<String> {
        std::fs::read_dir(self.state_root())
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Task bundles left in containerd's state dir for the namespace.
    pub fn bundles_left(&self) -> Vec<String> {
        let d = self
            .path()
            .join("state/io.containerd.runtime.v2.task")
            .join(&self.ns);
        std::fs::read_dir(d)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Mount points below the temporary directory.
    pub fn mounts_below(&self) -> Vec<String> {
        let dir = self.path().to_string_lossy().into_owned();
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(&dir))
            .map(String::from)
            .collect()
    }

    /// Live (not zombie) shims serving this namespace.
    pub fn shims(&self) -> Vec<i32> {
        let mut out = Vec::new();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                continue;
            };
            let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
            let is_shim = args.first().is_some_and(|a| {
                a.ends_with(b"containerd-shim-runc-v2") || a.ends_with(b"containerd-shim-vbuild-v2")
            });
            let ours = args
                .windows(2)
                .any(|w| w[0] == b"-namespace" && w[1] == self.ns.as_bytes());
            if is_shim && ours {
                out.push(pid);
            }
        }
        out
    }

    /// Waits (bounded) for the namespace's shims to exit after their
    /// containers were deleted; returns those still there.
    pub fn shims_after_exit(&self) -> Vec<i32> {
        for _ in 0..100 {
            if self.shims().is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        self.shims()
    }
}

/// Whether a process is alive (a zombie counts as gone).
pub fn alive(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, r)| r.chars().next()))
        .is_some_and(|st| st != Some('Z'))
}

/// Every cgroup directory (any hierarchy) whose path holds `needle`,
/// deepest first.
pub fn cgroups_with(needle: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::from("/sys/fs/cgroup")];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                let p = e.path();
                let s = p.to_string_lossy().into_owned();
                if s.contains(needle) {
                    out.push(p.clone());
                }
                // The hierarchies' tops, vbuild-runc's /vbuild/oci parent
                // and containerd's namespace parents: where ours can be.
                let depth = p.components().count();
                if depth <= 7 || s.contains(needle) {
                    stack.push(p);
                }
            }
        }
    }
    out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    out
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // Tasks, then containers, then images, through containerd.
        if let Ok(ls) = String::from_utf8(self.ctr(&["task", "ls", "--quiet"]).stdout) {
            for id in ls.lines().filter(|l| !l.is_empty()) {
                let _ = self.ctr(&["task", "kill", "--signal", "SIGKILL", id]);
                let _ = self.ctr(&["task", "rm", "--force", id]);
            }
        }
        if let Ok(ls) = String::from_utf8(self.ctr(&["container", "ls", "--quiet"]).stdout) {
            for id in ls.lines().filter(|l| !l.is_empty()) {
                let _ = self.ctr(&["container", "rm", id]);
            }
        }
        if let Ok(ls) = String::from_utf8(self.ctr(&["image", "ls", "--quiet"]).stdout) {
            for r in ls.lines().filter(|l| !l.is_empty()) {
                let _ = self.ctr(&["image", "rm", "--sync", r]);
            }
        }
        if let Some(mut c) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let mut stopped = false;
            for _ in 0..100 {
                if c.try_wait().ok().flatten().is_some() {
                    stopped = true;
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            if !stopped {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        // A shim whose container could not be deleted (a failed test).
        for pid in self.shims() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        for m in self.mounts_below().iter().rev() {
            let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
        for g in cgroups_with(&self.ns) {
            let _ = std::fs::remove_dir(&g);
        }
        SYSTEM_RUN.leave();
    }
}

/// An OCI archive (a tar of an image layout) of static busybox and a few
/// applets, named `latest` inside, written to `dir/busybox-oci.tar`.
pub fn busybox_archive(dir: &Path) -> PathBuf {
    use sha2::Digest;
    let rootfs = dir.join("bb-rootfs");
    for sub in ["bin", "proc", "sys", "dev", "etc", "tmp"] {
        std::fs::create_dir_all(rootfs.join(sub)).unwrap();
    }
    std::fs::copy(BUSYBOX, rootfs.join("bin/busybox")).unwrap();
    for a in [
        "sh", "echo", "sleep", "cat", "grep", "id", "true", "ls", "tr",
    ] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).unwrap();
    }
    let layer = dir.join("bb-layer.tar");
    tar(&rootfs, &layer);
    let layout = dir.join("bb-layout");
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| -> (String, usize) {
        let h = hex::encode(sha2::Sha256::digest(bytes));
        std::fs::write(blobs.join(&h), bytes).unwrap();
        (format!("sha256:{h}"), bytes.len())
    };
    let (ld, ls) = put(&std::fs::read(&layer).unwrap());
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [ld]},
    });
    let (cd, cs) = put(&serde_json::to_vec(&config).unwrap());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": ls}],
    });
    let (md, ms) = put(&serde_json::to_vec(&manifest).unwrap());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
            "annotations": {"org.opencontainers.image.ref.name": "latest"},
        }],
    });
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let archive = dir.join("busybox-oci.tar");
    tar(&layout, &archive);
    archive
}

/// `tar -C dir -cf out .` (test tooling).
pub fn tar(dir: &Path, out: &Path) {
    let st = Command::new("tar")
        .arg("-C")
        .arg(dir)
        .arg("-cf")
        .arg(out)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success(), "tar {}", dir.display());
}
