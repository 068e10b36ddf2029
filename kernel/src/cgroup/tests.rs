//! Unit tests over fake cgroupfs trees (plain directories laid out like
//! /sys/fs/cgroup), pinning the exact file contents for v1 and v2.

use super::*;
use std::fs;

fn put(p: &Path, s: &str) {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, s).unwrap();
}

fn get(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A v2 host: controllers at the root, nothing enabled yet.
fn fake_v2() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    put(
        &t.path().join("cgroup.controllers"),
        "cpuset cpu io memory hugetlb pids rdma misc\n",
    );
    put(&t.path().join("cgroup.subtree_control"), "");
    put(&t.path().join("cgroup.procs"), "1\n");
    t
}

/// A hybrid host like this machine's: v1 controllers (cpu and cpuacct
/// co-mounted, with symlinks), name=systemd, and cgroup2 at unified/.
fn fake_hybrid() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    for d in [
        "cpu,cpuacct",
        "memory",
        "pids",
        "blkio",
        "devices",
        "freezer",
        "systemd",
        "cpuset",
        "net_cls",
    ] {
        put(&r.join(d).join("cgroup.procs"), "1\n");
    }
    std::os::unix::fs::symlink("cpu,cpuacct", r.join("cpu")).unwrap();
    std::os::unix::fs::symlink("cpu,cpuacct", r.join("cpuacct")).unwrap();
    put(&r.join("unified/cgroup.controllers"), "");
    put(&r.join("unified/cgroup.procs"), "1\n");
    t
}

#[test]
fn detects_v2_and_hybrid() {
    let v2 = fake_v2();
    let h = Hierarchy::at(v2.path()).unwrap();
    assert!(h.is_v2());
    assert!(h.controllers().contains(&"memory".to_string()));

    let hy = fake_hybrid();
    let h = Hierarchy::at(hy.path()).unwrap();
    assert!(!h.is_v2());
    assert_eq!(
        h.controllers(),
        ["blkio", "cpu", "cpuacct", "cpuset", "devices", "freezer", "memory", "pids", "systemd"]
    );
}

#[test]
fn empty_root_is_refused_with_a_fix() {
    let t = tempfile::tempdir().unwrap();
    let e = Hierarchy::at(t.path()).unwrap_err().to_string();
    assert!(e.contains("no cgroup hierarchy found"), "{e}");
    assert!(e.contains("mount cgroup2"), "{e}");
}

#[test]
fn v2_create_enables_controllers_along_the_path_not_in_the_guest() {
    let t = fake_v2();
    let r = t.path();
    // memory already enabled at the root: only the rest is written.
    put(&r.join("cgroup.subtree_control"), "memory\n");
    let h = Hierarchy::at(r).unwrap();
    let cg = Cgroup::create(&h, "vbuild/mail01").unwrap();
    assert_eq!(get(&r.join("cgroup.subtree_control")), "+cpu +io +pids");
    assert_eq!(
        get(&r.join("vbuild/cgroup.subtree_control")),
        "+cpu +io +memory +pids"
    );
    assert!(r.join("vbuild/mail01").is_dir());
    assert!(!r.join("vbuild/mail01/cgroup.subtree_control").exists());
    assert_eq!(cg.unified_dir().unwrap(), r.join("vbuild/mail01"));
    assert!(cg.is_v2());

    // A second create reuses the group and writes nothing new.
    put(&r.join("cgroup.subtree_control"), "cpu io memory pids\n");
    put(
        &r.join("vbuild/cgroup.subtree_control"),
        "cpu io memory pids\n",
    );
    Cgroup::create(&h, "vbuild/mail01").unwrap();
    assert_eq!(
        get(&r.join("cgroup.subtree_control")),
        "cpu io memory pids\n"
    );
}

#[test]
fn v2_only_enables_what_the_host_has() {
    let t = fake_v2();
    put(&t.path().join("cgroup.controllers"), "memory pids\n");
    let h = Hierarchy::at(t.path()).unwrap();
    Cgroup::create(&h, "vbuild/a").unwrap();
    assert_eq!(
        get(&t.path().join("cgroup.subtree_control")),
        "+memory +pids"
    );
    assert_eq!(
        get(&t.path().join("vbuild/cgroup.subtree_control")),
        "+memory +pids"
    );
}

