//! A guest's anti-spoofing filter: a `bridge` family chain that sees every
//! frame as it enters the bridge from the guest's port, before the bridge
//! forwards it or the host receives it, and lets through only what the
//! guest may say about itself.
//!
//! | from the guest's port | verdict |
//! |---|---|
//! | Ethernet source other than its MAC | drop |
//! | ARP whose sender MAC is not its MAC | drop |
//! | ICMPv6 router advertisement (134) or redirect (137) | drop |
//! | DHCP/DHCPv6 server messages (UDP to 68/546, from 67/547) | drop |
//! | IPv4 to 127.0.0.0/8 (the host's loopback, routable on a bridge with published ports) | drop |
//! | NDP advertisement (136) for a target not its own | drop |
//! | NDP solicitation (135) from `::` (DAD) for a target not its own | drop |
//! | ARP / IPv4 / IPv6 from one of its addresses | accept |
//! | IPv6 from its own link-local address (EUI-64 of its MAC) | accept |
//! | ARP probe (sender 0.0.0.0), DAD and MLDv2 reports from `::` | accept |
//! | anything else (other sources, other EtherTypes, VLAN tags) | drop |
//!
//! IPv6 is held as strictly as IPv4: no `fe80::/10` wildcard, so a guest
//! cannot speak for another guest's link-local address, and the host
//! learns neighbours only for addresses the guest owns.

use super::Cidr;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use vbuild_kernel::net::nft::{
    Chain, ChainType, Hook, Rule, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, IPPROTO_ICMPV6, IPPROTO_UDP,
};

/// ICMPv6 neighbour solicitation.
const ND_NEIGHBOR_SOLICIT: u8 = 135;
/// ICMPv6 neighbour advertisement.
const ND_NEIGHBOR_ADVERT: u8 = 136;
/// ICMPv6 router advertisement.
const ND_ROUTER_ADVERT: u8 = 134;
/// ICMPv6 redirect.
const ND_REDIRECT: u8 = 137;
/// ICMPv6 MLDv2 listener report (sent from `::` during DAD).
const MLD2_LISTENER_REPORT: u8 = 143;

/// The IPv6 link-local address the kernel derives from `mac` (modified
/// EUI-64, RFC 4291 appendix A): fe80:: + mac with the U/L bit flipped and
/// ff:fe in the middle. The guest's `eth0` is set to generate exactly this.
pub fn link_local_of(mac: [u8; 6]) -> Ipv6Addr {
    let m = mac;
    Ipv6Addr::from([
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        m[0] ^ 0x02,
        m[1],
        m[2],
        0xff,
        0xfe,
        m[3],
        m[4],
        m[5],
    ])
}

/// The bridge-family chain every guest's anti-spoofing rules live in: it
/// runs as frames enter the bridge, before forwarding or local delivery.
pub(crate) fn chain() -> Chain {
    Chain {
        name: "antispoof".into(),
        hook: Hook::Prerouting,
        priority: -200,
        kind: ChainType::Filter,
    }
}

