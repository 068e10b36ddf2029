//! The shim: containerd's `start`/`delete` actions and the ttrpc Task
//! service, over vbuild-oci's create/start/kill/delete in this process.

use crate::console::{Console, ConsoleSocket};
use crate::daemon::ExitSignal;
use crate::events::Publisher;
use crate::flags::Flags;
use containerd_shim_protos::api;
use containerd_shim_protos::api::DeleteResponse;
use containerd_shim_protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskPaused, TaskResumed,
    TaskStart,
};
use containerd_shim_protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim_protos::protobuf::{EnumOrUnknown, MessageField};
use containerd_shim_protos::ttrpc::{self, Code, Result as TtrpcResult, TtrpcContext};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use vbuild_oci::state::Root;

/// How long a delete waits for a terminal's output to reach containerd.
const DRAIN: Duration = Duration::from_secs(2);

/// Where vbuild-oci keeps a task's state: below its bundle.
fn state_root(bundle: &Path) -> Root {
    Root::new(&bundle.join(".vbuild-shim"))
}

/// The one task of this shim.
struct Task {
    id: String,
    bundle: PathBuf,
    pid: i32,
    started: bool,
    /// Frozen by Pause, until Resume.
    paused: bool,
    stdio: [String; 3],
    /// Exec processes by exec id, from Exec until their Delete.
    execs: HashMap<String, Exec>,
    /// The terminal of `ctr run -t`.
    console: Option<Arc<Console>>,
}

/// An exec process: made by Exec, run by Start (pid 0 until then).
struct Exec {
    spec: vbuild_oci::spec::Process,
    stdio: [String; 3],
    pid: i32,
    /// Give it a terminal (`ctr task exec -t`).
    terminal: bool,
    /// That terminal, once Start made it.
    console: Option<Arc<Console>>,
}

#[derive(Default)]
struct Inner {
    task: Option<Task>,
    /// Exit codes of our children by pid, with when they were seen.
    exits: HashMap<i32, (u32, Timestamp)>,
}

/// The shim and its Task service (one per container).
#[derive(Clone)]
pub struct Shim {
    exit: Arc<ExitSignal>,
    state: Arc<(Mutex<Inner>, Condvar)>,
    publisher: Option<Arc<Publisher>>,
}

fn err(code: Code, msg: impl Into<String>) -> ttrpc::Error {
    ttrpc::Error::RpcStatus(ttrpc::get_status(code, msg.into()))
}

fn unimplemented<T>(method: &str) -> TtrpcResult<T> {
    Err(err(
        Code::UNIMPLEMENTED,
        format!("containerd-shim-vbuild-v2: {method} is not implemented"),
    ))
}

impl Shim {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.state.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The publisher, if containerd's event socket answered.
    fn events(&self) -> Option<&Publisher> {
        self.publisher.as_deref()
    }

    /// The task, or NotFound naming the id asked for.
    fn task<'a>(&self, g: &'a Inner, id: &str) -> TtrpcResult<&'a Task> {
        match &g.task {
            Some(t) if t.id == id => Ok(t),
            _ => Err(err(Code::NOT_FOUND, format!("task {id} not found"))),
        }
    }

    /// The shim for `-namespace`/`-id`, publishing to `-address`.ttrpc.
    pub fn new(f: &Flags, exit: Arc<ExitSignal>) -> Shim {
        let ttrpc =
            std::env::var("TTRPC_ADDRESS").unwrap_or_else(|_| format!("{}.ttrpc", f.address));
        let publisher = match Publisher::connect(&ttrpc, &f.namespace) {
            Ok(p) => Some(Arc::new(p)),
            Err(e) => {
                eprintln!("containerd-shim-vbuild-v2: no events to containerd at {ttrpc}: {e}");
                None
            }
        };
        Shim {
            exit,
            state: Default::default(),
            publisher,
        }
    }

    /// Waits for the task's process (our child) and records its exit;
    /// only this pid is reaped, so the library's own waits are undisturbed.
    fn watch_exit(&self, container: String, id: String, pid: i32) {
        let me = self.clone();
        std::thread::spawn(move || {
            let mut status = 0;
            // SAFETY: waitpid on our own child.
            let r = loop {
                let r = unsafe { libc::waitpid(pid, &mut status, 0) };
                if r >= 0 || nix::errno::Errno::last() != nix::errno::Errno::EINTR {
                    break r;
                }
            };
            let code = if r < 0 {
                255
            } else if libc::WIFSIGNALED(status) {
                128 + libc::WTERMSIG(status) as u32
            } else {
                libc::WEXITSTATUS(status) as u32
            };
            let now = Timestamp::now();
            me.lock().exits.insert(pid, (code, now.clone()));
            me.state.1.notify_all();
            if let Some(p) = me.events() {
                p.exit(TaskExit {
                    container_id: container,
                    id,
                    pid: pid as u32,
                    exit_status: code,
                    exited_at: MessageField::some(now),
                    ..Default::default()
                });
            }
        });
    }
}

