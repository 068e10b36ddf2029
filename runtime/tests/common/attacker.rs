//! A hostile guest root, as code of the test process: it joins a running
//! guest's (or container's) namespaces with exactly the powers of its root
//! (its user namespace if it has one, otherwise uid 0 with its capability
//! set), watches /proc for every new process and attacks each at once:
//! ptrace, its program, root, cwd and descriptors through /proc and
//! pidfd_getfd, a host file reached through any of them. Shared by the
//! runtime's and vbuild-runc's exec tests (`#[path]`-included there).
#![allow(dead_code)]

use std::ffi::CString;
use std::io::{BufRead, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// What the attacker stands in and looks for.
pub struct Watch {
    /// The guest's init, whose namespaces it joins.
    pub init_pid: i32,
    /// The guest root's capability set (a mask).
    pub kept: u64,
    /// A host file no guest may reach, relative to the host's /.
    pub marker_rel: String,
    /// Whether a new process must hold no capability beyond `kept` from
    /// its first instant (vbuild's exec); vbuild-runc's, like runc's,
    /// drops them in the container, non-dumpable until then.
    pub caps_checked: bool,
    /// Whether a new process's program must not open through
    /// /proc/PID/exe before it is the guest's. Not for a privileged
    /// guest: its root is host root with CAP_SYS_PTRACE, which opens any
    /// process's, non-dumpable or not (privileged mode is no boundary).
    pub exe_checked: bool,
    /// Whether a process's stdio is its caller's on purpose (an OCI
    /// runtime hands the engine's descriptors on); still no host file may
    /// be reached through them.
    pub stdio_is_callers: bool,
}

/// A running attack; [`Attack::finish`] ends it and says what it found.
pub struct Attack {
    outer: i32,
    inner: i32,
    reader: std::io::BufReader<std::fs::File>,
    lines: Vec<String>,
}

/// What an attack found.
pub struct Found {
    /// New processes it looked at.
    pub seen: usize,
    /// Of those, how many it could seize with ptrace.
    pub seized: usize,
    /// Each thing it reached that it must not have.
    pub fails: Vec<String>,
}

impl Found {
    /// Says what it found, and fails unless it reached nothing and saw at
    /// least half of the `rounds` processes started meanwhile.
    pub fn assert_clean(&self, what: &str, rounds: usize) {
        eprintln!(
            "attacker ({what}): saw {} new processes, seized {}, {} problems",
            self.seen,
            self.seized,
            self.fails.len()
        );
        assert!(
            self.fails.is_empty(),
            "it reached host state: {:#?}",
            self.fails
        );
        assert!(
            self.seen >= rounds / 2,
            "the attacker saw only {} of {rounds} processes",
            self.seen
        );
    }
}

impl Attack {
    /// Starts the attacker and returns once it watches.
    pub fn start(w: Watch) -> Attack {
        let (r, wr) = nix::unistd::pipe().unwrap();
        let wfd = wr.as_raw_fd();
        let outer = fork_child(move || attacker(&w, wfd));
        drop(wr);
        let mut reader = std::io::BufReader::new(std::fs::File::from(r));
        let mut line = String::new();
        // The outer attacker reports the inner one's pid and the inner one
        // says "ready" once it has looked at /proc; both write to one pipe,
        // so the two lines come in either order.
        let mut inner: Option<i32> = None;
        let mut ready = false;
        let mut lines = Vec::new();
        while inner.is_none() || !ready {
            line.clear();
            assert!(
                reader.read_line(&mut line).unwrap() > 0,
                "the attacker ended before it was ready"
            );
            match line.trim() {
                "ready" => ready = true,
                l if l.starts_with("pid ") => {
                    inner = Some(
                        l[4..]
                            .parse()
                            .unwrap_or_else(|_| panic!("attacker said {line:?}")),
                    )
                }
                _ => lines.push(line.clone()),
            }
        }
        Attack {
            outer,
            inner: inner.unwrap(),
            reader,
            lines,
        }
    }

    /// Gives it a moment for the last processes, kills it, and reports.
    pub fn finish(mut self) -> Found {
        std::thread::sleep(std::time::Duration::from_millis(300));
        // SAFETY: killing the attacker processes we started.
        unsafe {
            libc::kill(self.inner, libc::SIGKILL);
            libc::kill(self.outer, libc::SIGKILL);
        }
        waitpid_code(self.outer);
        let mut rest = String::new();
        let _ = self.reader.read_to_string(&mut rest);
        self.lines.extend(rest.lines().map(|l| format!("{l}\n")));
        Found {
            seen: self.lines.iter().filter(|l| l.starts_with("seen")).count(),
            seized: self.lines.iter().filter(|l| l.contains("seized=1")).count(),
            fails: self
                .lines
                .iter()
                .filter(|l| l.starts_with("FAIL"))
                .cloned()
                .collect(),
        }
    }
}

/// A file in the host's /tmp, outside every guest, that no guest may reach.
pub fn host_marker() -> tempfile::NamedTempFile {
    let f = tempfile::Builder::new()
        .prefix("vbuild-host-marker-")
        .tempfile_in("/tmp")
        .unwrap();
    std::fs::write(f.path(), "host secret 7f3a\n").unwrap();
    f
}

/// Forks a child (this process is multi-threaded; glibc's fork keeps malloc
/// usable in the child, and the child touches no lock another thread may
/// hold) that runs `f` and exits with its code.
pub fn fork_child(f: impl FnOnce() -> i32) -> i32 {
    // SAFETY: see above.
    match unsafe { nix::unistd::fork() }.unwrap() {
        nix::unistd::ForkResult::Child => {
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(101);
            // SAFETY: leaving a forked child without running exit handlers.
            unsafe { libc::_exit(code) }
        }
        nix::unistd::ForkResult::Parent { child } => child.as_raw(),
    }
}

/// Joins every namespace of the guest's init, as its root would be.
/// Returns whether a user namespace was joined.
pub fn join_guest(init_pid: i32) -> bool {
    let fds = vbuild_kernel::ns::open_all(init_pid).unwrap();
    let userns = fds.iter().any(|(k, _)| *k == "user");
    vbuild_kernel::ns::enter_all(&fds).unwrap();
    if userns {
        vbuild_kernel::process::set_ids(0, 0, true).unwrap();
    }
    userns
}

pub fn waitpid_code(pid: i32) -> i32 {
    vbuild_kernel::process::wait_exit_code(pid).unwrap()
}

/// What the attacker found about one new process of the guest.
fn inspect(pid: i32, w: &Watch, guest_root: (u64, u64), out: &mut Vec<String>) {
    let (kept, marker_rel) = (w.kept, w.marker_rel.as_str());
    let mut seized = false;
    // SAFETY: ptrace on a pid; failures are answers.
    if unsafe { libc::ptrace(libc::PTRACE_SEIZE, pid, 0, 0) } == 0 {
        seized = true;
        // SAFETY: as above; the stop is awaited and undone below.
        unsafe { libc::ptrace(libc::PTRACE_INTERRUPT, pid, 0, 0) };
    }
    let mut problems = Vec::new();
    // Capabilities and seccomp of the process as it is now.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"));
    if let (true, Ok(status)) = (w.caps_checked, status) {
        for (field, allowed) in [
            ("CapInh:", kept),
            ("CapPrm:", kept),
            ("CapEff:", kept),
            ("CapBnd:", kept),
            ("CapAmb:", 0),
        ] {
            let v = status
                .lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
                .unwrap_or(0);
            if v & !allowed != 0 {
                problems.push(format!("{field} {v:x} beyond the guest's {allowed:x}"));
            }
        }
        let sc = status
            .lines()
            .find_map(|l| l.strip_prefix("Seccomp:"))
            .map(str::trim);
        if sc.is_some() && sc != Some("2") {
            problems.push(format!("no seccomp filter (Seccomp: {sc:?})"));
        }
    }
    // Its program: the guest's own file once it has exec'd; before that it
    // is the host's binary (the runtime's), which must not open: a guest
    // root that can write it replaces the host's runtime (CVE-2019-5736).
    let exe = std::fs::File::open(format!("/proc/{pid}/exe"));
    if let (true, Ok(exe)) = (w.exe_checked, exe) {
        let m = exe.metadata().unwrap();
        let target = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
        let inside = target
            .as_ref()
            .and_then(|t| std::fs::metadata(t).ok())
            .map(|i| (i.dev(), i.ino()));
        if inside != Some((m.dev(), m.ino())) {
            problems.push(format!(
                "its program {target:?} {:?} (not the guest's {inside:?}) opened through /proc/PID/exe",
                (m.dev(), m.ino())
            ));
        }
    }
    // Its root and cwd, through /proc, must be the guest's.
    if let Ok(m) = std::fs::metadata(format!("/proc/{pid}/root/")) {
        if (m.dev(), m.ino()) != guest_root {
            problems.push("its root is not the guest's root".into());
        }
    }
    if std::fs::File::open(format!("/proc/{pid}/root/{marker_rel}")).is_ok() {
        problems.push("host marker readable through /proc/PID/root".into());
    }
    let up = "../".repeat(24);
    if std::fs::File::open(format!("/proc/{pid}/cwd/{up}{marker_rel}")).is_ok() {
        problems.push("host marker readable through /proc/PID/cwd".into());
    }
    // Its descriptors, by /proc and by pidfd_getfd.
    // (how it was got, the descriptor, its /proc link, its number there)
    let mut fds: Vec<(String, OwnedFd, Option<PathBuf>, i32)> = Vec::new();
    if let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        for e in rd.flatten() {
            let p = e.path();
            let target = std::fs::read_link(&p).ok();
            let c = CString::new(p.as_os_str().as_bytes()).unwrap();
            // SAFETY: open of a NUL-terminated path.
            let fd = unsafe {
                libc::open(
                    c.as_ptr(),
                    libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC,
                )
            };
            if fd >= 0 {
                // SAFETY: a fresh descriptor.
                let num = e.file_name().to_str().and_then(|n| n.parse().ok());
                fds.push((
                    format!("/proc fd {:?}", e.file_name()),
                    // SAFETY: a fresh descriptor.
                    unsafe { OwnedFd::from_raw_fd(fd) },
                    target,
                    num.unwrap_or(-1),
                ));
            }
        }
    }
    if let Ok(pidfd) = vbuild_kernel::process::pidfd_open(pid) {
        for n in 0..64 {
            // SAFETY: pidfd_getfd syscall; failures are answers.
            let fd = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), n, 0) };
            if fd >= 0 {
                // SAFETY: a fresh descriptor.
                let target = std::fs::read_link(format!("/proc/{pid}/fd/{n}")).ok();
                fds.push((
                    format!("pidfd_getfd {n}"),
                    // SAFETY: a fresh descriptor.
                    unsafe { OwnedFd::from_raw_fd(fd as RawFd) },
                    target,
                    n,
                ));
            }
        }
    }
    for (how, fd, target, num) in &fds {
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fstat into a stack struct.
        unsafe { libc::fstat(fd.as_raw_fd(), &mut st) };
        let kind = st.st_mode & libc::S_IFMT;
        // A file or directory must be one the guest has anyway: the same
        // inode as its path seen from inside the guest.
        let callers = w.stdio_is_callers && (0..3).contains(num);
        if !callers && (kind == libc::S_IFDIR || kind == libc::S_IFREG) {
            let inside = target
                .as_ref()
                .and_then(|t| std::fs::metadata(t).ok())
                .map(|m| (m.dev(), m.ino()));
            if inside != Some((st.st_dev, st.st_ino)) {
                problems.push(format!("{how}: {target:?} is not the guest's"));
            }
        }
        let c = CString::new(format!("{up}{marker_rel}")).unwrap();
        // SAFETY: openat relative to the descriptor we got.
        let m = unsafe { libc::openat(fd.as_raw_fd(), c.as_ptr(), libc::O_RDONLY) };
        if m >= 0 {
            problems.push(format!("{how}: host marker reachable"));
            // SAFETY: ours.
            unsafe { libc::close(m) };
        }
    }
    if seized {
        let mut status = 0;
        // SAFETY: waiting for the interrupt stop (or the end) of our tracee.
        let w = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
        if w == pid && libc::WIFSTOPPED(status) {
            let sig = if (status >> 16) == libc::PTRACE_EVENT_STOP {
                0
            } else {
                libc::WSTOPSIG(status)
            };
            // SAFETY: detaching, passing on a signal it was about to get.
            unsafe { libc::ptrace(libc::PTRACE_DETACH, pid, 0, sig) };
        }
    }
    out.push(format!(
        "seen {pid} seized={} fds={}",
        seized as u8,
        fds.len()
    ));
    for p in problems {
        out.push(format!("FAIL {pid}: {p}"));
    }
}

