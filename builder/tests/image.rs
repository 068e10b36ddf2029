//! Images through the real binary, against a generated signed repository on
//! loopback: `vbuild build --output` is byte-reproducible with
//! SOURCE_DATE_EPOCH and changes when an input changes; `export` then
//! `import` gives back the same tree (owners, modes, xattrs, hardlinks,
//! device nodes, fifos); hostile or truncated archives are refused in one
//! line and leave nothing.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use vbuild_testkit::deb::DebBuilder;
use vbuild_testkit::http::TestServer;
use vbuild_testkit::pgp::TestKey;
use vbuild_testkit::repo::{TestPackage, TestRepo};
use vbuild_testsupport::{is_root, require};

struct Mirror {
    _dir: tempfile::TempDir,
    server: TestServer,
    key_file: PathBuf,
}

fn deb(b: DebBuilder, fields: &[(&str, &str)]) -> TestPackage {
    let mut p = TestPackage::new(b.name(), "1.0", "amd64");
    for (k, v) in fields {
        p = p.field(k, v);
    }
    p.deb(b.build())
}

/// The os-release the test repository's `base-files` ships.
const OS_RELEASE: &str =
    "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\n\
VERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n\
HOME_URL=\"https://www.debian.org/\"\n";

/// busybox as the Essential shell, `hello` whose postinst writes a file
/// (new mtime every build) and a log (build state), and `extra`.
fn mirror() -> Mirror {
    let bb = std::fs::read("/bin/busybox").expect("busybox-static is installed by test.sh");
    let mut shell = DebBuilder::new("busybox-sh", "1.0", "amd64")
        .field("Essential", "yes")
        .dir("usr/bin", 0o755)
        .file("usr/bin/busybox", &bb, 0o755);
    for app in ["sh", "cat", "echo", "mkdir", "ln", "rm", "true", "date"] {
        shell = shell.symlink(&format!("usr/bin/{app}"), "busybox");
    }
    let hello = DebBuilder::new("hello", "1.0", "amd64")
        .field("Depends", "busybox-sh")
        .file("usr/share/hello/greeting", b"hi\n", 0o644)
        .script(
            "postinst",
            "#!/bin/sh\nset -e\necho configured > /var/lib/hello.done\nmkdir -p /var/log /etc\ndate > /var/log/hello.log\necho 0123456789abcdef0123456789abcdef > /etc/machine-id\n",
        );
    let extra = DebBuilder::new("extra", "1.0", "amd64").file("usr/share/extra", b"x\n", 0o644);
    // As Debian's base-files lays it out: the file in /usr/lib, a relative
    // symlink in /etc.
    let base = DebBuilder::new("base-files", "12.4", "amd64")
        .dir("usr/lib", 0o755)
        .dir("etc", 0o755)
        .file("usr/lib/os-release", OS_RELEASE.as_bytes(), 0o644)
        .symlink("etc/os-release", "../usr/lib/os-release");
    let mut repo = TestRepo::new("bookworm");
    repo.add(deb(
        shell,
        &[("Essential", "yes"), ("Priority", "required")],
    ))
    .add(deb(
        hello,
        &[("Depends", "busybox-sh"), ("Priority", "optional")],
    ))
    .add(deb(extra, &[("Priority", "optional")]))
    .add(deb(base, &[("Priority", "optional")]));
    let dir = tempfile::tempdir().unwrap();
    let key = TestKey::generate("vbuild image test <test@vbuild.invalid>");
    repo.write(dir.path(), &key).unwrap();
    let key_file = dir.path().join("test-key.asc");
    std::fs::write(&key_file, key.public_armored()).unwrap();
    let server = TestServer::serve(dir.path());
    Mirror {
        _dir: dir,
        server,
        key_file,
    }
}

fn vbuild(root: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vbuild"))
        .arg("--root")
        .arg(root)
        .arg("--quiet")
        .args(args)
        .envs(env.iter().copied())
        .env("VBUILD_IDRANGES", root.join("id-ranges.toml"))
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn build_image(m: &Mirror, root: &Path, out: &Path, include: &str, epoch: &str) -> Output {
    build_image_as(m, root, out, include, epoch, &[])
}

fn build_image_as(
    m: &Mirror,
    root: &Path,
    out: &Path,
    include: &str,
    epoch: &str,
    more: &[&str],
) -> Output {
    let url = m.server.url();
    let mut args = vec![
        "build",
        "debian",
        "bookworm",
        "--output",
        out.to_str().unwrap(),
        "--mirror",
        &url,
        "--keyring",
        m.key_file.to_str().unwrap(),
        "--variant",
        "essential",
        "--include",
        include,
        "--no-init",
    ];
    args.extend_from_slice(more);
    vbuild(root, &[("SOURCE_DATE_EPOCH", epoch)], &args)
}

/// `tar -t`-like listing via the tar crate: (name, uid, mtime).
fn listing(tar_bytes: &[u8]) -> Vec<(String, u64, u64)> {
    let mut a = tar::Archive::new(tar_bytes);
    a.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let h = e.header();
            (
                e.path().unwrap().display().to_string(),
                h.uid().unwrap(),
                h.mtime().unwrap(),
            )
        })
        .collect()
}

