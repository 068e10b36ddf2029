//! The JSON payloads containerd wraps in protobuf `Any`s: an exec's
//! runtime-spec Process and Update's runtime-spec LinuxResources.

use containerd_shim_protos::protobuf::well_known_types::any::Any;
use vbuild_oci::spec::{Process, Resources};

/// containerd's type URL of a runtime-spec Process (`typeurl` registry).
pub const PROCESS: &str = "types.containerd.io/opencontainers/runtime-spec/1/Process";
/// containerd's type URL of a runtime-spec LinuxResources.
pub const RESOURCES: &str = "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources";

/// The JSON of an Any of type `want`; the error names `what`.
fn json<'a>(any: &'a Any, want: &str, what: &str) -> Result<&'a [u8], String> {
    if any.type_url != want {
        return Err(format!(
            "{what}: expected an Any of type {want}, got {:?}",
            any.type_url
        ));
    }
    Ok(&any.value)
}

/// The process of an ExecProcessRequest.
pub fn process(any: &Any) -> Result<Process, String> {
    let what = "exec spec";
    serde_json::from_slice(json(any, PROCESS, what)?).map_err(|e| format!("{what}: bad JSON: {e}"))
}

/// The resources of an UpdateTaskRequest.
pub fn resources(any: &Any) -> Result<Resources, String> {
    let what = "update resources";
    serde_json::from_slice(json(any, RESOURCES, what)?)
        .map_err(|e| format!("{what}: bad JSON: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn any(url: &str, json: &str) -> Any {
        let mut a = Any::new();
        a.type_url = url.into();
        a.value = json.as_bytes().to_vec();
        a
    }

    #[test]
    fn ctr_update_resources_decode() {
        // What `ctr task update --memory-limit 67108864 --cpu-quota 50000
        // --cpu-period 100000` sends (Go's json of specs.LinuxResources).
        let r = resources(&any(
            RESOURCES,
            r#"{"memory":{"limit":67108864},"cpu":{"quota":50000,"period":100000}}"#,
        ))
        .unwrap();
        assert_eq!(r.memory.as_ref().and_then(|m| m.limit), Some(67108864));
        let cpu = r.cpu.as_ref().unwrap();
        assert_eq!((cpu.quota, cpu.period), (Some(50000), Some(100000)));
        assert!(r.devices.is_empty());
    }

    #[test]
    fn exec_process_decodes_and_wrong_types_are_named() {
        let p = process(&any(
            PROCESS,
            r#"{"args":["sh","-c","exit 7"],"cwd":"/","env":["PATH=/bin"],"user":{"uid":0,"gid":0}}"#,
        ))
        .unwrap();
        assert_eq!(p.args, ["sh", "-c", "exit 7"]);
        let e = resources(&any(PROCESS, "{}")).unwrap_err();
        assert!(e.contains(RESOURCES) && e.contains("Process"), "{e}");
        let e = process(&any(PROCESS, "{")).unwrap_err();
        assert!(e.starts_with("exec spec: bad JSON"), "{e}");
    }
}
