//! What the responder answers: the `vbuild` zone of one network, built
//! from the network's address leases.
//!
//! | question | answer |
//! |---|---|
//! | `NAME.vbuild`, `NAME` of a guest on the network, A/AAAA | its addresses of that family (authoritative) |
//! | the same name, any other type | no records, NOERROR |
//! | `vbuild` itself | no records, NOERROR |
//! | any other name under `vbuild` | NXDOMAIN (authoritative) |
//! | any other name, or a class other than IN | REFUSED |
//!
//! Everything else is REFUSED rather than forwarded to the network's
//! resolvers: a forwarder facing hostile guests would have to keep a
//! table of outstanding upstream queries that a flood fills, would relay
//! whatever the guest asks to the upstream resolvers from the host's own
//! address, and could answer with upstream replies far bigger than the
//! question. A guest's resolv.conf lists the host's resolvers after the
//! gateway, and REFUSED makes its resolver (glibc, musl) ask the next one
//! at once, so only the guests' own names cost a round trip here.

use super::packet::{self, Question, Rcode, CLASS_IN, MAX_REPLY};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// The zone's name.
pub const ZONE: &[u8] = super::ZONE_NAME.as_bytes();
/// Time to live of every answer: short, so an address changed with
/// `vbuild set` is seen soon.
pub const TTL: u32 = 30;

/// Guest names and their addresses on one network.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    hosts: BTreeMap<String, Vec<IpAddr>>,
}

impl Table {
    /// A table of `(guest, address)` pairs (names are lowercase guest names).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, IpAddr)>) -> Table {
        let mut t = Table::default();
        for (g, a) in pairs {
            let v = t.hosts.entry(g.to_ascii_lowercase()).or_default();
            if !v.contains(&a) {
                v.push(a);
            }
        }
        t
    }

    /// How many guests it names.
    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    /// Whether it names no guest.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    fn get(&self, label: &[u8]) -> Option<&[IpAddr]> {
        let s = std::str::from_utf8(label).ok()?;
        self.hosts.get(s).map(|v| v.as_slice())
    }

    /// What to answer `q` (see the module's table).
    pub fn decide(&self, q: &Question) -> (Rcode, bool, &[IpAddr]) {
        if q.qclass != CLASS_IN {
            return (Rcode::Refused, false, &[]);
        }
        let labels: Vec<&[u8]> = q.name.labels().collect();
        match labels.as_slice() {
            [z] if *z == ZONE => (Rcode::NoError, true, &[]),
            [host, z] if *z == ZONE => match self.get(host) {
                Some(a) => (Rcode::NoError, true, a),
                None => (Rcode::NxDomain, true, &[]),
            },
            [.., z] if *z == ZONE => (Rcode::NxDomain, true, &[]),
            [host] => match self.get(host) {
                Some(a) => (Rcode::NoError, true, a),
                None => (Rcode::Refused, false, &[]),
            },
            _ => (Rcode::Refused, false, &[]),
        }
    }

    /// The reply to datagram `pkt` written into `out`, with its length;
    /// `None` when the datagram is to be dropped unanswered.
    pub fn answer(&self, pkt: &[u8], out: &mut [u8; MAX_REPLY]) -> Option<usize> {
        let q = packet::parse_query(pkt)?;
        let (rcode, aa, addrs) = self.decide(&q);
        Some(packet::write_reply(&q, rcode, aa, addrs, TTL, out))
    }
}

#[cfg(test)]
mod tests {
    use super::super::packet::tests::query;
    use super::super::packet::{TYPE_A, TYPE_AAAA};
    use super::*;

    fn table() -> Table {
        Table::from_pairs([
            ("web01", "10.77.0.11".parse().unwrap()),
            ("web01", "fd77::b".parse().unwrap()),
            ("db", "10.77.0.12".parse().unwrap()),
        ])
    }

    fn ask(t: &Table, name: &str, qtype: u16) -> (u8, Vec<u8>) {
        let mut out = [0u8; MAX_REPLY];
        let p = query(9, name, qtype);
        let n = t.answer(&p, &mut out).expect("answered");
        let r = &out[..n];
        (r[3] & 0x0f, r[p.len()..].to_vec())
    }

    #[test]
    fn guests_are_found_by_name_and_name_dot_vbuild_in_any_case() {
        let t = table();
        for name in ["web01", "web01.vbuild", "WEB01.VBUILD", "Web01.vbuild."] {
            let (rc, ans) = ask(&t, name, TYPE_A);
            assert_eq!(rc, 0, "{name}");
            assert_eq!(&ans[ans.len() - 4..], &[10, 77, 0, 11], "{name}");
        }
        let (rc, ans) = ask(&t, "web01.vbuild", TYPE_AAAA);
        assert_eq!(rc, 0);
        assert_eq!(ans.len(), 28);
        // db has no IPv6 address: the name exists, no records.
        let (rc, ans) = ask(&t, "db.vbuild", TYPE_AAAA);
        assert_eq!((rc, ans.len()), (0, 0));
    }

    #[test]
    fn other_vbuild_names_do_not_exist_and_the_rest_is_refused() {
        let t = table();
        assert_eq!(ask(&t, "nosuch.vbuild", TYPE_A).0, 3);
        assert_eq!(ask(&t, "a.web01.vbuild", TYPE_A).0, 3);
        assert_eq!(ask(&t, "vbuild", TYPE_A), (0, vec![]));
        assert_eq!(ask(&t, "deb.debian.org", TYPE_A).0, 5);
        assert_eq!(
            ask(&t, "nosuch", TYPE_A).0,
            5,
            "a bare unknown name may be a TLD"
        );
        assert_eq!(ask(&t, "", TYPE_A).0, 5);
        assert_eq!(ask(&t, "web01.vbuild.example", TYPE_A).0, 5);
        // Class CH (version.bind and friends): not ours.
        let mut p = query(1, "web01.vbuild", TYPE_A);
        let n = p.len();
        p[n - 1] = 3;
        let mut out = [0u8; MAX_REPLY];
        let len = t.answer(&p, &mut out).unwrap();
        assert_eq!((out[3] & 0x0f, len), (5, n));
    }

    #[test]
    fn malformed_queries_get_no_reply() {
        let mut out = [0u8; MAX_REPLY];
        assert_eq!(table().answer(&[0u8; 11], &mut out), None);
        let mut p = query(1, "web01", TYPE_A);
        p[2] |= 0x80;
        assert_eq!(table().answer(&p, &mut out), None);
    }
}
