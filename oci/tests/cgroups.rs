//! The memory fields past limit and swap (reservation, swappiness,
//! disableOOMKiller, kernelTCP, kernel) land in the container's cgroup on
//! create and on update, and delete leaves no group behind (root).

mod common;
use common::bundle::{root_or_skip, unique, Bundle};
use serde_json::json;
use std::path::{Path, PathBuf};

fn v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

fn memory_file(id: &str, file: &str) -> PathBuf {
    if v2() {
        Path::new("/sys/fs/cgroup/vbuild/oci").join(id).join(file)
    } else {
        Path::new("/sys/fs/cgroup/memory/vbuild/oci")
            .join(id)
            .join(file)
    }
}

fn read(id: &str, file: &str) -> String {
    let p = memory_file(id, file);
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

#[test]
fn memory_extras_land_in_their_files_and_update_changes_them() {
    if !root_or_skip() {
        return;
    }
    let mut b = Bundle::new();
    let v2 = v2();
    b.config("sleep 60", |c| {
        let mut m = json!({
            "limit": 67108864,
            "reservation": 33554432,
            "kernel": 67108864,
        });
        if !v2 {
            m["swappiness"] = json!(10);
            m["disableOOMKiller"] = json!(true);
            m["kernelTCP"] = json!(16777216);
        }
        c["linux"]["resources"] = json!({ "memory": m });
    });
    let id = unique("memx");
    b.create(&id);
    if v2 {
        assert_eq!(read(&id, "memory.low"), "33554432");
    } else {
        assert_eq!(read(&id, "memory.soft_limit_in_bytes"), "33554432");
        assert_eq!(read(&id, "memory.swappiness"), "10");
        assert!(
            read(&id, "memory.oom_control").contains("oom_kill_disable 1"),
            "{}",
            read(&id, "memory.oom_control")
        );
        assert_eq!(read(&id, "memory.kmem.tcp.limit_in_bytes"), "16777216");
    }
    let upd = b.path().join("res.json");
    let body = if v2 {
        r#"{"memory": {"reservation": 16777216}}"#
    } else {
        r#"{"memory": {"reservation": 16777216, "swappiness": 60}}"#
    };
    std::fs::write(&upd, body).unwrap();
    b.ok(&["update", "--resources", upd.to_str().unwrap(), &id]);
    if v2 {
        assert_eq!(read(&id, "memory.low"), "16777216");
    } else {
        assert_eq!(read(&id, "memory.soft_limit_in_bytes"), "16777216");
        assert_eq!(read(&id, "memory.swappiness"), "60");
    }
    b.ok(&["delete", &id]);
    assert!(!memory_file(&id, "").exists(), "cgroup left behind");
}

#[test]
fn a_swappiness_above_100_is_refused_naming_the_field() {
    if !root_or_skip() {
        return;
    }
    let b = Bundle::new();
    b.config("true", |c| {
        c["linux"]["resources"] = json!({"memory": {"swappiness": 101}});
    });
    let id = unique("swp");
    let bundle = b.path().to_str().unwrap().to_string();
    let e = b.fails(&["create", "--bundle", &bundle, &id]);
    if !v2() {
        assert!(
            e.contains("linux.resources.memory.swappiness 101 is above 100"),
            "{e}"
        );
    }
    assert!(!memory_file(&id, "").exists(), "cgroup left behind");
}

fn cpu_file(id: &str, controller: &str, file: &str) -> PathBuf {
    if v2() {
        Path::new("/sys/fs/cgroup/vbuild/oci").join(id).join(file)
    } else {
        Path::new("/sys/fs/cgroup")
            .join(controller)
            .join("vbuild/oci")
            .join(id)
            .join(file)
    }
}

#[test]
fn cpus_mems_and_the_exact_cfs_period_land_and_confine_the_process() {
    if !root_or_skip() {
        return;
    }
    let mut b = Bundle::new();
    b.config("sleep 60", |c| {
        c["linux"]["resources"] = json!({
            "cpu": {"quota": 200000, "period": 500000, "shares": 1024, "cpus": "0", "mems": "0"}
        });
    });
    let id = unique("cpuset");
    let pid = b.create(&id);
    let read = |c: &str, f: &str| {
        let p = cpu_file(&id, c, f);
        std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .trim()
            .to_string()
    };
    assert_eq!(read("cpuset", "cpuset.cpus"), "0");
    assert_eq!(read("cpuset", "cpuset.mems"), "0");
    if v2() {
        assert_eq!(read("", "cpu.max"), "200000 500000");
    } else {
        assert_eq!(read("cpu", "cpu.cfs_period_us"), "500000");
        assert_eq!(read("cpu", "cpu.cfs_quota_us"), "200000");
    }
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid.trim())).unwrap();
    let allowed = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap()
        .trim();
    assert_eq!(allowed, "0", "the container's process runs only on cpu 0");
    let upd = b.path().join("res.json");
    let all = format!(
        "0-{}",
        std::thread::available_parallelism().unwrap().get() - 1
    );
    std::fs::write(&upd, json!({"cpu": {"cpus": all}}).to_string()).unwrap();
    b.ok(&["update", "--resources", upd.to_str().unwrap(), &id]);
    assert_eq!(read("cpuset", "cpuset.cpus"), all);
    b.ok(&["delete", &id]);
    assert!(
        !cpu_file(&id, "cpuset", "").exists(),
        "cpuset group left behind"
    );
    assert!(!cpu_file(&id, "cpu", "").exists(), "cpu group left behind");
}

