//! `vbuild exec NAME -- CMD` and `vbuild enter NAME`: a process inside a
//! running guest, made so that a hostile guest root gains nothing from it.
//!
//! We fork a helper, put it into the guest's cgroup and let it join the
//! guest's namespaces (user, cgroup, ipc, uts, net, time, mount, then pid,
//! which applies to its children). Before it forks the command into the
//! guest's PID namespace — the moment the guest can first see, signal or
//! ptrace it — the helper already stands where the guest's root stands: its
//! root and cwd in the guest, the capabilities of the guest's init, the same
//! seccomp filter, non-dumpable, and no descriptor but the command's stdio
//! and two pipes. The helper itself never enters that PID namespace, so the
//! guest never sees the one process that came from the host.
//!
//! The command's stdio is relayed by us through pipes (or, for `-t` and
//! `enter`, a pty of the guest's own devpts), never our own descriptors,
//! so nothing left behind in the guest can reach the caller's terminal.
//! The command runs in its own session; SIGTERM, SIGINT, SIGHUP and
//! SIGQUIT sent to us reach its process group; if we die, the helper and
//! the command are killed (parent-death signals down the chain). The exit
//! status passes through, 128 + signal for a killed command.

use crate::error::{sys, RuntimeError};
use crate::launch::{self, ExecProgram};
use crate::name::GuestName;
use crate::paths::Layout;
use crate::security;
use crate::state::{Liveness, State};
use nix::errno::Errno;
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use vbuild_kernel::cgroup::{Cgroup, CgroupError, Hierarchy, Joiner};
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
    /// Run as this user of the guest instead of its root (`--user`).
    pub user: Option<ExecUser>,
}

/// A user of the guest a command runs as: ids inside the guest's user
/// namespace, resolved from the guest's own /etc/passwd and /etc/group by
/// [`resolve_user`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecUser {
    /// The user's name, when the guest's passwd knows the uid.
    pub name: Option<String>,
    /// Uid inside the guest.
    pub uid: u32,
    /// Primary gid inside the guest.
    pub gid: u32,
    /// Supplementary groups (the primary one included).
    pub groups: Vec<u32>,
    /// Home directory from passwd (`/` when unknown).
    pub home: String,
}

/// Why `--user` could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// The guest does not run, does not exist...
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The user or group is unknown to the guest, or the ids are out of its range.
    #[error("guest {guest}: {what}")]
    Unknown {
        /// The guest.
        guest: String,
        /// What is missing, naming the user or group.
        what: String,
    },
}

/// The ids a guest's user namespace maps (0 to this, exclusive).
const GUEST_IDS: u32 = 65536;

/// Resolves `spec` (`USER`, `USER:GROUP`, names or numbers) from running
/// guest `name`'s own /etc/passwd and /etc/group, read through the
/// root-confined file API at init's root (regular files of at most
/// [`PASSWD_MAX`] bytes; never the host's files). A name the guest does not
/// know is an error; a numeric uid it does not know runs with gid GROUP, or
/// its own number as gid.
pub fn resolve_user(layout: &Layout, name: &GuestName, spec: &str) -> Result<ExecUser, UserError> {
    let st = running(layout, name.as_str())?;
    let root = vbuild_kernel::fsroot::Root::open(Path::new(&format!("/proc/{}/root", st.init_pid)))
        .map_err(|e| RuntimeError::Io {
            path: e.path,
            source: e.source,
        })?;
    if !process::is_alive(st.init_pid, st.init_start) {
        return Err(RuntimeError::NotRunning(name.to_string()).into());
    }
    let unknown = |what: String| UserError::Unknown {
        guest: name.to_string(),
        what,
    };
    let read = |file: &str| -> Result<String, UserError> {
        match root.read_regular(Path::new(file), PASSWD_MAX) {
            Ok(d) => Ok(String::from_utf8_lossy(&d).into_owned()),
            Err(e) if e.source.raw_os_error() == Some(libc::ENOENT) => Ok(String::new()),
            Err(e) => Err(unknown(format!(
                "the guest's /{file} is not usable: {}",
                e.source
            ))),
        }
    };
    let passwd = read("etc/passwd")?;
    let group = read("etc/group")?;
    let u = user_from(&passwd, &group, spec).map_err(unknown)?;
    if st.userns {
        if let Some(id) = [u.uid, u.gid].into_iter().find(|i| *i >= GUEST_IDS) {
            return Err(unknown(format!(
                "id {id} is outside the guest's ids (0-{})",
                GUEST_IDS - 1
            )));
        }
    }
    Ok(u)
}

