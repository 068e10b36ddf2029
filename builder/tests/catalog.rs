//! Catalogs through the real binary: `catalog add` writes the simplestreams
//! and LXC indices and a signed manifest whose every hash is the file's;
//! `catalog serve` speaks TLS 1.3 only and never leaves its directory;
//! `pull` verifies signature, size and sha256 before importing, and every
//! failure (bad signature, corrupt or truncated image, another
//! architecture, a hostile archive) leaves no guest and no temporary file.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use vbuild_builder::catalog::sign;
use vbuild_builder::image::{write_image, Format, TarOptions};
use vbuild_testkit::pgp::TestKey;
use vbuild_testsupport::{is_root, require};

const EPOCH: &str = "1700000000";
const SERIAL: &str = "20231114_2213";

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

fn host_arch() -> &'static str {
    vbuild_builder::distro::debian::index::host_arch()
}

/// A small root filesystem: busybox as every program, an os-release, and
/// `extra` bytes of incompressible data (to make downloads take a while).
fn tree(dir: &Path, release: &str, elf: Option<&[u8]>, extra: usize) {
    let bin = dir.join("usr/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(dir.join("etc")).unwrap();
    std::fs::create_dir_all(dir.join("sbin")).unwrap();
    match elf {
        Some(b) => std::fs::write(bin.join("busybox"), b).unwrap(),
        None => {
            std::fs::copy("/bin/busybox", bin.join("busybox"))
                .expect("busybox-static is installed by test.sh");
        }
    }
    for app in ["sh", "cat", "hostname"] {
        std::os::unix::fs::symlink("busybox", bin.join(app)).unwrap();
    }
    std::os::unix::fs::symlink("/usr/bin/busybox", dir.join("sbin/init")).unwrap();
    std::fs::write(
        dir.join("etc/os-release"),
        format!(
            "PRETTY_NAME=\"Debian GNU/Linux 12 ({release})\"\nID=debian\nVERSION_CODENAME={release}\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("etc/hostname"), "built\n").unwrap();
    if extra > 0 {
        let mut x = 0x9e3779b97f4a7c15u64;
        let data: Vec<u8> = (0..extra)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        std::fs::write(dir.join("etc/noise"), data).unwrap();
    }
}

/// `tree` written as a .tar.zst image.
fn image(work: &Path, name: &str, release: &str, elf: Option<&[u8]>, extra: usize) -> PathBuf {
    let t = work.join(format!("{name}.tree"));
    tree(&t, release, elf, extra);
    let out = work.join(format!("{name}.tar.zst"));
    write_image(
        &t,
        &out,
        Format::TarZst,
        &TarOptions {
            clamp_mtime: Some(1_700_000_000),
            ..Default::default()
        },
        &["/sbin/init".to_string()],
    )
    .unwrap();
    out
}

fn sha256(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

fn unxz(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    xz2::read::XzDecoder::new(b).read_to_end(&mut out).unwrap();
    out
}

fn unzstd(b: &[u8]) -> Vec<u8> {
    zstd::decode_all(b).unwrap()
}

/// Name -> content of every regular file of a tar.
fn members(tar: &[u8]) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut a = tar::Archive::new(tar);
    let mut m = std::collections::BTreeMap::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().display().to_string();
        let mut b = Vec::new();
        e.read_to_end(&mut b).unwrap();
        m.insert(name, b);
    }
    m
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Files under `dir` whose name starts with `prefix`, recursively.
fn leftovers(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if e.file_name().to_string_lossy().starts_with(prefix) {
            out.push(p.clone());
        }
        if e.file_type().unwrap().is_dir() {
            out.extend(leftovers(&p, prefix));
        }
    }
    out
}

struct Signed {
    key: TestKey,
    secret: PathBuf,
    public: PathBuf,
}

fn key(work: &Path, who: &str) -> Signed {
    let key = TestKey::generate(&format!("{who} <catalog@vbuild.invalid>"));
    let secret = work.join(format!("{who}.secret.asc"));
    let public = work.join(format!("{who}.asc"));
    std::fs::write(&secret, key.secret_armored()).unwrap();
    std::fs::write(&public, key.public_armored()).unwrap();
    Signed {
        key,
        secret,
        public,
    }
}

fn add(root: &Path, cat: &Path, img: &Path, k: Option<&Signed>) -> Output {
    let mut args = vec![
        "--json".to_string(),
        "catalog".into(),
        "add".into(),
        cat.display().to_string(),
        img.display().to_string(),
    ];
    if let Some(k) = k {
        args.push("--sign".into());
        args.push(k.secret.display().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    vbuild(root, &[("SOURCE_DATE_EPOCH", EPOCH)], &args)
}

#[test]
fn catalog_add_writes_both_indices_and_a_signed_manifest() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let root = w.join("root");
    let k = key(w, "publisher");
    let img = image(w, "bookworm", "bookworm", None, 0);
    let cat = w.join("catalog");
    let o = add(&root, &cat, &img, Some(&k));
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let arch = host_arch();
    let product = format!("debian:bookworm:default:{arch}");
    assert_eq!(report["product"], product.as_str());
    assert_eq!(report["serial"], SERIAL);

    let dir = format!("images/debian/bookworm/{arch}/default/{SERIAL}");
    let rootfs = std::fs::read(cat.join(&dir).join("rootfs.tar.xz")).unwrap();
    let meta = std::fs::read(cat.join(&dir).join("incus.tar.xz")).unwrap();
    let lxc_meta = std::fs::read(cat.join(&dir).join("meta.tar.xz")).unwrap();
    // The rootfs is the image's own tree, re-encoded as xz, with LXC's
    // placeholder for the container's name in /etc/hostname and /etc/hosts.
    let mut want = members(&unzstd(&std::fs::read(&img).unwrap()));
    assert_eq!(want.remove("etc/hostname").unwrap(), b"built\n");
    let mut got = members(&unxz(&rootfs));
    assert_eq!(got.remove("etc/hostname").unwrap(), b"LXC_NAME\n");
    let hosts = String::from_utf8(got.remove("etc/hosts").unwrap()).unwrap();
    assert!(hosts.contains("\n127.0.1.1\tLXC_NAME\n"), "{hosts}");
    assert_eq!(got, want);
    // The squashfs holds the same tree (tar2sqfs is in scripts/host-deps.sh).
    let squashfs = std::fs::read(cat.join(&dir).join("rootfs.squashfs")).unwrap();
    let sq = w.join("unsquashed");
    let o = Command::new("unsquashfs")
        .args(["-no-progress", "-d"])
        .arg(&sq)
        .arg(cat.join(&dir).join("rootfs.squashfs"))
        .output()
        .unwrap();
    assert!(o.status.success(), "unsquashfs: {}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(sq.join("etc/hostname")).unwrap(),
        "LXC_NAME\n"
    );
    assert_eq!(
        std::fs::read(sq.join("usr/bin/busybox")).unwrap(),
        std::fs::read(w.join("bookworm.tree/usr/bin/busybox")).unwrap()
    );

    // simplestreams
    let index = json(&cat.join("streams/v1/index.json"));
    assert_eq!(index["format"], "index:1.0");
    let entry = &index["index"]["images"];
    assert_eq!(entry["datatype"], "image-downloads");
    assert_eq!(entry["path"], "streams/v1/images.json");
    assert_eq!(entry["products"], serde_json::json!([product]));
    let images = json(&cat.join("streams/v1/images.json"));
    assert_eq!(images["content_id"], "images");
    assert_eq!(images["format"], "products:1.0");
    let p = &images["products"][&product];
    assert_eq!(p["arch"], arch);
    assert_eq!(p["os"], "debian");
    assert_eq!(p["release"], "bookworm");
    assert_eq!(p["variant"], "default");
    assert_eq!(p["release_title"], "Debian GNU/Linux 12 (bookworm)");
    assert_eq!(p["aliases"], "debian/bookworm/default,debian/bookworm");
    let items = &p["versions"][SERIAL]["items"];
    let mi = &items["incus.tar.xz"];
    assert_eq!(mi["ftype"], "incus.tar.xz");
    assert_eq!(mi["path"], format!("{dir}/incus.tar.xz").as_str());
    assert_eq!(mi["size"], meta.len() as u64);
    assert_eq!(mi["sha256"], sha256(&meta).as_str());
    let combined = sha256(&[meta.clone(), rootfs.clone()].concat());
    assert_eq!(mi["combined_rootxz_sha256"], combined.as_str());
    assert_eq!(report["fingerprint"], combined.as_str());
    let combined_sq = sha256(&[meta.clone(), squashfs.clone()].concat());
    assert_eq!(mi["combined_squashfs_sha256"], combined_sq.as_str());
    assert_eq!(report["fingerprint_squashfs"], combined_sq.as_str());
    let si = &items["squashfs"];
    assert_eq!(si["ftype"], "squashfs");
    assert_eq!(si["path"], format!("{dir}/rootfs.squashfs").as_str());
    assert_eq!(si["size"], squashfs.len() as u64);
    assert_eq!(si["sha256"], sha256(&squashfs).as_str());
    let ri = &items["root.tar.xz"];
    assert_eq!(ri["ftype"], "root.tar.xz");
    assert_eq!(ri["path"], format!("{dir}/rootfs.tar.xz").as_str());
    assert_eq!(ri["size"], rootfs.len() as u64);
    assert_eq!(ri["sha256"], sha256(&rootfs).as_str());
    // vbuild's own zstd item: the same tree, placeholders in, as the xz.
    let zst = std::fs::read(cat.join(&dir).join("rootfs.tar.zst")).unwrap();
    let zi = &items["root.tar.zst"];
    assert_eq!(zi["ftype"], "root.tar.zst");
    assert_eq!(zi["path"], format!("{dir}/rootfs.tar.zst").as_str());
    assert_eq!(zi["size"], zst.len() as u64);
    assert_eq!(zi["sha256"], sha256(&zst).as_str());
    assert_eq!(unzstd(&zst), unxz(&rootfs));
    let m = members(&unxz(&meta));
    let yaml = String::from_utf8(m["metadata.yaml"].clone()).unwrap();
    let karch = if arch == "amd64" { "x86_64" } else { "aarch64" };
    assert!(
        yaml.starts_with(&format!(
            "architecture: {karch}\ncreation_date: 1700000000\n"
        )),
        "{yaml}"
    );
    assert!(
        yaml.contains(
            "  /etc/hostname:\n    when:\n    - create\n    - copy\n    template: hostname.tpl\n"
        ),
        "{yaml}"
    );
    assert_eq!(m["templates/hostname.tpl"], b"{{ instance.name }}\n");
    assert!(String::from_utf8_lossy(&m["templates/hosts.tpl"])
        .contains("127.0.1.1\t{{ instance.name }}\n"));

    // LXC
    let line = format!("debian;bookworm;{arch};default;{SERIAL};/{dir}\n");
    assert_eq!(
        std::fs::read_to_string(cat.join("meta/1.0/index-system")).unwrap(),
        line
    );
    assert_eq!(
        std::fs::read_to_string(cat.join("meta/1.0/index-user")).unwrap(),
        line
    );
    let lm = members(&unxz(&lxc_meta));
    assert_eq!(
        String::from_utf8_lossy(&lm["config"]),
        format!("lxc.include = LXC_TEMPLATE_CONFIG/common.conf\nlxc.arch = {karch}\n")
    );
    assert_eq!(lm["templates"], b"/etc/hostname\n/etc/hosts\n");

    // The manifest lists every index and image file with its real hash.
    let mbytes = std::fs::read(cat.join("vbuild-catalog.json")).unwrap();
    let manifest = sign::Manifest::parse(&mbytes).unwrap();
    let listed: Vec<&str> = manifest.files.keys().map(String::as_str).collect();
    let mut want = vec![
        format!("{dir}/incus.tar.xz"),
        format!("{dir}/meta.tar.xz"),
        format!("{dir}/rootfs.squashfs"),
        format!("{dir}/rootfs.tar.xz"),
        format!("{dir}/rootfs.tar.zst"),
        "meta/1.0/index-system".into(),
        "meta/1.0/index-user".into(),
        "streams/v1/images.json".into(),
        "streams/v1/index.json".into(),
    ];
    want.sort();
    assert_eq!(listed, want);
    for (path, sum) in &manifest.files {
        let b = std::fs::read(cat.join(path)).unwrap();
        assert_eq!(
            (sum.size, sum.sha256.as_str()),
            (b.len() as u64, sha256(&b).as_str()),
            "{path}"
        );
    }
    let asc = std::fs::read(cat.join("vbuild-catalog.json.asc")).unwrap();
    let public = k.key.public_armored();
    let by = sign::verify(public.as_bytes(), "publisher.asc", &asc, &mbytes).unwrap();
    assert_eq!(by, k.key.signing_key_id());
    let mut tampered = mbytes.clone();
    let at = tampered.iter().position(|&b| b == b'0').unwrap();
    tampered[at] = b'1';
    let e = sign::verify(public.as_bytes(), "publisher.asc", &asc, &tampered).unwrap_err();
    assert!(e.to_string().contains("BAD signature"), "{e}");
    let other = TestKey::generate("someone else");
    let e = sign::verify(
        other.public_armored().as_bytes(),
        "other.asc",
        &asc,
        &mbytes,
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("not the pinned --key other.asc"),
        "{e}"
    );

    // The same version again, or unsigned into a signed catalog: refused,
    // the catalog byte for byte as it was, no staging left.
    let before = std::fs::read(cat.join("streams/v1/images.json")).unwrap();
    let o = add(&root, &cat, &img, Some(&k));
    assert!(!o.status.success());
    let err: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("{product} already has version {SERIAL}")),
        "{err}"
    );
    let o = add(&root, &cat, &img, None);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("this catalog is signed; give --sign KEY.asc")
    );
    assert_eq!(
        std::fs::read(cat.join("streams/v1/images.json")).unwrap(),
        before
    );
    assert_eq!(
        std::fs::read(cat.join("vbuild-catalog.json")).unwrap(),
        mbytes
    );
    assert!(leftovers(&cat, ".vbuild-add").is_empty());

    // A second release joins both indices; the manifest covers both.
    let trixie = image(w, "trixie", "trixie", None, 0);
    let o = add(&root, &cat, &trixie, Some(&k));
    assert!(o.status.success(), "{}", stderr(&o));
    let index = json(&cat.join("streams/v1/index.json"));
    assert_eq!(
        index["index"]["images"]["products"],
        serde_json::json!([product, format!("debian:trixie:default:{arch}")])
    );
    let lines = std::fs::read_to_string(cat.join("meta/1.0/index-system")).unwrap();
    assert_eq!(
        lines,
        format!("{line}debian;trixie;{arch};default;{SERIAL};/images/debian/trixie/{arch}/default/{SERIAL}\n")
    );
    let manifest =
        sign::Manifest::parse(&std::fs::read(cat.join("vbuild-catalog.json")).unwrap()).unwrap();
    // Four indices and five files (incus.tar.xz, meta.tar.xz, rootfs.tar.xz,
    // rootfs.tar.zst, rootfs.squashfs) of each image.
    assert_eq!(manifest.files.len(), 14);
}

