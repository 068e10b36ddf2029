//! Processes: creating a child in new namespaces (clone3), watching
//! processes we did not create (pidfd), telling a live process from a
//! recycled pid (start time), and the few calls a freshly cloned child makes
//! before exec.

use nix::errno::Errno;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Which side of a `fork_into` call we are on.
#[derive(Debug)]
pub enum Forked {
    /// The parent, with the child's pid.
    Parent(i32),
    /// The new child.
    Child,
}

/// Forks into new namespaces `flags` (`CLONE_NEW*` bits, including
/// CLONE_NEWTIME which plain clone cannot take), like fork(2) otherwise:
/// the child continues on a copy of the caller's stack, and SIGCHLD tells
/// the parent when it ends.
///
/// # Safety
/// Like `fork` in a possibly multi-threaded program: until it execs or
/// exits, the child may only make system calls and touch memory prepared
/// before the call (no locks another thread might have held, no malloc
/// unless the C library made it fork-safe, and no C library id changes:
/// glibc's `setresuid` and friends broadcast to every thread the parent
/// had and wait on a lock one of them may have held, so use [`set_ids`]).
pub unsafe fn fork_into(flags: u64) -> Result<Forked, Errno> {
    // SAFETY: the caller upholds the rules above.
    unsafe { fork_into_cgroup(flags, None) }
}

/// `CLONE_INTO_CGROUP`: the child starts in the cgroup2 group given by a
/// directory descriptor.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Like [`fork_into`], and with `cgroup2` (a cgroup2 group's directory
/// descriptor) the child starts in that group: no move afterwards, which
/// would take the kernel's cgroup threadgroup lock and wait for an RCU
/// grace period (see `cgroup::Joiner`).
///
/// # Safety
/// As for [`fork_into`].
pub unsafe fn fork_into_cgroup(flags: u64, cgroup2: Option<RawFd>) -> Result<Forked, Errno> {
    let args = CloneArgs {
        flags: flags | cgroup2.map_or(0, |_| CLONE_INTO_CGROUP),
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup2.map_or(0, |fd| fd as u64),
        ..Default::default()
    };
    // SAFETY: clone3 with no stack behaves like fork; the caller upholds
    // the child-side rules above.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match r {
        -1 => Err(Errno::last()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid as i32)),
    }
}

/// Sets real, effective and saved uid and gid to `uid`/`gid` and, with
/// `drop_groups`, clears the supplementary groups: raw system calls that
/// change only the calling thread. glibc's wrappers instead make every
/// thread it believes we have change too, taking a lock and waiting on a
/// futex; in a child forked from a multi-threaded process those threads
/// are gone and the lock may be held forever (an `exec` helper hung there).
/// Allocation-free, so safe in a forked child.
pub fn set_ids(uid: u32, gid: u32, drop_groups: bool) -> Result<(), Errno> {
    // SAFETY: plain id syscalls on integers (and a null list of no groups).
    unsafe {
        if drop_groups
            && libc::syscall(
                libc::SYS_setgroups,
                0 as libc::c_long,
                std::ptr::null::<libc::gid_t>(),
            ) != 0
        {
            return Err(Errno::last());
        }
        if libc::syscall(libc::SYS_setresgid, gid, gid, gid) != 0
            || libc::syscall(libc::SYS_setresuid, uid, uid, uid) != 0
        {
            return Err(Errno::last());
        }
    }
    Ok(())
}

/// Sets the supplementary groups to `groups` with the raw system call
/// (glibc's wrapper signals every thread, unsafe after fork).
/// Allocation-free.
pub fn set_groups(groups: &[libc::gid_t]) -> Result<(), Errno> {
    // SAFETY: a pointer to `groups.len()` gids.
    let r = unsafe {
        libc::syscall(
            libc::SYS_setgroups,
            groups.len() as libc::c_long,
            groups.as_ptr(),
        )
    };
    if r != 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// Ends the calling process at once with `code`, without running Rust or C
/// exit handlers (the only safe way out of a forked child).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no shared state.
    unsafe { libc::_exit(code) }
}

/// A pidfd of `pid`: a handle that cannot be confused with a later
/// process reusing the number, and that becomes readable when it exits.
pub fn pidfd_open(pid: i32) -> Result<OwnedFd, Errno> {
    // SAFETY: plain syscall returning a new descriptor.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if r < 0 {
        return Err(Errno::last());
    }
    // SAFETY: r is a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) })
}

