//! How every command reports: with `--json`, one JSON object on stdout on
//! success and a JSON error object (`{"error": {"message", "kind",
//! "exit_code"}}`) on failure; otherwise one `vbuild: ...` line on stderr.
//! The error kinds are the same words for every command, so scripts can
//! branch on them without parsing messages.

use serde::Serialize;
use vbuild_runtime::error::RuntimeError;

/// Exit code of a command line clap refused (as clap itself uses).
pub const USAGE_EXIT: i32 = 2;

/// Prints `v` as one JSON document on stdout.
pub fn json<T: Serialize + ?Sized>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// Reports a failed command once, as a JSON object or one line, and
/// returns the exit code.
pub fn fail(json_mode: bool, e: &anyhow::Error) -> i32 {
    // A failing build hook's own exit code, as mmdebstrap ends with it.
    let code = e
        .chain()
        .find_map(|c| c.downcast_ref::<vbuild_builder::hooks::HookFailed>())
        .map_or(1, |h| h.exit_code);
    let message = one_line(e);
    if json_mode {
        print_error(&message, kind(e), code);
    } else {
        eprintln!("vbuild: {message}");
    }
    code
}

/// The JSON error object on stdout.
pub fn print_error(message: &str, kind: &str, exit_code: i32) {
    let v = serde_json::json!({
        "error": {"message": message, "kind": kind, "exit_code": exit_code}
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&v).expect("a JSON value serializes")
    );
}

/// Joins an error chain into one line: `outer: cause: root cause`.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in e.chain() {
        let s = c.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}

/// What sort of failure `e` is: `not_found`, `not_running`, `running`,
/// `busy`, `invalid` (bad input, nothing was done), `timeout`,
/// `interrupted` or `failed` (anything else).
pub fn kind(e: &anyhow::Error) -> &'static str {
    for c in e.chain() {
        if let Some(r) = c.downcast_ref::<RuntimeError>() {
            return runtime_kind(r);
        }
        if let Some(r) = c.downcast_ref::<Refused>() {
            return r.kind;
        }
        if c.downcast_ref::<vbuild_runtime::name::NameError>()
            .is_some()
            || c.downcast_ref::<vbuild_runtime::limits::LimitError>()
                .is_some()
            || c.downcast_ref::<Invalid>().is_some()
        {
            return "invalid";
        }
        if let Some(n) = c.downcast_ref::<vbuild_runtime::net::NetError>() {
            return net_kind(n);
        }
    }
    if one_line(e).contains("interrupted") {
        return "interrupted";
    }
    "failed"
}

fn runtime_kind(r: &RuntimeError) -> &'static str {
    match r {
        RuntimeError::NotFound(_) | RuntimeError::RunRootfsMissing { .. } => "not_found",
        RuntimeError::NotRunning(_) => "not_running",
        RuntimeError::AlreadyRunning { .. }
        | RuntimeError::Running(_)
        | RuntimeError::RunRootfsInUse { .. } => "running",
        RuntimeError::Busy(_) | RuntimeError::NameTaken { .. } => "busy",
        RuntimeError::Timeout { .. } => "timeout",
        RuntimeError::Net(n) => net_kind(n),
        _ => "failed",
    }
}

fn net_kind(n: &vbuild_runtime::net::NetError) -> &'static str {
    use vbuild_runtime::net::NetError;
    match n {
        NetError::UnknownNetwork(_) => "not_found",
        NetError::InUse { .. } => "in_use",
        NetError::AddressInUse { .. } => "in_use",
        _ => "failed",
    }
}

/// A refusal of bad input made by the CLI itself (kind `invalid`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// A refusal made by the CLI with its own kind (`running`, `not_found`...).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Refused {
    /// One line, naming the guest and what to do.
    pub message: String,
    /// The error kind (see [`kind`]).
    pub kind: &'static str,
}

/// Returns an `invalid` error from the CLI.
macro_rules! invalid {
    ($($t:tt)*) => {
        return Err(anyhow::Error::new($crate::cli::output::Invalid(format!($($t)*))))
    };
}
pub(crate) use invalid;
