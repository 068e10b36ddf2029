//! The first process of a guest context: forked into new namespaces, it
//! waits until its parent side has put it into the guest's cgroup and
//! network, then enters its own cgroup (and time) namespace, builds the
//! root filesystem, pivots into it, drops capabilities, installs the
//! seccomp filter and execs init (or the command of `vbuild run`).
//!
//! Everything the child needs is prepared beforehand (`Prepared`), so the
//! child only makes system calls: it is safe to fork from a multi-threaded
//! process. Failures travel back over a close-on-exec pipe as a fixed-size
//! record (stage, step, errno); end-of-file without a record means exec
//! succeeded. `Prepared::explain` turns a record into a message naming the
//! path that failed.

use crate::error::RuntimeError;
use crate::security;
use nix::errno::Errno;
use serde::{Deserialize, Serialize};
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use vbuild_kernel::rootfs::{Plan, RootfsSpec};
use vbuild_kernel::{caps, ns, process, pty, seccomp};

/// What the first process of a context is and gets; plain data, so `start`
/// can hand it to the supervisor as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaunchSpec {
    /// The guest's root directory on the host.
    pub rootfs: PathBuf,
    /// The program (a path inside the guest, or a name looked up in the
    /// guest's PATH) and its arguments; `argv[0]` is the program.
    pub argv: Vec<String>,
    /// The environment, `KEY=VALUE`.
    pub env: Vec<String>,
    /// The context's hostname.
    pub hostname: String,
    /// The pty slave (host path) that becomes /dev/console and stdio.
    pub console: Option<PathBuf>,
    /// The supervisor's notify socket (host path) for /run/host/notify.
    pub notify_socket: Option<PathBuf>,
    /// Files for /run/host (name, contents).
    pub host_files: Vec<(String, String)>,
    /// A network namespace of its own (off only for host networking).
    pub private_net: bool,
    /// A cgroup namespace rooted at the cgroup the parent side put the
    /// child in, with cgroup2 at /sys/fs/cgroup.
    pub cgroupns: bool,
    /// A time namespace in which boot time starts at zero.
    pub timens: bool,
    /// A user namespace (the parent side writes its id maps).
    pub userns: bool,
    /// With `userns`: the host uid (and gid) that creates the user
    /// namespace and becomes root inside (the guest's id range base).
    #[serde(default)]
    pub id_base: u32,
    /// Die when the parent dies (one-shot contexts).
    pub die_with_parent: bool,
    /// Keep CAP_MKNOD (only where a device cgroup limits what is created).
    pub keep_mknod: bool,
    /// Sizes of /dev/shm, /tmp and /run (`crate::tmpfs`).
    #[serde(default)]
    pub tmpfs: crate::tmpfs::TmpfsSizes,
    /// The root arrives as a detached tree after go even without `userns`
    /// (a privileged overlay guest, `crate::layer`).
    #[serde(default)]
    pub root_tree: bool,
}

/// Where a child failed (the `stage` of a failure record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
enum Stage {
    Sync = 1,
    CgroupNs,
    TimeNs,
    TimeOffset,
    Hostname,
    Rootfs,
    Console,
    Caps,
    Seccomp,
    Exec,
    Ids,
    Parent,
    Cloexec,
    Join,
    UserLimits,
    /// Not a failure: setup is done and the child waits for `start`.
    Ready,
    Rlimit,
    User,
    Cwd,
    StartFifo,
    OomScore,
    NoNewPrivs,
    /// Not a failure: the root is set up, pivot_root is next, and the
    /// child waits for a byte on its sync pipe (`Custom::pause_before_pivot`).
    PrePivot,
    /// Joining the context's cgroup (v1 `tasks`) from the child itself.
    Cgroup,
}

impl Stage {
    fn from_u32(v: u32) -> Option<Stage> {
        use Stage::*;
        [
            Sync, CgroupNs, TimeNs, TimeOffset, Hostname, Rootfs, Console, Caps, Seccomp, Exec,
            Ids, Parent, Cloexec, Join, UserLimits, Ready, Rlimit, User, Cwd, StartFifo, OomScore,
            NoNewPrivs, PrePivot, Cgroup,
        ]
        .into_iter()
        .find(|s| *s as u32 == v)
    }
}

/// A failure record as the child writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    stage: u32,
    index: u32,
    errno: i32,
}

impl Failure {
    fn encode(&self) -> [u8; 12] {
        let mut b = [0u8; 12];
        b[..4].copy_from_slice(&self.stage.to_le_bytes());
        b[4..8].copy_from_slice(&self.index.to_le_bytes());
        b[8..].copy_from_slice(&self.errno.to_le_bytes());
        b
    }

    fn decode(b: &[u8; 12]) -> Failure {
        Failure {
            stage: u32::from_le_bytes(b[..4].try_into().expect("4 bytes")),
            index: u32::from_le_bytes(b[4..8].try_into().expect("4 bytes")),
            errno: i32::from_le_bytes(b[8..].try_into().expect("4 bytes")),
        }
    }

    /// The kernel's answer.
    pub fn errno(&self) -> Errno {
        Errno::from_raw(self.errno)
    }

    /// True when the failure was exec itself (the program could not run).
    pub fn is_exec(&self) -> bool {
        self.stage == Stage::Exec as u32
    }

    /// True when the child gave up because its parent side went away
    /// before saying go (nothing to report to the user).
    pub fn is_aborted(&self) -> bool {
        self.stage == Stage::Sync as u32 && self.errno == Errno::ECANCELED as i32
    }

    /// True for the record a `Custom` child with a start fifo writes when
    /// its setup is complete and it waits to be started (not a failure).
    pub fn is_ready(&self) -> bool {
        self.stage == Stage::Ready as u32
    }

