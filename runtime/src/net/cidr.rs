//! Addresses with a prefix length (`10.77.0.11/24`, `fd77::/64`), parsed
//! once with errors that say what a valid one looks like.

use super::NetError;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IP address with a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr {
    /// The address (a host or a network address).
    pub addr: IpAddr,
    /// Prefix length: 0-32 for IPv4, 0-128 for IPv6.
    pub prefix: u8,
}

fn bits(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u32::from(v) as u128,
        IpAddr::V6(v) => u128::from(v),
    }
}

fn width(a: IpAddr) -> u8 {
    if a.is_ipv4() {
        32
    } else {
        128
    }
}

fn from_bits(v4: bool, b: u128) -> IpAddr {
    if v4 {
        IpAddr::V4(Ipv4Addr::from(b as u32))
    } else {
        IpAddr::V6(Ipv6Addr::from(b))
    }
}

impl Cidr {
    /// Makes a prefix, checking its length against the family.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Cidr, NetError> {
        if prefix > width(addr) {
            return Err(NetError::InvalidCidr {
                input: format!("{addr}/{prefix}"),
                reason: format!("the prefix length must be at most {}", width(addr)),
            });
        }
        Ok(Cidr { addr, prefix })
    }

    /// True for IPv4.
    pub fn is_v4(&self) -> bool {
        self.addr.is_ipv4()
    }

    fn host_mask(&self) -> u128 {
        let w = width(self.addr) as u32;
        let host_bits = w - self.prefix as u32;
        if host_bits == 128 {
            u128::MAX
        } else {
            (1u128 << host_bits) - 1
        }
    }

    /// The network address (host bits cleared).
    pub fn network(&self) -> IpAddr {
        from_bits(self.is_v4(), bits(self.addr) & !self.host_mask())
    }

    /// This prefix with host bits cleared.
    pub fn net(&self) -> Cidr {
        Cidr {
            addr: self.network(),
            prefix: self.prefix,
        }
    }

    /// True when `ip` lies inside this prefix.
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.is_v4() && bits(ip) & !self.host_mask() == bits(self.network())
    }

    /// True when the two prefixes share any address.
    pub fn overlaps(&self, other: &Cidr) -> bool {
        self.is_v4() == other.is_v4()
            && (self.contains(other.network()) || other.contains(self.network()))
    }

    /// The address at host index `i` (0 is the network address); `None`
    /// past the end of the prefix.
    pub fn host(&self, i: u128) -> Option<IpAddr> {
        if i > self.host_mask() {
            return None;
        }
        Some(from_bits(self.is_v4(), bits(self.network()) | i))
    }

    /// The host index of `ip` inside this prefix.
    pub fn index_of(&self, ip: IpAddr) -> Option<u128> {
        self.contains(ip).then(|| bits(ip) & self.host_mask())
    }

    /// The highest host index usable for a guest: IPv4 keeps the last one
    /// for broadcast.
    pub fn last_host_index(&self) -> u128 {
        if self.is_v4() {
            self.host_mask().saturating_sub(1)
        } else {
            self.host_mask()
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Cidr {
    type Err = NetError;

    fn from_str(s: &str) -> Result<Cidr, NetError> {
        let bad = |reason: &str| NetError::InvalidCidr {
            input: s.to_string(),
            reason: reason.to_string(),
        };
        let (a, p) = s
            .split_once('/')
            .ok_or_else(|| bad("has no prefix length"))?;
        let addr: IpAddr = a.parse().map_err(|_| bad("is not an IP address"))?;
        let prefix: u8 = p
            .parse()
            .map_err(|_| bad("has a prefix length that is not a number"))?;
        Cidr::new(addr, prefix)
            .map_err(|_| bad(&format!("has a prefix length over {} bits", width(addr))))
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Cidr, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containment_hosts_and_errors() {
        let n: Cidr = "10.77.1.0/24".parse().unwrap();
        assert!(n.contains("10.77.1.200".parse().unwrap()));
        assert!(!n.contains("10.77.2.1".parse().unwrap()));
        assert!(!n.contains("fd77::1".parse().unwrap()));
        assert_eq!(n.host(11), Some("10.77.1.11".parse().unwrap()));
        assert_eq!(n.host(256), None);
        assert_eq!(n.last_host_index(), 254);
        let v6: Cidr = "fd77::/64".parse().unwrap();
        assert_eq!(v6.host(0x11), Some("fd77::11".parse().unwrap()));
        assert!(n.overlaps(&"10.77.0.0/16".parse().unwrap()));
        assert!(!n.overlaps(&"10.77.0.0/24".parse().unwrap()));
        let e = "10.77.1.0".parse::<Cidr>().unwrap_err().to_string();
        assert!(
            e.contains("\"10.77.1.0\"") && e.contains("no prefix length"),
            "{e}"
        );
        let e = "10.77.1.0/33".parse::<Cidr>().unwrap_err().to_string();
        assert!(e.contains("over 32 bits"), "{e}");
        let e = "10.77.x.0/24".parse::<Cidr>().unwrap_err().to_string();
        assert!(e.contains("not an IP address"), "{e}");
    }
}
