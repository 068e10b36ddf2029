//! vbuild-runc: runc's command line over vbuild's container setup, for
//! engines that drive an OCI runtime (containerd's runc shim, podman,
//! Nomad). State lives under `--root`; errors go to stderr and, with
//! `--log`, to that file (JSON lines with `--log-format json`).

use vbuild_oci::cli::{self, Command, Global};
use vbuild_oci::error::OciError;
use vbuild_oci::state::Root;
use vbuild_oci::{create, lifecycle};

fn run(g: &Global, cmd: Command) -> Result<(), OciError> {
    let root = Root::new(&g.root);
    match cmd {
        Command::Version => {
            println!("vbuild-runc version {}", env!("CARGO_PKG_VERSION"));
            println!("spec: {}", vbuild_oci::OCI_VERSION);
        }
        Command::Help => print!("{}", cli::HELP),
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
            println!(
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
                println!("{}", serde_json::to_string(&pids).expect("json"));
            } else {
                println!("PID");
                for p in pids {
                    println!("{p}");
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
                    println!("{id}");
                }
                return Ok(());
            }
            let states: Vec<serde_json::Value> = ids
                .iter()
                .filter_map(|id| root.load(id).ok())
                .map(|s| root.state_json(&s))
                .collect();
            if json {
                println!("{}", serde_json::to_string(&states).expect("json"));
            } else {
                println!(
                    "{:<20} {:<8} {:<10} {:<40} CREATED",
                    "ID", "PID", "STATUS", "BUNDLE"
                );
                for s in states {
                    println!(
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
            println!(
                "{}",
                serde_json::to_string_pretty(&vbuild_oci::features::features()).expect("json")
            );
        }
    }
    Ok(())
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
    if let Err(e) = run(&g, cmd) {
        vbuild_oci::log::error(&g, &e.to_string());
        std::process::exit(1);
    }
}
