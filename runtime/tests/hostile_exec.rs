//! What a hostile guest root can do to the host's actions on its guest
//! (issue 9, items 4, 5, 6, 9, 10 of the review), each written as the
//! attack, which must fail, after which the guest must still answer exec.
//! The attacker is code in this test process that joins the guest's
//! namespaces with exactly the powers of the guest's root (its user
//! namespace if it has one, otherwise uid 0 with the guest's capability
//! set), not a binary inside the guest. The guests are tiny busybox roots
//! with a shell-script init, run with and without their own user
//! namespace. Needs root (namespaces, cgroups, mounts).

#[path = "common/attacker.rs"]
mod attacker;
mod common;
use attacker::{fork_child, host_marker, join_guest, waitpid_code, Attack, Watch};
use common::{busybox_rootfs, eventually, root_or_skip, unique};
use std::ffi::CString;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use vbuild_runtime::config::{GuestConfig, InitConfig, InitKind};
use vbuild_runtime::exec::ExecOptions;
use vbuild_runtime::name::GuestName;
use vbuild_runtime::net::{NetConfig, NetMode};
use vbuild_runtime::paths::Layout;
use vbuild_runtime::start::StartOptions;
use vbuild_runtime::state::State;
use vbuild_runtime::supervisor::SupervisorProgram;

/// The busybox applets this file's guests get.
const APPLETS: &[&str] = &[
    "sh", "sleep", "cat", "ls", "kill", "true", "false", "echo", "dd", "test", "rm",
];

const INIT: &str = "#!/bin/sh\n\
trap 'echo init: stopping; exit 0' TERM\n\
while :; do sleep 1 & wait $!; done\n";

/// A running guest in its own state root; stopped and cleaned up when dropped.
struct Guest {
    _dir: tempfile::TempDir,
    layout: Layout,
    name: GuestName,
}

impl Guest {
    fn start(userns: bool, memory: Option<u64>) -> Guest {
        let dir = tempfile::tempdir().unwrap();
        // A guest with its own user namespace must be able to reach its root.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let layout = Layout::new(Some(dir.path()));
        let name = GuestName::parse(&unique("hx")).unwrap();
        let n = name.as_str();
        busybox_rootfs(&layout.guest_rootfs(n), INIT, APPLETS);
        GuestConfig {
            name: n.to_string(),
            distro: "busybox".into(),
            release: "test".into(),
            variant: String::new(),
            created: 0,
            privileged: !userns,
            ids: None,
            template: None,
            autostart: false,
            restart: Default::default(),
            init: InitConfig {
                path: "/sbin/init".into(),
                args: vec![],
                kind: InitKind::Other,
            },
            limits: vbuild_runtime::limits::Limits {
                memory,
                ..Default::default()
            },
            net: NetConfig {
                mode: NetMode::None,
                ..Default::default()
            },
        }
        .save(&layout.guest_config(n))
        .unwrap();
        let g = Guest {
            _dir: dir,
            layout,
            name,
        };
        let opts = StartOptions {
            privileged: !userns,
            supervisor: SupervisorProgram {
                program: PathBuf::from(env!("CARGO_BIN_EXE_vbuild-supervisor")),
                args: vec![],
            },
            on_reboot: None,
            on_exit: None,
        };
        vbuild_runtime::start::start(&g.layout, &g.name, &opts).unwrap();
        g
    }

    fn state(&self) -> State {
        State::load(&self.layout, self.name.as_str())
            .unwrap()
            .expect("guest has state")
    }

    fn exec_argv(&self, argv: &[&str]) -> i32 {
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        vbuild_runtime::exec::exec(&self.layout, &self.name, &argv, &ExecOptions::default())
            .unwrap()
    }

    fn exec(&self, cmd: &str) -> i32 {
        self.exec_argv(&["/bin/sh", "-c", cmd])
    }

    /// A file of the running guest, as the host (this test) sees it.
    fn guest_path(&self, p: &str) -> PathBuf {
        PathBuf::from(format!(
            "/proc/{}/root/{}",
            self.state().init_pid,
            p.trim_start_matches('/')
        ))
    }

    fn read(&self, p: &str) -> Option<String> {
        std::fs::read_to_string(self.guest_path(p)).ok()
    }

