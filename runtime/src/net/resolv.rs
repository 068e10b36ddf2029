//! A guest's `/etc/resolv.conf` brought up to date at start.
//!
//! Guests built before networks had their own name responder got a
//! resolv.conf listing only the network's resolvers; the builder writes
//! the gateway first (with `search vbuild`) since then, but only when it
//! writes network files (build, `vbuild set`). At start the runtime
//! rewrites the file when, and only when, it is byte for byte what vbuild
//! wrote back then for this network: a file the guest edited, replaced or
//! turned into a symlink (systemd-resolved's stub, say) stays as it is.
//! The file is read and written through the root-confined API
//! ([`Root::read_regular`] refuses a symlink and anything but a regular
//! file; [`Root::write`] replaces the entry, never writes through it).
//!
//! The text is the builder's `recipes/templates/resolv.conf.hbs` as it
//! renders (a builder test holds the two together); both tailoring
//! profiles (Debian, Fedora) keep it at `/etc/resolv.conf`.

use super::Network;
use std::net::IpAddr;
use std::path::Path;
use vbuild_kernel::fsroot::{FsError, Root};

/// The first line of every resolv.conf vbuild writes.
pub const HEADER: &str =
    "# Written by vbuild from the guest's network settings (not the build host's).";

/// Where the file is in the guest.
const PATH: &str = "etc/resolv.conf";
/// Largest resolv.conf read (vbuild's are a few lines).
const MAX: u64 = 16 << 10;

/// The text vbuild writes for `servers` and the `search` domains.
pub fn render(servers: &[IpAddr], search: &[&str]) -> String {
    let mut out = format!("{HEADER}\n");
    for s in servers {
        out.push_str(&format!("nameserver {s}\n"));
    }
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    out
}

/// The resolv.conf a guest of `net` with `addresses` gets now: the
/// network's responder at the gateway first, with `search vbuild`
/// (unless the network has none), then the network's resolvers.
pub fn current(net: &Network, addresses: &[String]) -> String {
    let has = |v4: bool| {
        addresses
            .iter()
            .filter_map(|s| s.parse::<super::Cidr>().ok())
            .any(|c| c.is_v4() == v4)
    };
    let (v4, v6) = (has(true), has(false));
    let search: Vec<&str> = super::dns::guest_nameserver(net, v4, v6)
        .map(|_| vec![super::dns::ZONE_NAME])
        .unwrap_or_default();
    render(&net.guest_resolvers(v4, v6), &search)
}

/// What vbuild wrote before networks had a responder: the network's
/// resolvers alone (no file at all when it had none).
pub fn before_responder(net: &Network) -> Option<String> {
    (!net.dns.is_empty()).then(|| render(&net.dns, &[]))
}

/// `root`'s resolv.conf when it may be vbuild's: a regular file starting
/// with [`HEADER`] (a cheap look before the network is loaded; the text is
/// what [`update`] then compares).
pub fn vbuilds(root: &Root) -> Option<Vec<u8>> {
    root.read_regular(Path::new(PATH), MAX)
        .ok()
        .filter(|t| t.starts_with(HEADER.as_bytes()))
}

/// Rewrites `root`'s resolv.conf, whose text is `text`, to [`current`]
/// when it is exactly what [`before_responder`] gives for `net`; returns
/// whether it did. Other text is left alone: `Ok(false)`.
pub fn update(
    root: &Root,
    text: &[u8],
    net: &Network,
    addresses: &[String],
) -> Result<bool, FsError> {
    let Some(old) = before_responder(net) else {
        return Ok(false);
    };
    let new = current(net, addresses);
    if text != old.as_bytes() || new == old {
        return Ok(false);
    }
    root.write(Path::new(PATH), new.as_bytes(), 0o644)?;
    Ok(true)
}

