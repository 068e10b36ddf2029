//! Guest lifecycle commands: list, start, stop, restart, status, exec,
//! enter, console, delete, run, check. The work is done by
//! `vbuild_runtime`; this file turns arguments into calls and prints
//! results (text, or JSON with `--json`).

use super::output::{self, invalid};
use super::Ctx;
use anyhow::Context;
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;
use vbuild_runtime::error::RuntimeError;
use vbuild_runtime::name::GuestName;
use vbuild_runtime::size::format_size;
use vbuild_runtime::status::{format_uptime, GuestStatus};

/// Arguments of `vbuild list`.
#[derive(Args, Debug)]
pub struct ListArgs {}

/// Arguments of `vbuild start`.
#[derive(Args, Debug)]
pub struct StartArgs {
    /// Guest names (one or more); each is started, one failure does not
    /// stop the others.
    #[arg(value_name = "NAME", required_unless_present_any = ["all", "autostart"])]
    pub names: Vec<String>,
    /// Start every guest that is not running.
    #[arg(long, conflicts_with = "names")]
    pub all: bool,
    /// Start every guest marked with `vbuild autostart NAME on` that is not
    /// running, in name order (what the boot unit of `vbuild autostart
    /// install` runs).
    #[arg(long, conflicts_with_all = ["names", "all"])]
    pub autostart: bool,
    /// Attach to the guest's console once init runs (detach with Ctrl-]).
    #[arg(long)]
    pub console: bool,
    /// Wait until the guest has booted (systemd's READY=1; sysvinit in its
    /// default runlevel with that runlevel's rc scripts done) before returning.
    #[arg(long)]
    pub wait: bool,
    /// Seconds `--wait` waits for the boot.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub timeout: u64,
    /// Run this boot privileged: no user namespace, the guest's root is
    /// the host's root. NOT a security boundary; for trusted workloads
    /// only (a guest built with --privileged always runs so).
    #[arg(long)]
    pub privileged: bool,
    /// Deprecated, does nothing: every guest has its own user namespace
    /// unless it is privileged.
    #[arg(long, hide = true)]
    pub userns: bool,
    /// Internal: be the supervisor of the guest whose state directory is DIR.
    #[arg(long, hide = true, value_name = "DIR")]
    pub supervise: Option<PathBuf>,
    /// Internal: this start is the guest's restart policy at work (its
    /// supervisor runs it), so the restart count is kept.
    #[arg(long, hide = true)]
    pub policy_restart: bool,
}

/// Arguments of `vbuild stop`.
#[derive(Args, Debug)]
pub struct StopArgs {
    /// Guest names (one or more); each is stopped, one failure does not
    /// stop the others.
    #[arg(value_name = "NAME", required_unless_present_any = ["all", "autostart"])]
    pub names: Vec<String>,
    /// Stop every running guest.
    #[arg(long, conflicts_with = "names")]
    pub all: bool,
    /// Stop every running guest marked with `vbuild autostart NAME on`
    /// (what the boot unit runs when the host shuts down).
    #[arg(long, conflicts_with_all = ["names", "all"])]
    pub autostart: bool,
    /// Seconds to wait for a graceful shutdown before killing every
    /// process of the guest.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub timeout: u64,
    /// Kill the guest at once (SIGKILL to its init and every process of
    /// it), without asking init to shut down.
    #[arg(long, conflicts_with = "timeout")]
    pub kill: bool,
}

/// Arguments of `vbuild restart`.
#[derive(Args, Debug)]
pub struct RestartArgs {
    /// Guest name.
    pub name: String,
    /// Seconds to wait for the graceful shutdown.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub timeout: u64,
    /// Wait until the guest has booted again.
    #[arg(long)]
    pub wait: bool,
}

/// Arguments of `vbuild status`.
#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Guest name.
    pub name: String,
}