/// Waits until the process behind `pidfd` ends, at most `timeout` (`None`:
/// forever). Returns whether it ended. Works for processes that are not
/// our children.
pub fn wait_pidfd(pidfd: &OwnedFd, timeout: Option<Duration>) -> Result<bool, Errno> {
    use std::os::fd::AsRawFd;
    let ms: i32 = match timeout {
        None => -1,
        Some(d) => d.as_millis().min(i32::MAX as u128) as i32,
    };
    let mut p = libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut p, 1, ms) };
        if r < 0 {
            if Errno::last() == Errno::EINTR {
                continue;
            }
            return Err(Errno::last());
        }
        return Ok(r > 0);
    }
}

/// Sends `sig` to the process behind `pidfd` (never to a recycled pid).
pub fn pidfd_signal(pidfd: &OwnedFd, sig: i32) -> Result<(), Errno> {
    use std::os::fd::AsRawFd;
    // SAFETY: plain syscall.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// Fields of /proc/PID/stat we use: the state letter and the start time in
/// clock ticks since boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// `R`, `S`, `Z` (zombie), ...
    pub state: char,
    /// Start time in clock ticks after boot (field 22).
    pub start_ticks: u64,
    /// User plus system CPU time in clock ticks.
    pub cpu_ticks: u64,
}

/// Reads /proc/PID/stat; `None` when the process does not exist.
pub fn stat(pid: i32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// Parses a /proc/PID/stat line (the command name may contain spaces and
/// parentheses, so fields are counted after the last `)`).
pub fn parse_stat(text: &str) -> Option<ProcStat> {
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state).
    let state = f.first()?.chars().next()?;
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    let start_ticks = f.get(19)?.parse().ok()?;
    Some(ProcStat {
        state,
        start_ticks,
        cpu_ticks: utime + stime,
    })
}

/// True when `pid` runs (not a zombie) and started at `start_ticks`, i.e.
/// it is still the process we recorded and not a later one with its number.
pub fn is_alive(pid: i32, start_ticks: u64) -> bool {
    match stat(pid) {
        Some(s) => s.start_ticks == start_ticks && s.state != 'Z' && s.state != 'X',
        None => false,
    }
}

