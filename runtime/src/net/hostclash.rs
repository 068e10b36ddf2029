//! A new network's subnets against the host's own addresses and routes.
//! Putting a subnet the host already reaches (its LAN, a VPN, the default
//! gateway's address) on a bridge would steal that traffic from the host,
//! so `net create` refuses it, naming the host interface or route.

use super::{kernel, Cidr, NetError};
use std::net::IpAddr;
use vbuild_kernel::net::RtNetlink;

/// One thing the host already uses, as read from its routing state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostUse {
    /// An address on a host interface.
    Address { link: String, addr: Cidr },
    /// A route of the main table (destination, or a default route's gateway).
    Route {
        link: String,
        dst: Option<Cidr>,
        gateway: Option<IpAddr>,
    },
}

/// The first host use that collides with `subnet`, as the error to show.
/// Default routes collide only through their gateway; IPv6 link-local and
/// multicast routes exist on every link and are not the host's "networks".
pub(crate) fn clash(subnet: &Cidr, uses: &[HostUse]) -> Option<String> {
    let hint = "choose another subnet (see `ip addr` and `ip route` for what the host uses)";
    for u in uses {
        match u {
            HostUse::Address { link, addr } => {
                if subnet.contains(addr.addr) || addr.net().overlaps(subnet) {
                    return Some(format!(
                        "subnet {subnet} overlaps host interface {link} ({addr}); {hint}"
                    ));
                }
            }
            HostUse::Route { link, dst, gateway } => {
                if let Some(g) = gateway {
                    if subnet.contains(*g) {
                        let to = dst.map_or("default".to_string(), |d| d.to_string());
                        return Some(format!(
                            "subnet {subnet} contains {g}, the gateway of the host route {to} via {link}; {hint}"
                        ));
                    }
                }
                let Some(d) = dst else { continue };
                if d.prefix == 0 || is_per_link_v6(d) {
                    continue;
                }
                if d.overlaps(subnet) {
                    return Some(format!(
                        "subnet {subnet} overlaps the host route {d} via {link}; {hint}"
                    ));
                }
            }
        }
    }
    None
}

fn is_per_link_v6(c: &Cidr) -> bool {
    match c.addr {
        IpAddr::V6(a) => (a.segments()[0] & 0xffc0) == 0xfe80 || a.segments()[0] >> 8 == 0xff,
        IpAddr::V4(_) => false,
    }
}

/// The host's addresses and main-table routes, with link names, leaving
/// out loopback and `skip_links` (vbuild's own bridges, checked by name
/// against their networks already).
pub(crate) fn host_uses(skip_links: &[String]) -> Result<Vec<HostUse>, NetError> {
    let k = kernel("host");
    let mut nl = RtNetlink::open().map_err(&k)?;
    let links = nl.links().map_err(&k)?;
    let name = |i: u32| {
        links
            .iter()
            .find(|l| l.index == i)
            .map_or(format!("link {i}"), |l| l.name.clone())
    };
    let skip = |i: u32| {
        let n = name(i);
        n == "lo" || skip_links.contains(&n)
    };
    let mut out = Vec::new();
    for a in nl.addresses().map_err(&k)? {
        if skip(a.index) {
            continue;
        }
        if let Ok(addr) = Cidr::new(a.addr, a.prefix) {
            out.push(HostUse::Address {
                link: name(a.index),
                addr,
            });
        }
    }
    for v6 in [false, true] {
        for r in nl.routes(v6).map_err(&k)? {
            if r.oif.is_some_and(skip) {
                continue;
            }
            out.push(HostUse::Route {
                link: r.oif.map_or("no interface".into(), name),
                dst: r.dst.and_then(|(a, p)| Cidr::new(a, p).ok()),
                gateway: r.gateway,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    fn host() -> Vec<HostUse> {
        vec![
            HostUse::Address {
                link: "eth0".into(),
                addr: c("192.0.2.15/24"),
            },
            HostUse::Route {
                link: "eth0".into(),
                dst: None,
                gateway: Some("198.51.100.1".parse().unwrap()),
            },
            HostUse::Route {
                link: "wg0".into(),
                dst: Some(c("10.8.0.0/16")),
                gateway: None,
            },
            HostUse::Route {
                link: "eth0".into(),
                dst: Some(c("fe80::/64")),
                gateway: None,
            },
            HostUse::Route {
                link: "eth0".into(),
                dst: Some(c("::/0")),
                gateway: Some("fe80::1".parse().unwrap()),
            },
        ]
    }

    #[test]
    fn a_host_address_subnet_is_refused_naming_the_interface() {
        let e = clash(&c("192.0.2.0/24"), &host()).unwrap();
        assert!(e.contains("host interface eth0 (192.0.2.15/24)"), "{e}");
        assert!(e.contains("choose another subnet"), "{e}");
        // A wider subnet around it collides too.
        assert!(clash(&c("192.0.0.0/16"), &host()).is_some());
    }

    #[test]
    fn the_default_gateway_inside_the_subnet_is_refused() {
        let e = clash(&c("198.51.100.0/28"), &host()).unwrap();
        assert!(
            e.contains("198.51.100.1, the gateway of the host route default via eth0"),
            "{e}"
        );
    }

    #[test]
    fn a_routed_subnet_is_refused_naming_the_route() {
        let e = clash(&c("10.8.4.0/24"), &host()).unwrap();
        assert!(e.contains("host route 10.8.0.0/16 via wg0"), "{e}");
    }

    #[test]
    fn unrelated_subnets_and_per_link_v6_routes_pass() {
        assert_eq!(clash(&c("10.77.0.0/24"), &host()), None);
        assert_eq!(clash(&c("fd42:77::/64"), &host()), None);
    }
}
