//! OpenPGP keyrings that decide whether a repository's `InRelease` is genuine.
//!
//! Debian signs with *subkeys* of its archive keys (the release team's key
//! signs with its primary key), so every key and subkey is a candidate signer.
//! Validity is checked here rather than with pgp's `verify()`, which also
//! demands that third-party certifications verify against the key itself and
//! so rejects genuine Debian keys: a primary key needs one good self-signature
//! and no good revocation, a subkey one good binding signature with the sign
//! flag and no good revocation, and neither may have expired at the time of use.

use std::io::Cursor;
use std::path::Path;

use chrono::{DateTime, Utc};
use pgp::composed::{Deserializable, SignedPublicKey};
use pgp::packet::{Signature, SignatureType};
use pgp::types::{KeyDetails, KeyId, Tag, Timestamp};

use crate::recipe::{Recipe, RecipeError};

/// The keys trusted to sign a repository.
#[derive(Debug, Default)]
pub struct Keyring {
    certs: Vec<Cert>,
}

/// One certificate (primary key, its user id and subkeys) and what its
/// self-signatures say about it.
#[derive(Debug)]
struct Cert {
    source: String,
    user_id: String,
    primary: SignedPublicKey,
    state: KeyState,
    subkeys: Vec<KeyState>,
}

/// What the signatures on one key or subkey established.
#[derive(Debug, Clone)]
struct KeyState {
    key_id: KeyId,
    fingerprint: String,
    /// A valid self-signature (primary) or binding signature (subkey) exists.
    bound: bool,
    /// The binding allows signing data (subkeys must say so).
    can_sign: bool,
    revoked: bool,
    expires: Option<DateTime<Utc>>,
}

/// The key that made a good signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    /// Long key id (16 hex digits) of the signing key or subkey.
    pub key_id: String,
    /// Fingerprint of the signing key or subkey.
    pub fingerprint: String,
    /// The certificate's user id (`Debian Archive Automatic Signing Key (12/bookworm) …`).
    pub user_id: String,
    /// Which key file it came from.
    pub source: String,
    /// When the first of the signature, the key and (for a subkey) its
    /// primary expires; `None`: never. Until then the same bytes verify
    /// the same way with the same keys.
    pub good_until: Option<DateTime<Utc>>,
}

/// Why a keyring could not be built.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    /// A key file is not OpenPGP public key material.
    #[error("{source_name}: not an OpenPGP public key or keyring ({message}); replace it with the archive's public key file")]
    Parse {
        /// The key file.
        source_name: String,
        /// What the parser said.
        message: String,
    },
    /// A key file holds no key at all.
    #[error(
        "{source_name}: contains no public key; replace it with the archive's public key file"
    )]
    Empty {
        /// The key file.
        source_name: String,
    },
    /// A key file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// What the kernel said.
        source: std::io::Error,
    },
    /// The recipe's key list could not be read.
    #[error(transparent)]
    Recipe(#[from] RecipeError),
}

/// Why one signature did not count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// No key in the keyring has the issuer's id.
    UnknownKey(String),
    /// The key exists but is not valid at the time of use.
    InvalidKey { key_id: String, why: String },
    /// The key is right but the signature does not match the content.
    BadSignature { key_id: String, message: String },
}

impl Keyring {
    /// An empty keyring (trusts nothing).
    pub fn new() -> Keyring {
        Keyring::default()
    }

    /// The recipe's keys (from `recipes/keys/` or the embedded copies), plus
    /// its `system_keyring` when that file exists on this host.
    pub fn for_recipe(recipe: &Recipe) -> Result<Keyring, KeyringError> {
        let table = super::recipe::read(recipe)?;
        let mut keyring = Keyring::new();
        for (name, bytes) in recipe.key_files(&table.keys)? {
            keyring.add(&format!("recipes/keys/{name}"), &bytes)?;
        }
        if let Some(path) = &table.system_keyring {
            if path.is_file() {
                keyring.add_file(path)?;
            }
        }
        Ok(keyring)
    }

    /// The recipe's key files (`for_recipe`'s input) as (source, bytes),
    /// read but not parsed: what [`Keyring::from_material`] builds from and
    /// [`material_digest`] names.
    pub fn recipe_material(recipe: &Recipe) -> Result<Vec<(String, Vec<u8>)>, KeyringError> {
        let table = super::recipe::read(recipe)?;
        let mut out = vec![];
        for (name, bytes) in recipe.key_files(&table.keys)? {
            out.push((format!("recipes/keys/{name}"), bytes));
        }
        if let Some(path) = table.system_keyring.as_ref().filter(|p| p.is_file()) {
            out.push(read_material(path)?);
        }
        Ok(out)
    }

