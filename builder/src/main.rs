//! The `vbuild` command line: builds guests and runs them.

mod cli;

fn main() {
    std::process::exit(cli::main());
}
