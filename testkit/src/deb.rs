//! Synthetic .deb files built in code for hermetic tests: control fields,
//! files with modes and ownership, directories, symlinks, hardlinks,
//! conffiles, maintainer scripts, triggers, and deliberately malicious
//! entries (`../evil`, absolute names, writing through a symlink, hardlinks
//! to outside) that safe unpacking must refuse or confine.

use md5::{Digest, Md5};
use std::path::{Path, PathBuf};
use vbuild_builder::unpack::{encode, Compression};

/// One data.tar entry.
#[derive(Debug, Clone)]
enum Entry {
    Dir {
        path: String,
        mode: u32,
    },
    File {
        path: String,
        data: Vec<u8>,
        mode: u32,
        uid: u64,
        gid: u64,
        mtime: u64,
        xattrs: Vec<(String, Vec<u8>)>,
    },
    Symlink {
        path: String,
        target: String,
    },
    Hardlink {
        path: String,
        target: String,
    },
    CharDevice {
        path: String,
    },
}

/// Builds one .deb.
#[derive(Debug, Clone)]
pub struct DebBuilder {
    fields: Vec<(String, String)>,
    entries: Vec<Entry>,
    control_files: Vec<(String, Vec<u8>, u32)>,
    conffiles: Vec<String>,
    data_compression: Compression,
    control_compression: Compression,
    md5sums: bool,
    mtime: u64,
}

/// The mtime given to entries unless set otherwise (2023-06-10).
pub const DEFAULT_MTIME: u64 = 1_686_355_200;

impl DebBuilder {
    /// A package `name` version `version` for `arch` (`all`, `amd64`).
    pub fn new(name: &str, version: &str, arch: &str) -> DebBuilder {
        DebBuilder {
            fields: vec![
                ("Package".into(), name.into()),
                ("Version".into(), version.into()),
                ("Architecture".into(), arch.into()),
                (
                    "Maintainer".into(),
                    "vbuild tests <tests@vbuild.invalid>".into(),
                ),
            ],
            entries: vec![Entry::Dir {
                path: "./".into(),
                mode: 0o755,
            }],
            control_files: vec![],
            conffiles: vec![],
            data_compression: Compression::Xz,
            control_compression: Compression::Xz,
            md5sums: true,
            mtime: DEFAULT_MTIME,
        }
    }

    /// Adds or replaces a control field (`Depends`, `Pre-Depends`, ...).
    pub fn field(mut self, key: &str, value: &str) -> DebBuilder {
        match self.fields.iter_mut().find(|(k, _)| k == key) {
            Some(f) => f.1 = value.into(),
            None => self.fields.push((key.into(), value.into())),
        }
        self
    }

    /// Compression of data.tar (and control.tar).
    pub fn compression(mut self, c: Compression) -> DebBuilder {
        self.data_compression = c;
        self.control_compression = c;
        self
    }

    /// Leaves out the md5sums control file (the unpacker must compute it).
    pub fn without_md5sums(mut self) -> DebBuilder {
        self.md5sums = false;
        self
    }

    /// Adds 0755 entries for parent directories of `path` not yet in the
    /// archive, as dpkg-deb's archives always list them.
    fn parents(&mut self, path: &str) {
        let p = path.trim_start_matches("./").trim_end_matches('/');
        let mut acc = String::from(".");
        let comps: Vec<&str> = p.split('/').collect();
        for c in &comps[..comps.len().saturating_sub(1)] {
            acc.push('/');
            acc.push_str(c);
            let d = format!("{acc}/");
            let present = self
                .entries
                .iter()
                .any(|e| matches!(e, Entry::Dir { path, .. } if *path == d));
            if !present {
                self.entries.push(Entry::Dir {
                    path: d,
                    mode: 0o755,
                });
            }
        }
    }

    /// A directory (`usr/share/doc/x`) with `mode`.
    pub fn dir(mut self, path: &str, mode: u32) -> DebBuilder {
        self.parents(path);
        self.entries.push(Entry::Dir {
            path: dot(path, true),
            mode,
        });
        self
    }

    /// A root-owned regular file.
    pub fn file(self, path: &str, data: &[u8], mode: u32) -> DebBuilder {
        self.file_owned(path, data, mode, 0, 0)
    }

    /// A regular file owned by `uid:gid`.
    pub fn file_owned(
        mut self,
        path: &str,
        data: &[u8],
        mode: u32,
        uid: u64,
        gid: u64,
    ) -> DebBuilder {
        self.parents(path);
        self.entries.push(Entry::File {
            path: dot(path, false),
            data: data.to_vec(),
            mode,
            uid,
            gid,
            mtime: self.mtime,
            xattrs: vec![],
        });
        self
    }

