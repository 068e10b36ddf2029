//! Resource limits written into a group's control files: memory and swap,
//! CPU bandwidth, process count and block I/O throttling, with the v1 and v2
//! spellings of each kept side by side so both give the same result.

use super::fsio::{read_to_string, read_u64, write_value};
use super::{Cgroup, CgroupError};
use std::path::Path;

/// CFS period vbuild uses for CPU bandwidth (100 ms, the kernel default).
const CPU_PERIOD_US: u64 = 100_000;
/// The smallest quota the kernel accepts.
const CPU_MIN_QUOTA_US: u64 = 1_000;

/// Memory and swap for a group; `None` means unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryLimit {
    /// RAM in bytes (v1 memory.limit_in_bytes, v2 memory.max).
    pub max: Option<u64>,
    /// Swap in bytes allowed on top of `max` (v1 memsw = max + swap, v2 memory.swap.max).
    pub swap: Option<u64>,
}

/// Memory settings beyond the limit; `None` (or `false`) leaves a setting
/// as the kernel has it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryExtras {
    /// Soft limit in bytes reclaimed towards under pressure (v1
    /// memory.soft_limit_in_bytes, v2 memory.low).
    pub reservation: Option<u64>,
    /// Swap tendency 0 to 100 (v1 memory.swappiness; v2 has none).
    pub swappiness: Option<u64>,
    /// Pause instead of OOM-killing when over the limit (v1
    /// memory.oom_control; v2 has none).
    pub disable_oom_killer: bool,
    /// Kernel TCP buffer limit in bytes (v1 memory.kmem.tcp.limit_in_bytes;
    /// v2 accounts TCP memory in memory.max and has no separate limit).
    pub kernel_tcp: Option<u64>,
}

/// Throttling on one block device; `None` removes that throttle.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IoThrottle {
    /// Device major number (a whole disk or loop device).
    pub major: u32,
    /// Device minor number.
    pub minor: u32,
    /// Read bytes per second.
    pub read_bps: Option<u64>,
    /// Write bytes per second.
    pub write_bps: Option<u64>,
    /// Read operations per second.
    pub read_iops: Option<u64>,
    /// Write operations per second.
    pub write_iops: Option<u64>,
}

fn need<'a>(cg: &'a Cgroup, controller: &str) -> Result<&'a Path, CgroupError> {
    let dir = cg
        .dir_of(controller)
        .filter(|d| !cg.v2 || v2_enabled(d, controller));
    dir.ok_or_else(|| {
        CgroupError::Unsupported(format!(
            "{}: no {controller} controller on this host (mount the {controller} cgroup hierarchy or enable it in cgroup v2)",
            cg.rel
        ))
    })
}

/// On v2 a group has a controller's files when its parent enabled the
/// controller in `cgroup.subtree_control`.
fn v2_enabled(dir: &Path, controller: &str) -> bool {
    dir.parent().is_some_and(|p| {
        super::fsio::read_words(&p.join("cgroup.subtree_control"))
            .iter()
            .any(|w| w.trim_start_matches('+') == controller)
    })
}

fn v1_num(v: Option<u64>) -> String {
    v.map_or("-1".to_string(), |v| v.to_string())
}

fn v2_num(v: Option<u64>) -> String {
    v.map_or("max".to_string(), |v| v.to_string())
}

impl Cgroup {
    /// True when the group can be limited by `controller` (`memory`,
    /// `cpu`, `pids`, or `io` — blkio on v1), so callers can refuse a
    /// whole set of limits before writing any of them.
    pub fn supports(&self, controller: &str) -> bool {
        let c = if controller == "io" && !self.v2 {
            "blkio"
        } else {
            controller
        };
        need(self, c).is_ok()
    }

