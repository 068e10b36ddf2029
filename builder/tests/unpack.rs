//! Safe unpacking: malicious archives (.deb data.tar and cpio, the RPM
//! payload format) cannot write outside the rootfs,
//! merged-usr symlinks are followed, metadata is kept, every compression
//! decodes, and the per-package results are what dpkg's database needs.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use vbuild_builder::distro::debian::deb::{unpack_all, UnpackError, Unpacked};
use vbuild_builder::unpack::Compression;
use vbuild_testkit::deb::{DebBuilder, DEFAULT_MTIME};

fn is_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("needs root");
    }
    eprintln!("skipped: needs root");
    false
}

/// A scratch area: `root/` is the rootfs, `outside/` stands for the host.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("root")).unwrap();
        std::fs::create_dir(dir.path().join("outside")).unwrap();
        std::fs::create_dir(dir.path().join("debs")).unwrap();
        Scratch { dir }
    }
    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }
    fn outside(&self) -> PathBuf {
        self.dir.path().join("outside")
    }
    /// The rootfs's copy of a host absolute path.
    fn inside(&self, host: &Path) -> PathBuf {
        self.root().join(host.strip_prefix("/").unwrap())
    }
    fn unpack(&self, debs: &[DebBuilder]) -> Result<Vec<Unpacked>, UnpackError> {
        let paths: Vec<PathBuf> = debs
            .iter()
            .map(|d| d.write_to(&self.dir.path().join("debs")).unwrap())
            .collect();
        unpack_all(&self.root(), &paths, 2, &|_| {})
    }
    /// Every path under `outside/`, to prove nothing appeared there.
    fn outside_listing(&self) -> Vec<PathBuf> {
        let mut v = vec![];
        let mut stack = vec![self.outside()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.symlink_metadata().unwrap().is_dir() {
                    stack.push(p.clone());
                }
                v.push(p);
            }
        }
        v.sort();
        v
    }
}

#[test]
fn dotdot_entry_is_refused_and_names_package_and_entry() {
    if !is_root() {
        return;
    }
    let s = Scratch::new();
    let deb = DebBuilder::new("evil", "1", "all").raw_file("./../outside/evil", b"pwned");
    let err = s.unpack(&[deb]).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("evil_1_all.deb"), "{msg}");
    assert!(msg.contains("../outside/evil"), "{msg}");
    assert!(s.outside_listing().is_empty());
    assert!(!s.dir.path().join("evil").exists());
}

#[test]
fn absolute_entry_is_taken_relative_to_the_root() {
    if !is_root() {
        return;
    }
    let s = Scratch::new();
    let host_target = s.outside().join("abs");
    let deb = DebBuilder::new("abs", "1", "all").raw_file(host_target.to_str().unwrap(), b"inside");
    s.unpack(&[deb]).unwrap();
    assert!(!host_target.exists(), "absolute entry escaped to the host");
    assert_eq!(std::fs::read(s.inside(&host_target)).unwrap(), b"inside");
}

#[test]
fn writing_through_an_archive_symlink_stays_inside() {
    if !is_root() {
        return;
    }
    let s = Scratch::new();
    // A symlink to `/` then a file through it: lands in the rootfs's /etc.
    let deb = DebBuilder::new("via-root", "1", "all")
        .dir("etc", 0o755)
        .symlink("escape", "/")
        .file("escape/etc/vbuild-test-passwd", b"x", 0o644)
        .symlink("up", "../../../../../..")
        .file("up/vbuild-test-up", b"y", 0o644);
    s.unpack(&[deb]).unwrap();
    assert!(!Path::new("/etc/vbuild-test-passwd").exists());
    assert_eq!(
        std::fs::read(s.root().join("etc/vbuild-test-passwd")).unwrap(),
        b"x"
    );
    assert_eq!(
        std::fs::read(s.root().join("vbuild-test-up")).unwrap(),
        b"y"
    );

    // A symlink to a host directory then a file through it: refused or
    // confined, never written on the host.
    let s = Scratch::new();
    let deb = DebBuilder::new("via-host", "1", "all")
        .symlink("escape", s.outside().to_str().unwrap())
        .file("escape/pwned", b"x", 0o644);
    let _ = s.unpack(&[deb]);
    assert!(s.outside_listing().is_empty(), "{:?}", s.outside_listing());
}

