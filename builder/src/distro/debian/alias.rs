//! Debian's suite names (`stable`, `testing`, `unstable`, `oldstable`,
//! `oldoldstable`) name a different release as Debian moves on. Which one
//! they name today is what the mirror's signed `dists/SUITE/InRelease`
//! says in `Codename`: that file is fetched, verified with every Debian
//! recipe's keys (and `--keyring`), and the codename's recipe is used.

use std::path::PathBuf;

use anyhow::Context;
use vbuild_cache::Cache;

use super::fetch::{fetch_release, Source};
use super::keyring::Keyring;
use super::release::VerifyOptions;
use crate::recipe::{Recipe, RecipeSource};

/// The suite names that stand for a release.
pub const SUITE_ALIASES: &[&str] = &["oldoldstable", "oldstable", "stable", "testing", "unstable"];

/// Whether `release` is a suite name rather than a codename.
pub fn is_suite_alias(release: &str) -> bool {
    SUITE_ALIASES.contains(&release)
}

/// Where and how to look a suite name up.
#[derive(Debug, Clone, Default)]
pub struct AliasLookup {
    /// `--mirror`; the recipes' mirror when `None`.
    pub mirror: Option<String>,
    /// `--keyring` files, trusted beside the recipes' keys.
    pub keyrings: Vec<PathBuf>,
    /// `--allow-expired`.
    pub allow_expired: bool,
}

/// The codename `alias` stands for on the mirror (`stable` -> `bookworm`),
/// from its verified InRelease; an error names the file and the fix when
/// it is unsigned, is not that suite, or names a release with no recipe.
pub fn resolve_suite_alias(
    cache: &Cache,
    alias: &str,
    lookup: &AliasLookup,
) -> anyhow::Result<String> {
    let source = RecipeSource::from_env();
    let known = Recipe::known(&source, "debian");
    let mut keyring = Keyring::new();
    let mut recipe_mirror = None;
    let mut seen = Vec::new();
    for release in &known {
        let recipe = Recipe::load_from(&source, "debian", release)?;
        let table = super::recipe::read(&recipe)?;
        recipe_mirror.get_or_insert(table.mirror.clone());
        let fresh: Vec<String> = table
            .keys
            .iter()
            .filter(|k| !seen.contains(*k))
            .cloned()
            .collect();
        for (name, bytes) in recipe.key_files(&fresh)? {
            keyring.add(&format!("recipes/keys/{name}"), &bytes)?;
        }
        seen.extend(fresh);
        if let Some(path) = table.system_keyring.as_ref().filter(|p| p.is_file()) {
            keyring.add_file(path)?;
        }
    }
    for k in &lookup.keyrings {
        keyring
            .add_file(k)
            .with_context(|| format!("--keyring {}", k.display()))?;
    }
    let mirror = lookup
        .mirror
        .clone()
        .or(recipe_mirror)
        .context("no Debian recipe names a mirror; give --mirror")?;
    let verify = VerifyOptions {
        check_valid_until: !lookup.allow_expired,
        ..VerifyOptions::default()
    };
    let suite = Source::new(&mirror, alias);
    let release = fetch_release(cache, &suite, &keyring, &verify)
        .with_context(|| format!("looking up what \"{alias}\" is on {}", suite.mirror))?;
    anyhow::ensure!(
        release.suite == alias,
        "{}/dists/{alias}/InRelease says Suite \"{}\", not \"{alias}\"; the mirror is misconfigured, use a codename ({})",
        suite.mirror,
        release.suite,
        known.join(", ")
    );
    let codename = release.codename;
    anyhow::ensure!(
        known.contains(&codename),
        "{alias} is \"{codename}\" on {}, which has no recipe; known: {}",
        suite.mirror,
        known.join(", ")
    );
    Ok(codename)
}

#[cfg(test)]
mod tests {
    use super::is_suite_alias;

    #[test]
    fn suite_names_are_told_from_codenames() {
        for a in ["stable", "testing", "unstable", "oldstable", "oldoldstable"] {
            assert!(is_suite_alias(a), "{a}");
        }
        for c in ["bookworm", "sid", "trixie", "Stable", "stable-updates"] {
            assert!(!is_suite_alias(c), "{c}");
        }
    }
}