    /// Sets the memory and swap limits. A swap limit needs a memory limit
    /// (v1 can only limit memory+swap together) and swap accounting.
    pub fn set_memory(&self, m: &MemoryLimit) -> Result<(), CgroupError> {
        if m.swap.is_some() && m.max.is_none() {
            return Err(CgroupError::SwapWithoutMemory {
                group: self.rel.clone(),
            });
        }
        let dir = need(self, "memory")?;
        if self.v2 {
            write_value(&dir.join("memory.max"), &v2_num(m.max))?;
            let swap = dir.join("memory.swap.max");
            if swap.exists() {
                write_value(&swap, &v2_num(m.swap))?;
            } else if m.swap.is_some() {
                return Err(no_swap_accounting(&swap));
            }
            return Ok(());
        }
        let memsw = dir.join("memory.memsw.limit_in_bytes");
        let has_memsw = memsw.exists();
        if m.swap.is_some() && !has_memsw {
            return Err(no_swap_accounting(&memsw));
        }
        // memsw must never be below the memory limit: lift it first, set
        // memory, then bring memsw down to memory + swap.
        if has_memsw {
            write_value(&memsw, "-1")?;
        }
        write_value(&dir.join("memory.limit_in_bytes"), &v1_num(m.max))?;
        if has_memsw {
            let total = match (m.max, m.swap) {
                (Some(max), Some(swap)) => Some(max.saturating_add(swap)),
                _ => None,
            };
            write_value(&memsw, &v1_num(total))?;
        }
        Ok(())
    }

    /// Writes the memory extras. On v2 a setting without a v2 file
    /// (swappiness, disable_oom_killer, kernel_tcp) is refused naming it,
    /// before anything is written; so is a swappiness above 100.
    pub fn set_memory_extras(&self, m: &MemoryExtras) -> Result<(), CgroupError> {
        if let Some(s) = m.swappiness.filter(|s| *s > 100) {
            return Err(CgroupError::Unsupported(format!(
                "{}: memory swappiness {s} is above 100",
                self.rel
            )));
        }
        let dir = need(self, "memory")?;
        if self.v2 {
            let missing = [
                ("swappiness", m.swappiness.is_some()),
                ("disable_oom_killer", m.disable_oom_killer),
                ("kernel_tcp", m.kernel_tcp.is_some()),
            ];
            if let Some((name, _)) = missing.iter().find(|(_, set)| *set) {
                return Err(CgroupError::Unsupported(format!(
                    "{}: memory {name} has no cgroup v2 equivalent; leave it unset",
                    self.rel
                )));
            }
            if let Some(r) = m.reservation {
                write_value(&dir.join("memory.low"), &r.to_string())?;
            }
            return Ok(());
        }
        if let Some(r) = m.reservation {
            write_value(&dir.join("memory.soft_limit_in_bytes"), &r.to_string())?;
        }
        if let Some(s) = m.swappiness {
            write_value(&dir.join("memory.swappiness"), &s.to_string())?;
        }
        if m.disable_oom_killer {
            write_value(&dir.join("memory.oom_control"), "1")?;
        }
        if let Some(t) = m.kernel_tcp {
            write_value(&dir.join("memory.kmem.tcp.limit_in_bytes"), &t.to_string())?;
        }
        Ok(())
    }

