//! `vbuild limit NAME --memory 1G --cpus 0.5 ...`: change a guest's resource
//! limits — live on a running guest (its cgroup `vbuild/NAME`, and its disk
//! backend for `--disk`) and saved in guest.toml for the next start.
//! `LimitFlags` is the same set of flags `vbuild debian` takes.

use super::Ctx;
use clap::Args;
use vbuild_kernel::cgroup::Cgroup;
use vbuild_runtime::limits::{self, Limits};
use vbuild_runtime::name::GuestName;
use vbuild_runtime::store::GuestStore;

/// The resource-limit flags, shared by `vbuild limit` and `vbuild debian`.
/// Values are kept as typed so errors can name the flag and an example;
/// `max` lifts a limit.
#[derive(Args, Debug, Clone, Default, PartialEq)]
pub struct LimitFlags {
    /// Memory limit (512M, 2G; max for none).
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Swap allowed on top of --memory (256M; 0 for none).
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    pub swap: Option<String>,
    /// CPU bandwidth in CPUs (0.5 = half a core, 2 = two cores).
    #[arg(long, value_name = "CPUS", allow_hyphen_values = true)]
    pub cpus: Option<String>,
    /// Maximum processes and threads (500).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub pids: Option<String>,
    /// Disk space for the guest's root filesystem (2G); grows a live guest.
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    pub disk: Option<String>,
    /// Disk read bandwidth per second (50M).
    #[arg(long, value_name = "RATE", allow_hyphen_values = true)]
    pub io_read: Option<String>,
    /// Disk write bandwidth per second (20M).
    #[arg(long, value_name = "RATE", allow_hyphen_values = true)]
    pub io_write: Option<String>,
    /// Disk read operations per second (1000).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub io_read_iops: Option<String>,
    /// Disk write operations per second (1000).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub io_write_iops: Option<String>,
}

/// Sets `*slot` to the parsed value when the flag was given.
fn patch<T>(
    slot: &mut Option<T>,
    given: &Option<String>,
    parse: impl FnOnce(&str) -> Result<Option<T>, limits::LimitError>,
) -> anyhow::Result<()> {
    if let Some(v) = given {
        *slot = parse(v)?;
    }
    Ok(())
}

impl LimitFlags {
    /// True when no limit flag was given.
    pub fn is_empty(&self) -> bool {
        *self == LimitFlags::default()
    }

    /// The limits these flags ask for on a new guest (unset = unlimited).
    /// Every value is checked here, before anything is created.
    pub fn to_limits(&self) -> anyhow::Result<Limits> {
        self.apply_to(&Limits::default())
    }

    /// `current` with the given flags changed (`max` lifts a limit),
    /// checked as a whole.
    pub fn apply_to(&self, current: &Limits) -> anyhow::Result<Limits> {
        let mut l = current.clone();
        patch(&mut l.memory, &self.memory, |v| {
            limits::parse_bytes("--memory", v)
        })?;
        patch(&mut l.swap, &self.swap, |v| {
            limits::parse_bytes("--swap", v)
        })?;
        patch(&mut l.cpus, &self.cpus, limits::parse_cpus)?;
        patch(&mut l.pids, &self.pids, |v| {
            limits::parse_count("--pids", v)
        })?;
        patch(&mut l.disk, &self.disk, |v| {
            limits::parse_bytes("--disk", v)
        })?;
        patch(&mut l.io_read_bps, &self.io_read, |v| {
            limits::parse_rate("--io-read", v)
        })?;
        patch(&mut l.io_write_bps, &self.io_write, |v| {
            limits::parse_rate("--io-write", v)
        })?;
        patch(&mut l.io_read_iops, &self.io_read_iops, |v| {
            limits::parse_count("--io-read-iops", v)
        })?;
        patch(&mut l.io_write_iops, &self.io_write_iops, |v| {
            limits::parse_count("--io-write-iops", v)
        })?;
        l.validate()?;
        Ok(l)
    }
}

/// Arguments of `vbuild limit`.
#[derive(Args, Debug)]
pub struct LimitArgs {
    /// Guest name.
    pub name: String,
    /// The limits to change; with none, the current limits and use are shown.
    #[command(flatten)]
    pub flags: LimitFlags,
}

