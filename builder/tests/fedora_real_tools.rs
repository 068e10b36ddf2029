//! Our Fedora parsing meets the formats as the real tools write them: a
//! repository made by Debian's `rpmbuild`, `rpmsign` (a gpg key made for
//! the test) and `createrepo_c`, served on loopback, is read (repomd.xml,
//! primary.xml as createrepo_c compresses it), resolved, its packages'
//! signatures verified with the exported public key and unpacked.
//! Installed by scripts/host-deps.sh (rpm, createrepo-c, gnupg).

use std::path::Path;
use std::process::Command;
use vbuild_builder::distro::fedora::fetch::{fetch_repo, fetch_rpms, verifier, RepoSource};
use vbuild_builder::distro::fedora::install::unpack_rpm;
use vbuild_builder::distro::fedora::resolve::{resolve, Options, Universe};
use vbuild_cache::{Cache, NoProgress};
use vbuild_kernel::fsroot::Root;
use vbuild_testkit::http::TestServer;

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

const SPEC: &str = r#"Name: @NAME@
Version: 1.0
Release: 3
Summary: vbuild real-tools test
License: MIT
BuildArch: noarch
@DEPS@
%description
test
%install
mkdir -p %{buildroot}/usr/share/@NAME@ %{buildroot}/usr/bin
echo "@NAME@ data" > %{buildroot}/usr/share/@NAME@/data
ln -s data %{buildroot}/usr/share/@NAME@/link
printf 'no interpreter, so rpmbuild adds no /bin/sh dependency\n' > %{buildroot}/usr/bin/@NAME@-cmd
chmod 755 %{buildroot}/usr/bin/@NAME@-cmd
%files
/usr/share/@NAME@
/usr/bin/@NAME@-cmd
"#;

/// The packages of the test repository: (name, dependency lines).
/// `tool` needs a file (in primary.xml, as `*/bin/*` paths are), a
/// conditional and a weak dependency that neither side installs.
const PACKAGES: [(&str, &str); 4] = [
    ("hello", ""),
    (
        "greeter",
        "Requires: hello >= 1.0\nRequires: (hello or nothing-else)\n",
    ),
    (
        "tool",
        "Requires: /usr/bin/hello-cmd\nRequires: (greeter if hello)\nRecommends: extra\n",
    ),
    ("extra", ""),
];