#[test]
fn symlink_already_in_the_rootfs_cannot_redirect_writes() {
    if !is_root() {
        return;
    }
    let s = Scratch::new();
    std::os::unix::fs::symlink(s.outside(), s.root().join("var")).unwrap();
    std::os::unix::fs::symlink(s.outside().join("f"), s.root().join("etcfile")).unwrap();
    std::fs::write(s.outside().join("f"), "host").unwrap();
    let deb = DebBuilder::new("planted", "1", "all")
        .file("etcfile", b"replaced", 0o644)
        .file("var/lib/x", b"x", 0o644);
    let _ = s.unpack(&[deb]);
    assert_eq!(std::fs::read(s.outside().join("f")).unwrap(), b"host");
    assert_eq!(s.outside_listing(), vec![s.outside().join("f")]);
    // The symlink at a file's path is replaced, as dpkg does.
    assert_eq!(
        std::fs::read(s.root().join("etcfile")).unwrap(),
        b"replaced"
    );
}

#[test]
fn hardlinks_cannot_reach_outside() {
    if !is_root() {
        return;
    }
    let s = Scratch::new();
    let secret = s.outside().join("secret");
    std::fs::write(&secret, "host").unwrap();
    let climb = DebBuilder::new("climb", "1", "all").hardlink("h", "../outside/secret");
    let err = s.unpack(&[climb]).unwrap_err().to_string();
    assert!(
        err.contains("climb_1_all.deb") && err.contains("./h"),
        "{err}"
    );
    let abs = DebBuilder::new("abslink", "1", "all").hardlink("h", secret.to_str().unwrap());
    let err = s.unpack(&[abs]).unwrap_err().to_string();
    assert!(err.contains("hardlink target"), "{err}");
    assert_eq!(std::fs::metadata(&secret).unwrap().nlink(), 1);
    assert!(!s.root().join("h").exists());
}

#[test]
fn merged_usr_links_are_followed() {
    if !is_root() {
        return;
    }
    let s = Scratch::new();
    std::fs::create_dir_all(s.root().join("usr/bin")).unwrap();
    std::os::unix::fs::symlink("usr/bin", s.root().join("bin")).unwrap();
    let deb = DebBuilder::new("shell", "1", "amd64")
        .dir("bin", 0o755)
        .file("bin/sh", b"#!", 0o755)
        .dir("usr/bin", 0o755)
        .file("usr/bin/other", b"o", 0o755);
    let u = s.unpack(&[deb]).unwrap();
    assert!(s
        .root()
        .join("bin")
        .symlink_metadata()
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read(s.root().join("usr/bin/sh")).unwrap(), b"#!");
    assert_eq!(
        u[0].files,
        [
            "/.",
            "/bin",
            "/bin/sh",
            "/usr",
            "/usr/bin",
            "/usr/bin/other"
        ]
        .iter()
        .map(PathBuf::from)
        .collect::<Vec<_>>()
    );
}