/// The pids of `pid`'s children (its main thread's, which for an init is
/// every child it forked), from /proc/PID/task/PID/children; empty when
/// the process is gone.
pub fn children(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// The argument vector of `pid` (/proc/PID/cmdline, at most `max` bytes
/// read: the process may be hostile and its arguments long); `None` when
/// the process is gone.
pub fn cmdline(pid: i32, max: u64) -> Option<Vec<Vec<u8>>> {
    use std::io::Read;
    let mut v = Vec::new();
    std::fs::File::open(format!("/proc/{pid}/cmdline"))
        .ok()?
        .take(max)
        .read_to_end(&mut v)
        .ok()?;
    if v.last() == Some(&0) {
        v.pop();
    }
    if v.is_empty() {
        return Some(Vec::new());
    }
    Some(v.split(|b| *b == 0).map(|a| a.to_vec()).collect())
}

/// Clock ticks per second, to turn /proc tick counts into time.
pub fn ticks_per_second() -> u64 {
    // SAFETY: sysconf has no memory effects.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// Marks every descriptor from `first` up close-on-exec, so exactly the
/// ones the new program should see (0, 1, 2) survive exec. Allocation-free.
pub fn cloexec_from(first: u32) -> Result<(), Errno> {
    const CLOSE_RANGE_CLOEXEC: u32 = 1 << 2;
    // SAFETY: plain syscall.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, CLOSE_RANGE_CLOEXEC) };
    if r < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// Closes every descriptor from 3 up except those in `keep` (negative
/// entries are ignored), so a child holds nothing of its parent's beyond
/// what it was given. Allocation-free.
pub fn close_all_except(keep: [RawFd; 3]) -> Result<(), Errno> {
    close_all_except_with(keep, -1)
}

/// `close_all_except` keeping one descriptor more (`-1`: none).
/// Allocation-free.
pub fn close_all_except_with(keep: [RawFd; 3], also: RawFd) -> Result<(), Errno> {
    close_from_except(3, [keep[0], keep[1], keep[2], also])
}

/// Closes every descriptor from `first` up except those in `keep`
/// (negative entries are ignored): what a child passes on below `first`
/// (stdio, descriptors handed down on purpose) stays. Allocation-free.
pub fn close_from_except(first: u32, keep: [RawFd; 4]) -> Result<(), Errno> {
    close_from_except_all(first, &keep)
}

/// [`close_from_except`] with any number of descriptors to keep (negative
/// entries are ignored). Allocation-free, so a forked child of a
/// multi-threaded parent can call it first thing: until it does, it holds
/// copies of whatever the parent's other threads had open at the fork
/// (another guest's state lock among them).
pub fn close_from_except_all(first: u32, keep: &[RawFd]) -> Result<(), Errno> {
    let mut from: u32 = first;
    loop {
        // The lowest kept descriptor at or above `from`.
        let next = keep
            .iter()
            .copied()
            .filter(|&fd| fd >= 0 && fd as u32 >= from)
            .min();
        match next {
            Some(fd) => {
                if fd as u32 > from {
                    close_range(from, fd as u32 - 1)?;
                }
                from = fd as u32 + 1;
            }
            None => return close_range(from, u32::MAX),
        }
    }
}

fn close_range(first: u32, last: u32) -> Result<(), Errno> {
    // SAFETY: plain syscall.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) };
    if r < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// Unmaps the pages of our read-only file mappings (program text, shared
/// libraries) that are still identical to the file, so that only what a
/// long-running, mostly idle process touches again counts against it: the
/// kernel maps whole 64 KiB neighbourhoods of a file on each fault, most of
/// which an event loop never uses. Pages we modified (relocations) are
/// anonymous and kept. Returns how many KiB were released.
pub fn release_clean_file_pages() -> u64 {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return 0;
    };
    let mut released = 0;
    let mut current: Option<(usize, usize, bool)> = None;
    let mut rss = 0u64;
    let mut flush = |cur: Option<(usize, usize, bool)>, rss: u64, anon_clean: bool| {
        if let Some((start, end, file_ro)) = cur {
            if file_ro && anon_clean && rss > 0 {
                // SAFETY: the range is one of our own read-only file
                // mappings with no private copies; discarding its pages only
                // means they are read from the page cache again when used.
                if unsafe {
                    libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED)
                } == 0
                {
                    released += rss;
                }
            }
        }
    };
    let mut anon_clean = true;
    for line in smaps.lines() {
        let mut f = line.split_whitespace();
        let first = f.next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-').filter(|_| !first.ends_with(':')) {
            flush(current.take(), rss, anon_clean);
            rss = 0;
            anon_clean = true;
            let perms = f.next().unwrap_or("");
            let path = f.nth(3).unwrap_or("");
            let file_ro = path.starts_with('/') && !perms.contains('w') && perms.ends_with('p');
            if let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) {
                current = Some((a, b, file_ro));
            }
        } else if first == "Rss:" {
            rss = f.next().and_then(|v| v.parse().ok()).unwrap_or(0);
        } else if first == "Anonymous:" {
            anon_clean = f.next() == Some("0");
        }
    }
    flush(current.take(), rss, anon_clean);
    released
}

/// Asks the kernel to send `sig` to the caller when its parent thread
/// ends, so a one-shot context dies with the command that waits for it.
pub fn die_with_parent(sig: i32) -> Result<(), Errno> {
    // SAFETY: prctl with integer arguments.
    let r = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0) };
    if r != 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// Sets whether the caller is dumpable. A non-dumpable process cannot be
/// ptraced, nor its /proc/PID/fd opened, by anyone lacking CAP_SYS_PTRACE
/// in the user namespace its memory belongs to (the host's, until it
/// execs), which is what a process entering a guest needs before the
/// guest can see it. Allocation-free.
pub fn set_dumpable(on: bool) -> Result<(), Errno> {
    // SAFETY: prctl with integer arguments.
    let r = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, on as libc::c_ulong, 0, 0, 0) };
    if r != 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// Sets `no_new_privs`: no later execve can gain privileges (set-id
