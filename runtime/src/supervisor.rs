//! The supervisor: one small process per running guest. It forks the
//! guest's init (so init is its child and it learns the exit status),
//! holds the console pty (logging it to `console.log` and relaying it to
//! `vbuild console`), listens on the notify socket for READY=1, records
//! state, and when init ends it cleans up: kills what is left in the
//! cgroup, removes network and disk activation, the cgroup and the state.
//!
//! `start` runs it as a separate program (the small `vbuild-supervisor`
//! binary, or `vbuild` itself re-executed) in its own session, detached
//! from the terminal, so it survives the command that started it. It gets
//! its inputs as descriptors at fixed numbers and `launch.json` in the
//! state directory, and stays small: a poll loop over a handful of
//! descriptors, no threads, no allocation per event beyond the state file.
//!
//! The same program is also a network's name responder when its directory
//! holds `dns.json` (`net::dns`), so no second binary needs installing.

use crate::config::InitKind;
use crate::launch::{LaunchSpec, Prepared};
use crate::paths::Layout;
use crate::state::{self, State};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use vbuild_kernel::process;

/// Descriptor numbers the supervisor inherits.
pub(crate) mod fds {
    /// The state directory's lock, held for the guest's life.
    pub const LOCK: i32 = 3;
    /// The console pty's master.
    pub const MASTER: i32 = 4;
    /// The bound notify socket (datagrams from init).
    pub const NOTIFY: i32 = 5;
    /// The listening console socket.
    pub const CONSOLE: i32 = 6;
    /// The read end of the go pipe, for init.
    pub const GO: i32 = 7;
    /// The write end of init's failure-report pipe.
    pub const REPORT: i32 = 8;
    /// Where the supervisor tells `start` init's pid (or its error).
    pub const CTL: i32 = 9;
    /// The socket on which `start` sends init an id-mapped root (userns).
    pub const TREE: i32 = 10;
    /// How many there are, from LOCK on.
    pub const COUNT: i32 = 8;
}

/// What the supervisor needs besides its descriptors (`launch.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SupervisorSpec {
    /// The guest.
    pub name: String,
    /// The state root given to `start` (`None`: the defaults).
    pub root: Option<PathBuf>,
    /// How to make init.
    pub launch: LaunchSpec,
    /// Decides the halt signal.
    pub init_kind: InitKind,
    /// The guest's cgroup (`vbuild/NAME`), which carries its limits.
    pub cgroup: String,
    /// The group below it that init runs in and the guest's cgroup
    /// namespace is rooted at (`vbuild/NAME/guest`).
    #[serde(default)]
    pub guest_cgroup: String,
    /// The boot id.
    pub boot_id: String,
    /// A network context was attached (to detach at the end).
    pub net_attached: bool,
    /// Run after the guest rebooted itself (not after `vbuild stop`).
    #[serde(default)]
    pub on_reboot: Option<Vec<String>>,
    /// Run to start the guest again when init ended on its own and the
    /// guest's restart policy (read from guest.toml then) says so.
    #[serde(default)]
    pub on_exit: Option<Vec<String>>,
}

/// The program `start` runs as the supervisor: `program args... RUN_DIR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupervisorProgram {
    /// Executable.
    pub program: PathBuf,
    /// Arguments before the state directory.
    pub args: Vec<String>,
}

impl SupervisorProgram {
    /// The `vbuild-supervisor` binary next to the running executable (or
    /// named by `VBUILD_SUPERVISOR`), if there is one.
    pub fn beside_current_exe() -> Option<SupervisorProgram> {
        let candidate = std::env::var_os("VBUILD_SUPERVISOR")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::current_exe()
                    .ok()?
                    .parent()
                    .map(|d| d.join("vbuild-supervisor"))
            })?;
        candidate.is_file().then(|| SupervisorProgram {
            program: candidate,
            args: vec![],
        })
    }
}

