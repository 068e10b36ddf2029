//! Address allocation: no two guests share an address. Every change runs
//! under the networks-directory flock and records a lease
//! (`networks/NAME.leases`, TOML: address -> guest), so two commands
//! allocating at once get different addresses even before either guest's
//! `guest.toml` exists. Addresses in other guests' configs count as taken
//! too, whether or not they hold a lease.
//!
//! A lease whose guest directory does not exist is reclaimed after six
//! hours: long enough for any build to write its guest, short enough that
//! a failed build does not hold an address for good.

use super::network::lock;
use super::{config_addresses, Cidr, NetError, Network};
use crate::paths::Layout;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

const STALE_SECS: u64 = 6 * 3600;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Lease {
    addr: IpAddr,
    guest: String,
    since: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Leases {
    #[serde(default)]
    lease: Vec<Lease>,
}

/// The `(address, guest)` pairs of a lease file's text.
pub(crate) fn parse_leases(text: &str) -> Result<Vec<(IpAddr, String)>, String> {
    let l: Leases = toml::from_str(text).map_err(|e| e.to_string())?;
    Ok(l.lease.into_iter().map(|l| (l.addr, l.guest)).collect())
}

/// Where network `name` keeps its leases.
pub(crate) fn leases_path(layout: &Layout, name: &str) -> PathBuf {
    layout.networks_dir().join(format!("{name}.leases"))
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn read(path: &Path) -> Result<Leases, NetError> {
    match std::fs::read_to_string(path) {
        Ok(t) => toml::from_str(&t).map_err(|e| NetError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Leases::default()),
        Err(source) => Err(NetError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn write(path: &Path, l: &Leases) -> Result<(), NetError> {
    let text = toml::to_string_pretty(l).expect("leases serialize");
    crate::fsutil::write_atomic(path, text.as_bytes()).map_err(|source| NetError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Addresses other guests hold on `net` (leases and configs), with owners.
fn taken(layout: &Layout, net: &Network, guest: &str, leases: &Leases) -> BTreeMap<IpAddr, String> {
    let mut t = BTreeMap::new();
    let cutoff = now().saturating_sub(STALE_SECS);
    for l in &leases.lease {
        let stale = !layout.guest_dir(&l.guest).exists() && l.since < cutoff;
        if l.guest != guest && !stale {
            t.insert(l.addr, format!("guest {}", l.guest));
        }
    }
    for c in crate::store::GuestStore::new(layout).on_network(&net.name) {
        if c.name != guest {
            for a in config_addresses(&c.net) {
                t.insert(a, format!("guest {}", c.name));
            }
        }
    }
    for gw in net.gateways() {
        t.insert(gw, "the gateway".into());
    }
    t
}

fn check_free(
    net: &Network,
    fixed: &[Cidr],
    taken: &BTreeMap<IpAddr, String>,
) -> Result<(), NetError> {
    for (i, c) in fixed.iter().enumerate() {
        if let Some(owner) = taken.get(&c.addr) {
            return Err(NetError::AddressInUse {
                addr: c.to_string(),
                network: net.name.clone(),
                owner: owner.clone(),
            });
        }
        if fixed[..i].iter().any(|o| o.addr == c.addr) {
            return Err(NetError::InvalidNetwork(format!(
                "address {c} is given twice"
            )));
        }
    }
    Ok(())
}

/// Replaces `guest`'s leases on `net` with `addrs` and drops stale ones.
fn record(
    layout: &Layout,
    net: &Network,
    guest: &str,
    mut leases: Leases,
    addrs: &[Cidr],
) -> Result<(), NetError> {
    let cutoff = now().saturating_sub(STALE_SECS);
    let since = now();
    leases
        .lease
        .retain(|l| l.guest != guest && (layout.guest_dir(&l.guest).exists() || l.since >= cutoff));
    for a in addrs {
        leases.lease.push(Lease {
            addr: a.addr,
            guest: guest.into(),
            since,
        });
    }
    leases.lease.sort_by_key(|l| l.addr);
    write(&leases_path(layout, &net.name), &leases)
}

/// Reserves the fixed addresses `addrs` for `guest` on `net` (replacing
/// what it held there). Refuses, changing nothing, when another guest or
/// the gateway has one of them.
pub fn reserve(
    layout: &Layout,
    net: &Network,
    guest: &str,
    addrs: &[Cidr],
) -> Result<(), NetError> {
    let _l = lock(layout)?;
    let leases = read(&leases_path(layout, &net.name))?;
    let t = taken(layout, net, guest, &leases);
    check_free(net, addrs, &t)?;
    record(layout, net, guest, leases, addrs)
}

/// Takes the next free address of each of `net`'s subnets for `guest`
/// (the one it already holds, if it holds one) and reserves them.
pub fn allocate(layout: &Layout, net: &Network, guest: &str) -> Result<Vec<Cidr>, NetError> {
    allocate_with(layout, net, guest, &[])
}

/// Like [`allocate`], next to fixed addresses `fixed` that are reserved in
/// the same step; a family that has a fixed address gets no automatic one.
/// IPv6 takes the same host number as IPv4 when it is free
/// (10.77.0.11 -> fd77::b), so both addresses of a guest are easy to match.
pub(crate) fn allocate_with(
    layout: &Layout,
    net: &Network,
    guest: &str,
    fixed: &[Cidr],
) -> Result<Vec<Cidr>, NetError> {
    let _l = lock(layout)?;
    let path = leases_path(layout, &net.name);
    let leases = read(&path)?;
    let t = taken(layout, net, guest, &leases);
    check_free(net, fixed, &t)?;
    let mine: Vec<IpAddr> = leases
        .lease
        .iter()
        .filter(|l| l.guest == guest)
        .map(|l| l.addr)
        .collect();
    let mut got: Vec<Cidr> = Vec::new();
    let mut hint: Option<u128> = None;
    for sub in [net.subnet4, net.subnet6].into_iter().flatten() {
        if fixed.iter().any(|c| c.is_v4() == sub.is_v4()) {
            continue;
        }
        let free = |i: u128| {
            sub.host(i)
                .filter(|a| !t.contains_key(a) && !fixed.iter().any(|c| c.addr == *a))
        };
        let kept = mine
            .iter()
            .find(|a| sub.contains(**a) && !t.contains_key(a))
            .and_then(|a| sub.index_of(*a))
            .filter(|i| *i >= 1 && *i <= sub.last_host_index());
        let pick = kept
            .or_else(|| hint.filter(|i| free(*i).is_some()))
            .or_else(|| (1..=sub.last_host_index()).find(|i| free(*i).is_some()));
        let Some(i) = pick else {
            return Err(NetError::Exhausted {
                network: net.name.clone(),
                subnet: sub.to_string(),
            });
        };
        hint = Some(i);
        let addr = sub.host(i).expect("index inside the subnet");
        got.push(Cidr {
            addr,
            prefix: sub.prefix,
        });
    }
    let mut all = got.clone();
    all.extend_from_slice(fixed);
    record(layout, net, guest, leases, &all)?;
    Ok(got)
}

/// Gives back every address `guest` holds on network `network` (when the
/// guest is deleted or moves to another network).
pub fn release(layout: &Layout, network: &str, guest: &str) -> Result<(), NetError> {
    let _l = lock(layout)?;
    let path = leases_path(layout, network);
    let mut leases = read(&path)?;
    let before = leases.lease.len();
    leases.lease.retain(|l| l.guest != guest);
    if leases.lease.len() != before {
        write(&path, &leases)?;
    }
    Ok(())
}
