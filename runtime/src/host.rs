//! The host actions a guest's start and cleanup take, behind one trait:
//! the real implementation calls the kernel crate; tests use a recording
//! fake (`host/fake.rs`), so the order of start's steps, its roll-back when
//! any step fails, that cleanup runs every step when an earlier one fails,
//! and that cleanup is idempotent are unit-tested without root (the idea of
//! youki's `Syscall` trait with its test double).

use crate::config::GuestConfig;
use crate::error::{io, RuntimeError};
use crate::idrange::IdRange;
use crate::limits::Limits;
use crate::net::NetConfig;
use crate::paths::Layout;
use crate::start::Started;
use crate::state::RunLock;
use crate::supervisor::SupervisorProgram;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;
use vbuild_kernel::cgroup::{Cgroup, DeviceRule, Hierarchy};

#[cfg(test)]
pub(crate) mod fake;

/// What start and cleanup do to the host, one call per resource. Every
/// `*_create`/`*_activate`/`*_claim` has its undo here too.
pub trait Host {
    /// The other state root that runs a guest of this name now, if any.
    fn name_held_elsewhere(
        &self,
        layout: &Layout,
        name: &str,
    ) -> Result<Option<PathBuf>, RuntimeError>;
    /// Claims the guest's host-wide name (undo: `name_release`).
    fn name_claim(&self, layout: &Layout, name: &str) -> Result<(), RuntimeError>;
    /// Claims the addresses a bridged guest uses on its network's bridge,
    /// host-wide (undo: `addresses_release`); nothing for other modes.
    fn addresses_claim(
        &self,
        layout: &Layout,
        name: &str,
        net: &NetConfig,
    ) -> Result<(), RuntimeError>;
    /// Gives back every address the guest claimed; idempotent.
    fn addresses_release(&self, layout: &Layout, name: &str) -> Result<(), RuntimeError>;
    /// Makes the guest's disk available (mounts a loop image; undo:
    /// `disk_deactivate`).
    fn disk_activate(&self, layout: &Layout, name: &str) -> Result<(), RuntimeError>;
    /// Makes the guest's root filesystem ready to be the root of its init
    /// and checks that `init` is an executable in it; returns the tree
    /// init gets (undo: `rootfs_release`). This is the one place start
    /// mounts or prepares the rootfs.
    fn rootfs_prepare(
        &self,
        layout: &Layout,
        name: &str,
        init: &str,
    ) -> Result<PathBuf, RuntimeError>;
    /// Undoes `rootfs_prepare`; idempotent.
    fn rootfs_release(&self, layout: &Layout, name: &str) -> Result<(), RuntimeError>;
    /// The unprivileged guest's host id range: the recorded one when still
    /// free, else a new one, recorded in `cfg` and guest.toml. Not undone:
    /// the range is the guest's until `vbuild delete`.
    fn ids_allocate(
        &self,
        layout: &Layout,
        name: &str,
        cfg: &mut GuestConfig,
    ) -> Result<IdRange, RuntimeError>;
    /// Creates cgroup `rel` (undo: `cgroup_kill_and_remove` of the
    /// topmost one, which removes the groups below it too). True when it
    /// has a cgroup2 directory, so the guest gets its own cgroup namespace.
    fn cgroup_create(&self, name: &str, rel: &str) -> Result<bool, RuntimeError>;
    /// Allows only the standard devices in cgroup `rel`.
    fn cgroup_restrict_devices(&self, name: &str, rel: &str) -> Result<(), RuntimeError>;
    /// Applies `limits` (memory, cpu, pids, I/O on the guest's disk) to
    /// cgroup `rel`.
    fn cgroup_apply_limits(
        &self,
        layout: &Layout,
        name: &str,
        rel: &str,
        limits: &Limits,
    ) -> Result<(), RuntimeError>;
    /// Delegates cgroup `rel`'s cgroup2 directory to host uid `owner` (the
    /// guest's root), as systemd's `Delegate=` does.
    fn cgroup_delegate(&self, name: &str, rel: &str, owner: u32) -> Result<(), RuntimeError>;
    /// Moves process `pid` into cgroup `rel`.
    fn cgroup_attach(&self, name: &str, rel: &str, pid: i32) -> Result<(), RuntimeError>;
    /// Kills every process in cgroup `rel` and removes it; absent is fine.
    fn cgroup_kill_and_remove(&self, name: &str, rel: &str) -> Result<(), RuntimeError>;
    /// Starts the guest's supervisor (console pty, notify and console
    /// sockets, `launch.json`, then the detached process), which forks
    /// init into its namespaces; init waits until [`Boot::release`]. From
    /// here on the supervisor owns the cleanup. Files it made before it
    /// failed go with `state_clear`.
    fn supervisor_spawn<'a>(
        &'a self,
        layout: &Layout,
        req: SpawnRequest<'_>,
    ) -> Result<Box<dyn Boot + 'a>, RuntimeError>;
    /// Writes the uid/gid maps of `init_pid`'s user namespace: guest ids
    /// 0.. map to host ids `base`...
    fn ids_map(&self, name: &str, init_pid: i32, base: u32) -> Result<(), RuntimeError>;
    /// Builds the guest's network (veth, addresses, routes, anti-spoofing
    /// tables) into `init_pid`'s network namespace (undo: `network_detach`).
    fn network_attach(
        &self,
        layout: &Layout,
        name: &str,
        net: &NetConfig,
        init_pid: i32,
    ) -> Result<(), RuntimeError>;
    /// Removes the guest's veth and nf_tables tables; absent is fine. Ends
    /// the name responder of a network that has no guest left.
    fn network_detach(&self, layout: &Layout, name: &str) -> Result<(), RuntimeError>;
    /// Makes sure network `network` has its name responder, spawning it
    /// with `supervisor` when none runs (see `net::dns`; it ends by itself).
    fn dns_ensure(
        &self,
        layout: &Layout,
        network: &str,
        supervisor: &SupervisorProgram,
    ) -> Result<(), RuntimeError>;
    /// Deactivates the guest's disk (unmounts a loop image); idempotent.
    fn disk_deactivate(&self, layout: &Layout, name: &str) -> Result<(), RuntimeError>;
    /// Removes the guest's state files (keeping the console log and lock).
    fn state_clear(&self, layout: &Layout, name: &str);
    /// Gives the guest's host-wide name back.
    fn name_release(&self, layout: &Layout, name: &str) -> Result<(), RuntimeError>;
    /// Sends `sig` to the process `pidfd` pins (never to a recycled pid).
    fn pidfd_signal(&self, pidfd: &OwnedFd, sig: i32) -> Result<(), nix::errno::Errno>;
    /// Waits at most `timeout` for that process to end; true when it did.
    fn pidfd_wait(&self, pidfd: &OwnedFd, timeout: Duration) -> Result<bool, nix::errno::Errno>;
}

