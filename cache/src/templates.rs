//! The templates store: `templates/ID/` holds one built root filesystem
//! (`rootfs/`) and `template.toml`. A template is built in
//! `templates/.build-ID/` under an exclusive lock and renamed into place
//! with its metadata already inside, so a crash leaves either nothing under
//! `templates/ID` or a whole template; the remains of a killed build carry
//! no lock holder and are removed by the next build of that id or by
//! `leftovers`/`remove_leftovers` (`vbuild check --fix`). The builder
//! decides the ids (a hash of everything that went in); this store only
//! keeps them apart. Templates are never written after the rename: guests
//! see them as a shared read-only lower layer.

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::path::{Path, PathBuf};

/// What `template list` shows about one template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateMeta {
    /// Its id (the directory name).
    pub id: String,
    /// `debian`.
    pub distro: String,
    /// `bookworm`.
    pub release: String,
    /// `minbase`.
    pub variant: String,
    /// Packages installed, `name=version`, sorted.
    pub packages: Vec<String>,
    /// Bytes unpacked.
    pub size: u64,
    /// Seconds since the epoch.
    pub created: u64,
}

/// What a request resolved to, remembered under a key the builder makes
/// from everything the resolution read (the signed indices' digest and the
/// request): an identical request later finds its template without
/// parsing the indices or resolving again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resolution {
    /// The template it was built as.
    pub id: String,
    /// The variant resolved (`minbase`).
    pub variant: String,
    /// Packages in the set.
    pub packages: usize,
    /// Bytes of their package files.
    pub package_bytes: u64,
}

/// Where resolutions are remembered: `templates/.resolved/KEY`; not a
/// template (its name is no id), so `list`, `leftovers` and `dedupe` pass
/// it by.
const RESOLVED: &str = ".resolved";

/// The store under `dir` (`ROOT/templates`).
#[derive(Debug, Clone)]
pub struct TemplateStore {
    dir: PathBuf,
}

/// A template being built; dropped without `commit` it is removed.
#[derive(Debug)]
pub struct TemplateBuild {
    tmp: PathBuf,
    dest: PathBuf,
    _lock: Flock<File>,
    done: bool,
}

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

fn bad_id(id: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("{id:?} is not a template id (hex digits, as `vbuild template list` shows)"),
    )
}

impl TemplateStore {
    /// The store at `dir` (created on first build).
    pub fn new(dir: &Path) -> TemplateStore {
        TemplateStore {
            dir: dir.to_path_buf(),
        }
    }

    /// Template `id`'s directory.
    pub fn path(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Template `id`'s root filesystem.
    pub fn rootfs(&self, id: &str) -> PathBuf {
        self.path(id).join("rootfs")
    }

    /// Template `id`'s metadata when it exists (complete).
    pub fn get(&self, id: &str) -> Option<TemplateMeta> {
        if !valid_id(id) {
            return None;
        }
        let text = std::fs::read_to_string(self.path(id).join("template.toml")).ok()?;
        toml::from_str(&text).ok()
    }

    /// Every complete template, oldest first.
    pub fn list(&self) -> std::io::Result<Vec<TemplateMeta>> {
        let rd = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(e),
        };
        let mut out: Vec<TemplateMeta> = rd
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter_map(|n| self.get(&n))
            .collect();
        out.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        Ok(out)
    }

    /// The resolution remembered under `key`, when its template still
    /// exists (a removed template's entries are stale, not errors).
    pub fn resolution(&self, key: &str) -> Option<Resolution> {
        if !valid_id(key) {
            return None;
        }
        let text = std::fs::read_to_string(self.dir.join(RESOLVED).join(key)).ok()?;
        let r: Resolution = toml::from_str(&text).ok()?;
        valid_id(&r.id)
            .then(|| self.path(&r.id).join("template.toml"))
            .filter(|p| p.is_file())
            .map(|_| r)
    }

