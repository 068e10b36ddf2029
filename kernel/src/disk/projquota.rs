//! ext4/xfs project-quota backend: the directory gets a project id (its own
//! inode number, unique on the filesystem) with the inherit flag set through
//! FS_IOC_FSSETXATTR, so everything created below it is charged to that
//! project; a block hard limit on the project (quotactl_fd Q_SETQUOTA with
//! PRJQUOTA) makes writes past it fail with EDQUOT.
//!
//! Needs a kernel with quota support (CONFIG_QUOTA, and QFMT_V2 for ext4)
//! and the filesystem mounted with `prjquota`; `probe` says which is missing.

use super::ioctl::{self, ioc, READ, WRITE};
use super::{DiskError, DiskUsage};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

const EXT4_SUPER_MAGIC: i64 = 0xEF53;
const XFS_SUPER_MAGIC: i64 = 0x5846_5342;
const FS_IOC_FSGETXATTR: u64 = ioc(READ, b'X', 31, 28);
const FS_IOC_FSSETXATTR: u64 = ioc(WRITE, b'X', 32, 28);
const FS_XFLAG_PROJINHERIT: u32 = 0x200;
const PRJQUOTA: u32 = 2;
const Q_GETINFO: u32 = 0x80_0005;
const Q_GETQUOTA: u32 = 0x80_0007;
const Q_SETQUOTA: u32 = 0x80_0008;
const QIF_BLIMITS: u32 = 1;
/// Quota block limits are in units of 1 KiB.
const QIF_BLOCK: u64 = 1024;

/// struct fsxattr.
#[repr(C)]
#[derive(Default)]
pub(crate) struct FsXattr {
    xflags: u32,
    extsize: u32,
    nextents: u32,
    projid: u32,
    cowextsize: u32,
    pad: [u8; 8],
}

/// struct if_dqblk.
#[repr(C)]
#[derive(Default, Debug)]
pub(crate) struct IfDqblk {
    bhardlimit: u64,
    bsoftlimit: u64,
    curspace: u64,
    ihardlimit: u64,
    isoftlimit: u64,
    curinodes: u64,
    btime: u64,
    itime: u64,
    valid: u32,
}

/// struct if_dqinfo.
#[repr(C)]
#[derive(Default)]
struct IfDqinfo {
    bgrace: u64,
    igrace: u64,
    flags: u32,
    valid: u32,
}

/// QCMD(cmd, type) of quotactl(2).
pub(crate) const fn qcmd(cmd: u32, ty: u32) -> u32 {
    (cmd << 8) | (ty & 0xff)
}

