//! `vbuild template list|refresh|prune|dedupe`: the shared templates overlay guests are
//! made from (`templates/ID/`), and the check that finds guests whose
//! template is gone and templates half built.

use super::Ctx;
use clap::{Args, Subcommand};
use std::collections::BTreeMap;
use vbuild_cache::templates::{TemplateMeta, TemplateStore};
use vbuild_runtime::paths::Layout;
use vbuild_runtime::size::format_size;
use vbuild_runtime::store::GuestStore;

/// Templates: one built tree per distinct input, shared read-only by the
/// overlay guests made from it.
///
/// Examples:
///   vbuild template list
///   vbuild template list --json
///   vbuild template refresh debian bookworm   # today's packages; guests keep theirs
///   vbuild template prune                 # every template no guest uses
///   vbuild template prune 3f9a0c...       # this one, refused while in use
#[derive(Subcommand, Debug)]
#[command(verbatim_doc_comment)]
pub enum TemplateCommand {
    /// List templates: id, distro/release/variant, packages, size, created, guests using it.
    List(ListArgs),
    /// Re-resolve a release with today's packages: a new template if anything changed, else "up to date".
    Refresh(RefreshArgs),
    /// Remove templates no guest uses (or the one given; refused while a guest uses it).
    Prune(PruneArgs),
    /// Hard-link identical files (content, mode, owner, xattrs) across templates; reports bytes saved.
    Dedupe(DedupeArgs),
}

/// Arguments of `vbuild template dedupe`.
///
/// Examples:
///   vbuild template dedupe
///   vbuild template dedupe --json
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct DedupeArgs {}

/// Arguments of `vbuild template refresh`: the inputs of the template to
/// refresh, as a build names them (defaults: the recipe's variant, its init).
///
/// Examples:
///   vbuild template refresh debian bookworm
///   vbuild template refresh debian trixie --variant standard --json
///   vbuild template refresh debian bookworm --include openssh-server
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct RefreshArgs {
    /// Distribution family (debian, fedora).
    pub family: String,
    /// Release of that family (bookworm, trixie, ...).
    pub release: String,
    /// Package set, as for `vbuild build --variant`.
    #[arg(long, value_name = "VARIANT")]
    pub variant: Option<String>,
    /// Extra packages, comma-separated or repeated, as for `vbuild build`.
    #[arg(long, value_delimiter = ',', value_name = "PKGS")]
    pub include: Vec<String>,
    /// Leave out the recipe's init, as for `vbuild build --no-init`.
    #[arg(long)]
    pub no_init: bool,
    /// Mirror instead of the recipe's (as the guests were built with).
    #[arg(long, value_name = "URL")]
    pub mirror: Option<String>,
    /// Also trust this OpenPGP key file for the repository's signed index.
    #[arg(long, value_name = "FILE")]
    pub keyring: Vec<std::path::PathBuf>,
    /// Accept a signed index whose validity has passed (snapshot mirrors).
    #[arg(long)]
    pub allow_expired: bool,
    /// The base suite alone, as for `vbuild build --no-updates`.
    #[arg(long)]
    pub no_updates: bool,
    /// Parallel downloads and unpack workers.
    #[arg(long, default_value_t = 6)]
    pub jobs: usize,
}

/// Arguments of `vbuild template list`.
///
/// Examples:
///   vbuild template list
///   vbuild template list --json
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct ListArgs {}

/// Arguments of `vbuild template prune`.
///
/// Examples:
///   vbuild template prune
///   vbuild template prune 3f9a0c1d2e4b5a6978812233445566ff
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct PruneArgs {
    /// Only this template (its id, as `vbuild template list` shows).
    pub id: Option<String>,
}

#[cfg(test)]
mod tests {
    #[test]
    fn created_reads_as_a_utc_minute() {
        assert_eq!(super::utc_minute(0), "1970-01-01 00:00");
        assert_eq!(super::utc_minute(1_796_188_200), "2026-12-02 05:10");
    }
}

#[derive(serde::Serialize)]
struct Row {
    #[serde(flatten)]
    meta: TemplateMeta,
    guests: Vec<String>,
}

