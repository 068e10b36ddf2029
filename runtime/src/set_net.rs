//! `vbuild set NAME --ip/--net/--net-mode/--publish`: changes a guest's
//! network settings as one transaction — the address leases, the guest's
//! own network files and `guest.toml` — taking effect at its next start.
//! A failure at any step puts back what the earlier ones changed (leases
//! and files byte for byte), so "nothing was changed" is true when said.

use crate::config::{GuestConfig, NetConfig, NetMode};
use crate::error::RuntimeError;
use crate::filesnap::FileSnapshot;
use crate::name::GuestName;
use crate::net::{self, Cidr, Network};
use crate::paths::Layout;
use crate::store::GuestStore;
use crate::txn::Txn;
use std::path::PathBuf;
use vbuild_kernel::fsroot::Root;

/// What `vbuild set` asks to change; `None`/empty keeps the current value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetChange {
    /// A new connection mode.
    pub mode: Option<NetMode>,
    /// A new network.
    pub network: Option<String>,
    /// New addresses (`auto` allowed); empty keeps them unless the guest
    /// moves to another network or mode.
    pub ips: Vec<String>,
    /// New published ports; empty keeps them.
    pub publish: Vec<String>,
    /// Remove every published port.
    pub no_publish: bool,
}

/// The guest's own network configuration files. The runtime does not know
/// a distribution's files; the builder's tailoring does, and implements
/// this for `set`.
pub trait NetworkFiles {
    /// The guest paths (in its rootfs) that `write` may create or replace,
    /// so they can be put back.
    fn paths(&self, guest: &GuestConfig) -> Result<Vec<PathBuf>, String>;
    /// Writes them for the settings `net` into `rootfs`.
    fn write(
        &self,
        layout: &Layout,
        rootfs: &std::path::Path,
        guest: &GuestConfig,
        net: &NetConfig,
    ) -> Result<(), String>;
}

/// Applies `change` to guest `name`; returns the new network settings.
/// Bad input (an unknown network, an address in use) is refused before
/// The addresses a `set --ip` on the same network asks for: the given
/// ones, plus the guest's current address of every family none was given
/// for (`--ip 10.77.0.20/24` keeps the IPv6 address). `auto` allocates
/// only for families left without one, so a guest that has an address
/// keeps it.
fn keep_other_families(given: &[String], old: &[String]) -> Vec<String> {
    let family = |s: &str| s.parse::<net::Cidr>().ok().map(|c| c.is_v4());
    let mut out: Vec<String> = given.iter().filter(|s| *s != "auto").cloned().collect();
    for o in old {
        if let Some(v4) = family(o) {
            if !out.iter().any(|s| family(s) == Some(v4)) {
                out.push(o.clone());
            }
        }
    }
    // IPv4 first, as every other path writes them.
    out.sort_by_key(|s| family(s) != Some(true));
    if given.iter().any(|s| s == "auto") {
        out.push("auto".into());
    }
    out
}

