//! Guests' network contexts carrying real packets: bridge connectivity,
//! isolation, anti-spoofing, published ports, and cleanup. Each test runs
//! on a thread of its own inside a fresh network namespace standing in for
//! the host, and each guest is a sleeping process in a namespace of its
//! own, so only test addresses in namespaces the test made are used and
//! everything vanishes with the test. Traffic is generated with the host's
//! busybox (ping, httpd) run inside the guests' namespaces.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use vbuild_kernel::net::nft::Nft;
use vbuild_kernel::net::RtNetlink;
use vbuild_runtime::net::{self, NetConfig, NetMode, Network};
use vbuild_runtime::paths::Layout;

fn ready() -> bool {
    if !nix::unistd::geteuid().is_root() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("needs root");
        }
        eprintln!("skipping: needs root");
        return false;
    }
    if Command::new("busybox").arg("true").status().is_err() {
        panic!("needs busybox (apt-get install busybox-static)");
    }
    true
}

fn in_fresh_netns<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare net");
            f()
        })
        .join()
        .expect("test thread")
    })
}

/// A child process killed and reaped on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A stand-in guest: a sleeping process in its own network namespace.
struct Guest {
    name: String,
    proc: Proc,
}

impl Guest {
    fn new(name: &str) -> Guest {
        let mut c = Command::new("busybox");
        c.args(["sleep", "600"]);
        unsafe {
            c.pre_exec(|| {
                if libc::unshare(libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        Guest {
            name: name.into(),
            proc: Proc(c.spawn().expect("spawn guest")),
        }
    }

    fn pid(&self) -> i32 {
        self.proc.0.id() as i32
    }

    /// A busybox command inside this guest's network namespace.
    fn cmd(&self, args: &[&str]) -> Command {
        let ns = File::open(format!("/proc/{}/ns/net", self.pid())).unwrap();
        let mut c = Command::new("busybox");
        c.args(args).stdout(Stdio::null()).stderr(Stdio::null());
        unsafe {
            c.pre_exec(move || {
                if libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        c
    }

    /// Echo requests to `to` (from `from` if given); true on any reply.
    /// Up to three tries: a neighbour entry that failed before (the
    /// blocked cases just ahead of a control) may swallow the first packet.
    fn ping(&self, to: &str, from: Option<&str>) -> bool {
        let mut args = vec!["ping", "-c", "1", "-W", "2"];
        if let Some(f) = from {
            args.extend(["-I", f]);
        }
        args.push(to);
        (0..3).any(|_| self.cmd(&args).status().unwrap().success())
    }

    /// Two echo requests to `to` (from `from`) both go unanswered.
    fn blocked(&self, to: &str, from: Option<&str>) -> bool {
        let mut args = vec!["ping", "-c", "2", "-W", "2"];
        if let Some(f) = from {
            args.extend(["-I", f]);
        }
        args.push(to);
        !self.cmd(&args).status().unwrap().success()
    }

    /// Serves `text` over HTTP on port 80 inside the guest.
    fn serve(&self, dir: &std::path::Path, text: &str) -> Proc {
        std::fs::write(dir.join("index.html"), text).unwrap();
        let p = Proc(
            self.cmd(&["httpd", "-f", "-p", "80", "-h", dir.to_str().unwrap()])
                .spawn()
                .unwrap(),
        );
        // Wait until it listens (a readiness poll, not a timing assertion);
        // busybox httpd may listen on the IPv6 wildcard, so read both tables.
        for _ in 0..200 {
            let listening = ["tcp", "tcp6"].iter().any(|t| {
                std::fs::read_to_string(format!("/proc/{}/net/{t}", self.pid()))
                    .unwrap_or_default()
                    .lines()
                    .any(|l| l.contains(":0050 ") && l.contains(" 0A "))
            });
            if listening {
                return p;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("httpd did not start listening in {}", self.name);
    }

    fn attach(&self, l: &Layout, network: &str, ips: &[&str], publish: &[&str]) -> NetConfig {
        let ips: Vec<String> = ips.iter().map(|s| s.to_string()).collect();
        let publish: Vec<String> = publish.iter().map(|s| s.to_string()).collect();
        let cfg = net::resolve(l, &self.name, NetMode::Bridge, network, &ips, &publish).unwrap();
        net::attach(l, &self.name, &cfg, self.pid()).unwrap();
        cfg
    }
}

/// Detaches the guests and deletes the networks even when an assertion
/// failed (the namespace dies with the thread anyway; this also exercises
/// the cleanup path on the failure path).
struct Cleanup<'a> {
    layout: &'a Layout,
    guests: Vec<String>,
    networks: Vec<String>,
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

fn http_get(addr: &str) -> String {
    let a: SocketAddr = addr.parse().unwrap();
    let mut s = TcpStream::connect_timeout(&a, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// Links and nf_tables tables vbuild made that still exist in this namespace.
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

fn create(l: &Layout, name: &str, subnet: &str, isolated: bool) {
    Network::define(
        name,
        &[subnet.parse().unwrap()],
        &[],
        true,
        isolated,
        vec![],
        None,
    )
    .unwrap()
    .create(l)
    .unwrap();
}

#[test]
fn guests_on_one_bridge_reach_each_other_and_the_host_reaches_their_services() {
    if !ready() {
        return;
    }
    in_fresh_netns(|| {
        let d = tempfile::tempdir().unwrap();
        let l = Layout::new(Some(d.path()));
        let _c = Cleanup {
            layout: &l,
            guests: vec!["ga".into(), "gb".into()],
            networks: vec!["tlan0".into()],
        };
        create(&l, "tlan0", "10.88.0.0/24", false);
        let a = Guest::new("ga");
        let b = Guest::new("gb");
        a.attach(&l, "tlan0", &["10.88.0.11/24"], &[]);
        b.attach(&l, "tlan0", &["10.88.0.12/24"], &["8080:80"]);

        // Inside: eth0 with exactly the configured address and the route.
        let mut g = RtNetlink::open_in_netns_of(a.pid()).unwrap();
        let eth0 = g.link("eth0").unwrap().expect("eth0 in the guest");
        assert!(eth0.up);
        let v4: Vec<String> = g
            .addresses()
            .unwrap()
            .iter()
            .filter(|x| x.index == eth0.index && x.addr.is_ipv4())
            .map(|x| format!("{}/{}", x.addr, x.prefix))
            .collect();
        assert_eq!(v4, vec!["10.88.0.11/24".to_string()]);
        assert!(g
            .routes(false)
            .unwrap()
            .iter()
            .any(|r| r.dst.is_none() && r.gateway == Some("10.88.0.1".parse().unwrap())));

        assert!(a.ping("10.88.0.12", None), "a reaches b");
        assert!(b.ping("10.88.0.11", None), "b reaches a");
        assert!(a.ping("10.88.0.1", None), "a reaches the gateway");

        // The host reaches a service in b by address and via --publish.
        let www = tempfile::tempdir().unwrap();
        let _httpd = b.serve(www.path(), "hello from gb");
        assert!(http_get("10.88.0.12:80").contains("hello from gb"));
        assert!(http_get("10.88.0.1:8080").contains("hello from gb"));

        // Anti-spoofing: a second address added inside a gets nowhere.
        let eth0 = g.link_index("eth0").unwrap();
        g.add_address(eth0, "10.88.0.99".parse().unwrap(), 24)
            .unwrap();
        assert!(
            a.blocked("10.88.0.12", Some("10.88.0.99")),
            "spoofed source dropped"
        );
        assert!(
            a.blocked("10.88.0.1", Some("10.88.0.99")),
            "the host is guarded too"
        );
        assert!(
            a.ping("10.88.0.12", Some("10.88.0.11")),
            "own address still works"
        );
        // Control: without the guest's bridge filter the spoofed source passes,
        // so the filter (not routing) is what dropped it.
        Nft::open()
            .unwrap()
            .delete_table_if_exists(
                vbuild_kernel::net::nft::Family::Bridge,
                &net::guest_table("ga"),
            )
            .unwrap();
        assert!(
            a.ping("10.88.0.12", Some("10.88.0.99")),
            "control: passes unfiltered"
        );

        // Stop: nothing of the guests remains; delete: nothing at all.
        net::detach(&l, "ga").unwrap();
        net::detach(&l, "gb").unwrap();
        net::detach(&l, "gb").unwrap(); // idempotent
        assert_eq!(
            leftovers(),
            vec![
                "link tlan0".to_string(),
                "table inet vbuild-net-tlan0".to_string()
            ]
        );
        assert!(
            std::net::TcpStream::connect_timeout(
                &"10.88.0.1:8080".parse().unwrap(),
                Duration::from_secs(2)
            )
            .is_err(),
            "the published port went with the guest"
        );
        Network::delete(&l, "tlan0").unwrap();
        assert_eq!(leftovers(), Vec::<String>::new());
        assert!(!l.networks_dir().join("tlan0.toml").exists());
    });
}

#[test]
fn isolated_network_guests_reach_only_the_gateway() {
    if !ready() {
        return;
    }
    in_fresh_netns(|| {
        let d = tempfile::tempdir().unwrap();
        let l = Layout::new(Some(d.path()));
        let _c = Cleanup {
            layout: &l,
            guests: vec!["gc".into(), "gd".into()],
            networks: vec!["tiso0".into()],
        };
        create(&l, "tiso0", "10.88.1.0/24", true);
        let c = Guest::new("gc");
        let dd = Guest::new("gd");
        c.attach(&l, "tiso0", &["10.88.1.11/24"], &[]);
        dd.attach(&l, "tiso0", &["10.88.1.12/24"], &[]);
        assert!(c.ping("10.88.1.1", None), "c reaches the gateway");
        assert!(dd.ping("10.88.1.1", None), "d reaches the gateway");
        assert!(c.blocked("10.88.1.12", None), "c cannot reach d");
        assert!(dd.blocked("10.88.1.11", None), "d cannot reach c");
        // Two mechanisms keep them apart; check each one alone.
        let net = Network::load(&l, "tiso0").unwrap();
        let drop_table = || {
            Nft::open()
                .unwrap()
                .delete_table_if_exists(vbuild_kernel::net::nft::Family::Inet, &net.table())
                .unwrap()
        };
        let isolate = |on: bool| {
            let mut h = RtNetlink::open().unwrap();
            for g in ["gc", "gd"] {
                let port = h.link_index(&net::host_link_name(g)).unwrap();
                h.set_port_isolated(port, on).unwrap();
            }
        };
        // 1. Bridge port isolation alone blocks the direct (layer 2) path.
        assert!(drop_table());
        assert!(c.blocked("10.88.1.12", None), "port isolation alone");
        isolate(false);
        assert!(
            c.ping("10.88.1.12", None),
            "control: reachable with neither"
        );
        isolate(true);
        // 2. The network's forward filter blocks the path through the gateway.
        for (x, peer) in [(&c, "10.88.1.12"), (&dd, "10.88.1.11")] {
            let mut g = RtNetlink::open_in_netns_of(x.pid()).unwrap();
            let eth0 = g.link_index("eth0").unwrap();
            g.add_route(
                peer.parse().unwrap(),
                32,
                "10.88.1.1".parse().unwrap(),
                eth0,
            )
            .unwrap();
        }
        assert!(
            c.ping("10.88.1.12", None),
            "control: routed path open without the filter"
        );
        net.ensure_up().unwrap();
        assert!(
            c.blocked("10.88.1.12", None),
            "routed via the gateway: dropped"
        );
        assert!(c.ping("10.88.1.1", None), "the gateway still answers");
    });
}

#[test]
fn detach_cleans_up_after_a_crash_and_the_next_attach_works() {
    if !ready() {
        return;
    }
    in_fresh_netns(|| {
        let d = tempfile::tempdir().unwrap();
        let l = Layout::new(Some(d.path()));
        let _c = Cleanup {
            layout: &l,
            guests: vec!["ge".into()],
            networks: vec!["vbuild0".into()],
        };
        // No network created: vbuild0 appears on first use.
        let e1 = Guest::new("ge");
        let cfg = e1.attach(&l, "vbuild0", &[], &["8081:81"]);
        assert_eq!(cfg.addresses[0], "10.77.0.2/24");
        assert!(e1.ping("10.77.0.1", None));
        let mac1 = eth0_mac(e1.pid());
        assert_eq!(mac1, net::guest_mac(&l, "ge").to_vec());
        // The "supervisor" dies: the guest's namespace goes, the filters stay.
        drop(e1);
        let left = leftovers();
        assert!(
            left.contains(&"table bridge vbuild-g-ge".to_string()),
            "{left:?}"
        );
        // The next start cleans up first, then attaches again.
        let e2 = Guest::new("ge");
        net::attach(&l, "ge", &cfg, e2.pid()).unwrap();
        assert_eq!(eth0_mac(e2.pid()), mac1, "a restarted guest keeps its MAC");
        assert!(e2.ping("10.77.0.1", None));
        drop(e2);
        net::detach(&l, "ge").unwrap();
        let left = leftovers();
        assert!(
            left.iter()
                .all(|x| !x.contains("vb-ge") && !x.contains("vbuild-g-ge")),
            "{left:?}"
        );
        Network::delete(&l, "vbuild0").unwrap();
        assert_eq!(leftovers(), Vec::<String>::new());
    });
}

fn eth0_mac(pid: i32) -> Vec<u8> {
    RtNetlink::open_in_netns_of(pid)
        .unwrap()
        .link("eth0")
        .unwrap()
        .expect("eth0")
        .mac
}

#[test]
fn a_subnet_the_host_uses_is_refused_naming_the_interface_or_route() {
    if !ready() {
        return;
    }
    in_fresh_netns(|| {
        let d = tempfile::tempdir().unwrap();
        let l = Layout::new(Some(d.path()));
        // The "host's LAN": a link with an address, and a route through it.
        let mut nl = RtNetlink::open().unwrap();
        nl.create_bridge("hostlan", 1500).unwrap();
        let i = nl.link_index("hostlan").unwrap();
        nl.add_address(i, "203.0.113.5".parse().unwrap(), 24)
            .unwrap();
        nl.set_up(i, true).unwrap();
        nl.add_route(
            "198.18.0.0".parse().unwrap(),
            16,
            "203.0.113.1".parse().unwrap(),
            i,
        )
        .unwrap();
        let try_create = |subnet: &str| {
            Network::define(
                "clash",
                &[subnet.parse().unwrap()],
                &[],
                true,
                false,
                vec![],
                None,
            )
            .unwrap()
            .create(&l)
        };
        let e = try_create("203.0.113.0/24").unwrap_err().to_string();
        assert!(e.contains("host interface hostlan (203.0.113.5/24)"), "{e}");
        assert!(e.contains("choose another subnet"), "{e}");
        let e = try_create("198.18.7.0/24").unwrap_err().to_string();
        assert!(e.contains("host route 198.18.0.0/16 via hostlan"), "{e}");
        // Nothing half-made: no network file, no bridge.
        assert!(Network::list(&l).unwrap().iter().all(|n| n.name != "clash"));
        assert!(RtNetlink::open().unwrap().link("clash").unwrap().is_none());
        // A free subnet still works.
        try_create("10.99.0.0/24").unwrap();
        Network::delete(&l, "clash").unwrap();
        nl.delete_link_named("hostlan").unwrap();
        assert_eq!(leftovers(), Vec::<String>::new());
    });
}

#[test]
fn none_mode_has_loopback_only_and_host_mode_changes_nothing() {
    if !ready() {
        return;
    }
    in_fresh_netns(|| {
        let d = tempfile::tempdir().unwrap();
        let l = Layout::new(Some(d.path()));
        let g = Guest::new("gn");
        let cfg = NetConfig {
            mode: NetMode::None,
            ..NetConfig::default()
        };
        net::attach(&l, "gn", &cfg, g.pid()).unwrap();
        let links = RtNetlink::open_in_netns_of(g.pid())
            .unwrap()
            .links()
            .unwrap();
        assert_eq!(links.len(), 1, "{links:?}");
        assert_eq!(links[0].name, "lo");
        assert!(links[0].up);
        assert!(g.ping("127.0.0.1", None));
        let h = NetConfig {
            mode: NetMode::Host,
            ..NetConfig::default()
        };
        net::attach(&l, "gh", &h, g.pid()).unwrap();
        assert_eq!(leftovers(), Vec::<String>::new(), "host mode makes nothing");
    });
}

/// Runs `f` on a thread that joined the network namespace of `pid` (the
/// test's own thread keeps the stand-in host's namespace).
fn in_netns_of<T: Send>(pid: i32, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            let ns = File::open(format!("/proc/{pid}/ns/net")).unwrap();
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns net");
            f()
        })
        .join()
        .expect("netns thread")
    })
}

#[test]
fn a_published_port_answers_on_127_0_0_1_and_goes_with_the_guest() {
    if !ready() {
        return;
    }
    in_fresh_netns(|| {
        vbuild_kernel::net::bring_up_loopback().unwrap();
        let d = tempfile::tempdir().unwrap();
        let l = Layout::new(Some(d.path()));
        let _c = Cleanup {
            layout: &l,
            guests: vec!["gl".into()],
            networks: vec!["tlan3".into()],
        };
        create(&l, "tlan3", "10.88.3.0/24", false);

        // A host service listening on 127.0.0.1 only keeps its port.
        let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let busy_port = busy.local_addr().unwrap().port();
        let e = net::resolve(
            &l,
            "gl",
            NetMode::Bridge,
            "tlan3",
            &["10.88.3.11/24".into()],
            &[format!("{busy_port}:80")],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains(&format!(
                "host port {busy_port}/tcp is in use by a host service"
            )),
            "{e}"
        );
        drop(busy);

        use vbuild_kernel::net::route_localnet;
        let before = (
            route_localnet("all").unwrap(),
            route_localnet("lo").unwrap(),
        );
        let g = Guest::new("gl");
        g.attach(&l, "tlan3", &["10.88.3.11/24"], &["8083:80"]);
        let www = tempfile::tempdir().unwrap();
        let _httpd = g.serve(www.path(), "hello from gl");
        assert!(
            http_get("127.0.0.1:8083").contains("hello from gl"),
            "127.0.0.1 answers"
        );
        assert!(
            http_get("127.0.0.2:8083").contains("hello from gl"),
            "all of 127.0.0.0/8 is the host's loopback"
        );
        assert!(
            http_get("10.88.3.1:8083").contains("hello from gl"),
            "the host's other addresses still answer"
        );
        // Loopback routing is on for this bridge only.
        assert!(route_localnet("tlan3").unwrap());
        assert_eq!(
            (
                route_localnet("all").unwrap(),
                route_localnet("lo").unwrap()
            ),
            before,
            "all and lo untouched"
        );
        // (The answers above also show the masquerade works: a guest that
        // saw source 127.0.0.1 would send its reply to its own lo.)

        // Stop: nothing answers on 127.0.0.1 and the guest's tables are gone.
        net::detach(&l, "gl").unwrap();
        assert_eq!(
            leftovers(),
            vec![
                "link tlan3".to_string(),
                "table inet vbuild-net-tlan3".to_string()
            ]
        );
        assert!(
            TcpStream::connect_timeout(&"127.0.0.1:8083".parse().unwrap(), Duration::from_secs(2))
                .is_err(),
            "the published port went with the guest"
        );
        Network::delete(&l, "tlan3").unwrap();
        assert_eq!(leftovers(), Vec::<String>::new());
    });
}

#[test]
fn a_guest_cannot_reach_the_hosts_loopback_through_a_publishing_bridge() {
    if !ready() {
        return;
    }
    in_fresh_netns(|| {
        vbuild_kernel::net::bring_up_loopback().unwrap();
        let d = tempfile::tempdir().unwrap();
        let l = Layout::new(Some(d.path()));
        let _c = Cleanup {
            layout: &l,
            guests: vec!["gh".into()],
            networks: vec!["tlan4".into()],
        };
        // --host-access: no network input filter, so only the guest's own
        // filter stands between it and the host's loopback services.
        let mut n = Network::define(
            "tlan4",
            &["10.88.4.0/24".parse().unwrap()],
            &[],
            true,
            false,
            vec![],
            None,
        )
        .unwrap();
        n.host_access = true;
        n.create(&l).unwrap();
        let g = Guest::new("gh");
        g.attach(&l, "tlan4", &["10.88.4.11/24"], &["8084:80"]);
        assert!(vbuild_kernel::net::route_localnet("tlan4").unwrap());

        // A service the host keeps to itself.
        let secret = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = secret.local_addr().unwrap().port();
        let target: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();

        // The guest (root in its namespace) routes 127.0.0.1 to the gateway.
        in_netns_of(g.pid(), || {
            std::fs::write("/proc/sys/net/ipv4/conf/eth0/route_localnet", "1").unwrap();
        });
        let mut gn = RtNetlink::open_in_netns_of(g.pid()).unwrap();
        let lo = gn.link_index("lo").unwrap();
        let eth0 = gn.link_index("eth0").unwrap();
        gn.del_address(lo, "127.0.0.1".parse().unwrap(), 8).unwrap();
        gn.add_route(
            "127.0.0.1".parse().unwrap(),
            32,
            "10.88.4.1".parse().unwrap(),
            eth0,
        )
        .unwrap();
        let try_connect = || {
            in_netns_of(g.pid(), || {
                TcpStream::connect_timeout(&target, Duration::from_secs(2))
            })
        };
        assert!(try_connect().is_err(), "the guest's filter drops it");
        // Control: without the guest's bridge filter the host's loopback
        // service answers, so the filter (not routing) is what stopped it.
        Nft::open()
            .unwrap()
            .delete_table_if_exists(
                vbuild_kernel::net::nft::Family::Bridge,
                &net::guest_table("gh"),
            )
            .unwrap();
        assert!(try_connect().is_ok(), "control: reachable unfiltered");
        drop(secret);
        net::detach(&l, "gh").unwrap();
        Network::delete(&l, "tlan4").unwrap();
        assert_eq!(leftovers(), Vec::<String>::new());
    });
}
