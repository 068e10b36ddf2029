//! The device allowlist of a guest: which device nodes its processes may
//! open or create. cgroup v1 spells it as lines in devices.deny/allow;
//! cgroup v2 has no device files and needs an eBPF program (bpf.rs).

use super::fsio::write_value;
use super::{Cgroup, CgroupError};

/// Character or block device (or both, for wildcard rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    /// A character device (`c`).
    Char,
    /// A block device (`b`).
    Block,
    /// Either kind (`a`).
    All,
}

/// One allowed device (or range, with `None` as a wildcard number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceRule {
    /// Which kind of device node.
    pub kind: DeviceKind,
    /// Major number; `None` matches any.
    pub major: Option<u32>,
    /// Minor number; `None` matches any.
    pub minor: Option<u32>,
    /// May be opened for reading.
    pub read: bool,
    /// May be opened for writing.
    pub write: bool,
    /// May be created with mknod.
    pub mknod: bool,
}

impl DeviceRule {
    /// Read, write and mknod on one character device.
    pub const fn char(major: u32, minor: u32) -> DeviceRule {
        DeviceRule {
            kind: DeviceKind::Char,
            major: Some(major),
            minor: Some(minor),
            read: true,
            write: true,
            mknod: true,
        }
    }

    /// The devices every guest gets, matching the /dev the runtime builds:
    /// null, zero, full, random, urandom, tty, console, ptmx, the pty
    /// slaves (136:*), and mknod (not open) of any node, which package
    /// scripts and udev-less inits do. Anything else is denied.
    pub fn standard() -> Vec<DeviceRule> {
        // The nodes of /dev come from the one device table.
        let mut rules: Vec<DeviceRule> = crate::devices::STANDARD
            .iter()
            .map(|d| DeviceRule::char(d.major, d.minor))
            .collect();
        rules.extend([
            DeviceRule::char(5, 1),
            DeviceRule::char(5, 2),
            DeviceRule {
                minor: None,
                ..DeviceRule::char(136, 0)
            },
        ]);
        for kind in [DeviceKind::Char, DeviceKind::Block] {
            rules.push(DeviceRule {
                kind,
                major: None,
                minor: None,
                read: false,
                write: false,
                mknod: true,
            });
        }
        rules
    }

    /// The v1 `devices.allow` spelling: `c 1:3 rwm`, `c 136:* rwm`.
    pub(crate) fn v1_line(&self) -> String {
        let kind = match self.kind {
            DeviceKind::Char => 'c',
            DeviceKind::Block => 'b',
            DeviceKind::All => 'a',
        };
        let num = |n: Option<u32>| n.map_or("*".to_string(), |n| n.to_string());
        let mut access = String::new();
        for (on, c) in [(self.read, 'r'), (self.write, 'w'), (self.mknod, 'm')] {
            if on {
                access.push(c);
            }
        }
        format!("{kind} {}:{} {access}", num(self.major), num(self.minor))
    }
}

impl Cgroup {
    /// Denies every device except `rules`. Call it before the guest starts:
    /// cgroup v1 refuses to deny-all on a group that already has children.
    pub fn restrict_devices(&self, rules: &[DeviceRule]) -> Result<(), CgroupError> {
        if self.v2 {
            let dir = self.dirs[0].path.clone();
            return super::bpf::restrict(&dir, rules);
        }
        let dir = self.dir_of("devices").ok_or_else(|| {
            CgroupError::Unsupported(format!(
                "{}: no devices cgroup on this host (mount the v1 devices hierarchy)",
                self.rel
            ))
        })?;
        write_value(&dir.join("devices.deny"), "a")?;
        for r in rules {
            if !(r.read || r.write || r.mknod) {
                continue;
            }
            write_value(&dir.join("devices.allow"), &r.v1_line())?;
        }
        Ok(())
    }
}
