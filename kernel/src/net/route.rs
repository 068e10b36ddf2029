//! Routes: the default route a guest leaves its subnet by.

use super::{NetError, RtNetlink};
use netlink_packet_core::{NLM_F_CREATE, NLM_F_REPLACE};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use std::net::IpAddr;

/// One route as a dump reports it (main table only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteInfo {
    /// Destination and prefix length; `None` for a default route.
    pub dst: Option<(IpAddr, u8)>,
    /// Next hop.
    pub gateway: Option<IpAddr>,
    /// Outgoing link index.
    pub oif: Option<u32>,
}

fn to_ip(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v) => Some(IpAddr::V4(*v)),
        RouteAddress::Inet6(v) => Some(IpAddr::V6(*v)),
        _ => None,
    }
}

impl RtNetlink {
    /// Sets the default route via `gateway` out of link `oif` (replacing
    /// any default route of that family).
    pub fn set_default_route(&mut self, gateway: IpAddr, oif: u32) -> Result<(), NetError> {
        let mut m = RouteMessage::default();
        m.header.address_family = if gateway.is_ipv4() {
            AddressFamily::Inet
        } else {
            AddressFamily::Inet6
        };
        m.header.table = RouteHeader::RT_TABLE_MAIN;
        m.header.protocol = RouteProtocol::Static;
        m.header.scope = RouteScope::Universe;
        m.header.kind = RouteType::Unicast;
        m.attributes
            .push(RouteAttribute::Gateway(RouteAddress::from(gateway)));
        m.attributes.push(RouteAttribute::Oif(oif));
        self.request(
            RouteNetlinkMessage::NewRoute(m),
            NLM_F_CREATE | NLM_F_REPLACE,
            &|| format!("adding default route via {gateway} (link index {oif})"),
        )
    }

    /// Adds a route to `dst/prefix` via `gateway` out of link `oif`.
    pub fn add_route(
        &mut self,
        dst: IpAddr,
        prefix: u8,
        gateway: IpAddr,
        oif: u32,
    ) -> Result<(), NetError> {
        let mut m = RouteMessage::default();
        m.header.address_family = if dst.is_ipv4() {
            AddressFamily::Inet
        } else {
            AddressFamily::Inet6
        };
        m.header.destination_prefix_length = prefix;
        m.header.table = RouteHeader::RT_TABLE_MAIN;
        m.header.protocol = RouteProtocol::Static;
        m.header.scope = RouteScope::Universe;
        m.header.kind = RouteType::Unicast;
        m.attributes
            .push(RouteAttribute::Destination(RouteAddress::from(dst)));
        m.attributes
            .push(RouteAttribute::Gateway(RouteAddress::from(gateway)));
        m.attributes.push(RouteAttribute::Oif(oif));
        self.request(
            RouteNetlinkMessage::NewRoute(m),
            NLM_F_CREATE | NLM_F_REPLACE,
            &|| format!("adding route to {dst}/{prefix} via {gateway} (link index {oif})"),
        )
    }

    /// The routes of the main table for one family (`v6` false: IPv4).
    pub fn routes(&mut self, v6: bool) -> Result<Vec<RouteInfo>, NetError> {
        let mut q = RouteMessage::default();
        q.header.address_family = if v6 {
            AddressFamily::Inet6
        } else {
            AddressFamily::Inet
        };
        let msgs = self.dump(RouteNetlinkMessage::GetRoute(q), &|| {
            "listing routes".into()
        })?;
        let mut out = Vec::new();
        for m in msgs {
            let RouteNetlinkMessage::NewRoute(r) = m else {
                continue;
            };
            if r.header.table != RouteHeader::RT_TABLE_MAIN {
                continue;
            }
            let mut info = RouteInfo {
                dst: None,
                gateway: None,
                oif: None,
            };
            for a in &r.attributes {
                match a {
                    RouteAttribute::Destination(d) => {
                        info.dst = to_ip(d).map(|ip| (ip, r.header.destination_prefix_length))
                    }
                    RouteAttribute::Gateway(g) => info.gateway = to_ip(g),
                    RouteAttribute::Oif(o) => info.oif = Some(*o),
                    _ => {}
                }
            }
            out.push(info);
        }
        Ok(out)
    }
}
