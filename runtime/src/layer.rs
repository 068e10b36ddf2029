//! A guest's own layer: an overlay guest's root is its template's rootfs
//! (shared, read-only, `templates/ID/rootfs`) under its own `upper/` and
//! `work/` in `guests/NAME/layer/` — the directory its disk limit
//! applies to. `guests/NAME/rootfs/` is then an empty mount point: the
//! overlay is mounted only inside the guest's own mount namespace, never on
//! the host. A `--copy` guest has no layer; its `rootfs/` is a plain tree.

use crate::config::GuestConfig;
use crate::paths::Layout;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use vbuild_kernel::overlay::{overlay_tree, LayerIds, OverlayError};

/// Whether guest `name` is an overlay of a template (it has a layer).
pub fn is_overlay(layout: &Layout, name: &str) -> bool {
    layout.guest_layer(name).is_dir()
}

/// The directory that holds the guest's own data and carries its disk
/// limit: the layer of an overlay guest, the rootfs of a full copy.
pub fn disk_dir(layout: &Layout, name: &str) -> PathBuf {
    if is_overlay(layout, name) {
        layout.guest_layer(name)
    } else {
        layout.guest_rootfs(name)
    }
}

/// Where host-side writes into the guest's tree go (`vbuild set` network
/// files): the upper layer of an overlay guest (it shadows the template),
/// the rootfs of a full copy.
pub fn writable_root(layout: &Layout, name: &str) -> PathBuf {
    if is_overlay(layout, name) {
        layout.guest_layer(name).join("upper")
    } else {
        layout.guest_rootfs(name)
    }
}

/// Makes an overlay guest's empty layer (on a disk-limit backend of `size`
/// bytes when given) and its rootfs mount point. On failure the caller
/// removes the guest directory (the builder's guest slot does).
pub fn create(
    layout: &Layout,
    name: &str,
    size: Option<u64>,
) -> Result<(), crate::disk::DiskError> {
    let layer = layout.guest_layer(name);
    crate::disk::create_at(layout, name, &layer, size)?;
    for d in [
        layer.join("upper"),
        layer.join("work"),
        layout.guest_rootfs(name),
    ] {
        std::fs::create_dir_all(&d)
            .map_err(|e| crate::disk::DiskError(format!("{name}: {}: {e}", d.display())))?;
    }
    Ok(())
}

/// Why an overlay guest's root cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// The pinned template is gone.
    #[error("{name}: its template {id} is gone from {path} (`vbuild check` lists such guests; rebuild it, or delete it with `vbuild delete {name}`)")]
    TemplateGone {
        /// Guest.
        name: String,
        /// Template id.
        id: String,
        /// Where it should be.
        path: PathBuf,
    },
    /// The kernel refused the overlay.
    #[error("{name}: {source} (overlay guests need overlayfs with id-mapped layers, Linux 5.19+; or build with --copy)")]
    Overlay {
        /// Guest.
        name: String,
        /// The failing step.
        source: OverlayError,
    },
}

/// The lower layer of guest `cfg`, checked to exist.
pub fn template_rootfs(layout: &Layout, cfg: &GuestConfig) -> Option<Result<PathBuf, LayerError>> {
    let id = cfg.template.as_ref()?;
    let path = layout.template_rootfs(id);
    Some(if path.is_dir() {
        Ok(path)
    } else {
        Err(LayerError::TemplateGone {
            name: cfg.name.clone(),
            id: id.clone(),
            path,
        })
    })
}

/// The guest's root as a detached overlay mount, id-mapped into the user
/// namespace of `ids` (unprivileged guests) or as it is on disk
/// (privileged ones). The one place a guest's overlay root is made.
pub fn root_tree(
    layout: &Layout,
    cfg: &GuestConfig,
    name: &str,
    ids: Option<LayerIds>,
) -> Result<OwnedFd, LayerError> {
    let lower = match template_rootfs(layout, cfg) {
        Some(r) => r?,
        None => layout.guest_rootfs(name),
    };
    overlay_tree(&lower, &layout.guest_layer(name), ids).map_err(|source| LayerError::Overlay {
        name: name.to_string(),
        source,
    })
}

/// The merged tree of overlay guest `name` as it is on disk (its layer over
/// its template), read-only and detached: what `vbuild export` reads, the
/// guest running or not. Reach it at `/proc/self/fd/N`.
pub fn merged_view(layout: &Layout, cfg: &GuestConfig, name: &str) -> Result<OwnedFd, LayerError> {
    let lower = match template_rootfs(layout, cfg) {
        Some(r) => r?,
        None => layout.guest_rootfs(name),
    };
    let upper = layout.guest_layer(name).join("upper");
    vbuild_kernel::overlay::readonly_view(&[&upper, &lower]).map_err(|source| LayerError::Overlay {
        name: name.to_string(),
        source,
    })
}
