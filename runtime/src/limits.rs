//! Per-guest resource limits (memory, swap, CPU, processes, disk, disk I/O),
//! one type for cgroup v1 and v2 hosts alike: parsed and checked from the
//! strings users type (before anything is created), applied through the
//! kernel crate's `Cgroup`, and read back beside current use for status.

use crate::paths::Layout;
use crate::size::{format_size, parse_size};
use serde::{Deserialize, Serialize};
use vbuild_kernel::cgroup::{Cgroup, CgroupError, IoThrottle, MemoryLimit, Usage};
use vbuild_kernel::disk::DiskUsage;

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

/// Applying or parsing a limit failed; names the flag or cgroup file and the fix.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LimitError(pub String);

impl From<CgroupError> for LimitError {
    /// The kernel crate names the group and the value; the flag to change
    /// is named here.
    fn from(e: CgroupError) -> Self {
        let hint = match &e {
            CgroupError::SwapWithoutMemory { .. } => " (e.g. --memory 512M --swap 256M)",
            CgroupError::CpusOutOfRange { .. } => " (try --cpus 0.5)",
            CgroupError::NoSwapAccounting { .. } => {
                " (boot with swapaccount=1, or leave out --swap)"
            }
            _ => "",
        };
        LimitError(format!("{e}{hint}"))
    }
}

/// Words that lift a limit (`vbuild limit mail01 --memory max`).
const UNLIMITED: [&str; 3] = ["max", "none", "unlimited"];

fn is_unlimited(v: &str) -> bool {
    UNLIMITED.contains(&v.trim().to_ascii_lowercase().as_str())
}

/// The smallest CPU share the kernel's CFS bandwidth control takes
/// (1 ms of every 100 ms period).
const MIN_CPUS: f64 = 0.01;
/// Upper bound on `--cpus`, well above any machine vbuild runs on.
const MAX_CPUS: f64 = 4096.0;

/// Reads a byte size flag (`--memory 512M`, `--disk 2G`); `max` lifts it.
/// `--swap 0` means no swap at all.
pub fn parse_bytes(flag: &str, value: &str) -> Result<Option<u64>, LimitError> {
    if is_unlimited(value) {
        return Ok(None);
    }
    if flag == "--swap" && value.trim() == "0" {
        return Ok(Some(0));
    }
    let example = match flag {
        "--disk" => "2G",
        "--swap" => "256M",
        _ => "512M",
    };
    parse_size(flag, value).map(Some).map_err(|_| {
        LimitError(format!(
            "{flag} {value:?} is not a size (try {flag} {example}; units K, M, G, T, or max for no limit)"
        ))
    })
}

/// Reads a bandwidth flag (`--io-read 50M`, `50M/s` too); `max` lifts it.
pub fn parse_rate(flag: &str, value: &str) -> Result<Option<u64>, LimitError> {
    let v = value.trim();
    let v = v.strip_suffix("/s").unwrap_or(v);
    if is_unlimited(v) {
        return Ok(None);
    }
    parse_size(flag, v).map(Some).map_err(|_| {
        LimitError(format!(
            "{flag} {value:?} is not a rate in bytes per second (try {flag} 20M, or max for no limit)"
        ))
    })
}

/// Reads `--cpus` (a positive number of CPUs, fractions allowed).
pub fn parse_cpus(value: &str) -> Result<Option<f64>, LimitError> {
    if is_unlimited(value) {
        return Ok(None);
    }
    let bad = |why: &str| {
        LimitError(format!(
            "--cpus {value:?} {why} (try --cpus 0.5 for half a core, --cpus 2 for two)"
        ))
    };
    let n: f64 = value.trim().parse().map_err(|_| bad("is not a number"))?;
    if !n.is_finite() || n <= 0.0 {
        return Err(bad("must be more than 0"));
    }
    if n < MIN_CPUS {
        return Err(bad("is below the kernel's minimum of 0.01"));
    }
    if n > MAX_CPUS {
        return Err(bad("is more CPUs than any machine has"));
    }
    Ok(Some(n))
}

/// Reads a count flag (`--pids 500`, `--io-read-iops 100`): a whole number
/// of at least 1; `max` lifts it.
pub fn parse_count(flag: &str, value: &str) -> Result<Option<u64>, LimitError> {
    if is_unlimited(value) {
        return Ok(None);
    }
    let example = if flag == "--pids" { "500" } else { "100" };
    match value.trim().parse::<u64>() {
        Ok(0) => Err(LimitError(format!(
            "{flag} 0 would allow nothing at all (try {flag} {example}, or max for no limit)"
        ))),
        Ok(n) => Ok(Some(n)),
        Err(_) => Err(LimitError(format!(
            "{flag} {value:?} is not a whole number (try {flag} {example}, or max for no limit)"
        ))),
    }
}

