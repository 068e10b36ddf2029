//! `vbuild set` as one transaction, on file state under a temporary root
//! (no root needed): a step that fails after the guest's network files
//! were rewritten leaves files, guest.toml and leases exactly as they were.

use std::path::{Path, PathBuf};
use vbuild_runtime::config::{GuestConfig, NetConfig};
use vbuild_runtime::error::RuntimeError;
use vbuild_runtime::name::GuestName;
use vbuild_runtime::net::{self, NetMode};
use vbuild_runtime::paths::Layout;
use vbuild_runtime::set_net::{set_network, NetChange, NetworkFiles};

const NETWORK_FILE: &str = "etc/systemd/network/80-vbuild-eth0.network";

/// Writes the addresses into one networkd-style file and resolv.conf.
struct TestFiles;

impl NetworkFiles for TestFiles {
    fn paths(&self, _: &GuestConfig) -> Result<Vec<PathBuf>, String> {
        Ok(vec![NETWORK_FILE.into(), "etc/resolv.conf".into()])
    }
    fn write(
        &self,
        _: &Layout,
        rootfs: &Path,
        _: &GuestConfig,
        net: &NetConfig,
    ) -> Result<(), String> {
        let text = format!("[Network]\nAddress={}\n", net.addresses.join("\nAddress="));
        std::fs::create_dir_all(rootfs.join("etc/systemd/network")).map_err(|e| e.to_string())?;
        std::fs::write(rootfs.join(NETWORK_FILE), text).map_err(|e| e.to_string())?;
        std::fs::write(rootfs.join("etc/resolv.conf"), "nameserver 10.77.0.1\n")
            .map_err(|e| e.to_string())
    }
}

/// A guest `name` holding `ip` on vbuild0, with its network file written.
fn guest(l: &Layout, name: &str, ip: &str) {
    let cfg = net::resolve(l, name, NetMode::Bridge, "vbuild0", &[ip.to_string()], &[]).unwrap();
    let g = GuestConfig {
        name: name.into(),
        distro: "debian".into(),
        release: "bookworm".into(),
        variant: String::new(),
        created: 0,
        privileged: false,
        ids: None,
        template: None,
        autostart: false,
        restart: Default::default(),
        init: Default::default(),
        limits: Default::default(),
        net: cfg.clone(),
    };
    std::fs::create_dir_all(l.guest_rootfs(name)).unwrap();
    g.save(&l.guest_config(name)).unwrap();
    TestFiles.write(l, &l.guest_rootfs(name), &g, &cfg).unwrap();
}

fn change_ip(ip: &str) -> NetChange {
    NetChange {
        ips: vec![ip.into()],
        ..Default::default()
    }
}

fn read(p: PathBuf) -> Option<String> {
    std::fs::read_to_string(p).ok()
}

#[test]
fn set_changes_files_config_and_leases_together() {
    let d = tempfile::tempdir().unwrap();
    let l = Layout::new(Some(d.path()));
    guest(&l, "web01", "10.77.0.10/24");
    let name = GuestName::parse("web01").unwrap();
    let cfg = set_network(&l, &name, &change_ip("10.77.0.20/24"), &TestFiles).unwrap();
    assert_eq!(cfg.addresses, ["10.77.0.20/24"]);
    let file = read(l.guest_rootfs("web01").join(NETWORK_FILE)).unwrap();
    assert!(file.contains("Address=10.77.0.20/24"), "{file}");
    let saved = GuestConfig::load(&l.guest_config("web01")).unwrap();
    assert_eq!(saved.net.addresses, ["10.77.0.20/24"]);
    // The old address is free again, the new one is web01's.
    net::resolve(
        &l,
        "other",
        NetMode::Bridge,
        "vbuild0",
        &["10.77.0.10/24".into()],
        &[],
    )
    .unwrap();
    let e = net::resolve(
        &l,
        "third",
        NetMode::Bridge,
        "vbuild0",
        &["10.77.0.20/24".into()],
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("guest web01"), "{e}");
}

