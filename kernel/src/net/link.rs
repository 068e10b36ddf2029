//! Links: veth pairs, bridges, bridge ports, names, MTU, up/down, moving a
//! link into another network namespace, deleting. Every call takes or
//! returns kernel link indexes; names are looked up once.

use super::{NetError, RtNetlink};
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::link::{
    AfSpecInet6, AfSpecUnspec, InfoBridgePort, InfoData, InfoKind, InfoPortData, InfoPortKind,
    InfoVeth, LinkAttribute, LinkFlags, LinkInfo as NlLinkInfo, LinkMessage,
};
use netlink_packet_route::RouteNetlinkMessage;

/// The kernel's limit on interface names (IFNAMSIZ - 1).
pub const MAX_LINK_NAME: usize = 15;

/// What a dump tells about one link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    /// Kernel index.
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// `veth`, `bridge`, ... (`None` for loopback and physical devices).
    pub kind: Option<String>,
    /// Index of the bridge this link is a port of.
    pub master: Option<u32>,
    /// MTU in bytes.
    pub mtu: u32,
    /// Hardware address.
    pub mac: Vec<u8>,
    /// Administratively up.
    pub up: bool,
    /// The link's group (IFLA_GROUP, 0 unless set): filters can match it.
    pub group: u32,
}

fn check_name(name: &str) -> Result<(), NetError> {
    if name.is_empty() || name.len() > MAX_LINK_NAME || name.contains(['/', ' ', '\0']) {
        return Err(NetError::Invalid(format!(
            "link name {name:?} is not usable (1-{MAX_LINK_NAME} characters, no '/' or spaces)"
        )));
    }
    Ok(())
}

