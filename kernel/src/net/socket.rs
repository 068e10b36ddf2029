//! The rtnetlink socket: send one request, collect its answer (an ack, an
//! error, or the messages of a dump). Synchronous on purpose: a request is a
//! few microseconds and the socket is bound to one network namespace.

use super::NetError;
use netlink_packet_core::{
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP,
    NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

/// A synchronous rtnetlink socket bound to the network namespace it was
/// opened in; links, addresses and routes are changed through its methods.
pub struct RtNetlink {
    sock: Socket,
    seq: u32,
}

impl RtNetlink {
    /// Opens a socket in the calling thread's network namespace.
    pub fn open() -> Result<RtNetlink, NetError> {
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(|source| NetError::Socket {
            what: "rtnetlink",
            source,
        })?;
        sock.bind_auto().map_err(|source| NetError::Socket {
            what: "rtnetlink bind",
            source,
        })?;
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(|source| NetError::Socket {
                what: "rtnetlink connect",
                source,
            })?;
        // Ask for extended errors is not needed: errno plus our own op text
        // already names the object.
        Ok(RtNetlink { sock, seq: 0 })
    }

    /// Opens a socket inside the network namespace of process `pid`, from a
    /// short-lived thread that joins it, so the caller stays where it is.
    pub fn open_in_netns_of(pid: i32) -> Result<RtNetlink, NetError> {
        std::thread::scope(|s| {
            s.spawn(|| {
                enter_netns_of(pid)?;
                RtNetlink::open()
            })
            .join()
            .unwrap_or_else(|_| {
                Err(NetError::Netns {
                    pid,
                    message: "helper thread panicked".into(),
                })
            })
        })
    }

    /// Sends `msg` with the ack flag plus `flags`; returns the kernel's
    /// verdict. `op` names the request in errors.
    pub(crate) fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
        op: &dyn Fn() -> String,
    ) -> Result<(), NetError> {
        self.exchange(msg, NLM_F_REQUEST | NLM_F_ACK | flags, op)
            .map(|_| ())
    }

    /// Sends a dump request and returns every message of the answer.
    pub(crate) fn dump(
        &mut self,
        msg: RouteNetlinkMessage,
        op: &dyn Fn() -> String,
    ) -> Result<Vec<RouteNetlinkMessage>, NetError> {
        self.exchange(msg, NLM_F_REQUEST | NLM_F_DUMP, op)
    }

    /// Sends a plain get request (one answer message).
    pub(crate) fn get(
        &mut self,
        msg: RouteNetlinkMessage,
        op: &dyn Fn() -> String,
    ) -> Result<Vec<RouteNetlinkMessage>, NetError> {
        self.exchange(msg, NLM_F_REQUEST, op)
    }

    fn exchange(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
        op: &dyn Fn() -> String,
    ) -> Result<Vec<RouteNetlinkMessage>, NetError> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        header.sequence_number = seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        packet.finalize();
        let mut buf = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.sock.send(&buf, 0).map_err(|source| NetError::Socket {
            what: "rtnetlink send",
            source,
        })?;

        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let acked = flags & NLM_F_ACK != 0;
        let mut out = Vec::new();
        let mut rbuf: Vec<u8> = Vec::with_capacity(1 << 16);
        loop {
            rbuf.clear();
            let n = self
                .sock
                .recv(&mut rbuf, 0)
                .map_err(|source| NetError::Socket {
                    what: "rtnetlink recv",
                    source,
                })?;
            let mut off = 0;
            while off < n {
                let len = NetlinkBuffer::new_checked(&rbuf[off..n])
                    .map(|b| b.length() as usize)
                    .map_err(|e| NetError::Decode {
                        op: op(),
                        message: e.to_string(),
                    })?;
                if len == 0 {
                    break;
                }
                let part = &rbuf[off..(off + len).min(n)];
                off += (len + 3) & !3;
                let m = NetlinkMessage::<RouteNetlinkMessage>::deserialize(part).map_err(|e| {
                    NetError::Decode {
                        op: op(),
                        message: e.to_string(),
                    }
                })?;
                if m.header.sequence_number != seq {
                    continue; // a late answer to an earlier request
                }
                match m.payload {
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(out),
                            Some(code) => Err(NetError::Kernel {
                                op: op(),
                                errno: -code.get(),
                            }),
                        };
                    }
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::InnerMessage(inner) => {
                        out.push(inner);
                        if !dump && !acked {
                            return Ok(out);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Moves the calling thread into the network namespace of `pid`.
pub(crate) fn enter_netns_of(pid: i32) -> Result<(), NetError> {
    crate::ns::join(pid, "net")
        .map(|_| ())
        .map_err(|e| NetError::Netns {
            pid,
            message: e.to_string(),
        })
}
