//! What a network's guests may reach beyond their own link: the chains of
//! the network's `inet` table (`vbuild-net-NAME`), created with its bridge
//! and deleted with it.
//!
//! Every vbuild bridge is put in link group [`BRIDGE_GROUP`], so one rule
//! per network can tell "another vbuild network" (`oifgroup`) from the
//! host's other links without knowing the other networks.
//!
//! | chain (hook) | traffic | verdict |
//! |---|---|---|
//! | input | from the bridge, part of a connection the host opened | accept |
//! | input | NDP solicitations/advertisements (135, 136) | accept |
//! | input | ICMP/ICMPv6 echo request to the network's gateway | accept |
//! | input | UDP/TCP 53 to a resolver of the network (`--dns`) | accept |
//! | input | UDP 53 to a gateway (its name responder, unless `--no-dns`) | accept |
//! | input | anything else from the bridge (unless `--host-access`) | drop |
//! | forward | established/related, or destination-NATed (published port) | accept |
//! | forward | between two guests of this network | accept, drop if `--isolated` |
//! | forward | from this network into another vbuild network, or back | drop |
//! | forward | anything else (egress to non-vbuild destinations) | accept |
//! | postrouting | from the subnet to outside it (`--nat`) | masquerade |
//!
//! vbuild's networks serve no DHCP (guests get static addresses in their
//! own files). Their DNS is the guests' names only (`dns`, UDP on the
//! gateway); any other resolver on the host is reachable only when it is
//! listed as the network's `--dns`. The rules only ever
//! match packets entering or leaving vbuild bridges, so the host's own
//! traffic and other users' tables are not touched.

use super::Network;
use std::net::IpAddr;
use vbuild_kernel::net::nft::{
    Chain, ChainType, Hook, Rule, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP,
    NFPROTO_IPV4, NFPROTO_IPV6,
};

/// The link group of every vbuild bridge ("vb" in ASCII): a number no
/// other tool picks by default (links start in group 0).
pub const BRIDGE_GROUP: u32 = 0x7662;

const ICMP_ECHO_REQUEST: u8 = 8;
const ICMPV6_ECHO_REQUEST: u8 = 128;
const ND_NEIGHBOR_SOLICIT: u8 = 135;
const ND_NEIGHBOR_ADVERT: u8 = 136;

fn nfproto(a: IpAddr) -> u8 {
    if a.is_ipv4() {
        NFPROTO_IPV4
    } else {
        NFPROTO_IPV6
    }
}

/// The network's chains (see the module's table).
pub(crate) fn chains(net: &Network) -> Vec<(Chain, Vec<Rule>)> {
    let mut out = vec![(
        Chain {
            name: "forward".into(),
            hook: Hook::Forward,
            priority: 0,
            kind: ChainType::Filter,
        },
        forward_rules(net),
    )];
    if net.nat {
        out.push((
            Chain {
                name: "postrouting".into(),
                hook: Hook::Postrouting,
                priority: 100,
                kind: ChainType::Nat,
            },
            nat_rules(net),
        ));
    }
    if !net.host_access {
        out.push((
            Chain {
                name: "input".into(),
                hook: Hook::Input,
                priority: 0,
                kind: ChainType::Filter,
            },
            input_rules(net),
        ));
    }
    out
}

fn input_rules(net: &Network) -> Vec<Rule> {
    let br = net.bridge.as_str();
    let from = || Rule::new().iifname(true, br);
    let mut r = vec![from().ct_established_or_related().accept()];
    for ty in [ND_NEIGHBOR_SOLICIT, ND_NEIGHBOR_ADVERT] {
        r.push(
            from()
                .nfproto(NFPROTO_IPV6)
                .l4proto(IPPROTO_ICMPV6)
                .icmp_type(ty)
                .accept(),
        );
    }
    for gw in net.gateways() {
        let (l4, ty) = if gw.is_ipv4() {
            (IPPROTO_ICMP, ICMP_ECHO_REQUEST)
        } else {
            (IPPROTO_ICMPV6, ICMPV6_ECHO_REQUEST)
        };
        r.push(
            from()
                .nfproto(nfproto(gw))
                .ip_daddr(true, gw, if gw.is_ipv4() { 32 } else { 128 })
                .l4proto(l4)
                .icmp_type(ty)
                .accept(),
        );
    }
    for d in &net.dns {
        for l4 in [IPPROTO_UDP, IPPROTO_TCP] {
            r.push(
                from()
                    .nfproto(nfproto(*d))
                    .ip_daddr(true, *d, if d.is_ipv4() { 32 } else { 128 })
                    .l4proto(l4)
                    .dport(53)
                    .accept(),
            );
        }
    }
    // The network's name responder (`dns`): UDP only, it does not speak
    // TCP (its replies are never truncated).
    if !net.no_dns {
        for gw in net.gateways().into_iter().filter(|g| !net.dns.contains(g)) {
            r.push(
                from()
                    .nfproto(nfproto(gw))
                    .ip_daddr(true, gw, if gw.is_ipv4() { 32 } else { 128 })
                    .l4proto(IPPROTO_UDP)
                    .dport(super::dns::PORT)
                    .accept(),
            );
        }
    }
    r.push(from().counter().drop());
    r
}

