//! A context's root filesystem: the mounts, device nodes and files a guest
//! sees, built as a *plan* (a list of steps, pure data) that a freshly
//! cloned child executes before it pivots into the new root.
//!
//! Planning allocates and can be unit-tested without root; executing makes
//! only system calls on memory prepared beforehand, so it is safe between
//! clone and exec even in a multi-threaded caller. A failed step is reported
//! by index and errno, and the parent turns it into a message that names
//! the path (`Plan::describe`).

use nix::errno::Errno;
use std::ffi::{CStr, CString};
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// A character device node a guest's /dev gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DevNode {
    /// Name below /dev.
    pub name: &'static str,
    /// Major number.
    pub major: u32,
    /// Minor number.
    pub minor: u32,
}

/// What the new root filesystem should contain, besides the rootfs itself.
#[derive(Debug, Clone)]
pub struct RootfsSpec<'a> {
    /// The guest's root directory on the host.
    pub root: &'a Path,
    /// A pty slave (host path) to bind at /dev/console.
    pub console: Option<&'a Path>,
    /// A unix socket (host path) to bind at /run/host/notify.
    pub notify_socket: Option<&'a Path>,
    /// Files written below /run/host (`container-manager`, `os-release`).
    pub host_files: &'a [(&'a str, &'a [u8])],
    /// Mount cgroup2 at /sys/fs/cgroup (the caller is in a cgroup namespace
    /// rooted at its own group, so that is all it sees).
    pub cgroup2: bool,
    /// The cgroup2 tree is a detached mount handed to `Plan::execute_with`
    /// (made by a host-side process inside the guest's cgroup namespace,
    /// which the guest's user namespace does not own and so cannot mount).
    pub cgroup2_detached: bool,
    /// The context has its own network namespace: /proc/sys/net stays
    /// writable so the guest can configure its own network.
    pub private_net: bool,
    /// Bind the host's device nodes instead of creating them (a user
    /// namespace may not mknod).
    pub bind_devices: bool,
    /// Device nodes for /dev.
    pub devices: &'a [DevNode],
    /// Paths hidden from the guest: files are covered by /dev/null,
    /// directories by an empty read-only tmpfs; missing paths are skipped.
    pub masked: &'a [&'a str],
    /// Paths made read-only (bound onto themselves); missing ones skipped.
    pub readonly: &'a [&'a str],
    /// The root is an id-mapped tree handed to `Plan::execute` (user
    /// namespaces) instead of a bind mount of `root`.
    pub idmapped_root: bool,
    /// Size limits of the tmpfs mounts at /dev/shm, /tmp and /run.
    pub tmpfs: TmpfsLimits,
}

/// The size (bytes) and inode count of each memory-backed mount of a
/// context, `(size, nr_inodes)`; the caller decides the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TmpfsLimits {
    /// /dev/shm.
    pub dev_shm: (u64, u64),
    /// /tmp.
    pub tmp: (u64, u64),
    /// /run.
    pub run: (u64, u64),
}

