//! The everyday command line through the real binary (issue 13): `--json`
//! on success and failure with the same field names everywhere, `--help`
//! with examples and global options apart, and the small refusals a new
//! user hits in the first hour. Guests are written as guest.toml files
//! into a temporary state root; nothing here starts one.

use serde_json::Value;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output};

fn vbuild(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vbuild"))
        .arg("--root")
        .arg(root)
        .env_remove("VBUILD_ROOT")
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}{}", stdout(o), stderr(o)))
}

/// A stopped guest as a build leaves it: guest.toml and an empty rootfs.
fn guest(root: &Path, name: &str, extra: &str) {
    let dir = root.join("guests").join(name);
    std::fs::create_dir_all(dir.join("rootfs")).unwrap();
    std::fs::write(
        dir.join("guest.toml"),
        format!(
            "name = \"{name}\"\ndistro = \"debian\"\nrelease = \"bookworm\"\nvariant = \"minbase\"\ncreated = 1764633600\n{extra}"
        ),
    )
    .unwrap();
}

/// Asserts `o` failed with the JSON error object of `kind` and `code`
/// (and nothing on stderr), and returns its message.
fn json_error(o: &Output, kind: &str, code: i32) -> String {
    assert_eq!(o.status.code(), Some(code), "{}{}", stdout(o), stderr(o));
    let j = json(o);
    let e = &j["error"];
    assert_eq!(e["kind"], kind, "{j}");
    assert_eq!(e["exit_code"], code, "{j}");
    assert!(stderr(o).is_empty(), "{}", stderr(o));
    let m = e["message"].as_str().unwrap().to_string();
    assert_eq!(m.lines().count(), 1, "{m}");
    m
}

#[test]
fn failures_under_json_are_error_objects_with_kind_and_exit_code() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    for cmd in [
        &["status", "nosuch"][..],
        &["start", "nosuch"],
        &["stop", "nosuch"],
        &["restart", "nosuch"],
        &["delete", "nosuch"],
        &["limit", "nosuch"],
        &["exec", "nosuch", "true"],
    ] {
        let mut args = vec!["--json"];
        args.extend_from_slice(cmd);
        let m = json_error(&vbuild(r, &args), "not_found", 1);
        // One wording for a missing guest, whatever the command.
        assert_eq!(
            m,
            "guest nosuch does not exist (see `vbuild list`, or build one with `vbuild debian bookworm --name nosuch`)",
            "{cmd:?}"
        );
    }
    // export too, before it looks at --output at all.
    let out = r.join("nosuch.tar.zst");
    let out = out.to_str().unwrap();
    let m = json_error(
        &vbuild(r, &["--json", "export", "nosuch", "--output", out]),
        "not_found",
        1,
    );
    assert_eq!(
        m,
        "guest nosuch does not exist (see `vbuild list`, or build one with `vbuild debian bookworm --name nosuch`)"
    );
    let o = vbuild(r, &["export", "nosuch", "--output", out]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o).trim(),
        format!("vbuild: {m}"),
        "the same line without --json"
    );
    assert!(!r.join("nosuch.tar.zst").exists(), "nothing half-made");
    let m = json_error(
        &vbuild(r, &["--json", "net", "delete", "nosuch"]),
        "not_found",
        1,
    );
    assert!(m.contains("network \"nosuch\" does not exist"), "{m}");
    // clap's own refusals too, with its usage exit code.
    let m = json_error(&vbuild(r, &["--json", "frobnicate"]), "usage", 2);
    assert!(m.contains("frobnicate"), "{m}");
    let m = json_error(&vbuild(r, &["status", "--json"]), "usage", 2);
    assert!(m.contains("NAME") || m.contains("<NAME>"), "{m}");
    let m = json_error(
        &vbuild(r, &["--json", "limit", "nosuch", "--memory", "12Q"]),
        "not_found",
        1,
    );
    assert!(m.contains("nosuch"), "{m}");
    // Without --json: one line on stderr, nothing on stdout.
    let o = vbuild(r, &["status", "nosuch"]);
    assert!(stdout(&o).is_empty());
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
}

