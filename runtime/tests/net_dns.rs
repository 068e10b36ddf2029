//! Guests find each other by name: two busybox guests started on one
//! network, one asks the network's responder (at the gateway) for the
//! other by `NAME` and `NAME.vbuild`; an unknown `*.vbuild` name does not
//! exist and other names are refused; the responder runs as `nobody`
//! without capabilities, is one per network, and is gone once the last
//! guest stopped. A resolv.conf vbuild wrote before networks had the
//! responder is brought up to date at start, one the guest edited is not.
//! Each test runs on a thread in a fresh network
//! namespace standing in for the host (the guests' supervisors and the
//! responder are forked from it and stay there), so its bridge and tables
//! vanish with it. Needs root.

mod common;
use common::{busybox_rootfs, eventually, root_or_skip, unique};
use std::path::PathBuf;
use std::time::Duration;
use vbuild_runtime::config::{GuestConfig, InitConfig, InitKind};
use vbuild_runtime::exec::ExecOptions;
use vbuild_runtime::name::GuestName;
use vbuild_runtime::net::{self, dns, NetMode, Network};
use vbuild_runtime::paths::Layout;
use vbuild_runtime::start::StartOptions;
use vbuild_runtime::state::State;
use vbuild_runtime::supervisor::SupervisorProgram;

const APPLETS: &[&str] = &["sh", "sleep", "cat", "nslookup"];

const INIT: &str = "#!/bin/sh\n\
trap 'exit 0' TERM\n\
while :; do sleep 1 & wait $!; done\n";

const NET: &str = "tdns0";
const GATEWAY: &str = "10.98.0.1";

fn options() -> StartOptions {
    StartOptions {
        privileged: false,
        supervisor: SupervisorProgram {
            program: PathBuf::from(env!("CARGO_BIN_EXE_vbuild-supervisor")),
            args: vec![],
        },
        on_reboot: None,
        on_exit: None,
    }
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

/// Stops the guests and removes their cgroups and id ranges, even when an
/// assertion failed.
struct Guests<'a> {
    layout: &'a Layout,
    names: Vec<String>,
}

impl Drop for Guests<'_> {
    fn drop(&mut self) {
        for n in &self.names {
            let name = GuestName::parse(n).unwrap();
            if let Ok(Some(_)) = State::load(self.layout, n) {
                let _ = vbuild_runtime::stop::stop(self.layout, &name, Duration::from_secs(2));
            }
            for h in ["pids", "memory", "devices", "unified", "freezer", "cpu"] {
                let d = PathBuf::from("/sys/fs/cgroup")
                    .join(h)
                    .join("vbuild")
                    .join(n);
                let _ = std::fs::remove_dir(d.join("guest"));
                let _ = std::fs::remove_dir(d);
            }
            let _ = vbuild_runtime::idrange::Registry::host().release(self.layout.root(), n);
        }
    }
}

fn make_guest(l: &Layout, n: &str) -> Vec<String> {
    busybox_rootfs(&l.guest_rootfs(n), INIT, APPLETS);
    let net = net::resolve(l, n, NetMode::Bridge, NET, &["auto".into()], &[]).unwrap();
    let addrs: Vec<String> = net
        .addresses
        .iter()
        .map(|a| a.split('/').next().unwrap().to_string())
        .collect();
    GuestConfig {
        name: n.to_string(),
        distro: "busybox".into(),
        release: "test".into(),
        variant: String::new(),
        created: 0,
        init: InitConfig {
            path: "/sbin/init".into(),
            args: vec![],
            kind: InitKind::Other,
        },
        limits: Default::default(),
        net,
        privileged: false,
        ids: None,
        template: None,
        autostart: false,
        restart: Default::default(),
    }
    .save(&l.guest_config(n))
    .unwrap();
    addrs
}

/// What `cmd` prints inside guest `n` (stdout and stderr).
fn output(l: &Layout, n: &str, cmd: &str) -> String {
    let name = GuestName::parse(n).unwrap();
    let argv = vec![
        "/bin/sh".to_string(),
        "-c".to_string(),
        format!("({cmd}) > /tmp/out 2>&1; true"),
    ];
    let code = vbuild_runtime::exec::exec(l, &name, &argv, &ExecOptions::default()).unwrap();
    assert_eq!(code, 0, "{cmd}");
    let pid = State::load(l, n).unwrap().unwrap().init_pid;
    std::fs::read_to_string(format!("/proc/{pid}/root/tmp/out")).unwrap()
}

