//! Fixtures shared by the client tests.
#![allow(dead_code)]
pub mod bundle;
pub mod containerd;
pub mod podman;

mod base;
pub use base::*;