    /// A regular file with extended attributes (pax `SCHILY.xattr.*`).
    pub fn file_xattrs(
        mut self,
        path: &str,
        data: &[u8],
        mode: u32,
        xattrs: &[(&str, &[u8])],
    ) -> DebBuilder {
        self.parents(path);
        self.entries.push(Entry::File {
            path: dot(path, false),
            data: data.to_vec(),
            mode,
            uid: 0,
            gid: 0,
            mtime: self.mtime,
            xattrs: xattrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_vec()))
                .collect(),
        });
        self
    }

    /// A regular file whose name is written into the tar header exactly as
    /// given (`../evil`, `/etc/x`): for malicious-archive tests.
    pub fn raw_file(mut self, raw_name: &str, data: &[u8]) -> DebBuilder {
        self.entries.push(Entry::File {
            path: raw_name.into(),
            data: data.to_vec(),
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: self.mtime,
            xattrs: vec![],
        });
        self
    }

    /// A symlink at `path` pointing at `target` (written verbatim: may be
    /// absolute or climb with `..`).
    pub fn symlink(mut self, path: &str, target: &str) -> DebBuilder {
        self.parents(path);
        self.entries.push(Entry::Symlink {
            path: dot(path, false),
            target: target.into(),
        });
        self
    }

    /// A hardlink at `path` to the earlier entry `target` (written verbatim).
    pub fn hardlink(mut self, path: &str, target: &str) -> DebBuilder {
        self.parents(path);
        self.entries.push(Entry::Hardlink {
            path: dot(path, false),
            target: target.into(),
        });
        self
    }

    /// A character device entry (1:3, like /dev/null).
    pub fn char_device(mut self, path: &str) -> DebBuilder {
        self.parents(path);
        self.entries.push(Entry::CharDevice {
            path: dot(path, false),
        });
        self
    }

    /// A conffile: a root-owned 0644 file listed in `conffiles`.
    pub fn conffile(mut self, path: &str, data: &[u8]) -> DebBuilder {
        self.conffiles
            .push(format!("/{}", path.trim_start_matches('/')));
        self.file(path, data, 0o644)
    }

    /// A maintainer script (`preinst`, `postinst`, `prerm`, `postrm`,
    /// `config`), executable.
    pub fn script(mut self, name: &str, body: &str) -> DebBuilder {
        self.control_files
            .push((name.into(), body.as_bytes().to_vec(), 0o755));
        self
    }

    /// A non-executable control file (`triggers`, `shlibs`, `templates`).
    pub fn control_file(mut self, name: &str, data: &str) -> DebBuilder {
        self.control_files
            .push((name.into(), data.as_bytes().to_vec(), 0o644));
        self
    }

    /// The `triggers` control file (`interest /usr/lib/foo`, `activate x`).
    pub fn triggers(self, text: &str) -> DebBuilder {
        self.control_file("triggers", text)
    }

    /// The package name.
    pub fn name(&self) -> &str {
        &self.fields[0].1
    }

    /// The file name dpkg-deb would give it: `NAME_VERSION_ARCH.deb`.
    pub fn file_name(&self) -> String {
        let get = |k: &str| {
            self.fields
                .iter()
                .find(|(f, _)| f == k)
                .map(|(_, v)| v.as_str())
                .unwrap_or("")
        };
        format!(
            "{}_{}_{}.deb",
            get("Package"),
            get("Version").replace(':', "%3a"),
            get("Architecture")
        )
    }

    /// The .deb's bytes.
    pub fn build(&self) -> Vec<u8> {
        let data = self.data_tar();
        let control = self.control_tar();
        let mut out = b"!<arch>\n".to_vec();
        ar_member(&mut out, "debian-binary", b"2.0\n");
        ar_member(
            &mut out,
            &format!("control.tar{}", self.control_compression.suffix()),
            &encode(self.control_compression, &control).expect("in-memory encoding"),
        );
        ar_member(
            &mut out,
            &format!("data.tar{}", self.data_compression.suffix()),
            &encode(self.data_compression, &data).expect("in-memory encoding"),
        );
        out
    }

    /// Writes the .deb into `dir` and returns its path.
    pub fn write_to(&self, dir: &Path) -> std::io::Result<PathBuf> {
        let p = dir.join(self.file_name());
        std::fs::write(&p, self.build())?;
        Ok(p)
    }

    fn data_tar(&self) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for e in &self.entries {
            let mut h = tar::Header::new_gnu();
            h.set_mtime(self.mtime);
            h.set_uid(0);
            h.set_gid(0);
            match e {
                Entry::Dir { path, mode } => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_mode(*mode);
                    h.set_size(0);
                    append(&mut b, h, path, &[]);
                }
                Entry::File {
                    path,
                    data,
                    mode,
                    uid,
                    gid,
                    mtime,
                    xattrs,
                } => {
                    if !xattrs.is_empty() {
                        let ext: Vec<(String, &[u8])> = xattrs
                            .iter()
                            .map(|(k, v)| (format!("SCHILY.xattr.{k}"), v.as_slice()))
                            .collect();
                        b.append_pax_extensions(ext.iter().map(|(k, v)| (k.as_str(), *v)))
                            .expect("in-memory tar");
                    }
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_mode(*mode);
                    h.set_uid(*uid);
                    h.set_gid(*gid);
                    h.set_mtime(*mtime);
                    h.set_size(data.len() as u64);
                    append(&mut b, h, path, data);
                }
                Entry::Symlink { path, target } | Entry::Hardlink { path, target } => {
                    let t = if matches!(e, Entry::Symlink { .. }) {
                        tar::EntryType::Symlink
                    } else {
                        tar::EntryType::Link
                    };
                    h.set_entry_type(t);
                    h.set_mode(0o777);
                    h.set_size(0);
                    let name = &mut h.as_old_mut().linkname;
                    assert!(target.len() < name.len(), "test link target too long");
                    name[..target.len()].copy_from_slice(target.as_bytes());
                    append(&mut b, h, path, &[]);
                }
                Entry::CharDevice { path } => {
                    h.set_entry_type(tar::EntryType::Char);
                    h.set_mode(0o666);
                    h.set_size(0);
                    h.set_device_major(1).expect("gnu header");
                    h.set_device_minor(3).expect("gnu header");
                    append(&mut b, h, path, &[]);
                }
            }
        }
        b.into_inner().expect("in-memory tar")
    }

    fn control_tar(&self) -> Vec<u8> {
        let mut control = String::new();
        let installed: u64 = self
            .entries
            .iter()
            .map(|e| match e {
                Entry::File { data, .. } => data.len() as u64,
                _ => 0,
            })
            .sum::<u64>()
            .div_ceil(1024);
        for (k, v) in &self.fields {
            control.push_str(&format!("{k}: {v}\n"));
            if k == "Architecture" && !self.fields.iter().any(|(k, _)| k == "Installed-Size") {
                control.push_str(&format!("Installed-Size: {installed}\n"));
            }
        }
        if !self.fields.iter().any(|(k, _)| k == "Description") {
            control.push_str(&format!("Description: test package {}\n", self.name()));
        }
        let mut files: Vec<(String, Vec<u8>, u32)> =
            vec![("control".into(), control.into_bytes(), 0o644)];
        if self.md5sums {
            let mut m = String::new();
            for e in &self.entries {
                if let Entry::File { path, data, .. } = e {
                    let p = path.trim_start_matches("./");
                    if !self.conffiles.contains(&format!("/{p}")) {
                        m.push_str(&format!("{}  {p}\n", hex::encode(Md5::digest(data))));
                    }
                }
            }
            files.push(("md5sums".into(), m.into_bytes(), 0o644));
        }
        if !self.conffiles.is_empty() {
            files.push((
                "conffiles".into(),
                format!("{}\n", self.conffiles.join("\n")).into_bytes(),
                0o644,
            ));
        }
        files.extend(self.control_files.iter().cloned());
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        h.set_mtime(self.mtime);
        append(&mut b, h, "./", &[]);
        for (name, data, mode) in files {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(mode);
            h.set_size(data.len() as u64);
            h.set_mtime(self.mtime);
            append(&mut b, h, &format!("./{name}"), &data);
        }
        b.into_inner().expect("in-memory tar")
    }
}