    /// Confines the group to CPUs and memory nodes, each a kernel list
    /// such as `0-3,6` (v1 and v2 `cpuset.cpus` / `cpuset.mems`); `None`
    /// leaves that one as it is.
    pub fn set_cpuset(&self, cpus: Option<&str>, mems: Option<&str>) -> Result<(), CgroupError> {
        for (what, v) in [("cpus", cpus), ("mems", mems)] {
            if let Some(v) = v {
                let ok = !v.is_empty()
                    && v.split(',').all(|part| {
                        let mut ends = part.splitn(2, '-');
                        ends.all(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
                    });
                if !ok {
                    return Err(CgroupError::Unsupported(format!(
                        "{}: cpuset {what} {v:?} is not a list like 0-3,6",
                        self.rel
                    )));
                }
            }
        }
        if self.v2 {
            self.enable_v2_cpuset();
        }
        let dir = need(self, "cpuset")?;
        // mems first: cpus alone would be refused while mems is empty.
        if let Some(m) = mems {
            write_value(&dir.join("cpuset.mems"), m)?;
        }
        if let Some(c) = cpus {
            write_value(&dir.join("cpuset.cpus"), c)?;
        }
        Ok(())
    }

    /// On v2, cpuset is enabled only for groups that set one: add it to
    /// `cgroup.subtree_control` of every ancestor. A refusal is left to
    /// `need`, which names the controller.
    fn enable_v2_cpuset(&self) {
        let Some(dir) = self.dir_of("cpuset") else {
            return;
        };
        let mut cur = dir.to_path_buf();
        for _ in self.rel.split('/') {
            cur.pop();
        }
        for comp in self.rel.split('/') {
            let control = cur.join("cgroup.subtree_control");
            let on = super::fsio::read_words(&control)
                .iter()
                .any(|w| w.trim_start_matches('+') == "cpuset");
            if !on {
                let _ = write_value(&control, "+cpuset");
            }
            cur.push(comp);
        }
    }

    /// Sets CPU bandwidth in CPUs (0.5 = half a core over every 100 ms).
    pub fn set_cpus(&self, cpus: Option<f64>) -> Result<(), CgroupError> {
        let quota = match cpus {
            None => None,
            Some(c) if c.is_finite() && c > 0.0 => {
                let q = (c * CPU_PERIOD_US as f64).round() as u64;
                if q < CPU_MIN_QUOTA_US {
                    return Err(CgroupError::CpusOutOfRange {
                        group: self.rel.clone(),
                        cpus: c,
                        min: CPU_MIN_QUOTA_US as f64 / CPU_PERIOD_US as f64,
                    });
                }
                Some(q)
            }
            Some(c) => {
                return Err(CgroupError::CpusOutOfRange {
                    group: self.rel.clone(),
                    cpus: c,
                    min: CPU_MIN_QUOTA_US as f64 / CPU_PERIOD_US as f64,
                })
            }
        };
        let dir = need(self, "cpu")?;
        if self.v2 {
            let q = quota.map_or("max".to_string(), |q| q.to_string());
            return write_value(&dir.join("cpu.max"), &format!("{q} {CPU_PERIOD_US}"));
        }
        write_value(&dir.join("cpu.cfs_period_us"), &CPU_PERIOD_US.to_string())?;
        write_value(
            &dir.join("cpu.cfs_quota_us"),
            &quota.map_or("-1".to_string(), |q| q.to_string()),
        )
    }

    /// Sets CFS bandwidth as a quota per period, both in microseconds and
    /// written as they are (`None` quota: unlimited). The kernel takes a
    /// period of 1 ms to 1 s and a quota of at least 1 ms.
    pub fn set_cpu_bandwidth(
        &self,
        quota_us: Option<u64>,
        period_us: u64,
    ) -> Result<(), CgroupError> {
        if !(1_000..=1_000_000).contains(&period_us)
            || quota_us.is_some_and(|q| q < CPU_MIN_QUOTA_US)
        {
            return Err(CgroupError::Unsupported(format!(
                "{}: cpu quota {quota_us:?} per period {period_us} us is out of range (period 1000 to 1000000, quota at least 1000)",
                self.rel
            )));
        }
        let dir = need(self, "cpu")?;
        if self.v2 {
            let q = quota_us.map_or("max".to_string(), |q| q.to_string());
            return write_value(&dir.join("cpu.max"), &format!("{q} {period_us}"));
        }
        write_value(&dir.join("cpu.cfs_period_us"), &period_us.to_string())?;
        write_value(&dir.join("cpu.cfs_quota_us"), &v1_num(quota_us))
    }

    /// Sets the group's CPU share against its siblings in cgroup v1's
    /// `cpu.shares` units (2 to 262144; 1024 is the default): v1 writes it
    /// as it is, v2 as the `cpu.weight` it corresponds to (1 to 10000).
    pub fn set_cpu_shares(&self, shares: u64) -> Result<(), CgroupError> {
        let shares = shares.clamp(2, 262_144);
        let dir = need(self, "cpu")?;
        if self.v2 {
            let weight = 1 + (shares - 2) * 9999 / 262_142;
            return write_value(&dir.join("cpu.weight"), &weight.to_string());
        }
        write_value(&dir.join("cpu.shares"), &shares.to_string())
    }

    /// Sets the maximum number of processes and threads.
    pub fn set_pids_max(&self, max: Option<u64>) -> Result<(), CgroupError> {
        let dir = need(self, "pids")?;
        write_value(&dir.join("pids.max"), &v2_num(max))
    }

    /// Sets block I/O throttling on one device (v1 blkio.throttle.*, v2 io.max).
    pub fn set_io(&self, t: &IoThrottle) -> Result<(), CgroupError> {
        let dev = format!("{}:{}", t.major, t.minor);
        if self.v2 {
            let dir = need(self, "io")?;
            let line = format!(
                "{dev} rbps={} wbps={} riops={} wiops={}",
                v2_num(t.read_bps),
                v2_num(t.write_bps),
                v2_num(t.read_iops),
                v2_num(t.write_iops)
            );
            return write_value(&dir.join("io.max"), &line);
        }
        let dir = need(self, "blkio")?;
        for (file, v) in [
            ("blkio.throttle.read_bps_device", t.read_bps),
            ("blkio.throttle.write_bps_device", t.write_bps),
            ("blkio.throttle.read_iops_device", t.read_iops),
            ("blkio.throttle.write_iops_device", t.write_iops),
        ] {
            // 0 removes the device's rule in v1.
            write_value(&dir.join(file), &format!("{dev} {}", v.unwrap_or(0)))?;
        }
        Ok(())
    }
}

/// The limits the kernel enforces on a group right now, read back from
/// its control files (what `vbuild status` shows, rather than what a
/// config file says). `None`: no limit, or no such controller.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct EffectiveLimits {
    /// Memory limit, bytes.
    pub memory: Option<u64>,
    /// Process and thread limit.
    pub pids: Option<u64>,
    /// CPU bandwidth in CPUs.
    pub cpus: Option<f64>,
}

