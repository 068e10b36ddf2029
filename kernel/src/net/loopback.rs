//! Bringing up `lo` in a fresh network namespace with two ioctls, without
//! netlink: it allocates nothing, so a child forked from a multi-threaded
//! parent can call it before exec.

use nix::errno::Errno;

/// Sets IFF_UP on `lo` in the caller's network namespace.
pub fn bring_up_loopback() -> Result<(), Errno> {
    // SAFETY: a plain socket; closed below on every path.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: ifreq is plain data; zero is a valid value for every field.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the ifreq we own.
    let r = unsafe {
        if libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req) < 0 {
            -1
        } else {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            libc::ioctl(fd, libc::SIOCSIFFLAGS, &req)
        }
    };
    let e = Errno::last();
    // SAFETY: closing the socket opened above.
    unsafe { libc::close(fd) };
    if r < 0 {
        return Err(e);
    }
    Ok(())
}
