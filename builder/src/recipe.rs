//! Recipes: one TOML per distribution release (`recipes/debian/*.toml`) saying
//! where its packages come from, which keys sign them and what a build
//! defaults to. Recipes and the archive keys they name are embedded in the
//! binary so that `vbuild` works from any directory; `VBUILD_RECIPES=DIR`
//! (a directory laid out like `recipes/`) overrides them for development.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Recipes built into the binary: (path under recipes/, content).
const EMBEDDED_RECIPES: &[(&str, &str)] = &[
    (
        "debian/bookworm.toml",
        include_str!("../../recipes/debian/bookworm.toml"),
    ),
    (
        "debian/trixie.toml",
        include_str!("../../recipes/debian/trixie.toml"),
    ),
    (
        "debian/forky.toml",
        include_str!("../../recipes/debian/forky.toml"),
    ),
    (
        "debian/sid.toml",
        include_str!("../../recipes/debian/sid.toml"),
    ),
    (
        "fedora/43.toml",
        include_str!("../../recipes/fedora/43.toml"),
    ),
    (
        "fedora/44.toml",
        include_str!("../../recipes/fedora/44.toml"),
    ),
    (
        "fedora/45.toml",
        include_str!("../../recipes/fedora/45.toml"),
    ),
    (
        "fedora/rawhide.toml",
        include_str!("../../recipes/fedora/rawhide.toml"),
    ),
];

/// Archive keys built into the binary: (file name in recipes/keys/, content).
const EMBEDDED_KEYS: &[(&str, &[u8])] = &[
    (
        "debian-archive-bookworm-automatic.asc",
        include_bytes!("../../recipes/keys/debian-archive-bookworm-automatic.asc"),
    ),
    (
        "debian-archive-bookworm-security-automatic.asc",
        include_bytes!("../../recipes/keys/debian-archive-bookworm-security-automatic.asc"),
    ),
    (
        "debian-archive-bookworm-stable.asc",
        include_bytes!("../../recipes/keys/debian-archive-bookworm-stable.asc"),
    ),
    (
        "debian-archive-trixie-automatic.asc",
        include_bytes!("../../recipes/keys/debian-archive-trixie-automatic.asc"),
    ),
    (
        "debian-archive-trixie-security-automatic.asc",
        include_bytes!("../../recipes/keys/debian-archive-trixie-security-automatic.asc"),
    ),
    (
        "debian-archive-trixie-stable.asc",
        include_bytes!("../../recipes/keys/debian-archive-trixie-stable.asc"),
    ),
    (
        "fedora-43-primary.asc",
        include_bytes!("../../recipes/keys/fedora-43-primary.asc"),
    ),
    (
        "fedora-44-primary.asc",
        include_bytes!("../../recipes/keys/fedora-44-primary.asc"),
    ),
    (
        "fedora-45-primary.asc",
        include_bytes!("../../recipes/keys/fedora-45-primary.asc"),
    ),
    (
        "fedora-46-primary.asc",
        include_bytes!("../../recipes/keys/fedora-46-primary.asc"),
    ),
];

/// Where recipes and keys are read from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RecipeSource {
    /// The copies compiled into the binary.
    #[default]
    Embedded,
    /// A directory laid out like the repository's `recipes/`.
    Dir(PathBuf),
}

impl RecipeSource {
    /// `VBUILD_RECIPES=DIR` when set (development), else the embedded recipes.
    pub fn from_env() -> RecipeSource {
        match std::env::var_os("VBUILD_RECIPES") {
            Some(dir) if !dir.is_empty() => RecipeSource::Dir(PathBuf::from(dir)),
            _ => RecipeSource::Embedded,
        }
    }

    /// How a file of this source is named in messages.
    fn label(&self, rel: &str) -> String {
        match self {
            RecipeSource::Embedded => format!("recipes/{rel}"),
            RecipeSource::Dir(dir) => dir.join(rel).display().to_string(),
        }
    }

    fn read_recipe(&self, rel: &str) -> Result<Option<String>, RecipeError> {
        match self {
            RecipeSource::Embedded => Ok(EMBEDDED_RECIPES
                .iter()
                .find(|(name, _)| *name == rel)
                .map(|(_, text)| text.to_string())),
            RecipeSource::Dir(dir) => read_optional(&dir.join(rel))
                .map(|bytes| bytes.map(|b| String::from_utf8_lossy(&b).into_owned())),
        }
    }

