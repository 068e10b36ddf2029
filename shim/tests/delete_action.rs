//! The `delete` action, which containerd runs after a shim has gone
//! (`containerd-shim-vbuild-v2 -id ID -bundle DIR delete`): it removes the
//! state left below the bundle, unmounts the rootfs and prints a
//! DeleteResponse. Needs root (a tmpfs on the rootfs).

use containerd_shim_protos::api::DeleteResponse;
use containerd_shim_protos::protobuf::Message;
use std::process::Command;

const SHIM: &str = env!("CARGO_BIN_EXE_containerd-shim-vbuild-v2");

#[test]
fn delete_action_cleans_a_left_bundle_and_prints_a_delete_response() {
    if !vbuild_testsupport::require(
        vbuild_testsupport::is_root(),
        "root (run the tests as root: sudo ./test.sh)",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path();
    let rootfs = bundle.join("rootfs");
    std::fs::create_dir_all(bundle.join(".vbuild-shim/d1")).unwrap();
    std::fs::write(bundle.join(".vbuild-shim/d1/left"), "x").unwrap();
    std::fs::create_dir(&rootfs).unwrap();
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "tmpfs"])
        .arg(&rootfs)
        .status()
        .unwrap();
    assert!(st.success(), "mount a tmpfs on {}", rootfs.display());
    let o = Command::new(SHIM)
        .args(["-namespace", "vb-delete", "-id", "d1", "-bundle"])
        .arg(bundle)
        .arg("delete")
        .output()
        .unwrap();
    let mounted = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .contains(&rootfs.display().to_string());
    if mounted {
        let _ = Command::new("umount").arg("-l").arg(&rootfs).status();
    }
    assert!(
        o.status.success(),
        "delete: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!mounted, "the rootfs tmpfs is still mounted");
    assert!(!bundle.join(".vbuild-shim").exists(), "state left");
    let r = DeleteResponse::parse_from_bytes(&o.stdout).expect("a DeleteResponse on stdout");
    assert_eq!(r.exit_status, 128 + libc::SIGKILL as u32);
    assert!(r.exited_at.is_some());
}
