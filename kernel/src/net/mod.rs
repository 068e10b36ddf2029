//! Networking through the kernel's own interfaces: rtnetlink for links,
//! addresses and routes, nf_tables (NETLINK_NETFILTER) for filtering and
//! NAT, and `/proc/sys/net` for forwarding. No `ip`, `nft` or `iptables`
//! binary is ever run.
//!
//! Network namespaces belong to threads, and a netlink socket keeps the
//! namespace it was opened in for its whole life. So to work inside another
//! context we open the socket on a short-lived thread that joined that
//! namespace ([`RtNetlink::open_in_netns_of`]) and then use it from any
//! thread; the caller's own thread never changes namespace.

mod addr;
mod error;
mod link;
mod loopback;
pub mod nft;
mod route;
mod socket;
mod sysctl;
mod udp;

pub use addr::AddrInfo;
pub use error::NetError;
pub use link::LinkInfo;
pub use loopback::bring_up_loopback;
pub use socket::RtNetlink;
pub use sysctl::{route_localnet, set_forwarding, set_route_localnet, Forwarding};
pub use udp::bind_udp_freebind;
