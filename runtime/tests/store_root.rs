//! Host-wide guest names and limits applied at start, with real guests
//! (root: namespaces, cgroups). Run under the shared root-test flock.
//! A tiny busybox rootfs with a shell-script init, as in lifecycle.rs.

mod common;
use common::{busybox_rootfs, root_or_skip, unique};
use std::path::{Path, PathBuf};
use std::time::Duration;
use vbuild_runtime::config::{GuestConfig, InitConfig, InitKind, NetConfig, NetMode};
use vbuild_runtime::error::RuntimeError;
use vbuild_runtime::limits::Limits;
use vbuild_runtime::name::GuestName;
use vbuild_runtime::paths::Layout;
use vbuild_runtime::start::StartOptions;
use vbuild_runtime::state::{Liveness, State};
use vbuild_runtime::supervisor::SupervisorProgram;

/// The busybox applets this file's guests get.
const APPLETS: &[&str] = &["sh", "sleep"];

const INIT: &str = "#!/bin/sh\ntrap 'exit 0' TERM\nwhile :; do sleep 1 & wait $!; done\n";

/// A guest `name` in state root `dir` with `limits`, loopback only.
fn make_guest(dir: &Path, name: &str, limits: Limits) -> Layout {
    let layout = Layout::new(Some(dir));
    busybox_rootfs(&layout.guest_rootfs(name), INIT, APPLETS);
    GuestConfig {
        privileged: false,
        ids: None,
        template: None,
        autostart: false,
        restart: Default::default(),
        name: name.into(),
        distro: "busybox".into(),
        release: "test".into(),
        variant: String::new(),
        created: 0,
        init: InitConfig {
            path: "/sbin/init".into(),
            args: vec![],
            kind: InitKind::Other,
        },
        limits,
        net: NetConfig {
            mode: NetMode::None,
            ..Default::default()
        },
    }
    .save(&layout.guest_config(name))
    .unwrap();
    layout
}

fn options() -> StartOptions {
    StartOptions {
        privileged: true,
        supervisor: SupervisorProgram {
            program: PathBuf::from(env!("CARGO_BIN_EXE_vbuild-supervisor")),
            args: vec![],
        },
        on_reboot: None,
        on_exit: None,
    }
}

/// Stops the guest of each layout when dropped, even after a failed assertion.
struct StopOnDrop(Vec<(Layout, GuestName)>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        for (l, n) in &self.0 {
            if let Ok(Some(_)) = State::load(l, n.as_str()) {
                let _ = vbuild_runtime::stop::stop(l, n, Duration::from_secs(2));
            }
        }
    }
}

fn running(l: &Layout, n: &str) -> bool {
    matches!(
        State::load(l, n).unwrap().map(|s| s.liveness()),
        Some(Liveness::Running { .. })
    )
}