/// Exec process `exec_id` of task `t`, or NotFound naming both.
fn exec_of<'a>(t: &'a Task, exec_id: &str) -> TtrpcResult<&'a Exec> {
    t.execs.get(exec_id).ok_or_else(|| {
        err(
            Code::NOT_FOUND,
            format!("exec {exec_id} of task {} not found", t.id),
        )
    })
}

impl Shim {
    /// Exec: records the process (run later by Start); refuses an exec id
    /// in use and a task whose process has exited.
    fn add_exec(&self, req: api::ExecProcessRequest) -> TtrpcResult<api::Empty> {
        let spec = req
            .spec
            .as_ref()
            .ok_or_else(|| err(Code::INVALID_ARGUMENT, "exec: the request has no spec"))
            .and_then(|a| crate::anys::process(a).map_err(|e| err(Code::INVALID_ARGUMENT, e)))?;
        let terminal = req.terminal || spec.terminal;
        let opts = vbuild_oci::exec::ExecOptions {
            id: req.id.clone(),
            tty: terminal,
            // Start makes the socket; the check needs to know there is one.
            console_socket: terminal.then(PathBuf::new),
            ..Default::default()
        };
        vbuild_oci::exec::check_process(&spec, &opts)
            .map_err(|e| err(Code::INVALID_ARGUMENT, format!("exec {}: {e}", req.exec_id)))?;
        let mut g = self.lock();
        let exited = g
            .task
            .as_ref()
            .is_some_and(|t| g.exits.contains_key(&t.pid));
        let t = match g.task.as_mut() {
            Some(t) if t.id == req.id => t,
            _ => return Err(err(Code::NOT_FOUND, format!("task {} not found", req.id))),
        };
        if exited || !t.started {
            return Err(err(
                Code::FAILED_PRECONDITION,
                format!(
                    "exec {} in task {}: the task is {}; an exec needs a running task",
                    req.exec_id,
                    req.id,
                    if exited { "stopped" } else { "not started" }
                ),
            ));
        }
        if t.execs.contains_key(&req.exec_id) {
            return Err(err(
                Code::ALREADY_EXISTS,
                format!(
                    "exec id {} already exists in task {}: delete it first or pick another",
                    req.exec_id, req.id
                ),
            ));
        }
        t.execs.insert(
            req.exec_id.clone(),
            Exec {
                spec,
                stdio: [req.stdin.clone(), req.stdout.clone(), req.stderr.clone()],
                pid: 0,
                terminal,
                console: None,
            },
        );
        drop(g);
        if let Some(p) = self.events() {
            p.exec_added(TaskExecAdded {
                container_id: req.id.clone(),
                exec_id: req.exec_id.clone(),
                ..Default::default()
            });
        }
        Ok(api::Empty::default())
    }

