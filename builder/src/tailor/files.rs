//! Tailoring profiles and templates: embedded in the binary so `vbuild`
//! works from any directory, overridable from a directory named by
//! `VBUILD_RECIPES` (with `tailor/NAME.toml` and `templates/NAME.hbs`).

use super::spec::TailorSpec;
use super::TailorError;
use std::path::PathBuf;

/// Environment variable naming a recipes directory that overrides the
/// embedded profiles and templates.
pub const RECIPES_ENV: &str = "VBUILD_RECIPES";

const PROFILES: &[(&str, &str)] = &[
    (
        "debian",
        include_str!("../../../recipes/tailor/debian.toml"),
    ),
    (
        "fedora",
        include_str!("../../../recipes/tailor/fedora.toml"),
    ),
];

const TEMPLATES: &[(&str, &str)] = &[
    (
        "hostname",
        include_str!("../../../recipes/templates/hostname.hbs"),
    ),
    (
        "hosts",
        include_str!("../../../recipes/templates/hosts.hbs"),
    ),
    (
        "resolv.conf",
        include_str!("../../../recipes/templates/resolv.conf.hbs"),
    ),
    (
        "sources.list",
        include_str!("../../../recipes/templates/sources.list.hbs"),
    ),
    (
        "debian.sources",
        include_str!("../../../recipes/templates/debian.sources.hbs"),
    ),
    (
        "networkd",
        include_str!("../../../recipes/templates/networkd.hbs"),
    ),
    (
        "interfaces",
        include_str!("../../../recipes/templates/interfaces.hbs"),
    ),
    (
        "inittab",
        include_str!("../../../recipes/templates/inittab.hbs"),
    ),
];

fn override_dir() -> Option<PathBuf> {
    std::env::var_os(RECIPES_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && !name.starts_with('.')
}

/// Reads a file of the override directory if it has one; `Ok(None)` when
/// there is no override directory or no such file in it.
fn read_override(sub: &str, file: &str) -> Result<Option<(PathBuf, String)>, TailorError> {
    let Some(dir) = override_dir() else {
        return Ok(None);
    };
    let p = dir.join(sub).join(file);
    match std::fs::read_to_string(&p) {
        Ok(t) => Ok(Some((p, t))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(TailorError::Profile {
            file: p.display().to_string(),
            message: e.to_string(),
        }),
    }
}

/// Loads and checks profile `name` (`debian`).
pub fn load_profile(name: &str) -> Result<TailorSpec, TailorError> {
    if !valid_name(name) {
        return Err(TailorError::Profile {
            file: name.to_string(),
            message: "not a profile name (letters, digits, - _ .)".into(),
        });
    }
    let (file, text) = match read_override("tailor", &format!("{name}.toml"))? {
        Some((p, t)) => (p.display().to_string(), t),
        None => match PROFILES.iter().find(|(n, _)| *n == name) {
            Some((_, t)) => (
                format!("recipes/tailor/{name}.toml (built in)"),
                t.to_string(),
            ),
            None => {
                let known: Vec<&str> = PROFILES.iter().map(|(n, _)| *n).collect();
                return Err(TailorError::Profile {
                    file: format!("recipes/tailor/{name}.toml"),
                    message: format!(
                        "no such tailoring profile (built in: {}; or set {RECIPES_ENV})",
                        known.join(", ")
                    ),
                });
            }
        },
    };
    let spec: TailorSpec = toml::from_str(&text).map_err(|e| TailorError::Profile {
        file: file.clone(),
        message: e.to_string().trim().replace('\n', " "),
    })?;
    for (i, s) in spec.steps.iter().enumerate() {
        s.action().map_err(|m| TailorError::Profile {
            file: file.clone(),
            message: format!("step {}: {m}", i + 1),
        })?;
        for t in s.template.iter() {
            template(t)?;
        }
    }
    for t in [
        &spec.network.networkd_template,
        &spec.network.interfaces_template,
        &spec.network.resolv_template,
    ] {
        template(t)?;
    }
    Ok(spec)
}

/// The text of template `name` (`hosts`).
pub fn template(name: &str) -> Result<String, TailorError> {
    let missing = || TailorError::Template {
        name: name.to_string(),
        message: format!(
            "no such template (add recipes/templates/{name}.hbs or set {RECIPES_ENV})"
        ),
    };
    if !valid_name(name) {
        return Err(missing());
    }
    if let Some((_, t)) = read_override("templates", &format!("{name}.hbs"))? {
        return Ok(t);
    }
    TEMPLATES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| t.to_string())
        .ok_or_else(missing)
}

/// Renders template `name` with `ctx`; config files are not HTML, so
/// nothing is escaped, and a variable the template names but the context
/// lacks is an error rather than an empty string.
pub fn render<T: serde::Serialize>(name: &str, ctx: &T) -> Result<String, TailorError> {
    let text = template(name)?;
    let mut hb = handlebars::Handlebars::new();
    hb.register_escape_fn(handlebars::no_escape);
    hb.set_strict_mode(true);
    hb.render_template(&text, ctx)
        .map_err(|e| TailorError::Template {
            name: name.to_string(),
            message: e.to_string(),
        })
}
