//! Command-line parsing and dispatch. One file per command group; each
//! defines its own clap argument structs and a `run` function. Errors are
//! reported once here, as one line without a stack trace.

mod build;
mod guest;
mod limit;
mod net;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use vbuild_runtime::paths::Layout;

/// vbuild builds Debian and Fedora guests from their own repositories,
/// verified end to end, and boots each in its own isolated context on this
/// kernel: own PID 1, hostname, addresses, cgroup limits and disk space.
///
/// Examples:
///   vbuild build debian bookworm --name mail01 --ip 10.77.0.11/24 --memory 512M
///   vbuild debian bookworm --name mail02     (shorthand of `vbuild build debian`)
///   vbuild fedora 44 --name web01            (shorthand of `vbuild build fedora`)
///   vbuild start mail01 && vbuild exec mail01 -- systemctl is-system-running
///   vbuild list
#[derive(Parser, Debug)]
#[command(name = "vbuild", version, verbatim_doc_comment)]
pub struct Cli {
    /// State directory (cache, templates, guests); runtime state moves to ROOT/run.
    #[arg(long, global = true, env = "VBUILD_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Say less: no progress bars.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// Everything a command needs besides its own arguments.
pub struct Ctx {
    /// Where state lives.
    pub layout: Layout,
    /// `--json`.
    pub json: bool,
    /// `--quiet`.
    pub quiet: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Build a guest: FAMILY (debian, fedora) and RELEASE, from the family's own repository.
    Build(Box<build::BuildArgs>),
    /// Build a Debian guest (bookworm, trixie, forky, sid): `vbuild build debian` shortened.
    Debian(Box<build::DebianArgs>),
    /// Build a Fedora guest (43, 44, 45, rawhide): `vbuild build fedora` shortened.
    Fedora(Box<build::FedoraArgs>),
    /// List guests: name, distribution, state, address, processes, memory.
    List(guest::ListArgs),
    /// Start a guest: its init runs as PID 1 in a new context.
    Start(guest::StartArgs),
    /// Stop a guest gracefully (the right signal for its init), then kill what is left.
    Stop(guest::StopArgs),
    /// Stop and start a guest again.
    Restart(guest::RestartArgs),
    /// Show a guest's state, init pid, uptime and use beside its limits.
    Status(guest::StatusArgs),
    /// Run a command inside a running guest; its exit code is passed through.
    Exec(guest::ExecArgs),
    /// Open an interactive shell inside a running guest.
    Enter(guest::EnterArgs),
    /// Attach to a running guest's console (detach with Ctrl-]).
    Console(guest::ConsoleArgs),
    /// Delete a stopped guest: its rootfs, config and disk image.
    Delete(guest::DeleteArgs),
    /// Run a one-shot command in a fresh context on any root filesystem.
    Run(guest::RunArgs),
    /// Change resource limits, live on a running guest and in guest.toml.
    Limit(limit::LimitArgs),
    /// Change a guest's network settings (applied at next start).
    Set(net::SetArgs),
    /// Manage host networks (bridges) guests join.
    #[command(subcommand)]
    Net(net::NetCommand),
    /// Report what this host supports: cgroups, quotas, namespaces, networking.
    Check(guest::CheckArgs),
}

/// Parses the command line, runs the command and turns errors into one line
/// on stderr; returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    let ctx = Ctx {
        layout: Layout::new(cli.root.as_deref()),
        json: cli.json,
        quiet: cli.quiet,
    };
    let result = match cli.command {
        Command::Build(a) => build::build_cmd(&ctx, *a),
        Command::Debian(a) => build::debian(&ctx, *a),
        Command::Fedora(a) => build::fedora(&ctx, *a),
        Command::List(a) => guest::list(&ctx, a),
        Command::Start(a) => guest::start(&ctx, a),
        Command::Stop(a) => guest::stop(&ctx, a),
        Command::Restart(a) => guest::restart(&ctx, a),
        Command::Status(a) => guest::status(&ctx, a),
        Command::Exec(a) => guest::exec(&ctx, a),
        Command::Enter(a) => guest::enter(&ctx, a),
        Command::Console(a) => guest::console(&ctx, a),
        Command::Delete(a) => guest::delete(&ctx, a),
        Command::Run(a) => guest::run(&ctx, a),
        Command::Limit(a) => limit::limit(&ctx, a),
        Command::Set(a) => net::set(&ctx, a),
        Command::Net(c) => net::net(&ctx, c),
        Command::Check(a) => guest::check(&ctx, a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("vbuild: {}", one_line(&e));
            1
        }
    }
}

/// Joins an error chain into one line: `outer: cause: root cause`.
fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in e.chain() {
        let s = c.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}
