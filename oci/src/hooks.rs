//! Hooks that run inside the container's namespaces (`startContainer`):
//! a helper joins them (the mount namespace puts it at the container's
//! root, so the hook's path is resolved there) and forks the hook into the
//! pid namespace; the hook gets the state JSON on stdin and is killed
//! after its timeout. vbuild-runc is a child subreaper, so the hook comes
//! back to it to be waited for.

use crate::error::{sys, OciError};
use crate::exec::read_full;
use crate::spec::Hook;
use nix::errno::Errno;
use std::ffi::CString;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};
use vbuild_kernel::{ns, process};
use vbuild_runtime::launch;

fn cstring(s: &str, kind: &str) -> Result<CString, OciError> {
    CString::new(s).map_err(|_| OciError::Config(format!("hooks.{kind}: {s:?} holds a NUL byte")))
}

/// Runs `h` in the namespaces of process `pid` (the container's init).
pub fn run_in_container(
    kind: &str,
    h: &Hook,
    pid: i32,
    state: &serde_json::Value,
) -> Result<(), OciError> {
    let path = cstring(&h.path, kind)?;
    let args: Vec<CString> = if h.args.is_empty() {
        vec![path.clone()]
    } else {
        h.args
            .iter()
            .map(|a| cstring(a, kind))
            .collect::<Result<_, _>>()?
    };
    let env: Vec<CString> = h
        .env
        .iter()
        .map(|e| cstring(e, kind))
        .collect::<Result<_, _>>()?;
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|a| a.as_ptr()).collect();
    envp.push(std::ptr::null());
    let nsfds = ns::open_all(pid).map_err(|e| OciError::Sys {
        what: format!("hooks.{kind}: {} {}", e.op, e.what),
        errno: e.errno,
    })?;
    let userns = nsfds.iter().any(|(k, _)| *k == "user");

    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(sys("become a child subreaper")(Errno::last()));
    }
    let (in_r, in_w) = launch::pipe().map_err(sys("pipe"))?;
    let (rep_r, rep_w) = launch::pipe().map_err(sys("pipe"))?;
    let (pid_r, pid_w) = launch::pipe().map_err(sys("pipe"))?;
    let fds = [in_r.as_raw_fd(), rep_w.as_raw_fd(), pid_w.as_raw_fd()];
    // SAFETY: the helper only makes system calls on memory prepared above.
    let helper = match unsafe { process::fork_into(0) } {
        Ok(process::Forked::Child) => helper(&nsfds, userns, fds, &path, &argv, &envp),
        Ok(process::Forked::Parent(p)) => p,
        Err(e) => return Err(sys("fork")(e)),
    };
    drop((in_r, rep_w, pid_w));
    let mut b = [0u8; 4];
    let got = read_full(pid_r.as_raw_fd(), &mut b);
    let _ = process::wait_exit_code(helper);
    let mut rec = [0u8; 4];
    if read_full(rep_r.as_raw_fd(), &mut rec) == rec.len() {
        if got == b.len() {
            let _ = process::wait_exit_code(i32::from_le_bytes(b));
        }
        return Err(OciError::Sys {
            what: format!("hooks.{kind}: cannot run {} in the container", h.path),
            errno: Errno::from_raw(i32::from_le_bytes(rec)),
        });
    }
    if got != b.len() {
        return Err(OciError::Sys {
            what: format!("hooks.{kind}: {}: the helper ended early", h.path),
            errno: Errno::ECHILD,
        });
    }
    let hook = i32::from_le_bytes(b);
    // A hook that does not read its stdin must not block us.
    let _ = nix::fcntl::fcntl(
        in_w.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    );
    let _ = nix::unistd::write(&in_w, state.to_string().as_bytes());
    drop(in_w);
    wait_hook(kind, h, hook)
}

/// Waits for hook `h` (our child `pid`): `Ok` when it exits 0; an error
/// naming it when it fails, or when it outlives its timeout (then it is
/// killed). The host-side hooks and those in the container share it.
pub(crate) fn wait_hook(kind: &str, h: &Hook, pid: i32) -> Result<(), OciError> {
    use std::os::unix::process::ExitStatusExt;
    let until = h.timeout.map(|t| Instant::now() + Duration::from_secs(t));
    loop {
        let mut status = 0;
        // SAFETY: waitpid on our own child with a valid out pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            let status = std::process::ExitStatus::from_raw(status);
            if status.success() {
                return Ok(());
            }
            return Err(OciError::Config(format!(
                "hooks.{kind}: {} failed: {status}",
                h.path
            )));
        }
        if r < 0 && Errno::last() != Errno::EINTR {
            return Err(sys(format!("hooks.{kind}: wait for {}", h.path))(
                Errno::last(),
            ));
        }
        if until.is_some_and(|u| Instant::now() > u) {
            // SAFETY: kill and reap our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            return Err(OciError::Config(format!(
                "hooks.{kind}: {} did not finish within its timeout of {} s",
                h.path,
                h.timeout.unwrap_or(0)
            )));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn fail(report: RawFd, errno: Errno) -> ! {
    let b = (errno as i32).to_le_bytes();
    // SAFETY: write of a stack buffer.
    unsafe { libc::write(report, b.as_ptr().cast(), b.len()) };
    process::exit_now(125)
}

/// The helper: joins the namespaces, forks the hook (into the pid
/// namespace), tells its pid and exits. Allocation-free.
fn helper(
    nsfds: &[(&'static str, std::os::fd::OwnedFd)],
    userns: bool,
    [stdin, report, pid_w]: [RawFd; 3],
    path: &CString,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
) -> ! {
    vbuild_kernel::signal::reset_all();
    // Not dumpable inside the container until the hook's exec (see
    // exec.rs's helper).
    if let Err(e) = process::set_dumpable(false) {
        fail(report, e);
    }
    if let Err((_, e)) = ns::enter_all(nsfds) {
        fail(report, e);
    }
    if userns {
        if let Err(e) = process::set_ids(0, 0, false) {
            fail(report, e);
        }
    }
    // SAFETY: the child only makes system calls on memory prepared before.
    match unsafe { process::fork_into(0) } {
        Ok(process::Forked::Child) => {
            // SAFETY: descriptor juggling and execve on prepared memory.
            unsafe {
                libc::close(pid_w);
                if libc::dup2(stdin, 0) < 0 {
                    fail(report, Errno::last());
                }
            }
            if let Err(e) = process::cloexec_from(3) {
                fail(report, e);
            }
            // SAFETY: NUL-terminated path and NULL-terminated arrays.
            unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
            fail(report, Errno::last())
        }
        Ok(process::Forked::Parent(p)) => {
            let b = p.to_le_bytes();
            // SAFETY: write of a stack buffer.
            unsafe { libc::write(pid_w, b.as_ptr().cast(), b.len()) };
            process::exit_now(0)
        }
        Err(e) => fail(report, e),
    }
}