/// The signal that asks `kind` of init to shut down.
pub(crate) fn halt_signal(kind: InitKind) -> i32 {
    match kind {
        InitKind::Systemd => vbuild_kernel::signal::rtmin_plus(3),
        InitKind::Sysvinit => libc::SIGPWR,
        InitKind::Other => libc::SIGTERM,
    }
}

/// Entry point of the `vbuild-supervisor` binary: `vbuild-supervisor RUN_DIR`.
pub fn main() -> i32 {
    match std::env::args_os().nth(1) {
        Some(dir) => run(Path::new(&dir)),
        None => {
            eprintln!("vbuild-supervisor: usage: vbuild-supervisor RUN_DIR (it is started by `vbuild start`)");
            2
        }
    }
}

fn layout_of(root: &Option<PathBuf>) -> Layout {
    Layout::new(root.as_deref())
}

/// Writes one line to `start` on the control descriptor.
fn tell(line: &str) {
    // SAFETY: write to an inherited descriptor; errors mean `start` is gone.
    unsafe { libc::write(fds::CTL, line.as_ptr().cast(), line.len()) };
}

/// Runs the supervisor for the guest whose state directory is `run_dir`;
/// returns the process exit code.
pub fn run(run_dir: &Path) -> i32 {
    // The same program serves as a network's name responder.
    if run_dir.join(crate::net::dns::SPEC_FILE).is_file() {
        return crate::net::dns::serve(run_dir);
    }
    let spec_path = run_dir.join("launch.json");
    let spec: SupervisorSpec = match std::fs::read(&spec_path)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(s) => s,
        Err(e) => {
            let msg = format!("error {}: {e}\n", spec_path.display());
            tell(&msg);
            eprint!("{msg}");
            return 1;
        }
    };
    let layout = layout_of(&spec.root);
    match supervise(&layout, &spec) {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("vbuild-supervisor {}: {msg}", spec.name);
            1
        }
    }
}

