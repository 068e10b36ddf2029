//! The command lines a guest's supervisor is started with and runs again:
//! the supervisor program itself, and the `vbuild start` the supervisor
//! runs when the guest rebooted itself (same guest, same state root).

use crate::paths::Layout;
use crate::supervisor::SupervisorProgram;
use std::path::{Path, PathBuf};

/// The supervisor program for guests started by this binary:
/// `vbuild-supervisor` beside it (or named by `VBUILD_SUPERVISOR`; small,
/// what a running guest should cost), else this binary itself in its
/// hidden `start NAME --supervise` mode.
pub fn supervisor_program(name: &str) -> SupervisorProgram {
    SupervisorProgram::beside_current_exe()
        .unwrap_or_else(|| fallback_supervisor(&current_exe(), name))
}

fn fallback_supervisor(exe: &Path, name: &str) -> SupervisorProgram {
    SupervisorProgram {
        program: exe.to_path_buf(),
        args: vec!["start".into(), name.into(), "--supervise".into()],
    }
}

/// What the supervisor runs after guest `name` rebooted itself: `exe -q
/// start NAME` for the same state root (`--root` unless it is the
/// default), followed by `start_flags` (the flags it was started with).
pub fn reboot_command(
    exe: &Path,
    layout: &Layout,
    name: &str,
    start_flags: &[&str],
) -> Vec<String> {
    let mut argv = vec![exe.to_string_lossy().into_owned()];
    if *layout != Layout::new(None) {
        argv.push("--root".into());
        argv.push(layout.root().to_string_lossy().into_owned());
    }
    argv.extend(["-q".to_string(), "start".to_string(), name.to_string()]);
    argv.extend(start_flags.iter().map(|f| f.to_string()));
    argv
}

/// The running binary, for the two command lines above.
pub fn current_exe() -> PathBuf {
    std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reboot_restarts_the_same_guest_in_the_same_root() {
        let exe = Path::new("/usr/bin/vbuild");
        assert_eq!(
            reboot_command(exe, &Layout::new(None), "mail01", &[]),
            ["/usr/bin/vbuild", "-q", "start", "mail01"]
        );
        let moved = Layout::new(Some(Path::new("/srv/b")));
        assert_eq!(
            reboot_command(exe, &moved, "ux1", &["--userns"]),
            [
                "/usr/bin/vbuild",
                "--root",
                "/srv/b",
                "-q",
                "start",
                "ux1",
                "--userns"
            ]
        );
    }

    #[test]
    fn without_the_small_binary_the_cli_supervises_in_its_hidden_mode() {
        let p = fallback_supervisor(Path::new("/usr/bin/vbuild"), "g");
        assert_eq!(p.program, Path::new("/usr/bin/vbuild"));
        assert_eq!(p.args, ["start", "g", "--supervise"]);
    }
}