/// Whether `path` is a directory inside running guest `name` (resolved
/// inside the guest's root as its init sees it; symlinks stay inside).
pub fn guest_is_dir(layout: &Layout, name: &GuestName, path: &str) -> Result<bool, RuntimeError> {
    let st = running(layout, name.as_str())?;
    let root = vbuild_kernel::fsroot::Root::open(Path::new(&format!("/proc/{}/root", st.init_pid)))
        .map_err(|e| RuntimeError::Io {
            path: e.path,
            source: e.source,
        })?;
    if !process::is_alive(st.init_pid, st.init_start) {
        return Err(RuntimeError::NotRunning(name.to_string()));
    }
    Ok(vbuild_kernel::fsroot::normalize(Path::new(path)).is_ok() && root.is_dir(Path::new(path)))
}

/// [`resolve_user`] on the texts of passwd and group.
fn user_from(passwd: &str, group: &str, spec: &str) -> Result<ExecUser, String> {
    let (user, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if user.is_empty() || grp.is_some_and(str::is_empty) {
        return Err(format!(
            "--user {spec}: give USER or USER:GROUP (names or numbers)"
        ));
    }
    // name:password:uid:gid:gecos:home:shell
    let entries: Vec<Vec<&str>> = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 7)
        .collect();
    let numeric = user.parse::<u32>().ok();
    let entry = entries.iter().find(|f| match numeric {
        Some(n) => f[2].parse::<u32>().ok() == Some(n),
        None => f[0] == user,
    });
    let (uname, uid, mut gid, home) = match (entry, numeric) {
        (Some(f), _) => {
            let uid = f[2]
                .parse::<u32>()
                .map_err(|_| format!("user {user}: bad uid in the guest's /etc/passwd"))?;
            let gid = f[3]
                .parse::<u32>()
                .map_err(|_| format!("user {user}: bad gid in the guest's /etc/passwd"))?;
            (Some(f[0].to_string()), uid, gid, f[5].to_string())
        }
        (None, Some(n)) => (None, n, n, "/".to_string()),
        (None, None) => {
            return Err(format!(
                "no user \"{user}\" in the guest's /etc/passwd (give a user the guest has, or a number)"
            ))
        }
    };
    // name:password:gid:members
    let groups: Vec<Vec<&str>> = group
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 4)
        .collect();
    if let Some(g) = grp {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => groups
                .iter()
                .find(|f| f[0] == g)
                .and_then(|f| f[2].parse::<u32>().ok())
                .ok_or_else(|| format!("no group \"{g}\" in the guest's /etc/group"))?,
        };
    }
    let mut all = vec![gid];
    if let (Some(n), None) = (&uname, grp) {
        for f in &groups {
            if f[3].split(',').any(|m| m == n) {
                if let Ok(id) = f[2].parse::<u32>() {
                    if !all.contains(&id) {
                        all.push(id);
                    }
                }
            }
        }
    }
    let home = if home.starts_with('/') {
        home
    } else {
        "/".into()
    };
    Ok(ExecUser {
        name: uname,
        uid,
        gid,
        groups: all,
        home,
    })
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

/// Root's login shell in a guest, and why the default was used instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginShell {
    /// The shell's path inside the guest.
    pub path: String,
    /// Set when the guest's /etc/passwd could not be used and `/bin/sh`
    /// was chosen: one line saying why (never the file's content).
    pub warning: Option<String>,
}

/// The most of a guest's /etc/passwd the host reads.
pub const PASSWD_MAX: u64 = 1 << 20;

/// Root's login shell from the guest's /etc/passwd, read through the
/// root-confined file API from init's root (`/proc/PID/root`): a regular
/// file of at most [`PASSWD_MAX`] bytes, no symlink followed out of the
/// guest or at the last component, no FIFO or device opened. Anything
/// else gives `/bin/sh` and a warning.
pub fn login_shell(layout: &Layout, name: &GuestName) -> Result<LoginShell, RuntimeError> {
    let st = running(layout, name.as_str())?;
    let root = vbuild_kernel::fsroot::Root::open(Path::new(&format!("/proc/{}/root", st.init_pid)))
        .map_err(|e| RuntimeError::Io {
            path: e.path,
            source: e.source,
        })?;
    // The root is pinned; make sure it still is the guest's init's.
    if !process::is_alive(st.init_pid, st.init_start) {
        return Err(RuntimeError::NotRunning(name.to_string()));
    }
    Ok(shell_from_root(&root))
}

const DEFAULT_SHELL: &str = "/bin/sh";

fn shell_from_root(root: &vbuild_kernel::fsroot::Root) -> LoginShell {
    let fallback = |why: String| LoginShell {
        path: DEFAULT_SHELL.to_string(),
        warning: Some(format!("{why}; using {DEFAULT_SHELL}")),
    };
    let data = match root.read_regular(Path::new("etc/passwd"), PASSWD_MAX) {
        Ok(d) => d,
        Err(e) if e.source.raw_os_error() == Some(libc::ENOENT) => {
            return LoginShell {
                path: DEFAULT_SHELL.to_string(),
                warning: None,
            }
        }
        Err(e) if e.source.raw_os_error() == Some(libc::EFBIG) => {
            return fallback(format!(
                "the guest's /etc/passwd is larger than {} KiB, not read",
                PASSWD_MAX >> 10
            ))
        }
        Err(e) => {
            return fallback(format!(
                "the guest's /etc/passwd is not usable: {}",
                e.source
            ))
        }
    };
    let text = String::from_utf8_lossy(&data);
    match parse_root_shell(&text) {
        Some(s) => LoginShell {
            path: s,
            warning: None,
        },
        None => fallback("the guest's /etc/passwd names no login shell for root".into()),
    }
}