#[test]
fn status_list_limit_and_delete_speak_json_with_numbers_and_shared_names() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    guest(
        r,
        "web01",
        "[limits]\nmemory = 1073741824\nswap = 1073741824\npids = 300\n[net]\nmode = \"bridge\"\nnetwork = \"vbuild0\"\naddresses = [\"10.77.0.21/24\", \"fd77::21/64\"]\npublish = [\"18080:80/tcp\"]\n",
    );
    let st = json(&vbuild(r, &["--json", "status", "web01"]));
    assert_eq!(st["name"], "web01");
    assert_eq!(st["distro"], "debian");
    assert_eq!(st["release"], "bookworm");
    assert_eq!(st["variant"], "minbase");
    assert_eq!(st["created"], 1764633600u64);
    assert_eq!(st["net_mode"], "bridge");
    assert_eq!(st["network"], "vbuild0");
    assert_eq!(st["ports"], serde_json::json!(["18080:80/tcp"]));
    assert_eq!(
        st["addresses"],
        serde_json::json!(["10.77.0.21/24", "fd77::21/64"])
    );
    assert_eq!(st["limits"]["memory"], 1u64 << 30);
    let list = json(&vbuild(r, &["--json", "list"]));
    let first = &list.as_array().unwrap()[0];
    for k in [
        "name", "distro", "release", "variant", "created", "network", "ports",
    ] {
        assert_eq!(first[k], st[k], "list and status differ on {k}");
    }
    // limit --json: bytes and counts as numbers, not "1G + 1G swap".
    let l = json(&vbuild(r, &["--json", "limit", "web01"]));
    assert_eq!(l["name"], "web01");
    assert_eq!(l["limits"]["memory"], 1u64 << 30);
    assert_eq!(l["limits"]["swap"], 1u64 << 30);
    assert_eq!(l["limits"]["pids"], 300);
    assert!(l["usage"]["memory"].is_null(), "stopped: {l}");
    let l = json(&vbuild(r, &["--json", "limit", "web01", "--pids", "400"]));
    assert_eq!(l["limits"]["pids"], 400);
    assert_eq!(l["live"], false);
    // net delete: a stopped guest still names vbuild0.
    let m = json_error(
        &vbuild(r, &["--json", "net", "delete", "vbuild0"]),
        "in_use",
        1,
    );
    assert!(m.contains("still named by guests: web01"), "{m}");
    // delete --json, then the guest is gone.
    let d = json(&vbuild(r, &["--json", "delete", "web01"]));
    assert_eq!(d, serde_json::json!({"name": "web01", "deleted": true}));
    assert!(!r.join("guests/web01").exists());
    assert_eq!(json(&vbuild(r, &["--json", "list"])), serde_json::json!([]));
}

#[test]
fn list_columns_fit_their_content_and_show_every_address() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let long = "a-rather-long-guest-name-for-the-list-01";
    guest(
        r,
        long,
        "[net]\naddresses = [\"10.77.0.31/24\", \"fd77::31/64\"]\n",
    );
    guest(r, "b", "[net]\nmode = \"none\"\n");
    let o = vbuild(r, &["list"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[1].contains("10.77.0.31/24,fd77::31/64"), "{text}");
    // Every column starts where its heading does.
    for h in ["DISTRO", "STATE", "ADDRESSES"] {
        let at = lines[0].find(h).unwrap();
        for l in &lines[1..] {
            assert_eq!(&l[at - 2..at], "  ", "{h} misaligned:\n{text}");
            assert_ne!(&l[at..at + 1], " ", "{h} misaligned:\n{text}");
        }
    }
    assert!(lines[1].starts_with(&format!("{long}  ")), "{text}");
}

#[test]
fn every_command_has_examples_and_global_options_apart() {
    let o = Command::new(env!("CARGO_BIN_EXE_vbuild"))
        .arg("--help")
        .output()
        .unwrap();
    let top = stdout(&o);
    let commands: Vec<String> = top
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(String::from)
        .collect();
    assert!(commands.len() >= 15, "{top}");
    let mut paths: Vec<Vec<String>> = commands.iter().map(|c| vec![c.clone()]).collect();
    for sub in ["create", "list", "show", "delete"] {
        paths.push(vec!["net".into(), sub.into()]);
    }
    for p in paths {
        let o = Command::new(env!("CARGO_BIN_EXE_vbuild"))
            .args(&p)
            .arg("--help")
            .output()
            .unwrap();
        let h = stdout(&o);
        assert!(o.status.success(), "{p:?}");
        assert!(h.contains("\nExamples:\n  vbuild "), "{p:?} --help:\n{h}");
        let global = h
            .find("Global options:")
            .unwrap_or_else(|| panic!("{p:?}:\n{h}"));
        // --root and --json are listed once, under their own heading.
        assert_eq!(h.matches("--root <DIR>").count(), 1, "{p:?}:\n{h}");
        assert!(h[global..].contains("--root <DIR>"), "{p:?}:\n{h}");
        assert!(h[global..].contains("--json"), "{p:?}:\n{h}");
    }
}

