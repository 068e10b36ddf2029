//! btrfs backend: the directory is a subvolume, its qgroup (0/<subvol id>)
//! carries a limit on referenced bytes, so writes past it fail with EDQUOT.
//! Quotas are switched on for the filesystem the first time (the kernel
//! answers at once when they already are). Usage comes from the qgroup
//! counters the kernel publishes in /sys/fs/btrfs/<fsid>/qgroups/.

use super::ioctl::{self, ioc, READ, WRITE};
use super::{DiskError, DiskUsage};
use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// statfs f_type of btrfs.
pub(crate) const BTRFS_SUPER_MAGIC: i64 = 0x9123_683E;
/// Inode number of every subvolume's root directory.
const FIRST_FREE_OBJECTID: u64 = 256;
const VOL_NAME_MAX: usize = 4087;

const IOC_SUBVOL_CREATE: u64 = ioc(WRITE, 0x94, 14, 4096);
const IOC_SNAP_DESTROY: u64 = ioc(WRITE, 0x94, 15, 4096);
const IOC_INO_LOOKUP: u64 = ioc(READ | WRITE, 0x94, 18, 4096);
const IOC_FS_INFO: u64 = ioc(READ, 0x94, 31, 1024);
const IOC_QUOTA_CTL: u64 = ioc(READ | WRITE, 0x94, 40, 16);
const IOC_QGROUP_CREATE: u64 = ioc(WRITE, 0x94, 42, 16);
const IOC_QGROUP_LIMIT: u64 = ioc(READ, 0x94, 43, 48);
const QUOTA_CTL_ENABLE: u64 = 1;
const QGROUP_LIMIT_MAX_RFER: u64 = 1;

/// struct btrfs_ioctl_vol_args.
#[repr(C)]
struct VolArgs {
    fd: i64,
    name: [u8; VOL_NAME_MAX + 1],
}

/// struct btrfs_ioctl_ino_lookup_args.
#[repr(C)]
struct InoLookupArgs {
    treeid: u64,
    objectid: u64,
    name: [u8; 4080],
}

/// struct btrfs_ioctl_fs_info_args (only the fields we read are named).
#[repr(C)]
struct FsInfoArgs {
    max_id: u64,
    num_devices: u64,
    fsid: [u8; 16],
    rest: [u8; 992],
}

/// struct btrfs_ioctl_quota_ctl_args.
#[repr(C)]
struct QuotaCtlArgs {
    cmd: u64,
    status: u64,
}

/// struct btrfs_ioctl_qgroup_create_args.
#[repr(C)]
struct QgroupCreateArgs {
    create: u64,
    qgroupid: u64,
}

/// struct btrfs_ioctl_qgroup_limit_args (qgroupid 0 = the fd's subvolume).
#[repr(C)]
struct QgroupLimitArgs {
    qgroupid: u64,
    flags: u64,
    max_rfer: u64,
    max_excl: u64,
    rsv_rfer: u64,
    rsv_excl: u64,
}

fn open_dir(p: &Path) -> Result<File, DiskError> {
    File::open(p).map_err(DiskError::io("open", p))
}

/// Splits `dir` into its parent (opened) and its last component.
fn parent_and_name(dir: &Path) -> Result<(File, VolArgs), DiskError> {
    let bad = || {
        DiskError::BadSize(format!(
            "{}: not a usable subvolume path (needs a parent directory and a name)",
            dir.display()
        ))
    };
    let parent = dir.parent().ok_or_else(bad)?;
    let name = dir.file_name().ok_or_else(bad)?.as_encoded_bytes();
    if name.len() > VOL_NAME_MAX {
        return Err(bad());
    }
    let mut args = VolArgs {
        fd: 0,
        name: [0; VOL_NAME_MAX + 1],
    };
    args.name[..name.len()].copy_from_slice(name);
    Ok((open_dir(parent)?, args))
}

/// Creates `dir` as a subvolume limited to `size` referenced bytes.
pub(crate) fn create(dir: &Path, size: u64) -> Result<(), DiskError> {
    let (parent, mut args) = parent_and_name(dir)?;
    let mut q = QuotaCtlArgs {
        cmd: QUOTA_CTL_ENABLE,
        status: 0,
    };
    ioctl::ptr(parent.as_fd(), IOC_QUOTA_CTL, &mut q).map_err(DiskError::io(
        "enable btrfs quotas on",
        dir.parent().unwrap(),
    ))?;
    ioctl::ptr(parent.as_fd(), IOC_SUBVOL_CREATE, &mut args)
        .map_err(DiskError::io("create subvolume", dir))?;
    set_limit(dir, size)
}

/// Sets the qgroup limit of the subvolume at `dir`.
pub(crate) fn set_limit(dir: &Path, size: u64) -> Result<(), DiskError> {
    let f = open_dir(dir)?;
    let mut lim = QgroupLimitArgs {
        qgroupid: 0,
        flags: QGROUP_LIMIT_MAX_RFER,
        max_rfer: size,
        max_excl: 0,
        rsv_rfer: 0,
        rsv_excl: 0,
    };
    ioctl::ptr(f.as_fd(), IOC_QGROUP_LIMIT, &mut lim)
        .map_err(DiskError::io("set qgroup limit on", dir))?;
    Ok(())
}

