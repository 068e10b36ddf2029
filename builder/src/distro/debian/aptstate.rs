//! apt's record of which packages were installed only as dependencies
//! (`/var/lib/apt/extended_states`), so `apt autoremove` and `apt-mark`
//! inside the guest know them as mmdebstrap's apt leaves them: the
//! Essential set with its dependencies and what the variant or `--include`
//! asked for are manual; what else Depends/Pre-Depends pulled in is
//! automatic (`ResolvedPackage::automatic`).

use std::path::Path;

use vbuild_kernel::fsroot::{FsError, Root};

use super::resolve::ResolvedPackage;

/// Where apt keeps the automatic-installation marks.
pub const EXTENDED_STATES: &str = "var/lib/apt/extended_states";

/// The file's text: one stanza per automatically installed package,
/// sorted by name. apt records an `all` package under the native `arch`.
pub fn extended_states(packages: &[ResolvedPackage], arch: &str) -> String {
    let mut auto: Vec<&ResolvedPackage> = packages.iter().filter(|p| p.automatic).collect();
    auto.sort_by(|a, b| a.name.cmp(&b.name));
    let mut out = String::new();
    for p in auto {
        let a = if p.arch == "all" { arch } else { &p.arch };
        out.push_str(&format!(
            "Package: {}\nArchitecture: {a}\nAuto-Installed: 1\n\n",
            p.name
        ));
    }
    out
}

/// Writes [`extended_states`] into the guest under `root` (through the
/// rootfs-confined file API, so a guest symlink cannot redirect it).
pub fn write_extended_states(
    root: &Root,
    packages: &[ResolvedPackage],
    arch: &str,
) -> Result<(), FsError> {
    let path = Path::new(EXTENDED_STATES);
    if let Some(dir) = path.parent() {
        root.mkdir_all(dir, 0o755)?;
    }
    root.write(path, extended_states(packages, arch).as_bytes(), 0o644)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distro::debian::index::Priority;
    use crate::distro::debian::resolve::Why;

    fn pkg(name: &str, arch: &str, why: Why) -> ResolvedPackage {
        ResolvedPackage {
            automatic: matches!(why, Why::DependencyOf(_)),
            name: name.into(),
            version: "1".into(),
            arch: arch.into(),
            filename: format!("pool/{name}.deb"),
            mirror: String::new(),
            size: 1,
            sha256: String::new(),
            essential: false,
            priority: Priority::Optional,
            why,
        }
    }

    #[test]
    fn only_automatic_packages_are_listed_and_all_takes_the_native_arch() {
        let set = vec![
            pkg("zlib1g", "amd64", Why::DependencyOf("apt".into())),
            pkg("apt", "amd64", Why::PackageManager),
            pkg("base-files", "amd64", Why::Essential),
            pkg("nginx", "amd64", Why::Requested),
            pkg(
                "debian-archive-keyring",
                "all",
                Why::DependencyOf("apt".into()),
            ),
            pkg("tzdata", "all", Why::Priority(Priority::Required)),
        ];
        assert_eq!(
            extended_states(&set, "amd64"),
            "Package: debian-archive-keyring\nArchitecture: amd64\nAuto-Installed: 1\n\n\
             Package: zlib1g\nArchitecture: amd64\nAuto-Installed: 1\n\n"
        );
        assert_eq!(extended_states(&set[1..4], "amd64"), "");
    }
}
