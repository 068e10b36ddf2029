//! A Debian recipe's `[repository]` table: the suite, its mirror, the
//! components and the archive keys, checked when the recipe is loaded.

use crate::recipe::{check_mirror, check_word, Recipe, RecipeError};
use serde::Deserialize;
use std::path::PathBuf;

/// The `[repository]` table of a Debian recipe.
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

/// Reads and checks `recipe`'s `[repository]` as Debian's.
pub fn read(recipe: &Recipe) -> Result<Repository, RecipeError> {
    let repo: Repository = recipe.repository_as()?;
    let bad = |field: &str, m: String| recipe.malformed(field, m);
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
    if let Some(security) = &repo.security {
        check_mirror(&security.mirror).map_err(|m| bad("repository.security.mirror", m))?;
        check_word(&security.suite).map_err(|m| bad("repository.security.suite", m))?;
    }
    if let Some(updates) = &repo.updates_suite {
        check_word(updates).map_err(|m| bad("repository.updates_suite", m))?;
    }
    recipe.check_keys("repository.keys", &repo.keys)?;
    Ok(repo)
}
