//! A signed RPM repository made in code: packages built with the `rpm`
//! crate (files, directories, symlinks, shell and Lua scriptlets, file
//! triggers, rich and file dependencies), signed by a [`TestKey`], and the
//! `repodata/` a real repository has (`repomd.xml`, `primary.xml.zst`,
//! optionally comps) plus a Metalink 3.0 document pinning `repomd.xml`.

use crate::pgp::TestKey;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

/// One package to build.
pub struct TestRpm {
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Release.
    pub release: String,
    /// `x86_64` or `noarch`.
    pub arch: String,
    /// Regular files: (path, content, mode).
    pub files: Vec<(String, Vec<u8>, u32)>,
    /// Directories.
    pub dirs: Vec<String>,
    /// Symlinks: (path, target).
    pub symlinks: Vec<(String, String)>,
    /// Requires (rpm syntax: `name`, `name >= 1`, `(a or b)`, `/path`).
    pub requires: Vec<String>,
    /// Provides (`name` or `name = 1`).
    pub provides: Vec<String>,
    /// Conflicts.
    pub conflicts: Vec<String>,
    /// Obsoletes.
    pub obsoletes: Vec<String>,
    /// Recommends.
    pub recommends: Vec<String>,
    /// %pre body (shell).
    pub pre: Option<String>,
    /// %post body (shell).
    pub post: Option<String>,
    /// %posttrans body (shell).
    pub posttrans: Option<String>,
    /// %post body in Lua (`-p <lua>`).
    pub post_lua: Option<String>,
    /// %pretrans body in Lua.
    pub pretrans_lua: Option<String>,
    /// %transfiletriggerin: (path prefix, shell body).
    pub file_trigger: Option<(String, String)>,
    /// Payload compression.
    pub compression: rpm::CompressionWithLevel,
    /// Sign it (unsigned packages test the refusal).
    pub signed: bool,
    /// Owners other than root: path -> (user, group), by name as rpm records them.
    pub owners: HashMap<String, (String, String)>,
    /// Directory permissions other than 0755: path -> mode bits.
    pub dir_modes: HashMap<String, u32>,
}

impl TestRpm {
    /// A package `name-version-1.x86_64` with nothing in it.
    pub fn new(name: &str, version: &str) -> TestRpm {
        TestRpm {
            name: name.into(),
            version: version.into(),
            release: "1".into(),
            arch: "x86_64".into(),
            files: Vec::new(),
            dirs: Vec::new(),
            symlinks: Vec::new(),
            requires: Vec::new(),
            provides: Vec::new(),
            conflicts: Vec::new(),
            obsoletes: Vec::new(),
            recommends: Vec::new(),
            pre: None,
            post: None,
            posttrans: None,
            post_lua: None,
            pretrans_lua: None,
            file_trigger: None,
            compression: rpm::CompressionWithLevel::Zstd(3),
            signed: true,
            owners: HashMap::new(),
            dir_modes: HashMap::new(),
        }
    }

    /// Adds a regular file.
    pub fn file(mut self, path: &str, data: &[u8], mode: u32) -> TestRpm {
        self.files.push((path.into(), data.to_vec(), mode));
        self
    }

    /// Adds a directory.
    pub fn dir(mut self, path: &str) -> TestRpm {
        self.dirs.push(path.into());
        self
    }

    /// Adds a directory with these permission bits (setgid, sticky...).
    pub fn dir_with_mode(mut self, path: &str, mode: u32) -> TestRpm {
        self.dir_modes.insert(path.into(), mode);
        self.dir(path)
    }

    /// Records `path` (file, directory or symlink) as owned by `user`:`group`.
    pub fn owned(mut self, path: &str, user: &str, group: &str) -> TestRpm {
        self.owners.insert(path.into(), (user.into(), group.into()));
        self
    }

    /// Adds a symlink.
    pub fn symlink(mut self, path: &str, target: &str) -> TestRpm {
        self.symlinks.push((path.into(), target.into()));
        self
    }

    /// Adds a Requires.
    pub fn requires(mut self, dep: &str) -> TestRpm {
        self.requires.push(dep.into());
        self
    }

