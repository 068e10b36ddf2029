//! Which block device(s) hold a path, for per-device I/O throttling
//! (blkio.throttle.* on v1, io.max on v2 take whole disks, not partitions,
//! and not the anonymous device numbers of btrfs or overlayfs).

use super::{btrfs, DiskError};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The whole-disk `(major, minor)` numbers backing the filesystem that
/// holds `path`: the loop device of a loop image, the disk of a partition,
/// every device of a btrfs filesystem.
pub fn backing_devices(path: &Path) -> Result<Vec<(u32, u32)>, DiskError> {
    let dev = std::fs::metadata(path)
        .map_err(DiskError::io("stat", path))?
        .dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    if major != 0 {
        return Ok(vec![whole_disk(major, minor)]);
    }
    if super::fs_magic(path)? == btrfs::BTRFS_SUPER_MAGIC {
        let devices = PathBuf::from(format!("/sys/fs/btrfs/{}/devices", btrfs::fsid_of(path)?));
        let rd = std::fs::read_dir(&devices).map_err(DiskError::io("list", &devices))?;
        let mut out = Vec::new();
        for e in rd.flatten() {
            if let Some((ma, mi)) = read_dev(&e.path().join("dev")) {
                out.push(whole_disk(ma, mi));
            }
        }
        out.sort();
        out.dedup();
        if !out.is_empty() {
            return Ok(out);
        }
    }
    Err(DiskError::NoBlockDevice {
        path: path.to_path_buf(),
    })
}

/// The /dev node of a block device, by the name sysfs gives it
/// (`/dev/loop3`); falls back to /dev/block/M:m.
pub(crate) fn dev_node(major: u32, minor: u32) -> PathBuf {
    let uevent = format!("/sys/dev/block/{major}:{minor}/uevent");
    std::fs::read_to_string(uevent)
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("DEVNAME=")
                    .map(|n| PathBuf::from("/dev").join(n))
            })
        })
        .unwrap_or_else(|| PathBuf::from(format!("/dev/block/{major}:{minor}")))
}

/// `major:minor` from a sysfs `dev` file.
fn read_dev(p: &Path) -> Option<(u32, u32)> {
    parse_dev(&std::fs::read_to_string(p).ok()?)
}

pub(crate) fn parse_dev(s: &str) -> Option<(u32, u32)> {
    let (a, b) = s.trim().split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// A partition's parent disk; anything else is returned as is.
fn whole_disk(major: u32, minor: u32) -> (u32, u32) {
    let sys = PathBuf::from(format!("/sys/dev/block/{major}:{minor}"));
    if sys.join("partition").exists() {
        if let Ok(real) = std::fs::canonicalize(&sys) {
            if let Some(parent) = real.parent().and_then(|p| read_dev(&p.join("dev"))) {
                return parent;
            }
        }
    }
    (major, minor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_files_parse() {
        assert_eq!(parse_dev("7:3\n"), Some((7, 3)));
        assert_eq!(parse_dev("259:0"), Some((259, 0)));
        assert_eq!(parse_dev("nonsense"), None);
    }

    #[test]
    fn tmpfs_has_no_backing_device() {
        let e = backing_devices(Path::new("/dev/shm")).unwrap_err();
        assert!(
            matches!(&e, DiskError::NoBlockDevice { path } if path == Path::new("/dev/shm")),
            "{e}"
        );
    }
}
