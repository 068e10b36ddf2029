//! The one table of device nodes every context's /dev gets: guests,
//! one-shot runs and the build's script context alike. The device cgroup
//! (v1) or eBPF device program (v2) allows the same set
//! (`cgroup::DeviceRule::standard`).

use crate::rootfs::DevNode;

/// The standard character devices (besides /dev/console, a pty, and
/// /dev/ptmx + /dev/pts from the context's own devpts).
pub const STANDARD: [DevNode; 6] = [
    DevNode {
        name: "null",
        major: 1,
        minor: 3,
    },
    DevNode {
        name: "zero",
        major: 1,
        minor: 5,
    },
    DevNode {
        name: "full",
        major: 1,
        minor: 7,
    },
    DevNode {
        name: "random",
        major: 1,
        minor: 8,
    },
    DevNode {
        name: "urandom",
        major: 1,
        minor: 9,
    },
    DevNode {
        name: "tty",
        major: 5,
        minor: 0,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_device_cgroup_allows_every_standard_node() {
        let rules = crate::cgroup::DeviceRule::standard();
        for d in STANDARD {
            assert!(
                rules
                    .iter()
                    .any(|r| r.kind == crate::cgroup::DeviceKind::Char
                        && r.major == Some(d.major)
                        && r.minor == Some(d.minor)
                        && r.read
                        && r.write),
                "/dev/{} ({}:{}) is not allowed by the standard device rules",
                d.name,
                d.major,
                d.minor
            );
        }
    }
}