impl Limits {
    /// True when any disk I/O throttle is set.
    pub fn has_io(&self) -> bool {
        self.io_read_bps.is_some()
            || self.io_write_bps.is_some()
            || self.io_read_iops.is_some()
            || self.io_write_iops.is_some()
    }

    /// Checks combinations the single flags cannot: swap needs memory.
    pub fn validate(&self) -> Result<(), LimitError> {
        if let Some(m) = self.memory.filter(|m| *m < MIN_MEMORY) {
            return Err(LimitError(format!(
                "--memory {}: a guest needs at least {} for its init to start (try --memory 512M)",
                format_size(m),
                format_size(MIN_MEMORY)
            )));
        }
        if let Some(d) = self.disk.filter(|d| *d < MIN_DISK) {
            return Err(LimitError(format!(
                "--disk {}: a guest's disk needs at least {} (its filesystem and the files made at creation; \
                 a --copy guest needs room for its whole tree: try --disk 1G)",
                format_size(d),
                format_size(MIN_DISK)
            )));
        }
        if self.swap.is_some() && self.memory.is_none() {
            return Err(LimitError(
                "--swap needs --memory too: swap is allowed on top of a memory limit (try --memory 512M --swap 256M)".into(),
            ));
        }
        Ok(())
    }
}

/// The smallest memory limit accepted: below it init (systemd needs some
/// 20 MB to start) is OOM-killed before it writes a line to the console.
pub const MIN_MEMORY: u64 = 32 << 20;

/// The smallest disk limit accepted, for any backend: a loop image's
/// filesystem needs 8M of its own, and an overlay guest's layer holds its
/// per-guest files and what the guest writes at first boot.
pub const MIN_DISK: u64 = 16 << 20;

/// Applies memory, swap, CPU and process limits to a guest's cgroup (v1 or
/// v2). Every field is written, `None` as "unlimited", so applying a changed
/// `Limits` also lifts removed limits. I/O throttles need the guest's block
/// device: see `apply_io`, or `apply_guest` for both.
pub fn apply(cg: &Cgroup, limits: &Limits) -> Result<(), LimitError> {
    limits.validate()?;
    check_controllers(cg, limits)?;
    let mem = MemoryLimit {
        max: limits.memory,
        swap: limits.swap,
    };
    skip_absent(cg.set_memory(&mem), limits.memory.is_none())?;
    skip_absent(cg.set_cpus(limits.cpus), limits.cpus.is_none())?;
    skip_absent(cg.set_pids_max(limits.pids), limits.pids.is_none())?;
    Ok(())
}

/// Refuses limits whose controller the host lacks, before anything is written.
fn check_controllers(cg: &Cgroup, limits: &Limits) -> Result<(), LimitError> {
    let wanted = [
        ("memory", "--memory", limits.memory.is_some()),
        ("cpu", "--cpus", limits.cpus.is_some()),
        ("pids", "--pids", limits.pids.is_some()),
        ("io", "--io-read/--io-write", limits.has_io()),
    ];
    for (controller, flag, set) in wanted {
        if set && !cg.supports(controller) {
            return Err(LimitError(format!(
                "{}: {flag} needs the {controller} cgroup controller, which this host does not offer (enable it, or leave out {flag})",
                cg.rel()
            )));
        }
    }
    Ok(())
}

/// A missing controller only matters when a limit was asked of it.
fn skip_absent(r: Result<(), CgroupError>, unlimited: bool) -> Result<(), LimitError> {
    match r {
        Err(CgroupError::Unsupported(_)) if unlimited => Ok(()),
        Err(e) => Err(e.into()),
        Ok(()) => Ok(()),
    }
}

/// Applies the I/O throttles on each of `devices` (whole disks, as
/// `vbuild_kernel::disk::backing_devices` finds them).
pub fn apply_io(cg: &Cgroup, limits: &Limits, devices: &[(u32, u32)]) -> Result<(), LimitError> {
    check_controllers(cg, limits)?;
    for &(major, minor) in devices {
        let t = IoThrottle {
            major,
            minor,
            read_bps: limits.io_read_bps,
            write_bps: limits.io_write_bps,
            read_iops: limits.io_read_iops,
            write_iops: limits.io_write_iops,
        };
        skip_absent(cg.set_io(&t), !limits.has_io())?;
    }
    Ok(())
}

