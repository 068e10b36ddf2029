//! oci's containerd fixture, shared with vbuild-runc's tests.
#![allow(dead_code)]

#[path = "../../../oci/tests/common/base.rs"]
mod base;
pub use base::*;

#[path = "../../../oci/tests/common/containerd.rs"]
pub mod containerd;

pub mod shim;