/// tmpfs mount options with a mode and a `(size, nr_inodes)` limit.
fn tmpfs_options(mode: &str, (size, inodes): (u64, u64)) -> String {
    format!("mode={mode},size={size},nr_inodes={inodes}")
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// mount(2); with `if_exists`, a missing target is skipped.
    Mount {
        /// Source (device, directory, or the fs name).
        src: Option<CString>,
        /// Target.
        dst: CString,
        /// Filesystem type, `None` for bind and remount.
        fstype: Option<CString>,
        /// MS_* flags.
        flags: libc::c_ulong,
        /// Options string.
        data: Option<CString>,
        /// Skip when the target does not exist.
        if_exists: bool,
    },
    /// mkdir(2); an existing directory is fine.
    Mkdir {
        /// The directory.
        path: CString,
        /// Its mode.
        mode: libc::mode_t,
    },
    /// mknod(2) of a character device.
    Mknod {
        /// The node.
        path: CString,
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
    /// mknod(2) of any node type with exact mode bits, then its owner
    /// (an OCI config's `linux.devices` entry).
    Node {
        /// The node.
        path: CString,
        /// S_IFCHR, S_IFBLK or S_IFIFO with the permission bits.
        mode: libc::mode_t,
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
        /// Owner uid and gid.
        owner: (u32, u32),
    },
    /// Creates an empty file to bind something on (an existing one is fine).
    Touch {
        /// The file.
        path: CString,
    },
    /// symlink(2).
    Symlink {
        /// What the link points to.
        target: CString,
        /// The link.
        path: CString,
    },
    /// Writes a small file.
    Write {
        /// The file.
        path: CString,
        /// Its contents.
        data: Vec<u8>,
    },
    /// Hides a path: /dev/null over a file, an empty read-only tmpfs over a
    /// directory, nothing if it does not exist.
    Mask {
        /// The path.
        path: CString,
    },
    /// Mounts the detached tree given to `execute` on `dst`.
    AttachTree {
        /// Where (the rootfs path).
        dst: CString,
    },
    /// Mounts the detached cgroup2 tree given to `execute_with` on `dst`.
    AttachCgroup2 {
        /// Where (the guest's /sys/fs/cgroup).
        dst: CString,
    },
    /// pivot_root into `root` and detach the old root.
    Pivot {
        /// The new root.
        root: CString,
    },
    /// chroot into `root` (the mounts of the old root stay reachable to
    /// whoever stays outside, such as a reaping PID 1).
    Chroot {
        /// The new root.
        root: CString,
    },
}

/// A plan whose process stays outside the new root: `setup` builds the
/// mounts (run by the namespace's PID 1), `enter` chroots (run by the
/// command's process after PID 1 forked it). A build's maintainer scripts
/// need this: with PID 1 outside, `/proc/1/root` differs from `/`, so they
/// see a chroot (`ischroot`, systemd's `running_in_chroot`) as under dpkg.
#[derive(Debug, Clone)]
pub struct ChrootPlan {
    /// Every step but the final one.
    pub setup: Plan,
    /// The chroot alone.
    pub enter: Plan,
}

/// A root-filesystem plan: executed in order by the new context's first
/// process.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// The steps.
    pub steps: Vec<Step>,
}

fn cs(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("paths have no NUL bytes")
}

fn cstr(s: &str) -> CString {
    CString::new(s).expect("no NUL bytes")
}

/// `root` joined with an absolute guest path.
fn inside(root: &Path, guest: &str) -> CString {
    cs(&root.join(guest.trim_start_matches('/')))
}

const NOSUID: libc::c_ulong = libc::MS_NOSUID;
const NODEV: libc::c_ulong = libc::MS_NODEV;
const NOEXEC: libc::c_ulong = libc::MS_NOEXEC;

impl Plan {
    fn mount(
        &mut self,
        src: Option<CString>,
        dst: CString,
        fstype: Option<&str>,
        flags: libc::c_ulong,
        data: Option<&str>,
    ) {
        self.steps.push(Step::Mount {
            src,
            dst,
            fstype: fstype.map(cstr),
            flags,
            data: data.map(cstr),
            if_exists: false,
        });
    }

    fn fs(&mut self, fstype: &str, dst: CString, flags: libc::c_ulong, data: Option<&str>) {
        self.mount(Some(cstr(fstype)), dst, Some(fstype), flags, data);
    }

    /// Binds `dst` onto itself and remounts it read-only (keeping `keep`
    /// flags, which a remount would otherwise clear).
    fn readonly(&mut self, dst: CString, keep: libc::c_ulong, if_exists: bool) {
        self.steps.push(Step::Mount {
            src: Some(dst.clone()),
            dst: dst.clone(),
            fstype: None,
            flags: libc::MS_BIND | libc::MS_REC,
            data: None,
            if_exists,
        });
        self.steps.push(Step::Mount {
            src: None,
            dst,
            fstype: None,
            flags: libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | keep,
            data: None,
            if_exists,
        });
    }

    fn mkdir(&mut self, path: CString, mode: libc::mode_t) {
        self.steps.push(Step::Mkdir { path, mode });
    }

