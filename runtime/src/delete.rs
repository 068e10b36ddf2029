//! `vbuild delete NAME`: removes a stopped guest — its disk activation,
//! its address leases, anything still mounted below its directory, the
//! directory (config, rootfs, image) and its state directory. A running
//! guest is refused, and nothing is touched, unless `--force` asks to kill
//! it first.

use crate::config::GuestConfig;
use crate::error::{io, RuntimeError};
use crate::name::GuestName;
use crate::net::NetMode;
use crate::paths::Layout;
use crate::state::{Liveness, RunLock, State};
use std::time::Duration;

/// Deletes stopped guest `name`.
pub fn delete(layout: &Layout, name: &GuestName) -> Result<(), RuntimeError> {
    let n = name.as_str();
    let dir = layout.guest_dir(n);
    if !dir.is_dir() {
        return Err(RuntimeError::NotFound(n.to_string()));
    }
    if let Some(st) = State::load(layout, n)? {
        match st.liveness() {
            Liveness::Running { .. } | Liveness::Stopping => {
                return Err(RuntimeError::Running(n.to_string()))
            }
            Liveness::Stale => {
                let _l = RunLock::take_within(layout, n, Duration::from_secs(5))?;
                crate::stop::cleanup(layout, n, &st.cgroup, true)?;
            }
        }
    }
    let _lock = RunLock::try_take(layout, n)?.ok_or_else(|| RuntimeError::Busy(n.to_string()))?;
    let disk_err = |source| RuntimeError::Disk {
        name: n.to_string(),
        source,
    };
    crate::disk::deactivate(layout, n).map_err(disk_err)?;
    // A limited rootfs (subvolume and qgroup, project quota, image) goes
    // with its limit.
    crate::disk::destroy(layout, n).map_err(disk_err)?;
    if let Ok(cfg) = GuestConfig::load(&layout.guest_config(n)) {
        if cfg.net.mode == NetMode::Bridge {
            crate::net::release(layout, &cfg.net.network, n)?;
        }
    }
    // Never delete through a mount (an overlay, a bind): unmount first.
    let mounts = vbuild_kernel::mount::mounts_below(&dir).map_err(io("/proc/self/mountinfo"))?;
    for m in mounts {
        vbuild_kernel::mount::unmount(&m, true).map_err(|e| RuntimeError::Sys {
            name: n.to_string(),
            op: format!("unmount {}", m.display()),
            errno: e.errno,
        })?;
    }
    std::fs::remove_dir_all(&dir).map_err(io(&dir))?;
    // Its id range is free for the next guest only once nothing of it is
    // left on disk.
    crate::idrange::Registry::host().release(layout.root(), n)?;
    let run = layout.run_dir(n);
    if run.exists() {
        std::fs::remove_dir_all(&run).map_err(io(&run))?;
    }
    Ok(())
}

/// Deletes guest `name` even when it runs (`vbuild delete --force`): a
/// running guest is killed first (its data goes anyway, so there is no
/// graceful wait), then deleted as [`delete`] does. Returns whether it was
/// running.
pub fn delete_force(layout: &Layout, name: &GuestName) -> Result<bool, RuntimeError> {
    let n = name.as_str();
    if !layout.guest_dir(n).is_dir() {
        return Err(RuntimeError::NotFound(n.to_string()));
    }
    let was_running = match State::load(layout, n)?.map(|st| st.liveness()) {
        Some(Liveness::Running { .. }) | Some(Liveness::Stopping) => {
            match crate::stop::kill(layout, name) {
                Ok(_) | Err(RuntimeError::NotRunning(_)) => true,
                Err(e) => return Err(e),
            }
        }
        _ => false,
    };
    delete(layout, name)?;
    Ok(was_running)
}