    /// The child set up the root and waits before pivot_root (see
    /// `Custom::pause_before_pivot`).
    pub fn is_pre_pivot(&self) -> bool {
        self.stage == Stage::PrePivot as u32
    }
}

/// The capability sets of a process as masks over capability numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CapSets {
    /// The bounding set.
    pub bounding: u64,
    /// The effective set.
    pub effective: u64,
    /// The permitted set.
    pub permitted: u64,
    /// The inheritable set.
    pub inheritable: u64,
    /// The ambient set.
    pub ambient: u64,
}

/// A context whose caller decides everything `Prepared::new` takes from
/// vbuild's guest policy: the root-filesystem plan, the namespaces, the
/// process's user, capability sets, limits and working directory, and a
/// start fifo to wait on before exec (an OCI runtime's create/start split).
#[derive(Debug, Clone)]
pub struct Custom {
    /// The root filesystem plan (ends with the pivot into the root).
    pub plan: Plan,
    /// `CLONE_NEW*` flags of the namespaces made new.
    pub clone_flags: u64,
    /// Existing namespaces to join (a path such as /proc/PID/ns/net and
    /// its `CLONE_NEW*` type), joined before the hostname is set.
    pub join: Vec<(PathBuf, i32)>,
    /// The hostname, when the context sets one.
    pub hostname: Option<String>,
    /// Capability sets after exec.
    pub caps: CapSets,
    /// The seccomp filter, if any.
    pub filter: Option<seccomp::Filter>,
    /// uid, gid and supplementary groups of the process.
    pub user: (u32, u32, Vec<u32>),
    /// Resource limits: (RLIMIT_* number, soft, hard).
    pub rlimits: Vec<(i32, u64, u64)>,
    /// Set no_new_privs before exec.
    pub no_new_privs: bool,
    /// /proc/self/oom_score_adj.
    pub oom_score_adj: Option<i32>,
    /// The umask the program starts with (0o022 when `None`).
    pub umask: Option<u32>,
    /// The working directory inside the root.
    pub cwd: String,
    /// A fifo (host path) opened for writing right before exec, which
    /// blocks until someone opens it for reading (the start command).
    pub start_fifo: Option<PathBuf>,
    /// Descriptors 3 .. 3 + N of the caller that the program inherits
    /// (runc's `--preserve-fds N`); every other one is closed.
    pub preserve_fds: u32,
    /// Once the root is set up, right before pivot_root, write a
    /// `PrePivot` record and wait for another byte on the sync pipe (OCI
    /// createContainer hooks run then, in the container's namespaces).
    pub pause_before_pivot: bool,
    /// A connected console socket (runc's `--console-socket`): after the
    /// pivot the process opens a pty of the container's devpts, sends the
    /// master there and takes the slave as its terminal and stdio.
    pub console_socket: Option<RawFd>,
    /// That terminal's window size (rows, columns).
    pub console_size: Option<(u16, u16)>,
}

/// `Custom` turned into what the child uses.
struct CustomC {
    join: Vec<(CString, i32)>,
    caps: CapSets,
    filter: Option<seccomp::Filter>,
    uid: u32,
    gid: u32,
    groups: Vec<libc::gid_t>,
    rlimits: Vec<(i32, libc::rlimit)>,
    no_new_privs: bool,
    oom_score_adj: Option<Vec<u8>>,
    umask: Option<u32>,
    cwd: CString,
    start_fifo: Option<CString>,
    preserve_fds: u32,
    /// The plan from pivot_root on, run after the pause before it.
    after_pause: Option<Plan>,
    console_socket: Option<RawFd>,
    console_size: Option<libc::winsize>,
}

/// A `LaunchSpec` turned into what the child uses: C strings, the rootfs
/// plan, the capability mask and the compiled filter.
pub struct Prepared {
    spec: LaunchSpec,
    plan: Plan,
    filter: seccomp::Filter,
    keep_caps: u64,
    last_cap: u32,
    hostname: Option<CString>,
    /// What a `Custom` context sets beyond the guest policy.
    custom: Option<CustomC>,
    /// Candidate paths for argv[0] (one, or one per PATH directory).
    programs: Vec<CString>,
    /// Owns what `argv_ptrs` points into.
    _argv: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    /// Owns what `env_ptrs` points into.
    _env: Vec<CString>,
    env_ptrs: Vec<*const libc::c_char>,
    console: Option<CString>,
    clone_flags: u64,
    /// `/proc/sys/user/max_*` files and values for the guest's userns.
    user_limits: Vec<(CString, Vec<u8>)>,
}

// SAFETY: the raw pointers point into the CStrings owned by the same value
// and are only read.
unsafe impl Send for Prepared {}

fn cstring(s: &str) -> CString {
    CString::new(s.replace('\0', "")).expect("NUL bytes removed")
}

/// The directories a name without `/` is looked up in, from the
/// environment's PATH (or the usual one).
fn path_dirs(env: &[String]) -> Vec<String> {
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    path.split(':')
        .filter(|d| d.starts_with('/'))
        .map(str::to_string)
        .collect()
}