/// `2026-12-02 05:10` (UTC) for seconds since the epoch: what a person
/// reads in `template list` (`--json` keeps the number).
pub fn utc_minute(epoch: u64) -> String {
    i64::try_from(epoch)
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map_or_else(
            || epoch.to_string(),
            |t| t.format("%Y-%m-%d %H:%M").to_string(),
        )
}

/// Template id -> guests pinned to it.
fn users(layout: &Layout) -> BTreeMap<String, Vec<String>> {
    let mut by: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in GuestStore::new(layout).configs() {
        if let Some(t) = c.template {
            by.entry(t).or_default().push(c.name);
        }
    }
    by
}

/// Guests whose init is alive now (their overlay is mounted).
fn running_guests(layout: &Layout) -> Vec<String> {
    GuestStore::new(layout)
        .configs()
        .into_iter()
        .filter(|c| {
            matches!(
                vbuild_runtime::state::State::load(layout, &c.name),
                Ok(Some(st)) if !matches!(st.liveness(), vbuild_runtime::state::Liveness::Stale)
            )
        })
        .map(|c| c.name)
        .collect()
}

/// Runs a `vbuild template` command.
pub fn template(c: &Ctx, cmd: TemplateCommand) -> anyhow::Result<i32> {
    let store = TemplateStore::new(&c.layout.templates_dir());
    let by = users(&c.layout);
    match cmd {
        TemplateCommand::Dedupe(_) => {
            let metas = store.list()?;
            let roots: Vec<_> = metas.iter().map(|m| store.rootfs(&m.id)).collect();
            // Templates a running guest has mounted are only the kept side.
            let running = running_guests(&c.layout);
            let in_use: Vec<_> = metas
                .iter()
                .filter(|m| {
                    by.get(&m.id)
                        .is_some_and(|gs| gs.iter().any(|g| running.contains(g)))
                })
                .map(|m| store.rootfs(&m.id))
                .collect();
            let r = vbuild_cache::dedupe::dedupe(&roots, &in_use)?;
            if c.json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!(
                    "{} templates, {} files: {} linked, {} saved",
                    roots.len(),
                    r.files,
                    r.linked,
                    format_size(r.bytes_saved)
                );
                if r.skipped_in_use > 0 {
                    println!(
                        "{} identical files left as they are in {} template(s) a running guest uses; \
                         stop those guests and run it again to link them",
                        r.skipped_in_use,
                        in_use.len()
                    );
                }
            }
            Ok(0)
        }
        TemplateCommand::Refresh(a) => refresh(c, a),
        TemplateCommand::List(_) => {
            let rows: Vec<Row> = store
                .list()?
                .into_iter()
                .map(|m| Row {
                    guests: by.get(&m.id).cloned().unwrap_or_default(),
                    meta: m,
                })
                .collect();
            if c.json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
                return Ok(0);
            }
            println!(
                "{:<32}  {:<24}  {:>8}  {:>8}  {:>16}  GUESTS",
                "ID", "DISTRO", "PACKAGES", "SIZE", "CREATED"
            );
            for r in rows {
                let m = &r.meta;
                println!(
                    "{:<32}  {:<24}  {:>8}  {:>8}  {:>16}  {}",
                    m.id,
                    format!("{}/{}/{}", m.distro, m.release, m.variant),
                    m.packages.len(),
                    format_size(m.size),
                    utc_minute(m.created),
                    r.guests.len()
                );
            }
            Ok(0)
        }
        TemplateCommand::Prune(a) => {
            let ids: Vec<String> = match &a.id {
                Some(id) => {
                    anyhow::ensure!(
                        store.get(id).is_some(),
                        "template {id}: no such template (see `vbuild template list`)"
                    );
                    if let Some(g) = by.get(id) {
                        anyhow::bail!(
                            "template {id} is in use by {} (delete those guests first: vbuild delete {})",
                            g.join(", "),
                            g[0]
                        );
                    }
                    vec![id.clone()]
                }
                None => store
                    .list()?
                    .into_iter()
                    .map(|m| m.id)
                    .filter(|id| !by.contains_key(id))
                    .collect(),
            };
            for id in &ids {
                store.remove(id)?;
            }
            if c.json {
                println!("{}", serde_json::json!({ "removed": ids }));
            } else if !c.quiet {
                eprintln!("vbuild: removed {} unused templates", ids.len());
            }
            Ok(0)
        }
    }
}

