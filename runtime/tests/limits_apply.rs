//! `limits::apply` over fake cgroupfs trees (plain directories laid out like
//! /sys/fs/cgroup): the same `Limits` give the v1 spelling on a hybrid host
//! and the v2 spelling on a unified one, and a changed `Limits` lifts what
//! was removed. No root needed.

use std::fs;
use std::path::Path;
use vbuild_kernel::cgroup::{Cgroup, Hierarchy};
use vbuild_runtime::limits::{apply, apply_io, Limits};

fn put(p: &Path, s: &str) {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, s).unwrap();
}

fn get(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn limits() -> Limits {
    Limits {
        memory: Some(512 << 20),
        swap: Some(256 << 20),
        cpus: Some(1.5),
        pids: Some(500),
        disk: Some(2 << 30),
        io_read_bps: Some(50 << 20),
        io_write_bps: Some(20 << 20),
        io_read_iops: None,
        io_write_iops: Some(300),
    }
}

#[test]
fn v2_spelling() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    put(&r.join("cgroup.controllers"), "cpuset cpu io memory pids\n");
    let h = Hierarchy::at(r).unwrap();
    let cg = Cgroup::create(&h, "vbuild/mail01").unwrap();
    let d = r.join("vbuild/mail01");
    put(&d.join("memory.swap.max"), "max\n");
    apply(&cg, &limits()).unwrap();
    apply_io(&cg, &limits(), &[(254, 0)]).unwrap();
    assert_eq!(get(&d.join("memory.max")), "536870912");
    assert_eq!(get(&d.join("memory.swap.max")), "268435456");
    assert_eq!(get(&d.join("cpu.max")), "150000 100000");
    assert_eq!(get(&d.join("pids.max")), "500");
    assert_eq!(
        get(&d.join("io.max")),
        "254:0 rbps=52428800 wbps=20971520 riops=max wiops=300"
    );
    assert_eq!(
        get(&r.join("cgroup.subtree_control")),
        "+cpu +io +memory +pids"
    );

    // `vbuild limit mail01 --memory 1G --cpus max`: the rest stays, cpus lifts.
    let changed = Limits {
        memory: Some(1 << 30),
        cpus: None,
        ..limits()
    };
    apply(&cg, &changed).unwrap();
    assert_eq!(get(&d.join("memory.max")), "1073741824");
    assert_eq!(get(&d.join("cpu.max")), "max 100000");
    assert_eq!(get(&d.join("pids.max")), "500");
}

#[test]
fn v1_spelling() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    for c in [
        "cpu,cpuacct",
        "memory",
        "pids",
        "blkio",
        "devices",
        "freezer",
    ] {
        put(&r.join(c).join("cgroup.procs"), "");
    }
    let h = Hierarchy::at(r).unwrap();
    let cg = Cgroup::create(&h, "vbuild/mail01").unwrap();
    put(
        &r.join("memory/vbuild/mail01/memory.memsw.limit_in_bytes"),
        "9223372036854771712\n",
    );
    apply(&cg, &limits()).unwrap();
    apply_io(&cg, &limits(), &[(254, 0)]).unwrap();
    let m = r.join("memory/vbuild/mail01");
    assert_eq!(get(&m.join("memory.limit_in_bytes")), "536870912");
    assert_eq!(get(&m.join("memory.memsw.limit_in_bytes")), "805306368");
    let c = r.join("cpu,cpuacct/vbuild/mail01");
    assert_eq!(get(&c.join("cpu.cfs_quota_us")), "150000");
    assert_eq!(get(&c.join("cpu.cfs_period_us")), "100000");
    assert_eq!(get(&r.join("pids/vbuild/mail01/pids.max")), "500");
    let b = r.join("blkio/vbuild/mail01");
    assert_eq!(
        get(&b.join("blkio.throttle.read_bps_device")),
        "254:0 52428800"
    );
    assert_eq!(
        get(&b.join("blkio.throttle.write_bps_device")),
        "254:0 20971520"
    );
    assert_eq!(get(&b.join("blkio.throttle.read_iops_device")), "254:0 0");
    assert_eq!(
        get(&b.join("blkio.throttle.write_iops_device")),
        "254:0 300"
    );
}

#[test]
fn missing_controllers_only_matter_for_set_limits() {
    // A v2 host without the pids controller.
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    put(&r.join("cgroup.controllers"), "cpu memory\n");
    let h = Hierarchy::at(r).unwrap();
    let cg = Cgroup::create(&h, "vbuild/g").unwrap();
    apply(
        &cg,
        &Limits {
            memory: Some(1 << 30),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(get(&r.join("vbuild/g/memory.max")), "1073741824");
    assert!(!r.join("vbuild/g/pids.max").exists());
    // Asking for a process limit there names the controller.
    let e = apply(
        &cg,
        &Limits {
            pids: Some(100),
            ..Default::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("--pids needs the pids cgroup controller"), "{e}");
    // A swap limit without memory is refused before anything is written.
    let e = apply(
        &cg,
        &Limits {
            swap: Some(1 << 20),
            ..Default::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("--swap needs --memory"), "{e}");
    assert_eq!(get(&r.join("vbuild/g/memory.max")), "1073741824");
}
