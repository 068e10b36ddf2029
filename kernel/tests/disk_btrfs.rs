//! The btrfs backend on a loop-mounted btrfs the test makes (root):
//! per-guest subvolumes with qgroup limits. Writing past a limit fails with
//! EDQUOT while the second guest keeps writing; the limit grows live;
//! shrinking below use is refused. The filesystem, its loop device and the
//! image are gone afterwards, also when an assertion fails.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use vbuild_kernel::disk::{backing_devices, probe, Backend, DiskLimit, LoopDevice};

fn is_root() -> bool {
    vbuild_testsupport::require(
        nix::unistd::geteuid().is_root(),
        "root (run the tests as root: sudo ./test.sh)",
    )
}

/// A btrfs in a sparse image, mounted at `mnt`; unmounted on drop, which
/// also frees the loop device (autoclear) — the TempDir then deletes all.
struct Btrfs {
    mnt: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Btrfs {
    fn new() -> Option<Btrfs> {
        let tmp = tempfile::tempdir().unwrap();
        let img = tmp.path().join("btrfs.img");
        std::fs::File::create(&img)
            .unwrap()
            .set_len(512 << 20)
            .unwrap();
        let made = Command::new("mkfs.btrfs").arg("-q").arg(&img).output();
        match made {
            Ok(o) if o.status.success() => {}
            other => {
                vbuild_testsupport::require(
                    false,
                    &format!("mkfs.btrfs ({other:?}); apt install btrfs-progs"),
                );
                return None;
            }
        }
        let mnt = tmp.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        let dev = LoopDevice::attach(&img).unwrap();
        nix::mount::mount(
            Some(dev.path()),
            &mnt,
            Some("btrfs"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .unwrap();
        Some(Btrfs { mnt, _tmp: tmp })
    }
}

impl Drop for Btrfs {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.mnt, nix::mount::MntFlags::MNT_DETACH);
    }
}

fn fill(path: &Path, bytes: usize) -> Result<(), std::io::Error> {
    let mut f = std::fs::File::create(path)?;
    let chunk = vec![0xa5u8; 1 << 20];
    for _ in 0..bytes.div_ceil(chunk.len()) {
        f.write_all(&chunk)?;
    }
    f.sync_all()
}

#[test]
fn btrfs_qgroups_limit_each_guest() {
    if !is_root() {
        return;
    }
    let Some(fs) = Btrfs::new() else { return };
    let guests = fs.mnt.join("guests");
    std::fs::create_dir(&guests).unwrap();
    assert_eq!(probe(&guests).unwrap().backend, Backend::Btrfs);

    let unused = guests.join("unused.img");
    let a = DiskLimit::create(Backend::Btrfs, &guests.join("a"), &unused, 32 << 20).unwrap();
    let b = DiskLimit::create(Backend::Btrfs, &guests.join("b"), &unused, 64 << 20).unwrap();
    assert_eq!(DiskLimit::find(a.dir(), &unused).unwrap(), a);
    assert!(!unused.exists());
    assert_eq!(a.usage().unwrap().limit, 32 << 20);

    let e = fill(&a.dir().join("big"), 64 << 20).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EDQUOT), "{e}");
    fill(&b.dir().join("ok"), 16 << 20).unwrap();
    let used = a.usage().unwrap().used;
    assert!(used > 16 << 20 && used <= 33 << 20, "{used}");

    // Below what is in use: refused, limit unchanged.
    let e = a.resize(8 << 20).unwrap_err().to_string();
    assert!(e.contains("in use"), "{e}");
    assert_eq!(a.usage().unwrap().limit, 32 << 20);

    // Grow live (no remount): the write that failed now fits.
    std::fs::remove_file(a.dir().join("big")).unwrap();
    a.resize(128 << 20).unwrap();
    assert_eq!(a.usage().unwrap().limit, 128 << 20);
    fill(&a.dir().join("big"), 64 << 20).unwrap();

    // I/O limits find the loop device under the btrfs.
    let devs = backing_devices(a.dir()).unwrap();
    assert_eq!(devs.len(), 1);
    assert_eq!(devs[0].0, 7);

    a.destroy().unwrap();
    a.destroy().unwrap();
    b.destroy().unwrap();
    assert!(!a.dir().exists() && !b.dir().exists());
    assert!(DiskLimit::find(a.dir(), &unused).is_none());
}