fn supervise(layout: &Layout, spec: &SupervisorSpec) -> Result<i32, String> {
    use nix::sys::signal::Signal;
    // SAFETY: these descriptors were placed at fixed numbers by `start`.
    let (lock, master, notify, listen, go, report, ctl, tree) = unsafe {
        (
            OwnedFd::from_raw_fd(fds::LOCK),
            OwnedFd::from_raw_fd(fds::MASTER),
            OwnedFd::from_raw_fd(fds::NOTIFY),
            OwnedFd::from_raw_fd(fds::CONSOLE),
            OwnedFd::from_raw_fd(fds::GO),
            OwnedFd::from_raw_fd(fds::REPORT),
            OwnedFd::from_raw_fd(fds::CTL),
            OwnedFd::from_raw_fd(fds::TREE),
        )
    };
    // Keep the slave open too, so the console never hangs up while init
    // closes and reopens /dev/console.
    let _slave = spec.launch.console.as_ref().and_then(|p| {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags_noctty()
            .open(p)
            .ok()
    });
    let mut blocked = vec![
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGQUIT,
    ];
    blocked.dedup();
    vbuild_kernel::signal::block(&blocked).map_err(|e| format!("sigprocmask: {e}"))?;
    // SAFETY: ignoring SIGPIPE so a vanished console client is an EPIPE.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let mut mask = nix::sys::signal::SigSet::empty();
    for s in &blocked {
        mask.add(*s);
    }
    let sfd = nix::sys::signalfd::SignalFd::with_flags(
        &mask,
        nix::sys::signalfd::SfdFlags::SFD_CLOEXEC | nix::sys::signalfd::SfdFlags::SFD_NONBLOCK,
    )
    .map_err(|e| format!("signalfd: {e}"))?;

    let prepared = match Prepared::new(spec.launch.clone()) {
        Ok(p) => p,
        Err(e) => {
            tell(&format!("error {e}\n"));
            return Err(e.to_string());
        }
    };
    // An unprivileged guest's init is made by a short-lived intermediate
    // (see `launch::spawn`): be its subreaper so init becomes our child.
    let guest_cg = if spec.launch.userns {
        // SAFETY: prctl with integer arguments.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        let opened = vbuild_kernel::cgroup::Hierarchy::detect()
            .and_then(|h| vbuild_kernel::cgroup::Cgroup::open(&h, &spec.guest_cgroup));
        match opened {
            Ok(Some(cg)) => Some(cg),
            Ok(None) => {
                let msg = format!("cgroup {} is missing", spec.guest_cgroup);
                tell(&format!("error {msg}\n"));
                return Err(msg);
            }
            Err(e) => {
                tell(&format!("error {e}\n"));
                return Err(e.to_string());
            }
        }
    } else {
        None
    };
    let joiner = match guest_cg.as_ref().map(|cg| cg.joiner()).transpose() {
        Ok(j) => j,
        Err(e) => {
            tell(&format!("error {e}\n"));
            return Err(e.to_string());
        }
    };
    let pid = match crate::launch::spawn(
        &prepared,
        Some(go.as_raw_fd()),
        report.as_raw_fd(),
        Some(tree.as_raw_fd()),
        joiner.as_ref(),
    ) {
        Ok(pid) => pid,
        Err(e) if spec.launch.userns => {
            let msg = format!(
                "make the guest's namespaces as host uid {} (in cgroup {}): {e}",
                spec.launch.id_base, spec.guest_cgroup
            );
            tell(&format!("error {msg}\n"));
            return Err(msg);
        }
        Err(e) => {
            tell(&format!("error clone3 into new namespaces: {e}\n"));
            return Err(format!("clone3: {e}"));
        }
    };
    drop(go);
    drop(report);
    drop(tree);
    let init_start = process::stat(pid).map(|s| s.start_ticks).unwrap_or(0);
    let me = std::process::id() as i32;
    let mut st = State {
        name: spec.name.clone(),
        supervisor_pid: me,
        supervisor_start: process::stat(me).map(|s| s.start_ticks).unwrap_or(0),
        init_pid: pid,
        init_start,
        started_at: state::now_secs(),
        cgroup: spec.cgroup.clone(),
        boot_id: spec.boot_id.clone(),
        init_kind: spec.init_kind,
        userns: spec.launch.userns,
        id_base: spec.launch.id_base,
        ready: false,
        status_text: None,
        state_saves: 1,
    };
    if let Err(e) = st.save(layout) {
        tell(&format!("error {e}\n"));
    } else {
        tell(&format!("pid {pid}\n"));
    }
    drop(ctl);
    // Setup is over: keep only what the event loop touches from now on.
    process::release_clean_file_pages();

    let log_path = state::console_log(layout, &spec.name);
    let mut log = ConsoleLog::open(&log_path);
    for fd in [master.as_raw_fd(), listen.as_raw_fd(), notify.as_raw_fd()] {
        set_nonblocking(fd);
    }
    let halt = halt_signal(spec.init_kind);
    let mut client: Option<Client> = None;
    let mut buf = vec![0u8; 16 * 1024];
    let mut notified = NotifyState {
        dirty: false,
        last_save: std::time::Instant::now(),
    };
    let status = 'outer: loop {
        let mut pfds = vec![
            pollfd(sfd.as_raw_fd()),
            pollfd(master.as_raw_fd()),
            pollfd(notify.as_raw_fd()),
            pollfd(listen.as_raw_fd()),
        ];
        if let Some(c) = &client {
            pfds.push(pollfd(c.fd.as_raw_fd()));
        }
        // SAFETY: poll over our pollfd array.
        let r = unsafe {
            libc::poll(
                pfds.as_mut_ptr(),
                pfds.len() as libc::nfds_t,
                notified.timeout_ms(),
            )
        };
        notified.flush(&mut st, layout, false);
        if r <= 0 {
            continue;
        }
        if pfds[0].revents != 0 {
            while let Ok(Some(info)) = sfd.read_signal() {
                let sig = info.ssi_signo as i32;
                if sig == libc::SIGCHLD {
                    let mut status = 0;
                    // SAFETY: reaping our own child.
                    let w = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
                    if w == pid {
                        break 'outer status;
                    }
                } else {
                    // Asked to stop: pass the halt request on to init.
                    let _ = vbuild_kernel::signal::send(pid, halt);
                }
            }
        }
        if pfds[1].revents != 0 {
            drain_master(&master, &mut buf, &mut log, &mut client);
        }
        if pfds[2].revents != 0 {
            read_notify(&notify, &mut buf, &mut st, layout, &mut notified);
        }
        if pfds[3].revents != 0 {
            accept_client(&listen, &master, &mut client);
        }
        if pfds.len() > 4 && pfds[4].revents != 0 {
            let keep = client
                .as_mut()
                .map(|c| c.pump(&master, &mut buf))
                .unwrap_or(false);
            if !keep {
                client = None;
            }
        }
    };
    drain_master(&master, &mut buf, &mut log, &mut client);
    let line = format!("\r\n[vbuild] {}: {}\r\n", spec.name, describe_exit(status));
    log.write(line.as_bytes());
    // An OOM kill shows nowhere else (init killed, or a service gone
    // without a word): name it in both logs while the cgroup still counts.
    if let Some(line) = oom_line(&spec.name, oom_kills(&spec.cgroup)) {
        log.write(format!("[vbuild] {line}\r\n").as_bytes());
        eprintln!("vbuild-supervisor {line}");
    }
    drop(client);
    drop(listen);
    let rebooted = libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGHUP;
    let asked_to_stop = state::stop_requested(layout, &spec.name);
    // Decided (and a pending restart recorded) while the state file still
    // says "stopping", so that a `vbuild stop` now finds it and cancels it.
    let planned = if !asked_to_stop && !rebooted {
        plan_restart(layout, spec, status, &mut log)
    } else {
        None
    };
    crate::stop::cleanup(layout, &spec.name, &spec.cgroup, spec.net_attached)
        .map_err(|e| e.to_string())?;
    if let (true, false, Some(argv)) = (rebooted, asked_to_stop, &spec.on_reboot) {
        // The guest's own reboot: start it again, as a new boot with a new
        // supervisor, once this one has let go of the state directory.
        drop(lock);
        log.write(format!("[vbuild] {}: starting again\r\n", spec.name).as_bytes());
        if let Err(why) = run_start(argv) {
            log.write(format!("[vbuild] {}: restart failed: {why}\r\n", spec.name).as_bytes());
            return Err(format!("restart after reboot failed: {why}"));
        }
    } else if let Some((argv, delay)) = planned {
        drop(lock);
        return restart_after(layout, spec, argv, delay, &mut log);
    }
    Ok(0)
}