    /// Builds the plan for `spec`.
    pub fn new(spec: &RootfsSpec<'_>) -> Plan {
        let r = spec.root;
        let mut p = Plan::default();
        // Nothing mounted from here on may propagate back to the host.
        p.mount(None, cstr("/"), None, libc::MS_REC | libc::MS_PRIVATE, None);
        // The rootfs becomes a mount point of its own (pivot_root needs one).
        if spec.idmapped_root {
            p.steps.push(Step::AttachTree { dst: cs(r) });
        } else {
            p.mount(Some(cs(r)), cs(r), None, libc::MS_BIND | libc::MS_REC, None);
        }
        for (d, mode) in [
            ("proc", 0o555),
            ("sys", 0o555),
            ("dev", 0o755),
            ("run", 0o755),
            ("tmp", 0o1777),
        ] {
            p.mkdir(inside(r, d), mode);
        }

        // /proc, with /proc/sys read-only (its net part writable in a
        // private network namespace) and the host-revealing files masked.
        p.fs("proc", inside(r, "/proc"), NOSUID | NODEV | NOEXEC, None);
        p.readonly(inside(r, "/proc/sys"), NOSUID | NODEV | NOEXEC, false);
        if spec.private_net {
            // Its own network namespace is the guest's to configure.
            let net = inside(r, "/proc/sys/net");
            p.mount(Some(net.clone()), net.clone(), None, libc::MS_BIND, None);
            let flags = libc::MS_REMOUNT | libc::MS_BIND | NOSUID | NODEV | NOEXEC;
            p.mount(None, net, None, flags, None);
        }
        for ro in spec.readonly.iter().filter(|x| x.starts_with("/proc/")) {
            p.readonly(inside(r, ro), NOSUID | NODEV | NOEXEC, true);
        }

        // /sys read-only, with the guest's own cgroup2 tree below it.
        p.fs("sysfs", inside(r, "/sys"), NOSUID | NODEV | NOEXEC, None);
        if spec.cgroup2 && spec.cgroup2_detached {
            p.steps.push(Step::AttachCgroup2 {
                dst: inside(r, "/sys/fs/cgroup"),
            });
        } else if spec.cgroup2 {
            p.fs(
                "cgroup2",
                inside(r, "/sys/fs/cgroup"),
                NOSUID | NODEV | NOEXEC,
                None,
            );
        }
        p.steps.push(Step::Mount {
            src: None,
            dst: inside(r, "/sys"),
            fstype: None,
            flags: libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | NOSUID | NODEV | NOEXEC,
            data: None,
            if_exists: false,
        });
        for ro in spec.readonly.iter().filter(|x| !x.starts_with("/proc/")) {
            p.readonly(inside(r, ro), NOSUID | NODEV | NOEXEC, true);
        }
        for m in spec.masked {
            p.steps.push(Step::Mask { path: inside(r, m) });
        }

        // /dev: a private tmpfs with the standard nodes only.
        p.fs(
            "tmpfs",
            inside(r, "/dev"),
            NOSUID | libc::MS_STRICTATIME,
            Some("mode=755,size=4m"),
        );
        for d in spec.devices {
            let path = inside(r, &format!("/dev/{}", d.name));
            if spec.bind_devices {
                p.steps.push(Step::Touch { path: path.clone() });
                p.mount(
                    Some(cstr(&format!("/dev/{}", d.name))),
                    path,
                    None,
                    libc::MS_BIND,
                    None,
                );
            } else {
                p.steps.push(Step::Mknod {
                    path,
                    major: d.major,
                    minor: d.minor,
                });
            }
        }
        p.mkdir(inside(r, "/dev/pts"), 0o755);
        p.fs(
            "devpts",
            inside(r, "/dev/pts"),
            NOSUID | NOEXEC,
            Some("newinstance,ptmxmode=0666,mode=620,gid=5"),
        );
        p.steps.push(Step::Symlink {
            target: cstr("pts/ptmx"),
            path: inside(r, "/dev/ptmx"),
        });
        p.mkdir(inside(r, "/dev/shm"), 0o1777);
        p.fs(
            "tmpfs",
            inside(r, "/dev/shm"),
            NOSUID | NODEV,
            Some(&tmpfs_options("1777", spec.tmpfs.dev_shm)),
        );
        p.mkdir(inside(r, "/dev/mqueue"), 0o755);
        p.fs(
            "mqueue",
            inside(r, "/dev/mqueue"),
            NOSUID | NODEV | NOEXEC,
            None,
        );
        for (name, target) in [
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
        ] {
            p.steps.push(Step::Symlink {
                target: cstr(target),
                path: inside(r, &format!("/dev/{name}")),
            });
        }
        if let Some(console) = spec.console {
            let dst = inside(r, "/dev/console");
            p.steps.push(Step::Touch { path: dst.clone() });
            p.mount(Some(cs(console)), dst, None, libc::MS_BIND, None);
        }

        // /run with the container manager's read-only /run/host.
        p.fs(
            "tmpfs",
            inside(r, "/run"),
            NOSUID | NODEV,
            Some(&tmpfs_options("755", spec.tmpfs.run)),
        );
        p.mkdir(inside(r, "/run/host"), 0o755);
        for (name, data) in spec.host_files {
            p.steps.push(Step::Write {
                path: inside(r, &format!("/run/host/{name}")),
                data: data.to_vec(),
            });
        }
        if let Some(sock) = spec.notify_socket {
            let dst = inside(r, "/run/host/notify");
            p.steps.push(Step::Touch { path: dst.clone() });
            p.mount(Some(cs(sock)), dst, None, libc::MS_BIND, None);
        }
        p.readonly(inside(r, "/run/host"), NOSUID | NODEV | NOEXEC, false);
        p.fs(
            "tmpfs",
            inside(r, "/tmp"),
            NOSUID | NODEV,
            Some(&tmpfs_options("1777", spec.tmpfs.tmp)),
        );

        p.steps.push(Step::Pivot { root: cs(r) });
        p
    }

