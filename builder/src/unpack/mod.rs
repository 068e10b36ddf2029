//! Generic unpacking into a rootfs: the decompressors every package format
//! uses, and the root-confined writer that takes archive entries (from a
//! .deb's data.tar or an .rpm's cpio payload) and guarantees that `..`,
//! absolute names, symlinks and hardlinks never reach outside the root.

pub(crate) mod compress;
pub mod cpio;
pub mod safe;
pub mod tar;

pub use compress::Compression;
pub use cpio::CpioReader;
pub use safe::{extract, Entry, EntryError, EntryKind, EntryReader, ExtractOpts, Extracted};
pub use tar::TarReader;

use std::path::Path;
use vbuild_kernel::fsroot::Root;

/// Extracts every entry of `entries` into the directory `rootfs`, confined
/// to it, with no conffiles and no digests (the simple case; package
/// formats call [`extract`] with their own options).
pub fn extract_into(rootfs: &Path, entries: &mut dyn EntryReader) -> Result<Extracted, EntryError> {
    let root = Root::open(rootfs).map_err(|e| EntryError::new(rootfs, e))?;
    let none = std::collections::HashSet::new();
    extract(
        &root,
        entries,
        &ExtractOpts {
            conffiles: &none,
            compute_md5: false,
            devices: false,
        },
    )
}

pub use compress::encode;
