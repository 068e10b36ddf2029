//! The .deb reader: the ar container, control.tar and data.tar in any of
//! dpkg's compressions, data.tar's entries handed to the generic
//! root-confined writer (`crate::unpack`) so nothing can be written outside
//! the rootfs, several packages at once.
//!
//! Per package the result carries what dpkg's database needs afterwards:
//! control fields, the file list, md5sums, conffiles with their installed
//! md5, maintainer scripts and triggers.

mod ar;
mod control;

pub use control::{ControlFile, Paragraph};

use crate::unpack::{compress, safe, Compression};

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use vbuild_kernel::fsroot::Root;

/// One unpacked package.
#[derive(Debug, Clone)]
pub struct Unpacked {
    /// The .deb it came from.
    pub deb: PathBuf,
    /// Its `control` paragraph, fields in the package's order.
    pub control: Paragraph,
    /// Every path it installed, as dpkg lists them in `info/PKG.list`
    /// (`/.` first, then archive order, no trailing slash).
    pub files: Vec<PathBuf>,
    /// The content of `info/PKG.md5sums` (`md5  path` lines): the package's
    /// own, or computed while extracting when it ships none.
    pub md5sums: Vec<u8>,
    /// Conffiles (absolute paths) with the md5 of the file as installed
    /// (`None` when the package lists a conffile it does not ship).
    pub conffiles: Vec<(PathBuf, Option<String>)>,
    /// Every other control.tar file by name: `preinst`, `postinst`,
    /// `prerm`, `postrm`, `config`, `templates`, `triggers`, `shlibs`,
    /// `symbols`...
    pub control_files: BTreeMap<String, ControlFile>,
    /// Entries skipped on purpose, one line each (device nodes).
    pub notes: Vec<String>,
    /// Regular files written (hardlinks included).
    pub regular_files: u64,
    /// Bytes of file content written.
    pub bytes: u64,
}

impl Unpacked {
    /// The package name.
    pub fn name(&self) -> &str {
        self.control.get("Package").unwrap_or_default().trim()
    }

    /// The package's architecture (`all`, `amd64`).
    pub fn arch(&self) -> &str {
        self.control.get("Architecture").unwrap_or("all").trim()
    }

    /// The `triggers` control file, if any.
    pub fn triggers(&self) -> Option<&str> {
        self.control_files
            .get("triggers")
            .and_then(|f| std::str::from_utf8(&f.data).ok())
    }
}

/// A package that could not be unpacked: names the package (file) and,
/// where it applies, the archive entry.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// The .deb could not be opened or read.
    #[error("{deb}: {source} (is the file there and readable?)")]
    Io {
        /// The package file.
        deb: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The .deb is not a well-formed Debian binary package.
    #[error("{deb}: {message} (not a valid .deb; download it again)")]
    Format {
        /// The package file.
        deb: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// One entry of data.tar was refused or failed to extract.
    #[error("{deb}: entry {entry}: {message}")]
    Entry {
        /// The package file.
        deb: PathBuf,
        /// The entry as named in the archive.
        entry: String,
        /// What is wrong.
        message: String,
    },
    /// The rootfs could not be opened.
    #[error("rootfs {root}: {source} (create the directory first)")]
    Root {
        /// The rootfs.
        root: PathBuf,
        /// The cause.
        source: vbuild_kernel::fsroot::FsError,
    },
}

/// Unpacks `debs` into `rootfs` with `jobs` threads (decompression
/// dominates, so one per core), calling `on_done` after each package.
/// Results are in the order of `debs`. The first failure stops the others
/// early and is returned; the rootfs is then incomplete and should be
/// discarded by the caller.
pub fn unpack_all(
    rootfs: &Path,
    debs: &[PathBuf],
    jobs: usize,
    on_done: &(dyn Fn(&Unpacked) + Sync),
) -> Result<Vec<Unpacked>, UnpackError> {
    let root = Root::open(rootfs).map_err(|source| UnpackError::Root {
        root: rootfs.to_path_buf(),
        source,
    })?;
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let results: Mutex<Vec<Option<Result<Unpacked, UnpackError>>>> =
        Mutex::new((0..debs.len()).map(|_| None).collect());
    let jobs = jobs.clamp(1, debs.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| loop {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(deb) = debs.get(i) else { break };
                let r = unpack_one(&root, deb);
                match &r {
                    Ok(u) => on_done(u),
                    Err(_) => stop.store(true, Ordering::Relaxed),
                }
                results.lock().expect("no panics while locked")[i] = Some(r);
            });
        }
    });
    let mut out = Vec::with_capacity(debs.len());
    for r in results.into_inner().expect("threads joined") {
        match r {
            Some(Ok(u)) => out.push(u),
            Some(Err(e)) => return Err(e),
            // Not started because an earlier package failed; that error
            // comes first in order or was already returned.
            None => {}
        }
    }
    Ok(out)
}