#[test]
fn modes_ownership_mtimes_and_xattrs_are_kept() {
    if !is_root() {
        return;
    }
    let s = Scratch::new();
    let deb = DebBuilder::new("meta", "1", "amd64")
        .dir("srv", 0o750)
        .file_owned("srv/suid", b"bin", 0o4755, 0, 0)
        .file_owned("srv/owned", b"data", 0o640, 1000, 50)
        .symlink("srv/link", "owned")
        .hardlink("srv/hard", "./srv/owned")
        .file_xattrs("srv/attr", b"a", 0o644, &[("user.vbuild", b"yes")]);
    s.unpack(&[deb]).unwrap();
    let m = |p: &str| std::fs::symlink_metadata(s.root().join(p)).unwrap();
    assert_eq!(m("srv").mode() & 0o7777, 0o750);
    assert_eq!(m("srv/suid").mode() & 0o7777, 0o4755);
    assert_eq!((m("srv/owned").uid(), m("srv/owned").gid()), (1000, 50));
    assert_eq!(m("srv/owned").mode() & 0o7777, 0o640);
    assert_eq!(m("srv/owned").mtime(), DEFAULT_MTIME as i64);
    assert_eq!(m("srv/link").mtime(), DEFAULT_MTIME as i64);
    assert_eq!(m("srv/owned").nlink(), 2);
    assert_eq!(m("srv/hard").ino(), m("srv/owned").ino());
    let mut buf = [0u8; 16];
    let path = std::ffi::CString::new(s.root().join("srv/attr").to_str().unwrap()).unwrap();
    let n = unsafe {
        libc::getxattr(
            path.as_ptr(),
            c"user.vbuild".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        eprintln!("user xattrs unsupported on this filesystem; not checked");
    } else {
        assert_eq!(&buf[..n as usize], b"yes");
    }
}

#[test]
fn every_compression_unpacks_the_same() {
    if !is_root() {
        return;
    }
    for c in [
        Compression::Xz,
        Compression::Zstd,
        Compression::Gzip,
        Compression::None,
        Compression::Lzma,
    ] {
        let s = Scratch::new();
        let deb = DebBuilder::new("comp", "1", "all")
            .compression(c)
            .dir("usr/share", 0o755)
            .file("usr/share/f", &b"0123456789".repeat(1000), 0o644);
        let u = s.unpack(&[deb]).unwrap();
        assert_eq!(
            std::fs::read(s.root().join("usr/share/f")).unwrap(),
            b"0123456789".repeat(1000),
            "{c:?}"
        );
        assert_eq!(u[0].bytes, 10_000);
    }
}

#[test]
fn md5sums_conffiles_scripts_and_devices_are_reported() {
    if !is_root() {
        return;
    }
    let s = Scratch::new();
    let deb = DebBuilder::new("conf", "2.0-1", "amd64")
        .without_md5sums()
        .dir("etc", 0o755)
        .conffile("etc/conf.cfg", b"key=value\n")
        .file("usr/bin/tool", b"tool", 0o755)
        .hardlink("usr/bin/tool2", "./usr/bin/tool")
        .char_device("dev/null")
        .script("postinst", "#!/bin/sh\nexit 0\n")
        .triggers("interest /usr/lib/conf\n");
    let u = s.unpack(&[deb]).unwrap().remove(0);
    assert_eq!(u.name(), "conf");
    assert_eq!(u.control.get("Version"), Some("2.0-1"));
    let md5 = String::from_utf8(u.md5sums.clone()).unwrap();
    // md5("tool"), the conffile excluded as dh_md5sums does.
    let h = md5_of(b"tool");
    assert_eq!(md5, format!("{h}  usr/bin/tool\n{h}  usr/bin/tool2\n"));
    assert_eq!(
        u.conffiles,
        vec![(PathBuf::from("/etc/conf.cfg"), Some(md5_of(b"key=value\n")))]
    );
    assert_eq!(u.control_files["postinst"].mode, 0o755);
    assert_eq!(u.triggers(), Some("interest /usr/lib/conf\n"));
    assert!(!s.root().join("dev/null").exists());
    assert_eq!(u.notes.len(), 1, "{:?}", u.notes);
    assert!(u.notes[0].contains("/dev/null"));
}

fn md5_of(data: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(data))
}

