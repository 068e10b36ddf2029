//! Addresses on links. IPv6 addresses are added without duplicate address
//! detection: vbuild's address allocation already guarantees uniqueness on
//! the bridge, and skipping DAD makes them usable at once. IPv4 addresses
//! carry their subnet's broadcast address, as `ip addr add ... brd +` and
//! systemd-networkd set it: networkd 252 (bookworm) finding the same address
//! without one re-requests it in a loop until its netlink queue overflows
//! ("Failed to configure address: Numerical result out of range").

use super::{NetError, RtNetlink};
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use std::net::{IpAddr, Ipv4Addr};

/// One address as a dump reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddrInfo {
    /// Link index.
    pub index: u32,
    /// The address.
    pub addr: IpAddr,
    /// Prefix length.
    pub prefix: u8,
}

fn family(a: &IpAddr) -> AddressFamily {
    match a {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

fn message(index: u32, addr: IpAddr, prefix: u8) -> Result<AddressMessage, NetError> {
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if prefix > max {
        return Err(NetError::Invalid(format!(
            "{addr}/{prefix}: prefix length must be at most {max}"
        )));
    }
    let mut m = AddressMessage::default();
    m.header.family = family(&addr);
    m.header.prefix_len = prefix;
    m.header.index = index;
    m.attributes.push(AddressAttribute::Local(addr));
    m.attributes.push(AddressAttribute::Address(addr));
    if let Some(brd) = broadcast(addr, prefix) {
        m.attributes.push(AddressAttribute::Broadcast(brd));
    }
    if addr.is_ipv6() {
        m.attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
    }
    Ok(m)
}

/// The subnet broadcast address of an IPv4 `addr/prefix`; none for IPv6 and
/// for /31 and /32, which have no broadcast (RFC 3021).
fn broadcast(addr: IpAddr, prefix: u8) -> Option<Ipv4Addr> {
    match addr {
        IpAddr::V4(a) if prefix <= 30 => {
            let host_bits = u32::MAX.checked_shr(u32::from(prefix)).unwrap_or(0);
            Some(Ipv4Addr::from(u32::from(a) | host_bits))
        }
        _ => None,
    }
}

impl RtNetlink {
    /// Adds `addr/prefix` to link `index` (replacing the same address if
    /// present, so a repeated setup is harmless).
    pub fn add_address(&mut self, index: u32, addr: IpAddr, prefix: u8) -> Result<(), NetError> {
        let m = message(index, addr, prefix)?;
        self.request(
            RouteNetlinkMessage::NewAddress(m),
            NLM_F_CREATE | NLM_F_REPLACE,
            &|| format!("adding address {addr}/{prefix} to link index {index}"),
        )
    }

    /// Adds `addr/prefix`, failing with EEXIST when it is there already.
    pub fn add_address_excl(
        &mut self,
        index: u32,
        addr: IpAddr,
        prefix: u8,
    ) -> Result<(), NetError> {
        let m = message(index, addr, prefix)?;
        self.request(
            RouteNetlinkMessage::NewAddress(m),
            NLM_F_CREATE | NLM_F_EXCL,
            &|| format!("adding address {addr}/{prefix} to link index {index}"),
        )
    }

    /// Removes `addr/prefix` from link `index`.
    pub fn del_address(&mut self, index: u32, addr: IpAddr, prefix: u8) -> Result<(), NetError> {
        let m = message(index, addr, prefix)?;
        self.request(RouteNetlinkMessage::DelAddress(m), 0, &|| {
            format!("removing address {addr}/{prefix} from link index {index}")
        })
    }

    /// Every address of this namespace (all links, both families).
    pub fn addresses(&mut self) -> Result<Vec<AddrInfo>, NetError> {
        let msgs = self.dump(
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
            &|| "listing addresses".into(),
        )?;
        let mut out = Vec::new();
        for m in msgs {
            if let RouteNetlinkMessage::NewAddress(a) = m {
                // IFA_LOCAL is the interface's own address on point-to-point
                // links; IFA_ADDRESS otherwise. Prefer LOCAL when present.
                let mut addr = None;
                for at in &a.attributes {
                    match at {
                        AddressAttribute::Local(x) => addr = Some(*x),
                        AddressAttribute::Address(x) if addr.is_none() => addr = Some(*x),
                        _ => {}
                    }
                }
                if let Some(addr) = addr {
                    out.push(AddrInfo {
                        index: a.header.index,
                        addr,
                        prefix: a.header.prefix_len,
                    });
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_addresses_carry_their_subnet_broadcast() {
        let v4 = |s: &str| IpAddr::V4(s.parse().unwrap());
        assert_eq!(
            broadcast(v4("10.77.0.2"), 24),
            Some("10.77.0.255".parse().unwrap())
        );
        assert_eq!(
            broadcast(v4("10.77.1.9"), 16),
            Some("10.77.255.255".parse().unwrap())
        );
        assert_eq!(
            broadcast(v4("192.0.2.1"), 30),
            Some("192.0.2.3".parse().unwrap())
        );
        assert_eq!(
            broadcast(v4("0.0.0.0"), 0),
            Some("255.255.255.255".parse().unwrap())
        );
        assert_eq!(broadcast(v4("192.0.2.1"), 31), None);
        assert_eq!(broadcast(v4("192.0.2.1"), 32), None);
        assert_eq!(broadcast("fd77::2".parse().unwrap(), 64), None);
        let m = message(2, v4("10.77.0.2"), 24).unwrap();
        assert!(m
            .attributes
            .contains(&AddressAttribute::Broadcast("10.77.0.255".parse().unwrap())));
    }
}
