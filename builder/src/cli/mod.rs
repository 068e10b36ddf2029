//! Command-line parsing and dispatch. One file per command group; each
//! defines its own clap argument structs and a `run` function. Errors are
//! reported once here, as one line without a stack trace.

mod autostart;
mod build;
mod cache;
mod catalog;
mod copy;
mod customize;
mod docs;
mod examples;
mod guest;
mod image;
mod limit;
mod logs;
mod net;
pub(crate) mod output;
mod template;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
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
    #[arg(
        long,
        global = true,
        env = "VBUILD_ROOT",
        value_name = "DIR",
        help_heading = GLOBAL
    )]
    pub root: Option<PathBuf>,
    /// Print one JSON object on stdout (errors too: {"error": {...}}).
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub json: bool,
    /// Say less: no progress bars.
    #[arg(long, short, global = true, help_heading = GLOBAL)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// The heading the options of every command are listed under, apart from
/// the command's own.
const GLOBAL: &str = "Global options";

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
    /// Start guests: each one's init runs as PID 1 in a new context.
    Start(guest::StartArgs),
    /// Stop guests gracefully (the right signal for their init), then kill what is left.
    Stop(guest::StopArgs),
    /// Stop and start a guest again.
    Restart(guest::RestartArgs),
    /// Mark guests to start at host boot, or install the boot unit that starts them.
    Autostart(autostart::AutostartArgs),
    /// Show a guest's state, init pid, uptime and use beside its limits.
    Status(guest::StatusArgs),
    /// Run a command inside a running guest; its exit code is passed through.
    Exec(guest::ExecArgs),
    /// Open an interactive shell inside a running guest.
    Enter(guest::EnterArgs),
    /// Attach to a running guest's console (detach with Ctrl-]).
    Console(guest::ConsoleArgs),
    /// Delete stopped guests (running ones too with --force): rootfs, config and disk image.
    Delete(guest::DeleteArgs),
    /// Copy files between the host and a guest, running or not (NAME:PATH in it).
    Cp(copy::CpArgs),
    /// Run a one-shot command in a fresh context on any root filesystem.
    Run(guest::RunArgs),
    /// Change resource limits, live on a running guest and in guest.toml.
    Limit(limit::LimitArgs),
    /// Change a guest's network settings (applied at next start) or its restart policy.
    Set(net::SetArgs),
    /// Write a guest's root filesystem as it is now to an image file.
    Export(image::ExportArgs),
    /// Make a guest from an image archive (checked and confined; all or nothing).
    Import(image::ImportArgs),
    /// Manage host networks (bridges) guests join.
    #[command(subcommand)]
    Net(net::NetCommand),
    /// Report what this host supports: cgroups, quotas, namespaces, networking.
    Check(guest::CheckArgs),
    /// Manage templates, the shared trees overlay guests are made from.
    #[command(subcommand)]
    Template(template::TemplateCommand),
    /// Publish images as catalogs Incus, LXC and `vbuild pull` read.
    #[command(subcommand)]
    Catalog(catalog::CatalogCommand),
    /// Make a guest from a catalog's image: signature, size and sha256 checked first.
    Pull(catalog::PullArgs),
    /// Show or prune the download cache (packages and indices per distro).
    #[command(subcommand)]
    Cache(cache::CacheCommand),
    /// Show a guest's console log (or its supervisor's); -f follows it.
    Logs(logs::LogsArgs),
    /// Write a shell completion script (bash, zsh, fish) to stdout.
    Completions(docs::CompletionsArgs),
    /// Write the man page (to stdout, or every command's into a directory).
    Man(docs::ManArgs),
}

/// Parses the command line, runs the command and turns errors into one line
/// on stderr (a JSON error object on stdout with `--json`); returns the
/// process exit code.
pub fn main() -> i32 {
    let cli = match parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
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
        Command::Autostart(a) => autostart::autostart(&ctx, a),
        Command::Status(a) => guest::status(&ctx, a),
        Command::Exec(a) => guest::exec(&ctx, a),
        Command::Enter(a) => guest::enter(&ctx, a),
        Command::Console(a) => guest::console(&ctx, a),
        Command::Delete(a) => guest::delete(&ctx, a),
        Command::Run(a) => guest::run(&ctx, a),
        Command::Limit(a) => limit::limit(&ctx, a),
        Command::Set(a) => net::set(&ctx, a),
        Command::Net(c) => net::net(&ctx, c),
        Command::Export(a) => image::export(&ctx, a),
        Command::Import(a) => image::import(&ctx, a),
        Command::Check(a) => guest::check(&ctx, a),
        Command::Template(c) => template::template(&ctx, c),
        Command::Catalog(c) => catalog::catalog(&ctx, c),
        Command::Pull(a) => catalog::pull(&ctx, a),
        Command::Cache(c) => cache::cache(&ctx, c),
        Command::Logs(a) => logs::logs(&ctx, a),
        Command::Cp(a) => copy::cp(&ctx, a),
        Command::Completions(a) => docs::completions(&ctx, a),
        Command::Man(a) => docs::man(&ctx, a),
    };
    match result {
        Ok(code) => code,
        Err(e) => output::fail(ctx.json, &e),
    }
}

/// `--restart POLICY` (build and `set`): the runtime's own words and errors.
pub(crate) fn parse_restart(s: &str) -> Result<vbuild_runtime::restart::RestartPolicy, String> {
    s.parse()
}

/// The command line, with every command's examples in its help.
fn parse() -> Result<Cli, clap::Error> {
    let matches = examples::with_examples(Cli::command()).try_get_matches()?;
    Cli::from_arg_matches(&matches)
}

/// A command line clap refused: its own text, or with `--json` anywhere on
/// the line, the JSON error object (kind `usage`). Help and version are
/// printed as asked.
fn usage_error(e: clap::Error) -> i32 {
    use clap::error::ErrorKind;
    let wants_json = std::env::args().skip(1).any(|a| a == "--json");
    let shown = matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    if !wants_json || shown {
        e.exit();
    }
    // clap's message is the paragraph before "Usage:"; made one line.
    let rendered = e.render().to_string();
    let words: Vec<&str> = rendered
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.trim().trim_start_matches("error: "))
        .collect();
    output::print_error(
        &format!("{} (see `vbuild --help`)", words.join(" ")),
        "usage",
        output::USAGE_EXIT,
    );
    output::USAGE_EXIT
}
