//! Fixtures shared by the client tests.
pub mod containerd;
