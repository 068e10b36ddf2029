//! The build-time script context: commands run chrooted with /proc, /sys,
//! /dev, /run and /tmp mounted privately, in their own UTS, IPC and network
//! namespaces, a clean environment, output captured; afterwards nothing is
//! mounted and no process is left.

use std::path::{Path, PathBuf};
use vbuild_builder::context::{ContextError, ScriptContext};

fn is_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("needs root");
    }
    eprintln!("skipped: needs root");
    false
}

/// A rootfs with the host's static busybox as /bin/sh and friends.
fn busybox_root() -> Option<tempfile::TempDir> {
    let bb = Path::new("/bin/busybox");
    if !bb.exists() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("needs busybox-static");
        }
        eprintln!("skipped: needs /bin/busybox (busybox-static)");
        return None;
    }
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("bin")).unwrap();
    std::fs::copy(bb, d.path().join("bin/busybox")).unwrap();
    for app in [
        "sh", "echo", "cat", "ls", "sleep", "env", "mount", "setsid", "readlink", "hostname",
    ] {
        std::os::unix::fs::symlink("busybox", d.path().join("bin").join(app)).unwrap();
    }
    Some(d)
}

fn mounts_under(p: &Path) -> Vec<PathBuf> {
    vbuild_kernel::mount::mounts_below(p).unwrap()
}

/// Processes whose root directory is `root` (left-overs of a context).
fn processes_in(root: &Path) -> Vec<i32> {
    let root = root.canonicalize().unwrap();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/root"))
                .ok()
                .as_deref()
                == Some(root.as_path())
        })
        .collect()
}

#[test]
fn runs_chrooted_with_private_mounts_and_clean_env() {
    if !is_root() {
        return;
    }
    let Some(d) = busybox_root() else { return };
    let ctx = ScriptContext::new(d.path())
        .unwrap()
        .with_env(&vbuild_builder::distro::debian::debconf::ENV);
    let out = ctx
        .run(
            "probe",
            &[
                "/bin/sh",
                "-c",
                "echo pid=$$; if [ / -ef /proc/1/root ]; then echo root=init; else echo root=chroot; fi; ls /dev; cat /proc/self/mountinfo | while read a b c d mp rest; do echo mnt=$mp; done; env; echo err >&2",
            ],
            &[("DPKG_MAINTSCRIPT_NAME", "postinst")],
        )
        .unwrap();
    let text = String::from_utf8(out.output).unwrap();
    // PID 1 of the namespace only reaps, outside the chroot: the command
    // sees a chroot as under dpkg (ischroot, systemd's running_in_chroot).
    assert!(text.contains("pid=2\n"), "{text}");
    assert!(text.contains("root=chroot\n"), "{text}");
    for dev in [
        "null", "zero", "full", "random", "urandom", "tty", "ptmx", "pts", "shm",
    ] {
        assert!(text.lines().any(|l| l == dev), "no /dev/{dev} in\n{text}");
    }
    for m in [
        "mnt=/proc",
        "mnt=/sys",
        "mnt=/dev",
        "mnt=/dev/pts",
        "mnt=/run",
        "mnt=/tmp",
    ] {
        assert!(text.lines().any(|l| l == m), "{m} missing in\n{text}");
    }
    assert!(text.contains("DEBIAN_FRONTEND=noninteractive"));
    assert!(text.contains("DPKG_MAINTSCRIPT_NAME=postinst"));
    assert!(text.contains("LC_ALL=C.UTF-8"));
    assert!(!text.contains("CARGO"), "host environment leaked:\n{text}");
    assert!(text.contains("err"));
    assert!(mounts_under(d.path()).is_empty());
}

#[test]
fn failure_names_the_command_and_quotes_the_tail() {
    if !is_root() {
        return;
    }
    let Some(d) = busybox_root() else { return };
    let ctx = ScriptContext::new(d.path()).unwrap();
    let e = ctx
        .run(
            "postinst configure of demo",
            &["/bin/sh", "-c", "echo first; echo last words; exit 3"],
            &[],
        )
        .unwrap_err();
    match &e {
        ContextError::Failed { what, status, tail } => {
            assert_eq!(what, "postinst configure of demo");
            assert_eq!(status, "exit status 3");
            assert!(tail.ends_with("last words"), "{tail}");
        }
        other => panic!("unexpected {other}"),
    }
    let e = ctx
        .run("missing", &["/bin/nonexistent"], &[])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("missing") && e.contains("/bin/nonexistent"),
        "{e}"
    );
    assert!(mounts_under(d.path()).is_empty());
}

#[test]
fn background_processes_do_not_survive() {
    if !is_root() {
        return;
    }
    let Some(d) = busybox_root() else { return };
    let ctx = ScriptContext::new(d.path()).unwrap();
    // A daemon that detaches and keeps the output pipe open must neither
    // hang the build nor outlive the command.
    let out = ctx
        .run(
            "daemon",
            &["/bin/sh", "-c", "setsid sleep 1000 & echo started"],
            &[],
        )
        .unwrap();
    assert!(String::from_utf8_lossy(&out.output).contains("started"));
    assert!(
        processes_in(d.path()).is_empty(),
        "{:?}",
        processes_in(d.path())
    );
    assert!(mounts_under(d.path()).is_empty());
}

#[test]
fn symlinked_mount_point_is_refused() {
    if !is_root() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/etc", d.path().join("proc")).unwrap();
    let e = ScriptContext::new(d.path()).unwrap_err().to_string();
    assert!(e.contains("/proc") && e.contains("not a directory"), "{e}");
}

#[test]
fn scripts_see_their_own_network_hostname_and_ipc_not_the_hosts() {
    if !is_root() {
        return;
    }
    let Some(d) = busybox_root() else { return };
    let ctx = ScriptContext::new(d.path()).unwrap().with_hostname("web01");
    let out = ctx
        .run(
            "probe",
            &[
                "/bin/sh",
                "-c",
                "cat /proc/net/dev; for i in /sys/class/net/*; do echo if=${i##*/}; done; \
                 echo lo-flags=$(cat /sys/class/net/lo/flags); echo host=$(hostname); \
                 for n in net uts ipc; do echo ns=$n:$(readlink /proc/self/ns/$n); done",
            ],
            &[],
        )
        .unwrap();
    let text = String::from_utf8(out.output).unwrap();
    // /proc/net/dev: two header lines, then one line per interface.
    let devs: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(':') && !l.contains('|') && !l.starts_with("ns="))
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    assert_eq!(devs, ["lo"], "/proc/net/dev inside:\n{text}");
    let ifs: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("if=")).collect();
    assert_eq!(ifs, ["lo"], "/sys/class/net inside:\n{text}");
    // lo is up (IFF_UP|IFF_LOOPBACK), so scripts can reach 127.0.0.1.
    assert!(text.contains("lo-flags=0x9\n"), "{text}");
    assert!(text.contains("host=web01\n"), "{text}");
    for n in ["net", "uts", "ipc"] {
        let host = std::fs::read_link(format!("/proc/self/ns/{n}")).unwrap();
        let inside = format!("ns={n}:{}\n", host.display());
        assert!(
            !text.contains(&inside),
            "the script shares the host's {n} namespace:\n{text}"
        );
        assert!(text.contains(&format!("ns={n}:{n}:[")), "{text}");
    }
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_ne!(host_name.trim(), "web01", "the host's hostname changed");
    assert!(mounts_under(d.path()).is_empty());
}
