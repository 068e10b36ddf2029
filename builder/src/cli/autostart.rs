//! `vbuild autostart NAME... on|off` (marks guests in guest.toml; `vbuild
//! start --autostart` starts them), `vbuild autostart` (lists them) and
//! `vbuild autostart install|uninstall`: the host's boot integration, a
//! systemd unit when PID 1 is systemd, else an init script with its
//! runlevel links (sysvinit's LSB script and rc links, or OpenRC's
//! script and default runlevel link).
//!
//! Every file written carries [`MARK`]; install replaces only files that
//! carry it (refusing anyone else's) and uninstall removes only those, so
//! neither touches what vbuild did not write.

use super::guest::{for_each, guest_name};
use super::output::invalid;
use super::Ctx;
use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};

/// Arguments of `vbuild autostart`.
#[derive(Args, Debug)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    override_usage = "vbuild autostart NAME... on|off\n       vbuild autostart --all on|off\n       vbuild autostart\n       vbuild autostart install|uninstall [--init SYSTEM]"
)]
pub struct AutostartArgs {
    #[command(subcommand)]
    pub command: Option<AutostartCommand>,
    /// Guest names, then `on` or `off` (with --all, `on` or `off` alone);
    /// nothing: list the marked guests and the installed boot unit.
    #[arg(value_name = "NAME|on|off")]
    pub words: Vec<String>,
    /// Every guest.
    #[arg(long)]
    pub all: bool,
}

/// `vbuild autostart` subcommands.
#[derive(Subcommand, Debug)]
pub enum AutostartCommand {
    /// Install the boot unit that runs `vbuild start --autostart` at host boot
    /// (and `vbuild stop --autostart` at shutdown).
    Install(BootArgs),
    /// Remove the boot unit `install` wrote (guests keep their marks).
    Uninstall(BootArgs),
}

/// Where the boot integration goes.
#[derive(Args, Debug)]
pub struct BootArgs {
    /// The host's init system (default: systemd when PID 1 is systemd,
    /// else openrc when OpenRC is installed, else sysvinit).
    #[arg(long = "init", value_enum, value_name = "SYSTEM")]
    pub init: Option<InitSystem>,
    /// Write below DIR instead of / (for tests and image builds).
    #[arg(
        long,
        hide = true,
        env = "VBUILD_AUTOSTART_SYSROOT",
        value_name = "DIR"
    )]
    pub sysroot: Option<PathBuf>,
}

/// Init systems `install` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InitSystem {
    /// A unit in /etc/systemd/system, wanted by multi-user.target.
    Systemd,
    /// An LSB script in /etc/init.d with S99/K01 links in /etc/rcN.d.
    Sysvinit,
    /// An openrc-run script in /etc/init.d, in the default runlevel.
    Openrc,
}

impl InitSystem {
    fn as_str(self) -> &'static str {
        match self {
            InitSystem::Systemd => "systemd",
            InitSystem::Sysvinit => "sysvinit",
            InitSystem::Openrc => "openrc",
        }
    }
}

/// The line every file `install` writes carries.
pub const MARK: &str = "written by `vbuild autostart install`";
/// The unit's and the scripts' name.
const UNIT: &str = "vbuild-autostart";

