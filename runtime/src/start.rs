//! `vbuild start NAME`: checks everything that can be checked first (so a
//! bad request changes nothing), prepares the guest's cgroup, limits, disk,
//! console pty and sockets, starts the supervisor (which forks init into
//! new namespaces), then — while init still waits — puts init into the
//! cgroup, writes its id maps and builds its network, lets it go, and
//! returns once init is exec'd or says why it could not be.
//!
//! Until the supervisor runs, an error undoes what start made; after that,
//! the supervisor owns the cleanup (init exits, the supervisor sees it and
//! removes everything), and start waits for it before reporting the error.

use crate::config::{GuestConfig, InitKind};
use crate::error::{io, sys, RuntimeError};
use crate::launch::{self, LaunchSpec, Prepared};
use crate::name::GuestName;
use crate::net::NetMode;
use crate::paths::Layout;
use crate::state::{self, Liveness, RunLock, State};
use crate::supervisor::{fds, SupervisorProgram, SupervisorSpec};
use nix::errno::Errno;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use vbuild_kernel::cgroup::{Cgroup, DeviceRule, Hierarchy};

/// How to start a guest.
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// Run without a user namespace (the guest's root is the host's root:
    /// not a security boundary). Also on when guest.toml says
    /// `privileged = true`. Off by default: every other guest gets its own
    /// user namespace and id range.
    pub privileged: bool,
    /// The supervisor program to run.
    pub supervisor: SupervisorProgram,
    /// What the supervisor runs (program and arguments) after the guest
    /// rebooted itself, to start it again; `None`: a reboot stops it.
    pub on_reboot: Option<Vec<String>>,
}

/// A started guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    /// Init's pid as the host sees it.
    pub init_pid: i32,
    /// The supervisor's pid.
    pub supervisor_pid: i32,
    /// This boot's id (`container_uuid`).
    pub boot_id: String,
}

/// How long start waits for the supervisor to report or to clean up.
const SUPERVISOR_WAIT: Duration = Duration::from_secs(30);

/// The environment init gets: what systemd's container interface asks of
/// a container manager, and a sane PATH.
pub(crate) fn init_env(boot_id: &str, console: bool) -> Vec<String> {
    let mut env = vec![
        "container=vbuild".to_string(),
        format!("container_uuid={boot_id}"),
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
        "HOME=/".to_string(),
        "NOTIFY_SOCKET=/run/host/notify".to_string(),
    ];
    if console {
        env.push("TERM=vt220".to_string());
    }
    env
}

/// The host's os-release, for the guest's /run/host/os-release.
pub(crate) fn host_os_release() -> String {
    ["/etc/os-release", "/usr/lib/os-release"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default()
}

/// The cgroup that carries guest `name`'s limits (`vbuild/NAME`).
pub fn limits_cgroup(name: &str) -> String {
    crate::store::cgroup_name(name)
}

/// The group below it that init runs in and the guest's cgroup namespace
/// is rooted at (`vbuild/NAME/guest`): the guest can see and change only
/// what is below its limits, never the limits themselves.
pub fn guest_cgroup(name: &str) -> String {
    format!("{}/guest", crate::store::cgroup_name(name))
}

/// The id range of unprivileged guest `n`: its recorded one (kept when
/// still free), else a new one from the host-wide registry, recorded in
/// guest.toml before it is used.
fn id_range(
    layout: &Layout,
    n: &str,
    cfg: &mut GuestConfig,
) -> Result<crate::idrange::IdRange, RuntimeError> {
    let reg = crate::idrange::Registry::host();
    let range = reg.allocate(layout.root(), n, cfg.ids)?;
    if cfg.ids != Some(range) {
        cfg.ids = Some(range);
        cfg.save(&layout.guest_config(n))?;
    }
    Ok(range)
}

/// Everything start made before the supervisor took over; dropped
/// without `disarm`, it removes it again.
struct Undo<'a> {
    layout: &'a Layout,
    name: &'a str,
    claimed: bool,
    disk: bool,
    cgroup: Option<Cgroup>,
    armed: bool,
}

impl Undo<'_> {
    fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(cg) = &self.cgroup {
            let _ = cg.remove();
        }
        if self.disk {
            let _ = crate::disk::deactivate(self.layout, self.name);
        }
        if self.claimed {
            let _ = crate::claim::release(self.layout, self.name);
        }
        state::clear(self.layout, self.name);
    }
}

