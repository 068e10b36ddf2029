//! Published ports: `--publish 8080:80[/tcp|udp]` makes connections to
//! port 8080 of any of the host's own addresses land on port 80 of the
//! guest (nf_tables DNAT in the guest's `inet` table, so stopping the guest
//! removes them with it). Traffic from elsewhere is caught in prerouting,
//! the host's own connections in output. Loopback addresses are left out:
//! a packet from 127.0.0.1 cannot be routed to a guest.

use super::{Cidr, NetError};
use crate::paths::Layout;
use std::fmt;
use vbuild_kernel::net::nft::{Chain, ChainType, Hook, Rule, NFPROTO_IPV4, NFPROTO_IPV6};

/// One port forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Publish {
    /// Port on the host.
    pub host: u16,
    /// Port in the guest.
    pub guest: u16,
    /// True for UDP, false for TCP.
    pub udp: bool,
}

impl Publish {
    /// Parses `HOST:GUEST[/tcp|/udp]`.
    pub fn parse(s: &str) -> Result<Publish, NetError> {
        let bad = |why: &str| {
            NetError::Publish(format!(
                "--publish {s:?} {why} (write HOSTPORT:GUESTPORT[/tcp|/udp], e.g. 8080:80)"
            ))
        };
        let (ports, proto) = match s.split_once('/') {
            Some((p, "tcp")) => (p, false),
            Some((p, "udp")) => (p, true),
            Some(_) => return Err(bad("has a protocol other than tcp or udp")),
            None => (s, false),
        };
        let (h, g) = ports
            .split_once(':')
            .ok_or_else(|| bad("needs two ports"))?;
        let port = |p: &str| {
            p.parse::<u16>()
                .ok()
                .filter(|v| *v != 0)
                .ok_or_else(|| bad("has a port that is not 1-65535"))
        };
        Ok(Publish {
            host: port(h)?,
            guest: port(g)?,
            udp: proto,
        })
    }

    fn l4(&self) -> u8 {
        if self.udp {
            17
        } else {
            6
        }
    }
}

impl fmt::Display for Publish {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = if self.udp { "udp" } else { "tcp" };
        write!(f, "{}:{}/{p}", self.host, self.guest)
    }
}

/// Refuses host ports another guest publishes already.
pub(crate) fn check_free(layout: &Layout, guest: &str, publish: &[String]) -> Result<(), NetError> {
    let mine: Vec<Publish> = publish
        .iter()
        .map(|p| Publish::parse(p))
        .collect::<Result<_, _>>()?;
    for (i, p) in mine.iter().enumerate() {
        if mine[..i].iter().any(|o| o.host == p.host && o.udp == p.udp) {
            return Err(NetError::Publish(format!(
                "host port {p} is published twice; give each host port once"
            )));
        }
    }
    for c in crate::store::GuestStore::new(layout).configs() {
        let g = &c.name;
        if g == guest {
            continue;
        }
        for o in c.net.publish.iter().filter_map(|s| Publish::parse(s).ok()) {
            if let Some(p) = mine.iter().find(|p| p.host == o.host && p.udp == o.udp) {
                return Err(NetError::Publish(format!(
                    "host port {} is published by guest {g} already; choose another host port",
                    p
                )));
            }
        }
    }
    Ok(())
}

/// The NAT chains of a guest's `inet` table for `publish`, targeting the
/// guest's first address of each family.
pub(crate) fn chains(publish: &[Publish], addrs: &[Cidr]) -> Vec<(Chain, Vec<Rule>)> {
    let mut pre = Vec::new();
    let mut out = Vec::new();
    for fam in [true, false] {
        let Some(target) = addrs.iter().find(|a| a.is_v4() == fam) else {
            continue;
        };
        let (proto, lo, lo_len) = if fam {
            (NFPROTO_IPV4, "127.0.0.0".parse().expect("literal"), 8)
        } else {
            (NFPROTO_IPV6, "::1".parse().expect("literal"), 128)
        };
        for p in publish {
            let base = || {
                Rule::new()
                    .nfproto(proto)
                    .daddr_is_local()
                    .l4proto(p.l4())
                    .dport(p.host)
            };
            pre.push(base().dnat(target.addr, p.guest));
            out.push(
                base()
                    .ip_daddr(false, lo, lo_len)
                    .dnat(target.addr, p.guest),
            );
        }
    }
    vec![
        (
            Chain {
                name: "prerouting".into(),
                hook: Hook::Prerouting,
                priority: -100,
                kind: ChainType::Nat,
            },
            pre,
        ),
        (
            Chain {
                name: "output".into(),
                hook: Hook::Output,
                priority: -100,
                kind: ChainType::Nat,
            },
            out,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ports_and_names_the_input_on_error() {
        assert_eq!(
            Publish::parse("8080:80").unwrap(),
            Publish {
                host: 8080,
                guest: 80,
                udp: false
            }
        );
        assert!(Publish::parse("53:53/udp").unwrap().udp);
        assert_eq!(
            Publish::parse("53:5353/udp").unwrap().to_string(),
            "53:5353/udp"
        );
        for bad in ["8080", "0:80", "8080:70000", "80:80/sctp", "a:b"] {
            let e = Publish::parse(bad).unwrap_err().to_string();
            assert!(e.contains(bad) && e.contains("e.g. 8080:80"), "{e}");
        }
    }
}
