//! Guest names: checked once, before anything is created, so a bad name can
//! never become a path (`../x`), a link name that is too long, or a cgroup
//! that clashes with another guest's.

use std::fmt;

/// A validated guest name: `[a-z0-9][a-z0-9-]{0,62}`, not ending in '-'
/// (it is the guest's hostname, an RFC 1123 label).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GuestName(String);

/// Why a name was refused; the message says what a valid name looks like.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("guest name {name:?} {reason} (use 1-63 characters: a-z, 0-9 and '-', starting and ending with a letter or digit, e.g. mail01)")]
pub struct NameError {
    /// The refused input.
    pub name: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl GuestName {
    /// Checks `s` against the naming rule.
    pub fn parse(s: &str) -> Result<GuestName, NameError> {
        let err = |reason| NameError {
            name: s.to_string(),
            reason,
        };
        if s.is_empty() {
            return Err(err("is empty"));
        }
        if s.len() > 63 {
            return Err(err("is longer than 63 characters"));
        }
        let first = s.as_bytes()[0];
        if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
            return Err(err("must start with a lowercase letter or a digit"));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(err("may only hold lowercase letters, digits and '-'"));
        }
        if s.ends_with('-') {
            return Err(err("ends with '-' (not a valid hostname)"));
        }
        Ok(GuestName(s.to_string()))
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for GuestName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for GuestName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        GuestName::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_alphabet() {
        for ok in ["mail01", "a", "0web", "x-y-z", &"a".repeat(63)] {
            assert_eq!(GuestName::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn refuses_paths_case_and_length() {
        for bad in [
            "",
            "../x",
            "Mail",
            "-a",
            "a_b",
            "a/b",
            "a.b",
            "uxbad-",
            "-ux",
            &"a".repeat(64),
        ] {
            let e = GuestName::parse(bad).unwrap_err();
            assert!(e.to_string().contains("e.g. mail01"), "{e}");
        }
    }
}
