//! `Packages` indices: what the archive offers for one architecture, parsed
//! into the few fields resolution and download need.
//!
//! bookworm's main/amd64 index is ~63k paragraphs and ~45 MB, so the parser
//! is a single pass over the text that copies only the kept fields; version
//! strings and dependency fields stay raw here and are parsed (by
//! `version` and `relation`) only for the packages a resolution visits.

use std::collections::HashMap;

use super::deb822;

/// Debian's name for the architecture vbuild runs on (`amd64` on x86_64),
/// the default architecture of a guest.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "i386",
        "aarch64" => "arm64",
        "arm" => "armhf",
        "powerpc64" => "ppc64el",
        "riscv64" => "riscv64",
        "s390x" => "s390x",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// `Priority:` of a package, most important first (the derived order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// Needed for the system to work at all (minbase).
    Required,
    /// Expected on any Unix-like system (standard).
    Important,
    /// A reasonably small character-mode system (standard).
    Standard,
    /// Everything else.
    Optional,
    /// Deprecated alias of optional.
    Extra,
    /// Missing or unrecognised.
    Unknown,
}

impl Priority {
    /// Reads a `Priority:` value.
    pub fn parse(value: &str) -> Priority {
        match value {
            "required" => Priority::Required,
            "important" => Priority::Important,
            "standard" => Priority::Standard,
            "optional" => Priority::Optional,
            "extra" => Priority::Extra,
            _ => Priority::Unknown,
        }
    }
}

/// One binary package paragraph, reduced to what vbuild uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// `Package:`.
    pub name: String,
    /// `Version:` as written (parse with `version::Version`).
    pub version: String,
    /// `Architecture:` (the index's architecture or `all`).
    pub arch: String,
    /// `Filename:`, relative to the mirror root.
    pub filename: String,
    /// `Size:` of the .deb.
    pub size: u64,
    /// `SHA256:` of the .deb, lowercase hex.
    pub sha256: String,
    /// `Depends:`, raw.
    pub depends: Option<String>,
    /// `Pre-Depends:`, raw.
    pub pre_depends: Option<String>,
    /// `Provides:`, raw.
    pub provides: Option<String>,
    /// `Conflicts:`, raw.
    pub conflicts: Option<String>,
    /// `Breaks:`, raw.
    pub breaks: Option<String>,
    /// `Essential: yes`.
    pub essential: bool,
    /// `Priority:`.
    pub priority: Priority,
    /// `Multi-Arch:`, raw (`same`, `foreign`, `allowed`).
    pub multi_arch: Option<String>,
    /// The mirror `filename` is relative to, when the index came from
    /// another archive than the build's main one (the security archive);
    /// empty for the main mirror.
    pub mirror: String,
}

/// A parse failure, naming the index and the line.
#[derive(Debug, thiserror::Error)]
#[error("{index}: line {line}: {message}; the index is corrupt, retry or use another mirror")]
pub struct IndexError {
    /// Which index (its path in the release).
    pub index: String,
    /// 1-based line of the paragraph or field.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// All packages of one architecture (plus `all`) from one or more indices.
#[derive(Debug, Clone, Default)]
pub struct PackageIndex {
    arch: String,
    /// Mirror recorded in the packages `add_text` adds (`add_text_from`).
    mirror: String,
    packages: Vec<Package>,
    by_name: HashMap<String, Vec<usize>>,
    providers: HashMap<String, Vec<usize>>,
}

impl PackageIndex {
    /// An empty index for `arch`.
    pub fn new(arch: &str) -> PackageIndex {
        PackageIndex {
            arch: arch.to_string(),
            ..PackageIndex::default()
        }
    }

    /// Parses a `Packages` file, keeping packages for `arch` and `all`.
    /// `name` labels errors (e.g. `main/binary-amd64/Packages`).
    pub fn parse(name: &str, text: &str, arch: &str) -> Result<PackageIndex, IndexError> {
        let mut index = PackageIndex::new(arch);
        index.add_text(name, text)?;
        Ok(index)
    }

    /// Adds the packages of another `Packages` file (another component).
    pub fn add_text(&mut self, name: &str, text: &str) -> Result<(), IndexError> {
        self.add_text_from(name, text, "")
    }

