//! A vbuild-built Debian bookworm image (`vbuild build debian bookworm
//! --format oci`, systemd as its init) booted through vbuild-runc by real
//! clients: imported into containerd 1.7 (`ctr image import` of the OCI
//! layout as an archive), its init run with `ctr run --runc-binary`,
//! `systemctl is-system-running --wait` must say `running` (the failed
//! units are in the message otherwise), then stopped with systemd's halt
//! signal and removed, nothing left behind; and the same under podman
//! 4.3 (`podman load` of the layout, `run -d --systemd=always`, `exec`,
//! `stop`, `rm`). The image is built once per
//! test binary from the real mirror, so this is a live test: it runs when
//! `VBUILD_E2E=1` (the README's test command's phase 2), as root.

mod common;
use common::containerd::*;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

fn enabled() -> bool {
    if std::env::var("VBUILD_E2E").as_deref() != Ok("1") {
        assert!(
            !vbuild_testsupport::in_ci(),
            "CI=true but VBUILD_E2E is not 1: run ./test.sh"
        );
        eprintln!("skipping live test: set VBUILD_E2E=1 (it builds from deb.debian.org)");
        return false;
    }
    preconditions()
        && vbuild_testsupport::require(
            vbuild().is_file(),
            "the vbuild binary next to vbuild-runc (cargo build --release --locked -p vbuild-builder; ./test.sh builds the workspace)",
        )
}

fn vbuild() -> PathBuf {
    Path::new(BIN).with_file_name("vbuild")
}

/// The built image: its OCI layout and an archive of it, in a temporary
/// directory removed when the last test holding it is done.
struct Image {
    dir: tempfile::TempDir,
}

impl Image {
    fn layout(&self) -> PathBuf {
        self.dir.path().join("bookworm-oci")
    }
    fn archive(&self) -> PathBuf {
        self.dir.path().join("bookworm-oci.tar")
    }
}

static IMAGE: Mutex<Weak<Image>> = Mutex::new(Weak::new());