/// Arguments of `vbuild exec`.
#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Guest name.
    pub name: String,
    /// Give the command a terminal (for interactive programs).
    #[arg(long, short)]
    pub tty: bool,
    /// Run as this user of the guest: USER or USER:GROUP, names from the
    /// guest's own /etc/passwd and /etc/group, or numbers.
    #[arg(long, short, value_name = "USER[:GROUP]")]
    pub user: Option<String>,
    /// Working directory inside the guest (default /, or the user's home
    /// with --tty).
    #[arg(long, short, value_name = "DIR")]
    pub workdir: Option<String>,
    /// Extra environment variable KEY=VALUE; repeatable.
    #[arg(long = "env", short = 'e', value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Command and arguments (after `--` when they start with '-').
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// Arguments of `vbuild enter`.
#[derive(Args, Debug)]
pub struct EnterArgs {
    /// Guest name.
    pub name: String,
    /// A command to run on the terminal instead of root's login shell.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// Arguments of `vbuild console`.
#[derive(Args, Debug)]
pub struct ConsoleArgs {
    /// Guest name.
    pub name: String,
}

/// Arguments of `vbuild delete`.
#[derive(Args, Debug)]
pub struct DeleteArgs {
    /// Guest names (one or more); each is deleted, one failure does not
    /// stop the others.
    #[arg(value_name = "NAME", required = true)]
    pub names: Vec<String>,
    /// Delete a running guest too: kill it first.
    #[arg(long, short)]
    pub force: bool,
}

/// Arguments of `vbuild run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Root filesystem to run in.
    #[arg(long, value_name = "DIR")]
    pub rootfs: PathBuf,
    /// Join the default bridge network with an address of its own
    /// (default: loopback only).
    #[arg(long)]
    pub net: bool,
    /// Hostname inside (default: the rootfs directory's name).
    #[arg(long)]
    pub hostname: Option<String>,
    /// Extra environment variable KEY=VALUE; repeatable.
    #[arg(long = "env", short = 'e', value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Command and arguments (after `--` when they start with '-').
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// Arguments of `vbuild check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Also remove what killed builds left behind (half-built guest
    /// directories, stale lock files in guests/ and cache/tmp/).
    #[arg(long)]
    pub fix: bool,
}

pub(super) fn guest_name(s: &str) -> anyhow::Result<GuestName> {
    Ok(GuestName::parse(s)?)
}

/// Refuses what would only fail later inside the guest, or worse, be
/// passed on silently: `-e FOO` (no `=`), `-e =x` (no name), and an
/// empty program name.
fn check_command(cmd: &str, env: &[String], argv: &[String]) -> anyhow::Result<()> {
    for e in env {
        match e.split_once('=') {
            None => invalid!("-e {e}: not KEY=VALUE (e.g. -e LANG=C.UTF-8)"),
            Some(("", _)) => {
                invalid!("-e {e}: the name before '=' is empty (e.g. -e LANG=C.UTF-8)")
            }
            Some(_) => {}
        }
    }
    if argv.first().is_none_or(|p| p.is_empty()) {
        let how = if cmd == "run" {
            "run --rootfs DIR"
        } else {
            "exec NAME"
        };
        invalid!("{cmd}: the command is empty (e.g. `vbuild {how} -- /bin/sh -c 'echo hi'`)");
    }
    Ok(())
}

/// What a guest's supervisor runs when the guest reboots itself: this
/// binary's `start` for the same guest, state root and flags.
fn reboot_command(c: &Ctx, name: &str, privileged: bool) -> Vec<String> {
    let flags: &[&str] = if privileged { &["--privileged"] } else { &[] };
    vbuild_runtime::relaunch::reboot_command(
        &vbuild_runtime::relaunch::current_exe(),
        &c.layout,
        name,
        flags,
    )
}

/// What a guest's supervisor runs to start it again by its restart policy:
/// the reboot command with the hidden flag that keeps the restart count.
fn restart_command(c: &Ctx, name: &str, privileged: bool) -> Vec<String> {
    let mut argv = reboot_command(c, name, privileged);
    argv.push("--policy-restart".into());
    argv
}

/// The exit code of a command that could not be run, shell style.
fn command_error(c: &Ctx, e: RuntimeError) -> anyhow::Result<i32> {
    match &e {
        RuntimeError::Command { reason, .. } => {
            let code = if reason.contains("not found") {
                127
            } else {
                126
            };
            if c.json {
                let kind = if code == 127 {
                    "not_found"
                } else {
                    "not_executable"
                };
                output::print_error(&e.to_string(), kind, code);
            } else {
                eprintln!("vbuild: {e}");
            }
            Ok(code)
        }
        _ => Err(e.into()),
    }
}

