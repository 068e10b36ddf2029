//! A hostile guest against its network: what it must not reach (the host's
//! services, other vbuild networks, its peers on an isolated network) and
//! what it must not say (other addresses, other link-local addresses,
//! neighbour advertisements for addresses not its own, router
//! advertisements). Each case is shown to work without the filter (a
//! control), so the filter is what stops it.
//!
//! Like `net_traffic.rs`, each test runs on a thread inside a fresh network
//! namespace standing in for the host, and each guest is a sleeping process
//! in a namespace of its own: only addresses of namespaces the test made
//! carry traffic, and everything goes with the test. Traffic is made with
//! sockets opened inside the guests' namespaces (raw `AF_PACKET` frames for
//! what a hostile guest forges); `ip neigh` only observes.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vbuild_kernel::net::nft::{Family, Nft};
use vbuild_kernel::net::RtNetlink;
use vbuild_runtime::net::{self, NetMode, Network};
use vbuild_runtime::paths::Layout;

fn ready() -> bool {
    if !nix::unistd::geteuid().is_root() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("needs root");
        }
        eprintln!("SKIPPED hostile_net: needs root (under CI=true this fails)");
        return false;
    }
    true
}

/// Runs `f` on a thread of its own inside a fresh network namespace (the
/// test's "host"), where duplicate address detection is off so that IPv6
/// addresses are usable at once.
fn in_fresh_host<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare net");
            no_dad();
            f()
        })
        .join()
        .expect("test thread")
    })
}

/// New links of the calling thread's namespace skip DAD.
fn no_dad() {
    std::fs::write("/proc/sys/net/ipv6/conf/default/accept_dad", "0").expect("accept_dad");
}

/// Runs `f` on a thread that joined the network namespace of `pid`.
fn in_ns<T: Send>(pid: i32, f: impl FnOnce() -> T + Send) -> T {
    let ns = File::open(format!("/proc/{pid}/ns/net")).expect("netns");
    std::thread::scope(|s| {
        s.spawn(move || {
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            f()
        })
        .join()
        .expect("netns thread")
    })
}

/// A stand-in guest: a sleeping process in its own network namespace,
/// killed and reaped on drop.
struct Guest {
    name: String,
    proc: Child,
}

impl Drop for Guest {
    fn drop(&mut self) {
        let _ = self.proc.kill();
        let _ = self.proc.wait();
    }
}