#[test]
fn catalog_add_refuses_what_is_not_a_root_filesystem_and_leaves_nothing() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let root = w.join("root");
    // No os-release.
    let t = w.join("bare");
    std::fs::create_dir_all(t.join("usr/bin")).unwrap();
    std::fs::copy("/bin/busybox", t.join("usr/bin/busybox")).unwrap();
    let img = w.join("bare.tar.zst");
    write_image(&t, &img, Format::TarZst, &TarOptions::default(), &[]).unwrap();
    let cat = w.join("catalog");
    let o = add(&root, &cat, &img, None);
    assert!(!o.status.success());
    let msg = String::from_utf8_lossy(&o.stdout);
    assert!(
        msg.contains("has no /etc/os-release or /usr/lib/os-release"),
        "{msg}"
    );
    assert!(!cat.exists(), "a failed first add leaves no catalog");
    // Not an archive at all.
    let junk = w.join("junk.tar.zst");
    std::fs::write(&junk, b"not an archive, just text\n").unwrap();
    let o = add(&root, &cat, &junk, None);
    assert!(!o.status.success());
    assert!(!cat.exists());
    // An unknown machine.
    let mut elf = vec![0u8; 64];
    elf[..4].copy_from_slice(b"\x7fELF");
    elf[4] = 2;
    elf[5] = 1;
    elf[18] = 0x99;
    let img = image(w, "odd", "bookworm", Some(&elf), 0);
    let o = add(&root, &cat, &img, None);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("ELF machine 153"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(!cat.exists());
}