    /// Start of an exec: vbuild-oci's exec into the container, with the
    /// exec's stdio; the process is our child, reaped by `watch_exit`.
    fn start_exec(&self, id: &str, exec_id: &str) -> TtrpcResult<api::StartResponse> {
        let (bundle, spec, stdio, terminal) = {
            let g = self.lock();
            let t = self.task(&g, id)?;
            let e = exec_of(t, exec_id)?;
            if e.pid != 0 {
                return Err(err(
                    Code::ALREADY_EXISTS,
                    format!("exec {exec_id} of task {id} was already started"),
                ));
            }
            (
                t.bundle.clone(),
                e.spec.clone(),
                e.stdio.clone(),
                e.terminal,
            )
        };
        let sock = terminal
            .then(ConsoleSocket::bind)
            .transpose()
            .map_err(|e| err(Code::INTERNAL, e))?;
        let opts = vbuild_oci::exec::ExecOptions {
            id: id.into(),
            detach: true,
            tty: terminal,
            console_socket: sock.as_ref().map(|s| s.path().to_path_buf()),
            ..Default::default()
        };
        let root = state_root(&bundle);
        let failed = |e: vbuild_oci::error::OciError| {
            err(
                Code::FAILED_PRECONDITION,
                format!("exec {exec_id} in {id}: {e}"),
            )
        };
        let (pid, console) = match sock {
            Some(sock) => {
                let pid = vbuild_oci::exec::spawn(&root, &opts, &spec).map_err(failed)?;
                let master = sock.receive().map_err(|e| err(Code::INTERNAL, e))?;
                (
                    pid,
                    Some(Arc::new(Console::relay(master, &stdio[0], &stdio[1]))),
                )
            }
            None => {
                let pid = crate::stdio::with_stdio([&stdio[0], &stdio[1], &stdio[2]], || {
                    vbuild_oci::exec::spawn(&root, &opts, &spec)
                })
                .map_err(|e| err(Code::INTERNAL, e))?
                .map_err(failed)?;
                (pid, None)
            }
        };
        self.watch_exit(id.into(), exec_id.into(), pid);
        {
            let mut g = self.lock();
            if let Some(e) = g.task.as_mut().and_then(|t| t.execs.get_mut(exec_id)) {
                e.pid = pid;
                e.console = console;
            }
        }
        self.state.1.notify_all();
        if let Some(p) = self.events() {
            p.exec_started(TaskExecStarted {
                container_id: id.into(),
                exec_id: exec_id.into(),
                pid: pid as u32,
                ..Default::default()
            });
        }
        Ok(api::StartResponse {
            pid: pid as u32,
            ..Default::default()
        })
    }

    /// Kill of an exec: the signal to its process, if it still runs.
    fn kill_exec(&self, id: &str, exec_id: &str, sig: i32) -> TtrpcResult<api::Empty> {
        let g = self.lock();
        let e = exec_of(self.task(&g, id)?, exec_id)?;
        if e.pid == 0 || g.exits.contains_key(&e.pid) {
            return Err(err(
                Code::NOT_FOUND,
                format!("exec {exec_id} of task {id}: no running process"),
            ));
        }
        // SAFETY: kill with integer arguments; the pid is our unreaped child.
        if unsafe { libc::kill(e.pid, sig) } != 0 {
            let e = std::io::Error::last_os_error();
            return Err(err(Code::INTERNAL, format!("kill exec {exec_id}: {e}")));
        }
        Ok(api::Empty::default())
    }

    /// Delete of an exec: forgets a finished (or never started) process.
    fn delete_exec(&self, id: &str, exec_id: &str) -> TtrpcResult<api::DeleteResponse> {
        let console = {
            let g = self.lock();
            exec_of(self.task(&g, id)?, exec_id)?.console.clone()
        };
        if let Some(c) = console {
            c.drain(DRAIN);
        }
        let mut g = self.lock();
        let pid = exec_of(self.task(&g, id)?, exec_id)?.pid;
        let exit = match pid {
            0 => None,
            pid => match g.exits.get(&pid) {
                Some(e) => Some(e.clone()),
                None => {
                    return Err(err(
                        Code::FAILED_PRECONDITION,
                        format!("exec {exec_id} of task {id} is running: kill it before delete"),
                    ))
                }
            },
        };
        g.exits.remove(&pid);
        if let Some(t) = g.task.as_mut() {
            t.execs.remove(exec_id);
        }
        let (code, at) = exit.unwrap_or((0, Timestamp::now()));
        Ok(api::DeleteResponse {
            pid: pid as u32,
            exit_status: code,
            exited_at: MessageField::some(at),
            ..Default::default()
        })
    }