    fn read_key(&self, name: &str) -> Result<Option<Vec<u8>>, RecipeError> {
        match self {
            RecipeSource::Embedded => Ok(EMBEDDED_KEYS
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, bytes)| bytes.to_vec())),
            RecipeSource::Dir(dir) => read_optional(&dir.join("keys").join(name)),
        }
    }

    fn key_names(&self) -> Vec<String> {
        let mut names: Vec<String> = match self {
            RecipeSource::Embedded => EMBEDDED_KEYS.iter().map(|(n, _)| n.to_string()).collect(),
            RecipeSource::Dir(dir) => list_dir(&dir.join("keys"), ""),
        };
        names.sort();
        names
    }
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, RecipeError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(RecipeError::Io {
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

/// File names in `dir` ending in `suffix`, with the suffix removed.
fn list_dir(dir: &Path, suffix: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(suffix).map(str::to_string))
        .filter(|n| !n.starts_with('.'))
        .collect()
}

/// A distribution release as a recipe describes it. The generic part is
/// typed here; `[repository]` is kept as a table that the family's module
/// reads and checks ([`Distribution::check_repository`]), since a Debian
/// suite and a Fedora metalink have nothing in common.
///
/// [`Distribution::check_repository`]: crate::distro::Distribution::check_repository
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    /// Distribution family: selects the builder module (`debian`).
    pub family: String,
    /// Release name as users type it (`bookworm`).
    pub release: String,
    /// Name of the tailoring profile (`recipes/tailor/NAME.toml`).
    pub tailor: String,
    /// Package providing `/sbin/init`, added when the guest is to boot.
    #[serde(default)]
    pub init: Option<String>,
    /// Where packages come from and who signs them, as the family reads it
    /// ([`Recipe::repository_as`]).
    pub repository: toml::Table,
    /// Build defaults.
    pub build: BuildDefaults,
    /// Guest setup, hooks, components and sources as data (the build
    /// flags' names; `vbuild build --help`); the command line adds to it.
    #[serde(default)]
    pub customize: crate::customize::CustomizeTable,
    /// Where this recipe was read from; its keys come from the same place.
    #[serde(skip)]
    pub source: RecipeSource,
    /// The recipe's file name in messages.
    #[serde(skip)]
    file: String,
    /// The recipe's text, so that a family's errors can name the line.
    #[serde(skip)]
    text: String,
}

/// The `[build]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildDefaults {
    /// Variant when the user gives none (`minbase`).
    pub default_variant: String,
    /// Whether /bin, /sbin, /lib* are symlinks into /usr.
    pub merged_usr: bool,
}

/// Why a recipe could not be loaded. Each names the file and what to fix.
#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    /// No recipe for this family.
    #[error("unknown distribution family \"{family}\"; known: {}", known.join(", "))]
    UnknownFamily {
        /// What was asked for.
        family: String,
        /// Families with at least one recipe.
        known: Vec<String>,
    },
    /// No recipe for this release.
    #[error("unknown release {family}/{release}; known: {}", known.join(", "))]
    UnknownRelease {
        /// The family.
        family: String,
        /// What was asked for.
        release: String,
        /// Releases with a recipe.
        known: Vec<String>,
    },
    /// The TOML does not parse or does not fit the recipe's shape.
    #[error("{file}:{line}: {field}: {message}")]
    Malformed {
        /// The recipe file.
        file: String,
        /// 1-based line.
        line: usize,
        /// Dotted field path (`repository.mirror`), or the table.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A key file the recipe names does not exist.
    #[error("{file}: repository.keys names \"{key}\", which is not in {dir}; known keys: {}", known.join(", "))]
    MissingKey {
        /// The recipe file.
        file: String,
        /// The missing key file name.
        key: String,
        /// Where keys are looked up.
        dir: String,
        /// Key files that exist.
        known: Vec<String>,
    },
    /// A recipe file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the kernel said.
        source: std::io::Error,
    },
}

impl Recipe {
    /// Loads `family/release` from `VBUILD_RECIPES` or the embedded recipes.
    pub fn load(family: &str, release: &str) -> Result<Recipe, RecipeError> {
        Recipe::load_from(&RecipeSource::from_env(), family, release)
    }

