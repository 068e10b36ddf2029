//! Container tailoring of a built rootfs, driven by a profile
//! (`recipes/tailor/NAME.toml`: ordered steps, each saying why) and
//! handlebars templates (`recipes/templates/*.hbs`): hostname, hosts,
//! machine-id, resolv.conf, fstab, apt sources, units masked that cannot
//! work in a container, console getty, cleanup, network configuration.
//! Every write goes through the root-confined file operations, so the
//! guest's own symlinks never redirect it to the host.

mod files;
mod init;
mod network;
pub mod setup;
pub mod spec;
pub mod sshkeys;
mod vars;

pub use files::{load_profile, RECIPES_ENV};
pub use init::detect_init;
pub use network::{network_paths, write_network};
pub use setup::{apply_setup, GuestSetup};
pub use spec::TailorSpec;
pub use vars::{NetVars, TailorVars};

use spec::Action;
use std::path::{Path, PathBuf};
use vbuild_kernel::fsroot::{FsError, Kind, Root};

/// Tailoring failed; names the profile step, template, value or file.
#[derive(Debug, thiserror::Error)]
pub enum TailorError {
    /// A profile is missing or malformed.
    #[error("tailoring profile {file}: {message}")]
    Profile {
        /// The profile file.
        file: String,
        /// What is wrong, with line/field when parsing.
        message: String,
    },
    /// A template is missing or does not render.
    #[error("template {name}: {message}")]
    Template {
        /// Template name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// A value to tailor with is invalid; nothing was changed.
    #[error("{0}")]
    Value(String),
    /// The rootfs could not be changed.
    #[error("tailoring {step}: {source}")]
    Fs {
        /// The step's `why`, or what was being written.
        step: String,
        /// The failing operation, naming the path.
        source: FsError,
    },
}

/// What tailoring changed.
#[derive(Debug, Clone, Default)]
pub struct TailorReport {
    /// Steps applied.
    pub applied: usize,
    /// Steps skipped (other release, or `when_exists` path absent).
    pub skipped: usize,
    /// Files written (guest paths).
    pub written: Vec<PathBuf>,
}

/// Tailors `rootfs` with profile `profile` (`debian`) and `vars`. All
/// values are checked first: a bad one changes nothing.
pub fn tailor(
    rootfs: &Path,
    profile: &str,
    vars: &TailorVars,
) -> Result<TailorReport, TailorError> {
    vars.validate().map_err(TailorError::Value)?;
    let spec = load_profile(profile)?;
    let root = Root::open(rootfs).map_err(|source| TailorError::Fs {
        step: "open rootfs".into(),
        source,
    })?;
    let steps = StepRun {
        profile,
        probe: &root,
        target: &root,
        select: Select::All,
    };
    let mut report = steps.run(&spec, vars)?;
    let net = network::write_network_in(&root, &spec, &vars.net)?;
    report.written.extend(net);
    Ok(report)
}

/// Writes the per-guest part of `profile` (steps marked `guest = true`, and
/// the network files) into `upper`, an overlay guest's fresh, empty upper
/// layer over `template`: what must differ between guests of one template.
/// Only `write` steps can be per guest (a removal would need a whiteout;
/// the template carries none of what is removed).
pub fn tailor_guest(
    template: &Path,
    upper: &Path,
    profile: &str,
    vars: &TailorVars,
) -> Result<TailorReport, TailorError> {
    vars.validate().map_err(TailorError::Value)?;
    let spec = load_profile(profile)?;
    let probe = Root::open(template).map_err(|source| TailorError::Fs {
        step: "open the template".into(),
        source,
    })?;
    let root = Root::open(upper).map_err(|source| TailorError::Fs {
        step: "open the guest's layer".into(),
        source,
    })?;
    let steps = StepRun {
        profile,
        probe: &probe,
        target: &root,
        select: Select::GuestWrites,
    };
    let mut report = steps.run(&spec, vars)?;
    let net = network::write_network_over(&probe, &root, &spec, &vars.net, false)?;
    report.written.extend(net);
    if sshkeys::write_guest_host_key(&probe, &root, &vars.hostname).map_err(|source| {
        TailorError::Fs {
            step: "the guest's own SSH host key".into(),
            source,
        }
    })? {
        report
            .written
            .push(PathBuf::from("/etc/ssh/ssh_host_ed25519_key"));
    }
    Ok(report)
}

/// Which of a profile's steps one tailoring run applies.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Select {
    /// Every step (a tree of its own, or a template).
    All,
    /// The `guest = true` steps, which must all be writes (an overlay
    /// guest's upper layer).
    GuestWrites,
}

/// One pass over a profile's steps: the single place that checks and
/// renders them, filters by release and `when_exists`, and applies them.
struct StepRun<'a> {
    /// The profile's name, for errors.
    profile: &'a str,
    /// The tree `when_exists` looks at: the target itself, or the template
    /// under an overlay guest's layer.
    probe: &'a Root,
    /// The tree written to.
    target: &'a Root,
    /// Which steps apply.
    select: Select,
}

