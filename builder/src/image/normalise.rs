//! What is taken out of a freshly built tree before it becomes an image, so
//! that two builds of the same inputs give the same bytes and no image
//! carries one machine's identity. Applied only to a tree vbuild just built
//! for `--output` (never to a guest's own rootfs: `vbuild export` archives a
//! guest as it is). Every path is handled inside the tree (`fsroot::Root`),
//! so a link a package left there cannot point the clean-up at the host.
//!
//! Normalised:
//! - removed, files only (directories stay, packages expect them): the
//!   contents of `var/log`, `var/cache/apt`, `var/lib/apt/lists`, `tmp`,
//!   `var/tmp`, `run`;
//! - removed: `var/cache/ldconfig/aux-cache`, `*-old` in `var/lib/dpkg` and
//!   `var/cache/debconf`, `etc/*-` backups (`passwd-`, `shadow-`, ...),
//!   `etc/ssh/ssh_host_*` keys, `var/lib/systemd/random-seed`,
//!   `var/lib/systemd/credential.secret`, `var/lib/dbus/machine-id`, the
//!   snakeoil TLS key and certificate of `ssl-cert`;
//! - `etc/machine-id` set to `uninitialized` (first-boot semantics) unless it
//!   is already empty or `uninitialized`;
//! - with `SOURCE_DATE_EPOCH`: the "last password change" day of
//!   `etc/shadow` clamped to that day; every mtime is clamped to it when the
//!   archive is written (`image::tar`).

use std::path::{Path, PathBuf};
use vbuild_kernel::fsroot::{FsError, Kind, Root};

/// Directories whose files are build-time state (directories are kept).
const EMPTIED: &[&str] = &[
    "var/log",
    "var/cache/apt",
    "var/lib/apt/lists",
    "tmp",
    "var/tmp",
    "run",
];

/// Single files that are per-build or per-machine.
const REMOVED: &[&str] = &[
    "var/cache/ldconfig/aux-cache",
    "var/lib/systemd/random-seed",
    "var/lib/systemd/credential.secret",
    "var/lib/dbus/machine-id",
    "etc/ssl/private/ssl-cert-snakeoil.key",
    "etc/ssl/certs/ssl-cert-snakeoil.pem",
];

