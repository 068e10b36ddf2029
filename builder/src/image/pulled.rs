//! A pulled image kept as a template: the first `vbuild pull` of a catalog
//! image unpacks it once into the template store, under the archive's
//! sha256 (the catalog's signed, verified hash of it), and every guest
//! pulled from the same image is an overlay of that template with a layer
//! of its own, as a built guest is. A hundred guests of one image then cost
//! one unpack and one copy on disk, and each later pull is made in the time
//! of its layer, without downloading. `vbuild pull --copy` gives a guest its
//! own full tree instead; `vbuild template prune` removes the template once
//! no guest uses it.

use super::import::{self, ImportError, ImportReport};
use crate::guests::{interrupted, GuestSlot};
use std::path::Path;
use std::time::SystemTime;
use vbuild_cache::templates::{TemplateMeta, TemplateStore};
use vbuild_runtime::config::NetConfig;
use vbuild_runtime::paths::Layout;

/// The variant a pulled image's template is listed with.
pub const VARIANT: &str = "pulled";

/// The template that holds the image whose archive has `sha256`, if an
/// earlier pull made it.
pub fn find(store: &TemplateStore, sha256: &str) -> Option<TemplateMeta> {
    store.get(sha256).filter(|m| m.variant == VARIANT)
}

/// Unpacks the verified archive `file` (whose sha256 is `sha256`) as the
/// template of that id; returns it and the entries written (none when
/// another pull made it meanwhile). Any failure or Ctrl-C leaves no
/// template.
pub fn unpack(
    store: &TemplateStore,
    sha256: &str,
    file: &Path,
) -> Result<(TemplateMeta, usize), ImportError> {
    let fail = |e: std::io::Error| ImportError::Store(format!("template {sha256}: {e}"));
    let Some(b) = store.begin(sha256).map_err(fail)? else {
        return find(store, sha256).map(|m| (m, 0)).ok_or_else(|| {
            ImportError::Store(format!("template {sha256}: made by another build"))
        });
    };
    let rootfs = b.rootfs();
    let out = import::unpack_archive(file, &rootfs)?;
    if interrupted() {
        return Err(ImportError::Interrupted);
    }
    let (distro, release) = import::os_release(&rootfs);
    let meta = TemplateMeta {
        id: sha256.to_string(),
        distro,
        release,
        variant: VARIANT.into(),
        packages: vec![],
        size: out.bytes,
        created: SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
    b.commit(&meta).map_err(fail)?;
    Ok((meta, out.files.len()))
}

/// Makes guest `name` an overlay of the pulled template `meta`: its own
/// layer, and its name in `/etc/hostname` and `/etc/hosts` where the image
/// holds LXC's placeholder (written in the layer; the template keeps it).
pub fn guest(
    layout: &Layout,
    name: &str,
    store: &TemplateStore,
    meta: &TemplateMeta,
    net: NetConfig,
) -> Result<ImportReport, ImportError> {
    let slot = GuestSlot::reserve(layout, name)?;
    let fail = |e: &dyn std::fmt::Display| ImportError::Store(format!("{name}: {e}"));
    vbuild_runtime::layer::create(layout, name, None).map_err(|e| fail(&e))?;
    let template = store.rootfs(&meta.id);
    let upper = layout.guest_layer(name).join("upper");
    crate::catalog::hostname::fill_name_over(&template, &upper, name).map_err(|e| fail(&e))?;
    let distro = import::save_config(layout, slot, &template, net, Some(meta.id.clone()))?;
    Ok(ImportReport {
        name: name.to_string(),
        distro,
        entries: 0,
        bytes: meta.size,
        rootfs: layout.guest_rootfs(name),
    })
}
