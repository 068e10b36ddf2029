//! `vbuild cache list|prune`: what the download cache holds (packages and
//! indices per distro, sizes, last use) and removing what no build needs.
//! Pruning refuses while a build holds the cache, so a blob fetched but not
//! yet unpacked is never removed under it.

use super::output::{self, invalid};
use super::Ctx;
use clap::{Args, Subcommand};
use std::time::{Duration, SystemTime};
use vbuild_cache::inventory::{groups, EntryKind, Prune};
use vbuild_cache::Cache;
use vbuild_runtime::size::format_size;

#[derive(Subcommand, Debug)]
pub enum CacheCommand {
    /// Show what is cached: packages and indices per distro, sizes, last use.
    List(ListArgs),
    /// Remove cached downloads no build used lately (default: in 30 days), or all.
    Prune(PruneArgs),
}

/// Arguments of `vbuild cache list`.
#[derive(Args, Debug)]
pub struct ListArgs {}

/// Arguments of `vbuild cache prune`.
#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Remove everything cached (the next build downloads again).
    #[arg(long, conflicts_with = "older_than")]
    pub all: bool,
    /// Remove what no build used within this long: N followed by s, m, h or d.
    #[arg(long, value_name = "AGE", default_value = "30d")]
    pub older_than: String,
}

/// Runs a `vbuild cache` subcommand.
pub fn cache(c: &Ctx, cmd: CacheCommand) -> anyhow::Result<i32> {
    match cmd {
        CacheCommand::List(_) => list(c),
        CacheCommand::Prune(a) => prune(c, a),
    }
}

/// The cache, or `None` when no build ever made it (nothing is created).
fn open(c: &Ctx) -> anyhow::Result<Option<Cache>> {
    let dir = c.layout.cache_dir();
    if !dir.join("blobs").is_dir() {
        return Ok(None);
    }
    Ok(Some(Cache::open(&dir)?))
}

fn list(c: &Ctx) -> anyhow::Result<i32> {
    let entries = match open(c)? {
        Some(cache) => cache.inventory()?,
        None => Vec::new(),
    };
    let g = groups(&entries);
    let total: u64 = g.iter().map(|g| g.bytes).sum();
    if c.json {
        output::json(&serde_json::json!({
            "dir": c.layout.cache_dir(),
            "total_bytes": total,
            "files": entries.len(),
            "groups": g,
        }))?;
        return Ok(0);
    }
    if g.is_empty() {
        println!("the cache {} is empty", c.layout.cache_dir().display());
        return Ok(0);
    }
    let now = now_secs();
    println!(
        "{:<8} {:<8} {:>6} {:>10}  LAST USED",
        "DISTRO", "KIND", "FILES", "SIZE"
    );
    for g in &g {
        let kind = match g.kind {
            EntryKind::Package => "packages",
            EntryKind::Index => "indices",
        };
        println!(
            "{:<8} {:<8} {:>6} {:>10}  {}",
            g.distro,
            kind,
            g.count,
            format_size(g.bytes),
            ago(now.saturating_sub(g.last_used))
        );
    }
    println!(
        "total: {} in {} files under {}",
        format_size(total),
        entries.len(),
        c.layout.cache_dir().display()
    );
    Ok(0)
}

fn prune(c: &Ctx, a: PruneArgs) -> anyhow::Result<i32> {
    let how = if a.all {
        Prune::All
    } else {
        Prune::OlderThan(parse_age(&a.older_than)?)
    };
    let stats = match open(c)? {
        Some(cache) => cache.prune(how)?,
        None => vbuild_cache::GcStats::default(),
    };
    if c.json {
        output::json(&serde_json::json!({
            "removed": stats.removed,
            "freed_bytes": stats.freed_bytes,
            "kept": stats.kept,
        }))?;
    } else if !c.quiet {
        eprintln!(
            "vbuild: removed {} cached files ({}), kept {}",
            stats.removed,
            format_size(stats.freed_bytes),
            stats.kept
        );
    }
    Ok(0)
}

/// `30d`, `12h`, `90m`, `3600s` as a duration.
fn parse_age(s: &str) -> anyhow::Result<Duration> {
    let (num, unit) = s.split_at(s.find(|ch: char| !ch.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = match num.parse() {
        Ok(n) => n,
        Err(_) => invalid!("--older-than {s}: not an age (e.g. 30d, 12h, 90m)"),
    };
    let unit_secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => invalid!("--older-than {s}: the unit must be s, m, h or d (e.g. 30d)"),
    };
    Ok(Duration::from_secs(n.saturating_mul(unit_secs)))
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `3 d ago`, `5 h ago`, `just now`.
fn ago(secs: u64) -> String {
    match secs {
        s if s >= 86400 => format!("{} d ago", s / 86400),
        s if s >= 3600 => format!("{} h ago", s / 3600),
        s if s >= 60 => format!("{} min ago", s / 60),
        _ => "just now".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_are_parsed_with_their_unit() {
        assert_eq!(parse_age("30d").unwrap(), Duration::from_secs(30 * 86400));
        assert_eq!(parse_age("12h").unwrap(), Duration::from_secs(12 * 3600));
        assert_eq!(parse_age("0s").unwrap(), Duration::ZERO);
        for bad in ["", "d", "30", "30w", "-1d"] {
            let e = parse_age(bad).unwrap_err().to_string();
            assert!(e.contains("--older-than"), "{bad}: {e}");
        }
    }
}