/// Runs `argv` (a `vbuild start`); it returns once the new init runs (its
/// supervisor is detached), so waiting here is short and lets the result
/// be logged.
fn run_start(argv: &[String]) -> Result<(), String> {
    let Some((prog, args)) = argv.split_first() else {
        return Ok(());
    };
    let r = std::process::Command::new(prog)
        .args(args)
        .stdin(std::process::Stdio::null())
        .current_dir("/")
        .status();
    match r {
        Ok(st) if st.success() => Ok(()),
        Ok(st) => Err(format!("{prog} ended with {st}")),
        Err(e) => Err(format!("{prog}: {e}")),
    }
}

/// Init ended on its own (no stop, no reboot): records how in the restart
/// record, and when the guest's restart policy restarts it, records the
/// restart as pending and returns the command and the delay.
fn plan_restart<'a>(
    layout: &Layout,
    spec: &'a SupervisorSpec,
    status: i32,
    log: &mut ConsoleLog,
) -> Option<(&'a [String], std::time::Duration)> {
    use crate::restart::{self, Decision, Exit, Pending, RestartRecord};
    let n = &spec.name;
    // Read now, so that `vbuild set --restart` applies to a running guest.
    let policy = crate::config::GuestConfig::load(&layout.guest_config(n))
        .map(|c| c.restart)
        .unwrap_or_default();
    let exit = Exit::from_wait_status(status);
    let mut rec = RestartRecord::load(layout, n);
    rec.last_exit = Some(exit.describe());
    rec.last_exit_code = match exit {
        Exit::Code(c) => Some(c),
        Exit::Signal(_) => None,
    };
    rec.pending = None;
    let now = restart::now_ms();
    let decision = restart::decide(policy, exit, &mut rec, now);
    let planned = match (spec.on_exit.as_deref(), decision) {
        (_, Decision::Stay) | (None, _) => None,
        (Some(_), Decision::GiveUp(why)) => {
            log.write(format!("[vbuild] {n}: {why}\r\n").as_bytes());
            rec.gave_up = Some(why);
            None
        }
        (Some(argv), Decision::Restart(delay)) => {
            rec.gave_up = None;
            rec.pending = Some(Pending::mine(now + delay.as_millis() as u64));
            log.write(
                format!(
                    "[vbuild] {n}: restart policy {policy}: starting again in {} ms (restart {} within {} s)\r\n",
                    delay.as_millis(),
                    rec.recent_ms.len() + 1,
                    restart::WINDOW.as_secs()
                )
                .as_bytes(),
            );
            Some((argv, delay))
        }
    };
    if let Err(e) = rec.save(layout, n) {
        log.write(format!("[vbuild] {n}: {e}; not restarting\r\n").as_bytes());
        return None;
    }
    planned
}