impl Prepared {
    /// Prepares `spec`. Fails only for an empty command or a filter that
    /// cannot be built on this CPU.
    pub fn new(spec: LaunchSpec) -> Result<Prepared, RuntimeError> {
        let Some(program) = spec.argv.first().cloned() else {
            return Err(RuntimeError::Command {
                name: spec.hostname.clone(),
                command: String::new(),
                reason: "no command given".into(),
            });
        };
        let host_files: Vec<(&str, &[u8])> = spec
            .host_files
            .iter()
            .map(|(n, d)| (n.as_str(), d.as_bytes()))
            .collect();
        let readonly: Vec<&str> = security::READONLY.to_vec();
        let masked: Vec<&str> = security::MASKED.to_vec();
        let plan = Plan::new(&RootfsSpec {
            root: &spec.rootfs,
            console: spec.console.as_deref(),
            notify_socket: spec.notify_socket.as_deref(),
            host_files: &host_files,
            cgroup2: spec.cgroupns,
            cgroup2_detached: spec.userns,
            private_net: spec.private_net,
            bind_devices: spec.userns,
            devices: &security::DEVICES,
            masked: &masked,
            readonly: &readonly,
            idmapped_root: spec.userns || spec.root_tree,
            tmpfs: spec.tmpfs.limits(),
        });
        let filter = seccomp::Filter::deny(&security::BLOCKED_SYSCALLS, Errno::EPERM)?;
        let mut keep_caps = security::kept_mask();
        if !spec.keep_mknod {
            keep_caps &= !(1u64 << caps::number("MKNOD").expect("known"));
        }
        let programs: Vec<CString> = if program.contains('/') {
            vec![cstring(&program)]
        } else {
            path_dirs(&spec.env)
                .iter()
                .map(|d| cstring(&format!("{}/{program}", d.trim_end_matches('/'))))
                .collect()
        };
        let argv: Vec<CString> = spec.argv.iter().map(|a| cstring(a)).collect();
        let env: Vec<CString> = spec.env.iter().map(|a| cstring(a)).collect();
        let ptrs = |v: &Vec<CString>| -> Vec<*const libc::c_char> {
            v.iter()
                .map(|c| c.as_ptr())
                .chain(std::iter::once(std::ptr::null()))
                .collect()
        };
        let argv_ptrs = ptrs(&argv);
        let env_ptrs = ptrs(&env);
        let mut clone_flags =
            (libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC)
                as u64;
        if spec.private_net {
            clone_flags |= libc::CLONE_NEWNET as u64;
        }
        if spec.userns {
            clone_flags |= libc::CLONE_NEWUSER as u64;
        }
        Ok(Prepared {
            hostname: Some(cstring(&spec.hostname)),
            custom: None,
            console: spec
                .console
                .as_ref()
                .map(|p| CString::new(p.as_os_str().as_bytes()).expect("path")),
            plan,
            filter,
            keep_caps,
            last_cap: caps::last_cap(),
            programs,
            _argv: argv,
            argv_ptrs,
            _env: env,
            env_ptrs,
            clone_flags,
            user_limits: USER_LIMITS
                .iter()
                .map(|(k, v)| {
                    (
                        cstring(&format!("/proc/sys/user/{k}")),
                        v.to_string().into_bytes(),
                    )
                })
                .collect(),
            spec,
        })
    }

    /// Prepares a context whose plan, namespaces and process are all given
    /// by the caller (`Custom`); `spec` supplies the root, command,
    /// environment and the user-namespace parameters.
    pub fn custom(spec: LaunchSpec, c: Custom) -> Result<Prepared, RuntimeError> {
        let mut p = Prepared::new(spec)?;
        let mut plan = c.plan;
        let after_pause = if c.pause_before_pivot {
            let k = plan
                .steps
                .iter()
                .position(|s| matches!(s, vbuild_kernel::rootfs::Step::Pivot { .. }))
                .unwrap_or(plan.steps.len());
            Some(Plan {
                steps: plan.steps.split_off(k),
            })
        } else {
            None
        };
        p.plan = plan;
        p.clone_flags = c.clone_flags;
        p.hostname = c.hostname.as_deref().map(cstring);
        p.keep_caps = c.caps.bounding;
        let path = |p: &std::path::Path| CString::new(p.as_os_str().as_bytes()).expect("path");
        p.custom = Some(CustomC {
            join: c.join.iter().map(|(p, t)| (path(p), *t)).collect(),
            caps: c.caps,
            filter: c.filter,
            uid: c.user.0,
            gid: c.user.1,
            groups: c.user.2.clone(),
            rlimits: c
                .rlimits
                .iter()
                .map(|(r, soft, hard)| {
                    (
                        *r,
                        libc::rlimit {
                            rlim_cur: *soft,
                            rlim_max: *hard,
                        },
                    )
                })
                .collect(),
            no_new_privs: c.no_new_privs,
            oom_score_adj: c.oom_score_adj.map(|v| v.to_string().into_bytes()),
            umask: c.umask,
            cwd: cstring(&c.cwd),
            start_fifo: c.start_fifo.as_deref().map(path),
            preserve_fds: c.preserve_fds,
            after_pause,
            console_socket: c.console_socket,
            console_size: c.console_size.map(|(rows, cols)| libc::winsize {
                ws_row: rows,
                ws_col: cols,
                ws_xpixel: 0,
                ws_ypixel: 0,
            }),
        });
        Ok(p)
    }