/// Unpacks one .deb into the rootfs opened as `root`.
pub fn unpack_one(root: &Root, deb: &Path) -> Result<Unpacked, UnpackError> {
    let io_err = |source| UnpackError::Io {
        deb: deb.to_path_buf(),
        source,
    };
    let format = |message: String| UnpackError::Format {
        deb: deb.to_path_buf(),
        message,
    };
    let file = std::fs::File::open(deb).map_err(io_err)?;
    let mut ar =
        ar::ArReader::new(std::io::BufReader::new(file)).map_err(|e| format(e.to_string()))?;

    let m = ar
        .next_member()
        .map_err(|e| format(e.to_string()))?
        .ok_or_else(|| format("empty archive".into()))?;
    if m.name != "debian-binary" {
        return Err(format(format!(
            "first member is {:?}, not debian-binary",
            m.name
        )));
    }
    let mut version = String::new();
    ar.data(&m)
        .take(64)
        .read_to_string(&mut version)
        .map_err(|e| format(format!("debian-binary: {e}")))?;
    if !version.starts_with("2.") {
        return Err(format(format!(
            "format version {:?} is not 2.x",
            version.trim()
        )));
    }

    let mut control: Option<control::ControlArchive> = None;
    loop {
        let m = ar
            .next_member()
            .map_err(|e| format(e.to_string()))?
            .ok_or_else(|| {
                format(if control.is_none() {
                    "no control.tar member".into()
                } else {
                    "no data.tar member".into()
                })
            })?;
        if m.name.starts_with('_') {
            // dpkg ignores members starting with `_` (signatures and the like).
            continue;
        }
        if let Some(c) = Compression::of_member(&m.name, "control.tar") {
            let c = c.map_err(|n| format(format!("{n}: unsupported compression")))?;
            let dec = compress::decoder(c, ar.data(&m))
                .map_err(|e| format(format!("{}: {e}", m.name)))?;
            control = Some(control::read_control_tar(dec).map_err(format)?);
            continue;
        }
        if let Some(c) = Compression::of_member(&m.name, "data.tar") {
            let c = c.map_err(|n| format(format!("{n}: unsupported compression")))?;
            let ctl = control.ok_or_else(|| format("data.tar comes before control.tar".into()))?;
            return extract_data(root, deb, ctl, c, ar.data(&m));
        }
        return Err(format(format!("unexpected member {:?}", m.name)));
    }
}

fn extract_data<R: Read>(
    root: &Root,
    deb: &Path,
    ctl: control::ControlArchive,
    c: Compression,
    data: R,
) -> Result<Unpacked, UnpackError> {
    let conffile_list: Vec<PathBuf> = ctl
        .files
        .get("conffiles")
        .map(|f| {
            String::from_utf8_lossy(&f.data)
                .lines()
                // Newer dpkg allows flags after the path (`remove-on-upgrade`).
                .filter_map(|l| l.split_whitespace().next())
                .map(PathBuf::from)
                .collect()
        })
        .unwrap_or_default();
    let conffiles: HashSet<PathBuf> = conffile_list.iter().cloned().collect();
    let has_md5 = ctl.files.contains_key("md5sums");
    let dec = compress::decoder(c, data).map_err(|e| UnpackError::Format {
        deb: deb.to_path_buf(),
        message: format!("data.tar{}: {e}", c.suffix()),
    })?;
    let opts = safe::ExtractOpts {
        conffiles: &conffiles,
        compute_md5: !has_md5,
        devices: false,
    };
    let mut ex =
        safe::extract(root, &mut crate::unpack::TarReader::new(dec), &opts).map_err(|e| {
            UnpackError::Entry {
                deb: deb.to_path_buf(),
                entry: e.entry,
                message: e.message,
            }
        })?;
    if ex.files.first().map(|p| p.as_path()) != Some(Path::new("/.")) {
        ex.files.insert(0, PathBuf::from("/."));
    }
    let md5sums = match ctl.files.get("md5sums") {
        Some(f) => f.data.clone(),
        None => {
            let mut v = Vec::new();
            for (p, h) in &ex.md5 {
                v.extend_from_slice(h.as_bytes());
                v.extend_from_slice(b"  ");
                v.extend_from_slice(std::os::unix::ffi::OsStrExt::as_bytes(p.as_os_str()));
                v.push(b'\n');
            }
            v
        }
    };
    let conffiles = conffile_list
        .into_iter()
        .map(|p| {
            let h = ex.conffile_md5.get(&p).cloned();
            (p, h)
        })
        .collect();
    let mut control_files = ctl.files;
    control_files.remove("md5sums");
    Ok(Unpacked {
        deb: deb.to_path_buf(),
        control: ctl.control,
        files: ex.files,
        md5sums,
        conffiles,
        control_files,
        notes: ex.notes,
        regular_files: ex.regular_files,
        bytes: ex.bytes,
    })
}
