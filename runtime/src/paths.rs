//! Where vbuild keeps its state, so every command agrees on one layout.
//!
//! Persistent state lives under the root (`/var/lib/vbuild` by default):
//! `cache/`, `templates/`, `guests/NAME/`, `networks/`. Runtime state (pids,
//! sockets, console logs of running guests) lives under `/run/vbuild/NAME/`, or
//! under `ROOT/run/` when the root was moved with `--root`/`VBUILD_ROOT`, so
//! tests never touch the real `/run/vbuild`.

use std::path::{Path, PathBuf};

/// The default persistent root.
pub const DEFAULT_ROOT: &str = "/var/lib/vbuild";
/// The default runtime-state root (tmpfs, cleared on reboot).
pub const DEFAULT_RUN: &str = "/run/vbuild";
/// The host-wide registry of guest names in use (one per state root at a
/// time): the same for every state root, since cgroups, links and nf_tables
/// tables are named after the guest on the one host.
pub const NAMES_DIR: &str = "/run/vbuild-names";

/// One resolved layout of vbuild's directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    root: PathBuf,
    run: PathBuf,
    names: PathBuf,
}

impl Layout {
    /// The layout for `root`; `None` means the defaults. A moved root also
    /// moves runtime state to `ROOT/run` so isolated trees never collide.
    pub fn new(root: Option<&Path>) -> Layout {
        match root {
            Some(r) => Layout {
                root: r.to_path_buf(),
                run: r.join("run"),
                names: PathBuf::from(NAMES_DIR),
            },
            None => Layout {
                root: PathBuf::from(DEFAULT_ROOT),
                run: PathBuf::from(DEFAULT_RUN),
                names: PathBuf::from(NAMES_DIR),
            },
        }
    }

    /// This layout with the host-wide name registry at `dir` instead of
    /// [`NAMES_DIR`]: for tests that must not touch the host's registry.
    pub fn with_names_dir(mut self, dir: &Path) -> Layout {
        self.names = dir.to_path_buf();
        self
    }

    /// The host-wide registry of guest names in use (see `claim`).
    pub fn names_dir(&self) -> &Path {
        &self.names
    }

    /// The persistent root.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// Content-addressed downloads and index caches.
    pub fn cache_dir(&self) -> PathBuf {
        self.root.join("cache")
    }
    /// Built templates (read-only lower layers).
    pub fn templates_dir(&self) -> PathBuf {
        self.root.join("templates")
    }
    /// All guests.
    pub fn guests_dir(&self) -> PathBuf {
        self.root.join("guests")
    }
    /// One guest's persistent directory (`guest.toml`, `rootfs/`, disk image).
    pub fn guest_dir(&self, name: &str) -> PathBuf {
        self.guests_dir().join(name)
    }
    /// One guest's config file.
    pub fn guest_config(&self, name: &str) -> PathBuf {
        self.guest_dir(name).join("guest.toml")
    }
    /// One guest's root filesystem.
    pub fn guest_rootfs(&self, name: &str) -> PathBuf {
        self.guest_dir(name).join("rootfs")
    }
    /// One template's directory (`rootfs/` + `template.toml`).
    pub fn template_dir(&self, id: &str) -> PathBuf {
        self.templates_dir().join(id)
    }
    /// One template's root filesystem: the shared lower layer of its guests.
    pub fn template_rootfs(&self, id: &str) -> PathBuf {
        self.template_dir(id).join("rootfs")
    }
    /// An overlay guest's own layer (`upper/` + `work/`, on its disk-limit
    /// backend); its `rootfs/` is then only the mount point.
    pub fn guest_layer(&self, name: &str) -> PathBuf {
        self.guest_dir(name).join("layer")
    }
    /// Host networks (bridges) and their address allocations.
    pub fn networks_dir(&self) -> PathBuf {
        self.root.join("networks")
    }
    /// Runtime-state root.
    pub fn run_root(&self) -> &Path {
        &self.run
    }
    /// One running guest's runtime state (pid file, console log, sockets).
    pub fn run_dir(&self, name: &str) -> PathBuf {
        self.run.join(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moved_root_moves_runtime_state_too() {
        let l = Layout::new(Some(Path::new("/tmp/x")));
        assert_eq!(l.guest_rootfs("a"), PathBuf::from("/tmp/x/guests/a/rootfs"));
        assert_eq!(l.run_dir("a"), PathBuf::from("/tmp/x/run/a"));
        let d = Layout::new(None);
        assert_eq!(d.run_dir("a"), PathBuf::from("/run/vbuild/a"));
        assert_eq!(d.cache_dir(), PathBuf::from("/var/lib/vbuild/cache"));
    }
}