fn parse(m: &LinkMessage) -> LinkInfo {
    let mut l = LinkInfo {
        index: m.header.index,
        name: String::new(),
        kind: None,
        master: None,
        mtu: 0,
        mac: vec![],
        up: m.header.flags.contains(LinkFlags::Up),
        group: 0,
    };
    for a in &m.attributes {
        match a {
            LinkAttribute::IfName(n) => l.name = n.clone(),
            LinkAttribute::Mtu(v) => l.mtu = *v,
            LinkAttribute::Controller(v) => l.master = Some(*v),
            LinkAttribute::Address(v) => l.mac = v.clone(),
            LinkAttribute::Group(v) => l.group = *v,
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    if let NlLinkInfo::Kind(k) = i {
                        l.kind = Some(k.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    l
}

impl RtNetlink {
    /// Every link of this namespace.
    pub fn links(&mut self) -> Result<Vec<LinkInfo>, NetError> {
        let msgs = self.dump(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            &|| "listing links".into(),
        )?;
        Ok(msgs
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(parse(l)),
                _ => None,
            })
            .collect())
    }

    /// The link called `name`, or `None` when there is none.
    pub fn link(&mut self, name: &str) -> Result<Option<LinkInfo>, NetError> {
        check_name(name)?;
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.into()));
        match self.get(RouteNetlinkMessage::GetLink(m), &|| {
            format!("looking up link {name}")
        }) {
            Ok(msgs) => Ok(msgs.iter().find_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(parse(l)),
                _ => None,
            })),
            Err(e) if e.errno() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The index of link `name`; an error naming it when it does not exist.
    pub fn link_index(&mut self, name: &str) -> Result<u32, NetError> {
        self.link(name)?
            .map(|l| l.index)
            .ok_or_else(|| NetError::NoSuchLink(name.into()))
    }

    /// Creates a veth pair `host` <-> `peer` with `mtu`. With `peer_netns_pid`
    /// the peer is created directly inside that process's network namespace
    /// (one request instead of create + move + rename).
    pub fn create_veth(
        &mut self,
        host: &str,
        peer: &str,
        mtu: u32,
        peer_netns_pid: Option<i32>,
    ) -> Result<(), NetError> {
        check_name(host)?;
        check_name(peer)?;
        let mut p = LinkMessage::default();
        p.attributes.push(LinkAttribute::IfName(peer.into()));
        p.attributes.push(LinkAttribute::Mtu(mtu));
        if let Some(pid) = peer_netns_pid {
            p.attributes.push(LinkAttribute::NetNsPid(pid as u32));
        }
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(host.into()));
        m.attributes.push(LinkAttribute::Mtu(mtu));
        m.attributes.push(LinkAttribute::LinkInfo(vec![
            NlLinkInfo::Kind(InfoKind::Veth),
            NlLinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p))),
        ]));
        self.request(
            RouteNetlinkMessage::NewLink(m),
            NLM_F_CREATE | NLM_F_EXCL,
            &|| format!("creating veth pair {host} <-> {peer}"),
        )
    }

    /// Creates bridge `name` with `mtu`.
    pub fn create_bridge(&mut self, name: &str, mtu: u32) -> Result<(), NetError> {
        check_name(name)?;
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.into()));
        m.attributes.push(LinkAttribute::Mtu(mtu));
        m.attributes
            .push(LinkAttribute::LinkInfo(vec![NlLinkInfo::Kind(
                InfoKind::Bridge,
            )]));
        self.request(
            RouteNetlinkMessage::NewLink(m),
            NLM_F_CREATE | NLM_F_EXCL,
            &|| format!("creating bridge {name}"),
        )
    }

    fn set_link(
        &mut self,
        index: u32,
        what: &str,
        fill: impl FnOnce(&mut LinkMessage),
    ) -> Result<(), NetError> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        fill(&mut m);
        self.request(RouteNetlinkMessage::SetLink(m), 0, &|| {
            format!("{what} (link index {index})")
        })
    }

    /// Makes link `index` a port of bridge `bridge` (`0` releases it).
    pub fn set_master(&mut self, index: u32, bridge: u32) -> Result<(), NetError> {
        self.set_link(index, "setting bridge", |m| {
            m.attributes.push(LinkAttribute::Controller(bridge))
        })
    }

    /// Brings link `index` up or down.
    pub fn set_up(&mut self, index: u32, up: bool) -> Result<(), NetError> {
        self.set_link(index, if up { "setting up" } else { "setting down" }, |m| {
            m.header.change_mask = LinkFlags::Up;
            if up {
                m.header.flags = LinkFlags::Up;
            }
        })
    }

    /// Renames link `index` (it must be down).
    pub fn rename(&mut self, index: u32, name: &str) -> Result<(), NetError> {
        check_name(name)?;
        self.set_link(index, &format!("renaming to {name}"), |m| {
            m.attributes.push(LinkAttribute::IfName(name.into()))
        })
    }

    /// Sets the MTU of link `index`.
    pub fn set_mtu(&mut self, index: u32, mtu: u32) -> Result<(), NetError> {
        self.set_link(index, &format!("setting MTU {mtu}"), |m| {
            m.attributes.push(LinkAttribute::Mtu(mtu))
        })
    }

    /// Sets the hardware address of link `index`. A bridge given a fixed
    /// address keeps it, instead of taking the lowest of its ports' (which
    /// changes as guests come and go and leaves stale neighbour caches).
    pub fn set_mac(&mut self, index: u32, mac: [u8; 6]) -> Result<(), NetError> {
        self.set_link(index, "setting the hardware address", |m| {
            m.attributes.push(LinkAttribute::Address(mac.to_vec()))
        })
    }

    /// Puts link `index` in group `group`, so that nf_tables rules can
    /// match every link of one kind (`iifgroup`/`oifgroup`) without naming
    /// each one.
    pub fn set_group(&mut self, index: u32, group: u32) -> Result<(), NetError> {
        self.set_link(index, &format!("setting group {group}"), |m| {
            m.attributes.push(LinkAttribute::Group(group))
        })
    }

    /// Makes link `index` derive its IPv6 link-local address from its
    /// hardware address (EUI-64, RFC 4291), whatever the namespace's
    /// default, so the host knows that address in advance. Set while the
    /// link is down.
    pub fn set_addr_gen_eui64(&mut self, index: u32) -> Result<(), NetError> {
        self.set_link(index, "setting IPv6 address generation to EUI-64", |m| {
            m.attributes
                .push(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(
                    vec![AfSpecInet6::AddrGenMode(0)],
                )]))
        })
    }

    /// Moves link `index` into the network namespace of process `pid`.
    pub fn move_to_netns_of(&mut self, index: u32, pid: i32) -> Result<(), NetError> {
        self.set_link(index, &format!("moving into netns of pid {pid}"), |m| {
            m.attributes.push(LinkAttribute::NetNsPid(pid as u32))
        })
    }

    /// Marks bridge port `index` isolated: isolated ports exchange no frames
    /// with each other, only with non-isolated ports and the bridge itself
    /// (the gateway). This is how `--isolated` networks keep guests apart.
    pub fn set_port_isolated(&mut self, index: u32, isolated: bool) -> Result<(), NetError> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.attributes.push(LinkAttribute::LinkInfo(vec![
            NlLinkInfo::PortKind(InfoPortKind::Bridge),
            NlLinkInfo::PortData(InfoPortData::BridgePort(vec![InfoBridgePort::Isolated(
                isolated,
            )])),
        ]));
        self.request(RouteNetlinkMessage::NewLink(m), 0, &|| {
            format!("setting bridge port isolation (link index {index})")
        })
    }

    /// Deletes link `index`; deleting one end of a veth pair deletes both.
    pub fn delete_link(&mut self, index: u32) -> Result<(), NetError> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        self.request(RouteNetlinkMessage::DelLink(m), 0, &|| {
            format!("deleting link index {index}")
        })
    }

    /// Deletes link `name` if it exists; returns whether it did.
    pub fn delete_link_named(&mut self, name: &str) -> Result<bool, NetError> {
        match self.link(name)? {
            None => Ok(false),
            Some(l) => match self.delete_link(l.index) {
                Ok(()) => Ok(true),
                // Gone in between (its peer's namespace died): same outcome.
                Err(e) if e.errno() == Some(libc::ENODEV) => Ok(false),
                Err(e) => Err(e),
            },
        }
    }
}