    /// Builds the plan for `spec` with a chroot finish instead of
    /// pivot_root: the same mounts and nodes, split so the process that
    /// mounts can stay outside while the one it forks enters.
    pub fn chroot(spec: &RootfsSpec<'_>) -> ChrootPlan {
        let mut setup = Plan::new(spec);
        if matches!(setup.steps.last(), Some(Step::Pivot { .. })) {
            setup.steps.pop();
        }
        ChrootPlan {
            setup,
            enter: Plan {
                steps: vec![Step::Chroot {
                    root: cs(spec.root),
                }],
            },
        }
    }

    /// Runs every step in order; `tree` is the id-mapped root for
    /// `AttachTree`. Allocation-free; on failure returns the index of the
    /// failed step and the kernel's answer.
    pub fn execute(&self, tree: Option<RawFd>) -> Result<(), (usize, Errno)> {
        self.execute_with(tree, None)
    }

    /// `execute`, with the detached cgroup2 tree for `AttachCgroup2`.
    pub fn execute_with(
        &self,
        tree: Option<RawFd>,
        cgroup2: Option<RawFd>,
    ) -> Result<(), (usize, Errno)> {
        for (i, s) in self.steps.iter().enumerate() {
            run_step(s, tree, cgroup2).map_err(|e| (i, e))?;
        }
        Ok(())
    }

    /// A one-line description of step `i` (for error messages).
    pub fn describe(&self, i: usize) -> String {
        let l = |c: &CStr| c.to_string_lossy().into_owned();
        match self.steps.get(i) {
            None => format!("step {i}"),
            Some(Step::Mount {
                src,
                dst,
                fstype,
                flags,
                ..
            }) => {
                if flags & libc::MS_REMOUNT != 0 && flags & libc::MS_RDONLY != 0 {
                    format!("remount {} read-only", l(dst))
                } else if flags & libc::MS_REMOUNT != 0 {
                    format!("remount {} writable", l(dst))
                } else if flags & libc::MS_BIND != 0 {
                    let s = src.as_deref().map(l).unwrap_or_default();
                    format!("bind {s} on {}", l(dst))
                } else if let Some(t) = fstype {
                    format!("mount {} on {}", l(t), l(dst))
                } else {
                    format!("make {} private", l(dst))
                }
            }
            Some(Step::Mkdir { path, .. }) => format!("create directory {}", l(path)),
            Some(Step::Mknod { path, .. }) | Some(Step::Node { path, .. }) => {
                format!("create device node {}", l(path))
            }
            Some(Step::Touch { path }) => format!("create mount point {}", l(path)),
            Some(Step::Symlink { path, .. }) => format!("create symlink {}", l(path)),
            Some(Step::Write { path, .. }) => format!("write {}", l(path)),
            Some(Step::Mask { path }) => format!("mask {}", l(path)),
            Some(Step::AttachTree { dst }) => format!("mount the id-mapped root on {}", l(dst)),
            Some(Step::AttachCgroup2 { dst }) => {
                format!("mount the guest's cgroup2 tree on {}", l(dst))
            }
            Some(Step::Pivot { root }) => format!("pivot_root into {}", l(root)),
            Some(Step::Chroot { root }) => format!("chroot into {}", l(root)),
        }
    }
}