#[test]
fn hybrid_create_and_attach_touch_every_wanted_hierarchy() {
    let t = fake_hybrid();
    let r = t.path();
    put(&r.join("cpuset/cpuset.cpus"), "0-3\n");
    put(&r.join("cpuset/cpuset.mems"), "0\n");
    let h = Hierarchy::at(r).unwrap();
    let cg = Cgroup::create(&h, "vbuild/mail01").unwrap();
    cg.attach(4242).unwrap();
    for d in [
        "cpu,cpuacct",
        "memory",
        "pids",
        "blkio",
        "devices",
        "freezer",
        "systemd",
        "cpuset",
        "unified",
    ] {
        assert_eq!(
            get(&r.join(d).join("vbuild/mail01/cgroup.procs")),
            "4242",
            "{d}"
        );
    }
    // Each new cpuset level got its parent's cpus and mems.
    for lvl in ["cpuset/vbuild", "cpuset/vbuild/mail01"] {
        assert_eq!(get(&r.join(lvl).join("cpuset.cpus")), "0-3", "{lvl}");
        assert_eq!(get(&r.join(lvl).join("cpuset.mems")), "0", "{lvl}");
    }
    cg.set_cpuset(Some("1,3"), Some("0")).unwrap();
    assert_eq!(get(&r.join("cpuset/vbuild/mail01/cpuset.cpus")), "1,3");
    for bad in ["", "1-", "a", "1,,2"] {
        let e = cg.set_cpuset(Some(bad), None).unwrap_err().to_string();
        assert!(e.contains("is not a list like 0-3,6"), "{bad:?}: {e}");
    }
    assert!(!r.join("net_cls/vbuild").exists());
    assert_eq!(cg.unified_dir().unwrap(), r.join("unified/vbuild/mail01"));
    assert_eq!(cg.pids().unwrap(), vec![4242]);
}

#[test]
fn open_finds_only_existing_groups() {
    let t = fake_hybrid();
    let h = Hierarchy::at(t.path()).unwrap();
    assert!(Cgroup::open(&h, "vbuild/nope").unwrap().is_none());
    Cgroup::create(&h, "vbuild/yes").unwrap();
    let cg = Cgroup::open(&h, "vbuild/yes").unwrap().unwrap();
    assert_eq!(cg.rel(), "vbuild/yes");
}

#[test]
fn bad_names_are_refused() {
    let t = fake_v2();
    let h = Hierarchy::at(t.path()).unwrap();
    for bad in [
        "",
        "/abs",
        "vbuild/../etc",
        "a//b",
        "vbuild/.",
        "a b",
        "x\n",
    ] {
        let e = Cgroup::create(&h, bad).unwrap_err().to_string();
        assert!(e.contains("vbuild/mail01"), "{bad:?}: {e}");
    }
    assert!(!t.path().join("vbuild").exists());
}

#[test]
fn pids_are_collected_recursively_and_deduplicated() {
    let t = fake_v2();
    let r = t.path();
    let h = Hierarchy::at(r).unwrap();
    let cg = Cgroup::create(&h, "vbuild/g").unwrap();
    put(&r.join("vbuild/g/cgroup.procs"), "");
    put(&r.join("vbuild/g/init.scope/cgroup.procs"), "10\n");
    put(
        &r.join("vbuild/g/system.slice/cron.service/cgroup.procs"),
        "30\n20\n",
    );
    put(&r.join("vbuild/g/system.slice/cgroup.procs"), "20\n");
    assert_eq!(cg.pids().unwrap(), vec![10, 20, 30]);
}