/// Applies everything to guest `name`'s cgroup: `apply`, then the I/O
/// throttles on the device backing its rootfs (found only when needed, so a
/// guest on tmpfs without I/O limits starts fine).
pub fn apply_guest(
    cg: &Cgroup,
    limits: &Limits,
    layout: &Layout,
    name: &str,
) -> Result<(), LimitError> {
    apply(cg, limits)?;
    match crate::disk::io_devices(layout, name) {
        Ok(devs) => apply_io(cg, limits, &devs),
        Err(e) if limits.has_io() => Err(LimitError(format!("{name}: {e}"))),
        Err(_) => Ok(()),
    }
}

/// A guest's current use, from its cgroup and disk backend.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GuestUsage {
    /// Cgroup counters (none when the guest is not running).
    pub cgroup: Option<Usage>,
    /// Disk use and limit (none without `--disk`).
    pub disk: Option<DiskUsage>,
}

/// Reads a guest's use cheaply: cgroup counter files and the disk
/// backend's counters (statfs, qgroup, quota), no filesystem walk.
pub fn usage(cg: Option<&Cgroup>, layout: &Layout, name: &str) -> GuestUsage {
    GuestUsage {
        cgroup: cg.and_then(|c| c.usage().ok()),
        disk: crate::disk::usage(layout, name).ok().flatten(),
    }
}

/// One line of `vbuild status`: what, current use, limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageLine {
    /// `memory`, `cpu`, `pids`, `disk`, `io read`, `io write`.
    pub what: &'static str,
    /// Current use, formatted (`-` when unknown).
    pub used: String,
    /// The limit, formatted (`unlimited` when none).
    pub limit: String,
}