fn is_subvolume(dir: &Path) -> bool {
    let on_btrfs = super::fs_magic(dir).is_ok_and(|m| m == BTRFS_SUPER_MAGIC);
    on_btrfs
        && std::fs::metadata(dir)
            .map(|m| m.ino() == FIRST_FREE_OBJECTID)
            .unwrap_or(false)
}

/// True when `dir` is a btrfs subvolume whose qgroup has a limit.
pub(crate) fn is_limited_subvolume(dir: &Path) -> bool {
    is_subvolume(dir)
        && qgroup_dir(dir)
            .ok()
            .and_then(|q| read_num(&q.join("max_referenced")).ok())
            .is_some_and(|v| v > 0)
}

/// /sys/fs/btrfs/<fsid>/qgroups/0_<subvolume id> of `dir`.
fn qgroup_dir(dir: &Path) -> Result<PathBuf, DiskError> {
    let f = open_dir(dir)?;
    Ok(PathBuf::from(format!(
        "/sys/fs/btrfs/{}/qgroups/0_{}",
        fsid_of(dir)?,
        subvolume_id(&f, dir)?
    )))
}

fn subvolume_id(f: &File, dir: &Path) -> Result<u64, DiskError> {
    let mut l = InoLookupArgs {
        treeid: 0,
        objectid: FIRST_FREE_OBJECTID,
        name: [0; 4080],
    };
    ioctl::ptr(f.as_fd(), IOC_INO_LOOKUP, &mut l)
        .map_err(DiskError::io("look up subvolume", dir))?;
    Ok(l.treeid)
}

/// The filesystem id as sysfs spells it.
pub(crate) fn uuid(b: &[u8; 16]) -> String {
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The btrfs filesystem id of the filesystem holding `path`.
pub(crate) fn fsid_of(path: &Path) -> Result<String, DiskError> {
    let f = open_dir(path)?;
    let mut info = FsInfoArgs {
        max_id: 0,
        num_devices: 0,
        fsid: [0; 16],
        rest: [0; 992],
    };
    ioctl::ptr(f.as_fd(), IOC_FS_INFO, &mut info)
        .map_err(DiskError::io("read btrfs info of", path))?;
    Ok(uuid(&info.fsid))
}

fn read_num(p: &Path) -> Result<u64, DiskError> {
    let s = std::fs::read_to_string(p).map_err(DiskError::io("read", p))?;
    s.trim().parse().map_err(|_| {
        DiskError::io("read", p)(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not a number: {s:?}"),
        ))
    })
}

/// Referenced bytes and the limit of the subvolume's qgroup. The kernel
/// updates the counters at each transaction commit, so they lag writes by
/// up to the commit interval.
pub(crate) fn usage(dir: &Path) -> Result<DiskUsage, DiskError> {
    let q = qgroup_dir(dir)?;
    if !q.is_dir() {
        return Err(DiskError::Unsupported(format!(
            "{}: no qgroup counters in {} (kernel older than 5.9, or quotas off; run btrfs quota enable)",
            dir.display(),
            q.display()
        )));
    }
    // Commit first so a resize compares against what is really there.
    let f = open_dir(dir)?;
    nix::unistd::syncfs(std::os::fd::AsRawFd::as_raw_fd(&f))
        .map_err(|e| DiskError::io("sync", dir)(e.into()))?;
    Ok(DiskUsage {
        used: read_num(&q.join("referenced"))?,
        limit: read_num(&q.join("max_referenced"))?,
    })
}

/// Deletes the subvolume (with its content) and then its qgroup. Idempotent.
pub(crate) fn destroy(dir: &Path) -> Result<(), DiskError> {
    if !dir.exists() {
        return Ok(());
    }
    if !is_subvolume(dir) {
        return std::fs::remove_dir_all(dir).map_err(DiskError::io("remove", dir));
    }
    let id = subvolume_id(&open_dir(dir)?, dir)?;
    let (parent, mut args) = parent_and_name(dir)?;
    ioctl::ptr(parent.as_fd(), IOC_SNAP_DESTROY, &mut args)
        .map_err(DiskError::io("delete subvolume", dir))?;
    // The qgroup outlives the subvolume on older kernels; best effort, it
    // is refused while the cleaner still holds the subvolume's blocks.
    let mut q = QgroupCreateArgs {
        create: 0,
        qgroupid: id,
    };
    let _ = ioctl::ptr(parent.as_fd(), IOC_QGROUP_CREATE, &mut q);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structs_have_the_kernel_sizes() {
        assert_eq!(std::mem::size_of::<VolArgs>(), 4096);
        assert_eq!(std::mem::size_of::<InoLookupArgs>(), 4096);
        assert_eq!(std::mem::size_of::<FsInfoArgs>(), 1024);
        assert_eq!(std::mem::size_of::<QgroupLimitArgs>(), 48);
        assert_eq!(IOC_SUBVOL_CREATE, 0x5000_940E);
        assert_eq!(IOC_QGROUP_LIMIT, 0x8030_942B);
    }

    #[test]
    fn fsid_is_spelled_like_sysfs() {
        let b: [u8; 16] = core::array::from_fn(|i| (i * 17) as u8);
        assert_eq!(uuid(&b), "00112233-4455-6677-8899-aabbccddeeff");
    }
}