    /// Turns a failure record into an error naming the step and path.
    pub fn explain(&self, name: &str, f: Failure) -> RuntimeError {
        let errno = f.errno();
        let step = match Stage::from_u32(f.stage) {
            Some(Stage::Rootfs) => {
                let i = f.index as usize;
                match self.custom.as_ref().and_then(|c| c.after_pause.as_ref()) {
                    Some(rest) if i >= self.plan.steps.len() => {
                        rest.describe(i - self.plan.steps.len())
                    }
                    _ => self.plan.describe(i),
                }
            }
            Some(Stage::PrePivot) => "wait before pivot_root".into(),
            Some(Stage::Exec) => {
                let reason = match errno {
                    Errno::ENOENT => "not found in the guest".to_string(),
                    Errno::EACCES => "not executable (permission denied)".to_string(),
                    e => e.desc().to_string(),
                };
                return RuntimeError::Command {
                    name: name.to_string(),
                    command: self.spec.argv.join(" "),
                    reason,
                };
            }
            Some(Stage::Sync) if f.index == 1 => "receive the id-mapped root filesystem".into(),
            Some(Stage::Sync) => "waiting for the parent side".into(),
            Some(Stage::CgroupNs) => "unshare the cgroup namespace".into(),
            Some(Stage::Cgroup) => "join the context's cgroup".into(),
            Some(Stage::TimeNs) => "unshare the time namespace".into(),
            Some(Stage::TimeOffset) => "set the boot-time offset".into(),
            Some(Stage::Hostname) => format!(
                "set hostname {}",
                self.hostname
                    .as_ref()
                    .map(|h| h.to_string_lossy().into_owned())
                    .unwrap_or_default()
            ),
            Some(Stage::Console) => match &self.spec.console {
                Some(p) => format!("make {} the console", p.display()),
                None => "open a terminal of the container's /dev/pts (is devpts mounted there?) and send it to the console socket".into(),
            },
            Some(Stage::Caps) => {
                let cap = caps::NAMES
                    .get(f.index as usize)
                    .copied()
                    .unwrap_or("(capset)");
                format!("drop capability {cap}")
            }
            Some(Stage::Seccomp) => "install the seccomp filter".into(),
            Some(Stage::Ids) => "become root of the user namespace".into(),
            Some(Stage::Parent) => "ask to die with the parent".into(),
            Some(Stage::Cloexec) => "close inherited descriptors".into(),
            Some(Stage::Join) => "join the guest's namespaces".into(),
            Some(Stage::Ready) => "report readiness".into(),
            Some(Stage::Rlimit) => format!("set resource limit {}", f.index),
            Some(Stage::User) => match &self.custom {
                Some(c) => format!("become uid {} gid {} (groups {:?})", c.uid, c.gid, c.groups),
                None => "change user".into(),
            },
            Some(Stage::Cwd) => match &self.custom {
                Some(c) => format!("enter working directory {}", c.cwd.to_string_lossy()),
                None => "enter the working directory".into(),
            },
            Some(Stage::StartFifo) => "wait on the start fifo".into(),
            Some(Stage::OomScore) => "set /proc/self/oom_score_adj".into(),
            Some(Stage::NoNewPrivs) => "set no_new_privs".into(),
            Some(Stage::UserLimits) => {
                let file = USER_LIMITS.get(f.index as usize).map_or("?", |l| l.0);
                format!("set /proc/sys/user/{file} in the guest's user namespace")
            }
            None => format!("stage {}", f.stage),
        };
        RuntimeError::Setup {
            name: name.to_string(),
            step,
            errno,
        }
    }
}

/// A pipe with both ends close-on-exec.
pub fn pipe() -> Result<(OwnedFd, OwnedFd), Errno> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
}

/// The `user.max_*` limits of an unprivileged guest's own user namespace
/// (what its processes may create inside; the host-wide limits of the
/// guest's host uid apply on top, since the namespace is created by that
/// uid). Files this kernel lacks are skipped.
pub const USER_LIMITS: [(&str, u64); 12] = [
    ("max_user_namespaces", 256),
    ("max_mnt_namespaces", 4096),
    ("max_pid_namespaces", 1024),
    ("max_net_namespaces", 1024),
    ("max_ipc_namespaces", 1024),
    ("max_uts_namespaces", 1024),
    ("max_cgroup_namespaces", 1024),
    ("max_time_namespaces", 1024),
    ("max_inotify_instances", 128),
    ("max_inotify_watches", 65536),
    ("max_fanotify_groups", 128),
    ("max_fanotify_marks", 65536),
];

/// Forks the first process of the context. With `cgroup` it starts in
/// that group (joined by the child itself: see `cgroup::Joiner`). With
/// `go`, the child waits for one byte on that descriptor before it enters
/// its cgroup namespace (so the parent side can first attach it to the
/// guest's network and id maps); end-of-file instead makes it exit quietly. `report` receives a
/// failure record, or nothing when exec succeeded. With a user namespace,
/// the id-mapped root arrives on unix socket `tree` after go. Returns the
/// child's pid.
///
/// With a user namespace the namespaces are made by a short-lived
/// intermediate process: it starts in `cgroup` (the guest's group, so the
/// cgroup namespace is rooted there), unshares the cgroup namespace as host
/// root (so the guest's user namespace does not own it and cannot mount
/// any cgroup hierarchy), makes the guest's detached cgroup2 mount, becomes
/// the guest's host uid and only then clones the child into a new user
/// namespace, which that uid owns. It exits at once; the caller must be a
/// child subreaper to inherit the child.
pub fn spawn(
    p: &Prepared,
    go: Option<RawFd>,
    report: RawFd,
    tree: Option<RawFd>,
    cgroup: Option<&vbuild_kernel::cgroup::Joiner>,
) -> Result<i32, Errno> {
    let cgroup2 = cgroup.and_then(|j| j.unified_fd());
    if !p.spec.userns {
        // SAFETY: the child runs `child_main`, which only makes system
        // calls on memory prepared in `p` and never returns.
        return match unsafe { process::fork_into_cgroup(p.clone_flags, cgroup2) }? {
            process::Forked::Parent(pid) => Ok(pid),
            process::Forked::Child => {
                join_cgroup(cgroup, report);
                child_main(p, go, report, tree, None)
            }
        };
    }
    let (pid_r, pid_w) = pipe()?;
    // SAFETY: the intermediate only makes system calls (see above).
    let mid = match unsafe { process::fork_into_cgroup(0, cgroup2) }? {
        process::Forked::Parent(pid) => pid,
        process::Forked::Child => intermediate_main(p, cgroup, pid_w.as_raw_fd(), go, report, tree),
    };
    drop(pid_w);
    let reap = || {
        let mut status = 0;
        // SAFETY: reaping our own child.
        unsafe { libc::waitpid(mid, &mut status, 0) };
    };
    let mut buf = [0u8; 8];
    let mut got = 0;
    while got < buf.len() {
        match nix::unistd::read(pid_r.as_raw_fd(), &mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(Errno::EINTR) => continue,
            Err(e) => {
                reap();
                return Err(e);
            }
        }
    }
    reap();
    if got != buf.len() {
        return Err(Errno::ECHILD);
    }
    let pid = i32::from_le_bytes(buf[..4].try_into().expect("4 bytes"));
    let errno = i32::from_le_bytes(buf[4..].try_into().expect("4 bytes"));
    if pid <= 0 {
        return Err(Errno::from_raw(errno));
    }
    Ok(pid)
}