/// Each limit beside current use, formatted for `vbuild status`.
pub fn report(limits: &Limits, u: &GuestUsage) -> Vec<UsageLine> {
    let cg = u.cgroup.clone().unwrap_or_default();
    let size = |v: Option<u64>| v.map_or("-".to_string(), format_size);
    let lim = |v: Option<u64>| v.map_or("unlimited".to_string(), format_size);
    let rate = |v: Option<u64>, ops: Option<u64>| match (v, ops) {
        (None, None) => "unlimited".to_string(),
        (b, o) => {
            let mut parts = Vec::new();
            if let Some(b) = b {
                parts.push(format!("{}/s", format_size(b)));
            }
            if let Some(o) = o {
                parts.push(format!("{o} IOPS"));
            }
            parts.join(", ")
        }
    };
    // I/O counters add up since the guest started; their limits are rates.
    let total = |v: Option<u64>| {
        v.map_or("-".to_string(), |b| {
            format!("{} since start", format_size(b))
        })
    };
    let mut memory_limit = lim(limits.memory);
    if let Some(s) = limits.swap {
        memory_limit.push_str(&format!(" + {} swap", format_size(s)));
    }
    vec![
        UsageLine {
            what: "memory",
            used: size(cg.memory),
            limit: memory_limit,
        },
        UsageLine {
            what: "cpu",
            used: cg
                .cpu
                .map_or("-".to_string(), |d| format!("{:.1}s", d.as_secs_f64())),
            limit: limits
                .cpus
                .map_or("unlimited".to_string(), |c| format!("{c} CPUs")),
        },
        UsageLine {
            what: "pids",
            used: cg.pids.map_or("-".to_string(), |p| p.to_string()),
            limit: limits
                .pids
                .map_or("unlimited".to_string(), |p| p.to_string()),
        },
        UsageLine {
            what: "disk",
            used: size(u.disk.map(|d| d.used)),
            limit: lim(u.disk.map(|d| d.limit).or(limits.disk)),
        },
        UsageLine {
            what: "io read",
            used: total(cg.io_read),
            limit: rate(limits.io_read_bps, limits.io_read_iops),
        },
        UsageLine {
            what: "io write",
            used: total(cg.io_write),
            limit: rate(limits.io_write_bps, limits.io_write_iops),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_rates_cpus_and_counts_parse() {
        assert_eq!(parse_bytes("--memory", "512M").unwrap(), Some(512 << 20));
        assert_eq!(parse_bytes("--memory", "max").unwrap(), None);
        assert_eq!(parse_bytes("--swap", "0").unwrap(), Some(0));
        assert_eq!(parse_rate("--io-read", "50M/s").unwrap(), Some(50 << 20));
        assert_eq!(parse_cpus("1.5").unwrap(), Some(1.5));
        assert_eq!(parse_cpus("unlimited").unwrap(), None);
        assert_eq!(parse_count("--pids", "500").unwrap(), Some(500));
    }

    #[test]
    fn nonsense_is_refused_naming_the_flag_and_an_example() {
        let cases: [(Result<(), LimitError>, &str); 8] = [
            (parse_bytes("--memory", "12Q").map(drop), "--memory 512M"),
            (parse_bytes("--memory", "0").map(drop), "--memory 512M"),
            (parse_bytes("--disk", "-1G").map(drop), "--disk 2G"),
            (parse_cpus("-1").map(drop), "--cpus 0.5"),
            (parse_cpus("0").map(drop), "--cpus 0.5"),
            (parse_cpus("abc").map(drop), "--cpus 0.5"),
            (parse_count("--pids", "0").map(drop), "--pids 500"),
            (parse_rate("--io-write", "fast").map(drop), "--io-write 20M"),
        ];
        for (r, example) in cases {
            let e = r.unwrap_err().to_string();
            assert!(e.contains(example), "{e}");
            assert!(!e.contains('\n'), "{e}");
        }
        assert!(parse_count("--pids", "1.5").is_err());
        assert!(parse_cpus("0.001")
            .unwrap_err()
            .to_string()
            .contains("0.01"));
    }

    #[test]
    fn swap_needs_memory() {
        let l = Limits {
            swap: Some(1 << 20),
            ..Default::default()
        };
        assert!(l
            .validate()
            .unwrap_err()
            .to_string()
            .contains("--memory 512M --swap 256M"));
    }

    #[test]
    fn report_puts_use_beside_limits() {
        let l = Limits {
            memory: Some(512 << 20),
            swap: Some(256 << 20),
            cpus: Some(0.5),
            io_write_bps: Some(20 << 20),
            ..Default::default()
        };
        let u = GuestUsage {
            cgroup: Some(Usage {
                memory: Some(100 << 20),
                cpu: Some(std::time::Duration::from_millis(2500)),
                pids: Some(7),
                ..Default::default()
            }),
            disk: Some(DiskUsage {
                used: 300 << 20,
                limit: 2 << 30,
            }),
        };
        let r = report(&l, &u);
        let line = |w: &str| r.iter().find(|x| x.what == w).unwrap().clone();
        assert_eq!(line("memory").used, "100M");
        assert_eq!(line("memory").limit, "512M + 256M swap");
        assert_eq!(line("cpu").used, "2.5s");
        assert_eq!(line("cpu").limit, "0.5 CPUs");
        assert_eq!(line("pids").limit, "unlimited");
        assert_eq!(line("disk").used, "300M");
        assert_eq!(line("disk").limit, "2G");
        assert_eq!(line("io write").limit, "20M/s");
        assert_eq!(line("io read").used, "-");
        let u = GuestUsage {
            cgroup: Some(Usage {
                io_write: Some(12 << 20),
                ..Default::default()
            }),
            disk: None,
        };
        let r = report(&l, &u);
        let w = r.iter().find(|x| x.what == "io write").unwrap();
        assert_eq!(
            (w.used.as_str(), w.limit.as_str()),
            ("12M since start", "20M/s")
        );
    }

    #[test]
    fn memory_too_small_for_init_is_refused_naming_the_minimum() {
        let l = Limits {
            memory: Some(1024),
            ..Default::default()
        };
        assert_eq!(
            l.validate().unwrap_err().to_string(),
            "--memory 1K: a guest needs at least 32M for its init to start (try --memory 512M)"
        );
        let ok = Limits {
            memory: Some(MIN_MEMORY),
            ..Default::default()
        };
        assert!(ok.validate().is_ok());
    }

    #[test]
    fn a_disk_too_small_for_any_guest_is_refused_before_anything_is_made() {
        let l = Limits {
            disk: Some(1024),
            ..Default::default()
        };
        let e = l.validate().unwrap_err().to_string();
        assert!(
            e.starts_with("--disk 1K: a guest's disk needs at least 16M"),
            "{e}"
        );
        assert!(e.contains("try --disk 1G"), "{e}");
        let ok = Limits {
            disk: Some(MIN_DISK),
            ..Default::default()
        };
        assert!(ok.validate().is_ok());
    }

    #[test]
    fn kernel_errors_get_the_flag_to_change_here() {
        let e = LimitError::from(CgroupError::CpusOutOfRange {
            group: "vbuild/g".into(),
            cpus: 0.001,
            min: 0.01,
        })
        .to_string();
        assert!(
            e.contains("vbuild/g") && e.contains("0.001") && e.contains("try --cpus 0.5"),
            "{e}"
        );
        let e = LimitError::from(CgroupError::SwapWithoutMemory {
            group: "vbuild/g".into(),
        })
        .to_string();
        assert!(e.contains("--memory 512M --swap 256M"), "{e}");
    }
}
