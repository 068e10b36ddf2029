//! Installing a resolved set of .debs into a rootfs: the fast path that
//! unpacks each package once, in parallel, writes dpkg's database directly,
//! then runs the maintainer scripts inside the build's script context, and
//! leaves a system whose own dpkg sees every package `ii`.
//!
//! Phases: merged-usr links, unpack, database (`unpacked`), preinst
//! install, postinst configure in dependency order (each package turns
//! `installed` as its postinst succeeds), triggers, ldconfig.

use super::deb::{self as unpack, UnpackError, Unpacked};
use super::dpkgdb::{self, DbError, PkgState};
use super::maintscripts::{self, BuildGuards, Runner, ScriptError};
use crate::context::{ContextError, ScriptContext};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use vbuild_kernel::fsroot::{Kind, Root};

pub use crate::distro::InstallEvent;

/// A progress callback.
pub type ProgressFn = Box<dyn Fn(&InstallEvent<'_>) + Send + Sync>;

/// Options for [`install`].
pub struct InstallOptions {
    /// dpkg's native architecture (`amd64`).
    pub arch: String,
    /// Create `/bin`, `/sbin`, `/lib` (and `/lib64` on amd64) as links into
    /// `/usr` before unpacking; bookworm and later require it.
    pub merged_usr: bool,
    /// Packages unpacked at once (one per core).
    pub jobs: usize,
    /// Called with progress events; must be cheap.
    pub progress: Option<ProgressFn>,
    /// The hostname maintainer scripts see (the guest's name); `None`
    /// gives the context's default.
    pub hostname: Option<String>,
    /// Run once everything is unpacked and in the database, before any
    /// maintainer script (`--extract-hook`).
    pub after_unpack: Option<crate::distro::AfterUnpack>,
}

impl Default for InstallOptions {
    fn default() -> Self {
        InstallOptions {
            arch: "amd64".into(),
            merged_usr: true,
            jobs: std::thread::available_parallelism().map_or(2, |n| n.get()),
            progress: None,
            hostname: None,
            after_unpack: None,
        }
    }
}

/// Time spent per phase.
#[derive(Debug, Clone, Default)]
pub struct PhaseTimes {
    /// Unpacking all packages.
    pub unpack: Duration,
    /// Writing dpkg's database.
    pub database: Duration,
    /// preinst and postinst scripts.
    pub scripts: Duration,
    /// Trigger processing and ldconfig.
    pub triggers: Duration,
}

/// What [`install`] did.
#[derive(Debug, Clone, Default)]
pub struct InstallReport {
    /// Packages installed.
    pub packages: usize,
    /// Regular files written.
    pub files: u64,
    /// Bytes of file content written.
    pub bytes: u64,
    /// Maintainer scripts run.
    pub scripts: usize,
    /// Entries skipped on purpose (device nodes), one line each.
    pub notes: Vec<String>,
    /// Time per phase.
    pub times: PhaseTimes,
}

/// Installing failed; the rootfs is incomplete and should be discarded.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The rootfs is not usable.
    #[error("rootfs {root}: {message}")]
    Rootfs {
        /// The rootfs.
        root: PathBuf,
        /// What is wrong and the fix.
        message: String,
    },
    /// Two .debs carry the same package.
    #[error("package {package} given twice ({first} and {second}); pass one version")]
    Duplicate {
        /// Package name.
        package: String,
        /// First .deb.
        first: PathBuf,
        /// Second .deb.
        second: PathBuf,
    },
    /// A package could not be unpacked.
    #[error(transparent)]
    Unpack(#[from] UnpackError),
    /// dpkg's database could not be written.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The script context could not be set up.
    #[error(transparent)]
    Context(#[from] ContextError),
    /// A maintainer script failed.
    #[error(transparent)]
    Script(#[from] ScriptError),
    /// The `--extract-hook` failed (its own error is the source, so the
    /// CLI finds its exit code).
    #[error("{0}")]
    Hook(#[from] crate::hooks::HookFailed),
    /// Ctrl-C or SIGTERM arrived (see `guests::catch_interrupts`).
    #[error("interrupted while running maintainer scripts ({phase})")]
    Interrupted {
        /// preinst, configure or triggers.
        phase: &'static str,
    },
}

/// Stops the install between two scripts once an interrupt arrived; a
/// script that failed because the same Ctrl-C reached it counts as the
/// interrupt, not as a broken package.
fn unless_interrupted<T>(
    phase: &'static str,
    r: Result<T, ScriptError>,
) -> Result<T, InstallError> {
    if crate::guests::interrupted() {
        return Err(InstallError::Interrupted { phase });
    }
    r.map_err(InstallError::from)
}

/// Installs `debs` into `rootfs` (an existing, normally empty directory).
pub fn install(
    rootfs: &Path,
    debs: &[PathBuf],
    opts: &InstallOptions,
) -> Result<InstallReport, InstallError> {
    let emit = |e: InstallEvent<'_>| {
        if let Some(p) = &opts.progress {
            p(&e)
        }
    };
    let bad = |message: String| InstallError::Rootfs {
        root: rootfs.to_path_buf(),
        message,
    };
    let root = Root::open(rootfs).map_err(|e| bad(format!("{e} (create the directory first)")))?;
    if opts.merged_usr {
        merge_usr(&root, &opts.arch).map_err(bad)?;
    }
    let mut report = InstallReport::default();

    emit(InstallEvent::Phase("unpack"));
    let t = Instant::now();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let pkgs = unpack::unpack_all(rootfs, debs, opts.jobs, &|u: &Unpacked| {
        let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        emit(InstallEvent::Unpacked {
            package: u.name(),
            done: n,
            total: debs.len(),
        });
    })?;
    report.times.unpack = t.elapsed();
    check_duplicates(&pkgs)?;
    report.packages = pkgs.len();
    for u in &pkgs {
        report.files += u.regular_files;
        report.bytes += u.bytes;
        report
            .notes
            .extend(u.notes.iter().map(|n| format!("{}: {n}", u.name())));
    }

    emit(InstallEvent::Phase("database"));
    let t = Instant::now();
    dpkgdb::init(&root, &opts.arch)?;
    for u in &pkgs {
        dpkgdb::write_info(&root, u)?;
    }
    let mut states: Vec<PkgState> = vec![PkgState::Unpacked; pkgs.len()];
    write_status(&root, &pkgs, &states)?;
    dpkgdb::write_trigger_interests(&root, &pkgs)?;
    report.times.database = t.elapsed();
    if let Some(hook) = &opts.after_unpack {
        hook()?;
    }

    let t = Instant::now();
    let mut ctx = ScriptContext::new(rootfs)?.with_env(&super::debconf::ENV);
    if let Some(h) = &opts.hostname {
        ctx = ctx.with_hostname(h);
    }
    let dpkg_version = pkgs
        .iter()
        .find(|u| u.name() == "dpkg")
        .and_then(|u| u.control.get("Version"))
        .unwrap_or("")
        .trim()
        .to_string();
    let ssd = pkgs.iter().find(|u| u.name() == "dpkg").and_then(|u| {
        u.files
            .iter()
            .find(|f| f.ends_with("sbin/start-stop-daemon"))
            .map(|f| f.to_string_lossy().into_owned())
    });
    let guards = BuildGuards::install(&root, ssd.as_deref())?;
    let runner = Runner::new(&ctx, &dpkg_version);
    let order = maintscripts::configure_order(&pkgs);

    emit(InstallEvent::Phase("preinst"));
    for &i in &order {
        emit(InstallEvent::Script {
            package: pkgs[i].name(),
            script: "preinst",
        });
        report.scripts +=
            unless_interrupted("preinst", runner.run(&pkgs[i], "preinst", &["install"]))? as usize;
    }
    emit(InstallEvent::Phase("configure"));
    for &i in &order {
        emit(InstallEvent::Script {
            package: pkgs[i].name(),
            script: "postinst",
        });
        // dpkg passes the previously configured version, empty when new.
        let ran = unless_interrupted(
            "configure",
            runner.run(&pkgs[i], "postinst", &["configure", ""]),
        )?;
        report.scripts += ran as usize;
        states[i] = PkgState::Installed;
        // Scripts of later packages may query dpkg: keep `status` current.
        write_status(&root, &pkgs, &states)?;
    }
    report.times.scripts = t.elapsed();

    emit(InstallEvent::Phase("triggers"));
    let t = Instant::now();
    // Triggers may activate further triggers; dpkg loops the same way.
    let mut seen: HashMap<(usize, String), ()> = HashMap::new();
    for _ in 0..4 {
        let pending: Vec<(usize, Vec<String>)> =
            maintscripts::pending_triggers(&root, &pkgs, &order)
                .into_iter()
                .map(|(i, names)| {
                    let fresh: Vec<String> = names
                        .into_iter()
                        .filter(|n| seen.insert((i, n.clone()), ()).is_none())
                        .collect();
                    (i, fresh)
                })
                .filter(|(_, n)| !n.is_empty())
                .collect();
        root.write(
            &Path::new(dpkgdb::ADMIN).join("triggers/Unincorp"),
            b"",
            0o644,
        )
        .map_err(DbError)?;
        if pending.is_empty() {
            break;
        }
        for (i, names) in pending {
            let names = names.join(" ");
            report.scripts += unless_interrupted(
                "triggers",
                runner.run(&pkgs[i], "postinst", &["triggered", &names]),
            )? as usize;
        }
    }
    for ldconfig in ["sbin/ldconfig", "usr/sbin/ldconfig"] {
        if root.kind(Path::new(ldconfig)).ok().flatten() == Some(Kind::File) {
            ctx.run("ldconfig", &[&format!("/{ldconfig}")], &[])?;
            break;
        }
    }
    guards.remove()?;
    report.times.triggers = t.elapsed();
    Ok(report)
}

fn write_status(root: &Root, pkgs: &[Unpacked], states: &[PkgState]) -> Result<(), DbError> {
    let v: Vec<(&Unpacked, PkgState)> = pkgs.iter().zip(states.iter().copied()).collect();
    dpkgdb::write_status(root, &v)
}

fn check_duplicates(pkgs: &[Unpacked]) -> Result<(), InstallError> {
    let mut seen: HashMap<String, &Path> = HashMap::new();
    for u in pkgs {
        let key = dpkgdb::info_name(u);
        if let Some(first) = seen.insert(key, &u.deb) {
            return Err(InstallError::Duplicate {
                package: u.name().to_string(),
                first: first.to_path_buf(),
                second: u.deb.clone(),
            });
        }
    }
    Ok(())
}

/// The merged-usr links: `/bin -> usr/bin` and friends, plus `/lib64` on
/// amd64. Existing correct links are kept; a real directory there is an
/// error (the rootfs was not empty).
fn merge_usr(root: &Root, arch: &str) -> Result<(), String> {
    let mut links = vec!["bin", "sbin", "lib"];
    if arch == "amd64" {
        links.push("lib64");
    }
    for l in links {
        let target = PathBuf::from("usr").join(l);
        root.mkdir_all(&target, 0o755).map_err(|e| e.to_string())?;
        match root.kind(Path::new(l)).map_err(|e| e.to_string())? {
            None => root
                .symlink(Path::new(l), &target)
                .map_err(|e| e.to_string())?,
            Some(Kind::Symlink)
                if root.read_link(Path::new(l)).map_err(|e| e.to_string())? == target => {}
            Some(_) => {
                return Err(format!(
                    "/{l} exists and is not a link to {}; merged-usr needs an empty rootfs \
                     (remove it or start from an empty directory)",
                    target.display()
                ))
            }
        }
    }
    Ok(())
}