/// `vbuild autostart ...`.
pub fn autostart(c: &Ctx, a: AutostartArgs) -> anyhow::Result<i32> {
    match a.command {
        Some(AutostartCommand::Install(b)) => return install(c, &b),
        Some(AutostartCommand::Uninstall(b)) => return uninstall(c, &b),
        None => {}
    }
    if a.words.is_empty() {
        if a.all {
            invalid!("autostart --all: say `on` or `off` (e.g. `vbuild autostart --all off`)");
        }
        return show(c);
    }
    let (last, names) = a.words.split_last().expect("not empty");
    let on = match last.as_str() {
        "on" => true,
        "off" => false,
        w => invalid!(
            "autostart: {w:?} is not `on` or `off`; give the guest names first, then on|off (e.g. `vbuild autostart web01 on`)"
        ),
    };
    let names: Vec<String> = if a.all {
        if !names.is_empty() {
            invalid!("autostart --all {last}: give names or --all, not both");
        }
        vbuild_runtime::store::GuestStore::new(&c.layout).names()?
    } else {
        if names.is_empty() {
            invalid!(
                "autostart {last}: which guests? give their names first (e.g. `vbuild autostart web01 {last}`) or --all"
            );
        }
        let mut v: Vec<String> = Vec::new();
        for n in names {
            if !v.contains(n) {
                v.push(n.clone());
            }
        }
        v
    };
    let single = !a.all && names.len() == 1;
    let verb = if on { "autostart on" } else { "autostart off" };
    for_each(c, verb, single, &names, |n| {
        let name = guest_name(n)?;
        let changed = vbuild_runtime::autostart::set_autostart(&c.layout, &name, on)?;
        if !c.json && !c.quiet {
            let word = if on { "on" } else { "off" };
            let how = if changed { "" } else { " (it already was)" };
            eprintln!("vbuild: autostart {word} for {name}{how}");
        }
        Ok(serde_json::json!({"name": n, "autostart": on, "changed": changed}))
    })
}

/// `vbuild autostart` alone: the marked guests and what boot unit exists.
fn show(c: &Ctx) -> anyhow::Result<i32> {
    let marked = vbuild_runtime::autostart::marked(&c.layout)?;
    let installed = installed_files(Path::new("/"));
    if c.json {
        super::output::json(&serde_json::json!({
            "guests": marked,
            "installed": installed.iter().map(|(s, p)| serde_json::json!({"init": s.as_str(), "path": p})).collect::<Vec<_>>(),
        }))?;
        return Ok(0);
    }
    if marked.is_empty() {
        println!("no guest is marked for autostart (mark one with `vbuild autostart NAME on`)");
    } else {
        println!("started at host boot: {}", marked.join(" "));
    }
    match installed.first() {
        Some((s, p)) => println!("boot unit: {} ({})", p.display(), s.as_str()),
        None => println!("boot unit: not installed (install it with `vbuild autostart install`)"),
    }
    Ok(0)
}

/// The host's init system: PID 1's name, then whether OpenRC is there.
fn detect(sysroot: &Path) -> InitSystem {
    let comm = std::fs::read_to_string("/proc/1/comm").unwrap_or_default();
    if comm.trim() == "systemd" {
        return InitSystem::Systemd;
    }
    let openrc = ["sbin/openrc-run", "usr/sbin/openrc-run", "run/openrc"]
        .iter()
        .any(|p| sysroot.join(p).exists());
    if openrc {
        InitSystem::Openrc
    } else {
        InitSystem::Sysvinit
    }
}

/// The command lines the boot unit runs: this binary (by its real path),
/// with `--root` when the state root is not the default one.
fn commands(c: &Ctx) -> anyhow::Result<(String, String)> {
    let exe = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .context("finding the path of this vbuild binary")?;
    let mut base = vec![exe.to_string_lossy().into_owned()];
    if c.layout != vbuild_runtime::paths::Layout::new(None) {
        base.push("--root".into());
        base.push(c.layout.root().to_string_lossy().into_owned());
    }
    for w in &base {
        if w.is_empty()
            || w.chars()
                .any(|ch| ch.is_whitespace() || "\"'\\%$`;&|<>".contains(ch))
        {
            invalid!(
                "autostart install: the path {w:?} has characters a unit file or init script cannot carry as is; install vbuild (or the state root) under a plain path"
            );
        }
    }
    let start = format!("{} start --autostart", base.join(" "));
    let stop = format!("{} stop --autostart", base.join(" "));
    Ok((start, stop))
}