    fn assert_still_answers(&self) {
        let st = self.state();
        assert!(
            vbuild_kernel::process::is_alive(st.init_pid, st.init_start),
            "the guest's init died"
        );
        assert_eq!(self.exec("exit 5"), 5, "the guest no longer answers exec");
    }

    fn cgroup_dirs(&self) -> Vec<PathBuf> {
        let rel = format!("vbuild/{}", self.name);
        ["pids", "memory", "devices", "unified", "freezer", "cpu"]
            .iter()
            .map(|h| Path::new("/sys/fs/cgroup").join(h).join(&rel))
            .collect()
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        if let Ok(Some(_)) = State::load(&self.layout, self.name.as_str()) {
            let _ = vbuild_runtime::stop::stop(&self.layout, &self.name, Duration::from_secs(1));
        }
        for d in self.cgroup_dirs() {
            let _ = std::fs::remove_dir(d);
        }
        // The guest's id range goes with it, as at `vbuild delete`.
        let _ = vbuild_runtime::idrange::Registry::host()
            .release(self.layout.root(), self.name.as_str());
    }
}

// ---------------------------------------------------------------------
// Item 4: the process that enters the guest, seized as it appears.
// ---------------------------------------------------------------------

fn exec_survives_a_guest_root_that_seizes_it_as_it_appears(userns: bool) {
    let g = Guest::start(userns, None);
    assert_eq!(g.state().userns, userns);
    let marker = host_marker();
    let attack = Attack::start(Watch {
        init_pid: g.state().init_pid,
        kept: vbuild_runtime::security::kept_mask(),
        marker_rel: marker.path().to_str().unwrap()[1..].to_string(),
        caps_checked: true,
        stdio_is_callers: false,
        exe_checked: userns,
    });
    const ROUNDS: usize = 50;
    for i in 0..ROUNDS {
        // Half of the commands end at once (the attack must race the
        // exec), half stay a moment (the attack sees them surely).
        let code = if i % 2 == 0 {
            g.exec_argv(&["true"])
        } else {
            g.exec_argv(&["sleep", "0.05"])
        };
        assert_eq!(code, 0, "round {i}");
    }
    attack
        .finish()
        .assert_clean(&format!("userns={userns}"), ROUNDS);
    g.assert_still_answers();
}

#[test]
fn exec_survives_a_guest_root_that_seizes_it_as_it_appears_privileged() {
    if !root_or_skip() {
        return;
    }
    exec_survives_a_guest_root_that_seizes_it_as_it_appears(false);
}

#[test]
fn exec_survives_a_guest_root_that_seizes_it_as_it_appears_userns() {
    if !root_or_skip() {
        return;
    }
    exec_survives_a_guest_root_that_seizes_it_as_it_appears(true);
}

// ---------------------------------------------------------------------
// Item 5: stdio, sessions, signals, exit status, enter on EOF.
// ---------------------------------------------------------------------

/// Host pid of the guest process whose command line starts with `args`.
fn find_in_guest(g: &Guest, args: &[&str]) -> Option<i32> {
    let want: Vec<u8> = args
        .iter()
        .flat_map(|a| a.bytes().chain(std::iter::once(0)))
        .collect();
    let guest_ns = std::fs::read_link(format!("/proc/{}/ns/pid", g.state().init_pid)).ok()?;
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let ns = std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok()?;
        (cmd.starts_with(&want) && ns == guest_ns).then_some(pid)
    })
}

/// Field `n` (1-based) of /proc/PID/stat.
fn stat_field(pid: i32, n: usize) -> Option<i64> {
    let t = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &t[t.rfind(')')? + 2..];
    rest.split_whitespace().nth(n - 3)?.parse().ok()
}