/// `vbuild template refresh`: checks every input like a build, then
/// builds the template for today's packages unless it exists.
fn refresh(c: &Ctx, a: RefreshArgs) -> anyhow::Result<i32> {
    use vbuild_builder::build::BuildRequest;
    use vbuild_builder::distro;
    if !distro::FAMILIES.contains(&a.family.as_str()) {
        return Err(distro::UnknownFamily {
            family: a.family.clone(),
        }
        .into());
    }
    if !nix::unistd::geteuid().is_root() {
        super::output::invalid!(
            "template refresh {} {}: building needs root (file ownership, namespaces, mounts); run it as root",
            a.family,
            a.release
        );
    }
    let recipe = vbuild_builder::recipe::Recipe::load(&a.family, &a.release)?;
    let known = distro::variants(&a.family)?;
    if let Some(v) = &a.variant {
        anyhow::ensure!(
            known.contains(&v.as_str()),
            "--variant {v}: {} has {}",
            a.family,
            known.join(", ")
        );
    }
    for k in &a.keyring {
        anyhow::ensure!(
            k.is_file(),
            "--keyring {}: no such file (give an .asc or .gpg key file)",
            k.display()
        );
    }
    anyhow::ensure!((1..=64).contains(&a.jobs), "--jobs {}: use 1 to 64", a.jobs);
    let (net, net_vars) = super::image::image_net();
    let req = BuildRequest {
        name: "localhost".into(),
        recipe,
        variant: a.variant,
        include: a.include.into_iter().filter(|s| !s.is_empty()).collect(),
        with_init: !a.no_init,
        recommends: false,
        mirror: a.mirror,
        keyrings: a.keyring,
        offline: false,
        updates: !a.no_updates,
        allow_expired: a.allow_expired,
        arch: vbuild_builder::distro::debian::index::host_arch().to_string(),
        jobs: a.jobs,
        limits: Default::default(),
        net,
        net_vars,
        privileged: false,
        autostart: false,
        restart: Default::default(),
        copy: false,
        customize: Default::default(),
    };
    vbuild_builder::guests::catch_interrupts();
    let progress = std::sync::Arc::new(vbuild_builder::progress::BuildProgress::new(
        c.quiet || c.json,
    ));
    let r = vbuild_builder::build::refresh(&c.layout, &req, progress).map_err(|e| {
        e.context(format!(
            "template refresh {} {}: nothing was kept",
            a.family, a.release
        ))
    })?;
    if c.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else if r.built {
        println!(
            "{}  new template, {} packages ({} new or changed); existing guests keep {}",
            r.id,
            r.packages,
            r.changed.len(),
            if r.previous.is_empty() {
                "none (there were none)".to_string()
            } else {
                r.previous.join(", ")
            }
        );
    } else {
        println!("{}  up to date ({} packages)", r.id, r.packages);
    }
    Ok(0)
}

/// For `vbuild check`: half-built templates and guests whose template is
/// gone; with `fix`, the half-built ones are removed (a guest is removed
/// only by `vbuild delete`, which is named).
pub fn leftovers_finding(
    layout: &Layout,
    fix: bool,
) -> anyhow::Result<vbuild_kernel::probe::Finding> {
    use vbuild_kernel::probe::{Finding, Level};
    let store = TemplateStore::new(&layout.templates_dir());
    let finding = |level, detail| Finding::new("store", "templates", level, detail);
    let half = if fix {
        store.remove_leftovers()?;
        vec![]
    } else {
        store.leftovers()?
    };
    let orphans: Vec<String> = users(layout)
        .into_iter()
        .filter(|(id, _)| store.get(id).is_none())
        .flat_map(|(_, g)| g)
        .collect();
    let mut problems: Vec<String> = half
        .iter()
        .map(|p| {
            format!(
                "half-built template {} (remove with `vbuild check --fix`)",
                p.display()
            )
        })
        .collect();
    problems.extend(
        orphans
            .iter()
            .map(|g| format!("guest {g}'s template is gone (`vbuild delete {g}`)")),
    );
    Ok(if problems.is_empty() {
        finding(Level::Ok, "every guest's template is complete".into())
    } else {
        finding(Level::Warn, problems.join("; "))
    })
}
