//! `vbuild exec NAME -- CMD` and `vbuild enter NAME`: a process inside a
//! running guest. A helper process is forked, put into the guest's cgroup,
//! joins the guest's namespaces (user, cgroup, ipc, uts, net, time, mount,
//! then pid, which applies to its children) and forks the command, which
//! drops the same capabilities, installs the same seccomp filter as init
//! and execs with the guest's environment. The helper passes the command's
//! exit status on; `enter` adds a pty from the guest's own devpts.

use crate::error::{sys, RuntimeError};
use crate::launch::{self, ExecProgram};
use crate::name::GuestName;
use crate::paths::Layout;
use crate::security;
use crate::state::{Liveness, State};
use nix::errno::Errno;
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use vbuild_kernel::cgroup::{Cgroup, CgroupError, Hierarchy};
use vbuild_kernel::{caps, ns, process, pty, seccomp};

/// How to run a command in a guest.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// Give the command a terminal (a pty of the guest's devpts) and relay
    /// it to ours, in raw mode.
    pub tty: bool,
    /// Extra environment, `KEY=VALUE`, on top of the guest's.
    pub env: Vec<String>,
    /// What the program sees as argv[0] (`-bash` makes a login shell).
    pub argv0: Option<String>,
    /// Working directory inside the guest (default `/`, `/root` with a tty).
    pub workdir: Option<String>,
}

/// The environment a command in a guest starts with.
pub(crate) fn guest_env(boot_id: &str, tty: bool) -> Vec<String> {
    let mut env = vec![
        "container=vbuild".to_string(),
        format!("container_uuid={boot_id}"),
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
        "HOME=/root".to_string(),
        "USER=root".to_string(),
        "LOGNAME=root".to_string(),
    ];
    if tty {
        let term = std::env::var("TERM").unwrap_or_else(|_| "xterm".into());
        env.push(format!("TERM={term}"));
    }
    env
}

/// The login shell of root in the guest (from its /etc/passwd, read
/// through init's root), `/bin/sh` when none is named.
pub(crate) fn root_shell(init_pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{init_pid}/root/etc/passwd"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("root:"))
                .and_then(|l| l.rsplit(':').next())
                .filter(|s| s.starts_with('/'))
                .map(str::to_string)
        })
        .unwrap_or_else(|| "/bin/sh".to_string())
}

/// The running guest's state, or why there is none.
fn running(layout: &Layout, n: &str) -> Result<State, RuntimeError> {
    let st = State::load(layout, n)?.ok_or_else(|| {
        if layout.guest_config(n).is_file() {
            RuntimeError::NotRunning(n.to_string())
        } else {
            RuntimeError::NotFound(n.to_string())
        }
    })?;
    match st.liveness() {
        Liveness::Running { .. } => Ok(st),
        _ => Err(RuntimeError::NotRunning(n.to_string())),
    }
}

/// Runs `argv` inside running guest `name` and returns its exit code
/// (128 + signal when it was killed).
pub fn exec(
    layout: &Layout,
    name: &GuestName,
    argv: &[String],
    opts: &ExecOptions,
) -> Result<i32, RuntimeError> {
    let n = name.as_str();
    if argv.is_empty() {
        return Err(RuntimeError::Command {
            name: n.to_string(),
            command: String::new(),
            reason: "no command given".into(),
        });
    }
    let st = running(layout, n)?;
    let nsfds =
        ns::open_all(st.init_pid).map_err(|e| sys(n, format!("open {}", e.what))(e.errno))?;
    // The namespaces are pinned now; make sure they are still the guest's.
    if !process::is_alive(st.init_pid, st.init_start) {
        return Err(RuntimeError::NotRunning(n.to_string()));
    }
    let cg_err = |source| RuntimeError::Cgroup {
        name: n.to_string(),
        source,
    };
    let h = Hierarchy::detect().map_err(cg_err)?;
    let cg = Cgroup::open(&h, &st.guest_cgroup()).map_err(cg_err)?;

    let mut env = guest_env(&st.boot_id, opts.tty);
    env.extend(opts.env.iter().cloned());
    let program = ExecProgram::new(argv, &env, opts.argv0.as_deref());
    let workdir = CString::new(opts.workdir.clone().unwrap_or_else(|| {
        if opts.tty {
            "/root".into()
        } else {
            "/".into()
        }
    }))
    .map_err(|_| sys(n, "workdir")(Errno::EINVAL))?;
    let filter = seccomp::Filter::deny(&security::BLOCKED_SYSCALLS, Errno::EPERM)?;
    let keep = security::kept_mask();
    let last = caps::last_cap();
    let (go_r, go_w) = launch::pipe().map_err(sys(n, "pipe"))?;
    let (rep_r, rep_w) = launch::pipe().map_err(sys(n, "pipe"))?;
    let (sock_parent, sock_child) = if opts.tty {
        let (a, b) = nix::sys::socket::socketpair(
            nix::sys::socket::AddressFamily::Unix,
            nix::sys::socket::SockType::Stream,
            None,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        )
        .map_err(sys(n, "socketpair"))?;
        (Some(a), Some(b))
    } else {
        (None, None)
    };
    let ctx = Child {
        nsfds: &nsfds,
        go: go_r.as_raw_fd(),
        report: rep_w.as_raw_fd(),
        sock: sock_child.as_ref().map(|s| s.as_raw_fd()),
        workdir: &workdir,
        program: &program,
        filter: &filter,
        keep,
        last,
        tty: opts.tty,
    };
    // SAFETY: the helper only makes system calls on memory prepared above.
    let helper = match unsafe { process::fork_into(0) }.map_err(sys(n, "fork"))? {
        process::Forked::Child => helper_main(&ctx),
        process::Forked::Parent(pid) => pid,
    };
    drop((go_r, rep_w, sock_child));
    let joined = (|| -> Result<(), RuntimeError> {
        if let Some(cg) = &cg {
            join_guest_cgroup(cg, st.init_pid, helper).map_err(cg_err)?;
        }
        nix::unistd::write(&go_w, b"g").map_err(sys(n, "release the helper"))?;
        Ok(())
    })();
    drop(go_w);
    if let Err(e) = joined {
        let _ = process::wait_exit_code(helper);
        return Err(e);
    }
    if let Some(sock) = &sock_parent {
        if let Ok(master) = vbuild_kernel::fdpass::recv_fd(sock.as_raw_fd()) {
            relay(&master, helper);
        }
    }
    let code = process::wait_exit_code(helper).map_err(sys(n, "wait"))?;
    if let Some(f) = launch::read_report(&rep_r).map_err(sys(n, "read report"))? {
        if !f.is_aborted() {
            return Err(launch::describe_plain(f, &argv.join(" "), n));
        }
    }
    Ok(code)
}

