//! runc's command line: global flags before the command, the command's
//! flags and positional arguments after it. Both `--flag value` and
//! `--flag=value` are taken, and single-dash long flags (`-bundle`), as
//! runc's flag parser does.

use crate::create::CreateOptions;
use crate::error::OciError;
use std::path::PathBuf;

/// The default state root (runc's is /run/runc).
pub const DEFAULT_ROOT: &str = "/run/vbuild-runc";

/// Flags before the command.
#[derive(Debug, Clone)]
pub struct Global {
    /// The state root.
    pub root: PathBuf,
    /// Log file.
    pub log: Option<PathBuf>,
    /// Log lines as JSON.
    pub log_json: bool,
    /// Debug logging.
    pub debug: bool,
    /// cgroupsPath in systemd's form.
    pub systemd_cgroup: bool,
}

impl Default for Global {
    fn default() -> Self {
        Global {
            root: PathBuf::from(DEFAULT_ROOT),
            log: None,
            log_json: false,
            debug: false,
            systemd_cgroup: false,
        }
    }
}

impl Global {
    /// The global flags of a command line that failed to parse, as far as
    /// they can be read (so the error still reaches --log).
    pub fn fallback(args: &[String]) -> Global {
        let mut g = Global::default();
        let mut it = args.iter().map(|a| normalise(a));
        while let Some(a) = it.next() {
            let (k, v) = split(&a);
            match k {
                "--log" => g.log = v.map(String::from).or_else(|| it.next()).map(PathBuf::from),
                "--log-format" => {
                    g.log_json =
                        v.map(String::from).or_else(|| it.next()).as_deref() == Some("json")
                }
                _ => {}
            }
        }
        g
    }
}

/// A command with its arguments.
#[derive(Debug, Clone)]
pub enum Command {
    /// `--version`.
    Version,
    /// `--help`.
    Help,
    /// `create`.
    Create(CreateOptions),
    /// `exec --process FILE ID`.
    Exec(crate::exec::ExecOptions),
    /// `start ID`.
    Start {
        /// The container.
        id: String,
    },
    /// `state ID`.
    State {
        /// The container.
        id: String,
    },
    /// `kill [--all] ID [SIGNAL]`.
    Kill {
        /// The container.
        id: String,
        /// The signal number.
        signal: i32,
        /// Every process of the container.
        all: bool,
    },
    /// `delete [--force] ID`.
    Delete {
        /// The container.
        id: String,
        /// Kill it if it runs.
        force: bool,
    },
    /// `pause ID`.
    Pause {
        /// The container.
        id: String,
    },
    /// `resume ID`.
    Resume {
        /// The container.
        id: String,
    },
    /// `ps [--format json] ID`.
    Ps {
        /// The container.
        id: String,
        /// JSON output.
        json: bool,
    },
    /// `update --resources FILE|- ID`.
    Update {
        /// The container.
        id: String,
        /// The resources file (`-`: stdin).
        resources: PathBuf,
    },
    /// `list [--format json] [-q]`.
    List {
        /// JSON output.
        json: bool,
        /// Ids only.
        quiet: bool,
    },
    /// `features`.
    Features,
}

/// The usage text.
pub const HELP: &str = "\
vbuild-runc: an OCI runtime with runc's command line, built on vbuild's containers.

usage: vbuild-runc [global flags] COMMAND [flags] [ID] [args]

global flags:
  --root DIR            state directory (default /run/vbuild-runc)
  --log FILE            also write errors (and --debug lines) to FILE
  --log-format text|json
  --systemd-cgroup      cgroupsPath is slice:prefix:name
  --debug               log the command line
  --version, --help

commands:
  create --bundle DIR [--pid-file FILE] [--console-socket S] [--preserve-fds N] [--no-pivot] [--no-new-keyring] ID
  start ID
  exec --process FILE [--detach] [--pid-file FILE] [--tty --console-socket S] [--preserve-fds N] ID
  state ID
  kill [--all] ID [SIGNAL]     (default TERM; a name or a number)
  delete [--force] ID
  pause ID | resume ID
  ps [--format json] ID
  update --resources FILE|- ID
  list [--format table|json] [-q]
  features