/// `usr/bin/x` -> `./usr/bin/x` (dpkg-deb's spelling), dirs with a slash.
fn dot(path: &str, dir: bool) -> String {
    let p = path
        .trim_start_matches('/')
        .trim_start_matches("./")
        .trim_end_matches('/');
    if dir {
        format!("./{p}/")
    } else {
        format!("./{p}")
    }
}

/// Appends with the name written verbatim into the header (GNU long-name
/// record for names over 100 bytes), so malicious names survive.
fn append(b: &mut tar::Builder<Vec<u8>>, mut h: tar::Header, name: &str, data: &[u8]) {
    let bytes = name.as_bytes();
    if bytes.len() >= 100 {
        let mut l = tar::Header::new_gnu();
        l.set_entry_type(tar::EntryType::GNULongName);
        l.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
        l.set_mode(0o644);
        let mut v = bytes.to_vec();
        v.push(0);
        l.set_size(v.len() as u64);
        l.set_cksum();
        b.append(&l, &v[..]).expect("in-memory tar");
    }
    let field = &mut h.as_old_mut().name;
    let n = bytes.len().min(99);
    field[..n].copy_from_slice(&bytes[..n]);
    h.set_cksum();
    b.append(&h, data).expect("in-memory tar");
}

fn ar_member(out: &mut Vec<u8>, name: &str, data: &[u8]) {
    out.extend_from_slice(
        format!(
            "{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
            name,
            DEFAULT_MTIME,
            0,
            0,
            "100644",
            data.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(data);
    if data.len() % 2 == 1 {
        out.push(b'\n');
    }
}