fn stdio_is_relayed_and_a_process_left_behind_cannot_reach_our_terminal(userns: bool) {
    let g = Guest::start(userns, None);
    let pty = vbuild_kernel::pty::open().unwrap();
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&pty.slave)
        .unwrap();
    let slave_rdev = slave.metadata().unwrap().rdev();
    let sfd = slave.as_raw_fd();
    let (layout, name) = (g.layout.clone(), g.name.clone());
    // `vbuild exec` on our terminal; the command leaves a process behind
    // that keeps every descriptor it was given.
    let exec = fork_child(move || {
        // SAFETY: putting our pty on stdio in the child.
        unsafe {
            libc::setsid();
            libc::ioctl(sfd, libc::TIOCSCTTY, 0);
            for t in 0..3 {
                libc::dup2(sfd, t);
            }
        }
        let argv: Vec<String> = [
            "/bin/sh",
            "-c",
            "exec 3<&0; sleep 300 <&3 & echo left-behind $!",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        vbuild_runtime::exec::exec(&layout, &name, &argv, &ExecOptions::default()).unwrap_or(99)
    });
    assert_eq!(waitpid_code(exec), 0);
    // Its output came through our terminal.
    let mut buf = [0u8; 4096];
    let mut got = Vec::new();
    let until = Instant::now() + Duration::from_secs(5);
    while !String::from_utf8_lossy(&got).contains("left-behind") && Instant::now() < until {
        let mut p = libc::pollfd {
            fd: pty.master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd.
        if unsafe { libc::poll(&mut p, 1, 100) } > 0 {
            let k = nix::unistd::read(pty.master.as_raw_fd(), &mut buf).unwrap_or(0);
            got.extend_from_slice(&buf[..k]);
        }
    }
    assert!(
        String::from_utf8_lossy(&got).contains("left-behind"),
        "output not relayed: {:?}",
        String::from_utf8_lossy(&got)
    );
    // The shell echoes as soon as it forked; the child may not have
    // exec'd sleep yet.
    eventually("the process left behind runs sleep", || {
        find_in_guest(&g, &["sleep", "300"]).is_some()
    });
    let left = find_in_guest(&g, &["sleep", "300"]).expect("the process left behind runs");
    // None of its stdio is our terminal, and it has no controlling terminal
    // and a session of its own.
    for n in 0..3 {
        let m = std::fs::metadata(format!("/proc/{left}/fd/{n}")).unwrap();
        assert_ne!(
            m.rdev(),
            slave_rdev,
            "fd {n} of the left-behind process is our pty"
        );
        assert!(!m.file_type().is_char_device(), "fd {n} is a terminal");
    }
    assert_eq!(
        stat_field(left, 7),
        Some(0),
        "it has a controlling terminal"
    );
    let our_sid = stat_field(std::process::id() as i32, 6).unwrap();
    assert_ne!(stat_field(left, 6), Some(our_sid));
    // The attack: as the guest's root, push keystrokes through each of its
    // descriptors (TIOCSTI; this host allows it).
    let init = g.state().init_pid;
    let attack = fork_child(move || {
        join_guest(init);
        let mut pushed = 0;
        for n in 0..3 {
            let Ok(f) = std::fs::OpenOptions::new()
                .write(true)
                .open(format!("/proc/{left}/fd/{n}"))
            else {
                continue;
            };
            let c: libc::c_char = b'X' as libc::c_char;
            // SAFETY: TIOCSTI with a pointer to one byte.
            if unsafe { libc::ioctl(f.as_raw_fd(), libc::TIOCSTI, &c) } == 0 {
                pushed += 1;
            }
        }
        pushed
    });
    assert_eq!(
        waitpid_code(attack),
        0,
        "TIOCSTI succeeded on a left-behind fd"
    );
    // Nothing arrived on our terminal's input.
    nix::fcntl::fcntl(
        sfd,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )
    .unwrap();
    let mut tb = [0u8; 64];
    assert!(
        matches!(
            nix::unistd::read(sfd, &mut tb),
            Err(nix::errno::Errno::EAGAIN)
        ),
        "bytes were pushed into our terminal"
    );
    // SAFETY: ending the process the command left behind (the guest stop
    // would too).
    unsafe { libc::kill(left, libc::SIGKILL) };
    g.assert_still_answers();
}

#[test]
fn stdio_is_relayed_and_a_process_left_behind_cannot_reach_our_terminal_privileged() {
    if !root_or_skip() {
        return;
    }
    stdio_is_relayed_and_a_process_left_behind_cannot_reach_our_terminal(false);
}

#[test]
fn stdio_is_relayed_and_a_process_left_behind_cannot_reach_our_terminal_userns() {
    if !root_or_skip() {
        return;
    }
    stdio_is_relayed_and_a_process_left_behind_cannot_reach_our_terminal(true);
}

/// Starts `vbuild exec NAME -- sh -c SCRIPT` in a child process with stdin
/// on /dev/null; returns its pid once the script wrote its pid to `file`.
fn exec_in_child(g: &Guest, script: &str, file: &str) -> i32 {
    let (layout, name) = (g.layout.clone(), g.name.clone());
    let argv: Vec<String> = ["/bin/sh", "-c", script]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let pid = fork_child(move || {
        let null = std::fs::File::open("/dev/null").unwrap();
        // SAFETY: stdin on /dev/null in the child.
        unsafe { libc::dup2(null.as_raw_fd(), 0) };
        vbuild_runtime::exec::exec(&layout, &name, &argv, &ExecOptions::default()).unwrap_or(99)
    });
    eventually("the command started", || {
        g.read(file).is_some_and(|t| !t.trim().is_empty())
    });
    pid
}

#[test]
fn signals_reach_the_command_and_its_death_follows_ours() {
    if !root_or_skip() {
        return;
    }
    let g = Guest::start(false, None);
    for (sig, name, code) in [
        (libc::SIGTERM, "TERM", 42),
        (libc::SIGINT, "INT", 43),
        (libc::SIGHUP, "HUP", 44),
    ] {
        let script = format!(
            "trap 'echo {name} > /tmp/got-{name}; exit {code}' {name}; echo $$ > /tmp/pid-{name}; \
             while :; do sleep 1 & wait $!; done"
        );
        let pid = exec_in_child(&g, &script, &format!("/tmp/pid-{name}"));
        // SAFETY: signalling our own child.
        unsafe { libc::kill(pid, sig) };
        assert_eq!(
            waitpid_code(pid),
            code,
            "SIG{name} did not reach the command"
        );
        assert_eq!(g.read(&format!("/tmp/got-{name}")).unwrap().trim(), name);
    }
    // `vbuild exec` killed outright: the command dies too.
    let pid = exec_in_child(
        &g,
        "echo $$ > /tmp/pid-kill; exec sleep 1000",
        "/tmp/pid-kill",
    );
    let inside = g.read("/tmp/pid-kill").unwrap().trim().to_string();
    // SAFETY: killing our own child.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert_eq!(waitpid_code(pid), 128 + libc::SIGKILL);
    eventually("the command died with vbuild exec", || {
        g.exec(&format!("kill -0 {inside} 2>/dev/null")) != 0
    });
    // Exit status passes through, shell style.
    assert_eq!(g.exec("exit 7"), 7);
    assert_eq!(g.exec("kill -9 $$"), 128 + 9);
    g.assert_still_answers();
}

#[test]
fn enter_ends_at_the_end_of_input_that_is_not_a_terminal() {
    if !root_or_skip() {
        return;
    }
    let g = Guest::start(false, None);
    let (in_r, in_w) = nix::unistd::pipe().unwrap();
    let (out_r, out_w) = nix::unistd::pipe().unwrap();
    let (ir, ow) = (in_r.as_raw_fd(), out_w.as_raw_fd());
    let (iw, or) = (in_w.as_raw_fd(), out_r.as_raw_fd());
    let (layout, name) = (g.layout.clone(), g.name.clone());
    let pid = fork_child(move || {
        // SAFETY: stdio on our pipes in the child, the test's ends closed.
        unsafe {
            libc::close(iw);
            libc::close(or);
            libc::dup2(ir, 0);
            libc::dup2(ow, 1);
            libc::dup2(ow, 2);
        }
        let shell = vbuild_runtime::exec::login_shell(&layout, &name).unwrap();
        vbuild_runtime::exec::enter(&layout, &name, &shell).unwrap_or(99)
    });
    drop((in_r, out_w));
    nix::unistd::write(&in_w, b"echo entered-$((6*7))\n").unwrap();
    drop(in_w);
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::fs::File::from(out_r).read_to_string(&mut s);
        s
    });
    let until = Instant::now() + Duration::from_secs(20);
    let code = loop {
        if let Some(c) = vbuild_kernel::process::try_wait_exit_code(pid).unwrap() {
            break c;
        }
        if Instant::now() > until {
            // SAFETY: our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            waitpid_code(pid);
            let out = reader.join().unwrap();
            panic!("enter did not end at the end of its input; it printed {out:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = reader.join().unwrap();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("entered-42"), "{out}");
    g.assert_still_answers();
}

// ---------------------------------------------------------------------
// Item 6: /etc/passwd planted to leak, hang or blow up `enter`.
// ---------------------------------------------------------------------

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn planted_passwd_neither_leaks_hangs_nor_grows(userns: bool) {
    let g = Guest::start(userns, None);
    let marker = host_marker();
    let passwd = g.layout.guest_rootfs(g.name.as_str()).join("etc/passwd");
    let plant = |what: &str| {
        let _ = std::fs::remove_file(&passwd);
        let c = CString::new(passwd.as_os_str().as_bytes()).unwrap();
        match what {
            "symlink" => std::os::unix::fs::symlink(marker.path(), &passwd).unwrap(),
            "relative symlink" => std::os::unix::fs::symlink(
                format!("../../../../../..{}", marker.path().display()),
                &passwd,
            )
            .unwrap(),
            // SAFETY: mknod/mkfifo with a NUL-terminated path.
            "/dev/zero" => assert_eq!(
                unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o644, libc::makedev(1, 5)) },
                0
            ),
            "fifo" => assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0),
            "2 GB sparse file" => {
                let f = std::fs::File::create(&passwd).unwrap();
                f.set_len(2 << 30).unwrap();
            }
            _ => unreachable!(),
        }
    };
    let before = vm_hwm_kib();
    for what in [
        "symlink",
        "relative symlink",
        "/dev/zero",
        "fifo",
        "2 GB sparse file",
    ] {
        plant(what);
        let (layout, name) = (g.layout.clone(), g.name.clone());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(vbuild_runtime::exec::login_shell(&layout, &name));
        });
        let shell = rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("reading a planted {what} hung"))
            .unwrap();
        assert_eq!(shell.path, "/bin/sh", "{what}");
        let w = shell
            .warning
            .unwrap_or_else(|| panic!("no warning for {what}"));
        assert!(!w.contains("secret"), "{what} leaked: {w}");
        assert!(w.contains("using /bin/sh"), "{w}");
        eprintln!("planted {what}: {w}");
    }
    let grown = vm_hwm_kib().saturating_sub(before);
    assert!(
        grown < 64 * 1024,
        "reading planted files grew us by {grown} KiB"
    );
    // `enter` itself falls back to /bin/sh and works (with a dangling
    // symlink: the guest's own shell would block on its own FIFO).
    plant("symlink");
    let (in_r, in_w) = nix::unistd::pipe().unwrap();
    let (ir, iw) = (in_r.as_raw_fd(), in_w.as_raw_fd());
    let (layout, name) = (g.layout.clone(), g.name.clone());
    let pid = fork_child(move || {
        let null = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .unwrap();
        // SAFETY: stdio in the child, the test's end closed.
        unsafe {
            libc::close(iw);
            libc::dup2(ir, 0);
            libc::dup2(null.as_raw_fd(), 1);
            libc::dup2(null.as_raw_fd(), 2);
        }
        let shell = vbuild_runtime::exec::login_shell(&layout, &name).unwrap();
        vbuild_runtime::exec::enter(&layout, &name, &shell).unwrap_or(99)
    });
    drop(in_r);
    nix::unistd::write(&in_w, b"exit 3\n").unwrap();
    drop(in_w);
    assert_eq!(waitpid_code(pid), 3);
    g.assert_still_answers();
}