    /// Adds the packages of a `Packages` file read from `mirror` (empty:
    /// the build's main mirror), so each package is downloaded from the
    /// archive that listed it: a suite on another archive (the security
    /// one) merges into the same index, where the newest version wins.
    pub fn add_text_from(
        &mut self,
        name: &str,
        text: &str,
        mirror: &str,
    ) -> Result<(), IndexError> {
        self.mirror = mirror.to_string();
        for para in deb822::paragraphs(text) {
            let para = para.map_err(|e| IndexError {
                index: name.to_string(),
                line: e.line,
                message: e.why,
            })?;
            self.finish(name, &Kept::from(&para), para.line)?;
        }
        Ok(())
    }

    fn finish(&mut self, name: &str, para: &Kept<'_>, line: usize) -> Result<(), IndexError> {
        let missing = |field: &str, pkg: &str| IndexError {
            index: name.to_string(),
            line,
            message: format!("package \"{pkg}\" has no {field} field"),
        };
        let pkg_name = para.package.ok_or_else(|| missing("Package", "?"))?;
        let arch = para
            .architecture
            .ok_or_else(|| missing("Architecture", pkg_name))?;
        if arch != self.arch && arch != "all" {
            return Ok(());
        }
        let size = para
            .size
            .ok_or_else(|| missing("Size", pkg_name))?
            .parse()
            .map_err(|_| IndexError {
                index: name.to_string(),
                line,
                message: format!("package \"{pkg_name}\" has a Size that is not a number"),
            })?;
        let sha256 = para.sha256.ok_or_else(|| missing("SHA256", pkg_name))?;
        let relation = |v: Option<&str>| v.map(deb822::fold);
        let package = Package {
            version: para
                .version
                .ok_or_else(|| missing("Version", pkg_name))?
                .to_string(),
            filename: para
                .filename
                .ok_or_else(|| missing("Filename", pkg_name))?
                .to_string(),
            sha256: sha256.to_ascii_lowercase(),
            name: pkg_name.to_string(),
            arch: arch.to_string(),
            size,
            depends: relation(para.depends),
            pre_depends: relation(para.pre_depends),
            provides: relation(para.provides),
            conflicts: relation(para.conflicts),
            breaks: relation(para.breaks),
            essential: para.essential == Some("yes"),
            priority: para
                .priority
                .map(Priority::parse)
                .unwrap_or(Priority::Unknown),
            multi_arch: para.multi_arch.map(str::to_string),
            mirror: self.mirror.clone(),
        };
        self.push(package);
        Ok(())
    }

