//! vbuild-builder: turns a distribution's own repository into a ready guest
//! — fetch and verify indices and packages, resolve, unpack safely, configure
//! inside a context, tailor for containers — and the `vbuild` CLI on top.

pub mod build;
pub mod catalog;
pub mod context;
pub mod customize;
pub mod distro;
pub mod guests;
pub mod hooks;
pub mod image;
pub mod progress;
pub mod recipe;
pub mod tailor;
pub mod unpack;
