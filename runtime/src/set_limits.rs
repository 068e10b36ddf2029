//! `vbuild limit NAME --memory 1G ...`: changes a guest's resource limits
//! as one transaction — live on its cgroup when it runs, in `guest.toml`
//! for the next start, and its disk limit — so a failure at any step leaves
//! the guest exactly as it was.
//!
//! The order puts the step that cannot be undone last: a loop image only
//! grows, so the disk is resized after everything else succeeded, and a
//! failed resize undoes the config and the live limits.

use crate::error::RuntimeError;
use crate::limits::{self, LimitError, Limits};
use crate::name::GuestName;
use crate::paths::Layout;
use crate::store::GuestStore;
use crate::txn::Txn;

/// What a limit change did.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitsChanged {
    /// The limits now in force (and saved).
    pub limits: Limits,
    /// True when they were applied to the running guest too.
    pub live: bool,
}

/// Sets guest `name`'s limits to `new` (already parsed and checked as a
/// whole). A disk limit can be changed, not lifted.
pub fn set_limits(
    layout: &Layout,
    name: &GuestName,
    new: &Limits,
) -> Result<LimitsChanged, RuntimeError> {
    let n = name.as_str();
    let store = GuestStore::new(layout);
    let mut cfg = store.load(n)?;
    let old = cfg.limits.clone();
    let refuse = |why: String| RuntimeError::Limits {
        name: n.to_string(),
        source: LimitError(why),
    };
    new.validate().map_err(|e| refuse(e.to_string()))?;
    if new.disk.is_none() && old.disk.is_some() {
        return Err(refuse(
            "a disk limit cannot be lifted, only changed (try --disk 4G)".into(),
        ));
    }
    let cg = store
        .live_cgroup(n)
        .map_err(|source| RuntimeError::Cgroup {
            name: n.to_string(),
            source,
        })?;
    let mut txn = Txn::new(n);

    // 1. Live, where it can be undone.
    if let Some(cg) = &cg {
        txn.step("applying the new limits to the running guest", || {
            limits::apply_guest(cg, new, layout, n)
        })?;
        let old = old.clone();
        txn.on_undo("put the old limits back on the running guest", move || {
            limits::apply_guest(cg, &old, layout, n).map_err(|e| e.to_string())
        });
    }

    // 2. guest.toml.
    let path = layout.guest_config(n);
    cfg.limits = new.clone();
    txn.step("saving guest.toml", || cfg.save(&path))?;
    {
        let (path, mut before) = (path.clone(), cfg.clone());
        before.limits = old.clone();
        txn.on_undo("restore guest.toml", move || {
            before.save(&path).map_err(|e| e.to_string())
        });
    }

    // 3. The disk, last: a loop image cannot shrink back.
    if let (Some(size), true) = (new.disk, new.disk != old.disk) {
        txn.step("resizing the disk", || crate::disk::grow(layout, n, size))?;
    }
    txn.commit();
    Ok(LimitsChanged {
        limits: new.clone(),
        live: cg.is_some(),
    })
}