    /// Adds one package (indices merged from several components or suites).
    pub fn push(&mut self, package: Package) {
        let id = self.packages.len();
        if let Some(provides) = &package.provides {
            for name in provided_names(provides) {
                let ids = self.providers.entry(name.to_string()).or_default();
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        self.by_name
            .entry(package.name.clone())
            .or_default()
            .push(id);
        self.packages.push(package);
    }

    /// The architecture this index is for.
    pub fn arch(&self) -> &str {
        &self.arch
    }

    /// Number of packages kept.
    pub fn len(&self) -> usize {
        self.packages.len()
    }

    /// Whether no package was kept.
    pub fn is_empty(&self) -> bool {
        self.packages.is_empty()
    }

    /// All packages, in index order; ids are positions in this slice.
    pub fn packages(&self) -> &[Package] {
        &self.packages
    }

    /// The package with this id.
    pub fn get(&self, id: usize) -> &Package {
        &self.packages[id]
    }

    /// Ids of the packages named `name` (every version), in index order.
    pub fn by_name(&self, name: &str) -> &[usize] {
        self.by_name.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Ids of the packages whose `Provides:` names `name`.
    pub fn providers(&self, name: &str) -> &[usize] {
        self.providers.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Package names, sorted (for suggestions and listings).
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.by_name.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }
}

/// The package names in a raw `Provides:` value.
pub(crate) fn provided_names(provides: &str) -> impl Iterator<Item = &str> {
    provides.split(',').filter_map(|item| {
        let item = item.trim();
        let end = item
            .find(|c: char| c.is_whitespace() || c == '(' || c == ':')
            .unwrap_or(item.len());
        (end > 0).then(|| &item[..end])
    })
}

/// The fields of one paragraph that vbuild keeps, borrowed from the text.
#[derive(Default)]
struct Kept<'a> {
    package: Option<&'a str>,
    version: Option<&'a str>,
    architecture: Option<&'a str>,
    filename: Option<&'a str>,
    size: Option<&'a str>,
    sha256: Option<&'a str>,
    depends: Option<&'a str>,
    pre_depends: Option<&'a str>,
    provides: Option<&'a str>,
    conflicts: Option<&'a str>,
    breaks: Option<&'a str>,
    essential: Option<&'a str>,
    priority: Option<&'a str>,
    multi_arch: Option<&'a str>,
}

impl<'a> From<&deb822::Paragraph<'a>> for Kept<'a> {
    fn from(para: &deb822::Paragraph<'a>) -> Kept<'a> {
        let mut k = Kept::default();
        for f in &para.fields {
            let slot = match f.name {
                "Package" => &mut k.package,
                "Version" => &mut k.version,
                "Architecture" => &mut k.architecture,
                "Filename" => &mut k.filename,
                "Size" => &mut k.size,
                "SHA256" => &mut k.sha256,
                "Essential" => &mut k.essential,
                "Priority" => &mut k.priority,
                "Multi-Arch" => &mut k.multi_arch,
                "Depends" => &mut k.depends,
                "Pre-Depends" => &mut k.pre_depends,
                "Provides" => &mut k.provides,
                "Conflicts" => &mut k.conflicts,
                "Breaks" => &mut k.breaks,
                _ => continue,
            };
            *slot = Some(f.value.trim_end());
        }
        k
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
Package: libc6
Version: 2.36-9+deb12u4
Architecture: amd64
Multi-Arch: same
Priority: optional
Depends: libgcc-s1
Breaks: hurd (<< 1:0.9.git20220301-2),
 nscd (<< 2.36)
Description: GNU C Library: Shared libraries
 Contains the standard libraries.
Filename: pool/main/g/glibc/libc6_2.36-9+deb12u4_amd64.deb
Size: 2757936
SHA256: AB12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12

Package: libc6
Version: 2.36-9+deb12u4
Architecture: i386
Filename: pool/main/g/glibc/libc6_2.36-9+deb12u4_i386.deb
Size: 1
SHA256: 00

Package: base-files
Essential: yes
Priority: required
Version: 12.4+deb12u5
Architecture: all
Provides: base, usr-is-merged (= 12.4)
Filename: pool/main/b/base-files/base-files_12.4+deb12u5_amd64.deb
Size: 70000
SHA256: cd34cd34cd34cd34cd34cd34cd34cd34cd34cd34cd34cd34cd34cd34cd34cd34
";

    #[test]
    fn parses_kept_fields_and_filters_architectures() {
        let index = PackageIndex::parse("main/binary-amd64/Packages", SAMPLE, "amd64").unwrap();
        assert_eq!(index.len(), 2, "the i386 paragraph is dropped");
        let libc = index.get(index.by_name("libc6")[0]);
        assert_eq!(libc.version, "2.36-9+deb12u4");
        assert_eq!(libc.size, 2757936);
        assert_eq!(libc.sha256, "ab12".repeat(16));
        assert_eq!(
            libc.breaks.as_deref(),
            Some("hurd (<< 1:0.9.git20220301-2), nscd (<< 2.36)"),
            "continuation lines are folded"
        );
        assert_eq!(libc.multi_arch.as_deref(), Some("same"));
        assert!(!libc.essential);
        let base = index.get(index.by_name("base-files")[0]);
        assert!(base.essential);
        assert_eq!(base.priority, Priority::Required);
        assert_eq!(
            index.providers("usr-is-merged"),
            index.by_name("base-files")
        );
        assert_eq!(index.providers("base"), index.by_name("base-files"));
        assert!(index.providers("nscd").is_empty());
    }

    #[test]
    fn broken_paragraphs_name_the_index_and_line() {
        let text = "Package: a\nVersion: 1\nArchitecture: all\nFilename: a.deb\nSHA256: 00\n";
        let err = PackageIndex::parse("main/binary-amd64/Packages", text, "amd64").unwrap_err();
        assert_eq!(
            err.to_string(),
            "main/binary-amd64/Packages: line 1: package \"a\" has no Size field; the index is corrupt, retry or use another mirror"
        );
        let err = PackageIndex::parse("P", "Package: a\nnonsense\n", "amd64").unwrap_err();
        assert_eq!(err.line, 2);
    }
}
