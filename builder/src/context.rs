//! The build-time script context: runs one command (a maintainer script,
//! ldconfig) inside a rootfs being built, the way a package manager would
//! inside the finished guest, without touching the host.
//!
//! It is built on the kernel crate's root-filesystem plan, the same one a
//! guest gets (its /proc, read-only /sys, /dev from the one device table,
//! devpts, /run, /tmp, masked host files), with a chroot finish instead of
//! pivot_root. A forked child unshares mount, PID, UTS, IPC and network
//! namespaces (scripts see only `lo` and the build's hostname, never the
//! host's interfaces) and forks PID 1 of the new PID namespace, which runs
//! the plan's mounts and forks the command; the command chroots and execs
//! with a clean environment while PID 1 stays outside the chroot and reaps
//! (so the command sees a chroot, `ischroot` true, as under dpkg). When the
//! command exits PID 1 exits, the kernel kills whatever was left running
//! (daemons included) and the namespaces' mounts vanish with their last
//! process: nothing stays mounted on the host and no process survives.
//!
//! Everything the children use is prepared before the first fork (strings,
//! pointer arrays, the plan), and errors travel back as fixed-size records,
//! so nothing is allocated between fork and exec in this multi-threaded
//! builder.

use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use vbuild_kernel::fsroot::{Kind, Root};
use vbuild_kernel::process::{exit_code_of_reaped, wait_exit_code};
use vbuild_kernel::rootfs::{ChrootPlan, Plan, RootfsSpec, Step};

/// The PATH scripts get (the FHS default for root).
pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The hostname of the context's own UTS namespace unless the build names one.
pub const DEFAULT_HOSTNAME: &str = "vbuild-build";

/// Most output kept per command; older output is dropped first.
const MAX_OUTPUT: usize = 4 << 20;

/// Lines of output quoted in a failure.
const TAIL_LINES: usize = 20;

/// A command in the context that could not run or failed.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// The rootfs is not usable as a context (missing, or a mount point is
    /// a symlink).
    #[error("rootfs {root}: {message}")]
    Rootfs {
        /// The rootfs.
        root: PathBuf,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// Setting up the context failed (a mount, chroot or exec).
    #[error("{what}: could not start: {message}")]
    Setup {
        /// What was being run (`postinst configure of base-files`).
        what: String,
        /// The step and the kernel's answer.
        message: String,
    },
    /// The command ran and failed.
    #[error("{what} failed ({status}); last output:\n{tail}")]
    Failed {
        /// What was being run (`postinst configure of base-files`).
        what: String,
        /// `exit status 1` or `killed by signal 9`.
        status: String,
        /// The last lines of its output.
        tail: String,
    },
}

/// What a command printed (stdout and stderr interleaved) and how it ended.
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// Exit code, or 128 + signal number.
    pub code: i32,
    /// Its output (the last 4 MiB at most).
    pub output: Vec<u8>,
}