    /// Adds a Provides.
    pub fn provides(mut self, dep: &str) -> TestRpm {
        self.provides.push(dep.into());
        self
    }

    /// `name-version-release.arch.rpm`.
    pub fn file_name(&self) -> String {
        format!(
            "{}-{}-{}.{}.rpm",
            self.name, self.version, self.release, self.arch
        )
    }

    /// The package file, signed by `key` when `signed`.
    pub fn build(&self, key: &TestKey) -> Vec<u8> {
        let mut b = rpm::PackageBuilder::new(
            &self.name,
            &self.version,
            "MIT",
            &self.arch,
            "vbuild test package",
        );
        b.release(self.release.clone());
        b.using_config(rpm::BuildConfig::default().compression(self.compression));
        let owned = |p: &str, o: rpm::FileOptionsBuilder| match self.owners.get(p) {
            Some((u, g)) => o.user(u.as_str()).group(g.as_str()),
            None => o,
        };
        for d in &self.dirs {
            let mode = self.dir_modes.get(d).copied().unwrap_or(0o755);
            b.with_dir_entry(owned(
                d,
                rpm::FileOptions::dir(d.clone()).mode((0o40000 | mode) as u16),
            ))
            .expect("dir entry");
        }
        for (p, data, mode) in &self.files {
            b.with_file_contents(
                data.clone(),
                owned(
                    p,
                    rpm::FileOptions::new(p.clone()).mode((0o100000 | mode) as u16),
                ),
            )
            .expect("file entry");
        }
        for (p, t) in &self.symlinks {
            b.with_symlink(owned(p, rpm::FileOptions::symlink(p.clone(), t.clone())))
                .expect("symlink entry");
        }
        for r in &self.requires {
            b.requires(dep(r));
        }
        for r in &self.provides {
            b.provides(dep(r));
        }
        for r in &self.conflicts {
            b.conflicts(dep(r));
        }
        for r in &self.obsoletes {
            b.obsoletes(dep(r));
        }
        for r in &self.recommends {
            b.recommends(dep(r));
        }
        if let Some(s) = &self.pre {
            b.pre_install_script(s.as_str());
        }
        if let Some(s) = &self.post {
            b.post_install_script(s.as_str());
        }
        if let Some(s) = &self.posttrans {
            b.post_trans_script(s.as_str());
        }
        if let Some(s) = &self.post_lua {
            b.post_install_script(rpm::Scriptlet::new(s.as_str()).prog(vec!["<lua>"]));
        }
        if let Some(s) = &self.pretrans_lua {
            b.pre_trans_script(rpm::Scriptlet::new(s.as_str()).prog(vec!["<lua>"]));
        }
        if let Some((prefix, body)) = &self.file_trigger {
            b.trans_file_trigger_in(prefix, None, rpm::Scriptlet::new(body.as_str()));
        }
        let pkg = if self.signed {
            let signer =
                rpm::signature::pgp::Signer::from_asc_bytes(key.secret_armored().as_bytes())
                    .expect("test key loads into rpm's signer");
            b.build_and_sign(signer).expect("build and sign rpm")
        } else {
            b.build().expect("build rpm")
        };
        let mut out = Vec::new();
        pkg.write(&mut out).expect("write rpm");
        out
    }
}

/// `name`, `name OP evr` or a rich `( ... )` as the rpm crate's dependency.
fn dep(s: &str) -> rpm::Dependency {
    if s.starts_with('(') {
        return rpm::Dependency::any(s);
    }
    let parts: Vec<&str> = s.split_whitespace().collect();
    match parts.as_slice() {
        [n, "=", v] => rpm::Dependency::eq(*n, *v),
        [n, ">=", v] => rpm::Dependency::greater_eq(*n, *v),
        [n, ">", v] => rpm::Dependency::greater(*n, *v),
        [n, "<", v] => rpm::Dependency::less(*n, *v),
        [n, "<=", v] => rpm::Dependency::less_eq(*n, *v),
        _ => rpm::Dependency::any(s),
    }
}