/// Puts `pid` where a process of the guest belongs: the guest's group in
/// every v1 hierarchy, and in the unified hierarchy the group init is in now
/// (`init.scope` under systemd), because on cgroup v2 a group that delegates
/// controllers to its children cannot hold processes itself.
fn join_guest_cgroup(cg: &Cgroup, init_pid: i32, pid: i32) -> Result<(), CgroupError> {
    let unified = cg.unified_dir();
    let init_group = std::fs::read_to_string(format!("/proc/{init_pid}/cgroup"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("0::").map(str::to_string))
        });
    let own = format!("/{}", cg.rel());
    let deeper = match (&unified, &init_group) {
        (Some(u), Some(g)) if g.starts_with(&format!("{own}/")) => {
            let mount = u.to_string_lossy();
            let mount = mount
                .strip_suffix(cg.rel())
                .unwrap_or(&mount)
                .trim_end_matches('/')
                .to_string();
            Some(PathBuf::from(format!("{mount}{g}")))
        }
        _ => None,
    };
    match deeper {
        None => cg.attach(pid),
        Some(dir) => {
            if !cg.is_v2() {
                cg.attach(pid)?;
            }
            let procs = dir.join("cgroup.procs");
            std::fs::write(&procs, pid.to_string()).map_err(|source| CgroupError::Io {
                path: procs,
                source,
            })
        }
    }
}

/// `vbuild enter`: root's login shell in the guest, on a guest pty.
pub fn enter(layout: &Layout, name: &GuestName) -> Result<i32, RuntimeError> {
    let st = running(layout, name.as_str())?;
    let shell = root_shell(st.init_pid);
    let base = shell.rsplit('/').next().unwrap_or("sh").to_string();
    let opts = ExecOptions {
        tty: true,
        env: vec![format!("SHELL={shell}")],
        argv0: Some(format!("-{base}")),
        workdir: Some("/root".into()),
    };
    exec(layout, name, &[shell], &opts)
}

/// What the helper needs, borrowed from the parent's preparation.
struct Child<'a> {
    nsfds: &'a [(&'static str, OwnedFd)],
    go: RawFd,
    report: RawFd,
    sock: Option<RawFd>,
    workdir: &'a CString,
    program: &'a ExecProgram,
    filter: &'a seccomp::Filter,
    keep: u64,
    last: u32,
    tty: bool,
}