/// A DNS query for `name`, type A, as a stub resolver sends it.
fn query(id: u16, name: &str) -> Vec<u8> {
    let mut p = id.to_be_bytes().to_vec();
    p.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for l in name.split('.') {
        p.push(l.len() as u8);
        p.extend_from_slice(l.as_bytes());
    }
    p.extend_from_slice(&[0, 0, 1, 0, 1]);
    p
}

/// A field of /proc/PID/status.
fn status_field(pid: i32, key: &str) -> String {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
        .trim()
        .to_string()
}

#[test]
fn guests_find_each_other_by_name_and_the_responder_ends_with_the_last() {
    if !root_or_skip() {
        return;
    }
    in_fresh_netns(|| {
        let d = tempfile::tempdir().unwrap();
        let l = Layout::new(Some(d.path()));
        Network::define(
            NET,
            &[
                "10.98.0.0/24".parse().unwrap(),
                "fd98::/64".parse().unwrap(),
            ],
            &[],
            false,
            false,
            vec![],
            None,
        )
        .unwrap()
        .create(&l)
        .unwrap();
        let (a, b) = (unique("a"), unique("b"));
        let _g = Guests {
            layout: &l,
            names: vec![a.clone(), b.clone()],
        };
        make_guest(&l, &a);
        let b_addrs = make_guest(&l, &b);
        assert_eq!(b_addrs.len(), 2, "{b_addrs:?}");
        assert_eq!(
            dns::running(&l, NET).unwrap(),
            None,
            "no guest, no responder"
        );

        for n in [&a, &b] {
            let s = vbuild_runtime::start::start(&l, &GuestName::parse(n).unwrap(), &options())
                .unwrap();
            assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        }
        let pid = dns::running(&l, NET).unwrap().expect("a responder runs");
        let pidfd = vbuild_kernel::process::pidfd_open(pid).unwrap();

        // Least privilege: nobody, no groups, no capabilities at all,
        // no_new_privs.
        assert_eq!(status_field(pid, "Uid"), "65534\t65534\t65534\t65534");
        assert_eq!(status_field(pid, "Gid"), "65534\t65534\t65534\t65534");
        assert_eq!(status_field(pid, "Groups"), "");
        for caps in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
            assert_eq!(status_field(pid, caps), "0000000000000000", "{caps}");
        }
        assert_eq!(status_field(pid, "NoNewPrivs"), "1");

        // A finds B by its name and by NAME.vbuild, in any case: both
        // of B's addresses.
        for q in [
            b.clone(),
            format!("{b}.vbuild"),
            format!("{}.VBUILD", b.to_uppercase()),
        ] {
            let out = output(&l, &a, &format!("nslookup {q} {GATEWAY}"));
            for addr in &b_addrs {
                assert!(out.contains(addr.as_str()), "{q}: {addr} missing in\n{out}");
            }
        }
        // An unknown name under vbuild does not exist; any other name is
        // not the responder's to answer.
        let out = output(&l, &a, &format!("nslookup nosuch.vbuild {GATEWAY}"));
        assert!(out.contains("NXDOMAIN"), "{out}");
        assert!(!out.contains("Address: 10.98."), "{out}");
        let out = output(&l, &a, &format!("nslookup deb.debian.org {GATEWAY}"));
        assert!(out.contains("REFUSED"), "{out}");

        // Hostile datagrams get no reply and do not stop it: after a
        // burst of them (truncated, a compression loop, a response, huge
        // counts), the first reply that comes back is the one to a real
        // query sent last.
        // From the host side (loopback carries traffic to its own address).
        vbuild_kernel::net::bring_up_loopback().unwrap();
        let host = std::net::UdpSocket::bind("10.98.0.1:0").unwrap();
        host.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let good = query(0x5151, &format!("{b}.vbuild"));
        let mut bad: Vec<Vec<u8>> = vec![
            good[..good.len() - 3].to_vec(),
            vec![
                0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'a', 0xc0, 12, 0, 1, 0, 1,
            ],
            vec![0xff; 12],
            vec![],
        ];
        let mut response = good.clone();
        response[2] |= 0x80;
        bad.push(response);
        // (Fewer than the socket's receive buffer holds: a flood beyond
        // it is dropped by the kernel, the real query with it.)
        for _ in 0..20 {
            for p in &bad {
                host.send_to(p, (GATEWAY, 53)).unwrap();
            }
        }
        host.send_to(&good, (GATEWAY, 53)).unwrap();
        let mut buf = [0u8; 600];
        let (n, _) = host.recv_from(&mut buf).expect("a reply to the real query");
        assert_eq!(
            &buf[..2],
            &[0x51, 0x51],
            "a reply to a hostile datagram came back"
        );
        let v4: std::net::Ipv4Addr = b_addrs[0].parse().unwrap();
        assert_eq!(
            &buf[n - 4..n],
            &v4.octets(),
            "B's address in {:?}",
            &buf[..n]
        );
        assert_eq!(
            n,
            good.len() + 16,
            "the question and one A record, nothing more"
        );

        // One per network: B's start found A's responder.
        assert_eq!(dns::running(&l, NET).unwrap(), Some(pid));

        // It outlives A (B still runs) and ends with B.
        vbuild_runtime::stop::stop(&l, &GuestName::parse(&a).unwrap(), Duration::from_secs(2))
            .unwrap();
        let out = output(&l, &b, &format!("nslookup {b}.vbuild {GATEWAY}"));
        assert!(out.contains(b_addrs[0].as_str()), "{out}");
        assert_eq!(dns::running(&l, NET).unwrap(), Some(pid));
        vbuild_runtime::stop::stop(&l, &GuestName::parse(&b).unwrap(), Duration::from_secs(2))
            .unwrap();
        eventually("the responder ends with the network's last guest", || {
            dns::running(&l, NET).unwrap().is_none()
        });
        // The process itself has ended (not just let its lock go).
        assert!(
            vbuild_kernel::process::wait_pidfd(&pidfd, Some(Duration::ZERO)).unwrap(),
            "responder process {pid} is still there"
        );
    });
}