/// Starts guest `name`; returns once its init runs.
pub fn start(
    layout: &Layout,
    name: &GuestName,
    opts: &StartOptions,
) -> Result<Started, RuntimeError> {
    let n = name.as_str();
    let cfg_path = layout.guest_config(n);
    if !cfg_path.is_file() {
        return Err(RuntimeError::NotFound(n.to_string()));
    }
    let mut cfg = GuestConfig::load(&cfg_path)?;
    let privileged = opts.privileged || cfg.privileged;
    if let Some(st) = State::load(layout, n)? {
        match st.liveness() {
            Liveness::Running { .. } => {
                return Err(RuntimeError::AlreadyRunning {
                    name: n.to_string(),
                    init_pid: st.init_pid,
                })
            }
            Liveness::Stopping => return Err(RuntimeError::Busy(n.to_string())),
            Liveness::Stale => {
                let _l = RunLock::take_within(layout, n, Duration::from_secs(5))?;
                crate::stop::cleanup(layout, n, &st.cgroup, true)?;
            }
        }
    }
    let rootfs = layout.guest_rootfs(n);
    if !rootfs.is_dir() {
        return Err(RuntimeError::RootfsMissing {
            name: n.to_string(),
            path: rootfs,
        });
    }
    let lock = RunLock::try_take(layout, n)?.ok_or_else(|| RuntimeError::Busy(n.to_string()))?;
    let mut undo = Undo {
        layout,
        name: n,
        claimed: false,
        disk: false,
        cgroup: None,
        armed: true,
    };
    // Before anything named after the guest exists on the host.
    crate::claim::claim(layout, n)?;
    undo.claimed = true;
    crate::disk::activate(layout, n).map_err(|source| RuntimeError::Disk {
        name: n.to_string(),
        source,
    })?;
    undo.disk = true;
    let overlay = crate::layer::is_overlay(layout, n);
    // An overlay guest's init comes from its template (the mount point is empty).
    let init_root = match crate::layer::template_rootfs(layout, &cfg) {
        Some(r) if overlay => r?,
        _ => rootfs.clone(),
    };
    vbuild_kernel::rootfs::check_executable(&init_root, &cfg.init.path).map_err(|source| {
        RuntimeError::Init {
            name: n.to_string(),
            source,
        }
    })?;

    let cg_err = |source| RuntimeError::Cgroup {
        name: n.to_string(),
        source,
    };
    let ids = if privileged {
        None
    } else {
        Some(id_range(layout, n, &mut cfg)?)
    };
    let base = ids.map_or(0, |r| r.base);
    let h = Hierarchy::detect().map_err(cg_err)?;
    let rel = limits_cgroup(n);
    let cg = Cgroup::create(&h, &rel).map_err(cg_err)?;
    undo.cgroup = Some(cg.clone());
    cg.restrict_devices(&DeviceRule::standard())
        .map_err(cg_err)?;
    crate::limits::apply_guest(&cg, &cfg.limits, layout, n).map_err(|source| {
        RuntimeError::Limits {
            name: n.to_string(),
            source,
        }
    })?;
    // Made after the limits so that it inherits them (v1 devices copies
    // its parent's rules at creation).
    let guest_rel = guest_cgroup(n);
    let guest_cg = Cgroup::create(&h, &guest_rel).map_err(cg_err)?;
    if ids.is_some() {
        // Delegate the guest's unified cgroup to its root (systemd makes
        // its own groups below it), as systemd's Delegate= does; the
        // limits one level up stay the host's.
        if let Some(dir) = guest_cg.unified_dir() {
            for f in [
                "",
                "cgroup.procs",
                "cgroup.threads",
                "cgroup.subtree_control",
            ] {
                let p = dir.join(f);
                std::os::unix::fs::chown(&p, Some(base), Some(base)).map_err(io(&p))?;
            }
        }
    }

    let run_dir = layout.run_dir(n);
    let pty = vbuild_kernel::pty::open().map_err(|e| sys(n, e.op)(e.errno))?;
    if ids.is_some() {
        // The guest's root (and its tty group) must be able to open its console.
        std::os::unix::fs::chown(&pty.slave, Some(base), Some(base + 5)).map_err(io(&pty.slave))?;
    }
    let notify_path = state::notify_socket(layout, n);
    let notify = bind_socket(&notify_path, libc::SOCK_DGRAM, 0o666)
        .map_err(sys(n, format!("bind {}", notify_path.display())))?;
    let console_path = state::console_socket(layout, n);
    let listen = bind_socket(&console_path, libc::SOCK_STREAM, 0o600)
        .map_err(sys(n, format!("bind {}", console_path.display())))?;
    // SAFETY: listen on our socket.
    if unsafe { libc::listen(listen.as_raw_fd(), 4) } != 0 {
        return Err(sys(n, "listen")(Errno::last()));
    }
    let log = state::console_log(layout, n);
    // A new boot starts a new log; the previous one stays as console.log.1.
    if log.exists() {
        let _ = std::fs::rename(&log, log.with_extension("log.1"));
    }

    let boot_id = state::new_uuid();
    let private_net = cfg.net.mode != NetMode::Host;
    let mut argv = vec![cfg.init.path.clone()];
    argv.extend(cfg.init.args.iter().cloned());
    let launch = LaunchSpec {
        rootfs: rootfs.clone(),
        argv,
        env: init_env(&boot_id, true),
        hostname: n.to_string(),
        console: Some(pty.slave.clone()),
        notify_socket: Some(notify_path.clone()),
        host_files: vec![
            ("container-manager".into(), "vbuild\n".into()),
            ("os-release".into(), host_os_release()),
        ],
        private_net,
        cgroupns: cg.unified_dir().is_some(),
        timens: vbuild_kernel::ns::has_time_ns(),
        userns: ids.is_some(),
        id_base: base,
        die_with_parent: false,
        keep_mknod: true,
        tmpfs: crate::tmpfs::TmpfsSizes::for_memory(cfg.limits.memory),
        root_tree: overlay,
    };
    let prepared = Prepared::new(launch.clone())?;
    let spec = SupervisorSpec {
        name: n.to_string(),
        root: layout_root(layout),
        launch,
        init_kind: cfg.init.kind,
        cgroup: rel.clone(),
        guest_cgroup: guest_rel.clone(),
        boot_id: boot_id.clone(),
        net_attached: private_net,
        on_reboot: opts.on_reboot.clone(),
    };
    let spec_path = run_dir.join("launch.json");
    crate::config::write_atomic(
        &spec_path,
        &serde_json::to_vec_pretty(&spec).expect("spec serializes"),
    )
    .map_err(io(&spec_path))?;

    let (go_r, go_w) = launch::pipe().map_err(sys(n, "pipe"))?;
    let (rep_r, rep_w) = launch::pipe().map_err(sys(n, "pipe"))?;
    let (ctl_r, ctl_w) = launch::pipe().map_err(sys(n, "pipe"))?;
    let (tree_tx, tree_rx) = nix::sys::socket::socketpair(
        nix::sys::socket::AddressFamily::Unix,
        nix::sys::socket::SockType::Stream,
        None,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
    )
    .map_err(sys(n, "socketpair"))?;
    let sup_log_path = state::supervisor_log(layout, n);
    let sup_log = std::fs::File::create(&sup_log_path).map_err(io(&sup_log_path))?;
    let handed = [
        lock.fd().as_raw_fd(),
        pty.master.as_raw_fd(),
        notify.as_raw_fd(),
        listen.as_raw_fd(),
        go_r.as_raw_fd(),
        rep_w.as_raw_fd(),
        ctl_w.as_raw_fd(),
        tree_rx.as_raw_fd(),
    ];
    spawn_supervisor(&opts.supervisor, &run_dir, handed, sup_log.as_raw_fd())
        .map_err(sys(n, "fork the supervisor"))?;
    // The supervisor holds these now; it owns cleanup from here on.
    undo.disarm();
    drop((
        lock, pty, notify, listen, go_r, rep_w, ctl_w, tree_rx, sup_log,
    ));

    let line = read_line(&ctl_r, SUPERVISOR_WAIT);
    let init_pid = match line.as_deref().and_then(|l| l.strip_prefix("pid ")) {
        Some(p) => p.trim().parse::<i32>().unwrap_or(0),
        None => {
            let message = line
                .as_deref()
                .and_then(|l| l.strip_prefix("error "))
                .map(|m| m.trim().to_string())
                .or_else(|| last_line(&sup_log_path))
                .unwrap_or_else(|| {
                    format!("it ended without a word; see {}", sup_log_path.display())
                });
            wait_for_cleanup(layout, n);
            return Err(RuntimeError::Supervisor {
                name: n.to_string(),
                message,
            });
        }
    };

    // Init waits on the go pipe: make it part of the guest first.
    let setup = (|| -> Result<(), RuntimeError> {
        if ids.is_none() {
            guest_cg.attach(init_pid).map_err(cg_err)?;
        }
        // (An unprivileged guest's init is in its group already: the
        // supervisor put the process that made it there.)
        if ids.is_some() {
            vbuild_kernel::ns::write_id_maps(init_pid, base, crate::idrange::SIZE)
                .map_err(|e| sys(n, e.what.clone())(e.errno))?;
        }
        if let Some(tree) = root_tree(
            layout,
            &cfg,
            n,
            &rootfs,
            overlay,
            ids.map(|_| (init_pid, base)),
        )? {
            vbuild_kernel::fdpass::send_fd(tree_tx.as_raw_fd(), tree.as_raw_fd())
                .map_err(sys(n, "hand init its root filesystem"))?;
        }
        if private_net {
            crate::net::attach(layout, n, &cfg.net, init_pid)?;
        }
        Ok(())
    })();
    if let Err(e) = setup {
        drop(go_w);
        wait_for_cleanup(layout, n);
        return Err(e);
    }
    nix::unistd::write(&go_w, b"g").map_err(sys(n, "release init"))?;
    drop(go_w);
    match launch::read_report(&rep_r).map_err(sys(n, "read init's report"))? {
        None => {}
        Some(f) => {
            wait_for_cleanup(layout, n);
            return Err(prepared.explain(n, f));
        }
    }
    let st = State::load(layout, n)?.ok_or_else(|| RuntimeError::InitExited {
        name: n.to_string(),
        log: state::console_log(layout, n),
    })?;
    Ok(Started {
        init_pid: st.init_pid,
        supervisor_pid: st.supervisor_pid,
        boot_id: st.boot_id,
    })
}

