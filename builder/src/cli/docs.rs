//! `vbuild completions bash|zsh|fish` and `vbuild man`: shell completion
//! scripts and man pages generated from the clap definitions themselves
//! (with the examples of every command), so they never drift from the CLI.

use super::output;
use super::Ctx;
use clap::{Args, CommandFactory, ValueEnum};
use std::path::{Path, PathBuf};

/// The shells completions are made for.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shell {
    /// GNU bash.
    Bash,
    /// zsh.
    Zsh,
    /// fish.
    Fish,
}

/// Arguments of `vbuild completions`.
#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to write the completion script for.
    pub shell: Shell,
}

/// Arguments of `vbuild man`.
#[derive(Args, Debug)]
pub struct ManArgs {
    /// Write vbuild.1 and a page per command (vbuild-start.1, ...) into DIR
    /// instead of vbuild.1 to stdout.
    #[arg(long, short, value_name = "DIR")]
    pub output: Option<PathBuf>,
}

/// The full command definition, as `--help` shows it.
fn command() -> clap::Command {
    let mut cmd = super::examples::with_examples(super::Cli::command());
    cmd.build();
    cmd
}

/// The completion script for `shell`.
pub fn completion_script(shell: Shell) -> Vec<u8> {
    use clap_complete::Shell as S;
    let s = match shell {
        Shell::Bash => S::Bash,
        Shell::Zsh => S::Zsh,
        Shell::Fish => S::Fish,
    };
    let mut cmd = command();
    let mut out = Vec::new();
    clap_complete::generate(s, &mut cmd, "vbuild", &mut out);
    out
}

/// `vbuild completions`.
pub fn completions(c: &Ctx, a: CompletionsArgs) -> anyhow::Result<i32> {
    let script = completion_script(a.shell);
    if c.json {
        let name = a
            .shell
            .to_possible_value()
            .map(|v| v.get_name().to_string());
        output::json(&serde_json::json!({
            "shell": name,
            "script": String::from_utf8_lossy(&script),
        }))?;
    } else {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        out.write_all(&script)?;
        out.flush()?;
    }
    Ok(0)
}

/// The man page of `cmd` (named `name`, e.g. `vbuild-start`).
fn page(cmd: clap::Command, name: &str) -> anyhow::Result<Vec<u8>> {
    // clap names are &'static str here (no `string` feature); a few pages
    // per run.
    let name: &'static str = Box::leak(name.to_string().into_boxed_str());
    let cmd = cmd.name(name);
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut out)?;
    Ok(out)
}

/// Every page: vbuild.1 first, then one per command and subcommand
/// (`vbuild-net-create.1`), as (file name, content).
pub fn pages() -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let top = command();
    let mut out = vec![("vbuild.1".to_string(), page(top.clone(), "vbuild")?)];
    fn walk(
        cmd: &clap::Command,
        prefix: &str,
        out: &mut Vec<(String, Vec<u8>)>,
    ) -> anyhow::Result<()> {
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            let name = format!("{prefix}-{}", sub.get_name());
            out.push((format!("{name}.1"), page(sub.clone(), &name)?));
            walk(sub, &name, out)?;
        }
        Ok(())
    }
    walk(&top, "vbuild", &mut out)?;
    Ok(out)
}

/// `vbuild man`.
pub fn man(c: &Ctx, a: ManArgs) -> anyhow::Result<i32> {
    let Some(dir) = &a.output else {
        let top = page(command(), "vbuild")?;
        if c.json {
            output::json(&serde_json::json!({"page": String::from_utf8_lossy(&top)}))?;
        } else {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            out.write_all(&top)?;
            out.flush()?;
        }
        return Ok(0);
    };
    if !dir.is_dir() {
        output::invalid!(
            "man --output {}: no such directory (make it first)",
            dir.display()
        );
    }
    let mut written = Vec::new();
    for (file, text) in pages()? {
        let path: PathBuf = Path::new(dir).join(&file);
        std::fs::write(&path, text)
            .map_err(|e| anyhow::anyhow!("man --output: {}: {e}", path.display()))?;
        written.push(path);
    }
    if c.json {
        output::json(&serde_json::json!({"dir": dir, "files": written}))?;
    } else if !c.quiet {
        eprintln!(
            "vbuild: wrote {} man pages to {} (e.g. `man -l {}`)",
            written.len(),
            dir.display(),
            dir.join("vbuild.1").display()
        );
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every subcommand's name, from the definitions.
    fn subcommands() -> Vec<String> {
        command()
            .get_subcommands()
            .map(|s| s.get_name().to_string())
            .filter(|n| n != "help")
            .collect()
    }

    #[test]
    fn the_bash_script_completes_every_subcommand() {
        let script = String::from_utf8(completion_script(Shell::Bash)).unwrap();
        let subs = subcommands();
        assert!(subs.len() >= 25, "{subs:?}");
        for s in &subs {
            assert!(
                script.contains(&format!("vbuild__{}", s.replace('-', "__")))
                    || script.contains(&format!(" {s} ")),
                "{s} missing from the bash completion"
            );
        }
        for shell in [Shell::Zsh, Shell::Fish] {
            let s = String::from_utf8(completion_script(shell)).unwrap();
            assert!(s.contains("completions") && s.contains("logs"), "{shell:?}");
        }
    }

    #[test]
    fn man_pages_have_name_synopsis_and_examples() {
        let all = pages().unwrap();
        let top = String::from_utf8(all[0].1.clone()).unwrap();
        assert!(top.contains(".SH NAME"), "{top}");
        assert!(top.contains(".SH SYNOPSIS"), "{top}");
        let names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
        for n in ["vbuild-start.1", "vbuild-cp.1", "vbuild-net-create.1"] {
            assert!(names.contains(&n), "{names:?}");
        }
        let start = String::from_utf8(
            all.iter()
                .find(|p| p.0 == "vbuild-start.1")
                .unwrap()
                .1
                .clone(),
        )
        .unwrap();
        assert!(start.contains("vbuild\\-start"), "{start}");
        assert!(start.contains("Examples"), "{start}");
    }
}
