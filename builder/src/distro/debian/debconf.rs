//! The environment Debian's maintainer scripts get: debconf answers every
//! question with its default, as when dpkg runs under a non-interactive
//! apt.

/// Variables added to every maintainer script's environment.
pub const ENV: [(&str, &str); 2] = [
    ("DEBIAN_FRONTEND", "noninteractive"),
    ("DEBCONF_NONINTERACTIVE_SEEN", "true"),
];