    /// A keyring of every key in `material` (sources and bytes).
    pub fn from_material(material: &[(String, Vec<u8>)]) -> Result<Keyring, KeyringError> {
        let mut keyring = Keyring::new();
        for (source, bytes) in material {
            keyring.add(source, bytes)?;
        }
        Ok(keyring)
    }

    /// Adds the keys of a file (armored `.asc` or binary `.gpg`/`.pgp`).
    pub fn add_file(&mut self, path: &Path) -> Result<usize, KeyringError> {
        let bytes = std::fs::read(path).map_err(|e| KeyringError::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        self.add(&path.display().to_string(), &bytes)
    }

    /// Adds every public key in `bytes` (armored or binary); `source` names
    /// them in messages. Returns how many were added.
    pub fn add(&mut self, source: &str, bytes: &[u8]) -> Result<usize, KeyringError> {
        let parse_err = |e: pgp::errors::Error| KeyringError::Parse {
            source_name: source.to_string(),
            message: e.to_string(),
        };
        let armored = bytes
            .iter()
            .skip_while(|b| b.is_ascii_whitespace())
            .take(10)
            .eq(b"-----BEGIN".iter());
        let keys: Vec<SignedPublicKey> = if armored {
            let (keys, _) =
                SignedPublicKey::from_armor_many(Cursor::new(bytes)).map_err(parse_err)?;
            keys.collect::<Result<_, _>>().map_err(parse_err)?
        } else {
            SignedPublicKey::from_bytes_many(Cursor::new(bytes))
                .map_err(parse_err)?
                .collect::<Result<_, _>>()
                .map_err(parse_err)?
        };
        if keys.is_empty() {
            return Err(KeyringError::Empty {
                source_name: source.to_string(),
            });
        }
        let n = keys.len();
        self.certs
            .extend(keys.into_iter().map(|key| Cert::new(source, key)));
        Ok(n)
    }

    /// Number of certificates (primary keys).
    pub fn len(&self) -> usize {
        self.certs.len()
    }

    /// Whether the keyring trusts nothing.
    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }

