//! What a group uses right now, read from the controllers' counters (cheap:
//! a handful of small files, no walking of processes).

use super::fsio::{read_to_string, read_u64};
use super::{Cgroup, CgroupError};
use std::path::Path;
use std::time::Duration;

/// Current use of one group; `None` where the host lacks the counter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// Memory in use now, in bytes (page cache included).
    pub memory: Option<u64>,
    /// Highest memory use seen, in bytes.
    pub memory_peak: Option<u64>,
    /// Of `memory`, what the processes themselves hold: anonymous memory
    /// (RSS; v2 `anon`, v1 `total_rss`), which the guest cannot give back
    /// without swapping.
    pub memory_anon: Option<u64>,
    /// Of `memory`, page cache (v2 `file`, v1 `total_cache`): file data the
    /// kernel reclaims before it kills anything, so a guest "at its limit"
    /// with mostly cache is not short of memory.
    pub memory_cache: Option<u64>,
    /// Processes the kernel's OOM killer ended in this group since it was
    /// made (v2 `memory.events` `oom_kill`, v1 `memory.oom_control`).
    pub oom_kills: Option<u64>,
    /// CPU time consumed by all processes, ever.
    pub cpu: Option<Duration>,
    /// Processes and threads now.
    pub pids: Option<u64>,
    /// Bytes read from block devices.
    pub io_read: Option<u64>,
    /// Bytes written to block devices.
    pub io_write: Option<u64>,
}

fn opt_u64(dir: Option<&Path>, file: &str) -> Result<Option<u64>, CgroupError> {
    match dir.map(|d| d.join(file)) {
        Some(p) if p.exists() => read_u64(&p),
        _ => Ok(None),
    }
}

/// The text of `file` in `dir`, or `None` when this kernel has no such file.
fn opt_text(dir: &Path, file: &str) -> Result<Option<String>, CgroupError> {
    let p = dir.join(file);
    if p.exists() {
        read_to_string(&p).map(Some)
    } else {
        Ok(None)
    }
}

/// v1 counts an OOM kill only in the victim's own group (v2's
/// memory.events adds up the subtree), so sum `oom_kill` of
/// memory.oom_control over `dir` and the groups below it.
fn v1_oom_kills(dir: &Path, depth: u32) -> Option<u64> {
    let own = keyed(
        &read_to_string(&dir.join("memory.oom_control")).ok()?,
        "oom_kill",
    )?;
    let mut sum = own;
    if depth < 8 {
        for e in std::fs::read_dir(dir).ok()?.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                sum += v1_oom_kills(&e.path(), depth + 1).unwrap_or(0);
            }
        }
    }
    Some(sum)
}

/// `key value` pairs of a flat-keyed file such as cpu.stat.
fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let mut w = l.split_whitespace();
        (w.next() == Some(key)).then(|| w.next()?.parse().ok())?
    })
}

/// Sums v2 io.stat (`8:0 rbytes=1 wbytes=2 ...`) over every device.
pub(crate) fn sum_io_stat(text: &str) -> (u64, u64) {
    let (mut r, mut w) = (0u64, 0u64);
    for field in text.split_whitespace() {
        if let Some(v) = field.strip_prefix("rbytes=") {
            r += v.parse::<u64>().unwrap_or(0);
        } else if let Some(v) = field.strip_prefix("wbytes=") {
            w += v.parse::<u64>().unwrap_or(0);
        }
    }
    (r, w)
}

/// Sums v1 blkio `8:0 Read 1234` lines over every device.
pub(crate) fn sum_blkio(text: &str) -> (u64, u64) {
    let (mut r, mut w) = (0u64, 0u64);
    for l in text.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() == 3 {
            let v = f[2].parse::<u64>().unwrap_or(0);
            match f[1] {
                "Read" => r += v,
                "Write" => w += v,
                _ => {}
            }
        }
    }
    (r, w)
}

impl Cgroup {
    /// Reads current memory, CPU, process and I/O figures of the group.
    pub fn usage(&self) -> Result<Usage, CgroupError> {
        let mut u = Usage::default();
        if self.v2 {
            let dir = self.dir_of("memory");
            u.memory = opt_u64(dir, "memory.current")?;
            u.memory_peak = opt_u64(dir, "memory.peak")?;
            u.pids = opt_u64(dir, "pids.current")?;
            if let Some(d) = dir {
                if let Some(t) = opt_text(d, "memory.stat")? {
                    u.memory_anon = keyed(&t, "anon");
                    u.memory_cache = keyed(&t, "file");
                }
                if let Some(t) = opt_text(d, "memory.events")? {
                    u.oom_kills = keyed(&t, "oom_kill");
                }
                let stat = d.join("cpu.stat");
                if stat.exists() {
                    u.cpu = keyed(&read_to_string(&stat)?, "usage_usec").map(Duration::from_micros);
                }
                let io = d.join("io.stat");
                if io.exists() {
                    let (r, w) = sum_io_stat(&read_to_string(&io)?);
                    (u.io_read, u.io_write) = (Some(r), Some(w));
                }
            }
            return Ok(u);
        }
        let mem = self.dir_of("memory");
        u.memory = opt_u64(mem, "memory.usage_in_bytes")?;
        u.memory_peak = opt_u64(mem, "memory.max_usage_in_bytes")?;
        if let Some(d) = mem {
            if let Some(t) = opt_text(d, "memory.stat")? {
                u.memory_anon = keyed(&t, "total_rss");
                u.memory_cache = keyed(&t, "total_cache");
            }
            u.oom_kills = v1_oom_kills(d, 0);
        }
        u.pids = opt_u64(self.dir_of("pids"), "pids.current")?;
        u.cpu = opt_u64(self.dir_of("cpuacct"), "cpuacct.usage")?.map(Duration::from_nanos);
        if let Some(d) = self.dir_of("blkio") {
            let f = d.join("blkio.throttle.io_service_bytes_recursive");
            if f.exists() {
                let (r, w) = sum_blkio(&read_to_string(&f)?);
                (u.io_read, u.io_write) = (Some(r), Some(w));
            }
        }
        Ok(u)
    }
}