#[test]
fn build_output_is_byte_reproducible_and_follows_its_inputs() {
    if !require(
        is_root(),
        "needs root (maintainer scripts run in a context)",
    ) {
        return;
    }
    let m = mirror();
    let root = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let a = out.path().join("a.tar.zst");
    let b = out.path().join("b.tar.zst");
    for p in [&a, &b] {
        let o = build_image(&m, root.path(), p, "hello", "1700000000");
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let (ba, bb) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert!(ba.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]), "a zstd stream");
    assert!(ba == bb, "two builds of the same inputs differ");

    let tar = zstd::decode_all(&ba[..]).unwrap();
    let list = listing(&tar);
    let names: Vec<&str> = list.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names[0], "./");
    assert!(names.contains(&"var/lib/hello.done"), "{names:?}");
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("var/log/") && n.ends_with(".log")),
        "logs go: {names:?}"
    );
    assert!(
        list.iter().all(|(_, _, t)| *t <= 1_700_000_000),
        "mtimes clamped"
    );
    // Sorted: parents first, names of each directory in byte order.
    let etc: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| n.starts_with("usr/bin/"))
        .collect();
    let mut sorted = etc.clone();
    sorted.sort();
    assert_eq!(etc, sorted);
    assert!(names.contains(&"etc/machine-id"));
    let mut ar = tar::Archive::new(&tar[..]);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap() == Path::new("etc/machine-id") {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut e, &mut s).unwrap();
            assert!(
                s.trim().is_empty() || s == "uninitialized\n",
                "no baked machine id: {s:?}"
            );
        }
        assert_eq!(
            e.header().username().unwrap(),
            Some(""),
            "numeric owners only"
        );
    }

    // A changed input (one more package) gives other bytes.
    let c = out.path().join("c.tar.zst");
    let o = build_image(&m, root.path(), &c, "hello,extra", "1700000000");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_ne!(std::fs::read(&c).unwrap(), ba);

    // .tar, .tar.xz and DIR/ too; nothing but the outputs is left beside them.
    for (name, magic) in [("d.tar", &b"./"[..]), ("e.tar.xz", &b"\xfd7zXZ"[..])] {
        let p = out.path().join(name);
        let o = build_image(&m, root.path(), &p, "hello", "1700000000");
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(std::fs::read(&p).unwrap().starts_with(magic), "{name}");
    }
    let d = out.path().join("tree/");
    let o = build_image(&m, root.path(), &d, "hello", "1700000000");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.path().join("tree/var/lib/hello.done").is_file());
    let mut left: Vec<String> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            "a.tar.zst",
            "b.tar.zst",
            "c.tar.zst",
            "d.tar",
            "e.tar.xz",
            "tree"
        ]
    );
    assert!(
        !root.path().join("guests/bookworm").exists(),
        "an image build makes no guest"
    );

    // An existing output is never overwritten; an unknown suffix is named.
    let o = build_image(&m, root.path(), &a, "hello", "1700000000");
    assert!(!o.status.success());
    assert!(stderr(&o).contains("exists already"), "{}", stderr(&o));
    let o = build_image(&m, root.path(), &out.path().join("x.zip"), "hello", "1");
    assert!(
        stderr(&o).contains("cannot tell the format"),
        "{}",
        stderr(&o)
    );
    let o = build_image(&m, root.path(), &out.path().join("y.tar"), "hello", "soon");
    assert!(stderr(&o).contains("SOURCE_DATE_EPOCH"), "{}", stderr(&o));
    assert!(!out.path().join("y.tar").exists());
}

/// Everything an image must keep of one node.
#[derive(Debug, PartialEq, Eq)]
struct NodeInfo {
    mode: u32,
    uid: u32,
    gid: u32,
    rdev: u64,
    link: Option<PathBuf>,
    content: Option<Vec<u8>>,
    xattrs: Vec<(String, Vec<u8>)>,
    /// Other names of the same inode (hardlinks), sorted.
    same_inode_as: Vec<PathBuf>,
}