/// Root's shell field of a passwd text: an absolute path of printable
/// characters, or `None`.
fn parse_root_shell(text: &str) -> Option<String> {
    let line = text.lines().find(|l| l.starts_with("root:"))?;
    let shell = line.split(':').nth(6)?;
    (shell.starts_with('/') && shell.len() < 256 && shell.chars().all(|c| c.is_ascii_graphic()))
        .then(|| shell.to_string())
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
/// (128 + signal when it was killed). Our stdin, stdout and stderr are
/// relayed to the command through pipes (or, with `tty`, a pty of the
/// guest's devpts), so the command never holds our descriptors; SIGTERM,
/// SIGINT, SIGHUP and SIGQUIT sent to us are passed on to the command's
/// process group; if we die, the command is killed.
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
    if let Some(u) = &opts.user {
        let who = u.name.clone().unwrap_or_else(|| u.uid.to_string());
        env.retain(|e| {
            !["HOME=", "USER=", "LOGNAME="]
                .iter()
                .any(|k| e.starts_with(k))
        });
        env.push(format!("HOME={}", u.home));
        env.push(format!("USER={who}"));
        env.push(format!("LOGNAME={who}"));
    }
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
    let (go_r, go_w) = launch::pipe().map_err(sys(n, "pipe"))?;
    let (rep_r, rep_w) = launch::pipe().map_err(sys(n, "pipe"))?;
    let (alive_r, alive_w) = launch::pipe().map_err(sys(n, "pipe"))?;
    let mut ends = if opts.tty {
        let (a, b) = nix::sys::socket::socketpair(
            nix::sys::socket::AddressFamily::Unix,
            nix::sys::socket::SockType::Stream,
            None,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        )
        .map_err(sys(n, "socketpair"))?;
        Ends::Tty {
            ours: a,
            theirs: Some(b),
        }
    } else {
        let (in_r, in_w) = launch::pipe().map_err(sys(n, "pipe"))?;
        let (out_r, out_w) = launch::pipe().map_err(sys(n, "pipe"))?;
        let (err_r, err_w) = launch::pipe().map_err(sys(n, "pipe"))?;
        Ends::Pipes {
            ours: [Some(in_w), Some(out_r), Some(err_r)],
            theirs: vec![in_r, out_w, err_w],
        }
    };
    // Everything the helper holds until it closes all but stdio and two
    // pipes; it drops the rest (what our other threads had open) at once.
    let mut held: Vec<RawFd> = nsfds.iter().map(|(_, f)| f.as_raw_fd()).collect();
    held.extend([go_r.as_raw_fd(), rep_w.as_raw_fd()]);
    held.extend([alive_r.as_raw_fd(), alive_w.as_raw_fd()]);
    held.extend(ends.theirs());
    let ctx = Helper {
        nsfds: &nsfds,
        held: &held,
        go: go_r.as_raw_fd(),
        report: rep_w.as_raw_fd(),
        alive: [alive_r.as_raw_fd(), alive_w.as_raw_fd()],
        stdio: ends.theirs(),
        tty: opts.tty,
        parent: std::process::id() as i32,
        userns: nsfds.iter().any(|(k, _)| *k == "user"),
        workdir: &workdir,
        program: &program,
        filter: &filter,
        keep: security::kept_mask(),
        last: caps::last_cap(),
        forwarded: process::SignalSet::of(&FORWARDED_TO_HELPER),
        user: opts.user.as_ref().map(|u| (u.uid, u.gid)),
        groups: opts.user.as_ref().map_or(&[][..], |u| &u.groups[..]),
    };
    // Made before the fork: `sys` allocates, and the child must not (a
    // `.map_err(sys(..))` on the fork's result ran it in the child too,
    // which hung on malloc's lock when another thread held it).
    let fork_failed = sys(n, "fork");
    // The helper starts in the guest's group (see `cgroup::Joiner`).
    let joiner = cg
        .as_ref()
        .map(|cg| guest_cgroup_joiner(cg, st.init_pid))
        .transpose()
        .map_err(cg_err)?;
    let cgroup2 = joiner.as_ref().and_then(|j| j.unified_fd());
    // SAFETY: the helper only makes system calls on memory prepared above.
    let helper = match unsafe { process::fork_into_cgroup(0, cgroup2) } {
        Ok(process::Forked::Child) => helper_main(&ctx, joiner.as_ref()),
        Ok(process::Forked::Parent(pid)) => pid,
        Err(e) => return Err(fork_failed(e)),
    };
    drop((go_r, rep_w, alive_r, alive_w, joiner));
    ends.drop_theirs();
    drop(nsfds);
    let helper_fd = process::pidfd_open(helper).map_err(sys(n, "pidfd_open"));
    let joined = (|| -> Result<(), RuntimeError> {
        helper_fd
            .as_ref()
            .map_err(|e| sys(n, "pidfd_open")(e_errno(e)))?;
        nix::unistd::write(&go_w, b"g").map_err(sys(n, "release the helper"))?;
        Ok(())
    })();
    drop(go_w);
    let helper_fd = match (joined, helper_fd) {
        (Ok(()), Ok(fd)) => fd,
        (Err(e), _) | (Ok(()), Err(e)) => {
            let _ = process::wait_exit_code(helper);
            return Err(e);
        }
    };
    relay_until_exit(&mut ends, &helper_fd, opts.tty);
    let code = process::wait_exit_code(helper).map_err(sys(n, "wait"))?;
    if let Some(f) = launch::read_report(&rep_r).map_err(sys(n, "read report"))? {
        if !f.is_aborted() {
            return Err(launch::describe_plain(f, &argv.join(" "), n));
        }
    }
    Ok(code)
}

