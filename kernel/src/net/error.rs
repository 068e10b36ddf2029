//! One error type for every netlink and sysctl operation, naming the object
//! (link, address, table) and, where there is one, what to do about it.

/// A network operation failed; the message names the link, address or
/// table involved.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// Opening or using a netlink socket failed.
    #[error("netlink socket ({what}): {source}")]
    Socket {
        /// Which socket or step.
        what: &'static str,
        /// The cause.
        source: std::io::Error,
    },
    /// The kernel refused a request.
    #[error("{op}: {}", errno_text(*errno))]
    Kernel {
        /// The request, with the object it was about.
        op: String,
        /// The (positive) errno the kernel answered with.
        errno: i32,
    },
    /// A link that must exist does not.
    #[error("link {0:?} does not exist")]
    NoSuchLink(String),
    /// An argument is unusable (link name too long, bad prefix length).
    #[error("{0}")]
    Invalid(String),
    /// The kernel sent something we could not decode.
    #[error("netlink reply to {op} could not be decoded: {message}")]
    Decode {
        /// The request.
        op: String,
        /// What the decoder said.
        message: String,
    },
    /// Joining a process's network namespace failed.
    #[error("joining the network namespace of pid {pid}: {message} (is the process still alive?)")]
    Netns {
        /// The process.
        pid: i32,
        /// What failed.
        message: String,
    },
    /// Writing a sysctl under /proc/sys/net failed.
    #[error("{path}: {source}")]
    Sysctl {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

impl NetError {
    /// The errno the kernel answered with, if this is a kernel refusal.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetError::Kernel { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}

fn errno_text(errno: i32) -> String {
    std::io::Error::from_raw_os_error(errno).to_string()
}
