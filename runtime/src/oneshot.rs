//! `vbuild run --rootfs DIR -- CMD`: a one-shot context on any root
//! filesystem, like `systemd-nspawn -D DIR CMD`. The same context as a
//! started guest (namespaces, /dev, /proc masks, read-only /sys with its
//! own cgroup2 view, capabilities, seccomp, device allowlist) with the
//! command as PID 1 on our own stdin/stdout/stderr, no supervisor and no
//! state directory. We wait for it and return its exit code; its cgroup
//! (and network, with `--net`) are removed afterwards, whatever happened.
//!
//! Kept fast by doing nothing that does not need doing: no scan of the
//! rootfs or of mounts, one cgroup, and a new mount namespace that the
//! kernel tears down with its last process.

use crate::error::{sys, RuntimeError};
use crate::launch::{self, LaunchSpec, Prepared};
use crate::net::{NetConfig, NetMode};
use crate::paths::Layout;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use vbuild_kernel::cgroup::{Cgroup, DeviceRule, Hierarchy};
use vbuild_kernel::process;

/// What to run, where.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The root filesystem.
    pub rootfs: PathBuf,
    /// The command and its arguments (a path, or a name looked up in PATH
    /// inside the rootfs).
    pub argv: Vec<String>,
    /// Hostname inside (default: the rootfs directory's name if it is a
    /// valid one, else `run`).
    pub hostname: Option<String>,
    /// Extra environment, `KEY=VALUE`.
    pub env: Vec<String>,
    /// Join the default bridge network with an address of its own (instead
    /// of loopback only).
    pub net: bool,
}

/// Tells one-shot contexts of one process apart.
static SERIAL: AtomicU32 = AtomicU32::new(0);

/// The name used for the context's cgroup and network.
fn context_name() -> String {
    format!(
        "run-{}-{}",
        std::process::id(),
        SERIAL.fetch_add(1, Ordering::Relaxed)
    )
}

fn default_hostname(opts: &RunOptions) -> String {
    opts.hostname.clone().unwrap_or_else(|| {
        opts.rootfs
            .file_name()
            .and_then(|n| n.to_str())
            .map(|n| n.to_ascii_lowercase())
            .filter(|n| crate::name::GuestName::parse(n).is_ok())
            .unwrap_or_else(|| "run".to_string())
    })
}

/// Removes the context's cgroup and network when dropped.
struct Teardown<'a> {
    layout: &'a Layout,
    name: String,
    cgroup: Option<Cgroup>,
    net: Option<String>,
}

impl Drop for Teardown<'_> {
    fn drop(&mut self) {
        if let Some(cg) = &self.cgroup {
            let _ = cg.kill_all();
            let _ = cg.remove();
        }
        if let Some(network) = &self.net {
            let _ = crate::net::detach(self.layout, &self.name);
            let _ = crate::net::release(self.layout, network, &self.name);
        }
    }
}

/// The running guest of this state root whose directory holds `rootfs`
/// (its plain rootfs, overlay upper or mounted root), if any.
fn running_owner(layout: &Layout, rootfs: &std::path::Path) -> Option<String> {
    let want = std::fs::canonicalize(rootfs).ok()?;
    let store = crate::store::GuestStore::new(layout);
    store.names().ok()?.into_iter().find(|g| {
        let running = matches!(
            crate::state::State::load(layout, g)
                .ok()
                .flatten()
                .map(|s| s.liveness()),
            Some(crate::state::Liveness::Running { .. })
        );
        running
            && std::fs::canonicalize(layout.guest_dir(g))
                .is_ok_and(|dir| want.starts_with(&dir) || dir.starts_with(&want))
    })
}