    /// Loads `family/release` from `source`, checking it completely (fields,
    /// values, and that its key files exist).
    pub fn load_from(
        source: &RecipeSource,
        family: &str,
        release: &str,
    ) -> Result<Recipe, RecipeError> {
        let families = Recipe::families(source);
        if !families.iter().any(|f| f == family) {
            return Err(RecipeError::UnknownFamily {
                family: family.to_string(),
                known: families,
            });
        }
        let unknown = || RecipeError::UnknownRelease {
            family: family.to_string(),
            release: release.to_string(),
            known: Recipe::known(source, family),
        };
        if release.is_empty()
            || !release
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(unknown());
        }
        let rel = format!("{family}/{release}.toml");
        let text = source.read_recipe(&rel)?.ok_or_else(unknown)?;
        let file = source.label(&rel);
        let recipe = Recipe::parse_from(source, &file, &text)?;
        if recipe.family != family {
            return Err(recipe.malformed(
                "family",
                format!("is \"{}\" but the file is under {family}/", recipe.family),
            ));
        }
        if recipe.release != release {
            return Err(recipe.malformed(
                "release",
                format!("is \"{}\" but the file is {release}.toml", recipe.release),
            ));
        }
        Ok(recipe)
    }

    /// Parses and checks recipe text; `file` names it in errors. Keys are
    /// looked up in the embedded recipes' place.
    pub fn parse(file: &str, text: &str) -> Result<Recipe, RecipeError> {
        Recipe::parse_from(&RecipeSource::Embedded, file, text)
    }

    /// Parses and checks recipe text read from `source`.
    fn parse_from(source: &RecipeSource, file: &str, text: &str) -> Result<Recipe, RecipeError> {
        let mut recipe: Recipe = toml::from_str(text).map_err(|e| toml_error(file, text, e))?;
        recipe.source = source.clone();
        recipe.file = file.to_string();
        recipe.text = text.to_string();
        recipe.check()?;
        Ok(recipe)
    }

    /// The `[repository]` table read as the family's type `T`; a field that
    /// does not fit names the file, line and `repository.FIELD`.
    pub fn repository_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, RecipeError> {
        #[derive(Deserialize)]
        struct Only<T> {
            repository: T,
        }
        toml::from_str::<Only<T>>(&self.text)
            .map(|o| o.repository)
            .map_err(|e| toml_error(&self.file, &self.text, e))
    }

    /// An error about `field` (dotted, `repository.suite`) of this recipe,
    /// at the line where the field is set.
    pub fn malformed(&self, field: &str, message: impl Into<String>) -> RecipeError {
        RecipeError::Malformed {
            file: self.file.clone(),
            line: line_of(&self.text, field),
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// Checks that key file names are plain names and exist where this
    /// recipe's keys are read from; `field` is where the recipe lists them.
    pub fn check_keys(&self, field: &str, names: &[String]) -> Result<(), RecipeError> {
        if names.is_empty() {
            return Err(self.malformed(
                field,
                "is empty; a repository without trusted keys cannot be verified",
            ));
        }
        for k in names {
            if k.is_empty() || k.contains('/') || k.starts_with('.') {
                return Err(self.malformed(
                    field,
                    format!("\"{k}\" is not a file name in recipes/keys/"),
                ));
            }
        }
        self.key_files(names).map(|_| ())
    }

    /// Value checks serde cannot express, then the family's own check of
    /// `[repository]`.
    fn check(&self) -> Result<(), RecipeError> {
        // A family without a module yet is refused when built, not here.
        if let Ok(known) = crate::distro::variants(&self.family) {
            if !known.contains(&self.build.default_variant.as_str()) {
                return Err(self.malformed(
                    "build.default_variant",
                    format!(
                        "\"{}\" is not a variant; use one of {}",
                        self.build.default_variant,
                        known.join(", ")
                    ),
                ));
            }
        }
        check_word(&self.tailor).map_err(|m| self.malformed("tailor", m))?;
        match crate::distro::check_repository(self) {
            Ok(checked) => checked,
            Err(_unknown_family) => Ok(()),
        }
    }

    /// Releases of `family` that have a recipe in `source`, sorted.
    pub fn known(source: &RecipeSource, family: &str) -> Vec<String> {
        let mut names: Vec<String> = match source {
            RecipeSource::Embedded => EMBEDDED_RECIPES
                .iter()
                .filter_map(|(path, _)| {
                    let (f, file) = path.split_once('/')?;
                    (f == family).then(|| file.strip_suffix(".toml"))?
                })
                .map(str::to_string)
                .collect(),
            RecipeSource::Dir(dir) => list_dir(&dir.join(family), ".toml"),
        };
        names.sort();
        names
    }

    /// Families that have at least one recipe in `source`, sorted.
    pub fn families(source: &RecipeSource) -> Vec<String> {
        let mut names: Vec<String> = match source {
            RecipeSource::Embedded => EMBEDDED_RECIPES
                .iter()
                .filter_map(|(path, _)| path.split_once('/').map(|(f, _)| f.to_string()))
                .collect(),
            RecipeSource::Dir(dir) => list_dir(dir, "")
                .into_iter()
                .filter(|f| !Recipe::known(source, f).is_empty())
                .collect(),
        };
        names.sort();
        names.dedup();
        names
    }

    /// The key files `names` (as the recipe lists them) with their content,
    /// in that order.
    pub fn key_files(&self, names: &[String]) -> Result<Vec<(String, Vec<u8>)>, RecipeError> {
        names
            .iter()
            .map(|name| match self.source.read_key(name)? {
                Some(bytes) => Ok((name.clone(), bytes)),
                None => Err(RecipeError::MissingKey {
                    file: self.file.clone(),
                    key: name.clone(),
                    dir: self.source.label("keys"),
                    known: self.source.key_names(),
                }),
            })
            .collect()
    }
}

/// A TOML error as file, line, dotted field and message.
fn toml_error(file: &str, text: &str, e: toml::de::Error) -> RecipeError {
    let offset = e.span().map(|s| s.start).unwrap_or(0);
    let message = e.message().trim().to_string();
    let field = backticked(&message)
        .filter(|_| message.starts_with("missing field"))
        .map(|name| match table_at(text, offset) {
            t if t.is_empty() => name.to_string(),
            t => format!("{t}.{name}"),
        })
        .unwrap_or_else(|| field_at(text, offset));
    RecipeError::Malformed {
        file: file.to_string(),
        line: text[..offset.min(text.len())].matches('\n').count() + 1,
        field,
        message: format!("{message}; fix the recipe"),
    }
}

/// Checks a mirror URL: http(s) with a host, or file:// with an absolute path.
pub(crate) fn check_mirror(url: &str) -> Result<(), String> {
    // Packages are verified by signature and sha256 whatever the transport.
    if let Some(path) = url.strip_prefix("file://") {
        if !path.starts_with('/') {
            return Err(format!(
                "\"{url}\" must name an absolute directory, e.g. file:///srv/mirror/debian"
            ));
        }
        return Ok(());
    }
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("\"{url}\" must be an http://, https:// or file:/// URL"))?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(format!(
            "\"{url}\" has no host; e.g. https://deb.debian.org/debian"
        ));
    }
    Ok(())
}

