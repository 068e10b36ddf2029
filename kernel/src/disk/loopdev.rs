//! Loop-image backend: a sparse ext4 image file per directory, attached to
//! a free loop device (LOOP_CTL_GET_FREE + LOOP_CONFIGURE with AUTOCLEAR,
//! so unmounting frees the device) and mounted on the directory. The size
//! of the image is the limit; writing past it fails with ENOSPC.
//!
//! Formatting and offline growing are the steps done by host tools:
//! `mkfs.ext4` and `resize2fs` from e2fsprogs (an ext4 formatter is out of
//! scope here). Attaching, mounting, growing a mounted image
//! (LOOP_SET_CAPACITY + the kernel's online EXT4_IOC_RESIZE_FS, which needs
//! CAP_SYS_RESOURCE) and unmounting are system calls.

use super::ioctl::{self, ioc, WRITE};
use super::{DiskError, DiskUsage};
use std::fs::{File, OpenOptions};
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

const LOOP_CTL_GET_FREE: u64 = 0x4C82;
const LOOP_SET_FD: u64 = 0x4C00;
const LOOP_SET_STATUS64: u64 = 0x4C04;
const LOOP_SET_CAPACITY: u64 = 0x4C07;
const LOOP_CONFIGURE: u64 = 0x4C0A;
const LO_FLAGS_AUTOCLEAR: u32 = 4;
const LO_NAME_SIZE: usize = 64;
/// EXT4_IOC_RESIZE_FS: grow a mounted ext4 to this many blocks.
const EXT4_IOC_RESIZE_FS: u64 = ioc(WRITE, b'f', 16, 8);
/// The smallest image mkfs.ext4 makes a usable filesystem of.
const MIN_SIZE: u64 = 8 << 20;
/// capability(7) number of CAP_SYS_RESOURCE.
const CAP_SYS_RESOURCE: u32 = 24;

/// struct loop_info64.
#[repr(C)]
#[derive(Clone, Copy)]
struct LoopInfo64 {
    lo_device: u64,
    lo_inode: u64,
    lo_rdevice: u64,
    lo_offset: u64,
    lo_sizelimit: u64,
    lo_number: u32,
    lo_encrypt_type: u32,
    lo_encrypt_key_size: u32,
    lo_flags: u32,
    lo_file_name: [u8; LO_NAME_SIZE],
    lo_crypt_name: [u8; LO_NAME_SIZE],
    lo_encrypt_key: [u8; 32],
    lo_init: [u64; 2],
}

/// struct loop_config (LOOP_CONFIGURE, Linux 5.8+).
#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

fn info_for(image: &Path) -> LoopInfo64 {
    let mut info = LoopInfo64 {
        lo_device: 0,
        lo_inode: 0,
        lo_rdevice: 0,
        lo_offset: 0,
        lo_sizelimit: 0,
        lo_number: 0,
        lo_encrypt_type: 0,
        lo_encrypt_key_size: 0,
        lo_flags: LO_FLAGS_AUTOCLEAR,
        lo_file_name: [0; LO_NAME_SIZE],
        lo_crypt_name: [0; LO_NAME_SIZE],
        lo_encrypt_key: [0; 32],
        lo_init: [0; 2],
    };
    let name = image.as_os_str().as_encoded_bytes();
    let n = name.len().min(LO_NAME_SIZE - 1);
    info.lo_file_name[..n].copy_from_slice(&name[..n]);
    info
}