/// Runs the command in a fresh context and returns its exit code (128 +
/// signal number when it was killed).
pub fn run(layout: &Layout, opts: &RunOptions) -> Result<i32, RuntimeError> {
    let label = "run";
    if !opts.rootfs.is_dir() {
        return Err(RuntimeError::RunRootfsMissing {
            path: opts.rootfs.clone(),
        });
    }
    if let Some(guest) = running_owner(layout, &opts.rootfs) {
        return Err(RuntimeError::RunRootfsInUse {
            path: opts.rootfs.clone(),
            guest,
        });
    }
    let Some(program) = opts.argv.first() else {
        return Err(RuntimeError::Command {
            name: label.into(),
            command: String::new(),
            reason: "no command given (put it after --)".into(),
        });
    };
    if program.starts_with('/') {
        vbuild_kernel::rootfs::check_executable(&opts.rootfs, program).map_err(|e| {
            RuntimeError::Command {
                name: label.into(),
                command: program.clone(),
                reason: e.to_string(),
            }
        })?;
    }
    let name = context_name();
    let mut td = Teardown {
        layout,
        name: name.clone(),
        cgroup: None,
        net: None,
    };
    let cg_err = |source| RuntimeError::Cgroup {
        name: label.into(),
        source,
    };
    let h = Hierarchy::detect().map_err(cg_err)?;
    let cg = Cgroup::create(&h, &crate::store::cgroup_name(&name)).map_err(cg_err)?;
    td.cgroup = Some(cg.clone());
    cg.restrict_devices(&DeviceRule::standard())
        .map_err(cg_err)?;
    let net_cfg: Option<NetConfig> = if opts.net {
        let network = crate::net::DEFAULT_NETWORK.to_string();
        let c = crate::net::resolve(layout, &name, NetMode::Bridge, &network, &[], &[])?;
        td.net = Some(network);
        Some(c)
    } else {
        None
    };

    let mut env = crate::start::init_env(&crate::state::new_uuid(), false);
    env.retain(|e| !e.starts_with("NOTIFY_SOCKET="));
    if let Ok(t) = std::env::var("TERM") {
        env.push(format!("TERM={t}"));
    }
    env.extend(opts.env.iter().cloned());
    let spec = LaunchSpec {
        rootfs: opts.rootfs.clone(),
        argv: opts.argv.clone(),
        env,
        hostname: default_hostname(opts),
        console: None,
        notify_socket: None,
        host_files: vec![
            ("container-manager".into(), "vbuild\n".into()),
            ("os-release".into(), crate::start::host_os_release()),
        ],
        private_net: true,
        cgroupns: cg.unified_dir().is_some(),
        timens: vbuild_kernel::ns::has_time_ns(),
        userns: false,
        id_base: 0,
        die_with_parent: true,
        keep_mknod: true,
        tmpfs: Default::default(),
        root_tree: false,
    };
    let p = Prepared::new(spec)?;
    let (go_r, go_w) = launch::pipe().map_err(sys(label, "pipe"))?;
    let (rep_r, rep_w) = launch::pipe().map_err(sys(label, "pipe"))?;
    use std::os::fd::AsRawFd;
    let joiner = cg.joiner().map_err(cg_err)?;
    let pid = launch::spawn(
        &p,
        Some(go_r.as_raw_fd()),
        rep_w.as_raw_fd(),
        None,
        Some(&joiner),
    )
    .map_err(sys(label, "clone3 into new namespaces"))?;
    drop((go_r, rep_w, joiner));
    let setup = (|| -> Result<(), RuntimeError> {
        if let Some(c) = &net_cfg {
            crate::net::attach(layout, &name, c, pid)?;
        }
        Ok(())
    })();
    if let Err(e) = setup {
        drop(go_w);
        let _ = process::wait_exit_code(pid);
        return Err(e);
    }
    nix::unistd::write(&go_w, b"g").map_err(sys(label, "release the command"))?;
    drop(go_w);
    let report = launch::read_report(&rep_r).map_err(sys(label, "read the report"));
    let code = process::wait_exit_code(pid).map_err(sys(label, "wait"))?;
    if let Some(f) = report? {
        return Err(p.explain(label, f));
    }
    drop(td);
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostname_comes_from_the_rootfs_name_when_valid() {
        let o = RunOptions {
            rootfs: "/srv/Web01".into(),
            ..Default::default()
        };
        assert_eq!(default_hostname(&o), "web01");
        let o = RunOptions {
            rootfs: "/srv/my_root".into(),
            ..Default::default()
        };
        assert_eq!(default_hostname(&o), "run");
    }

    #[test]
    fn the_rootfs_of_a_running_guest_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let l = Layout::new(Some(d.path()));
        let rootfs = l.guest_rootfs("web01");
        std::fs::create_dir_all(rootfs.join("etc")).unwrap();
        std::fs::write(
            l.guest_config("web01"),
            "name = \"web01\"\ndistro = \"debian\"\nrelease = \"bookworm\"\n",
        )
        .unwrap();
        let o = RunOptions {
            rootfs: rootfs.clone(),
            argv: vec!["/bin/true".into()],
            ..Default::default()
        };
        // Stopped: run may use it (and fails later on the missing program).
        let e = run(&l, &o).unwrap_err().to_string();
        assert!(e.contains("cannot run /bin/true"), "{e}");
        // Running (this test process stands in for its init).
        let me = std::process::id() as i32;
        let start = vbuild_kernel::process::stat(me).unwrap().start_ticks;
        std::fs::create_dir_all(l.run_dir("web01")).unwrap();
        crate::state::State {
            name: "web01".into(),
            supervisor_pid: me,
            supervisor_start: start,
            init_pid: me,
            init_start: start,
            started_at: 0,
            cgroup: "vbuild/web01".into(),
            boot_id: "b".into(),
            init_kind: Default::default(),
            userns: true,
            id_base: 0,
            ready: true,
            status_text: None,
            state_saves: 0,
        }
        .save(&l)
        .unwrap();
        for dir in [rootfs.clone(), rootfs.join("etc")] {
            let o = RunOptions {
                rootfs: dir.clone(),
                ..o.clone()
            };
            let e = run(&l, &o).unwrap_err().to_string();
            assert!(
                e.contains("that is guest web01's root filesystem and web01 is running"),
                "{}: {e}",
                dir.display()
            );
        }
    }

    #[test]
    fn missing_rootfs_and_missing_command_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let l = Layout::new(Some(d.path()));
        let o = RunOptions {
            rootfs: d.path().join("nope"),
            argv: vec!["/bin/true".into()],
            ..Default::default()
        };
        let e = run(&l, &o).unwrap_err().to_string();
        assert!(e.starts_with("run --rootfs "), "{e}");
        assert!(
            e.contains("no such directory") && !e.contains("guest run"),
            "{e}"
        );
        let o = RunOptions {
            rootfs: d.path().to_path_buf(),
            argv: vec!["/bin/true".into()],
            ..Default::default()
        };
        let e = run(&l, &o).unwrap_err().to_string();
        assert!(e.contains("cannot run /bin/true"), "{e}");
    }
}