#[test]
fn a_second_state_root_cannot_take_a_running_guests_name() {
    if !root_or_skip() {
        return;
    }
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let n = unique("ux");
    let name = GuestName::parse(&n).unwrap();
    let a = make_guest(da.path(), &n, Limits::default());
    let b = make_guest(db.path(), &n, Limits::default());
    let _stop = StopOnDrop(vec![(a.clone(), name.clone()), (b.clone(), name.clone())]);
    let claim = Path::new(vbuild_runtime::paths::NAMES_DIR).join(&n);

    let started = vbuild_runtime::start::start(&a, &name, &options()).unwrap();
    assert!(claim.exists());
    let e = vbuild_runtime::start::start(&b, &name, &options()).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, RuntimeError::NameTaken { .. }), "{text}");
    let a_root = std::fs::canonicalize(da.path()).unwrap();
    assert!(
        text.contains(&a_root.display().to_string()),
        "names root A: {text}"
    );
    // B's refused start made nothing and A's guest is untouched.
    assert_eq!(State::load(&b, &n).unwrap(), None);
    assert!(running(&a, &n));
    // B's stop does not reach A's guest.
    let e = vbuild_runtime::stop::stop(&b, &name, Duration::from_secs(1)).unwrap_err();
    assert!(matches!(e, RuntimeError::NotRunning(_)), "{e}");
    // Not even through a stale state file in B naming the shared cgroup:
    // B's cleanup leaves A's cgroup and init alone.
    std::fs::create_dir_all(b.run_dir(&n)).unwrap();
    let mut stale = State::load(&a, &n).unwrap().unwrap();
    stale.init_start += 1;
    stale.supervisor_start += 1;
    stale.save(&b).unwrap();
    vbuild_runtime::stop::stop(&b, &name, Duration::from_secs(1)).unwrap();
    assert!(running(&a, &n), "B's cleanup left A's guest running");
    assert!(vbuild_kernel::process::is_alive(
        started.init_pid,
        State::load(&a, &n).unwrap().unwrap().init_start
    ));

    // Once A stopped, the name is free and B may run it.
    vbuild_runtime::stop::stop(&a, &name, Duration::from_secs(5)).unwrap();
    assert!(!claim.exists(), "stop releases the claim");
    vbuild_runtime::start::start(&b, &name, &options()).unwrap();
    assert!(running(&b, &n));
    let e = vbuild_runtime::start::start(&a, &name, &options()).unwrap_err();
    assert!(
        e.to_string().contains(
            &std::fs::canonicalize(db.path())
                .unwrap()
                .display()
                .to_string()
        ),
        "{e}"
    );
    vbuild_runtime::stop::stop(&b, &name, Duration::from_secs(5)).unwrap();
    assert!(!claim.exists());
}

#[test]
fn io_limits_are_in_the_cgroup_after_start() {
    if !root_or_skip() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let n = unique("io");
    let name = GuestName::parse(&n).unwrap();
    let limits = Limits {
        io_read_bps: Some(50 << 20),
        io_write_bps: Some(20 << 20),
        io_write_iops: Some(300),
        ..Default::default()
    };
    let l = make_guest(d.path(), &n, limits);
    let _stop = StopOnDrop(vec![(l.clone(), name.clone())]);
    let devs = vbuild_runtime::disk::io_devices(&l, &n).unwrap();
    assert!(!devs.is_empty());
    vbuild_runtime::start::start(&l, &name, &options()).unwrap();
    let rel = vbuild_runtime::store::cgroup_name(&n);
    let v1 = Path::new("/sys/fs/cgroup/blkio").join(&rel);
    let (maj, min) = devs[0];
    if v1.is_dir() {
        let read = |f: &str| std::fs::read_to_string(v1.join(f)).unwrap();
        assert!(
            read("blkio.throttle.read_bps_device")
                .contains(&format!("{maj}:{min} {}", 50u64 << 20)),
            "{}",
            read("blkio.throttle.read_bps_device")
        );
        assert!(read("blkio.throttle.write_bps_device")
            .contains(&format!("{maj}:{min} {}", 20u64 << 20)));
        assert!(read("blkio.throttle.write_iops_device").contains(&format!("{maj}:{min} 300")));
    } else {
        let max =
            std::fs::read_to_string(Path::new("/sys/fs/cgroup").join(&rel).join("io.max")).unwrap();
        assert!(
            max.contains(&format!(
                "{maj}:{min} rbps={} wbps={}",
                50u64 << 20,
                20u64 << 20
            )),
            "{max}"
        );
        assert!(max.contains("wiops=300"), "{max}");
    }
    vbuild_runtime::stop::stop(&l, &name, Duration::from_secs(5)).unwrap();
}