fn check(r: libc::c_int) -> Result<(), Errno> {
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

fn opt_ptr(c: &Option<CString>) -> *const libc::c_char {
    c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr())
}

fn run_step(s: &Step, tree: Option<RawFd>, cgroup2: Option<RawFd>) -> Result<(), Errno> {
    // SAFETY: every pointer is a NUL-terminated string or buffer owned by
    // the plan, alive for the call.
    unsafe {
        match s {
            Step::Mount {
                src,
                dst,
                fstype,
                flags,
                data,
                if_exists,
            } => {
                let r = libc::mount(
                    opt_ptr(src),
                    dst.as_ptr(),
                    opt_ptr(fstype),
                    *flags,
                    opt_ptr(data).cast(),
                );
                if r < 0 && *if_exists && Errno::last() == Errno::ENOENT {
                    return Ok(());
                }
                check(r)
            }
            Step::Mkdir { path, mode } => {
                if libc::mkdir(path.as_ptr(), *mode) < 0 && Errno::last() != Errno::EEXIST {
                    return Err(Errno::last());
                }
                Ok(())
            }
            Step::Mknod { path, major, minor } => {
                let dev = libc::makedev(*major, *minor);
                check(libc::mknod(path.as_ptr(), libc::S_IFCHR | 0o666, dev))
            }
            Step::Node {
                path,
                mode,
                major,
                minor,
                owner,
            } => {
                let dev = libc::makedev(*major, *minor);
                check(libc::mknod(path.as_ptr(), *mode, dev))?;
                // mknod honours the umask; the mode is the config's exactly.
                check(libc::chmod(path.as_ptr(), *mode & 0o7777))?;
                check(libc::lchown(path.as_ptr(), owner.0, owner.1))
            }
            Step::Touch { path } => {
                let fd = libc::open(
                    path.as_ptr(),
                    libc::O_WRONLY | libc::O_CREAT | libc::O_CLOEXEC | libc::O_NOFOLLOW,
                    0o600,
                );
                check(fd)?;
                libc::close(fd);
                Ok(())
            }
            Step::Symlink { target, path } => {
                if libc::symlink(target.as_ptr(), path.as_ptr()) < 0
                    && Errno::last() != Errno::EEXIST
                {
                    return Err(Errno::last());
                }
                Ok(())
            }
            Step::Write { path, data } => {
                let fd = libc::open(
                    path.as_ptr(),
                    libc::O_WRONLY
                        | libc::O_CREAT
                        | libc::O_TRUNC
                        | libc::O_CLOEXEC
                        | libc::O_NOFOLLOW,
                    0o644,
                );
                check(fd)?;
                let w = libc::write(fd, data.as_ptr().cast(), data.len());
                let e = Errno::last();
                libc::close(fd);
                if w != data.len() as isize {
                    return Err(e);
                }
                Ok(())
            }
            Step::Mask { path } => {
                let mut st: libc::stat = std::mem::zeroed();
                if libc::lstat(path.as_ptr(), &mut st) < 0 {
                    return match Errno::last() {
                        Errno::ENOENT => Ok(()),
                        e => Err(e),
                    };
                }
                if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
                    check(libc::mount(
                        c"tmpfs".as_ptr(),
                        path.as_ptr(),
                        c"tmpfs".as_ptr(),
                        libc::MS_RDONLY | NOSUID | NODEV | NOEXEC,
                        c"mode=555,size=0k,nr_inodes=1".as_ptr().cast(),
                    ))
                } else {
                    check(libc::mount(
                        c"/dev/null".as_ptr(),
                        path.as_ptr(),
                        std::ptr::null(),
                        libc::MS_BIND,
                        std::ptr::null(),
                    ))
                }
            }
            Step::AttachTree { dst } => crate::idmap::attach(tree.ok_or(Errno::EBADF)?, dst),
            Step::AttachCgroup2 { dst } => crate::idmap::attach(cgroup2.ok_or(Errno::EBADF)?, dst),
            Step::Pivot { root } => {
                check(libc::chdir(root.as_ptr()))?;
                let dot = c".".as_ptr();
                check(libc::syscall(libc::SYS_pivot_root, dot, dot) as libc::c_int)?;
                check(libc::umount2(dot, libc::MNT_DETACH))?;
                check(libc::chdir(c"/".as_ptr()))
            }
            Step::Chroot { root } => {
                check(libc::chdir(root.as_ptr()))?;
                check(libc::chroot(c".".as_ptr()))?;
                check(libc::chdir(c"/".as_ptr()))
            }
        }
    }
}