/// quotactl_fd(2) (Linux 5.14+): quotactl on the filesystem holding `fd`.
fn quotactl_fd<T>(f: &File, cmd: u32, id: u32, arg: &mut T) -> std::io::Result<()> {
    // SAFETY: `arg` is the live struct the command reads or fills.
    let r = unsafe {
        libc::syscall(
            libc::SYS_quotactl_fd,
            f.as_raw_fd(),
            cmd as libc::c_uint,
            id as libc::c_uint,
            arg as *mut T as *mut libc::c_void,
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Ok when project quotas are enforced on the filesystem of `store`;
/// otherwise why not, with what to change.
pub(crate) fn probe(store: &Path, magic: i64) -> Result<(), String> {
    if magic != EXT4_SUPER_MAGIC && magic != XFS_SUPER_MAGIC {
        return Err(format!(
            "{}: project quota needs ext4 or xfs",
            store.display()
        ));
    }
    let f = File::open(store).map_err(|e| format!("{}: {e}", store.display()))?;
    let mut info = IfDqinfo::default();
    quotactl_fd(&f, qcmd(Q_GETINFO, PRJQUOTA), 0, &mut info).map_err(|e| {
        let why = match e.raw_os_error() {
            Some(libc::ENOSYS) => "the kernel has no quota support (CONFIG_QUOTA, CONFIG_QFMT_V2)",
            Some(libc::ESRCH) => {
                "project quota is off (xfs: mount with prjquota; ext4: mkfs -O project,quota and mount with prjquota, on a kernel with CONFIG_QUOTA and CONFIG_QFMT_V2)"
            }
            _ => "project quota is not available",
        };
        format!("{}: {why} ({e})", store.display())
    })
}

fn open_dir(p: &Path) -> Result<File, DiskError> {
    File::open(p).map_err(DiskError::io("open", p))
}

fn project_of(dir: &Path) -> Result<u32, DiskError> {
    let f = open_dir(dir)?;
    let mut x = FsXattr::default();
    ioctl::ptr(f.as_fd(), FS_IOC_FSGETXATTR, &mut x)
        .map_err(DiskError::io("read project id of", dir))?;
    Ok(x.projid)
}

/// True when `dir` carries a project id (set by `create`).
pub(crate) fn has_project(dir: &Path) -> bool {
    project_of(dir).is_ok_and(|p| p != 0)
}

/// Creates `dir`, tags it with a project id and sets the limit.
pub(crate) fn create(dir: &Path, size: u64) -> Result<(), DiskError> {
    std::fs::create_dir(dir).map_err(DiskError::io("create", dir))?;
    let ino = std::fs::metadata(dir)
        .map_err(DiskError::io("stat", dir))?
        .ino();
    let projid = u32::try_from(ino).map_err(|_| {
        DiskError::Unsupported(format!(
            "{}: inode number {ino} does not fit a project id",
            dir.display()
        ))
    })?;
    let f = open_dir(dir)?;
    let mut x = FsXattr::default();
    ioctl::ptr(f.as_fd(), FS_IOC_FSGETXATTR, &mut x)
        .map_err(DiskError::io("read attributes of", dir))?;
    x.projid = projid;
    x.xflags |= FS_XFLAG_PROJINHERIT;
    ioctl::ptr(f.as_fd(), FS_IOC_FSSETXATTR, &mut x)
        .map_err(DiskError::io("set project id on", dir))?;
    set_limit(dir, size)
}

/// The dqblk that sets a block hard limit of `size` bytes.
pub(crate) fn limit_block(size: u64) -> IfDqblk {
    IfDqblk {
        bhardlimit: size.div_ceil(QIF_BLOCK),
        valid: QIF_BLIMITS,
        ..Default::default()
    }
}

/// Sets the block hard limit of `dir`'s project.
pub(crate) fn set_limit(dir: &Path, size: u64) -> Result<(), DiskError> {
    let projid = project_of(dir)?;
    let f = open_dir(dir)?;
    let mut q = limit_block(size);
    quotactl_fd(&f, qcmd(Q_SETQUOTA, PRJQUOTA), projid, &mut q)
        .map_err(DiskError::io("set project quota on", dir))
}

/// Bytes charged to the project and its limit.
pub(crate) fn usage(dir: &Path) -> Result<DiskUsage, DiskError> {
    let projid = project_of(dir)?;
    let f = open_dir(dir)?;
    let mut q = IfDqblk::default();
    quotactl_fd(&f, qcmd(Q_GETQUOTA, PRJQUOTA), projid, &mut q)
        .map_err(DiskError::io("read project quota of", dir))?;
    Ok(DiskUsage {
        used: q.curspace,
        limit: q.bhardlimit * QIF_BLOCK,
    })
}

/// Lifts the limit and deletes the directory. Idempotent.
pub(crate) fn destroy(dir: &Path) -> Result<(), DiskError> {
    if !dir.exists() {
        return Ok(());
    }
    if let Ok(projid) = project_of(dir) {
        if projid != 0 {
            let mut q = limit_block(0);
            if let Ok(f) = open_dir(dir) {
                let _ = quotactl_fd(&f, qcmd(Q_SETQUOTA, PRJQUOTA), projid, &mut q);
            }
        }
    }
    std::fs::remove_dir_all(dir).map_err(DiskError::io("remove", dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_structs_and_commands_match_the_kernel() {
        assert_eq!(std::mem::size_of::<FsXattr>(), 28);
        assert_eq!(std::mem::size_of::<IfDqblk>(), 72);
        assert_eq!(FS_IOC_FSSETXATTR, 0x401C_5820);
        // QCMD(Q_SETQUOTA, PRJQUOTA) as quota.h computes it.
        assert_eq!(qcmd(Q_SETQUOTA, PRJQUOTA), 0x8000_0802);
    }

    #[test]
    fn limits_round_up_to_quota_blocks() {
        let q = limit_block(1536);
        assert_eq!(q.bhardlimit, 2);
        assert_eq!(q.valid, QIF_BLIMITS);
    }

    #[test]
    fn this_hosts_store_is_probed_with_a_reason() {
        // On tmpfs (or any non-ext4/xfs) the answer names the filesystem.
        let e = probe(Path::new("/dev/shm"), 0x0102_1994).unwrap_err();
        assert!(e.contains("ext4 or xfs"), "{e}");
    }
}
