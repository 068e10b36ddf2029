//! `guest.toml`: everything needed to start a guest again, written by the
//! builder when the guest is created and by `vbuild set`/`vbuild limit` later.

use crate::limits::Limits;
use crate::restart::RestartPolicy;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Which init the guest boots; decides the shutdown signal and readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum InitKind {
    /// systemd: SIGRTMIN+3 halts, READY=1 on NOTIFY_SOCKET says it booted.
    #[default]
    Systemd,
    /// sysvinit: SIGPWR (then SIGINT) halts, as LXC does.
    Sysvinit,
    /// Anything else (busybox, a shell script): SIGTERM.
    Other,
}

/// How the guest boots.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InitConfig {
    /// Absolute path of init inside the rootfs.
    pub path: String,
    /// Arguments after argv[0].
    #[serde(default)]
    pub args: Vec<String>,
    /// The kind of init, detected at build time from the rootfs.
    #[serde(default)]
    pub kind: InitKind,
}

impl Default for InitConfig {
    fn default() -> Self {
        InitConfig {
            path: "/sbin/init".into(),
            args: vec![],
            kind: InitKind::Systemd,
        }
    }
}

/// One guest's configuration, as stored in `guests/NAME/guest.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuestConfig {
    /// The guest's name (also its hostname).
    pub name: String,
    /// Distribution family (`debian`, `fedora`), for `vbuild list`.
    pub distro: String,
    /// Release (`bookworm`).
    pub release: String,
    /// Package-set variant (`minbase`).
    #[serde(default)]
    pub variant: String,
    /// Seconds since the epoch when it was built.
    #[serde(default)]
    pub created: u64,
    /// Runs without a user namespace: the guest's root is the host's root.
    /// Opt-in (`vbuild debian ... --privileged`) for trusted workloads
    /// only; not a security boundary.
    #[serde(default)]
    pub privileged: bool,
    /// Started at host boot (`vbuild autostart NAME on`, then `vbuild
    /// start --autostart` from the unit `vbuild autostart install` writes).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub autostart: bool,
    /// Whether the guest is started again when its init ends on its own
    /// (`--restart`); never after `vbuild stop`.
    #[serde(default, skip_serializing_if = "RestartPolicy::is_no")]
    pub restart: RestartPolicy,
    /// How it boots.
    #[serde(default)]
    pub init: InitConfig,
    /// Resource limits applied at start (and live by `vbuild limit`).
    #[serde(default)]
    pub limits: Limits,
    /// Network context.
    #[serde(default)]
    pub net: NetConfig,
    /// The host id range of its user namespace, allocated at first start
    /// (see `idrange`); `None` until then and for privileged guests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ids: Option<crate::idrange::IdRange>,
    /// The template its root is an overlay of (`templates/ID/`), pinned at
    /// creation; `None` for a guest with its own full copy (`--copy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
}

/// The network every guest joins unless told otherwise (it exists without
/// setup: written on first use).
pub const DEFAULT_NETWORK: &str = "vbuild0";

/// How a guest is connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NetMode {
    /// A veth pair whose host end joins the network's bridge.
    #[default]
    Bridge,
    /// Loopback only.
    None,
    /// The host's own network stack (trusted tools only): the runtime must
    /// not give such a guest a network namespace of its own.
    Host,
}

/// The network part of `guest.toml` (kept here, not in `net`, so that the
/// guest config depends on no network code: `net` reads configs, never the
/// other way round).
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
    DEFAULT_NETWORK.into()
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

/// A config file that could not be read or written; names the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// I/O on the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid guest TOML.
    #[error("{path}: {message} (fix the file or recreate the guest)")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the TOML parser said, with line and column.
        message: String,
    },
}

impl GuestConfig {
    /// Reads `path`.
    pub fn load(path: &Path) -> Result<GuestConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// Writes `path` atomically (temp file + rename), so a crash never leaves
    /// a half-written config.
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        let text = toml::to_string_pretty(self).expect("guest config serializes");
        crate::fsutil::write_atomic(path, text.as_bytes()).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// Kept for callers that still name it here; the function is a file
/// utility and lives in [`crate::fsutil`].
pub use crate::fsutil::write_atomic;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_names_the_file_on_error() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("guest.toml");
        let c = GuestConfig {
            name: "mail01".into(),
            distro: "debian".into(),
            release: "bookworm".into(),
            variant: "minbase".into(),
            created: 1,
            init: InitConfig::default(),
            limits: Limits::default(),
            net: NetConfig::default(),
            privileged: false,
            autostart: true,
            restart: RestartPolicy::OnFailure,
            ids: Some(crate::idrange::IdRange {
                base: 0x10_0000,
                count: 65536,
            }),
            template: Some("0123abcd".into()),
        };
        c.save(&p).unwrap();
        assert_eq!(GuestConfig::load(&p).unwrap(), c);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains("autostart = true"), "{text}");
        assert!(text.contains("restart = \"on-failure\""), "{text}");
        std::fs::write(&p, "name = 3").unwrap();
        let e = GuestConfig::load(&p).unwrap_err().to_string();
        assert!(e.contains("guest.toml"), "{e}");
    }

    #[test]
    fn a_guest_toml_from_before_autostart_loads_with_both_off_and_stays_as_it_was() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("guest.toml");
        let old =
            "name = \"g\"\ndistro = \"debian\"\nrelease = \"bookworm\"\n[net]\nmode = \"none\"\n";
        std::fs::write(&p, old).unwrap();
        let c = GuestConfig::load(&p).unwrap();
        assert!(!c.autostart);
        assert_eq!(c.restart, RestartPolicy::No);
        c.save(&p).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(
            !text.contains("autostart") && !text.contains("restart"),
            "{text}"
        );
        std::fs::write(&p, format!("restart = \"sometimes\"\n{old}")).unwrap();
        let e = GuestConfig::load(&p).unwrap_err().to_string();
        assert!(e.contains("guest.toml") && e.contains("restart"), "{e}");
    }
}
