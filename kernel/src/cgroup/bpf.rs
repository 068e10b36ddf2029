//! cgroup v2 device filter: an eBPF BPF_PROG_TYPE_CGROUP_DEVICE program
//! built from the allowlist and attached to the group. (being written)

use super::{CgroupError, DeviceRule};
use std::path::Path;

/// Attaches a program allowing only `rules` to the cgroup2 directory `dir`.
pub(crate) fn restrict(dir: &Path, _rules: &[DeviceRule]) -> Result<(), CgroupError> {
    Err(CgroupError::Unsupported(format!(
        "{}: the cgroup v2 device filter is not implemented yet",
        dir.display()
    )))
}
