//! A rule builder: the matches vbuild's filters need, each expanded into
//! the load + compare expressions `nft` itself would generate. A rule
//! stops at the first compare that fails, so chained matches mean "and".
//!
//! In `inet` and `bridge` tables a layer-3 match is only meaningful after
//! the family match (`nfproto` / `ether_type`); callers add it first.

use super::expr::{Base, CmpOp, CtKey, Expr, MetaKey, Verdict, REG1, REG2};
use std::net::{IpAddr, Ipv6Addr};

/// EtherType of IPv4.
pub const ETH_P_IP: u16 = 0x0800;
/// EtherType of ARP.
pub const ETH_P_ARP: u16 = 0x0806;
/// EtherType of IPv6.
pub const ETH_P_IPV6: u16 = 0x86dd;
/// NFPROTO_IPV4, the value `meta nfproto` loads for IPv4 packets.
pub const NFPROTO_IPV4: u8 = 2;
/// NFPROTO_IPV6.
pub const NFPROTO_IPV6: u8 = 10;
/// IP protocol number of ICMP.
pub const IPPROTO_ICMP: u8 = 1;
/// IP protocol number of TCP.
pub const IPPROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const IPPROTO_UDP: u8 = 17;
/// IP protocol number of ICMPv6.
pub const IPPROTO_ICMPV6: u8 = 58;

/// `ct state` bits (NF_CT_STATE_BIT): established and related.
const CT_STATE_ESTABLISHED_RELATED: u32 = (1 << 1) | (1 << 2);
/// `ct status` bit IPS_DST_NAT: the connection's destination was rewritten.
const CT_STATUS_DNAT: u32 = 1 << 5;

/// One rule: expressions in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rule {
    pub(crate) exprs: Vec<Expr>,
}

/// `name` as the kernel compares interface names: NUL padded to IFNAMSIZ.
fn ifname(name: &str) -> Vec<u8> {
    let mut v = name.as_bytes().to_vec();
    v.resize(16, 0);
    v
}

/// A prefix mask of `bits` over `len` bytes.
fn mask(len: usize, bits: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            let left = (bits as usize).saturating_sub(i * 8).min(8);
            if left == 0 {
                0
            } else {
                0xffu8 << (8 - left)
            }
        })
        .collect()
}

fn ip_bytes(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    }
}

impl Rule {
    /// An empty rule (matches everything, no verdict: continue).
    pub fn new() -> Rule {
        Rule::default()
    }

    /// The expressions, for inspection in tests.
    pub fn exprs(&self) -> &[Expr] {
        &self.exprs
    }

    fn push(mut self, e: impl IntoIterator<Item = Expr>) -> Rule {
        self.exprs.extend(e);
        self
    }

    fn load_cmp(self, load: Expr, op: CmpOp, data: Vec<u8>) -> Rule {
        self.push([load, Expr::Cmp(op, data)])
    }

    fn prefix_cmp(self, load: Expr, op: CmpOp, addr: IpAddr, prefix: u8) -> Rule {
        let bytes = ip_bytes(addr);
        let full = bytes.len() as u8 * 8;
        if prefix >= full {
            return self.load_cmp(load, op, bytes);
        }
        let m = mask(bytes.len(), prefix);
        let net: Vec<u8> = bytes.iter().zip(&m).map(|(b, k)| b & k).collect();
        self.push([load, Expr::And(m), Expr::Cmp(op, net)])
    }

    /// Input interface name is (`eq`) or is not `name`.
    pub fn iifname(self, eq: bool, name: &str) -> Rule {
        self.load_cmp(Expr::Meta(MetaKey::IifName), op(eq), ifname(name))
    }

    /// Output interface name is (`eq`) or is not `name`.
    pub fn oifname(self, eq: bool, name: &str) -> Rule {
        self.load_cmp(Expr::Meta(MetaKey::OifName), op(eq), ifname(name))
    }

    /// Layer-3 family (`inet` tables): [`NFPROTO_IPV4`] or [`NFPROTO_IPV6`].
    pub fn nfproto(self, proto: u8) -> Rule {
        self.load_cmp(Expr::Meta(MetaKey::NfProto), CmpOp::Eq, vec![proto])
    }