/// A built package as the repository lists it.
struct Built {
    rpm: TestRpm,
    bytes: Vec<u8>,
}

/// An RPM repository to write under a directory.
#[derive(Default)]
pub struct TestRpmRepo {
    built: Vec<Built>,
    /// comps group `core`'s mandatory packages, when set.
    pub core: Option<Vec<String>>,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn entry_xml(s: &str) -> String {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let flags = |op: &str| match op {
        "=" => "EQ",
        ">=" => "GE",
        ">" => "GT",
        "<" => "LT",
        "<=" => "LE",
        _ => "",
    };
    match parts.as_slice() {
        [n, op, v] if !s.starts_with('(') && !flags(op).is_empty() => {
            let (ver, rel) = match v.split_once('-') {
                Some((a, b)) => (a, Some(b)),
                None => (*v, None),
            };
            let rel = rel
                .map(|r| format!(" rel=\"{}\"", esc(r)))
                .unwrap_or_default();
            format!(
                "<rpm:entry name=\"{}\" flags=\"{}\" epoch=\"0\" ver=\"{}\"{rel}/>",
                esc(n),
                flags(op),
                esc(ver)
            )
        }
        _ => format!("<rpm:entry name=\"{}\"/>", esc(s)),
    }
}

impl TestRpmRepo {
    /// An empty repository.
    pub fn new() -> TestRpmRepo {
        TestRpmRepo::default()
    }

    /// Builds and adds `rpm` (signed by `key` unless it says otherwise).
    pub fn add(&mut self, rpm: TestRpm, key: &TestKey) -> &mut TestRpmRepo {
        let bytes = rpm.build(key);
        self.built.push(Built { rpm, bytes });
        self
    }

    /// Adds `rpm` with these exact bytes (a tampered package).
    pub fn add_bytes(&mut self, rpm: TestRpm, bytes: Vec<u8>) -> &mut TestRpmRepo {
        self.built.push(Built { rpm, bytes });
        self
    }

    /// The bytes of package `name` as built.
    pub fn bytes_of(&self, name: &str) -> Option<&[u8]> {
        self.built
            .iter()
            .find(|b| b.rpm.name == name)
            .map(|b| b.bytes.as_slice())
    }

    /// primary.xml's text.
    pub fn primary_xml(&self) -> String {
        let mut x = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<metadata xmlns=\"http://linux.duke.edu/metadata/common\" xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\" packages=\"{}\">\n",
            self.built.len()
        );
        for b in &self.built {
            let r = &b.rpm;
            let sha = hex::encode(Sha256::digest(&b.bytes));
            let _ = write!(
                x,
                "<package type=\"rpm\">\n  <name>{}</name>\n  <arch>{}</arch>\n  <version epoch=\"0\" ver=\"{}\" rel=\"{}\"/>\n  <checksum type=\"sha256\" pkgid=\"YES\">{sha}</checksum>\n  <summary>test</summary>\n  <size package=\"{}\" installed=\"0\" archive=\"0\"/>\n  <location href=\"Packages/{}\"/>\n  <format>\n",
                esc(&r.name), esc(&r.arch), esc(&r.version), esc(&r.release), b.bytes.len(), esc(&r.file_name())
            );
            let mut provides = vec![format!("{} = {}-{}", r.name, r.version, r.release)];
            provides.extend(r.provides.iter().cloned());
            for (tag, list) in [
                ("provides", &provides),
                ("requires", &r.requires),
                ("conflicts", &r.conflicts),
                ("obsoletes", &r.obsoletes),
                ("recommends", &r.recommends),
            ] {
                if list.is_empty() {
                    continue;
                }
                let _ = writeln!(x, "    <rpm:{tag}>");
                for d in list {
                    let _ = writeln!(x, "      {}", entry_xml(d));
                }
                let _ = writeln!(x, "    </rpm:{tag}>");
            }
            // createrepo lists every path in primary; ours are all "primary" files.
            for p in r
                .files
                .iter()
                .map(|f| &f.0)
                .chain(r.symlinks.iter().map(|l| &l.0))
            {
                let _ = writeln!(x, "    <file>{}</file>", esc(p));
            }
            for d in &r.dirs {
                let _ = writeln!(x, "    <file type=\"dir\">{}</file>", esc(d));
            }
            x.push_str("  </format>\n</package>\n");
        }
        x.push_str("</metadata>\n");
        x
    }

