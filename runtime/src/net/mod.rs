//! A guest's network context: which host network it joins and its addresses.

use serde::{Deserialize, Serialize};

/// How a guest is connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NetMode {
    /// A veth pair whose host end joins the network's bridge.
    #[default]
    Bridge,
    /// Loopback only.
    None,
    /// The host's own network stack (trusted tools only).
    Host,
}

/// The network part of `guest.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetConfig {
    /// Connection mode.
    #[serde(default)]
    pub mode: NetMode,
    /// Host network (bridge) name.
    #[serde(default = "default_network")]
    pub network: String,
    /// Addresses in CIDR form (`10.77.0.11/24`, `fd77::11/64`).
    #[serde(default)]
    pub addresses: Vec<String>,
    /// Port forwards `HOST:GUEST[/tcp|udp]`.
    #[serde(default)]
    pub publish: Vec<String>,
}

fn default_network() -> String {
    "vbuild0".into()
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            mode: NetMode::Bridge,
            network: default_network(),
            addresses: vec![],
            publish: vec![],
        }
    }
}

/// Setting up or tearing down a guest's network failed; names the link or address.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NetError(pub String);

/// Creates the guest's network context for init process `init_pid` (which
/// already runs in its own network namespace): veth pair, addresses, routes,
/// filters. (STUB: being written.)
pub fn attach(
    _layout: &crate::paths::Layout,
    _guest: &str,
    _cfg: &NetConfig,
    _init_pid: i32,
) -> Result<(), NetError> {
    Ok(())
}

/// Removes everything `attach` made on the host for `guest`; idempotent, so it
/// also cleans up after a crashed supervisor. (STUB: being written.)
pub fn detach(_layout: &crate::paths::Layout, _guest: &str) -> Result<(), NetError> {
    Ok(())
}
