//! Per-guest resource limits (memory, swap, CPU, processes, disk, disk I/O),
//! one type for cgroup v1 and v2 hosts alike.

use serde::{Deserialize, Serialize};

/// The limits of one guest; `None` means unlimited.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Memory limit in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<u64>,
    /// Swap allowed on top of memory, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap: Option<u64>,
    /// CPU bandwidth in CPUs (1.5 = one and a half cores).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    /// Maximum number of processes and threads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<u64>,
    /// Disk space for the guest's writable layer, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<u64>,
    /// Read bandwidth in bytes per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io_read_bps: Option<u64>,
    /// Write bandwidth in bytes per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io_write_bps: Option<u64>,
    /// Read operations per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io_read_iops: Option<u64>,
    /// Write operations per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io_write_iops: Option<u64>,
}

/// Applying a limit failed; names the limit and the cgroup file.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LimitError(pub String);

/// Applies `limits` to a guest's cgroup (v1 or v2). (STUB: being written.)
pub fn apply(_cg: &vbuild_kernel::cgroup::Cgroup, _limits: &Limits) -> Result<(), LimitError> {
    Ok(())
}
