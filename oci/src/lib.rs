//! vbuild-oci: an OCI runtime (`vbuild-runc`, runc's command line) on top
//! of vbuild-runtime's launcher and vbuild-kernel's cgroups, so container
//! engines (containerd, podman) can run vbuild contexts.

pub mod cgroups;
pub mod cli;
pub mod console;
pub mod create;
pub mod error;
pub mod exec;
pub mod features;
pub mod hooks;
pub mod lifecycle;
pub mod log;
pub mod plan;
pub mod seccomp;
pub mod spec;
pub mod state;
pub mod translate;

/// The runtime spec version this runtime implements.
pub const OCI_VERSION: &str = "1.2.0";
