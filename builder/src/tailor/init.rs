//! Which init a rootfs boots, decided at build time so the runtime knows
//! how to stop it (SIGRTMIN+3 for systemd, SIGPWR for sysvinit).

use std::path::{Component, Path, PathBuf};
use vbuild_kernel::fsroot::{Kind, Root};
use vbuild_runtime::config::{InitConfig, InitKind};

/// Asks the distribution's package database whether its sysvinit package
/// owns the init program (`true` settles it as sysvinit).
pub type OwnedBySysvinit<'a> = &'a dyn Fn(&Root) -> bool;

/// The init of `rootfs`: `/sbin/init` is followed through symlinks inside
/// the rootfs; systemd when it ends at systemd's binary, sysvinit when it
/// is sysvinit's init (owned by the sysvinit package as the distribution's
/// database says, or carrying its banner), otherwise `Other` (also when
/// there is no /sbin/init, as in minbase).
pub fn detect_init(rootfs: &Path, owned_by_sysvinit: OwnedBySysvinit<'_>) -> InitConfig {
    let kind = Root::open(rootfs)
        .ok()
        .and_then(|root| {
            let target = resolve(&root, Path::new("/sbin/init"))?;
            Some(classify(&root, &target, owned_by_sysvinit))
        })
        .unwrap_or(InitKind::Other);
    InitConfig {
        path: "/sbin/init".into(),
        args: vec![],
        kind,
    }
}

/// Follows symlinks of `path` (every component) inside the root; `None`
/// when it does not end at a regular file.
fn resolve(root: &Root, path: &Path) -> Option<PathBuf> {
    let mut todo: Vec<PathBuf> = path.components().rev().filter_map(normal).collect();
    let mut cur = PathBuf::from("/");
    let mut hops = 0;
    while let Some(c) = todo.pop() {
        if c.as_os_str() == ".." {
            cur.pop();
            continue;
        }
        let next = cur.join(&c);
        match root.kind(&next).ok()?? {
            Kind::Symlink => {
                hops += 1;
                if hops > 40 {
                    return None;
                }
                let t = root.read_link(&next).ok()?;
                if t.is_absolute() {
                    cur = PathBuf::from("/");
                }
                todo.extend(t.components().rev().filter_map(normal));
            }
            _ => cur = next,
        }
    }
    (root.kind(&cur).ok()?? == Kind::File).then_some(cur)
}

fn normal(c: Component<'_>) -> Option<PathBuf> {
    match c {
        Component::Normal(n) => Some(PathBuf::from(n)),
        Component::ParentDir => Some(PathBuf::from("..")),
        _ => None,
    }
}

fn classify(root: &Root, target: &Path, owned_by_sysvinit: OwnedBySysvinit<'_>) -> InitKind {
    if target.file_name().is_some_and(|n| n == "systemd") {
        return InitKind::Systemd;
    }
    if owned_by_sysvinit(root) {
        return InitKind::Sysvinit;
    }
    let banner = root
        .read(target)
        .map(|b| contains(&b, b"INIT_VERSION") || contains(&b, b"sysvinit "))
        .unwrap_or(false);
    if banner {
        InitKind::Sysvinit
    } else {
        InitKind::Other
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
