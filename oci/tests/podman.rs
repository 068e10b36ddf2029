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

use std::path::{Path, PathBuf};
use std::process::Command;

const BUSYBOX: &str = "/bin/busybox";
const BIN: &str = env!("CARGO_BIN_EXE_vbuild-runc");
const IMAGE: &str = "localhost/vb-busybox";

/// podman 4.3 keeps its blob-info cache in /var/lib/containers/cache for
/// root whatever `--root` says. When that directory was not there before
/// the first test, the last test to finish removes it. The count of live
/// `Podman`s and whether the directory pre-existed share one lock, so no
/// test starts podman while another removes it.
static SYSTEM_CACHE: std::sync::Mutex<(usize, Option<bool>)> = std::sync::Mutex::new((0, None));
const SYSTEM_STORE: &str = "/var/lib/containers";

fn which(prog: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(prog).is_file()))
}

fn preconditions() -> bool {
    vbuild_testsupport::require(
        vbuild_testsupport::is_root(),
        "root (run the tests as root: sudo ./test.sh)",
    ) && vbuild_testsupport::require(
        Path::new(BUSYBOX).is_file(),
        "busybox-static at /bin/busybox (scripts/host-deps.sh installs it)",
    ) && vbuild_testsupport::require(
        which("podman") && (which("conmon") || Path::new("/usr/libexec/podman/conmon").is_file()),
        "podman and conmon (apt-get install podman; scripts/host-deps.sh installs them)",
    )
}

/// One isolated podman: its own storage, run root, tmp dir, configs,
/// cgroup parent and vbuild-runc state root, all removed when dropped.
struct Podman {
    dir: tempfile::TempDir,
    cgroup_parent: String,
}

