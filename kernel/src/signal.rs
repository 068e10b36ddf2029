//! Signals by number, including the real-time ones nix's `Signal` cannot
//! name (systemd halts on SIGRTMIN+3), and the blocking a process that
//! waits on a signalfd needs.

use nix::errno::Errno;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};

/// SIGRTMIN + `n` as the C library numbers it (glibc reserves the first two).
pub fn rtmin_plus(n: i32) -> i32 {
    libc::SIGRTMIN() + n
}

/// The conventional name of signal `sig` (`SIGTERM`, `SIGRTMIN+3`).
pub fn name(sig: i32) -> String {
    if sig >= libc::SIGRTMIN() && sig <= libc::SIGRTMAX() {
        return format!("SIGRTMIN+{}", sig - libc::SIGRTMIN());
    }
    Signal::try_from(sig)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| format!("signal {sig}"))
}

/// Sends signal number `sig` to `pid`.
pub fn send(pid: i32, sig: i32) -> Result<(), Errno> {
    // SAFETY: kill has no memory effects.
    let r = unsafe { libc::kill(pid, sig) };
    if r != 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// Blocks `signals` for the calling thread and returns the previous mask,
/// so they can be read from a signalfd instead of interrupting the process.
pub fn block(signals: &[Signal]) -> Result<SigSet, Errno> {
    let mut set = SigSet::empty();
    for s in signals {
        set.add(*s);
    }
    let mut old = SigSet::empty();
    nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old))?;
    Ok(old)
}

/// Empties the signal mask and resets every handler to its default: what a
/// new context's first process should start from. Allocation-free.
pub fn reset_all() {
    // SAFETY: sigset and sigaction calls on stack values.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        for sig in 1..libc::SIGRTMAX() {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                continue;
            }
            libc::signal(sig, libc::SIG_DFL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realtime_signals_are_named_relative_to_sigrtmin() {
        assert_eq!(name(rtmin_plus(3)), "SIGRTMIN+3");
        assert_eq!(name(libc::SIGTERM), "SIGTERM");
        assert_eq!(name(libc::SIGPWR), "SIGPWR");
    }
}
