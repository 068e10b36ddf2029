//! Tailoring: the files and masks the Debian profile promises, release-
//! dependent apt sources, cleanup, bad values refused without changes,
//! network files rewritten idempotently, init detection.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use vbuild_builder::distro::debian::init::detect_init;
use vbuild_builder::tailor::{load_profile, tailor, write_network, NetVars, TailorVars};
use vbuild_runtime::config::InitKind;

fn vars(release: &str) -> TailorVars {
    TailorVars {
        hostname: "mail01".into(),
        release: release.into(),
        mirror: "http://deb.debian.org/debian".into(),
        security_mirror: Some("http://security.debian.org/debian-security".into()),
        suites: vec![release.into(), format!("{release}-updates")],
        security_suites: vec![format!("{release}-security")],
        components: vec!["main".into(), "contrib".into()],
        net: NetVars {
            addresses: vec!["10.77.0.11/24".into()],
            gateway4: Some("10.77.0.1".into()),
            gateway6: None,
            dns: vec!["10.77.0.1".into(), "fd77::1".into()],
            search: vec![],
            dhcp: false,
        },
    }
}

/// A rootfs looking like a freshly installed Debian system.
fn fixture() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    for dir in [
        "etc/apt",
        "run/lock",
        "tmp",
        "var/tmp",
        "var/lib/dbus",
        "var/lib/apt/lists/partial",
        "var/cache/apt/archives",
        "var/log/apt",
        "var/cache/ldconfig",
        "usr/lib/systemd/system",
        "var/lib/dpkg",
    ] {
        std::fs::create_dir_all(r.join(dir)).unwrap();
    }
    std::os::unix::fs::symlink("usr/lib", r.join("lib")).unwrap();
    for (f, c) in [
        ("etc/passwd", "root:x:0:0::/root:/bin/sh\n"),
        ("etc/passwd-", "old\n"),
        ("etc/shadow-", "old\n"),
        ("etc/hostname", "buildhost\n"),
        (
            "var/lib/dbus/machine-id",
            "0123456789abcdef0123456789abcdef\n",
        ),
        ("run/lock/x", ""),
        ("run/stale.pid", "1"),
        ("tmp/junk", "j"),
        (
            "var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease",
            "x",
        ),
        ("var/cache/apt/pkgcache.bin", "x"),
        ("var/cache/apt/archives/x.deb", "x"),
        ("var/log/dpkg.log", "x"),
        ("var/log/apt/history.log", "x"),
        ("var/cache/ldconfig/aux-cache", "x"),
        ("var/lib/dpkg/status-old", "x"),
        ("usr/lib/systemd/system/console-getty.service", "[Unit]\n"),
    ] {
        std::fs::write(r.join(f), c).unwrap();
    }
    d
}

fn read(root: &Path, p: &str) -> String {
    std::fs::read_to_string(root.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"))
}

/// Every path with its content or link target, to prove "nothing changed".
fn snapshot(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = p.symlink_metadata().unwrap();
            let v = if m.file_type().is_symlink() {
                format!("-> {}", std::fs::read_link(&p).unwrap().display())
            } else if m.is_dir() {
                stack.push(p.clone());
                "dir".into()
            } else {
                std::fs::read_to_string(&p).unwrap_or_default()
            };
            out.insert(p, v);
        }
    }
    out
}

