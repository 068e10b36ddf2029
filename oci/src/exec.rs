//! `exec`: another process in a running container, as runc's `exec
//! --process FILE` makes it (what `podman exec` and containerd's shim
//! call). A helper is forked into the container's cgroup and joins its
//! namespaces; the process itself is forked from there (so it is inside
//! the pid namespace), takes the process's user, groups, rlimits,
//! capability sets, no_new_privs, umask and cwd, installs the container's
//! seccomp filter last and execs. vbuild-runc is a child subreaper, so the
//! process becomes its child once the helper has exited: without
//! `--detach` it waits and exits with the process's status; with it, it
//! writes the pid file and leaves the process to whoever reaps orphans
//! below it (conmon and containerd's shim are subreapers).

use crate::error::{io, sys, OciError};
use crate::spec::Process;
use crate::state::{Root, Status};
use nix::errno::Errno;
use std::ffi::CString;
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use vbuild_kernel::cgroup::Joiner;
use vbuild_kernel::{caps, ns, process, seccomp};
use vbuild_runtime::launch::{self, CapSets};

/// `exec`'s arguments.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// The container id.
    pub id: String,
    /// The process JSON (runtime spec `process`); `-` reads stdin.
    pub process: PathBuf,
    /// Return once the process runs instead of waiting for it.
    pub detach: bool,
    /// Where to write the process's pid (host namespace).
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the terminal's master (with `--tty` or
    /// `process.terminal`).
    pub console_socket: Option<PathBuf>,
    /// Give the process a terminal.
    pub tty: bool,
    /// Descriptors 3 .. 3 + N of the caller that the process inherits.
    pub preserve_fds: u32,
}

/// The steps of the child side, as reported on failure.
#[derive(Debug, Clone, Copy)]
#[repr(u32)]
enum Step {
    Sync = 1,
    Join,
    Fork,
    Rlimit,
    NoNewPrivs,
    Seccomp,
    Caps,
    User,
    Cwd,
    Console,
    Exec,
    Cgroup,
}

impl Step {
    fn describe(v: u32) -> &'static str {
        match v {
            1 => "wait for the cgroup",
            2 => "join the container's namespaces",
            3 => "fork into the container's pid namespace",
            4 => "set process.rlimits",
            5 => "set no_new_privs",
            6 => "install the container's seccomp filter",
            7 => "set process.capabilities",
            8 => "take process.user",
            9 => "change to process.cwd",
            10 => "set up the terminal",
            12 => "join the container's cgroup",
            _ => "execute the program",
        }
    }
}

