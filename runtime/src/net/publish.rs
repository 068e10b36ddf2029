//! Published ports: `--publish 8080:80[/tcp|udp]` makes connections to
//! port 8080 of any of the host's own addresses land on port 80 of the
//! guest (nf_tables DNAT in the guest's `inet` table, so stopping the guest
//! removes them with it). Traffic from elsewhere is caught in prerouting,
//! the host's own connections in output.
//!
//! 127.0.0.1:HOSTPORT answers too, as Docker and Incus do it without a
//! userland proxy: the output DNAT also matches 127.0.0.0/8, the network's
//! bridge gets `route_localnet=1` (so the kernel routes a packet with a
//! loopback source out of it, and takes the reply, de-NATed back to
//! 127.0.0.1, in), and the guest's postrouting chain masquerades packets
//! from 127.0.0.0/8 leaving through the bridge, so the guest sees (and
//! answers) the gateway address. A guest may never send to 127.0.0.0/8
//! itself (the anti-spoofing filter drops it), so `route_localnet` opens
//! the host's loopback services to no guest. `::1` is not published: IPv6
//! has no `route_localnet`, the kernel drops a `::1` source on any other
//! link, so only a userland proxy could carry it.

use super::{Cidr, NetError};
use crate::paths::Layout;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
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
    for p in &mine {
        if host_listens(p.host, p.udp) {
            let proto = if p.udp { "udp" } else { "tcp" };
            return Err(NetError::Publish(format!(
                "host port {}/{proto} is in use by a host service (see `ss -lnp{}`); choose another host port",
                p.host,
                if p.udp { "u" } else { "t" }
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

/// True when a socket of the host's network namespace listens on `port`
/// (TCP) or is bound to it (UDP), on any address. A DNAT for that port
/// would silently take the service's traffic away from it.
pub(crate) fn host_listens(port: u16, udp: bool) -> bool {
    // thread-self: /proc/net follows the main thread's namespace, and the
    // caller's thread may have entered another.
    let files: &[&str] = if udp {
        &["/proc/thread-self/net/udp", "/proc/thread-self/net/udp6"]
    } else {
        &["/proc/thread-self/net/tcp", "/proc/thread-self/net/tcp6"]
    };
    files
        .iter()
        .any(|f| std::fs::read_to_string(f).is_ok_and(|t| table_has_port(&t, port, udp)))
}

/// Whether a `/proc/net/{tcp,udp}[6]` table has a socket on local `port`:
/// for TCP in state LISTEN (0A), for UDP any bound socket that is not
/// connected (remote port 0), which is how a UDP service waits.
fn table_has_port(table: &str, port: u16, udp: bool) -> bool {
    table.lines().skip(1).any(|line| {
        let mut f = line.split_whitespace().skip(1);
        let (Some(local), Some(remote), Some(state)) = (f.next(), f.next(), f.next()) else {
            return false;
        };
        let hex_port = |a: &str| {
            a.rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
        };
        hex_port(local) == Some(port)
            && if udp {
                hex_port(remote) == Some(0)
            } else {
                state == "0A"
            }
    })
}

/// The NAT chains of a guest's `inet` table for `publish`, targeting the
/// guest's first address of each family; `bridge` is the network's bridge,
/// the only link a loopback-sourced packet may be masqueraded on.
pub(crate) fn chains(publish: &[Publish], addrs: &[Cidr], bridge: &str) -> Vec<(Chain, Vec<Rule>)> {
    let mut pre = Vec::new();
    let mut out = Vec::new();
    let mut post = Vec::new();
    let loopback4: IpAddr = Ipv4Addr::new(127, 0, 0, 0).into();
    for fam in [true, false] {
        let Some(target) = addrs.iter().find(|a| a.is_v4() == fam) else {
            continue;
        };
        let proto = if fam { NFPROTO_IPV4 } else { NFPROTO_IPV6 };
        for p in publish {
            let base = || {
                Rule::new()
                    .nfproto(proto)
                    .daddr_is_local()
                    .l4proto(p.l4())
                    .dport(p.host)
            };
            pre.push(base().dnat(target.addr, p.guest));
            out.push(if fam {
                // 127.0.0.0/8 included: see the module's comment.
                base().dnat(target.addr, p.guest)
            } else {
                base()
                    .ip_daddr(false, Ipv6Addr::LOCALHOST.into(), 128)
                    .dnat(target.addr, p.guest)
            });
        }
        if fam {
            post.push(
                Rule::new()
                    .nfproto(NFPROTO_IPV4)
                    .oifname(true, bridge)
                    .ip_saddr(true, loopback4, 8)
                    .ct_dnat()
                    .masquerade(),
            );
        }
    }
    let chain = |name: &str, hook, priority| Chain {
        name: name.into(),
        hook,
        priority,
        kind: ChainType::Nat,
    };
    vec![
        (chain("prerouting", Hook::Prerouting, -100), pre),
        (chain("output", Hook::Output, -100), out),
        (chain("postrouting", Hook::Postrouting, 100), post),
    ]
}

/// Whether `publish` needs loopback routing on the bridge: it has ports
/// and the guest an IPv4 address for them.
pub(crate) fn needs_route_localnet(publish: &[Publish], addrs: &[Cidr]) -> bool {
    !publish.is_empty() && addrs.iter().any(|a| a.is_v4())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0100007F:4E20 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1
";
    const UDP: &str = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  100: 00000000:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 3 2 0 0
  101: 0100007F:1F90 0200007F:0050 01 00000000:00000000 00:00000000 00000000     0        0 4 2 0 0
";

    #[test]
    fn listening_sockets_are_found_and_connections_are_not() {
        assert!(table_has_port(TCP, 22, false), "sshd's LISTEN socket on 22");
        assert!(
            !table_has_port(TCP, 20000, false),
            "an established connection is no service"
        );
        assert!(!table_has_port(TCP, 8080, false));
        assert!(
            table_has_port(UDP, 53, true),
            "an unconnected bound UDP socket"
        );
        assert!(
            !table_has_port(UDP, 8080, true),
            "a connected UDP socket is a client"
        );
    }

    #[test]
    fn a_port_a_host_service_listens_on_is_refused() {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        assert!(host_listens(port, false));
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(Some(dir.path()));
        let e = check_free(&layout, "web", &[format!("{port}:80")]).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("host port {port}/tcp is in use by a host service")),
            "{msg}"
        );
        assert!(msg.contains("choose another host port"), "{msg}");
        drop(tcp);
        assert!(!host_listens(port, false), "closed: free again");
        check_free(&layout, "web", &[format!("{port}:80")]).unwrap();

        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let uport = udp.local_addr().unwrap().port();
        assert!(host_listens(uport, true));
        assert!(check_free(&layout, "web", &[format!("{uport}:53/udp")]).is_err());
    }

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

    #[test]
    fn loopback_is_published_for_ipv4_and_masqueraded_on_the_bridge_only() {
        let p = [Publish::parse("8080:80").unwrap()];
        let addrs: Vec<Cidr> = vec![
            "10.77.0.5/24".parse().unwrap(),
            "fd77::5/64".parse().unwrap(),
        ];
        let chains = chains(&p, &addrs, "vbuild0");
        let names: Vec<&str> = chains.iter().map(|(c, _)| c.name.as_str()).collect();
        assert_eq!(names, ["prerouting", "output", "postrouting"]);
        let (_, out) = &chains[1];
        assert_eq!(out.len(), 2, "one output DNAT per family");
        let lo4 = Rule::new().ip_daddr(false, Ipv4Addr::new(127, 0, 0, 0).into(), 8);
        let lo6 = Rule::new().ip_daddr(false, Ipv6Addr::LOCALHOST.into(), 128);
        let has = |r: &Rule, part: &Rule| {
            r.exprs()
                .windows(part.exprs().len())
                .any(|w| w == part.exprs())
        };
        assert!(!has(&out[0], &lo4), "127.0.0.0/8 is DNATed for IPv4");
        assert!(has(&out[1], &lo6), "::1 stays out for IPv6");
        let (_, post) = &chains[2];
        assert_eq!(post.len(), 1);
        let want = Rule::new()
            .nfproto(NFPROTO_IPV4)
            .oifname(true, "vbuild0")
            .ip_saddr(true, Ipv4Addr::new(127, 0, 0, 0).into(), 8)
            .ct_dnat()
            .masquerade();
        assert_eq!(post[0], want);
        assert!(needs_route_localnet(&p, &addrs));
        assert!(
            !needs_route_localnet(&p, &addrs[1..]),
            "IPv6 only: no loopback routing"
        );
        assert!(!needs_route_localnet(&[], &addrs));
    }
}