/// Waits out the restart's delay, then starts the guest again unless a
/// stop or a start by hand took the restart back meanwhile (they clear
/// `pending`).
fn restart_after(
    layout: &Layout,
    spec: &SupervisorSpec,
    argv: &[String],
    delay: std::time::Duration,
    log: &mut ConsoleLog,
) -> Result<i32, String> {
    use crate::restart::{self, RestartRecord};
    let n = &spec.name;
    std::thread::sleep(delay);
    let mut rec = RestartRecord::load(layout, n);
    let me = std::process::id() as i32;
    if rec.pending.as_ref().map(|p| p.supervisor_pid) != Some(me) {
        log.write(format!("[vbuild] {n}: restart cancelled\r\n").as_bytes());
        return Ok(0);
    }
    // Still pending while the start runs: until the new boot's state file
    // exists, the pending restart is what a `vbuild stop` finds (and then
    // waits for this process, and stops the new boot).
    rec.count += 1;
    rec.recent_ms.push(restart::now_ms());
    rec.save(layout, n).map_err(|e| e.to_string())?;
    let started = run_start(argv);
    let mut rec = RestartRecord::load(layout, n);
    if rec.pending.as_ref().map(|p| p.supervisor_pid) == Some(me) {
        rec.pending = None;
        if let Err(why) = &started {
            rec.gave_up = Some(format!("restart failed: {why}"));
        }
        let _ = rec.save(layout, n);
    }
    if let Err(why) = started {
        log.write(format!("[vbuild] {n}: restart failed: {why}\r\n").as_bytes());
        return Err(format!("restart by policy failed: {why}"));
    }
    Ok(0)
}

/// How many processes the kernel's OOM killer ended in cgroup `cgroup`
/// (the guest's limits group, so this boot), if the kernel says.
fn oom_kills(cgroup: &str) -> Option<u64> {
    let h = vbuild_kernel::cgroup::Hierarchy::detect().ok()?;
    let cg = vbuild_kernel::cgroup::Cgroup::open(&h, cgroup).ok()??;
    cg.usage().ok()?.oom_kills
}

/// The log line naming `kills` OOM kills in guest `name`, when there were any.
fn oom_line(name: &str, kills: Option<u64>) -> Option<String> {
    let n = kills.filter(|n| *n > 0)?;
    let what = if n == 1 { "process" } else { "processes" };
    Some(format!(
        "{name}: the kernel's OOM killer ended {n} {what} in this guest this boot (its memory limit was reached; raise it with `vbuild limit {name} --memory SIZE`)"
    ))
}

