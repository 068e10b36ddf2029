//! One module per distribution family.

pub mod debian;