/// Checks a plain name (suite, component, profile).
pub(crate) fn check_word(value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && !value.starts_with('.')
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "\"{value}\" must be a plain name (letters, digits, - _ .)"
        ))
    }
}

/// The first `name` in backticks, as serde quotes fields.
fn backticked(message: &str) -> Option<&str> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(&message[start..start + len])
}

/// The `[table]` in force at `offset`, empty at top level.
fn table_at(text: &str, offset: usize) -> String {
    let before = &text[..offset.min(text.len())];
    // A span that starts on a header line belongs to that table.
    let line_end = text[offset.min(text.len())..]
        .find('\n')
        .map(|n| offset + n)
        .unwrap_or(text.len());
    text[..line_end.max(before.len())]
        .lines()
        .rev()
        .find_map(|l| {
            let l = l.trim();
            (l.starts_with('[') && l.ends_with(']'))
                .then(|| l.trim_matches(|c| c == '[' || c == ']').trim().to_string())
        })
        .unwrap_or_default()
}

/// The dotted field path of the key on the line containing `offset`.
fn field_at(text: &str, offset: usize) -> String {
    let offset = offset.min(text.len());
    let start = text[..offset].rfind('\n').map(|n| n + 1).unwrap_or(0);
    let line = text[start..].lines().next().unwrap_or("").trim();
    let table = table_at(text, offset);
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_string());
    match (table.is_empty(), key) {
        (_, None) if !table.is_empty() => table,
        (_, None) => "recipe".to_string(),
        (true, Some(k)) => k,
        (false, Some(k)) => format!("{table}.{k}"),
    }
}