#[test]
fn planted_passwd_neither_leaks_hangs_nor_grows_privileged() {
    if !root_or_skip() {
        return;
    }
    planted_passwd_neither_leaks_hangs_nor_grows(false);
}

#[test]
fn planted_passwd_neither_leaks_hangs_nor_grows_userns() {
    if !root_or_skip() {
        return;
    }
    planted_passwd_neither_leaks_hangs_nor_grows(true);
}

// ---------------------------------------------------------------------
// Item 9: the notify socket flooded with escape sequences.
// ---------------------------------------------------------------------

#[test]
fn a_notify_flood_is_stored_clean_and_saved_at_a_bounded_rate() {
    if !root_or_skip() {
        return;
    }
    let g = Guest::start(false, None);
    let sock_path = vbuild_runtime::state::notify_socket(&g.layout, g.name.as_str());
    let sock = std::os::unix::net::UnixDatagram::unbound().unwrap();
    let saves_before = g.state().state_saves;
    let t0 = Instant::now();
    const FLOOD: usize = 100_000;
    let long = "A".repeat(1000);
    for i in 0..FLOOD {
        let msg = if i % 1000 == 0 {
            format!("STATUS={long}")
        } else {
            format!("STATUS=\x1b[2J\x1b]0;owned\x07step {i} \x1b[31mred\x1b[0m\r\x08\n")
        };
        sock.send_to(msg.as_bytes(), &sock_path).unwrap();
    }
    sock.send_to(b"STATUS=final \x1b[1mdone\x1b[0m", &sock_path)
        .unwrap();
    eventually("the last STATUS= is saved", || {
        g.state().status_text.as_deref() == Some("final done")
    });
    let secs = t0.elapsed().as_secs_f64();
    let saves = g.state().state_saves - saves_before;
    eprintln!("{FLOOD} STATUS messages in {secs:.2} s: {saves} state saves");
    assert!(
        (saves as f64) <= 4.0 * secs + 3.0,
        "{saves} saves in {secs:.2} s: not coalesced"
    );
    // What status shows is clean too.
    let s = vbuild_runtime::status::status(&g.layout, &g.name).unwrap();
    assert_eq!(s.boot_status.as_deref(), Some("final done"));
    // A long text is capped.
    sock.send_to(format!("STATUS={long}").as_bytes(), &sock_path)
        .unwrap();
    eventually("the long STATUS= is saved", || {
        g.state().status_text.is_some_and(|t| t.starts_with("AAAA"))
    });
    let t = g.state().status_text.unwrap();
    assert_eq!(t.len(), vbuild_runtime::state::STATUS_TEXT_MAX);
    assert!(!t.chars().any(|c| c.is_control()));
    g.assert_still_answers();
}