#[test]
fn bookworm_gets_every_file_and_mask_the_profile_promises() {
    let d = fixture();
    let r = d.path();
    let report = tailor(r, "debian", &vars("bookworm")).unwrap();
    assert!(report.applied > 10);
    assert_eq!(read(r, "etc/hostname"), "mail01\n");
    assert!(read(r, "etc/hosts").contains("127.0.1.1\tmail01\n"));
    assert!(read(r, "etc/hosts").starts_with("127.0.0.1\tlocalhost\n"));
    assert_eq!(read(r, "etc/machine-id"), "");
    assert!(!r.join("var/lib/dbus/machine-id").exists());
    assert_eq!(
        read(r, "etc/resolv.conf"),
        "# Written by vbuild from the guest's network settings (not the build host's).\nnameserver 10.77.0.1\nnameserver fd77::1\n"
    );
    assert_eq!(read(r, "etc/fstab"), "");
    assert_eq!(
        read(r, "etc/apt/sources.list"),
        "deb http://deb.debian.org/debian bookworm main contrib\n\
         deb http://deb.debian.org/debian bookworm-updates main contrib\n\
         deb http://security.debian.org/debian-security bookworm-security main contrib\n"
    );
    assert!(!r.join("etc/apt/sources.list.d/debian.sources").exists());
    for unit in [
        "systemd-udevd.service",
        "systemd-udev-trigger.service",
        "systemd-modules-load.service",
        "systemd-binfmt.service",
        "systemd-hwdb-update.service",
        "systemd-pstore.service",
        "dev-hugepages.mount",
        "systemd-journald-audit.socket",
        "systemd-firstboot.service",
        "getty@tty1.service",
        "getty@tty6.service",
    ] {
        let link = r.join("etc/systemd/system").join(unit);
        assert_eq!(
            std::fs::read_link(&link).unwrap(),
            Path::new("/dev/null"),
            "{unit}"
        );
    }
    assert_eq!(
        std::fs::read_link(r.join("etc/systemd/system/getty.target.wants/console-getty.service"))
            .unwrap(),
        Path::new("/lib/systemd/system/console-getty.service")
    );
    // Cleanup: directories kept, contents gone.
    for dir in ["run", "tmp", "var/lib/apt/lists", "var/cache/apt"] {
        assert!(r.join(dir).is_dir(), "{dir}");
        assert_eq!(
            std::fs::read_dir(r.join(dir)).unwrap().count(),
            0,
            "{dir} not empty"
        );
    }
    assert!(r.join("etc/passwd").exists());
    for gone in [
        "etc/passwd-",
        "etc/shadow-",
        "var/log/dpkg.log",
        "var/log/apt/history.log",
        "var/cache/ldconfig/aux-cache",
        "var/lib/dpkg/status-old",
    ] {
        assert!(!r.join(gone).exists(), "{gone} still there");
    }
    // No systemd-networkd and no ifupdown in this rootfs: no network files.
    assert!(!r.join("etc/systemd/network").exists());
    assert!(!r.join("etc/network/interfaces").exists());
}

