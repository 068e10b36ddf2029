//! Guest names are host-wide. A guest's cgroup (`vbuild/NAME`), its veth
//! (`vb-…`), its nf_tables tables (`vbuild-g-NAME`) and its addresses on a
//! shared bridge are named after the guest on the one kernel, whatever
//! state root (`--root`) it was built in. So a running name belongs to one
//! state root at a time: `start` claims it in a registry every root shares
//! (`/run/vbuild-names/NAME`, a one-line file naming the state root, written
//! under an flock on the registry's `.lock`), cleanup releases it, and a
//! second root is refused with a message naming the first.
//!
//! Addresses on a bridge are host-wide the same way: two state roots whose
//! networks share a bridge (both default to `vbuild0`) keep separate
//! lease files, so each could hand out 10.77.0.11. `start` also claims
//! every address of a bridged guest in `/run/vbuild-names/addr/BRIDGE/IP`
//! (two lines: state root, guest), refused while another running guest
//! holds one; cleanup releases them with the name.
//!
//! A claim whose root no longer runs the guest (its supervisor and init are
//! gone: a crash, a reboot of the state root's machine state) is stale and
//! taken over.

use crate::error::{io, RuntimeError};
use crate::paths::{Layout, DEFAULT_ROOT};
use crate::state::{Liveness, State};
use nix::fcntl::{Flock, FlockArg};
use std::fs::File;
use std::path::{Path, PathBuf};

fn registry_lock(layout: &Layout) -> Result<Flock<File>, RuntimeError> {
    let dir = layout.names_dir();
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let p = dir.join(".lock");
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&p)
        .map_err(io(&p))?;
    Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, e)| RuntimeError::Io {
        path: p,
        source: e.into(),
    })
}

fn claim_path(layout: &Layout, name: &str) -> PathBuf {
    layout.names_dir().join(name)
}

/// The state root as recorded: absolute and canonical where it exists, so
/// `--root ./b` and `--root /abs/b` are the same root.
fn canonical_root(layout: &Layout) -> PathBuf {
    std::fs::canonicalize(layout.root()).unwrap_or_else(|_| layout.root().to_path_buf())
}

fn read_claim(path: &Path) -> Result<Option<PathBuf>, RuntimeError> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(PathBuf::from(t.trim_end_matches('\n')))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(path)(e)),
    }
}

/// The layout of state root `root`, sharing `like`'s name registry.
fn layout_of_root(root: &Path, like: &Layout) -> Layout {
    let l = if root == Path::new(DEFAULT_ROOT) {
        Layout::new(None)
    } else {
        Layout::new(Some(root))
    };
    l.with_names_dir(like.names_dir())
}

/// Whether state root `root` runs guest `name` right now (init alive, or
/// its supervisor still cleaning up).
fn runs_there(root: &Path, name: &str, like: &Layout) -> bool {
    match State::load(&layout_of_root(root, like), name) {
        Ok(Some(st)) => st.liveness() != Liveness::Stale,
        _ => false,
    }
}

/// The other state root that runs a guest named `name`, if any (a claim
/// by this root, or a stale one, is no other root's).
pub fn held_elsewhere(layout: &Layout, name: &str) -> Result<Option<PathBuf>, RuntimeError> {
    let _l = registry_lock(layout)?;
    let mine = canonical_root(layout);
    Ok(read_claim(&claim_path(layout, name))?
        .filter(|root| *root != mine && runs_there(root, name, layout)))
}

/// Claims `name` for this layout's state root before a start makes
/// anything named after it. Refused with `NameTaken` while another root
/// runs a guest of that name; a stale claim is taken over; our own claim
/// is kept.
pub fn claim(layout: &Layout, name: &str) -> Result<(), RuntimeError> {
    let _l = registry_lock(layout)?;
    let path = claim_path(layout, name);
    let mine = canonical_root(layout);
    match read_claim(&path)? {
        Some(root) if root == mine => return Ok(()),
        Some(root) if runs_there(&root, name, layout) => {
            return Err(RuntimeError::NameTaken {
                name: name.to_string(),
                root,
            })
        }
        _ => {}
    }
    let mut line = mine.into_os_string().into_encoded_bytes();
    line.push(b'\n');
    crate::fsutil::write_atomic(&path, &line).map_err(io(&path))
}

