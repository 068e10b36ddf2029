//! `vbuild net create/list/delete`, `vbuild set NAME --ip ...`, and the
//! network flags of `vbuild debian` ([`NetFlags`]). The checks and the
//! address allocation live in `vbuild_runtime::net`; this file only turns
//! arguments into calls and prints results.

use super::Ctx;
use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use vbuild_builder::tailor::NetVars;
use vbuild_runtime::config::GuestConfig;
use vbuild_runtime::net::{Cidr, NetConfig, NetMode, Network, DEFAULT_NETWORK};
use vbuild_runtime::paths::Layout;
use vbuild_runtime::set_net::{set_network, NetChange, NetworkFiles, ReservedNet};
use vbuild_runtime::store::GuestStore;

/// `--net-mode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// A veth pair on the network's bridge (default).
    Bridge,
    /// Loopback only.
    None,
    /// The host's own network stack: trusted tools only.
    Host,
}

impl From<ModeArg> for NetMode {
    fn from(m: ModeArg) -> NetMode {
        match m {
            ModeArg::Bridge => NetMode::Bridge,
            ModeArg::None => NetMode::None,
            ModeArg::Host => NetMode::Host,
        }
    }
}

/// A guest's network flags, shared by `vbuild debian` (flattened there)
/// and `vbuild set`.
#[derive(Args, Debug, Clone, Default)]
pub struct NetFlags {
    /// Host network to join (default vbuild0, which exists without setup).
    #[arg(long = "net", value_name = "NAME")]
    pub net: Option<String>,
    /// Address with prefix (10.77.0.11/24, fd77::11/64), or `auto` for the
    /// next free one; repeatable. Default: auto.
    #[arg(long = "ip", value_name = "CIDR|auto")]
    pub ip: Vec<String>,
    /// bridge (default), none (loopback only), host (share the host's stack).
    #[arg(long = "net-mode", value_enum, value_name = "MODE")]
    pub net_mode: Option<ModeArg>,
    /// Forward a host port to the guest, HOST:GUEST[/tcp|/udp]; repeatable.
    #[arg(long = "publish", value_name = "HOST:GUEST")]
    pub publish: Vec<String>,
}

fn warn_host_mode(guest: &str, mode: NetMode) {
    if mode == NetMode::Host {
        eprintln!(
            "vbuild: warning: guest {guest} shares the host's network stack (--net-mode host): \
             it can use every host address and port; use this for trusted tools only"
        );
    }
}

impl NetFlags {
    /// The network config of a new guest `guest`: checks the network and
    /// addresses and reserves them (`auto`, or no `--ip`, takes the next
    /// free address). The reservation is released again unless the caller
    /// keeps it; on error nothing is reserved.
    pub fn to_config<'a>(
        &self,
        layout: &'a Layout,
        guest: &str,
    ) -> anyhow::Result<ReservedNet<'a>> {
        let mode = self.net_mode.map(NetMode::from).unwrap_or_default();
        let network = self.net.as_deref().unwrap_or(DEFAULT_NETWORK);
        let r = ReservedNet::reserve(layout, guest, mode, network, &self.ip, &self.publish)?;
        warn_host_mode(guest, mode);
        Ok(r)
    }
}

/// Arguments of `vbuild set`.
#[derive(Args, Debug)]
pub struct SetArgs {
    /// Guest name.
    pub name: String,
    #[command(flatten)]
    pub net: NetFlags,
    /// Remove every published port.
    #[arg(long, conflicts_with = "publish")]
    pub no_publish: bool,
    /// Restart policy: no, on-failure, always (applies from the next time
    /// init ends, also on a running guest).
    #[arg(long, value_name = "POLICY", value_parser = super::parse_restart)]
    pub restart: Option<vbuild_runtime::restart::RestartPolicy>,
}

