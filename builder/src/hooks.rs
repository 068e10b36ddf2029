//! Build hooks, as mmdebstrap has them: shell commands the user gives,
//! run on the host as the invoking user (not inside the guest) at four
//! points of a build, with the rootfs as `$1`. A failing hook fails the
//! build with the hook's exit code, and the build keeps nothing.
//!
//! Stages (vbuild installs the whole package set in one pass, so
//! `essential` and `customize` both see every package configured):
//! - `setup`: the rootfs is an empty directory; nothing is unpacked yet.
//! - `extract`: every package is unpacked and in dpkg's database as
//!   unpacked; no maintainer script has run.
//! - `essential`: every maintainer script and trigger has run; the tree
//!   is not tailored yet.
//! - `customize`: the finished tree (tailored, guest setup applied), just
//!   before the guest is recorded.

use std::path::Path;
use std::process::{Command, Stdio};

/// A build stage hooks run at, in the order a build reaches them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Before anything is unpacked.
    Setup,
    /// After unpacking, before maintainer scripts.
    Extract,
    /// After maintainer scripts and triggers, before tailoring.
    Essential,
    /// After tailoring and guest setup.
    Customize,
}

impl Stage {
    /// The stage's name (`VBUILD_STAGE`, and `--NAME-hook`).
    pub fn name(self) -> &'static str {
        match self {
            Stage::Setup => "setup",
            Stage::Extract => "extract",
            Stage::Essential => "essential",
            Stage::Customize => "customize",
        }
    }
}

/// The hooks of one build, each stage's commands in the order given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hooks {
    /// `--setup-hook` commands.
    pub setup: Vec<String>,
    /// `--extract-hook` commands.
    pub extract: Vec<String>,
    /// `--essential-hook` commands.
    pub essential: Vec<String>,
    /// `--customize-hook` commands.
    pub customize: Vec<String>,
}

/// What a hook sees besides `$1`: `VBUILD_ROOTFS` (= `$1`),
/// `VBUILD_STAGE`, `VBUILD_NAME`, `VBUILD_DISTRO`, `VBUILD_RELEASE`,
/// `VBUILD_VARIANT`, `VBUILD_ARCH`.
#[derive(Debug, Clone, Default)]
pub struct HookEnv {
    /// The guest's name.
    pub name: String,
    /// The family (`debian`).
    pub distro: String,
    /// The release (`bookworm`).
    pub release: String,
    /// The variant being built.
    pub variant: String,
    /// The architecture (`amd64`).
    pub arch: String,
}

/// A hook exited non-zero (or could not start); the build fails with its
/// exit code.
#[derive(Debug, thiserror::Error)]
#[error("--{stage}-hook {command:?} {what}")]
pub struct HookFailed {
    /// The stage.
    pub stage: &'static str,
    /// The command as given.
    pub command: String,
    /// "exited with status N", "was killed by signal N" or why it did not start.
    pub what: String,
    /// The exit code vbuild ends with (the hook's, or 1).
    pub exit_code: i32,
}

impl Hooks {
    /// Whether no hook is given.
    pub fn is_empty(&self) -> bool {
        self.setup.is_empty()
            && self.extract.is_empty()
            && self.essential.is_empty()
            && self.customize.is_empty()
    }

    /// The commands of `stage`.
    pub fn of(&self, stage: Stage) -> &[String] {
        match stage {
            Stage::Setup => &self.setup,
            Stage::Extract => &self.extract,
            Stage::Essential => &self.essential,
            Stage::Customize => &self.customize,
        }
    }

    /// Checks the commands (non-empty, no NUL) before anything is created.
    pub fn validate(&self) -> Result<(), String> {
        for stage in [
            Stage::Setup,
            Stage::Extract,
            Stage::Essential,
            Stage::Customize,
        ] {
            for c in self.of(stage) {
                if c.trim().is_empty() || c.contains('\0') {
                    return Err(format!(
                        "--{}-hook {c:?}: give a shell command (it gets the rootfs as $1)",
                        stage.name()
                    ));
                }
            }
        }
        Ok(())
    }

    /// Runs `stage`'s commands in order with `sh -c CMD sh ROOTFS`; their
    /// output goes to vbuild's stderr (stdout stays for `--json`).
    pub fn run(&self, stage: Stage, rootfs: &Path, env: &HookEnv) -> Result<(), HookFailed> {
        for command in self.of(stage) {
            let failed = |what: String, exit_code: i32| HookFailed {
                stage: stage.name(),
                command: command.clone(),
                what,
                exit_code,
            };
            let status = Command::new("/bin/sh")
                .arg("-c")
                .arg(command)
                .arg("sh")
                .arg(rootfs)
                .env("VBUILD_ROOTFS", rootfs)
                .env("VBUILD_STAGE", stage.name())
                .env("VBUILD_NAME", &env.name)
                .env("VBUILD_DISTRO", &env.distro)
                .env("VBUILD_RELEASE", &env.release)
                .env("VBUILD_VARIANT", &env.variant)
                .env("VBUILD_ARCH", &env.arch)
                .stdin(Stdio::null())
                .stdout(std::io::stderr())
                .status()
                .map_err(|e| failed(format!("could not start /bin/sh: {e}"), 1))?;
            if !status.success() {
                use std::os::unix::process::ExitStatusExt;
                return Err(match (status.code(), status.signal()) {
                    (Some(c), _) => failed(format!("exited with status {c}"), c),
                    (None, Some(s)) => failed(format!("was killed by signal {s}"), 128 + s),
                    _ => failed("failed".into(), 1),
                });
            }
        }
        Ok(())
    }
}
