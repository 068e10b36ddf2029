//! An OCI image layout directory (image-spec 1.0): `oci-layout`,
//! `index.json` and `blobs/sha256/` with one gzip layer (the reproducible
//! tar of `image::tar`), a config whose entrypoint is the guest's init, and
//! the manifest, so `skopeo copy oci:DIR ...` and `podman` take it to any
//! registry. The same tree and clamp give the same digests: the gzip header
//! carries no time or name, and the config's `created` is the clamp.

use super::tar::{write_tar, TarOptions, TarStats};
use super::ImageError;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// What the layout holds.
#[derive(Debug, Clone)]
pub struct OciReport {
    /// The layer's tar.
    pub tar: TarStats,
    /// Hex sha256 of the manifest (the image's digest).
    pub manifest_sha256: String,
    /// Bytes of the layer blob.
    pub bytes: u64,
}

/// Counts and hashes what passes through to `inner`.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
    n: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let k = self.inner.write(b)?;
        self.hash.update(&b[..k]);
        self.n += k as u64;
        Ok(k)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// OCI's name for a Debian architecture.
pub fn oci_arch(debian: &str) -> &str {
    match debian {
        "i386" => "386",
        "armhf" | "armel" => "arm",
        "ppc64el" => "ppc64le",
        other => other,
    }
}

fn rfc3339(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Writes the layout for `rootfs` into the new directory `dir`.
pub fn write_layout(
    rootfs: &Path,
    dir: &Path,
    opts: &TarOptions,
    entrypoint: &[String],
    arch: &str,
) -> Result<OciReport, ImageError> {
    let io_at = |p: &Path| {
        let path = p.to_path_buf();
        move |source| ImageError::Io { path, source }
    };
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).map_err(io_at(&blobs))?;
    // The layer: tar -> (diff_id hash) -> gzip -> (digest hash) -> file.
    let tmp_layer = blobs.join(".layer.tmp");
    let f = File::create(&tmp_layer).map_err(io_at(&tmp_layer))?;
    let outer = Hashing {
        inner: BufWriter::with_capacity(1 << 20, f),
        hash: Sha256::new(),
        n: 0,
    };
    let gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(outer, flate2::Compression::new(6));
    let mut inner = Hashing {
        inner: gz,
        hash: Sha256::new(),
        n: 0,
    };
    let stats = write_tar(rootfs, &mut inner, opts)?;
    let diff_id = hex::encode(inner.hash.finalize());
    let mut outer = inner.inner.finish().map_err(io_at(&tmp_layer))?;
    outer.flush().map_err(io_at(&tmp_layer))?;
    let layer_digest = hex::encode(outer.hash.finalize());
    let layer_size = outer.n;
    let layer_path = blobs.join(&layer_digest);
    std::fs::rename(&tmp_layer, &layer_path).map_err(io_at(&layer_path))?;

    let created = rfc3339(opts.clamp_mtime.unwrap_or(0));
    let config = serde_json::json!({
        "created": created,
        "architecture": oci_arch(arch),
        "os": "linux",
        "config": {
            "Entrypoint": entrypoint,
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "container=oci"],
            "StopSignal": "SIGRTMIN+3",
        },
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{diff_id}")]},
        "history": [{"created": created, "created_by": "vbuild"}],
    });
    let (config_digest, config_size) = put_blob(&blobs, &config)?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": format!("sha256:{config_digest}"),
            "size": config_size,
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": format!("sha256:{layer_digest}"),
            "size": layer_size,
        }],
    });
    let (manifest_digest, manifest_size) = put_blob(&blobs, &manifest)?;
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{manifest_digest}"),
            "size": manifest_size,
            "annotations": {"org.opencontainers.image.ref.name": "latest"},
        }],
    });
    let p = dir.join("index.json");
    std::fs::write(&p, serde_json::to_vec(&index).expect("json")).map_err(io_at(&p))?;
    let p = dir.join("oci-layout");
    std::fs::write(&p, br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(io_at(&p))?;
    Ok(OciReport {
        tar: stats,
        manifest_sha256: manifest_digest,
        bytes: layer_size,
    })
}

/// Stores a JSON document as a blob; returns its digest and size.
fn put_blob(blobs: &Path, v: &serde_json::Value) -> Result<(String, u64), ImageError> {
    let bytes = serde_json::to_vec(v).expect("json");
    let digest = hex::encode(Sha256::digest(&bytes));
    let p = blobs.join(&digest);
    std::fs::write(&p, &bytes).map_err(|source| ImageError::Io { path: p, source })?;
    Ok((digest, bytes.len() as u64))
}
