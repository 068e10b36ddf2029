//! A tailoring profile (`recipes/tailor/NAME.toml`): an ordered list of
//! steps, each with the reason it exists, plus where network settings go.
//! Profiles are data so a new distribution or policy is a new file, not
//! new code.

use serde::Deserialize;

/// A whole profile.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TailorSpec {
    /// The steps, applied in order.
    #[serde(default, rename = "step")]
    pub steps: Vec<Step>,
    /// Network configuration files (`write_network`).
    #[serde(default)]
    pub network: NetworkSpec,
}

/// One step. Exactly one action field (`write`, `mask`, `remove`, `clean`,
/// `link`) is set; `why` says what it is for.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Why the guest needs this (shown in errors, required).
    pub why: String,
    /// Write this file (absolute path in the guest)...
    pub write: Option<String>,
    /// ...rendered from this template (`templates/NAME.hbs`)...
    pub template: Option<String>,
    /// ...or with this literal content.
    pub content: Option<String>,
    /// Permission bits of the written file (default 0644).
    pub mode: Option<u32>,
    /// Mask these systemd units (link to /dev/null in /etc/systemd/system).
    pub mask: Option<Vec<String>>,
    /// Remove these paths; `*` in the last component matches any run of
    /// characters (`/etc/*-`).
    pub remove: Option<Vec<String>>,
    /// Empty these directories, keeping them.
    pub clean: Option<Vec<String>>,
    /// Make this path a symlink...
    pub link: Option<String>,
    /// ...to this target.
    pub target: Option<String>,
    /// Only when this path exists in the guest.
    pub when_exists: Option<String>,
    /// Only for these releases.
    pub releases: Option<Vec<String>>,
    /// Not for these releases.
    pub skip_releases: Option<Vec<String>>,
    /// Per-guest state: written again into each guest's own layer when
    /// the guest is an overlay of a shared template (`tailor_guest`).
    #[serde(default)]
    pub guest: bool,
}

/// Where `write_network` writes, and from which templates.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    /// The systemd-networkd file for eth0.
    pub networkd_file: String,
    /// Its template.
    pub networkd_template: String,
    /// Units enabled so networkd runs (`unit` names; linked into
    /// `TARGET.wants` as `[[unit, target]]`).
    #[serde(default)]
    pub networkd_enable: Vec<[String; 2]>,
    /// The ifupdown file.
    pub interfaces_file: String,
    /// Its template.
    pub interfaces_template: String,
    /// resolv.conf, rewritten when DNS servers are given.
    pub resolv_file: String,
    /// Its template.
    pub resolv_template: String,
}

impl Default for NetworkSpec {
    fn default() -> Self {
        NetworkSpec {
            networkd_file: "/etc/systemd/network/80-vbuild-eth0.network".into(),
            networkd_template: "networkd".into(),
            networkd_enable: vec![],
            interfaces_file: "/etc/network/interfaces".into(),
            interfaces_template: "interfaces".into(),
            resolv_file: "/etc/resolv.conf".into(),
            resolv_template: "resolv.conf".into(),
        }
    }
}

/// What a step does, once validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action<'a> {
    WriteTemplate {
        path: &'a str,
        template: &'a str,
        mode: u32,
    },
    WriteContent {
        path: &'a str,
        content: &'a str,
        mode: u32,
    },
    Mask(&'a [String]),
    Remove(&'a [String]),
    Clean(&'a [String]),
    Link {
        path: &'a str,
        target: &'a str,
    },
}

impl Step {
    /// The step's single action, or why it is malformed.
    pub(crate) fn action(&self) -> Result<Action<'_>, String> {
        if self.why.trim().is_empty() {
            return Err("has no `why` (say what the guest needs it for)".into());
        }
        let mode = self.mode.unwrap_or(0o644);
        let mut found = Vec::new();
        if let Some(path) = &self.write {
            match (&self.template, &self.content) {
                (Some(t), None) => found.push(Action::WriteTemplate {
                    path,
                    template: t,
                    mode,
                }),
                (None, Some(c)) => found.push(Action::WriteContent {
                    path,
                    content: c,
                    mode,
                }),
                _ => {
                    return Err(format!(
                        "write {path}: give exactly one of `template` or `content`"
                    ))
                }
            }
        }
        if let Some(m) = &self.mask {
            found.push(Action::Mask(m));
        }
        if let Some(r) = &self.remove {
            found.push(Action::Remove(r));
        }
        if let Some(c) = &self.clean {
            found.push(Action::Clean(c));
        }
        if let Some(path) = &self.link {
            let Some(target) = &self.target else {
                return Err(format!("link {path}: no `target`"));
            };
            found.push(Action::Link { path, target });
        }
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err("has no action (write, mask, remove, clean or link)".into()),
            _ => Err("has more than one action; split it into steps".into()),
        }
    }

    /// Whether the step applies to `release`.
    pub(crate) fn for_release(&self, release: &str) -> bool {
        self.releases
            .as_ref()
            .is_none_or(|r| r.iter().any(|x| x == release))
            && !self
                .skip_releases
                .as_ref()
                .is_some_and(|r| r.iter().any(|x| x == release))
    }
}