/// The intermediate of `spawn` with a user namespace; tells `pid_w` the
/// child's pid (or 0 and the errno) and exits.
fn intermediate_main(
    p: &Prepared,
    cgroup: Option<&vbuild_kernel::cgroup::Joiner>,
    pid_w: RawFd,
    go: Option<RawFd>,
    report: RawFd,
    tree: Option<RawFd>,
) -> ! {
    let tell = |pid: i32, errno: i32| -> ! {
        let mut b = [0u8; 8];
        b[..4].copy_from_slice(&pid.to_le_bytes());
        b[4..].copy_from_slice(&errno.to_le_bytes());
        // SAFETY: write of a stack buffer.
        unsafe { libc::write(pid_w, b.as_ptr().cast(), b.len()) };
        process::exit_now(if pid > 0 { 0 } else { 125 })
    };
    if let Some(Err(e)) = cgroup.map(|j| j.join_in_child()) {
        tell(0, e as i32);
    }
    vbuild_kernel::signal::reset_all();
    // What the child keeps, and our pid pipe; nothing of what the
    // parent's other threads had open lives on here (see `child_main`).
    let first = 3 + p.custom.as_ref().map_or(0, |c| c.preserve_fds);
    let keep = [
        pid_w,
        go.unwrap_or(-1),
        report,
        tree.unwrap_or(-1),
        console_socket(p),
    ];
    if let Err(e) = process::close_from_except_all(first, &keep) {
        tell(0, e as i32);
    }
    let mut cgroup2 = None;
    if p.spec.cgroupns {
        if let Err(e) = ns::unshare_raw(libc::CLONE_NEWCGROUP as u64) {
            tell(0, e as i32);
        }
        match ns::cgroup2_detached_mount() {
            Ok(fd) => cgroup2 = Some(fd),
            Err(e) => tell(0, e as i32),
        }
    }
    if let Err(e) = ns::become_id(p.spec.id_base) {
        tell(0, e as i32);
    }
    // The child must not outlive this descriptor's writer unnoticed: it is
    // closed in the child by `child_main`.
    // SAFETY: as in `spawn`.
    match unsafe { process::fork_into(p.clone_flags) } {
        Ok(process::Forked::Parent(pid)) => tell(pid, 0),
        Ok(process::Forked::Child) => {
            // SAFETY: the child's copy of the pid pipe is not its business.
            unsafe { libc::close(pid_w) };
            child_main(p, go, report, tree, cgroup2)
        }
        Err(e) => tell(0, e as i32),
    }
}

/// In a child just forked by `spawn`: joins the v1 side of `cgroup` (the
/// cgroup2 side came with the fork), or reports and exits.
fn join_cgroup(cgroup: Option<&vbuild_kernel::cgroup::Joiner>, report: RawFd) {
    if let Some(j) = cgroup {
        if let Err(e) = j.join_in_child() {
            fail(report, Stage::Cgroup, 0, e);
        }
    }
}

fn fail(report: RawFd, stage: Stage, index: u32, errno: Errno) -> ! {
    let rec = Failure {
        stage: stage as u32,
        index,
        errno: errno as i32,
    }
    .encode();
    // SAFETY: write of a stack buffer.
    unsafe { libc::write(report, rec.as_ptr().cast(), rec.len()) };
    process::exit_now(if stage == Stage::Exec { 127 } else { 125 })
}

/// A `Custom` context's console socket, kept open until the terminal is
/// sent (-1: none).
fn console_socket(p: &Prepared) -> RawFd {
    p.custom
        .as_ref()
        .and_then(|c| c.console_socket)
        .unwrap_or(-1)
}

