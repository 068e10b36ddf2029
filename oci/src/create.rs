//! `create`: the container's namespaces, cgroup and root are made and its
//! first process is left waiting on the start fifo, so that every setup
//! error is reported here and `start` only releases the program.

use crate::cgroups;
use crate::error::{io, sys, OciError};
use crate::spec::Spec;
use crate::state::{check_id, Root, Saved};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use vbuild_kernel::cgroup::{Cgroup, DeviceRule, Hierarchy};
use vbuild_runtime::launch::{self, Prepared};

/// `create`'s arguments.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// The container id.
    pub id: String,
    /// The bundle directory (holding config.json).
    pub bundle: PathBuf,
    /// Where to write the init process's pid.
    pub pid_file: Option<PathBuf>,
    /// cgroupsPath is in systemd's `slice:prefix:name` form.
    pub systemd_cgroup: bool,
    /// Unix socket that receives the terminal's master (`process.terminal`).
    pub console_socket: Option<PathBuf>,
    /// Descriptors 3 .. 3 + N of the caller that the process inherits.
    pub preserve_fds: u32,
}

/// Undoes a half-made container unless disarmed.
struct Undo {
    dir: Option<PathBuf>,
    cgroup: Option<(Cgroup, Vec<PathBuf>)>,
    pid: Option<i32>,
}

impl Drop for Undo {
    fn drop(&mut self) {
        if let Some(pid) = self.pid {
            // SAFETY: kill with integer arguments.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        if let Some((cg, made)) = &self.cgroup {
            let _ = cg.kill_all();
            let _ = cgroups::remove(cg, Some(made));
        }
        if let Some(d) = &self.dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// Reads and parses `bundle/config.json`.
pub fn load_spec(bundle: &Path) -> Result<Spec, OciError> {
    let f = bundle.join("config.json");
    let text = std::fs::read(&f).map_err(io(&f))?;
    serde_json::from_slice(&text).map_err(|e| OciError::Config(format!("{}: {e}", f.display())))
}

/// Writes `text` to `path` through a temporary file in the same directory.
pub(crate) fn write_atomic(path: &Path, text: &str) -> Result<(), OciError> {
    let tmp = path.with_extension("vbuild-runc.tmp");
    std::fs::write(&tmp, text).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// Fails at create, as runc does, when the program is not an executable
/// file in the rootfs (looked up in the config's PATH for a bare name);
/// resolved inside the root, so the rootfs's symlinks cannot point out.
fn check_program(rootfs: &Path, program: &str, env: &[String]) -> Result<(), OciError> {
    use vbuild_kernel::rootfs::check_executable;
    let fail = |reason: String| {
        Err(OciError::Config(format!(
            "process.args: cannot run {program}: {reason}"
        )))
    };
    if program.contains('/') {
        let abs = if program.starts_with('/') {
            program.to_string()
        } else {
            format!("/{program}")
        };
        return match check_executable(rootfs, &abs) {
            Ok(()) => Ok(()),
            Err(e) => fail(e.to_string()),
        };
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path.split(':').filter(|d| d.starts_with('/')) {
        if check_executable(rootfs, &format!("{}/{program}", dir.trim_end_matches('/'))).is_ok() {
            return Ok(());
        }
    }
    fail(format!("not found in PATH {path} of {}", rootfs.display()))
}

/// Makes the pid namespace at `path` the one our next child starts in;
/// returns our own (to go back to).
fn enter_pid_ns(path: &Path) -> Result<std::fs::File, OciError> {
    let own = std::fs::File::open("/proc/self/ns/pid_for_children")
        .map_err(io("/proc/self/ns/pid_for_children"))?;
    let target = std::fs::File::open(path).map_err(io(path))?;
    vbuild_kernel::ns::enter(&target, libc::CLONE_NEWPID).map_err(sys(format!(
        "linux.namespaces: join the pid namespace {}",
        path.display()
    )))?;
    Ok(own)
}

/// Creates the container.
pub fn create(root: &Root, o: &CreateOptions) -> Result<Saved, OciError> {
    check_id(&o.id)?;
    crate::cli::check_preserved(o.preserve_fds)?;
    let bundle = std::fs::canonicalize(&o.bundle).map_err(io(&o.bundle))?;
    let spec = load_spec(&bundle)?;
    let mut t = crate::translate::translate(&spec, &bundle, &o.id)?;
    check_program(&t.rootfs, &t.launch.argv[0], &t.launch.env)?;
    match (t.terminal, &o.console_socket) {
        (true, None) => {
            return Err(OciError::Config(
                "process.terminal is true but no --console-socket was given (the terminal's master goes there)".into(),
            ))
        }
        (false, Some(_)) => {
            return Err(OciError::Config(
                "--console-socket was given but process.terminal is false".into(),
            ))
        }
        _ => {}
    }
    let linux = spec.linux.clone().unwrap_or_default();
    let rel = cgroups::group_of(linux.cgroups_path.as_deref(), &o.id, o.systemd_cgroup)?;

    let base = root.dir(&o.id);
    let parent = base
        .parent()
        .expect("a state dir has a parent")
        .to_path_buf();
    std::fs::create_dir_all(&parent).map_err(io(&parent))?;
    match std::fs::create_dir(&base) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(OciError::Exists(o.id.clone()))
        }
        Err(e) => return Err(io(&base)(e)),
    }
    let mut undo = Undo {
        dir: Some(base.clone()),
        cgroup: None,
        pid: None,
    };
    // The container's process (a host uid in a user namespace) opens the
    // start fifo below it.
    std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o711)).map_err(io(&base))?;

