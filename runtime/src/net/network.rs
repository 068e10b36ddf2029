//! Host networks: a bridge with the gateway addresses, optional outbound
//! NAT, optional isolation and optional access to the host's services
//! (the rules are in `policy`), stored one TOML file each in
//! `Layout::networks_dir()`. `vbuild0` exists without any setup: it is
//! written on first use and its bridge is created when a guest first
//! attaches.

use super::policy::{self, BRIDGE_GROUP};
use super::{Cidr, NetError};
use crate::paths::Layout;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use vbuild_kernel::net::nft::{Family, Nft};
use vbuild_kernel::net::{Forwarding, RtNetlink};

/// The network guests join unless told otherwise.
pub use crate::config::DEFAULT_NETWORK;

/// One host network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    /// Name (also the bridge's name): `[a-z0-9][a-z0-9-]{0,14}`.
    pub name: String,
    /// The bridge link on the host.
    pub bridge: String,
    /// IPv4 subnet, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet4: Option<Cidr>,
    /// IPv6 subnet, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet6: Option<Cidr>,
    /// The bridge's IPv4 address, the guests' default gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway4: Option<IpAddr>,
    /// The bridge's IPv6 address, the guests' IPv6 default gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway6: Option<IpAddr>,
    /// Masquerade traffic from the subnets leaving them (turns on IPv4
    /// forwarding on the host).
    #[serde(default)]
    pub nat: bool,
    /// Guests reach only the gateway, never each other.
    #[serde(default)]
    pub isolated: bool,
    /// Guests may reach every service of the host (`--host-access`);
    /// otherwise only the network's resolvers, NDP and echo to the gateway.
    #[serde(default)]
    pub host_access: bool,
    /// Resolvers written into guests' `/etc/resolv.conf`.
    #[serde(default)]
    pub dns: Vec<IpAddr>,
    /// MTU of the bridge and every guest link.
    #[serde(default = "default_mtu")]
    pub mtu: u32,
    /// No DNS responder for the guests' names (`--no-dns`): the gateway
    /// is not their first name server and its UDP port 53 stays closed.
    #[serde(default)]
    pub no_dns: bool,
}

fn default_mtu() -> u32 {
    1500
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> NetError + '_ {
    move |source| NetError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn kernel(net: &str) -> impl Fn(vbuild_kernel::net::NetError) -> NetError + '_ {
    move |source| NetError::Kernel {
        context: format!("network {net}"),
        source,
    }
}

/// Serializes every change to networks and address leases between
/// concurrent vbuild commands (an flock, released when dropped).
pub(crate) fn lock(layout: &Layout) -> Result<nix::fcntl::Flock<File>, NetError> {
    let dir = layout.networks_dir();
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let path = dir.join(".lock");
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io(&path))?;
    nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive).map_err(|(_, e)| NetError::Io {
        path,
        source: e.into(),
    })
}

/// The resolvers of the host's `/etc/resolv.conf` that a guest can reach
/// (a loopback stub such as systemd-resolved's 127.0.0.53 is not).
fn host_resolvers() -> Vec<IpAddr> {
    std::fs::read_to_string("/etc/resolv.conf")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|a| a.trim().parse::<IpAddr>().ok())
        .filter(|a| !a.is_loopback())
        .collect()
}

fn check_name(name: &str) -> Result<(), NetError> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with("vb-");
    if ok {
        Ok(())
    } else {
        Err(NetError::InvalidNetwork(format!(
            "network name {name:?} is not usable (1-15 characters: a-z, 0-9 and '-', not starting with '-' or \"vb-\"; it names the bridge, e.g. lan0)"
        )))
    }
}

impl Network {
    /// The built-in default: 10.77.0.0/24 and fd77::/64 with NAT, the
    /// host's reachable resolvers.
    pub fn default_network() -> Network {
        Network {
            name: DEFAULT_NETWORK.into(),
            bridge: DEFAULT_NETWORK.into(),
            subnet4: Some("10.77.0.0/24".parse().expect("literal")),
            subnet6: Some("fd77::/64".parse().expect("literal")),
            gateway4: Some("10.77.0.1".parse().expect("literal")),
            gateway6: Some("fd77::1".parse().expect("literal")),
            nat: true,
            isolated: false,
            host_access: false,
            dns: host_resolvers(),
            mtu: default_mtu(),
            no_dns: false,
        }
    }