#[test]
fn v2_limits_write_exact_values() {
    let t = fake_v2();
    let r = t.path();
    let h = Hierarchy::at(r).unwrap();
    let cg = Cgroup::create(&h, "vbuild/g").unwrap();
    let d = r.join("vbuild/g");
    put(&d.join("memory.swap.max"), "max\n");
    cg.set_memory(&MemoryLimit {
        max: Some(512 << 20),
        swap: Some(256 << 20),
    })
    .unwrap();
    assert_eq!(get(&d.join("memory.max")), "536870912");
    assert_eq!(get(&d.join("memory.swap.max")), "268435456");
    cg.set_cpus(Some(1.5)).unwrap();
    assert_eq!(get(&d.join("cpu.max")), "150000 100000");
    cg.set_pids_max(Some(500)).unwrap();
    assert_eq!(get(&d.join("pids.max")), "500");
    cg.set_io(&IoThrottle {
        major: 7,
        minor: 3,
        read_bps: Some(50 << 20),
        write_iops: Some(100),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        get(&d.join("io.max")),
        "7:3 rbps=52428800 wbps=max riops=max wiops=100"
    );
    // Unlimited again.
    cg.set_memory(&MemoryLimit::default()).unwrap();
    cg.set_cpus(None).unwrap();
    cg.set_pids_max(None).unwrap();
    assert_eq!(get(&d.join("memory.max")), "max");
    assert_eq!(get(&d.join("memory.swap.max")), "max");
    assert_eq!(get(&d.join("cpu.max")), "max 100000");
    assert_eq!(get(&d.join("pids.max")), "max");
}

#[test]
fn v1_limits_write_exact_values() {
    let t = fake_hybrid();
    let r = t.path();
    let h = Hierarchy::at(r).unwrap();
    let cg = Cgroup::create(&h, "vbuild/g").unwrap();
    let mem = r.join("memory/vbuild/g");
    put(
        &mem.join("memory.memsw.limit_in_bytes"),
        "9223372036854771712\n",
    );
    cg.set_memory(&MemoryLimit {
        max: Some(512 << 20),
        swap: Some(256 << 20),
    })
    .unwrap();
    assert_eq!(get(&mem.join("memory.limit_in_bytes")), "536870912");
    assert_eq!(get(&mem.join("memory.memsw.limit_in_bytes")), "805306368");
    cg.set_memory(&MemoryLimit {
        max: Some(64 << 20),
        swap: None,
    })
    .unwrap();
    assert_eq!(get(&mem.join("memory.limit_in_bytes")), "67108864");
    assert_eq!(get(&mem.join("memory.memsw.limit_in_bytes")), "-1");

    cg.set_cpus(Some(0.5)).unwrap();
    let cpu = r.join("cpu,cpuacct/vbuild/g");
    assert_eq!(get(&cpu.join("cpu.cfs_period_us")), "100000");
    assert_eq!(get(&cpu.join("cpu.cfs_quota_us")), "50000");
    cg.set_cpus(None).unwrap();
    assert_eq!(get(&cpu.join("cpu.cfs_quota_us")), "-1");

    cg.set_pids_max(Some(64)).unwrap();
    assert_eq!(get(&r.join("pids/vbuild/g/pids.max")), "64");

    cg.set_io(&IoThrottle {
        major: 7,
        minor: 0,
        read_bps: Some(1 << 20),
        write_bps: Some(2 << 20),
        read_iops: None,
        write_iops: Some(10),
    })
    .unwrap();
    let b = r.join("blkio/vbuild/g");
    assert_eq!(
        get(&b.join("blkio.throttle.read_bps_device")),
        "7:0 1048576"
    );
    assert_eq!(
        get(&b.join("blkio.throttle.write_bps_device")),
        "7:0 2097152"
    );
    assert_eq!(get(&b.join("blkio.throttle.read_iops_device")), "7:0 0");
    assert_eq!(get(&b.join("blkio.throttle.write_iops_device")), "7:0 10");
}

#[test]
fn swap_without_accounting_or_memory_is_refused_and_changes_nothing() {
    let t = fake_hybrid();
    let h = Hierarchy::at(t.path()).unwrap();
    let cg = Cgroup::create(&h, "vbuild/g").unwrap();
    let mem = t.path().join("memory/vbuild/g");
    let e = cg
        .set_memory(&MemoryLimit {
            max: Some(1 << 30),
            swap: Some(1 << 20),
        })
        .unwrap_err();
    assert!(
        matches!(&e, CgroupError::NoSwapAccounting { path } if path.ends_with("memory.memsw.limit_in_bytes")),
        "{e}"
    );
    let e = cg
        .set_memory(&MemoryLimit {
            max: None,
            swap: Some(1 << 20),
        })
        .unwrap_err();
    assert!(
        matches!(&e, CgroupError::SwapWithoutMemory { group } if group == "vbuild/g"),
        "{e}"
    );
    assert!(e.to_string().contains("needs a memory limit"), "{e}");
    assert!(!mem.join("memory.limit_in_bytes").exists());
}

#[test]
fn nonsense_cpus_are_refused() {
    let t = fake_v2();
    let h = Hierarchy::at(t.path()).unwrap();
    let cg = Cgroup::create(&h, "vbuild/g").unwrap();
    for bad in [-1.0, 0.0, f64::NAN, f64::INFINITY, 0.001] {
        let e = cg.set_cpus(Some(bad)).unwrap_err();
        assert!(
            matches!(&e, CgroupError::CpusOutOfRange { group, min, .. } if group == "vbuild/g" && *min == 0.01),
            "{bad}: {e}"
        );
        assert!(
            !e.to_string().contains("--"),
            "no CLI flags in kernel errors: {e}"
        );
    }
    assert!(!t.path().join("vbuild/g/cpu.max").exists());
}

#[test]
fn v1_devices_deny_all_then_allow_the_list() {
    let t = fake_hybrid();
    let h = Hierarchy::at(t.path()).unwrap();
    let cg = Cgroup::create(&h, "vbuild/g").unwrap();
    cg.restrict_devices(&[DeviceRule::char(1, 3)]).unwrap();
    let d = t.path().join("devices/vbuild/g");
    assert_eq!(get(&d.join("devices.deny")), "a");
    assert_eq!(get(&d.join("devices.allow")), "c 1:3 rwm");
    let lines: Vec<String> = DeviceRule::standard().iter().map(|r| r.v1_line()).collect();
    assert_eq!(
        lines,
        [
            "c 1:3 rwm",
            "c 1:5 rwm",
            "c 1:7 rwm",
            "c 1:8 rwm",
            "c 1:9 rwm",
            "c 5:0 rwm",
            "c 5:1 rwm",
            "c 5:2 rwm",
            "c 136:* rwm",
            "c *:* m",
            "b *:* m"
        ]
    );
}

#[test]
fn usage_reads_v1_and_v2_counters() {
    let t = fake_v2();
    let h = Hierarchy::at(t.path()).unwrap();
    let cg = Cgroup::create(&h, "vbuild/g").unwrap();
    let d = t.path().join("vbuild/g");
    put(&d.join("memory.current"), "1048576\n");
    put(&d.join("memory.peak"), "2097152\n");
    put(&d.join("pids.current"), "7\n");
    put(
        &d.join("memory.stat"),
        "anon 700000\nfile 300000\nkernel 48576\nanon_thp 0\n",
    );
    put(
        &d.join("memory.events"),
        "low 0\nhigh 0\nmax 4\noom 2\noom_kill 1\n",
    );
    put(
        &d.join("cpu.stat"),
        "usage_usec 1500000\nuser_usec 1000000\n",
    );
    put(
        &d.join("io.stat"),
        "8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n7:1 rbytes=5 wbytes=6 rios=1 wios=1\n",
    );
    let u = cg.usage().unwrap();
    assert_eq!(
        u,
        Usage {
            memory: Some(1 << 20),
            memory_peak: Some(2 << 20),
            memory_anon: Some(700000),
            memory_cache: Some(300000),
            oom_kills: Some(1),
            cpu: Some(Duration::from_millis(1500)),
            pids: Some(7),
            io_read: Some(105),
            io_write: Some(206),
        }
    );

    let t = fake_hybrid();
    let h = Hierarchy::at(t.path()).unwrap();
    let cg = Cgroup::create(&h, "vbuild/g").unwrap();
    let r = t.path();
    put(&r.join("memory/vbuild/g/memory.usage_in_bytes"), "4096\n");
    put(
        &r.join("memory/vbuild/g/memory.max_usage_in_bytes"),
        "8192\n",
    );
    put(&r.join("pids/vbuild/g/pids.current"), "3\n");
    put(
        &r.join("memory/vbuild/g/memory.stat"),
        "cache 10\nrss 20\ntotal_cache 1024\ntotal_rss 3072\ntotal_rss_huge 0\n",
    );
    put(
        &r.join("memory/vbuild/g/memory.oom_control"),
        "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
    );
    put(
        &r.join("cpu,cpuacct/vbuild/g/cpuacct.usage"),
        "2000000000\n",
    );
    put(
        &r.join("blkio/vbuild/g/blkio.throttle.io_service_bytes_recursive"),
        "7:0 Read 10\n7:0 Write 20\n7:0 Sync 30\n7:0 Total 30\nTotal 30\n",
    );
    let u = cg.usage().unwrap();
    assert_eq!(
        u,
        Usage {
            memory: Some(4096),
            memory_peak: Some(8192),
            memory_anon: Some(3072),
            memory_cache: Some(1024),
            oom_kills: Some(3),
            cpu: Some(Duration::from_secs(2)),
            pids: Some(3),
            io_read: Some(10),
            io_write: Some(20),
        }
    );
}

#[test]
fn v2_controllers_the_kernel_refuses_are_left_out_not_fatal() {
    let t = fake_v2();
    let r = t.path();
    // Writes to the root's subtree_control fail (a directory stands in for
    // a kernel that refuses): the group is still made, without controllers.
    fs::remove_file(r.join("cgroup.subtree_control")).unwrap();
    fs::create_dir(r.join("cgroup.subtree_control")).unwrap();
    let h = Hierarchy::at(r).unwrap();
    let cg = Cgroup::create(&h, "vbuild/g").unwrap();
    assert!(r.join("vbuild/g").is_dir());
    assert!(!cg.supports("memory"));
    let e = cg.set_pids_max(Some(5)).unwrap_err().to_string();
    assert!(e.contains("no pids controller"), "{e}");
}

#[test]
fn v1_memory_extras_write_their_files() {
    let t = fake_hybrid();
    let r = t.path();
    let h = Hierarchy::at(r).unwrap();
    let cg = Cgroup::create(&h, "vbuild/g").unwrap();
    cg.set_memory_extras(&MemoryExtras {
        reservation: Some(32 << 20),
        swappiness: Some(10),
        disable_oom_killer: true,
        kernel_tcp: Some(16 << 20),
    })
    .unwrap();
    let mem = r.join("memory/vbuild/g");
    assert_eq!(get(&mem.join("memory.soft_limit_in_bytes")), "33554432");
    assert_eq!(get(&mem.join("memory.swappiness")), "10");
    assert_eq!(get(&mem.join("memory.oom_control")), "1");
    assert_eq!(get(&mem.join("memory.kmem.tcp.limit_in_bytes")), "16777216");
    let err = cg
        .set_memory_extras(&MemoryExtras {
            swappiness: Some(101),
            ..MemoryExtras::default()
        })
        .unwrap_err();
    assert!(err.to_string().contains("swappiness 101"), "{err}");
}

#[test]
fn v2_memory_extras_map_reservation_and_refuse_the_rest_by_name() {
    let t = fake_v2();
    let h = Hierarchy::at(t.path()).unwrap();
    let cg = Cgroup::create(&h, "vbuild/g").unwrap();
    cg.set_memory_extras(&MemoryExtras {
        reservation: Some(1 << 20),
        ..MemoryExtras::default()
    })
    .unwrap();
    assert_eq!(get(&t.path().join("vbuild/g/memory.low")), "1048576");
    for (m, name) in [
        (
            MemoryExtras {
                swappiness: Some(5),
                ..MemoryExtras::default()
            },
            "swappiness",
        ),
        (
            MemoryExtras {
                disable_oom_killer: true,
                ..MemoryExtras::default()
            },
            "disable_oom_killer",
        ),
        (
            MemoryExtras {
                kernel_tcp: Some(1),
                ..MemoryExtras::default()
            },
            "kernel_tcp",
        ),
    ] {
        let err = cg.set_memory_extras(&m).unwrap_err();
        assert!(err.to_string().contains(name), "{err}");
    }
}

#[test]
fn cpu_bandwidth_is_written_exactly_and_nonsense_refused() {
    let t = fake_hybrid();
    let r = t.path();
    let h = Hierarchy::at(r).unwrap();
    let cg = Cgroup::create(&h, "vbuild/g").unwrap();
    cg.set_cpu_bandwidth(Some(200_000), 500_000).unwrap();
    let cpu = r.join("cpu,cpuacct/vbuild/g");
    assert_eq!(get(&cpu.join("cpu.cfs_period_us")), "500000");
    assert_eq!(get(&cpu.join("cpu.cfs_quota_us")), "200000");
    cg.set_cpu_bandwidth(None, 100_000).unwrap();
    assert_eq!(get(&cpu.join("cpu.cfs_quota_us")), "-1");
    assert!(cg.set_cpu_bandwidth(Some(10), 100_000).is_err());
    assert!(cg.set_cpu_bandwidth(Some(10_000), 10).is_err());

    let t = fake_v2();
    let h = Hierarchy::at(t.path()).unwrap();
    let cg = Cgroup::create(&h, "vbuild/g").unwrap();
    cg.set_cpu_bandwidth(Some(50_000), 500_000).unwrap();
    assert_eq!(get(&t.path().join("vbuild/g/cpu.max")), "50000 500000");
}

#[test]
fn v2_set_cpuset_enables_cpuset_along_the_path_only_then() {
    let t = fake_v2();
    let r = t.path();
    let h = Hierarchy::at(r).unwrap();
    let cg = Cgroup::create(&h, "vbuild/g").unwrap();
    assert!(!get(&r.join("cgroup.subtree_control")).contains("cpuset"));
    cg.set_cpuset(Some("0-1"), Some("0")).unwrap();
    assert_eq!(get(&r.join("cgroup.subtree_control")), "+cpuset");
    assert_eq!(get(&r.join("vbuild/cgroup.subtree_control")), "+cpuset");
    assert_eq!(get(&r.join("vbuild/g/cpuset.cpus")), "0-1");
    assert_eq!(get(&r.join("vbuild/g/cpuset.mems")), "0");
}

#[test]
fn remove_made_takes_only_what_create_made() {
    let hy = fake_hybrid();
    let r = hy.path();
    let h = Hierarchy::at(r).unwrap();
    // A parent that exists in one hierarchy only, and a group that exists
    // in another before create.
    fs::create_dir(r.join("memory/ns")).unwrap();
    fs::create_dir_all(r.join("pids/ns/c1")).unwrap();
    let made = h.missing_dirs("ns/c1").unwrap();
    assert!(made.contains(&r.join("freezer/ns")));
    assert!(made.contains(&r.join("memory/ns/c1")));
    assert!(!made.contains(&r.join("memory/ns")));
    assert!(!made.iter().any(|p| p.starts_with(r.join("pids"))));
    let at = |p: &str| made.iter().position(|m| m == &r.join(p)).unwrap();
    assert!(at("freezer/ns") < at("freezer/ns/c1"), "shallowest first");
    let cg = Cgroup::create(&h, "ns/c1").unwrap();
    fs::create_dir(r.join("freezer/ns/c1/sub")).unwrap();
    cg.remove_made(&made).unwrap();
    assert!(!r.join("freezer/ns").exists(), "a made parent goes");
    assert!(!r.join("memory/ns/c1").exists(), "the made group goes");
    assert!(
        r.join("memory/ns").is_dir(),
        "a parent that was there stays"
    );
    assert!(
        r.join("pids/ns/c1").is_dir(),
        "a group that was there stays"
    );
    // A made parent another group still uses stays too.
    let made = h.missing_dirs("top/a").unwrap();
    let a = Cgroup::create(&h, "top/a").unwrap();
    Cgroup::create(&h, "top/b").unwrap();
    a.remove_made(&made).unwrap();
    assert!(!r.join("memory/top/a").exists());
    assert!(r.join("memory/top/b").is_dir(), "busy parent stays");
    assert!(h.missing_dirs("../x").is_err());
}

#[test]
fn parent_dirs_are_the_exact_ancestors_below_each_root() {
    let hy = fake_hybrid();
    let r = hy.path();
    let h = Hierarchy::at(r).unwrap();
    let p = h.parent_dirs("ns/sub/c1").unwrap();
    assert!(p.contains(&r.join("memory/ns")));
    assert!(p.contains(&r.join("memory/ns/sub")));
    assert!(p.contains(&r.join("unified/ns/sub")));
    // Neither the group, nor a hierarchy root, nor a same-named dir elsewhere.
    assert!(!p.contains(&r.join("memory/ns/sub/c1")));
    assert!(!p.contains(&r.join("memory")));
    assert!(!p.iter().any(|d| d.ends_with("other/ns")));
    assert!(h.parent_dirs("c1").unwrap().is_empty());
    assert!(h.parent_dirs("../x").is_err());
}