    /// Pause (`on`) or Resume: the container's freezer.
    fn freeze(&self, id: &str, on: bool) -> TtrpcResult<api::Empty> {
        let bundle = {
            let g = self.lock();
            self.task(&g, id)?.bundle.clone()
        };
        let what = if on { "pause" } else { "resume" };
        vbuild_oci::lifecycle::pause(&state_root(&bundle), id, on)
            .map_err(|e| err(Code::FAILED_PRECONDITION, format!("{what} {id}: {e}")))?;
        if let Some(t) = self.lock().task.as_mut() {
            t.paused = on;
        }
        if let Some(p) = self.events() {
            if on {
                p.paused(TaskPaused {
                    container_id: id.into(),
                    ..Default::default()
                });
            } else {
                p.resumed(TaskResumed {
                    container_id: id.into(),
                    ..Default::default()
                });
            }
        }
        Ok(api::Empty::default())
    }
}

/// The `delete` action: cleans up after a shim that died (the container,
/// its cgroup and state, the rootfs mounts) and prints a DeleteResponse.
pub fn delete_bundle(f: &Flags) -> Result<(), String> {
    use containerd_shim_protos::protobuf::Message;
    let bundle = if f.bundle.is_empty() {
        std::env::current_dir().unwrap_or_default()
    } else {
        PathBuf::from(&f.bundle)
    };
    if let Err(e) = vbuild_oci::lifecycle::delete(&state_root(&bundle), &f.id, true) {
        eprintln!("containerd-shim-vbuild-v2: delete {}: {e}", f.id);
    }
    let _ = std::fs::remove_dir_all(bundle.join(".vbuild-shim"));
    crate::rootfs::unmount(&bundle)?;
    let r = DeleteResponse {
        exit_status: 128 + libc::SIGKILL as u32,
        exited_at: MessageField::some(Timestamp::now()),
        ..Default::default()
    };
    let bytes = r.write_to_bytes().map_err(|e| e.to_string())?;
    use std::io::Write;
    std::io::stdout()
        .write_all(&bytes)
        .map_err(|e| format!("write the DeleteResponse: {e}"))
}