/// Why a program inside a rootfs cannot be run.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ExecCheck {
    /// The path does not resolve inside the rootfs.
    #[error("{path} does not exist in {root}")]
    Missing {
        /// The guest path.
        path: String,
        /// The rootfs.
        root: String,
    },
    /// It resolves, but not to an executable regular file.
    #[error("{path} in {root} is not an executable file (mode {mode:o})")]
    NotExecutable {
        /// The guest path.
        path: String,
        /// The rootfs.
        root: String,
        /// Its mode bits.
        mode: u32,
    },
    /// The lookup failed otherwise.
    #[error("{path} in {root}: {errno}")]
    Other {
        /// The guest path.
        path: String,
        /// The rootfs.
        root: String,
        /// The kernel's answer.
        errno: Errno,
    },
}

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

const RESOLVE_IN_ROOT: u64 = 0x10;

/// Checks that `path` (absolute, as the guest sees it) is an executable
/// regular file inside `root`, resolving symlinks as the guest would
/// (`/sbin/init -> /lib/systemd/systemd` stays inside the rootfs) with
/// openat2(RESOLVE_IN_ROOT).
pub fn check_executable(root: &Path, path: &str) -> Result<(), ExecCheck> {
    let rs = root.display().to_string();
    let other = |errno| ExecCheck::Other {
        path: path.to_string(),
        root: rs.clone(),
        errno,
    };
    let dir = std::fs::File::open(root)
        .map_err(|e| other(Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))))?;
    let rel = CString::new(path.trim_start_matches('/')).map_err(|_| other(Errno::EINVAL))?;
    let how = OpenHow {
        flags: (libc::O_PATH | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve: RESOLVE_IN_ROOT,
    };
    use std::os::fd::AsRawFd;
    // SAFETY: openat2 with a valid dirfd, path and how struct.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            rel.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd < 0 {
        return Err(match Errno::last() {
            Errno::ENOENT | Errno::ENOTDIR => ExecCheck::Missing {
                path: path.to_string(),
                root: rs,
            },
            e => other(e),
        });
    }
    // SAFETY: fd is ours.
    let f = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) };
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat of our descriptor into a stack struct.
    if unsafe { libc::fstat(f.as_raw_fd(), &mut st) } < 0 {
        return Err(other(Errno::last()));
    }
    if st.st_mode & libc::S_IFMT != libc::S_IFREG || st.st_mode & 0o111 == 0 {
        return Err(ExecCheck::NotExecutable {
            path: path.to_string(),
            root: rs,
            mode: st.st_mode & 0o7777,
        });
    }
    Ok(())
}

