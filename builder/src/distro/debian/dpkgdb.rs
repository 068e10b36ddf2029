//! dpkg's database in `/var/lib/dpkg`, written directly in the formats
//! dpkg itself writes (checked against a tree made by mmdebstrap), so the
//! guest's own dpkg, apt, `dpkg --audit` and `dpkg -V` accept it:
//! `status`, `available`, `arch`, `diversions`, `statoverride`,
//! `info/PKG.{list,md5sums,conffiles,preinst,...}` and trigger interests in
//! `triggers/File` and `triggers/NAME`.

use super::deb::Unpacked;
use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use vbuild_kernel::fsroot::{FsError, Root};

/// The admin directory inside the rootfs.
pub const ADMIN: &str = "var/lib/dpkg";

/// Writing the database failed; names the file.
#[derive(Debug, thiserror::Error)]
#[error("dpkg database: {0} (is the rootfs writable?)")]
pub struct DbError(#[from] pub FsError);

/// A package's state in `status` (`Status: install ok <state>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PkgState {
    /// Files are in place, not configured yet.
    Unpacked,
    /// postinst configure succeeded (or there is none).
    Installed,
}

impl PkgState {
    fn word(self) -> &'static str {
        match self {
            PkgState::Unpacked => "unpacked",
            PkgState::Installed => "installed",
        }
    }
}

/// The fields dpkg writes first, in its own order; any other field follows
/// in the package's order.
const FIELD_ORDER: [&str; 25] = [
    "Package",
    "Essential",
    "Protected",
    "Status",
    "Priority",
    "Section",
    "Installed-Size",
    "Origin",
    "Maintainer",
    "Bugs",
    "Architecture",
    "Multi-Arch",
    "Source",
    "Version",
    "Replaces",
    "Provides",
    "Depends",
    "Pre-Depends",
    "Recommends",
    "Suggests",
    "Breaks",
    "Conflicts",
    "Enhances",
    "Conffiles",
    "Description",
];

/// The name dpkg files a package's info under: `PKG` or, for
/// `Multi-Arch: same` packages, `PKG:ARCH`.
pub fn info_name(u: &Unpacked) -> String {
    if u.control
        .get("Multi-Arch")
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("same"))
    {
        format!("{}:{}", u.name(), u.arch())
    } else {
        u.name().to_string()
    }
}

/// The `status` stanza of one package in `state`.
pub fn status_stanza(u: &Unpacked, state: PkgState) -> String {
    let mut fields: Vec<(String, String)> = Vec::new();
    let status = format!("install ok {}", state.word());
    let conffiles: String = u
        .conffiles
        .iter()
        .filter_map(|(p, h)| h.as_ref().map(|h| format!("\n {} {h}", p.display())))
        .collect();
    for name in FIELD_ORDER {
        let v = match name {
            "Status" => Some(status.clone()),
            "Conffiles" if !conffiles.is_empty() => Some(conffiles.clone()),
            "Conffiles" => None,
            _ => u.control.get(name).map(str::to_string),
        };
        if let Some(v) = v {
            fields.push((name.to_string(), v));
        }
    }
    for (k, v) in u.control.fields() {
        if !FIELD_ORDER.iter().any(|f| f.eq_ignore_ascii_case(k))
            && !k.eq_ignore_ascii_case("Config-Version")
        {
            fields.push((k.to_string(), v.to_string()));
        }
    }
    let mut s = String::new();
    for (k, v) in fields {
        if v.starts_with('\n') {
            s.push_str(&format!("{k}:{v}\n"));
        } else {
            s.push_str(&format!("{k}: {v}\n"));
        }
    }
    s
}