impl containerd_shim_protos::Task for Shim {
    fn create(
        &self,
        _ctx: &TtrpcContext,
        req: api::CreateTaskRequest,
    ) -> TtrpcResult<api::CreateTaskResponse> {
        if self.lock().task.is_some() {
            return Err(err(Code::ALREADY_EXISTS, "this shim already has a task"));
        }
        let bundle = PathBuf::from(&req.bundle);
        crate::rootfs::mount(&bundle, &req.rootfs).map_err(|e| err(Code::INTERNAL, e))?;
        let root = state_root(&bundle);
        // One error path: whatever failed, the rootfs mount goes.
        let made = (|| -> Result<(vbuild_oci::state::Saved, Option<Console>), String> {
            let sock = req.terminal.then(ConsoleSocket::bind).transpose()?;
            let opts = vbuild_oci::create::CreateOptions {
                id: req.id.clone(),
                bundle: bundle.clone(),
                console_socket: sock.as_ref().map(|s| s.path().to_path_buf()),
                ..Default::default()
            };
            let create = || vbuild_oci::create::create(&root, &opts);
            let saved = match &sock {
                // The process's stdio is the terminal.
                Some(_) => create(),
                None => crate::stdio::with_stdio([&req.stdin, &req.stdout, &req.stderr], create)?,
            }
            .map_err(|e| format!("create {}: {e}", req.id))?;
            let Some(sock) = sock else {
                return Ok((saved, None));
            };
            match sock.receive() {
                Ok(master) => Ok((saved, Some(Console::relay(master, &req.stdin, &req.stdout)))),
                Err(e) => {
                    let _ = vbuild_oci::lifecycle::delete(&root, &req.id, true);
                    Err(e)
                }
            }
        })();
        let (saved, console) = match made {
            Ok(m) => m,
            Err(e) => {
                let _ = crate::rootfs::unmount(&bundle);
                return Err(err(Code::INTERNAL, e));
            }
        };
        self.watch_exit(req.id.clone(), req.id.clone(), saved.pid);
        self.lock().task = Some(Task {
            id: req.id.clone(),
            bundle: bundle.clone(),
            pid: saved.pid,
            started: false,
            paused: false,
            stdio: [req.stdin.clone(), req.stdout.clone(), req.stderr.clone()],
            execs: HashMap::new(),
            console: console.map(Arc::new),
        });
        if let Some(p) = self.events() {
            p.create(TaskCreate {
                container_id: req.id.clone(),
                bundle: req.bundle.clone(),
                rootfs: req.rootfs.clone(),
                pid: saved.pid as u32,
                ..Default::default()
            });
        }
        Ok(api::CreateTaskResponse {
            pid: saved.pid as u32,
            ..Default::default()
        })
    }

    fn start(
        &self,
        _ctx: &TtrpcContext,
        req: api::StartRequest,
    ) -> TtrpcResult<api::StartResponse> {
        if !req.exec_id.is_empty() {
            return self.start_exec(&req.id, &req.exec_id);
        }
        let (bundle, pid) = {
            let g = self.lock();
            let t = self.task(&g, &req.id)?;
            (t.bundle.clone(), t.pid)
        };
        vbuild_oci::lifecycle::start(&state_root(&bundle), &req.id)
            .map_err(|e| err(Code::FAILED_PRECONDITION, format!("start {}: {e}", req.id)))?;
        if let Some(t) = self.lock().task.as_mut() {
            t.started = true;
        }
        if let Some(p) = self.events() {
            p.start(TaskStart {
                container_id: req.id.clone(),
                pid: pid as u32,
                ..Default::default()
            });
        }
        Ok(api::StartResponse {
            pid: pid as u32,
            ..Default::default()
        })
    }

    fn state(
        &self,
        _ctx: &TtrpcContext,
        req: api::StateRequest,
    ) -> TtrpcResult<api::StateResponse> {
        let g = self.lock();
        let t = self.task(&g, &req.id)?;
        let (id, pid, started, stdio) = if req.exec_id.is_empty() {
            (&t.id, t.pid, t.started, &t.stdio)
        } else {
            let e = exec_of(t, &req.exec_id)?;
            (&req.exec_id, e.pid, e.pid != 0, &e.stdio)
        };
        let exit = g.exits.get(&pid);
        let status = match (exit, started) {
            (Some(_), _) => api::Status::STOPPED,
            (None, true) if t.paused => api::Status::PAUSED,
            (None, true) => api::Status::RUNNING,
            (None, false) => api::Status::CREATED,
        };
        Ok(api::StateResponse {
            id: id.clone(),
            bundle: t.bundle.display().to_string(),
            pid: pid as u32,
            status: EnumOrUnknown::new(status),
            stdin: stdio[0].clone(),
            stdout: stdio[1].clone(),
            stderr: stdio[2].clone(),
            exec_id: req.exec_id.clone(),
            exit_status: exit.map(|e| e.0).unwrap_or(0),
            exited_at: MessageField::from_option(exit.map(|e| e.1.clone())),
            ..Default::default()
        })
    }

