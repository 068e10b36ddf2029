//! `dists/SUITE/InRelease`: verify its cleartext OpenPGP signature against the
//! keyring, refuse it when expired or for another suite, and read the SHA256
//! list that every index fetched afterwards is checked against.
//!
//! There is deliberately no path that reads an unsigned `Release`: a missing
//! or unverifiable `InRelease` is an error, never a fallback.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use pgp::composed::CleartextSignedMessage;

use super::deb822;
use super::keyring::{Keyring, Rejection, Signer};

/// A verified release: what the archive signed about this suite.
#[derive(Debug, Clone)]
pub struct Release {
    /// `Suite:` (e.g. `oldstable`).
    pub suite: String,
    /// `Codename:` (e.g. `bookworm`).
    pub codename: String,
    /// `Date:`, when the archive generated it.
    pub date: Option<DateTime<Utc>>,
    /// `Valid-Until:`, after which it must not be trusted.
    pub valid_until: Option<DateTime<Utc>>,
    /// `Architectures:`.
    pub architectures: Vec<String>,
    /// `Components:`.
    pub components: Vec<String>,
    /// `Acquire-By-Hash: yes`: indices are also published under their hash,
    /// which avoids racing a mirror update between InRelease and Packages.
    pub acquire_by_hash: bool,
    /// Keys that made good signatures.
    pub signers: Vec<Signer>,
    files: BTreeMap<String, FileEntry>,
}

/// Size and SHA-256 the release promises for one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Size in bytes.
    pub size: u64,
    /// Lowercase hex SHA-256.
    pub sha256: String,
}

impl Release {
    /// The entry for `path` (relative to `dists/SUITE/`), if listed.
    pub fn file(&self, path: &str) -> Option<&FileEntry> {
        self.files.get(path)
    }

    /// Every listed path, sorted.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }
}

/// How strictly to check.
#[derive(Debug, Clone, Copy)]
pub struct VerifyOptions {
    /// The time to check expiry against (now; tests pass other times).
    pub now: DateTime<Utc>,
    /// Refuse a release whose `Valid-Until` has passed. Only a snapshot
    /// mirror (an archive frozen in time on purpose) warrants turning it off.
    pub check_valid_until: bool,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            now: Utc::now(),
            check_valid_until: true,
        }
    }
}

/// Why an `InRelease` was refused. Each message names the suite.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// Not a cleartext-signed message at all.
    #[error("dists/{suite}/InRelease is not OpenPGP-signed ({message}); refusing it (vbuild never uses an unsigned Release); check the mirror URL")]
    NotSigned {
        /// The suite.
        suite: String,
        /// What the parser said.
        message: String,
    },
    /// Signed only by keys the keyring does not hold.
    #[error("dists/{suite}/InRelease is signed by key {}, which is not in the keyring in recipes/keys (nor the system keyring); add the archive's public key there", key_ids.join(", "))]
    UnknownSigner {
        /// The suite.
        suite: String,
        /// Issuer key ids of the signatures.
        key_ids: Vec<String>,
    },
    /// The signer's key is known but not valid now.
    #[error("dists/{suite}/InRelease is signed by key {key_id}, but {why}; update the keyring in recipes/keys")]
    InvalidKey {
        /// The suite.
        suite: String,
        /// The signing key.
        key_id: String,
        /// Expired, revoked or unbound.
        why: String,
    },
    /// The signature does not match the content.
    #[error("dists/{suite}/InRelease: the signature by key {key_id} does not match the content, so the file was altered (tampered with or corrupted); refusing it, retry or use another mirror")]
    Tampered {
        /// The suite.
        suite: String,
        /// The signing key.
        key_id: String,
    },
    /// Its Valid-Until has passed.
    #[error("dists/{suite}/InRelease expired on {valid_until} (Valid-Until); the mirror is out of date, use a fresher mirror (--mirror), or --allow-expired to accept it knowingly")]
    Expired {
        /// The suite.
        suite: String,
        /// The Valid-Until date as written.
        valid_until: String,
    },
    /// Signed, but for another suite (a replayed or misplaced file).
    #[error("dists/{suite}/InRelease describes suite \"{found_suite}\" / codename \"{found_codename}\", not {suite}; the mirror is misconfigured or replaying another release")]
    WrongSuite {
        /// The suite asked for.
        suite: String,
        /// Its `Suite:`.
        found_suite: String,
        /// Its `Codename:`.
        found_codename: String,
    },
    /// Signed but unreadable as a Release file.
    #[error("dists/{suite}/InRelease: {message}")]
    Malformed {
        /// The suite.
        suite: String,
        /// What is wrong.
        message: String,
    },
}

