//! Build customisation beyond the package set, as mmdebstrap users know
//! it: guest setup (accounts, SSH keys, time zone, locale, apt/dpkg
//! settings), hooks, archive components and extra sources. The same
//! values come from the command line or a recipe's `[customize]` table
//! (command-line values are added to, or replace, the recipe's).

use crate::hooks::Hooks;
use crate::tailor::GuestSetup;
use serde::Deserialize;

/// Everything of a build's customisation, checked before anything is made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Customize {
    /// What is written into the guest's own tree.
    pub setup: GuestSetup,
    /// Commands run at the build's stages.
    pub hooks: Hooks,
    /// Archive components instead of the recipe's `repository.components`
    /// (empty: the recipe's).
    pub components: Vec<String>,
}

/// A recipe's `[customize]` table: the command line's flags as data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomizeTable {
    /// `--root-password-hash`.
    pub root_password_hash: Option<String>,
    /// `--ssh-key`'s content: authorized_keys lines.
    #[serde(default)]
    pub ssh_keys: Vec<String>,
    /// `--user`.
    pub user: Option<String>,
    /// `--timezone`.
    pub timezone: Option<String>,
    /// `--locale`.
    pub locale: Option<String>,
    /// `--components`.
    #[serde(default)]
    pub components: Vec<String>,
    /// `--source`.
    #[serde(default)]
    pub sources: Vec<String>,
    /// `--aptopt`.
    #[serde(default)]
    pub aptopt: Vec<String>,
    /// `--dpkgopt`.
    #[serde(default)]
    pub dpkgopt: Vec<String>,
    /// `--setup-hook`.
    #[serde(default)]
    pub setup_hook: Vec<String>,
    /// `--extract-hook`.
    #[serde(default)]
    pub extract_hook: Vec<String>,
    /// `--essential-hook`.
    #[serde(default)]
    pub essential_hook: Vec<String>,
    /// `--customize-hook`.
    #[serde(default)]
    pub customize_hook: Vec<String>,
}

impl CustomizeTable {
    /// The table as a [`Customize`], the base the command line adds to.
    pub fn to_customize(&self) -> Customize {
        let keys = if self.ssh_keys.is_empty() {
            None
        } else {
            Some(
                self.ssh_keys
                    .iter()
                    .map(|k| format!("{}\n", k.trim()))
                    .collect(),
            )
        };
        Customize {
            setup: GuestSetup {
                root_password_hash: self.root_password_hash.clone(),
                ssh_keys: keys,
                user: self.user.clone(),
                timezone: self.timezone.clone(),
                locale: self.locale.clone(),
                apt_options: self.aptopt.clone(),
                dpkg_options: self.dpkgopt.clone(),
                proxy: None,
                sources: self.sources.clone(),
            },
            hooks: Hooks {
                setup: self.setup_hook.clone(),
                extract: self.extract_hook.clone(),
                essential: self.essential_hook.clone(),
                customize: self.customize_hook.clone(),
            },
            components: self.components.clone(),
        }
    }
}

impl Customize {
    /// Checks every value that needs no guest.
    pub fn validate(&self) -> Result<(), String> {
        self.setup.validate()?;
        self.hooks.validate()?;
        for c in &self.components {
            crate::recipe::check_word(c).map_err(|m| format!("--components {c:?}: {m}"))?;
        }
        Ok(())
    }

    /// Whether the build must give the guest a tree of its own: a hook's
    /// effect is not a function of its text, so a hooked tree is never
    /// shared as a template.
    pub fn needs_own_tree(&self) -> bool {
        !self.hooks.is_empty()
    }

    /// What of it changes the shared template (the components and extra
    /// sources read), for the template's id; guest setup lives in each
    /// guest's own layer.
    pub fn template_part(&self) -> String {
        format!("{:?}\0{:?}", self.components, self.setup.sources)
    }

    /// The proxy the build's own downloads use: `--proxy`, else an
    /// `Acquire::http::Proxy "URL"` among the apt options.
    pub fn build_proxy(&self) -> Option<String> {
        self.setup.proxy.clone().or_else(|| {
            self.setup.apt_options.iter().find_map(|o| {
                let (k, v) = o.trim().split_once(char::is_whitespace)?;
                k.eq_ignore_ascii_case("Acquire::http::Proxy").then(|| {
                    v.trim()
                        .trim_end_matches(';')
                        .trim()
                        .trim_matches('"')
                        .to_string()
                })
            })
        })
    }
}