/// Everything the forked side uses, prepared before the fork.
struct Prepared {
    nsfds: Vec<(&'static str, std::os::fd::OwnedFd)>,
    userns: bool,
    programs: Vec<CString>,
    _argv: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    _env: Vec<CString>,
    env_ptrs: Vec<*const libc::c_char>,
    cwd: CString,
    uid: u32,
    gid: u32,
    groups: Vec<libc::gid_t>,
    rlimits: Vec<(i32, libc::rlimit)>,
    no_new_privs: bool,
    caps: CapSets,
    last_cap: u32,
    umask: Option<u32>,
    filter: Option<seccomp::Filter>,
    tty: bool,
    size: Option<libc::winsize>,
    preserve_fds: u32,
}

fn cstring(s: &str, what: &str) -> Result<CString, OciError> {
    CString::new(s).map_err(|_| OciError::Config(format!("{what}: {s:?} holds a NUL byte")))
}

/// The candidates execve is tried with: the program itself when it has a
/// slash, else one per directory of the process's PATH (looked up inside
/// the container, after the mount namespace is joined).
fn candidates(program: &str, env: &[String]) -> Result<Vec<CString>, OciError> {
    if program.contains('/') {
        return Ok(vec![cstring(program, "process.args[0]")?]);
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    path.split(':')
        .filter(|d| d.starts_with('/'))
        .map(|d| cstring(&format!("{}/{program}", d.trim_end_matches('/')), "PATH"))
        .collect()
}

/// Reads the process JSON and checks what exec cannot honour.
pub fn read_process(o: &ExecOptions) -> Result<Process, OciError> {
    let text = if o.process.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(crate::error::io("stdin"))?;
        s
    } else {
        std::fs::read_to_string(&o.process).map_err(io(&o.process))?
    };
    let p: Process = serde_json::from_str(&text)
        .map_err(|e| OciError::Config(format!("--process {}: {e}", o.process.display())))?;
    check_process(&p, o)?;
    Ok(p)
}

/// Checks what exec cannot honour in a process (read from a file or, in
/// containerd's shim, from the Exec request).
pub fn check_process(p: &Process, o: &ExecOptions) -> Result<(), OciError> {
    if let Some((k, _)) = p.rest.iter().find(|(_, v)| !v.is_null()) {
        return Err(OciError::Unsupported(format!(
            "exec --process: process.{k} is not supported by vbuild-runc; remove it"
        )));
    }
    if p.args.is_empty() {
        return Err(OciError::Config(
            "exec --process: process.args is empty (name the program to run)".into(),
        ));
    }
    if !p.cwd.starts_with('/') {
        return Err(OciError::Config(format!(
            "exec --process: process.cwd {:?} must be absolute",
            p.cwd
        )));
    }
    if p.apparmor_profile.as_deref().is_some_and(|s| !s.is_empty())
        || p.selinux_label.as_deref().is_some_and(|s| !s.is_empty())
    {
        return Err(OciError::Unsupported(
            "exec --process: apparmorProfile/selinuxLabel are not available to vbuild-runc; remove them".into(),
        ));
    }
    if (p.terminal || o.tty) && o.console_socket.is_none() {
        return Err(OciError::Usage(
            "exec: a terminal (--tty or process.terminal) needs --console-socket".into(),
        ));
    }
    Ok(())
}

/// The container's saved state, if it can take an exec.
fn running(root: &Root, id: &str) -> Result<crate::state::Saved, OciError> {
    let s = root.load(id)?;
    let status = root.status(&s);
    if !matches!(status, Status::Running | Status::Created) {
        return Err(OciError::State {
            id: s.id.clone(),
            status: status.as_str().into(),
            what: "exec needs a running container".into(),
        });
    }
    Ok(s)
}

/// Runs the process in container `o.id`. Returns its exit status (0 with
/// `detach`: the process's own status is its reaper's business).
pub fn exec(root: &Root, o: &ExecOptions) -> Result<i32, OciError> {
    running(root, &o.id)?;
    let p = read_process(o)?;
    let pid = spawn(root, o, &p)?;
    if o.detach {
        return Ok(0);
    }
    process::wait_exit_code(pid).map_err(sys("wait for the process"))
}

/// Starts process `p` (checked with `check_process`) in container `o.id`
/// and returns its pid (host namespace) once it has exec'd; the process
/// becomes the caller's child, to be reaped by the caller.
pub fn spawn(root: &Root, o: &ExecOptions, p: &Process) -> Result<i32, OciError> {
    let s = running(root, &o.id)?;
    crate::cli::check_preserved(o.preserve_fds)?;
    let tty = p.terminal || o.tty;
    // The container's seccomp profile applies to every process in it.
    let spec = crate::create::load_spec(&s.bundle)?;
    let filter = match spec
        .linux
        .as_ref()
        .and_then(|l| l.seccomp.as_ref())
        .filter(|v| !v.is_null())
    {
        Some(v) => Some(crate::seccomp::compile(v)?),
        None => None,
    };
    let env = p.env.clone();
    let argv: Vec<CString> = p
        .args
        .iter()
        .map(|a| cstring(a, "process.args"))
        .collect::<Result<_, _>>()?;
    let envc: Vec<CString> = env
        .iter()
        .map(|e| cstring(e, "process.env"))
        .collect::<Result<_, _>>()?;
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let mut env_ptrs: Vec<*const libc::c_char> = envc.iter().map(|a| a.as_ptr()).collect();
    env_ptrs.push(std::ptr::null());
    let rlimits = crate::translate::rlimits(&p.rlimits)?
        .into_iter()
        .map(|(n, soft, hard)| {
            (
                n,
                libc::rlimit {
                    rlim_cur: soft,
                    rlim_max: hard,
                },
            )
        })
        .collect();
    let nsfds = ns::open_all(s.pid).map_err(|e| OciError::Sys {
        what: format!("{} {}", e.op, e.what),
        errno: e.errno,
    })?;
    // The namespaces are pinned now; make sure they are still the container's.
    if !process::is_alive(s.pid, s.start_ticks) {
        return Err(OciError::State {
            id: s.id.clone(),
            status: "stopped".into(),
            what: "exec needs a running container".into(),
        });
    }
    let console = match (&o.console_socket, tty) {
        (Some(sock), true) => Some(crate::console::connect(sock)?),
        _ => None,
    };
    let prep = Prepared {
        userns: nsfds.iter().any(|(k, _)| *k == "user"),
        nsfds,
        programs: candidates(&p.args[0], &env)?,
        _argv: argv,
        argv_ptrs,
        _env: envc,
        env_ptrs,
        cwd: cstring(&p.cwd, "process.cwd")?,
        uid: p.user.uid,
        gid: p.user.gid,
        groups: p.user.additional_gids.clone(),
        rlimits,
        no_new_privs: p.no_new_privileges,
        caps: crate::translate::cap_sets(p.capabilities.as_ref())?,
        last_cap: caps::last_cap(),
        umask: p.user.umask,
        filter,
        tty,
        size: p.console_size.map(crate::console::winsize),
        preserve_fds: o.preserve_fds,
    };
    // The helper starts in the container's group (see `cgroup::Joiner`).
    let joiner = match crate::cgroups::open(&s.cgroup) {
        Some(cg) => Some(cg.joiner()?),
        None => None,
    };

    // The process is a grandchild: it must come back to us, not to init.
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(sys("become a child subreaper")(Errno::last()));
    }
    let (go_r, go_w) = launch::pipe().map_err(sys("pipe"))?;
    let (rep_r, rep_w) = launch::pipe().map_err(sys("pipe"))?;
    let (pid_r, pid_w) = launch::pipe().map_err(sys("pipe"))?;
    let fds = ChildFds {
        go: go_r.as_raw_fd(),
        report: rep_w.as_raw_fd(),
        pid: pid_w.as_raw_fd(),
        console: console.as_ref().map_or(-1, |c| c.as_raw_fd()),
    };
    let fork_failed = sys("fork");
    // SAFETY: the helper only makes system calls on memory prepared above.
    let helper =
        match unsafe { process::fork_into_cgroup(0, joiner.as_ref().and_then(|j| j.unified_fd())) }
        {
            Ok(process::Forked::Child) => helper_main(&prep, joiner.as_ref(), fds),
            Ok(process::Forked::Parent(pid)) => pid,
            Err(e) => return Err(fork_failed(e)),
        };
    drop((go_r, rep_w, pid_w));
    drop((console, joiner));
    nix::unistd::write(&go_w, b"g").map_err(sys("release the exec helper"))?;
    drop(go_w);
    let mut buf = [0u8; 4];
    let got = read_full(pid_r.as_raw_fd(), &mut buf);
    let _ = process::wait_exit_code(helper);
    // The report pipe is close-on-exec in the process: end of file means
    // exec succeeded; a record names the step that failed.
    let mut rec = [0u8; 8];
    let n = read_full(rep_r.as_raw_fd(), &mut rec);
    if n == rec.len() {
        let step = u32::from_le_bytes(rec[..4].try_into().expect("4 bytes"));
        let errno = i32::from_le_bytes(rec[4..].try_into().expect("4 bytes"));
        if got == buf.len() {
            // Reap the failed process (it is ours now).
            let _ = process::wait_exit_code(i32::from_le_bytes(buf));
        }
        return Err(OciError::Sys {
            what: format!(
                "exec in container {}: {} ({})",
                o.id,
                Step::describe(step),
                p.args.join(" ")
            ),
            errno: Errno::from_raw(errno),
        });
    }
    if got != buf.len() {
        return Err(OciError::Sys {
            what: format!("exec in container {}: the helper ended early", o.id),
            errno: Errno::ECHILD,
        });
    }
    let pid = i32::from_le_bytes(buf);
    if let Some(f) = &o.pid_file {
        crate::create::write_atomic(f, &pid.to_string())?;
    }
    Ok(pid)
}