fn child_main(
    p: &Prepared,
    go: Option<RawFd>,
    report: RawFd,
    tree_sock: Option<RawFd>,
    cgroup2: Option<RawFd>,
) -> ! {
    let s = &p.spec;
    vbuild_kernel::signal::reset_all();
    // Drop every descriptor of the parent side but our pipes and socket
    // (the supervisor's lock, sockets and pty master among them).
    // A `Custom` context's preserved descriptors (3 .. 3 + N) stay too.
    let first = 3 + p.custom.as_ref().map_or(0, |c| c.preserve_fds);
    let keep = [
        go.unwrap_or(-1),
        report,
        tree_sock.unwrap_or(-1),
        cgroup2.unwrap_or(-1),
        console_socket(p),
    ];
    if let Err(e) = process::close_from_except_all(first, &keep) {
        fail(report, Stage::Cloexec, 0, e);
    }
    if s.die_with_parent {
        if let Err(e) = process::die_with_parent(libc::SIGKILL) {
            fail(report, Stage::Parent, 0, e);
        }
    }
    if let Some(go) = go {
        let mut b = [0u8; 1];
        // SAFETY: read into a stack buffer.
        let n = unsafe { libc::read(go, b.as_mut_ptr().cast(), 1) };
        if n != 1 {
            fail(report, Stage::Sync, 0, Errno::ECANCELED);
        }
    }
    let mut tree: Option<OwnedFd> = None;
    if let (true, Some(sock)) = (s.userns || s.root_tree, tree_sock) {
        match vbuild_kernel::fdpass::recv_fd(sock) {
            Ok(t) => tree = Some(t),
            Err(e) => fail(report, Stage::Sync, 1, e),
        }
    }
    if s.userns {
        if let Err(e) = process::set_ids(0, 0, false) {
            fail(report, Stage::Ids, 0, e);
        }
        // Changing ids made us non-dumpable, which hands /proc/self to the
        // host's root; take it back (we need /proc/self/timens_offsets).
        // SAFETY: prctl with integer arguments.
        unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) };
        // The guest's own user.max_* limits: /proc/sys/user shows the
        // caller's user namespace, and this is still the host's /proc.
        for (i, (file, value)) in p.user_limits.iter().enumerate() {
            if let Err(e) = write_small(file, value) {
                if e != Errno::ENOENT {
                    fail(report, Stage::UserLimits, i as u32, e);
                }
            }
        }
    }
    // With a user namespace the intermediate made the cgroup namespace.
    if s.cgroupns && !s.userns {
        if let Err(e) = ns::unshare_raw(libc::CLONE_NEWCGROUP as u64) {
            fail(report, Stage::CgroupNs, 0, e);
        }
    }
    if s.timens {
        if let Err(e) = ns::unshare_raw(ns::CLONE_NEWTIME) {
            fail(report, Stage::TimeNs, 0, e);
        }
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime into a stack struct.
        unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
        if let Err(e) = ns::set_boottime_offset(ts.tv_sec as u64) {
            fail(report, Stage::TimeOffset, 0, e);
        }
    }
    if let Some(c) = &p.custom {
        for (i, (path, nstype)) in c.join.iter().enumerate() {
            // SAFETY: open/setns/close on a NUL-terminated path.
            unsafe {
                let fd = libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
                if fd < 0 || libc::setns(fd, *nstype) != 0 {
                    fail(report, Stage::Join, i as u32, Errno::last());
                }
                libc::close(fd);
            }
        }
    }
    if let Some(h) = &p.hostname {
        // SAFETY: sethostname with a buffer and its length.
        if unsafe { libc::sethostname(h.as_ptr(), h.as_bytes().len()) } != 0 {
            fail(report, Stage::Hostname, 0, Errno::last());
        }
    }
    // The start fifo and oom score are reached through the host's paths,
    // before pivot_root hides them.
    let mut start_fifo: RawFd = -1;
    if let Some(c) = &p.custom {
        if let Some(f) = &c.start_fifo {
            // SAFETY: open with a NUL-terminated path.
            start_fifo = unsafe { libc::open(f.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
            if start_fifo < 0 {
                fail(report, Stage::StartFifo, 0, Errno::last());
            }
        }
        if let Some(v) = &c.oom_score_adj {
            if let Err(e) = write_small(c"/proc/self/oom_score_adj", v) {
                fail(report, Stage::OomScore, 0, e);
            }
        }
    }
    // The console is opened on the host path before pivot_root hides it.
    let console = match &p.console {
        Some(c) => {
            // SAFETY: open with a NUL-terminated path.
            let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDWR | libc::O_NOCTTY) };
            if fd < 0 {
                fail(report, Stage::Console, 0, Errno::last());
            }
            Some(fd)
        }
        None => None,
    };
    // SAFETY: umask has no memory effects; device nodes get exact modes.
    unsafe { libc::umask(0) };
    if let Err((i, e)) = p
        .plan
        .execute_with(tree.as_ref().map(|t| t.as_raw_fd()), cgroup2)
    {
        fail(report, Stage::Rootfs, i as u32, e);
    }
    if let Some(rest) = p.custom.as_ref().and_then(|c| c.after_pause.as_ref()) {
        let rec = Failure {
            stage: Stage::PrePivot as u32,
            index: 0,
            errno: 0,
        }
        .encode();
        let mut b = [0u8; 1];
        // SAFETY: write and read of stack buffers on our pipes.
        let n = unsafe {
            libc::write(report, rec.as_ptr().cast(), rec.len());
            libc::read(go.unwrap_or(-1), b.as_mut_ptr().cast(), 1)
        };
        if n != 1 {
            fail(report, Stage::PrePivot, 0, Errno::ECANCELED);
        }
        if let Err((i, e)) = rest.execute_with(tree.as_ref().map(|t| t.as_raw_fd()), cgroup2) {
            fail(report, Stage::Rootfs, (p.plan.steps.len() + i) as u32, e);
        }
    }
    // SAFETY: as above.
    unsafe { libc::umask(0o022) };
    if let Some(fd) = console {
        if let Err(e) = pty::become_session_on(fd) {
            fail(report, Stage::Console, 1, e);
        }
        if fd > 2 {
            // SAFETY: closing our own descriptor.
            unsafe { libc::close(fd) };
        }
    }
    if let Some(c) = &p.custom {
        if let Some(sock) = c.console_socket {
            if let Err(e) = pty::take_terminal(sock, c.console_size.as_ref()) {
                fail(report, Stage::Console, 2, e);
            }
            // SAFETY: closing our copy of the caller's socket.
            unsafe { libc::close(sock) };
        }
        custom_finish(p, c, report, start_fifo)
    }
    if let Err(e) = caps::restrict_to(p.keep_caps, p.last_cap) {
        fail(report, Stage::Caps, e.cap.unwrap_or(u32::MAX), e.errno);
    }
    if let Err(e) = p.filter.install() {
        fail(report, Stage::Seccomp, 0, e);
    }
    exec_program(&p.programs, &p.argv_ptrs, &p.env_ptrs, report)
}