    /// Any of the flag bits in `bits` is set in a host-endian u32 loaded by `load`.
    fn any_bit(self, load: Expr, bits: u32) -> Rule {
        self.push([
            load,
            Expr::And(bits.to_ne_bytes().to_vec()),
            Expr::Cmp(CmpOp::Ne, vec![0; 4]),
        ])
    }

    /// The packet belongs to a connection already accepted (a reply, or
    /// an ICMP error about it): `ct state established,related`.
    pub fn ct_established_or_related(self) -> Rule {
        self.any_bit(Expr::Ct(CtKey::State), CT_STATE_ESTABLISHED_RELATED)
    }

    /// The connection was destination-NATed (a published port): `ct status dnat`.
    pub fn ct_dnat(self) -> Rule {
        self.any_bit(Expr::Ct(CtKey::Status), CT_STATUS_DNAT)
    }

    /// Input interface group (the link's `group`) is (`eq`) or is not `group`.
    pub fn iifgroup(self, eq: bool, group: u32) -> Rule {
        self.load_cmp(
            Expr::Meta(MetaKey::IifGroup),
            op(eq),
            group.to_ne_bytes().to_vec(),
        )
    }

    /// Output interface group is (`eq`) or is not `group`.
    pub fn oifgroup(self, eq: bool, group: u32) -> Rule {
        self.load_cmp(
            Expr::Meta(MetaKey::OifGroup),
            op(eq),
            group.to_ne_bytes().to_vec(),
        )
    }

    /// ICMP or ICMPv6 message type (after an `l4proto` match).
    pub fn icmp_type(self, ty: u8) -> Rule {
        self.load_cmp(
            Expr::Payload {
                base: Base::Transport,
                offset: 0,
                len: 1,
            },
            CmpOp::Eq,
            vec![ty],
        )
    }

    /// The target address of an NDP neighbour solicitation or advertisement
    /// (after `icmp_type(135 | 136)`) is none of `addrs`; with no `addrs`
    /// every target matches.
    pub fn nd_target_not_in(self, addrs: &[Ipv6Addr]) -> Rule {
        let load = Expr::Payload {
            base: Base::Transport,
            offset: 8,
            len: 16,
        };
        let cmps = addrs
            .iter()
            .map(|a| Expr::Cmp(CmpOp::Ne, a.octets().to_vec()));
        self.push(std::iter::once(load).chain(cmps))
    }

    /// TCP/UDP source port (after an `l4proto` match).
    pub fn sport(self, port: u16) -> Rule {
        self.load_cmp(
            Expr::Payload {
                base: Base::Transport,
                offset: 0,
                len: 2,
            },
            CmpOp::Eq,
            port.to_be_bytes().to_vec(),
        )
    }

    /// Layer-4 protocol number (6 TCP, 17 UDP).
    pub fn l4proto(self, proto: u8) -> Rule {
        self.load_cmp(Expr::Meta(MetaKey::L4Proto), CmpOp::Eq, vec![proto])
    }

    /// EtherType of the frame (`bridge` tables).
    pub fn ether_type(self, ty: u16) -> Rule {
        self.load_cmp(
            Expr::Payload {
                base: Base::Link,
                offset: 12,
                len: 2,
            },
            CmpOp::Eq,
            ty.to_be_bytes().to_vec(),
        )
    }

    /// Ethernet source address is (`eq`) or is not `mac`.
    pub fn ether_saddr(self, eq: bool, mac: [u8; 6]) -> Rule {
        self.load_cmp(
            Expr::Payload {
                base: Base::Link,
                offset: 6,
                len: 6,
            },
            op(eq),
            mac.to_vec(),
        )
    }

    /// IP source address in (`eq`) or not in `addr/prefix`; the family of
    /// `addr` decides the header layout.
    pub fn ip_saddr(self, eq: bool, addr: IpAddr, prefix: u8) -> Rule {
        let (offset, len) = if addr.is_ipv4() { (12, 4) } else { (8, 16) };
        let load = Expr::Payload {
            base: Base::Network,
            offset,
            len,
        };
        self.prefix_cmp(load, op(eq), addr, prefix)
    }

    /// IP destination address in (`eq`) or not in `addr/prefix`.
    pub fn ip_daddr(self, eq: bool, addr: IpAddr, prefix: u8) -> Rule {
        let (offset, len) = if addr.is_ipv4() { (16, 4) } else { (24, 16) };
        let load = Expr::Payload {
            base: Base::Network,
            offset,
            len,
        };
        self.prefix_cmp(load, op(eq), addr, prefix)
    }