/// Whether openat2 (Linux 5.6+) is available, for `vbuild check`.
pub fn has_openat2() -> bool {
    !matches!(
        check_executable(Path::new("/"), "/"),
        Err(ExecCheck::Other {
            errno: Errno::ENOSYS,
            ..
        })
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(root: &Path) -> RootfsSpec<'_> {
        RootfsSpec {
            root,
            console: Some(Path::new("/dev/pts/9")),
            notify_socket: Some(Path::new("/run/vbuild/a/notify")),
            host_files: &[("container-manager", b"vbuild\n")],
            cgroup2: true,
            cgroup2_detached: false,
            private_net: true,
            bind_devices: false,
            devices: &[DevNode {
                name: "null",
                major: 1,
                minor: 3,
            }],
            masked: &["/proc/kcore"],
            readonly: &["/proc/sysrq-trigger"],
            idmapped_root: false,
            tmpfs: TmpfsLimits {
                dev_shm: (1 << 20, 256),
                tmp: (2 << 20, 512),
                run: (3 << 20, 768),
            },
        }
    }

    fn pos(p: &Plan, want: &str) -> usize {
        (0..p.steps.len())
            .find(|i| p.describe(*i) == want)
            .unwrap_or_else(|| {
                panic!(
                    "no step {want:?} in {:#?}",
                    (0..p.steps.len())
                        .map(|i| p.describe(i))
                        .collect::<Vec<_>>()
                )
            })
    }

    #[test]
    fn plan_orders_sys_readonly_after_cgroup_and_pivots_last() {
        let p = Plan::new(&spec(Path::new("/g")));
        assert_eq!(pos(&p, "make / private"), 0);
        let cg = pos(&p, "mount cgroup2 on /g/sys/fs/cgroup");
        let ro = pos(&p, "remount /g/sys read-only");
        assert!(pos(&p, "mount sysfs on /g/sys") < cg && cg < ro);
        // /proc/sys/net is made writable again below a read-only /proc/sys.
        let net = pos(&p, "bind /g/proc/sys/net on /g/proc/sys/net");
        assert!(pos(&p, "remount /g/proc/sys read-only") < net);
        assert!(net < pos(&p, "remount /g/proc/sys/net writable"));
        pos(&p, "mask /g/proc/kcore");
        pos(&p, "remount /g/proc/sysrq-trigger read-only");
        pos(&p, "bind /dev/pts/9 on /g/dev/console");
        pos(&p, "bind /run/vbuild/a/notify on /g/run/host/notify");
        pos(&p, "create device node /g/dev/null");
        assert!(
            pos(&p, "write /g/run/host/container-manager")
                < pos(&p, "remount /g/run/host read-only")
        );
        assert_eq!(pos(&p, "pivot_root into /g"), p.steps.len() - 1);
    }

    #[test]
    fn user_namespace_binds_device_nodes_and_host_net_keeps_proc_sys_whole() {
        let mut s = spec(Path::new("/g"));
        s.bind_devices = true;
        s.private_net = false;
        s.cgroup2 = false;
        s.idmapped_root = true;
        let p = Plan::new(&s);
        pos(&p, "bind /dev/null on /g/dev/null");
        assert_eq!(pos(&p, "mount the id-mapped root on /g"), 1);
        assert!((0..p.steps.len()).all(|i| !p.describe(i).contains("cgroup2")));
        assert!((0..p.steps.len()).all(|i| !p.describe(i).contains("/proc/sys/net")));
    }

    #[test]
    fn chroot_finish_keeps_every_mount_and_ends_in_a_separate_chroot() {
        let s = spec(Path::new("/g"));
        let pivot = Plan::new(&s);
        let c = Plan::chroot(&s);
        assert_eq!(c.setup.steps.len(), pivot.steps.len() - 1);
        assert_eq!(c.setup.steps[..], pivot.steps[..pivot.steps.len() - 1]);
        assert!((0..c.setup.steps.len()).all(|i| !c.setup.describe(i).contains("pivot_root")));
        assert_eq!(c.enter.steps.len(), 1);
        assert_eq!(c.enter.describe(0), "chroot into /g");
    }

    #[test]
    fn executable_check_resolves_symlinks_inside_the_root() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir_all(r.join("bin")).unwrap();
        std::fs::create_dir_all(r.join("sbin")).unwrap();
        std::fs::write(r.join("bin/real"), "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(r.join("bin/real"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        std::fs::write(r.join("bin/data"), "x").unwrap();
        // An absolute symlink must resolve inside the root, not on the host.
        std::os::unix::fs::symlink("/bin/real", r.join("sbin/init")).unwrap();
        std::os::unix::fs::symlink("/bin/sh-not-here", r.join("sbin/broken")).unwrap();
        assert_eq!(check_executable(r, "/sbin/init"), Ok(()));
        assert!(matches!(
            check_executable(r, "/sbin/broken"),
            Err(ExecCheck::Missing { .. })
        ));
        let e = check_executable(r, "/bin/data").unwrap_err();
        assert!(e.to_string().contains("not an executable file"), "{e}");
        assert!(matches!(
            check_executable(r, "/nope"),
            Err(ExecCheck::Missing { .. })
        ));
    }
}
