//! The OCI `mounts`, devices, sysctls, masked and read-only paths turned
//! into a root-filesystem plan of the kernel crate (`vbuild_kernel::rootfs`),
//! which the container's first process executes before pivot_root. Pure
//! data: planning is unit-tested without root.

use crate::error::OciError;
use crate::spec::{Device, Mount};
use std::ffi::CString;
use std::path::Path;
use vbuild_kernel::rootfs::{Plan, Step};

/// What the plan needs besides the mounts.
pub struct PlanInput<'a> {
    /// The root directory on the host.
    pub root: &'a Path,
    /// The bundle (relative bind sources are resolved against it).
    pub bundle: &'a Path,
    /// Mount the root read-only.
    pub readonly_root: bool,
    /// The mounts, in order.
    pub mounts: &'a [Mount],
    /// Device nodes to add to the standard ones.
    pub devices: &'a [Device],
    /// `/proc/sys` parameters (dotted names).
    pub sysctl: &'a [(String, String)],
    /// Paths to hide.
    pub masked: &'a [String],
    /// Paths to make read-only.
    pub readonly: &'a [String],
    /// The container has its own user namespace (device nodes are bound
    /// from the host, cgroup2 arrives as a detached mount).
    pub userns: bool,
    /// The container has its own cgroup namespace.
    pub cgroupns: bool,
    /// MS_* propagation flags of the root mount.
    pub propagation: libc::c_ulong,
}

fn cs(p: &Path) -> CString {
    use std::os::unix::ffi::OsStrExt;
    CString::new(p.as_os_str().as_bytes()).expect("paths have no NUL bytes")
}

fn inside(root: &Path, guest: &str) -> CString {
    cs(&root.join(guest.trim_start_matches('/')))
}

fn mount(
    src: Option<CString>,
    dst: CString,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<String>,
) -> Step {
    Step::Mount {
        src,
        dst,
        fstype: fstype.map(|t| CString::new(t).expect("no NUL")),
        flags,
        data: data.map(|d| CString::new(d).expect("no NUL")),
        if_exists: false,
    }
}

/// Mount options split into MS_* flags, propagation flags and the data
/// string the filesystem gets.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// MS_* flags (bind, rdonly, nosuid...).
    pub flags: libc::c_ulong,
    /// MS_PRIVATE/SLAVE/SHARED/UNBINDABLE with MS_REC.
    pub propagation: libc::c_ulong,
    /// The rest, comma-separated.
    pub data: Vec<String>,
}

/// Parses fstab-style options.
pub fn options(opts: &[String]) -> Options {
    let mut o = Options::default();
    for opt in opts {
        let (set, clear): (libc::c_ulong, libc::c_ulong) = match opt.as_str() {
            "ro" => (libc::MS_RDONLY, 0),
            "rw" => (0, libc::MS_RDONLY),
            "nosuid" => (libc::MS_NOSUID, 0),
            "suid" => (0, libc::MS_NOSUID),
            "nodev" => (libc::MS_NODEV, 0),
            "dev" => (0, libc::MS_NODEV),
            "noexec" => (libc::MS_NOEXEC, 0),
            "exec" => (0, libc::MS_NOEXEC),
            "sync" => (libc::MS_SYNCHRONOUS, 0),
            "async" => (0, libc::MS_SYNCHRONOUS),
            "noatime" => (libc::MS_NOATIME, 0),
            "atime" => (0, libc::MS_NOATIME),
            "nodiratime" => (libc::MS_NODIRATIME, 0),
            "relatime" => (libc::MS_RELATIME, 0),
            "norelatime" => (0, libc::MS_RELATIME),
            "strictatime" => (libc::MS_STRICTATIME, 0),
            "bind" => (libc::MS_BIND, 0),
            "rbind" => (libc::MS_BIND | libc::MS_REC, 0),
            "private" | "rprivate" | "slave" | "rslave" | "shared" | "rshared" | "unbindable"
            | "runbindable" => {
                o.propagation = propagation(opt).unwrap_or(0);
                continue;
            }
            "defaults" => continue,
            _ => {
                o.data.push(opt.clone());
                continue;
            }
        };
        o.flags = (o.flags | set) & !clear;
    }
    o
}

