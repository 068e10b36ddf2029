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

/// A distribution release as a recipe describes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
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
    /// Where packages come from and who signs them.
    pub repository: Repository,
    /// Build defaults.
    pub build: BuildDefaults,
    /// Where this recipe was read from; its keys come from the same place.
    #[serde(skip)]
    pub source: RecipeSource,
}

/// The `[repository]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Repository {
    /// Mirror base URL (`http://deb.debian.org/debian`); `--mirror` replaces it.
    pub mirror: String,
    /// Suite (codename) under `dists/`.
    pub suite: String,
    /// Archive components to read (`main`).
    pub components: Vec<String>,
    /// Key files in `recipes/keys/` trusted to sign the suite.
    pub keys: Vec<String>,
    /// A host keyring also trusted when the file exists.
    #[serde(default)]
    pub system_keyring: Option<PathBuf>,
    /// The security archive, for the guest's apt sources.
    #[serde(default)]
    pub security: Option<SecuritySuite>,
    /// The stable-updates suite on the same mirror, for the guest's apt sources.
    #[serde(default)]
    pub updates_suite: Option<String>,
}

/// The `[repository.security]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecuritySuite {
    /// Security archive base URL.
    pub mirror: String,
    /// Its suite (`bookworm-security`).
    pub suite: String,
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
        let mut recipe = Recipe::parse(&file, &text)?;
        recipe.source = source.clone();
        let at = |field: &str, message: String| RecipeError::Malformed {
            file: file.clone(),
            line: line_of(&text, field),
            field: field.to_string(),
            message,
        };
        if recipe.family != family {
            return Err(at(
                "family",
                format!("is \"{}\" but the file is under {family}/", recipe.family),
            ));
        }
        if recipe.release != release {
            return Err(at(
                "release",
                format!("is \"{}\" but the file is {release}.toml", recipe.release),
            ));
        }
        for name in &recipe.repository.keys {
            if source.read_key(name)?.is_none() {
                return Err(RecipeError::MissingKey {
                    file: file.clone(),
                    key: name.clone(),
                    dir: source.label("keys"),
                    known: source.key_names(),
                });
            }
        }
        Ok(recipe)
    }

    /// Parses and checks recipe text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Recipe, RecipeError> {
        let recipe: Recipe = toml::from_str(text).map_err(|e| {
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
        })?;
        recipe.check(file, text)?;
        Ok(recipe)
    }

    /// Value checks serde cannot express.
    fn check(&self, file: &str, text: &str) -> Result<(), RecipeError> {
        let bad = |field: &str, message: String| RecipeError::Malformed {
            file: file.to_string(),
            line: line_of(text, field),
            field: field.to_string(),
            message,
        };
        let repo = &self.repository;
        check_mirror(&repo.mirror).map_err(|m| bad("repository.mirror", m))?;
        check_word(&repo.suite).map_err(|m| bad("repository.suite", m))?;
        if repo.components.is_empty() {
            return Err(bad(
                "repository.components",
                "is empty; list at least \"main\"".into(),
            ));
        }
        for c in &repo.components {
            check_word(c).map_err(|m| bad("repository.components", m))?;
        }
        if repo.keys.is_empty() {
            return Err(bad(
                "repository.keys",
                "is empty; a repository without trusted keys cannot be verified".into(),
            ));
        }
        for k in &repo.keys {
            if k.is_empty() || k.contains('/') || k.starts_with('.') {
                return Err(bad(
                    "repository.keys",
                    format!("\"{k}\" is not a file name in recipes/keys/"),
                ));
            }
        }
        if let Some(security) = &repo.security {
            check_mirror(&security.mirror).map_err(|m| bad("repository.security.mirror", m))?;
            check_word(&security.suite).map_err(|m| bad("repository.security.suite", m))?;
        }
        if let Some(updates) = &repo.updates_suite {
            check_word(updates).map_err(|m| bad("repository.updates_suite", m))?;
        }
        // A family without a module yet is refused when built, not here.
        if let Ok(known) = crate::distro::variants(&self.family) {
            if !known.contains(&self.build.default_variant.as_str()) {
                return Err(bad(
                    "build.default_variant",
                    format!(
                        "\"{}\" is not a variant; use one of {}",
                        self.build.default_variant,
                        known.join(", ")
                    ),
                ));
            }
        }
        check_word(&self.tailor).map_err(|m| bad("tailor", m))?;
        Ok(())
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

    /// The recipe's key files with their content, in the recipe's order.
    pub fn key_files(&self) -> Result<Vec<(String, Vec<u8>)>, RecipeError> {
        self.repository
            .keys
            .iter()
            .map(|name| match self.source.read_key(name)? {
                Some(bytes) => Ok((name.clone(), bytes)),
                None => Err(RecipeError::MissingKey {
                    file: self
                        .source
                        .label(&format!("{}/{}.toml", self.family, self.release)),
                    key: name.clone(),
                    dir: self.source.label("keys"),
                    known: self.source.key_names(),
                }),
            })
            .collect()
    }
}

fn check_mirror(url: &str) -> Result<(), String> {
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

fn check_word(value: &str) -> Result<(), String> {
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

    #[test]
    fn every_embedded_recipe_loads_and_its_keys_exist() {
        let source = RecipeSource::Embedded;
        assert_eq!(Recipe::families(&source), ["debian"]);
        assert_eq!(
            Recipe::known(&source, "debian"),
            ["bookworm", "forky", "sid", "trixie"]
        );
        for release in Recipe::known(&source, "debian") {
            let recipe = Recipe::load_from(&source, "debian", &release).unwrap();
            assert_eq!(recipe.repository.suite, release);
            assert_eq!(recipe.build.default_variant, "minbase");
            assert!(recipe.build.merged_usr);
            assert_eq!(recipe.tailor, "debian");
            let keys = recipe.key_files().unwrap();
            assert_eq!(keys.len(), 6);
            assert!(keys
                .iter()
                .all(|(_, bytes)| bytes.starts_with(b"-----BEGIN PGP")));
        }
        let sid = Recipe::load_from(&source, "debian", "sid").unwrap();
        assert_eq!(sid.repository.security, None);
        assert_eq!(sid.repository.updates_suite, None);
        let bookworm = Recipe::load_from(&source, "debian", "bookworm").unwrap();
        assert_eq!(
            bookworm.repository.security.unwrap().suite,
            "bookworm-security"
        );
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
            "unknown distribution family \"gentoo\"; known: debian"
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
            err.contains("build.default_variant: \"tiny\" is not a variant; use one of essential, minbase, standard"),
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
        assert_eq!(recipe.key_files().unwrap().len(), 7);
        let err = Recipe::load_from(&source, "debian", "trixie").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown release debian/trixie; known: bookworm"
        );
    }
}
