//! The `start` action (spawn the long-lived shim, print its socket) and
//! the shim itself (ttrpc Task service on that socket until Shutdown).

use crate::flags::Flags;
use containerd_shim_protos::create_task;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};

/// containerd 1.7 calls the v2 Task service; the protos crate's handlers
/// are named for v3 (the same messages), so they are served under both.
const V3: &str = "/containerd.task.v3.Task/";
const V2: &str = "/containerd.task.v2.Task/";

/// Set once by Shutdown; the serving thread waits for it.
#[derive(Default)]
pub struct ExitSignal(Mutex<bool>, Condvar);

impl ExitSignal {
    /// Wakes the waiter: the shim may exit.
    pub fn signal(&self) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.1.notify_all();
    }

    /// Blocks until `signal`.
    fn wait(&self) {
        let mut done = self.0.lock().unwrap_or_else(|p| p.into_inner());
        while !*done {
            done = self.1.wait(done).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// `start`: spawns the shim (its own process group, cwd the bundle),
/// waits until it serves, and prints the address containerd dials.
pub fn start(f: &Flags) -> Result<(), String> {
    let addr = crate::flags::socket_address(&f.address, &f.namespace, &f.id);
    let exe = std::env::current_exe().map_err(|e| format!("own executable: {e}"))?;
    let mut cmd = Command::new(exe);
    cmd.args([
        "-namespace",
        &f.namespace,
        "-id",
        &f.id,
        "-address",
        &f.address,
    ])
    .args(["-socket", &addr])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .process_group(0);
    if f.debug {
        cmd.arg("-debug");
    }
    let mut child = cmd.spawn().map_err(|e| format!("spawn the shim: {e}"))?;
    // The shim closes its stdout once it serves (or dies).
    let mut said = String::new();
    let _ = child
        .stdout
        .take()
        .expect("piped")
        .read_to_string(&mut said);
    let path = addr.trim_start_matches("unix://");
    if !std::path::Path::new(path).exists() {
        return Err(format!("the shim did not serve on {addr}: {said}"));
    }
    let mut out = std::io::stdout().lock();
    out.write_all(addr.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| format!("write the address: {e}"))
}

/// The shim: subreaper, Task service on `-socket`, until Shutdown.
pub fn serve(f: &Flags) -> Result<(), String> {
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let path = f.socket.trim_start_matches("unix://");
    if let Some(dir) = std::path::Path::new(path).parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let _ = std::fs::remove_file(path);
    let exit = Arc::new(ExitSignal::default());
    let svc = crate::service::Shim::new(f, exit.clone());
    let mut methods = create_task(Arc::new(svc));
    let v2: Vec<_> = methods
        .keys()
        .filter(|k| k.starts_with(V3))
        .cloned()
        .collect();
    for k in v2 {
        let h = methods.remove(&k).expect("listed");
        methods.insert(k.replacen(V3, V2, 1), h);
    }
    let mut server = containerd_shim_protos::ttrpc::Server::new()
        .bind(&f.socket)
        .map_err(|e| format!("bind {}: {e}", f.socket))?
        .register_service(methods);
    server
        .start()
        .map_err(|e| format!("serve {}: {e}", f.socket))?;
    // Tell `start` we serve: our stdout (its pipe) becomes /dev/null.
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        use std::os::fd::AsRawFd;
        // SAFETY: dup2 with integer arguments.
        unsafe { libc::dup2(null.as_raw_fd(), 1) };
    }
    exit.wait();
    server.shutdown();
    let _ = std::fs::remove_file(path);
    Ok(())
}