/// Deletes network `name` of each layout when dropped (after the guests'
/// StopOnDrop, which is declared later and so dropped first).
struct DeleteNetwork(Vec<Layout>, &'static str);

impl Drop for DeleteNetwork {
    fn drop(&mut self) {
        for l in &self.0 {
            let _ = vbuild_runtime::net::Network::delete(l, self.1);
        }
    }
}

#[test]
fn a_second_state_root_cannot_take_an_address_a_running_guest_uses() {
    if !root_or_skip() {
        return;
    }
    const NET: &str = "tclaim0";
    const ADDR: &str = "10.99.77.11/24";
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (na, nb) = (unique("ua"), unique("ub"));
    let (name_a, name_b) = (
        GuestName::parse(&na).unwrap(),
        GuestName::parse(&nb).unwrap(),
    );
    let a = make_guest(da.path(), &na, Limits::default());
    let b = make_guest(db.path(), &nb, Limits::default());
    let bridged = |l: &Layout, n: &str| {
        let p = l.guest_config(n);
        let mut c = GuestConfig::load(&p).unwrap();
        c.net = NetConfig {
            mode: NetMode::Bridge,
            network: NET.into(),
            addresses: vec![ADDR.into()],
            publish: vec![],
        };
        c.save(&p).unwrap();
    };
    bridged(&a, &na);
    bridged(&b, &nb);
    // One bridge, defined in both state roots (as `vbuild0` is by default).
    let net = vbuild_runtime::net::Network::define(
        NET,
        &["10.99.77.0/24".parse().unwrap()],
        &[],
        false,
        false,
        vec![],
        None,
    )
    .unwrap();
    net.create(&a).unwrap();
    let _net = DeleteNetwork(vec![a.clone()], NET);
    std::fs::create_dir_all(b.networks_dir()).unwrap();
    std::fs::copy(
        a.networks_dir().join(format!("{NET}.toml")),
        b.networks_dir().join(format!("{NET}.toml")),
    )
    .unwrap();
    let _stop = StopOnDrop(vec![
        (a.clone(), name_a.clone()),
        (b.clone(), name_b.clone()),
    ]);
    let claim = Path::new(vbuild_runtime::paths::NAMES_DIR).join("addr/tclaim0/10.99.77.11");

    vbuild_runtime::start::start(&a, &name_a, &options()).unwrap();
    assert!(claim.exists(), "start claims the address");
    let e = vbuild_runtime::start::start(&b, &name_b, &options()).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, RuntimeError::AddressTaken { .. }), "{text}");
    let a_root = std::fs::canonicalize(da.path()).unwrap();
    for want in [
        na.as_str(),
        nb.as_str(),
        "10.99.77.11",
        NET,
        &a_root.display().to_string(),
    ] {
        assert!(text.contains(want), "names {want}: {text}");
    }
    // B's refused start made nothing: no state, no link, no cgroup, no
    // name claim; A's guest runs on.
    assert_eq!(State::load(&b, &nb).unwrap(), None);
    let links: Vec<String> = vbuild_kernel::net::RtNetlink::open()
        .unwrap()
        .links()
        .unwrap()
        .into_iter()
        .map(|l| l.name)
        .collect();
    assert!(!links.contains(&vbuild_runtime::net::host_link_name(&nb)));
    assert!(links.contains(&vbuild_runtime::net::host_link_name(&na)));
    let h = vbuild_kernel::cgroup::Hierarchy::detect().unwrap();
    let cg = vbuild_runtime::store::cgroup_name(&nb);
    assert!(vbuild_kernel::cgroup::Cgroup::open(&h, &cg)
        .unwrap()
        .is_none());
    assert!(!Path::new(vbuild_runtime::paths::NAMES_DIR)
        .join(&nb)
        .exists());
    assert!(running(&a, &na));

    // A stopped: the address is free and B's guest may use it.
    vbuild_runtime::stop::stop(&a, &name_a, Duration::from_secs(5)).unwrap();
    assert!(!claim.exists(), "stop releases the address");
    vbuild_runtime::start::start(&b, &name_b, &options()).unwrap();
    assert!(running(&b, &nb));
    let e = vbuild_runtime::start::start(&a, &name_a, &options()).unwrap_err();
    assert!(e.to_string().contains(&nb), "{e}");
    vbuild_runtime::stop::stop(&b, &name_b, Duration::from_secs(5)).unwrap();
    assert!(!claim.exists());
    // The shared bridge and its nf_tables table are this test's own.
    net.teardown().unwrap();
}