    fn wait(&self, _ctx: &TtrpcContext, req: api::WaitRequest) -> TtrpcResult<api::WaitResponse> {
        let mut g = self.lock();
        loop {
            let t = self.task(&g, &req.id)?;
            let pid = if req.exec_id.is_empty() {
                t.pid
            } else {
                exec_of(t, &req.exec_id)?.pid
            };
            if let Some((code, at)) = g.exits.get(&pid).filter(|_| pid != 0) {
                return Ok(api::WaitResponse {
                    exit_status: *code,
                    exited_at: MessageField::some(at.clone()),
                    ..Default::default()
                });
            }
            g = self.state.1.wait(g).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn kill(&self, _ctx: &TtrpcContext, req: api::KillRequest) -> TtrpcResult<api::Empty> {
        if !req.exec_id.is_empty() {
            return self.kill_exec(&req.id, &req.exec_id, req.signal as i32);
        }
        let (bundle, pid, exited) = {
            let g = self.lock();
            let t = self.task(&g, &req.id)?;
            (t.bundle.clone(), t.pid, g.exits.contains_key(&t.pid))
        };
        if exited && !req.all {
            return Err(err(
                Code::NOT_FOUND,
                format!("task {}: process {pid} already finished", req.id),
            ));
        }
        vbuild_oci::lifecycle::kill(&state_root(&bundle), &req.id, req.signal as i32, req.all)
            .map_err(|e| err(Code::INTERNAL, format!("kill {}: {e}", req.id)))?;
        Ok(api::Empty::default())
    }

    fn delete(
        &self,
        _ctx: &TtrpcContext,
        req: api::DeleteRequest,
    ) -> TtrpcResult<api::DeleteResponse> {
        if !req.exec_id.is_empty() {
            return self.delete_exec(&req.id, &req.exec_id);
        }
        let (bundle, pid, exit, console) = {
            let g = self.lock();
            let t = self.task(&g, &req.id)?;
            (
                t.bundle.clone(),
                t.pid,
                g.exits.get(&t.pid).cloned(),
                t.console.clone(),
            )
        };
        if let (Some(c), Some(_)) = (&console, &exit) {
            // The process is gone: let its last output reach containerd.
            c.drain(DRAIN);
        }
        vbuild_oci::lifecycle::delete(&state_root(&bundle), &req.id, true)
            .map_err(|e| err(Code::INTERNAL, format!("delete {}: {e}", req.id)))?;
        let _ = std::fs::remove_dir_all(bundle.join(".vbuild-shim"));
        crate::rootfs::unmount(&bundle).map_err(|e| err(Code::INTERNAL, e))?;
        // A process killed by delete: its exit comes from the reaper.
        let (code, at) = match exit {
            Some(e) => e,
            None => {
                let mut g = self.lock();
                let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
                loop {
                    if let Some(e) = g.exits.get(&pid) {
                        break e.clone();
                    }
                    let left = until.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        break (128 + libc::SIGKILL as u32, Timestamp::now());
                    }
                    g = self
                        .state
                        .1
                        .wait_timeout(g, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
            }
        };
        self.lock().task = None;
        if let Some(p) = self.events() {
            p.delete(TaskDelete {
                container_id: req.id.clone(),
                pid: pid as u32,
                exit_status: code,
                exited_at: MessageField::some(at.clone()),
                ..Default::default()
            });
        }
        Ok(api::DeleteResponse {
            pid: pid as u32,
            exit_status: code,
            exited_at: MessageField::some(at),
            ..Default::default()
        })
    }

    fn pids(&self, _ctx: &TtrpcContext, req: api::PidsRequest) -> TtrpcResult<api::PidsResponse> {
        let bundle = {
            let g = self.lock();
            self.task(&g, &req.id)?.bundle.clone()
        };
        let pids = vbuild_oci::lifecycle::ps(&state_root(&bundle), &req.id)
            .map_err(|e| err(Code::INTERNAL, format!("pids {}: {e}", req.id)))?;
        Ok(api::PidsResponse {
            processes: pids
                .into_iter()
                .map(|pid| containerd_shim_protos::types::task::ProcessInfo {
                    pid: pid as u32,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
    }

    fn connect(
        &self,
        _ctx: &TtrpcContext,
        req: api::ConnectRequest,
    ) -> TtrpcResult<api::ConnectResponse> {
        let g = self.lock();
        let task_pid = g
            .task
            .as_ref()
            .filter(|t| t.id == req.id)
            .map(|t| t.pid as u32);
        Ok(api::ConnectResponse {
            shim_pid: std::process::id(),
            task_pid: task_pid.unwrap_or(0),
            version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        })
    }

    fn shutdown(&self, _ctx: &TtrpcContext, _req: api::ShutdownRequest) -> TtrpcResult<api::Empty> {
        if self.lock().task.is_some() {
            return Ok(api::Empty::default());
        }
        self.exit.signal();
        Ok(api::Empty::default())
    }

    fn exec(&self, _ctx: &TtrpcContext, req: api::ExecProcessRequest) -> TtrpcResult<api::Empty> {
        self.add_exec(req)
    }

    fn resize_pty(
        &self,
        _ctx: &TtrpcContext,
        req: api::ResizePtyRequest,
    ) -> TtrpcResult<api::Empty> {
        let console = {
            let g = self.lock();
            let t = self.task(&g, &req.id)?;
            if req.exec_id.is_empty() {
                t.console.clone()
            } else {
                exec_of(t, &req.exec_id)?.console.clone()
            }
        };
        let c = console.ok_or_else(|| {
            err(
                Code::FAILED_PRECONDITION,
                format!(
                    "resize {} {}: the process has no terminal",
                    req.id, req.exec_id
                ),
            )
        })?;
        c.resize(req.width, req.height)
            .map_err(|e| err(Code::INTERNAL, format!("resize {}: {e}", req.id)))?;
        Ok(api::Empty::default())
    }

    fn close_io(&self, _ctx: &TtrpcContext, _req: api::CloseIORequest) -> TtrpcResult<api::Empty> {
        // Stdio are the container's own fifo ends: nothing of ours to close.
        Ok(api::Empty::default())
    }

    fn update(&self, _ctx: &TtrpcContext, req: api::UpdateTaskRequest) -> TtrpcResult<api::Empty> {
        let bundle = {
            let g = self.lock();
            self.task(&g, &req.id)?.bundle.clone()
        };
        let r = match req.resources.as_ref() {
            Some(any) => crate::anys::resources(any).map_err(|e| err(Code::INVALID_ARGUMENT, e))?,
            None => return Ok(api::Empty::default()),
        };
        vbuild_oci::lifecycle::update(&state_root(&bundle), &req.id, &r)
            .map_err(|e| err(Code::FAILED_PRECONDITION, format!("update {}: {e}", req.id)))?;
        Ok(api::Empty::default())
    }

    fn pause(&self, _ctx: &TtrpcContext, req: api::PauseRequest) -> TtrpcResult<api::Empty> {
        self.freeze(&req.id, true)
    }

    fn resume(&self, _ctx: &TtrpcContext, req: api::ResumeRequest) -> TtrpcResult<api::Empty> {
        self.freeze(&req.id, false)
    }

    fn stats(
        &self,
        _ctx: &TtrpcContext,
        req: api::StatsRequest,
    ) -> TtrpcResult<api::StatsResponse> {
        let bundle = {
            let g = self.lock();
            self.task(&g, &req.id)?.bundle.clone()
        };
        let saved = state_root(&bundle)
            .load(&req.id)
            .map_err(|e| err(Code::NOT_FOUND, format!("stats {}: {e}", req.id)))?;
        let any = crate::stats::metrics(&saved.cgroup)
            .map_err(|e| err(Code::FAILED_PRECONDITION, format!("stats {}: {e}", req.id)))?;
        Ok(api::StatsResponse {
            stats: MessageField::some(any),
            ..Default::default()
        })
    }

    fn checkpoint(
        &self,
        _ctx: &TtrpcContext,
        _req: api::CheckpointTaskRequest,
    ) -> TtrpcResult<api::Empty> {
        unimplemented("Checkpoint")
    }
}