/// `vbuild list`: every guest with distribution, state, address, processes
/// and memory, like vserver-stat.
pub fn list(c: &Ctx, _a: ListArgs) -> anyhow::Result<i32> {
    let all = vbuild_runtime::status::list(&c.layout)?;
    if c.json {
        output::json(&all)?;
        return Ok(0);
    }
    if all.is_empty() {
        println!("no guests (build one with `vbuild debian bookworm --name NAME`)");
        return Ok(0);
    }
    let dash = || "-".to_string();
    let rows: Vec<[String; 8]> = all
        .iter()
        .map(|s| {
            [
                if s.privileged {
                    format!("{} [privileged]", s.name)
                } else {
                    s.name.clone()
                },
                format!("{} {}", s.distro, s.release),
                state_word(s),
                if s.autostart { "on" } else { "-" }.to_string(),
                if s.addresses.is_empty() {
                    dash()
                } else {
                    s.addresses.join(",")
                },
                s.processes.map(|p| p.to_string()).unwrap_or_else(dash),
                s.memory_rss.map(format_size).unwrap_or_else(dash),
                s.uptime_secs.map(format_uptime).unwrap_or_else(dash),
            ]
        })
        .collect();
    let head = [
        "NAME",
        "DISTRO",
        "STATE",
        "AUTOSTART",
        "ADDRESSES",
        "PROCS",
        "RSS",
        "UPTIME",
    ]
    .map(String::from);
    print!("{}", table(&head, &rows, 3));
    Ok(0)
}