/// Reads until `buf` is full or end of file; the count read
/// (also the hooks' status pipes).
pub(crate) fn read_full(fd: RawFd, buf: &mut [u8]) -> usize {
    let mut got = 0;
    while got < buf.len() {
        match nix::unistd::read(fd, &mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(Errno::EINTR) => continue,
            Err(_) => break,
        }
    }
    got
}

/// The descriptors the forked side holds.
#[derive(Clone, Copy)]
struct ChildFds {
    go: RawFd,
    report: RawFd,
    pid: RawFd,
    /// The console socket, or -1.
    console: RawFd,
}

fn fail(report: RawFd, step: Step, errno: Errno) -> ! {
    let mut rec = [0u8; 8];
    rec[..4].copy_from_slice(&(step as u32).to_le_bytes());
    rec[4..].copy_from_slice(&(errno as i32).to_le_bytes());
    // SAFETY: write of a stack buffer.
    unsafe { libc::write(report, rec.as_ptr().cast(), rec.len()) };
    process::exit_now(if matches!(step, Step::Exec) { 127 } else { 125 })
}

/// The helper: joins the cgroup, waits for the go, joins the namespaces,
/// forks the process (into the pid namespace), tells its pid and exits.
fn helper_main(p: &Prepared, cgroup: Option<&Joiner>, fds: ChildFds) -> ! {
    if let Some(Err(e)) = cgroup.map(|j| j.join_in_child()) {
        fail(fds.report, Step::Cgroup, e);
    }
    vbuild_kernel::signal::reset_all();
    // Until the exec, this is the runtime's binary and memory inside the
    // container: not dumpable, so the container's root can neither ptrace
    // it nor open its /proc/PID/exe (the process forked below inherits
    // this; its exec resets it).
    if let Err(e) = process::set_dumpable(false) {
        fail(fds.report, Step::Join, e);
    }
    let mut b = [0u8; 1];
    // SAFETY: read into a stack buffer.
    if unsafe { libc::read(fds.go, b.as_mut_ptr().cast(), 1) } != 1 {
        fail(fds.report, Step::Sync, Errno::ECANCELED);
    }
    if let Err((_, e)) = ns::enter_all(&p.nsfds) {
        fail(fds.report, Step::Join, e);
    }
    if p.userns {
        // Root of the container's user namespace, as its init was made.
        if let Err(e) = process::set_ids(0, 0, false) {
            fail(fds.report, Step::Join, e);
        }
    }
    // SAFETY: the child only makes system calls on memory prepared before.
    match unsafe { process::fork_into(0) } {
        Ok(process::Forked::Child) => process_main(p, fds),
        Ok(process::Forked::Parent(pid)) => {
            let b = pid.to_le_bytes();
            // SAFETY: write of a stack buffer.
            unsafe { libc::write(fds.pid, b.as_ptr().cast(), b.len()) };
            process::exit_now(0)
        }
        Err(e) => fail(fds.report, Step::Fork, e),
    }
}

