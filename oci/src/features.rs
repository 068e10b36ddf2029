//! `features`: what this runtime honours, in the runtime spec's features
//! document format, so clients can check before they ask.

use serde_json::{json, Value};

/// The features document.
pub fn features() -> Value {
    let caps: Vec<String> = vbuild_kernel::caps::NAMES
        .iter()
        .take(vbuild_kernel::caps::last_cap() as usize + 1)
        .map(|n| format!("CAP_{n}"))
        .collect();
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": crate::OCI_VERSION,
        "hooks": ["poststart", "poststop"],
        "mountOptions": [
            "async", "atime", "bind", "defaults", "dev", "exec", "noatime", "nodev",
            "nodiratime", "noexec", "norelatime", "nosuid", "private", "rbind", "relatime",
            "rprivate", "rshared", "rslave", "runbindable", "ro", "rw", "shared", "slave",
            "strictatime", "suid", "sync", "unbindable"
        ],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
            "capabilities": caps,
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false},
            "seccomp": {"enabled": false},
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false}
        },
        "annotations": {
            "org.opencontainers.runtime-spec.features.runtime": "vbuild-runc"
        }
    })
}