#[test]
fn parallel_unpack_keeps_input_order_and_shared_dirs() {
    if !is_root() {
        return;
    }
    let s = Scratch::new();
    let debs: Vec<DebBuilder> = (0..8)
        .map(|i| {
            DebBuilder::new(&format!("p{i}"), "1", "all")
                .dir("usr/share/doc", 0o755)
                .dir(&format!("usr/share/doc/p{i}"), 0o755)
                .file(
                    &format!("usr/share/doc/p{i}/copyright"),
                    format!("{i}").as_bytes(),
                    0o644,
                )
        })
        .collect();
    let u = s.unpack(&debs).unwrap();
    let names: Vec<&str> = u.iter().map(|u| u.name()).collect();
    assert_eq!(names, ["p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7"]);
    for i in 0..8 {
        assert_eq!(
            std::fs::read_to_string(s.root().join(format!("usr/share/doc/p{i}/copyright")))
                .unwrap(),
            i.to_string()
        );
    }
    // No temporary names left behind.
    let leftovers: Vec<_> = std::fs::read_dir(s.root().join("usr/share/doc"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".vbuild"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn corrupt_archives_give_errors_naming_the_package() {
    if !is_root() {
        return;
    }
    let s = Scratch::new();
    let p = s.dir.path().join("debs/garbage_1_all.deb");
    std::fs::write(&p, b"this is not a deb").unwrap();
    let e = unpack_all(&s.root(), std::slice::from_ref(&p), 1, &|_| {})
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("garbage_1_all.deb") && e.contains("ar archive"),
        "{e}"
    );

    let good = DebBuilder::new("trunc", "1", "all")
        .file("f", &[7u8; 100_000], 0o644)
        .compression(Compression::Gzip)
        .build();
    let p = s.dir.path().join("debs/trunc_1_all.deb");
    std::fs::write(&p, &good[..good.len() - 200]).unwrap();
    let e = unpack_all(&s.root(), &[p], 1, &|_| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("trunc_1_all.deb"), "{e}");

    let missing = s.dir.path().join("debs/none.deb");
    let e = unpack_all(&s.root(), &[missing], 1, &|_| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("none.deb"), "{e}");
}

/// The same malicious cases through the cpio reader (RPM payloads): the
/// writer is shared, so the protection must be too.
mod cpio {
    use super::{is_root, Scratch};
    use std::os::unix::fs::MetadataExt;
    use std::path::Path;
    use vbuild_builder::unpack::{extract_into, CpioReader, EntryError, Extracted};
    use vbuild_testkit::cpio::CpioBuilder;

    fn extract(s: &Scratch, archive: CpioBuilder) -> Result<Extracted, EntryError> {
        let bytes = archive.build();
        extract_into(&s.root(), &mut CpioReader::new(&bytes[..]))
    }

    #[test]
    fn dotdot_is_refused_and_absolute_names_stay_inside() {
        if !is_root() {
            return;
        }
        let s = Scratch::new();
        let e = extract(
            &s,
            CpioBuilder::new().file("./../outside/evil", b"pwned", 0o644),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("../outside/evil") && e.contains("outside the rootfs"),
            "{e}"
        );
        assert!(s.outside_listing().is_empty());
        let host_target = s.outside().join("abs");
        extract(
            &s,
            CpioBuilder::new().file(host_target.to_str().unwrap(), b"inside", 0o644),
        )
        .unwrap();
        assert!(!host_target.exists(), "absolute entry escaped to the host");
        assert_eq!(std::fs::read(s.inside(&host_target)).unwrap(), b"inside");
    }

    #[test]
    fn symlinks_in_the_archive_or_the_rootfs_cannot_redirect_writes() {
        if !is_root() {
            return;
        }
        let s = Scratch::new();
        let archive = CpioBuilder::new()
            .dir("./etc", 0o755)
            .symlink("./escape", "/")
            .file("./escape/etc/vbuild-test-passwd", b"x", 0o644)
            .symlink("./up", "../../../../../..")
            .file("./up/vbuild-test-up", b"y", 0o644);
        extract(&s, archive).unwrap();
        assert!(!Path::new("/etc/vbuild-test-passwd").exists());
        assert_eq!(
            std::fs::read(s.root().join("etc/vbuild-test-passwd")).unwrap(),
            b"x"
        );
        assert_eq!(
            std::fs::read(s.root().join("vbuild-test-up")).unwrap(),
            b"y"
        );

        let s = Scratch::new();
        let host = CpioBuilder::new()
            .symlink("./escape", s.outside().to_str().unwrap())
            .file("./escape/pwned", b"x", 0o644);
        let _ = extract(&s, host);
        assert!(s.outside_listing().is_empty(), "{:?}", s.outside_listing());

        let s = Scratch::new();
        std::os::unix::fs::symlink(s.outside(), s.root().join("var")).unwrap();
        std::os::unix::fs::symlink(s.outside().join("f"), s.root().join("etcfile")).unwrap();
        std::fs::write(s.outside().join("f"), "host").unwrap();
        let planted = CpioBuilder::new()
            .file("./etcfile", b"replaced", 0o644)
            .file("./var/lib/x", b"x", 0o644);
        let _ = extract(&s, planted);
        assert_eq!(std::fs::read(s.outside().join("f")).unwrap(), b"host");
        assert_eq!(s.outside_listing(), vec![s.outside().join("f")]);
        assert_eq!(
            std::fs::read(s.root().join("etcfile")).unwrap(),
            b"replaced"
        );
    }

    #[test]
    fn hardlinks_are_made_inside_and_cannot_reach_outside() {
        if !is_root() {
            return;
        }
        let s = Scratch::new();
        let secret = s.outside().join("secret");
        std::fs::write(&secret, "host").unwrap();
        // rpm-style hardlinks: data on the last name.
        extract(
            &s,
            CpioBuilder::new().hardlinked(&["./a", "./b"], b"shared", 0o644),
        )
        .unwrap();
        let (a, b) = (
            std::fs::metadata(s.root().join("a")).unwrap(),
            std::fs::metadata(s.root().join("b")).unwrap(),
        );
        assert_eq!((a.ino(), a.nlink()), (b.ino(), 2));
        assert_eq!(std::fs::read(s.root().join("a")).unwrap(), b"shared");
        // A hardlink group whose data-carrying name points outside.
        let e = extract(
            &s,
            CpioBuilder::new().hardlinked(&["./h", "./../outside/secret"], b"x", 0o644),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("outside the rootfs"), "{e}");
        assert_eq!(std::fs::read(&secret).unwrap(), b"host");
        assert_eq!(std::fs::metadata(&secret).unwrap().nlink(), 1);
        assert!(!s.root().join("h").exists());
    }
}
