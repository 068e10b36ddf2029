//! vbuild's own manifest of a catalog, `vbuild-catalog.json`: the sha256
//! and size of every index and every image file, with a detached OpenPGP
//! signature `vbuild-catalog.json.asc`. simplestreams and LXC 5 trust
//! HTTPS alone; `vbuild pull --key` trusts this signature instead, so a
//! catalog can be served from any mirror or a self-signed server.

use super::CatalogError;
use crate::distro::debian::keyring::{Keyring, Rejection};
use pgp::composed::{ArmorOptions, Deserializable, DetachedSignature, SignedSecretKey};
use pgp::crypto::hash::HashAlgorithm;
use pgp::types::{KeyDetails, Password};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The manifest's name in the catalog.
pub const MANIFEST: &str = "vbuild-catalog.json";
/// Its detached signature.
pub const SIGNATURE: &str = "vbuild-catalog.json.asc";
/// The manifest format this vbuild writes and reads.
pub const FORMAT: &str = "vbuild-catalog:1";

/// One file's size and hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSum {
    /// Hex sha256.
    pub sha256: String,
    /// Bytes.
    pub size: u64,
}

/// The manifest: every file of the catalog by path from its root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// Path -> size and hash.
    pub files: BTreeMap<String, FileSum>,
}

impl Manifest {
    /// An empty manifest.
    pub fn new() -> Manifest {
        Manifest {
            format: FORMAT.into(),
            files: BTreeMap::new(),
        }
    }

    /// Parses manifest bytes.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, CatalogError> {
        let m: Manifest = serde_json::from_slice(bytes).map_err(|e| {
            CatalogError(format!("{MANIFEST}: not a vbuild catalog manifest ({e})"))
        })?;
        if m.format != FORMAT {
            return Err(CatalogError(format!(
                "{MANIFEST}: format {:?}, this vbuild reads {FORMAT:?} (upgrade vbuild)",
                m.format
            )));
        }
        Ok(m)
    }

    /// Records `bytes` as the content of `path`.
    pub fn record(&mut self, path: &str, bytes: &[u8]) {
        self.files.insert(
            path.to_string(),
            FileSum {
                sha256: super::sha256_hex(bytes),
                size: bytes.len() as u64,
            },
        );
    }

    /// The serialised manifest (sorted keys, so it is reproducible).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }

    /// Checks that `bytes` are what the manifest says `path` holds.
    pub fn check(&self, path: &str, bytes: &[u8]) -> Result<(), CatalogError> {
        let want = self
            .files
            .get(path)
            .ok_or_else(|| CatalogError(format!("{path}: not listed in the signed {MANIFEST}")))?;
        let got = super::sha256_hex(bytes);
        if bytes.len() as u64 != want.size || got != want.sha256 {
            return Err(CatalogError(format!(
                "{path}: {} bytes with sha256 {got}, but the signed {MANIFEST} says {} bytes \
                 with sha256 {} (the catalog was changed after signing, or the download is corrupt)",
                bytes.len(),
                want.size,
                want.sha256
            )));
        }
        Ok(())
    }
}

impl Default for Manifest {
    fn default() -> Self {
        Manifest::new()
    }
}

/// An unprotected OpenPGP secret key from the armored file `path`.
pub fn load_secret_key(path: &Path) -> Result<SignedSecretKey, CatalogError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        CatalogError(format!(
            "--sign {}: {e} (give an armored secret key file)",
            path.display()
        ))
    })?;
    let (key, _) = SignedSecretKey::from_string(&text).map_err(|e| {
        CatalogError(format!(
            "--sign {}: not an armored OpenPGP secret key ({e}); export one with \
             `gpg --armor --export-secret-keys KEYID`",
            path.display()
        ))
    })?;
    Ok(key)
}

/// A detached, armored signature of `data` by `key`'s signing subkey (or its
/// primary key when it has no signing subkey).
pub fn sign(key: &SignedSecretKey, data: &[u8], shown: &Path) -> Result<String, CatalogError> {
    let fail = |e: pgp::errors::Error| {
        CatalogError(format!(
            "--sign {}: cannot sign with it ({e}); it must be a signing key without a passphrase",
            shown.display()
        ))
    };
    let sub = key
        .secret_subkeys
        .iter()
        .find(|s| s.signatures.iter().any(|sig| sig.key_flags().sign()));
    let rng = rand::thread_rng();
    let sig = match sub {
        Some(s) => DetachedSignature::sign_binary_data(
            rng,
            &s.key,
            &Password::empty(),
            HashAlgorithm::Sha256,
            data,
        ),
        None => DetachedSignature::sign_binary_data(
            rng,
            &key.primary_key,
            &Password::empty(),
            HashAlgorithm::Sha256,
            data,
        ),
    }
    .map_err(fail)?;
    sig.to_armored_string(ArmorOptions::default()).map_err(fail)
}

/// The fingerprint of the key `sign` uses, for reports.
pub fn signing_fingerprint(key: &SignedSecretKey) -> String {
    hex::encode_upper(key.primary_key.fingerprint().as_bytes())
}

/// Checks the armored detached signature `asc` of `data` against the public
/// key(s) in the armored `key_bytes` (the pinned `--key`); returns the
/// signing key's id.
pub fn verify(
    key_bytes: &[u8],
    key_shown: &str,
    asc: &[u8],
    data: &[u8],
) -> Result<String, CatalogError> {
    let mut keyring = Keyring::new();
    keyring.add(key_shown, key_bytes).map_err(|e| {
        CatalogError(format!(
            "--key {key_shown}: {e} (give the catalog's armored public key)"
        ))
    })?;
    let text = std::str::from_utf8(asc)
        .map_err(|_| CatalogError(format!("{SIGNATURE}: not an armored signature")))?;
    let (sig, _) = DetachedSignature::from_string(text)
        .map_err(|e| CatalogError(format!("{SIGNATURE}: not an OpenPGP signature ({e})")))?;
    match keyring.check(&sig.signature, data, chrono::Utc::now()) {
        Ok(signer) => Ok(signer.key_id),
        Err(Rejection::UnknownKey(id)) => Err(CatalogError(format!(
            "{SIGNATURE}: made by key {id}, which is not the pinned --key {key_shown} \
             (the catalog is signed by someone else, or you pinned the wrong key)"
        ))),
        Err(Rejection::InvalidKey { key_id, why }) => Err(CatalogError(format!(
            "{SIGNATURE}: key {key_id} may not sign now: {why}"
        ))),
        Err(Rejection::BadSignature { key_id, .. }) => Err(CatalogError(format!(
            "{SIGNATURE}: BAD signature by key {key_id}: {MANIFEST} was changed after it was \
             signed (do not use this catalog; re-sign it with `vbuild catalog add --sign`)"
        ))),
    }
}