fn xattrs_of(p: &Path) -> Vec<(String, Vec<u8>)> {
    let c = CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    let mut buf = vec![0u8; 4096];
    // SAFETY: valid path and buffer.
    let n = unsafe { libc::llistxattr(c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n <= 0 {
        return vec![];
    }
    buf.truncate(n as usize);
    let mut out = vec![];
    for name in buf.split(|b| *b == 0).filter(|s| !s.is_empty()) {
        let cn = CString::new(name).unwrap();
        let mut v = vec![0u8; 4096];
        // SAFETY: valid path, name and buffer.
        let k = unsafe { libc::lgetxattr(c.as_ptr(), cn.as_ptr(), v.as_mut_ptr().cast(), v.len()) };
        v.truncate(k.max(0) as usize);
        out.push((String::from_utf8_lossy(name).into_owned(), v));
    }
    out.sort();
    out
}

fn snapshot(root: &Path) -> BTreeMap<PathBuf, NodeInfo> {
    let mut inodes: BTreeMap<u64, Vec<PathBuf>> = BTreeMap::new();
    let mut all = vec![];
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let p = root.join(&rel);
        let md = std::fs::symlink_metadata(&p).unwrap();
        if md.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                stack.push(rel.join(e.unwrap().file_name()));
            }
        }
        if md.is_file() {
            inodes.entry(md.ino()).or_default().push(rel.clone());
        }
        all.push((rel, md));
    }
    all.into_iter()
        .map(|(rel, md)| {
            let p = root.join(&rel);
            let mut same = if md.is_file() {
                inodes[&md.ino()]
                    .iter()
                    .filter(|o| **o != rel)
                    .cloned()
                    .collect()
            } else {
                vec![]
            };
            same.sort();
            let info = NodeInfo {
                mode: md.mode(),
                uid: md.uid(),
                gid: md.gid(),
                rdev: md.rdev(),
                link: md.is_symlink().then(|| std::fs::read_link(&p).unwrap()),
                content: md.is_file().then(|| std::fs::read(&p).unwrap()),
                xattrs: if md.is_symlink() {
                    vec![]
                } else {
                    xattrs_of(&p)
                },
                same_inode_as: same,
            };
            (rel, info)
        })
        .collect()
}

