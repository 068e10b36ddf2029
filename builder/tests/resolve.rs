//! Resolution against small synthetic indices: variants, alternatives,
//! virtual packages, versions, conflicts and breaks, includes, error texts,
//! determinism.

use vbuild_builder::distro::debian::index::PackageIndex;
use vbuild_builder::distro::debian::resolve::{resolve, ResolveError, Variant, Why};

/// A package: name, "version [arch]" (amd64 by default), control fields.
type Pkg<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);

fn index(packages: &[Pkg]) -> PackageIndex {
    let mut text = String::new();
    for (name, head, fields) in packages {
        let mut parts = head.split_whitespace();
        let version = parts.next().unwrap();
        let arch = parts.next().unwrap_or("amd64");
        text.push_str(&format!(
            "Package: {name}\nVersion: {version}\nArchitecture: {arch}\n"
        ));
        for (k, v) in *fields {
            text.push_str(&format!("{k}: {v}\n"));
        }
        text.push_str(&format!(
            "Filename: pool/{name}_{version}_{arch}.deb\nSize: 1\nSHA256: {}\n\n",
            "00".repeat(32)
        ));
    }
    PackageIndex::parse("test/Packages", &text, "amd64").unwrap()
}

fn names(idx: &PackageIndex, variant: Variant, include: &[&str]) -> Vec<String> {
    let include: Vec<String> = include.iter().map(|s| s.to_string()).collect();
    resolve(idx, variant, &include)
        .unwrap()
        .into_iter()
        .map(|p| format!("{}={}", p.name, p.version))
        .collect()
}

fn error(idx: &PackageIndex, include: &[&str]) -> String {
    let include: Vec<String> = include.iter().map(|s| s.to_string()).collect();
    resolve(idx, Variant::Essential, &include)
        .unwrap_err()
        .to_string()
}

const ESS: (&str, &str) = ("Essential", "yes");

#[test]
fn custom_installs_only_the_includes_and_their_dependencies() {
    let idx = index(&[
        ("base", "1", &[ESS, ("Priority", "required")]),
        ("req", "1", &[("Priority", "required")]),
        ("apt", "2", &[("Priority", "important")]),
        ("tool", "3", &[("Depends", "libtool (>= 2) | other")]),
        ("libtool", "2", &[]),
    ]);
    assert_eq!("custom".parse::<Variant>().unwrap(), Variant::Custom);
    assert_eq!(Variant::Custom.to_string(), "custom");
    assert_eq!(
        names(&idx, Variant::Custom, &["tool"]),
        ["libtool=2", "tool=3"],
        "no Essential, required or apt seed"
    );
    assert!(names(&idx, Variant::Custom, &[]).is_empty());
    let set = resolve(&idx, Variant::Custom, &["tool".to_string()]).unwrap();
    let libtool = set.iter().find(|p| p.name == "libtool").unwrap();
    assert_eq!(libtool.why, Why::DependencyOf("tool".into()));
    assert!(libtool.automatic, "apt would mark it auto-installed");
}

#[test]
fn variants_seed_essential_priorities_and_apt() {
    let idx = index(&[
        ("base", "1", &[ESS, ("Priority", "required")]),
        ("req", "1", &[("Priority", "required")]),
        ("imp", "1", &[("Priority", "important")]),
        ("std", "1", &[("Priority", "standard")]),
        ("opt", "1", &[("Priority", "optional")]),
        (
            "apt",
            "2",
            &[("Priority", "important"), ("Depends", "libapt")],
        ),
        ("libapt", "2", &[("Priority", "optional")]),
        ("other-arch", "1 i386", &[ESS]),
    ]);
    assert_eq!(names(&idx, Variant::Essential, &[]), ["base=1"]);
    assert_eq!(
        names(&idx, Variant::Minbase, &[]),
        ["apt=2", "base=1", "libapt=2", "req=1"]
    );
    assert_eq!(
        names(&idx, Variant::Standard, &[]),
        ["apt=2", "base=1", "imp=1", "libapt=2", "req=1", "std=1"]
    );
    let set = resolve(&idx, Variant::Minbase, &[]).unwrap();
    let why = |n: &str| set.iter().find(|p| p.name == n).unwrap().why.clone();
    assert_eq!(why("base"), Why::Essential);
    assert_eq!(why("apt"), Why::PackageManager);
    assert_eq!(why("libapt"), Why::DependencyOf("apt".into()));
    assert_eq!("minbase".parse::<Variant>().unwrap(), Variant::Minbase);
    assert_eq!(
        "tiny".parse::<Variant>().unwrap_err().to_string(),
        "\"tiny\" is not a variant; use essential, minbase, standard or custom"
    );
}

