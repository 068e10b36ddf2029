//! The Incus simplestreams catalog: `streams/v1/index.json` points at
//! `streams/v1/images.json`, whose products (`os:release:variant:arch`)
//! list versions (serials `YYYYMMDD_HHMM`) of two items each: the metadata
//! tarball (`incus.tar.xz`: `metadata.yaml` and templates) and the root
//! filesystem (`root.tar.xz`, and `squashfs` when tar2sqfs is installed).
//! Incus fingerprints such a split image by `combined_rootxz_sha256` /
//! `combined_squashfs_sha256`, the sha256 of the metadata bytes followed by
//! the rootfs bytes.

use super::info::ImageInfo;
use super::CatalogError;
use serde_json::{json, Map, Value};

/// `streams/v1/index.json`.
pub const INDEX: &str = "streams/v1/index.json";
/// `streams/v1/images.json`.
pub const IMAGES: &str = "streams/v1/images.json";

/// The product key: `debian:bookworm:default:amd64`.
pub fn product_key(info: &ImageInfo, variant: &str) -> String {
    format!("{}:{}:{}:{}", info.os, info.release, variant, info.arch)
}

/// `metadata.yaml` of an image: the kernel's name of its architecture, its
/// creation time, properties incus shows, and templates that give each
/// instance its own hostname and hosts file.
pub fn metadata_yaml(info: &ImageInfo, variant: &str, serial: &str, created: i64) -> String {
    let karch = super::info::kernel_arch(&info.arch).unwrap_or("unknown");
    format!(
        "architecture: {karch}\n\
         creation_date: {created}\n\
         properties:\n  \
         architecture: {arch}\n  \
         description: {desc}\n  \
         os: {os}\n  \
         release: {release}\n  \
         serial: \"{serial}\"\n  \
         variant: {variant}\n\
         templates:\n  \
         /etc/hostname:\n    \
         when:\n    - create\n    - copy\n    \
         template: hostname.tpl\n  \
         /etc/hosts:\n    \
         when:\n    - create\n    - copy\n    \
         template: hosts.tpl\n",
        arch = info.arch,
        desc = yaml_quote(&format!("{} {} ({serial})", info.pretty, info.arch)),
        os = info.os,
        release = info.release,
    )
}

/// A YAML double-quoted scalar.
fn yaml_quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// The template of `/etc/hostname` (incus's pongo2 syntax).
pub const HOSTNAME_TPL: &str = "{{ instance.name }}\n";
/// The template of `/etc/hosts`.
pub const HOSTS_TPL: &str = "127.0.0.1\tlocalhost\n\
127.0.1.1\t{{ instance.name }}\n\
::1\t\tlocalhost ip6-localhost ip6-loopback\n\
ff02::1\t\tip6-allnodes\n\
ff02::2\t\tip6-allrouters\n";

/// The `incus.tar.xz` bytes.
pub fn metadata_tarball(
    info: &ImageInfo,
    variant: &str,
    serial: &str,
    created: i64,
) -> std::io::Result<Vec<u8>> {
    let yaml = metadata_yaml(info, variant, serial, created);
    super::small_tar_xz(
        &[
            ("metadata.yaml", yaml.as_bytes()),
            ("templates/", b""),
            ("templates/hostname.tpl", HOSTNAME_TPL.as_bytes()),
            ("templates/hosts.tpl", HOSTS_TPL.as_bytes()),
        ],
        created,
    )
}

/// One item of a version: where, how big, its hash.
#[derive(Debug, Clone)]
pub struct Item {
    /// Path from the catalog root.
    pub path: String,
    /// Bytes.
    pub size: u64,
    /// Hex sha256.
    pub sha256: String,
}

/// Reads `images.json` (or a fresh one when `text` is `None`).
pub fn parse_images(text: Option<&[u8]>) -> Result<Value, CatalogError> {
    let Some(text) = text else {
        return Ok(json!({
            "content_id": "images",
            "datatype": "image-downloads",
            "format": "products:1.0",
            "products": {},
        }));
    };
    let v: Value = serde_json::from_slice(text).map_err(|e| {
        CatalogError(format!(
            "{IMAGES}: not valid JSON ({e}); restore it or start a new catalog"
        ))
    })?;
    if !v.get("products").is_some_and(Value::is_object) {
        return Err(CatalogError(format!(
            "{IMAGES}: has no \"products\" object (not a simplestreams image list)"
        )));
    }
    Ok(v)
}