/// The guest's root as a detached tree for its init, or `None` when init
/// bind-mounts its rootfs itself (a privileged full copy). An unprivileged
/// guest's root owns its tree through id mapping (`userns` = its init's pid
/// and root uid): the tree itself is id-mapped for a full copy, the layers
/// under the overlay for an overlay guest (see `vbuild_kernel::overlay`).
fn root_tree(
    layout: &Layout,
    cfg: &GuestConfig,
    n: &str,
    rootfs: &std::path::Path,
    overlay: bool,
    userns: Option<(i32, u32)>,
) -> Result<Option<std::os::fd::OwnedFd>, RuntimeError> {
    if overlay {
        let ids = userns.map(|(pid, root)| vbuild_kernel::overlay::LayerIds {
            userns_pid: pid,
            root,
        });
        return Ok(Some(crate::layer::root_tree(layout, cfg, n, ids)?));
    }
    let Some((pid, _)) = userns else {
        return Ok(None);
    };
    let tree =
        vbuild_kernel::idmap::idmapped_tree(rootfs, pid).map_err(|e| RuntimeError::Setup {
            name: n.to_string(),
            step: format!("{} {}", e.op, e.path),
            errno: e.errno,
        })?;
    Ok(Some(tree))
}

/// Waits until the guest says READY=1 (systemd booted), at most
/// `timeout`. Guests whose init does not speak the notify protocol
/// (`sysvinit`, `other`) count as ready once init runs.
pub fn wait_ready(
    layout: &Layout,
    name: &GuestName,
    timeout: Duration,
) -> Result<(), RuntimeError> {
    let n = name.as_str();
    let until = Instant::now() + timeout;
    loop {
        let st = State::load(layout, n)?.ok_or_else(|| RuntimeError::InitExited {
            name: n.to_string(),
            log: state::console_log(layout, n),
        })?;
        if !matches!(st.liveness(), Liveness::Running { .. }) {
            return Err(RuntimeError::InitExited {
                name: n.to_string(),
                log: state::console_log(layout, n),
            });
        }
        if st.ready || st.init_kind != InitKind::Systemd {
            return Ok(());
        }
        if Instant::now() >= until {
            return Err(RuntimeError::Timeout {
                name: n.to_string(),
                what: "READY=1 from init",
                secs: timeout.as_secs(),
                hint: "see `vbuild console` or the console log; systemd may still be booting",
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The `root` a layout was made from (`None` for the defaults), so the
/// supervisor rebuilds the same layout.
fn layout_root(layout: &Layout) -> Option<PathBuf> {
    if *layout == Layout::new(None) {
        None
    } else {
        Some(layout.root().to_path_buf())
    }
}

/// Waits until the supervisor released the state directory (it cleaned up
/// and exited).
fn wait_for_cleanup(layout: &Layout, name: &str) {
    let _ = RunLock::take_within(layout, name, SUPERVISOR_WAIT);
}

fn bind_socket(path: &Path, kind: libc::c_int, mode: u32) -> Result<OwnedFd, Errno> {
    use nix::sys::socket::{bind, socket, AddressFamily, SockFlag, SockType, UnixAddr};
    let _ = std::fs::remove_file(path);
    let ty = if kind == libc::SOCK_DGRAM {
        SockType::Datagram
    } else {
        SockType::Stream
    };
    let fd = socket(AddressFamily::Unix, ty, SockFlag::SOCK_CLOEXEC, None)?;
    let addr = UnixAddr::new(path)?;
    bind(fd.as_raw_fd(), &addr)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
    Ok(fd)
}

/// Reads one line from `fd`, waiting at most `timeout`; `None` on end of
/// file or timeout.
fn read_line(fd: &OwnedFd, timeout: Duration) -> Option<String> {
    let until = Instant::now() + timeout;
    let mut out = Vec::new();
    let mut b = [0u8; 1];
    loop {
        let left = until.saturating_duration_since(Instant::now());
        let mut p = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd.
        let r = unsafe { libc::poll(&mut p, 1, left.as_millis() as i32) };
        if r == 0 {
            return None;
        }
        if r < 0 {
            if Errno::last() == Errno::EINTR {
                continue;
            }
            return None;
        }
        match nix::unistd::read(fd.as_raw_fd(), &mut b) {
            Ok(1) if b[0] == b'\n' => return Some(String::from_utf8_lossy(&out).into_owned()),
            Ok(1) => out.push(b[0]),
            Err(Errno::EINTR) => {}
            _ => return (!out.is_empty()).then(|| String::from_utf8_lossy(&out).into_owned()),
        }
    }
}

fn last_line(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(str::to_string)
}

/// Runs the supervisor program detached from us: double fork (so it is
/// nobody's child here and becomes its own session leader), descriptors
/// moved to their fixed numbers, stdin on /dev/null, stdout and stderr on
/// its log, nothing else inherited.
fn spawn_supervisor(
    prog: &SupervisorProgram,
    run_dir: &Path,
    handed: [RawFd; 8],
    log: RawFd,
) -> Result<(), Errno> {
    let path = CString::new(prog.program.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    let mut argv: Vec<CString> = vec![path.clone()];
    for a in &prog.args {
        argv.push(CString::new(a.as_str()).map_err(|_| Errno::EINVAL)?);
    }
    argv.push(CString::new(run_dir.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?);
    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|c| c.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    // Copies above every target number, so moving one never clobbers another.
    let dup_high = |fd: RawFd| -> Result<OwnedFd, Errno> {
        // SAFETY: fcntl duplicate; the new descriptor is ours.
        let r = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 100) };
        if r < 0 {
            return Err(Errno::last());
        }
        // SAFETY: r is new and ours.
        Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(r) })
    };
    let mut high = Vec::with_capacity(handed.len());
    for fd in handed {
        high.push(dup_high(fd)?);
    }
    let log_high = dup_high(log)?;
    let null = std::fs::File::open("/dev/null")
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
    let null_fd = null.as_raw_fd();
    let high_fds: Vec<RawFd> = high.iter().map(|f| f.as_raw_fd()).collect();
    let log_fd = log_high.as_raw_fd();
    // SAFETY: between fork and exec both children only make system calls
    // on the values prepared above.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Child => unsafe {
            libc::setsid();
            if libc::fork() != 0 {
                libc::_exit(0);
            }
            // A daemon keeps no directory of ours busy.
            libc::chdir(c"/".as_ptr());
            libc::dup2(null_fd, 0);
            libc::dup2(log_fd, 1);
            libc::dup2(log_fd, 2);
            for (i, fd) in high_fds.iter().enumerate() {
                libc::dup2(*fd, fds::LOCK + i as i32);
            }
            libc::syscall(
                libc::SYS_close_range,
                (fds::LOCK + fds::COUNT) as u32,
                u32::MAX,
                0,
            );
            libc::execv(path.as_ptr(), ptrs.as_ptr());
            let msg = b"vbuild: cannot execute the supervisor program\n";
            libc::write(2, msg.as_ptr().cast(), msg.len());
            libc::_exit(127);
        },
        nix::unistd::ForkResult::Parent { child } => {
            nix::sys::wait::waitpid(child, None)?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_gets_the_container_interface_environment() {
        let env = init_env("1234", true);
        assert!(env.contains(&"container=vbuild".to_string()));
        assert!(env.contains(&"container_uuid=1234".to_string()));
        assert!(env.contains(&"NOTIFY_SOCKET=/run/host/notify".to_string()));
    }

    #[test]
    fn limits_sit_above_the_guests_own_group() {
        assert_eq!(limits_cgroup("mail01"), "vbuild/mail01");
        assert!(guest_cgroup("mail01").starts_with(&format!("{}/", limits_cgroup("mail01"))));
    }

    #[test]
    fn layout_root_round_trips() {
        assert_eq!(layout_root(&Layout::new(None)), None);
        let l = Layout::new(Some(Path::new("/tmp/x")));
        assert_eq!(Layout::new(layout_root(&l).as_deref()), l);
    }
}