/// The process: its own session, limits, user and capabilities, the
/// filter last, then exec. Allocation-free.
fn process_main(p: &Prepared, fds: ChildFds) -> ! {
    let report = fds.report;
    // SAFETY: closing our copies of the parent side's pipes.
    unsafe {
        libc::close(fds.go);
        libc::close(fds.pid);
    }
    if p.tty {
        if let Err(e) = vbuild_kernel::pty::take_terminal(fds.console, p.size.as_ref()) {
            fail(report, Step::Console, e);
        }
    } else if let Err(e) = process::new_session() {
        fail(report, Step::Sync, e);
    }
    if fds.console >= 0 {
        // SAFETY: closing our own descriptor.
        unsafe { libc::close(fds.console) };
    }
    // Everything of the runtime's from 3 + preserve_fds up is closed at
    // exec; marked before any filter, which may deny close_range.
    if let Err(e) = process::cloexec_from(3 + p.preserve_fds) {
        fail(report, Step::Sync, e);
    }
    for (res, lim) in &p.rlimits {
        // SAFETY: setrlimit with a pointer to a prepared struct.
        if unsafe { libc::setrlimit(*res as libc::__rlimit_resource_t, lim) } != 0 {
            fail(report, Step::Rlimit, Errno::last());
        }
    }
    if p.no_new_privs {
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            fail(report, Step::NoNewPrivs, Errno::last());
        }
    }
    // Without no_new_privs the filter needs CAP_SYS_ADMIN, which the
    // process may be about to lose: install it before the change of user.
    if let (false, Some(f)) = (p.no_new_privs, &p.filter) {
        if let Err(e) = f.install() {
            fail(report, Step::Seccomp, e);
        }
    }
    if let Err(e) = caps::drop_bounding(p.caps.bounding, p.last_cap) {
        fail(report, Step::Caps, e.errno);
    }
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
    if let Err(e) = process::set_groups(&p.groups) {
        fail(report, Step::User, e);
    }
    if let Err(e) = process::set_ids(p.uid, p.gid, false) {
        fail(report, Step::User, e);
    }
    // SAFETY: as above.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
    let c = &p.caps;
    if let Err(e) = caps::set_sets(c.effective, c.permitted, c.inheritable) {
        fail(report, Step::Caps, e.errno);
    }
    if let Err(e) = caps::raise_ambient(c.ambient, p.last_cap) {
        fail(report, Step::Caps, e.errno);
    }
    // setns(mnt) put root and cwd at the container's root.
    // SAFETY: chdir with a NUL-terminated path; umask has no memory effects.
    unsafe {
        if libc::chdir(p.cwd.as_ptr()) != 0 {
            fail(report, Step::Cwd, Errno::last());
        }
        libc::umask(p.umask.unwrap_or(0o022) as libc::mode_t);
    }
    if let (true, Some(f)) = (p.no_new_privs, &p.filter) {
        if let Err(e) = f.install() {
            fail(report, Step::Seccomp, e);
        }
    }
    let mut best = Errno::ENOENT;
    for prog in &p.programs {
        // SAFETY: NUL-terminated path and NULL-terminated pointer arrays
        // into CStrings that outlive the call.
        unsafe { libc::execve(prog.as_ptr(), p.argv_ptrs.as_ptr(), p.env_ptrs.as_ptr()) };
        let e = Errno::last();
        if e != Errno::ENOENT && e != Errno::ENOTDIR {
            best = e;
        }
    }
    fail(report, Step::Exec, best)
}
