//! Forwarding switches under /proc/sys/net. They apply to the network
//! namespace of the calling thread (the file is opened from it).

use super::NetError;

/// Which families to forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forwarding {
    /// net.ipv4.ip_forward.
    pub v4: bool,
    /// net.ipv6.conf.all.forwarding.
    pub v6: bool,
}

/// Turns forwarding on for the families set in `f` (never off: other users
/// of the host may rely on it). NAT and published ports need it: without
/// forwarding the bridge's guests reach the host only.
pub fn set_forwarding(f: Forwarding) -> Result<(), NetError> {
    let mut files = Vec::new();
    if f.v4 {
        files.push("/proc/sys/net/ipv4/ip_forward");
    }
    if f.v6 {
        files.push("/proc/sys/net/ipv6/conf/all/forwarding");
    }
    for path in files {
        let cur = std::fs::read_to_string(path).unwrap_or_default();
        if cur.trim() == "1" {
            continue;
        }
        std::fs::write(path, "1").map_err(|source| NetError::Sysctl {
            path: path.into(),
            source,
        })?;
    }
    Ok(())
}

/// The per-link file of `net.ipv4.conf.LINK.route_localnet`, refusing
/// names that would reach another file (`all`, `default`, `..`, slashes):
/// callers mean one link and only that link.
fn route_localnet_path(link: &str) -> Result<String, NetError> {
    let bad = link.is_empty()
        || link.len() > 15
        || link == "all"
        || link == "default"
        || link.starts_with('.')
        || link.contains(['/', '\0']);
    if bad {
        return Err(NetError::Invalid(format!(
            "route_localnet: {link:?} is not one link's name (give a bridge's name)"
        )));
    }
    Ok(format!("/proc/sys/net/ipv4/conf/{link}/route_localnet"))
}

/// Lets packets to or from 127.0.0.0/8 be routed through `link` (and only
/// it): `net.ipv4.conf.LINK.route_localnet = 1`. A published port reached
/// at 127.0.0.1 is rewritten to the guest's address in the output hook but
/// keeps its loopback source until postrouting masquerades it; without this
/// the kernel refuses to route such a packet out of a non-loopback link,
/// and the guest's reply (de-NATed back to 127.0.0.1 in prerouting) would
/// be dropped as a martian destination when it arrives on the link.
pub fn set_route_localnet(link: &str) -> Result<(), NetError> {
    let path = route_localnet_path(link)?;
    let cur = std::fs::read_to_string(&path).map_err(|source| NetError::Sysctl {
        path: path.clone(),
        source,
    })?;
    if cur.trim() == "1" {
        return Ok(());
    }
    std::fs::write(&path, "1").map_err(|source| NetError::Sysctl { path, source })
}

/// Whether `net.ipv4.conf.LINK.route_localnet` is on (`all` and `default`
/// may be read too), for checks and tests.
pub fn route_localnet(link: &str) -> Result<bool, NetError> {
    let path = if link == "all" || link == "default" {
        format!("/proc/sys/net/ipv4/conf/{link}/route_localnet")
    } else {
        route_localnet_path(link)?
    };
    let cur = std::fs::read_to_string(&path).map_err(|source| NetError::Sysctl { path, source })?;
    Ok(cur.trim() == "1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_localnet_names_one_link_only() {
        for bad in [
            "",
            "all",
            "default",
            "..",
            ".",
            "a/b",
            "x\0y",
            "abcdefghijklmnop",
        ] {
            let e = route_localnet_path(bad).unwrap_err().to_string();
            assert!(e.contains("is not one link's name"), "{bad:?}: {e}");
        }
        assert_eq!(
            route_localnet_path("vbuild0").unwrap(),
            "/proc/sys/net/ipv4/conf/vbuild0/route_localnet"
        );
        // The link-wide switches can be read, never set through this.
        assert!(set_route_localnet("all").is_err());
        assert!(route_localnet("all").is_ok());
    }
}
