//! The raw ioctl(2) calls of the disk backends, each behind one function
//! that turns -1 into the errno.

use std::os::fd::{AsRawFd, BorrowedFd};

/// `_IOC(dir, type, nr, size)` as the kernel headers spell request numbers.
pub(crate) const fn ioc(dir: u64, ty: u8, nr: u8, size: usize) -> u64 {
    (dir << 30) | ((size as u64) << 16) | ((ty as u64) << 8) | nr as u64
}
/// Direction bits of `ioc`.
pub(crate) const WRITE: u64 = 1;
pub(crate) const READ: u64 = 2;

/// ioctl with a pointer argument.
pub(crate) fn ptr<T>(fd: BorrowedFd<'_>, req: u64, arg: &mut T) -> std::io::Result<i32> {
    // SAFETY: `arg` is a live, correctly sized struct for `req`.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), req as libc::Ioctl, arg as *mut T) };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// ioctl with an integer argument.
pub(crate) fn int(fd: BorrowedFd<'_>, req: u64, arg: libc::c_ulong) -> std::io::Result<i32> {
    // SAFETY: the request takes a plain integer.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), req as libc::Ioctl, arg) };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_numbers_match_the_kernel_headers() {
        // EXT4_IOC_RESIZE_FS = _IOW('f', 16, __u64)
        assert_eq!(ioc(WRITE, b'f', 16, 8), 0x4008_6610);
        // FS_IOC_FSGETXATTR = _IOR('X', 31, struct fsxattr)
        assert_eq!(ioc(READ, b'X', 31, 28), 0x801C_581F);
        // BTRFS_IOC_QUOTA_CTL = _IOWR(0x94, 40, 16 bytes)
        assert_eq!(ioc(READ | WRITE, 0x94, 40, 16), 0xC010_9428);
    }
}
