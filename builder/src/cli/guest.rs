//! Guest lifecycle commands: list, start, stop, restart, status, exec,
//! enter, console, delete, run, check. (being written)

use super::Ctx;
use clap::Args;

macro_rules! named_args {
    ($($t:ident),*) => {$(
        /// Arguments (being written).
        #[derive(Args, Debug)]
        pub struct $t {
            /// Guest name.
            pub name: String,
        }
    )*};
}
named_args!(
    StartArgs,
    StopArgs,
    RestartArgs,
    StatusArgs,
    EnterArgs,
    ConsoleArgs,
    DeleteArgs
);

/// Arguments of `vbuild list`.
#[derive(Args, Debug)]
pub struct ListArgs {}
/// Arguments of `vbuild check`.
#[derive(Args, Debug)]
pub struct CheckArgs {}
/// Arguments of `vbuild exec`.
#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Guest name.
    pub name: String,
    /// Command and arguments.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}
/// Arguments of `vbuild run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Root filesystem to run in.
    #[arg(long)]
    pub rootfs: std::path::PathBuf,
    /// Command and arguments.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

fn todo(what: &str) -> anyhow::Result<i32> {
    anyhow::bail!("vbuild {what} is not implemented yet")
}
/// `vbuild list`.
pub fn list(_c: &Ctx, _a: ListArgs) -> anyhow::Result<i32> {
    todo("list")
}
/// `vbuild start`.
pub fn start(_c: &Ctx, _a: StartArgs) -> anyhow::Result<i32> {
    todo("start")
}
/// `vbuild stop`.
pub fn stop(_c: &Ctx, _a: StopArgs) -> anyhow::Result<i32> {
    todo("stop")
}
/// `vbuild restart`.
pub fn restart(_c: &Ctx, _a: RestartArgs) -> anyhow::Result<i32> {
    todo("restart")
}
/// `vbuild status`.
pub fn status(_c: &Ctx, _a: StatusArgs) -> anyhow::Result<i32> {
    todo("status")
}
/// `vbuild exec`.
pub fn exec(_c: &Ctx, _a: ExecArgs) -> anyhow::Result<i32> {
    todo("exec")
}
/// `vbuild enter`.
pub fn enter(_c: &Ctx, _a: EnterArgs) -> anyhow::Result<i32> {
    todo("enter")
}
/// `vbuild console`.
pub fn console(_c: &Ctx, _a: ConsoleArgs) -> anyhow::Result<i32> {
    todo("console")
}
/// `vbuild delete`.
pub fn delete(_c: &Ctx, _a: DeleteArgs) -> anyhow::Result<i32> {
    todo("delete")
}
/// `vbuild run`.
pub fn run(_c: &Ctx, _a: RunArgs) -> anyhow::Result<i32> {
    todo("run")
}
/// `vbuild check`.
pub fn check(_c: &Ctx, _a: CheckArgs) -> anyhow::Result<i32> {
    todo("check")
}