fn helper_main(c: &Child<'_>) -> ! {
    vbuild_kernel::signal::reset_all();
    let mut b = [0u8; 1];
    // SAFETY: read into a stack buffer.
    if unsafe { libc::read(c.go, b.as_mut_ptr().cast(), 1) } != 1 {
        launch::report_failure(c.report, launch::ChildStep::Sync, Errno::ECANCELED);
    }
    if let Err((_, e)) = ns::enter_all(c.nsfds) {
        launch::report_failure(c.report, launch::ChildStep::Join, e);
    }
    if c.nsfds.iter().any(|(k, _)| *k == "user") {
        // Root of the guest's user namespace, like its init.
        // SAFETY: plain syscalls.
        let r = unsafe {
            libc::setresgid(0, 0, 0)
                | libc::setgroups(0, std::ptr::null())
                | libc::setresuid(0, 0, 0)
        };
        if r != 0 {
            launch::report_failure(c.report, launch::ChildStep::Join, Errno::last());
        }
    }
    let mut slave: Option<OwnedFd> = None;
    if let (true, Some(sock)) = (c.tty, c.sock) {
        match pty::open_pair_at(c"/dev/pts/ptmx") {
            Ok((m, s)) => {
                if vbuild_kernel::fdpass::send_fd(sock, m.as_raw_fd()).is_err() {
                    launch::report_failure(c.report, launch::ChildStep::Console, Errno::EPIPE);
                }
                drop(m);
                slave = Some(s);
            }
            Err(e) => launch::report_failure(c.report, launch::ChildStep::Console, e),
        }
    }
    // The pid namespace applies to children: the command is one.
    // SAFETY: the child only makes system calls.
    let pid = match unsafe { process::fork_into(0) } {
        Ok(process::Forked::Child) => command_main(c, slave.as_ref().map(|s| s.as_raw_fd())),
        Ok(process::Forked::Parent(pid)) => pid,
        Err(e) => launch::report_failure(c.report, launch::ChildStep::Join, e),
    };
    drop(slave);
    let code = process::wait_exit_code(pid).unwrap_or(255);
    process::exit_now(code)
}

fn command_main(c: &Child<'_>, tty: Option<RawFd>) -> ! {
    if let Some(t) = tty {
        if let Err(e) = pty::become_session_on(t) {
            launch::report_failure(c.report, launch::ChildStep::Console, e);
        }
    }
    // SAFETY: chdir with a NUL-terminated path; a missing one falls back to /.
    unsafe {
        if libc::chdir(c.workdir.as_ptr()) != 0 {
            libc::chdir(c"/".as_ptr());
        }
    }
    if let Err(e) = caps::restrict_to(c.keep, c.last) {
        launch::report_failure(c.report, launch::ChildStep::Caps, e.errno);
    }
    if let Err(e) = c.filter.install() {
        launch::report_failure(c.report, launch::ChildStep::Seccomp, e);
    }
    launch::exec_program(
        &c.program.programs,
        &c.program.argv_ptrs,
        &c.program.env_ptrs,
        c.report,
    )
}

/// Relays our terminal and the guest pty's master until the shell ends:
/// stdin in raw mode, window size copied at start and on SIGWINCH.
fn relay(master: &OwnedFd, helper: i32) {
    use nix::sys::signal::Signal;
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let _raw = pty::RawMode::enter(stdin.as_fd());
    if let Some(ws) = pty::window_size(stdout.as_fd()) {
        let _ = pty::set_window_size(master.as_fd(), &ws);
    }
    let _ = vbuild_kernel::signal::block(&[Signal::SIGWINCH]);
    let mut mask = nix::sys::signal::SigSet::empty();
    mask.add(Signal::SIGWINCH);
    let sfd = nix::sys::signalfd::SignalFd::with_flags(
        &mask,
        nix::sys::signalfd::SfdFlags::SFD_CLOEXEC | nix::sys::signalfd::SfdFlags::SFD_NONBLOCK,
    )
    .ok();
    let mut buf = [0u8; 8192];
    let mut stdin_open = true;
    loop {
        let mut p = vec![
            libc::pollfd {
                fd: master.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: if stdin_open { 0 } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        if let Some(s) = &sfd {
            p.push(libc::pollfd {
                fd: s.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        // SAFETY: poll over our array.
        if unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, -1) } < 0 {
            if Errno::last() == Errno::EINTR {
                continue;
            }
            break;
        }
        if p[0].revents != 0 {
            match nix::unistd::read(master.as_raw_fd(), &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(k) => {
                    if write_all(1, &buf[..k]).is_err() {
                        break;
                    }
                }
            }
        }
        if p[1].revents != 0 {
            match nix::unistd::read(0, &mut buf) {
                Ok(0) | Err(_) => stdin_open = false,
                Ok(k) => {
                    let _ = write_all(master.as_raw_fd(), &buf[..k]);
                }
            }
        }
        if p.len() > 2 && p[2].revents != 0 {
            if let Some(s) = &sfd {
                while let Ok(Some(_)) = s.read_signal() {}
            }
            if let Some(ws) = pty::window_size(stdout.as_fd()) {
                let _ = pty::set_window_size(master.as_fd(), &ws);
            }
        }
    }
    let _ = helper;
}

fn write_all(fd: RawFd, mut data: &[u8]) -> Result<(), Errno> {
    while !data.is_empty() {
        // SAFETY: write from our buffer.
        let r = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if r < 0 {
            if Errno::last() == Errno::EINTR {
                continue;
            }
            return Err(Errno::last());
        }
        data = &data[r as usize..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_environment_marks_the_container() {
        let e = guest_env("u1", false);
        assert!(e.contains(&"container=vbuild".to_string()));
        assert!(e.iter().any(|v| v.starts_with("PATH=/")));
        assert!(!e.iter().any(|v| v.starts_with("TERM=")));
    }
}
