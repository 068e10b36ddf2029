//! The hand-off from `start` to a guest's supervisor: its console pty,
//! notify and console sockets, `launch.json`, the pipes init waits on, the
//! detached supervisor process itself, and then the talk with it while
//! init waits (its pid, its root filesystem, the go signal, its report).
//! `RealHost::supervisor_spawn` is the only caller.

use crate::error::{io, sys, RuntimeError};
use crate::host::{Boot, SpawnRequest};
use crate::launch::{self, LaunchSpec, Prepared};
use crate::net::NetMode;
use crate::paths::Layout;
use crate::start::Started;
use crate::state::{self, RunLock, State};
use crate::supervisor::{fds, SupervisorProgram, SupervisorSpec};
use nix::errno::Errno;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long start waits for the supervisor to report or to clean up.
const SUPERVISOR_WAIT: Duration = Duration::from_secs(30);

/// A supervisor that runs, with init waiting on `go`.
pub(crate) struct RealBoot {
    layout: Layout,
    name: String,
    prepared: Prepared,
    ctl: OwnedFd,
    go: OwnedFd,
    report: OwnedFd,
    tree: OwnedFd,
    sup_log: PathBuf,
}

/// Prepares the supervisor's files and starts it.
pub(crate) fn spawn(layout: &Layout, req: SpawnRequest<'_>) -> Result<RealBoot, RuntimeError> {
    let n = req.name;
    let cfg = req.cfg;
    let base = req.ids.map_or(0, |r| r.base);
    let run_dir = layout.run_dir(n);
    let pty = vbuild_kernel::pty::open().map_err(|e| sys(n, e.op)(e.errno))?;
    if req.ids.is_some() {
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
        rootfs: req.rootfs.to_path_buf(),
        argv,
        env: crate::start::init_env(&boot_id, true),
        hostname: n.to_string(),
        console: Some(pty.slave.clone()),
        notify_socket: Some(notify_path.clone()),
        host_files: vec![
            ("container-manager".into(), "vbuild\n".into()),
            ("os-release".into(), crate::start::host_os_release()),
        ],
        private_net,
        cgroupns: req.cgroupns,
        timens: vbuild_kernel::ns::has_time_ns(),
        userns: req.ids.is_some(),
        id_base: base,
        die_with_parent: false,
        keep_mknod: true,
        tmpfs: crate::tmpfs::TmpfsSizes::for_memory(cfg.limits.memory),
        root_tree: crate::layer::is_overlay(layout, n),
    };
    let prepared = Prepared::new(launch.clone())?;
    let spec = SupervisorSpec {
        name: n.to_string(),
        root: layout_root(layout),
        launch,
        init_kind: cfg.init.kind,
        cgroup: req.cgroup.to_string(),
        guest_cgroup: req.guest_cgroup.to_string(),
        boot_id,
        net_attached: private_net,
        on_reboot: req.on_reboot.clone(),
        on_exit: req.on_exit.clone(),
    };
    let spec_path = run_dir.join("launch.json");
    crate::fsutil::write_atomic(
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
    let lock: RunLock = req.lock;
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
    debug_assert_eq!(fds::LOCK, FIRST_HANDED);
    debug_assert_eq!(handed.len(), fds::COUNT as usize);
    spawn_detached(&Detached {
        prog: req.supervisor,
        dir: &run_dir,
        handed: &handed,
        log: sup_log.as_raw_fd(),
        reset_signals: false,
        // Into its log, which start shows when the supervisor says nothing.
        exec_failure_to: 2,
    })
    .map_err(sys(n, "fork the supervisor"))?;
    // The supervisor holds the rest now.
    drop((
        lock, pty, notify, listen, go_r, rep_w, ctl_w, tree_rx, sup_log,
    ));
    Ok(RealBoot {
        layout: layout.clone(),
        name: n.to_string(),
        prepared,
        ctl: ctl_r,
        go: go_w,
        report: rep_r,
        tree: tree_tx,
        sup_log: sup_log_path,
    })
}

impl Boot for RealBoot {
    fn init_pid(&mut self) -> Result<i32, RuntimeError> {
        let line = read_line(&self.ctl, SUPERVISOR_WAIT);
        match line.as_deref().and_then(|l| l.strip_prefix("pid ")) {
            Some(p) => Ok(p.trim().parse::<i32>().unwrap_or(0)),
            None => {
                let message = line
                    .as_deref()
                    .and_then(|l| l.strip_prefix("error "))
                    .map(|m| m.trim().to_string())
                    .or_else(|| last_line(&self.sup_log))
                    .unwrap_or_else(|| {
                        format!("it ended without a word; see {}", self.sup_log.display())
                    });
                Err(RuntimeError::Supervisor {
                    name: self.name.clone(),
                    message,
                })
            }
        }
    }

    fn hand_root(&mut self, rootfs: &Path, init_pid: i32) -> Result<(), RuntimeError> {
        let n = &self.name;
        if crate::layer::is_overlay(&self.layout, n) {
            // An overlay over id-mapped layers (see vbuild_kernel::overlay);
            // a privileged guest (no id range) gets the plain overlay.
            let cfg = crate::config::GuestConfig::load(&self.layout.guest_config(n))?;
            let ids = match (cfg.privileged, cfg.ids) {
                (false, Some(r)) => Some(vbuild_kernel::overlay::LayerIds {
                    userns_pid: init_pid,
                    root: r.base,
                }),
                _ => None,
            };
            let tree = crate::layer::root_tree(&self.layout, &cfg, n, ids)?;
            return vbuild_kernel::fdpass::send_fd(self.tree.as_raw_fd(), tree.as_raw_fd())
                .map_err(sys(n, "hand init its root filesystem"));
        }
        // The guest's root owns its rootfs through an id-mapped mount.
        let tree = vbuild_kernel::idmap::idmapped_tree(rootfs, init_pid).map_err(|e| {
            RuntimeError::Setup {
                name: n.to_string(),
                step: format!("{} {}", e.op, e.path),
                errno: e.errno,
            }
        })?;
        vbuild_kernel::fdpass::send_fd(self.tree.as_raw_fd(), tree.as_raw_fd())
            .map_err(sys(n, "hand init its root filesystem"))
    }

    fn release(self: Box<Self>) -> Result<Started, RuntimeError> {
        let RealBoot {
            layout,
            name: n,
            prepared,
            report,
            go,
            ..
        } = *self;
        nix::unistd::write(&go, b"g").map_err(sys(&n, "release init"))?;
        drop(go);
        if let Some(f) = launch::read_report(&report).map_err(sys(&n, "read init's report"))? {
            wait_for_cleanup(&layout, &n);
            return Err(prepared.explain(&n, f));
        }
        let st = State::load(&layout, &n)?.ok_or_else(|| RuntimeError::InitExited {
            name: n.clone(),
            log: state::console_log(&layout, &n),
        })?;
        Ok(Started {
            init_pid: st.init_pid,
            supervisor_pid: st.supervisor_pid,
            boot_id: st.boot_id,
            warnings: Vec::new(),
        })
    }

    fn abandon(self: Box<Self>) {
        let RealBoot {
            layout, name, go, ..
        } = *self;
        // Init sees the go pipe close and ends; the supervisor cleans up.
        drop(go);
        wait_for_cleanup(&layout, &name);
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

/// How [`spawn_detached`] runs a program.
pub(crate) struct Detached<'a> {
    /// The program and its arguments; `dir` is added as the last one.
    pub prog: &'a SupervisorProgram,
    /// Its state directory.
    pub dir: &'a Path,
    /// Descriptors it gets, at 3, 4, ... in this order.
    pub handed: &'a [RawFd],
    /// Its stdout and stderr.
    pub log: RawFd,
    /// An empty signal mask and SIGTERM, SIGINT, SIGHUP and SIGPIPE at
    /// their defaults (else both as the caller has them).
    pub reset_signals: bool,
    /// The descriptor number (in the program: 2 for the log, or one the
    /// handed ones land on) that "cannot execute" goes to when exec fails.
    pub exec_failure_to: RawFd,
}

/// Runs a program detached from us: double fork (so it is nobody's child
/// here and becomes its own session leader), in `/`, `handed` moved to
/// their fixed numbers, stdin on /dev/null, stdout and stderr on its log,
/// nothing else inherited. Used for guests' supervisors and networks'
/// name responders.
pub(crate) fn spawn_detached(d: &Detached<'_>) -> Result<(), Errno> {
    let path = CString::new(d.prog.program.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    let mut argv: Vec<CString> = vec![path.clone()];
    for a in &d.prog.args {
        argv.push(CString::new(a.as_str()).map_err(|_| Errno::EINVAL)?);
    }
    argv.push(CString::new(d.dir.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?);
    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|c| c.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    let msg = format!(
        "cannot execute the supervisor program {}\n",
        d.prog.program.display()
    );
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
    let mut high = Vec::with_capacity(d.handed.len());
    for fd in d.handed {
        high.push(dup_high(*fd)?);
    }
    let log_high = dup_high(d.log)?;
    let null = std::fs::File::open("/dev/null")
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
    let null_fd = null.as_raw_fd();
    let high_fds: Vec<RawFd> = high.iter().map(|f| f.as_raw_fd()).collect();
    let log_fd = log_high.as_raw_fd();
    let first_free = (FIRST_HANDED + high_fds.len() as RawFd) as u32;
    let (reset, report) = (d.reset_signals, d.exec_failure_to);
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
            if reset {
                let mut empty: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut empty);
                libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
                for s in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGPIPE] {
                    libc::signal(s, libc::SIG_DFL);
                }
            }
            libc::dup2(null_fd, 0);
            libc::dup2(log_fd, 1);
            libc::dup2(log_fd, 2);
            for (i, fd) in high_fds.iter().enumerate() {
                libc::dup2(*fd, FIRST_HANDED + i as i32);
            }
            libc::syscall(libc::SYS_close_range, first_free, u32::MAX, 0);
            libc::execv(path.as_ptr(), ptrs.as_ptr());
            libc::write(report, msg.as_ptr().cast(), msg.len());
            libc::_exit(127);
        },
        nix::unistd::ForkResult::Parent { child } => {
            nix::sys::wait::waitpid(child, None)?;
            Ok(())
        }
    }
}

