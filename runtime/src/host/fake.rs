//! A host that records every call and holds fake resources, for the unit
//! tests of start's order and roll-back and of cleanup.

use super::*;
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::os::fd::OwnedFd;

/// Records calls in order; resources present are in `present`; a call
/// named in `fail` fails once with an error naming it.
#[derive(Debug, Default)]
pub(crate) struct RecordingHost {
    pub calls: RefCell<Vec<String>>,
    pub present: RefCell<BTreeSet<String>>,
    pub fail: RefCell<BTreeSet<String>>,
    pub elsewhere: Option<PathBuf>,
    /// How many halt signals init takes before it ends (`None`: never).
    pub init_ends_after: Option<usize>,
    /// The signals sent, with when (since the first one).
    pub signals: RefCell<Vec<(i32, Duration)>>,
    pub started: std::sync::OnceLock<std::time::Instant>,
}

/// The pid the fake supervisor reports for init.
pub(crate) const FAKE_INIT: i32 = 4242;

impl RecordingHost {
    /// A host where `what` (cgroup, net, disk, state, claim) exist.
    pub(crate) fn with(what: &[&str]) -> RecordingHost {
        let h = RecordingHost::default();
        h.present
            .borrow_mut()
            .extend(what.iter().map(|s| s.to_string()));
        h
    }

    /// Records `call`, fails when told to, else takes `resource` away.
    fn step(&self, call: &str, resource: &str) -> Result<(), RuntimeError> {
        self.check(call)?;
        self.present.borrow_mut().remove(resource);
        Ok(())
    }

    /// Records `call`, fails when told to, else makes `resource`.
    fn make(&self, call: &str, resource: &str) -> Result<(), RuntimeError> {
        self.check(call)?;
        self.present.borrow_mut().insert(resource.to_string());
        Ok(())
    }

    fn check(&self, call: &str) -> Result<(), RuntimeError> {
        self.calls.borrow_mut().push(call.to_string());
        if self.fail.borrow_mut().remove(call) {
            return Err(RuntimeError::Sys {
                name: "fake".into(),
                op: call.to_string(),
                errno: nix::errno::Errno::EIO,
            });
        }
        Ok(())
    }
}