/// The end of a `Custom` child: limits, user, capability sets, filter,
/// working directory, then (with a start fifo) the ready record and the
/// wait for start, and exec. Allocation-free.
fn custom_finish(p: &Prepared, c: &CustomC, report: RawFd, start_fifo: RawFd) -> ! {
    // Descriptors are marked close-on-exec before any filter is installed:
    // a profile may deny close_range (the OCI suite's default one does).
    if let Err(e) = process::cloexec_from(3 + c.preserve_fds) {
        fail(report, Stage::Cloexec, 0, e);
    }
    for (i, (res, lim)) in c.rlimits.iter().enumerate() {
        // SAFETY: setrlimit with a pointer to a prepared struct.
        if unsafe { libc::setrlimit(*res as libc::__rlimit_resource_t, lim) } != 0 {
            fail(report, Stage::Rlimit, i as u32, Errno::last());
        }
    }
    if c.no_new_privs {
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            fail(report, Stage::NoNewPrivs, 0, Errno::last());
        }
    }
    // Without no_new_privs installing a filter needs CAP_SYS_ADMIN, which
    // the process may be about to lose: install it first then.
    if let (false, Some(f)) = (c.no_new_privs, &c.filter) {
        if let Err(e) = f.install() {
            fail(report, Stage::Seccomp, 0, e);
        }
    }
    if let Err(e) = caps::drop_bounding(c.caps.bounding, p.last_cap) {
        fail(report, Stage::Caps, e.cap.unwrap_or(u32::MAX), e.errno);
    }
    // Keep the permitted set across the change of user; set exactly below.
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
    if let Err(e) = process::set_groups(&c.groups) {
        fail(report, Stage::User, 0, e);
    }
    if let Err(e) = process::set_ids(c.uid, c.gid, false) {
        fail(report, Stage::User, 1, e);
    }
    // SAFETY: as above.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
    let s = &c.caps;
    if let Err(e) = caps::set_sets(s.effective, s.permitted, s.inheritable) {
        fail(report, Stage::Caps, e.cap.unwrap_or(u32::MAX), e.errno);
    }
    if let Err(e) = caps::raise_ambient(s.ambient, p.last_cap) {
        fail(report, Stage::Caps, e.cap.unwrap_or(u32::MAX), e.errno);
    }
    if let (true, Some(f)) = (c.no_new_privs, &c.filter) {
        if let Err(e) = f.install() {
            fail(report, Stage::Seccomp, 0, e);
        }
    }
    if let Some(m) = c.umask {
        // SAFETY: umask has no memory effects.
        unsafe { libc::umask(m as libc::mode_t) };
    }
    // SAFETY: chdir with a NUL-terminated path.
    if unsafe { libc::chdir(c.cwd.as_ptr()) } != 0 {
        fail(report, Stage::Cwd, 0, Errno::last());
    }
    let mut report = report;
    if start_fifo >= 0 {
        let rec = Failure {
            stage: Stage::Ready as u32,
            index: 0,
            errno: 0,
        }
        .encode();
        // SAFETY: write of a stack buffer, then closing our own pipe end:
        // whoever created us may be gone by the time start comes.
        unsafe {
            libc::write(report, rec.as_ptr().cast(), rec.len());
            libc::close(report);
        }
        report = -1;
        let mut path = [0u8; 32];
        fd_path(start_fifo, &mut path);
        // SAFETY: open/write/close on a NUL-terminated stack path; the open
        // blocks until the start command opens the fifo for reading.
        unsafe {
            let w = libc::open(path.as_ptr().cast(), libc::O_WRONLY | libc::O_CLOEXEC);
            if w < 0 {
                process::exit_now(125);
            }
            libc::write(w, b"0".as_ptr().cast(), 1);
            libc::close(w);
            libc::close(start_fifo);
        }
    }
    exec_candidates(&p.programs, &p.argv_ptrs, &p.env_ptrs, report)
}

/// Writes `/proc/self/fd/FD` and a NUL into `out`. Allocation-free.
fn fd_path(fd: RawFd, out: &mut [u8; 32]) {
    let prefix = b"/proc/self/fd/";
    out[..prefix.len()].copy_from_slice(prefix);
    let mut digits = [0u8; 10];
    let mut n = fd.max(0) as u32;
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for i in 0..len {
        out[prefix.len() + i] = digits[len - 1 - i];
    }
    out[prefix.len() + len] = 0;
}

/// Writes `value` to the existing file `path`. Allocation-free.
fn write_small(path: &std::ffi::CStr, value: &[u8]) -> Result<(), Errno> {
    // SAFETY: open/write/close with valid buffers.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(Errno::last());
        }
        let w = libc::write(fd, value.as_ptr().cast(), value.len());
        let e = Errno::last();
        libc::close(fd);
        if w != value.len() as isize {
            return Err(e);
        }
    }
    Ok(())
}

/// Tries each candidate path in turn (PATH lookup without allocation) and
/// reports the most telling error when none runs. Marks every descriptor
/// above stderr close-on-exec first.
pub(crate) fn exec_program(
    programs: &[CString],
    argv: &[*const libc::c_char],
    env: &[*const libc::c_char],
    report: RawFd,
) -> ! {
    if let Err(e) = process::cloexec_from(3) {
        fail(report, Stage::Cloexec, 0, e);
    }
    exec_candidates(programs, argv, env, report)
}

/// `exec_program` for a process whose descriptors are already marked.
fn exec_candidates(
    programs: &[CString],
    argv: &[*const libc::c_char],
    env: &[*const libc::c_char],
    report: RawFd,
) -> ! {
    let mut best = Errno::ENOENT;
    for prog in programs {
        // SAFETY: NUL-terminated path and NULL-terminated pointer arrays
        // into CStrings that outlive the call.
        unsafe { libc::execve(prog.as_ptr(), argv.as_ptr(), env.as_ptr()) };
        let e = Errno::last();
        if e != Errno::ENOENT && e != Errno::ENOTDIR {
            best = e;
        }
    }
    fail(report, Stage::Exec, 0, best)
}