    let h = Hierarchy::detect()?;
    if Cgroup::open(&h, &rel)?.is_some_and(|c| c.pids().is_ok_and(|p| !p.is_empty())) {
        return Err(OciError::Config(format!(
            "cgroupsPath: group {rel} already has processes (another container uses it)"
        )));
    }
    let (cg, cgroup_made) = cgroups::create(&h, &rel, &root.cgroups_made_by_others(&o.id))?;
    undo.cgroup = Some((cg.clone(), cgroup_made.clone()));
    let mut rules = cgroups::device_rules(&t.resources.devices)?;
    for d in &linux.devices {
        // A fifo is no device to the cgroup.
        match d.kind.as_str() {
            "b" => rules.push(DeviceRule {
                kind: vbuild_kernel::cgroup::DeviceKind::Block,
                ..DeviceRule::char(d.major as u32, d.minor as u32)
            }),
            "p" => {}
            _ => rules.push(DeviceRule::char(d.major as u32, d.minor as u32)),
        }
    }
    cg.restrict_devices(&rules)?;
    cgroups::apply(&cg, &t.resources)?;

    let fifo = root.fifo(&o.id);
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o622))
        .map_err(sys(format!("mkfifo {}", fifo.display())))?;
    std::fs::set_permissions(&fifo, std::fs::Permissions::from_mode(0o622)).map_err(io(&fifo))?;
    t.custom.start_fifo = Some(fifo);
    t.custom.preserve_fds = o.preserve_fds;

    // The terminal: the first process opens a pty of the container's own
    // devpts once it has pivoted (as runc's does, so `tty` names it), and
    // sends the master over the socket, held open until it has.
    let console = match &o.console_socket {
        Some(path) => Some(crate::console::connect(path)?),
        None => None,
    };
    if let Some(sock) = &console {
        t.custom.console_socket = Some(sock.as_raw_fd());
        t.custom.console_size = spec
            .process
            .as_ref()
            .and_then(|p| p.console_size)
            .map(|c| (c.height, c.width));
    }
    let userns = t.userns.clone();
    let p = Prepared::custom(t.launch, t.custom)?;
    let (go_r, go_w) = launch::pipe().map_err(sys("pipe"))?;
    let (rep_r, rep_w) = launch::pipe().map_err(sys("pipe"))?;
    // A pid namespace joined by path: entered for our next child only.
    let own_pid_ns = match &t.join_pid {
        Some(path) => Some(enter_pid_ns(path)?),
        None => None,
    };
    // The first process starts in the group (see `cgroup::Joiner`).
    let joiner = cg.joiner()?;
    let spawned = launch::spawn(
        &p,
        Some(go_r.as_raw_fd()),
        rep_w.as_raw_fd(),
        None,
        Some(&joiner),
    );
    drop(joiner);
    if let Some(own) = own_pid_ns {
        vbuild_kernel::ns::enter(&own, libc::CLONE_NEWPID)
            .map_err(sys("go back to our own pid namespace"))?;
    }
    let pid = spawned.map_err(sys(
        "clone the container's first process into new namespaces",
    ))?;
    undo.pid = Some(pid);
    drop((go_r, rep_w));
    if let Some(m) = &userns {
        vbuild_kernel::ns::write_id_map_lines(pid, &m.text("uid"), &m.text("gid")).map_err(
            |e| {
                let which = if e.what.ends_with("gid_map") {
                    "gid"
                } else {
                    "uid"
                };
                OciError::Sys {
                    what: format!(
                        "{} {} (linux.{which}Mappings {:?})",
                        e.op,
                        e.what,
                        m.text(which).trim_end().replace('\n', ", ")
                    ),
                    errno: e.errno,
                }
            },
        )?;
    }
    // prestart and createRuntime hooks: in the runtime's namespaces, once
    // the container's exist, before its root is set up; a failure fails
    // create (the undo removes what was made).
    let state = serde_json::json!({
        "ociVersion": crate::OCI_VERSION,
        "id": o.id,
        "status": "creating",
        "pid": pid,
        "bundle": bundle,
        "annotations": spec.annotations,
    });
    for (kind, hook) in &t.create_runtime {
        crate::lifecycle::run_hooks(kind, std::slice::from_ref(hook), &state)?;
    }
    nix::unistd::write(&go_w, b"g").map_err(sys("release the container's process"))?;
    // createContainer hooks: in the container's namespaces once its root
    // is set up, before pivot_root (the process waits there for them).
    if !t.create_container.is_empty() {
        match launch::read_report(&rep_r).map_err(sys("read the container's report"))? {
            Some(f) if f.is_pre_pivot() => {}
            Some(f) => return Err(p.explain(&o.id, f).into()),
            None => {
                return Err(OciError::Sys {
                    what: "the container's process ended before its root was set up".into(),
                    errno: nix::errno::Errno::ECHILD,
                })
            }
        }
        for hook in &t.create_container {
            crate::hooks::run_in_container("createContainer", hook, pid, &state)?;
        }
        nix::unistd::write(&go_w, b"g").map_err(sys("release the container's process"))?;
    }
    drop(go_w);
    match launch::read_report(&rep_r).map_err(sys("read the container's report"))? {
        Some(f) if f.is_ready() => {}
        Some(f) => return Err(p.explain(&o.id, f).into()),
        None => {
            return Err(OciError::Sys {
                what: "the container's process ended before it was ready".into(),
                errno: nix::errno::Errno::ECHILD,
            })
        }
    }
    let start_ticks = vbuild_kernel::process::stat(pid)
        .map(|s| s.start_ticks)
        .unwrap_or(0);
    let saved = Saved {
        id: o.id.clone(),
        pid,
        start_ticks,
        bundle: bundle.clone(),
        rootfs: t.rootfs,
        created: crate::state::rfc3339_now(),
        annotations: spec.annotations.clone(),
        cgroup: rel,
        cgroup_made: Some(cgroup_made),
        start_container: t.start_container,
        poststart: t.poststart,
        poststop: t.poststop,
    };
    root.save(&saved)?;
    if let Some(f) = &o.pid_file {
        write_atomic(f, &pid.to_string())?;
    }
    undo.dir = None;
    undo.cgroup = None;
    undo.pid = None;
    Ok(saved)
}
