//! Stats: the task's cgroup counters as containerd's cgroup metrics (what
//! `ctr task metrics` and the CRI's container stats read), v1 messages on
//! v1 and hybrid hosts as the runc shim sends there, v2 on a v2 host.

use containerd_shim_protos::cgroups::metrics as v1;
use containerd_shim_protos::cgroups_v2::metrics as v2;
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::{Message, MessageField};
use vbuild_kernel::cgroup::{Cgroup, EffectiveLimits, Hierarchy, Usage};

/// containerd's type URL of cgroup v1 metrics.
pub const V1: &str = "io.containerd.cgroups.v1.Metrics";
/// containerd's type URL of cgroup v2 metrics.
pub const V2: &str = "io.containerd.cgroups.v2.Metrics";

/// The metrics of cgroup `rel` (relative to each hierarchy root), wrapped
/// as containerd expects them.
pub fn metrics(rel: &str) -> Result<Any, String> {
    let h = Hierarchy::detect().map_err(|e| e.to_string())?;
    let cg = Cgroup::open(&h, rel)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("cgroup {rel} is gone (the task has been deleted)"))?;
    let u = cg.usage().map_err(|e| format!("read cgroup {rel}: {e}"))?;
    let l = cg.effective_limits();
    let (type_url, value) = if cg.is_v2() {
        (V2, v2_metrics(&u, &l).write_to_bytes())
    } else {
        (V1, v1_metrics(&u, &l).write_to_bytes())
    };
    Ok(Any {
        type_url: type_url.into(),
        value: value.map_err(|e| e.to_string())?,
        ..Default::default()
    })
}

/// cgroup v1 metrics: no pids limit is 0 (runc's "max"), no memory limit
/// the largest value.
fn v1_metrics(u: &Usage, l: &EffectiveLimits) -> v1::Metrics {
    let usage = v1::MemoryEntry {
        usage: u.memory.unwrap_or(0),
        max: u.memory_peak.unwrap_or(0),
        limit: l.memory.unwrap_or(u64::MAX),
        ..Default::default()
    };
    v1::Metrics {
        pids: MessageField::some(v1::PidsStat {
            current: u.pids.unwrap_or(0),
            limit: l.pids.unwrap_or(0),
            ..Default::default()
        }),
        cpu: MessageField::some(v1::CPUStat {
            usage: MessageField::some(v1::CPUUsage {
                total: u.cpu.map_or(0, |d| d.as_nanos() as u64),
                ..Default::default()
            }),
            ..Default::default()
        }),
        memory: MessageField::some(v1::MemoryStat {
            cache: u.memory_cache.unwrap_or(0),
            rss: u.memory_anon.unwrap_or(0),
            total_cache: u.memory_cache.unwrap_or(0),
            total_rss: u.memory_anon.unwrap_or(0),
            usage: MessageField::some(usage),
            ..Default::default()
        }),
        memory_oom_control: MessageField::some(v1::MemoryOomControl {
            oom_kill: u.oom_kills.unwrap_or(0),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// cgroup v2 metrics.
fn v2_metrics(u: &Usage, l: &EffectiveLimits) -> v2::Metrics {
    v2::Metrics {
        pids: MessageField::some(v2::PidsStat {
            current: u.pids.unwrap_or(0),
            limit: l.pids.unwrap_or(0),
            ..Default::default()
        }),
        cpu: MessageField::some(v2::CPUStat {
            usage_usec: u.cpu.map_or(0, |d| d.as_micros() as u64),
            ..Default::default()
        }),
        memory: MessageField::some(v2::MemoryStat {
            anon: u.memory_anon.unwrap_or(0),
            file: u.memory_cache.unwrap_or(0),
            usage: u.memory.unwrap_or(0),
            max_usage: u.memory_peak.unwrap_or(0),
            usage_limit: l.memory.unwrap_or(u64::MAX),
            ..Default::default()
        }),
        memory_events: MessageField::some(v2::MemoryEvents {
            oom_kill: u.oom_kills.unwrap_or(0),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn usage() -> Usage {
        Usage {
            memory: Some(3 << 20),
            memory_peak: Some(4 << 20),
            memory_anon: Some(1 << 20),
            memory_cache: Some(2 << 20),
            oom_kills: Some(1),
            cpu: Some(Duration::from_millis(1500)),
            pids: Some(2),
            ..Default::default()
        }
    }

    #[test]
    fn v1_metrics_carry_the_counters_and_limits() {
        let l = EffectiveLimits {
            memory: Some(64 << 20),
            pids: Some(10),
            cpus: None,
        };
        let bytes = v1_metrics(&usage(), &l).write_to_bytes().unwrap();
        let m = v1::Metrics::parse_from_bytes(&bytes).unwrap();
        assert_eq!(m.pids.current, 2);
        assert_eq!(m.pids.limit, 10);
        assert_eq!(m.cpu.usage.total, 1_500_000_000);
        assert_eq!(m.memory.usage.usage, 3 << 20);
        assert_eq!(m.memory.usage.max, 4 << 20);
        assert_eq!(m.memory.usage.limit, 64 << 20);
        assert_eq!(m.memory.rss, 1 << 20);
        assert_eq!(m.memory.cache, 2 << 20);
        assert_eq!(m.memory_oom_control.oom_kill, 1);
    }

    #[test]
    fn v2_metrics_carry_the_counters_and_unlimited_is_the_maximum() {
        let m = v2_metrics(&usage(), &EffectiveLimits::default());
        assert_eq!(m.cpu.usage_usec, 1_500_000);
        assert_eq!(m.memory.usage, 3 << 20);
        assert_eq!(m.memory.anon, 1 << 20);
        assert_eq!(m.memory.usage_limit, u64::MAX);
        assert_eq!(m.pids.current, 2);
        assert_eq!(m.memory_events.oom_kill, 1);
    }
}
