//! `vbuild cache list|prune` and `vbuild logs` through the real binary,
//! on a temporary state root (no guest is started, nothing needs root).

use serde_json::Value;
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

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

#[test]
fn cache_list_groups_by_distro_and_prune_all_empties_it() {
    let dir = tempfile::tempdir().unwrap();
    let cache = vbuild_cache::Cache::open(dir.path().join("cache")).unwrap();
    cache.put_blob(b"!<arch>\ndebian-binary   one").unwrap();
    cache.put_blob(&[0xed, 0xab, 0xee, 0xdb, 1, 2, 3]).unwrap();
    cache
        .put_index("inrelease:x", b"Origin: Debian\nSuite: stable\n")
        .unwrap();

    let o = vbuild(dir.path(), &["--json", "cache", "list"]);
    assert_eq!(o.status.code(), Some(0));
    let j = json(&o);
    assert_eq!(j["files"], 3, "{j}");
    assert_eq!(j["total_bytes"], 27 + 7 + 29, "{j}");
    let groups: Vec<(String, String, u64)> = j["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["distro"].as_str().unwrap().to_string(),
                g["kind"].as_str().unwrap().to_string(),
                g["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        groups,
        [
            ("debian".into(), "package".into(), 1),
            ("debian".into(), "index".into(), 1),
            ("fedora".into(), "package".into(), 1),
        ]
    );

    // Everything was used just now: the default 30 days keeps it all.
    let j = json(&vbuild(dir.path(), &["--json", "cache", "prune"]));
    assert_eq!(
        (j["removed"].as_u64(), j["kept"].as_u64()),
        (Some(0), Some(3)),
        "{j}"
    );
    let j = json(&vbuild(dir.path(), &["--json", "cache", "prune", "--all"]));
    assert_eq!(j["removed"], 3, "{j}");
    assert_eq!(j["freed_bytes"], 63, "{j}");
    assert_eq!(
        json(&vbuild(dir.path(), &["--json", "cache", "list"]))["files"],
        0
    );

    let o = vbuild(
        dir.path(),
        &["--json", "cache", "prune", "--older-than", "3w"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(json(&o)["error"]["kind"], "invalid");
}

#[test]
fn logs_prints_the_last_lines_and_names_an_unknown_guest() {
    let dir = tempfile::tempdir().unwrap();
    let g = dir.path().join("guests/cllogs1");
    std::fs::create_dir_all(g.join("rootfs")).unwrap();
    std::fs::write(
        g.join("guest.toml"),
        "name = \"cllogs1\"\ndistro = \"debian\"\nrelease = \"bookworm\"\nvariant = \"minbase\"\ncreated = 1764633600\n",
    )
    .unwrap();
    let run = dir.path().join("run/cllogs1");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(run.join("console.log"), "boot 1\nboot 2\nboot 3\n").unwrap();

    let o = vbuild(dir.path(), &["logs", "cllogs1", "-n", "2"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "boot 2\nboot 3\n");
    // -f on a stopped guest prints what there is and returns.
    let o = vbuild(dir.path(), &["logs", "cllogs1", "-f"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "boot 1\nboot 2\nboot 3\n"
    );
    let j = json(&vbuild(dir.path(), &["--json", "logs", "cllogs1"]));
    assert_eq!(j["text"], "boot 1\nboot 2\nboot 3\n", "{j}");

    let o = vbuild(dir.path(), &["--json", "logs", "clnosuch"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(json(&o)["error"]["kind"], "not_found");
}