/// Creates the admin directory skeleton dpkg expects on a fresh system:
/// empty `status`, `available`, `diversions`, `statoverride`, the `arch`
/// file, `info/format`, lock files and trigger bookkeeping.
pub fn init(root: &Root, arch: &str) -> Result<(), DbError> {
    let a = Path::new(ADMIN);
    for d in ["info", "updates", "triggers", "alternatives", "parts"] {
        root.mkdir_all(&a.join(d), 0o755)?;
    }
    root.write(&a.join("status"), b"", 0o644)?;
    root.write(&a.join("available"), b"", 0o644)?;
    root.write(&a.join("diversions"), b"", 0o644)?;
    root.write(&a.join("statoverride"), b"", 0o644)?;
    root.write(&a.join("arch"), format!("{arch}\n").as_bytes(), 0o644)?;
    root.write(&a.join("info/format"), b"1\n", 0o644)?;
    root.write(&a.join("lock"), b"", 0o640)?;
    root.write(&a.join("lock-frontend"), b"", 0o640)?;
    root.write(&a.join("triggers/Lock"), b"", 0o644)?;
    root.write(&a.join("triggers/Unincorp"), b"", 0o644)?;
    Ok(())
}

/// Path of info file `suffix` of package `u` (`info/libc6:amd64.list`).
pub fn info_path(u: &Unpacked, suffix: &str) -> PathBuf {
    Path::new(ADMIN)
        .join("info")
        .join(format!("{}.{suffix}", info_name(u)))
}

/// Writes a package's `info/` files: the file list, md5sums, and every
/// control.tar file (scripts keep their executable mode).
pub fn write_info(root: &Root, u: &Unpacked) -> Result<(), DbError> {
    let mut list = Vec::new();
    for f in &u.files {
        list.extend_from_slice(f.as_os_str().as_bytes());
        list.push(b'\n');
    }
    root.write(&info_path(u, "list"), &list, 0o644)?;
    root.write(&info_path(u, "md5sums"), &u.md5sums, 0o644)?;
    for (name, f) in &u.control_files {
        let mode = if f.mode & 0o111 != 0 { 0o755 } else { 0o644 };
        root.write(&info_path(u, name), &f.data, mode)?;
    }
    Ok(())
}

/// Writes `status` with one stanza per package, in the given order.
pub fn write_status(root: &Root, pkgs: &[(&Unpacked, PkgState)]) -> Result<(), DbError> {
    let mut s = String::new();
    for (i, (u, st)) in pkgs.iter().enumerate() {
        if i > 0 {
            s.push('\n');
        }
        s.push_str(&status_stanza(u, *st));
    }
    root.write(&Path::new(ADMIN).join("status"), s.as_bytes(), 0o644)?;
    Ok(())
}

/// One line of a package's `triggers` control file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TriggerDecl {
    /// `interest[-await|-noawait] NAME`: run `postinst triggered` when
    /// NAME is activated (a path for file triggers).
    Interest {
        /// Trigger name or absolute path.
        name: String,
        /// `-noawait`: activators need not wait for processing.
        noawait: bool,
    },
    /// `activate[-await|-noawait] NAME`: activate NAME when this package
    /// is installed.
    Activate {
        /// Trigger name or absolute path.
        name: String,
    },
}

/// Parses a `triggers` control file; unknown directives are ignored, as
/// dpkg ignores ones it does not know about with a warning.
pub fn parse_triggers(text: &str) -> Vec<TriggerDecl> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut it = line.split_whitespace();
        let (Some(kw), Some(name)) = (it.next(), it.next()) else {
            continue;
        };
        let name = name.to_string();
        match kw {
            "interest" | "interest-await" => out.push(TriggerDecl::Interest {
                name,
                noawait: false,
            }),
            "interest-noawait" => out.push(TriggerDecl::Interest {
                name,
                noawait: true,
            }),
            "activate" | "activate-await" | "activate-noawait" => {
                out.push(TriggerDecl::Activate { name })
            }
            _ => {}
        }
    }
    out
}

