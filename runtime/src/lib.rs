//! vbuild-runtime: a guest's lifecycle on one kernel — start (a supervisor
//! plus the guest's init as PID 1 in its own context), stop, exec, status,
//! console — and the guest configuration and state directories.
//!
//! It knows guests, not packages: the builder creates rootfs and config,
//! this crate runs them through `vbuild-kernel`.

pub mod autostart;
pub(crate) mod boot;
pub mod claim;
pub mod config;
pub mod console;
pub mod copy;
pub mod delete;
pub mod disk;
pub mod error;
pub mod exec;
pub mod filesnap;
pub mod fsutil;
pub mod host;
pub mod idrange;
pub mod launch;
pub mod layer;
pub mod limits;
pub mod logs;
pub mod name;
pub mod net;
pub mod oneshot;
pub mod paths;
pub mod relaunch;
pub mod restart;
pub mod security;
pub mod set_limits;
pub mod set_net;
pub mod size;
pub mod start;
pub mod state;
pub mod status;
pub mod stop;
pub mod store;
pub mod supervisor;
mod sysv_ready;
pub mod tmpfs;
pub mod txn;