    /// Remembers `r` under `key` (written aside and renamed: a reader sees
    /// the old entry, the new one or none; losing one only costs a full
    /// resolution, so it is not synced).
    pub fn remember(&self, key: &str, r: &Resolution) -> std::io::Result<()> {
        if !valid_id(key) {
            return Err(bad_id(key));
        }
        let dir = self.dir.join(RESOLVED);
        std::fs::create_dir_all(&dir)?;
        let text = toml::to_string(r).map_err(std::io::Error::other)?;
        let tmp = dir.join(format!(".{key}.{}", std::process::id()));
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, dir.join(key)).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
    }

    /// Drops the remembered resolutions that lead to template `id`.
    fn forget(&self, id: &str) -> std::io::Result<()> {
        let dir = self.dir.join(RESOLVED);
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        for e in rd.flatten() {
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            let stale = toml::from_str::<Resolution>(&text).map_or(true, |r| r.id == id);
            if stale {
                match std::fs::remove_file(e.path()) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
        }
        Ok(())
    }

    fn lock(&self, id: &str, wait: bool) -> std::io::Result<Option<Flock<File>>> {
        std::fs::create_dir_all(&self.dir)?;
        let f = File::create(self.dir.join(format!(".{id}.lock")))?;
        let arg = if wait {
            FlockArg::LockExclusive
        } else {
            FlockArg::LockExclusiveNonblock
        };
        match Flock::lock(f, arg) {
            Ok(l) => Ok(Some(l)),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
            Err((_, e)) => Err(e.into()),
        }
    }

    /// Starts building template `id`: waits for another build of the same
    /// id, then returns `Ok(None)` if that one finished it, else an empty
    /// `rootfs/` to fill (remains of a killed build are cleared first).
    pub fn begin(&self, id: &str) -> std::io::Result<Option<TemplateBuild>> {
        if !valid_id(id) {
            return Err(bad_id(id));
        }
        let lock = self.lock(id, true)?.expect("waited");
        let dest = self.path(id);
        if self.get(id).is_some() {
            return Ok(None);
        }
        let tmp = self.dir.join(format!(".build-{id}"));
        remove_tree(&tmp)?;
        std::fs::create_dir_all(tmp.join("rootfs"))?;
        Ok(Some(TemplateBuild {
            tmp,
            dest,
            _lock: lock,
            done: false,
        }))
    }

    /// Removes template `id` (the caller checked no guest uses it): renamed
    /// aside first, so a crash never leaves a half-removed template under
    /// its id.
    pub fn remove(&self, id: &str) -> std::io::Result<()> {
        if !valid_id(id) {
            return Err(bad_id(id));
        }
        let _l = self.lock(id, true)?;
        self.forget(id)?;
        let gone = self.dir.join(format!(".remove-{id}"));
        match std::fs::rename(self.path(id), &gone) {
            Ok(()) => remove_tree(&gone),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Remains of killed builds and removals (`.build-ID`, `.remove-ID`, a
    /// directory without `template.toml`) whose lock nobody holds.
    pub fn leftovers(&self) -> std::io::Result<Vec<PathBuf>> {
        let rd = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(e),
        };
        let mut out = vec![];
        for e in rd.flatten() {
            let Ok(n) = e.file_name().into_string() else {
                continue;
            };
            if !e.path().is_dir() {
                continue;
            }
            let id = n
                .strip_prefix(".build-")
                .or_else(|| n.strip_prefix(".remove-"))
                .unwrap_or(&n);
            if !valid_id(id) || (id == n && self.get(id).is_some()) {
                continue;
            }
            if self.lock(id, false)?.is_some() {
                out.push(e.path());
            }
        }
        out.sort();
        Ok(out)
    }

    /// Removes what `leftovers` finds; returns it.
    pub fn remove_leftovers(&self) -> std::io::Result<Vec<PathBuf>> {
        let found = self.leftovers()?;
        for p in &found {
            remove_tree(p)?;
        }
        Ok(found)
    }
}

impl TemplateBuild {
    /// Where to build the root filesystem.
    pub fn rootfs(&self) -> PathBuf {
        self.tmp.join("rootfs")
    }

    /// Writes the metadata and renames the template into place.
    pub fn commit(mut self, meta: &TemplateMeta) -> std::io::Result<()> {
        let text = toml::to_string(meta).map_err(std::io::Error::other)?;
        let f = self.tmp.join("template.toml");
        std::fs::write(&f, text)?;
        File::open(&f)?.sync_all()?;
        std::fs::rename(&self.tmp, &self.dest)?;
        if let Some(p) = self.dest.parent() {
            File::open(p)?.sync_all()?;
        }
        self.done = true;
        Ok(())
    }
}

impl Drop for TemplateBuild {
    fn drop(&mut self) {
        if !self.done {
            let _ = remove_tree(&self.tmp);
        }
    }
}

fn remove_tree(p: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(id: &str) -> TemplateMeta {
        TemplateMeta {
            id: id.into(),
            distro: "debian".into(),
            release: "bookworm".into(),
            variant: "minbase".into(),
            packages: vec!["a=1".into()],
            size: 1,
            created: 1,
        }
    }

    #[test]
    fn build_commit_reuse_and_remove() {
        let t = tempfile::tempdir().unwrap();
        let s = TemplateStore::new(t.path());
        assert!(s.begin("../x").is_err(), "ids are hex only");
        let b = s.begin("ab12").unwrap().unwrap();
        std::fs::write(b.rootfs().join("f"), "x").unwrap();
        assert!(s.get("ab12").is_none(), "not visible while building");
        b.commit(&meta("ab12")).unwrap();
        assert_eq!(s.get("ab12").unwrap(), meta("ab12"));
        assert!(s.begin("ab12").unwrap().is_none(), "identical id is reused");
        assert_eq!(s.list().unwrap().len(), 1);
        s.remove("ab12").unwrap();
        assert!(s.list().unwrap().is_empty());
        assert!(s.leftovers().unwrap().is_empty());
    }

    #[test]
    fn resolutions_lead_to_existing_templates_only() {
        let t = tempfile::tempdir().unwrap();
        let s = TemplateStore::new(t.path());
        let key = "ee".repeat(32);
        let r = Resolution {
            id: "ab12".into(),
            variant: "minbase".into(),
            packages: 1,
            package_bytes: 10,
        };
        assert!(s.remember("../k", &r).is_err(), "keys are hex only");
        s.remember(&key, &r).unwrap();
        assert_eq!(s.resolution(&key), None, "its template does not exist yet");
        s.begin("ab12")
            .unwrap()
            .unwrap()
            .commit(&meta("ab12"))
            .unwrap();
        assert_eq!(s.resolution(&key), Some(r));
        assert_eq!(s.resolution(&"ff".repeat(32)), None);
        assert_eq!(s.list().unwrap().len(), 1, "the entries are no template");
        assert!(s.leftovers().unwrap().is_empty(), "nor leftovers");
        s.remove("ab12").unwrap();
        assert_eq!(s.resolution(&key), None);
        assert!(
            !t.path().join(".resolved").join(&key).exists(),
            "removing a template forgets what led to it"
        );
    }

    #[test]
    fn abandoned_build_leaves_nothing_and_killed_remains_are_leftovers() {
        let t = tempfile::tempdir().unwrap();
        let s = TemplateStore::new(t.path());
        drop(s.begin("cd34").unwrap().unwrap());
        assert!(!t.path().join(".build-cd34").exists());
        assert!(!s.path("cd34").exists());
        // What SIGKILL leaves: the build dir, no lock holder.
        std::fs::create_dir_all(t.path().join(".build-cd34/rootfs/etc")).unwrap();
        assert_eq!(s.leftovers().unwrap(), vec![t.path().join(".build-cd34")]);
        s.remove_leftovers().unwrap();
        assert!(s.leftovers().unwrap().is_empty());
        assert!(!t.path().join(".build-cd34").exists());
    }
}
