//! Fixtures shared by the client tests.
pub mod containerd;
pub mod podman;