/// The systemd unit.
pub fn systemd_unit(start: &str, stop: &str) -> String {
    format!(
        "# {MARK}; remove it with `vbuild autostart uninstall`.\n\
         [Unit]\n\
         Description=vbuild guests marked for autostart\n\
         Documentation=man:vbuild-autostart(1)\n\
         Wants=network-online.target\n\
         After=network-online.target\n\
         \n\
         [Service]\n\
         Type=oneshot\n\
         RemainAfterExit=yes\n\
         ExecStart={start}\n\
         ExecStop={stop}\n\
         # Exit status 1: some guest did not start (each is logged); the\n\
         # unit must not fail for it, or systemd would stop the others too.\n\
         SuccessExitStatus=1\n\
         TimeoutStopSec=300\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n"
    )
}

/// The sysvinit LSB script.
pub fn sysv_script(start: &str, stop: &str) -> String {
    format!(
        "#!/bin/sh\n\
         # {MARK}; remove it with `vbuild autostart uninstall`.\n\
         ### BEGIN INIT INFO\n\
         # Provides:          {UNIT}\n\
         # Required-Start:    $network $remote_fs $local_fs\n\
         # Required-Stop:     $network $remote_fs $local_fs\n\
         # Default-Start:     2 3 4 5\n\
         # Default-Stop:      0 1 6\n\
         # Short-Description: vbuild guests marked for autostart\n\
         ### END INIT INFO\n\
         \n\
         case \"$1\" in\n\
         \x20 start) exec {start} ;;\n\
         \x20 stop) exec {stop} ;;\n\
         \x20 restart|force-reload) {stop}; exec {start} ;;\n\
         \x20 status) exit 0 ;;\n\
         \x20 *) echo \"Usage: $0 {{start|stop|restart|force-reload|status}}\" >&2; exit 3 ;;\n\
         esac\n"
    )
}

/// The OpenRC script.
pub fn openrc_script(start: &str, stop: &str) -> String {
    format!(
        "#!/sbin/openrc-run\n\
         # {MARK}; remove it with `vbuild autostart uninstall`.\n\
         description=\"vbuild guests marked for autostart\"\n\
         \n\
         depend() {{\n\
         \x20 need net localmount\n\
         \x20 after firewall\n\
         }}\n\
         \n\
         start() {{\n\
         \x20 ebegin \"Starting vbuild guests\"\n\
         \x20 {start}\n\
         \x20 eend $?\n\
         }}\n\
         \n\
         stop() {{\n\
         \x20 ebegin \"Stopping vbuild guests\"\n\
         \x20 {stop}\n\
         \x20 eend $?\n\
         }}\n"
    )
}

/// What one init system's integration consists of, below the sysroot.
struct Plan {
    /// The script or unit and its text and mode.
    file: (PathBuf, String, u32),
    /// Symlinks: (where, what it points to).
    links: Vec<(PathBuf, PathBuf)>,
}

fn plan(system: InitSystem, start: &str, stop: &str) -> Plan {
    let script = PathBuf::from(format!("etc/init.d/{UNIT}"));
    match system {
        InitSystem::Systemd => {
            let unit = format!("etc/systemd/system/{UNIT}.service");
            Plan {
                file: (PathBuf::from(&unit), systemd_unit(start, stop), 0o644),
                links: vec![(
                    PathBuf::from(format!(
                        "etc/systemd/system/multi-user.target.wants/{UNIT}.service"
                    )),
                    Path::new("/").join(unit),
                )],
            }
        }
        InitSystem::Sysvinit => {
            let mut links = Vec::new();
            for (levels, prefix) in [("2345", "S99"), ("016", "K01")] {
                for l in levels.chars() {
                    links.push((
                        PathBuf::from(format!("etc/rc{l}.d/{prefix}{UNIT}")),
                        PathBuf::from(format!("../init.d/{UNIT}")),
                    ));
                }
            }
            Plan {
                file: (script, sysv_script(start, stop), 0o755),
                links,
            }
        }
        InitSystem::Openrc => Plan {
            file: (script, openrc_script(start, stop), 0o755),
            links: vec![(
                PathBuf::from(format!("etc/runlevels/default/{UNIT}")),
                PathBuf::from(format!("/etc/init.d/{UNIT}")),
            )],
        },
    }
}