fn forward_rules(net: &Network) -> Vec<Rule> {
    let br = net.bridge.as_str();
    // Accepting here only ends this chain: other tables still decide.
    let mut r = vec![
        Rule::new().ct_established_or_related().accept(),
        Rule::new().ct_dnat().accept(),
    ];
    let within = Rule::new().iifname(true, br).oifname(true, br);
    r.push(if net.isolated {
        within.counter().drop()
    } else {
        within.accept()
    });
    r.push(
        Rule::new()
            .iifname(true, br)
            .oifgroup(true, BRIDGE_GROUP)
            .counter()
            .drop(),
    );
    r.push(
        Rule::new()
            .oifname(true, br)
            .iifgroup(true, BRIDGE_GROUP)
            .counter()
            .drop(),
    );
    r
}

fn nat_rules(net: &Network) -> Vec<Rule> {
    let mut rules = Vec::new();
    for (s, proto) in [(net.subnet4, NFPROTO_IPV4), (net.subnet6, NFPROTO_IPV6)] {
        if let Some(s) = s {
            rules.push(
                Rule::new()
                    .nfproto(proto)
                    .ip_saddr(true, s.addr, s.prefix)
                    .ip_daddr(false, s.addr, s.prefix)
                    .masquerade(),
            );
        }
    }
    rules
}

/// How many rules [`chains`] makes for `net`, to tell an up-to-date table
/// from one an older vbuild wrote.
pub(crate) fn rule_count(net: &Network) -> usize {
    chains(net).iter().map(|(_, r)| r.len()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(isolated: bool, host_access: bool) -> Network {
        let mut n = Network::define(
            "tnet0",
            &["10.88.0.0/24".parse().unwrap()],
            &[],
            true,
            isolated,
            vec!["10.88.0.1".parse().unwrap()],
            None,
        )
        .unwrap();
        n.host_access = host_access;
        n
    }

    #[test]
    fn the_host_is_closed_unless_the_network_opts_in() {
        let closed = chains(&net(false, false));
        let input = closed.iter().find(|(c, _)| c.hook == Hook::Input);
        let (_, rules) = input.expect("an input chain by default");
        // established, NS, NA, echo to the gateway, DNS udp+tcp (the
        // gateway is the --dns resolver: no second rule for the
        // responder), drop
        assert_eq!(rules.len(), 7);
        assert!(format!("{:?}", rules.last().unwrap()).contains("Drop"));
        let open = chains(&net(false, true));
        assert!(open.iter().all(|(c, _)| c.hook != Hook::Input));
    }

    #[test]
    fn the_name_responder_is_reachable_unless_turned_off() {
        let input = |n: &Network| {
            chains(n)
                .into_iter()
                .find(|(c, _)| c.hook == Hook::Input)
                .unwrap()
                .1
        };
        let mut n = Network::define(
            "tnet1",
            &[
                "10.88.1.0/24".parse().unwrap(),
                "fd88:1::/64".parse().unwrap(),
            ],
            &[],
            true,
            false,
            vec!["9.9.9.9".parse().unwrap()],
            None,
        )
        .unwrap();
        let on = input(&n);
        // established, NS, NA, 2 echo, 9.9.9.9 udp+tcp, 2 gateway udp, drop
        assert_eq!(on.len(), 10);
        let expect = Rule::new()
            .iifname(true, "tnet1")
            .nfproto(NFPROTO_IPV4)
            .ip_daddr(true, "10.88.1.1".parse().unwrap(), 32)
            .l4proto(IPPROTO_UDP)
            .dport(53)
            .accept();
        assert_eq!(format!("{:?}", on[7]), format!("{expect:?}"));
        n.no_dns = true;
        assert_eq!(input(&n).len(), 8);
    }

    #[test]
    fn isolation_decides_the_within_network_verdict_only() {
        let verdict = |n: &Network| {
            let fw = forward_rules(n);
            format!("{:?}", fw[2].exprs().last().unwrap())
        };
        assert!(verdict(&net(true, false)).contains("Drop"));
        assert!(verdict(&net(false, false)).contains("Accept"));
        assert_eq!(forward_rules(&net(true, false)).len(), 5);
        assert_eq!(rule_count(&net(false, true)), 5 + 1);
    }
}
