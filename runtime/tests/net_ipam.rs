//! Address management and network definitions: pure file state under a
//! temporary root, no kernel changes (no root needed).

use std::collections::BTreeSet;
use vbuild_runtime::config::GuestConfig;
use vbuild_runtime::net::{self, Cidr, NetError, NetMode, Network};
use vbuild_runtime::paths::Layout;

fn layout() -> (tempfile::TempDir, Layout) {
    let d = tempfile::tempdir().unwrap();
    let l = Layout::new(Some(d.path()));
    (d, l)
}

fn auto(l: &Layout, guest: &str) -> Vec<String> {
    net::resolve(l, guest, NetMode::Bridge, "vbuild0", &["auto".into()], &[])
        .unwrap()
        .addresses
}

fn save_guest(l: &Layout, name: &str, addrs: &[&str], publish: &[&str]) {
    let mut c: GuestConfig = toml::from_str(&format!(
        "name = \"{name}\"\ndistro = \"debian\"\nrelease = \"bookworm\"\n"
    ))
    .unwrap();
    c.net.addresses = addrs.iter().map(|s| s.to_string()).collect();
    c.net.publish = publish.iter().map(|s| s.to_string()).collect();
    std::fs::create_dir_all(l.guest_dir(name)).unwrap();
    c.save(&l.guest_config(name)).unwrap();
}

#[test]
fn concurrent_auto_allocations_never_share_an_address() {
    let (_d, l) = layout();
    let got: Vec<Vec<String>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..24)
            .map(|i| {
                let l = &l;
                s.spawn(move || auto(l, &format!("g{i}")))
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let v4: BTreeSet<String> = got.iter().map(|a| a[0].clone()).collect();
    let v6: BTreeSet<String> = got.iter().map(|a| a[1].clone()).collect();
    assert_eq!(v4.len(), 24, "{got:?}");
    assert_eq!(v6.len(), 24, "{got:?}");
    // Lease files never pass for networks.
    assert_eq!(Network::list(&l).unwrap().len(), 1);
    let sub: Cidr = "10.77.0.0/24".parse().unwrap();
    for a in &v4 {
        let c: Cidr = a.parse().unwrap();
        assert!(sub.contains(c.addr) && c.prefix == 24, "{a}");
        assert_ne!(a, "10.77.0.1/24", "the gateway is never handed out");
    }
    // IPv6 takes the IPv4 host number: 10.77.0.2 -> fd77::2.
    let first = auto(&l, "g0");
    assert_eq!(first, got[0], "a guest keeps what it holds");
    let host4 = first[0]
        .split('.')
        .nth(3)
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    let n: u32 = host4.parse().unwrap();
    assert_eq!(first[1], format!("fd77::{n:x}/64"));
}

#[test]
fn addresses_in_other_guests_configs_count_as_taken() {
    let (_d, l) = layout();
    save_guest(&l, "old", &["10.77.0.2/24", "fd77::3/64"], &[]);
    let a = auto(&l, "new");
    // .2 is taken for IPv4; fd77::3 is taken so IPv6 falls back to the lowest free.
    assert_eq!(
        a,
        vec!["10.77.0.3/24".to_string(), "fd77::2/64".to_string()]
    );
}

#[test]
fn bad_addresses_get_one_clear_error_and_change_nothing() {
    let (_d, l) = layout();
    let fixed =
        |g: &str, ip: &str| net::resolve(&l, g, NetMode::Bridge, "vbuild0", &[ip.to_string()], &[]);
    fixed("mail01", "10.77.0.11/24").unwrap();
    let leases = l.networks_dir().join("vbuild0.leases");
    let before = std::fs::read(&leases).unwrap();

    let e = fixed("web01", "10.77.0.11/24").unwrap_err();
    assert!(matches!(e, NetError::AddressInUse { .. }));
    assert_eq!(
        e.to_string(),
        "address 10.77.0.11/24 on network vbuild0 is already used by guest mail01; pick another address, or use --ip auto"
    );
    let e = fixed("web01", "10.78.0.5/24").unwrap_err().to_string();
    assert!(
        e.contains("outside network vbuild0 (10.77.0.0/24, fd77::/64)"),
        "{e}"
    );
    let e = fixed("web01", "10.77.0.5/16").unwrap_err().to_string();
    assert!(
        e.contains("outside network vbuild0"),
        "wrong prefix length: {e}"
    );
    let e = fixed("web01", "10.77.0.300/24").unwrap_err().to_string();
    assert!(e.contains("\"10.77.0.300/24\" is not an IP address"), "{e}");
    let e = fixed("web01", "10.77.0.1/24").unwrap_err().to_string();
    assert!(e.contains("already used by the gateway"), "{e}");
    let e = fixed("web01", "10.77.0.255/24").unwrap_err().to_string();
    assert!(e.contains("broadcast"), "{e}");
    let e = net::resolve(&l, "web01", NetMode::Bridge, "lan9", &["auto".into()], &[])
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("network \"lan9\" does not exist (create it with `vbuild net create lan9"),
        "{e}"
    );
    let e = net::resolve(&l, "web01", NetMode::None, "vbuild0", &["auto".into()], &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("need --net-mode bridge"), "{e}");
    assert!(!l.networks_dir().join("lan9.toml").exists());
    assert_eq!(std::fs::read(&leases).unwrap(), before, "nothing changed");

    // Releasing gives the address back.
    net::release(&l, "vbuild0", "mail01").unwrap();
    fixed("web01", "10.77.0.11/24").unwrap();
}

