//! The build-time script context: runs one command (a maintainer script,
//! ldconfig) inside a rootfs being built, the way dpkg would inside the
//! finished guest, without touching the host.
//!
//! A child process unshares a mount and a PID namespace and forks PID 1 of
//! the new namespace, which makes every mount private, mounts /proc, a
//! read-only /sys, a tmpfs /dev with the standard nodes bound from the host
//! plus its own devpts, tmpfs /run and /tmp, then forks the command, which
//! chroots and execs with a clean environment while PID 1 stays outside
//! the chroot and reaps (so the command sees a chroot, as under dpkg).
//! When the command exits PID 1 exits, the kernel kills whatever was left
//! running (daemons included) and the namespace's mounts vanish with its
//! last process: nothing stays mounted on the host and no process survives.

use nix::mount::MsFlags;
use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use vbuild_kernel::fsroot::{Kind, Root};
use vbuild_kernel::mount;

/// The PATH scripts get (Debian's default for root).
pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Host device nodes bound into the context's /dev.
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

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
    env: Vec<(String, String)>,
}

impl ScriptContext {
    /// Prepares `rootfs`: creates the mount points (/proc, /sys, /dev,
    /// /run, /tmp) if missing and refuses ones that are symlinks, since a
    /// mount would follow them on the host.
    pub fn new(rootfs: &Path) -> Result<ScriptContext, ContextError> {
        let bad = |message: String| ContextError::Rootfs {
            root: rootfs.to_path_buf(),
            message,
        };
        let root = Root::open(rootfs).map_err(|e| bad(format!("{e} (create it first)")))?;
        for (d, mode) in [
            ("proc", 0o555),
            ("sys", 0o555),
            ("dev", 0o755),
            ("run", 0o755),
            ("tmp", 0o1777),
        ] {
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
        Ok(ScriptContext {
            root: rootfs.to_path_buf(),
            env: vec![
                ("PATH".into(), PATH.into()),
                ("HOME".into(), "/root".into()),
                ("LC_ALL".into(), "C.UTF-8".into()),
                ("DEBIAN_FRONTEND".into(), "noninteractive".into()),
                ("DEBCONF_NONINTERACTIVE_SEEN".into(), "true".into()),
            ],
        })
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
        let plan = Plan::new(&self.root, args, env);
        let (out_r, out_w) = pipe().map_err(|e| setup(format!("pipe: {e}")))?;
        let (err_r, err_w) = pipe().map_err(|e| setup(format!("pipe: {e}")))?;

        // SAFETY: the child only performs the prepared plan (syscalls on
        // pre-built paths) and then execs or _exits.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(setup(format!("fork: {}", std::io::Error::last_os_error())));
        }
        if pid == 0 {
            drop(out_r);
            drop(err_r);
            let code = plan.outer_child(out_w.as_raw_fd(), err_w.as_raw_fd());
            // SAFETY: leaving the forked child without running destructors.
            unsafe { libc::_exit(code) };
        }
        drop(out_w);
        drop(err_w);
        let mut setup_error = String::new();
        let _ = std::fs::File::from(err_r).read_to_string(&mut setup_error);
        let output = read_capped(std::fs::File::from(out_r));
        let mut status = 0;
        // SAFETY: waiting for our own child.
        while unsafe { libc::waitpid(pid, &mut status, 0) } < 0 {
            if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                break;
            }
        }
        let code = if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else if libc::WIFSIGNALED(status) {
            128 + libc::WTERMSIG(status)
        } else {
            255
        };
        if !setup_error.is_empty() {
            return Err(setup(setup_error.trim().to_string()));
        }
        Ok(RunOutput { code, output })
    }
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