/// How init ended, for the console log. In a PID namespace reboot(2)
/// ends init with SIGHUP (reboot) or SIGINT (halt, power-off).
fn describe_exit(status: i32) -> String {
    if libc::WIFSIGNALED(status) {
        match libc::WTERMSIG(status) {
            libc::SIGHUP => {
                "the guest rebooted (init ended by reboot()); start it again with `vbuild start`"
                    .into()
            }
            libc::SIGINT => "the guest halted".into(),
            s => format!("init was killed by {}", vbuild_kernel::signal::name(s)),
        }
    } else {
        format!("init exited with status {}", process::exit_code(status))
    }
}

trait NoCtty {
    fn custom_flags_noctty(&mut self) -> &mut Self;
}

impl NoCtty for std::fs::OpenOptions {
    fn custom_flags_noctty(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_NOCTTY)
    }
}

fn pollfd(fd: RawFd) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

fn set_nonblocking(fd: RawFd) {
    // SAFETY: fcntl flag changes on our descriptor.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
}

/// The console log, rotated at 1 MiB (one old file kept) so a chatty
/// guest cannot fill the state directory.
struct ConsoleLog {
    path: PathBuf,
    file: Option<std::fs::File>,
    size: u64,
}

const LOG_MAX: u64 = 1 << 20;

impl ConsoleLog {
    fn open(path: &Path) -> ConsoleLog {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .ok();
        let size = file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map(|m| m.len())
            .unwrap_or(0);
        ConsoleLog {
            path: path.to_path_buf(),
            file,
            size,
        }
    }

    fn write(&mut self, data: &[u8]) {
        if self.size + data.len() as u64 > LOG_MAX {
            let old = self.path.with_extension("log.1");
            let _ = std::fs::rename(&self.path, old);
            *self = ConsoleLog::open(&self.path.clone());
        }
        if let Some(f) = &mut self.file {
            if f.write_all(data).is_ok() {
                self.size += data.len() as u64;
            }
        }
    }
}

/// Reads what the guest wrote to its console: into the log and to the
/// attached client, if any.
fn drain_master(
    master: &OwnedFd,
    buf: &mut [u8],
    log: &mut ConsoleLog,
    client: &mut Option<Client>,
) {
    loop {
        match nix::unistd::read(master.as_raw_fd(), buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                log.write(&buf[..n]);
                if let Some(c) = client {
                    if !c.send(&buf[..n]) {
                        *client = None;
                    }
                }
            }
        }
    }
}

/// At most this many state saves per second for STATUS= changes; the
/// last text is always saved, at the latest this long after it came.
pub(crate) const STATUS_SAVE_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);

/// Datagrams read per wakeup, so a flood cannot starve the console.
const NOTIFY_BATCH: usize = 256;

/// Notify messages applied to the state but perhaps not saved yet.
struct NotifyState {
    /// A change waits to be saved.
    dirty: bool,
    /// When the state was last saved.
    last_save: std::time::Instant,
}

impl NotifyState {
    /// How long poll may sleep before a pending save is due (`-1`: no
    /// save pending).
    fn timeout_ms(&self) -> i32 {
        if !self.dirty {
            return -1;
        }
        STATUS_SAVE_INTERVAL
            .saturating_sub(self.last_save.elapsed())
            .as_millis() as i32
    }

    /// Saves a pending change when it is due (or `now`).
    fn flush(&mut self, st: &mut State, layout: &Layout, now: bool) {
        if self.dirty && (now || self.last_save.elapsed() >= STATUS_SAVE_INTERVAL) {
            st.state_saves += 1;
            let _ = st.save(layout);
            self.dirty = false;
            self.last_save = std::time::Instant::now();
        }
    }
}