impl RunOutput {
    /// The last `n` lines of the output, lossily decoded.
    pub fn tail(&self, n: usize) -> String {
        let text = String::from_utf8_lossy(&self.output);
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

/// A rootfs prepared to run build-time commands in.
#[derive(Debug)]
pub struct ScriptContext {
    root: PathBuf,
    hostname: String,
    env: Vec<(String, String)>,
}

/// The mount points the plan mounts on, with the modes they get when the
/// rootfs lacks them.
const MOUNT_POINTS: [(&str, u32); 5] = [
    ("proc", 0o555),
    ("sys", 0o555),
    ("dev", 0o755),
    ("run", 0o755),
    ("tmp", 0o1777),
];

/// Creates the mount points if missing and refuses ones that are not real
/// directories, since a mount would follow a symlink on the host.
fn check_mount_points(rootfs: &Path) -> Result<(), ContextError> {
    let bad = |message: String| ContextError::Rootfs {
        root: rootfs.to_path_buf(),
        message,
    };
    let root = Root::open(rootfs).map_err(|e| bad(format!("{e} (create it first)")))?;
    for (d, mode) in MOUNT_POINTS {
        match root.kind(Path::new(d)).map_err(|e| bad(e.to_string()))? {
            Some(Kind::Dir) => {}
            None => {
                root.mkdir_all(Path::new(d), 0o755)
                    .map_err(|e| bad(e.to_string()))?;
                let fd = root
                    .open_at(Path::new(d), libc::O_RDONLY | libc::O_DIRECTORY, 0, false)
                    .map_err(|e| bad(e.to_string()))?;
                vbuild_kernel::fsroot::fchmod(std::os::fd::AsFd::as_fd(&fd), mode)
                    .map_err(|e| bad(format!("chmod /{d}: {e}")))?;
            }
            Some(_) => {
                return Err(bad(format!(
                    "/{d} is not a directory; a mount point must be a real directory \
                     (remove /{d} from the rootfs)"
                )))
            }
        }
    }
    Ok(())
}

impl ScriptContext {
    /// Prepares `rootfs`: creates the mount points (/proc, /sys, /dev,
    /// /run, /tmp) if missing and refuses ones that are symlinks. Commands
    /// get PATH, HOME and LC_ALL; a distribution adds its own variables
    /// with [`ScriptContext::with_env`].
    pub fn new(rootfs: &Path) -> Result<ScriptContext, ContextError> {
        check_mount_points(rootfs)?;
        Ok(ScriptContext {
            root: rootfs.to_path_buf(),
            hostname: DEFAULT_HOSTNAME.to_string(),
            env: vec![
                ("PATH".into(), PATH.into()),
                ("HOME".into(), "/root".into()),
                ("LC_ALL".into(), "C.UTF-8".into()),
            ],
        })
    }

    /// Adds variables every command gets (a distribution's own, such as
    /// debconf's frontend for Debian).
    pub fn with_env(mut self, env: &[(&str, &str)]) -> ScriptContext {
        self.env
            .extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self
    }

    /// Sets the hostname commands see (the guest's name).
    pub fn with_hostname(mut self, hostname: &str) -> ScriptContext {
        self.hostname = hostname.to_string();
        self
    }

    /// The rootfs.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Runs `argv` (argv[0] an absolute path inside the rootfs) with the
    /// clean environment plus `extra_env`; `what` names it in errors
    /// (`postinst configure of base-files`). Fails unless it exits 0.
    pub fn run(
        &self,
        what: &str,
        argv: &[&str],
        extra_env: &[(&str, &str)],
    ) -> Result<RunOutput, ContextError> {
        let out = self.run_status(what, argv, extra_env)?;
        if out.code != 0 {
            let status = if out.code > 128 {
                format!("killed by signal {}", out.code - 128)
            } else {
                format!("exit status {}", out.code)
            };
            return Err(ContextError::Failed {
                what: what.to_string(),
                status,
                tail: out.tail(TAIL_LINES),
            });
        }
        Ok(out)
    }

    /// Like [`ScriptContext::run`] but returns the output whatever the exit
    /// status.
    pub fn run_status(
        &self,
        what: &str,
        argv: &[&str],
        extra_env: &[(&str, &str)],
    ) -> Result<RunOutput, ContextError> {
        let setup = |message: String| ContextError::Setup {
            what: what.to_string(),
            message,
        };
        if argv.is_empty() || !argv[0].starts_with('/') {
            return Err(setup(format!(
                "program {:?} must be an absolute path inside the rootfs",
                argv.first().unwrap_or(&"")
            )));
        }
        // A command run before may have replaced a mount point.
        check_mount_points(&self.root)?;
        let cs = |s: &str| CString::new(s).map_err(|_| setup(format!("NUL byte in {s:?}")));
        let args: Vec<CString> = argv.iter().map(|a| cs(a)).collect::<Result<_, _>>()?;
        let mut env: Vec<CString> = Vec::new();
        for (k, v) in self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(extra_env.iter().copied())
        {
            env.push(cs(&format!("{k}={v}"))?);
        }
        let child = Child::new(&self.root, &self.hostname, &args, &env);
        let (out_r, out_w) = pipe().map_err(|e| setup(format!("pipe: {e}")))?;
        let (err_r, err_w) = pipe().map_err(|e| setup(format!("pipe: {e}")))?;

        // SAFETY: the child only performs the prepared plan (system calls
        // on memory prepared above) and then execs or _exits.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(setup(format!("fork: {}", std::io::Error::last_os_error())));
        }
        if pid == 0 {
            child.outer(out_w.as_raw_fd(), err_w.as_raw_fd());
        }
        drop(out_w);
        drop(err_w);
        let (failure, output) = end_on_interrupt(pid, || {
            let mut failure = Vec::new();
            let _ = std::fs::File::from(err_r).read_to_end(&mut failure);
            (failure, read_capped(std::fs::File::from(out_r)))
        });
        let code = wait_exit_code(pid).unwrap_or(255);
        if let Some(f) = Failure::decode(&failure) {
            return Err(setup(child.describe(&f)));
        }
        Ok(RunOutput { code, output })
    }
}

/// Runs `collect` (which reads the context's pipes to their end) while a
/// watcher ends the context as soon as Ctrl-C or SIGTERM arrives: the
/// command runs in a session of its own, so the terminal's signal never
/// reaches it, and a build that is being thrown away must not wait for a
/// script to finish. Killing the first child takes PID 1 of the context
/// with it (its parent-death signal), and with it every process inside.
/// `pid` is not reaped before this returns, so the kill cannot reach a
/// reused pid.
fn end_on_interrupt<T>(pid: libc::pid_t, collect: impl FnOnce() -> T) -> T {
    use std::sync::atomic::{AtomicBool, Ordering};
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(Ordering::SeqCst) {
                if crate::guests::interrupted() {
                    // SAFETY: kill with integer arguments; `pid` is our
                    // unreaped child.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        });
        let out = collect();
        done.store(true, Ordering::SeqCst);
        out
    })
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds is a two-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fresh descriptors we own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn read_capped(mut f: std::fs::File) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.len() > MAX_OUTPUT {
                    out.drain(..out.len() - MAX_OUTPUT / 2);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    out
}

/// Where a child failed: a fixed-size record written to the error pipe
/// (nothing to format, so nothing to allocate).
#[derive(Debug, Clone, Copy)]
struct Failure {
    stage: u32,
    step: u32,
    errno: i32,
}

const STAGE_UNSHARE: u32 = 1;
const STAGE_FORK: u32 = 2;
const STAGE_SETUP: u32 = 3;
const STAGE_HOSTNAME: u32 = 4;
const STAGE_LOOPBACK: u32 = 5;
const STAGE_ENTER: u32 = 6;
const STAGE_EXEC: u32 = 7;

impl Failure {
    fn encode(&self) -> [u8; 12] {
        let mut b = [0u8; 12];
        b[..4].copy_from_slice(&self.stage.to_ne_bytes());
        b[4..8].copy_from_slice(&self.step.to_ne_bytes());
        b[8..].copy_from_slice(&self.errno.to_ne_bytes());
        b
    }

    fn decode(b: &[u8]) -> Option<Failure> {
        let b: &[u8; 12] = b.get(..12)?.try_into().ok()?;
        let word = |i: usize| [b[i], b[i + 1], b[i + 2], b[i + 3]];
        Some(Failure {
            stage: u32::from_ne_bytes(word(0)),
            step: u32::from_ne_bytes(word(4)),
            errno: i32::from_ne_bytes(word(8)),
        })
    }
}

/// Everything the children need, built before fork so they only make
/// system calls.
struct Child<'a> {
    plan: ChrootPlan,
    hostname: Vec<u8>,
    dev_null: CString,
    args: &'a [CString],
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
}

/// The flags of the context's namespaces: its own mounts and PIDs, and no
/// view of the host's hostname, System V IPC or network interfaces.
const NAMESPACES: libc::c_int = libc::CLONE_NEWNS
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWNET;

impl<'a> Child<'a> {
    fn new(root: &Path, hostname: &str, args: &'a [CString], env: &'a [CString]) -> Child<'a> {
        let masked: Vec<&str> = vbuild_runtime::security::MASKED.to_vec();
        let readonly: Vec<&str> = vbuild_runtime::security::READONLY.to_vec();
        let mut plan = Plan::chroot(&RootfsSpec {
            root,
            console: None,
            notify_socket: None,
            host_files: &[],
            cgroup2: false,
            cgroup2_detached: false,
            private_net: true,
            bind_devices: false,
            devices: &vbuild_kernel::devices::STANDARD,
            masked: &masked,
            readonly: &readonly,
            idmapped_root: false,
            // Scripts get the same bounded memory-backed mounts as a guest
            // without a memory limit.
            tmpfs: vbuild_runtime::tmpfs::TmpfsSizes::for_memory(None).limits(),
        });
        // Debian's /run/lock, which packages expect before their init made it.
        plan.setup.steps.push(Step::Mkdir {
            path: CString::new(root.join("run/lock").as_os_str().as_encoded_bytes())
                .expect("paths have no NUL bytes"),
            mode: 0o1777,
        });
        let ptrs = |v: &[CString]| -> Vec<*const libc::c_char> {
            v.iter()
                .map(|c| c.as_ptr())
                .chain(std::iter::once(std::ptr::null()))
                .collect()
        };
        Child {
            plan,
            hostname: hostname.as_bytes().to_vec(),
            dev_null: CString::new("/dev/null").expect("no NUL"),
            args,
            argv: ptrs(args),
            envp: ptrs(env),
        }
    }