/// `vbuild limit`: shows, or changes all or nothing (see
/// `vbuild_runtime::set_limits`).
pub fn limit(c: &Ctx, a: LimitArgs) -> anyhow::Result<i32> {
    let name = GuestName::parse(&a.name)?;
    let store = GuestStore::new(&c.layout);
    let cfg = store.load(name.as_str())?;
    let name = name.as_str();
    if a.flags.is_empty() {
        let cg = store.live_cgroup(name)?;
        show(c, name, &cfg.limits, cg.as_ref());
        return Ok(0);
    }
    let new = a
        .flags
        .apply_to(&cfg.limits)
        .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    let guest = GuestName::parse(name)?;
    let done = vbuild_runtime::set_limits::set_limits(&c.layout, &guest, &new)?;
    if c.json {
        let cg = store.live_cgroup(name)?;
        let mut j = as_json(c, name, &done.limits, cg.as_ref());
        j["live"] = done.live.into();
        super::output::json(&j)?;
    } else if !c.quiet {
        let when = if done.live {
            "applied live and saved"
        } else {
            "saved; applied at the next start"
        };
        println!("{name}: limits {when}");
        let cg = store.live_cgroup(name)?;
        show(c, name, &done.limits, cg.as_ref());
    }
    Ok(0)
}

/// Limits and use as numbers, with the field names of `vbuild status
/// --json`: bytes, CPUs, seconds and counts; an absent limit is unlimited,
/// a null use unknown (the guest is not running).
fn as_json(c: &Ctx, name: &str, l: &Limits, cg: Option<&Cgroup>) -> serde_json::Value {
    let u = limits::usage(cg, &c.layout, name);
    let cgu = u.cgroup.clone().unwrap_or_default();
    serde_json::json!({
        "name": name,
        "limits": l,
        "usage": {
            "memory": cgu.memory,
            "cpu_secs": cgu.cpu.map(|d| d.as_secs_f64()),
            "processes": cgu.pids,
            "disk": u.disk.map(|d| serde_json::json!({"used": d.used, "limit": d.limit})),
            "io_read_bytes": cgu.io_read,
            "io_write_bytes": cgu.io_write,
        },
    })
}

/// Prints each limit beside current use.
fn show(c: &Ctx, name: &str, l: &Limits, cg: Option<&Cgroup>) {
    let usage = limits::usage(cg, &c.layout, name);
    let lines = limits::report(l, &usage);
    if c.json {
        let j = as_json(c, name, l, cg);
        println!("{}", serde_json::to_string_pretty(&j).expect("JSON"));
        return;
    }
    for r in lines {
        println!("  {:<9} {:>10} / {}", r.what, r.used, r.limit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(args: &[&str]) -> anyhow::Result<LimitFlags> {
        use clap::Parser;
        #[derive(Parser)]
        struct T {
            #[command(flatten)]
            f: LimitFlags,
        }
        let mut all = vec!["t"];
        all.extend_from_slice(args);
        Ok(T::try_parse_from(all)?.f)
    }

    #[test]
    fn flags_become_limits() {
        let f = flags(&[
            "--memory",
            "512M",
            "--swap",
            "256M",
            "--cpus",
            "1.5",
            "--pids",
            "500",
            "--disk",
            "2G",
            "--io-read",
            "50M",
            "--io-write",
            "20M",
            "--io-write-iops",
            "300",
        ])
        .unwrap();
        let l = f.to_limits().unwrap();
        assert_eq!(
            l,
            Limits {
                memory: Some(512 << 20),
                swap: Some(256 << 20),
                cpus: Some(1.5),
                pids: Some(500),
                disk: Some(2 << 30),
                io_read_bps: Some(50 << 20),
                io_write_bps: Some(20 << 20),
                io_read_iops: None,
                io_write_iops: Some(300),
            }
        );
    }

    #[test]
    fn nonsense_reaches_our_checks_and_is_refused() {
        for (args, needle) in [
            (&["--cpus", "-1"][..], "--cpus 0.5"),
            (&["--pids", "0"][..], "--pids 500"),
            (&["--memory", "12Q"][..], "--memory 512M"),
            (&["--swap", "1G"][..], "--swap needs --memory"),
        ] {
            let e = flags(args).unwrap().to_limits().unwrap_err().to_string();
            assert!(e.contains(needle), "{args:?}: {e}");
        }
    }

    #[test]
    fn only_given_flags_change_and_max_lifts() {
        let current = Limits {
            memory: Some(512 << 20),
            cpus: Some(2.0),
            pids: Some(100),
            ..Default::default()
        };
        let f = flags(&["--memory", "1G", "--cpus", "max"]).unwrap();
        let l = f.apply_to(&current).unwrap();
        assert_eq!(l.memory, Some(1 << 30));
        assert_eq!(l.cpus, None);
        assert_eq!(l.pids, Some(100));
        assert!(flags(&[]).unwrap().is_empty());
    }
}
