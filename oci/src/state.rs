//! A container's state directory under `--root`: `state.json` (what create
//! recorded) and `exec.fifo` (present from create until start), and the
//! runtime-spec state object built from them.

use crate::error::{io, OciError};
use crate::spec::Hook;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What create records about a container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Saved {
    /// The container id.
    pub id: String,
    /// The init process's pid (host namespace).
    pub pid: i32,
    /// Its start time in ticks, to tell it from a later process.
    pub start_ticks: u64,
    /// The bundle (absolute).
    pub bundle: PathBuf,
    /// The root filesystem (absolute).
    pub rootfs: PathBuf,
    /// Creation time, RFC 3339.
    pub created: String,
    /// The config's annotations.
    pub annotations: BTreeMap<String, String>,
    /// The cgroup, relative to each hierarchy root.
    pub cgroup: String,
    /// The cgroup directories create made (the group and parents that
    /// were missing), the only ones delete removes; `None` in a state
    /// written before vbuild-runc recorded them.
    #[serde(default)]
    pub cgroup_made: Option<Vec<PathBuf>>,
    /// Hooks run by start in the container, before the program.
    #[serde(default)]
    pub start_container: Vec<Hook>,
    /// Hooks run by start.
    #[serde(default)]
    pub poststart: Vec<Hook>,
    /// Hooks run by delete.
    #[serde(default)]
    pub poststop: Vec<Hook>,
}

/// The statuses of the runtime spec (plus `paused`, as runc reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Made, waiting for start.
    Created,
    /// The user process runs.
    Running,
    /// Frozen.
    Paused,
    /// The process has exited.
    Stopped,
}

impl Status {
    /// The spec's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// The state directory layout under `--root`.
#[derive(Debug, Clone)]
pub struct Root {
    dir: PathBuf,
}

/// Ids runc accepts: letters, digits and `_+-.`, not `.` or `..`.
pub fn check_id(id: &str) -> Result<(), OciError> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+-.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(OciError::BadId(id.to_string()))
    }
}

impl Root {
    /// The root at `dir` (runc's default is /run/runc; ours /run/vbuild-runc).
    pub fn new(dir: &Path) -> Root {
        Root {
            dir: dir.to_path_buf(),
        }
    }

    /// The directory of container `id`.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// The start fifo of container `id`.
    pub fn fifo(&self, id: &str) -> PathBuf {
        self.dir(id).join("exec.fifo")
    }

    fn state_file(&self, id: &str) -> PathBuf {
        self.dir(id).join("state.json")
    }

    /// Saves the record (written to a temporary file and renamed).
    pub fn save(&self, s: &Saved) -> Result<(), OciError> {
        let f = self.state_file(&s.id);
        let tmp = f.with_extension("json.tmp");
        let text = serde_json::to_vec_pretty(s).expect("serialisable");
        std::fs::write(&tmp, text).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &f).map_err(io(&f))
    }

    /// Loads container `id`'s record.
    pub fn load(&self, id: &str) -> Result<Saved, OciError> {
        check_id(id)?;
        let f = self.state_file(id);
        let text = match std::fs::read(&f) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(OciError::NotFound(id.to_string()))
            }
            Err(e) => return Err(io(&f)(e)),
        };
        serde_json::from_slice(&text).map_err(|e| OciError::Config(format!("{}: {e}", f.display())))
    }

    /// Ids of every container with a record, sorted.
    pub fn ids(&self) -> Result<Vec<String>, OciError> {
        let mut ids = Vec::new();
        let rd = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ids),
            Err(e) => return Err(io(&self.dir)(e)),
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if check_id(&name).is_ok() && self.state_file(&name).is_file() {
                ids.push(name);
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// The cgroup directories the other containers of this root made
    /// (`Saved::cgroup_made`), for a shared parent's ownership; records
    /// that cannot be read are skipped.
    pub fn cgroups_made_by_others(&self, id: &str) -> Vec<Vec<PathBuf>> {
        self.ids()
            .unwrap_or_default()
            .iter()
            .filter(|o| o.as_str() != id)
            .filter_map(|o| self.load(o).ok()?.cgroup_made)
            .collect()
    }

    /// The container's status now.
    pub fn status(&self, s: &Saved) -> Status {
        if !vbuild_kernel::process::is_alive(s.pid, s.start_ticks) {
            return Status::Stopped;
        }
        if self.fifo(&s.id).exists() {
            return Status::Created;
        }
        if crate::cgroups::is_frozen(&s.cgroup) {
            return Status::Paused;
        }
        Status::Running
    }

    /// The runtime-spec state object.
    pub fn state_json(&self, s: &Saved) -> serde_json::Value {
        let status = self.status(s);
        let pid = if status == Status::Stopped { 0 } else { s.pid };
        serde_json::json!({
            "ociVersion": crate::OCI_VERSION,
            "id": s.id,
            "status": status.as_str(),
            "pid": pid,
            "bundle": s.bundle,
            "rootfs": s.rootfs,
            "created": s.created,
            "owner": "",
            "annotations": s.annotations,
        })
    }
}

/// The current time as RFC 3339 in UTC with nanoseconds.
pub fn rfc3339_now() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(d.as_secs() as i64, d.subsec_nanos())
}

/// Seconds since the epoch as RFC 3339 (UTC).
pub fn rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_runcs_rules() {
        assert!(check_id("o14-a_b.c+1").is_ok());
        for bad in ["", ".", "..", "a/b", "a b"] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn times_are_rfc3339() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(1_709_210_096, 5), "2024-02-29T12:34:56.000000005Z");
    }
}