/// What the supervisor of one boot needs from start.
#[derive(Debug)]
pub struct SpawnRequest<'a> {
    /// The guest.
    pub name: &'a str,
    /// Its configuration (init, network, memory limit for tmpfs sizes).
    pub cfg: &'a GuestConfig,
    /// The tree `rootfs_prepare` returned.
    pub rootfs: &'a Path,
    /// The guest's id range; `None` for a privileged guest.
    pub ids: Option<IdRange>,
    /// The limits cgroup (`vbuild/NAME`).
    pub cgroup: &'a str,
    /// The guest's own cgroup below it.
    pub guest_cgroup: &'a str,
    /// Whether the guest gets a cgroup namespace (a cgroup2 directory).
    pub cgroupns: bool,
    /// The supervisor program.
    pub supervisor: &'a SupervisorProgram,
    /// What to run after a reboot.
    pub on_reboot: Option<Vec<String>>,
    /// What to run when init ended on its own (the restart policy).
    pub on_exit: Option<Vec<String>>,
    /// The state directory's lock, handed on to the supervisor.
    pub lock: RunLock,
}

/// One boot in progress: the supervisor runs and init waits for `release`.
pub trait Boot {
    /// Init's pid as the host sees it, once the supervisor forked it.
    fn init_pid(&mut self) -> Result<i32, RuntimeError>;
    /// Hands init its root filesystem (an id-mapped tree of `rootfs`).
    fn hand_root(&mut self, rootfs: &Path, init_pid: i32) -> Result<(), RuntimeError>;
    /// Lets init run and returns once it is exec'd (or why it could not be).
    fn release(self: Box<Self>) -> Result<Started, RuntimeError>;
    /// Gives up this boot: init is told to end, and this returns once the
    /// supervisor cleaned up after it.
    fn abandon(self: Box<Self>);
}

