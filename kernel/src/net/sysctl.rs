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
