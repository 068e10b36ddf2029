//! `vbuild net ...` and `vbuild set`: networks and a guest's addresses. (being written)

use super::Ctx;
use clap::{Args, Subcommand};

/// Arguments of `vbuild set`.
#[derive(Args, Debug)]
pub struct SetArgs {
    /// Guest name.
    pub name: String,
}

/// `vbuild net` subcommands.
#[derive(Subcommand, Debug)]
pub enum NetCommand {
    /// List networks.
    List,
}

/// `vbuild set`.
pub fn set(_c: &Ctx, _a: SetArgs) -> anyhow::Result<i32> {
    anyhow::bail!("vbuild set is not implemented yet")
}
/// `vbuild net`.
pub fn net(_c: &Ctx, _n: NetCommand) -> anyhow::Result<i32> {
    anyhow::bail!("vbuild net is not implemented yet")
}