#[test]
fn alternatives_prefer_the_first_then_what_is_already_selected() {
    let idx = index(&[
        ("a", "1", &[ESS, ("Depends", "x | y")]),
        ("x", "1", &[]),
        ("y", "1", &[]),
    ]);
    assert_eq!(names(&idx, Variant::Essential, &[]), ["a=1", "x=1"]);
    // y is required anyway: a's dependency is then satisfied by it.
    let idx = index(&[
        ("a", "1", &[ESS, ("Depends", "x | y")]),
        ("b", "1", &[ESS, ("Depends", "y")]),
        ("x", "1", &[]),
        ("y", "1", &[]),
    ]);
    assert_eq!(names(&idx, Variant::Essential, &[]), ["a=1", "b=1", "y=1"]);
    // A missing first alternative falls through to the next.
    let idx = index(&[("a", "1", &[ESS, ("Depends", "gone | y")]), ("y", "1", &[])]);
    assert_eq!(names(&idx, Variant::Essential, &[]), ["a=1", "y=1"]);
}

#[test]
fn virtual_packages_resolve_through_provides() {
    // One provider: chosen.
    let idx = index(&[
        ("a", "1", &[ESS, ("Depends", "awk")]),
        (
            "mawk",
            "1",
            &[("Provides", "awk"), ("Priority", "required")],
        ),
        (
            "gawk",
            "1",
            &[("Provides", "awk"), ("Priority", "optional")],
        ),
    ]);
    // Several: the most important priority wins, then the name.
    assert_eq!(names(&idx, Variant::Essential, &[]), ["a=1", "mawk=1"]);
    // A provider already selected satisfies it.
    assert_eq!(
        names(&idx, Variant::Essential, &["gawk"]),
        ["a=1", "gawk=1"]
    );
    // A real package of the name is preferred to providers.
    let idx = index(&[
        ("a", "1", &[ESS, ("Depends", "awk")]),
        ("awk", "1", &[]),
        (
            "mawk",
            "1",
            &[("Provides", "awk"), ("Priority", "required")],
        ),
    ]);
    assert_eq!(names(&idx, Variant::Essential, &[]), ["a=1", "awk=1"]);
}

#[test]
fn versioned_dependencies_need_versioned_provides() {
    let idx = index(&[
        ("a", "1", &[ESS, ("Depends", "libfoo-api (>= 2)")]),
        ("old", "1", &[("Provides", "libfoo-api")]),
        ("new", "1", &[("Provides", "libfoo-api (= 3)")]),
    ]);
    assert_eq!(names(&idx, Variant::Essential, &[]), ["a=1", "new=1"]);
    let idx = index(&[
        ("a", "1", &[ESS, ("Depends", "libfoo-api (>= 2)")]),
        ("old", "1", &[("Provides", "libfoo-api")]),
    ]);
    assert_eq!(
        error(&idx, &[]),
        "a: depends on libfoo-api (>= 2) but libfoo-api is only provided by old without a matching version"
    );
}

#[test]
fn versions_pick_the_highest_that_satisfies() {
    let idx = index(&[
        ("a", "1", &[ESS, ("Depends", "lib (<< 2.0~)")]),
        ("lib", "2.0", &[]),
        ("lib", "1.9", &[]),
        ("lib", "1:0.1", &[]),
    ]);
    assert_eq!(names(&idx, Variant::Essential, &[]), ["a=1", "lib=1.9"]);
    let idx = index(&[
        ("a", "1", &[ESS, ("Depends", "lib")]),
        ("lib", "2.0", &[]),
        ("lib", "1:0.1", &[]),
    ]);
    assert_eq!(
        names(&idx, Variant::Essential, &[]),
        ["a=1", "lib=1:0.1"],
        "epoch wins"
    );
}

#[test]
fn unsatisfiable_dependencies_name_package_and_relation() {
    let idx = index(&[
        ("nginx", "1.22", &[("Depends", "libfoo (>= 2)")]),
        ("libfoo", "1.0", &[]),
    ]);
    assert_eq!(
        error(&idx, &["nginx"]),
        "nginx: depends on libfoo (>= 2) but only 1.0 is available"
    );
    let idx = index(&[("nginx", "1.22", &[("Pre-Depends", "libbar")])]);
    assert_eq!(
        error(&idx, &["nginx"]),
        "nginx: pre-depends on libbar but libbar is not in the repository"
    );
    let idx = index(&[
        ("nginx", "1.22", &[("Depends", "x (>= 3) | y")]),
        ("x", "2", &[]),
    ]);
    assert_eq!(
        error(&idx, &["nginx"]),
        "nginx: depends on x (>= 3) | y but x: only 2 is available; y: y is not in the repository"
    );
}

#[test]
fn conflicts_and_breaks_decide_between_alternatives() {
    let idx = index(&[
        ("a", "1", &[ESS, ("Depends", "x | y")]),
        ("b", "1", &[ESS, ("Conflicts", "x")]),
        ("x", "1", &[]),
        ("y", "1", &[]),
    ]);
    assert_eq!(names(&idx, Variant::Essential, &[]), ["a=1", "b=1", "y=1"]);
    // Breaks with a version: only the old version is broken.
    let idx = index(&[
        ("a", "1", &[ESS, ("Depends", "x | y")]),
        ("x", "1", &[("Breaks", "b (<< 2)")]),
        ("b", "1", &[ESS]),
        ("y", "1", &[]),
    ]);
    assert_eq!(names(&idx, Variant::Essential, &[]), ["a=1", "b=1", "y=1"]);
    // A conflict on a virtual name hits its providers.
    let idx = index(&[
        ("a", "1", &[ESS, ("Depends", "x | y")]),
        ("b", "1", &[ESS, ("Conflicts", "mta")]),
        ("x", "1", &[("Provides", "mta")]),
        ("y", "1", &[]),
    ]);
    assert_eq!(names(&idx, Variant::Essential, &[]), ["a=1", "b=1", "y=1"]);
}

