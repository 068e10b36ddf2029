//! vbuild-runtime: a guest's lifecycle on one kernel — start (a supervisor
//! plus the guest's init as PID 1 in its own context), stop, exec, status,
//! console — and the guest configuration and state directories.
//!
//! It knows guests, not packages: the builder creates rootfs and config,
//! this crate runs them through `vbuild-kernel`.

pub mod config;
pub mod disk;
pub mod limits;
pub mod name;
pub mod net;
pub mod paths;
pub mod size;