impl Cgroup {
    /// Reads the limits the kernel enforces on this group.
    pub fn effective_limits(&self) -> EffectiveLimits {
        // v1 reports "no limit" as the page counter's maximum.
        let limit = |v: Option<u64>| v.filter(|v| *v < (1u64 << 62));
        let mut out = EffectiveLimits::default();
        if let Ok(dir) = need(self, "memory") {
            let f = if self.v2 {
                "memory.max"
            } else {
                "memory.limit_in_bytes"
            };
            out.memory = limit(read_u64(&dir.join(f)).ok().flatten());
        }
        if let Ok(dir) = need(self, "pids") {
            out.pids = read_u64(&dir.join("pids.max")).ok().flatten();
        }
        if let Ok(dir) = need(self, "cpu") {
            let (quota, period) = if self.v2 {
                let text = read_to_string(&dir.join("cpu.max")).unwrap_or_default();
                let mut w = text.split_whitespace();
                (
                    w.next().and_then(|q| q.parse::<i64>().ok()),
                    w.next().and_then(|p| p.parse::<i64>().ok()),
                )
            } else {
                let num = |f: &str| {
                    read_to_string(&dir.join(f))
                        .ok()
                        .and_then(|t| t.trim().parse::<i64>().ok())
                };
                (num("cpu.cfs_quota_us"), num("cpu.cfs_period_us"))
            };
            if let (Some(q), Some(p)) = (quota, period) {
                if q > 0 && p > 0 {
                    out.cpus = Some(q as f64 / p as f64);
                }
            }
        }
        out
    }
}

fn no_swap_accounting(path: &Path) -> CgroupError {
    CgroupError::NoSwapAccounting {
        path: path.to_path_buf(),
    }
}