/// Verifies an `InRelease` for `suite` and returns what it signed.
pub fn verify_inrelease(
    bytes: &[u8],
    suite: &str,
    keyring: &Keyring,
    opts: &VerifyOptions,
) -> Result<Release, ReleaseError> {
    let not_signed = |message: String| ReleaseError::NotSigned {
        suite: suite.to_string(),
        message,
    };
    let text = std::str::from_utf8(bytes).map_err(|_| not_signed("not UTF-8 text".into()))?;
    if !text
        .trim_start()
        .starts_with("-----BEGIN PGP SIGNED MESSAGE-----")
    {
        return Err(not_signed("no cleartext signature header".into()));
    }
    let (message, _) =
        CleartextSignedMessage::from_string(text).map_err(|e| not_signed(e.to_string()))?;
    let signed = message.signed_text();

    let mut signers = Vec::new();
    let mut rejections = Vec::new();
    for sig in message.signatures() {
        match keyring.check(sig, signed.as_bytes(), opts.now) {
            Ok(signer) => signers.push(signer),
            Err(rejection) => rejections.push(rejection),
        }
    }
    if signers.is_empty() {
        return Err(refusal(suite, rejections));
    }

    // What was signed, with the line endings the archive wrote.
    let content = signed.replace("\r\n", "\n");
    let release = deb822::single(&content).map_err(|e| ReleaseError::Malformed {
        suite: suite.to_string(),
        message: format!("not a Release file: {e}"),
    })?;
    let field = |name: &str| release.get(name).unwrap_or("").trim().to_string();
    let (found_suite, found_codename) = (field("Suite"), field("Codename"));
    if suite != found_suite && suite != found_codename {
        return Err(ReleaseError::WrongSuite {
            suite: suite.to_string(),
            found_suite,
            found_codename,
        });
    }
    let date = |name: &str| match release.get(name).map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => parse_date(text)
            .map(Some)
            .ok_or_else(|| ReleaseError::Malformed {
                suite: suite.to_string(),
                message: format!("{name}: \"{text}\" is not a date"),
            }),
    };
    let valid_until = date("Valid-Until")?;
    if opts.check_valid_until && valid_until.is_some_and(|until| until < opts.now) {
        return Err(ReleaseError::Expired {
            suite: suite.to_string(),
            valid_until: field("Valid-Until"),
        });
    }
    let files = sha256_list(&release).map_err(|message| ReleaseError::Malformed {
        suite: suite.to_string(),
        message,
    })?;
    let words = |name: &str| {
        release
            .get(name)
            .map(|v| v.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    };
    Ok(Release {
        date: date("Date")?,
        valid_until,
        architectures: words("Architectures"),
        components: words("Components"),
        acquire_by_hash: release
            .get("Acquire-By-Hash")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("yes")),
        suite: found_suite,
        codename: found_codename,
        signers,
        files,
    })
}

/// A Release date (RFC 2822 as the archive writes it, `Sat, 09 Nov 2024
/// 10:05:36 UTC`; `UTC` is not an RFC 2822 zone, so it is read as `+0000`).
fn parse_date(text: &str) -> Option<DateTime<Utc>> {
    let normalised = match text.strip_suffix(" UTC") {
        Some(head) => format!("{head} +0000"),
        None => text.to_string(),
    };
    DateTime::parse_from_rfc2822(&normalised)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// The `SHA256:` list: one `digest size path` line per file.
fn sha256_list(release: &deb822::Paragraph<'_>) -> Result<BTreeMap<String, FileEntry>, String> {
    let list = release
        .get("SHA256")
        .ok_or("has no SHA256 file list; the repository is too old or broken")?;
    let mut files = BTreeMap::new();
    for line in list.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let bad = || format!("bad SHA256 entry \"{line}\" (want: digest size path)");
        let mut words = line.split_whitespace();
        let (Some(digest), Some(size), Some(path), None) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            return Err(bad());
        };
        if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let size = size.parse().map_err(|_| bad())?;
        files.insert(
            path.to_string(),
            FileEntry {
                size,
                sha256: digest.to_ascii_lowercase(),
            },
        );
    }
    Ok(files)
}

/// The most telling reason no signature counted: an altered file beats an
/// invalid key beats an unknown key.
fn refusal(suite: &str, rejections: Vec<Rejection>) -> ReleaseError {
    let suite = suite.to_string();
    if let Some(Rejection::BadSignature { key_id, .. }) = rejections
        .iter()
        .find(|r| matches!(r, Rejection::BadSignature { .. }))
    {
        return ReleaseError::Tampered {
            suite,
            key_id: key_id.clone(),
        };
    }
    if let Some(Rejection::InvalidKey { key_id, why }) = rejections
        .iter()
        .find(|r| matches!(r, Rejection::InvalidKey { .. }))
    {
        return ReleaseError::InvalidKey {
            suite,
            key_id: key_id.clone(),
            why: why.clone(),
        };
    }
    let key_ids: Vec<String> = rejections
        .into_iter()
        .filter_map(|r| match r {
            Rejection::UnknownKey(id) => Some(id),
            _ => None,
        })
        .collect();
    if key_ids.is_empty() {
        return ReleaseError::NotSigned {
            suite,
            message: "the signature block holds no signature".into(),
        };
    }
    ReleaseError::UnknownSigner { suite, key_ids }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_dates_parse() {
        let d = parse_date("Sat, 09 Nov 2024 10:05:36 UTC").unwrap();
        assert_eq!(d.to_rfc3339(), "2024-11-09T10:05:36+00:00");
        let d = parse_date("Sat, 09 Nov 2024 10:05:36 +0100").unwrap();
        assert_eq!(d.to_rfc3339(), "2024-11-09T09:05:36+00:00");
        assert!(parse_date("yesterday").is_none());
    }

    #[test]
    fn sha256_lists_parse_and_bad_lines_are_named() {
        let text = format!(
            "Suite: stable\nSHA256:\n {} 12 main/binary-amd64/Packages\n {} 7 main/Contents-amd64\n",
            "AB".repeat(32),
            "cd".repeat(32)
        );
        let para = deb822::single(&text).unwrap();
        let files = sha256_list(&para).unwrap();
        assert_eq!(
            files["main/binary-amd64/Packages"],
            FileEntry {
                size: 12,
                sha256: "ab".repeat(32)
            }
        );
        assert_eq!(files["main/Contents-amd64"].size, 7);
        let para = deb822::single("SHA256:\n 00 1 x\n").unwrap();
        assert!(sha256_list(&para).unwrap_err().contains("\"00 1 x\""));
        let para = deb822::single("Suite: x\n").unwrap();
        assert!(sha256_list(&para).unwrap_err().contains("no SHA256"));
    }
}