/// Attaches `image` to a free loop device; returns the open device (the
/// device detaches itself once the last user — fd or mount — is gone).
pub(crate) fn attach(image: &Path) -> Result<(File, PathBuf), DiskError> {
    let backing = OpenOptions::new()
        .read(true)
        .write(true)
        .open(image)
        .map_err(DiskError::io("open image", image))?;
    let ctl_path = Path::new("/dev/loop-control");
    let ctl = File::open(ctl_path)
        .map_err(DiskError::io("open (is the loop module loaded?)", ctl_path))?;
    // Another process may take the free device between the two calls.
    for _ in 0..16 {
        let n = ioctl::int(ctl.as_fd(), LOOP_CTL_GET_FREE, 0)
            .map_err(DiskError::io("find a free loop device", ctl_path))?;
        let dev_path = PathBuf::from(format!("/dev/loop{n}"));
        let dev = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(&dev_path)
            .map_err(DiskError::io("open", &dev_path))?;
        let mut cfg = LoopConfig {
            fd: std::os::fd::AsRawFd::as_raw_fd(&backing) as u32,
            block_size: 0,
            info: info_for(image),
            reserved: [0; 8],
        };
        match ioctl::ptr(dev.as_fd(), LOOP_CONFIGURE, &mut cfg) {
            Ok(_) => return Ok((dev, dev_path)),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => continue,
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOTTY)) => {
                // Kernels before 5.8: the two-step way.
                let fd = std::os::fd::AsRawFd::as_raw_fd(&backing) as libc::c_ulong;
                match ioctl::int(dev.as_fd(), LOOP_SET_FD, fd) {
                    Ok(_) => {}
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) => continue,
                    Err(e) => return Err(DiskError::io("attach image to", &dev_path)(e)),
                }
                let mut info = info_for(image);
                ioctl::ptr(dev.as_fd(), LOOP_SET_STATUS64, &mut info)
                    .map_err(DiskError::io("set autoclear on", &dev_path))?;
                return Ok((dev, dev_path));
            }
            Err(e) => return Err(DiskError::io("attach image to", &dev_path)(e)),
        }
    }
    Err(DiskError::Unsupported(format!(
        "{}: no free loop device stayed free long enough (too many in use? check losetup -a)",
        image.display()
    )))
}

/// An image attached to a loop device. The device detaches itself once
/// this handle is dropped and nothing mounts it (LO_FLAGS_AUTOCLEAR), so a
/// crashed caller cannot leak it. Also used by tests to build fixtures.
#[derive(Debug)]
pub struct LoopDevice {
    _file: File,
    path: PathBuf,
}

impl LoopDevice {
    /// Attaches `image` to a free loop device.
    pub fn attach(image: &Path) -> Result<LoopDevice, DiskError> {
        let (file, path) = attach(image)?;
        Ok(LoopDevice { _file: file, path })
    }