/// [`update`] of the resolv.conf read from `root`; no such file, a
/// symlink or anything but a regular file is left alone: `Ok(false)`.
pub fn refresh(root: &Root, net: &Network, addresses: &[String]) -> Result<bool, FsError> {
    match root.read_regular(Path::new(PATH), MAX) {
        Ok(text) => update(root, &text, net, addresses),
        Err(_) => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn net(no_dns: bool) -> Network {
        let mut n = Network::define(
            "lan0",
            &[
                "10.77.5.0/24".parse().unwrap(),
                "fd77:5::/64".parse().unwrap(),
            ],
            &[],
            true,
            false,
            vec![
                "9.9.9.9".parse().unwrap(),
                "149.112.112.112".parse().unwrap(),
            ],
            None,
        )
        .unwrap();
        n.no_dns = no_dns;
        n
    }

    fn guest(text: &str) -> (tempfile::TempDir, Root) {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        std::fs::write(d.path().join("etc/resolv.conf"), text).unwrap();
        let r = Root::open(d.path()).unwrap();
        (d, r)
    }

    fn read(d: &tempfile::TempDir) -> String {
        std::fs::read_to_string(d.path().join("etc/resolv.conf")).unwrap()
    }

    const ADDRS: [&str; 1] = ["10.77.5.7/24"];

    fn addrs() -> Vec<String> {
        ADDRS.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_file_vbuild_wrote_before_the_responder_is_brought_up_to_date() {
        let n = net(false);
        let old = format!("{HEADER}\nnameserver 9.9.9.9\nnameserver 149.112.112.112\n");
        assert_eq!(before_responder(&n).unwrap(), old);
        let (d, r) = guest(&old);
        assert!(refresh(&r, &n, &addrs()).unwrap());
        let want = format!(
            "{HEADER}\nnameserver 10.77.5.1\nnameserver 9.9.9.9\nnameserver 149.112.112.112\nsearch vbuild\n"
        );
        assert_eq!(read(&d), want);
        let mode = std::fs::metadata(d.path().join("etc/resolv.conf"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644);
        // Once current, a second start changes nothing.
        assert!(!refresh(&r, &n, &addrs()).unwrap());
        assert_eq!(read(&d), want);
    }

    #[test]
    fn an_ipv6_only_guest_gets_the_ipv6_gateway() {
        let n = net(false);
        let (d, r) = guest(&before_responder(&n).unwrap());
        assert!(refresh(&r, &n, &["fd77:5::7/64".to_string()]).unwrap());
        assert!(read(&d).starts_with(&format!("{HEADER}\nnameserver fd77:5::1\n")));
    }

    #[test]
    fn edited_files_symlinks_and_networks_without_a_responder_are_left_alone() {
        let n = net(false);
        let old = before_responder(&n).unwrap();
        for edited in [
            format!("{old}options ndots:2\n"),
            old.replace("9.9.9.9", "1.1.1.1"),
            "nameserver 9.9.9.9\nnameserver 149.112.112.112\n".to_string(),
            String::new(),
        ] {
            let (d, r) = guest(&edited);
            assert!(!refresh(&r, &n, &addrs()).unwrap(), "{edited:?}");
            assert_eq!(read(&d), edited);
        }
        // A symlink is the guest's arrangement: never followed, never replaced.
        let (d, r) = guest("");
        let target = d.path().join("etc/old-resolv");
        std::fs::write(&target, &old).unwrap();
        std::fs::remove_file(d.path().join("etc/resolv.conf")).unwrap();
        std::os::unix::fs::symlink("old-resolv", d.path().join("etc/resolv.conf")).unwrap();
        assert!(!refresh(&r, &n, &addrs()).unwrap());
        assert!(d
            .path()
            .join("etc/resolv.conf")
            .symlink_metadata()
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), old);
        // No file, nothing made.
        let empty = tempfile::tempdir().unwrap();
        let r = Root::open(empty.path()).unwrap();
        assert!(!refresh(&r, &n, &addrs()).unwrap());
        assert!(!empty.path().join("etc").exists());
        // --no-dns: the old text is still the right one.
        let quiet = net(true);
        let (d, r) = guest(&old);
        assert!(!refresh(&r, &quiet, &addrs()).unwrap());
        assert_eq!(read(&d), old);
    }
}
