//! `vbuild template list|prune`: the shared templates overlay guests are
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
///   vbuild template prune                 # every template no guest uses
///   vbuild template prune 3f9a0c...       # this one, refused while in use
#[derive(Subcommand, Debug)]
#[command(verbatim_doc_comment)]
pub enum TemplateCommand {
    /// List templates: id, distro/release/variant, packages, size, created, guests using it.
    List(ListArgs),
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

#[derive(serde::Serialize)]
struct Row {
    #[serde(flatten)]
    meta: TemplateMeta,
    guests: Vec<String>,
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

/// Runs a `vbuild template` command.
pub fn template(c: &Ctx, cmd: TemplateCommand) -> anyhow::Result<i32> {
    let store = TemplateStore::new(&c.layout.templates_dir());
    let by = users(&c.layout);
    match cmd {
        TemplateCommand::Dedupe(_) => {
            let roots: Vec<_> = store.list()?.iter().map(|m| store.rootfs(&m.id)).collect();
            let r = vbuild_cache::dedupe::dedupe(&roots)?;
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
            }
            Ok(0)
        }
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
                "{:<32}  {:<24}  {:>8}  {:>8}  {:>10}  GUESTS",
                "ID", "DISTRO", "PACKAGES", "SIZE", "CREATED"
            );
            for r in rows {
                let m = &r.meta;
                println!(
                    "{:<32}  {:<24}  {:>8}  {:>8}  {:>10}  {}",
                    m.id,
                    format!("{}/{}/{}", m.distro, m.release, m.variant),
                    m.packages.len(),
                    format_size(m.size),
                    m.created,
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
