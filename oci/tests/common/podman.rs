//! One isolated podman (4.3, with conmon) driving vbuild-runc: see
//! podman.rs for what it keeps where.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub const BUSYBOX: &str = "/bin/busybox";
pub const BIN: &str = env!("CARGO_BIN_EXE_vbuild-runc");
pub const IMAGE: &str = "localhost/vb-busybox";

/// podman 4.3 keeps its blob-info cache in /var/lib/containers/cache for
/// root whatever `--root` says. When that directory was not there before
/// the first test, the last test to finish removes it. The count of live
/// `Podman`s and whether the directory pre-existed share one lock, so no
/// test starts podman while another removes it.
static SYSTEM_CACHE: super::SystemDir = super::SystemDir::new("/var/lib/containers");

pub fn which(prog: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(prog).is_file()))
}

pub fn preconditions() -> bool {
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
pub struct Podman {
    dir: tempfile::TempDir,
    pub cgroup_parent: String,
}

impl Podman {
    pub fn new(tag: &str) -> Podman {
        SYSTEM_CACHE.enter();
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
        p
    }

    /// One isolated podman with a busybox image imported as [`IMAGE`].
    pub fn with_busybox(tag: &str) -> Podman {
        let p = Podman::new(tag);
        let d = p.path().to_path_buf();
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

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn state_root(&self) -> PathBuf {
        self.path().join("runc-state")
    }

    /// podman with every path of its own; stdout and stderr go to files
    /// (conmon may keep pipes open past podman's exit).
    pub fn podman(&self, args: &[&str]) -> std::process::Output {
        let d = self.path();
        super::bundle::output_in_files(
            d,
            Command::new("podman")
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
                .args(args),
        )
    }

    pub fn ok(&self, args: &[&str]) -> String {
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
    pub fn run_args(&self, extra: &[&str]) -> Vec<String> {
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

    pub fn run(&self, extra: &[&str]) -> std::process::Output {
        let args = self.run_args(extra);
        self.podman(&args.iter().map(String::as_str).collect::<Vec<_>>())
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

    /// Every cgroup directory (any hierarchy) whose path holds `needle`.
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

    pub fn mounts_below(&self) -> Vec<String> {
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
        SYSTEM_CACHE.leave();
    }
}

#[allow(unused_imports)] // not every test binary that has this module uses it
pub use super::text;