/// MS_* flags for a propagation name (`rprivate`...).
pub fn propagation(name: &str) -> Option<libc::c_ulong> {
    let (rec, base) = match name.strip_prefix('r') {
        Some(b) if name != "rw" => (libc::MS_REC, b),
        _ => (0, name),
    };
    let flag = match base {
        "private" => libc::MS_PRIVATE,
        "slave" => libc::MS_SLAVE,
        "shared" => libc::MS_SHARED,
        "unbindable" => libc::MS_UNBINDABLE,
        _ => return None,
    };
    Some(rec | flag)
}

/// Steps that make every directory from the root down to `guest` (an
/// existing one is fine).
fn mkdirs(steps: &mut Vec<Step>, root: &Path, guest: &str, last_is_file: bool) {
    let parts: Vec<&str> = guest.split('/').filter(|c| !c.is_empty()).collect();
    let mut cur = String::new();
    for (i, c) in parts.iter().enumerate() {
        cur.push('/');
        cur.push_str(c);
        if i + 1 == parts.len() && last_is_file {
            steps.push(Step::Touch {
                path: inside(root, &cur),
            });
        } else {
            steps.push(Step::Mkdir {
                path: inside(root, &cur),
                mode: 0o755,
            });
        }
    }
}

/// A destination must be absolute and stay below the root.
fn check_dest(d: &str) -> Result<(), OciError> {
    if !d.starts_with('/') || d.split('/').any(|c| c == "..") {
        return Err(OciError::Config(format!(
            "mount destination {d:?} must be an absolute path without \"..\""
        )));
    }
    Ok(())
}

/// Refuses a destination whose existing path in the rootfs goes through a
/// symlink: the plan mounts and creates by path, and a rootfs that planted
/// `a -> /etc` must not make it create or mount outside the root.
fn check_no_symlinks(root: &Path, guest: &str) -> Result<(), OciError> {
    let mut cur = root.to_path_buf();
    for c in guest.split('/').filter(|c| !c.is_empty()) {
        cur.push(c);
        match std::fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(OciError::Unsupported(format!(
                    "{guest}: {} is a symlink in the rootfs; vbuild-runc does not mount through symlinks (use the target path)",
                    cur.display()
                )))
            }
            Ok(_) => {}
            Err(_) => return Ok(()),
        }
    }
    Ok(())
}

