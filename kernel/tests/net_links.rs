//! rtnetlink and nf_tables through vbuild-kernel, inside network namespaces
//! the tests make (the test's own thread moves into a fresh one), so the
//! host's links and rules are never touched.

use std::net::IpAddr;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use vbuild_kernel::net::nft::{Batch, Chain, ChainType, Family, Hook, Nft, Rule, ETH_P_IP};
use vbuild_kernel::net::{NetError, RtNetlink};

fn root_or_skip() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("needs root");
    }
    eprintln!("skipping: needs root");
    false
}

/// Runs `f` on a thread of its own inside a brand-new network namespace;
/// the namespace (and every link in it) disappears when the thread ends.
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

/// A sleeping process in a network namespace of its own, killed on drop.
struct NetnsProc(Child);

impl NetnsProc {
    fn spawn() -> NetnsProc {
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
        NetnsProc(c.spawn().expect("spawn sleep"))
    }
    fn pid(&self) -> i32 {
        self.0.id() as i32
    }
}

impl Drop for NetnsProc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn veth_bridge_addresses_and_routes() {
    if !root_or_skip() {
        return;
    }
    in_fresh_netns(|| {
        let mut nl = RtNetlink::open().unwrap();
        nl.create_bridge("tbr0", 1400).unwrap();
        let br = nl.link("tbr0").unwrap().expect("bridge exists");
        assert_eq!(br.kind.as_deref(), Some("bridge"));
        assert_eq!(br.mtu, 1400);
        nl.add_address(br.index, "10.99.0.1".parse().unwrap(), 24)
            .unwrap();
        // Adding the same address again is harmless (setup is re-run after crashes).
        nl.add_address(br.index, "10.99.0.1".parse().unwrap(), 24)
            .unwrap();
        nl.set_up(br.index, true).unwrap();

        // A veth whose peer is born inside another process's namespace.
        let guest = NetnsProc::spawn();
        nl.create_veth("tvh0", "eth0", 1400, Some(guest.pid()))
            .unwrap();
        let host = nl.link("tvh0").unwrap().expect("host end stays here");
        assert!(
            nl.link("eth0").unwrap().is_none(),
            "peer left our namespace"
        );
        nl.set_master(host.index, br.index).unwrap();
        nl.set_port_isolated(host.index, true).unwrap();
        nl.set_up(host.index, true).unwrap();
        let host = nl.link("tvh0").unwrap().unwrap();
        assert_eq!(host.master, Some(br.index));
        assert!(host.up);

        let mut g = RtNetlink::open_in_netns_of(guest.pid()).unwrap();
        let eth0 = g.link("eth0").unwrap().expect("eth0 inside the guest");
        assert_eq!(eth0.mtu, 1400);
        assert_eq!(eth0.kind.as_deref(), Some("veth"));
        g.add_address(eth0.index, "10.99.0.11".parse().unwrap(), 24)
            .unwrap();
        g.add_address(eth0.index, "fd99::11".parse().unwrap(), 64)
            .unwrap();
        g.set_up(eth0.index, true).unwrap();
        let lo = g.link_index("lo").unwrap();
        g.set_up(lo, true).unwrap();
        g.set_default_route("10.99.0.1".parse().unwrap(), eth0.index)
            .unwrap();
        let addrs: Vec<(IpAddr, u8)> = g
            .addresses()
            .unwrap()
            .into_iter()
            .filter(|a| {
                a.index == eth0.index
                    && !matches!(a.addr, IpAddr::V6(v) if v.segments()[0] == 0xfe80)
            })
            .map(|a| (a.addr, a.prefix))
            .collect();
        assert_eq!(
            addrs,
            vec![
                ("10.99.0.11".parse().unwrap(), 24),
                ("fd99::11".parse().unwrap(), 64)
            ]
        );
        let routes = g.routes(false).unwrap();
        assert!(
            routes.iter().any(|r| r.dst.is_none()
                && r.gateway == Some("10.99.0.1".parse().unwrap())
                && r.oif == Some(eth0.index)),
            "{routes:?}"
        );

        // Move + rename: a link made here, moved into the guest, renamed there.
        nl.create_veth("tmv0", "tmv1", 1500, None).unwrap();
        let mv = nl.link_index("tmv1").unwrap();
        nl.move_to_netns_of(mv, guest.pid()).unwrap();
        assert!(nl.link("tmv1").unwrap().is_none());
        let inside = g.link_index("tmv1").unwrap();
        g.rename(inside, "eth1").unwrap();
        g.set_mtu(inside, 1280).unwrap();
        assert_eq!(g.link("eth1").unwrap().unwrap().mtu, 1280);

        // Deleting the host end deletes the pair, wherever the peer is.
        assert!(nl.delete_link_named("tvh0").unwrap());
        assert!(!nl.delete_link_named("tvh0").unwrap(), "idempotent");
        assert!(g.link("eth0").unwrap().is_none(), "peer went with it");
        assert!(nl.delete_link_named("tmv0").unwrap());
        assert!(g.link("eth1").unwrap().is_none());
    });
}