    /// ARP sender protocol address (Ethernet/IPv4 ARP) is (`eq`) or is not `addr`.
    pub fn arp_sender_ip(self, eq: bool, addr: std::net::Ipv4Addr) -> Rule {
        self.load_cmp(
            Expr::Payload {
                base: Base::Network,
                offset: 14,
                len: 4,
            },
            op(eq),
            addr.octets().to_vec(),
        )
    }

    /// ARP sender hardware address is (`eq`) or is not `mac`.
    pub fn arp_sender_mac(self, eq: bool, mac: [u8; 6]) -> Rule {
        self.load_cmp(
            Expr::Payload {
                base: Base::Network,
                offset: 8,
                len: 6,
            },
            op(eq),
            mac.to_vec(),
        )
    }

    /// TCP/UDP destination port (after an `l4proto` match).
    pub fn dport(self, port: u16) -> Rule {
        self.load_cmp(
            Expr::Payload {
                base: Base::Transport,
                offset: 2,
                len: 2,
            },
            CmpOp::Eq,
            port.to_be_bytes().to_vec(),
        )
    }

    /// The destination is one of this host's own addresses (fib daddr
    /// type local), so published ports never capture traffic to others.
    pub fn daddr_is_local(self) -> Rule {
        // RTN_LOCAL = 2, compared as a host-endian u32.
        self.load_cmp(Expr::FibDaddrType, CmpOp::Eq, 2u32.to_ne_bytes().to_vec())
    }

    /// Counts matching packets.
    pub fn counter(self) -> Rule {
        self.push([Expr::Counter])
    }

    /// Ends with accept.
    pub fn accept(self) -> Rule {
        self.push([Expr::Verdict(Verdict::Accept)])
    }

    /// Ends with drop.
    pub fn drop(self) -> Rule {
        self.push([Expr::Verdict(Verdict::Drop)])
    }

    /// Ends with destination NAT to `addr`:`port` (a `nat` chain).
    pub fn dnat(self, addr: IpAddr, port: u16) -> Rule {
        let family = if addr.is_ipv4() { 2 } else { 10 };
        self.push([
            Expr::Immediate {
                reg: REG1,
                data: ip_bytes(addr),
            },
            Expr::Immediate {
                reg: REG2,
                data: port.to_be_bytes().to_vec(),
            },
            Expr::Dnat { family },
        ])
    }

    /// Ends with masquerade (a `nat` postrouting chain).
    pub fn masquerade(self) -> Rule {
        self.push([Expr::Masquerade])
    }
}

fn op(eq: bool) -> CmpOp {
    if eq {
        CmpOp::Eq
    } else {
        CmpOp::Ne
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conntrack_matches_test_bits_and_nd_targets_load_once() {
        let r = Rule::new().ct_established_or_related();
        assert_eq!(
            r.exprs(),
            [
                Expr::Ct(CtKey::State),
                Expr::And(6u32.to_ne_bytes().to_vec()),
                Expr::Cmp(CmpOp::Ne, vec![0; 4])
            ]
        );
        let a: Ipv6Addr = "fd77::2".parse().unwrap();
        let b: Ipv6Addr = "fe80::1".parse().unwrap();
        let r = Rule::new().nd_target_not_in(&[a, b]);
        assert_eq!(r.exprs().len(), 3, "one load, one compare per address");
        assert_eq!(r.exprs()[2], Expr::Cmp(CmpOp::Ne, b.octets().to_vec()));
    }

    #[test]
    fn prefixes_become_masks_like_nft_makes_them() {
        assert_eq!(mask(4, 24), vec![255, 255, 255, 0]);
        assert_eq!(mask(4, 20), vec![255, 255, 240, 0]);
        assert_eq!(mask(16, 64)[7..9], [255, 0]);
        let r = Rule::new().ip_saddr(true, "10.77.1.9".parse().unwrap(), 20);
        assert_eq!(
            r.exprs()[2],
            Expr::Cmp(CmpOp::Eq, vec![10, 77, 0, 0]),
            "the compared network is masked too"
        );
        // A full-length address needs no mask.
        assert_eq!(
            Rule::new()
                .ip_saddr(false, "10.0.0.1".parse().unwrap(), 32)
                .exprs()
                .len(),
            2
        );
    }
}
