//! A snapshot of a few files inside a guest's rootfs, taken through the
//! root-confined file API (no symlink followed, regular files and symlinks
//! only, bounded size), so a change that rewrites them can put them back
//! exactly: content and mode, symlink target, or absence.

use std::path::{Path, PathBuf};
use vbuild_kernel::fsroot::{Kind, Root};

/// Larger files are not what a guest's network configuration looks like.
const MAX_BYTES: u64 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Was {
    Absent,
    File { data: Vec<u8>, mode: u32 },
    Symlink(PathBuf),
}

/// What a set of guest paths held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSnapshot {
    entries: Vec<(PathBuf, Was)>,
}

impl FileSnapshot {
    /// Records `paths` (relative to `root`). A path that is a directory,
    /// device, fifo or socket, or a file over 1 MiB, is refused: restoring it
    /// could not be exact.
    pub fn take(root: &Root, paths: &[PathBuf]) -> Result<FileSnapshot, String> {
        let mut entries = Vec::new();
        for p in paths {
            let shown = p.display();
            let was = match root.kind(p).map_err(|e| e.to_string())? {
                None => Was::Absent,
                Some(Kind::Symlink) => Was::Symlink(root.read_link(p).map_err(|e| e.to_string())?),
                Some(Kind::File) => {
                    let fd = root
                        .open_at(p, libc::O_RDONLY | libc::O_CLOEXEC, 0, false)
                        .map_err(|e| e.to_string())?;
                    let f = std::fs::File::from(fd);
                    let meta = f.metadata().map_err(|e| format!("{shown}: {e}"))?;
                    if !meta.is_file() || meta.len() > MAX_BYTES {
                        return Err(format!("{shown}: not a small regular file"));
                    }
                    use std::io::Read;
                    let mut data = Vec::new();
                    (&f).take(MAX_BYTES + 1)
                        .read_to_end(&mut data)
                        .map_err(|e| format!("{shown}: {e}"))?;
                    use std::os::unix::fs::PermissionsExt;
                    Was::File {
                        data,
                        mode: meta.permissions().mode() & 0o7777,
                    }
                }
                Some(_) => return Err(format!("{shown}: not a file or symlink")),
            };
            entries.push((p.clone(), was));
        }
        Ok(FileSnapshot { entries })
    }

    /// Puts every path back as it was; tries them all and reports the first
    /// that could not be restored.
    pub fn restore(&self, root: &Root) -> Result<(), String> {
        let mut first = None;
        for (p, was) in &self.entries {
            let r = match was {
                Was::Absent => root.remove_all(p),
                Was::File { data, mode } => root.write(p, data, *mode),
                Was::Symlink(t) => root.symlink(p, t),
            };
            if let Err(e) = r {
                first.get_or_insert(e.to_string());
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// The paths recorded.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.entries.iter().map(|(p, _)| p.as_path())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restores_content_mode_links_and_absence() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("etc/x")).unwrap();
        std::fs::write(d.path().join("etc/a"), "old").unwrap();
        std::os::unix::fs::symlink("/etc/a", d.path().join("etc/l")).unwrap();
        let root = Root::open(d.path()).unwrap();
        let paths: Vec<PathBuf> = ["etc/a", "etc/l", "etc/new"]
            .iter()
            .map(PathBuf::from)
            .collect();
        let snap = FileSnapshot::take(&root, &paths).unwrap();
        root.write(Path::new("etc/a"), b"new", 0o600).unwrap();
        root.write(Path::new("etc/l"), b"file now", 0o644).unwrap();
        root.write(Path::new("etc/new"), b"x", 0o644).unwrap();
        snap.restore(&root).unwrap();
        assert_eq!(
            std::fs::read_to_string(d.path().join("etc/a")).unwrap(),
            "old"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.path().join("etc/a"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644);
        assert_eq!(
            std::fs::read_link(d.path().join("etc/l")).unwrap(),
            PathBuf::from("/etc/a")
        );
        assert!(!d.path().join("etc/new").exists());
        // A directory where a file is expected cannot be restored exactly.
        assert!(FileSnapshot::take(&root, &[PathBuf::from("etc/x")]).is_err());
    }
}
