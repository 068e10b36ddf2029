//! A Debian repository written by code for hermetic tests: a pool of .debs,
//! `Packages` indices (xz, gz or plain), `Release` and an `InRelease` signed
//! by a [`TestKey`]. Tests may alter any file afterwards to play a broken or
//! hostile mirror.

use std::io::Write;
use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

use crate::pgp::TestKey;

/// One package: its control fields and the bytes served as its .deb.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestPackage {
    name: String,
    version: String,
    arch: String,
    fields: Vec<(String, String)>,
    deb: Vec<u8>,
}

impl TestPackage {
    /// A package with placeholder .deb bytes (unique per name and version).
    pub fn new(name: &str, version: &str, arch: &str) -> TestPackage {
        TestPackage {
            name: name.to_string(),
            version: version.to_string(),
            arch: arch.to_string(),
            fields: Vec::new(),
            deb: format!("not a real deb: {name} {version} {arch}\n").into_bytes(),
        }
    }

    /// Adds a control field (`Depends`, `Essential`, `Priority`, ...).
    pub fn field(mut self, name: &str, value: &str) -> TestPackage {
        self.fields.push((name.to_string(), value.to_string()));
        self
    }

    /// Sets the .deb content (e.g. from `testkit::deb`).
    pub fn deb(mut self, bytes: Vec<u8>) -> TestPackage {
        self.deb = bytes;
        self
    }

    /// Package name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Path of the .deb under the mirror root, as `Filename:` says.
    pub fn filename(&self, component: &str) -> String {
        let first = if self.name.starts_with("lib") && self.name.len() > 3 {
            &self.name[..4]
        } else {
            &self.name[..1]
        };
        format!(
            "pool/{component}/{first}/{}/{}_{}_{}.deb",
            self.name,
            self.name,
            self.version.replace(':', "%3a"),
            self.arch
        )
    }

    /// SHA-256 of the .deb bytes.
    pub fn sha256(&self) -> String {
        hex::encode(Sha256::digest(&self.deb))
    }
}

/// How a Packages index is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// `Packages.xz` (Debian's default).
    Xz,
    /// `Packages.gz`.
    Gz,
    /// Uncompressed `Packages`.
    Plain,
}

/// A repository description; [`TestRepo::write`] lays it out on disk.
#[derive(Debug, Clone)]
pub struct TestRepo {
    /// `Suite:` and directory under `dists/`.
    pub suite: String,
    /// `Codename:`.
    pub codename: String,
    /// The one architecture (packages may also be `all`).
    pub arch: String,
    /// The one component.
    pub component: String,
    /// `Date:`.
    pub date: DateTime<Utc>,
    /// `Valid-Until:`, if any.
    pub valid_until: Option<DateTime<Utc>>,
    /// Publish indices under `by-hash/SHA256/` and say `Acquire-By-Hash: yes`.
    pub by_hash: bool,
    /// Which index files exist (the plain one is always listed in Release,
    /// as Debian does, even when not written).
    pub indices: Vec<Compression>,
    /// The packages.
    pub packages: Vec<TestPackage>,
}

impl TestRepo {
    /// An amd64 `main` repository for `suite`, dated now, valid a week,
    /// publishing `Packages.xz` only.
    pub fn new(suite: &str) -> TestRepo {
        let now = Utc::now();
        TestRepo {
            suite: suite.to_string(),
            codename: suite.to_string(),
            arch: "amd64".into(),
            component: "main".into(),
            date: now,
            valid_until: Some(now + Duration::days(7)),
            by_hash: false,
            indices: vec![Compression::Xz],
            packages: Vec::new(),
        }
    }

    /// Adds a package.
    pub fn add(&mut self, package: TestPackage) -> &mut TestRepo {
        self.packages.push(package);
        self
    }

    /// `dists/SUITE/COMPONENT/binary-ARCH/Packages`, relative to the root.
    pub fn packages_path(&self) -> String {
        format!(
            "dists/{}/{}/binary-{}/Packages",
            self.suite, self.component, self.arch
        )
    }

