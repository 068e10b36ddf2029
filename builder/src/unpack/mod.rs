//! Generic unpacking into a rootfs: the decompressors every package format
//! uses, and the root-confined writer that takes archive entries (from a
//! .deb's data.tar or an .rpm's cpio payload) and guarantees that `..`,
//! absolute names, symlinks and hardlinks never reach outside the root.

pub(crate) mod compress;
pub(crate) mod safe;

pub use compress::Compression;

pub(crate) use compress::encode;