impl StepRun<'_> {
    /// Checks and renders every selected step before touching the target
    /// (a bad step or template changes nothing), then applies them in order.
    fn run(&self, spec: &TailorSpec, vars: &TailorVars) -> Result<TailorReport, TailorError> {
        let profile_error = |message: String| TailorError::Profile {
            file: self.profile.to_string(),
            message,
        };
        let ctx = vars.context();
        let mut planned = Vec::new();
        for s in &spec.steps {
            if self.select == Select::GuestWrites && !s.guest {
                continue;
            }
            let action = s.action().map_err(profile_error)?;
            let text = match &action {
                Action::WriteTemplate { template, .. } => Some(files::render(template, &ctx)?),
                Action::WriteContent { .. } => None,
                _ if self.select == Select::GuestWrites => {
                    return Err(profile_error(format!(
                        "step {:?}: only `write` steps can be `guest = true`",
                        s.why
                    )))
                }
                _ => None,
            };
            planned.push((s, action, text));
        }
        let mut report = TailorReport::default();
        for (s, action, text) in planned {
            let applies = s.for_release(&vars.release)
                && s.when_exists
                    .as_ref()
                    .is_none_or(|p| self.probe.exists(Path::new(p)));
            if !applies {
                report.skipped += 1;
                continue;
            }
            self.apply(s, action, text, &mut report)?;
            report.applied += 1;
        }
        Ok(report)
    }

    /// Applies one checked step to the target.
    fn apply(
        &self,
        s: &spec::Step,
        action: Action<'_>,
        text: Option<String>,
        report: &mut TailorReport,
    ) -> Result<(), TailorError> {
        let root = self.target;
        let fs = |source| TailorError::Fs {
            step: s.why.clone(),
            source,
        };
        match action {
            Action::WriteTemplate { path, mode, .. } => {
                write(root, path, text.unwrap_or_default().as_bytes(), mode).map_err(fs)?;
                report.written.push(PathBuf::from(path));
            }
            Action::WriteContent {
                path,
                content,
                mode,
            } => {
                write(root, path, content.as_bytes(), mode).map_err(fs)?;
                report.written.push(PathBuf::from(path));
            }
            Action::Mask(units) => {
                for u in units {
                    let p = Path::new("etc/systemd/system").join(u);
                    root.mkdir_all(Path::new("etc/systemd/system"), 0o755)
                        .map_err(fs)?;
                    root.symlink(&p, Path::new("/dev/null")).map_err(fs)?;
                }
            }
            Action::Remove(paths) => {
                for p in paths {
                    remove_matching(root, p).map_err(fs)?;
                }
            }
            Action::Clean(dirs) => {
                for d in dirs {
                    if root.kind(Path::new(d)).map_err(fs)? == Some(Kind::Dir) {
                        root.clear_dir(Path::new(d)).map_err(fs)?;
                    }
                }
            }
            Action::Link { path, target } => {
                let parent = Path::new(path).parent().unwrap_or(Path::new("/"));
                root.mkdir_all(parent, 0o755).map_err(fs)?;
                root.symlink(Path::new(path), Path::new(target))
                    .map_err(fs)?;
            }
        }
        Ok(())
    }
}

/// A fingerprint of tailoring profile `profile` (its steps and network
/// files), part of a template's id.
pub fn profile_fingerprint(profile: &str) -> Result<String, TailorError> {
    let spec = load_profile(profile)?;
    let mut out = format!("{spec:?}");
    // The text of every template the profile uses, not only its name: an
    // edited `recipes/templates/NAME.hbs` makes different files.
    let mut names: Vec<&String> = spec.steps.iter().flat_map(|s| s.template.iter()).collect();
    names.extend([
        &spec.network.networkd_template,
        &spec.network.interfaces_template,
        &spec.network.resolv_template,
    ]);
    names.sort();
    names.dedup();
    for n in names {
        out.push_str(&format!("\0{n}\0{}", files::template(n)?));
    }
    Ok(out)
}

/// Writes a guest file with `mode`, creating parents; replaces a symlink
/// at the path rather than writing through it.
pub(crate) fn write(root: &Root, path: &str, data: &[u8], mode: u32) -> Result<(), FsError> {
    if let Some(parent) = Path::new(path).parent() {
        root.mkdir_all(parent, 0o755)?;
    }
    root.write(Path::new(path), data, mode)
}

/// Removes `pattern`: an exact path, or one whose last component has `*`
/// wildcards (`/etc/*-`).
fn remove_matching(root: &Root, pattern: &str) -> Result<(), FsError> {
    let p = Path::new(pattern);
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !name.contains('*') {
        return root.remove_all(p);
    }
    let dir = p.parent().unwrap_or(Path::new("/"));
    for entry in root.list(dir)? {
        if glob_match(&name, &entry.to_string_lossy()) {
            root.remove_all(&dir.join(&entry))?;
        }
    }
    Ok(())
}

/// `*` matches any run of characters; everything else matches itself.
fn glob_match(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || name.len() < first.len() + last.len() || !name.ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*-", "passwd-"));
        assert!(!glob_match("*-", "passwd"));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxc"));
    }

    #[test]
    fn builtin_profile_loads_and_every_step_says_why() {
        let p = load_profile("debian").unwrap();
        assert!(p.steps.len() > 10);
        assert!(p.steps.iter().all(|s| !s.why.is_empty()));
        assert!(load_profile("nope")
            .unwrap_err()
            .to_string()
            .contains("no such tailoring profile"));
        assert!(load_profile("../x").is_err());
    }
}