/// bits, file capabilities). It cannot be unset. Allocation-free.
pub fn set_no_new_privs() -> Result<(), Errno> {
    // SAFETY: prctl with integer arguments.
    let r = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    if r != 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// The caller's parent pid (0 when the parent is outside the caller's PID
/// namespace). Allocation-free.
pub fn parent_pid() -> i32 {
    // SAFETY: getppid has no memory effects.
    unsafe { libc::getppid() }
}

/// A set of signal numbers for [`block_signals`] and [`wait_signal`],
/// built without allocation.
#[derive(Clone, Copy)]
pub struct SignalSet(libc::sigset_t);

impl SignalSet {
    /// The set of `signals`.
    pub fn of(signals: &[i32]) -> SignalSet {
        // SAFETY: sigset calls on a stack value.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for s in signals {
                libc::sigaddset(&mut set, *s);
            }
            SignalSet(set)
        }
    }
}

/// Blocks `set` for the calling thread (so its signals wait for
/// [`wait_signal`]); returns the previous mask. Allocation-free.
pub fn block_signals(set: &SignalSet) -> Result<SignalSet, Errno> {
    // SAFETY: sigset values on the stack.
    unsafe {
        let mut old: libc::sigset_t = std::mem::zeroed();
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set.0, &mut old) != 0 {
            return Err(Errno::last());
        }
        Ok(SignalSet(old))
    }
}

/// Replaces the calling thread's signal mask with `set`. Allocation-free.
pub fn set_signal_mask(set: &SignalSet) -> Result<(), Errno> {
    // SAFETY: a sigset on the stack.
    if unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &set.0, std::ptr::null_mut()) } != 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// Waits for one of the (blocked) signals in `set` and returns its number.
/// Allocation-free.
pub fn wait_signal(set: &SignalSet) -> Result<i32, Errno> {
    loop {
        // SAFETY: sigwaitinfo with a valid set and a null info pointer.
        let r = unsafe { libc::sigwaitinfo(&set.0, std::ptr::null_mut()) };
        if r >= 0 {
            return Ok(r);
        }
        if Errno::last() != Errno::EINTR {
            return Err(Errno::last());
        }
    }
}

/// Sends `sig` to process group `pgid`, or to the process `pgid` alone when
/// no such group exists (it left the group it led). Allocation-free.
pub fn signal_group(pgid: i32, sig: i32) -> Result<(), Errno> {
    // SAFETY: kill has no memory effects.
    if unsafe { libc::kill(-pgid, sig) } == 0 {
        return Ok(());
    }
    // SAFETY: as above.
    if unsafe { libc::kill(pgid, sig) } != 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// Makes the caller the leader of a new session with no controlling
/// terminal, so it neither receives a terminal's signals nor can reach the
/// terminal its parent had. Allocation-free.
pub fn new_session() -> Result<(), Errno> {
    // SAFETY: setsid has no memory effects.
    if unsafe { libc::setsid() } < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// Non-blocking wait for child `pid`: its shell-style exit code once it
/// ended, `None` while it runs. Allocation-free.
pub fn try_wait_exit_code(pid: i32) -> Result<Option<i32>, Errno> {
    let mut status = 0;
    loop {
        // SAFETY: status is a valid out pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r < 0 {
            if Errno::last() == Errno::EINTR {
                continue;
            }
            return Err(Errno::last());
        }
        return Ok((r == pid).then(|| exit_code(status)));
    }
}

/// Waits for child `pid` and returns its exit code, shell style: the
/// status for a normal exit, 128 + signal number for a killed one.
pub fn wait_exit_code(pid: i32) -> Result<i32, Errno> {
    let mut status = 0;
    loop {
        // SAFETY: status is a valid out pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r < 0 {
            if Errno::last() == Errno::EINTR {
                continue;
            }
            return Err(Errno::last());
        }
        return Ok(exit_code(status));
    }
}

/// As PID 1 of a namespace: reaps every child (orphans included) until
/// `pid` ends and returns its exit code (shell style, 255 when waiting
/// fails). Allocation-free.
pub fn exit_code_of_reaped(pid: i32) -> i32 {
    loop {
        let mut status = 0;
        // SAFETY: waiting for any of our children; status is a valid out pointer.
        let got = unsafe { libc::waitpid(-1, &mut status, 0) };
        if got < 0 {
            if Errno::last() == Errno::EINTR {
                continue;
            }
            return 255;
        }
        if got == pid {
            return exit_code(status);
        }
    }
}

