//! Unifying identical files across templates (Linux-VServer's `vhashify`
//! idea): regular files with the same content, mode, owner and extended
//! attributes become one inode, hard-linked. Only inside the templates
//! store (every path is below a template's `rootfs/`, and links never
//! leave the store's filesystem), and only because templates are never
//! written after they are built. A guest's overlay copies a file up before
//! changing it, so a guest never writes through a shared inode.
//!
//! A template a running guest has mounted as its overlay's lower layer is
//! only ever the kept side: overlayfs leaves changes to a mounted lower
//! layer undefined, so none of its directory entries is replaced (a link
//! to one of its inodes only raises that inode's link count). A replaced
//! file takes the kept file's inode, so its mtime and inode number become
//! the kept file's; content, mode, owner and xattrs are equal by the key.

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::ffi::CString;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What a dedupe pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DedupeReport {
    /// Regular files looked at.
    pub files: u64,
    /// Files replaced by a link to an identical one.
    pub linked: u64,
    /// Bytes no longer stored twice.
    pub bytes_saved: u64,
    /// Files left as they were because their template is in use by a
    /// running guest (they may still be the kept side of a link).
    pub skipped_in_use: u64,
}

/// Everything that must match for two files to share an inode.
#[derive(Hash, PartialEq, Eq)]
struct Key {
    size: u64,
    mode: u32,
    uid: u32,
    gid: u32,
    dev: u64,
    digest: [u8; 32],
}

fn xattrs(path: &Path) -> std::io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    let mut names = vec![0u8; 4096];
    // SAFETY: llistxattr into our buffer of the given size.
    let n = unsafe { libc::llistxattr(c.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    names.truncate(n as usize);
    let mut out = Vec::new();
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let cn = CString::new(name).map_err(std::io::Error::other)?;
        let mut value = vec![0u8; 65536];
        // SAFETY: lgetxattr into our buffer of the given size.
        let v = unsafe {
            libc::lgetxattr(
                c.as_ptr(),
                cn.as_ptr(),
                value.as_mut_ptr().cast(),
                value.len(),
            )
        };
        if v < 0 {
            return Err(std::io::Error::last_os_error());
        }
        value.truncate(v as usize);
        out.push((name.to_vec(), value));
    }
    out.sort();
    Ok(out)
}

fn digest(path: &Path, attrs: &[(Vec<u8>, Vec<u8>)]) -> std::io::Result<[u8; 32]> {
    let mut h = Sha256::new();
    for (n, v) in attrs {
        h.update((n.len() as u64).to_le_bytes());
        h.update(n);
        h.update((v.len() as u64).to_le_bytes());
        h.update(v);
    }
    h.update(b"\0content\0");
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().into())
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let t = e.file_type()?;
        if t.is_dir() {
            walk(&e.path(), out)?;
        } else if t.is_file() {
            out.push(e.path());
        }
    }
    Ok(())
}