// ---------------------------------------------------------------------
// Item 10: /dev/shm, /tmp and /run filled from inside.
// ---------------------------------------------------------------------

fn tmpfs_size_kib(g: &Guest, mountpoint: &str) -> Option<u64> {
    let info = std::fs::read_to_string(format!("/proc/{}/mountinfo", g.state().init_pid)).ok()?;
    info.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.get(4) != Some(&mountpoint) || !l.contains(" - tmpfs ") {
            return None;
        }
        let opts = l.rsplit(' ').next()?;
        opts.split(',')
            .find_map(|o| o.strip_prefix("size="))?
            .trim_end_matches('k')
            .parse()
            .ok()
    })
}

#[test]
fn filling_dev_shm_gets_enospc_and_the_guest_survives() {
    if !root_or_skip() {
        return;
    }
    // Without a memory limit: the fixed defaults.
    let free = Guest::start(false, None);
    assert_eq!(tmpfs_size_kib(&free, "/dev/shm"), Some(64 * 1024));
    assert_eq!(tmpfs_size_kib(&free, "/tmp"), Some(256 * 1024));
    assert_eq!(tmpfs_size_kib(&free, "/run"), Some(64 * 1024));
    drop(free);
    // With 128 MiB of memory: a quarter for /dev/shm and /tmp.
    let g = Guest::start(false, Some(128 << 20));
    assert_eq!(tmpfs_size_kib(&g, "/dev/shm"), Some(32 * 1024));
    assert_eq!(tmpfs_size_kib(&g, "/tmp"), Some(32 * 1024));
    // The attack: fill /dev/shm with more than the guest's memory.
    let code = g.exec("dd if=/dev/zero of=/dev/shm/fill bs=1M count=200 2>/tmp/dd.err");
    assert_ne!(code, 0, "writing 200 MiB into /dev/shm succeeded");
    let err = g.read("/tmp/dd.err").unwrap_or_default();
    assert!(err.contains("No space left"), "dd said: {err}");
    let size = std::fs::metadata(g.guest_path("/dev/shm/fill"))
        .unwrap()
        .len();
    assert!(size <= 32 << 20, "/dev/shm grew to {size} bytes");
    g.assert_still_answers();
    assert_eq!(g.exec("rm -f /dev/shm/fill 2>/dev/null; true"), 0);
}