#[test]
fn small_refusals_are_one_clear_line() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    guest(r, "g1", "");
    let cases: &[(&[&str], &str)] = &[
        (
            &["debian", "bookworm", "--name", "uxbad-"],
            "guest name \"uxbad-\" ends with '-' (not a valid hostname)",
        ),
        (
            &["debian", "bookworm", "--name", "-ux"],
            "guest name \"-ux\" must start with a lowercase letter or a digit",
        ),
        (
            &["exec", "g1", "-e", "FOO", "--", "true"],
            "-e FOO: not KEY=VALUE (e.g. -e LANG=C.UTF-8)",
        ),
        (
            &["exec", "g1", "-e", "=x", "--", "true"],
            "-e =x: the name before '=' is empty",
        ),
        (&["exec", "g1", "--", ""], "exec: the command is empty"),
        (
            &["run", "--rootfs", "/nonexistent-vbuild", "--", "true"],
            "run --rootfs /nonexistent-vbuild: no such directory",
        ),
        (
            &["run", "--rootfs", "/", "-e", "X", "true"],
            "-e X: not KEY=VALUE",
        ),
        // Without `--` the command is taken as it is (g1 is not running).
        (&["exec", "g1", "true"], "guest g1 is not running"),
    ];
    for (args, want) in cases {
        let o = vbuild(r, args);
        let err = stderr(&o);
        assert!(!o.status.success(), "{args:?}");
        assert!(
            err.starts_with(&format!("vbuild: {want}")),
            "{args:?}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(!err.contains("tip:"), "{args:?}: {err}");
    }
    assert!(!r.join("guests/uxbad-").exists() && !r.join("cache").exists());
}

#[test]
fn a_build_as_non_root_is_refused_before_any_download() {
    let is_root = nix::unistd::geteuid().is_root();
    if !vbuild_testsupport::require(is_root, "root (to run the binary as uid 65534)") {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let state = root.path().join("state");
    std::fs::create_dir(&state).unwrap();
    std::os::unix::fs::chown(&state, Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(
        root.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_vbuild"))
        .args(["--root"])
        .arg(&state)
        .args(["debian", "bookworm", "--name", "t1"])
        .args(["--mirror", "http://192.0.2.1:9/debian"])
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(err.starts_with("vbuild: t1: building needs root"), "{err}");
    let left: Vec<_> = std::fs::read_dir(&state).unwrap().collect();
    assert!(left.is_empty(), "created {left:?}");
}

#[test]
fn check_has_the_networking_rows_it_promises_and_the_live_disk_row() {
    let root = tempfile::tempdir().unwrap();
    let o = vbuild(root.path(), &["--json", "check"]);
    let rows = json(&o);
    let rows = rows.as_array().expect("an array of findings");
    let row = |area: &str, name: &str| {
        rows.iter()
            .find(|r| r["area"] == area && r["name"] == name)
            .unwrap_or_else(|| panic!("no {area}/{name} row: {rows:?}"))
            .clone()
    };
    for n in ["bridge", "veth", "nf_tables", "ip forwarding"] {
        let r = row("network", n);
        assert!(!r["detail"].as_str().unwrap().is_empty(), "{r}");
    }
    // Root on these VMs lacks CAP_SYS_RESOURCE: the row says what it costs.
    let r = row("disk", "live disk growth");
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
        .unwrap();
    if eff & (1 << 24) == 0 {
        assert_eq!(r["level"], "warn", "{r}");
        assert!(
            r["detail"].as_str().unwrap().contains("CAP_SYS_RESOURCE"),
            "{r}"
        );
    } else {
        assert_eq!(r["level"], "ok", "{r}");
    }
}