/// Hard-links identical regular files across the root filesystems `roots`
/// (the templates' `rootfs/` directories). Files already sharing an inode
/// are counted once; empty files are left alone. The roots in `in_use`
/// (templates with a running guest) are walked first and never changed:
/// their files are only the kept side.
pub fn dedupe(roots: &[PathBuf], in_use: &[PathBuf]) -> std::io::Result<DedupeReport> {
    let mut files = Vec::new();
    for r in in_use {
        walk(r, &mut files)?;
    }
    let frozen = files.len();
    for r in roots.iter().filter(|r| !in_use.contains(r)) {
        walk(r, &mut files)?;
    }
    let mut report = DedupeReport {
        files: files.len() as u64,
        ..Default::default()
    };
    let mut first: HashMap<Key, (PathBuf, u64)> = HashMap::new();
    for (i, f) in files.into_iter().enumerate() {
        let md = f.symlink_metadata()?;
        if !md.is_file() || md.len() == 0 {
            continue;
        }
        let attrs = xattrs(&f)?;
        let key = Key {
            size: md.len(),
            mode: md.mode(),
            uid: md.uid(),
            gid: md.gid(),
            dev: md.dev(),
            digest: digest(&f, &attrs)?,
        };
        match first.get(&key) {
            None => {
                first.insert(key, (f, md.ino()));
            }
            Some((_, ino)) if *ino == md.ino() => {}
            Some(_) if i < frozen => report.skipped_in_use += 1,
            Some((keep, _)) => {
                // Link beside it, then rename over: the path always names
                // a whole file.
                let tmp = f.with_file_name(format!(
                    ".vbuild-dedupe-{}",
                    f.file_name()
                        .map(|n| n.to_string_lossy())
                        .unwrap_or_default()
                ));
                let _ = std::fs::remove_file(&tmp);
                std::fs::hard_link(keep, &tmp)?;
                std::fs::rename(&tmp, &f)?;
                report.linked += 1;
                if md.nlink() == 1 {
                    report.bytes_saved += md.len();
                }
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn only_identical_files_are_linked_and_contents_stay() {
        let t = tempfile::tempdir().unwrap();
        let (a, b) = (t.path().join("a/rootfs"), t.path().join("b/rootfs"));
        for r in [&a, &b] {
            std::fs::create_dir_all(r.join("etc")).unwrap();
            std::fs::write(r.join("etc/same"), "same content\n").unwrap();
        }
        std::fs::write(a.join("etc/differs"), "one\n").unwrap();
        std::fs::write(b.join("etc/differs"), "two\n").unwrap();
        std::fs::write(a.join("etc/mode"), "m\n").unwrap();
        std::fs::write(b.join("etc/mode"), "m\n").unwrap();
        std::fs::set_permissions(b.join("etc/mode"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
        std::fs::write(a.join("etc/attr"), "x\n").unwrap();
        std::fs::write(b.join("etc/attr"), "x\n").unwrap();
        let c = CString::new(b.join("etc/attr").as_os_str().as_bytes()).unwrap();
        // SAFETY: setxattr with NUL-terminated strings and a small value.
        let r =
            unsafe { libc::setxattr(c.as_ptr(), c"user.v".as_ptr(), b"1".as_ptr().cast(), 1, 0) };
        let have_xattr = r == 0;
        let outside = t.path().join("outside");
        std::fs::write(&outside, "same content\n").unwrap();

        let r = dedupe(&[a.clone(), b.clone()], &[]).unwrap();
        let ino = |p: &Path| p.metadata().unwrap().ino();
        assert_eq!(ino(&a.join("etc/same")), ino(&b.join("etc/same")));
        assert_ne!(ino(&a.join("etc/differs")), ino(&b.join("etc/differs")));
        assert_ne!(
            ino(&a.join("etc/mode")),
            ino(&b.join("etc/mode")),
            "modes differ"
        );
        if have_xattr {
            assert_ne!(
                ino(&a.join("etc/attr")),
                ino(&b.join("etc/attr")),
                "xattrs differ"
            );
        }
        assert_eq!(
            outside.metadata().unwrap().nlink(),
            1,
            "never outside the store"
        );
        assert_eq!(
            std::fs::read_to_string(b.join("etc/differs")).unwrap(),
            "two\n"
        );
        assert_eq!(
            std::fs::read_to_string(b.join("etc/same")).unwrap(),
            "same content\n"
        );
        assert_eq!(r.linked, if have_xattr { 1 } else { 2 });
        assert_eq!(r.bytes_saved, if have_xattr { 13 } else { 15 });
        // A second pass finds nothing more to do.
        assert_eq!(dedupe(&[a, b], &[]).unwrap().linked, 0);
    }

    #[test]
    fn a_template_in_use_is_only_the_kept_side() {
        let t = tempfile::tempdir().unwrap();
        let (a, b, c) = (
            t.path().join("a/rootfs"),
            t.path().join("b/rootfs"),
            t.path().join("c/rootfs"),
        );
        for r in [&a, &b, &c] {
            std::fs::create_dir_all(r).unwrap();
            std::fs::write(r.join("same"), "same content\n").unwrap();
        }
        // a and b are mounted by running guests; c is not.
        let ino = |p: &Path| p.metadata().unwrap().ino();
        let (ia, ib) = (ino(&a.join("same")), ino(&b.join("same")));
        let r = dedupe(&[a.clone(), b.clone(), c.clone()], &[b.clone(), a.clone()]).unwrap();
        assert_eq!(
            ino(&a.join("same")),
            ia,
            "an in-use template is never changed"
        );
        assert_eq!(
            ino(&b.join("same")),
            ib,
            "an in-use template is never changed"
        );
        assert!(
            [ia, ib].contains(&ino(&c.join("same"))),
            "the free template links to an in-use one's inode"
        );
        assert_eq!((r.linked, r.skipped_in_use), (1, 1));
        assert_eq!(
            std::fs::read_to_string(c.join("same")).unwrap(),
            "same content\n"
        );
    }
}