#[test]
fn bad_names_and_missing_links_are_named_in_errors() {
    if !root_or_skip() {
        return;
    }
    in_fresh_netns(|| {
        let mut nl = RtNetlink::open().unwrap();
        let e = nl
            .create_bridge("a-name-that-is-too-long", 1500)
            .unwrap_err();
        assert!(matches!(e, NetError::Invalid(_)));
        assert!(e.to_string().contains("a-name-that-is-too-long"), "{e}");
        let e = nl.link_index("nosuch0").unwrap_err();
        assert_eq!(e.to_string(), "link \"nosuch0\" does not exist");
        nl.create_bridge("tbr1", 1500).unwrap();
        let e = nl.create_bridge("tbr1", 1500).unwrap_err();
        assert_eq!(e.errno(), Some(libc::EEXIST));
        assert!(e.to_string().contains("creating bridge tbr1"), "{e}");
        let e = nl
            .add_address(1, "10.0.0.1".parse().unwrap(), 33)
            .unwrap_err();
        assert!(e.to_string().contains("10.0.0.1/33"), "{e}");
    });
}

fn our_tables(nft: &mut Nft) -> Vec<(Family, String)> {
    let mut t = nft.tables().unwrap();
    t.retain(|(_, n)| n.starts_with("vbt-"));
    t.sort_by(|a, b| a.1.cmp(&b.1));
    t
}

#[test]
fn nft_tables_are_replaced_atomically_and_deleted() {
    if !root_or_skip() {
        return;
    }
    in_fresh_netns(|| {
        let mut nft = Nft::open().unwrap();
        let pre = Chain {
            name: "pre".into(),
            hook: Hook::Prerouting,
            priority: -200,
            kind: ChainType::Filter,
        };
        let spoof = vec![
            Rule::new()
                .iifname(true, "vb-x")
                .ether_saddr(false, [2, 0, 0, 0, 0, 1])
                .drop(),
            Rule::new()
                .iifname(true, "vb-x")
                .ether_type(ETH_P_IP)
                .ip_saddr(true, "10.99.0.11".parse().unwrap(), 32)
                .accept(),
            Rule::new()
                .iifname(true, "vb-x")
                .ether_type(ETH_P_IP)
                .counter()
                .drop(),
        ];
        nft.replace_table(Family::Bridge, "vbt-guest", &[(pre.clone(), spoof.clone())])
            .unwrap();
        let post = Chain {
            name: "post".into(),
            hook: Hook::Postrouting,
            priority: 100,
            kind: ChainType::Nat,
        };
        let out = Chain {
            name: "out".into(),
            hook: Hook::Output,
            priority: -100,
            kind: ChainType::Nat,
        };
        let nat = vec![Rule::new()
            .nfproto(2)
            .ip_saddr(true, "10.99.0.0".parse().unwrap(), 24)
            .ip_daddr(false, "10.99.0.0".parse().unwrap(), 24)
            .masquerade()];
        let dnat = vec![Rule::new()
            .nfproto(2)
            .daddr_is_local()
            .l4proto(6)
            .dport(8080)
            .dnat("10.99.0.11".parse().unwrap(), 80)];
        nft.replace_table(
            Family::Inet,
            "vbt-net",
            &[(post.clone(), nat.clone()), (out, dnat)],
        )
        .unwrap();
        assert_eq!(
            our_tables(&mut nft),
            vec![
                (Family::Bridge, "vbt-guest".to_string()),
                (Family::Inet, "vbt-net".to_string())
            ]
        );
        assert_eq!(nft.rule_count(Family::Bridge, "vbt-guest").unwrap(), 3);
        assert_eq!(nft.rule_count(Family::Inet, "vbt-net").unwrap(), 2);

        // Replacing does not pile rules up.
        nft.replace_table(Family::Bridge, "vbt-guest", &[(pre.clone(), spoof)])
            .unwrap();
        assert_eq!(nft.rule_count(Family::Bridge, "vbt-guest").unwrap(), 3);

        // A refused batch changes nothing: the chain's table is missing.
        let mut b = Batch::new();
        b.add_table(Family::Ip, "vbt-half")
            .add_chain(Family::Ip, "vbt-missing", &post);
        let e = nft.commit(&b).unwrap_err();
        assert!(e.to_string().contains("vbt-missing"), "{e}");
        assert!(!our_tables(&mut nft).iter().any(|(_, n)| n == "vbt-half"));

        assert!(nft
            .delete_table_if_exists(Family::Bridge, "vbt-guest")
            .unwrap());
        assert!(!nft
            .delete_table_if_exists(Family::Bridge, "vbt-guest")
            .unwrap());
        assert!(nft.delete_table_if_exists(Family::Inet, "vbt-net").unwrap());
        assert!(our_tables(&mut nft).is_empty());
        assert_eq!(nft.rule_count(Family::Inet, "vbt-net").unwrap(), 0);
    });
}