/// Everything the children need, built before fork so they only make
/// system calls.
struct Plan {
    root: PathBuf,
    proc_: PathBuf,
    sys: PathBuf,
    dev: PathBuf,
    run: PathBuf,
    tmp: PathBuf,
    run_lock: CString,
    devpts: PathBuf,
    devpts_c: CString,
    shm: PathBuf,
    shm_c: CString,
    devices: Vec<(PathBuf, PathBuf, CString)>,
    links: Vec<(CString, CString)>,
    dev_null: CString,
    args: Vec<CString>,
    env: Vec<CString>,
}

fn pc(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("paths have no NUL")
}

impl Plan {
    fn new(root: &Path, args: Vec<CString>, env: Vec<CString>) -> Plan {
        let dev = root.join("dev");
        let devices = DEVICES
            .iter()
            .map(|d| {
                let dst = dev.join(d);
                let c = pc(&dst);
                (Path::new("/dev").join(d), dst, c)
            })
            .collect();
        let links = [
            ("ptmx", "pts/ptmx"),
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
        ]
        .iter()
        .map(|(name, target)| (pc(&dev.join(name)), CString::new(*target).expect("no NUL")))
        .collect();
        Plan {
            root: root.to_path_buf(),
            proc_: root.join("proc"),
            sys: root.join("sys"),
            run: root.join("run"),
            tmp: root.join("tmp"),
            run_lock: pc(&root.join("run/lock")),
            devpts: dev.join("pts"),
            devpts_c: pc(&dev.join("pts")),
            shm: dev.join("shm"),
            shm_c: pc(&dev.join("shm")),
            dev,
            devices,
            links,
            dev_null: CString::new("/dev/null").expect("no NUL"),
            args,
            env,
        }
    }

