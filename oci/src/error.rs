//! vbuild-runc's errors: one enum, each message naming the container,
//! file or field involved and what to do about it.

use std::path::PathBuf;

/// Anything a vbuild-runc command can fail with.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// The command line is wrong.
    #[error("{0} (see vbuild-runc --help)")]
    Usage(String),
    /// config.json is malformed or inconsistent.
    #[error("config.json: {0}")]
    Config(String),
    /// config.json asks for something vbuild-runc cannot honour.
    #[error("config.json: {0}")]
    Unsupported(String),
    /// No container of that id under --root.
    #[error("container {0} does not exist")]
    NotFound(String),
    /// An id that is taken.
    #[error("container {0} already exists (delete it first, or pick another id)")]
    Exists(String),
    /// An id runc would not accept either.
    #[error("container id {0:?} is not valid (letters, digits, and _ + - . only)")]
    BadId(String),
    /// The container is in the wrong state for the command.
    #[error("container {id} is {status}: {what}")]
    State {
        /// The container.
        id: String,
        /// Its status.
        status: String,
        /// What cannot be done.
        what: String,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A system call failed.
    #[error("{what}: {errno}")]
    Sys {
        /// What was being done.
        what: String,
        /// The kernel's answer.
        errno: nix::errno::Errno,
    },
    /// The container setup failed (from vbuild-runtime).
    #[error(transparent)]
    Runtime(#[from] vbuild_runtime::error::RuntimeError),
    /// A cgroup operation failed.
    #[error("cgroup: {0}")]
    Cgroup(#[from] vbuild_kernel::cgroup::CgroupError),
}

/// `map_err` helper for I/O on `path`.
pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> OciError {
    let path = path.into();
    move |source| OciError::Io { path, source }
}

/// `map_err` helper for a failed system call.
pub fn sys(what: impl Into<String>) -> impl FnOnce(nix::errno::Errno) -> OciError {
    let what = what.into();
    move |errno| OciError::Sys { what, errno }
}