    /// Writes `Packages/*.rpm` and `repodata/` under `dir`; returns
    /// repomd.xml's bytes (for a metalink).
    pub fn write(&self, dir: &Path) -> std::io::Result<Vec<u8>> {
        std::fs::create_dir_all(dir.join("Packages"))?;
        std::fs::create_dir_all(dir.join("repodata"))?;
        for b in &self.built {
            std::fs::write(dir.join("Packages").join(b.rpm.file_name()), &b.bytes)?;
        }
        let primary = self.primary_xml();
        let zst = zstd::encode_all(primary.as_bytes(), 3)?;
        let mut files = vec![("primary", "primary.xml.zst", zst, primary.len())];
        if let Some(core) = &self.core {
            let mut c = String::from("<?xml version=\"1.0\"?>\n<comps><group><id>core</id><name>Core</name><packagelist>\n");
            for n in core {
                let _ = writeln!(c, "<packagereq type=\"mandatory\">{}</packagereq>", esc(n));
            }
            c.push_str("</packagelist></group></comps>\n");
            let len = c.len();
            files.push(("group", "comps.xml", c.into_bytes(), len));
        }
        let mut repomd = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<repomd xmlns=\"http://linux.duke.edu/metadata/repo\" xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\">\n  <revision>1</revision>\n");
        for (kind, name, bytes, open) in &files {
            let sha = hex::encode(Sha256::digest(bytes));
            let href = format!("repodata/{sha}-{name}");
            std::fs::write(dir.join(&href), bytes)?;
            let _ = write!(
                repomd,
                "  <data type=\"{kind}\">\n    <checksum type=\"sha256\">{sha}</checksum>\n    <location href=\"{href}\"/>\n    <size>{}</size>\n    <open-size>{open}</open-size>\n  </data>\n",
                bytes.len()
            );
        }
        repomd.push_str("</repomd>\n");
        std::fs::write(dir.join("repodata/repomd.xml"), &repomd)?;
        Ok(repomd.into_bytes())
    }
}

/// A Metalink 3.0 document pinning `repomd` (size and sha256), listing
/// `baseurl` as the one mirror.
pub fn metalink(repomd: &[u8], baseurl: &str) -> String {
    metalink_with_alternates(repomd, &[], baseurl)
}

/// A metalink pinning `repomd` as the current version and each of
/// `alternates` as an older one MirrorManager still accepts (a mirror that
/// has not caught up yet serves one of those).
pub fn metalink_with_alternates(repomd: &[u8], alternates: &[&[u8]], baseurl: &str) -> String {
    let sha = |b: &[u8]| hex::encode(Sha256::digest(b));
    let mut alt = String::new();
    if !alternates.is_empty() {
        alt.push_str("   <mm0:alternates>\n");
        for a in alternates {
            let _ = write!(
                alt,
                "    <mm0:alternate>\n     <mm0:timestamp>1</mm0:timestamp>\n     <size>{}</size>\n     <verification><hash type=\"sha256\">{}</hash></verification>\n    </mm0:alternate>\n",
                a.len(),
                sha(a)
            );
        }
        alt.push_str("   </mm0:alternates>\n");
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<metalink version=\"3.0\" xmlns=\"http://www.metalinker.org/\" xmlns:mm0=\"http://fedorahosted.org/mirrormanager\">\n <files>\n  <file name=\"repomd.xml\">\n   <size>{}</size>\n   <verification>\n    <hash type=\"sha256\">{}</hash>\n   </verification>\n{alt}   <resources maxconnections=\"1\">\n    <url protocol=\"http\" type=\"http\" location=\"XX\" preference=\"100\">{}repodata/repomd.xml</url>\n   </resources>\n  </file>\n </files>\n</metalink>\n",
        repomd.len(),
        sha(repomd),
        esc(baseurl)
    )
}