fn e_errno(e: &RuntimeError) -> Errno {
    match e {
        RuntimeError::Sys { errno, .. } => *errno,
        _ => Errno::EIO,
    }
}

/// Signals we pass on to the command (through the helper, to the
/// command's process group), as a terminal or a service manager would.
const FORWARDED: [i32; 4] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT];

/// What the helper waits for: the forwarded signals and its child's end.
const FORWARDED_TO_HELPER: [i32; 5] = [
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGCHLD,
];

/// The command's stdio: our ends and the helper's.
enum Ends {
    /// A pty made by the helper in the guest's devpts; its master arrives
    /// on `ours`.
    Tty {
        ours: OwnedFd,
        theirs: Option<OwnedFd>,
    },
    /// Three pipes: the command's stdin, stdout, stderr (ours: the write
    /// end of the first, the read ends of the others).
    Pipes {
        ours: [Option<OwnedFd>; 3],
        theirs: Vec<OwnedFd>,
    },
}

impl Ends {
    fn theirs(&self) -> [RawFd; 3] {
        match self {
            Ends::Tty { theirs, .. } => [theirs.as_ref().map_or(-1, |t| t.as_raw_fd()), -1, -1],
            Ends::Pipes { theirs, .. } => {
                let mut r = [-1; 3];
                for (i, t) in theirs.iter().enumerate() {
                    r[i] = t.as_raw_fd();
                }
                r
            }
        }
    }

    /// Closes the helper's ends on our side, so end-of-file and hang-ups
    /// reach whoever holds the other end.
    fn drop_theirs(&mut self) {
        match self {
            Ends::Tty { theirs, .. } => *theirs = None,
            Ends::Pipes { theirs, .. } => theirs.clear(),
        }
    }
}

/// `vbuild enter`: root's login shell (see [`login_shell`]) in the guest,
/// on a guest pty.
pub fn enter(layout: &Layout, name: &GuestName, shell: &LoginShell) -> Result<i32, RuntimeError> {
    let base = shell.path.rsplit('/').next().unwrap_or("sh").to_string();
    let opts = ExecOptions {
        tty: true,
        env: vec![format!("SHELL={}", shell.path)],
        argv0: Some(format!("-{base}")),
        workdir: Some("/root".into()),
        user: None,
    };
    exec(layout, name, std::slice::from_ref(&shell.path), &opts)
}

/// What the helper needs, borrowed from the parent's preparation.
struct Helper<'a> {
    nsfds: &'a [(&'static str, OwnedFd)],
    /// Every descriptor above stdio it needs before its own close-all.
    held: &'a [RawFd],
    go: RawFd,
    report: RawFd,
    /// A pipe whose write end only the helper keeps: the command sees it
    /// hang up if the helper died before the command asked to die with it.
    alive: [RawFd; 2],
    /// Pipes: the command's stdin, stdout, stderr. Tty: the socket the
    /// pty master is sent back on.
    stdio: [RawFd; 3],
    tty: bool,
    /// Our pid, to notice having been orphaned before asking to die with us.
    parent: i32,
    userns: bool,
    workdir: &'a CString,
    program: &'a ExecProgram,
    filter: &'a seccomp::Filter,
    keep: u64,
    last: u32,
    forwarded: process::SignalSet,
    /// Uid and gid the command switches to (`--user`), and its groups.
    user: Option<(u32, u32)>,
    groups: &'a [u32],
}

