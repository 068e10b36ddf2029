//! The density rows of `vbuild check`: host settings that cap how many
//! systemd guests can run at once, each with the value it allows and the
//! value to set. The verdict is a pure function of the values read
//! ([`density_findings`]), so it is tested without touching the host.
//!
//! Two kinds of limit: *host-wide* ones (pids, threads, the neighbour
//! table) are shared by every guest; *per-uid* ones (inotify, keys) are
//! charged to the host uid that owns a guest's user namespace. An
//! unprivileged guest is its own host uid, so a per-uid limit caps what one
//! guest may use; guests without a user namespace all run as host root and
//! share it.

use super::{Finding, Level};

/// The guest count `vbuild check` measures the host against (the density
/// goal of the templates issue).
pub const TARGET_GUESTS: u64 = 200;

/// Who shares a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// One pool for the whole host.
    Host,
    /// One pool per host uid: per unprivileged guest, or shared by all
    /// guests that run as host root.
    PerUid,
}

/// One sysctl that caps density and what an idle booted systemd guest
/// takes of it.
#[derive(Debug, Clone, Copy)]
pub struct DensityLimit {
    /// The sysctl name, as `sysctl -w` takes it.
    pub key: &'static str,
    /// What an idle bookworm systemd guest uses of it, with headroom:
    /// bench/density.sh measured 6 inotify instances and 5 processes per
    /// guest at 200 guests, and no keys held by guest uids.
    pub per_guest: u64,
    /// What the host itself keeps using of a host-wide pool.
    pub host_reserve: u64,
    /// Who shares it.
    pub scope: Scope,
    /// What the unit is, for the message.
    pub unit: &'static str,
}

/// The limits `vbuild check` reports, in display order.
pub const LIMITS: [DensityLimit; 8] = [
    DensityLimit {
        key: "fs.inotify.max_user_instances",
        per_guest: 16,
        host_reserve: 128,
        scope: Scope::PerUid,
        unit: "inotify instances",
    },
    DensityLimit {
        key: "fs.inotify.max_user_watches",
        per_guest: 2048,
        host_reserve: 65536,
        scope: Scope::PerUid,
        unit: "inotify watches",
    },
    DensityLimit {
        key: "kernel.keys.maxkeys",
        per_guest: 100,
        host_reserve: 0,
        scope: Scope::PerUid,
        unit: "keys",
    },
    DensityLimit {
        key: "kernel.keys.maxbytes",
        per_guest: 10000,
        host_reserve: 0,
        scope: Scope::PerUid,
        unit: "bytes of keys",
    },
    DensityLimit {
        key: "kernel.pid_max",
        per_guest: 64,
        host_reserve: 4096,
        scope: Scope::Host,
        unit: "pids",
    },
    DensityLimit {
        key: "kernel.threads-max",
        per_guest: 64,
        host_reserve: 4096,
        scope: Scope::Host,
        unit: "threads",
    },
    DensityLimit {
        key: "net.ipv4.neigh.default.gc_thresh3",
        per_guest: 1,
        host_reserve: 128,
        scope: Scope::Host,
        unit: "IPv4 neighbour entries",
    },
    DensityLimit {
        key: "net.ipv6.neigh.default.gc_thresh3",
        per_guest: 2,
        host_reserve: 128,
        scope: Scope::Host,
        unit: "IPv6 neighbour entries",
    },
];

/// How many guests a pool of `value` holds when each takes `per_guest`
/// after the host's `reserve`.
fn guests_in(value: u64, per_guest: u64, reserve: u64) -> u64 {
    value.saturating_sub(reserve) / per_guest.max(1)
}

/// The value that holds `target` guests.
fn value_for(l: &DensityLimit, target: u64) -> u64 {
    l.host_reserve + l.per_guest * target
}

/// One row: `value` is what the host has (`None`: unreadable).
pub fn density_finding(l: &DensityLimit, value: Option<u64>, target: u64) -> Finding {
    let row = |level, detail: String| Finding::new("density", l.key, level, detail);
    let Some(value) = value else {
        return row(
            Level::Warn,
            format!(
                "cannot read /proc/sys/{}: unknown how many guests it allows",
                l.key.replace('.', "/")
            ),
        );
    };
    let need = l.per_guest;
    match l.scope {
        Scope::Host => {
            let fits = guests_in(value, need, l.host_reserve);
            let set = value_for(l, target);
            if fits >= target {
                row(
                    Level::Ok,
                    format!(
                        "{value} here: enough for {fits} guests (each systemd guest takes about {need} {})",
                        l.unit
                    ),
                )
            } else {
                row(
                    Level::Warn,
                    format!(
                        "{value} here: enough for {fits} guests (each systemd guest takes about {need} {}); \
                         for {target} set `sysctl -w {}={set}` (persist in /etc/sysctl.d/)",
                        l.unit, l.key
                    ),
                )
            }
        }
        Scope::PerUid => {
            let shared = guests_in(value, need, l.host_reserve);
            let set = value_for(l, target);
            let privileged = if shared >= target {
                format!(
                    "guests without a user namespace share it as host root: enough for {shared}"
                )
            } else {
                format!(
                    "guests without a user namespace share it as host root: enough for {shared}; \
                     for {target} of those set `sysctl -w {}={set}`",
                    l.key
                )
            };
            if value >= need {
                row(
                    Level::Ok,
                    format!(
                        "{value} here, per host uid: each unprivileged guest has its own \
                         (a systemd guest takes about {need} {}); {privileged}",
                        l.unit
                    ),
                )
            } else {
                row(
                    Level::Warn,
                    format!(
                        "{value} here, per host uid: below the {need} {} one systemd guest takes, \
                         so no guest boots cleanly; set `sysctl -w {}={}` (persist in /etc/sysctl.d/); {privileged}",
                        l.unit,
                        l.key,
                        need * 2
                    ),
                )
            }
        }
    }
}