examples:
  vbuild-runc --root /tmp/r create --bundle ./bundle --pid-file ./pid c1
  vbuild-runc --root /tmp/r start c1
  vbuild-runc --root /tmp/r state c1
  vbuild-runc --root /tmp/r exec --process ./ps.json --detach --pid-file ./exec.pid c1
  vbuild-runc --root /tmp/r kill c1 KILL && vbuild-runc --root /tmp/r delete c1
";

/// `-bundle` as `--bundle` (runc's parser takes both); `-q` and `-f`
/// style short flags stay.
fn normalise(a: &str) -> String {
    if a.starts_with('-')
        && !a.starts_with("--")
        && a.len() > 2
        && !a[1..].starts_with(|c: char| c.is_ascii_digit())
    {
        format!("-{a}")
    } else {
        a.to_string()
    }
}

fn split(a: &str) -> (&str, Option<&str>) {
    match a.split_once('=') {
        Some((k, v)) if a.starts_with("--") => (k, Some(v)),
        _ => (a, None),
    }
}

/// Flags of one command.
struct Flags {
    values: Vec<(String, String)>,
    bools: Vec<String>,
    positional: Vec<String>,
}

impl Flags {
    /// Splits `args`; `with_value` names the flags that take a value,
    /// `boolean` those that do not. Unknown flags are an error.
    fn parse(
        cmd: &str,
        args: &[String],
        with_value: &[&str],
        boolean: &[&str],
    ) -> Result<Flags, OciError> {
        let mut f = Flags {
            values: vec![],
            bools: vec![],
            positional: vec![],
        };
        let mut i = 0;
        let mut only_positional = false;
        while i < args.len() {
            let a = normalise(&args[i]);
            i += 1;
            if only_positional || !a.starts_with('-') || a == "-" {
                f.positional.push(args[i - 1].clone());
                continue;
            }
            if a == "--" {
                only_positional = true;
                continue;
            }
            let (k, v) = split(&a);
            if with_value.contains(&k) {
                let v = match v {
                    Some(v) => v.to_string(),
                    None => {
                        let v = args
                            .get(i)
                            .cloned()
                            .ok_or_else(|| OciError::Usage(format!("{cmd}: {k} needs a value")))?;
                        i += 1;
                        v
                    }
                };
                f.values.push((k.to_string(), v));
            } else if boolean.contains(&k) {
                if v.is_none_or(|v| v == "true") {
                    f.bools.push(k.to_string());
                }
            } else {
                return Err(OciError::Usage(format!("{cmd}: unknown flag {k}")));
            }
        }
        Ok(f)
    }

    fn value(&self, names: &[&str]) -> Option<String> {
        self.values
            .iter()
            .rev()
            .find(|(k, _)| names.contains(&k.as_str()))
            .map(|(_, v)| v.clone())
    }

    fn flag(&self, names: &[&str]) -> bool {
        self.bools.iter().any(|b| names.contains(&b.as_str()))
    }

    fn id(&self, cmd: &str) -> Result<String, OciError> {
        self.positional
            .first()
            .cloned()
            .ok_or_else(|| OciError::Usage(format!("{cmd}: the container id is missing")))
    }
}

/// `--preserve-fds N`: how many descriptors after stderr pass on.
fn preserve_fds(cmd: &str, v: Option<String>) -> Result<u32, OciError> {
    match v {
        None => Ok(0),
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|n| *n < 1 << 20)
            .ok_or_else(|| {
                OciError::Usage(format!(
                    "{cmd} --preserve-fds {v:?}: give a count of descriptors (like 2)"
                ))
            }),
    }
}

/// Checks that descriptors 3 .. 3 + `n` are open in this process (they
/// are what `--preserve-fds n` hands on; a hole there would hand on one of
/// the runtime's own instead).
pub fn check_preserved(n: u32) -> Result<(), OciError> {
    for fd in 3..3 + n as i32 {
        // SAFETY: fcntl F_GETFD on an integer only reads descriptor flags.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            return Err(OciError::Config(format!(
                "--preserve-fds {n}: descriptor {fd} is not open (the caller must pass descriptors 3 to {})",
                2 + n
            )));
        }
    }
    Ok(())
}