/// Whether `guest` is an empty directory in the rootfs, or not there
/// (resolved inside the root: the rootfs is the image's, not trusted).
fn dir_is_empty(root: &Path, guest: &str) -> Result<bool, OciError> {
    let r = vbuild_kernel::fsroot::Root::open(root)
        .map_err(|e| OciError::Config(format!("rootfs {}: {e}", root.display())))?;
    let fd = match r.open_at(
        Path::new(guest.trim_start_matches('/')),
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        0,
        false,
    ) {
        Ok(fd) => fd,
        Err(e) if e.source.raw_os_error() == Some(libc::ENOENT) => return Ok(true),
        Err(e) => return Err(OciError::Config(format!("mount {guest}: {e}"))),
    };
    let mut dir = nix::dir::Dir::from_fd(std::os::fd::IntoRawFd::into_raw_fd(fd))
        .map_err(|e| OciError::Config(format!("mount {guest}: reading the directory: {e}")))?;
    for entry in dir.iter() {
        let entry = entry
            .map_err(|e| OciError::Config(format!("mount {guest}: reading the directory: {e}")))?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The standard device nodes every container gets (runc's defaults).
const DEFAULT_DEVICES: [(&str, u32, u32); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// Builds the plan.
pub fn build(i: &PlanInput<'_>) -> Result<Plan, OciError> {
    let r = i.root;
    let mut s: Vec<Step> = Vec::new();
    // pivot_root refuses a shared root, and an unbindable one cannot be
    // bound onto itself: those two go on the container's / after the
    // pivot (as runc does); until then the tree is a slave or private.
    let before = if i.propagation & libc::MS_SHARED != 0 {
        libc::MS_REC | libc::MS_SLAVE
    } else if i.propagation & libc::MS_UNBINDABLE != 0 {
        libc::MS_REC | libc::MS_PRIVATE
    } else {
        i.propagation
    };
    s.push(mount(
        None,
        CString::new("/").expect("no NUL"),
        None,
        before,
        None,
    ));
    s.push(mount(
        Some(cs(r)),
        cs(r),
        None,
        libc::MS_BIND | libc::MS_REC,
        None,
    ));
    let mut dev_mounted = false;
    let mut pts_mounted = false;
    let mut late_ro: Vec<CString> = Vec::new();
    for m in i.mounts {
        check_dest(&m.destination)?;
        check_no_symlinks(r, &m.destination)?;
        if m.uid_mappings.is_some() || m.gid_mappings.is_some() {
            return Err(OciError::Unsupported(format!(
                "mount {}: uidMappings/gidMappings (id-mapped mounts) are not supported; remove them",
                m.destination
            )));
        }
        let dst = inside(r, &m.destination);
        let mut o = options(&m.options);
        let kind = m.kind.as_deref().unwrap_or("");
        if kind == "tmpfs" && o.data.iter().any(|d| d == "tmpcopyup") {
            // runc's extension: the tmpfs starts with what the directory
            // held. A directory with nothing in it needs no copy.
            o.data.retain(|d| d != "tmpcopyup");
            if !dir_is_empty(r, &m.destination)? {
                return Err(OciError::Unsupported(format!(
                    "mount {}: tmpcopyup over a directory that is not empty in the rootfs is not supported (empty it in the image, or drop tmpcopyup)",
                    m.destination
                )));
            }
        }
        let is_bind = kind == "bind" || o.flags & libc::MS_BIND != 0;
        if is_bind {
            let src = m.source.as_deref().ok_or_else(|| {
                OciError::Config(format!("bind mount {} has no source", m.destination))
            })?;
            let src = if src.starts_with('/') {
                std::path::PathBuf::from(src)
            } else {
                i.bundle.join(src)
            };
            let meta = std::fs::metadata(&src).map_err(|e| {
                OciError::Config(format!(
                    "bind mount {}: source {}: {e}",
                    m.destination,
                    src.display()
                ))
            })?;
            mkdirs(&mut s, r, &m.destination, !meta.is_dir());
            let base = libc::MS_BIND | (o.flags & libc::MS_REC);
            s.push(mount(Some(cs(&src)), dst.clone(), None, base, None));
            let rest = o.flags & !(libc::MS_BIND | libc::MS_REC);
            if rest != 0 {
                s.push(mount(
                    None,
                    dst.clone(),
                    None,
                    libc::MS_REMOUNT | libc::MS_BIND | rest,
                    None,
                ));
            }
        } else if kind == "cgroup" || kind == "cgroup2" {
            mkdirs(&mut s, r, &m.destination, false);
            let base = m.destination.trim_end_matches('/');
            let nested = i
                .mounts
                .iter()
                .any(|n| n.destination.starts_with(&format!("{base}/")));
            if kind == "cgroup" && nested && !i.cgroupns && !i.userns {
                // The client lays out v1 hierarchies below it (podman's
                // systemd mode on a v1 or hybrid host binds name=systemd
                // there): a tmpfs holds them, as in runc's v1 layout, made
                // read-only once they are mounted.
                s.push(mount(
                    Some(CString::new("tmpfs").expect("no NUL")),
                    dst.clone(),
                    Some("tmpfs"),
                    (o.flags & !libc::MS_RDONLY)
                        | libc::MS_NOSUID
                        | libc::MS_NODEV
                        | libc::MS_NOEXEC,
                    Some("mode=755".into()),
                ));
                if o.flags & libc::MS_RDONLY != 0 {
                    late_ro.push(dst.clone());
                }
                if o.propagation != 0 {
                    s.push(mount(None, dst, None, o.propagation, None));
                }
                continue;
            }
            if i.userns && i.cgroupns {
                s.push(Step::AttachCgroup2 { dst: dst.clone() });
            } else if i.userns {
                return Err(OciError::Unsupported(format!(
                    "mount {}: a cgroup mount in a user namespace needs a cgroup namespace too (add {{\"type\": \"cgroup\"}} to linux.namespaces)",
                    m.destination
                )));
            } else {
                s.push(mount(
                    Some(CString::new("cgroup2").expect("no NUL")),
                    dst.clone(),
                    Some("cgroup2"),
                    o.flags & !libc::MS_RDONLY,
                    None,
                ));
            }
            if o.flags & libc::MS_RDONLY != 0 {
                s.push(mount(
                    None,
                    dst.clone(),
                    None,
                    libc::MS_REMOUNT | libc::MS_BIND | o.flags,
                    None,
                ));
            }
        } else {
            if kind.is_empty() {
                return Err(OciError::Config(format!(
                    "mount {} has no type (use \"bind\" with a bind option, or a filesystem type)",
                    m.destination
                )));
            }
            mkdirs(&mut s, r, &m.destination, false);
            let src = m.source.clone().unwrap_or_else(|| kind.to_string());
            let data = (!o.data.is_empty()).then(|| o.data.join(","));
            s.push(mount(
                Some(
                    CString::new(src)
                        .map_err(|_| OciError::Config("NUL in mount source".into()))?,
                ),
                dst.clone(),
                Some(kind),
                o.flags,
                data,
            ));
            if m.destination == "/dev" {
                dev_mounted = true;
            }
            if m.destination == "/dev/pts" {
                pts_mounted = true;
            }
        }
        if o.propagation != 0 {
            s.push(mount(None, dst, None, o.propagation, None));
        }
    }
    for dst in late_ro {
        s.push(mount(
            None,
            dst,
            None,
            libc::MS_REMOUNT
                | libc::MS_BIND
                | libc::MS_RDONLY
                | libc::MS_NOSUID
                | libc::MS_NODEV
                | libc::MS_NOEXEC,
            None,
        ));
    }
    // The standard nodes and links (the config's /dev is usually an empty
    // tmpfs), then the config's own devices.
    if dev_mounted {
        for (name, major, minor) in DEFAULT_DEVICES {
            node(&mut s, r, &format!("/dev/{name}"), major, minor, i.userns);
        }
        for (name, target) in [
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
        ] {
            s.push(Step::Symlink {
                target: CString::new(target).expect("no NUL"),
                path: inside(r, &format!("/dev/{name}")),
            });
        }
        if pts_mounted {
            s.push(Step::Symlink {
                target: CString::new("pts/ptmx").expect("no NUL"),
                path: inside(r, "/dev/ptmx"),
            });
        }
    }
    for d in i.devices {
        check_dest(&d.path)?;
        check_no_symlinks(r, &d.path)?;
        let kind = match d.kind.as_str() {
            "c" | "u" => libc::S_IFCHR,
            "b" => libc::S_IFBLK,
            "p" => libc::S_IFIFO,
            k => {
                return Err(OciError::Config(format!(
                    "device {}: type {k:?} is not a device type (c, u, b or p)",
                    d.path
                )))
            }
        };
        if d.major < 0 || d.minor < 0 {
            return Err(OciError::Config(format!(
                "device {}: negative major/minor",
                d.path
            )));
        }
        if d.file_mode.is_some_and(|m| m & !0o7777 != 0) {
            return Err(OciError::Config(format!(
                "device {}: fileMode {:o} has bits beyond the permissions (0o7777)",
                d.path,
                d.file_mode.unwrap_or(0)
            )));
        }
        if let Some((dir, _)) = d.path.rsplit_once('/') {
            mkdirs(&mut s, r, dir, false);
        }
        if i.userns && kind != libc::S_IFIFO {
            // No mknod of devices in a user namespace: the host's node is
            // bound, so its mode and owner are what the config must ask.
            check_host_node(d, kind)?;
            node(&mut s, r, &d.path, d.major as u32, d.minor as u32, true);
        } else {
            s.push(Step::Node {
                path: inside(r, &d.path),
                mode: kind | d.file_mode.unwrap_or(0o666),
                major: d.major as u32,
                minor: d.minor as u32,
                owner: (d.uid.unwrap_or(0), d.gid.unwrap_or(0)),
            });
        }
    }
    for (k, v) in i.sysctl {
        if k.contains('/') || k.split('.').any(|c| c.is_empty() || c == "..") {
            return Err(OciError::Config(format!(
                "sysctl {k:?} is not a parameter name"
            )));
        }
        s.push(Step::Write {
            path: inside(r, &format!("/proc/sys/{}", k.replace('.', "/"))),
            data: v.clone().into_bytes(),
        });
    }
    for p in i.readonly {
        check_dest(p)?;
        check_no_symlinks(r, p)?;
        let dst = inside(r, p);
        s.push(Step::Mount {
            src: Some(dst.clone()),
            dst: dst.clone(),
            fstype: None,
            flags: libc::MS_BIND | libc::MS_REC,
            data: None,
            if_exists: true,
        });
        s.push(Step::Mount {
            src: None,
            dst,
            fstype: None,
            flags: libc::MS_REMOUNT
                | libc::MS_BIND
                | libc::MS_RDONLY
                | libc::MS_NOSUID
                | libc::MS_NODEV
                | libc::MS_NOEXEC,
            data: None,
            if_exists: true,
        });
    }
    for p in i.masked {
        check_dest(p)?;
        check_no_symlinks(r, p)?;
        s.push(Step::Mask { path: inside(r, p) });
    }
    if i.readonly_root {
        s.push(mount(
            None,
            cs(r),
            None,
            libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY,
            None,
        ));
    }
    s.push(Step::Pivot { root: cs(r) });
    if before != i.propagation {
        s.push(mount(
            None,
            CString::new("/").expect("no NUL"),
            None,
            i.propagation,
            None,
        ));
    }
    Ok(Plan { steps: s })
}

/// In a user namespace a device is the host's node of the same path,
/// bound: it must exist with the config's type and numbers, and a
/// fileMode, uid or gid the config sets must be what it already has
/// (uid/gid 0: the container's root, which owns nothing of the host's, is
/// accepted as "unchanged", as engines write it by default).
fn check_host_node(d: &Device, kind: libc::mode_t) -> Result<(), OciError> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let m = std::fs::metadata(&d.path).map_err(|e| {
        OciError::Unsupported(format!(
            "device {}: in a user namespace devices are bound from the host's node of the same path, and {} is not there ({e})",
            d.path, d.path
        ))
    })?;
    let ft = m.file_type();
    let same_type = if kind == libc::S_IFBLK {
        ft.is_block_device()
    } else {
        ft.is_char_device()
    };
    let rdev = m.rdev();
    if !same_type || libc::major(rdev) as i64 != d.major || libc::minor(rdev) as i64 != d.minor {
        return Err(OciError::Unsupported(format!(
            "device {}: the host's node there is not {} {}:{} (in a user namespace devices are bound from the host)",
            d.path, d.kind, d.major, d.minor
        )));
    }
    if d.file_mode.is_some_and(|f| f != m.mode() & 0o7777) {
        return Err(OciError::Unsupported(format!(
            "device {}: fileMode {:o} differs from the host node's {:o}, and in a user namespace the host's node is bound as it is",
            d.path,
            d.file_mode.unwrap_or(0),
            m.mode() & 0o7777
        )));
    }
    if d.uid.is_some_and(|u| u != 0) || d.gid.is_some_and(|g| g != 0) {
        return Err(OciError::Unsupported(format!(
            "device {}: uid/gid cannot be set in a user namespace (the host's node is bound as it is)",
            d.path
        )));
    }
    Ok(())
}

/// A character device: made with mknod, or bound from the host's node of
/// the same path in a user namespace (which may not mknod).
fn node(s: &mut Vec<Step>, r: &Path, path: &str, major: u32, minor: u32, userns: bool) {
    if userns {
        s.push(Step::Touch {
            path: inside(r, path),
        });
        // The host's node of the same name (the container's path).
        s.push(mount(
            Some(CString::new(path).expect("no NUL")),
            inside(r, path),
            None,
            libc::MS_BIND,
            None,
        ));
    } else {
        s.push(Step::Mknod {
            path: inside(r, path),
            major,
            minor,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_split_into_flags_propagation_and_data() {
        let o = options(&[
            "nosuid".into(),
            "noexec".into(),
            "mode=755".into(),
            "rprivate".into(),
            "ro".into(),
            "size=65536k".into(),
        ]);
        assert_eq!(o.flags, libc::MS_NOSUID | libc::MS_NOEXEC | libc::MS_RDONLY);
        assert_eq!(o.propagation, libc::MS_REC | libc::MS_PRIVATE);
        assert_eq!(o.data, vec!["mode=755", "size=65536k"]);
    }

    #[test]
    fn mount_points_through_rootfs_symlinks_are_refused() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("real")).unwrap();
        std::os::unix::fs::symlink("/etc", d.path().join("a")).unwrap();
        let e = check_no_symlinks(d.path(), "/a/x").unwrap_err().to_string();
        assert!(e.contains("is a symlink in the rootfs"), "{e}");
        assert!(check_no_symlinks(d.path(), "/real/missing/deeper").is_ok());
    }

    #[test]
    fn destinations_leaving_the_root_are_refused() {
        let m = Mount {
            destination: "/../etc".into(),
            kind: Some("tmpfs".into()),
            source: None,
            options: vec![],
            uid_mappings: None,
            gid_mappings: None,
        };
        let e = build(&PlanInput {
            root: Path::new("/r"),
            bundle: Path::new("/b"),
            readonly_root: false,
            mounts: &[m],
            devices: &[],
            sysctl: &[],
            masked: &[],
            readonly: &[],
            userns: false,
            cgroupns: false,
            propagation: libc::MS_REC | libc::MS_PRIVATE,
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("\"/../etc\""), "{e}");
    }

    #[test]
    fn tmpcopyup_over_an_empty_directory_is_a_plain_tmpfs_and_over_content_an_error() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("run")).unwrap();
        std::fs::create_dir_all(d.path().join("var/log")).unwrap();
        std::fs::write(d.path().join("var/log/x"), "kept").unwrap();
        let m = |dst: &str| Mount {
            destination: dst.into(),
            kind: Some("tmpfs".into()),
            source: Some("tmpfs".into()),
            options: vec!["rw".into(), "nosuid".into(), "tmpcopyup".into()],
            uid_mappings: None,
            gid_mappings: None,
        };
        let plan = |mounts: &[Mount]| {
            build(&PlanInput {
                root: d.path(),
                bundle: d.path(),
                readonly_root: false,
                mounts,
                devices: &[],
                sysctl: &[],
                masked: &[],
                readonly: &[],
                userns: false,
                cgroupns: false,
                propagation: libc::MS_REC | libc::MS_PRIVATE,
            })
        };
        // Empty and missing directories: a tmpfs without the option.
        let p = format!("{:?}", plan(&[m("/run"), m("/tmp")]).unwrap());
        assert!(p.contains("tmpfs"), "{p}");
        assert!(!p.contains("tmpcopyup"), "{p}");
        // Content that the copy would carry over: refused, naming the path.
        let e = plan(&[m("/var/log")]).unwrap_err().to_string();
        assert!(e.contains("/var/log") && e.contains("tmpcopyup"), "{e}");
    }

    #[test]
    fn a_cgroup_mount_with_hierarchies_bound_below_it_is_a_tmpfs_made_read_only_last() {
        let d = tempfile::tempdir().unwrap();
        let cg = Mount {
            destination: "/sys/fs/cgroup".into(),
            kind: Some("cgroup".into()),
            source: Some("cgroup".into()),
            options: vec!["nosuid".into(), "ro".into()],
            uid_mappings: None,
            gid_mappings: None,
        };
        let systemd = Mount {
            destination: "/sys/fs/cgroup/systemd".into(),
            kind: Some("bind".into()),
            source: Some(d.path().display().to_string()),
            options: vec!["bind".into()],
            uid_mappings: None,
            gid_mappings: None,
        };
        let plan = |mounts: &[Mount]| {
            let p = build(&PlanInput {
                root: d.path(),
                bundle: d.path(),
                readonly_root: false,
                mounts,
                devices: &[],
                sysctl: &[],
                masked: &[],
                readonly: &[],
                userns: false,
                cgroupns: false,
                propagation: libc::MS_REC | libc::MS_PRIVATE,
            })
            .unwrap();
            format!("{p:?}")
        };
        // Alone: the cgroup2 filesystem.
        let alone = plan(std::slice::from_ref(&cg));
        assert!(
            alone.contains("cgroup2") && !alone.contains("\"tmpfs\""),
            "{alone}"
        );
        // With podman's name=systemd bind below it: a tmpfs holding it,
        // remounted read-only after the bind.
        let nested = plan(&[cg.clone(), systemd]);
        assert!(!nested.contains("cgroup2"), "{nested}");
        let tmpfs = nested.find("\"tmpfs\"").expect("a tmpfs");
        let bind = nested.find("sys/fs/cgroup/systemd").expect("the bind");
        let ro = nested
            .rfind(&format!(
                "flags: {}",
                libc::MS_REMOUNT
                    | libc::MS_BIND
                    | libc::MS_RDONLY
                    | libc::MS_NOSUID
                    | libc::MS_NODEV
                    | libc::MS_NOEXEC
            ))
            .expect("the read-only remount");
        assert!(tmpfs < bind && bind < ro, "{nested}");
    }
}