/// The rows for values looked up with `read` (a sysctl name to its value).
pub fn density_findings(read: impl Fn(&str) -> Option<u64>, target: u64) -> Vec<Finding> {
    LIMITS
        .iter()
        .map(|l| density_finding(l, read(l.key), target))
        .collect()
}

/// A sysctl's value from /proc/sys (the first number: gc_thresh3 and the
/// rest hold one).
fn sysctl(key: &str) -> Option<u64> {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    std::fs::read_to_string(path)
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// This host's density rows against [`TARGET_GUESTS`].
pub fn density() -> Vec<Finding> {
    density_findings(sysctl, TARGET_GUESTS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The values of the 2-core, 24 GB machine the issue measured on.
    fn this_machine(key: &str) -> Option<u64> {
        Some(match key {
            "fs.inotify.max_user_instances" => 128,
            "fs.inotify.max_user_watches" => 192530,
            "kernel.keys.maxkeys" => 200,
            "kernel.keys.maxbytes" => 20000,
            "kernel.pid_max" => 32768,
            "kernel.threads-max" => 192726,
            "net.ipv4.neigh.default.gc_thresh3" => 1024,
            "net.ipv6.neigh.default.gc_thresh3" => 1024,
            _ => return None,
        })
    }

    fn row<'a>(rows: &'a [Finding], key: &str) -> &'a Finding {
        rows.iter().find(|r| r.name == key).unwrap()
    }

    #[test]
    fn every_limit_gets_one_row_in_order() {
        let rows = density_findings(this_machine, 200);
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        let keys: Vec<&str> = LIMITS.iter().map(|l| l.key).collect();
        assert_eq!(names, keys);
        assert!(rows.iter().all(|r| r.area == "density"));
    }

    #[test]
    fn host_wide_pools_say_how_many_guests_fit() {
        let rows = density_findings(this_machine, 200);
        let pid = row(&rows, "kernel.pid_max");
        assert_eq!(pid.level, Level::Ok);
        // (32768 - 4096) / 64 = 448.
        assert!(
            pid.detail.starts_with("32768 here: enough for 448 guests"),
            "{}",
            pid.detail
        );
        let neigh = row(&rows, "net.ipv4.neigh.default.gc_thresh3");
        assert_eq!(neigh.level, Level::Ok);
        assert!(
            neigh.detail.starts_with("1024 here: enough for 896 guests"),
            "{}",
            neigh.detail
        );
    }

    #[test]
    fn a_small_host_wide_pool_warns_with_the_value_to_set() {
        let rows = density_findings(|k| (k == "kernel.pid_max").then_some(8192), 200);
        let pid = row(&rows, "kernel.pid_max");
        assert_eq!(pid.level, Level::Warn);
        // (8192 - 4096) / 64 = 64 guests; 4096 + 64 * 200 = 16896.
        assert!(
            pid.detail.starts_with("8192 here: enough for 64 guests"),
            "{}",
            pid.detail
        );
        assert!(
            pid.detail.contains("`sysctl -w kernel.pid_max=16896`"),
            "{}",
            pid.detail
        );
    }

    #[test]
    fn per_uid_pools_are_per_unprivileged_guest_and_shared_by_root_guests() {
        let rows = density_findings(this_machine, 200);
        let ino = row(&rows, "fs.inotify.max_user_instances");
        assert_eq!(ino.level, Level::Ok);
        // 128 - 128 reserve: no room for guests that all run as host root;
        // 128 + 16 * 200 = 3328 makes room for 200 of them.
        assert!(
            ino.detail.starts_with("128 here, per host uid"),
            "{}",
            ino.detail
        );
        assert!(ino.detail.contains("enough for 0;"), "{}", ino.detail);
        assert!(
            ino.detail
                .contains("`sysctl -w fs.inotify.max_user_instances=3328`"),
            "{}",
            ino.detail
        );
    }

    #[test]
    fn a_per_uid_pool_below_one_guest_warns() {
        let rows = density_findings(|k| (k == "kernel.keys.maxkeys").then_some(50), 200);
        let keys = row(&rows, "kernel.keys.maxkeys");
        assert_eq!(keys.level, Level::Warn);
        assert!(
            keys.detail.contains("below the 100 keys"),
            "{}",
            keys.detail
        );
        assert!(
            keys.detail.contains("`sysctl -w kernel.keys.maxkeys=200`"),
            "{}",
            keys.detail
        );
    }

    #[test]
    fn an_unreadable_value_says_which_file() {
        let rows = density_findings(|_| None, 200);
        let w = row(&rows, "net.ipv6.neigh.default.gc_thresh3");
        assert_eq!(w.level, Level::Warn);
        assert_eq!(
            w.detail,
            "cannot read /proc/sys/net/ipv6/neigh/default/gc_thresh3: unknown how many guests it allows"
        );
    }

    #[test]
    fn this_host_gives_a_row_per_limit() {
        let rows = density();
        assert_eq!(rows.len(), LIMITS.len());
        // Every Linux this runs on has /proc/sys/kernel/pid_max.
        assert!(row(&rows, "kernel.pid_max").detail.contains(" here"));
    }
}