/// The helper: it stays outside the guest's PID namespace (so the guest
/// never sees it) and becomes, before it forks the command into that
/// namespace, exactly what a process of the guest is: in the guest's
/// namespaces and root, with the guest root's capabilities and seccomp
/// filter, non-dumpable, holding nothing but the command's stdio and two
/// pipes. What the guest can see from the command's first instant on
/// therefore holds nothing of the host to take, even for a guest root
/// allowed to ptrace it. Then it waits, passing our signals on.
fn helper_main(c: &Helper<'_>, cgroup: Option<&Joiner>) -> ! {
    use launch::ChildStep;
    if let Some(Err(e)) = cgroup.map(|j| j.join_in_child()) {
        launch::report_failure(c.report, ChildStep::Cgroup, e);
    }
    vbuild_kernel::signal::reset_all();
    // A copy of another thread's descriptor (a guest's state lock taken
    // by a start in the same process) must not live on in us.
    if let Err(e) = process::close_from_except_all(3, c.held) {
        launch::report_failure(c.report, ChildStep::Sync, e);
    }
    // Die with `vbuild exec`; the command dies with us in turn.
    if process::die_with_parent(libc::SIGKILL).is_err() || process::parent_pid() != c.parent {
        launch::report_failure(c.report, ChildStep::Sync, Errno::ECANCELED);
    }
    // Out of the caller's session: its terminal's signals are not ours.
    if let Err(e) = process::new_session() {
        launch::report_failure(c.report, ChildStep::Join, e);
    }
    let mut b = [0u8; 1];
    // SAFETY: read into a stack buffer.
    if unsafe { libc::read(c.go, b.as_mut_ptr().cast(), 1) } != 1 {
        launch::report_failure(c.report, ChildStep::Sync, Errno::ECANCELED);
    }
    if let Err((_, e)) = ns::enter_all(c.nsfds) {
        launch::report_failure(c.report, ChildStep::Join, e);
    }
    if c.userns {
        // Root of the guest's user namespace, like its init.
        if let Err(e) = process::set_ids(0, 0, true) {
            launch::report_failure(c.report, ChildStep::Join, e);
        }
    }
    // The command's stdio on 0, 1, 2: pipes of ours, or a pty of the guest.
    if c.tty {
        match pty::open_pair_at(c"/dev/pts/ptmx") {
            Ok((m, s)) => {
                if vbuild_kernel::fdpass::send_fd(c.stdio[0], m.as_raw_fd()).is_err() {
                    launch::report_failure(c.report, ChildStep::Console, Errno::EPIPE);
                }
                drop(m);
                if let Err(e) = dup_onto_stdio([s.as_raw_fd(); 3]) {
                    launch::report_failure(c.report, ChildStep::Console, e);
                }
            }
            Err(e) => launch::report_failure(c.report, ChildStep::Console, e),
        }
    } else if let Err(e) = dup_onto_stdio(c.stdio) {
        launch::report_failure(c.report, ChildStep::Console, e);
    }
    // setns(mnt) put root and cwd at the guest's root; the workdir is
    // looked up from there (a missing one falls back to /).
    // SAFETY: chdir with NUL-terminated paths.
    unsafe {
        if libc::chdir(c.workdir.as_ptr()) != 0 {
            libc::chdir(c"/".as_ptr());
        }
    }
    if let Err(e) = caps::restrict_to(c.keep, c.last) {
        launch::report_failure(c.report, ChildStep::Caps, e.errno);
    }
    if let Err(e) = process::set_dumpable(false) {
        launch::report_failure(c.report, ChildStep::Caps, e);
    }
    // Not no_new_privs: the guest's own init runs without it (su, sudo and
    // file capabilities inside must keep working), and the filter needs
    // none while CAP_SYS_ADMIN is held in the guest's namespace.
    if let Err(e) = c.filter.install() {
        launch::report_failure(c.report, ChildStep::Seccomp, e);
    }
    if let Err(e) = process::block_signals(&c.forwarded) {
        launch::report_failure(c.report, ChildStep::Sync, e);
    }
    // Nothing but stdio, the report pipe and the alive pipe from here on.
    if let Err(e) = process::close_all_except([c.report, c.alive[0], c.alive[1]]) {
        launch::report_failure(c.report, ChildStep::Sync, e);
    }
    // The pid namespace applies to children: the command is one.
    // SAFETY: the child only makes system calls.
    let pid = match unsafe { process::fork_into(0) } {
        Ok(process::Forked::Child) => command_main(c),
        Ok(process::Forked::Parent(pid)) => pid,
        Err(e) => launch::report_failure(c.report, ChildStep::Join, e),
    };
    // SAFETY: closing descriptors only the command needs.
    unsafe {
        libc::close(c.alive[0]);
        libc::close(c.report);
        for fd in 0..3 {
            libc::close(fd);
        }
    }
    loop {
        match process::wait_signal(&c.forwarded) {
            Ok(libc::SIGCHLD) => match process::try_wait_exit_code(pid) {
                Ok(Some(code)) => process::exit_now(code),
                Ok(None) => {}
                Err(_) => process::exit_now(255),
            },
            Ok(sig) => {
                let _ = process::signal_group(pid, sig);
            }
            Err(_) => process::exit_now(process::wait_exit_code(pid).unwrap_or(255)),
        }
    }
}

