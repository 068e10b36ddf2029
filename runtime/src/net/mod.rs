//! A guest's network context: which host network it joins, its addresses,
//! and the links and filters that make them its own.
//!
//! In bridge mode a guest gets a veth pair: the peer is born inside the
//! guest's network namespace as `eth0` with the network's MTU, addresses and
//! default route (all over netlink, before init runs); the host end joins
//! the network's bridge. Each guest may only send from its own addresses:
//! a per-guest nf_tables table of the *bridge* family (`vbuild-g-NAME`)
//! hooks the bridge's prerouting and drops every frame from the guest's port
//! whose Ethernet source is not the guest's MAC, whose ARP sender or IP
//! source is not one of its addresses or its own EUI-64 link-local address,
//! that advertises a neighbour address not its own, a route, a redirect or
//! a DHCP lease, or that is neither IPv4, ARP nor IPv6 (`antispoof`). This
//! runs before the bridge forwards or the host receives anything, so it
//! also guards the host and other guests. Beyond its link, the network's
//! `inet` table (`policy`) keeps guests out of the host's services and out
//! of other vbuild networks. `--isolated` networks mark every guest port
//! isolated (the bridge's own port-isolation flag: isolated ports exchange
//! no frames with each other, only with the bridge, which is the gateway)
//! and drop routed traffic that would come back out of the same bridge.

mod antispoof;
mod cidr;
pub mod dns;
mod hostclash;
mod ipam;
mod network;
mod policy;
mod publish;
pub mod resolv;

pub use crate::config::{NetConfig, NetMode};
pub use antispoof::link_local_of;
pub use cidr::Cidr;
pub use ipam::{allocate, release, reserve};
pub use network::{Network, DEFAULT_NETWORK};
pub use policy::BRIDGE_GROUP;
pub use publish::Publish;

use crate::paths::Layout;
use std::net::IpAddr;
use vbuild_kernel::net::nft::{Batch, Family, Nft};
use vbuild_kernel::net::RtNetlink;

/// Why a network request was refused or failed; each message names the
/// network, address or link and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// Not an `ADDRESS/PREFIX`.
    #[error(
        "address {input:?} {reason} (write ADDRESS/PREFIX, e.g. 10.77.0.11/24 or fd77::11/64)"
    )]
    InvalidCidr {
        /// What was given.
        input: String,
        /// What is wrong.
        reason: String,
    },
    /// No network of that name.
    #[error("network {0:?} does not exist (create it with `vbuild net create {0} --subnet 10.77.1.0/24`, or see `vbuild net list`)")]
    UnknownNetwork(String),
    /// A network definition is unusable (bad name, subnet, overlap...).
    #[error("{0}")]
    InvalidNetwork(String),
    /// A guest address outside the network's subnets.
    #[error("address {addr} is outside network {network} ({subnets}); pick an address inside it, or use --ip auto")]
    OutsideSubnet {
        /// The address.
        addr: String,
        /// The network.
        network: String,
        /// Its subnets.
        subnets: String,
    },
    /// The address belongs to another guest (or the gateway).
    #[error("address {addr} on network {network} is already used by {owner}; pick another address, or use --ip auto")]
    AddressInUse {
        /// The address.
        addr: String,
        /// The network.
        network: String,
        /// `guest NAME` or `the gateway`.
        owner: String,
    },
    /// No address left.
    #[error("network {network} has no free address left in {subnet}; delete a guest or create a larger network")]
    Exhausted {
        /// The network.
        network: String,
        /// The full subnet.
        subnet: String,
    },
    /// Guests (running or stopped) still name the network: deleting it
    /// would make their next start fail.
    #[error("network {network} is still named by guests: {guests} (delete them, or move them with `vbuild set NAME --net OTHER`, first)")]
    InUse {
        /// The network.
        network: String,
        /// Comma-separated guest names.
        guests: String,
    },
    /// A `--publish` value is unusable or taken.
    #[error("{0}")]
    Publish(String),
    /// A setting that does not fit the mode (addresses with `--net-mode none`).
    #[error("{0}")]
    Mode(String),
    /// Reading or writing a file under the networks directory failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A networks-directory file is not what vbuild wrote.
    #[error("{path}: {message} (fix or delete the file)")]
    Parse {
        /// The file.
        path: std::path::PathBuf,
        /// What the parser said.
        message: String,
    },
    /// A network's DNS responder could not start or answer.
    #[error("{0}")]
    Dns(String),
    /// The kernel refused a link, address, route or filter change.
    #[error("{context}: {source}")]
    Kernel {
        /// `guest NAME` or `network NAME`: whose setup failed.
        context: String,
        /// The kernel-side error, naming the object.
        source: vbuild_kernel::net::NetError,
    },
}