/// A running `vbuild catalog serve` on a free loopback port.
struct Server {
    child: Child,
    url: String,
    cert: PathBuf,
}

impl Server {
    fn start(root: &Path, dir: &Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_vbuild"))
            .arg("--root")
            .arg(root)
            .args(["--json", "catalog", "serve"])
            .arg(dir)
            .args(["--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut text = String::new();
        loop {
            let mut l = String::new();
            if out.read_line(&mut l).unwrap() == 0 {
                let mut e = String::new();
                child.stderr.take().unwrap().read_to_string(&mut e).unwrap();
                panic!("catalog serve ended: {text} {e}");
            }
            text.push_str(&l);
            if l == "}\n" {
                break;
            }
        }
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        Server {
            child,
            url: format!("https://{}", v["address"].as_str().unwrap()),
            cert: PathBuf::from(v["cert"].as_str().unwrap()),
        }
    }

    fn stop(mut self) -> std::process::ExitStatus {
        // SAFETY: signalling our own child by its pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn curl(args: &[&str]) -> (String, String) {
    let o = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{size_download}",
        ])
        .args(args)
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn catalog_serve_speaks_tls13_only_and_stays_inside_its_directory() {
    if !require(
        Command::new("curl").arg("--version").output().is_ok(),
        "needs curl (scripts/host-deps.sh) as a client",
    ) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let root = w.join("root");
    let img = image(w, "bookworm", "bookworm", None, 0);
    let cat = w.join("catalog");
    assert!(add(&root, &cat, &img, None).status.success());
    std::fs::write(w.join("secret"), "outside\n").unwrap();
    std::os::unix::fs::symlink(w.join("secret"), cat.join("escape")).unwrap();
    std::os::unix::fs::symlink("../secret", cat.join("meta/up")).unwrap();
    let s = Server::start(&root, &cat);
    assert_eq!(s.cert, root.join("catalog-tls/cert.pem"));
    let cert = s.cert.display().to_string();
    let index_len = std::fs::metadata(cat.join("meta/1.0/index-system"))
        .unwrap()
        .len();
    let u = |p: &str| format!("{}{p}", s.url);
    // lxc-download's double slash, verified against the printed certificate.
    let (got, e) = curl(&["--cacert", &cert, &u("//meta/1.0/index-system")]);
    assert_eq!(got, format!("200 {index_len}"), "{e}");
    let (got, _) = curl(&["--cacert", &cert, "-I", &u("/streams/v1/index.json")]);
    assert_eq!(got, "200 0");
    // TLS 1.2 is refused.
    let (got, _) = curl(&[
        "--cacert",
        &cert,
        "--tlsv1.2",
        "--tls-max",
        "1.2",
        &u("/streams/v1/index.json"),
    ]);
    assert_eq!(got, "000 0");
    // Nothing outside the directory, whatever the path or link.
    let (got, _) = curl(&["--cacert", &cert, "--path-as-is", &u("/meta/../../secret")]);
    assert_eq!(got, "403 14");
    let (got, _) = curl(&[
        "--cacert",
        &cert,
        "--path-as-is",
        &u("/meta/%2e%2e/%2e%2e/secret"),
    ]);
    assert_eq!(got, "403 14");
    for p in [
        "/escape",
        "/meta/up",
        "/.vbuild-catalog.lock",
        "/meta",
        "/nothing",
    ] {
        let (got, _) = curl(&["--cacert", &cert, &u(p)]);
        assert_eq!(got, "404 14", "{p}");
    }
    let (got, _) = curl(&[
        "--cacert",
        &cert,
        "-X",
        "POST",
        &u("/streams/v1/index.json"),
    ]);
    assert_eq!(got, "405 23");
    // SIGTERM: a clean stop.
    let st = s.stop();
    assert_eq!(st.code(), Some(0));
}

/// A tar.zst whose extra entry climbs out of the root (`../../NAME`).
fn hostile_image(work: &Path, escape: &str) -> PathBuf {
    let t = work.join("hostile.tree");
    tree(&t, "bookworm", None, 0);
    let plain = work.join("hostile.tar");
    write_image(&t, &plain, Format::Tar, &TarOptions::default(), &[]).unwrap();
    let mut tar = std::fs::read(&plain).unwrap();
    // Drop the two end-of-archive blocks, append the hostile entry, end again.
    tar.truncate(tar.len() - 1024);
    let mut h = tar::Header::new_ustar();
    let name = format!("../../{escape}");
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.set_mode(0o644);
    h.set_size(4);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    tar.extend_from_slice(h.as_bytes());
    let mut block = b"evil".to_vec();
    block.resize(512, 0);
    tar.extend_from_slice(&block);
    tar.extend_from_slice(&[0u8; 1024]);
    let out = work.join("hostile.tar.zst");
    std::fs::write(&out, zstd::encode_all(&tar[..], 3).unwrap()).unwrap();
    out
}

/// The `vbuild pull` command line of one pull (`--json`, no network).
fn pull_command(
    root: &Path,
    url: &str,
    image: &str,
    name: &str,
    key: Option<&Path>,
    env: &[(&str, &str)],
) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vbuild"));
    c.arg("--root").arg(root).args([
        "--json",
        "pull",
        url,
        image,
        "--name",
        name,
        "--net-mode",
        "none",
    ]);
    if let Some(k) = key {
        c.arg("--key").arg(k);
    }
    c.env("VBUILD_IDRANGES", root.join("id-ranges.toml"));
    c.env_remove("SSL_CERT_FILE");
    c.envs(env.iter().copied());
    c
}

fn pull(
    root: &Path,
    url: &str,
    image: &str,
    name: &str,
    key: Option<&Path>,
    env: &[(&str, &str)],
) -> Output {
    pull_command(root, url, image, name, key, env)
        .output()
        .unwrap()
}

/// `pull` with `--copy`: the guest gets a full tree of its own.
fn pull_copy(root: &Path, url: &str, image: &str, name: &str, env: &[(&str, &str)]) -> Output {
    pull_command(root, url, image, name, None, env)
        .arg("--copy")
        .output()
        .unwrap()
}

/// The regular files of guest `name` as `vbuild export` reads them (for an
/// overlay guest: its layer over its template).
fn exported(root: &Path, name: &str) -> std::collections::BTreeMap<String, Vec<u8>> {
    let out = root.join(format!("{name}.export.tar"));
    let o = vbuild(
        root,
        &[],
        &["export", name, "--output", out.to_str().unwrap()],
    );
    assert!(o.status.success(), "export {name}: {}", stderr(&o));
    let m = members(&std::fs::read(&out).unwrap())
        .into_iter()
        .map(|(k, v)| (k.trim_start_matches("./").to_string(), v))
        .collect();
    std::fs::remove_file(&out).unwrap();
    m
}

/// Ids of the templates in `root`, and any half-made template directory.
fn templates(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root.join("templates"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.ends_with(".lock") && n != ".resolved")
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn error_of(o: &Output) -> String {
    assert!(
        !o.status.success(),
        "expected a failure: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|_| panic!("one JSON error: {}", String::from_utf8_lossy(&o.stdout)));
    v["error"]["message"].as_str().unwrap().to_string()
}

/// Nothing of guest `name`, no download and no template left in `root`.
fn assert_nothing_left(root: &Path, name: &str) {
    assert!(
        !root.join("guests").join(name).exists(),
        "{name} was left behind"
    );
    assert_eq!(leftovers(root, ".pull-"), Vec::<PathBuf>::new());
    assert_eq!(templates(root), Vec::<String>::new(), "a template was left");
}

#[test]
fn pull_verifies_signature_size_and_hash_before_importing() {
    if !require(is_root(), "needs root (a pulled image becomes a guest)") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let root = w.join("root");
    let k = key(w, "publisher");
    let stranger = key(w, "stranger");
    let img = image(w, "bookworm", "bookworm", None, 0);
    let cat = w.join("catalog");
    assert!(add(&root, &cat, &img, Some(&k)).status.success());
    let s = Server::start(&root, &cat);

    // Pinned key: the self-signed certificate is accepted, and said so once.
    let o = pull(
        &root,
        &s.url,
        "debian/bookworm",
        "c12pull1",
        Some(&k.public),
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        r["product"],
        format!("debian:bookworm:default:{}", host_arch()).as_str()
    );
    assert_eq!(r["serial"], SERIAL);
    assert_eq!(r["verified_by"], k.key.signing_key_id().as_str());
    // vbuild's zstd item, not the xz one incus and LXC take.
    assert_eq!(r["item"], "root.tar.zst");
    assert_eq!(
        stderr(&o)
            .matches("not checking the TLS certificate")
            .count(),
        1,
        "{}",
        stderr(&o)
    );
    // The image became a template under its sha256, the guest an overlay
    // of it; the catalog's LXC_NAME placeholders became the guest's name
    // in its own layer, the template keeps them.
    let dir = format!("images/debian/bookworm/{}/default/{SERIAL}", host_arch());
    let zst_sha = sha256(&std::fs::read(cat.join(&dir).join("rootfs.tar.zst")).unwrap());
    assert_eq!(r["template"], zst_sha.as_str());
    assert_eq!(r["template_reused"], false);
    assert_eq!(templates(&root), vec![zst_sha.clone()]);
    let tpl = root.join("templates").join(&zst_sha).join("rootfs");
    assert_eq!(
        std::fs::read_to_string(tpl.join("etc/hostname")).unwrap(),
        "LXC_NAME\n"
    );
    let cfg = std::fs::read_to_string(root.join("guests/c12pull1/guest.toml")).unwrap();
    assert!(cfg.contains(&format!("template = \"{zst_sha}\"")), "{cfg}");
    let files = exported(&root, "c12pull1");
    assert_eq!(files["etc/hostname"], b"c12pull1\n");
    assert!(String::from_utf8_lossy(&files["etc/hosts"]).contains("\n127.0.1.1\tc12pull1\n"));
    assert_eq!(
        files["etc/os-release"],
        std::fs::read(w.join("bookworm.tree/etc/os-release")).unwrap()
    );
    assert_eq!(
        files["usr/bin/busybox"],
        std::fs::read("/bin/busybox").unwrap()
    );
    assert_eq!(leftovers(&root, ".pull-"), Vec::<PathBuf>::new());
    // The same image again: nothing downloaded, another overlay of the
    // same template, with its own name.
    let o = pull(
        &root,
        &s.url,
        "debian/bookworm",
        "c12pull1b",
        Some(&k.public),
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["template"], zst_sha.as_str());
    assert_eq!(r["template_reused"], true);
    assert_eq!(r["bytes"], 0);
    assert!(stderr(&o).contains("nothing to download"), "{}", stderr(&o));
    assert_eq!(exported(&root, "c12pull1b")["etc/hostname"], b"c12pull1b\n");
    assert_eq!(exported(&root, "c12pull1")["etc/hostname"], b"c12pull1\n");
    // Refused while guests use it; removed by prune once none does.
    let p = vbuild(&root, &[], &["template", "prune", &zst_sha]);
    assert!(!p.status.success(), "{}", stderr(&p));
    for g in ["c12pull1", "c12pull1b"] {
        let d = vbuild(&root, &[], &["delete", g]);
        assert!(d.status.success(), "{}", stderr(&d));
    }
    let p = vbuild(&root, &[], &["template", "prune"]);
    assert!(p.status.success(), "{}", stderr(&p));
    assert_eq!(templates(&root), Vec::<String>::new());

    // No key: the certificate must verify; trusted via SSL_CERT_FILE it does.
    let e = error_of(&pull(
        &root,
        &s.url,
        "debian/bookworm",
        "c12pull2",
        None,
        &[],
    ));
    assert!(e.contains("certificate"), "{e}");
    assert!(e.contains("pin the catalog's key with --key"), "{e}");
    assert_nothing_left(&root, "c12pull2");
    let cert = s.cert.display().to_string();
    let o = pull(
        &root,
        &s.url,
        "debian/bookworm",
        "c12pull2",
        None,
        &[("SSL_CERT_FILE", &cert)],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    assert!(!stderr(&o).contains("not checking"));
    assert!(vbuild(&root, &[], &["delete", "c12pull2"]).status.success());
    // A catalog without the zstd item (made by another tool): the xz one.
    let images = cat.join("streams/v1/images.json");
    let good = std::fs::read(&images).unwrap();
    let mut v: serde_json::Value = serde_json::from_slice(&good).unwrap();
    let product = format!("debian:bookworm:default:{}", host_arch());
    v["products"][&product]["versions"][SERIAL]["items"]
        .as_object_mut()
        .unwrap()
        .remove("root.tar.zst")
        .unwrap();
    std::fs::write(&images, serde_json::to_vec(&v).unwrap()).unwrap();
    let o = pull(
        &root,
        &s.url,
        "debian/bookworm",
        "c12pull2",
        None,
        &[("SSL_CERT_FILE", &cert)],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["item"], "root.tar.xz");
    assert_eq!(exported(&root, "c12pull2")["etc/hostname"], b"c12pull2\n");
    std::fs::write(&images, &good).unwrap();
    assert!(vbuild(&root, &[], &["delete", "c12pull2"]).status.success());
    // --copy: a full tree of the guest's own, no template.
    let o = pull_copy(
        &root,
        &s.url,
        "debian/bookworm",
        "c12pull2",
        &[("SSL_CERT_FILE", &cert)],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(r["template"].is_null(), "{r}");
    assert_eq!(
        std::fs::read_to_string(root.join("guests/c12pull2/rootfs/etc/hostname")).unwrap(),
        "c12pull2\n"
    );
    assert!(vbuild(&root, &[], &["delete", "c12pull2"]).status.success());
    // The cached templates go, so the cases below download again.
    assert!(vbuild(&root, &[], &["template", "prune"]).status.success());
    assert_eq!(templates(&root), Vec::<String>::new());

    // Another key: refused before anything is downloaded.
    let e = error_of(&pull(
        &root,
        &s.url,
        "debian/bookworm",
        "c12pull3",
        Some(&stranger.public),
        &[],
    ));
    assert!(e.contains("which is not the pinned --key"), "{e}");
    assert_nothing_left(&root, "c12pull3");

    // A changed images.json (signature still the old one).
    let images = cat.join("streams/v1/images.json");
    let good = std::fs::read(&images).unwrap();
    std::fs::write(
        &images,
        String::from_utf8(good.clone())
            .unwrap()
            .replace("\"default\"", "\"default\" "),
    )
    .unwrap();
    let e = error_of(&pull(
        &root,
        &s.url,
        "debian/bookworm",
        "c12pull3",
        Some(&k.public),
        &[],
    ));
    assert!(
        e.contains("streams/v1/images.json: ")
            && e.contains("but the signed vbuild-catalog.json says"),
        "{e}"
    );
    assert_nothing_left(&root, "c12pull3");
    std::fs::write(&images, &good).unwrap();

    // The image pull takes changed (same size) and then truncated.
    let dir = format!("images/debian/bookworm/{}/default/{SERIAL}", host_arch());
    let rootfs_xz = cat.join(&dir).join("rootfs.tar.zst");
    let orig = std::fs::read(&rootfs_xz).unwrap();
    let mut flipped = orig.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0xff;
    std::fs::write(&rootfs_xz, &flipped).unwrap();
    let e = error_of(&pull(
        &root,
        &s.url,
        "debian/bookworm",
        "c12pull3",
        Some(&k.public),
        &[],
    ));
    assert!(
        e.contains(&format!("but the catalog says {}", sha256(&orig))),
        "{e}"
    );
    assert_nothing_left(&root, "c12pull3");
    std::fs::write(&rootfs_xz, &orig[..orig.len() / 3]).unwrap();
    let e = error_of(&pull(
        &root,
        &s.url,
        "debian/bookworm",
        "c12pull3",
        Some(&k.public),
        &[],
    ));
    assert!(
        e.contains(&format!(
            "truncated download: {} of {} bytes",
            orig.len() / 3,
            orig.len()
        )),
        "{e}"
    );
    assert_nothing_left(&root, "c12pull3");
    std::fs::write(&rootfs_xz, &orig).unwrap();

    // Not in the catalog.
    let e = error_of(&pull(
        &root,
        &s.url,
        "debian/sid",
        "c12pull3",
        Some(&k.public),
        &[],
    ));
    assert!(e.contains("has no image debian/sid/default"), "{e}");
    assert_nothing_left(&root, "c12pull3");
    assert_eq!(s.stop().code(), Some(0));
}

#[test]
fn pull_refuses_other_architectures_and_hostile_archives_leaving_nothing() {
    if !require(is_root(), "needs root (a pulled image becomes a guest)") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let root = w.join("root");
    let k = key(w, "publisher");
    // An image whose programs are for another machine.
    let (other, machine) = if host_arch() == "arm64" {
        ("amd64", 62u8)
    } else {
        ("arm64", 183u8)
    };
    let mut elf = vec![0u8; 64];
    elf[..4].copy_from_slice(b"\x7fELF");
    elf[4] = 2;
    elf[5] = 1;
    elf[18] = machine;
    let foreign = image(w, "foreign", "bookworm", Some(&elf), 0);
    let cat = w.join("catalog");
    assert!(add(&root, &cat, &foreign, Some(&k)).status.success());
    let hostile = hostile_image(w, "c12-escaped");
    let o = Command::new(env!("CARGO_BIN_EXE_vbuild"))
        .arg("--root")
        .arg(&root)
        .args(["catalog", "add"])
        .arg(&cat)
        .arg(&hostile)
        .args(["--sign", k.secret.to_str().unwrap(), "--variant", "hostile"])
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let s = Server::start(&root, &cat);
    let e = error_of(&pull(
        &root,
        &s.url,
        "debian/bookworm",
        "c12pull4",
        Some(&k.public),
        &[],
    ));
    assert!(
        e.contains(&format!(
            "has debian/bookworm/default only for {other}, not for this host's {}",
            host_arch()
        )),
        "{e}"
    );
    assert_nothing_left(&root, "c12pull4");
    let e = error_of(&pull(
        &root,
        &s.url,
        "debian/bookworm/hostile",
        "c12pull4",
        Some(&k.public),
        &[],
    ));
    assert!(e.contains("nothing was kept"), "{e}");
    assert!(e.contains(".."), "{e}");
    assert_nothing_left(&root, "c12pull4");
    assert!(!w.join("c12-escaped").exists() && !root.join("c12-escaped").exists());
    assert!(!Path::new("/c12-escaped").exists());
    assert_eq!(s.stop().code(), Some(0));
}

/// Runs an LXC tool with the catalog's certificate trusted the way wget
/// documents (`ca_certificate` in a WGETRC) and the download cache kept in
/// the test's directory.
fn lxc(w: &Path, cert: &Path, tool: &str, args: &[&str]) -> Output {
    let wgetrc = w.join("wgetrc");
    std::fs::write(&wgetrc, format!("ca_certificate = {}\n", cert.display())).unwrap();
    Command::new(tool)
        .args(args)
        .env("WGETRC", &wgetrc)
        .env("LXC_CACHE_PATH", w.join("lxc-cache"))
        .output()
        .unwrap()
}

#[test]
fn lxc_create_downloads_from_a_served_catalog_and_the_container_starts() {
    if !require(
        is_root(),
        "needs root (lxc-create reads index-system as root)",
    ) || !require(
        Path::new("/usr/share/lxc/templates/lxc-download").exists(),
        "needs lxc (scripts/host-deps.sh) as the real LXC client",
    ) {
        return;
    }
    let _lxc = LXC_CLIENTS.lock().unwrap_or_else(|e| e.into_inner());
    let pivots_before = lxc_pivots();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let root = w.join("root");
    let img = image(w, "bookworm", "bookworm", None, 0);
    let cat = w.join("catalog");
    assert!(add(&root, &cat, &img, None).status.success());
    let s = Server::start(&root, &cat);
    let server = s.url.trim_start_matches("https://").to_string();
    let lxcpath = w.join("lxc");
    std::fs::create_dir(&lxcpath).unwrap();
    let netless = w.join("netless.conf");
    std::fs::write(&netless, "lxc.net.0.type = empty\n").unwrap();
    let p = lxcpath.display().to_string();
    let name = "c12lxc1";
    let o = lxc(
        w,
        &s.cert,
        "lxc-create",
        &[
            "-P",
            &p,
            "-n",
            name,
            "-f",
            netless.to_str().unwrap(),
            "-t",
            "download",
            "--",
            "--server",
            &server,
            "--dist",
            "debian",
            "--release",
            "bookworm",
            "--arch",
            host_arch(),
        ],
    );
    assert!(
        o.status.success(),
        "lxc-create: {}{}",
        String::from_utf8_lossy(&o.stdout),
        stderr(&o)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("made by vbuild"));
    let rootfs = lxcpath.join(name).join("rootfs");
    assert_eq!(
        std::fs::read(rootfs.join("usr/bin/busybox")).unwrap(),
        std::fs::read("/bin/busybox").unwrap()
    );
    assert_eq!(
        std::fs::read_to_string(rootfs.join("etc/os-release")).unwrap(),
        std::fs::read_to_string(w.join("bookworm.tree/etc/os-release")).unwrap()
    );
    // lxc-download put the container's name in the placeholders.
    assert_eq!(
        std::fs::read_to_string(rootfs.join("etc/hostname")).unwrap(),
        format!("{name}\n")
    );
    let hosts = std::fs::read_to_string(rootfs.join("etc/hosts")).unwrap();
    assert!(hosts.contains(&format!("\n127.0.1.1\t{name}\n")), "{hosts}");
    let config = std::fs::read_to_string(lxcpath.join(name).join("config")).unwrap();
    assert!(
        config.contains("lxc.include = /usr/share/lxc/config/common.conf\n"),
        "{config}"
    );
    let karch = if host_arch() == "amd64" {
        "x86_64"
    } else {
        "aarch64"
    };
    assert!(
        config.contains(&format!("lxc.arch = {karch}\n")),
        "{config}"
    );
    assert_eq!(s.stop().code(), Some(0));

    // Start it (busybox init as PID 1), see it running, stop and destroy it.
    lxc_start_see_running_and_destroy(w, &lxcpath, name);
    remove_new_lxc_pivots(&pivots_before);
}

/// Starts LXC container `name` of `lxcpath` (busybox init as PID 1), sees
/// it RUNNING, stops and destroys it: nothing of it is left.
fn lxc_start_see_running_and_destroy(w: &Path, lxcpath: &Path, name: &str) {
    let p = lxcpath.display().to_string();
    let log = w.join("lxc.log");
    let o = lxc(
        w,
        &log,
        "lxc-start",
        &["-P", &p, "-n", name, "-d", "-o", log.to_str().unwrap()],
    );
    let started = o.status.success()
        && lxc(
            w,
            &log,
            "lxc-wait",
            &["-P", &p, "-n", name, "-s", "RUNNING", "-t", "30"],
        )
        .status
        .success();
    let state = lxc(w, &log, "lxc-info", &["-P", &p, "-n", name, "-s", "-H"]);
    let _ = lxc(w, &log, "lxc-stop", &["-P", &p, "-n", name, "-k"]);
    let destroyed = lxc(w, &log, "lxc-destroy", &["-P", &p, "-n", name]);
    assert!(
        started,
        "lxc-start: {} {}",
        stderr(&o),
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert_eq!(String::from_utf8_lossy(&state.stdout).trim(), "RUNNING");
    assert!(destroyed.status.success(), "{}", stderr(&destroyed));
    assert!(!lxcpath.join(name).exists());
}

/// liblxc (lxc-start, incusd) leaves an empty `lxc.pivot` cgroup for its
/// monitor: removes the ones not in `before` and asserts none is left.
/// The tests that run liblxc hold `LXC_CLIENTS`, so one test never takes
/// another's pivot away.
fn remove_new_lxc_pivots(before: &[PathBuf]) {
    for made in lxc_pivots().into_iter().filter(|d| !before.contains(d)) {
        // The monitor may still be leaving it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while let Err(e) = std::fs::remove_dir(&made) {
            assert!(
                std::time::Instant::now() < deadline,
                "removing {}: {e}",
                made.display()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
    assert_eq!(lxc_pivots(), before, "an lxc.pivot cgroup left behind");
}

/// Held by each test that runs liblxc (see `remove_new_lxc_pivots`).
static LXC_CLIENTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The `lxc.pivot` cgroups that exist now, in every hierarchy.
fn lxc_pivots() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("lxc.pivot"))
        .chain([PathBuf::from("/sys/fs/cgroup/lxc.pivot")])
        .filter(|d| d.is_dir())
        .collect();
    out.sort();
    out
}

/// A hand-started `incusd` (PID 1 here is not systemd) whose state, client
/// configuration and HOME live in one temporary directory; dropping it
/// deletes its instances, shuts it down and detaches anything it left
/// mounted there.
struct Incusd {
    child: Child,
    dir: PathBuf,
}

impl Incusd {
    fn start(dir: &Path) -> Incusd {
        for d in ["state", "conf/servercerts", "home"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        let child = Command::new(incusd_path().unwrap())
            .args(["--group", "root", "--logfile"])
            .arg(dir.join("incusd.log"))
            .env("INCUS_DIR", dir.join("state"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let d = Incusd {
            child,
            dir: dir.to_path_buf(),
        };
        let o = d.incus(&["admin", "waitready", "--timeout", "60"], None);
        assert!(o.status.success(), "incusd: {}", d.log());
        // A directory pool and no network: `admin init --minimal` would also
        // make the bridge incusbr0, a host-wide name.
        let preseed =
            "storage_pools:\n- name: default\n  driver: dir\nprofiles:\n- name: default\n  \
                       devices:\n    root:\n      path: /\n      pool: default\n      type: disk\n";
        let o = d.incus(&["admin", "init", "--preseed"], Some(preseed));
        assert!(o.status.success(), "incus admin init: {}", stderr(&o));
        d
    }

    /// Runs the incus client against this daemon, at most two minutes.
    fn incus(&self, args: &[&str], input: Option<&str>) -> Output {
        let mut c = Command::new("timeout");
        c.arg("120")
            .arg("incus")
            .args(args)
            .env("INCUS_DIR", self.dir.join("state"))
            .env("INCUS_CONF", self.dir.join("conf"))
            .env("HOME", self.dir.join("home"))
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut ch = c.spawn().unwrap();
        if let Some(i) = input {
            use std::io::Write;
            ch.stdin.take().unwrap().write_all(i.as_bytes()).unwrap();
        }
        ch.wait_with_output().unwrap()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("incusd.log")).unwrap_or_default()
    }

    /// Mount points at or under the daemon's directory, deepest first.
    fn mounts(&self) -> Vec<String> {
        let dir = self.dir.display().to_string();
        let mut v: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
            .filter(|m| m == &dir || m.starts_with(&format!("{dir}/")))
            .collect();
        v.sort_by_key(|m| std::cmp::Reverse(m.len()));
        v
    }

    /// Deletes `instances`, shuts the daemon down and waits for it.
    fn stop(&mut self, instances: &[&str]) {
        for i in instances {
            let _ = self.incus(&["delete", "--force", i], None);
        }
        let _ = self.incus(&["admin", "shutdown", "--timeout", "60"], None);
        let _ = self.child.kill();
        let _ = self.child.wait();
        for m in self.mounts() {
            let c = std::ffi::CString::new(m).unwrap();
            // SAFETY: a NUL-terminated path; detaching a mount incusd made.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

impl Drop for Incusd {
    fn drop(&mut self) {
        self.stop(&["ct-inc1"]);
    }
}

/// incusd, where Debian's incus package puts it.
fn incusd_path() -> Option<PathBuf> {
    ["/usr/libexec/incus/incusd", "/usr/lib/incus/incusd"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

#[test]
fn incus_launches_a_guest_from_a_served_catalog_and_its_init_runs() {
    if !require(is_root(), "needs root (incusd runs containers)")
        || !require(
            incusd_path().is_some() && Command::new("incus").arg("--version").output().is_ok(),
            "needs incus 6.0 (scripts/host-deps.sh, from bookworm-backports) as the real Incus client",
        )
    {
        return;
    }
    let _lxc = LXC_CLIENTS.lock().unwrap_or_else(|e| e.into_inner());
    let pivots_before = lxc_pivots();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let root = w.join("root");
    // busybox init with an inittab whose sysinit step leaves a mark.
    let t = w.join("incus.tree");
    tree(&t, "bookworm", None, 0);
    std::fs::write(
        t.join("etc/inittab"),
        "::sysinit:/usr/bin/busybox mkdir /etc/ct-init-ran\n",
    )
    .unwrap();
    let img = w.join("incus.tar.zst");
    write_image(
        &t,
        &img,
        Format::TarZst,
        &TarOptions {
            clamp_mtime: Some(1_700_000_000),
            ..Default::default()
        },
        &[],
    )
    .unwrap();
    let cat = w.join("catalog");
    let o = add(&root, &cat, &img, None);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // incus prefers the squashfs item when a version has one.
    let fingerprint = report["fingerprint_squashfs"].as_str().unwrap().to_string();
    assert_ne!(report["fingerprint"].as_str().unwrap(), fingerprint);
    let s = Server::start(&root, &cat);
    let mut d = Incusd::start(&w.join("incus"));
    // The served certificate trusted the way incus documents.
    std::fs::copy(&s.cert, d.dir.join("conf/servercerts/vb.crt")).unwrap();
    let o = d.incus(
        &["remote", "add", "vb", &s.url, "--protocol=simplestreams"],
        None,
    );
    assert!(o.status.success(), "incus remote add: {}", stderr(&o));
    let o = d.incus(
        &["launch", "vb:debian/bookworm", "ct-inc1", "--quiet"],
        None,
    );
    assert!(
        o.status.success(),
        "incus launch: {}\n{}",
        stderr(&o),
        d.log()
    );
    let state = d.incus(&["list", "ct-inc1", "-c", "s", "--format", "csv"], None);
    assert_eq!(String::from_utf8_lossy(&state.stdout).trim(), "RUNNING");
    // Its init ran its sysinit step (polled: init starts as launch returns).
    let mut ran = false;
    for _ in 0..60 {
        let o = d.incus(
            &[
                "exec",
                "ct-inc1",
                "--",
                "/usr/bin/busybox",
                "ls",
                "-d",
                "/etc/ct-init-ran",
            ],
            None,
        );
        if o.status.success() {
            ran = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    assert!(ran, "busybox init never ran its sysinit step");
    let pid1 = d.incus(
        &[
            "exec",
            "ct-inc1",
            "--",
            "/usr/bin/busybox",
            "readlink",
            "/proc/1/exe",
        ],
        None,
    );
    assert_eq!(
        String::from_utf8_lossy(&pid1.stdout).trim(),
        "/usr/bin/busybox"
    );
    // metadata.yaml's templates gave the instance its own name.
    let host = d.incus(
        &["exec", "ct-inc1", "--", "/usr/bin/cat", "/etc/hostname"],
        None,
    );
    assert_eq!(String::from_utf8_lossy(&host.stdout), "ct-inc1\n");
    // incus fingerprints the image by our combined_squashfs_sha256.
    let o = d.incus(&["image", "list", "local:", "--format", "json"], None);
    let images: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let fps: Vec<&str> = images
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["fingerprint"].as_str())
        .collect();
    assert_eq!(fps, vec![fingerprint.as_str()]);

    d.stop(&["ct-inc1"]);
    assert_eq!(d.mounts(), Vec::<String>::new());
    assert!(!Path::new("/sys/fs/cgroup/memory/lxc.payload.ct-inc1").exists());
    assert!(!Path::new("/sys/fs/cgroup/unified/lxc.payload.ct-inc1").exists());
    assert_eq!(s.stop().code(), Some(0));
    drop(d);
    remove_new_lxc_pivots(&pivots_before);
}

/// Waits until process `pid` holds its download file open (an unnamed
/// O_TMPFILE in `root`, or a hidden `.pull-` file) with a MiB in it: the
/// download is under way.
fn wait_for_download(pid: u32, root: &Path) -> bool {
    let root = root.display().to_string();
    for _ in 0..200_000 {
        let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            return false;
        };
        for e in rd.flatten() {
            if let Ok(l) = std::fs::read_link(e.path()) {
                let l = l.display().to_string();
                let size = std::fs::metadata(e.path()).map_or(0, |m| m.len());
                if l.starts_with(&root)
                    && (l.ends_with("(deleted)") || l.contains(".pull-"))
                    && size >= 1 << 20
                {
                    return true;
                }
            }
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    false
}

#[test]
fn an_interrupted_pull_leaves_nothing_and_the_name_pulls_again() {
    if !require(is_root(), "needs root (a pulled image becomes a guest)") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let root = w.join("root");
    let k = key(w, "publisher");
    // Incompressible, so the download lasts long enough to be cut.
    let img = image(w, "big", "bookworm", None, 48 << 20);
    let cat = w.join("catalog");
    assert!(add(&root, &cat, &img, Some(&k)).status.success());
    let name = "ct-pull-int";

    // The server dies mid-download: one clear error, nothing kept.
    let mut s = Server::start(&root, &cat);
    let child = pull_command(&root, &s.url, "debian/bookworm", name, Some(&k.public), &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        wait_for_download(child.id(), &root),
        "the download never began"
    );
    // SAFETY: signalling our own child by its pid.
    unsafe { libc::kill(s.child.id() as i32, libc::SIGKILL) };
    let o = child.wait_with_output().unwrap();
    let e = error_of(&o);
    assert!(
        e.contains("download broke off after") || e.contains("truncated download"),
        "{e}"
    );
    assert!(e.contains("nothing was kept"), "{e}");
    assert_nothing_left(&root, name);
    let _ = s.child.wait();

    // vbuild itself is SIGKILLed mid-download (the server held still).
    s = Server::start(&root, &cat);
    let mut child = pull_command(&root, &s.url, "debian/bookworm", name, Some(&k.public), &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_for_download(child.id(), &root),
        "the download never began"
    );
    // SAFETY: signalling our own children by their pids.
    unsafe { libc::kill(s.child.id() as i32, libc::SIGSTOP) };
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let st = child.wait().unwrap();
    unsafe { libc::kill(s.child.id() as i32, libc::SIGCONT) };
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(st.signal(), Some(libc::SIGKILL), "killed, not finished");
    assert!(!root.join("guests").join(name).join("guest.toml").exists());
    assert!(
        templates(&root).iter().all(|t| t.starts_with(".build-")),
        "{:?}",
        templates(&root)
    );
    assert_eq!(leftovers(&root, ".pull-"), Vec::<PathBuf>::new());
    let list = vbuild(&root, &[], &["--json", "list"]);
    assert!(
        !String::from_utf8_lossy(&list.stdout).contains(name),
        "{}",
        String::from_utf8_lossy(&list.stdout)
    );

    // The same name pulls again, whole.
    let o = pull(&root, &s.url, "debian/bookworm", name, Some(&k.public), &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    assert_eq!(
        exported(&root, name)["etc/noise"],
        std::fs::read(w.join("big.tree/etc/noise")).unwrap()
    );
    assert_eq!(leftovers(&root, ".pull-"), Vec::<PathBuf>::new());
    assert!(vbuild(&root, &[], &["delete", name]).status.success());
    assert!(vbuild(&root, &[], &["template", "prune"]).status.success());
    assert_eq!(templates(&root), Vec::<String>::new());
    assert_eq!(s.stop().code(), Some(0));
}

#[test]
fn a_hostname_with_other_names_keeps_them_apart_through_add_and_pull() {
    use std::os::unix::fs::MetadataExt;
    if !require(is_root(), "needs root (a pulled image becomes a guest)") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let root = w.join("root");
    // /etc/hostname is one inode with /etc/mailname (a name that sorts
    // after it, so the tar holds mailname as a hard link to hostname), and
    // /etc/hosts is a symlink to a file elsewhere.
    let t = w.join("linked.tree");
    tree(&t, "bookworm", None, 0);
    std::fs::hard_link(t.join("etc/hostname"), t.join("etc/mailname")).unwrap();
    std::fs::create_dir_all(t.join("srv")).unwrap();
    std::fs::write(t.join("srv/hosts"), "127.0.0.1 localhost built\n").unwrap();
    std::os::unix::fs::symlink("../srv/hosts", t.join("etc/hosts")).unwrap();
    let img = w.join("linked.tar.zst");
    write_image(
        &t,
        &img,
        Format::TarZst,
        &TarOptions {
            clamp_mtime: Some(1_700_000_000),
            ..Default::default()
        },
        &["/sbin/init".to_string()],
    )
    .unwrap();
    let cat = w.join("catalog");
    let o = add(&root, &cat, &img, None);
    assert!(o.status.success(), "{}", stderr(&o));
    let dir = cat.join(format!(
        "images/debian/bookworm/{}/default/{SERIAL}",
        host_arch()
    ));
    // The rootfs.tar.xz LXC unpacks: mailname is a file of its own.
    let got = members(&unxz(&std::fs::read(dir.join("rootfs.tar.xz")).unwrap()));
    assert_eq!(got["etc/hostname"], b"LXC_NAME\n");
    assert_eq!(got["etc/mailname"], b"built\n");
    assert_eq!(got["srv/hosts"], b"127.0.0.1 localhost built\n");
    // The squashfs incus unpacks (and writes its templates into in place).
    let sq = w.join("unsquashed");
    let o = Command::new("unsquashfs")
        .args(["-no-progress", "-d"])
        .arg(&sq)
        .arg(dir.join("rootfs.squashfs"))
        .output()
        .unwrap();
    assert!(o.status.success(), "unsquashfs: {}", stderr(&o));
    let read = |p: &Path| std::fs::read_to_string(p).unwrap();
    assert_eq!(read(&sq.join("etc/hostname")), "LXC_NAME\n");
    assert_eq!(read(&sq.join("etc/mailname")), "built\n");
    for f in ["etc/hostname", "etc/hosts"] {
        let md = std::fs::symlink_metadata(sq.join(f)).unwrap();
        assert!(md.is_file() && md.nlink() == 1, "{f}: {md:?}");
    }
    assert_eq!(read(&sq.join("srv/hosts")), "127.0.0.1 localhost built\n");

    // Pulled: the guest's name goes into hostname and hosts only.
    let s = Server::start(&root, &cat);
    let cert = s.cert.display().to_string();
    // As an overlay guest (the default), read through export:
    let o = pull(
        &root,
        &s.url,
        "debian/bookworm",
        "c12link0",
        None,
        &[("SSL_CERT_FILE", &cert)],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let files = exported(&root, "c12link0");
    assert_eq!(files["etc/hostname"], b"c12link0\n");
    assert!(String::from_utf8_lossy(&files["etc/hosts"]).contains("\n127.0.1.1\tc12link0\n"));
    assert_eq!(files["etc/mailname"], b"built\n");
    assert_eq!(files["srv/hosts"], b"127.0.0.1 localhost built\n");
    let d = vbuild(&root, &[], &["delete", "c12link0"]);
    assert!(d.status.success(), "{}", stderr(&d));
    // and with a tree of its own, on disk:
    let o = pull_copy(
        &root,
        &s.url,
        "debian/bookworm",
        "c12link1",
        &[("SSL_CERT_FILE", &cert)],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let r = root.join("guests/c12link1/rootfs");
    assert_eq!(read(&r.join("etc/hostname")), "c12link1\n");
    assert!(read(&r.join("etc/hosts")).contains("\n127.0.1.1\tc12link1\n"));
    assert_eq!(read(&r.join("etc/mailname")), "built\n");
    assert_eq!(read(&r.join("srv/hosts")), "127.0.0.1 localhost built\n");
    assert_eq!(
        std::fs::metadata(r.join("etc/hostname")).unwrap().nlink(),
        1
    );
    let d = vbuild(&root, &[], &["delete", "c12link1"]);
    assert!(d.status.success(), "{}", stderr(&d));
    assert_eq!(s.stop().code(), Some(0));
}

#[test]
fn export_format_lxc_and_incus_write_the_pairs_their_tools_import_and_boot() {
    if !require(is_root(), "needs root (an image becomes a guest first)")
        || !require(
            Path::new("/usr/share/lxc/templates/lxc-local").exists(),
            "needs lxc (scripts/host-deps.sh): lxc-create -t local is the real LXC client",
        )
        || !require(
            incusd_path().is_some() && Command::new("incus").arg("--version").output().is_ok(),
            "needs incus 6.0 (scripts/host-deps.sh, from bookworm-backports) as the real Incus client",
        )
    {
        return;
    }
    let _lxc = LXC_CLIENTS.lock().unwrap_or_else(|e| e.into_inner());
    let pivots_before = lxc_pivots();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let root = w.join("root");
    let img = image(w, "bookworm", "bookworm", None, 0);
    let guest = "c12split";
    let o = vbuild(
        &root,
        &[],
        &[
            "import",
            img.to_str().unwrap(),
            "--name",
            guest,
            "--net-mode",
            "none",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let export = |format: &str, out: &Path| {
        let o = Command::new(env!("CARGO_BIN_EXE_vbuild"))
            .arg("--root")
            .arg(&root)
            .args(["--json", "export", guest, "--format", format, "--output"])
            .arg(out)
            .env("SOURCE_DATE_EPOCH", EPOCH)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            stderr(&o)
        );
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let names = |dir: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };

    // LXC: meta.tar.xz + rootfs.tar.xz, each as the report says.
    let lx = w.join("lxc-out");
    let r = export("lxc", &lx);
    assert_eq!(r["format"], "lxc");
    assert_eq!(names(&lx), ["meta.tar.xz", "rootfs.tar.xz"]);
    let meta = std::fs::read(lx.join("meta.tar.xz")).unwrap();
    let rootfs = std::fs::read(lx.join("rootfs.tar.xz")).unwrap();
    assert_eq!(r["files"][0]["path"], "meta.tar.xz");
    assert_eq!(r["files"][0]["sha256"], sha256(&meta).as_str());
    assert_eq!(r["files"][1]["path"], "rootfs.tar.xz");
    assert_eq!(r["files"][1]["sha256"], sha256(&rootfs).as_str());
    assert_eq!(r["bytes"], (meta.len() + rootfs.len()) as u64);
    let got = members(&unxz(&rootfs));
    assert_eq!(got["etc/hostname"], b"LXC_NAME\n");
    assert_eq!(
        got["usr/bin/busybox"],
        std::fs::read("/bin/busybox").unwrap()
    );
    assert!(String::from_utf8_lossy(&members(&unxz(&meta))["config"])
        .contains("lxc.include = LXC_TEMPLATE_CONFIG/common.conf\n"));
    // The same output again: refused, nothing changed, no staging left.
    let again = vbuild(
        &root,
        &[],
        &[
            "export",
            guest,
            "--format",
            "lxc",
            "--output",
            lx.to_str().unwrap(),
        ],
    );
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("exists already"),
        "{}",
        stderr(&again)
    );
    assert_eq!(std::fs::read(lx.join("rootfs.tar.xz")).unwrap(), rootfs);
    assert!(leftovers(w, ".lxc-out").is_empty());

    // The real LXC client: lxc-create -t local, then lxc-start.
    let lxcpath = w.join("lxc");
    std::fs::create_dir(&lxcpath).unwrap();
    let netless = w.join("netless.conf");
    std::fs::write(&netless, "lxc.net.0.type = empty\n").unwrap();
    let p = lxcpath.display().to_string();
    let name = "c12lxc2";
    // -t local downloads nothing: no certificate to trust.
    let no_cert = w.join("none.crt");
    let o = lxc(
        w,
        &no_cert,
        "lxc-create",
        &[
            "-P",
            &p,
            "-n",
            name,
            "-f",
            netless.to_str().unwrap(),
            "-t",
            "local",
            "--",
            "--metadata",
            lx.join("meta.tar.xz").to_str().unwrap(),
            "--fstree",
            lx.join("rootfs.tar.xz").to_str().unwrap(),
        ],
    );
    assert!(
        o.status.success(),
        "lxc-create -t local: {}{}",
        String::from_utf8_lossy(&o.stdout),
        stderr(&o)
    );
    assert_eq!(
        std::fs::read_to_string(lxcpath.join(name).join("rootfs/etc/hostname")).unwrap(),
        format!("{name}\n")
    );
    lxc_start_see_running_and_destroy(w, &lxcpath, name);

    // incus: incus.tar.xz + rootfs.squashfs, fingerprinted as incus does.
    let ix = w.join("incus-out");
    let r = export("incus", &ix);
    assert_eq!(r["format"], "incus");
    assert_eq!(names(&ix), ["incus.tar.xz", "rootfs.squashfs"]);
    let meta = std::fs::read(ix.join("incus.tar.xz")).unwrap();
    let sq = std::fs::read(ix.join("rootfs.squashfs")).unwrap();
    let fingerprint = sha256(&[meta.clone(), sq.clone()].concat());
    assert_eq!(r["sha256"], fingerprint.as_str());
    let yaml = String::from_utf8(members(&unxz(&meta))["metadata.yaml"].clone()).unwrap();
    assert!(yaml.contains("creation_date: 1700000000\n"), "{yaml}");

    // The real incus client imports the pair and launches it.
    let mut d = Incusd::start(&w.join("incus"));
    let o = d.incus(
        &[
            "image",
            "import",
            ix.join("incus.tar.xz").to_str().unwrap(),
            ix.join("rootfs.squashfs").to_str().unwrap(),
            "--alias",
            "vbsplit",
        ],
        None,
    );
    assert!(
        o.status.success(),
        "incus image import: {}\n{}",
        stderr(&o),
        d.log()
    );
    let o = d.incus(&["image", "list", "local:", "--format", "json"], None);
    let images: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(images[0]["fingerprint"], fingerprint.as_str());
    let o = d.incus(&["launch", "vbsplit", "ct-inc1", "--quiet"], None);
    assert!(
        o.status.success(),
        "incus launch: {}\n{}",
        stderr(&o),
        d.log()
    );
    let state = d.incus(&["list", "ct-inc1", "-c", "s", "--format", "csv"], None);
    assert_eq!(String::from_utf8_lossy(&state.stdout).trim(), "RUNNING");
    let host = d.incus(
        &["exec", "ct-inc1", "--", "/usr/bin/cat", "/etc/hostname"],
        None,
    );
    assert_eq!(String::from_utf8_lossy(&host.stdout), "ct-inc1\n");
    d.stop(&["ct-inc1"]);
    assert_eq!(d.mounts(), Vec::<String>::new());
    drop(d);
    assert!(vbuild(&root, &[], &["delete", guest]).status.success());
    remove_new_lxc_pivots(&pivots_before);
}