/// Adds a version to `images` (parsed `images.json`): the metadata item,
/// the rootfs tarball and its combined sha256, and the squashfs and its
/// combined sha256 when there is one; refuses a serial the product has
/// already (a published version never changes).
pub fn add_version(
    images: &mut Value,
    info: &ImageInfo,
    variant: &str,
    serial: &str,
    meta: &Item,
    rootfs: (&Item, &str, &Item),
    squashfs: Option<(Item, &str)>,
) -> Result<(), CatalogError> {
    // The xz rootfs, its combined sha256 with the metadata, the zstd one.
    let (rootfs, combined_rootxz_sha256, rootfs_zst) = rootfs;
    let key = product_key(info, variant);
    let products = images["products"]
        .as_object_mut()
        .ok_or_else(|| CatalogError(format!("{IMAGES}: \"products\" is not an object")))?;
    let base = format!("{}/{}", info.os, info.release);
    let aliases = if variant == "default" {
        format!("{base}/{variant},{base}")
    } else {
        format!("{base}/{variant}")
    };
    let product = products.entry(key.clone()).or_insert_with(|| {
        json!({
            "aliases": aliases,
            "arch": info.arch,
            "os": info.os,
            "release": info.release,
            "release_title": info.pretty,
            "variant": variant,
            "versions": {},
        })
    });
    let versions = product["versions"]
        .as_object_mut()
        .ok_or_else(|| CatalogError(format!("{IMAGES}: {key} has no \"versions\" object")))?;
    if versions.contains_key(serial) {
        return Err(CatalogError(format!(
            "{key} already has version {serial} (set SOURCE_DATE_EPOCH to another time, or --serial)"
        )));
    }
    let mut items = Map::new();
    let mut meta_item = json!({
        "ftype": "incus.tar.xz",
        "path": meta.path,
        "size": meta.size,
        "sha256": meta.sha256,
        "combined_rootxz_sha256": combined_rootxz_sha256,
        "combined_sha256": combined_rootxz_sha256,
    });
    if let Some((sq, combined)) = &squashfs {
        meta_item["combined_squashfs_sha256"] = json!(combined);
        items.insert(
            "squashfs".into(),
            json!({
                "ftype": "squashfs",
                "path": sq.path,
                "size": sq.size,
                "sha256": sq.sha256,
            }),
        );
    }
    items.insert("incus.tar.xz".into(), meta_item);
    items.insert(
        "root.tar.xz".into(),
        json!({
            "ftype": "root.tar.xz",
            "path": rootfs.path,
            "size": rootfs.size,
            "sha256": rootfs.sha256,
        }),
    );
    // vbuild's own: the same tree as zstd, which `vbuild pull` prefers.
    // incus reads only the ftypes it knows and passes over this one.
    items.insert(
        ROOT_TAR_ZST.into(),
        json!({
            "ftype": ROOT_TAR_ZST,
            "path": rootfs_zst.path,
            "size": rootfs_zst.size,
            "sha256": rootfs_zst.sha256,
        }),
    );
    versions.insert(serial.to_string(), json!({ "items": items }));
    Ok(())
}

/// `index.json` for `images`: one entry listing every product.
pub fn index_for(images: &Value) -> Value {
    let products: Vec<&String> = images["products"]
        .as_object()
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    json!({
        "format": "index:1.0",
        "index": {
            "images": {
                "datatype": "image-downloads",
                "path": IMAGES,
                "format": "products:1.0",
                "products": products,
            }
        }
    })
}

/// The ftype of the zstd rootfs item (vbuild's own; not an incus ftype).
pub const ROOT_TAR_ZST: &str = "root.tar.zst";

/// A version's item of `ftype` in parsed `images.json`.
pub fn find_item<'a>(
    images: &'a Value,
    product: &str,
    serial: &str,
    ftype: &str,
) -> Option<&'a Value> {
    images["products"][product]["versions"][serial]["items"]
        .as_object()?
        .values()
        .find(|i| i["ftype"] == ftype)
}
