//! Debian: InRelease -> Packages -> .deb, verified end to end; resolution;
//! installation into a rootfs with dpkg's database and maintainer scripts.

pub mod aptstate;
pub mod debconf;
pub mod dpkgdb;
pub mod fetch;
pub mod index;
pub mod install;
pub mod keyring;
pub mod maintscripts;
pub mod release;
pub mod resolve;