fn kernel(guest: &str) -> impl Fn(vbuild_kernel::net::NetError) -> NetError + '_ {
    move |source| NetError::Kernel {
        context: format!("guest {guest}"),
        source,
    }
}

/// The host end's link name for `guest`: `vb-` + up to 4 characters of the
/// name + `-` + 24 bits of a hash of the whole name, so it fits the
/// kernel's 15 characters, tells whose it is, and differs between guests
/// whose names share a prefix.
pub fn host_link_name(guest: &str) -> String {
    // FNV-1a: stable across versions and platforms, unlike std's hasher.
    let mut h: u32 = 0x811c_9dc5;
    for b in guest.bytes() {
        h ^= b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    let prefix: String = guest.chars().take(4).collect();
    format!("vb-{}-{:06x}", prefix.trim_end_matches('-'), h & 0xff_ffff)
}

/// The guest's eth0 hardware address: the same on every start, so a
/// restarted guest is reachable at once (no stale neighbour entries), and
/// different per guest name and per vbuild state root (two roots on one
/// host may both have a guest `web`). Locally administered, unicast.
pub fn guest_mac(layout: &Layout, guest: &str) -> [u8; 6] {
    // FNV-1a 64 over root, NUL, name: stable across versions and platforms.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let root = layout.root().as_os_str().as_encoded_bytes();
    for b in root.iter().chain(&[0u8]).chain(guest.as_bytes()) {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let b = h.to_be_bytes();
    [(b[0] & 0xfc) | 0x02, b[1], b[2], b[3], b[4], b[5]]
}

/// The nf_tables table holding a guest's anti-spoofing filter (bridge
/// family) and its published ports (inet family).
pub fn guest_table(guest: &str) -> String {
    format!("vbuild-g-{guest}")
}

/// The guest-side interface name.
pub const GUEST_LINK: &str = "eth0";

/// Checks and completes a guest's network settings before they are saved:
/// the network must exist (`vbuild0` is made on first use), every address
/// must parse and lie inside it, `auto` takes the next free address, and no
/// address may belong to another guest. Addresses are reserved for `guest`
/// in the network's lease file; on any error nothing is reserved.
pub fn resolve(
    layout: &Layout,
    guest: &str,
    mode: NetMode,
    network: &str,
    ips: &[String],
    publish: &[String],
) -> Result<NetConfig, NetError> {
    let mut cfg = NetConfig {
        mode,
        network: network.to_string(),
        addresses: vec![],
        publish: vec![],
    };
    for p in publish {
        cfg.publish.push(Publish::parse(p)?.to_string());
    }
    if mode != NetMode::Bridge {
        if !ips.is_empty() || !publish.is_empty() {
            return Err(NetError::Mode(format!(
                "guest {guest}: --ip and --publish need --net-mode bridge (the mode is {})",
                match mode {
                    NetMode::None => "none",
                    _ => "host",
                }
            )));
        }
        return Ok(cfg);
    }
    let net = Network::load(layout, network)?;
    publish::check_free(layout, guest, &cfg.publish)?;
    let auto = ips.iter().any(|s| s == "auto");
    let mut fixed = Vec::new();
    for s in ips.iter().filter(|s| *s != "auto") {
        let c: Cidr = s.parse()?;
        fixed.push(net.check_address(c)?);
    }
    cfg.addresses = if auto {
        let mut got = ipam::allocate_with(layout, &net, guest, &fixed)?;
        got.extend(fixed);
        got.sort_by_key(|c| !c.is_v4());
        got.iter().map(|c| c.to_string()).collect()
    } else if fixed.is_empty() {
        // No --ip at all: the guest still needs an address to be reachable.
        ipam::allocate_with(layout, &net, guest, &[])?
            .iter()
            .map(|c| c.to_string())
            .collect()
    } else {
        reserve(layout, &net, guest, &fixed)?;
        fixed.iter().map(|c| c.to_string()).collect()
    };
    Ok(cfg)
}

/// Creates the guest's network context for init process `init_pid`, which
/// already runs in a network namespace of its own and has not started yet.
/// `host` mode does nothing (the guest shares the host's stack: the
/// runtime must not unshare the network namespace), `none` brings up
/// loopback only, `bridge` builds the veth pair, addresses, routes and
/// filters. Leftovers of an earlier run are removed first; on failure what
/// was made is removed again.
pub fn attach(
    layout: &Layout,
    guest: &str,
    cfg: &NetConfig,
    init_pid: i32,
) -> Result<(), NetError> {
    let k = kernel(guest);
    match cfg.mode {
        NetMode::Host => return Ok(()),
        NetMode::None => {
            let mut g = RtNetlink::open_in_netns_of(init_pid).map_err(&k)?;
            let lo = g.link_index("lo").map_err(&k)?;
            return g.set_up(lo, true).map_err(&k);
        }
        NetMode::Bridge => {}
    }
    let net = Network::load(layout, &cfg.network)?;
    let mut addrs = Vec::new();
    for s in &cfg.addresses {
        addrs.push(net.check_address(s.parse()?)?);
    }
    let publish = cfg
        .publish
        .iter()
        .map(|p| Publish::parse(p))
        .collect::<Result<Vec<_>, _>>()?;
    detach(layout, guest)?;
    net.ensure_up()?;
    let mac = guest_mac(layout, guest);
    let result = plug(&net, guest, mac, &addrs, &publish, init_pid);
    if result.is_err() {
        let _ = detach(layout, guest);
    }
    result
}

fn plug(
    net: &Network,
    guest: &str,
    mac: [u8; 6],
    addrs: &[Cidr],
    publish: &[Publish],
    init_pid: i32,
) -> Result<(), NetError> {
    let k = kernel(guest);
    let host = host_link_name(guest);
    let mut nl = RtNetlink::open().map_err(&k)?;
    nl.create_veth(&host, GUEST_LINK, net.mtu, Some(init_pid))
        .map_err(&k)?;
    let mut g = RtNetlink::open_in_netns_of(init_pid).map_err(&k)?;
    let eth0 = g
        .link(GUEST_LINK)
        .map_err(&k)?
        .ok_or_else(|| k(vbuild_kernel::net::NetError::NoSuchLink(GUEST_LINK.into())))?;
    // A fixed MAC (set while eth0 is still down) keeps the host's and the
    // peers' neighbour entries valid across restarts.
    g.set_mac(eth0.index, mac).map_err(&k)?;

    // Filters first, so the port never forwards a frame unfiltered. The
    // guest's tables were removed by `detach` just before: create them.
    let mut nft = Nft::open().map_err(&k)?;
    let table = guest_table(guest);
    let mut batch = Batch::new();
    batch.new_table(
        Family::Bridge,
        &table,
        &[(antispoof::chain(), antispoof::rules(&host, mac, addrs))],
    );
    if !publish.is_empty() {
        batch.new_table(
            Family::Inet,
            &table,
            &publish::chains(publish, addrs, &net.bridge),
        );
        vbuild_kernel::net::set_forwarding(vbuild_kernel::net::Forwarding {
            v4: true,
            v6: false,
        })
        .map_err(&k)?;
        // 127.0.0.1:HOSTPORT: see `publish`. Only this network's bridge.
        if publish::needs_route_localnet(publish, addrs) {
            vbuild_kernel::net::set_route_localnet(&net.bridge).map_err(&k)?;
        }
    }
    nft.commit(&batch).map_err(&k)?;

    let port = nl.link_index(&host).map_err(&k)?;
    let bridge = nl.link_index(&net.bridge).map_err(&k)?;
    nl.set_master(port, bridge).map_err(&k)?;
    if net.isolated {
        nl.set_port_isolated(port, true).map_err(&k)?;
    }
    nl.set_up(port, true).map_err(&k)?;

    let lo = g.link_index("lo").map_err(&k)?;
    g.set_up(lo, true).map_err(&k)?;
    // The filter allows exactly the EUI-64 link-local address of the MAC.
    g.set_addr_gen_eui64(eth0.index).map_err(&k)?;
    for a in addrs {
        g.add_address(eth0.index, a.addr, a.prefix).map_err(&k)?;
    }
    g.set_up(eth0.index, true).map_err(&k)?;
    for gw in net.gateways() {
        if addrs.iter().any(|a| a.is_v4() == gw.is_ipv4()) {
            g.set_default_route(gw, eth0.index).map_err(&k)?;
        }
    }
    Ok(())
}

/// Removes everything `attach` made on the host for `guest`: the host end
/// of the veth pair (which takes the guest's end with it) and the guest's
/// filter and port-forward tables. Idempotent, so it also cleans up after a
/// crashed supervisor.
pub fn detach(_layout: &Layout, guest: &str) -> Result<(), NetError> {
    let k = kernel(guest);
    // Both deletions end in an RCU grace period (the link's in dellink, the
    // tables' when their socket closes): tables first, then the link, and
    // the socket closed last, so the two waits overlap instead of adding up.
    let mut nft = Nft::open().map_err(&k)?;
    let table = guest_table(guest);
    nft.delete_tables_if_exist(&[(Family::Bridge, &table), (Family::Inet, &table)])
        .map_err(&k)?;
    let mut nl = RtNetlink::open().map_err(&k)?;
    nl.delete_link_named(&host_link_name(guest)).map_err(&k)?;
    drop(nft);
    Ok(())
}

/// The addresses of a saved config, parsed (bad entries are skipped: they
/// were checked when saved).
pub(crate) fn config_addresses(cfg: &NetConfig) -> Vec<IpAddr> {
    cfg.addresses
        .iter()
        .filter_map(|s| s.parse::<Cidr>().ok())
        .map(|c| c.addr)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_link_names_fit_and_differ() {
        let a = host_link_name("mail01");
        let b = host_link_name("mail02");
        assert!(a.starts_with("vb-mail-"), "{a}");
        assert_ne!(a, b);
        let long = host_link_name(&"x".repeat(63));
        assert!(long.len() <= 15, "{long}");
        assert_eq!(host_link_name("a-b"), host_link_name("a-b"));
        assert!(host_link_name("abc-def").starts_with("vb-abc-"));
    }

    #[test]
    fn guest_macs_are_stable_local_unicast_and_differ() {
        let a = Layout::new(Some(std::path::Path::new("/var/lib/vbuild")));
        let b = Layout::new(Some(std::path::Path::new("/srv/other")));
        let m = guest_mac(&a, "web");
        assert_eq!(m, guest_mac(&a, "web"), "the same guest keeps its MAC");
        assert_eq!(m[0] & 0x03, 0x02, "locally administered unicast: {m:02x?}");
        assert_ne!(m, guest_mac(&a, "web2"));
        assert_ne!(m, guest_mac(&b, "web"), "another state root, another MAC");
    }
}
