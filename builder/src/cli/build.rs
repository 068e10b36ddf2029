//! `vbuild debian`: build a guest. (being written)

use super::Ctx;
use clap::Args;

/// Arguments of `vbuild debian`.
#[derive(Args, Debug)]
pub struct DebianArgs {
    /// Release: bookworm, trixie, forky or sid.
    pub release: String,
    /// Guest name (also its hostname): a-z, 0-9 and '-', up to 63 characters.
    #[arg(long)]
    pub name: String,
}

/// Builds a Debian guest.
pub fn debian(_ctx: &Ctx, _a: DebianArgs) -> anyhow::Result<i32> {
    anyhow::bail!("vbuild debian is not implemented yet")
}
