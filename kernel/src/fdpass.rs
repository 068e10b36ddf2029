//! Passing descriptors between processes over a unix socket (SCM_RIGHTS):
//! how a pty made inside a guest reaches the terminal outside, and how an
//! id-mapped root filesystem made outside reaches a guest's first process.
//! Both ends are allocation-free, for use between fork and exec.

use nix::errno::Errno;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Room for one descriptor's control message, as u64s for alignment.
const CBUF: usize = 4;

/// Sends descriptor `fd` over unix socket `sock`, with one data byte.
pub fn send_fd(sock: RawFd, fd: RawFd) -> Result<(), Errno> {
    // SAFETY: a msghdr with one iovec and one SCM_RIGHTS control message,
    // all on the stack and alive for the call.
    unsafe {
        let mut byte = [0u8; 1];
        let mut iov = libc::iovec {
            iov_base: byte.as_mut_ptr().cast(),
            iov_len: 1,
        };
        let mut cbuf = [0u64; CBUF];
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) as _;
        let cm = libc::CMSG_FIRSTHDR(&msg);
        (*cm).cmsg_level = libc::SOL_SOCKET;
        (*cm).cmsg_type = libc::SCM_RIGHTS;
        (*cm).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cm).cast::<RawFd>(), fd);
        if libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) < 0 {
            return Err(Errno::last());
        }
    }
    Ok(())
}

/// Receives a descriptor sent by `send_fd` (close-on-exec). End of file or
/// a message without a descriptor is EBADMSG.
pub fn recv_fd(sock: RawFd) -> Result<OwnedFd, Errno> {
    // SAFETY: as in send_fd, receiving into stack buffers.
    unsafe {
        let mut byte = [0u8; 1];
        let mut iov = libc::iovec {
            iov_base: byte.as_mut_ptr().cast(),
            iov_len: 1,
        };
        let mut cbuf = [0u64; CBUF];
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&cbuf) as _;
        let n = libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC);
        if n < 0 {
            return Err(Errno::last());
        }
        let cm = libc::CMSG_FIRSTHDR(&msg);
        if n == 0 || cm.is_null() || (*cm).cmsg_type != libc::SCM_RIGHTS {
            return Err(Errno::EBADMSG);
        }
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(cm).cast::<RawFd>());
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn descriptors_travel_over_a_socketpair() {
        use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap();
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        send_fd(a.as_raw_fd(), w.as_raw_fd()).unwrap();
        let w2 = recv_fd(b.as_raw_fd()).unwrap();
        nix::unistd::write(&w2, b"x").unwrap();
        let mut buf = [0u8; 1];
        assert_eq!(nix::unistd::read(r.as_raw_fd(), &mut buf).unwrap(), 1);
        assert_eq!(&buf, b"x");
        drop(a);
        assert_eq!(recv_fd(b.as_raw_fd()).unwrap_err(), Errno::EBADMSG);
    }
}