/// Parses the whole command line (without the program name).
pub fn parse(args: &[String]) -> Result<(Global, Command), OciError> {
    let mut g = Global::default();
    let mut i = 0;
    while i < args.len() {
        let a = normalise(&args[i]);
        if !a.starts_with('-') {
            break;
        }
        i += 1;
        let (k, v) = split(&a);
        let value = |i: &mut usize| -> Result<String, OciError> {
            if let Some(v) = v {
                return Ok(v.to_string());
            }
            let v = args
                .get(*i)
                .cloned()
                .ok_or_else(|| OciError::Usage(format!("{k} needs a value")))?;
            *i += 1;
            Ok(v)
        };
        match k {
            "--root" => g.root = PathBuf::from(value(&mut i)?),
            "--log" => g.log = Some(PathBuf::from(value(&mut i)?)),
            "--log-format" => {
                let f = value(&mut i)?;
                g.log_json = match f.as_str() {
                    "json" => true,
                    "text" => false,
                    _ => {
                        return Err(OciError::Usage(format!(
                            "--log-format {f:?}: use text or json"
                        )))
                    }
                }
            }
            "--debug" => g.debug = true,
            "--systemd-cgroup" => g.systemd_cgroup = true,
            // Accepted for compatibility; they change nothing here.
            "--rootless" | "--criu" => {
                if v.is_none()
                    && args
                        .get(i)
                        .is_some_and(|n| matches!(n.as_str(), "true" | "false" | "auto"))
                {
                    i += 1;
                }
            }
            "--version" | "-v" => return Ok((g, Command::Version)),
            "--help" | "-h" => return Ok((g, Command::Help)),
            _ => return Err(OciError::Usage(format!("unknown global flag {k}"))),
        }
    }
    let Some(cmd) = args.get(i) else {
        return Ok((g, Command::Help));
    };
    let rest = &args[i + 1..];
    let c = match cmd.as_str() {
        "create" => {
            let f = Flags::parse(
                cmd,
                rest,
                &["--bundle", "-b", "--pid-file", "--console-socket", "--preserve-fds"],
                &["--no-pivot", "--no-new-keyring"],
            )?;
            let preserve_fds = preserve_fds(cmd, f.value(&["--preserve-fds"]))?;
            Command::Create(CreateOptions {
                id: f.id(cmd)?,
                bundle: PathBuf::from(f.value(&["--bundle", "-b"]).unwrap_or_else(|| ".".into())),
                pid_file: f.value(&["--pid-file"]).map(PathBuf::from),
                systemd_cgroup: g.systemd_cgroup,
                console_socket: f.value(&["--console-socket"]).map(PathBuf::from),
                preserve_fds,
            })
        }
        "exec" => {
            let f = Flags::parse(
                cmd,
                rest,
                &["--process", "-p", "--pid-file", "--console-socket", "--preserve-fds"],
                &["--detach", "-d", "--tty", "-t"],
            )?;
            let preserve_fds = preserve_fds(cmd, f.value(&["--preserve-fds"]))?;
            let process = f.value(&["--process", "-p"]).ok_or_else(|| {
                OciError::Unsupported(
                    "exec: only --process FILE is supported (write the process JSON; the COMMAND form is not)".into(),
                )
            })?;
            if f.positional.len() > 1 {
                return Err(OciError::Usage(
                    "exec: with --process, give only the container id".into(),
                ));
            }
            Command::Exec(crate::exec::ExecOptions {
                id: f.id(cmd)?,
                process: PathBuf::from(process),
                detach: f.flag(&["--detach", "-d"]),
                pid_file: f.value(&["--pid-file"]).map(PathBuf::from),
                console_socket: f.value(&["--console-socket"]).map(PathBuf::from),
                tty: f.flag(&["--tty", "-t"]),
                preserve_fds,
            })
        }
        "start" | "state" | "pause" | "resume" => {
            let f = Flags::parse(cmd, rest, &[], &[])?;
            let id = f.id(cmd)?;
            match cmd.as_str() {
                "start" => Command::Start { id },
                "state" => Command::State { id },
                "pause" => Command::Pause { id },
                _ => Command::Resume { id },
            }
        }
        "kill" => {
            let f = Flags::parse(cmd, rest, &[], &["--all", "-a"])?;
            let signal = match f.positional.get(1) {
                Some(s) => crate::lifecycle::parse_signal(s)?,
                None => libc::SIGTERM,
            };
            Command::Kill {
                id: f.id(cmd)?,
                signal,
                all: f.flag(&["--all", "-a"]),
            }
        }
        "delete" => {
            let f = Flags::parse(cmd, rest, &[], &["--force", "-f"])?;
            Command::Delete {
                id: f.id(cmd)?,
                force: f.flag(&["--force", "-f"]),
            }
        }
        "ps" => {
            let f = Flags::parse(cmd, rest, &["--format", "-f"], &[])?;
            Command::Ps {
                id: f.id(cmd)?,
                json: f.value(&["--format", "-f"]).as_deref() == Some("json"),
            }
        }
        "update" => {
            let f = Flags::parse(cmd, rest, &["--resources", "-r"], &[])?;
            let resources = f.value(&["--resources", "-r"]).ok_or_else(|| {
                OciError::Unsupported(
                    "update: only --resources FILE|- is supported (the single-limit flags are not)".into(),
                )
            })?;
            Command::Update {
                id: f.id(cmd)?,
                resources: PathBuf::from(resources),
            }
        }
        "list" => {
            let f = Flags::parse(cmd, rest, &["--format", "-f"], &["--quiet", "-q"])?;
            Command::List {
                json: f.value(&["--format", "-f"]).as_deref() == Some("json"),
                quiet: f.flag(&["--quiet", "-q"]),
            }
        }
        "features" => Command::Features,
        "help" => Command::Help,
        other => {
            return Err(OciError::Usage(format!(
                "unknown command {other:?} (create, start, exec, state, kill, delete, pause, resume, ps, update, list, features)"
            )))
        }
    };
    Ok((g, c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn containerd_and_podman_command_lines_parse() {
        let (g, c) = parse(&v(
            "--root /run/containerd/runc/default --log /tmp/l.json --log-format json create --bundle /b --pid-file /p c1",
        ))
        .unwrap();
        assert_eq!(g.root, PathBuf::from("/run/containerd/runc/default"));
        assert!(g.log_json);
        match c {
            Command::Create(o) => {
                assert_eq!((o.id.as_str(), o.bundle.to_str().unwrap()), ("c1", "/b"));
                assert_eq!(o.pid_file.unwrap(), PathBuf::from("/p"));
            }
            c => panic!("{c:?}"),
        }
        let (g, c) = parse(&v(
            "--systemd-cgroup --root=/r create -bundle=/b --no-new-keyring c2",
        ))
        .unwrap();
        assert!(g.systemd_cgroup);
        assert!(matches!(c, Command::Create(o) if o.id == "c2" && o.systemd_cgroup));
        let (_, c) = parse(&v("kill --all c1 9")).unwrap();
        assert!(matches!(
            c,
            Command::Kill {
                signal: 9,
                all: true,
                ..
            }
        ));
        let (_, c) = parse(&v("kill c1")).unwrap();
        assert!(matches!(
            c,
            Command::Kill {
                signal: 15,
                all: false,
                ..
            }
        ));
        let (_, c) = parse(&v("exec --process /p.json -d --pid-file=/x c1")).unwrap();
        assert!(matches!(
            c,
            Command::Exec(o) if o.id == "c1" && o.detach && o.pid_file.as_deref() == Some(std::path::Path::new("/x"))
        ));
        assert!(parse(&v("exec c1 ls"))
            .unwrap_err()
            .to_string()
            .contains("only --process FILE"));
        assert!(parse(&v("create --bogus c1"))
            .unwrap_err()
            .to_string()
            .contains("--bogus"));
        assert!(parse(&v("start"))
            .unwrap_err()
            .to_string()
            .contains("id is missing"));
    }
}