/// The 1-based line where the dotted `field` is set (1 when absent).
fn line_of(text: &str, field: &str) -> usize {
    let (table, key) = match field.rsplit_once('.') {
        Some((t, k)) => (t, k),
        None => ("", field),
    };
    let mut current = String::new();
    for (n, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.starts_with('[') && l.ends_with(']') {
            current = l.trim_matches(|c| c == '[' || c == ']').trim().to_string();
            if current == field {
                return n + 1;
            }
            continue;
        }
        if current == table {
            if let Some((k, _)) = l.split_once('=') {
                if k.trim() == key {
                    return n + 1;
                }
            }
        }
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distro::debian::recipe as debian;

    #[test]
    fn every_embedded_recipe_loads_and_its_keys_exist() {
        let source = RecipeSource::Embedded;
        assert_eq!(Recipe::families(&source), ["debian", "fedora"]);
        assert_eq!(
            Recipe::known(&source, "debian"),
            ["bookworm", "forky", "sid", "trixie"]
        );
        for release in Recipe::known(&source, "debian") {
            let recipe = Recipe::load_from(&source, "debian", &release).unwrap();
            let repo = debian::read(&recipe).unwrap();
            assert_eq!(repo.suite, release);
            assert_eq!(recipe.build.default_variant, "minbase");
            assert!(recipe.build.merged_usr);
            assert_eq!(recipe.tailor, "debian");
            let keys = recipe.key_files(&repo.keys).unwrap();
            assert_eq!(keys.len(), 6);
            assert!(keys
                .iter()
                .all(|(_, bytes)| bytes.starts_with(b"-----BEGIN PGP")));
        }
        let sid = debian::read(&Recipe::load_from(&source, "debian", "sid").unwrap()).unwrap();
        assert_eq!(sid.security, None);
        assert_eq!(sid.updates_suite, None);
        let bookworm =
            debian::read(&Recipe::load_from(&source, "debian", "bookworm").unwrap()).unwrap();
        assert_eq!(bookworm.security.unwrap().suite, "bookworm-security");
    }

    #[test]
    fn fedora_recipes_load_with_metalinks_baseurls_and_keys() {
        use crate::distro::fedora::recipe as fedora;
        let source = RecipeSource::Embedded;
        assert_eq!(
            Recipe::known(&source, "fedora"),
            ["43", "44", "45", "rawhide"]
        );
        for release in Recipe::known(&source, "fedora") {
            let recipe = Recipe::load_from(&source, "fedora", &release).unwrap();
            let repo = fedora::read(&recipe).unwrap();
            assert_eq!(recipe.build.default_variant, "minimal");
            let ml = repo.repos[0].metalink.as_deref().unwrap();
            let want = if release == "rawhide" {
                "repo=rawhide&".to_string()
            } else {
                format!("repo=fedora-{release}&")
            };
            assert!(ml.starts_with("https://") && ml.contains(&want), "{ml}");
            assert!(!repo.repos[0].baseurls.is_empty());
            if release != "rawhide" {
                assert!(repo.repos[1]
                    .metalink
                    .as_deref()
                    .unwrap()
                    .contains(&format!("updates-released-f{release}")));
            }
            assert!(recipe
                .key_files(&repo.keys)
                .unwrap()
                .iter()
                .all(|(_, b)| b.starts_with(b"-----BEGIN PGP PUBLIC KEY")));
        }
        let text = include_str!("../../recipes/fedora/44.toml")
            .replace("id = \"updates\"\n", "id = \"updates\"\nsuite = \"x\"\n");
        let err = Recipe::parse("f.toml", &text).unwrap_err().to_string();
        assert!(err.contains("unknown field `suite`"), "{err}");
        let text = include_str!("../../recipes/fedora/44.toml").replace(
            "keys = [\"fedora-44-primary.asc\"]",
            "keys = [\"nope.asc\"]",
        );
        let err = Recipe::parse("f.toml", &text).unwrap_err().to_string();
        assert!(err.contains("\"nope.asc\""), "{err}");
    }

    #[test]
    fn unknown_release_lists_the_known_ones() {
        let err = Recipe::load_from(&RecipeSource::Embedded, "debian", "potato").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown release debian/potato; known: bookworm, forky, sid, trixie"
        );
        let err = Recipe::load_from(&RecipeSource::Embedded, "debian", "../x").unwrap_err();
        assert!(matches!(err, RecipeError::UnknownRelease { .. }), "{err}");
        let err = Recipe::load_from(&RecipeSource::Embedded, "gentoo", "x").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown distribution family \"gentoo\"; known: debian, fedora"
        );
    }

    const GOOD: &str = include_str!("../../recipes/debian/bookworm.toml");

    fn parse_err(text: &str) -> String {
        Recipe::parse("x.toml", text).unwrap_err().to_string()
    }

    #[test]
    fn malformed_recipes_name_file_line_and_field() {
        let wrong_type = GOOD.replace("merged_usr = true", "merged_usr = \"yes\"");
        let line = line_of(&wrong_type, "build.merged_usr");
        let err = parse_err(&wrong_type);
        assert!(
            err.starts_with(&format!("x.toml:{line}: build.merged_usr: invalid type")),
            "{err}"
        );

        let missing = GOOD.replace("suite = \"bookworm\"\n", "");
        let err = parse_err(&missing);
        assert!(
            err.contains(": repository.suite: missing field `suite`"),
            "{err}"
        );

        let unknown = GOOD.replace("merged_usr = true", "merged_usr = true\nmergd = 1");
        let err = parse_err(&unknown);
        let line = unknown.lines().position(|l| l == "mergd = 1").unwrap() + 1;
        assert!(
            err.starts_with(&format!(
                "x.toml:{line}: build.mergd: unknown field `mergd`"
            )),
            "{err}"
        );

        let syntax = GOOD.replace("components = [\"main\"]", "components = [\"main\"");
        assert!(
            parse_err(&syntax).starts_with("x.toml:"),
            "{}",
            parse_err(&syntax)
        );
    }

    #[test]
    fn bad_values_are_refused_with_the_field() {
        let ftp = GOOD.replace(
            "http://deb.debian.org/debian\"",
            "ftp://deb.debian.org/debian\"",
        );
        let err = parse_err(&ftp);
        let line = line_of(&ftp, "repository.mirror");
        assert!(
            err.starts_with(&format!("x.toml:{line}: repository.mirror: \"ftp://")),
            "{err}"
        );
        for good in ["https://deb.debian.org/debian", "file:///srv/mirror/debian"] {
            assert!(check_mirror(good).is_ok(), "{good}");
        }
        assert!(check_mirror("file://srv/mirror").is_err());
        assert!(check_mirror("https://").is_err());

        let variant = GOOD.replace(
            "default_variant = \"minbase\"",
            "default_variant = \"tiny\"",
        );
        let err = parse_err(&variant);
        assert!(
            err.contains("build.default_variant: \"tiny\" is not a variant; use one of essential, minbase, standard, custom"),
            "{err}"
        );

        let metalink = GOOD.replace(
            "suite = \"bookworm\"\n",
            "suite = \"bookworm\"\nmetalink = \"https://x\"\n",
        );
        let line = metalink
            .lines()
            .position(|l| l.starts_with("metalink"))
            .unwrap()
            + 1;
        let err = parse_err(&metalink);
        assert!(
            err.starts_with(&format!(
                "x.toml:{line}: repository.metalink: unknown field `metalink`"
            )),
            "{err}"
        );

        let no_components = GOOD.replace("components = [\"main\"]", "components = []");
        assert!(parse_err(&no_components).contains("repository.components: is empty"));
    }

    #[test]
    fn a_recipe_dir_overrides_and_missing_keys_are_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("debian")).unwrap();
        std::fs::create_dir_all(dir.path().join("keys")).unwrap();
        let text = GOOD.replace(
            "    \"debian-archive-trixie-stable.asc\",\n",
            "    \"debian-archive-trixie-stable.asc\",\n    \"local.asc\",\n",
        );
        std::fs::write(dir.path().join("debian/bookworm.toml"), &text).unwrap();
        let source = RecipeSource::Dir(dir.path().to_path_buf());
        assert_eq!(Recipe::known(&source, "debian"), ["bookworm"]);
        let err = Recipe::load_from(&source, "debian", "bookworm").unwrap_err();
        assert!(
            matches!(&err, RecipeError::MissingKey { key, .. } if key == "debian-archive-bookworm-automatic.asc"),
            "{err}"
        );
        for (name, bytes) in EMBEDDED_KEYS {
            std::fs::write(dir.path().join("keys").join(name), bytes).unwrap();
        }
        let err = Recipe::load_from(&source, "debian", "bookworm").unwrap_err();
        assert!(err.to_string().contains("\"local.asc\""), "{err}");
        std::fs::write(dir.path().join("keys/local.asc"), b"-----BEGIN PGP x").unwrap();
        let recipe = Recipe::load_from(&source, "debian", "bookworm").unwrap();
        let keys = debian::read(&recipe).unwrap().keys;
        assert_eq!(recipe.key_files(&keys).unwrap().len(), 7);
        let err = Recipe::load_from(&source, "debian", "trixie").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown release debian/trixie; known: bookworm"
        );
    }
}
