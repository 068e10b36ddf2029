//! A Fedora recipe's `[repository]` table: the repositories (each a
//! metalink and fallback baseurls) and the release keys that sign the
//! packages, checked when the recipe is loaded.

use crate::recipe::{check_mirror, check_word, Recipe, RecipeError};
use serde::Deserialize;

/// The `[repository]` table of a Fedora recipe.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Repository {
    /// Key files in `recipes/keys/` trusted to sign the packages.
    pub keys: Vec<String>,
    /// The repositories read together (`fedora`, `updates`).
    pub repos: Vec<Repo>,
}

/// One `[[repository.repos]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Repo {
    /// Its id (`fedora`), as dnf names it.
    pub id: String,
    /// The metalink URL (`$basearch` is replaced by the architecture).
    #[serde(default)]
    pub metalink: Option<String>,
    /// Repository base URLs tried when there is no metalink or it fails.
    #[serde(default)]
    pub baseurls: Vec<String>,
}

/// Reads and checks `recipe`'s `[repository]` as Fedora's.
pub fn read(recipe: &Recipe) -> Result<Repository, RecipeError> {
    let repo: Repository = recipe.repository_as()?;
    if repo.repos.is_empty() {
        return Err(recipe.malformed(
            "repository.repos",
            "is empty; list at least the release's repository",
        ));
    }
    for r in &repo.repos {
        check_word(&r.id).map_err(|m| recipe.malformed("repository.repos.id", m))?;
        if r.metalink.is_none() && r.baseurls.is_empty() {
            return Err(recipe.malformed(
                "repository.repos",
                format!(
                    "repository \"{}\" has neither a metalink nor baseurls; give one",
                    r.id
                ),
            ));
        }
        if let Some(m) = &r.metalink {
            check_mirror(m).map_err(|m| recipe.malformed("repository.repos.metalink", m))?;
        }
        for b in &r.baseurls {
            check_mirror(b).map_err(|m| recipe.malformed("repository.repos.baseurls", m))?;
        }
    }
    recipe.check_keys("repository.keys", &repo.keys)?;
    Ok(repo)
}
