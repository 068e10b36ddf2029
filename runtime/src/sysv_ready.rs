//! When a sysvinit guest has booted. sysvinit speaks no notify protocol,
//! but it leaves two traces a host can check without trusting the guest:
//!
//! 1. As it enters a runlevel after boot (once `sysinit` and `bootwait`
//!    entries are done, so never during runlevel S), init writes a
//!    `RUN_LVL` record to `/run/utmp` (a file it creates itself at boot).
//! 2. It then starts that runlevel's inittab entries in file order and
//!    starts nothing after a `wait` entry (Debian's `l2:2:wait:/etc/init.d/rc 2`)
//!    until that entry ends: while it runs, it is a child of init.
//!
//! So a sysvinit guest is booted when the runlevel in utmp is the
//! inittab's `initdefault` and none of that runlevel's `wait` entries
//! still runs as a child of init: its rc scripts have finished, as they
//! have when a console getty appears. The guest's files are read through
//! the root-confined API at init's root (so its own /run tmpfs), as
//! regular files of bounded size; the guest can only delay its own
//! readiness (until the caller's timeout), never make the host read
//! anything outside it.

use std::path::Path;
use vbuild_kernel::fsroot::Root;

/// Largest /run/utmp read: 2730 records, far more than a guest has.
const UTMP_MAX: u64 = 1 << 20;
/// Largest /etc/inittab read.
const INITTAB_MAX: u64 = 64 << 10;
/// Largest command line of init's children compared.
const CMDLINE_MAX: u64 = 4096;
/// sizeof(struct utmp) of glibc on 64-bit Linux (x86-64, arm64: the
/// 32-bit time fields of `__WORDSIZE_TIME64_COMPAT32`).
const UTMP_RECORD: usize = 384;
/// `ut_type` of a runlevel change.
const RUN_LVL: i16 = 1;

/// The runlevel of the last `RUN_LVL` record in the text of a utmp file
/// (`ut_pid` holds the new level's character plus 256 times the old
/// one's); `None` when init has not entered one yet. A trailing partial
/// record is ignored.
pub(crate) fn utmp_runlevel(utmp: &[u8]) -> Option<u8> {
    utmp.chunks_exact(UTMP_RECORD)
        .rfind(|r| i16::from_ne_bytes([r[0], r[1]]) == RUN_LVL)
        .map(|r| i32::from_ne_bytes([r[4], r[5], r[6], r[7]]) as u8)
        .filter(|l| l.is_ascii_alphanumeric())
}

/// One inittab entry: `id:runlevels:action:process`.
struct Entry<'a> {
    levels: &'a str,
    action: &'a str,
    process: &'a str,
}

fn entries(inittab: &str) -> impl Iterator<Item = Entry<'_>> {
    inittab.lines().filter_map(|l| {
        let l = l.trim_start();
        if l.starts_with('#') {
            return None;
        }
        let mut f = l.splitn(4, ':');
        let (_id, levels, action, process) = (f.next()?, f.next()?, f.next()?, f.next()?);
        Some(Entry {
            levels,
            action,
            process: process.trim(),
        })
    })
}

/// The `initdefault` runlevel of an inittab.
pub(crate) fn initdefault(inittab: &str) -> Option<u8> {
    entries(inittab)
        .find(|e| e.action == "initdefault")
        .and_then(|e| e.levels.bytes().next())
}