impl Podman {
    fn new(tag: &str) -> Podman {
        {
            let mut c = SYSTEM_CACHE.lock().unwrap_or_else(|e| e.into_inner());
            c.0 += 1;
            if c.1.is_none() {
                c.1 = Some(Path::new(SYSTEM_STORE).exists());
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("o14p-")
            .tempdir_in("/var/tmp")
            .unwrap();
        let d = dir.path().to_path_buf();
        let d = d.as_path();
        std::fs::create_dir_all(d.join("bin")).unwrap();
        // `runc` (podman keys the JSON log format on that name) with our
        // own state root: podman passes --runtime-flag to conmon but not to
        // its exit command (`podman container cleanup`, which deletes the
        // container), and conmon passes no environment on.
        let wrapper = d.join("bin/runc");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nexec {BIN} --root {}/runc-state \"$@\"\n",
                d.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let conf = format!(
            "[containers]\n\
             netns = \"none\"\n\
             [engine]\n\
             cgroup_manager = \"cgroupfs\"\n\
             events_logger = \"file\"\n\
             events_logfile_path = \"{d}/events.log\"\n\
             tmp_dir = \"{d}/tmp\"\n\
             volume_path = \"{d}/volumes\"\n\
             lock_type = \"file\"\n\
             num_locks = 64\n\
             [network]\n\
             network_config_dir = \"{d}/net\"\n",
            d = d.display()
        );
        std::fs::write(d.join("containers.conf"), conf).unwrap();
        std::fs::write(
            d.join("storage.conf"),
            format!(
                "[storage]\ndriver = \"vfs\"\ngraphroot = \"{d}/storage\"\nrunroot = \"{d}/run\"\n",
                d = d.display()
            ),
        )
        .unwrap();
        std::fs::write(d.join("registries.conf"), "").unwrap();
        let p = Podman {
            cgroup_parent: format!("/o14p-{tag}-{}", std::process::id()),
            dir,
        };
        // The image: static busybox and its applets, imported from a tar.
        let rootfs = d.join("rootfs");
        for sub in ["bin", "proc", "sys", "dev", "etc", "tmp"] {
            std::fs::create_dir_all(rootfs.join(sub)).unwrap();
        }
        std::fs::copy(BUSYBOX, rootfs.join("bin/busybox")).unwrap();
        for a in ["sh", "echo", "sleep", "cat", "grep", "id", "true", "ls"] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).unwrap();
        }
        let tar = d.join("rootfs.tar");
        let st = Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap();
        assert!(st.success(), "tar the rootfs");
        p.ok(&["import", tar.to_str().unwrap(), IMAGE]);
        p
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn state_root(&self) -> PathBuf {
        self.path().join("runc-state")
    }

    /// podman with every path of its own; stdout and stderr go to files
    /// (conmon may keep pipes open past podman's exit).
    fn podman(&self, args: &[&str]) -> std::process::Output {
        let d = self.path();
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (o, e) = (d.join(format!("out.{n}")), d.join(format!("err.{n}")));
        let status = Command::new("podman")
            .env("CONTAINERS_CONF", d.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", d.join("storage.conf"))
            .env("CONTAINERS_REGISTRIES_CONF", d.join("registries.conf"))
            .arg("--root")
            .arg(d.join("storage"))
            .arg("--runroot")
            .arg(d.join("run"))
            .arg("--tmpdir")
            .arg(d.join("tmp"))
            .args(["--storage-driver", "vfs", "--cgroup-manager", "cgroupfs"])
            .args(["--events-backend", "file"])
            .arg("--runtime")
            .arg(d.join("bin/runc"))
            .args(args)
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

    fn ok(&self, args: &[&str]) -> String {
        let o = self.podman(args);
        assert!(
            o.status.success(),
            "podman {args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    /// `podman run` options every container here gets. Rootful podman
    /// asks for RLIMIT_NOFILE and RLIMIT_NPROC hard limits of 1048576 and
    /// more, which a root without CAP_SYS_RESOURCE (this CI host's) cannot
    /// raise to, with runc as with vbuild-runc (and conmon runs the runtime
    /// with NPROC at 32768): ask for limits below any host's.
    fn run_args(&self, extra: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = [
            "run",
            "--network",
            "none",
            "--cgroup-parent",
            &self.cgroup_parent,
            "--ulimit",
            "nofile=1000:1024",
            "--ulimit",
            "nproc=4000:4096",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    }

    fn run(&self, extra: &[&str]) -> std::process::Output {
        let args = self.run_args(extra);
        self.podman(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// Container directories left in vbuild-runc's state root.
    fn state_left(&self) -> Vec<String> {
        std::fs::read_dir(self.state_root())
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every cgroup directory (any hierarchy) whose path holds `needle`.
    fn cgroups_with(needle: &str) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![PathBuf::from("/sys/fs/cgroup")];
        while let Some(d) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in rd.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    let p = e.path();
                    if p.to_string_lossy().contains(needle) {
                        out.push(p.clone());
                    }
                    // Only the top of each hierarchy and our parent matter.
                    if p.parent() == Some(Path::new("/sys/fs/cgroup"))
                        || p.to_string_lossy().contains(&self_parent_marker())
                    {
                        stack.push(p);
                    }
                }
            }
        }
        out
    }

    fn mounts_below(&self) -> Vec<String> {
        let dir = self.path().to_string_lossy().into_owned();
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter(|l| l.split(' ').nth(4).is_some_and(|m| m.starts_with(&dir)))
            .map(String::from)
            .collect()
    }
}

/// What every test's cgroup parent starts with.
fn self_parent_marker() -> String {
    "o14p-".to_string()
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.podman(&["rm", "--all", "--force", "--time", "0"]);
        let _ = self.podman(&["rmi", "--all", "--force"]);
        for m in self.mounts_below().iter().rev() {
            if let Some(p) = m.split(' ').nth(4) {
                let _ = nix::mount::umount2(p, nix::mount::MntFlags::MNT_DETACH);
            }
        }
        // The cgroup parent podman made for our containers (and conmon).
        let mut groups = Podman::cgroups_with(&self.cgroup_parent);
        groups.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for g in groups {
            let _ = std::fs::remove_dir(&g);
        }
        let mut c = SYSTEM_CACHE.lock().unwrap_or_else(|e| e.into_inner());
        c.0 -= 1;
        if c.0 == 0 && c.1 == Some(false) {
            let _ = std::fs::remove_dir_all(SYSTEM_STORE);
            c.1 = None;
        }
    }
}

fn text(o: &std::process::Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn podman_runs_busybox_through_vbuild_runc_with_its_default_seccomp_profile() {
    if !preconditions() {
        return;
    }
    let p = Podman::new("run");
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
    let p = Podman::new("det");
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
    let p = Podman::new("tty");
    // `run -t`: the pty master reached conmon over --console-socket; the
    // program's stdio is the terminal, its controlling one, at the size
    // podman asked for.
    let o = p.run(&[
        "--rm",
        "-t",
        IMAGE,
        "sh",
        "-c",
        "[ -t 0 ] && [ -t 1 ] && echo tty; exit 4",
    ]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "tty\r\n",
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
