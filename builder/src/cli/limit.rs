//! `vbuild limit`: change resource limits. (being written)

use super::Ctx;
use clap::Args;

/// Arguments of `vbuild limit`.
#[derive(Args, Debug)]
pub struct LimitArgs {
    /// Guest name.
    pub name: String,
}

/// `vbuild limit`.
pub fn limit(_c: &Ctx, _a: LimitArgs) -> anyhow::Result<i32> {
    anyhow::bail!("vbuild limit is not implemented yet")
}
