//! Debian package versions and their order (Debian Policy 5.6.12,
//! deb-version(7)): `[epoch:]upstream[-revision]`, compared epoch first
//! (numerically), then upstream and revision by dpkg's algorithm, where `~`
//! sorts before everything, even the end of the string (`1.0~rc1 < 1.0`).

use std::cmp::Ordering;
use std::fmt;

/// A parsed version. Equality is the version order's (`1.0-0 == 1.0`,
/// `1.001 == 1.1`), so there is deliberately no `Hash`.
#[derive(Debug, Clone)]
pub struct Version {
    text: String,
    epoch: u64,
    /// Byte range of the upstream part within `text`.
    upstream: (usize, usize),
    /// Start of the revision within `text` (after the last `-`), if any.
    revision: Option<usize>,
}

/// Why a version string is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{text}\" is not a Debian version: {why}")]
pub struct VersionError {
    /// The string as given.
    pub text: String,
    /// What is wrong with it.
    pub why: &'static str,
}

impl Version {
    /// Parses `[epoch:]upstream[-revision]`. The upstream part must start
    /// with a digit and may hold letters, digits and `. + ~ - :` (a `-` only
    /// when there is a revision, a `:` only after an epoch); the revision
    /// letters, digits and `. + ~`.
    pub fn parse(text: &str) -> Result<Version, VersionError> {
        let err = |why| VersionError {
            text: text.to_string(),
            why,
        };
        if text.is_empty() {
            return Err(err("it is empty"));
        }
        let (epoch, rest_at) = match text.find(':') {
            Some(i) => {
                let e = &text[..i];
                if e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(err("the epoch (before ':') must be a number"));
                }
                (e.parse().map_err(|_| err("the epoch is too large"))?, i + 1)
            }
            None => (0, 0),
        };
        let rest = &text[rest_at..];
        let (upstream_end, revision) = match rest.rfind('-') {
            Some(i) => (rest_at + i, Some(rest_at + i + 1)),
            None => (text.len(), None),
        };
        let upstream = &text[rest_at..upstream_end];
        if !upstream.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(err("the upstream version must start with a digit"));
        }
        let upstream_ok = |b: u8| b.is_ascii_alphanumeric() || b".+~-:".contains(&b);
        if !upstream.bytes().all(upstream_ok) {
            return Err(err(
                "the upstream version holds a character other than letters, digits and . + ~ - :",
            ));
        }
        if let Some(r) = revision {
            let rev = &text[r..];
            if rev.is_empty() {
                return Err(err("the revision after '-' is empty"));
            }
            if !rev
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".+~".contains(&b))
            {
                return Err(err(
                    "the revision holds a character other than letters, digits and . + ~",
                ));
            }
        }
        Ok(Version {
            text: text.to_string(),
            epoch,
            upstream: (rest_at, upstream_end),
            revision,
        })
    }

    /// The epoch (0 when not written).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The upstream part.
    pub fn upstream(&self) -> &str {
        &self.text[self.upstream.0..self.upstream.1]
    }

    /// The Debian revision, if written.
    pub fn revision(&self) -> Option<&str> {
        self.revision.map(|r| &self.text[r..])
    }

    /// The version as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for Version {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Version, VersionError> {
        Version::parse(s)
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Version) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| compare_part(self.upstream(), other.upstream()))
            .then_with(|| {
                compare_part(
                    self.revision().unwrap_or(""),
                    other.revision().unwrap_or(""),
                )
            })
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Version) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Version) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Version {}