#[test]
fn a_choice_that_fails_later_is_undone() {
    // x looks fine for a, but x needs z, which c conflicts with; c is only
    // reached through x's sibling dependency order, so the resolver must
    // backtrack from x to y.
    let idx = index(&[
        ("a", "1", &[ESS, ("Depends", "x | y")]),
        ("c", "1", &[ESS, ("Conflicts", "z")]),
        ("x", "1", &[("Depends", "z")]),
        ("z", "1", &[]),
        ("y", "1", &[]),
    ]);
    assert_eq!(names(&idx, Variant::Essential, &[]), ["a=1", "c=1", "y=1"]);
    let idx = index(&[
        ("a", "1", &[ESS, ("Depends", "p | q")]),
        ("p", "1", &[("Depends", "r1 | r2")]),
        ("r1", "1", &[("Depends", "missing")]),
        ("r2", "1", &[("Depends", "missing2")]),
        ("q", "1", &[]),
    ]);
    assert_eq!(names(&idx, Variant::Essential, &[]), ["a=1", "q=1"]);
}

#[test]
fn forced_conflicts_are_reported_with_who_declares_them() {
    let idx = index(&[
        ("a", "1", &[ESS]),
        ("b", "1", &[ESS, ("Conflicts", "a (<< 2)")]),
    ]);
    assert_eq!(
        error(&idx, &[]),
        "b conflicts with a (b: Conflicts: a (<< 2)); they cannot be installed together"
    );
}

#[test]
fn arch_qualifiers_and_arch_all() {
    let idx = index(&[
        ("a", "1", &[ESS, ("Depends", "perl:any, data")]),
        ("perl", "5.36", &[("Multi-Arch", "allowed")]),
        ("data", "1 all", &[]),
    ]);
    assert_eq!(
        names(&idx, Variant::Essential, &[]),
        ["a=1", "data=1", "perl=5.36"]
    );
    let idx = index(&[
        ("a", "1", &[ESS, ("Depends", "libc6:i386")]),
        ("libc6", "2", &[]),
    ]);
    assert_eq!(
        error(&idx, &[]),
        "a: depends on libc6:i386 but libc6:i386 is for another architecture"
    );
}

#[test]
fn includes_by_name_version_and_virtual() {
    let idx = index(&[
        ("base", "1", &[ESS]),
        ("nginx", "1.22", &[]),
        ("nginx", "1.24", &[]),
        ("nginx-light", "1.22", &[]),
        ("postfix", "3", &[("Provides", "mail-transport-agent")]),
        ("exim4", "4", &[("Provides", "mta")]),
        ("sendmail", "8", &[("Provides", "mta")]),
    ]);
    assert_eq!(
        names(&idx, Variant::Essential, &["nginx"]),
        ["base=1", "nginx=1.24"]
    );
    assert_eq!(
        names(&idx, Variant::Essential, &["nginx=1.22"]),
        ["base=1", "nginx=1.22"]
    );
    assert_eq!(
        names(&idx, Variant::Essential, &["mail-transport-agent"]),
        ["base=1", "postfix=3"]
    );
    assert_eq!(
        error(&idx, &["nginx=9"]),
        "nginx: version 9 is not available (available: 1.22, 1.24)"
    );
    assert_eq!(
        error(&idx, &["ngin"]),
        "ngin: no such package in the repository for amd64; did you mean nginx, nginx-light?"
    );
    assert_eq!(
        error(&idx, &["mta"]),
        "mta is a virtual package provided by exim4, sendmail; include one of them by name"
    );
    assert!(matches!(
        resolve(&idx, Variant::Essential, &["../x".to_string()]).unwrap_err(),
        ResolveError::BadRequest { .. }
    ));
}

#[test]
fn output_is_sorted_and_independent_of_index_order() {
    let pkgs: Vec<Pkg> = vec![
        ("zeta", "1", &[ESS, ("Depends", "alpha | beta, mid")]),
        ("alpha", "1", &[]),
        ("beta", "1", &[]),
        ("mid", "1", &[("Depends", "awk")]),
        ("mawk", "1", &[("Provides", "awk")]),
        ("gawk", "1", &[("Provides", "awk")]),
    ];
    let forward = names(&index(&pkgs), Variant::Essential, &[]);
    let mut reversed = pkgs.clone();
    reversed.reverse();
    assert_eq!(forward, names(&index(&reversed), Variant::Essential, &[]));
    assert_eq!(forward, ["alpha=1", "gawk=1", "mid=1", "zeta=1"]);
}
