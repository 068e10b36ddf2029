//! The values tailoring fills into templates, validated before anything is
//! written so a bad value changes nothing.

use serde::Serialize;
use std::net::IpAddr;

/// A guest's network settings as tailoring writes them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetVars {
    /// Addresses in CIDR form (`10.77.0.11/24`, `fd77::11/64`).
    pub addresses: Vec<String>,
    /// IPv4 default gateway.
    pub gateway4: Option<String>,
    /// IPv6 default gateway.
    pub gateway6: Option<String>,
    /// Name servers.
    pub dns: Vec<String>,
    /// Search domains for single-label names (`vbuild`: the guest's
    /// network answers its guests' names under it).
    pub search: Vec<String>,
    /// Ask DHCP for an address (as well as any static ones).
    pub dhcp: bool,
}

/// Everything the tailoring profile's templates may use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TailorVars {
    /// The guest's name, used as hostname.
    pub hostname: String,
    /// Release codename (`bookworm`).
    pub release: String,
    /// Mirror URL for apt (`http://deb.debian.org/debian`).
    pub mirror: String,
    /// Security mirror URL (`http://security.debian.org/debian-security`).
    pub security_mirror: Option<String>,
    /// Suites on the mirror (`bookworm`, `bookworm-updates`).
    pub suites: Vec<String>,
    /// Suites on the security mirror (`bookworm-security`); empty for sid.
    pub security_suites: Vec<String>,
    /// Components (`main`).
    pub components: Vec<String>,
    /// Network settings.
    pub net: NetVars,
}

/// The template context: the variables plus derived lines.
#[derive(Debug, Serialize)]
pub(crate) struct Context<'a> {
    hostname: &'a str,
    release: &'a str,
    mirror: &'a str,
    security_mirror: &'a str,
    suites: &'a [String],
    suites_line: String,
    security_suites: &'a [String],
    security_suites_line: String,
    components: &'a [String],
    components_line: String,
    #[serde(flatten)]
    net: NetContext<'a>,
}

/// The network part of the template context.
#[derive(Debug, Serialize)]
pub(crate) struct NetContext<'a> {
    addresses: &'a [String],
    addresses4: Vec<&'a str>,
    addresses6: Vec<&'a str>,
    gateway4: &'a str,
    gateway6: &'a str,
    dns: &'a [String],
    /// The search domains, space-separated (empty: no `search` line).
    search: String,
    dhcp: bool,
    /// ifupdown configures eth0 (no networkd to do it); otherwise its
    /// `interfaces` holds only lo, so two managers never fight over eth0.
    pub(crate) eth0_by_ifupdown: bool,
}

impl TailorVars {
    /// Checks every value; the error names the field and the fix.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let h = &self.hostname;
        if h.is_empty()
            || h.len() > 63
            || h.starts_with('-')
            || !h
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(format!(
                "hostname {h:?} is not a valid host name (use a-z, 0-9 and -, at most 63)"
            ));
        }
        if self.release.is_empty()
            || !self
                .release
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-.".contains(c))
        {
            return Err(format!(
                "release {:?} is not a codename (like bookworm)",
                self.release
            ));
        }
        check_url("mirror", &self.mirror)?;
        if let Some(m) = &self.security_mirror {
            check_url("security mirror", m)?;
        } else if !self.security_suites.is_empty() {
            return Err(
                "security suites given without a security mirror (set security_mirror)".into(),
            );
        }
        for (what, list) in [
            ("suite", &self.suites),
            ("security suite", &self.security_suites),
            ("component", &self.components),
        ] {
            for s in list.iter() {
                if s.is_empty() || s.contains(char::is_whitespace) {
                    return Err(format!("{what} {s:?} is empty or has spaces"));
                }
            }
        }
        if self.suites.is_empty() || self.components.is_empty() {
            return Err(
                "no suites or no components for sources.list (the recipe must name them)".into(),
            );
        }
        self.net.validate()
    }

    pub(crate) fn context(&self) -> Context<'_> {
        Context {
            hostname: &self.hostname,
            release: &self.release,
            mirror: &self.mirror,
            security_mirror: self.security_mirror.as_deref().unwrap_or(""),
            suites: &self.suites,
            suites_line: self.suites.join(" "),
            security_suites: &self.security_suites,
            security_suites_line: self.security_suites.join(" "),
            components: &self.components,
            components_line: self.components.join(" "),
            net: self.net.context(),
        }
    }
}

impl NetVars {
    /// Checks addresses (CIDR), gateways and name servers (IP addresses).
    pub(crate) fn validate(&self) -> Result<(), String> {
        for a in &self.addresses {
            let (ip, prefix) = a.split_once('/').ok_or_else(|| {
                format!("address {a:?} has no prefix length (like 10.77.0.11/24)")
            })?;
            let ip: IpAddr = ip
                .parse()
                .map_err(|_| format!("address {a:?} is not an IP address (like 10.77.0.11/24)"))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            match prefix.parse::<u8>() {
                Ok(p) if p <= max => {}
                _ => return Err(format!("address {a:?}: prefix length must be 0..={max}")),
            }
        }
        if let Some(g) = &self.gateway4 {
            match g.parse::<IpAddr>() {
                Ok(IpAddr::V4(_)) => {}
                _ => return Err(format!("IPv4 gateway {g:?} is not an IPv4 address")),
            }
        }
        if let Some(g) = &self.gateway6 {
            match g.parse::<IpAddr>() {
                Ok(IpAddr::V6(_)) => {}
                _ => return Err(format!("IPv6 gateway {g:?} is not an IPv6 address")),
            }
        }
        for d in &self.dns {
            d.parse::<IpAddr>()
                .map_err(|_| format!("DNS server {d:?} is not an IP address (like 9.9.9.9)"))?;
        }
        for s in &self.search {
            let ok = !s.is_empty()
                && s.len() <= 253
                && s.split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                });
            if !ok {
                return Err(format!(
                    "search domain {s:?} is not a domain name (like vbuild or corp.example)"
                ));
            }
        }
        Ok(())
    }

    pub(crate) fn context(&self) -> NetContext<'_> {
        let is6 = |a: &&String| a.contains(':');
        NetContext {
            addresses: &self.addresses,
            addresses4: self
                .addresses
                .iter()
                .filter(|a| !is6(a))
                .map(|s| s.as_str())
                .collect(),
            addresses6: self
                .addresses
                .iter()
                .filter(is6)
                .map(|s| s.as_str())
                .collect(),
            gateway4: self.gateway4.as_deref().unwrap_or(""),
            gateway6: self.gateway6.as_deref().unwrap_or(""),
            dns: &self.dns,
            search: self.search.join(" "),
            dhcp: self.dhcp,
            eth0_by_ifupdown: true,
        }
    }
}

fn check_url(what: &str, u: &str) -> Result<(), String> {
    let rest = u
        .strip_prefix("http://")
        .or_else(|| u.strip_prefix("https://"))
        .ok_or_else(|| {
            format!("{what} {u:?} is not an http(s) URL (like http://deb.debian.org/debian)")
        })?;
    if rest.is_empty() || u.contains(char::is_whitespace) {
        return Err(format!("{what} {u:?} has no host or contains spaces"));
    }
    Ok(())
}
