//! vbuild-runc's own output: a reader that went away (`vbuild-runc list |
//! head -0`, an engine that closed its pipe) is an error line and exit
//! code 1, never a panic with a stack trace.

use std::io::Read;
use std::process::{Command, Stdio};

/// Runs vbuild-runc with `args`, its stdout a pipe already closed by the
/// reader; returns its exit code and stderr.
fn with_closed_stdout(args: &[&str]) -> (Option<i32>, String) {
    let (r, w) = nix::unistd::pipe().unwrap();
    drop(r);
    let mut child = Command::new(env!("CARGO_BIN_EXE_vbuild-runc"))
        .args(args)
        .stdout(Stdio::from(w))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (child.wait().unwrap().code(), err)
}

#[test]
fn a_closed_stdout_is_an_error_not_a_panic() {
    for args in [&["features"][..], &["--version"][..], &["--help"][..]] {
        let (code, err) = with_closed_stdout(args);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(err.contains("stdout"), "{args:?}: {err}");
    }
}

#[test]
fn a_closed_stderr_does_not_panic_either() {
    // A bad flag's error line has nowhere to go: still exit code 1.
    let (r, w) = nix::unistd::pipe().unwrap();
    drop(r);
    let st = Command::new(env!("CARGO_BIN_EXE_vbuild-runc"))
        .arg("--no-such-flag")
        .stdout(Stdio::null())
        .stderr(Stdio::from(w))
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(1));
}