#[test]
fn a_failure_after_the_file_write_changes_nothing() {
    let d = tempfile::tempdir().unwrap();
    let l = Layout::new(Some(d.path()));
    guest(&l, "web01", "10.77.0.10/24");
    let rootfs = l.guest_rootfs("web01");
    let files_before = (
        read(rootfs.join(NETWORK_FILE)),
        read(rootfs.join("etc/resolv.conf")),
    );
    let config_before = std::fs::read(l.guest_config("web01")).unwrap();
    let leases = l.networks_dir().join("vbuild0.leases");
    let leases_before = read(leases.clone()).unwrap();
    // Saving guest.toml (the last step, after the files are rewritten)
    // fails: a directory sits where its temporary file must be created.
    let blocker = l
        .guest_dir("web01")
        .join(format!(".guest.toml.{}.tmp", std::process::id()));
    std::fs::create_dir(&blocker).unwrap();

    let name = GuestName::parse("web01").unwrap();
    let e = set_network(&l, &name, &change_ip("10.77.0.20/24"), &TestFiles).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, RuntimeError::Unchanged { .. }), "{text}");
    assert!(
        text.contains("saving guest.toml") && text.contains("nothing was changed"),
        "{text}"
    );
    assert_eq!(
        (
            read(rootfs.join(NETWORK_FILE)),
            read(rootfs.join("etc/resolv.conf"))
        ),
        files_before,
        "the guest's network files are as they were"
    );
    assert_eq!(
        std::fs::read(l.guest_config("web01")).unwrap(),
        config_before
    );
    // Leases hold the same addresses for the same guests (the timestamps
    // of re-recorded leases may differ).
    let strip = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| !l.starts_with("since"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(strip(&read(leases).unwrap()), strip(&leases_before));
    // The address set tried to take is free for others.
    net::resolve(
        &l,
        "other",
        NetMode::Bridge,
        "vbuild0",
        &["10.77.0.20/24".into()],
        &[],
    )
    .unwrap();
    std::fs::remove_dir(&blocker).unwrap();
}

#[test]
fn a_new_file_the_change_created_is_removed_again() {
    let d = tempfile::tempdir().unwrap();
    let l = Layout::new(Some(d.path()));
    guest(&l, "web01", "10.77.0.10/24");
    let rootfs = l.guest_rootfs("web01");
    std::fs::remove_file(rootfs.join("etc/resolv.conf")).unwrap();
    let blocker = l
        .guest_dir("web01")
        .join(format!(".guest.toml.{}.tmp", std::process::id()));
    std::fs::create_dir(&blocker).unwrap();
    let name = GuestName::parse("web01").unwrap();
    set_network(&l, &name, &change_ip("10.77.0.21/24"), &TestFiles).unwrap_err();
    assert!(!rootfs.join("etc/resolv.conf").exists());
    std::fs::remove_dir(&blocker).unwrap();
}

#[test]
fn an_unknown_guest_or_network_is_refused_before_anything_changes() {
    let d = tempfile::tempdir().unwrap();
    let l = Layout::new(Some(d.path()));
    let nobody = GuestName::parse("nobody").unwrap();
    assert!(matches!(
        set_network(&l, &nobody, &change_ip("auto"), &TestFiles),
        Err(RuntimeError::NotFound(_))
    ));
    guest(&l, "web01", "10.77.0.10/24");
    let before = read(l.guest_rootfs("web01").join(NETWORK_FILE));
    let name = GuestName::parse("web01").unwrap();
    let change = NetChange {
        network: Some("lan9".into()),
        ..Default::default()
    };
    let e = set_network(&l, &name, &change, &TestFiles)
        .unwrap_err()
        .to_string();
    assert!(e.contains("lan9"), "{e}");
    assert_eq!(read(l.guest_rootfs("web01").join(NETWORK_FILE)), before);
}

#[test]
fn set_ip_of_one_family_keeps_the_other_and_auto_keeps_what_the_guest_has() {
    let d = tempfile::tempdir().unwrap();
    let l = Layout::new(Some(d.path()));
    guest(&l, "dual", "auto");
    let name = GuestName::parse("dual").unwrap();
    let before = GuestConfig::load(&l.guest_config("dual"))
        .unwrap()
        .net
        .addresses;
    assert_eq!(before.len(), 2, "{before:?}");
    let v6 = before.iter().find(|a| a.contains(':')).unwrap().clone();
    // An IPv4 address alone: the IPv6 one stays.
    let cfg = set_network(&l, &name, &change_ip("10.77.0.20/24"), &TestFiles).unwrap();
    assert_eq!(cfg.addresses, ["10.77.0.20/24".to_string(), v6.clone()]);
    // auto on a guest that has addresses: nothing moves.
    let cfg = set_network(&l, &name, &change_ip("auto"), &TestFiles).unwrap();
    assert_eq!(cfg.addresses, ["10.77.0.20/24".to_string(), v6.clone()]);
    let saved = GuestConfig::load(&l.guest_config("dual")).unwrap();
    assert_eq!(saved.net.addresses, cfg.addresses);
    // An IPv6 address alone: the IPv4 one stays.
    let cfg = set_network(&l, &name, &change_ip("fd77::99/64"), &TestFiles).unwrap();
    assert_eq!(cfg.addresses, ["10.77.0.20/24", "fd77::99/64"]);
}