/// anything changes.
pub fn set_network(
    layout: &Layout,
    name: &GuestName,
    change: &NetChange,
    files: &dyn NetworkFiles,
) -> Result<NetConfig, RuntimeError> {
    let n = name.as_str();
    let mut g = GuestStore::new(layout).load(n)?;
    let old = g.net.clone();
    let mode = change.mode.unwrap_or(old.mode);
    let network = change
        .network
        .clone()
        .unwrap_or_else(|| old.network.clone());
    let moved = network != old.network || mode != old.mode;
    let ips: Vec<String> = if !change.ips.is_empty() && !moved && mode == NetMode::Bridge {
        keep_other_families(&change.ips, &old.addresses)
    } else if !change.ips.is_empty() {
        change.ips.clone()
    } else if moved || mode != NetMode::Bridge {
        vec![]
    } else {
        old.addresses.clone()
    };
    let publish: Vec<String> = if change.no_publish || mode != NetMode::Bridge {
        vec![]
    } else if !change.publish.is_empty() {
        change.publish.clone()
    } else {
        old.publish.clone()
    };

    // The guest's own files as they are, before anything changes.
    let rootfs = layout.guest_rootfs(n);
    let unchanged = |step: &str, cause: String| RuntimeError::Unchanged {
        name: n.to_string(),
        step: step.to_string(),
        cause,
    };
    let root = Root::open(&rootfs)
        .map_err(|e| unchanged("opening the guest's root filesystem", e.to_string()))?;
    let snap = files
        .paths(&g)
        .and_then(|p| FileSnapshot::take(&root, &p))
        .map_err(|e| unchanged("reading the guest's network files", e))?;

    // 1. The new addresses' leases (resolve changes nothing on error).
    let cfg = net::resolve(layout, n, mode, &network, &ips, &publish)?;
    let mut txn = Txn::new(n);
    {
        let (old, new) = (old.clone(), cfg.clone());
        txn.on_undo("give the old addresses their leases back", move || {
            restore_leases(layout, n, &old, &new)
        });
    }

    // 2. The guest's own files.
    {
        let root = &root;
        txn.on_undo("restore the guest's network files", move || {
            snap.restore(root)
        });
    }
    txn.step("writing the guest's network files", || {
        files.write(layout, &rootfs, &g, &cfg)
    })?;

    // 3. The old network's leases, when the guest leaves it.
    if old.mode == NetMode::Bridge && (old.network != cfg.network || cfg.mode != NetMode::Bridge) {
        txn.step("releasing the old network's addresses", || {
            net::release(layout, &old.network, n)
        })?;
    }

    // 4. guest.toml.
    g.net = cfg.clone();
    let path = layout.guest_config(n);
    txn.step("saving guest.toml", || g.save(&path))?;
    txn.commit();
    Ok(cfg)
}

/// Puts a guest's leases back as they were before `set` reserved `new`.
fn restore_leases(
    layout: &Layout,
    n: &str,
    old: &NetConfig,
    new: &NetConfig,
) -> Result<(), String> {
    if new.mode == NetMode::Bridge && (new.network != old.network || old.mode != NetMode::Bridge) {
        net::release(layout, &new.network, n).map_err(|e| e.to_string())?;
    }
    if old.mode == NetMode::Bridge {
        let net = Network::load(layout, &old.network).map_err(|e| e.to_string())?;
        let back: Vec<Cidr> = old
            .addresses
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect();
        net::reserve(layout, &net, n, &back).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The network settings of a guest being built: checked and its addresses
/// reserved up front; the leases are released again when this is dropped
/// without [`ReservedNet::keep`] (the build failed or was interrupted).
#[derive(Debug)]
pub struct ReservedNet<'a> {
    layout: &'a Layout,
    guest: String,
    cfg: NetConfig,
    kept: bool,
}

impl<'a> ReservedNet<'a> {
    /// Resolves and reserves the settings of new guest `guest` (see
    /// [`net::resolve`]); on error nothing is reserved.
    pub fn reserve(
        layout: &'a Layout,
        guest: &str,
        mode: NetMode,
        network: &str,
        ips: &[String],
        publish: &[String],
    ) -> Result<ReservedNet<'a>, net::NetError> {
        let cfg = net::resolve(layout, guest, mode, network, ips, publish)?;
        Ok(ReservedNet {
            layout,
            guest: guest.to_string(),
            cfg,
            kept: false,
        })
    }

    /// The settings, for the guest's config and files.
    pub fn config(&self) -> &NetConfig {
        &self.cfg
    }

    /// The guest exists now: its leases stay.
    pub fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for ReservedNet<'_> {
    fn drop(&mut self) {
        if !self.kept && self.cfg.mode == NetMode::Bridge {
            let _ = net::release(self.layout, &self.cfg.network, &self.guest);
        }
    }
}