/// `vbuild net` subcommands.
#[derive(Subcommand, Debug)]
pub enum NetCommand {
    /// Create a network: a host bridge holding the gateway address, with
    /// optional outbound NAT and guest isolation.
    Create(CreateArgs),
    /// List networks with their subnets and the guests on them.
    List,
    /// Show one network's settings: subnets, gateways, NAT, isolation,
    /// host access, resolvers, MTU and guests.
    Show {
        /// Network name.
        name: String,
    },
    /// Delete a network (refused while running guests use it).
    Delete {
        /// Network name.
        name: String,
    },
}

/// Arguments of `vbuild net create`.
#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Network name, also the bridge's (1-15 characters: a-z, 0-9, '-').
    pub name: String,
    /// Subnet, e.g. 10.77.1.0/24; repeat once for IPv6 (fd77:1::/64).
    #[arg(long, required = true, value_name = "CIDR")]
    pub subnet: Vec<String>,
    /// Gateway address (default: the first host of each subnet).
    #[arg(long, value_name = "IP")]
    pub gateway: Vec<String>,
    /// Masquerade guests' outbound traffic (turns on IPv4 forwarding).
    #[arg(long)]
    pub nat: bool,
    /// Guests on this network reach only the gateway, never each other.
    #[arg(long)]
    pub isolated: bool,
    /// Let guests reach every service of the host (by default they reach
    /// only the network's --dns resolvers and ping the gateway).
    #[arg(long)]
    pub host_access: bool,
    /// Resolver for guests' /etc/resolv.conf; repeatable.
    #[arg(long, value_name = "IP")]
    pub dns: Vec<String>,
    /// MTU of the bridge and guests' links (default 1500).
    #[arg(long)]
    pub mtu: Option<u32>,
    /// No name responder: guests do not find each other as NAME or
    /// NAME.vbuild, and the gateway's UDP port 53 stays closed to them.
    #[arg(long)]
    pub no_dns: bool,
}

fn parse_ips(what: &str, v: &[String]) -> anyhow::Result<Vec<IpAddr>> {
    v.iter()
        .map(|s| {
            s.parse::<IpAddr>().map_err(|_| {
                anyhow::anyhow!("{what} {s:?} is not an IP address (e.g. 10.77.1.1 or fd77:1::1)")
            })
        })
        .collect()
}

/// The guest's network files as the builder's tailoring profile for its
/// distribution writes them (systemd-networkd, ifupdown, resolv.conf).
struct TailoredNetworkFiles;

impl NetworkFiles for TailoredNetworkFiles {
    fn paths(&self, guest: &GuestConfig) -> Result<Vec<PathBuf>, String> {
        let spec =
            vbuild_builder::tailor::load_profile(&guest.distro).map_err(|e| e.to_string())?;
        Ok(vbuild_builder::tailor::network_paths(&spec))
    }

