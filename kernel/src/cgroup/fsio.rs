//! Reading and writing cgroup control files, every error naming the file.

use super::{io_err, CgroupError};
use std::io::Write;
use std::path::Path;

/// Writes `value` to a control file in one write(2), as the kernel wants.
/// Missing files are created so fake trees in tests behave like cgroupfs.
pub(crate) fn write_value(path: &Path, value: &str) -> Result<(), CgroupError> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(io_err(path))?;
    f.write_all(value.as_bytes()).map_err(io_err(path))
}

/// Reads a control file.
pub(crate) fn read_to_string(path: &Path) -> Result<String, CgroupError> {
    std::fs::read_to_string(path).map_err(io_err(path))
}

/// Reads a control file holding one number (`max` is `None`).
pub(crate) fn read_u64(path: &Path) -> Result<Option<u64>, CgroupError> {
    let s = read_to_string(path)?;
    let s = s.trim();
    if s == "max" {
        return Ok(None);
    }
    s.parse().map(Some).map_err(|_| CgroupError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not a number: {s:?}"),
        ),
    })
}

/// The whitespace-separated words of a file; a missing file has none.
pub(crate) fn read_words(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}