/// Puts `fds` on 0, 1 and 2. Allocation-free.
fn dup_onto_stdio(fds: [RawFd; 3]) -> Result<(), Errno> {
    for (target, fd) in fds.iter().enumerate() {
        // SAFETY: dup2 of descriptors we hold.
        if *fd != target as RawFd && unsafe { libc::dup2(*fd, target as RawFd) } < 0 {
            return Err(Errno::last());
        }
    }
    Ok(())
}

/// The command, already confined by the helper: its own session (on the
/// pty, with `tty`), the default signal mask, death with the helper.
fn command_main(c: &Helper<'_>) -> ! {
    use launch::ChildStep;
    if let Err(e) = process::set_signal_mask(&process::SignalSet::of(&[])) {
        launch::report_failure(c.report, ChildStep::Sync, e);
    }
    if let Err(e) = process::die_with_parent(libc::SIGKILL) {
        launch::report_failure(c.report, ChildStep::Sync, e);
    }
    // If the helper died before that, only its end of `alive` is gone.
    // SAFETY: close and poll on descriptors we hold.
    unsafe {
        libc::close(c.alive[1]);
        let mut p = libc::pollfd {
            fd: c.alive[0],
            events: libc::POLLIN,
            revents: 0,
        };
        if libc::poll(&mut p, 1, 0) != 0 {
            launch::report_failure(c.report, ChildStep::Sync, Errno::ECANCELED);
        }
    }
    let session = if c.tty {
        pty::become_session_on(0)
    } else {
        process::new_session()
    };
    if let Err(e) = session {
        launch::report_failure(c.report, ChildStep::Console, e);
    }
    // `--user`: the guest's user, with no capabilities left (a change of
    // uid away from 0 clears them).
    if let Some((uid, gid)) = c.user {
        if let Err(e) = process::set_groups(c.groups) {
            launch::report_failure(c.report, ChildStep::Caps, e);
        }
        if let Err(e) = process::set_ids(uid, gid, false) {
            launch::report_failure(c.report, ChildStep::Caps, e);
        }
    }
    launch::exec_program(
        &c.program.programs,
        &c.program.argv_ptrs,
        &c.program.env_ptrs,
        c.report,
    )
}

/// One direction of the relay: bytes read from `src` wait in `pending`
/// until `dst` takes them.
struct Pump {
    src: RawFd,
    dst: RawFd,
    pending: Vec<u8>,
    open: bool,
}