/// The host itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealHost;

fn cg_err(name: &str) -> impl Fn(vbuild_kernel::cgroup::CgroupError) -> RuntimeError + '_ {
    move |source| RuntimeError::Cgroup {
        name: name.to_string(),
        source,
    }
}

fn open_cgroup(name: &str, rel: &str) -> Result<Option<Cgroup>, RuntimeError> {
    let h = Hierarchy::detect().map_err(cg_err(name))?;
    Cgroup::open(&h, rel).map_err(cg_err(name))
}

/// Cgroup `rel`, which start made a moment ago.
fn made_cgroup(name: &str, rel: &str) -> Result<Cgroup, RuntimeError> {
    open_cgroup(name, rel)?.ok_or_else(|| RuntimeError::Sys {
        name: name.to_string(),
        op: format!("open cgroup {rel}"),
        errno: nix::errno::Errno::ENOENT,
    })
}

impl Host for RealHost {
    fn name_held_elsewhere(
        &self,
        layout: &Layout,
        name: &str,
    ) -> Result<Option<PathBuf>, RuntimeError> {
        crate::claim::held_elsewhere(layout, name)
    }

    fn name_claim(&self, layout: &Layout, name: &str) -> Result<(), RuntimeError> {
        crate::claim::claim(layout, name)
    }

    fn addresses_claim(
        &self,
        layout: &Layout,
        name: &str,
        net: &NetConfig,
    ) -> Result<(), RuntimeError> {
        if net.mode != crate::net::NetMode::Bridge || net.addresses.is_empty() {
            return Ok(());
        }
        let network = crate::net::Network::load(layout, &net.network)?;
        let mut addrs = Vec::new();
        for a in &net.addresses {
            addrs.push(a.parse::<crate::net::Cidr>()?.addr);
        }
        crate::claim::claim_addresses(layout, name, &network.bridge, &addrs)
    }

    fn addresses_release(&self, layout: &Layout, name: &str) -> Result<(), RuntimeError> {
        crate::claim::release_addresses(layout, name)
    }

    fn disk_activate(&self, layout: &Layout, name: &str) -> Result<(), RuntimeError> {
        crate::disk::activate(layout, name).map_err(|source| RuntimeError::Disk {
            name: name.to_string(),
            source,
        })
    }

    fn rootfs_prepare(
        &self,
        layout: &Layout,
        name: &str,
        init: &str,
    ) -> Result<PathBuf, RuntimeError> {
        let rootfs = layout.guest_rootfs(name);
        // An overlay guest's init comes from its template (the mount point
        // is empty until init's own namespace mounts the overlay on it).
        let mut init_root = rootfs.clone();
        if crate::layer::is_overlay(layout, name) {
            let cfg = GuestConfig::load(&layout.guest_config(name))?;
            if let Some(t) = crate::layer::template_rootfs(layout, &cfg) {
                init_root = t?;
            }
        }
        vbuild_kernel::rootfs::check_executable(&init_root, init).map_err(|source| {
            RuntimeError::Init {
                name: name.to_string(),
                source,
            }
        })?;
        Ok(rootfs)
    }

    fn rootfs_release(&self, _layout: &Layout, _name: &str) -> Result<(), RuntimeError> {
        // A plain directory: nothing was mounted.
        Ok(())
    }

    fn ids_allocate(
        &self,
        layout: &Layout,
        name: &str,
        cfg: &mut GuestConfig,
    ) -> Result<IdRange, RuntimeError> {
        let reg = crate::idrange::Registry::host();
        let range = reg.allocate(layout.root(), name, cfg.ids)?;
        if cfg.ids != Some(range) {
            cfg.ids = Some(range);
            cfg.save(&layout.guest_config(name))?;
        }
        Ok(range)
    }

    fn cgroup_create(&self, name: &str, rel: &str) -> Result<bool, RuntimeError> {
        let h = Hierarchy::detect().map_err(cg_err(name))?;
        let cg = Cgroup::create(&h, rel).map_err(cg_err(name))?;
        Ok(cg.unified_dir().is_some())
    }