#[test]
fn trixie_gets_deb822_sources_and_sid_no_security() {
    let d = fixture();
    let r = d.path();
    std::fs::write(r.join("etc/apt/sources.list"), "deb old\n").unwrap();
    tailor(r, "debian", &vars("trixie")).unwrap();
    assert!(!r.join("etc/apt/sources.list").exists());
    assert_eq!(
        read(r, "etc/apt/sources.list.d/debian.sources"),
        "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: trixie trixie-updates\nComponents: main contrib\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\nTypes: deb\nURIs: http://security.debian.org/debian-security\nSuites: trixie-security\nComponents: main contrib\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    );
    let d = fixture();
    let mut v = vars("sid");
    v.suites = vec!["sid".into()];
    v.security_suites = vec![];
    v.security_mirror = None;
    tailor(d.path(), "debian", &v).unwrap();
    assert_eq!(
        read(d.path(), "etc/apt/sources.list.d/debian.sources"),
        "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: sid\nComponents: main contrib\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    );
}

#[test]
fn bad_values_change_nothing() {
    let d = fixture();
    let before = snapshot(d.path());
    let cases: Vec<(TailorVars, &str)> = vec![
        (
            TailorVars {
                hostname: "Mail_01".into(),
                ..vars("bookworm")
            },
            "hostname",
        ),
        (
            TailorVars {
                mirror: "ftp://x".into(),
                ..vars("bookworm")
            },
            "mirror",
        ),
        (
            TailorVars {
                net: NetVars {
                    addresses: vec!["10.0.0.1".into()],
                    ..Default::default()
                },
                ..vars("bookworm")
            },
            "prefix length",
        ),
        (
            TailorVars {
                net: NetVars {
                    dns: vec!["dns.example".into()],
                    ..Default::default()
                },
                ..vars("bookworm")
            },
            "DNS server",
        ),
        (
            TailorVars {
                net: NetVars {
                    search: vec!["bad domain".into()],
                    ..Default::default()
                },
                ..vars("bookworm")
            },
            "search domain",
        ),
        (
            TailorVars {
                net: NetVars {
                    gateway4: Some("fd00::1".into()),
                    ..Default::default()
                },
                ..vars("bookworm")
            },
            "gateway",
        ),
    ];
    for (v, needle) in cases {
        let e = tailor(d.path(), "debian", &v).unwrap_err().to_string();
        assert!(e.contains(needle), "{e}");
    }
    let e = tailor(d.path(), "nosuch", &vars("bookworm"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("nosuch") && e.contains("no such tailoring profile"),
        "{e}"
    );
    assert_eq!(before, snapshot(d.path()));
}

#[test]
fn guest_symlinks_do_not_redirect_writes_to_the_host() {
    let d = fixture();
    let outside = tempfile::tempdir().unwrap();
    let host_file = outside.path().join("resolv.conf");
    std::fs::write(&host_file, "host\n").unwrap();
    std::fs::remove_file(d.path().join("etc/hostname")).unwrap();
    std::os::unix::fs::symlink(&host_file, d.path().join("etc/resolv.conf")).unwrap();
    std::os::unix::fs::symlink(&host_file, d.path().join("etc/hostname")).unwrap();
    tailor(d.path(), "debian", &vars("bookworm")).unwrap();
    assert_eq!(std::fs::read_to_string(&host_file).unwrap(), "host\n");
    assert_eq!(read(d.path(), "etc/hostname"), "mail01\n");
}

#[test]
fn network_files_are_rewritten_idempotently() {
    let d = fixture();
    let r = d.path();
    std::fs::write(r.join("usr/lib/systemd/systemd-networkd"), "").unwrap();
    std::fs::write(
        r.join("usr/lib/systemd/system/systemd-networkd.service"),
        "",
    )
    .unwrap();
    std::fs::create_dir_all(r.join("usr/sbin")).unwrap();
    std::fs::write(r.join("usr/sbin/ifup"), "").unwrap();
    let spec = load_profile("debian").unwrap();
    let net = NetVars {
        addresses: vec!["10.77.0.11/24".into(), "fd77::11/64".into()],
        gateway4: Some("10.77.0.1".into()),
        gateway6: Some("fd77::1".into()),
        dns: vec!["9.9.9.9".into()],
        search: vec!["vbuild".into()],
        dhcp: false,
    };
    let written = write_network(r, &spec, &net).unwrap();
    assert_eq!(
        written,
        [
            "/etc/systemd/network/80-vbuild-eth0.network",
            "/etc/network/interfaces",
            "/etc/resolv.conf"
        ]
        .iter()
        .map(PathBuf::from)
        .collect::<Vec<_>>()
    );
    let networkd = read(r, "etc/systemd/network/80-vbuild-eth0.network");
    assert_eq!(
        networkd,
        "# Written by vbuild; `vbuild set --ip` rewrites it.\n[Match]\nName=eth0\n\n[Network]\nAddress=10.77.0.11/24\nAddress=fd77::11/64\nGateway=10.77.0.1\nGateway=fd77::1\nDNS=9.9.9.9\n"
    );
    // Single-label names are looked up under the network's zone too.
    assert_eq!(
        read(r, "etc/resolv.conf"),
        "# Written by vbuild from the guest's network settings (not the build host's).\nnameserver 9.9.9.9\nsearch vbuild\n"
    );
    // networkd manages eth0: ifupdown (standard variant) keeps to lo, so
    // the two never fight over eth0.
    let interfaces = read(r, "etc/network/interfaces");
    assert_eq!(
        interfaces,
        "# Written by vbuild; `vbuild set --ip` rewrites it.\nsource /etc/network/interfaces.d/*\n\nauto lo\niface lo inet loopback\n\n# eth0: configured by systemd-networkd (/etc/systemd/network/).\n"
    );
    assert_eq!(
        std::fs::read_link(
            r.join("etc/systemd/system/multi-user.target.wants/systemd-networkd.service")
        )
        .unwrap(),
        Path::new("/usr/lib/systemd/system/systemd-networkd.service")
    );
    let before = snapshot(r);
    write_network(r, &spec, &net).unwrap();
    assert_eq!(before, snapshot(r), "second run changed something");

    let dhcp = NetVars {
        dhcp: true,
        ..Default::default()
    };
    write_network(r, &spec, &dhcp).unwrap();
    let networkd = read(r, "etc/systemd/network/80-vbuild-eth0.network");
    assert!(networkd.ends_with("[Network]\nDHCP=yes\n"), "{networkd}");

    // Without networkd, ifupdown brings eth0 up; the runtime has already
    // set the addresses, so ifup must `replace`, never fail on "exists".
    std::fs::remove_file(r.join("usr/lib/systemd/systemd-networkd")).unwrap();
    write_network(r, &spec, &net).unwrap();
    assert_eq!(
        read(r, "etc/network/interfaces"),
        "# Written by vbuild; `vbuild set --ip` rewrites it.\nsource /etc/network/interfaces.d/*\n\nauto lo\niface lo inet loopback\n\nauto eth0\n\
         # vbuild sets these before init starts; `replace` makes ifup idempotent.\n\
         iface eth0 inet manual\n    up ip -4 address replace 10.77.0.11/24 dev eth0\n\
         \x20   up ip -4 route replace default via 10.77.0.1 dev eth0\n\
         \x20   up ip -6 address replace fd77::11/64 dev eth0 nodad\n\
         \x20   up ip -6 route replace default via fd77::1 dev eth0\n"
    );
    write_network(r, &spec, &dhcp).unwrap();
    assert!(read(r, "etc/network/interfaces").ends_with("auto eth0\niface eth0 inet dhcp\n"));
    // No DNS given: resolv.conf is left as it was.
    assert_eq!(read(r, "etc/resolv.conf"), "# Written by vbuild from the guest's network settings (not the build host's).\nnameserver 9.9.9.9\nsearch vbuild\n");

    let bad = NetVars {
        addresses: vec!["300.1.1.1/24".into()],
        ..Default::default()
    };
    let before = snapshot(r);
    assert!(write_network(r, &spec, &bad)
        .unwrap_err()
        .to_string()
        .contains("300.1.1.1"));
    assert_eq!(before, snapshot(r));
}

#[test]
fn init_is_detected_through_symlinks() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    assert_eq!(detect_init(r).kind, InitKind::Other);
    std::fs::create_dir_all(r.join("usr/sbin")).unwrap();
    std::fs::create_dir_all(r.join("usr/lib/systemd")).unwrap();
    std::os::unix::fs::symlink("usr/sbin", r.join("sbin")).unwrap();
    std::os::unix::fs::symlink("usr/lib", r.join("lib")).unwrap();
    std::fs::write(r.join("usr/lib/systemd/systemd"), "").unwrap();
    std::os::unix::fs::symlink("/lib/systemd/systemd", r.join("usr/sbin/init")).unwrap();
    let init = detect_init(r);
    assert_eq!(
        (init.path.as_str(), init.kind),
        ("/sbin/init", InitKind::Systemd)
    );

    std::fs::remove_file(r.join("usr/sbin/init")).unwrap();
    std::fs::write(r.join("usr/sbin/init"), "binary").unwrap();
    assert_eq!(detect_init(r).kind, InitKind::Other);
    std::fs::create_dir_all(r.join("var/lib/dpkg/info")).unwrap();
    std::fs::write(
        r.join("var/lib/dpkg/info/sysvinit-core.list"),
        "/.\n/sbin\n/sbin/init\n",
    )
    .unwrap();
    assert_eq!(detect_init(r).kind, InitKind::Sysvinit);

    // A link escaping the rootfs is resolved inside it, never on the host.
    std::fs::remove_file(r.join("usr/sbin/init")).unwrap();
    std::os::unix::fs::symlink(
        "../../../../../../lib/systemd/systemd",
        r.join("usr/sbin/init"),
    )
    .unwrap();
    assert_eq!(detect_init(r).kind, InitKind::Systemd);
}