/// Registers every package's trigger interests: `triggers/File` lines
/// `PATH PKG[/noawait]` for file triggers, and one `triggers/NAME` file per
/// named trigger listing `PKG[/noawait]`, so triggers activated later by
/// apt inside the guest reach them.
pub fn write_trigger_interests(root: &Root, pkgs: &[Unpacked]) -> Result<(), DbError> {
    let mut file = String::new();
    let mut named: BTreeMap<String, String> = BTreeMap::new();
    for u in pkgs {
        let who = info_name(u);
        for d in parse_triggers(u.triggers().unwrap_or("")) {
            if let TriggerDecl::Interest { name, noawait } = d {
                let entry = if noawait {
                    format!("{who}/noawait")
                } else {
                    who.clone()
                };
                if name.starts_with('/') {
                    file.push_str(&format!("{name} {entry}\n"));
                } else {
                    named
                        .entry(name)
                        .or_default()
                        .push_str(&format!("{entry}\n"));
                }
            }
        }
    }
    let t = Path::new(ADMIN).join("triggers");
    root.write(&t.join("File"), file.as_bytes(), 0o644)?;
    for (name, who) in named {
        if name.contains('/') || name.starts_with('.') {
            continue;
        }
        root.write(&t.join(name), who.as_bytes(), 0o644)?;
    }
    Ok(())
}

/// Adds a local diversion (`dpkg-divert --local`) to `diversions`:
/// triplets of lines `FROM`, `TO`, `:` for "no package".
pub fn add_local_diversion(root: &Root, from: &str, to: &str) -> Result<(), DbError> {
    let p = Path::new(ADMIN).join("diversions");
    let mut cur = root.read(&p).unwrap_or_default();
    cur.extend_from_slice(format!("{from}\n{to}\n:\n").as_bytes());
    root.write(&p, &cur, 0o644)?;
    Ok(())
}

/// Removes the local diversion of `from` added by [`add_local_diversion`],
/// keeping every other entry (packages may have added their own).
pub fn remove_local_diversion(root: &Root, from: &str) -> Result<(), DbError> {
    let p = Path::new(ADMIN).join("diversions");
    let cur = String::from_utf8_lossy(&root.read(&p).unwrap_or_default()).into_owned();
    let lines: Vec<&str> = cur.lines().collect();
    let mut out = String::new();
    for t in lines.chunks(3) {
        if t.len() == 3 && t[0] == from && t[2] == ":" {
            continue;
        }
        for l in t {
            out.push_str(l);
            out.push('\n');
        }
    }
    root.write(&p, out.as_bytes(), 0o644)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distro::debian::deb::Paragraph;

    fn pkg(control: &str) -> Unpacked {
        Unpacked {
            deb: PathBuf::from("x.deb"),
            control: Paragraph::parse(control).unwrap(),
            files: vec![],
            md5sums: vec![],
            conffiles: vec![(PathBuf::from("/etc/a.conf"), Some("0123".into()))],
            control_files: Default::default(),
            notes: vec![],
            regular_files: 0,
            bytes: 0,
        }
    }

    #[test]
    fn stanza_uses_dpkg_field_order() {
        let u = pkg("Package: libx\nVersion: 1\nArchitecture: amd64\nMulti-Arch: same\nMaintainer: m\nHomepage: h\nDescription: d\n long\nPriority: optional\nEssential: yes\n");
        assert_eq!(
            status_stanza(&u, PkgState::Installed),
            "Package: libx\nEssential: yes\nStatus: install ok installed\nPriority: optional\nMaintainer: m\nArchitecture: amd64\nMulti-Arch: same\nVersion: 1\nConffiles:\n /etc/a.conf 0123\nDescription: d\n long\nHomepage: h\n"
        );
        assert_eq!(info_name(&u), "libx:amd64");
    }

    #[test]
    fn triggers_are_parsed() {
        let t = parse_triggers("# c\ninterest-await ldconfig\ninterest-noawait /usr/lib/x\nactivate-noawait ldconfig\nbogus y\n");
        assert_eq!(
            t,
            vec![
                TriggerDecl::Interest {
                    name: "ldconfig".into(),
                    noawait: false
                },
                TriggerDecl::Interest {
                    name: "/usr/lib/x".into(),
                    noawait: true
                },
                TriggerDecl::Activate {
                    name: "ldconfig".into()
                },
            ]
        );
    }
}
