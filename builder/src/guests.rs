//! The guest store: reserving a name for a build, and making sure a failed or
//! interrupted build leaves nothing behind.
//!
//! A guest exists exactly when `guests/NAME/guest.toml` exists: the config is
//! written last, after the rootfs is complete. While a build runs it holds
//! the guest store's build lock on `guests/.NAME.lock` (removed with the
//! lock, so lock files do not pile up); a directory without `guest.toml` and
//! without a lock holder is the remains of a killed build and is removed
//! here, at the next build of that name (and by `vbuild check --fix`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use vbuild_runtime::name::{GuestName, NameError};
use vbuild_runtime::paths::Layout;
use vbuild_runtime::store::{BuildLock, GuestStore};

/// Why a guest could not be reserved.
#[derive(Debug, thiserror::Error)]
pub enum SlotError {
    /// The name breaks the naming rule.
    #[error(transparent)]
    Name(#[from] NameError),
    /// A guest with this name exists.
    #[error("guest {0:?} already exists (pick another --name, or `vbuild delete {0}` first)")]
    Exists(String),
    /// Another build of the same name is running.
    #[error("guest {0:?} is being built by another vbuild process (wait for it, or pick another --name)")]
    Busy(String),
    /// The store could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SlotError {
    let path = path.to_path_buf();
    move |source| SlotError::Io { path, source }
}

/// A reserved guest name with its directory under construction. Dropping it
/// without [`GuestSlot::commit`] removes everything the build created.
pub struct GuestSlot {
    layout: Layout,
    name: GuestName,
    dir: PathBuf,
    _lock: BuildLock,
    committed: bool,
}

impl GuestSlot {
    /// Reserves `name`: checks the name, refuses an existing guest, takes the
    /// build lock, clears remains of an earlier killed build, and creates the
    /// guest directory (the rootfs itself is made by the disk backend).
    pub fn reserve(layout: &Layout, name: &str) -> Result<GuestSlot, SlotError> {
        let name = GuestName::parse(name)?;
        let guests = layout.guests_dir();
        std::fs::create_dir_all(&guests).map_err(io(&guests))?;
        let dir = layout.guest_dir(name.as_str());
        if layout.guest_config(name.as_str()).exists() {
            return Err(SlotError::Exists(name.to_string()));
        }
        let lock_path = guests.join(format!(".{name}.lock"));
        let lock = BuildLock::try_take(layout, name.as_str())
            .map_err(io(&lock_path))?
            .ok_or_else(|| SlotError::Busy(name.to_string()))?;
        // Re-check under the lock: a build may have finished meanwhile.
        if layout.guest_config(name.as_str()).exists() {
            return Err(SlotError::Exists(name.to_string()));
        }
        if dir.exists() {
            remove_tree(layout, name.as_str()).map_err(io(&dir))?;
        }
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        Ok(GuestSlot {
            layout: layout.clone(),
            name,
            dir,
            _lock: lock,
            committed: false,
        })
    }

    /// The guest's name.
    pub fn name(&self) -> &GuestName {
        &self.name
    }

    /// The guest's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Marks the build as complete: the caller has written `guest.toml`.
    pub fn commit(mut self) {
        self.committed = true;
    }
}

impl Drop for GuestSlot {
    fn drop(&mut self) {
        if !self.committed {
            let _ = remove_tree(&self.layout, self.name.as_str());
        }
    }
}

/// Removes a guest's directory (see `vbuild_runtime::store::remove_guest_tree`).
pub fn remove_tree(layout: &Layout, name: &str) -> std::io::Result<()> {
    vbuild_runtime::store::remove_guest_tree(layout, name)
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// The process that installed the handler: forked helpers inherit it, and
/// only vbuild itself speaks or exits on a Ctrl-C that reached them all.
static MAIN_PID: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn on_interrupt(_: libc::c_int) {
    const FIRST: &[u8] =
        b"\nvbuild: interrupting: stopping after the current step and removing what was made (Ctrl-C again to stop at once)\n";
    const SECOND: &[u8] = b"\nvbuild: stopped at once; the next build of this name (or `vbuild check`) removes what is left\n";
    let again = INTERRUPTED.swap(true, Ordering::SeqCst);
    // SAFETY: getpid(2) is async-signal-safe.
    if unsafe { libc::getpid() } != MAIN_PID.load(Ordering::SeqCst) {
        return;
    }
    let msg = if again { SECOND } else { FIRST };
    // SAFETY: write(2) and _exit(2) are async-signal-safe.
    unsafe {
        libc::write(2, msg.as_ptr().cast(), msg.len());
        if again {
            libc::_exit(130);
        }
    }
}

/// Makes Ctrl-C (SIGINT) and SIGTERM set a flag instead of killing the
/// process, so a build can stop at the next check (between two packages'
/// scripts at the latest) and clean up after itself; it says so at once. A
/// second one ends the process immediately; a build's lock and its
/// leftovers are then cleared by the next build of the name.
pub fn catch_interrupts() {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    MAIN_PID.store(std::process::id() as i32, Ordering::SeqCst);
    let action = SigAction::new(
        SigHandler::Handler(on_interrupt),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for sig in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        let _ = unsafe { sigaction(sig, &action) };
    }
}

/// True once Ctrl-C or SIGTERM arrived.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Names of every guest whose config exists, sorted.
pub fn names(layout: &Layout) -> std::io::Result<Vec<String>> {
    GuestStore::new(layout)
        .names()
        .map_err(|e| std::io::Error::other(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_build_leaves_nothing_and_names_are_checked_first() {
        let t = tempfile::tempdir().unwrap();
        let layout = Layout::new(Some(t.path()));
        assert!(matches!(
            GuestSlot::reserve(&layout, "../x"),
            Err(SlotError::Name(_))
        ));
        assert!(!layout.guests_dir().join("..").join("x").exists());
        {
            let slot = GuestSlot::reserve(&layout, "g1").unwrap();
            std::fs::write(slot.dir().join("partial"), "x").unwrap();
            // A second build of the same name is refused while the first runs.
            assert!(matches!(
                GuestSlot::reserve(&layout, "g1"),
                Err(SlotError::Busy(_))
            ));
        }
        assert!(!layout.guest_dir("g1").exists());
        assert!(
            !layout.guests_dir().join(".g1.lock").exists(),
            "no lock file piles up"
        );
        assert!(names(&layout).unwrap().is_empty());
    }

    #[test]
    fn committed_guest_is_listed_and_cannot_be_reserved_again() {
        let t = tempfile::tempdir().unwrap();
        let layout = Layout::new(Some(t.path()));
        let slot = GuestSlot::reserve(&layout, "g2").unwrap();
        std::fs::write(layout.guest_config("g2"), "").unwrap();
        slot.commit();
        assert_eq!(names(&layout).unwrap(), vec!["g2".to_string()]);
        let e = GuestSlot::reserve(&layout, "g2").err().unwrap().to_string();
        assert!(
            e.contains("already exists") && e.contains("vbuild delete g2"),
            "{e}"
        );
    }

    #[test]
    fn remains_of_a_killed_build_are_cleared() {
        let t = tempfile::tempdir().unwrap();
        let layout = Layout::new(Some(t.path()));
        std::fs::create_dir_all(layout.guest_rootfs("g3").join("etc")).unwrap();
        let slot = GuestSlot::reserve(&layout, "g3").unwrap();
        assert!(!layout.guest_rootfs("g3").join("etc").exists());
        drop(slot);
    }
}