/// Reads the child's report: `Ok(None)` when exec succeeded (end of file),
/// `Ok(Some(failure))` when it failed.
pub fn read_report(report: &OwnedFd) -> Result<Option<Failure>, Errno> {
    let mut buf = [0u8; 12];
    let mut got = 0;
    while got < buf.len() {
        match nix::unistd::read(report.as_raw_fd(), &mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
    if got == 0 {
        return Ok(None);
    }
    Ok(Some(Failure::decode(&buf)))
}

/// Pieces of an exec into a running context (`exec`, `enter`): the
/// program candidates and pointer arrays, prepared before fork.
pub(crate) struct ExecProgram {
    pub(crate) programs: Vec<CString>,
    _argv: Vec<CString>,
    pub(crate) argv_ptrs: Vec<*const libc::c_char>,
    _env: Vec<CString>,
    pub(crate) env_ptrs: Vec<*const libc::c_char>,
}

impl ExecProgram {
    /// Prepares `argv` (program first) with `env`; `argv0` overrides what
    /// the program sees as its name (`-bash` for a login shell).
    pub(crate) fn new(argv: &[String], env: &[String], argv0: Option<&str>) -> ExecProgram {
        let program = &argv[0];
        let programs: Vec<CString> = if program.contains('/') {
            vec![cstring(program)]
        } else {
            path_dirs(env)
                .iter()
                .map(|d| cstring(&format!("{}/{program}", d.trim_end_matches('/'))))
                .collect()
        };
        let mut a: Vec<CString> = argv.iter().map(|s| cstring(s)).collect();
        if let Some(z) = argv0 {
            a[0] = cstring(z);
        }
        let e: Vec<CString> = env.iter().map(|s| cstring(s)).collect();
        let ptrs = |v: &Vec<CString>| -> Vec<*const libc::c_char> {
            v.iter()
                .map(|c| c.as_ptr())
                .chain(std::iter::once(std::ptr::null()))
                .collect()
        };
        ExecProgram {
            programs,
            argv_ptrs: ptrs(&a),
            env_ptrs: ptrs(&e),
            _argv: a,
            _env: e,
        }
    }
}

/// Writes a failure record from outside `child_main` (exec's grandchild).
pub(crate) fn report_failure(report: RawFd, what: ChildStep, errno: Errno) -> ! {
    let stage = match what {
        ChildStep::Caps => Stage::Caps,
        ChildStep::Seccomp => Stage::Seccomp,
        ChildStep::Console => Stage::Console,
        ChildStep::Sync => Stage::Sync,
        ChildStep::Join => Stage::Join,
        ChildStep::Cgroup => Stage::Cgroup,
    };
    fail(report, stage, u32::MAX, errno)
}

/// Steps of exec's grandchild that can fail before exec.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ChildStep {
    Caps,
    Seccomp,
    Console,
    Sync,
    Join,
    Cgroup,
}

/// Decodes a failure record for code outside this module (exec).
pub(crate) fn describe_plain(f: Failure, command: &str, name: &str) -> RuntimeError {
    let errno = f.errno();
    if f.is_exec() {
        let reason = match errno {
            Errno::ENOENT => "not found in the guest".to_string(),
            Errno::EACCES => "not executable (permission denied)".to_string(),
            e => e.desc().to_string(),
        };
        return RuntimeError::Command {
            name: name.to_string(),
            command: command.to_string(),
            reason,
        };
    }
    let step = match Stage::from_u32(f.stage) {
        Some(Stage::Caps) => "drop capabilities",
        Some(Stage::Seccomp) => "install the seccomp filter",
        Some(Stage::Console) => "set up the terminal",
        _ => "join the guest's namespaces",
    };
    RuntimeError::Setup {
        name: name.to_string(),
        step: step.into(),
        errno,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> LaunchSpec {
        LaunchSpec {
            rootfs: "/g".into(),
            argv: vec!["sh".into(), "-c".into(), "true".into()],
            env: vec!["PATH=/bin:/usr/bin".into()],
            hostname: "g1".into(),
            console: None,
            notify_socket: None,
            host_files: vec![],
            private_net: true,
            cgroupns: true,
            timens: true,
            userns: false,
            id_base: 0,
            die_with_parent: false,
            keep_mknod: true,
            tmpfs: Default::default(),
            root_tree: false,
        }
    }

    #[test]
    fn names_are_looked_up_in_the_guest_path() {
        let p = Prepared::new(spec()).unwrap();
        let c: Vec<_> = p
            .programs
            .iter()
            .map(|c| c.to_str().unwrap().to_string())
            .collect();
        assert_eq!(c, vec!["/bin/sh", "/usr/bin/sh"]);
        assert_eq!(p.argv_ptrs.len(), 4);
        assert!(p.argv_ptrs[3].is_null());
    }

    #[test]
    fn failures_round_trip_and_explain_the_failed_path() {
        let p = Prepared::new(spec()).unwrap();
        let f = Failure {
            stage: Stage::Rootfs as u32,
            index: 1,
            errno: libc::EPERM,
        };
        assert_eq!(Failure::decode(&f.encode()), f);
        let e = p.explain("g1", f).to_string();
        assert!(e.contains("bind /g on /g"), "{e}");
        let e = p
            .explain(
                "g1",
                Failure {
                    stage: Stage::Exec as u32,
                    index: 0,
                    errno: libc::ENOENT,
                },
            )
            .to_string();
        assert!(e.contains("cannot run sh -c true: not found"), "{e}");
    }

    #[test]
    fn fd_paths_are_spelled_without_allocation() {
        let mut b = [0u8; 32];
        fd_path(1234, &mut b);
        assert_eq!(&b[..19], b"/proc/self/fd/1234\0");
        fd_path(0, &mut b);
        assert_eq!(&b[..16], b"/proc/self/fd/0\0");
    }

    #[test]
    fn mknod_is_dropped_unless_a_device_cgroup_guards_it() {
        let mknod = 1u64 << caps::number("MKNOD").unwrap();
        let mut s = spec();
        assert_ne!(Prepared::new(s.clone()).unwrap().keep_caps & mknod, 0);
        s.keep_mknod = false;
        assert_eq!(Prepared::new(s).unwrap().keep_caps & mknod, 0);
    }
}