/// Gives `name` back, when this root holds it (idempotent; another root's
/// claim is never touched).
pub fn release(layout: &Layout, name: &str) -> Result<(), RuntimeError> {
    let _l = registry_lock(layout)?;
    let path = claim_path(layout, name);
    if read_claim(&path)? == Some(canonical_root(layout)) {
        crate::fsutil::remove_file_if_exists(&path).map_err(io(&path))?;
    }
    Ok(())
}

fn addr_dir(layout: &Layout) -> PathBuf {
    layout.names_dir().join("addr")
}

/// Who holds an address claim: its state root and guest.
fn read_addr_claim(path: &Path) -> Result<Option<(PathBuf, String)>, RuntimeError> {
    match std::fs::read_to_string(path) {
        Ok(t) => {
            let mut l = t.lines();
            let root = PathBuf::from(l.next().unwrap_or_default());
            let guest = l.next().unwrap_or_default().to_string();
            Ok(Some((root, guest)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(path)(e)),
    }
}

/// Claims `addrs` on bridge `bridge` for guest `name` of this state root,
/// all or none. Refused with `AddressTaken` when another guest that runs
/// now (of any state root, this one included) holds one of them; stale
/// claims are taken over, our own are kept.
pub fn claim_addresses(
    layout: &Layout,
    name: &str,
    bridge: &str,
    addrs: &[std::net::IpAddr],
) -> Result<(), RuntimeError> {
    if addrs.is_empty() {
        return Ok(());
    }
    let _l = registry_lock(layout)?;
    let mine = canonical_root(layout);
    let dir = addr_dir(layout).join(bridge);
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    for a in addrs {
        if let Some((root, guest)) = read_addr_claim(&dir.join(a.to_string()))? {
            let ours = root == mine && guest == name;
            if !ours && runs_there(&root, &guest, layout) {
                return Err(RuntimeError::AddressTaken {
                    name: name.to_string(),
                    addr: *a,
                    bridge: bridge.to_string(),
                    guest,
                    root,
                });
            }
        }
    }
    let mut text = mine.into_os_string().into_encoded_bytes();
    text.push(b'\n');
    text.extend_from_slice(name.as_bytes());
    text.push(b'\n');
    for a in addrs {
        let p = dir.join(a.to_string());
        crate::fsutil::write_atomic(&p, &text).map_err(io(&p))?;
    }
    Ok(())
}

/// Gives back every address guest `name` of this state root holds
/// (idempotent; other guests' claims are never touched).
pub fn release_addresses(layout: &Layout, name: &str) -> Result<(), RuntimeError> {
    let _l = registry_lock(layout)?;
    let mine = canonical_root(layout);
    let top = addr_dir(layout);
    let bridges = match std::fs::read_dir(&top) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(&top)(e)),
    };
    for b in bridges.flatten() {
        let Ok(entries) = std::fs::read_dir(b.path()) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if read_addr_claim(&p)?.is_some_and(|(r, g)| r == mine && g == name) {
                crate::fsutil::remove_file_if_exists(&p).map_err(io(&p))?;
            }
        }
        // An empty bridge directory goes too (busy ones stay).
        let _ = std::fs::remove_dir(b.path());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake running guest of `layout`: a state file naming this process
    /// as init and supervisor, so it counts as alive.
    fn pretend_running(layout: &Layout, name: &str) {
        let me = std::process::id() as i32;
        let start = vbuild_kernel::process::stat(me).unwrap().start_ticks;
        std::fs::create_dir_all(layout.run_dir(name)).unwrap();
        State {
            id_base: 0,
            state_saves: 0,
            name: name.into(),
            supervisor_pid: me,
            supervisor_start: start,
            init_pid: me,
            init_start: start,
            started_at: 0,
            cgroup: crate::store::cgroup_name(name),
            boot_id: "x".into(),
            init_kind: crate::config::InitKind::Other,
            userns: false,
            ready: false,
            status_text: None,
        }
        .save(layout)
        .unwrap();
    }

    /// Two state roots under `dir` that share one names directory, as two
    /// vbuild installations on one host do.
    fn two_roots(dir: &Path) -> (PathBuf, Layout, Layout) {
        let names = dir.join("names");
        let a = Layout::new(Some(&dir.join("a"))).with_names_dir(&names);
        let b = Layout::new(Some(&dir.join("b"))).with_names_dir(&names);
        std::fs::create_dir_all(a.root()).unwrap();
        std::fs::create_dir_all(b.root()).unwrap();
        (names, a, b)
    }

    #[test]
    fn a_running_name_belongs_to_one_root_and_a_stale_claim_is_taken_over() {
        let d = tempfile::tempdir().unwrap();
        let (names, a, b) = two_roots(d.path());
        claim(&a, "ux1").unwrap();
        claim(&a, "ux1").unwrap(); // ours already
        pretend_running(&a, "ux1");
        let e = claim(&b, "ux1").unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, RuntimeError::NameTaken { .. }), "{text}");
        assert!(text.contains(&a.root().display().to_string()), "{text}");
        assert!(text.contains("ux1"), "{text}");
        assert_eq!(
            held_elsewhere(&b, "ux1").unwrap().as_deref(),
            Some(std::fs::canonicalize(a.root()).unwrap().as_path())
        );
        assert_eq!(held_elsewhere(&a, "ux1").unwrap(), None);
        // B releasing does not free A's claim.
        release(&b, "ux1").unwrap();
        assert!(claim(&b, "ux1").is_err());
        // A's guest is gone without cleanup (state left, processes dead):
        // the claim is stale and B takes it over.
        crate::state::clear(&a, "ux1");
        claim(&b, "ux1").unwrap();
        let recorded =
            |l: &Layout| read_claim(&names.join("ux1")).unwrap() == Some(canonical_root(l));
        assert!(recorded(&b));
        // B does not run it either: A may take it back.
        claim(&a, "ux1").unwrap();
        assert!(recorded(&a));
        release(&b, "ux1").unwrap();
        assert!(recorded(&a), "a release by another root changes nothing");
        release(&a, "ux1").unwrap();
        assert!(!names.join("ux1").exists());
    }

    #[test]
    fn an_address_on_a_bridge_belongs_to_one_running_guest() {
        let d = tempfile::tempdir().unwrap();
        let (names, a, b) = two_roots(d.path());
        let ip: std::net::IpAddr = "10.77.0.11".parse().unwrap();
        let ip6: std::net::IpAddr = "fd77::11".parse().unwrap();
        let other: std::net::IpAddr = "10.77.0.12".parse().unwrap();
        claim_addresses(&a, "ux1", "vbuild0", &[ip, ip6]).unwrap();
        claim_addresses(&a, "ux1", "vbuild0", &[ip, ip6]).unwrap(); // ours already
        pretend_running(&a, "ux1");
        // Another root's guest of another name, same address, same bridge.
        let e = claim_addresses(&b, "web", "vbuild0", &[other, ip6]).unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, RuntimeError::AddressTaken { .. }), "{text}");
        for want in [
            "fd77::11",
            "vbuild0",
            "ux1",
            "web",
            &a.root().display().to_string(),
        ] {
            assert!(text.contains(want), "{want} missing: {text}");
        }
        // All or none: the free address was not taken either.
        assert!(!names.join("addr/vbuild0/10.77.0.12").exists());
        // A guest of the same root is refused the same way.
        assert!(claim_addresses(&a, "ux2", "vbuild0", &[ip]).is_err());
        // Another bridge is another link: the same address is fine there.
        claim_addresses(&b, "web", "lan0", &[ip]).unwrap();
        // B's release leaves A's claims alone.
        release_addresses(&b, "web").unwrap();
        assert!(claim_addresses(&b, "web", "vbuild0", &[ip]).is_err());
        assert!(!names.join("addr/lan0/10.77.0.11").exists());
        // A's guest gone without cleanup: stale, B takes the address over.
        crate::state::clear(&a, "ux1");
        claim_addresses(&b, "web", "vbuild0", &[ip]).unwrap();
        release_addresses(&b, "web").unwrap();
        release_addresses(&a, "ux1").unwrap();
        release_addresses(&a, "ux1").unwrap(); // idempotent
        let left: Vec<_> = std::fs::read_dir(names.join("addr"))
            .unwrap()
            .flatten()
            .collect();
        assert!(
            left.is_empty(),
            "nothing left, not even a bridge dir: {left:?}"
        );
    }
}