    /// The message for a failure a child reported.
    fn describe(&self, f: &Failure) -> String {
        let errno = nix::errno::Errno::from_raw(f.errno);
        let what = match f.stage {
            STAGE_UNSHARE => "unshare mount, PID, UTS, IPC and network namespaces".to_string(),
            STAGE_FORK => "fork PID 1 of the context".to_string(),
            STAGE_SETUP => self.plan.setup.describe(f.step as usize),
            STAGE_HOSTNAME => "set the hostname".to_string(),
            STAGE_LOOPBACK => "bring up lo".to_string(),
            STAGE_ENTER => self.plan.enter.describe(f.step as usize),
            _ => format!("exec {}", self.args[0].to_string_lossy()),
        };
        format!("{what}: {}", errno.desc())
    }

    /// The first child: new namespaces, then fork PID 1 of the new PID
    /// namespace and pass the command's exit status on.
    fn outer(&self, out: i32, err: i32) -> ! {
        let _ = vbuild_kernel::process::die_with_parent(libc::SIGKILL);
        if let Err(e) = vbuild_kernel::ns::unshare_raw(NAMESPACES as u64) {
            fail(err, STAGE_UNSHARE, 0, e as i32);
        }
        // SAFETY: a forked child forking again; the grandchild only makes
        // system calls.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            fail(err, STAGE_FORK, 0, nix::errno::Errno::last() as i32);
        }
        if pid == 0 {
            self.pid1(out, err);
        }
        // SAFETY: closing our copies so the builder sees EOF when PID 1's
        // namespace is gone.
        unsafe {
            libc::close(out);
            libc::close(err);
        }
        vbuild_kernel::process::exit_now(wait_exit_code(pid).unwrap_or(255))
    }

    /// PID 1 of the new namespaces: the plan's mounts, hostname and `lo`,
    /// then forks the command and reaps until it ends.
    fn pid1(&self, out: i32, err: i32) -> ! {
        let _ = vbuild_kernel::process::die_with_parent(libc::SIGKILL);
        if let Err((i, e)) = self.plan.setup.execute(None) {
            fail(err, STAGE_SETUP, i as u32, e as i32);
        }
        if let Err(e) = vbuild_kernel::ns::set_hostname(&self.hostname) {
            fail(err, STAGE_HOSTNAME, 0, e as i32);
        }
        if let Err(e) = vbuild_kernel::net::bring_up_loopback() {
            fail(err, STAGE_LOOPBACK, 0, e as i32);
        }
        // PID 1 stays outside the chroot and only reaps: scripts then see a
        // chroot as under dpkg (`ischroot`, systemd's `running_in_chroot`
        // compare / with /proc/1/root), so they skip `telinit u; sleep 1`
        // and service restarts, and orphans they leave get reaped.
        // SAFETY: forking the command; it only makes system calls.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            fail(err, STAGE_FORK, 0, nix::errno::Errno::last() as i32);
        }
        if pid == 0 {
            self.command(out, err);
        }
        // SAFETY: closing our copies; leaving with the command's status.
        unsafe {
            libc::close(out);
            libc::close(err);
        }
        vbuild_kernel::process::exit_now(exit_code_of_reaped(pid))
    }

    /// The command: chroot, standard descriptors, exec.
    fn command(&self, out: i32, err: i32) -> ! {
        let _ = vbuild_kernel::process::die_with_parent(libc::SIGKILL);
        if let Err((i, e)) = self.plan.enter.execute(None) {
            fail(err, STAGE_ENTER, i as u32, e as i32);
        }
        // SAFETY: plain system calls on our own descriptors and strings
        // and pointer arrays prepared before fork.
        unsafe {
            libc::umask(0o022);
            libc::setsid();
            let null = libc::open(self.dev_null.as_ptr(), libc::O_RDONLY);
            if null >= 0 {
                libc::dup2(null, 0);
                libc::close(null);
            }
            libc::dup2(out, 1);
            libc::dup2(out, 2);
            // ETXTBSY: another thread of the builder forked while it had
            // the program open for writing (fds close only at that child's
            // exec); it clears within moments, so retry briefly.
            for _ in 0..100 {
                libc::execve(self.argv[0], self.argv.as_ptr(), self.envp.as_ptr());
                if nix::errno::Errno::last() != nix::errno::Errno::ETXTBSY {
                    break;
                }
                let pause = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 20_000_000,
                };
                libc::nanosleep(&pause, std::ptr::null_mut());
            }
        }
        fail(err, STAGE_EXEC, 0, nix::errno::Errno::last() as i32)
    }
}

