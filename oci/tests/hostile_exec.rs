//! `vbuild-runc exec` against a hostile container root: the root of the
//! container (uid 0 with the container's capabilities, or root of its own
//! user namespace) watches /proc for every new process and attacks it as
//! it appears, before the process has exec'd its program: until then it is
//! the runtime's binary and memory. It must not be able to open the
//! runtime's program through /proc/PID/exe (CVE-2019-5736, where a
//! container overwrote the host's runc that way), its descriptors, root or
//! cwd, nor reach a host file through any of them. The attacker is code of
//! this test process (see runtime/tests/common/attacker.rs). Needs root.

#[path = "../../runtime/tests/common/attacker.rs"]
mod attacker;
mod common;
use attacker::{host_marker, Attack, Watch};
use common::bundle::{root_or_skip, unique, user_namespace, Bundle};
use serde_json::json;

/// The capability set (CapEff) of `pid`: the container root's powers.
fn cap_eff(pid: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid.trim())).unwrap();
    let v = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .unwrap();
    u64::from_str_radix(v.trim(), 16).unwrap()
}

fn exec_survives_a_container_root_that_watches_for_it(userns: bool) {
    let mut b = Bundle::new();
    b.config("", |c| {
        c["process"]["args"] = json!(["sleep", "600"]);
        // runc spec's default capability set, which the root has.
        let caps = json!([
            "CAP_CHOWN",
            "CAP_DAC_OVERRIDE",
            "CAP_FSETID",
            "CAP_FOWNER",
            "CAP_MKNOD",
            "CAP_NET_RAW",
            "CAP_SETGID",
            "CAP_SETUID",
            "CAP_SETFCAP",
            "CAP_SETPCAP",
            "CAP_NET_BIND_SERVICE",
            "CAP_SYS_CHROOT",
            "CAP_KILL",
            "CAP_AUDIT_WRITE"
        ]);
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set] = caps.clone();
        }
        c["process"]["capabilities"]["ambient"] = json!([]);
        if userns {
            user_namespace(c);
        }
    });
    let id = unique(&format!("hx{}", userns as u8));
    let pid = b.create(&id);
    b.ok(&["start", &id]);
    let marker = host_marker();
    let attack = Attack::start(Watch {
        init_pid: pid.trim().parse().unwrap(),
        kept: cap_eff(&pid),
        marker_rel: marker.path().to_str().unwrap()[1..].to_string(),
        // Like runc's, the process gets its capability sets in the
        // container, not dumpable until its exec: nothing to take there.
        caps_checked: false,
        stdio_is_callers: true,
        exe_checked: true,
    });
    let quick = b.path().join("true.json");
    let slow = b.path().join("sleep.json");
    for (f, args) in [(&quick, json!(["true"])), (&slow, json!(["sleep", "0.05"]))] {
        let p = json!({"user": {"uid": 0, "gid": 0}, "args": args,
                       "env": ["PATH=/bin"], "cwd": "/"});
        std::fs::write(f, p.to_string()).unwrap();
    }
    const ROUNDS: usize = 40;
    for i in 0..ROUNDS {
        // Half end at once (the attack races the exec), half stay a moment.
        let f = if i % 2 == 0 { &quick } else { &slow };
        b.ok(&["exec", "--process", f.to_str().unwrap(), &id]);
    }
    attack
        .finish()
        .assert_clean(&format!("userns={userns}"), ROUNDS);
    // Still a working container.
    b.ok(&["exec", "--process", quick.to_str().unwrap(), &id]);
    b.ok(&["delete", "--force", &id]);
    b.ids.clear();
}

#[test]
fn exec_survives_a_container_root_that_watches_for_it_without_userns() {
    if !root_or_skip() {
        return;
    }
    exec_survives_a_container_root_that_watches_for_it(false);
}

#[test]
fn exec_survives_a_container_root_that_watches_for_it_with_userns() {
    if !root_or_skip() {
        return;
    }
    exec_survives_a_container_root_that_watches_for_it(true);
}
