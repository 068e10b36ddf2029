//! UDP sockets bound to an address the host may not have yet: a network
//! service on a bridge's gateway address must bind while that address is
//! still tentative (IPv6 duplicate address detection waits for the
//! bridge's first port) or before the bridge is up at all.

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{FromRawFd, OwnedFd};

fn sockopt_on(fd: &OwnedFd, level: libc::c_int, opt: libc::c_int) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let one: libc::c_int = 1;
    // SAFETY: setsockopt on our descriptor with a pointer to a local int.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            opt,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// A non-blocking, close-on-exec UDP socket bound to `addr` with
/// `IP_FREEBIND`/`IPV6_FREEBIND` (the address need not be assigned yet)
/// and, for IPv6, `IPV6_V6ONLY`. Binding a port below 1024 needs
/// CAP_NET_BIND_SERVICE; the socket keeps working after the caller gives
/// its capabilities up.
pub fn bind_udp_freebind(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let family = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain socket(2); the result is checked before use.
    let raw = unsafe {
        libc::socket(
            family,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    };
    if raw < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: raw is a fresh descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    if addr.is_ipv4() {
        sockopt_on(&fd, libc::SOL_IP, libc::IP_FREEBIND)?;
    } else {
        sockopt_on(&fd, libc::SOL_IPV6, libc::IPV6_V6ONLY)?;
        sockopt_on(&fd, libc::SOL_IPV6, libc::IPV6_FREEBIND)?;
    }
    let sock = UdpSocket::from(fd);
    bind(&sock, addr)?;
    Ok(sock)
}

fn bind(sock: &UdpSocket, addr: SocketAddr) -> std::io::Result<()> {
    use nix::sys::socket::{SockaddrIn, SockaddrIn6};
    use std::os::fd::AsRawFd;
    let r = match addr {
        SocketAddr::V4(a) => nix::sys::socket::bind(sock.as_raw_fd(), &SockaddrIn::from(a)),
        SocketAddr::V6(a) => nix::sys::socket::bind(sock.as_raw_fd(), &SockaddrIn6::from(a)),
    };
    r.map_err(std::io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_an_address_the_host_does_not_have() {
        // TEST-NET-3: assigned to no host. Port 0: no privilege needed.
        let s = bind_udp_freebind("203.0.113.77:0".parse().unwrap()).unwrap();
        assert_eq!(
            s.local_addr().unwrap().ip(),
            "203.0.113.77".parse::<std::net::IpAddr>().unwrap()
        );
        let s6 = bind_udp_freebind("[2001:db8::77]:0".parse().unwrap()).unwrap();
        assert!(s6.local_addr().unwrap().is_ipv6());
    }
}
