//! rpm's version ordering (rpmvercmp): epoch first, then version, then
//! release, each compared segment by segment, with `~` sorting before
//! anything (pre-releases) and `^` after the base but before any longer
//! version (snapshots). The algorithm is the `rpm-version` crate's.

use std::cmp::Ordering;

/// `[epoch:]version[-release]` split into its parts (epoch "0" when absent).
pub fn split_evr(evr: &str) -> (&str, &str, Option<&str>) {
    let (epoch, rest) = match evr.split_once(':') {
        Some((e, r)) if !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()) => (e, r),
        _ => ("0", evr),
    };
    match rest.rsplit_once('-') {
        Some((v, r)) => (epoch, v, Some(r)),
        None => (epoch, rest, None),
    }
}

/// Compares two `[epoch:]version[-release]`; a side without a release
/// matches any release of the same version (as rpm compares a dependency
/// `foo >= 1.0` with a package `foo-1.0-3`).
pub fn compare(a: &str, b: &str) -> Ordering {
    let (ea, va, ra) = split_evr(a);
    let (eb, vb, rb) = split_evr(b);
    let (ra, rb) = match (ra, rb) {
        (Some(x), Some(y)) => (x, y),
        _ => ("", ""),
    };
    let ea = ea.parse::<u64>().unwrap_or(0).to_string();
    let eb = eb.parse::<u64>().unwrap_or(0).to_string();
    rpm_version::Evr::new(ea.as_str(), va, ra).cmp(&rpm_version::Evr::new(eb.as_str(), vb, rb))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    #[test]
    fn rpmvercmp_epoch_tilde_caret_and_segments() {
        for (a, b, want) in [
            ("1.0-1", "1.0-1", Equal),
            ("1.0-1", "1.0-2", Less),
            ("1.10", "1.9", Greater),
            ("1:1.0", "2.0", Greater),
            ("0:2.0", "2.0", Equal),
            ("1.0~rc1", "1.0", Less),
            ("1.0~rc1", "1.0~rc2", Less),
            ("1.0^git1", "1.0", Greater),
            ("1.0^git1", "1.0.1", Less),
            ("1.0~rc1^git1", "1.0~rc1", Greater),
            ("1.0a", "1.0", Greater),
            ("2.0", "2.0-5.fc44", Equal),
            ("5.2-3.fc44", "5.2-10.fc44", Less),
        ] {
            assert_eq!(compare(a, b), want, "{a} vs {b}");
        }
    }
}
