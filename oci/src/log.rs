//! Error and debug lines: always on stderr, and in `--log FILE` when
//! given, as text or (`--log-format json`) as the JSON lines containerd and
//! podman read (`{"level":"error","msg":...,"time":...}`).

use crate::cli::Global;
use std::io::Write;

fn line(g: &Global, level: &str, msg: &str) -> String {
    let time = crate::state::rfc3339_now();
    if g.log_json {
        serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
    } else {
        format!("time=\"{time}\" level={level} msg={msg:?}")
    }
}

fn emit(g: &Global, level: &str, msg: &str, to_stderr: bool) {
    let l = line(g, level, msg);
    if to_stderr {
        // A closed stderr loses the line, never the command (no panic).
        let _ = writeln!(std::io::stderr(), "{l}");
    }
    if let Some(path) = &g.log {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{l}");
        }
    }
}

/// Logs an error.
pub fn error(g: &Global, msg: &str) {
    emit(g, "error", msg, true);
}

/// Logs a debug line (to the log file only, or stderr without one).
pub fn debug(g: &Global, msg: &str) {
    emit(g, "debug", msg, g.log.is_none());
}