/// Columns as wide as their widest cell, left-aligned; the last
/// `right` columns (numbers) right-aligned.
fn table<const N: usize>(head: &[String; N], rows: &[[String; N]], right: usize) -> String {
    let mut w = [0usize; N];
    for r in std::iter::once(head).chain(rows) {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in std::iter::once(head).chain(rows) {
        let cells: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i >= N - right {
                    format!("{c:>width$}", width = w[i])
                } else {
                    format!("{c:<width$}", width = w[i])
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn state_word(s: &GuestStatus) -> String {
    if s.running && s.booted && s.state == "running" {
        "running (booted)".into()
    } else {
        s.state.clone()
    }
}

/// `vbuild start`.
pub fn start(c: &Ctx, a: StartArgs) -> anyhow::Result<i32> {
    if let Some(dir) = &a.supervise {
        return Ok(vbuild_runtime::supervisor::run(dir));
    }
    if a.userns && !c.quiet {
        eprintln!("vbuild: --userns is deprecated and does nothing: every guest that is not --privileged has its own user namespace");
    }
    let names = if a.autostart {
        marked(c, false)?
    } else {
        pick(c, &a.names, a.all, false)?
    };
    if a.console && (a.all || a.autostart || names.len() != 1) {
        invalid!("--console attaches to one guest; give one name");
    }
    let single = !a.all && !a.autostart && names.len() == 1;
    let code = for_each(c, "start", single, &names, |n| start_one(c, n, &a))?;
    if a.console && code == 0 {
        return attach_console(c, &guest_name(&names[0])?);
    }
    Ok(code)
}

/// Starts one guest, says so (text) and returns its JSON result.
fn start_one(c: &Ctx, n: &str, a: &StartArgs) -> anyhow::Result<serde_json::Value> {
    let name = guest_name(n)?;
    let opts = vbuild_runtime::start::StartOptions {
        privileged: a.privileged,
        supervisor: vbuild_runtime::relaunch::supervisor_program(name.as_str()),
        on_reboot: Some(reboot_command(c, name.as_str(), a.privileged)),
        on_exit: Some(restart_command(c, name.as_str(), a.privileged)),
    };
    if !a.policy_restart && vbuild_runtime::state::State::load(&c.layout, name.as_str())?.is_none()
    {
        // A start by hand: a new restart count, and a restart still
        // waiting out its backoff is no longer wanted.
        vbuild_runtime::restart::reset(&c.layout, name.as_str());
    }
    let s = vbuild_runtime::start::start(&c.layout, &name, &opts)?;
    if !c.json {
        for w in &s.warnings {
            eprintln!("vbuild: warning: {name}: {w}");
        }
    }
    let st = vbuild_runtime::state::State::load(&c.layout, name.as_str())?;
    let privileged = st.as_ref().is_some_and(|st| !st.userns);
    if !c.json && !c.quiet {
        let how = match &st {
            Some(st) if st.userns => format!("root is host uid {}", st.id_base),
            _ => "PRIVILEGED: root is the host's root, not a security boundary".into(),
        };
        eprintln!(
            "vbuild: started {name} (init pid {}, boot {}; {how})",
            s.init_pid, s.boot_id
        );
    }
    if a.wait {
        vbuild_runtime::start::wait_ready(&c.layout, &name, Duration::from_secs(a.timeout))?;
        if !c.json && !c.quiet {
            eprintln!("vbuild: {name} has booted");
        }
    }
    Ok(serde_json::json!({
        "name": name.as_str(),
        "init_pid": s.init_pid,
        "boot_id": s.boot_id,
        "state": "running",
        "privileged": privileged,
        "host_uid": st.as_ref().filter(|st| st.userns).map(|st| st.id_base),
        "warnings": s.warnings,
    }))
}

/// The guests a command acts on: `names` as given (each once, in order),
/// or with `all` every guest that runs (`running`) or does not.
pub(super) fn pick(
    c: &Ctx,
    names: &[String],
    all: bool,
    running: bool,
) -> anyhow::Result<Vec<String>> {
    use vbuild_runtime::state::{Liveness, State};
    if !all {
        let mut out: Vec<String> = Vec::new();
        for n in names {
            if !out.contains(n) {
                out.push(n.clone());
            }
        }
        return Ok(out);
    }
    let mut out = Vec::new();
    for n in vbuild_runtime::store::GuestStore::new(&c.layout).names()? {
        let live = State::load(&c.layout, &n)
            .ok()
            .flatten()
            .map(|st| st.liveness());
        let runs = matches!(
            live,
            Some(Liveness::Running { .. }) | Some(Liveness::Stopping)
        );
        // A guest whose supervisor was killed is stopped by `stop --all` (it cleans up).
        let stale = matches!(live, Some(Liveness::Stale));
        if (running && (runs || stale)) || (!running && !runs) {
            out.push(n);
        }
    }
    Ok(out)
}

/// The guests marked for autostart (in name order) that run (`running`:
/// what `stop --autostart` stops) or do not (what `start --autostart`
/// starts).
fn marked(c: &Ctx, running: bool) -> anyhow::Result<Vec<String>> {
    let candidates = pick(c, &[], true, running)?;
    Ok(vbuild_runtime::autostart::marked(&c.layout)?
        .into_iter()
        .filter(|n| candidates.contains(n))
        .collect())
}

/// Runs `one` for every name. One name (`single`): its JSON object, or its
/// error as usual. Several (or `--all`): each outcome is reported (a line
/// on stderr per failure; with `--json` one object `{"results": [...],
/// "failed": N}`, each result carrying `ok` and, on failure, the error
/// object), one failure does not stop the others, and the exit code is 1
/// when any failed.
pub(super) fn for_each(
    c: &Ctx,
    verb: &str,
    single: bool,
    names: &[String],
    one: impl Fn(&str) -> anyhow::Result<serde_json::Value>,
) -> anyhow::Result<i32> {
    if single {
        let v = one(&names[0])?;
        if c.json {
            output::json(&v)?;
        }
        return Ok(0);
    }
    let mut results = Vec::new();
    let mut failed: Vec<&str> = Vec::new();
    for n in names {
        match one(n) {
            Ok(mut v) => {
                v["ok"] = serde_json::Value::Bool(true);
                results.push(v);
            }
            Err(e) => {
                let mut message = output::one_line(&e);
                if !message.contains(n.as_str()) {
                    message = format!("{n}: {message}");
                }
                if !c.json {
                    eprintln!("vbuild: {message}");
                }
                results.push(serde_json::json!({
                    "name": n,
                    "ok": false,
                    "error": {"message": message, "kind": output::kind(&e), "exit_code": 1},
                }));
                failed.push(n.as_str());
            }
        }
    }
    if c.json {
        output::json(&serde_json::json!({"results": results, "failed": failed.len()}))?;
    } else if !c.quiet {
        if names.is_empty() {
            eprintln!("vbuild: no guest to {verb}");
        } else if failed.is_empty() {
            eprintln!("vbuild: {verb}: all {} done", names.len());
        } else {
            eprintln!(
                "vbuild: {verb}: {} of {} failed: {}",
                failed.len(),
                names.len(),
                failed.join(", ")
            );
        }
    }
    Ok(if failed.is_empty() { 0 } else { 1 })
}

/// `vbuild stop`.
pub fn stop(c: &Ctx, a: StopArgs) -> anyhow::Result<i32> {
    let names = if a.autostart {
        marked(c, true)?
    } else {
        pick(c, &a.names, a.all, true)?
    };
    let single = !a.all && !a.autostart && names.len() == 1;
    for_each(c, "stop", single, &names, |n| stop_one(c, n, &a))
}

/// Stops one guest, says so (text) and returns its JSON result.
fn stop_one(c: &Ctx, n: &str, a: &StopArgs) -> anyhow::Result<serde_json::Value> {
    use vbuild_runtime::stop::Stopped;
    let name = guest_name(n)?;
    let how = if a.kill {
        vbuild_runtime::stop::kill(&c.layout, &name)?
    } else {
        vbuild_runtime::stop::stop(&c.layout, &name, Duration::from_secs(a.timeout))?
    };
    if !c.json && !c.quiet {
        match how {
            Stopped::Graceful => eprintln!("vbuild: stopped {name}"),
            Stopped::Killed if a.kill => eprintln!("vbuild: killed {name}"),
            Stopped::Killed => eprintln!(
                "vbuild: {name} did not shut down within {} s; killed its processes",
                a.timeout
            ),
            Stopped::CleanedUp => {
                eprintln!("vbuild: {name} had already ended; cleaned up after it")
            }
            Stopped::RestartCancelled => eprintln!(
                "vbuild: {name} was waiting to be started again by its restart policy; cancelled, it stays stopped"
            ),
            Stopped::KilledWithoutConsole => eprintln!(
                "vbuild: {name}'s supervisor was gone, and its console with it, so its init could not \
                 finish shutting down within {} s; its processes got SIGTERM, then were killed",
                vbuild_runtime::stop::LOST_SUPERVISOR_WAIT
                    .as_secs()
                    .min(a.timeout)
            ),
        }
    }
    let word = match how {
        Stopped::Graceful => "graceful",
        Stopped::Killed => "killed",
        Stopped::CleanedUp => "cleaned_up",
        Stopped::KilledWithoutConsole => "killed_without_console",
        Stopped::RestartCancelled => "restart_cancelled",
    };
    Ok(serde_json::json!({"name": name.as_str(), "state": "stopped", "how": word}))
}

/// `vbuild restart`: stop (when running), then start.
pub fn restart(c: &Ctx, a: RestartArgs) -> anyhow::Result<i32> {
    let name = guest_name(&a.name)?;
    // Keep what the running guest was started with.
    let privileged = vbuild_runtime::state::State::load(&c.layout, name.as_str())?
        .map(|s| !s.userns)
        .unwrap_or(false);
    match vbuild_runtime::stop::stop(&c.layout, &name, Duration::from_secs(a.timeout)) {
        Ok(_) | Err(RuntimeError::NotRunning(_)) => {}
        Err(e) => return Err(e.into()),
    }
    start(
        c,
        StartArgs {
            names: vec![a.name],
            all: false,
            autostart: false,
            console: false,
            wait: a.wait,
            timeout: 120,
            privileged,
            userns: false,
            supervise: None,
            policy_restart: false,
        },
    )
}

/// `vbuild status`.
pub fn status(c: &Ctx, a: StatusArgs) -> anyhow::Result<i32> {
    let name = guest_name(&a.name)?;
    let s = vbuild_runtime::status::status(&c.layout, &name)?;
    if c.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(0);
    }
    println!("{}: {}", s.name, state_word(&s));
    println!("  distro:     {} {}", s.distro, s.release);
    match s.host_uid {
        _ if s.privileged => println!(
            "  isolation:  PRIVILEGED (no user namespace: root inside is the host's root; not a security boundary)"
        ),
        Some(uid) => println!("  isolation:  user namespace, root is host uid {uid} (ids {uid}-{})", uid as u64 + 65535),
        None => println!("  isolation:  user namespace (id range allocated at first start)"),
    }
    if let Some(pid) = s.init_pid {
        let sup = s
            .supervisor_pid
            .map(|p| format!("supervisor {p}"))
            .unwrap_or_else(|| "supervisor lost: `vbuild stop` still works".into());
        println!("  init:       pid {pid} ({sup})");
    }
    if let (Some(cg), Some(id)) = (&s.cgroup, &s.boot_id) {
        println!("  context:    cgroup {cg}, boot {id}");
    }
    if let Some(t) = &s.boot_status {
        println!("  boot:       {t}");
    }
    if let Some(u) = s.uptime_secs {
        println!("  uptime:     {}", format_uptime(u));
    }
    if let Some(p) = s.processes {
        println!(
            "  processes:  {p}{}",
            s.effective_limits
                .map_or(s.limits.pids, |e| e.pids)
                .map(|m| format!(" (limit {m})"))
                .unwrap_or_default()
        );
    }
    if let Some(m) = s.memory {
        let lim = s
            .effective_limits
            .map_or(s.limits.memory, |e| e.memory)
            .map(|l| format!(" (limit {})", format_size(l)))
            .unwrap_or_default();
        let split = match (s.memory_rss, s.memory_cache) {
            (Some(r), Some(c)) => {
                format!(" (RSS {}, page cache {})", format_size(r), format_size(c))
            }
            _ => String::new(),
        };
        println!("  memory:     {}{split}{lim}", format_size(m));
    }
    if let Some(k) = s.oom_kills.filter(|k| *k > 0) {
        println!(
            "  OOM kills:  {k} (the kernel killed processes at the memory limit; raise it with `vbuild limit {} --memory SIZE`)",
            s.name
        );
    }
    if let Some(cpu) = s.cpu_secs {
        let lim = s
            .effective_limits
            .map_or(s.limits.cpus, |e| e.cpus)
            .map(|l| format!(" (limit {l} CPUs)"))
            .unwrap_or_default();
        println!("  cpu time:   {cpu:.2} s{lim}");
    }
    if let Some(d) = s.disk {
        println!(
            "  disk:       {} of {}",
            format_size(d.used),
            format_size(d.limit)
        );
    }
    if s.limits.has_io() || s.init_pid.is_some() {
        // Bytes read/written by the guest beside its I/O throttle, from the cgroup.
        let cg = vbuild_runtime::store::GuestStore::new(&c.layout).cgroup(name.as_str());
        let usage = vbuild_runtime::limits::usage(cg.as_ref(), &c.layout, name.as_str());
        for line in vbuild_runtime::limits::report(&s.limits, &usage) {
            if line.what.starts_with("io") {
                println!(
                    "  {:<11} {} (limit {})",
                    format!("{}:", line.what),
                    line.used,
                    line.limit
                );
            }
        }
    }
    if !s.addresses.is_empty() {
        println!("  addresses:  {}", s.addresses.join(" "));
    }
    println!(
        "  autostart:  {}",
        if s.autostart {
            "on (started at host boot by `vbuild start --autostart`)"
        } else {
            "off"
        }
    );
    for line in restart_lines(&s.restart) {
        println!("  {line}");
    }
    println!("  console:    {}", s.console_log.display());
    Ok(0)
}

/// `status`'s lines about the restart policy: the policy and the restarts
/// it made, how init last ended, and why the guest was left stopped.
fn restart_lines(r: &vbuild_runtime::status::RestartStatus) -> Vec<String> {
    let mut out = Vec::new();
    let count = match r.count {
        0 => String::new(),
        1 => " (restarted once)".into(),
        n => format!(" (restarted {n} times)"),
    };
    let pending = if r.pending {
        ", starting again after its backoff"
    } else {
        ""
    };
    out.push(format!("restart:    {}{count}{pending}", r.policy));
    if let Some(e) = &r.last_exit {
        out.push(format!("last exit:  {e}"));
    }
    if let Some(why) = &r.stopped_because {
        out.push(format!("stopped:    {why}"));
    }
    out
}

/// `vbuild exec`: the command's exit code becomes ours.
pub fn exec(c: &Ctx, a: ExecArgs) -> anyhow::Result<i32> {
    let name = guest_name(&a.name)?;
    check_command("exec", &a.env, &a.command)?;
    let user = match &a.user {
        None => None,
        Some(spec) => match vbuild_runtime::exec::resolve_user(&c.layout, &name, spec) {
            Ok(u) => Some(u),
            Err(vbuild_runtime::exec::UserError::Runtime(e)) => return Err(e.into()),
            Err(e) => {
                return Err(output::Refused {
                    message: e.to_string(),
                    kind: "not_found",
                }
                .into())
            }
        },
    };
    if let Some(dir) = &a.workdir {
        if !dir.starts_with('/') {
            invalid!("--workdir {dir}: give an absolute path inside the guest");
        }
        if !vbuild_runtime::exec::guest_is_dir(&c.layout, &name, dir)? {
            return Err(output::Refused {
                message: format!("guest {name}: --workdir {dir}: no such directory in the guest"),
                kind: "not_found",
            }
            .into());
        }
    }
    let workdir = a.workdir.clone().or_else(|| match &user {
        Some(u) if a.tty => Some(u.home.clone()),
        _ => None,
    });
    let opts = vbuild_runtime::exec::ExecOptions {
        tty: a.tty,
        env: a.env,
        workdir,
        user,
        ..Default::default()
    };
    // The runtime relays our stdio and passes SIGINT/SIGTERM/SIGHUP/SIGQUIT
    // on to the command (so they must not be ignored here).
    match vbuild_runtime::exec::exec(&c.layout, &name, &a.command, &opts) {
        Ok(code) => Ok(code),
        Err(e) => command_error(c, e),
    }
}

/// `vbuild enter`: root's login shell on a terminal inside the guest.
pub fn enter(c: &Ctx, a: EnterArgs) -> anyhow::Result<i32> {
    let name = guest_name(&a.name)?;
    if !a.command.is_empty() {
        check_command("enter", &[], &a.command)?;
        let opts = vbuild_runtime::exec::ExecOptions {
            tty: true,
            workdir: Some("/root".into()),
            ..Default::default()
        };
        return match vbuild_runtime::exec::exec(&c.layout, &name, &a.command, &opts) {
            Ok(code) => Ok(code),
            Err(e) => command_error(c, e),
        };
    }
    let shell = vbuild_runtime::exec::login_shell(&c.layout, &name)?;
    if let Some(w) = &shell.warning {
        eprintln!("vbuild: warning: {name}: {w}");
    }
    match vbuild_runtime::exec::enter(&c.layout, &name, &shell) {
        Ok(code) => Ok(code),
        Err(e) => command_error(c, e),
    }
}

/// `vbuild console`.
pub fn console(c: &Ctx, a: ConsoleArgs) -> anyhow::Result<i32> {
    let name = guest_name(&a.name)?;
    attach_console(c, &name)
}

fn attach_console(c: &Ctx, name: &GuestName) -> anyhow::Result<i32> {
    use vbuild_runtime::console::Detached;
    // Connect before printing, so a refusal is the only line shown.
    let console = vbuild_runtime::console::connect(&c.layout, name)?;
    if !c.quiet {
        eprintln!("vbuild: attached to {name}'s console; press Ctrl-] to detach\r");
    }
    let how = console.relay()?;
    if !c.quiet {
        match how {
            Detached::ByUser | Detached::InputClosed => {
                eprintln!("\r\nvbuild: detached from {name}'s console (it keeps running)\r")
            }
            Detached::GuestStopped => eprintln!("\r\nvbuild: {name} stopped\r"),
        }
    }
    Ok(0)
}

/// `vbuild delete`.
pub fn delete(c: &Ctx, a: DeleteArgs) -> anyhow::Result<i32> {
    let names = pick(c, &a.names, false, false)?;
    for_each(c, "delete", names.len() == 1, &names, |n| {
        delete_one(c, n, a.force)
    })
}

/// Deletes one guest (killing it first with `force`), says so (text) and
/// returns its JSON result.
fn delete_one(c: &Ctx, n: &str, force: bool) -> anyhow::Result<serde_json::Value> {
    let name = guest_name(n)?;
    if force {
        let was_running = vbuild_runtime::delete::delete_force(&c.layout, &name)?;
        if !c.json && !c.quiet {
            if was_running {
                eprintln!("vbuild: killed and deleted {name}");
            } else {
                eprintln!("vbuild: deleted {name}");
            }
        }
        return Ok(
            serde_json::json!({"name": name.as_str(), "deleted": true, "was_running": was_running}),
        );
    }
    match vbuild_runtime::delete::delete(&c.layout, &name) {
        Ok(()) => {}
        Err(RuntimeError::Running(_)) => {
            return Err(output::Refused {
                message: format!(
                    "guest {name} is running; stop it first with `vbuild stop {name}`, or kill and delete it with `vbuild delete --force {name}`"
                ),
                kind: "running",
            }
            .into())
        }
        Err(e) => return Err(e.into()),
    }
    if !c.json && !c.quiet {
        eprintln!("vbuild: deleted {name}");
    }
    Ok(serde_json::json!({"name": name.as_str(), "deleted": true}))
}

/// `vbuild run`: the command's exit code becomes ours.
pub fn run(c: &Ctx, a: RunArgs) -> anyhow::Result<i32> {
    check_command("run", &a.env, &a.command)?;
    let rootfs = a.rootfs.clone();
    let opts = vbuild_runtime::oneshot::RunOptions {
        rootfs: a.rootfs,
        argv: a.command,
        hostname: a.hostname,
        env: a.env,
        net: a.net,
    };
    let _quiet = IgnoreSignals::new(true);
    match vbuild_runtime::oneshot::run(&c.layout, &opts) {
        Ok(code) => {
            if c.json {
                output::json(&serde_json::json!({"rootfs": rootfs, "exit_code": code}))?;
            }
            Ok(code)
        }
        Err(e) => command_error(c, e),
    }
}

/// `vbuild check`: what this host offers guests.
pub fn check(c: &Ctx, a: CheckArgs) -> anyhow::Result<i32> {
    use vbuild_kernel::probe::Level;
    let mut findings = vbuild_kernel::probe::all();
    findings.extend(vbuild_kernel::probe::unprivileged(c.layout.root()));
    findings.push(disk_finding(&c.layout));
    findings.push(leftovers_finding(&c.layout, a.fix)?);
    findings.push(super::template::leftovers_finding(&c.layout, a.fix)?);
    if c.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&findings).context("findings as JSON")?
        );
    } else {
        for f in &findings {
            let verdict = match f.level {
                Level::Ok => "ok",
                Level::Warn => "warn",
                Level::Missing => "MISSING",
            };
            println!("{:<12} {:<20} {:<8} {}", f.area, f.name, verdict, f.detail);
        }
    }
    let missing = findings
        .iter()
        .filter(|f| f.level == Level::Missing)
        .count();
    Ok(if missing > 0 { 1 } else { 0 })
}