#[test]
fn published_ports_belong_to_one_guest() {
    let (_d, l) = layout();
    save_guest(&l, "web01", &["10.77.0.5/24"], &["8080:80/tcp"]);
    let e = net::resolve(
        &l,
        "web02",
        NetMode::Bridge,
        "vbuild0",
        &[],
        &["8080:80".into()],
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("published by guest web01"), "{e}");
    // Same port number over UDP is another port.
    let c = net::resolve(
        &l,
        "web02",
        NetMode::Bridge,
        "vbuild0",
        &[],
        &["8080:80/udp".into()],
    )
    .unwrap();
    assert_eq!(c.publish, vec!["8080:80/udp".to_string()]);
    assert_eq!(c.addresses.len(), 2, "no --ip still gets an address: {c:?}");
}

#[test]
fn network_definitions_are_checked_before_anything_exists() {
    let (_d, l) = layout();
    let def = |name: &str, subnet: &str| {
        Network::define(
            name,
            &[subnet.parse().unwrap()],
            &[],
            true,
            false,
            vec![],
            None,
        )
    };
    let e = def("lan0", "10.77.1.5/24").unwrap_err().to_string();
    assert_eq!(
        e,
        "subnet 10.77.1.5/24 is not a network address (did you mean 10.77.1.0/24?)"
    );
    let e = def("LAN", "10.77.1.0/24").unwrap_err().to_string();
    assert!(e.contains("network name \"LAN\" is not usable"), "{e}");
    let e = def("a-very-long-network", "10.77.1.0/24")
        .unwrap_err()
        .to_string();
    assert!(e.contains("1-15 characters"), "{e}");
    let n = def("lan0", "10.77.1.0/24").unwrap();
    assert_eq!(n.gateway4, Some("10.77.1.1".parse().unwrap()));
    assert_eq!(n.bridge, "lan0");
    // Overlapping the default network is refused before any link is made.
    let e = def("lan1", "10.77.0.0/16").unwrap().create(&l).unwrap_err();
    assert_eq!(
        e.to_string(),
        "subnet 10.77.0.0/16 overlaps network vbuild0 (10.77.0.0/24); choose another subnet"
    );
    assert!(!l.networks_dir().join("lan1.toml").exists());
    let names: Vec<String> = Network::list(&l)
        .unwrap()
        .into_iter()
        .map(|n| n.name)
        .collect();
    assert_eq!(
        names,
        vec!["vbuild0".to_string()],
        "vbuild0 exists without setup"
    );
}

#[test]
fn delete_refuses_a_network_guests_name_running_or_stopped() {
    let (_d, l) = layout();
    save_guest(&l, "mail01", &["10.77.0.5/24"], &[]);
    save_guest(&l, "idle02", &["10.77.0.6/24"], &[]);
    std::fs::create_dir_all(l.run_dir("mail01")).unwrap();
    std::fs::write(l.run_dir("mail01").join("state.json"), "{}").unwrap();
    // idle02 is stopped: its next start would fail without the network.
    let e = Network::delete(&l, "vbuild0").unwrap_err().to_string();
    assert_eq!(
        e,
        "network vbuild0 is still named by guests: idle02, mail01 (delete them, or move them with `vbuild set NAME --net OTHER`, first)"
    );
    let e = Network::delete(&l, "nosuch").unwrap_err().to_string();
    assert!(e.contains("network \"nosuch\" does not exist"), "{e}");
}
