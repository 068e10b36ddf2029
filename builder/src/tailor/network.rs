//! A guest's network configuration files: systemd-networkd's `.network`
//! for eth0 when the guest has networkd, ifupdown's `interfaces` when it
//! has ifup (eth0 in it only when there is no networkd, set with
//! `ip ... replace` since the runtime has already set the addresses), and
//! resolv.conf when name servers are given. Rewritten whole
//! each time, so `vbuild set --ip` can call it again and again.

use super::spec::TailorSpec;
use super::{files, write, NetVars, TailorError};
use std::path::{Path, PathBuf};
use vbuild_kernel::fsroot::Root;

/// Where networkd's binary may be (merged-usr or not).
const NETWORKD: [&str; 2] = [
    "usr/lib/systemd/systemd-networkd",
    "lib/systemd/systemd-networkd",
];
/// Where ifupdown's ifup may be.
const IFUP: [&str; 2] = ["usr/sbin/ifup", "sbin/ifup"];
/// Where unit files live.
const UNIT_DIRS: [&str; 2] = ["usr/lib/systemd/system", "lib/systemd/system"];

/// The guest paths `write_network` may create or replace under `spec`
/// (so `vbuild set` can snapshot and restore them).
pub fn network_paths(spec: &TailorSpec) -> Vec<PathBuf> {
    let n = &spec.network;
    let mut out = vec![PathBuf::from(&n.networkd_file)];
    for [unit, target] in &n.networkd_enable {
        out.push(
            Path::new("etc/systemd/system")
                .join(format!("{target}.wants"))
                .join(unit),
        );
    }
    out.push(PathBuf::from(&n.interfaces_file));
    out.push(PathBuf::from(&n.resolv_file));
    out
}

/// Writes the network configuration of `rootfs` for `net`, following the
/// profile's `[network]` section; returns the guest paths written. Values
/// are checked first; a bad one changes nothing.
pub fn write_network(
    rootfs: &Path,
    spec: &TailorSpec,
    net: &NetVars,
) -> Result<Vec<PathBuf>, TailorError> {
    let root = Root::open(rootfs).map_err(|source| TailorError::Fs {
        step: "open rootfs".into(),
        source,
    })?;
    write_network_in(&root, spec, net)
}

pub(crate) fn write_network_in(
    root: &Root,
    spec: &TailorSpec,
    net: &NetVars,
) -> Result<Vec<PathBuf>, TailorError> {
    write_network_over(root, root, spec, net, true)
}

/// `write_network_in` that looks at `probe` for what the guest has
/// (networkd, ifupdown) and writes into `root`: an overlay guest's layer
/// over its template. `enable` also links networkd's units (the template
/// has those links already).
pub(crate) fn write_network_over(
    probe: &Root,
    root: &Root,
    spec: &TailorSpec,
    net: &NetVars,
    enable: bool,
) -> Result<Vec<PathBuf>, TailorError> {
    net.validate().map_err(TailorError::Value)?;
    let n = &spec.network;
    let has = |paths: &[&str]| paths.iter().any(|p| probe.exists(Path::new(p)));
    let networkd = has(&NETWORKD);
    let ifupdown = has(&IFUP);
    let mut ctx = net.context();
    ctx.eth0_by_ifupdown = !networkd;
    // Render all first so a template error changes nothing.
    let nd = if networkd {
        Some(files::render(&n.networkd_template, &ctx)?)
    } else {
        None
    };
    let ifs = if ifupdown {
        Some(files::render(&n.interfaces_template, &ctx)?)
    } else {
        None
    };
    let resolv = if net.dns.is_empty() {
        None
    } else {
        Some(files::render(&n.resolv_template, &ctx)?)
    };
    let mut written = Vec::new();
    let fs = |what: &str| {
        let what = what.to_string();
        move |source| TailorError::Fs { step: what, source }
    };
    if let Some(text) = nd {
        write(root, &n.networkd_file, text.as_bytes(), 0o644)
            .map_err(fs("network (systemd-networkd)"))?;
        written.push(PathBuf::from(&n.networkd_file));
        for [unit, target] in n.networkd_enable.iter().filter(|_| enable) {
            let Some(dir) = UNIT_DIRS
                .iter()
                .find(|d| root.exists(&Path::new(d).join(unit)))
            else {
                continue;
            };
            let wants = Path::new("etc/systemd/system").join(format!("{target}.wants"));
            root.mkdir_all(&wants, 0o755)
                .map_err(fs("enable networkd"))?;
            root.symlink(&wants.join(unit), &Path::new("/").join(dir).join(unit))
                .map_err(fs("enable networkd"))?;
        }
    }
    if let Some(text) = ifs {
        write(root, &n.interfaces_file, text.as_bytes(), 0o644)
            .map_err(fs("network (ifupdown)"))?;
        written.push(PathBuf::from(&n.interfaces_file));
    }
    if let Some(text) = resolv {
        write(root, &n.resolv_file, text.as_bytes(), 0o644).map_err(fs("resolv.conf"))?;
        written.push(PathBuf::from(&n.resolv_file));
    }
    Ok(written)
}