#[test]
fn start_brings_a_resolv_conf_from_before_the_responder_up_to_date_and_keeps_edits() {
    if !root_or_skip() {
        return;
    }
    in_fresh_netns(|| {
        let d = tempfile::tempdir().unwrap();
        let l = Layout::new(Some(d.path()));
        Network::define(
            NET,
            &["10.98.0.0/24".parse().unwrap()],
            &[],
            false,
            false,
            vec!["9.9.9.9".parse().unwrap()],
            None,
        )
        .unwrap()
        .create(&l)
        .unwrap();
        let (a, b) = (unique("ra"), unique("rb"));
        let _g = Guests {
            layout: &l,
            names: vec![a.clone(), b.clone()],
        };
        make_guest(&l, &a);
        let b_addrs = make_guest(&l, &b);
        // What vbuild wrote before networks had a responder; B's admin
        // added an option since.
        let old = "# Written by vbuild from the guest's network settings (not the build host's).\n\
                   nameserver 9.9.9.9\n";
        let edited = format!("{old}options ndots:2\n");
        let file = |n: &str| l.guest_rootfs(n).join("etc/resolv.conf");
        std::fs::create_dir_all(l.guest_rootfs(&a).join("etc")).unwrap();
        std::fs::create_dir_all(l.guest_rootfs(&b).join("etc")).unwrap();
        std::fs::write(file(&a), old).unwrap();
        std::fs::write(file(&b), &edited).unwrap();

        for n in [&a, &b] {
            let s = vbuild_runtime::start::start(&l, &GuestName::parse(n).unwrap(), &options())
                .unwrap();
            assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        }
        let want = format!(
            "# Written by vbuild from the guest's network settings (not the build host's).\n\
             nameserver {GATEWAY}\nnameserver 9.9.9.9\nsearch vbuild\n"
        );
        assert_eq!(output(&l, &a, "cat /etc/resolv.conf"), want);
        assert_eq!(output(&l, &b, "cat /etc/resolv.conf"), edited);
        // A finds B through its own resolv.conf now (no server named).
        let out = output(&l, &a, &format!("nslookup {b}.vbuild"));
        assert!(out.contains(b_addrs[0].as_str()), "{out}");
        for n in [&a, &b] {
            vbuild_runtime::stop::stop(&l, &GuestName::parse(n).unwrap(), Duration::from_secs(2))
                .unwrap();
        }
        // A second start changes nothing more.
        vbuild_runtime::start::start(&l, &GuestName::parse(&a).unwrap(), &options()).unwrap();
        assert_eq!(std::fs::read_to_string(file(&a)).unwrap(), want);
        vbuild_runtime::stop::stop(&l, &GuestName::parse(&a).unwrap(), Duration::from_secs(2))
            .unwrap();
        eventually("the responder ends with the network's last guest", || {
            dns::running(&l, NET).unwrap().is_none()
        });
    });
}
