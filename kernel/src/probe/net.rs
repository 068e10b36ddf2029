//! The networking rows of `vbuild check`: the drivers a bridged guest
//! needs (bridge, veth, nf_tables for NAT, anti-spoofing and published
//! ports) and IPv4 forwarding. Read from /sys and /proc only: the probe
//! creates nothing.

use super::{Finding, Level};
use std::path::Path;

/// Whether kernel module `name` is loaded, or can be loaded on first use
/// (built for this kernel), or neither (`None`).
fn module(name: &str, dir: &str) -> Option<&'static str> {
    if Path::new("/sys/module").join(name).exists() {
        return Some("loaded");
    }
    // Without module support everything the kernel has is compiled in,
    // and a compiled-in driver without parameters has no /sys/module entry.
    if !Path::new("/proc/modules").exists() {
        return Some("compiled in, or the first bridged start says it is missing: this kernel loads no modules");
    }
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    let base = Path::new("/lib/modules").join(release.trim());
    let built_in = std::fs::read_to_string(base.join("modules.builtin")).unwrap_or_default();
    let ko = format!("/{name}.ko");
    if built_in.lines().any(|l| l.ends_with(&ko)) {
        return Some("built in");
    }
    let list = std::fs::read_to_string(base.join("modules.dep")).unwrap_or_default();
    let wanted = format!("kernel/{dir}/{name}.ko");
    list.lines()
        .any(|l| l.starts_with(&wanted))
        .then_some("loaded on first use")
}

fn driver(name: &str, dir: &str, what: &str, without: &str) -> Finding {
    match module(name, dir) {
        Some(how) => Finding::new("network", name, Level::Ok, format!("{what} ({how})")),
        None => Finding::new(
            "network",
            name,
            Level::Missing,
            format!("no {name} driver for this kernel: {without}"),
        ),
    }
}

/// IPv4 forwarding as `/proc/sys/net/ipv4/ip_forward` says it.
fn forwarding() -> Finding {
    let f = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap_or_default();
    let detail = match f.trim() {
        "1" => "on: NAT'd guests reach beyond the host".to_string(),
        "0" => "off now; the default network and `net create --nat` turn it on".to_string(),
        other => format!("cannot read /proc/sys/net/ipv4/ip_forward ({other:?})"),
    };
    Finding::new("network", "ip forwarding", Level::Ok, detail)
}

/// The networking findings.
pub fn network() -> Vec<Finding> {
    let bridged = "--net-mode bridge (the default) cannot work; use --net-mode none or host";
    vec![
        driver(
            "bridge",
            "net/bridge",
            "host bridges for guest networks",
            bridged,
        ),
        driver(
            "veth",
            "drivers/net",
            "a guest's link to its bridge",
            bridged,
        ),
        driver(
            "nf_tables",
            "net/netfilter",
            "NAT, anti-spoofing and published ports",
            "NAT, address checks and --publish cannot work",
        ),
        forwarding(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_host_has_the_drivers_bridged_guests_use() {
        let rows = network();
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["bridge", "veth", "nf_tables", "ip forwarding"]);
        // The network tests of this repository run here, so all three exist.
        for r in &rows[..3] {
            assert_eq!(r.level, Level::Ok, "{r:?}");
        }
    }
}