/// A directory and which of its names are build state.
type Rule = (&'static str, fn(&str) -> bool);

/// Normalises the tree at `rootfs` (see the module doc); returns the paths
/// it removed or changed, for `--json` and the tests.
pub fn normalise(rootfs: &Path, epoch: Option<i64>) -> Result<Vec<PathBuf>, FsError> {
    let root = Root::open(rootfs)?;
    let mut changed = Vec::new();
    for d in EMPTIED {
        remove_files_below(&root, Path::new(d), &mut changed)?;
    }
    for f in REMOVED {
        remove_if_there(&root, Path::new(f), &mut changed)?;
    }
    let rules: [Rule; 4] = [
        ("var/lib/dpkg", |n: &str| n.ends_with("-old")),
        ("var/cache/debconf", |n: &str| n.ends_with("-old")),
        ("etc", |n: &str| n.ends_with('-') && n.len() > 1),
        ("etc/ssh", |n: &str| n.starts_with("ssh_host_")),
    ];
    for (dir, keep) in rules {
        for name in root.list(Path::new(dir))? {
            let n = name.to_string_lossy();
            if keep(&n) {
                remove_if_there(&root, &Path::new(dir).join(&name), &mut changed)?;
            }
        }
    }
    let mid = Path::new("etc/machine-id");
    if root.kind(mid)? == Some(Kind::File) {
        let now = root.read_regular(mid, 4096)?;
        let t = String::from_utf8_lossy(&now);
        if !t.trim().is_empty() && t.trim() != "uninitialized" {
            root.write(mid, b"uninitialized\n", 0o444)?;
            changed.push(mid.to_path_buf());
        }
    }
    if let Some(epoch) = epoch {
        clamp_shadow(&root, epoch, &mut changed)?;
    }
    Ok(changed)
}

fn remove_if_there(root: &Root, rel: &Path, changed: &mut Vec<PathBuf>) -> Result<(), FsError> {
    if root.kind(rel)?.is_some() {
        root.remove_all(rel)?;
        changed.push(rel.to_path_buf());
    }
    Ok(())
}

/// Removes every non-directory below `rel`, keeping the directories.
fn remove_files_below(root: &Root, rel: &Path, changed: &mut Vec<PathBuf>) -> Result<(), FsError> {
    if root.kind(rel)? != Some(Kind::Dir) {
        return Ok(()); // absent, or a link: nothing of ours to clean there
    }
    for name in root.list(rel)? {
        let p = rel.join(name);
        match root.kind(&p)? {
            Some(Kind::Dir) => remove_files_below(root, &p, changed)?,
            Some(_) => {
                root.remove_all(&p)?;
                changed.push(p);
            }
            None => {}
        }
    }
    Ok(())
}

/// Field 3 of `/etc/shadow` is the day of the last password change, written
/// by the build's own clock; clamp it to `SOURCE_DATE_EPOCH`'s day.
fn clamp_shadow(root: &Root, epoch: i64, changed: &mut Vec<PathBuf>) -> Result<(), FsError> {
    let rel = Path::new("etc/shadow");
    if root.kind(rel)? != Some(Kind::File) {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&root.read_regular(rel, 16 << 20)?).into_owned();
    let day = (epoch / 86400).to_string();
    let out = clamp_shadow_text(&text, epoch / 86400, &day);
    if out != text {
        root.write(rel, out.as_bytes(), 0o640)?;
        changed.push(rel.to_path_buf());
    }
    Ok(())
}

fn clamp_shadow_text(text: &str, max_day: i64, day: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let (body, nl) = line.strip_suffix('\n').map_or((line, ""), |b| (b, "\n"));
        let mut f: Vec<&str> = body.split(':').collect();
        if f.len() > 2 && f[2].parse::<i64>().is_ok_and(|d| d > max_day) {
            f[2] = day;
        }
        out.push_str(&f.join(":"));
        out.push_str(nl);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shadow_days_after_the_epoch_are_clamped_and_others_kept() {
        let t = "root:*:20400:0:99999:7:::\nbin:*:19000:0:99999:7:::\n";
        assert_eq!(
            clamp_shadow_text(t, 19675, "19675"),
            "root:*:19675:0:99999:7:::\nbin:*:19000:0:99999:7:::\n"
        );
    }

    #[test]
    fn build_state_goes_and_the_tree_stays() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        for p in ["var/log/apt", "etc/ssh", "var/lib/dpkg", "tmp"] {
            std::fs::create_dir_all(r.join(p)).unwrap();
        }
        for p in [
            "var/log/dpkg.log",
            "var/log/apt/history.log",
            "etc/ssh/ssh_host_ed25519_key",
            "etc/ssh/sshd_config",
            "var/lib/dpkg/status-old",
            "var/lib/dpkg/status",
            "etc/passwd-",
            "etc/passwd",
            "tmp/x",
        ] {
            std::fs::write(r.join(p), "x").unwrap();
        }
        std::fs::write(r.join("etc/machine-id"), "0123456789abcdef\n").unwrap();
        // A link a package left must not lead the clean-up outside.
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("keep"), "x").unwrap();
        std::os::unix::fs::symlink(outside.path(), r.join("var/cache")).unwrap();
        let changed = normalise(r, None).unwrap();
        assert!(changed.len() >= 6, "{changed:?}");
        for gone in [
            "var/log/dpkg.log",
            "var/log/apt/history.log",
            "etc/ssh/ssh_host_ed25519_key",
            "var/lib/dpkg/status-old",
            "etc/passwd-",
            "tmp/x",
        ] {
            assert!(!r.join(gone).exists(), "{gone}");
        }
        for kept in [
            "var/log/apt",
            "etc/ssh/sshd_config",
            "var/lib/dpkg/status",
            "etc/passwd",
        ] {
            assert!(r.join(kept).exists(), "{kept}");
        }
        assert_eq!(
            std::fs::read_to_string(r.join("etc/machine-id")).unwrap(),
            "uninitialized\n"
        );
        assert!(outside.path().join("keep").exists());
    }
}