/// The process fields of the `wait` entries init runs in `level`.
pub(crate) fn wait_entries(inittab: &str, level: u8) -> Vec<String> {
    entries(inittab)
        .filter(|e| e.action == "wait" && e.levels.as_bytes().contains(&level))
        .map(|e| e.process.trim_start_matches('+').to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// Whether a process with arguments `argv` runs inittab process `process`:
/// init execs its words directly (a script then runs under its interpreter,
/// which puts the words last) or, with shell metacharacters, through
/// `sh -c "exec PROCESS"`.
pub(crate) fn runs(argv: &[Vec<u8>], process: &str) -> bool {
    let words: Vec<&[u8]> = process.split_whitespace().map(str::as_bytes).collect();
    let tail = argv.len() >= words.len()
        && !words.is_empty()
        && argv[argv.len() - words.len()..]
            .iter()
            .zip(&words)
            .all(|(a, w)| a.as_slice() == *w);
    tail || argv
        .last()
        .is_some_and(|a| *a == format!("exec {process}").as_bytes())
}

/// What the readiness check saw: booted, or what it still waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Boot {
    /// In the default runlevel with its `wait` entries done.
    Ready,
    /// Not yet; says why (for the timeout message).
    Waiting(String),
}

/// Checks the sysvinit guest whose init is `init_pid` (see the module).
pub(crate) fn check(init_pid: i32) -> Boot {
    let root = match Root::open(Path::new(&format!("/proc/{init_pid}/root"))) {
        Ok(r) => r,
        Err(e) => return Boot::Waiting(format!("init's root: {}", e.source)),
    };
    let utmp = match root.read_regular(Path::new("run/utmp"), UTMP_MAX) {
        Ok(d) => d,
        Err(e) => return Boot::Waiting(format!("no usable /run/utmp yet ({})", e.source)),
    };
    let Some(level) = utmp_runlevel(&utmp) else {
        return Boot::Waiting("init has not entered a runlevel yet (still in runlevel S)".into());
    };
    let inittab = root
        .read_regular(Path::new("etc/inittab"), INITTAB_MAX)
        .map(|d| String::from_utf8_lossy(&d).into_owned())
        .unwrap_or_default();
    // Without an initdefault sysvinit asks on the console; any level then
    // counts but S, halt (0) and reboot (6).
    match initdefault(&inittab) {
        Some(want) if want != level => {
            return Boot::Waiting(format!(
                "init is in runlevel {}, its default is {}",
                level as char, want as char
            ))
        }
        None if matches!(level, b'S' | b's' | b'0' | b'6') => {
            return Boot::Waiting(format!("init is in runlevel {}", level as char))
        }
        _ => {}
    }
    let waits = wait_entries(&inittab, level);
    for child in vbuild_kernel::process::children(init_pid) {
        let Some(argv) = vbuild_kernel::process::cmdline(child, CMDLINE_MAX) else {
            continue;
        };
        if let Some(p) = waits.iter().find(|p| runs(&argv, p)) {
            return Boot::Waiting(format!(
                "runlevel {}'s `{p}` is still running",
                level as char
            ));
        }
    }
    Boot::Ready
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A utmp `RUN_LVL` record for `level` entered from `prev`, as sysvinit
    /// writes it.
    fn run_lvl_record(level: u8, prev: u8) -> Vec<u8> {
        let mut r = vec![0u8; UTMP_RECORD];
        r[0..2].copy_from_slice(&RUN_LVL.to_ne_bytes());
        r[4..8].copy_from_slice(&(level as i32 + 256 * prev as i32).to_ne_bytes());
        r[8] = b'~'; // ut_line
        r[40..42].copy_from_slice(b"~~"); // ut_id
        r[44..52].copy_from_slice(b"runlevel"); // ut_user
        r
    }

    fn record(ty: i16, pid: i32) -> Vec<u8> {
        let mut r = vec![0u8; UTMP_RECORD];
        r[0..2].copy_from_slice(&ty.to_ne_bytes());
        r[4..8].copy_from_slice(&pid.to_ne_bytes());
        r
    }

    #[test]
    fn the_last_runlevel_record_of_utmp_counts() {
        const BOOT_TIME: i16 = 2;
        const LOGIN_PROCESS: i16 = 6;
        assert_eq!(utmp_runlevel(&[]), None, "init has not written one yet");
        let mut u = record(BOOT_TIME, 0);
        assert_eq!(utmp_runlevel(&u), None, "a boot record is no runlevel");
        u.extend(run_lvl_record(b'2', b'S'));
        u.extend(record(LOGIN_PROCESS, 77));
        assert_eq!(utmp_runlevel(&u), Some(b'2'));
        u.extend(run_lvl_record(b'3', b'2'));
        assert_eq!(utmp_runlevel(&u), Some(b'3'), "the latest change");
        // A record cut short is ignored, not misread.
        let mut cut = record(BOOT_TIME, 0);
        cut.extend(&run_lvl_record(b'2', b'S')[..100]);
        assert_eq!(utmp_runlevel(&cut), None);
        // Garbage in ut_pid is no runlevel.
        assert_eq!(utmp_runlevel(&record(RUN_LVL, 0x0102)), None);
    }

    const INITTAB: &str = "# vbuild's\n\
id:2:initdefault:\n\
si::sysinit:/etc/init.d/rcS\n\
~:S:wait:/sbin/sulogin --force\n\
l2:2:wait:/etc/init.d/rc 2\n\
l3:3:wait:/etc/init.d/rc 3\n\
x2:23:wait:+/usr/local/bin/mark a:b\n\
co:2345:respawn:/sbin/getty --noclear 38400 console linux\n";

    #[test]
    fn inittab_gives_the_default_level_and_its_wait_entries() {
        assert_eq!(initdefault(INITTAB), Some(b'2'));
        assert_eq!(initdefault("si::sysinit:/etc/init.d/rcS\n"), None);
        assert_eq!(
            wait_entries(INITTAB, b'2'),
            ["/etc/init.d/rc 2", "/usr/local/bin/mark a:b"]
        );
        assert_eq!(wait_entries(INITTAB, b'S'), ["/sbin/sulogin --force"]);
    }

    #[test]
    fn a_wait_entry_is_recognised_however_init_ran_it() {
        let argv = |a: &[&str]| a.iter().map(|s| s.as_bytes().to_vec()).collect::<Vec<_>>();
        let p = "/etc/init.d/rc 2";
        assert!(
            runs(&argv(&["/bin/sh", "/etc/init.d/rc", "2"]), p),
            "a script"
        );
        assert!(runs(&argv(&["/etc/init.d/rc", "2"]), p), "a binary");
        assert!(runs(&argv(&["/bin/sh", "-c", "exec /etc/init.d/rc 2"]), p));
        assert!(!runs(&argv(&["/bin/sh", "/etc/init.d/rc", "3"]), p));
        assert!(!runs(&argv(&["/sbin/getty", "console"]), p));
        assert!(!runs(&argv(&[]), p));
        assert!(!runs(&argv(&["2"]), p), "fewer words than the entry");
    }
}