/// The number the first handed descriptor gets (after stdin, out, err).
const FIRST_HANDED: RawFd = 3;

#[cfg(test)]
mod tests {
    use super::*;

    /// What `program ARGS... /` (run through `spawn_detached`, this
    /// thread's signal mask holding SIGTERM) wrote to its first handed fd
    /// and to its log, once it ended.
    fn detached_output(program: &str, args: &[&str], reset_signals: bool) -> (String, String) {
        use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow, Signal};
        use std::io::{Read, Seek};
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let mut log = tempfile::tempfile().unwrap();
        let prog = SupervisorProgram {
            program: PathBuf::from(program),
            args: args.iter().map(|a| a.to_string()).collect(),
        };
        let mut term = SigSet::empty();
        term.add(Signal::SIGTERM);
        let mut old = SigSet::empty();
        pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&term), Some(&mut old)).unwrap();
        let res = spawn_detached(&Detached {
            prog: &prog,
            dir: Path::new("/"),
            handed: &[w.as_raw_fd()],
            log: log.as_raw_fd(),
            reset_signals,
            exec_failure_to: FIRST_HANDED,
        });
        pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None).unwrap();
        res.unwrap();
        drop(w);
        // EOF once the program (the last holder of the write end) ended.
        let mut out = String::new();
        std::fs::File::from(r).read_to_string(&mut out).unwrap();
        let mut text = String::new();
        log.rewind().unwrap();
        log.read_to_string(&mut text).unwrap();
        (out, text)
    }

    #[test]
    fn detached_programs_get_their_fds_and_a_reset_signal_mask_when_asked() {
        // grep reads its own status, then "/" (the dir argument) and says
        // it is a directory: both into the log.
        let grep = ["-h", "^SigBlk", "/proc/self/status"];
        let (_, log) = detached_output("/bin/grep", &grep, true);
        assert!(log.contains("SigBlk:\t0000000000000000"), "{log}");
        // Without the reset the caller's mask carries over (SIGTERM: bit 15).
        let (_, log) = detached_output("/bin/grep", &grep, false);
        assert!(log.contains("SigBlk:\t0000000000004000"), "{log}");
        // fd 3 is the handed pipe and nothing above it is open (ls's own
        // descriptor on /proc/self/fd aside).
        let (out, _) = detached_output("/bin/sh", &["-c", "ls /proc/self/fd >&3", "sh"], true);
        assert_eq!(
            out.lines().collect::<Vec<_>>(),
            ["0", "1", "2", "3", "4"],
            "{out}"
        );
    }

    #[test]
    fn a_program_that_cannot_be_executed_says_so_where_asked() {
        let (out, log) = detached_output("/nonexistent/vbuild-supervisor", &[], true);
        assert_eq!(
            out,
            "cannot execute the supervisor program /nonexistent/vbuild-supervisor\n"
        );
        assert_eq!(log, "");
    }

    #[test]
    fn layout_root_round_trips() {
        assert_eq!(layout_root(&Layout::new(None)), None);
        let l = Layout::new(Some(Path::new("/tmp/x")));
        assert_eq!(Layout::new(layout_root(&l).as_deref()), l);
    }
}