/// dpkg's `verrevcmp`: alternating non-digit runs (letters before other
/// characters, `~` before everything including the end) and digit runs
/// (numerically).
fn compare_part(a: &str, b: &str) -> Ordering {
    fn weight(c: Option<u8>) -> i32 {
        match c {
            None => 0,
            Some(b'~') => -1,
            Some(c) if c.is_ascii_digit() => 0,
            Some(c) if c.is_ascii_alphabetic() => i32::from(c),
            Some(c) => i32::from(c) + 256,
        }
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let digit = |s: &[u8], i: usize| s.get(i).is_some_and(u8::is_ascii_digit);
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        while (i < a.len() && !digit(a, i)) || (j < b.len() && !digit(b, j)) {
            let (wa, wb) = (weight(a.get(i).copied()), weight(b.get(j).copied()));
            if wa != wb {
                return wa.cmp(&wb);
            }
            i += 1;
            j += 1;
        }
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        let mut first_diff = Ordering::Equal;
        while digit(a, i) && digit(b, j) {
            if first_diff == Ordering::Equal {
                first_diff = a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
        if digit(a, i) {
            return Ordering::Greater;
        }
        if digit(b, j) {
            return Ordering::Less;
        }
        if first_diff != Ordering::Equal {
            return first_diff;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering::*;

    fn cmp(a: &str, b: &str) -> Ordering {
        Version::parse(a).unwrap().cmp(&Version::parse(b).unwrap())
    }

    #[test]
    fn policy_examples_order() {
        assert_eq!(cmp("1.0~rc1", "1.0"), Less);
        assert_eq!(cmp("1:0.9", "2.0"), Greater, "the epoch wins");
        assert_eq!(cmp("1.0-1", "1.0-1+b1"), Less, "binNMUs sort after");
        assert_eq!(cmp("1.0~~", "1.0~"), Less);
        assert_eq!(cmp("1.0~~a", "1.0~~"), Greater);
        assert_eq!(cmp("1.0~", "1.0"), Less);
        assert_eq!(cmp("1.0", "1.0+"), Less);
        assert_eq!(cmp("1.0a", "1.0+"), Less, "letters before other characters");
        assert_eq!(cmp("1.0-1", "1.0"), Greater);
        assert_eq!(cmp("1.0-0", "1.0"), Equal);
        assert_eq!(
            cmp("1.10", "1.9"),
            Greater,
            "digit runs compare numerically"
        );
        assert_eq!(cmp("1.001", "1.1"), Equal);
        assert_eq!(cmp("0:1.2", "1.2"), Equal);
        assert_eq!(cmp("1.2-3", "1.2-10"), Less);
    }

    #[test]
    fn real_archive_versions_order() {
        // util-linux-extra's Breaks: a `~` sorts before the end of the string.
        assert_eq!(cmp("2.38.1-5+deb12u3", "2.38~"), Greater);
        assert_eq!(cmp("2.36-9+deb12u4", "2.36-9+deb12u10"), Less);
        assert_eq!(cmp("1:0.9.git20220301-2", "1:0.9.git20220301-1"), Greater);
        assert_eq!(cmp("12.4+deb12u5", "12.4"), Greater);
        assert_eq!(cmp("2:1.02.185-2", "1.02.185-2"), Greater);
        assert_eq!(
            cmp("1.2.3-1-2", "1.2.3-1"),
            Greater,
            "the last '-' starts the revision"
        );
    }

    #[test]
    fn parts_are_split_at_the_first_colon_and_last_dash() {
        let v = Version::parse("1:2.36-9+deb12u4").unwrap();
        assert_eq!(
            (v.epoch(), v.upstream(), v.revision()),
            (1, "2.36", Some("9+deb12u4"))
        );
        let v = Version::parse("1.2-3-4").unwrap();
        assert_eq!((v.upstream(), v.revision()), ("1.2-3", Some("4")));
        let v = Version::parse("2:1:2").unwrap();
        assert_eq!((v.epoch(), v.upstream(), v.revision()), (2, "1:2", None));
        assert_eq!(v.to_string(), "2:1:2");
    }

    #[test]
    fn malformed_versions_are_refused() {
        for bad in [
            "", "a1.0", ":1.0", "x:1.0", "1.0-", "1.0 beta", "1.0-1_2", "1:", "1.0:1",
        ] {
            assert!(Version::parse(bad).is_err(), "{bad:?} was accepted");
        }
        let err = Version::parse("1.0 beta").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("\"1.0 beta\" is not a Debian version"),
            "{err}"
        );
    }
}