impl Guest {
    fn new(name: &str) -> Guest {
        let mut c = Command::new("sleep");
        c.arg("600");
        unsafe {
            c.pre_exec(|| {
                if libc::unshare(libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let g = Guest {
            name: name.into(),
            proc: c.spawn().expect("spawn guest"),
        };
        in_ns(g.pid(), no_dad);
        g
    }

    fn pid(&self) -> i32 {
        self.proc.id() as i32
    }

    fn attach(&self, l: &Layout, network: &str, ips: &[&str], publish: &[&str]) {
        let ips: Vec<String> = ips.iter().map(|s| s.to_string()).collect();
        let publish: Vec<String> = publish.iter().map(|s| s.to_string()).collect();
        let cfg = net::resolve(l, &self.name, NetMode::Bridge, network, &ips, &publish).unwrap();
        net::attach(l, &self.name, &cfg, self.pid()).unwrap();
    }

    fn mac(&self) -> [u8; 6] {
        let l = RtNetlink::open_in_netns_of(self.pid())
            .unwrap()
            .link("eth0")
            .unwrap()
            .expect("eth0");
        l.mac.as_slice().try_into().unwrap()
    }

    /// The banner of a TCP service at `to`, as this guest sees it.
    fn fetch(&self, to: &str) -> Option<String> {
        let to: SocketAddr = to.parse().unwrap();
        in_ns(self.pid(), || fetch(to))
    }

    /// A TCP service on port `port` inside this guest.
    fn serve(&self, port: u16) -> Server {
        in_ns(self.pid(), || {
            Server::start(port, &format!("hello from {}", self.name))
        })
    }
}

/// Connects and reads what the service says; `None` when nothing answers
/// within 1.5 s (a drop) or the connection is refused.
fn fetch(to: SocketAddr) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&to, Duration::from_millis(1500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// A TCP service that greets every connection with a banner, on the
/// dual-stack wildcard of the namespace it was started in.
struct Server {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(port: u16, banner: &str) -> Server {
        let l = TcpListener::bind(("::", port)).expect("bind");
        l.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (s, banner) = (stop.clone(), banner.to_string());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((mut c, _)) => {
                        let _ = c.write_all(banner.as_bytes());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Server {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Detaches the guests and deletes the networks even when an assertion
/// failed.
struct Cleanup<'a> {
    layout: &'a Layout,
    guests: Vec<&'static str>,
    networks: Vec<&'static str>,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for g in &self.guests {
            let _ = net::detach(self.layout, g);
        }
        for n in &self.networks {
            let _ = Network::delete(self.layout, n);
        }
    }
}

/// Links (but loopback) and nf_tables tables left in this namespace.
fn leftovers() -> Vec<String> {
    let mut out: Vec<String> = RtNetlink::open()
        .unwrap()
        .links()
        .unwrap()
        .into_iter()
        .filter(|l| l.name != "lo")
        .map(|l| format!("link {}", l.name))
        .collect();
    out.extend(
        Nft::open()
            .unwrap()
            .tables()
            .unwrap()
            .into_iter()
            .map(|(f, t)| format!("table {} {t}", f.name())),
    );
    out
}

fn create(
    l: &Layout,
    name: &str,
    subnets: &[&str],
    isolated: bool,
    host_access: bool,
    dns: &[&str],
) {
    let subnets: Vec<_> = subnets.iter().map(|s| s.parse().unwrap()).collect();
    let dns = dns.iter().map(|d| d.parse().unwrap()).collect();
    let mut n = Network::define(name, &subnets, &[], true, isolated, dns, None).unwrap();
    n.host_access = host_access;
    n.create(l).unwrap();
}

fn delete_table(family: Family, name: &str) {
    assert!(Nft::open()
        .unwrap()
        .delete_table_if_exists(family, name)
        .unwrap());
}

#[test]
fn host_services_are_closed_to_guests_unless_the_network_opts_in() {
    if !ready() {
        return;
    }
    in_fresh_host(|| {
        let d = tempfile::tempdir().unwrap();
        let l = Layout::new(Some(d.path()));
        let _c = Cleanup {
            layout: &l,
            guests: vec!["ha", "hb"],
            networks: vec!["thclosed0", "thopen0"],
        };
        // A default network whose resolver is its own gateway, and one that
        // opts in to the host.
        create(
            &l,
            "thclosed0",
            &["10.89.0.0/24", "fd89::/64"],
            false,
            false,
            &["10.89.0.1"],
        );
        create(&l, "thopen0", &["10.89.1.0/24"], false, true, &[]);
        assert!(Network::load(&l, "thopen0").unwrap().host_access, "stored");
        assert!(!Network::load(&l, "thclosed0").unwrap().host_access);
        let a = Guest::new("ha");
        let b = Guest::new("hb");
        a.attach(&l, "thclosed0", &["10.89.0.11/24", "fd89::11/64"], &[]);
        b.attach(&l, "thopen0", &["10.89.1.11/24"], &[]);

        // Host services on the wildcard: one ordinary, one DNS (TCP + UDP).
        let _svc = Server::start(7070, "host service");
        let _dns_tcp = Server::start(53, "host resolver");
        let dns_udp = UdpSocket::bind("0.0.0.0:53").unwrap();
        dns_udp
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();

        // The default guest reaches none of them on any host address...
        assert_eq!(a.fetch("10.89.0.1:7070"), None, "own gateway, IPv4");
        assert_eq!(a.fetch("[fd89::1]:7070"), None, "own gateway, IPv6");
        assert_eq!(a.fetch("10.89.1.1:7070"), None, "another host address");
        // ...but its network's resolver, over TCP and UDP.
        assert_eq!(a.fetch("10.89.0.1:53").as_deref(), Some("host resolver"));
        in_ns(a.pid(), || {
            let s = UdpSocket::bind("0.0.0.0:0").unwrap();
            s.send_to(b"query", "10.89.0.1:53").unwrap();
        });
        let mut buf = [0u8; 16];
        let (n, from) = dns_udp.recv_from(&mut buf).expect("the DNS query arrives");
        assert_eq!(
            (&buf[..n], from.ip()),
            (&b"query"[..], "10.89.0.11".parse::<IpAddr>().unwrap())
        );

        // The guest of the opted-in network reaches the host.
        assert_eq!(b.fetch("10.89.1.1:7070").as_deref(), Some("host service"));
        assert_eq!(b.fetch("10.89.0.1:7070").as_deref(), Some("host service"));

        // The host still reaches its guests (replies come in through the
        // input chain as established traffic).
        let _www = a.serve(80);
        assert_eq!(
            fetch("10.89.0.11:80".parse().unwrap()).as_deref(),
            Some("hello from ha")
        );

        // Control: without the network's table the same guest gets in.
        let closed = Network::load(&l, "thclosed0").unwrap();
        delete_table(Family::Inet, &closed.table());
        assert_eq!(a.fetch("10.89.0.1:7070").as_deref(), Some("host service"));
        closed.ensure_up().unwrap();
        assert_eq!(a.fetch("10.89.0.1:7070"), None, "closed again");

        drop(_www);
        net::detach(&l, "ha").unwrap();
        net::detach(&l, "hb").unwrap();
        Network::delete(&l, "thclosed0").unwrap();
        Network::delete(&l, "thopen0").unwrap();
        assert_eq!(leftovers(), Vec::<String>::new());
    });
}

#[test]
fn guests_reach_neither_other_networks_nor_isolated_peers_but_published_ports() {
    if !ready() {
        return;
    }
    in_fresh_host(|| {
        let d = tempfile::tempdir().unwrap();
        let l = Layout::new(Some(d.path()));
        let _c = Cleanup {
            layout: &l,
            guests: vec!["na", "nb", "nc", "nd"],
            networks: vec!["tna0", "tnb0", "tiso1"],
        };
        create(&l, "tna0", &["10.89.2.0/24"], false, false, &[]);
        create(&l, "tnb0", &["10.89.3.0/24"], false, false, &[]);
        create(&l, "tiso1", &["10.89.4.0/24"], true, false, &[]);
        let a = Guest::new("na");
        let b = Guest::new("nb");
        let c = Guest::new("nc");
        let dd = Guest::new("nd");
        a.attach(&l, "tna0", &["10.89.2.11/24"], &[]);
        b.attach(&l, "tnb0", &["10.89.3.11/24"], &["8090:80"]);
        c.attach(&l, "tiso1", &["10.89.4.11/24"], &[]);
        dd.attach(&l, "tiso1", &["10.89.4.12/24"], &[]);
        let _sa = a.serve(80);
        let _sb = b.serve(80);
        let _sc = c.serve(80);
        let _sd = dd.serve(80);

        // Another vbuild network is out of reach, both ways.
        assert_eq!(a.fetch("10.89.3.11:80"), None, "a -> b");
        assert_eq!(b.fetch("10.89.2.11:80"), None, "b -> a");
        assert_eq!(c.fetch("10.89.3.11:80"), None, "isolated c -> b");
        // Isolated peers: neither directly nor routed via the gateway (a
        // guest's root can add that route).
        assert_eq!(c.fetch("10.89.4.12:80"), None, "c -> d on the bridge");
        for (x, peer) in [(&c, "10.89.4.12"), (&dd, "10.89.4.11")] {
            let mut g = RtNetlink::open_in_netns_of(x.pid()).unwrap();
            let eth0 = g.link_index("eth0").unwrap();
            g.add_route(
                peer.parse().unwrap(),
                32,
                "10.89.4.1".parse().unwrap(),
                eth0,
            )
            .unwrap();
        }
        assert_eq!(c.fetch("10.89.4.12:80"), None, "c -> d via the gateway");
        assert_eq!(dd.fetch("10.89.4.11:80"), None, "d -> c via the gateway");

        // A published port is reachable from every network, through each
        // one's own gateway.
        for (x, gw) in [(&a, "10.89.2.1"), (&c, "10.89.4.1"), (&dd, "10.89.4.1")] {
            assert_eq!(
                x.fetch(&format!("{gw}:8090")).as_deref(),
                Some("hello from nb"),
                "{} -> published port",
                x.name
            );
        }

        // Control: without the two networks' tables, a reaches b directly,
        // so the tables are what kept them apart.
        let na = Network::load(&l, "tna0").unwrap();
        let nb = Network::load(&l, "tnb0").unwrap();
        delete_table(Family::Inet, &na.table());
        delete_table(Family::Inet, &nb.table());
        assert_eq!(a.fetch("10.89.3.11:80").as_deref(), Some("hello from nb"));
        na.ensure_up().unwrap();
        nb.ensure_up().unwrap();
        assert_eq!(a.fetch("10.89.3.11:80"), None, "apart again");

        drop((_sa, _sb, _sc, _sd));
        for g in ["na", "nb", "nc", "nd"] {
            net::detach(&l, g).unwrap();
        }
        for n in ["tna0", "tnb0", "tiso1"] {
            Network::delete(&l, n).unwrap();
        }
        assert_eq!(leftovers(), Vec::<String>::new());
    });
}

// ---- forged frames ----

/// The Internet checksum of `data` after a partial sum `sum`.
fn checksum(mut sum: u32, data: &[u8]) -> u16 {
    for c in data.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_be_bytes([c[0], 0])
        };
        sum += w as u32;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn pseudo_sum(src: &[u8], dst: &[u8], proto: u8, len: usize) -> u32 {
    let mut p = Vec::new();
    p.extend_from_slice(src);
    p.extend_from_slice(dst);
    p.extend_from_slice(&(len as u32).to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, proto]);
    !checksum(0, &p) as u32
}

fn ether(dst: [u8; 6], src: [u8; 6], ty: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ty.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An IP packet (v4 or v6 by the addresses) carrying `l4` of protocol
/// `proto`, whose checksum field sits at `csum_at` (None: no checksum).
fn ip_packet(
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    hop: u8,
    mut l4: Vec<u8>,
    csum_at: Option<usize>,
) -> Vec<u8> {
    let (s, d) = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => (s.octets().to_vec(), d.octets().to_vec()),
        (IpAddr::V6(s), IpAddr::V6(d)) => (s.octets().to_vec(), d.octets().to_vec()),
        _ => panic!("mixed families"),
    };
    if let Some(at) = csum_at {
        let c = checksum(pseudo_sum(&s, &d, proto, l4.len()), &l4);
        l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
    }
    let mut p = Vec::new();
    if src.is_ipv4() {
        let total = (20 + l4.len()) as u16;
        p.extend_from_slice(&[0x45, 0]);
        p.extend_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0x40, 0, hop, proto, 0, 0]);
        p.extend_from_slice(&s);
        p.extend_from_slice(&d);
        let c = checksum(0, &p);
        p[10..12].copy_from_slice(&c.to_be_bytes());
    } else {
        p.extend_from_slice(&[0x60, 0, 0, 0]);
        p.extend_from_slice(&(l4.len() as u16).to_be_bytes());
        p.extend_from_slice(&[proto, hop]);
        p.extend_from_slice(&s);
        p.extend_from_slice(&d);
    }
    p.extend_from_slice(&l4);
    p
}

fn udp(sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + data.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(data);
    u
}

const ALL_NODES_MAC: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];

fn all_nodes() -> IpAddr {
    "ff02::1".parse().unwrap()
}

/// An unsolicited, overriding neighbour advertisement: "`target` is at `mac`".
fn neighbour_advert(src: Ipv6Addr, mac: [u8; 6], target: Ipv6Addr) -> Vec<u8> {
    let mut m = vec![136, 0, 0, 0, 0x20, 0, 0, 0];
    m.extend_from_slice(&target.octets());
    m.extend_from_slice(&[2, 1]);
    m.extend_from_slice(&mac);
    let p = ip_packet(src.into(), all_nodes(), 58, 255, m, Some(2));
    ether(ALL_NODES_MAC, mac, 0x86dd, &p)
}

/// A router advertisement: default router for 30 minutes, on-link and
/// autoconfigurable prefix `prefix`/64.
fn router_advert(src: Ipv6Addr, mac: [u8; 6], prefix: Ipv6Addr) -> Vec<u8> {
    let mut m = vec![134, 0, 0, 0, 64, 0];
    m.extend_from_slice(&1800u16.to_be_bytes());
    m.extend_from_slice(&[0; 8]);
    m.extend_from_slice(&[3, 4, 64, 0xc0]);
    m.extend_from_slice(&3600u32.to_be_bytes());
    m.extend_from_slice(&1800u32.to_be_bytes());
    m.extend_from_slice(&[0; 4]);
    m.extend_from_slice(&prefix.octets());
    let p = ip_packet(src.into(), all_nodes(), 58, 255, m, Some(2));
    ether(ALL_NODES_MAC, mac, 0x86dd, &p)
}

/// Sends raw Ethernet frames out of `eth0` of the guest with `pid`, as its
/// root could.
fn send_frames(pid: i32, frames: &[Vec<u8>]) {
    in_ns(pid, || {
        let ifindex = RtNetlink::open().unwrap().link_index("eth0").unwrap();
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
        assert!(
            fd >= 0,
            "AF_PACKET socket: {}",
            std::io::Error::last_os_error()
        );
        for f in frames {
            let mut sa: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            sa.sll_family = libc::AF_PACKET as u16;
            sa.sll_ifindex = ifindex as i32;
            sa.sll_protocol = u16::from_be_bytes([f[12], f[13]]).to_be();
            sa.sll_halen = 6;
            sa.sll_addr[..6].copy_from_slice(&f[..6]);
            let n = unsafe {
                libc::sendto(
                    fd,
                    f.as_ptr().cast(),
                    f.len(),
                    0,
                    (&sa as *const libc::sockaddr_ll).cast(),
                    std::mem::size_of::<libc::sockaddr_ll>() as u32,
                )
            };
            assert_eq!(
                n,
                f.len() as isize,
                "sendto: {}",
                std::io::Error::last_os_error()
            );
        }
        unsafe { libc::close(fd) };
    });
}

/// The hardware address the neighbour table of the calling thread's
/// namespace holds for `addr` (observed with `ip`, never changed).
fn neighbour(addr: &str) -> Option<String> {
    let out = Command::new("ip")
        .args(["-6", "neigh", "show", addr])
        .output()
        .expect("ip");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut words = text.split_whitespace();
    words.find(|w| *w == "lladdr")?;
    words.next().map(|s| s.to_string())
}

fn mac_text(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Waits until `f` holds, up to `secs`; returns whether it did.
fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        if f() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether a route learned from `router` or for `prefix`/64 exists in the
/// calling thread's namespace.
fn has_ra_route(router: Ipv6Addr, prefix: Ipv6Addr) -> bool {
    RtNetlink::open()
        .unwrap()
        .routes(true)
        .unwrap()
        .iter()
        .any(|r| r.gateway == Some(router.into()) || r.dst == Some((prefix.into(), 64)))
}

#[test]
fn forged_sources_neighbour_and_router_advertisements_are_dropped() {
    if !ready() {
        return;
    }
    in_fresh_host(|| {
        let d = tempfile::tempdir().unwrap();
        let l = Layout::new(Some(d.path()));
        let _c = Cleanup {
            layout: &l,
            guests: vec!["sa", "sb"],
            networks: vec!["tsp0"],
        };
        create(
            &l,
            "tsp0",
            &["10.89.5.0/24", "fd89:5::/64"],
            false,
            false,
            &[],
        );
        let a = Guest::new("sa");
        let b = Guest::new("sb");
        a.attach(&l, "tsp0", &["10.89.5.11/24", "fd89:5::11/64"], &[]);
        b.attach(&l, "tsp0", &["10.89.5.12/24", "fd89:5::12/64"], &[]);
        let (amac, bmac) = (a.mac(), b.mac());
        let bridge_mac = RtNetlink::open()
            .unwrap()
            .link("tsp0")
            .unwrap()
            .unwrap()
            .mac;
        let bridge_mac: [u8; 6] = bridge_mac.as_slice().try_into().unwrap();

        // The guest's link-local address is the one the filter allows.
        let all_ll = net::link_local_of(amac);
        let has_ll = || {
            RtNetlink::open_in_netns_of(a.pid())
                .unwrap()
                .addresses()
                .unwrap()
                .iter()
                .any(|x| x.addr == IpAddr::V6(all_ll))
        };
        assert!(eventually(3, has_ll), "eth0 of sa has {all_ll}");
        let b_ll = net::link_local_of(bmac);

        // 1. Sources: a UDP listener in b records which forged datagrams of
        // a arrive.
        let sink = in_ns(b.pid(), || UdpSocket::bind("[::]:9999").unwrap());
        sink.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let v4 = |src: &str, tag: &str| {
            let p = ip_packet(
                src.parse().unwrap(),
                "10.89.5.12".parse().unwrap(),
                17,
                64,
                udp(4000, 9999, tag.as_bytes()),
                None,
            );
            ether(bmac, amac, 0x0800, &p)
        };
        let v6 = |src: IpAddr, dst: IpAddr, tag: &str| {
            let p = ip_packet(src, dst, 17, 64, udp(4000, 9999, tag.as_bytes()), Some(6));
            ether(bmac, amac, 0x86dd, &p)
        };
        let bglobal: IpAddr = "fd89:5::12".parse().unwrap();
        let forged = |tags: &[&str]| -> Vec<Vec<u8>> {
            tags.iter()
                .map(|t| match *t {
                    "own4" => v4("10.89.5.11", t),
                    "spoof4" => v4("10.89.5.99", t),
                    "own6" => v6("fd89:5::11".parse().unwrap(), bglobal, t),
                    "spoof6" => v6("fd89:5::99".parse().unwrap(), bglobal, t),
                    "ownll" => v6(all_ll.into(), b_ll.into(), t),
                    "spoofll" => v6("fe80::dead".parse().unwrap(), b_ll.into(), t),
                    _ => unreachable!(),
                })
                .collect()
        };
        let received = |sink: &UdpSocket| {
            let mut got = Vec::new();
            let mut buf = [0u8; 64];
            while let Ok((n, _)) = sink.recv_from(&mut buf) {
                got.push(String::from_utf8_lossy(&buf[..n]).to_string());
            }
            got.sort();
            got
        };
        let tags = ["own4", "spoof4", "own6", "spoof6", "ownll", "spoofll"];
        send_frames(a.pid(), &forged(&tags));
        assert_eq!(
            received(&sink),
            vec!["own4", "own6", "ownll"],
            "only a's own sources pass"
        );

        // 2. Neighbour advertisements for addresses not a's: b's entry for
        // the gateway and the host's entry for b must not move to a's MAC.
        in_ns(b.pid(), || {
            let s = UdpSocket::bind("[::]:0").unwrap();
            let _ = s.send_to(b"resolve", "[fd89:5::1]:9");
        });
        let _ = UdpSocket::bind("[::]:0")
            .unwrap()
            .send_to(b"resolve", "[fd89:5::12]:9");
        assert!(eventually(3, || in_ns(b.pid(), || neighbour("fd89:5::1"))
            == Some(mac_text(bridge_mac))));
        assert!(eventually(3, || neighbour("fd89:5::12") == Some(mac_text(bmac))));
        let lies = || {
            vec![
                neighbour_advert(all_ll, amac, "fd89:5::1".parse().unwrap()),
                neighbour_advert(all_ll, amac, "fd89:5::12".parse().unwrap()),
            ]
        };
        send_frames(a.pid(), &lies());
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(
            in_ns(b.pid(), || neighbour("fd89:5::1")),
            Some(mac_text(bridge_mac)),
            "b's gateway entry"
        );
        assert_eq!(
            neighbour("fd89:5::12"),
            Some(mac_text(bmac)),
            "the host's entry for b"
        );

        // 3. Router advertisements: neither b nor the host learns a route.
        let prefix: Ipv6Addr = "fd89:77::".parse().unwrap();
        send_frames(a.pid(), &[router_advert(all_ll, amac, prefix)]);
        std::thread::sleep(Duration::from_millis(500));
        assert!(
            !in_ns(b.pid(), || has_ra_route(all_ll, prefix)),
            "b took a's RA"
        );
        assert!(!has_ra_route(all_ll, prefix), "the host took a's RA");

        // Control: without a's filter every one of these works, so the
        // filter is what stopped them.
        delete_table(Family::Bridge, &net::guest_table("sa"));
        send_frames(a.pid(), &forged(&tags));
        assert_eq!(
            received(&sink).len(),
            tags.len(),
            "control: all forged datagrams arrive"
        );
        send_frames(a.pid(), &lies());
        assert!(
            eventually(3, || in_ns(b.pid(), || neighbour("fd89:5::1"))
                == Some(mac_text(amac))),
            "control: b's gateway entry poisoned"
        );
        assert!(
            eventually(3, || neighbour("fd89:5::12") == Some(mac_text(amac))),
            "control: the host's entry poisoned"
        );
        send_frames(a.pid(), &[router_advert(all_ll, amac, prefix)]);
        assert!(
            eventually(3, || in_ns(b.pid(), || has_ra_route(all_ll, prefix))),
            "control: b takes the RA"
        );

        drop(sink);
        net::detach(&l, "sa").unwrap();
        net::detach(&l, "sb").unwrap();
        Network::delete(&l, "tsp0").unwrap();
        assert_eq!(leftovers(), Vec::<String>::new());
    });
}