    /// The Packages index text.
    pub fn packages_text(&self) -> String {
        let mut out = String::new();
        for p in &self.packages {
            out.push_str(&format!(
                "Package: {}\nVersion: {}\nArchitecture: {}\n",
                p.name, p.version, p.arch
            ));
            for (k, v) in &p.fields {
                out.push_str(&format!("{k}: {v}\n"));
            }
            out.push_str(&format!(
                "Filename: {}\nSize: {}\nSHA256: {}\n\n",
                p.filename(&self.component),
                p.deb.len(),
                p.sha256()
            ));
        }
        out
    }

    /// Writes pool, indices, `Release` and `InRelease` (signed by `key`) under `root`.
    pub fn write(&self, root: &Path, key: &TestKey) -> std::io::Result<()> {
        write_suite(root, key, &[self])
    }

    /// Writes this component's pool files and indices; returns the index
    /// files the Release lists.
    fn write_component(&self, root: &Path) -> std::io::Result<Vec<(String, Vec<u8>)>> {
        for p in &self.packages {
            write(&root.join(p.filename(&self.component)), &p.deb)?;
        }
        let plain = self.packages_text().into_bytes();
        let dir = format!("{}/binary-{}", self.component, self.arch);
        let mut entries = vec![(format!("{dir}/Packages"), plain.clone())];
        for c in &self.indices {
            let (name, bytes) = match c {
                Compression::Xz => ("Packages.xz", xz(&plain)?),
                Compression::Gz => ("Packages.gz", gz(&plain)?),
                Compression::Plain => ("Packages", plain.clone()),
            };
            let path = format!("{dir}/{name}");
            let dists = root.join("dists").join(&self.suite);
            write(&dists.join(&path), &bytes)?;
            if self.by_hash {
                let hash = hex::encode(Sha256::digest(&bytes));
                write(&dists.join(format!("{dir}/by-hash/SHA256/{hash}")), &bytes)?;
            }
            if name != "Packages" {
                entries.push((path, bytes));
            }
        }
        Ok(entries)
    }

    /// The Release text for these index files (path, content).
    pub fn release_text(&self, files: &[(String, Vec<u8>)]) -> String {
        self.release_text_of(&self.component, files)
    }

    fn release_text_of(&self, components: &str, files: &[(String, Vec<u8>)]) -> String {
        let date = |d: &DateTime<Utc>| d.format("%a, %d %b %Y %H:%M:%S UTC").to_string();
        let mut out = format!(
            "Origin: vbuild-test\nLabel: vbuild-test\nSuite: {}\nCodename: {}\nDate: {}\n",
            self.suite,
            self.codename,
            date(&self.date)
        );
        if let Some(until) = &self.valid_until {
            out.push_str(&format!("Valid-Until: {}\n", date(until)));
        }
        if self.by_hash {
            out.push_str("Acquire-By-Hash: yes\n");
        }
        out.push_str(&format!(
            "Architectures: {}\nComponents: {}\nDescription: generated by vbuild tests\nSHA256:\n",
            self.arch, components
        ));
        for (path, bytes) in files {
            out.push_str(&format!(
                " {} {:>16} {path}\n",
                hex::encode(Sha256::digest(bytes)),
                bytes.len()
            ));
        }
        out
    }
}

/// Writes one suite whose components are `parts` (each a repository of
/// the same suite with its own `component` and packages) under `root`, with
/// one `Release`/`InRelease` listing them all, signed by `key`; the first
/// part's dates and options make the Release.
pub fn write_suite(root: &Path, key: &TestKey, parts: &[&TestRepo]) -> std::io::Result<()> {
    let first = parts
        .first()
        .ok_or_else(|| std::io::Error::other("no components"))?;
    let mut entries = Vec::new();
    for p in parts {
        entries.extend(p.write_component(root)?);
    }
    let names: Vec<&str> = parts.iter().map(|p| p.component.as_str()).collect();
    let release = first.release_text_of(&names.join(" "), &entries);
    let dists = root.join("dists").join(&first.suite);
    write(&dists.join("Release"), release.as_bytes())?;
    write(&dists.join("InRelease"), key.clearsign(&release).as_bytes())?;
    Ok(())
}

fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, bytes)
}

fn xz(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut enc = xz2::write::XzEncoder::new(Vec::new(), 6);
    enc.write_all(bytes)?;
    enc.finish()
}

fn gz(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes)?;
    enc.finish()
}