    /// The device node (`/dev/loopN`).
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// True when something is mounted on `dir` (its device differs from its parent's).
pub(crate) fn is_mountpoint(dir: &Path) -> bool {
    let parent = dir.parent().unwrap_or(Path::new("/"));
    match (std::fs::metadata(dir), std::fs::metadata(parent)) {
        (Ok(d), Ok(p)) => d.dev() != p.dev() || d.ino() == p.ino(),
        _ => false,
    }
}

/// The image file behind the loop device mounted on `dir`, if it is one.
fn mounted_image(dir: &Path) -> Option<PathBuf> {
    let dev = std::fs::metadata(dir).ok()?.dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let f = format!("/sys/dev/block/{major}:{minor}/loop/backing_file");
    std::fs::read_to_string(f)
        .ok()
        .map(|s| PathBuf::from(s.trim_end()))
}

/// Creates a sparse image of `size` bytes, formats it ext4 and mounts it on `dir`.
pub(crate) fn create(dir: &Path, image: &Path, size: u64) -> Result<(), DiskError> {
    if size < MIN_SIZE {
        return Err(DiskError::TooSmall {
            dir: dir.to_path_buf(),
            size,
            min: MIN_SIZE,
        });
    }
    if let Some(parent) = image.parent() {
        std::fs::create_dir_all(parent).map_err(DiskError::io("create", parent))?;
    }
    let f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(image)
        .map_err(DiskError::io("create image", image))?;
    f.set_len(size)
        .map_err(DiskError::io("size image", image))?;
    drop(f);
    format_ext4(image)?;
    std::fs::create_dir(dir).map_err(DiskError::io("create", dir))?;
    mount_image(image, dir)
}

/// Runs the host's mkfs.ext4 on the image: no reserved blocks (the guest's
/// root would use them anyway), lazy inode tables so a sparse image stays
/// sparse and formatting takes well under a second.
fn format_ext4(image: &Path) -> Result<(), DiskError> {
    let out = std::process::Command::new("mkfs.ext4")
        .args([
            "-q",
            "-F",
            "-m",
            "0",
            "-E",
            "lazy_itable_init=1,lazy_journal_init=1,nodiscard",
        ])
        .arg(image)
        .output()
        .map_err(|e| {
            DiskError::Unsupported(format!(
                "mkfs.ext4 for {}: {e} (install e2fsprogs)",
                image.display()
            ))
        })?;
    if !out.status.success() {
        return Err(DiskError::Unsupported(format!(
            "mkfs.ext4 {} failed: {}",
            image.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// Mounts `image` on `dir` unless it already is; another mount there is an error.
pub(crate) fn mount_image(image: &Path, dir: &Path) -> Result<(), DiskError> {
    if is_mountpoint(dir) {
        let want = std::fs::canonicalize(image).unwrap_or_else(|_| image.to_path_buf());
        return match mounted_image(dir) {
            Some(have) if have == want => Ok(()),
            _ => Err(DiskError::Unsupported(format!(
                "{} already has something else mounted on it (unmount it first)",
                dir.display()
            ))),
        };
    }
    let image = std::fs::canonicalize(image).map_err(DiskError::io("find image", image))?;
    let (dev, dev_path) = attach(&image)?;
    nix::mount::mount(
        Some(&dev_path),
        dir,
        Some("ext4"),
        nix::mount::MsFlags::MS_NOATIME,
        None::<&str>,
    )
    .map_err(|e| DiskError::io("mount", dir)(e.into()))?;
    drop(dev); // the mount holds the device now; AUTOCLEAR frees it on umount
    Ok(())
}

/// Unmounts `dir` if something is mounted there.
pub(crate) fn unmount(dir: &Path) -> Result<(), DiskError> {
    if !dir.exists() || !is_mountpoint(dir) {
        return Ok(());
    }
    match nix::mount::umount2(dir, nix::mount::MntFlags::empty()) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => Ok(()),
        Err(nix::Error::EBUSY) => Err(DiskError::Unsupported(format!(
            "{} is still in use (stop the guest, leave the directory, then retry)",
            dir.display()
        ))),
        Err(e) => Err(DiskError::io("unmount", dir)(e.into())),
    }
}

/// Grows the image to `size` and the mounted ext4 with it, online.
pub(crate) fn grow(image: &Path, dir: &Path, size: u64) -> Result<(), DiskError> {
    let current = std::fs::metadata(image)
        .map_err(DiskError::io("stat", image))?
        .len();
    if size < current {
        return Err(DiskError::BadSize(format!(
            "{}: a loop image only grows ({current} bytes now, {size} asked); copy the guest to a new one to shrink it",
            image.display()
        )));
    }
    if size == current {
        return Ok(());
    }
    if is_mountpoint(dir) {
        if !has_cap_sys_resource() {
            return Err(DiskError::Unsupported(format!(
                "{}: growing a mounted ext4 image needs CAP_SYS_RESOURCE, which this process lacks; stop the guest and retry (it then grows offline)",
                dir.display()
            )));
        }
        return grow_mounted(image, dir, size);
    }
    grow_offline(image, size)
}

/// True when the effective capabilities hold CAP_SYS_RESOURCE, which
/// ext4's online resize requires (containers often drop it).
fn has_cap_sys_resource() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .is_some_and(|caps| caps & (1 << CAP_SYS_RESOURCE) != 0)
}

/// Grows an unmounted image: extend the file, then the host's resize2fs
/// (e2fsprogs) grows the filesystem in it.
fn grow_offline(image: &Path, size: u64) -> Result<(), DiskError> {
    let old = std::fs::metadata(image)
        .map_err(DiskError::io("stat", image))?
        .len();
    let set = |len: u64| {
        OpenOptions::new()
            .write(true)
            .open(image)
            .and_then(|f| f.set_len(len))
            .map_err(DiskError::io("resize image", image))
    };
    set(size)?;
    let out = std::process::Command::new("resize2fs")
        .arg("-f")
        .arg(image)
        .output();
    let failed = match out {
        Ok(o) if o.status.success() => return Ok(()),
        Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
        Err(e) => format!("{e} (install e2fsprogs)"),
    };
    set(old)?;
    Err(DiskError::Unsupported(format!(
        "resize2fs {}: {failed}",
        image.display()
    )))
}

fn grow_mounted(image: &Path, dir: &Path, size: u64) -> Result<(), DiskError> {
    OpenOptions::new()
        .write(true)
        .open(image)
        .and_then(|f| f.set_len(size))
        .map_err(DiskError::io("grow image", image))?;
    let rdev = std::fs::metadata(dir)
        .map_err(DiskError::io("stat", dir))?
        .dev();
    let dev_path = super::device::dev_node(libc::major(rdev), libc::minor(rdev));
    let dev = File::open(&dev_path).map_err(DiskError::io("open", &dev_path))?;
    ioctl::int(dev.as_fd(), LOOP_SET_CAPACITY, 0)
        .map_err(DiskError::io("set capacity of", &dev_path))?;
    let st = nix::sys::statfs::statfs(dir).map_err(|e| DiskError::io("statfs", dir)(e.into()))?;
    let mut blocks: u64 = size / st.block_size() as u64;
    let root = File::open(dir).map_err(DiskError::io("open", dir))?;
    ioctl::ptr(root.as_fd(), EXT4_IOC_RESIZE_FS, &mut blocks)
        .map_err(DiskError::io("resize filesystem on", dir))?;
    Ok(())
}

/// Used bytes from statfs of the mounted filesystem (or the image's
/// allocated blocks when unmounted); the limit is the image size.
pub(crate) fn usage(image: &Path, dir: &Path) -> Result<DiskUsage, DiskError> {
    let meta = std::fs::metadata(image).map_err(DiskError::io("stat", image))?;
    let used = if is_mountpoint(dir) {
        let st =
            nix::sys::statfs::statfs(dir).map_err(|e| DiskError::io("statfs", dir)(e.into()))?;
        (st.blocks() - st.blocks_free()) * st.block_size() as u64
    } else {
        meta.blocks() * 512
    };
    Ok(DiskUsage {
        used,
        limit: meta.len(),
    })
}

/// Unmounts and deletes the image and the directory. Idempotent.
pub(crate) fn destroy(image: &Path, dir: &Path) -> Result<(), DiskError> {
    unmount(dir)?;
    if dir.exists() && is_mountpoint(dir) {
        return Err(DiskError::Unsupported(format!(
            "{} is still mounted; unmount it before deleting",
            dir.display()
        )));
    }
    match std::fs::remove_file(image) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(DiskError::io("remove", image)(e)),
    }
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(DiskError::io("remove", dir)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loop_structs_have_the_kernel_sizes() {
        assert_eq!(std::mem::size_of::<LoopInfo64>(), 232);
        assert_eq!(std::mem::size_of::<LoopConfig>(), 304);
    }

    #[test]
    fn image_name_is_truncated_and_nul_terminated() {
        let long = PathBuf::from("/x".repeat(100));
        let info = info_for(&long);
        assert_eq!(info.lo_file_name[LO_NAME_SIZE - 1], 0);
        assert_eq!(info.lo_flags, LO_FLAGS_AUTOCLEAR);
    }
}