/// A file at `p` that is there and was not written by vbuild.
fn foreign_file(p: &Path) -> bool {
    match std::fs::symlink_metadata(p) {
        Err(_) => false,
        Ok(m) if !m.is_file() => true,
        Ok(_) => !std::fs::read_to_string(p).is_ok_and(|t| t.contains(MARK)),
    }
}

/// A link at `p` that is there and does not point where vbuild points it.
fn foreign_link(p: &Path, target: &Path) -> bool {
    match std::fs::symlink_metadata(p) {
        Err(_) => false,
        Ok(_) => std::fs::read_link(p).ok().as_deref() != Some(target),
    }
}

/// `vbuild autostart install`.
fn install(c: &Ctx, b: &BootArgs) -> anyhow::Result<i32> {
    let sysroot = b.sysroot.clone().unwrap_or_else(|| PathBuf::from("/"));
    let system = b.init.unwrap_or_else(|| detect(&sysroot));
    let (start, stop) = commands(c)?;
    let p = plan(system, &start, &stop);
    let (rel, text, mode) = &p.file;
    let file = sysroot.join(rel);
    // Checked first, so a refusal leaves everything as it was.
    if foreign_file(&file) {
        invalid!(
            "autostart install: {} exists and was not written by vbuild; move it away first",
            file.display()
        );
    }
    for (l, target) in &p.links {
        let at = sysroot.join(l);
        if foreign_link(&at, target) {
            invalid!(
                "autostart install: {} exists and is not vbuild's link to {}; move it away first",
                at.display(),
                target.display()
            );
        }
    }
    let mut made: Vec<PathBuf> = Vec::new();
    let result = (|| -> anyhow::Result<()> {
        write_file(&file, text, *mode)?;
        made.push(file.clone());
        for (l, target) in &p.links {
            let at = sysroot.join(l);
            if std::fs::symlink_metadata(&at).is_ok() {
                continue; // ours already, pointing where it should
            }
            let dir = at.parent().expect("a link has a directory");
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            std::os::unix::fs::symlink(target, &at)
                .with_context(|| format!("linking {} to {}", at.display(), target.display()))?;
            made.push(at);
        }
        Ok(())
    })();
    if let Err(e) = result {
        for m in made.iter().rev() {
            let _ = std::fs::remove_file(m);
        }
        return Err(e.context("autostart install: nothing was kept"));
    }
    let links: Vec<PathBuf> = p.links.iter().map(|(l, _)| sysroot.join(l)).collect();
    if c.json {
        super::output::json(&serde_json::json!({
            "init": system.as_str(),
            "file": file,
            "links": links,
            "exec_start": start,
            "exec_stop": stop,
        }))?;
    } else if !c.quiet {
        println!("installed {} ({})", file.display(), system.as_str());
        println!("  at boot:     {start}");
        println!("  at shutdown: {stop}");
        if system == InitSystem::Systemd {
            println!(
                "  enabled through {}; `systemctl daemon-reload` makes systemd see it now",
                links[0].display()
            );
        }
    }
    Ok(0)
}

