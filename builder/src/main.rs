//! The `vbuild` command line: builds guests and runs them.

mod cli;

fn main() {
    // Like every Unix tool: `vbuild list | head` ends quietly on a closed pipe.
    // SAFETY: restoring the default disposition before any thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    std::process::exit(cli::main());
}
