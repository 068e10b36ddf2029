//! The host actions a guest's cleanup takes, behind one trait: the real
//! implementation calls the kernel crate; tests use a recording fake, so
//! the order of the steps, that every step runs when an earlier one fails,
//! and that cleanup is idempotent are unit-tested without root (the idea of
//! youki's `Syscall` trait with its test double).
//!
//! This is the first part of the seam: `stop::cleanup` goes through it;
//! `start`'s steps are to follow.

use crate::error::RuntimeError;
use crate::paths::Layout;
use std::path::PathBuf;
use vbuild_kernel::cgroup::{Cgroup, Hierarchy};

/// What cleanup does to the host, one call per resource.
pub trait Host {
    /// The other state root that runs a guest of this name now, if any.
    fn name_held_elsewhere(
        &self,
        layout: &Layout,
        name: &str,
    ) -> Result<Option<PathBuf>, RuntimeError>;
    /// Kills every process in cgroup `rel` and removes it; absent is fine.
    fn cgroup_kill_and_remove(&self, name: &str, rel: &str) -> Result<(), RuntimeError>;
    /// Removes the guest's veth and nf_tables tables; absent is fine.
    fn network_detach(&self, layout: &Layout, name: &str) -> Result<(), RuntimeError>;
    /// Deactivates the guest's disk (unmounts a loop image); idempotent.
    fn disk_deactivate(&self, layout: &Layout, name: &str) -> Result<(), RuntimeError>;
    /// Removes the guest's state files (keeping the console log and lock).
    fn state_clear(&self, layout: &Layout, name: &str);
    /// Gives the guest's host-wide name back.
    fn name_release(&self, layout: &Layout, name: &str) -> Result<(), RuntimeError>;
}

/// The host itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealHost;

impl Host for RealHost {
    fn name_held_elsewhere(
        &self,
        layout: &Layout,
        name: &str,
    ) -> Result<Option<PathBuf>, RuntimeError> {
        crate::claim::held_elsewhere(layout, name)
    }

    fn cgroup_kill_and_remove(&self, name: &str, rel: &str) -> Result<(), RuntimeError> {
        let cg_err = |source| RuntimeError::Cgroup {
            name: name.to_string(),
            source,
        };
        let h = Hierarchy::detect().map_err(cg_err)?;
        if let Some(cg) = Cgroup::open(&h, rel).map_err(cg_err)? {
            cg.kill_all().map_err(cg_err)?;
            cg.remove().map_err(cg_err)?;
        }
        Ok(())
    }

    fn network_detach(&self, layout: &Layout, name: &str) -> Result<(), RuntimeError> {
        crate::net::detach(layout, name).map_err(RuntimeError::from)
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
}

/// A host that records every call and holds fake resources, for tests.
#[cfg(test)]
pub(crate) mod fake {
    use super::*;
    use std::cell::RefCell;
    use std::collections::BTreeSet;

    /// Records calls in order; resources present are in `present`; a call
    /// named in `fail` fails once with an error naming it.
    #[derive(Debug, Default)]
    pub(crate) struct RecordingHost {
        pub calls: RefCell<Vec<String>>,
        pub present: RefCell<BTreeSet<String>>,
        pub fail: RefCell<BTreeSet<String>>,
        pub elsewhere: Option<PathBuf>,
    }

    impl RecordingHost {
        /// A host where `what` (cgroup, net, disk, state, claim) exist.
        pub(crate) fn with(what: &[&str]) -> RecordingHost {
            let h = RecordingHost::default();
            h.present
                .borrow_mut()
                .extend(what.iter().map(|s| s.to_string()));
            h
        }

        fn step(&self, call: &str, resource: &str) -> Result<(), RuntimeError> {
            self.calls.borrow_mut().push(call.to_string());
            if self.fail.borrow_mut().remove(call) {
                return Err(RuntimeError::Sys {
                    name: "fake".into(),
                    op: call.to_string(),
                    errno: nix::errno::Errno::EIO,
                });
            }
            self.present.borrow_mut().remove(resource);
            Ok(())
        }
    }

    impl Host for RecordingHost {
        fn name_held_elsewhere(
            &self,
            _: &Layout,
            _: &str,
        ) -> Result<Option<PathBuf>, RuntimeError> {
            self.calls.borrow_mut().push("held_elsewhere".into());
            Ok(self.elsewhere.clone())
        }
        fn cgroup_kill_and_remove(&self, _: &str, _: &str) -> Result<(), RuntimeError> {
            self.step("cgroup_kill_and_remove", "cgroup")
        }
        fn network_detach(&self, _: &Layout, _: &str) -> Result<(), RuntimeError> {
            self.step("network_detach", "net")
        }
        fn disk_deactivate(&self, _: &Layout, _: &str) -> Result<(), RuntimeError> {
            self.step("disk_deactivate", "disk")
        }
        fn state_clear(&self, _: &Layout, _: &str) {
            let _ = self.step("state_clear", "state");
        }
        fn name_release(&self, _: &Layout, _: &str) -> Result<(), RuntimeError> {
            self.step("name_release", "claim")
        }
    }
}