    /// Checks one signature over `data` at time `now`: an issuer in this
    /// keyring, valid then, whose key verifies the signature.
    pub(crate) fn check(
        &self,
        sig: &Signature,
        data: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Signer, Rejection> {
        let issuers: Vec<KeyId> = sig
            .issuer_key_id()
            .into_iter()
            .copied()
            .chain(
                sig.issuer_fingerprint()
                    .into_iter()
                    .filter_map(|fp| key_id_of_fingerprint(fp.as_bytes())),
            )
            .collect();
        let shown = issuers
            .first()
            .map(show_key_id)
            .unwrap_or_else(|| "(none given)".to_string());
        let mut rejection = Rejection::UnknownKey(shown);
        for cert in &self.certs {
            let candidates = std::iter::once((None, &cert.state))
                .chain(cert.subkeys.iter().enumerate().map(|(i, s)| (Some(i), s)));
            for (sub, state) in candidates {
                if !issuers.is_empty() && !issuers.contains(&state.key_id) {
                    continue;
                }
                let key_id = show_key_id(&state.key_id);
                if let Err(why) = cert.usable(state, sub.is_some(), now) {
                    rejection = Rejection::InvalidKey { key_id, why };
                    continue;
                }
                let verified = match sub {
                    None => sig.verify(&cert.primary.primary_key, data),
                    Some(i) => sig.verify(&cert.primary.public_subkeys[i].key, data),
                };
                match verified {
                    Ok(()) => {
                        if let Some(why) = signature_expired(sig, now) {
                            rejection = Rejection::InvalidKey { key_id, why };
                            continue;
                        }
                        let ends = [
                            cert.state.expires,
                            sub.and(state.expires),
                            signature_expiry(sig),
                        ];
                        return Ok(Signer {
                            key_id,
                            fingerprint: state.fingerprint.clone(),
                            user_id: cert.user_id.clone(),
                            source: cert.source.clone(),
                            good_until: ends.into_iter().flatten().min(),
                        });
                    }
                    Err(e) => {
                        rejection = Rejection::BadSignature {
                            key_id,
                            message: e.to_string(),
                        }
                    }
                }
            }
        }
        Err(rejection)
    }
}

/// A key file's (source name, bytes).
pub fn read_material(path: &Path) -> Result<(String, Vec<u8>), KeyringError> {
    let bytes = std::fs::read(path).map_err(|e| KeyringError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    Ok((path.display().to_string(), bytes))
}

/// sha256 (hex) over key material, in order: equal digests mean a keyring
/// of exactly the same keys, so a verification made with one holds for
/// the other.
pub fn material_digest(material: &[(String, Vec<u8>)]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for (source, bytes) in material {
        h.update((source.len() as u64).to_le_bytes());
        h.update(source.as_bytes());
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    hex::encode(h.finalize())
}

impl Cert {
    fn new(source: &str, key: SignedPublicKey) -> Cert {
        let primary_id = key.primary_key.legacy_key_id();
        let created = to_utc(key.primary_key.created_at());
        // Self-signatures only: third-party certifications say nothing about
        // validity and cannot verify against this key.
        let mut newest: Option<(&Signature, String)> = None;
        for user in &key.details.users {
            for sig in &user.signatures {
                if !issued_by(sig, &primary_id)
                    || sig
                        .verify_certification(&key.primary_key, Tag::UserId, &user.id)
                        .is_err()
                {
                    continue;
                }
                if newest
                    .as_ref()
                    .is_none_or(|(n, _)| sig.created() > n.created())
                {
                    newest = Some((sig, String::from_utf8_lossy(user.id.id()).into_owned()));
                }
            }
        }
        let revoked = key
            .details
            .revocation_signatures
            .iter()
            .any(|sig| sig.verify_key(&key.primary_key).is_ok());
        let state = KeyState {
            key_id: primary_id,
            fingerprint: hex::encode_upper(key.primary_key.fingerprint().as_bytes()),
            bound: newest.is_some(),
            can_sign: true,
            revoked,
            expires: newest
                .as_ref()
                .and_then(|(sig, _)| lifetime(sig.key_expiration_time()))
                .map(|d| created + d),
        };
        let user_id = newest.map(|(_, uid)| uid).unwrap_or_default();
        let subkeys = key
            .public_subkeys
            .iter()
            .map(|sub| {
                let primary = &key.primary_key;
                let binds = |typ: SignatureType| {
                    sub.signatures.iter().filter(move |sig| {
                        sig.typ() == Some(typ)
                            && sig.verify_subkey_binding(primary, &sub.key).is_ok()
                    })
                };
                let binding = binds(SignatureType::SubkeyBinding).max_by_key(|sig| sig.created());
                KeyState {
                    key_id: sub.key.legacy_key_id(),
                    fingerprint: hex::encode_upper(sub.key.fingerprint().as_bytes()),
                    bound: binding.is_some(),
                    can_sign: binding.is_some_and(|sig| sig.key_flags().sign()),
                    revoked: binds(SignatureType::SubkeyRevocation).next().is_some(),
                    expires: binding
                        .and_then(|sig| lifetime(sig.key_expiration_time()))
                        .map(|d| to_utc(sub.key.created_at()) + d),
                }
            })
            .collect();
        Cert {
            source: source.to_string(),
            user_id,
            primary: key,
            state,
            subkeys,
        }
    }

    /// Whether `state` (the primary's or a subkey's) may sign at `now`.
    fn usable(&self, state: &KeyState, is_subkey: bool, now: DateTime<Utc>) -> Result<(), String> {
        let primary = &self.state;
        if !primary.bound {
            return Err("its primary key has no valid self-signature".into());
        }
        if primary.revoked {
            return Err("its primary key is revoked".into());
        }
        if let Some(at) = primary.expires.filter(|at| *at <= now) {
            return Err(format!(
                "its primary key expired on {}",
                at.format("%Y-%m-%d")
            ));
        }
        if is_subkey {
            if !state.bound {
                return Err("the subkey has no valid binding signature".into());
            }
            if state.revoked {
                return Err("the subkey is revoked".into());
            }
            if !state.can_sign {
                return Err("the subkey is not bound for signing".into());
            }
            if let Some(at) = state.expires.filter(|at| *at <= now) {
                return Err(format!("the subkey expired on {}", at.format("%Y-%m-%d")));
            }
        }
        Ok(())
    }
}

/// Whether `sig` names `id` as its issuer (or names no issuer at all).
fn issued_by(sig: &Signature, id: &KeyId) -> bool {
    let ids = sig.issuer_key_id();
    let fps = sig.issuer_fingerprint();
    (ids.is_empty() && fps.is_empty())
        || ids.contains(&id)
        || fps
            .iter()
            .any(|fp| key_id_of_fingerprint(fp.as_bytes()).as_ref() == Some(id))
}

/// A v4 fingerprint's key id is its last 8 bytes (v6: the first 8).
fn key_id_of_fingerprint(fp: &[u8]) -> Option<KeyId> {
    let bytes: &[u8] = match fp.len() {
        20 => &fp[12..],
        32 => &fp[..8],
        _ => return None,
    };
    <[u8; 8]>::try_from(bytes).ok().map(KeyId::from)
}

/// A long key id as gpg and errors print it: 16 uppercase hex digits.
fn show_key_id(id: &KeyId) -> String {
    hex::encode_upper(id.as_ref())
}

/// An OpenPGP timestamp (seconds since the epoch) as a chrono time.
fn to_utc(t: Timestamp) -> DateTime<Utc> {
    DateTime::from_timestamp(i64::from(t.as_secs()), 0).unwrap_or_default()
}

/// A key or signature lifetime; 0 (or none) means "never expires".
fn lifetime(d: Option<pgp::types::Duration>) -> Option<chrono::Duration> {
    d.map(|d| d.as_secs())
        .filter(|&s| s != 0)
        .map(|s| chrono::Duration::seconds(i64::from(s)))
}

fn signature_expiry(sig: &Signature) -> Option<DateTime<Utc>> {
    Some(to_utc(sig.created()?) + lifetime(sig.signature_expiration_time())?)
}

fn signature_expired(sig: &Signature, now: DateTime<Utc>) -> Option<String> {
    let at = signature_expiry(sig)?;
    (at <= now).then(|| format!("the signature expired on {}", at.format("%Y-%m-%d")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOOKWORM_AUTO: &[u8] =
        include_bytes!("../../../../recipes/keys/debian-archive-bookworm-automatic.asc");
    const TRIXIE_STABLE: &[u8] =
        include_bytes!("../../../../recipes/keys/debian-archive-trixie-stable.asc");

    #[test]
    fn debian_keys_load_with_their_signing_subkeys_valid() {
        let mut ring = Keyring::new();
        assert_eq!(ring.add("bookworm-automatic", BOOKWORM_AUTO).unwrap(), 1);
        assert_eq!(ring.add("trixie-stable", TRIXIE_STABLE).unwrap(), 1);
        let auto = &ring.certs[0];
        assert!(auto.user_id.contains("12/bookworm"), "{}", auto.user_id);
        assert_eq!(
            auto.state.fingerprint,
            "B8B80B5B623EAB6AD8775C45B7C5D7D6350947F8"
        );
        assert_eq!(auto.subkeys.len(), 1);
        let sub = &auto.subkeys[0];
        assert_eq!(sub.fingerprint, "4CB50190207B4758A3F73A796ED0E7B82643E131");
        assert!(sub.bound && sub.can_sign && !sub.revoked);
        assert_eq!(
            sub.expires.unwrap().format("%Y-%m-%d").to_string(),
            "2031-01-19"
        );
        let now = "2026-11-01T00:00:00Z".parse().unwrap();
        assert!(auto.usable(sub, true, now).is_ok());
        let later = "2031-02-01T00:00:00Z".parse().unwrap();
        assert_eq!(
            auto.usable(sub, true, later).unwrap_err(),
            "its primary key expired on 2031-01-19"
        );
    }

    #[test]
    fn garbage_and_empty_files_are_named() {
        let mut ring = Keyring::new();
        let err = ring
            .add(
                "recipes/keys/x.asc",
                b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnope\n",
            )
            .unwrap_err();
        assert!(err.to_string().starts_with("recipes/keys/x.asc: "), "{err}");
        let err = ring.add("recipes/keys/y.gpg", b"").unwrap_err();
        assert!(err.to_string().starts_with("recipes/keys/y.gpg: "), "{err}");
        assert!(ring.is_empty());
    }

    #[test]
    fn fingerprints_map_to_key_ids() {
        let fp = hex::decode("4CB50190207B4758A3F73A796ED0E7B82643E131").unwrap();
        let id = key_id_of_fingerprint(&fp).unwrap();
        assert_eq!(show_key_id(&id), "6ED0E7B82643E131");
    }
}