/// The rules for port `port` of a guest with hardware address `mac` and
/// addresses `addrs` (see the module's table).
pub(crate) fn rules(port: &str, mac: [u8; 6], addrs: &[Cidr]) -> Vec<Rule> {
    let from = || Rule::new().iifname(true, port);
    let icmp6 = |ty: u8| {
        from()
            .ether_type(ETH_P_IPV6)
            .l4proto(IPPROTO_ICMPV6)
            .icmp_type(ty)
    };
    let udp = |eth: u16| from().ether_type(eth).l4proto(IPPROTO_UDP);
    let link_local = link_local_of(mac);
    let mut own6: Vec<Ipv6Addr> = addrs
        .iter()
        .filter_map(|a| match a.addr {
            IpAddr::V6(v) => Some(v),
            IpAddr::V4(_) => None,
        })
        .collect();
    own6.push(link_local);
    let unspecified: IpAddr = Ipv6Addr::UNSPECIFIED.into();

    let mut r = vec![
        from().ether_saddr(false, mac).drop(),
        from()
            .ether_type(ETH_P_ARP)
            .arp_sender_mac(false, mac)
            .drop(),
        // Only routers advertise routes and prefixes or redirect.
        icmp6(ND_ROUTER_ADVERT).counter().drop(),
        icmp6(ND_REDIRECT).counter().drop(),
        // Only servers answer DHCP clients.
        udp(ETH_P_IP).dport(68).drop(),
        udp(ETH_P_IP).sport(67).drop(),
        udp(ETH_P_IPV6).dport(546).drop(),
        udp(ETH_P_IPV6).sport(547).drop(),
        // Nothing from a guest is for the host's loopback: a bridge with a
        // published port routes 127.0.0.0/8 (route_localnet), and this keeps
        // the host's 127.0.0.1-only services out of every guest's reach.
        from()
            .ether_type(ETH_P_IP)
            .ip_daddr(true, Ipv4Addr::new(127, 0, 0, 0).into(), 8)
            .counter()
            .drop(),
        // A guest advertises only its own addresses...
        icmp6(ND_NEIGHBOR_ADVERT)
            .nd_target_not_in(&own6)
            .counter()
            .drop(),
        // ...and claims (duplicate address detection) only its own.
        icmp6(ND_NEIGHBOR_SOLICIT)
            .ip_saddr(true, unspecified, 128)
            .nd_target_not_in(&own6)
            .counter()
            .drop(),
    ];
    for a in addrs {
        match a.addr {
            IpAddr::V4(v4) => {
                r.push(
                    from()
                        .ether_type(ETH_P_ARP)
                        .arp_sender_ip(true, v4)
                        .accept(),
                );
                r.push(
                    from()
                        .ether_type(ETH_P_IP)
                        .ip_saddr(true, a.addr, 32)
                        .accept(),
                );
            }
            IpAddr::V6(_) => {
                r.push(
                    from()
                        .ether_type(ETH_P_IPV6)
                        .ip_saddr(true, a.addr, 128)
                        .accept(),
                );
            }
        }
    }
    // ARP probes (RFC 5227) announce nothing: sender 0.0.0.0.
    r.push(
        from()
            .ether_type(ETH_P_ARP)
            .arp_sender_ip(true, Ipv4Addr::UNSPECIFIED)
            .accept(),
    );
    r.push(
        from()
            .ether_type(ETH_P_IPV6)
            .ip_saddr(true, link_local.into(), 128)
            .accept(),
    );
    // From `::` only what duplicate address detection sends (its targets
    // were checked above).
    for ty in [ND_NEIGHBOR_SOLICIT, MLD2_LISTENER_REPORT] {
        r.push(
            from()
                .ether_type(ETH_P_IPV6)
                .ip_saddr(true, unspecified, 128)
                .l4proto(IPPROTO_ICMPV6)
                .icmp_type(ty)
                .accept(),
        );
    }
    r.push(from().counter().drop());
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use vbuild_kernel::net::nft::{CmpOp, Expr};

    #[test]
    fn link_local_is_the_kernels_eui64() {
        // The U/L bit flipped, ff:fe inserted (the hostile_net tests check
        // it against the address the kernel gives a guest's eth0).
        assert_eq!(
            link_local_of([0x02, 0x11, 0x22, 0x33, 0x44, 0x55]),
            "fe80::11:22ff:fe33:4455".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(
            link_local_of([0x5a, 0xb1, 0, 0, 0, 1]),
            "fe80::58b1:ff:fe00:1".parse::<Ipv6Addr>().unwrap()
        );
    }

    #[test]
    fn no_rule_accepts_a_link_local_prefix_and_nd_targets_are_the_guests() {
        let mac = [0x02, 0, 0, 0, 0, 7];
        let addrs: Vec<Cidr> = vec![
            "10.77.0.7/24".parse().unwrap(),
            "fd77::7/64".parse().unwrap(),
        ];
        let rules = rules("vb-x-000001", mac, &addrs);
        // A prefix match is a bitwise AND followed by a compare; the only
        // masks allowed are the ones of exact (full length) addresses,
        // i.e. none at all on IPv6 sources.
        let fe80 = [0xfe, 0x80];
        for r in &rules {
            for w in r.exprs().windows(2) {
                if let (Expr::And(_), Expr::Cmp(_, v)) = (&w[0], &w[1]) {
                    assert!(!v.starts_with(&fe80), "a fe80::/10 wildcard is back: {r:?}");
                }
            }
        }
        // The NA rule compares the target with exactly the guest's two IPv6
        // addresses, then drops.
        let na = rules
            .iter()
            .find(|r| {
                r.exprs()
                    .contains(&Expr::Cmp(CmpOp::Eq, vec![ND_NEIGHBOR_ADVERT]))
            })
            .expect("an NA rule");
        let targets: Vec<&Expr> = na
            .exprs()
            .iter()
            .filter(|e| matches!(e, Expr::Cmp(CmpOp::Ne, v) if v.len() == 16))
            .collect();
        assert_eq!(targets.len(), 2);
        assert!(targets.contains(&&Expr::Cmp(CmpOp::Ne, link_local_of(mac).octets().to_vec())));
    }
}