/// What killed builds left in this state root; with `fix`, removed (each
/// under its build lock, so a running build is never touched).
fn leftovers_finding(
    layout: &vbuild_runtime::paths::Layout,
    fix: bool,
) -> anyhow::Result<vbuild_kernel::probe::Finding> {
    use vbuild_kernel::probe::{Finding, Level};
    let store = vbuild_runtime::store::GuestStore::new(layout);
    let finding = |level, detail| Finding::new("store", "leftovers", level, detail);
    if !fix {
        let found = store.leftovers()?;
        if found.is_empty() {
            return Ok(finding(Level::Ok, "no remains of killed builds".into()));
        }
        let list: Vec<String> = found.iter().map(|l| l.to_string()).collect();
        return Ok(finding(
            Level::Warn,
            format!("{} (remove with `vbuild check --fix`)", list.join(", ")),
        ));
    }
    let removed = store.remove_leftovers()?;
    let cache_dir = layout.cache_dir();
    let locks = if cache_dir.is_dir() {
        vbuild_cache::Cache::open(&cache_dir)?.sweep_stale_locks()?
    } else {
        0
    };
    Ok(finding(
        Level::Ok,
        format!(
            "removed {} remains of killed builds{} and {locks} stale cache lock files",
            removed.len(),
            if removed.is_empty() {
                String::new()
            } else {
                format!(
                    " ({})",
                    removed
                        .iter()
                        .map(|l| l.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        ),
    ))
}

/// Which backend `--disk` limits use under this state root, and why the
/// better ones were passed over (probed at the nearest existing directory,
/// so check creates nothing).
fn disk_finding(layout: &vbuild_runtime::paths::Layout) -> vbuild_kernel::probe::Finding {
    use vbuild_kernel::probe::{Finding, Level};
    let guests = layout.guests_dir();
    let at = guests
        .ancestors()
        .find(|p| p.is_dir())
        .unwrap_or(std::path::Path::new("/"));
    match vbuild_kernel::disk::probe(at) {
        Ok(p) => {
            let why = if p.notes.is_empty() {
                String::new()
            } else {
                format!(" ({})", p.notes.join("; "))
            };
            Finding::new(
                "disk",
                "disk limits",
                Level::Ok,
                format!(
                    "--disk uses {} under {}{why}",
                    p.backend.name(),
                    guests.display()
                ),
            )
        }
        Err(e) => Finding::new(
            "disk",
            "disk limits",
            Level::Warn,
            format!("cannot tell which --disk backend applies: {e}"),
        ),
    }
}

/// Ignores SIGINT and SIGQUIT while a command in a guest runs (the
/// terminal sends them to it directly), like system(3) does; restores the
/// previous handling when dropped.
struct IgnoreSignals {
    saved: Option<[libc::sighandler_t; 2]>,
}

impl IgnoreSignals {
    fn new(on: bool) -> IgnoreSignals {
        if !on {
            return IgnoreSignals { saved: None };
        }
        // SAFETY: swapping the dispositions of two signals.
        let saved = unsafe {
            [
                libc::signal(libc::SIGINT, libc::SIG_IGN),
                libc::signal(libc::SIGQUIT, libc::SIG_IGN),
            ]
        };
        IgnoreSignals { saved: Some(saved) }
    }
}

impl Drop for IgnoreSignals {
    fn drop(&mut self) {
        if let Some([i, q]) = self.saved {
            // SAFETY: restoring what we replaced.
            unsafe {
                libc::signal(libc::SIGINT, i);
                libc::signal(libc::SIGQUIT, q);
            }
        }
    }
}