/// Reports a failure to the builder and leaves the forked child.
fn fail(fd: i32, stage: u32, step: u32, errno: i32) -> ! {
    let b = Failure { stage, step, errno }.encode();
    // SAFETY: writing a stack buffer to our pipe.
    unsafe { libc::write(fd, b.as_ptr().cast(), b.len()) };
    vbuild_kernel::process::exit_now(126)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_record_survives_the_pipe() {
        let f = Failure {
            stage: STAGE_SETUP,
            step: 7,
            errno: libc::ENOENT,
        };
        let g = Failure::decode(&f.encode()).unwrap();
        assert_eq!((g.stage, g.step, g.errno), (STAGE_SETUP, 7, libc::ENOENT));
        assert!(Failure::decode(&[1, 2, 3]).is_none());
    }

    #[test]
    fn failures_name_the_plan_step_and_the_program() {
        let args = [CString::new("/bin/missing").unwrap()];
        let env = [CString::new("A=b").unwrap()];
        let c = Child::new(Path::new("/g"), "web01", &args, &env);
        let setup = |i| Failure {
            stage: STAGE_SETUP,
            step: i,
            errno: libc::EPERM,
        };
        let proc_step = (0..c.plan.setup.steps.len())
            .find(|i| c.plan.setup.describe(*i) == "mount proc on /g/proc")
            .unwrap();
        assert_eq!(
            c.describe(&setup(proc_step as u32)),
            "mount proc on /g/proc: Operation not permitted"
        );
        let exec = Failure {
            stage: STAGE_EXEC,
            step: 0,
            errno: libc::ENOENT,
        };
        assert_eq!(
            c.describe(&exec),
            "exec /bin/missing: No such file or directory"
        );
        assert_eq!(c.plan.enter.describe(0), "chroot into /g");
        assert_eq!(c.argv.len(), 2);
        assert!(c.argv[1].is_null() && c.envp[1].is_null());
    }
}