/// A repository made by rpmbuild, rpmsign (a key made here) and
/// createrepo_c: (temp dir, the armored public key, the repository dir).
fn real_repository() -> (tempfile::TempDir, Vec<u8>, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let gnupg = tmp.path().join("gnupg");
    std::fs::create_dir(&gnupg).unwrap();
    std::fs::set_permissions(&gnupg, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let gpg = |args: &[&str]| {
        let mut c = Command::new("gpg");
        c.env("GNUPGHOME", &gnupg).arg("--batch").args(args);
        c
    };
    run(&mut gpg(&[
        "--passphrase",
        "",
        "--quick-gen-key",
        "vbuild rpm test <rpm@vbuild.invalid>",
        "rsa2048",
        "sign",
        "never",
    ]));
    let out = gpg(&["--armor", "--export", "rpm@vbuild.invalid"])
        .output()
        .unwrap();
    let public = out.stdout;
    assert!(public.starts_with(b"-----BEGIN PGP PUBLIC KEY BLOCK"));

    let top = tmp.path().join("rpmbuild");
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    for (name, deps) in PACKAGES {
        let spec = tmp.path().join(format!("{name}.spec"));
        std::fs::write(&spec, SPEC.replace("@NAME@", name).replace("@DEPS@", deps)).unwrap();
        run(Command::new("rpmbuild")
            .env("GNUPGHOME", &gnupg)
            .args(["--quiet", "-bb", "--define"])
            .arg(format!("_topdir {}", top.display()))
            .arg(&spec));
        let file = top.join(format!("RPMS/noarch/{name}-1.0-3.noarch.rpm"));
        run(Command::new("rpmsign")
            .env("GNUPGHOME", &gnupg)
            .args(["--addsign", "--define", "_gpg_name rpm@vbuild.invalid"])
            .args(["--define", "__gpg /usr/bin/gpg"])
            .arg(&file));
        std::fs::copy(&file, repo.join(file.file_name().unwrap())).unwrap();
    }
    run(Command::new("createrepo_c").arg("--quiet").arg(&repo));

    (tmp, public, repo)
}

#[test]
fn a_repository_made_by_rpmbuild_rpmsign_and_createrepo_c() {
    let tools = ["rpmbuild", "rpmsign", "createrepo_c", "gpg"];
    if !vbuild_testsupport::require(
        tools.iter().all(|t| have(t)),
        "rpmbuild, rpmsign, createrepo_c and gpg (scripts/host-deps.sh installs rpm, createrepo-c, gnupg)",
    ) {
        return;
    }
    let (tmp, public, repo) = real_repository();
    let server = TestServer::serve(&repo);
    let cache = Cache::open(tmp.path().join("cache")).unwrap();
    let index = fetch_repo(
        &cache,
        &RepoSource {
            id: "local".into(),
            metalink: None,
            baseurls: vec![server.url()],
        },
        &[],
    )
    .unwrap();
    assert_eq!(index.packages.len(), 4);
    let greeter = index.packages.iter().find(|p| p.name == "greeter").unwrap();
    assert_eq!(greeter.nevra(), "greeter-1.0-3.noarch");
    assert!(greeter
        .requires
        .iter()
        .any(|d| d.to_string() == "(hello or nothing-else)"));
    let u = Universe::new(std::slice::from_ref(&index.packages), "x86_64");
    let mut set = resolve(&u, &["greeter".into()], &Options::default()).unwrap();
    let names: Vec<&str> = set.iter().map(|p| p.entry.name.as_str()).collect();
    assert_eq!(names, ["greeter", "hello"]);
    for p in &mut set {
        p.base = index.baseurl.clone();
    }
    let v = verifier(&[("test".into(), public)]).unwrap();
    let files = fetch_rpms(&cache, &set, &v, 2, &NoProgress).unwrap();
    let root_dir = tmp.path().join("root");
    std::fs::create_dir(&root_dir).unwrap();
    let root = Root::open(&root_dir).unwrap();
    for f in &files {
        unpack_rpm(&root, f).unwrap();
    }
    assert_eq!(
        std::fs::read_to_string(root_dir.join("usr/share/hello/data")).unwrap(),
        "hello data\n"
    );
    assert_eq!(
        std::fs::read_link(root_dir.join("usr/share/greeter/link")).unwrap(),
        Path::new("data")
    );
}

/// The names `rpm --root` lists in `root`, sorted.
fn rpm_names(root: &Path) -> Vec<String> {
    let out = Command::new("rpm")
        .arg("--root")
        .arg(root)
        .args(["-qa", "--qf", "%{NAME}\\n"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    names.sort();
    names
}

#[test]
fn the_installed_set_equals_what_dnf_installroot_installs() {
    let tools = ["rpmbuild", "rpmsign", "createrepo_c", "gpg", "dnf", "rpm"];
    if !vbuild_testsupport::require(
        tools.iter().all(|t| have(t)),
        "rpmbuild, rpmsign, createrepo_c, gpg, dnf and rpm (scripts/host-deps.sh installs rpm, createrepo-c, gnupg, dnf)",
    ) {
        return;
    }
    let (tmp, public, repo) = real_repository();
    let cache = Cache::open(tmp.path().join("cache")).unwrap();
    let repo_url = format!("file://{}", repo.display());
    let index = fetch_repo(
        &cache,
        &RepoSource {
            id: "local".into(),
            metalink: None,
            baseurls: vec![repo_url.clone()],
        },
        &[("test".into(), public)],
    )
    .unwrap();
    for request in [&["tool"][..], &["greeter"], &["hello", "extra"]] {
        let names: Vec<String> = request.iter().map(|s| s.to_string()).collect();
        let u = Universe::new(std::slice::from_ref(&index.packages), "x86_64");
        let mut ours: Vec<String> = resolve(&u, &names, &Options::default())
            .unwrap()
            .into_iter()
            .map(|p| p.entry.name)
            .collect();
        ours.sort();

        let root = tmp.path().join(format!("dnf-{}", request.join("-")));
        run(Command::new("dnf")
            .args(["-y", "-q", "--installroot"])
            .arg(&root)
            .arg(format!("--repofrompath=local,{repo_url}"))
            .args(["--repo=local", "--nogpgcheck", "--releasever=44"])
            .args([
                "--setopt=install_weak_deps=False",
                "--setopt=reposdir=/dev/null",
            ])
            .arg(format!(
                "--setopt=cachedir={}",
                tmp.path().join("dnf-cache").display()
            ))
            .arg("install")
            .args(request));
        assert_eq!(ours, rpm_names(&root), "request {request:?}");
    }
    // The request `tool` pulls the file and conditional dependencies in,
    // and the weak one out.
    let u = Universe::new(std::slice::from_ref(&index.packages), "x86_64");
    let mut tool: Vec<String> = resolve(&u, &["tool".into()], &Options::default())
        .unwrap()
        .into_iter()
        .map(|p| p.entry.name)
        .collect();
    tool.sort();
    assert_eq!(tool, ["greeter", "hello", "tool"]);
}
