//! `vbuild logs NAME [-f] [-n N] [--supervisor]`: a guest's console log
//! (or its supervisor's), read by the runtime from host-side files the
//! guest cannot replace, capped in size.

use super::output;
use super::Ctx;
use clap::Args;
use std::io::Write;
use vbuild_runtime::logs::{self, LogKind};
use vbuild_runtime::name::GuestName;

/// Arguments of `vbuild logs`.
#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Guest name.
    pub name: String,
    /// Keep printing what the guest writes until it stops (or Ctrl-C).
    #[arg(long, short)]
    pub follow: bool,
    /// Only the last N lines.
    #[arg(long = "lines", short = 'n', value_name = "N")]
    pub lines: Option<usize>,
    /// The supervisor's log (why a start or stop failed) instead of the console.
    #[arg(long, conflicts_with = "follow")]
    pub supervisor: bool,
}

/// `vbuild logs`.
pub fn logs(c: &Ctx, a: LogsArgs) -> anyhow::Result<i32> {
    let name = GuestName::parse(&a.name)?;
    let kind = if a.supervisor {
        LogKind::Supervisor
    } else {
        LogKind::Console
    };
    let text = logs::tail(&c.layout, &name, kind, a.lines)?;
    if c.json {
        if a.follow {
            output::invalid!("--follow streams text; it cannot be combined with --json");
        }
        output::json(&serde_json::json!({
            "name": name.as_str(),
            "log": if a.supervisor { "supervisor" } else { "console" },
            "files": logs::files(&c.layout, name.as_str(), kind),
            "text": String::from_utf8_lossy(&text),
        }))?;
        return Ok(0);
    }
    let mut out = std::io::stdout().lock();
    out.write_all(&text)?;
    out.flush()?;
    if a.follow {
        logs::follow(&c.layout, &name, &mut |b| {
            out.write_all(b)?;
            out.flush()
        })?;
    }
    Ok(0)
}