impl Host for RecordingHost {
    fn name_held_elsewhere(&self, _: &Layout, _: &str) -> Result<Option<PathBuf>, RuntimeError> {
        self.calls.borrow_mut().push("held_elsewhere".into());
        Ok(self.elsewhere.clone())
    }
    fn name_claim(&self, _: &Layout, _: &str) -> Result<(), RuntimeError> {
        self.make("name_claim", "claim")
    }
    fn addresses_claim(&self, _: &Layout, _: &str, _: &NetConfig) -> Result<(), RuntimeError> {
        self.make("addresses_claim", "addresses")
    }
    fn addresses_release(&self, _: &Layout, _: &str) -> Result<(), RuntimeError> {
        self.step("addresses_release", "addresses")
    }
    fn disk_activate(&self, _: &Layout, _: &str) -> Result<(), RuntimeError> {
        self.make("disk_activate", "disk")
    }
    fn rootfs_prepare(&self, l: &Layout, n: &str, _: &str) -> Result<PathBuf, RuntimeError> {
        self.make("rootfs_prepare", "rootfs")?;
        Ok(l.guest_rootfs(n))
    }
    fn rootfs_release(&self, _: &Layout, _: &str) -> Result<(), RuntimeError> {
        self.step("rootfs_release", "rootfs")
    }
    fn ids_allocate(
        &self,
        _: &Layout,
        _: &str,
        cfg: &mut GuestConfig,
    ) -> Result<IdRange, RuntimeError> {
        self.check("ids_allocate")?;
        let r = IdRange {
            base: 0x10_0000,
            count: crate::idrange::SIZE,
        };
        cfg.ids = Some(r);
        Ok(r)
    }
    fn cgroup_create(&self, _: &str, rel: &str) -> Result<bool, RuntimeError> {
        self.make(&format!("cgroup_create {rel}"), &format!("cgroup {rel}"))?;
        Ok(true)
    }
    fn cgroup_restrict_devices(&self, _: &str, _: &str) -> Result<(), RuntimeError> {
        self.check("cgroup_restrict_devices")
    }
    fn cgroup_apply_limits(
        &self,
        _: &Layout,
        _: &str,
        _: &str,
        _: &Limits,
    ) -> Result<(), RuntimeError> {
        self.check("cgroup_apply_limits")
    }
    fn cgroup_delegate(&self, _: &str, _: &str, _: u32) -> Result<(), RuntimeError> {
        self.check("cgroup_delegate")
    }
    fn cgroup_attach(&self, _: &str, _: &str, _: i32) -> Result<(), RuntimeError> {
        self.check("cgroup_attach")
    }
    fn cgroup_kill_and_remove(&self, _: &str, rel: &str) -> Result<(), RuntimeError> {
        // Removing a group removes the groups below it.
        self.check("cgroup_kill_and_remove")?;
        let mine = format!("cgroup {rel}");
        let below = format!("{mine}/");
        self.present
            .borrow_mut()
            .retain(|r| r != "cgroup" && *r != mine && !r.starts_with(&below));
        Ok(())
    }
    fn supervisor_spawn<'a>(
        &'a self,
        _: &Layout,
        req: SpawnRequest<'_>,
    ) -> Result<Box<dyn Boot + 'a>, RuntimeError> {
        self.present.borrow_mut().insert("state".into());
        self.check("supervisor_spawn")?;
        drop(req.lock);
        Ok(Box::new(FakeBoot { host: self }))
    }
    fn ids_map(&self, _: &str, _: i32, _: u32) -> Result<(), RuntimeError> {
        self.check("ids_map")
    }
    fn network_attach(
        &self,
        _: &Layout,
        _: &str,
        _: &NetConfig,
        _: i32,
    ) -> Result<(), RuntimeError> {
        self.make("network_attach", "net")
    }
    fn network_detach(&self, _: &Layout, _: &str) -> Result<(), RuntimeError> {
        self.step("network_detach", "net")
    }
    fn dns_ensure(
        &self,
        _: &Layout,
        _: &str,
        _: &crate::supervisor::SupervisorProgram,
    ) -> Result<(), RuntimeError> {
        self.make("dns_ensure", "dns")
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
    fn pidfd_signal(&self, _: &OwnedFd, sig: i32) -> Result<(), nix::errno::Errno> {
        let mut s = self.signals.borrow_mut();
        let t0 = self.started.get_or_init(std::time::Instant::now);
        s.push((sig, t0.elapsed()));
        Ok(())
    }
    fn pidfd_wait(&self, _: &OwnedFd, timeout: Duration) -> Result<bool, nix::errno::Errno> {
        if self
            .init_ends_after
            .is_some_and(|n| self.signals.borrow().len() >= n)
        {
            return Ok(true);
        }
        std::thread::sleep(timeout);
        Ok(false)
    }
}

/// The fake supervisor: reports init at once; "abandon" stands for the
/// supervisor's own cleanup, which start waits for.
struct FakeBoot<'a> {
    host: &'a RecordingHost,
}

impl Boot for FakeBoot<'_> {
    fn init_pid(&mut self) -> Result<i32, RuntimeError> {
        self.host.check("init_pid")?;
        Ok(FAKE_INIT)
    }
    fn hand_root(&mut self, _: &Path, _: i32) -> Result<(), RuntimeError> {
        self.host.check("hand_root")
    }
    fn release(self: Box<Self>) -> Result<Started, RuntimeError> {
        self.host.check("release")?;
        Ok(Started {
            init_pid: FAKE_INIT,
            supervisor_pid: FAKE_INIT - 1,
            boot_id: "fake".into(),
            warnings: Vec::new(),
        })
    }
    fn abandon(self: Box<Self>) {
        self.host.calls.borrow_mut().push("abandon".into());
    }
}