    fn cgroup_restrict_devices(&self, name: &str, rel: &str) -> Result<(), RuntimeError> {
        made_cgroup(name, rel)?
            .restrict_devices(&DeviceRule::standard())
            .map_err(cg_err(name))
    }

    fn cgroup_apply_limits(
        &self,
        layout: &Layout,
        name: &str,
        rel: &str,
        limits: &Limits,
    ) -> Result<(), RuntimeError> {
        let cg = made_cgroup(name, rel)?;
        crate::limits::apply_guest(&cg, limits, layout, name).map_err(|source| {
            RuntimeError::Limits {
                name: name.to_string(),
                source,
            }
        })
    }

    fn cgroup_delegate(&self, name: &str, rel: &str, owner: u32) -> Result<(), RuntimeError> {
        let cg = made_cgroup(name, rel)?;
        if let Some(dir) = cg.unified_dir() {
            for f in [
                "",
                "cgroup.procs",
                "cgroup.threads",
                "cgroup.subtree_control",
            ] {
                let p = dir.join(f);
                std::os::unix::fs::chown(&p, Some(owner), Some(owner)).map_err(io(&p))?;
            }
        }
        Ok(())
    }

    fn cgroup_attach(&self, name: &str, rel: &str, pid: i32) -> Result<(), RuntimeError> {
        made_cgroup(name, rel)?.attach(pid).map_err(cg_err(name))
    }

    fn cgroup_kill_and_remove(&self, name: &str, rel: &str) -> Result<(), RuntimeError> {
        if let Some(cg) = open_cgroup(name, rel)? {
            cg.kill_all().map_err(cg_err(name))?;
            cg.remove().map_err(cg_err(name))?;
        }
        Ok(())
    }

    fn supervisor_spawn<'a>(
        &'a self,
        layout: &Layout,
        req: SpawnRequest<'_>,
    ) -> Result<Box<dyn Boot + 'a>, RuntimeError> {
        Ok(Box::new(crate::boot::spawn(layout, req)?))
    }

    fn ids_map(&self, name: &str, init_pid: i32, base: u32) -> Result<(), RuntimeError> {
        vbuild_kernel::ns::write_id_maps(init_pid, base, crate::idrange::SIZE)
            .map_err(|e| crate::error::sys(name, e.what.clone())(e.errno))
    }

    fn network_attach(
        &self,
        layout: &Layout,
        name: &str,
        net: &NetConfig,
        init_pid: i32,
    ) -> Result<(), RuntimeError> {
        crate::net::attach(layout, name, net, init_pid).map_err(RuntimeError::from)
    }

    fn network_detach(&self, layout: &Layout, name: &str) -> Result<(), RuntimeError> {
        crate::net::detach(layout, name)?;
        // Not an error of this guest's cleanup when it fails: a responder
        // left running ends by itself within a second of its bridge
        // losing its last port.
        let _ = crate::net::dns::end_idle(layout);
        Ok(())
    }

    fn dns_ensure(
        &self,
        layout: &Layout,
        network: &str,
        supervisor: &SupervisorProgram,
    ) -> Result<(), RuntimeError> {
        let net = crate::net::Network::load(layout, network)?;
        crate::net::dns::ensure_running(layout, &net, supervisor).map_err(RuntimeError::from)
    }

    fn disk_deactivate(&self, layout: &Layout, name: &str) -> Result<(), RuntimeError> {
        crate::disk::deactivate(layout, name).map_err(|source| RuntimeError::Disk {
            name: name.to_string(),
            source,
        })
    }

    fn state_clear(&self, layout: &Layout, name: &str) {
        crate::state::clear(layout, name)
    }

    fn name_release(&self, layout: &Layout, name: &str) -> Result<(), RuntimeError> {
        crate::claim::release(layout, name)
    }

    fn pidfd_signal(&self, pidfd: &OwnedFd, sig: i32) -> Result<(), nix::errno::Errno> {
        vbuild_kernel::process::pidfd_signal(pidfd, sig)
    }

    fn pidfd_wait(&self, pidfd: &OwnedFd, timeout: Duration) -> Result<bool, nix::errno::Errno> {
        vbuild_kernel::process::wait_pidfd(pidfd, Some(timeout))
    }
}