fn write_file(path: &Path, text: &str, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path.parent().expect("a file has a directory");
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    vbuild_runtime::fsutil::write_atomic(path, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", path.display()))?;
    Ok(())
}

/// The integration files of every init system that exist below `sysroot`
/// and carry vbuild's mark.
fn installed_files(sysroot: &Path) -> Vec<(InitSystem, PathBuf)> {
    let mut out = Vec::new();
    for s in [
        InitSystem::Systemd,
        InitSystem::Sysvinit,
        InitSystem::Openrc,
    ] {
        let p = sysroot.join(plan(s, "", "").file.0);
        let ours = std::fs::read_to_string(&p).is_ok_and(|t| t.contains(MARK));
        let right_kind = match s {
            InitSystem::Systemd => true,
            InitSystem::Openrc => {
                std::fs::read_to_string(&p).is_ok_and(|t| t.starts_with("#!/sbin/openrc-run"))
            }
            InitSystem::Sysvinit => {
                std::fs::read_to_string(&p).is_ok_and(|t| t.starts_with("#!/bin/sh"))
            }
        };
        if ours && right_kind {
            out.push((s, p));
        }
    }
    out
}

/// `vbuild autostart uninstall`: removes vbuild's files and links of
/// every init system (whichever install wrote), nothing else.
fn uninstall(c: &Ctx, b: &BootArgs) -> anyhow::Result<i32> {
    let sysroot = b.sysroot.clone().unwrap_or_else(|| PathBuf::from("/"));
    let systems = match b.init {
        Some(s) => vec![s],
        None => vec![
            InitSystem::Systemd,
            InitSystem::Sysvinit,
            InitSystem::Openrc,
        ],
    };
    let mut removed: Vec<PathBuf> = Vec::new();
    for s in systems {
        let p = plan(s, "", "");
        let file = sysroot.join(&p.file.0);
        let ours = installed_files(&sysroot).iter().any(|(k, _)| *k == s);
        for (l, target) in &p.links {
            let at = sysroot.join(l);
            if std::fs::read_link(&at).ok().as_deref() == Some(target.as_path()) && ours {
                std::fs::remove_file(&at).with_context(|| format!("removing {}", at.display()))?;
                removed.push(at);
            }
        }
        if ours {
            std::fs::remove_file(&file).with_context(|| format!("removing {}", file.display()))?;
            removed.push(file);
        }
    }
    if c.json {
        super::output::json(&serde_json::json!({"removed": removed}))?;
    } else if !c.quiet {
        if removed.is_empty() {
            println!("no boot unit of vbuild's was installed");
        } else {
            for r in &removed {
                println!("removed {}", r.display());
            }
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unit_runs_start_and_stop_after_the_network() {
        let u = systemd_unit(
            "/usr/bin/vbuild start --autostart",
            "/usr/bin/vbuild stop --autostart",
        );
        for want in [
            "After=network-online.target",
            "Wants=network-online.target",
            "ExecStart=/usr/bin/vbuild start --autostart\n",
            "ExecStop=/usr/bin/vbuild stop --autostart\n",
            "Type=oneshot",
            "RemainAfterExit=yes",
            "SuccessExitStatus=1\n",
            "WantedBy=multi-user.target",
            MARK,
        ] {
            assert!(u.contains(want), "{want} missing:\n{u}");
        }
        let s = sysv_script("/v start --autostart", "/v stop --autostart");
        assert!(s.starts_with("#!/bin/sh\n"), "{s}");
        assert!(s.contains("# Default-Start:     2 3 4 5"), "{s}");
        assert!(s.contains("start) exec /v start --autostart ;;"), "{s}");
        assert!(s.contains("stop) exec /v stop --autostart ;;"), "{s}");
        let o = openrc_script("/v start --autostart", "/v stop --autostart");
        assert!(o.starts_with("#!/sbin/openrc-run\n"), "{o}");
        assert!(o.contains("need net"), "{o}");
    }

    #[test]
    fn sysvinit_links_start_late_and_stop_early() {
        let p = plan(InitSystem::Sysvinit, "a", "b");
        let names: Vec<String> = p
            .links
            .iter()
            .map(|(l, _)| l.to_string_lossy().into_owned())
            .collect();
        assert!(names.contains(&"etc/rc2.d/S99vbuild-autostart".to_string()));
        assert!(names.contains(&"etc/rc6.d/K01vbuild-autostart".to_string()));
        assert_eq!(names.len(), 7);
        assert!(p
            .links
            .iter()
            .all(|(_, t)| t == Path::new("../init.d/vbuild-autostart")));
    }
}
