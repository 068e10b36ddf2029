//! vbuild-runc: runc's command line over vbuild's container setup, for
//! engines that drive an OCI runtime (containerd's runc shim, podman,
//! Nomad). State lives under `--root`; errors go to stderr and, with
//! `--log`, to that file (JSON lines with `--log-format json`).

use vbuild_oci::cli::{self, Command, Global};
use vbuild_oci::error::OciError;
use vbuild_oci::state::Root;
use vbuild_oci::{create, lifecycle};

/// Appends a line to the command's output (written once, at the end, so
/// a closed stdout is one clear error rather than a panic mid-way).
macro_rules! say {
    ($o:expr, $($t:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($o, $($t)*);
    }};
}

/// Runs `cmd`; returns what it prints on stdout.
fn run(g: &Global, cmd: Command) -> Result<String, OciError> {
    let mut out = String::new();
    let root = Root::new(&g.root);
    match cmd {
        Command::Version => {
            say!(out, "vbuild-runc version {}", env!("CARGO_PKG_VERSION"));
            say!(out, "spec: {}", vbuild_oci::OCI_VERSION);
        }
        Command::Help => out.push_str(cli::HELP),
        Command::Create(o) => {
            create::create(&root, &o)?;
        }
        Command::Exec(o) => {
            let code = vbuild_oci::exec::exec(&root, &o)?;
            if code != 0 {
                std::process::exit(code);
            }
        }
        Command::Start { id } => lifecycle::start(&root, &id)?,
        Command::State { id } => {
            let s = root.load(&id)?;
            say!(
                out,
                "{}",
                serde_json::to_string_pretty(&root.state_json(&s)).expect("json")
            );
        }
        Command::Kill { id, signal, all } => lifecycle::kill(&root, &id, signal, all)?,
        Command::Delete { id, force } => lifecycle::delete(&root, &id, force)?,
        Command::Pause { id } => lifecycle::pause(&root, &id, true)?,
        Command::Resume { id } => lifecycle::pause(&root, &id, false)?,
        Command::Ps { id, json } => {
            let pids = lifecycle::ps(&root, &id)?;
            if json {
                say!(out, "{}", serde_json::to_string(&pids).expect("json"));
            } else {
                say!(out, "PID");
                for p in pids {
                    say!(out, "{p}");
                }
            }
        }
        Command::Update { id, resources } => {
            let text = if resources.as_os_str() == "-" {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
                    .map_err(vbuild_oci::error::io("stdin"))?;
                s
            } else {
                std::fs::read_to_string(&resources).map_err(vbuild_oci::error::io(&resources))?
            };
            let r = serde_json::from_str(&text)
                .map_err(|e| OciError::Config(format!("--resources: {e}")))?;
            lifecycle::update(&root, &id, &r)?;
        }
        Command::List { json, quiet } => {
            let ids = root.ids()?;
            if quiet {
                for id in ids {
                    say!(out, "{id}");
                }
                return Ok(out);
            }
            let states: Vec<serde_json::Value> = ids
                .iter()
                .filter_map(|id| root.load(id).ok())
                .map(|s| root.state_json(&s))
                .collect();
            if json {
                say!(out, "{}", serde_json::to_string(&states).expect("json"));
            } else {
                say!(
                    out,
                    "{:<20} {:<8} {:<10} {:<40} CREATED",
                    "ID",
                    "PID",
                    "STATUS",
                    "BUNDLE"
                );
                for s in states {
                    say!(
                        out,
                        "{:<20} {:<8} {:<10} {:<40} {}",
                        s["id"].as_str().unwrap_or(""),
                        s["pid"],
                        s["status"].as_str().unwrap_or(""),
                        s["bundle"].as_str().unwrap_or(""),
                        s["created"].as_str().unwrap_or("")
                    );
                }
            }
        }
        Command::Features => {
            say!(
                out,
                "{}",
                serde_json::to_string_pretty(&vbuild_oci::features::features()).expect("json")
            );
        }
    }
    Ok(out)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (g, cmd) = match cli::parse(&args) {
        Ok(x) => x,
        Err(e) => {
            let g = Global::fallback(&args);
            vbuild_oci::log::error(&g, &e.to_string());
            std::process::exit(1);
        }
    };
    if g.debug {
        vbuild_oci::log::debug(&g, &format!("args: {args:?}"));
    }
    let printed = run(&g, cmd).and_then(|out| {
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(out.as_bytes())
            .and_then(|()| stdout.flush())
            .map_err(vbuild_oci::error::io("stdout"))
    });
    if let Err(e) = printed {
        vbuild_oci::log::error(&g, &e.to_string());
        std::process::exit(1);
    }
}