    fn write(
        &self,
        layout: &Layout,
        rootfs: &Path,
        guest: &GuestConfig,
        net: &NetConfig,
    ) -> Result<(), String> {
        let vars = net_vars(layout, net).map_err(|e| format!("{e:#}"))?;
        let spec =
            vbuild_builder::tailor::load_profile(&guest.distro).map_err(|e| e.to_string())?;
        vbuild_builder::tailor::write_network(rootfs, &spec, &vars).map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// `vbuild set`: changes a guest's network settings in guest.toml and in
/// the guest's own network files, all or nothing (see
/// `vbuild_runtime::set_net`); they take effect at its next start.
pub fn set(c: &Ctx, a: SetArgs) -> anyhow::Result<i32> {
    let name = vbuild_runtime::name::GuestName::parse(&a.name)?;
    let net_given = a.net.net.is_some()
        || !a.net.ip.is_empty()
        || a.net.net_mode.is_some()
        || !a.net.publish.is_empty()
        || a.no_publish;
    if let Some(policy) = a.restart {
        if !net_given {
            // The restart policy alone: guest.toml only, no network files.
            vbuild_runtime::autostart::set_restart(&c.layout, &name, policy)?;
            if c.json {
                println!(
                    "{}",
                    serde_json::json!({"name": name.as_str(), "restart": policy.as_str()})
                );
            } else if !c.quiet {
                println!(
                    "{}: restart policy {policy} (applies from the next time its init ends)",
                    a.name
                );
            }
            return Ok(0);
        }
    }
    let change = NetChange {
        mode: a.net.net_mode.map(NetMode::from),
        network: a.net.net.clone(),
        ips: a.net.ip.clone(),
        publish: a.net.publish.clone(),
        no_publish: a.no_publish,
    };
    let cfg = set_network(&c.layout, &name, &change, &TailoredNetworkFiles)?;
    warn_host_mode(&a.name, cfg.mode);
    if let Some(policy) = a.restart {
        vbuild_runtime::autostart::set_restart(&c.layout, &name, policy)?;
    }
    if c.json {
        let mut j = serde_json::to_value(&cfg)?;
        if let Some(policy) = a.restart {
            j["restart"] = policy.as_str().into();
        }
        println!("{j}");
    } else if !c.quiet {
        let what = match cfg.mode {
            NetMode::Bridge => format!(
                "network {}, addresses {}{}",
                cfg.network,
                cfg.addresses.join(" "),
                if cfg.publish.is_empty() {
                    String::new()
                } else {
                    format!(", published {}", cfg.publish.join(" "))
                }
            ),
            NetMode::None => "loopback only".into(),
            NetMode::Host => "the host's network".into(),
        };
        println!("{}: {what} (takes effect at next start)", a.name);
        if let Some(policy) = a.restart {
            println!("{}: restart policy {policy}", a.name);
        }
    }
    Ok(0)
}

/// The values the guest's own network files are written from: its
/// addresses, the network's gateways for the families it has addresses in,
/// and its name servers: the network's own name responder at the gateway
/// first (with `search vbuild`), then the network's resolvers. Loopback-only and host-mode guests get no
/// interface configuration.
pub fn net_vars(layout: &Layout, cfg: &NetConfig) -> anyhow::Result<NetVars> {
    if cfg.mode != NetMode::Bridge {
        return Ok(NetVars::default());
    }
    let n = Network::load(layout, &cfg.network)?;
    let has = |v4: bool| {
        cfg.addresses
            .iter()
            .filter_map(|s| s.parse::<Cidr>().ok())
            .any(|c| c.is_v4() == v4)
    };
    Ok(NetVars {
        addresses: cfg.addresses.clone(),
        gateway4: n.gateway4.filter(|_| has(true)).map(|g| g.to_string()),
        gateway6: n.gateway6.filter(|_| has(false)).map(|g| g.to_string()),
        dns: n
            .guest_resolvers(has(true), has(false))
            .iter()
            .map(|d| d.to_string())
            .collect(),
        search: vbuild_runtime::net::dns::guest_nameserver(&n, has(true), has(false))
            .map(|_| vec![vbuild_runtime::net::dns::ZONE_NAME.to_string()])
            .unwrap_or_default(),
        dhcp: false,
    })
}

/// `vbuild net`.
pub fn net(c: &Ctx, n: NetCommand) -> anyhow::Result<i32> {
    let layout = &c.layout;
    match n {
        NetCommand::Create(a) => {
            let subnets = a
                .subnet
                .iter()
                .map(|s| s.parse::<Cidr>())
                .collect::<Result<Vec<_>, _>>()?;
            let gateways = parse_ips("gateway", &a.gateway)?;
            let dns = parse_ips("--dns", &a.dns)?;
            let mut net =
                Network::define(&a.name, &subnets, &gateways, a.nat, a.isolated, dns, a.mtu)?;
            net.host_access = a.host_access;
            net.no_dns = a.no_dns;
            net.create(layout)
                .with_context(|| format!("creating network {}", a.name))?;
            if c.json {
                println!("{}", serde_json::to_string(&net)?);
            } else if !c.quiet {
                println!(
                    "{}: bridge {} with {}{}{}{}{}",
                    net.name,
                    net.bridge,
                    net.gateways()
                        .iter()
                        .map(|g| g.to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    if net.nat { ", NAT" } else { "" },
                    if net.isolated { ", isolated" } else { "" },
                    if net.host_access { ", host access" } else { "" },
                    if net.no_dns { ", no DNS" } else { "" }
                );
            }
        }
        NetCommand::List => list(c)?,
        NetCommand::Show { name } => show(c, &name)?,
        NetCommand::Delete { name } => {
            Network::delete(layout, &name)?;
            if c.json {
                super::output::json(&serde_json::json!({"name": name, "deleted": true}))?;
            } else if !c.quiet {
                println!("{name}: deleted");
            }
        }
    }
    Ok(0)
}

/// The guests whose config puts them on network `name`, sorted.
fn guests_on(layout: &Layout, name: &str) -> Vec<String> {
    let mut v: Vec<String> = GuestStore::new(layout)
        .on_network(name)
        .into_iter()
        .map(|g| g.name)
        .collect();
    v.sort();
    v
}

fn show(c: &Ctx, name: &str) -> anyhow::Result<()> {
    let n = Network::load(&c.layout, name)?;
    let guests = guests_on(&c.layout, name);
    if c.json {
        let mut j = serde_json::to_value(&n)?;
        j["guests"] = serde_json::json!(guests);
        println!("{}", serde_json::to_string(&j)?);
        return Ok(());
    }
    let yes = |b: bool| if b { "yes" } else { "no" };
    let list = |v: Vec<String>| {
        if v.is_empty() {
            "-".into()
        } else {
            v.join(", ")
        }
    };
    println!("name:        {}", n.name);
    println!("bridge:      {}", n.bridge);
    println!("subnets:     {}", n.subnets_text());
    println!(
        "gateways:    {}",
        list(n.gateways().iter().map(|g| g.to_string()).collect())
    );
    println!("nat:         {}", yes(n.nat));
    println!("isolated:    {}", yes(n.isolated));
    println!(
        "host access: {}",
        if n.host_access {
            "yes (guests reach every host service)"
        } else {
            "no (guests reach only the resolvers below and ping the gateway)"
        }
    );
    println!(
        "dns:         {}",
        list(n.dns.iter().map(|d| d.to_string()).collect())
    );
    println!(
        "names:       {}",
        if n.no_dns {
            "off (--no-dns)".to_string()
        } else {
            let at: Vec<String> = n.gateways().iter().map(|g| g.to_string()).collect();
            let state = match vbuild_runtime::net::dns::running(&c.layout, &n.name)? {
                Some(pid) => format!("running, pid {pid}"),
                None => "starts with the first guest".into(),
            };
            format!("NAME and NAME.vbuild at {} ({state})", at.join(", "))
        }
    );
    println!("mtu:         {}", n.mtu);
    println!("guests:      {}", list(guests));
    Ok(())
}

fn list(c: &Ctx) -> anyhow::Result<()> {
    let nets = Network::list(&c.layout)?;
    let guests = |name: &str| guests_on(&c.layout, name);
    if c.json {
        let v: Vec<serde_json::Value> = nets
            .iter()
            .map(|n| {
                let mut j = serde_json::to_value(n).expect("network serializes");
                j["guests"] = serde_json::json!(guests(&n.name));
                j
            })
            .collect();
        println!("{}", serde_json::to_string(&v)?);
        return Ok(());
    }
    println!(
        "{:<16} {:<34} {:<5} {:<9} {:<5} GUESTS",
        "NAME", "SUBNETS", "NAT", "ISOLATED", "HOST"
    );
    let yes = |b: bool| if b { "yes" } else { "no" };
    for n in &nets {
        println!(
            "{:<16} {:<34} {:<5} {:<9} {:<5} {}",
            n.name,
            n.subnets_text(),
            yes(n.nat),
            yes(n.isolated),
            yes(n.host_access),
            guests(&n.name).join(",")
        );
    }
    Ok(())
}
