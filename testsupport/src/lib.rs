//! Test-only support shared by every crate's tests (a dev-dependency only):
//! [`require`] for preconditions and [`http::TestServer`], a loopback file
//! server. Plain `std`, so kernel and cache tests can use it cheaply; the
//! `tls` feature adds [`tls::TlsTestServer`], an https front for it.

pub mod http;
#[cfg(feature = "tls")]
pub mod tls;

/// Whether this run is CI (`CI=true`, as CI systems and `.ci/run` set it).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Checks a test's precondition. When `cond` holds, returns `true`. When it
/// does not, under CI it panics (a missing precondition is a failure
/// there), and otherwise prints a loud `SKIPPED:` line naming `what` and
/// returns `false`, so the caller returns early:
///
/// ```ignore
/// if !vbuild_testsupport::require(is_root(), "root (run the tests as root, e.g. sudo ./test.sh)") {
///     return;
/// }
/// ```
///
/// `what` says what is missing and how to get it.
#[track_caller]
pub fn require(cond: bool, what: &str) -> bool {
    if cond {
        return true;
    }
    let at = std::panic::Location::caller();
    let test = std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_string();
    if in_ci() {
        panic!("precondition missing under CI=true for {test} ({at}): {what}");
    }
    eprintln!("SKIPPED: {test} ({at}): {what}");
    false
}

/// Whether the tests run as root (uid 0).
pub fn is_root() -> bool {
    // SAFETY: getuid has no preconditions; declared here to stay libc-free.
    extern "C" {
        fn getuid() -> u32;
    }
    unsafe { getuid() == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_met_precondition_passes() {
        assert!(require(true, "nothing"));
    }

    #[test]
    fn a_missing_precondition_skips_loudly_or_fails_in_ci() {
        let outcome = std::panic::catch_unwind(|| require(false, "a unicorn (none here)"));
        if in_ci() {
            let err = outcome.unwrap_err();
            let msg = err.downcast_ref::<String>().unwrap();
            assert!(msg.contains("a unicorn (none here)"), "{msg}");
        } else {
            assert_eq!(outcome.ok(), Some(false));
        }
    }
}
