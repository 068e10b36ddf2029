//! The bundle's `config.json` (OCI runtime spec 1.2) as serde structs:
//! only the fields vbuild-runc acts on are named; every other field is
//! kept in `rest` maps so `unsupported` can refuse what it cannot honour
//! instead of silently dropping it.

use serde::Deserialize;
use std::collections::BTreeMap;

/// Fields of an object that the structs do not name.
pub type Rest = BTreeMap<String, serde_json::Value>;

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    /// The spec version the bundle was written for.
    pub oci_version: String,
    /// The root filesystem.
    pub root: Option<Root>,
    /// Mounts, in order.
    #[serde(default)]
    pub mounts: Vec<Mount>,
    /// The container's process.
    pub process: Option<Process>,
    /// The hostname (needs a new uts namespace).
    pub hostname: Option<String>,
    /// The domain name.
    pub domainname: Option<String>,
    /// Free-form annotations, echoed in the state.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Hooks.
    pub hooks: Option<Hooks>,
    /// Linux specifics.
    pub linux: Option<Linux>,
    /// Anything else.
    #[serde(flatten)]
    pub rest: Rest,
}

/// `root`.
#[derive(Debug, Clone, Deserialize)]
pub struct Root {
    /// Relative to the bundle, or absolute.
    pub path: String,
    /// Mount it read-only.
    #[serde(default)]
    pub readonly: bool,
}

/// One entry of `mounts`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mount {
    /// Where, inside the container.
    pub destination: String,
    /// The filesystem type (`bind` or absent for bind mounts).
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Device, directory or fs name.
    pub source: Option<String>,
    /// fstab-style options.
    #[serde(default)]
    pub options: Vec<String>,
    /// Id-mapped mounts (not supported).
    pub uid_mappings: Option<Vec<IdMapping>>,
    /// Id-mapped mounts (not supported).
    pub gid_mappings: Option<Vec<IdMapping>>,
}

/// `process`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Process {
    /// A terminal on stdio (needs --console-socket).
    #[serde(default)]
    pub terminal: bool,
    /// The terminal's size.
    pub console_size: Option<ConsoleSize>,
    /// The user.
    #[serde(default)]
    pub user: User,
    /// Program and arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// `KEY=VALUE`.
    #[serde(default)]
    pub env: Vec<String>,
    /// Working directory (absolute).
    #[serde(default = "slash")]
    pub cwd: String,
    /// Capability sets.
    pub capabilities: Option<Capabilities>,
    /// Resource limits.
    #[serde(default)]
    pub rlimits: Vec<Rlimit>,
    /// no_new_privs.
    #[serde(default)]
    pub no_new_privileges: bool,
    /// /proc/self/oom_score_adj.
    pub oom_score_adj: Option<i32>,
    /// AppArmor profile (not available here).
    pub apparmor_profile: Option<String>,
    /// SELinux label (not available here).
    pub selinux_label: Option<String>,
    /// Anything else.
    #[serde(flatten)]
    pub rest: Rest,
}

/// `process.consoleSize`.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct ConsoleSize {
    /// Rows.
    pub height: u16,
    /// Columns.
    pub width: u16,
}

fn slash() -> String {
    "/".into()
}

/// `process.user`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// uid inside the container.
    #[serde(default)]
    pub uid: u32,
    /// gid inside the container.
    #[serde(default)]
    pub gid: u32,
    /// umask.
    pub umask: Option<u32>,
    /// Supplementary groups.
    #[serde(default)]
    pub additional_gids: Vec<u32>,
}

/// `process.capabilities`: capability names (`CAP_KILL`) per set.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Capabilities {
    /// Bounding set.
    #[serde(default)]
    pub bounding: Vec<String>,
    /// Effective set.
    #[serde(default)]
    pub effective: Vec<String>,
    /// Inheritable set.
    #[serde(default)]
    pub inheritable: Vec<String>,
    /// Permitted set.
    #[serde(default)]
    pub permitted: Vec<String>,
    /// Ambient set.
    #[serde(default)]
    pub ambient: Vec<String>,
}

/// One `process.rlimits` entry.
#[derive(Debug, Clone, Deserialize)]
pub struct Rlimit {
    /// `RLIMIT_NOFILE` etc.
    #[serde(rename = "type")]
    pub kind: String,
    /// Soft limit.
    pub soft: u64,
    /// Hard limit.
    pub hard: u64,
}

/// `hooks`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hooks {
    /// Deprecated prestart hooks.
    #[serde(default)]
    pub prestart: Vec<Hook>,
    /// After the namespaces are made, in the runtime's namespace.
    #[serde(default)]
    pub create_runtime: Vec<Hook>,
    /// In the container's namespaces, before pivot_root.
    #[serde(default)]
    pub create_container: Vec<Hook>,
    /// In the container, before the user process.
    #[serde(default)]
    pub start_container: Vec<Hook>,
    /// After the user process started.
    #[serde(default)]
    pub poststart: Vec<Hook>,
    /// After delete.
    #[serde(default)]
    pub poststop: Vec<Hook>,
}

