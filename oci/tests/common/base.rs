//! What every client fixture shares (also included by the shim crate's
//! tests): the host directories a client makes, and output for messages.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Mutex;

/// A host directory a client makes whatever its config says (containerd's
/// /run/containerd, podman's /var/lib/containers): the fixtures alive in
/// this test binary are counted, and when the directory was not there
/// before the first, the last one to go removes it. One lock, so no
/// fixture starts its client while another removes the directory.
pub struct SystemDir {
    path: &'static str,
    /// (fixtures alive, whether the directory was there before the first)
    users: Mutex<(usize, Option<bool>)>,
}

impl SystemDir {
    pub const fn new(path: &'static str) -> SystemDir {
        SystemDir {
            path,
            users: Mutex::new((0, None)),
        }
    }

    /// A fixture starts using the directory.
    pub fn enter(&self) {
        let mut c = self.users.lock().unwrap_or_else(|e| e.into_inner());
        c.0 += 1;
        if c.1.is_none() {
            c.1 = Some(Path::new(self.path).exists());
        }
    }

    /// A fixture is done with it; the last removes what it made.
    pub fn leave(&self) {
        let mut c = self.users.lock().unwrap_or_else(|e| e.into_inner());
        c.0 -= 1;
        if c.0 == 0 && c.1 == Some(false) {
            let _ = std::fs::remove_dir_all(self.path);
            c.1 = None;
        }
    }
}

/// A command's status and output, for assertion messages.
pub fn text(o: &std::process::Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
