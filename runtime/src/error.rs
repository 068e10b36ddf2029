//! The errors of a guest's lifecycle (start, stop, exec, console, status,
//! delete, run). Each message is one line naming the guest and what to do.

use std::path::PathBuf;

/// A lifecycle operation that was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// No guest of that name.
    #[error("guest {0} does not exist (see `vbuild list`, or build one with `vbuild debian bookworm --name {0}`)")]
    NotFound(String),
    /// Start of a guest that runs.
    #[error("guest {name} is already running (init pid {init_pid}); stop it first with `vbuild stop {name}`")]
    AlreadyRunning {
        /// The guest.
        name: String,
        /// Its init, as the host sees it.
        init_pid: i32,
    },
    /// Stop, exec, console... of a guest that does not run.
    #[error("guest {0} is not running (start it with `vbuild start {0}`)")]
    NotRunning(String),
    /// Delete of a running guest.
    #[error("guest {0} is running; stop it first with `vbuild stop {0}`")]
    Running(String),
    /// Another state root runs a guest of this name: names are host-wide.
    #[error("guest name {name} is in use on this host by the guest of state root {root} (cgroups, links and addresses are named after the guest, so one name runs in one state root at a time; stop it there with `vbuild --root {root} stop {name}`, or pick another name)", root = .root.display())]
    NameTaken {
        /// The guest.
        name: String,
        /// The state root whose guest runs under the name.
        root: PathBuf,
    },
    /// A running guest (of this or another state root) uses the address on
    /// the same bridge: addresses on a shared bridge are host-wide.
    #[error("guest {name}: address {addr} on bridge {bridge} is in use by running guest {guest} of state root {root_text}; give {name} another address (`vbuild set {name} --ip ...`) or stop {guest} there with `vbuild --root {root_text} stop {guest}`", root_text = .root.display())]
    AddressTaken {
        /// The guest being started.
        name: String,
        /// The address.
        addr: std::net::IpAddr,
        /// The bridge both are on.
        bridge: String,
        /// The guest that uses it.
        guest: String,
        /// Its state root.
        root: PathBuf,
    },
    /// A change of a guest failed and was rolled back completely.
    #[error("guest {name}: {step}: {cause} (nothing was changed)")]
    Unchanged {
        /// The guest.
        name: String,
        /// The step that failed.
        step: String,
        /// Why.
        cause: String,
    },
    /// A change of a guest failed and part of it could not be undone.
    #[error("guest {name}: {step}: {cause}; could not undo: {left} (fix that by hand, then run the command again)")]
    PartlyChanged {
        /// The guest.
        name: String,
        /// The step that failed.
        step: String,
        /// Why.
        cause: String,
        /// What stays changed.
        left: String,
    },
    /// Another vbuild is starting or stopping the guest right now.
    #[error("guest {0} is being started or stopped by another vbuild; try again when it is done")]
    Busy(String),
    /// The root filesystem is missing.
    #[error("guest {name}: root filesystem {path} does not exist (rebuild the guest, or restore the directory)")]
    RootfsMissing {
        /// The guest (or `run`).
        name: String,
        /// The directory.
        path: PathBuf,
    },
    /// `run --rootfs` names no directory.
    #[error("run --rootfs {path}: no such directory (give a root filesystem, e.g. a tree made by `vbuild build --no-init`)", path = .path.display())]
    RunRootfsMissing {
        /// The directory given.
        path: PathBuf,
    },
    /// `run --rootfs` points into a running guest: two inits writing one
    /// tree, and the one-shot would bypass the guest's limits and claims.
    #[error("run --rootfs {path}: that is guest {guest}'s root filesystem and {guest} is running (use `vbuild exec {guest} -- CMD`, or `vbuild stop {guest}` first)", path = .path.display())]
    RunRootfsInUse {
        /// The directory given.
        path: PathBuf,
        /// The running guest that owns it.
        guest: String,
    },
    /// Init (or the command of `run`) cannot be executed.
    #[error("guest {name}: {source} (set [init] path in guest.toml to the guest's init, or install one)")]
    Init {
        /// The guest.
        name: String,
        /// What is wrong with it.
        source: vbuild_kernel::rootfs::ExecCheck,
    },
    /// A command of `run` or `exec` cannot be executed.
    #[error("{name}: cannot run {command}: {reason}")]
    Command {
        /// The guest (or `run`).
        name: String,
        /// The command.
        command: String,
        /// Why (not found, not executable).
        reason: String,
    },
    /// guest.toml could not be read.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// No id range could be had for an unprivileged guest.
    #[error(transparent)]
    IdRange(#[from] crate::idrange::IdRangeError),
    /// A cgroup operation failed.
    #[error("guest {name}: {source}")]
    Cgroup {
        /// The guest.
        name: String,
        /// What failed.
        source: vbuild_kernel::cgroup::CgroupError,
    },
    /// Limits could not be applied.
    #[error("guest {name}: {source}")]
    Limits {
        /// The guest.
        name: String,
        /// What failed.
        source: crate::limits::LimitError,
    },
    /// The disk could not be activated or deactivated.
    #[error("guest {name}: {source}")]
    Disk {
        /// The guest.
        name: String,
        /// What failed.
        source: crate::disk::DiskError,
    },
    /// The network context could not be made or removed.
    #[error(transparent)]
    Net(#[from] crate::net::NetError),
    /// An overlay guest's root could not be made (`crate::layer`).
    #[error(transparent)]
    Layer(#[from] crate::layer::LayerError),
    /// Setting up the context (namespaces, mounts, capabilities) failed.
    #[error("guest {name}: setting up the context failed: {step}: {errno}")]
    Setup {
        /// The guest (or `run`).
        name: String,
        /// The step that failed, naming its path.
        step: String,
        /// The kernel's answer.
        errno: nix::errno::Errno,
    },
    /// The supervisor could not be started or died early.
    #[error("guest {name}: supervisor: {message}")]
    Supervisor {
        /// The guest.
        name: String,
        /// What happened (from its log when there is one).
        message: String,
    },
    /// Init ended before the guest was up.
    #[error("guest {name}: init exited during start; see the console log {log}")]
    InitExited {
        /// The guest.
        name: String,
        /// The console log.
        log: PathBuf,
    },
    /// A wait ran out.
    #[error("guest {name}: {what} did not happen within {secs} s ({hint})")]
    Timeout {
        /// The guest.
        name: String,
        /// What was awaited.
        what: &'static str,
        /// The limit.
        secs: u64,
        /// What was last seen, and what to do.
        hint: String,
    },
    /// The console is attached elsewhere or unavailable.
    #[error("guest {name}: console unavailable: {reason}")]
    Console {
        /// The guest.
        name: String,
        /// Why.
        reason: String,
    },
    /// The security filter could not be built.
    #[error(transparent)]
    Seccomp(#[from] vbuild_kernel::seccomp::SeccompError),
    /// Other I/O on a named path.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A system call outside the context setup failed.
    #[error("guest {name}: {op}: {errno}")]
    Sys {
        /// The guest.
        name: String,
        /// What was attempted.
        op: String,
        /// The kernel's answer.
        errno: nix::errno::Errno,
    },
}

/// Maps an I/O error to `RuntimeError::Io` naming `path`.
pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> RuntimeError {
    let path = path.into();
    move |source| RuntimeError::Io { path, source }
}

/// Maps an errno to `RuntimeError::Sys` naming the guest and the operation.
pub(crate) fn sys(
    name: &str,
    op: impl Into<String>,
) -> impl FnOnce(nix::errno::Errno) -> RuntimeError {
    let (name, op) = (name.to_string(), op.into());
    move |errno| RuntimeError::Sys { name, op, errno }
}