    /// Checks a new network's definition and fills in the gateways (the
    /// first host of each subnet unless given). Nothing is stored.
    pub fn define(
        name: &str,
        subnets: &[Cidr],
        gateways: &[IpAddr],
        nat: bool,
        isolated: bool,
        dns: Vec<IpAddr>,
        mtu: Option<u32>,
    ) -> Result<Network, NetError> {
        check_name(name)?;
        let mut n = Network {
            name: name.into(),
            bridge: name.into(),
            subnet4: None,
            subnet6: None,
            gateway4: None,
            gateway6: None,
            nat,
            isolated,
            host_access: false,
            dns,
            mtu: mtu.unwrap_or_else(default_mtu),
            no_dns: false,
        };
        if !(576..=65535).contains(&n.mtu) {
            return Err(NetError::InvalidNetwork(format!(
                "network {name}: MTU {} is out of range (576-65535, usually 1500)",
                n.mtu
            )));
        }
        if subnets.is_empty() {
            return Err(NetError::InvalidNetwork(format!(
                "network {name} needs a subnet (e.g. --subnet 10.77.1.0/24)"
            )));
        }
        for s in subnets {
            if s.addr != s.network() {
                return Err(NetError::InvalidNetwork(format!(
                    "subnet {s} is not a network address (did you mean {}?)",
                    s.net()
                )));
            }
            let (slot, max) = if s.is_v4() {
                (&mut n.subnet4, 30)
            } else {
                (&mut n.subnet6, 126)
            };
            if s.prefix > max || s.prefix < if s.is_v4() { 8 } else { 48 } {
                return Err(NetError::InvalidNetwork(format!(
                    "subnet {s} has an unusable size (use /8 to /{max}, e.g. {})",
                    if s.is_v4() { "/24" } else { "/64" }
                )));
            }
            if slot.is_some() {
                return Err(NetError::InvalidNetwork(format!(
                    "network {name}: give at most one IPv4 and one IPv6 subnet ({s} is a second one)"
                )));
            }
            *slot = Some(*s);
        }
        for g in gateways {
            let sub = if g.is_ipv4() { n.subnet4 } else { n.subnet6 };
            match sub {
                Some(s) if s.contains(*g) && s.index_of(*g) != Some(0) => {}
                _ => {
                    return Err(NetError::InvalidNetwork(format!(
                        "gateway {g} is not a host address inside the subnets of network {name}"
                    )))
                }
            }
            if g.is_ipv4() {
                n.gateway4 = Some(*g);
            } else {
                n.gateway6 = Some(*g);
            }
        }
        if n.gateway4.is_none() {
            n.gateway4 = n.subnet4.and_then(|s| s.host(1));
        }
        if n.gateway6.is_none() {
            n.gateway6 = n.subnet6.and_then(|s| s.host(1));
        }
        Ok(n)
    }

    fn path(layout: &Layout, name: &str) -> PathBuf {
        layout.networks_dir().join(format!("{name}.toml"))
    }