/// Relays our stdio and the command's until the helper ends (the command
/// ended), passing our signals on; then takes what output is left. The
/// end of our stdin closes the command's (pipes) or sends it the
/// terminal's end-of-file (a pty fed from a non-terminal). What a process
/// left behind in the guest writes later is not waited for.
fn relay_until_exit(ends: &mut Ends, helper: &OwnedFd, tty: bool) {
    use nix::sys::signal::Signal;
    let mut signals: Vec<Signal> = FORWARDED
        .iter()
        .filter_map(|s| Signal::try_from(*s).ok())
        .collect();
    if tty {
        signals.push(Signal::SIGWINCH);
    }
    let old_mask = vbuild_kernel::signal::block(&signals).ok();
    let mut mask = nix::sys::signal::SigSet::empty();
    for s in &signals {
        mask.add(*s);
    }
    let sfd = nix::sys::signalfd::SignalFd::with_flags(
        &mask,
        nix::sys::signalfd::SfdFlags::SFD_CLOEXEC | nix::sys::signalfd::SfdFlags::SFD_NONBLOCK,
    )
    .ok();
    // In the background of a terminal, reading it is an error, not a stop.
    // SAFETY: swapping one signal's disposition; restored below.
    let old_ttin = unsafe { libc::signal(libc::SIGTTIN, libc::SIG_IGN) };
    let stdin_is_tty = pty::is_tty(std::io::stdin());

    let master: Option<OwnedFd>;
    let mut _raw = None;
    let (mut input, mut outputs): (Pump, Vec<Pump>) = match &mut *ends {
        Ends::Tty { ours, .. } => {
            master = vbuild_kernel::fdpass::recv_fd(ours.as_raw_fd()).ok();
            let m = master.as_ref().map_or(-1, |m| m.as_raw_fd());
            if let Some(mfd) = &master {
                set_nonblocking(mfd.as_raw_fd());
                let stdout = std::io::stdout();
                if let Some(ws) = pty::window_size(stdout.as_fd()) {
                    let _ = pty::set_window_size(mfd.as_fd(), &ws);
                }
                _raw = pty::RawMode::enter(std::io::stdin().as_fd());
            }
            (
                Pump {
                    src: 0,
                    dst: m,
                    pending: Vec::new(),
                    open: m >= 0,
                },
                vec![Pump {
                    src: m,
                    dst: 1,
                    pending: Vec::new(),
                    open: m >= 0,
                }],
            )
        }
        Ends::Pipes { ours, .. } => {
            let raw: Vec<RawFd> = ours
                .iter()
                .map(|o| o.as_ref().map_or(-1, |f| f.as_raw_fd()))
                .collect();
            for fd in &raw {
                set_nonblocking(*fd);
            }
            (
                Pump {
                    src: 0,
                    dst: raw[0],
                    pending: Vec::new(),
                    open: true,
                },
                vec![
                    Pump {
                        src: raw[1],
                        dst: 1,
                        pending: Vec::new(),
                        open: true,
                    },
                    Pump {
                        src: raw[2],
                        dst: 2,
                        pending: Vec::new(),
                        open: true,
                    },
                ],
            )
        }
    };
    let mut buf = vec![0u8; 64 * 1024];
    let mut stdin_done = false;
    // A pty fed from a non-terminal gets the terminal's end-of-file (VEOF,
    // ^D) once our input ends, and again now and then: a shell that
    // switches its terminal to raw mode loses an end-of-file that was
    // still pending in canonical mode.
    let mut eof_sent_at: Option<std::time::Instant> = None;
    loop {
        let eof_timeout = match eof_sent_at {
            Some(t) if input.open && input.pending.is_empty() => {
                let left = VEOF_REPEAT.saturating_sub(t.elapsed());
                if left.is_zero() {
                    input.pending.push(VEOF);
                    eof_sent_at = Some(std::time::Instant::now());
                    0
                } else {
                    left.as_millis() as i32 + 1
                }
            }
            _ => -1,
        };
        // 0: helper, 1: signals, 2: stdin, 3: input sink, 4..: outputs.
        let mut p = vec![
            pollfd(helper.as_raw_fd(), libc::POLLIN),
            pollfd(sfd.as_ref().map_or(-1, |s| s.as_raw_fd()), libc::POLLIN),
            pollfd(
                if !stdin_done && input.open && input.pending.is_empty() {
                    0
                } else {
                    -1
                },
                libc::POLLIN,
            ),
            pollfd(
                if input.open && !input.pending.is_empty() {
                    input.dst
                } else {
                    -1
                },
                libc::POLLOUT,
            ),
        ];
        for o in &outputs {
            p.push(pollfd(if o.open { o.src } else { -1 }, libc::POLLIN));
        }
        // SAFETY: poll over our array.
        if unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, eof_timeout) } < 0 {
            if Errno::last() == Errno::EINTR {
                continue;
            }
            break;
        }
        if p[1].revents != 0 {
            if let Some(s) = &sfd {
                while let Ok(Some(info)) = s.read_signal() {
                    let sig = info.ssi_signo as i32;
                    if sig == libc::SIGWINCH {
                        if let (Ends::Tty { .. }, Some(ws)) =
                            (&ends, pty::window_size(std::io::stdout().as_fd()))
                        {
                            if input.dst >= 0 {
                                // SAFETY: the master stays open while we relay.
                                let m = unsafe { std::os::fd::BorrowedFd::borrow_raw(input.dst) };
                                let _ = pty::set_window_size(m, &ws);
                            }
                        }
                    } else {
                        let _ = process::pidfd_signal(helper, sig);
                    }
                }
            }
        }
        if p[2].revents != 0 {
            match nix::unistd::read(0, &mut buf) {
                Ok(k) if k > 0 => input.pending.extend_from_slice(&buf[..k]),
                Err(Errno::EINTR) | Err(Errno::EAGAIN) => {}
                _ => {
                    stdin_done = true;
                    if tty {
                        if !stdin_is_tty {
                            input.pending.push(VEOF);
                            eof_sent_at = Some(std::time::Instant::now());
                        }
                    } else if let Ends::Pipes { ours, .. } = &mut *ends {
                        if input.pending.is_empty() {
                            ours[0] = None;
                            input.open = false;
                        }
                    }
                }
            }
        }
        if (p[3].revents != 0 || !input.pending.is_empty()) && input.open {
            match nix::unistd::write(
                // SAFETY: the sink stays open while `input.open`.
                unsafe { std::os::fd::BorrowedFd::borrow_raw(input.dst) },
                &input.pending,
            ) {
                Ok(k) => {
                    input.pending.drain(..k);
                }
                Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
                Err(_) => {
                    input.pending.clear();
                    input.open = false;
                    stdin_done = true;
                }
            }
            if stdin_done && input.pending.is_empty() && !tty {
                if let Ends::Pipes { ours, .. } = &mut *ends {
                    ours[0] = None;
                    input.open = false;
                }
            }
        }
        for (i, o) in outputs.iter_mut().enumerate() {
            if p[4 + i].revents != 0 {
                pump_output(o, &mut buf);
            }
        }
        if p[0].revents != 0 {
            // The command ended: take what it left in the pipes or pty.
            for o in outputs.iter_mut() {
                while o.open && pump_output(o, &mut buf) {}
            }
            break;
        }
    }
    drop(_raw);
    // SAFETY: restoring the disposition we replaced.
    unsafe { libc::signal(libc::SIGTTIN, old_ttin) };
    if let Some(s) = &sfd {
        // Signals that came after the command ended were for it, not us.
        while let Ok(Some(_)) = s.read_signal() {}
    }
    if let Some(old) = old_mask {
        let _ = nix::sys::signal::pthread_sigmask(
            nix::sys::signal::SigmaskHow::SIG_SETMASK,
            Some(&old),
            None,
        );
    }
}