/// One hook.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct Hook {
    /// Absolute path of the program (in the runtime's namespace).
    pub path: String,
    /// Its arguments, argv[0] first.
    #[serde(default)]
    pub args: Vec<String>,
    /// Its environment.
    #[serde(default)]
    pub env: Vec<String>,
    /// Seconds before it is killed.
    pub timeout: Option<u64>,
}

/// An id mapping.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct IdMapping {
    /// First id inside.
    #[serde(rename = "containerID")]
    pub container_id: u32,
    /// First id outside.
    #[serde(rename = "hostID")]
    pub host_id: u32,
    /// How many.
    pub size: u32,
}

/// `linux`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Linux {
    /// User namespace uid map.
    #[serde(default)]
    pub uid_mappings: Vec<IdMapping>,
    /// User namespace gid map.
    #[serde(default)]
    pub gid_mappings: Vec<IdMapping>,
    /// Namespaces, new or joined.
    #[serde(default)]
    pub namespaces: Vec<Namespace>,
    /// Device nodes to create.
    #[serde(default)]
    pub devices: Vec<Device>,
    /// The cgroup path.
    pub cgroups_path: Option<String>,
    /// Cgroup limits.
    pub resources: Option<Resources>,
    /// Kernel parameters under /proc/sys.
    #[serde(default)]
    pub sysctl: BTreeMap<String, String>,
    /// Paths hidden from the container.
    #[serde(default)]
    pub masked_paths: Vec<String>,
    /// Paths made read-only.
    #[serde(default)]
    pub readonly_paths: Vec<String>,
    /// Propagation of the root mount.
    pub rootfs_propagation: Option<String>,
    /// Seccomp profile.
    pub seccomp: Option<serde_json::Value>,
    /// Mount label (SELinux, not available).
    pub mount_label: Option<String>,
    /// Anything else.
    #[serde(flatten)]
    pub rest: Rest,
}

/// One `linux.namespaces` entry.
#[derive(Debug, Clone, Deserialize)]
pub struct Namespace {
    /// pid, network, mount, ipc, uts, user, cgroup, time.
    #[serde(rename = "type")]
    pub kind: String,
    /// Join this namespace instead of making one.
    pub path: Option<String>,
}

/// One `linux.devices` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    /// c, b, u or p.
    #[serde(rename = "type")]
    pub kind: String,
    /// Path inside the container.
    pub path: String,
    /// Major number.
    #[serde(default)]
    pub major: i64,
    /// Minor number.
    #[serde(default)]
    pub minor: i64,
    /// Mode bits.
    pub file_mode: Option<u32>,
    /// Owner.
    pub uid: Option<u32>,
    /// Group.
    pub gid: Option<u32>,
}

/// `linux.resources`.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    /// Device cgroup rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceCgroup>,
    /// Memory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<Memory>,
    /// CPU.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Cpu>,
    /// Pids.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids: Option<Pids>,
    /// Anything else (blockIO, hugepageLimits, network, rdma, unified).
    #[serde(flatten)]
    pub rest: Rest,
}

/// One device cgroup rule.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct DeviceCgroup {
    /// Allow (true) or deny.
    pub allow: bool,
    /// a, c or b.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// Major (absent: any).
    pub major: Option<i64>,
    /// Minor (absent: any).
    pub minor: Option<i64>,
    /// r, w, m letters.
    pub access: Option<String>,
}

/// `linux.resources.memory`.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
pub struct Memory {
    /// Bytes (-1: unlimited).
    pub limit: Option<i64>,
    /// Memory plus swap bytes (-1: unlimited).
    pub swap: Option<i64>,
    /// Soft limit in bytes (v1 soft_limit_in_bytes, v2 memory.low).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reservation: Option<i64>,
    /// Swap tendency 0 to 100 (v1 only; ignored on v2 as runc does).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swappiness: Option<u64>,
    /// Kernel memory limit: ignored with a warning, as runc 1.1 does (the
    /// kernel no longer enforces memory.kmem.limit_in_bytes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel: Option<i64>,
    /// Kernel TCP buffer limit in bytes (v1 only).
    #[serde(rename = "kernelTCP", skip_serializing_if = "Option::is_none")]
    pub kernel_tcp: Option<i64>,
    /// Pause rather than OOM-kill when over the limit (v1 only).
    #[serde(rename = "disableOOMKiller", skip_serializing_if = "Option::is_none")]
    pub disable_oom_killer: Option<bool>,
    /// Anything else (useHierarchy, checkBeforeUpdate...).
    #[serde(flatten)]
    pub rest: Rest,
}

/// `linux.resources.cpu`.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
pub struct Cpu {
    /// CFS quota in microseconds (-1: unlimited).
    pub quota: Option<i64>,
    /// CFS period in microseconds.
    pub period: Option<u64>,
    /// Relative weight (cgroup v1 `cpu.shares` units).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shares: Option<u64>,
    /// CPUs the container may run on, as `0-3,6` (cpuset.cpus).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus: Option<String>,
    /// Memory nodes the container may use, as `0` (cpuset.mems).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mems: Option<String>,
    /// Anything else (realtime...).
    #[serde(flatten)]
    pub rest: Rest,
}

/// `linux.resources.pids`.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
pub struct Pids {
    /// Maximum number of tasks (-1 or 0: unlimited).
    pub limit: i64,
}
