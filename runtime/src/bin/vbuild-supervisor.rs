//! `vbuild-supervisor RUN_DIR`: the small per-guest supervisor `vbuild
//! start` runs (see `vbuild_runtime::supervisor`). A binary of its own so
//! that each running guest costs little memory.

fn main() {
    std::process::exit(vbuild_runtime::supervisor::main());
}