/// The terminal's end-of-file character (^D).
const VEOF: u8 = 0x04;

/// How often VEOF is sent again while the command still runs.
const VEOF_REPEAT: std::time::Duration = std::time::Duration::from_millis(200);

/// Moves what `o.src` has now to `o.dst`; false when nothing more came.
fn pump_output(o: &mut Pump, buf: &mut [u8]) -> bool {
    match nix::unistd::read(o.src, buf) {
        Ok(0) => {
            o.open = false;
            false
        }
        Ok(k) => {
            if write_all(o.dst, &buf[..k]).is_err() {
                // Our side is gone (a closed pipe): stop relaying it.
                o.open = false;
            }
            true
        }
        Err(Errno::EINTR) => true,
        Err(Errno::EAGAIN) => false,
        // EIO: every holder of the pty's slave closed it.
        Err(_) => {
            o.open = false;
            false
        }
    }
}

fn pollfd(fd: RawFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

fn set_nonblocking(fd: RawFd) {
    if fd < 0 {
        return;
    }
    // SAFETY: fcntl flag changes on our own descriptor.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
}

fn write_all(fd: RawFd, mut data: &[u8]) -> Result<(), Errno> {
    while !data.is_empty() {
        // SAFETY: write from our buffer.
        let r = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if r < 0 {
            match Errno::last() {
                Errno::EINTR => continue,
                Errno::EAGAIN => {
                    // A non-blocking destination that is full: wait for room.
                    let mut p = pollfd(fd, libc::POLLOUT);
                    // SAFETY: one pollfd.
                    unsafe { libc::poll(&mut p, 1, -1) };
                    continue;
                }
                e => return Err(e),
            }
        }
        data = &data[r as usize..];
    }
    Ok(())
}

/// How a new process joins where a process of the guest belongs: the
/// guest's group in every v1 hierarchy, and in the unified hierarchy the
/// group init is in now (`init.scope` under systemd), because on cgroup v2 a
/// group that delegates controllers to its children cannot hold processes
/// itself.
fn guest_cgroup_joiner(cg: &Cgroup, init_pid: i32) -> Result<Joiner, CgroupError> {
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
    cg.joiner_with_unified(deeper.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nbob:x:1000:1000:Bob:/home/bob:/bin/sh\nweb:x:33:33::/var/www:/usr/sbin/nologin\n";
    const GROUP: &str = "root:x:0:\nbob:x:1000:\nweb:x:33:\nstaff:x:50:bob,web\naudio:x:29:bob\n";

    #[test]
    fn users_resolve_from_the_guests_own_files() {
        let u = user_from(PASSWD, GROUP, "bob").unwrap();
        assert_eq!((u.uid, u.gid, &u.home[..]), (1000, 1000, "/home/bob"));
        assert_eq!(u.groups, [1000, 50, 29]);
        assert_eq!(u.name.as_deref(), Some("bob"));
        let u = user_from(PASSWD, GROUP, "bob:staff").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 50));
        assert_eq!(u.groups, [50], "an explicit group replaces the others");
        let u = user_from(PASSWD, GROUP, "33").unwrap();
        assert_eq!((u.name.as_deref(), u.gid), (Some("web"), 33));
        let u = user_from(PASSWD, GROUP, "4242:7").unwrap();
        assert_eq!(
            (u.uid, u.gid, u.name.clone(), &u.home[..]),
            (4242, 7, None, "/")
        );
        let e = user_from(PASSWD, GROUP, "alice").unwrap_err();
        assert!(
            e.contains("no user \"alice\" in the guest's /etc/passwd"),
            "{e}"
        );
        let e = user_from(PASSWD, GROUP, "bob:wheel").unwrap_err();
        assert!(e.contains("no group \"wheel\""), "{e}");
        assert!(user_from(PASSWD, GROUP, "bob:").is_err());
        assert!(user_from(PASSWD, GROUP, ":x").is_err());
    }

    #[test]
    fn guest_environment_marks_the_container() {
        let e = guest_env("u1", false);
        assert!(e.contains(&"container=vbuild".to_string()));
        assert!(e.iter().any(|v| v.starts_with("PATH=/")));
        assert!(!e.iter().any(|v| v.starts_with("TERM=")));
    }
}