    /// The first child: new mount and PID namespaces, then fork PID 1 of
    /// the new one and pass the command's exit status on.
    fn outer_child(&self, out: i32, err: i32) -> i32 {
        // SAFETY: plain prctl; dies with the builder.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
        if let Err(e) = vbuild_kernel::ns::unshare(
            nix::sched::CloneFlags::CLONE_NEWNS | nix::sched::CloneFlags::CLONE_NEWPID,
        ) {
            report(err, &e.to_string());
            return 126;
        }
        // SAFETY: single-threaded now (we are a forked child).
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            report(err, &format!("fork: {}", std::io::Error::last_os_error()));
            return 126;
        }
        if pid == 0 {
            let e = self.inner_child(out, err);
            report(err, &e);
            // SAFETY: leaving the forked child.
            unsafe { libc::_exit(126) };
        }
        // SAFETY: closing our copies so the builder sees EOF when PID 1's
        // namespace is gone.
        unsafe {
            libc::close(out);
            libc::close(err);
        }
        reap_until(pid)
    }

    /// PID 1 of the new namespace: mounts, then forks the command (chroot,
    /// exec) and reaps until it ends. Returns only on failure, with the
    /// step that failed.
    fn inner_child(&self, out: i32, err: i32) -> String {
        // SAFETY: plain prctl; dies with its parent.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
        let nosde = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        let r = (|| -> Result<(), String> {
            mount::make_rprivate().map_err(|e| e.to_string())?;
            mount::mount_fs("proc", &self.proc_, nosde, None).map_err(|e| e.to_string())?;
            mount::mount_fs("sysfs", &self.sys, nosde | MsFlags::MS_RDONLY, None)
                .map_err(|e| e.to_string())?;
            mount::tmpfs(&self.dev, MsFlags::MS_NOSUID, "mode=755,size=4m")
                .map_err(|e| e.to_string())?;
            for (src, dst, c) in &self.devices {
                // SAFETY: NUL-terminated path.
                let fd = unsafe {
                    libc::open(
                        c.as_ptr(),
                        libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                        0o644,
                    )
                };
                if fd < 0 {
                    return Err(format!(
                        "create {}: {}",
                        dst.display(),
                        std::io::Error::last_os_error()
                    ));
                }
                // SAFETY: closing the descriptor just opened.
                unsafe { libc::close(fd) };
                mount::bind(src, dst, false).map_err(|e| e.to_string())?;
            }
            for (dir, c, mode) in [
                (&self.devpts, &self.devpts_c, 0o755),
                (&self.shm, &self.shm_c, 0o1777),
            ] {
                // SAFETY: NUL-terminated path.
                if unsafe { libc::mkdir(c.as_ptr(), mode) } < 0 {
                    return Err(format!(
                        "mkdir {}: {}",
                        dir.display(),
                        std::io::Error::last_os_error()
                    ));
                }
            }
            mount::mount_fs(
                "devpts",
                &self.devpts,
                MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
                Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
            )
            .map_err(|e| e.to_string())?;
            mount::tmpfs(&self.shm, nosde, "mode=1777").map_err(|e| e.to_string())?;
            for (path, target) in &self.links {
                // SAFETY: NUL-terminated strings.
                if unsafe { libc::symlink(target.as_ptr(), path.as_ptr()) } < 0 {
                    return Err(format!(
                        "symlink in /dev: {}",
                        std::io::Error::last_os_error()
                    ));
                }
            }
            mount::tmpfs(
                &self.run,
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                "mode=755",
            )
            .map_err(|e| e.to_string())?;
            // SAFETY: NUL-terminated path.
            unsafe { libc::mkdir(self.run_lock.as_ptr(), 0o1777) };
            mount::tmpfs(
                &self.tmp,
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                "mode=1777",
            )
            .map_err(|e| e.to_string())?;
            Ok(())
        })();
        if let Err(e) = r {
            return e;
        }
        // PID 1 stays outside the chroot and only reaps: scripts then see a
        // chroot as under dpkg (`ischroot`, systemd's `running_in_chroot`
        // compare / with /proc/1/root), so they skip `telinit u; sleep 1`
        // and service restarts, and orphans they leave get reaped.
        // SAFETY: single-threaded forked child.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return format!("fork: {}", std::io::Error::last_os_error());
        }
        if pid > 0 {
            // SAFETY: closing our copies; leaving with the command's status.
            unsafe {
                libc::close(out);
                libc::close(err);
                libc::_exit(reap_until(pid));
            }
        }
        // SAFETY: plain prctl; dies with the reaper.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
        if let Err(e) = mount::chroot(&self.root) {
            return e.to_string();
        }
        // SAFETY: plain syscalls on our own descriptors and prepared strings.
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
            let mut argv: Vec<*const libc::c_char> = self.args.iter().map(|a| a.as_ptr()).collect();
            argv.push(std::ptr::null());
            let mut envp: Vec<*const libc::c_char> = self.env.iter().map(|a| a.as_ptr()).collect();
            envp.push(std::ptr::null());
            // ETXTBSY: another thread of the builder forked while it had
            // the program open for writing (fds close only at that child's
            // exec); it clears within moments, so retry briefly.
            for _ in 0..100 {
                libc::execve(argv[0], argv.as_ptr(), envp.as_ptr());
                if std::io::Error::last_os_error().raw_os_error() != Some(libc::ETXTBSY) {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        format!(
            "exec {}: {}",
            self.args[0].to_string_lossy(),
            std::io::Error::last_os_error()
        )
    }
}

/// Reaps children (orphans included) until `pid` ends; returns its exit
/// code, or 128 + signal.
fn reap_until(pid: i32) -> i32 {
    loop {
        let mut status = 0;
        // SAFETY: waiting for any of our children.
        let got = unsafe { libc::waitpid(-1, &mut status, 0) };
        if got < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return 255;
        }
        if got != pid {
            continue;
        }
        return if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else if libc::WIFSIGNALED(status) {
            128 + libc::WTERMSIG(status)
        } else {
            255
        };
    }
}

/// Writes a setup failure to the error pipe for the builder to report.
fn report(fd: i32, msg: &str) {
    // SAFETY: writing a buffer to our pipe.
    unsafe { libc::write(fd, msg.as_ptr().cast(), msg.len()) };
}