/// Builds the image, or shares the one a running test built.
fn image() -> Arc<Image> {
    let mut slot = IMAGE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(i) = slot.upgrade() {
        return i;
    }
    let dir = tempfile::Builder::new()
        .prefix("o14s-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let i = Image { dir };
    let o = std::process::Command::new(vbuild())
        .arg("--root")
        .arg(i.dir.path().join("vroot"))
        .args(["--quiet", "build", "debian", "bookworm", "--name", "o14s"])
        .args(["--format", "oci", "--output"])
        .arg(format!("{}/", i.layout().display()))
        .output()
        .unwrap();
    assert!(o.status.success(), "vbuild build: {}", text(&o));
    // The build's own state (package cache) is not needed any more.
    let _ = std::fs::remove_dir_all(i.dir.path().join("vroot"));
    tar(&i.layout(), &i.archive());
    let i = Arc::new(i);
    *slot = Arc::downgrade(&i);
    i
}

/// What systemd needs from the spec that ctr's default one lacks: tmpfs
/// on /run, /run/lock and /tmp (it may not mount them itself without
/// CAP_SYS_ADMIN) and a writable cgroup filesystem; `container=` tells it
/// it is in one.
const SYSTEMD_OPTS: &[&str] = &[
    "--env",
    "container=containerd",
    "--mount",
    "type=tmpfs,src=tmpfs,dst=/run,options=nosuid:nodev:mode=755",
    "--mount",
    "type=tmpfs,src=tmpfs,dst=/run/lock,options=nosuid:nodev:noexec",
    "--mount",
    "type=tmpfs,src=tmpfs,dst=/tmp,options=nosuid:nodev",
    "--mount",
    "type=cgroup,src=cgroup,dst=/sys/fs/cgroup,options=rw:nosuid:nodev:noexec",
];

#[test]
fn a_vbuild_built_debian_boots_systemd_to_running_under_ctr() {
    if !enabled() {
        return;
    }
    let img = image();
    let c = Containerd::start("sd");
    c.import(&img.archive(), "localhost/vb-debian");
    let id = "sd1";
    let mut args: Vec<&str> = vec!["--detach"];
    args.extend(SYSTEMD_OPTS);
    args.extend(["localhost/vb-debian:latest", id, "/sbin/init"]);
    c.ok(&c
        .run_args(&args)
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>());
    let pid = c.runtime_state(id)["pid"].as_i64().unwrap();
    // systemctl needs the manager's socket: wait (bounded) for it.
    let up = (0..300).any(|n| {
        let ok = c
            .exec(
                id,
                &format!("w{n}"),
                &["test", "-S", "/run/systemd/private"],
            )
            .status
            .success();
        if !ok {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        ok
    });
    assert!(up, "systemd never opened /run/systemd/private");
    let o = c.exec(id, "e1", &["systemctl", "is-system-running", "--wait"]);
    let state = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let failed = c.exec(
        id,
        "e2",
        &["systemctl", "--failed", "--no-legend", "--plain"],
    );
    assert_eq!(
        state,
        "running",
        "system state {state}; failed units: {}",
        text(&failed)
    );
    let o = c.exec(id, "e3", &["cat", "/proc/1/comm"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "systemd\n",
        "{}",
        text(&o)
    );
    // systemd's halt signal: it stops its units and exits.
    c.ok(&["task", "kill", "--signal", "SIGRTMIN+3", id]);
    c.wait_stopped(id);
    assert!(!alive(pid), "init is gone");
    c.ok(&["task", "rm", id]);
    c.ok(&["container", "rm", id]);
    assert_eq!(c.state_left(), Vec::<String>::new(), "state dirs left");
    assert_eq!(c.bundles_left(), Vec::<String>::new(), "task bundles left");
    assert_eq!(c.mounts_below(), Vec::<String>::new(), "mounts left");
    let groups = cgroups_with(&format!("{}/{id}", c.ns));
    assert_eq!(groups, Vec::<PathBuf>::new(), "cgroups left");
    assert_eq!(c.shims_after_exit(), Vec::<i32>::new(), "shims left");
}

#[test]
fn a_vbuild_built_debian_boots_systemd_to_running_under_podman() {
    if !enabled()
        || !vbuild_testsupport::require(
            common::podman::which("podman"),
            "podman and conmon (scripts/host-deps.sh installs them)",
        )
    {
        return;
    }
    use common::podman::Podman;
    let img = image();
    let p = Podman::new("sd");
    p.ok(&["load", "-i", img.archive().to_str().unwrap()]);
    // The store is the test's own: its one image is the loaded one.
    let ids = p.ok(&["images", "--quiet", "--no-trunc"]);
    let ids: Vec<&str> = ids.lines().collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let image = ids[0].trim_start_matches("sha256:").to_string();
    let name = format!("o14s-sd-{}", std::process::id());
    // The image's entrypoint is /sbin/init: podman's systemd mode (tmpfs
    // on /run, /run/lock, /tmp, /var/log/journal, name=systemd bound below
    // a read-only /sys/fs/cgroup on this v1/hybrid host, SIGRTMIN+3 to
    // stop).
    let args = p.run_args(&["-d", "--systemd", "always", "--name", &name, &image]);
    let id = p.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let id = id.trim().to_string();
    let up = (0..300).any(|_| {
        let ok = p
            .podman(&["exec", &name, "test", "-S", "/run/systemd/private"])
            .status
            .success();
        if !ok {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        ok
    });
    assert!(up, "systemd never opened /run/systemd/private");
    let o = p.podman(&["exec", &name, "systemctl", "is-system-running", "--wait"]);
    let state = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let failed = p.podman(&[
        "exec",
        &name,
        "systemctl",
        "--failed",
        "--no-legend",
        "--plain",
    ]);
    assert_eq!(
        state,
        "running",
        "system state {state}; failed units: {}",
        text(&failed)
    );
    assert_eq!(p.ok(&["exec", &name, "cat", "/proc/1/comm"]), "systemd\n");
    // systemd made its own groups below the container's.
    let scope = p.ok(&["exec", &name, "cat", "/proc/1/cgroup"]);
    assert!(
        scope
            .lines()
            .any(|l| l.contains(":name=systemd:/") && l.ends_with("/init.scope")),
        "{scope}"
    );
    p.ok(&["stop", "--time", "30", &name]);
    let st = p.ok(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.ExitCode}}",
        &name,
    ]);
    assert_eq!(st.trim(), "exited 0", "systemd halted on SIGRTMIN+3");
    p.ok(&["rm", &name]);
    assert_eq!(p.ok(&["ps", "--all", "--quiet"]), "");
    assert_eq!(p.state_left(), Vec::<String>::new(), "state dirs left");
    assert_eq!(
        Podman::cgroups_with(&id),
        Vec::<PathBuf>::new(),
        "cgroups left"
    );
    assert_eq!(p.mounts_below(), Vec::<String>::new(), "mounts left");
}
