//! Which init a Debian rootfs boots: the generic detection
//! (`tailor::detect_init`) asking dpkg's database whether sysvinit-core
//! owns /sbin/init.

use std::path::Path;
use vbuild_kernel::fsroot::Root;
use vbuild_runtime::config::InitConfig;

/// Whether dpkg's file list of sysvinit-core names /sbin/init.
pub fn owned_by_sysvinit(root: &Root) -> bool {
    root.read(Path::new("var/lib/dpkg/info/sysvinit-core.list"))
        .map(|l| {
            String::from_utf8_lossy(&l)
                .lines()
                .any(|p| p == "/sbin/init" || p == "/usr/sbin/init")
        })
        .unwrap_or(false)
}

/// The init of a Debian rootfs.
pub fn detect_init(rootfs: &Path) -> InitConfig {
    crate::tailor::detect_init(rootfs, &owned_by_sysvinit)
}