/// Reads sd_notify datagrams: READY=1 marks the guest booted (saved at
/// once: `start --wait` waits for it), STATUS= is kept for `vbuild status`,
/// cleaned and capped, and saved at a bounded rate.
fn read_notify(
    notify: &OwnedFd,
    buf: &mut [u8],
    st: &mut State,
    layout: &Layout,
    pending: &mut NotifyState,
) {
    let mut ready_now = false;
    for _ in 0..NOTIFY_BATCH {
        // SAFETY: recv into our buffer.
        let n = unsafe {
            libc::recv(
                notify.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n <= 0 {
            break;
        }
        let text = String::from_utf8_lossy(&buf[..n as usize]);
        for line in text.split('\n') {
            if line == "READY=1" && !st.ready {
                st.ready = true;
                pending.dirty = true;
                ready_now = true;
            } else if let Some(s) = line.strip_prefix("STATUS=") {
                let clean = state::clean_status_text(s);
                if st.status_text.as_deref() != Some(clean.as_str()) {
                    st.status_text = Some(clean);
                    pending.dirty = true;
                }
            }
        }
    }
    pending.flush(st, layout, ready_now);
}

/// An attached `vbuild console`: bytes both ways, after a 4-byte header
/// with the client's window size (rows, columns, little-endian u16s).
struct Client {
    fd: OwnedFd,
    header: Vec<u8>,
}

/// First byte a client receives: attached, or refused (another is attached).
pub(crate) const ACK: u8 = 0x06;

fn accept_client(listen: &OwnedFd, master: &OwnedFd, client: &mut Option<Client>) {
    let _ = master;
    loop {
        // SAFETY: accept4 on our listening socket.
        let fd = unsafe {
            libc::accept4(
                listen.as_raw_fd(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            )
        };
        if fd < 0 {
            return;
        }
        // SAFETY: fd is new and ours.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        if client.is_some() {
            // Refused: closing without the ACK byte tells the client.
            continue;
        }
        let c = Client {
            fd,
            header: Vec::new(),
        };
        if c.send(&[ACK]) {
            *client = Some(c);
        }
    }
}

impl Client {
    /// Sends to the client; false when it is gone. A client too slow to
    /// keep up loses output rather than stalling the guest's console.
    fn send(&self, data: &[u8]) -> bool {
        // SAFETY: send from our buffer; MSG_NOSIGNAL avoids SIGPIPE.
        let r = unsafe {
            libc::send(
                self.fd.as_raw_fd(),
                data.as_ptr().cast(),
                data.len(),
                libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
            )
        };
        r >= 0 || nix::errno::Errno::last() == nix::errno::Errno::EAGAIN
    }

    /// Moves client input to the guest; false when the client left.
    fn pump(&mut self, master: &OwnedFd, buf: &mut [u8]) -> bool {
        match nix::unistd::read(self.fd.as_raw_fd(), buf) {
            Ok(0) => false,
            Err(nix::errno::Errno::EAGAIN) => true,
            Err(_) => false,
            Ok(n) => {
                let mut data = &buf[..n];
                if self.header.len() < 4 {
                    let take = (4 - self.header.len()).min(data.len());
                    self.header.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if self.header.len() == 4 {
                        let rows = u16::from_le_bytes([self.header[0], self.header[1]]);
                        let cols = u16::from_le_bytes([self.header[2], self.header[3]]);
                        if rows > 0 && cols > 0 {
                            let ws = libc::winsize {
                                ws_row: rows,
                                ws_col: cols,
                                ws_xpixel: 0,
                                ws_ypixel: 0,
                            };
                            use std::os::fd::AsFd;
                            let _ = vbuild_kernel::pty::set_window_size(master.as_fd(), &ws);
                        }
                    }
                }
                if !data.is_empty() {
                    // Input the guest does not read is dropped, never blocks us.
                    let _ = nix::unistd::write(master, data);
                }
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_oom_kill_is_named_with_its_count_and_the_fix() {
        assert_eq!(oom_line("web", None), None, "the kernel does not say");
        assert_eq!(oom_line("web", Some(0)), None, "none: no line");
        let one = oom_line("web", Some(1)).unwrap();
        assert!(
            one.starts_with("web: the kernel's OOM killer ended 1 process in"),
            "{one}"
        );
        assert!(one.contains("`vbuild limit web --memory SIZE`"), "{one}");
        assert!(oom_line("web", Some(3))
            .unwrap()
            .contains("ended 3 processes"));
    }
}
