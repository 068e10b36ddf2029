//! vbuild-kernel: the kernel controls a guest context is made of —
//! namespaces, mounts and pivot_root, cgroups (v1 and v2 behind one API),
//! netlink links/addresses/routes, disk limits, capabilities, seccomp — each
//! behind small functions so the logic above them can be unit tested, and a
//! host probe for `vbuild check`. It knows nothing of guests or packages.

pub mod caps;
pub mod cgroup;
pub mod devices;
pub mod disk;
pub mod fdpass;
pub mod fsroot;
pub mod idmap;
pub mod mount;
pub mod net;
pub mod ns;
pub mod overlay;
pub mod probe;
pub mod process;
pub mod pty;
pub mod rootfs;
pub mod seccomp;
pub mod signal;
#[cfg(target_arch = "x86_64")]
mod syscall_table;
pub mod tree;