    fn read(path: &Path) -> Result<Network, NetError> {
        let text = std::fs::read_to_string(path).map_err(io(path))?;
        toml::from_str(&text).map_err(|e| NetError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    fn save(&self, layout: &Layout) -> Result<(), NetError> {
        let path = Network::path(layout, &self.name);
        let text = toml::to_string_pretty(self).expect("network serializes");
        crate::fsutil::write_atomic(&path, text.as_bytes()).map_err(io(&path))
    }

    /// Network `name`; `vbuild0` is written with its defaults on first use.
    pub fn load(layout: &Layout, name: &str) -> Result<Network, NetError> {
        check_name(name).map_err(|_| NetError::UnknownNetwork(name.into()))?;
        let path = Network::path(layout, name);
        if path.exists() {
            return Network::read(&path);
        }
        if name != DEFAULT_NETWORK {
            return Err(NetError::UnknownNetwork(name.into()));
        }
        let _l = lock(layout)?;
        if path.exists() {
            return Network::read(&path);
        }
        let n = Network::default_network();
        n.save(layout)?;
        Ok(n)
    }

    /// Every network, `vbuild0` included even before its first use.
    pub fn list(layout: &Layout) -> Result<Vec<Network>, NetError> {
        let dir = layout.networks_dir();
        let mut out = Vec::new();
        match std::fs::read_dir(&dir) {
            Ok(rd) => {
                for e in rd {
                    let p = e.map_err(io(&dir))?.path();
                    if p.extension().is_some_and(|x| x == "toml") {
                        out.push(Network::read(&p)?);
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&dir)(e)),
        }
        if !out.iter().any(|n| n.name == DEFAULT_NETWORK) {
            out.push(Network::default_network());
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Stores a new network and brings its bridge up. Refuses a name in use
    /// (by a network or any host link) and subnets overlapping another
    /// network's; on failure nothing is left behind.
    pub fn create(&self, layout: &Layout) -> Result<(), NetError> {
        let _l = lock(layout)?;
        if Network::path(layout, &self.name).exists() {
            return Err(NetError::InvalidNetwork(format!(
                "network {} exists already (see `vbuild net list`)",
                self.name
            )));
        }
        for other in Network::list(layout)? {
            for (a, b) in [(self.subnet4, other.subnet4), (self.subnet6, other.subnet6)] {
                if let (Some(a), Some(b)) = (a, b) {
                    if a.overlaps(&b) {
                        return Err(NetError::InvalidNetwork(format!(
                            "subnet {a} overlaps network {} ({b}); choose another subnet",
                            other.name
                        )));
                    }
                }
            }
        }
        let own: Vec<String> = Network::list(layout)?
            .into_iter()
            .map(|n| n.bridge)
            .collect();
        let uses = super::hostclash::host_uses(&own)?;
        for s in [self.subnet4, self.subnet6].into_iter().flatten() {
            if let Some(e) = super::hostclash::clash(&s, &uses) {
                return Err(NetError::InvalidNetwork(e));
            }
        }
        let k = kernel(&self.name);
        if RtNetlink::open()
            .map_err(&k)?
            .link(&self.bridge)
            .map_err(&k)?
            .is_some()
        {
            return Err(NetError::InvalidNetwork(format!(
                "a link named {} exists on this host already; choose another network name",
                self.bridge
            )));
        }
        self.save(layout)?;
        if let Err(e) = self.ensure_up() {
            let _ = self.teardown();
            let _ = std::fs::remove_file(Network::path(layout, &self.name));
            return Err(e);
        }
        Ok(())
    }

    /// Deletes network `name`: its filters, its bridge, its file and its
    /// address leases. Refuses while running guests use it.
    pub fn delete(layout: &Layout, name: &str) -> Result<(), NetError> {
        let _l = lock(layout)?;
        let path = Network::path(layout, name);
        let net = if path.exists() {
            Network::read(&path)?
        } else if name == DEFAULT_NETWORK {
            Network::default_network()
        } else {
            return Err(NetError::UnknownNetwork(name.into()));
        };
        let store = crate::store::GuestStore::new(layout);
        // Stopped guests count too: their next start would fail.
        let mut named: Vec<String> = store.on_network(name).into_iter().map(|c| c.name).collect();
        named.sort();
        if !named.is_empty() {
            return Err(NetError::InUse {
                network: name.into(),
                guests: named.join(", "),
            });
        }
        net.teardown()?;
        for p in [path, super::ipam::leases_path(layout, name)] {
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&p)(e)),
            }
        }
        Ok(())
    }

    /// The nf_tables table of this network's NAT, isolation and
    /// host-protection rules (see `policy`).
    pub fn table(&self) -> String {
        format!("vbuild-net-{}", self.name)
    }

    /// The name servers a guest's resolv.conf lists, in order: the
    /// network's own responder at the gateway (of a family the guest has
    /// an address in; not with `--no-dns`), then the network's resolvers,
    /// so names beyond the guests' own still resolve when the responder is
    /// down or refuses them. At most three: glibc reads no more.
    pub fn guest_resolvers(&self, has_v4: bool, has_v6: bool) -> Vec<IpAddr> {
        let mut out: Vec<IpAddr> = super::dns::guest_nameserver(self, has_v4, has_v6)
            .into_iter()
            .collect();
        for d in &self.dns {
            if !out.contains(d) {
                out.push(*d);
            }
        }
        out.truncate(3);
        out
    }

    /// Gateway addresses (IPv4 first).
    pub fn gateways(&self) -> Vec<IpAddr> {
        self.gateway4.into_iter().chain(self.gateway6).collect()
    }

    /// Subnets as text, for messages.
    pub fn subnets_text(&self) -> String {
        let v: Vec<String> = self
            .subnet4
            .iter()
            .chain(self.subnet6.iter())
            .map(|s| s.to_string())
            .collect();
        v.join(", ")
    }

    /// Checks that `c` is a usable guest address here: inside a subnet,
    /// with the subnet's prefix length (a missing one is taken from the
    /// subnet), not the network, broadcast or gateway address.
    pub fn check_address(&self, c: Cidr) -> Result<Cidr, NetError> {
        let sub = if c.is_v4() {
            self.subnet4
        } else {
            self.subnet6
        };
        let outside = || NetError::OutsideSubnet {
            addr: c.to_string(),
            network: self.name.clone(),
            subnets: self.subnets_text(),
        };
        let sub = sub.ok_or_else(outside)?;
        if !sub.contains(c.addr) || c.prefix != sub.prefix {
            return Err(outside());
        }
        let i = sub.index_of(c.addr).unwrap_or(0);
        if i == 0 || i > sub.last_host_index() {
            return Err(NetError::InvalidNetwork(format!(
                "address {c} is the network or broadcast address of {sub}; pick a host address"
            )));
        }
        if self.gateways().contains(&c.addr) {
            return Err(NetError::AddressInUse {
                addr: c.to_string(),
                network: self.name.clone(),
                owner: "the gateway".into(),
            });
        }
        Ok(c)
    }

    /// A stable, locally administered MAC for the bridge, from its name.
    fn bridge_mac(&self) -> [u8; 6] {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.name.bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        let b = h.to_be_bytes();
        [0x02, b[0], b[1], b[2], b[3], b[4]]
    }

    /// Makes the host side exist: bridge with gateway addresses, up, and
    /// the NAT/isolation table; turns IPv4 forwarding on for NAT. Safe to
    /// run again at every guest start.
    pub fn ensure_up(&self) -> Result<(), NetError> {
        let k = kernel(&self.name);
        let mut nl = RtNetlink::open().map_err(&k)?;
        let br = match nl.link(&self.bridge).map_err(&k)? {
            Some(l) if l.kind.as_deref() == Some("bridge") => l,
            Some(_) => {
                return Err(NetError::InvalidNetwork(format!(
                    "network {}: link {} exists and is not a bridge; rename that link or delete this network",
                    self.name, self.bridge
                )))
            }
            None => {
                match nl.create_bridge(&self.bridge, self.mtu) {
                    Ok(()) => {}
                    Err(e) if e.errno() == Some(libc::EEXIST) => {}
                    Err(e) => return Err(k(e)),
                }
                let i = nl.link_index(&self.bridge).map_err(&k)?;
                nl.set_mac(i, self.bridge_mac()).map_err(&k)?;
                nl.link(&self.bridge)
                    .map_err(&k)?
                    .ok_or_else(|| k(vbuild_kernel::net::NetError::NoSuchLink(self.bridge.clone())))?
            }
        };
        for (gw, sub) in [(self.gateway4, self.subnet4), (self.gateway6, self.subnet6)] {
            if let (Some(gw), Some(sub)) = (gw, sub) {
                nl.add_address(br.index, gw, sub.prefix).map_err(&k)?;
            }
        }
        nl.set_up(br.index, true).map_err(&k)?;
        if br.group != BRIDGE_GROUP {
            nl.set_group(br.index, BRIDGE_GROUP).map_err(&k)?;
        }
        // The table is written when missing or not what this version
        // writes (an older vbuild's); a network's settings never change
        // after creation, so a table with the right rules is already right
        // (and a guest's start skips the commit).
        let mut nft = Nft::open().map_err(&k)?;
        let table = self.table();
        if nft.rule_count(Family::Inet, &table).map_err(&k)? != policy::rule_count(self) {
            nft.replace_table(Family::Inet, &table, &policy::chains(self))
                .map_err(&k)?;
        }
        if self.nat {
            vbuild_kernel::net::set_forwarding(Forwarding {
                v4: true,
                v6: false,
            })
            .map_err(&k)?;
        }
        Ok(())
    }

    /// Removes the bridge and the network's table (idempotent). Forwarding
    /// stays on: other users of the host may rely on it.
    pub fn teardown(&self) -> Result<(), NetError> {
        let k = kernel(&self.name);
        let mut nft = Nft::open().map_err(&k)?;
        nft.delete_table_if_exists(Family::Inet, &self.table())
            .map_err(&k)?;
        let mut nl = RtNetlink::open().map_err(&k)?;
        if let Some(l) = nl.link(&self.bridge).map_err(&k)? {
            if l.kind.as_deref() == Some("bridge") {
                nl.delete_link_named(&self.bridge).map_err(&k)?;
            }
        }
        Ok(())
    }
}