#[test]
fn a_bad_cpu_list_is_refused_and_leaves_nothing() {
    if !root_or_skip() {
        return;
    }
    let b = Bundle::new();
    b.config("true", |c| {
        c["linux"]["resources"] = json!({"cpu": {"cpus": "0-"}});
    });
    let id = unique("badcpus");
    let bundle = b.path().to_str().unwrap().to_string();
    let e = b.fails(&["create", "--bundle", &bundle, &id]);
    assert!(
        e.contains("cpuset cpus \\\"0-\\\" is not a list like 0-3,6")
            || e.contains("cpuset cpus \"0-\" is not a list"),
        "{e}"
    );
    assert!(
        !cpu_file(&id, "cpuset", "").exists(),
        "cpuset group left behind"
    );
}

/// The hierarchies' roots: /sys/fs/cgroup on v2, each v1 (and the
/// unified) mount on v1/hybrid.
fn hierarchy_roots() -> Vec<PathBuf> {
    if v2() {
        return vec![PathBuf::from("/sys/fs/cgroup")];
    }
    let mut roots: Vec<PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| !p.is_symlink() && p.join("cgroup.procs").is_file())
        .collect();
    roots.sort();
    roots
}

/// Where `rel` is in each hierarchy that has it.
fn present(rel: &str) -> Vec<PathBuf> {
    hierarchy_roots()
        .into_iter()
        .map(|r| r.join(rel))
        .filter(|p| p.is_dir())
        .collect()
}

#[test]
fn an_absolute_cgroups_path_is_at_the_root_and_delete_keeps_what_was_there() {
    if !root_or_skip() {
        return;
    }
    let top = unique("abs");
    let pre = unique("abspre");
    let with_path = |path: String| {
        let b = Bundle::new();
        b.config("sleep 60", |c| c["linux"]["cgroupsPath"] = json!(path));
        b
    };
    // A parent vbuild-runc makes goes with the container.
    let mut b = with_path(format!("/{top}/c"));
    let id = unique("absc");
    b.create(&id);
    assert_eq!(present(&format!("{top}/c")).len(), hierarchy_roots().len());
    assert!(!memory_file(&id, "").exists(), "not below vbuild/oci");
    b.ok(&["delete", "--force", &id]);
    assert_eq!(present(&top), Vec::<PathBuf>::new(), "made parent left");
    // A parent and a group that were there stay.
    for r in hierarchy_roots() {
        std::fs::create_dir_all(r.join(&pre).join("g")).unwrap();
    }
    for (path, kept) in [(format!("/{pre}/c"), false), (format!("/{pre}/g"), true)] {
        let mut b = with_path(path.clone());
        let id = unique("absp");
        b.create(&id);
        b.ok(&["delete", "--force", &id]);
        let rel = path.trim_start_matches('/');
        let left = present(rel).len();
        assert_eq!(left == hierarchy_roots().len(), kept, "{path}: {left} left");
        assert_eq!(left == 0, !kept, "{path}: {left} left");
        assert_eq!(present(&pre).len(), hierarchy_roots().len(), "{path}");
    }
    for r in hierarchy_roots() {
        std::fs::remove_dir(r.join(&pre).join("g")).unwrap();
        std::fs::remove_dir(r.join(&pre)).unwrap();
    }
    // Bad paths are refused before anything is made.
    for bad in [
        "/".to_string(),
        format!("/{top}/../x"),
        format!("/{top}//x"),
    ] {
        let b = with_path(bad.clone());
        let id = unique("absbad");
        let bundle = b.path().to_str().unwrap().to_string();
        let e = b.fails(&["create", "--bundle", &bundle, &id]);
        assert!(e.contains("cgroupsPath"), "{bad}: {e}");
        assert_eq!(present(&top), Vec::<PathBuf>::new(), "{bad}");
    }
}