fn set_xattr(p: &Path, name: &str, value: &[u8]) {
    let c = CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    let n = CString::new(name).unwrap();
    // SAFETY: valid path, name and value.
    let r = unsafe {
        libc::setxattr(
            c.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(r, 0, "setxattr {name}: {}", std::io::Error::last_os_error());
}

/// A minimal guest made by hand (config + rootfs), with every node kind.
fn hand_made_guest(root: &Path, name: &str) -> PathBuf {
    let rootfs = root.join("guests").join(name).join("rootfs");
    for d in ["etc", "usr/bin", "dev", "run", "srv/data"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::write(
        rootfs.join("etc/os-release"),
        "ID=debian\nVERSION_CODENAME=bookworm\n",
    )
    .unwrap();
    std::fs::write(rootfs.join("usr/bin/ping"), b"\x7fELF not really").unwrap();
    std::fs::set_permissions(
        rootfs.join("usr/bin/ping"),
        std::fs::Permissions::from_mode(0o4755),
    )
    .unwrap();
    // cap_net_raw+ep, as `setcap` writes it (VFS_CAP_REVISION_2).
    let cap: [u8; 20] = [
        0, 0, 0, 2, 0, 0x20, 0, 0, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    set_xattr(&rootfs.join("usr/bin/ping"), "security.capability", &cap);
    set_xattr(&rootfs.join("srv/data"), "user.note", b"kept");
    std::fs::write(rootfs.join("srv/data/a"), "shared\n").unwrap();
    std::fs::hard_link(rootfs.join("srv/data/a"), rootfs.join("srv/b")).unwrap();
    std::os::unix::fs::symlink("../usr/bin/ping", rootfs.join("etc/ping-link")).unwrap();
    std::os::unix::fs::chown(rootfs.join("srv/data/a"), Some(1000), Some(1001)).unwrap();
    std::os::unix::fs::lchown(rootfs.join("etc/ping-link"), Some(7), Some(8)).unwrap();
    let mk = |rel: &str, kind: u32, dev: u64| {
        let c = CString::new(rootfs.join(rel).as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: valid path.
        assert_eq!(unsafe { libc::mknod(c.as_ptr(), kind | 0o640, dev) }, 0);
    };
    mk("dev/null", libc::S_IFCHR, libc::makedev(1, 3));
    mk("dev/loop9", libc::S_IFBLK, libc::makedev(7, 9));
    mk("run/fifo", libc::S_IFIFO, 0);
    std::fs::write(
        root.join("guests").join(name).join("guest.toml"),
        format!("name = \"{name}\"\ndistro = \"debian\"\nrelease = \"bookworm\"\nvariant = \"x\"\ncreated = 0\n[init]\npath = \"/sbin/init\"\n[net]\nmode = \"none\"\n"),
    )
    .unwrap();
    rootfs
}

#[test]
fn export_then_import_gives_back_the_same_tree() {
    if !require(is_root(), "needs root (owners, device nodes)") {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let src = hand_made_guest(root.path(), "g1");
    let files = tempfile::tempdir().unwrap();
    for (file, fmt) in [
        ("g1.tar.zst", None),
        ("g1.tar.xz", None),
        ("g1.tar", Some("tar")),
    ] {
        let img = files.path().join(file);
        let mut args = vec!["export", "g1", "--output", img.to_str().unwrap()];
        if let Some(f) = fmt {
            args.extend(["--format", f]);
        }
        let o = vbuild(root.path(), &[], &args);
        assert!(o.status.success(), "{}", stderr(&o));
        let name = format!("i{}", file.len());
        let o = vbuild(
            root.path(),
            &[],
            &[
                "import",
                img.to_str().unwrap(),
                "--name",
                &name,
                "--net-mode",
                "none",
                "--json",
            ],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        let report = String::from_utf8_lossy(&o.stdout);
        assert!(report.contains("\"debian/bookworm\""), "{report}");
        let dst = root.path().join("guests").join(&name).join("rootfs");
        let (a, b) = (snapshot(&src), snapshot(&dst));
        for (p, info) in &a {
            if p.as_os_str().is_empty() {
                continue; // the rootfs directory itself belongs to the store
            }
            assert_eq!(Some(info), b.get(p), "{file}: {}", p.display());
        }
        assert_eq!(a.len(), b.len(), "{file}: same number of nodes");
        let cfg =
            std::fs::read_to_string(root.path().join("guests").join(&name).join("guest.toml"))
                .unwrap();
        assert!(cfg.contains("release = \"bookworm\""), "{cfg}");
    }
    // An OCI image layout of the same guest: digests that match the blobs,
    // the init as entrypoint, the tar as the one layer.
    let oci = files.path().join("g1-oci");
    let o = vbuild(
        root.path(),
        &[],
        &[
            "export",
            "g1",
            "--output",
            oci.to_str().unwrap(),
            "--format",
            "oci",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let blob = |d: &str| {
        std::fs::read(
            oci.join("blobs/sha256")
                .join(d.trim_start_matches("sha256:")),
        )
        .unwrap()
    };
    let sha = |b: &[u8]| format!("sha256:{}", hex_sha(b));
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(oci.join("index.json")).unwrap()).unwrap();
    let md = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let manifest_bytes = blob(&md);
    assert_eq!(sha(&manifest_bytes), md);
    let manifest: serde_json::Value = serde_json::from_slice(&manifest_bytes).unwrap();
    let cd = manifest["config"]["digest"].as_str().unwrap();
    let config: serde_json::Value = serde_json::from_slice(&blob(cd)).unwrap();
    assert_eq!(config["config"]["Entrypoint"][0], "/sbin/init");
    let ld = manifest["layers"][0]["digest"].as_str().unwrap();
    let layer = blob(ld);
    assert_eq!(sha(&layer), ld);
    let mut tar = vec![];
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&layer[..]), &mut tar).unwrap();
    assert_eq!(config["rootfs"]["diff_ids"][0].as_str().unwrap(), sha(&tar));
    assert!(listing(&tar).iter().any(|(n, _, _)| n == "usr/bin/ping"));
    if require(
        which("skopeo"),
        "skopeo (apt-get install skopeo) to validate the OCI layout",
    ) {
        let o = Command::new("skopeo")
            .arg("inspect")
            .arg(format!("oci:{}", oci.display()))
            .output()
            .unwrap();
        assert!(o.status.success(), "skopeo inspect: {}", stderr(&o));
    }

    // The guest exists now: a second import of that name is refused.
    let img = files.path().join("g1.tar.zst");
    let o = vbuild(
        root.path(),
        &[],
        &[
            "import",
            img.to_str().unwrap(),
            "--name",
            "i10",
            "--net-mode",
            "none",
        ],
    );
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
}

fn hex_sha(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

fn which(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A tar with the given raw entries (name, type, link target, data).
fn raw_tar(entries: &[(&str, tar::EntryType, &str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, ty, link, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*ty);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(data.len() as u64);
        // Set the raw name bytes: the tar crate refuses `..` in set_path.
        let gnu = h.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        if !link.is_empty() {
            gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn hostile_or_broken_archives_are_refused_and_leave_nothing() {
    if !require(is_root(), "needs root (the store is root's)") {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let host = tempfile::tempdir().unwrap();
    let victim = host.path().join("victim");
    std::fs::write(&victim, "host\n").unwrap();
    let v = victim.to_str().unwrap().trim_start_matches('/').to_string();
    let dotdot = format!("../../../../../../../../{v}");
    let good = raw_tar(&[
        ("./etc/", tar::EntryType::Directory, "", b""),
        ("./etc/a", tar::EntryType::Regular, "", &[b'x'; 3000]),
    ]);
    let mut truncated = zstd::encode_all(&good[..], 3).unwrap();
    truncated.truncate(truncated.len() / 2);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "dotdot.tar",
            raw_tar(&[(&dotdot, tar::EntryType::Regular, "", b"pwned\n")]),
            "names `..`",
        ),
        (
            "hardlink-out.tar",
            raw_tar(&[("./x", tar::EntryType::Link, &dotdot, b"")]),
            "outside the rootfs",
        ),
        ("truncated.tar.zst", truncated, "import failed"),
        ("empty.tar", vec![], "empty file"),
        ("garbage.tar", vec![b'z'; 700], "import failed"),
    ];
    for (file, bytes, want) in cases {
        let p = files.path().join(file);
        std::fs::write(&p, &bytes).unwrap();
        let o = vbuild(
            root.path(),
            &[],
            &[
                "import",
                p.to_str().unwrap(),
                "--name",
                "bad",
                "--net-mode",
                "none",
            ],
        );
        assert!(!o.status.success(), "{file} imported");
        let e = stderr(&o);
        assert_eq!(e.trim_end().lines().count(), 1, "{file}: one line: {e}");
        assert!(
            e.contains(want) && e.contains("nothing was kept"),
            "{file}: {e}"
        );
        assert!(
            !root.path().join("guests/bad").exists(),
            "{file}: remains left"
        );
        assert_eq!(
            std::fs::read_to_string(&victim).unwrap(),
            "host\n",
            "{file}"
        );
    }
    // A symlink the archive plants is followed inside the new root only.
    let p = files.path().join("symlink.tar");
    let dir = host.path().to_str().unwrap();
    std::fs::write(
        &p,
        raw_tar(&[
            ("./escape", tar::EntryType::Symlink, dir, b""),
            ("./escape/victim", tar::EntryType::Regular, "", b"pwned\n"),
        ]),
    )
    .unwrap();
    let o = vbuild(
        root.path(),
        &[],
        &[
            "import",
            p.to_str().unwrap(),
            "--name",
            "sym",
            "--net-mode",
            "none",
        ],
    );
    let _ = o;
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "host\n");
}

#[test]
fn export_to_squashfs_is_reproducible_and_unsquashes_to_the_same_tree() {
    if !require(is_root(), "needs root (owners, device nodes)")
        || !require(
            which("tar2sqfs") && which("unsquashfs"),
            "squashfs-tools-ng and squashfs-tools (scripts/host-deps.sh) for .squashfs",
        )
    {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let src = hand_made_guest(root.path(), "g1");
    let files = tempfile::tempdir().unwrap();
    let export = |file: &str, epoch: &str| {
        let img = files.path().join(file);
        let o = vbuild(
            root.path(),
            &[("SOURCE_DATE_EPOCH", epoch)],
            &["export", "g1", "--output", img.to_str().unwrap()],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        std::fs::read(&img).unwrap()
    };
    let a = export("a.squashfs", "1700000000");
    let b = export("b.squashfs", "1700000000");
    assert_eq!(&a[..4], b"hsqs");
    assert_eq!(hex_sha(&a), hex_sha(&b), "same tree, same bytes");
    let c = export("c.squashfs", "1700000001");
    assert_ne!(hex_sha(&a), hex_sha(&c), "another epoch, other bytes");

    // The listing shows the owners, modes and device numbers of the tree.
    let img = files.path().join("a.squashfs");
    let o = Command::new("unsquashfs")
        .arg("-lln")
        .arg(&img)
        .output()
        .unwrap();
    assert!(o.status.success(), "unsquashfs -lln: {}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    let line = |p: &str| {
        text.lines()
            .find(|l| {
                l.ends_with(&format!("squashfs-root/{p}"))
                    || l.contains(&format!("squashfs-root/{p} -> "))
            })
            .unwrap_or_else(|| panic!("{p} not listed:\n{text}"))
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(line("usr/bin/ping"), "-rwsr-xr-x 0/0");
    assert_eq!(line("srv/data/a"), "-rw-r--r-- 1000/1001");
    assert_eq!(line("etc/ping-link"), "lrwxrwxrwx 7/8");
    assert_eq!(line("dev/null"), "crw-r----- 0/0");
    assert_eq!(line("dev/loop9"), "brw-r----- 0/0");
    assert_eq!(line("run/fifo"), "prw-r----- 0/0");
    let listed = text.lines().filter(|l| l.contains("squashfs-root")).count();
    assert_eq!(listed, snapshot(&src).len(), "{text}");

    // Unsquashed, it is the same tree: xattrs (file capabilities too) and
    // hard links included.
    let out = files.path().join("unsquashed");
    let o = Command::new("unsquashfs")
        .args(["-q", "-n", "-d"])
        .arg(&out)
        .arg(&img)
        .output()
        .unwrap();
    assert!(o.status.success(), "unsquashfs: {}", stderr(&o));
    let (want, got) = (snapshot(&src), snapshot(&out));
    for (p, info) in &want {
        if p.as_os_str().is_empty() {
            continue;
        }
        assert_eq!(Some(info), got.get(p), "{}", p.display());
    }
    assert_eq!(want.len(), got.len());
}

/// podman with a store of its own under `dir`: images, layers, container
/// state, its tmp and its lock files all live there, so nothing reaches
/// /var/lib/containers or /run/containers and removing `dir` removes all.
fn podman(dir: &Path, args: &[&str]) -> Output {
    Command::new("podman")
        .arg("--root")
        .arg(dir.join("storage"))
        .arg("--runroot")
        .arg(dir.join("run"))
        .arg("--tmpdir")
        .arg(dir.join("tmp"))
        // vfs: plain directories, no overlay mounts to leave behind.
        .args(["--storage-driver", "vfs", "--events-backend", "none"])
        // PID 1 here is not systemd.
        .args(["--cgroup-manager", "cgroupfs"])
        // runc, not bookworm's default crun 1.8: crun refuses a cgroup v1
        // hybrid host whose v2 hierarchy holds a controller ("cgroups in
        // hybrid mode not supported"), as this one's holds hugetlb.
        .args(["--runtime", "runc"])
        .args(args)
        .env("CONTAINERS_CONF", dir.join("containers.conf"))
        .env("TMPDIR", dir.join("tmp"))
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .output()
        .unwrap()
}

/// Removes the cgroup `rel` (and the ones podman made under it) from every
/// hierarchy; asserts none is left.
fn remove_cgroups(rel: &str) {
    let mut left = vec![];
    for h in std::fs::read_dir("/sys/fs/cgroup").unwrap() {
        let top = h.unwrap().path().join(rel.trim_start_matches('/'));
        if !top.is_dir() {
            continue;
        }
        let mut dirs = vec![top.clone()];
        let mut i = 0;
        while i < dirs.len() {
            for e in std::fs::read_dir(&dirs[i]).unwrap() {
                let e = e.unwrap();
                if e.file_type().unwrap().is_dir() {
                    dirs.push(e.path());
                }
            }
            i += 1;
        }
        for d in dirs.iter().rev() {
            if std::fs::remove_dir(d).is_err() {
                left.push(d.clone());
            }
        }
    }
    assert!(left.is_empty(), "cgroups left: {left:?}");
}

#[test]
fn podman_loads_the_oci_output_and_runs_it_to_print_the_os_release() {
    if !require(
        is_root(),
        "needs root (maintainer scripts run in a context)",
    ) || !require(
        which("podman") && which("runc"),
        "podman and runc (scripts/host-deps.sh) to run the OCI layout",
    ) {
        return;
    }
    let m = mirror();
    let root = tempfile::tempdir().unwrap();
    // podman load names the image after the layout's path, which must be
    // a valid (lowercase) reference: not tempdir's random mixed case.
    let out = tempfile::Builder::new()
        .prefix(&format!("vbuild-image-test-{}", std::process::id()))
        .rand_bytes(0)
        .tempdir()
        .unwrap();
    let oci = out.path().join("bookworm-oci");
    let o = build_image_as(
        &m,
        root.path(),
        &oci,
        "base-files",
        "1700000000",
        &["--format", "oci"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(oci.join("index.json").is_file());

    let store = tempfile::tempdir().unwrap();
    std::fs::write(store.path().join("containers.conf"), "").unwrap();
    std::fs::create_dir(store.path().join("tmp")).unwrap();
    let had_system_store = Path::new("/var/lib/containers").exists();
    let o = podman(store.path(), &["load", "-i", oci.to_str().unwrap()]);
    assert!(o.status.success(), "podman load: {}", stderr(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("Loaded image"),
        "podman load: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    // The store is the test's own: the one image in it is the loaded one
    // (its name comes from the layout's path, so it is used by id).
    let o = podman(store.path(), &["images", "-q", "--no-trunc"]);
    assert!(o.status.success(), "podman images: {}", stderr(&o));
    let ids = String::from_utf8_lossy(&o.stdout).into_owned();
    let ids: Vec<&str> = ids.lines().collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let image = ids[0].trim_start_matches("sha256:").to_string();
    let o = podman(
        store.path(),
        &[
            "image",
            "inspect",
            "--format",
            "{{.Config.Entrypoint}} {{.Architecture}} {{.Os}}",
            &image,
        ],
    );
    assert!(o.status.success(), "podman image inspect: {}", stderr(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "[/sbin/init] amd64 linux",
        "the config podman read"
    );
    // The entrypoint is the guest's init (this build has none): cat instead.
    // Explicit, low rlimits: podman 4.3 gives a rootful container
    // RLIMIT_NOFILE 1048576 by default, and `--ulimit host` means
    // fs.nr_open and kernel.pid_max to it (1048576, 32768) rather than
    // the caller's limits; both are above this host's hard limits
    // (nofile 20000 here), and without CAP_SYS_RESOURCE (which the
    // sandbox the tests run in lacks) the runtime may not raise them:
    // "error setting rlimit type 7: operation not permitted". Lowering is
    // always allowed, and `cat` needs no more.
    // A cgroup parent of the test's own, removed at the end.
    let cgroup = format!("/vbuild-test-img-{}", std::process::id());
    let o = podman(
        store.path(),
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "--cgroup-parent",
            &cgroup,
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=4096:4096",
            "--entrypoint",
            "/usr/bin/cat",
            &image,
            "/etc/os-release",
        ],
    );
    remove_cgroups(&cgroup);
    assert!(o.status.success(), "podman run: {}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), OS_RELEASE);

    let o = podman(store.path(), &["ps", "-a", "-q"]);
    assert!(
        o.status.success() && o.stdout.is_empty(),
        "no container is left"
    );
    let o = podman(store.path(), &["rmi", "-a", "-f"]);
    assert!(o.status.success(), "podman rmi: {}", stderr(&o));
    if !had_system_store {
        // podman 4.3 keeps its blob-info cache in /var/lib/containers/cache
        // for root whatever --root says: nothing else may be there (images
        // and layers stayed in the test's store), and the test removes it.
        let system = Path::new("/var/lib/containers");
        let mut found = vec![];
        if system.exists() {
            for e in std::fs::read_dir(system).unwrap() {
                found.push(e.unwrap().file_name().to_string_lossy().into_owned());
            }
            std::fs::remove_dir_all(system).unwrap();
        }
        assert!(
            found.iter().all(|n| n == "cache"),
            "podman wrote to the system store: {found:?}"
        );
    }
}

#[test]
fn build_writes_squashfs_and_the_lxc_and_incus_pairs() {
    if !require(
        is_root(),
        "needs root (maintainer scripts run in a context)",
    ) || !require(
        which("tar2sqfs") && which("unsquashfs"),
        "squashfs-tools-ng and squashfs-tools (scripts/host-deps.sh) for .squashfs",
    ) {
        return;
    }
    let m = mirror();
    let root = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let json = |o: &Output| -> serde_json::Value {
        assert!(o.status.success(), "{}", stderr(o));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let names = |d: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    // .squashfs: the report's sha256 is the file's, and it holds the build.
    let sq = out.path().join("b.squashfs");
    let r = json(&build_image_as(
        &m,
        root.path(),
        &sq,
        "hello,base-files",
        "1700000000",
        &["--json"],
    ));
    let bytes = std::fs::read(&sq).unwrap();
    assert_eq!(r["image"]["format"], "squashfs");
    assert_eq!(r["image"]["sha256"], hex_sha(&bytes).as_str());
    let o = Command::new("unsquashfs")
        .args(["-cat"])
        .arg(&sq)
        .arg("var/lib/hello.done")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "configured\n",
        "{}",
        stderr(&o)
    );
    // --format lxc and incus: a directory with the pair each tool imports.
    for (format, want) in [
        ("lxc", ["meta.tar.xz", "rootfs.tar.xz"]),
        ("incus", ["incus.tar.xz", "rootfs.squashfs"]),
    ] {
        let d = out.path().join(format!("b-{format}"));
        let r = json(&build_image_as(
            &m,
            root.path(),
            &d,
            "hello,base-files",
            "1700000000",
            &["--json", "--format", format],
        ));
        assert_eq!(r["image"]["format"], format);
        assert_eq!(names(&d), want);
        for (i, f) in want.iter().enumerate() {
            let b = std::fs::read(d.join(f)).unwrap();
            assert_eq!(r["image"]["files"][i]["path"], *f);
            assert_eq!(r["image"]["files"][i]["sha256"], hex_sha(&b).as_str());
        }
    }
    // A tree without an os-release cannot say what it is: refused in words,
    // nothing left beside the output.
    let bare = out.path().join("b-bare");
    let o = build_image_as(
        &m,
        root.path(),
        &bare,
        "busybox-sh",
        "1700000000",
        &["--format", "lxc"],
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("has no /etc/os-release or /usr/lib/os-release"),
        "{}",
        stderr(&o)
    );
    assert!(!bare.exists());
    let left: Vec<_> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// An overlay guest by hand: a template tree and the guest's layer, whose
/// upper directory changes one file, adds one and deletes one (a whiteout,
/// as overlayfs writes it).
fn hand_made_overlay_guest(root: &Path, name: &str) {
    let id = "ab".repeat(32);
    let lower = root.join("templates").join(&id).join("rootfs");
    for d in ["etc", "usr/bin", "srv"] {
        std::fs::create_dir_all(lower.join(d)).unwrap();
    }
    std::fs::write(
        lower.join("etc/os-release"),
        "ID=debian\nVERSION_CODENAME=bookworm\n",
    )
    .unwrap();
    std::fs::write(lower.join("etc/motd"), "template\n").unwrap();
    std::fs::write(lower.join("srv/gone"), "deleted in the guest\n").unwrap();
    std::fs::write(lower.join("usr/bin/tool"), "kept\n").unwrap();
    let layer = root.join("guests").join(name).join("layer");
    let upper = layer.join("upper");
    std::fs::create_dir_all(upper.join("etc")).unwrap();
    std::fs::create_dir_all(upper.join("srv")).unwrap();
    std::fs::create_dir_all(layer.join("work")).unwrap();
    std::fs::create_dir_all(root.join("guests").join(name).join("rootfs")).unwrap();
    std::fs::write(upper.join("etc/motd"), "guest\n").unwrap();
    std::fs::write(upper.join("srv/new"), "added\n").unwrap();
    let c = CString::new(upper.join("srv/gone").as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: valid path; a 0/0 character device is overlayfs's whiteout.
    assert_eq!(unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR, 0) }, 0);
    std::fs::write(
        root.join("guests").join(name).join("guest.toml"),
        format!("name = \"{name}\"\ndistro = \"debian\"\nrelease = \"bookworm\"\nvariant = \"x\"\ncreated = 0\ntemplate = \"{id}\"\n[init]\npath = \"/sbin/init\"\n[net]\nmode = \"none\"\n"),
    )
    .unwrap();
}

#[test]
fn export_of_an_overlay_guest_is_its_layer_over_its_template() {
    if !require(is_root(), "needs root (overlay mounts)") {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    hand_made_overlay_guest(root.path(), "ov1");
    let out = root.path().join("ov1.tar");
    let o = vbuild(
        root.path(),
        &[],
        &["export", "ov1", "--output", out.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let mut a = tar::Archive::new(std::fs::File::open(&out).unwrap());
    let mut files = BTreeMap::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let p = e.path().unwrap().display().to_string();
        let mut b = String::new();
        if e.header().entry_type().is_file() {
            std::io::Read::read_to_string(&mut e, &mut b).unwrap();
        }
        files.insert(p.trim_start_matches("./").to_string(), b);
    }
    assert_eq!(files["etc/motd"], "guest\n", "the layer's change");
    assert_eq!(files["srv/new"], "added\n", "the layer's new file");
    assert_eq!(files["usr/bin/tool"], "kept\n", "the template's file");
    assert!(
        !files.contains_key("srv/gone"),
        "deleted in the guest: {files:?}"
    );
    // Nothing was mounted on the guest's rootfs, and nothing is left mounted.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(root.path().to_str().unwrap()), "{mounts}");
}
