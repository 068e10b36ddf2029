//! containerd-shim-vbuild-v2's terminals and metrics under the test's own
//! containerd 1.7: `ctr run -t` and `ctr task exec -t` on a pty of the
//! test's own (the process sees a terminal, the client's window size
//! arrives through ResizePty, its output and exit code come back), and
//! `ctr task metrics` (the task's cgroup counters). Nothing is left.
//! Needs root; run under `flock /tmp/vbuild-root-tests.lock`.

mod common;
use common::containerd::*;
use common::shim::*;
use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// Prints the process's terminal (ttyname: a pty of the container's own
/// devpts), waits until it has the client's size (ResizePty comes after
/// Start; busybox stty prints nothing on stdout for 0x0), then prints
/// that size.
const SHOW: &str = "busybox tty; i=0; s=$(busybox stty size 2>/dev/null); \
while { [ -z \"$s\" ] || [ \"$s\" = '0 0' ]; } && [ $i -lt 100 ]; do \
sleep 0.05; i=$((i+1)); s=$(busybox stty size 2>/dev/null); done; echo \"$s\"; echo done";

/// Runs ctr with `args` on a new pty of `rows` x `cols` as its controlling
/// terminal and stdio; returns its exit code and all it wrote there.
fn ctr_on_pty(c: &Containerd, args: &[&str], rows: u16, cols: u16) -> (Option<i32>, String) {
    let p = vbuild_kernel::pty::open().unwrap();
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    vbuild_kernel::pty::set_window_size(p.master.as_fd(), &ws).unwrap();
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&p.slave)
        .unwrap();
    let mut cmd = Command::new(std::path::Path::new(CTRD_BIN).join("ctr"));
    cmd.arg("--address")
        .arg(c.path().join("c.sock"))
        .args(["--namespace", &c.ns])
        .args(args)
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave));
    // SAFETY: setsid and ioctl only, between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    drop(cmd);
    let mut master = std::fs::File::from(p.master);
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        // EIO once ctr (the last holder of the slave) is gone.
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&all).into_owned()
    });
    let code = child.wait().unwrap().code();
    (code, reader.join().unwrap())
}

#[test]
fn ctr_run_and_exec_with_a_terminal_and_task_metrics_through_the_vbuild_shim() {
    if !preconditions() {
        return;
    }
    let c = with_busybox("shim-tty");
    let fifo = c.path().join("fifo").display().to_string();
    let shown = format!("{SHOW}; exit 5");
    let (code, out) = ctr_on_pty(
        &c,
        &[
            "run",
            "-t",
            "--rm",
            "--runtime",
            SHIM,
            "--fifo-dir",
            &fifo,
            IMAGE,
            "t1",
            "sh",
            "-c",
            &shown,
        ],
        33,
        111,
    );
    assert_eq!(code, Some(5), "{out}\n{}", c.log());
    assert!(out.contains("/dev/pts/0\r"), "terminal: {out:?}");
    assert!(out.contains("33 111\r"), "window size: {out:?}");
    assert!(out.contains("done\r"), "{out:?}");
    assert_gone(&c, "t1");

    // A terminal for an exec, in a task without one.
    let o = run(&c, &["-d", IMAGE, "t2", "sleep", "600"]);
    assert!(o.status.success(), "{}\n{}", text(&o), c.log());
    let shown = format!("{SHOW}; exit 4");
    let (code, out) = ctr_on_pty(
        &c,
        &[
            "task",
            "exec",
            "-t",
            "--fifo-dir",
            &fifo,
            "--exec-id",
            "e1",
            "t2",
            "sh",
            "-c",
            &shown,
        ],
        20,
        70,
    );
    assert_eq!(code, Some(4), "{out}\n{}", c.log());
    assert!(out.contains("/dev/pts/"), "terminal: {out:?}");
    assert!(!out.contains("not a tty"), "terminal: {out:?}");
    assert!(out.contains("20 70\r"), "window size: {out:?}");

    // Metrics: the task's cgroup, as containerd decodes them.
    let m: serde_json::Value =
        serde_json::from_str(&c.ok(&["task", "metrics", "--format", "json", "t2"])).unwrap();
    let data = m.get("Data").or_else(|| m.get("data")).unwrap_or(&m);
    assert!(
        data["pids"]["current"].as_u64().unwrap_or(0) >= 1,
        "pids: {m}"
    );
    let memory = data["memory"]["usage"]["usage"]
        .as_u64()
        .or_else(|| data["memory"]["usage"].as_u64())
        .unwrap_or(0);
    assert!(memory > 0, "memory: {m}");

    c.ok(&["task", "kill", "--signal", "SIGKILL", "t2"]);
    c.wait_stopped("t2");
    c.ok(&["task", "rm", "t2"]);
    c.ok(&["container", "rm", "t2"]);
    assert_gone(&c, "t2");
    // The console sockets went with their terminals: none is left by a
    // shim that is gone.
    let left: Vec<String> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.strip_prefix("vbuild-shim-")
                .and_then(|r| r.split('-').next()?.parse::<i64>().ok())
                .is_some_and(|pid| !alive(pid))
        })
        .collect();
    assert!(left.is_empty(), "console sockets left: {left:?}");
}
