//! The tar entry reader (a .deb's data.tar): turns the stream into the
//! root-confined writer's entries, with pax `SCHILY.xattr.*` records as
//! extended attributes.

use super::safe::{Entry, EntryError, EntryKind, EntryReader};
use std::ffi::CString;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Reads a (decompressed) tar stream entry by entry.
pub struct TarReader<R: Read> {
    archive: tar::Archive<R>,
}

impl<R: Read> TarReader<R> {
    /// A reader over a tar stream.
    pub fn new(r: R) -> TarReader<R> {
        TarReader {
            archive: tar::Archive::new(r),
        }
    }
}

/// Extended attributes from pax `SCHILY.xattr.NAME` records.
fn read_xattrs<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<Vec<(CString, Vec<u8>)>> {
    let mut out = Vec::new();
    if let Some(ext) = entry.pax_extensions()? {
        for e in ext {
            let e = e?;
            if let Some(name) = e.key_bytes().strip_prefix(b"SCHILY.xattr.") {
                let name = CString::new(name)
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "NUL in xattr name"))?;
                out.push((name, e.value_bytes().to_vec()));
            }
        }
    }
    Ok(out)
}

impl<R: Read> EntryReader for TarReader<R> {
    fn for_each(
        &mut self,
        f: &mut dyn FnMut(Entry<'_>) -> Result<(), EntryError>,
    ) -> Result<(), EntryError> {
        let entries = self
            .archive
            .entries()
            .map_err(|e| EntryError::new(Path::new("data.tar"), e))?;
        let mut last = PathBuf::from("data.tar");
        for entry in entries {
            let mut entry =
                entry.map_err(|e| EntryError::new(&last, format!("after this entry: {e}")))?;
            let raw = entry
                .path()
                .map_err(|e| EntryError::new(&last, format!("next entry's name: {e}")))?
                .into_owned();
            last = raw.clone();
            let etype = entry.header().entry_type();
            if etype.is_pax_global_extensions() {
                continue;
            }
            let fail = |e: &dyn std::fmt::Display| EntryError::new(&raw, e);
            let h = entry.header();
            let mode = h.mode().map_err(|e| fail(&e))?;
            let uid = h.uid().map_err(|e| fail(&e))? as u32;
            let gid = h.gid().map_err(|e| fail(&e))? as u32;
            let mtime = h.mtime().map_err(|e| fail(&e))? as i64;
            let rdev = (
                h.device_major().ok().flatten().unwrap_or(0),
                h.device_minor().ok().flatten().unwrap_or(0),
            );
            let xattrs = read_xattrs(&mut entry).map_err(|e| fail(&e))?;
            let link = |entry: &tar::Entry<'_, R>, what: &str| -> Result<PathBuf, EntryError> {
                Ok(entry
                    .link_name()
                    .map_err(|e| fail(&e))?
                    .ok_or_else(|| fail(&format!("{what} without a target")))?
                    .into_owned())
            };
            let kind = match etype {
                tar::EntryType::Directory => EntryKind::Dir,
                tar::EntryType::Regular | tar::EntryType::Continuous => EntryKind::File,
                tar::EntryType::Symlink => EntryKind::Symlink(link(&entry, "symlink")?),
                tar::EntryType::Link => EntryKind::Hardlink(link(&entry, "hardlink")?),
                tar::EntryType::Fifo => EntryKind::Fifo,
                tar::EntryType::Char => EntryKind::CharDevice,
                tar::EntryType::Block => EntryKind::BlockDevice,
                other => return Err(fail(&format!("unsupported tar entry type {other:?}"))),
            };
            let is_file = kind == EntryKind::File;
            let mut empty = io::empty();
            f(Entry {
                path: raw.clone(),
                kind,
                mode,
                uid,
                gid,
                mtime,
                xattrs,
                rdev,
                data: if is_file { &mut entry } else { &mut empty },
            })?;
        }
        Ok(())
    }
}