/// The attacker: in the guest's namespaces (forked into its PID namespace),
/// with the guest root's capabilities, it watches /proc for every new
/// process and attacks it at once. Reports lines on `report` until killed.
fn attacker(w: &Watch, report: RawFd) -> i32 {
    join_guest(w.init_pid);
    // The PID namespace applies to children: be one, like a guest process.
    // SAFETY: the child only runs the attack loop below.
    let inner = match unsafe { libc::fork() } {
        0 => {
            vbuild_kernel::caps::restrict_to(w.kept, vbuild_kernel::caps::last_cap()).unwrap();
            let me = std::fs::read_link("/proc/self")
                .ok()
                .and_then(|p| p.to_str()?.parse::<i32>().ok())
                .unwrap_or(-1);
            let root = std::fs::metadata("/").unwrap();
            let guest_root = (root.dev(), root.ino());
            let mut seen = std::collections::HashSet::new();
            let mut first = true;
            loop {
                let mut lines = Vec::new();
                if let Ok(rd) = std::fs::read_dir("/proc") {
                    for e in rd.flatten() {
                        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok())
                        else {
                            continue;
                        };
                        if pid == me || !seen.insert(pid) || first {
                            continue;
                        }
                        inspect(pid, w, guest_root, &mut lines);
                    }
                }
                if first {
                    lines.push("ready".into());
                    first = false;
                }
                for l in lines {
                    let l = format!("{l}\n");
                    // SAFETY: write to our report pipe.
                    unsafe { libc::write(report, l.as_ptr().cast(), l.len()) };
                }
            }
        }
        pid => pid,
    };
    let l = format!("pid {inner}\n");
    // SAFETY: write to our report pipe.
    unsafe { libc::write(report, l.as_ptr().cast(), l.len()) };
    waitpid_code(inner)
}