/// Turns a wait status into a shell-style exit code.
pub fn exit_code(status: i32) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        255
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_and_their_command_lines_are_read_from_proc() {
        let mut sh = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & echo $!; wait"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(sh.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let sleep: i32 = line.trim().parse().unwrap();
        let pid = sh.id() as i32;
        assert_eq!(children(pid), vec![sleep]);
        // The child may not have exec'd sleep yet (it is still a copy of sh).
        let want = vec![b"sleep".to_vec(), b"30".to_vec()];
        for _ in 0..500 {
            if cmdline(sleep, 4096).as_ref() == Some(&want) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(cmdline(sleep, 4096).unwrap(), want);
        assert_eq!(cmdline(sleep, 3).unwrap(), vec![b"sle".to_vec()], "bounded");
        let _ = kill(sleep);
        sh.kill().unwrap();
        sh.wait().unwrap();
        assert_eq!(children(pid), Vec::<i32>::new(), "gone");
        assert!(cmdline(pid, 4096).is_none());
    }

    fn kill(pid: i32) -> i32 {
        // SAFETY: signalling a child of a process this test made.
        unsafe { libc::kill(pid, libc::SIGKILL) }
    }

    #[test]
    fn a_child_keeps_exactly_the_descriptors_it_names() {
        use std::os::fd::AsRawFd;
        let null = std::fs::File::open("/dev/null").unwrap();
        let fds: Vec<OwnedFd> = (0..7).map(|_| null.try_clone().unwrap().into()).collect();
        let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
        // Unsorted, with a negative entry and one below `first`.
        let keep = [raw[5], -1, raw[1], raw[3], 1];
        let open = |fd: RawFd| unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0;
        // SAFETY: the child only makes system calls and exits.
        let pid = match unsafe { fork_into(0) }.unwrap() {
            Forked::Child => {
                if close_from_except_all(3, &keep).is_err() {
                    exit_now(100);
                }
                let mut code = 0;
                for (i, fd) in raw.iter().enumerate() {
                    let kept = [1, 3, 5].contains(&i);
                    if open(*fd) != kept {
                        code |= 1 << i;
                    }
                }
                if !open(null.as_raw_fd()) && open(1) {
                    code |= 1 << 7;
                }
                exit_now(code)
            }
            Forked::Parent(pid) => pid,
        };
        let code = wait_exit_code(pid).unwrap();
        assert_eq!(
            code,
            1 << 7,
            "bit i set: descriptor i kept wrongly or closed"
        );
    }

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let line = "42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 12345 1000 10 18446744073709551615";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.state, 'S');
        assert_eq!(s.cpu_ticks, 10);
        assert_eq!(s.start_ticks, 12345);
    }

    #[test]
    fn our_own_process_is_alive_and_a_wrong_start_time_is_not() {
        let me = std::process::id() as i32;
        let s = stat(me).unwrap();
        assert!(is_alive(me, s.start_ticks));
        assert!(!is_alive(me, s.start_ticks + 1));
    }

    #[test]
    fn releasing_clean_file_pages_keeps_the_process_working() {
        // SAFETY: glibc's fork keeps malloc usable in the child.
        let pid = match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                let before = stat(std::process::id() as i32).is_some();
                release_clean_file_pages();
                // Code, libc and data still work after the pages went.
                let after =
                    stat(std::process::id() as i32).is_some() && format!("{}", 6 * 7) == "42";
                exit_now(if before && after { 0 } else { 1 })
            }
            nix::unistd::ForkResult::Parent { child } => child.as_raw(),
        };
        assert_eq!(wait_exit_code(pid).unwrap(), 0);
    }

    #[test]
    fn forked_child_exit_code_and_pidfd_readiness() {
        // SAFETY: the child only exits.
        let pid = match unsafe { fork_into(0) }.unwrap() {
            Forked::Child => exit_now(7),
            Forked::Parent(pid) => pid,
        };
        let fd = pidfd_open(pid).unwrap();
        assert!(wait_pidfd(&fd, None).unwrap());
        assert_eq!(wait_exit_code(pid).unwrap(), 7);
    }
}
