//! The DNS wire format, as much of it as the responder needs (RFC 1035
//! §4): reading one query's header and question, and writing the reply to
//! it into a fixed buffer. Everything here faces hostile guests, so a
//! query is read without allocating and is dropped (`None`), never
//! answered, when anything about it is off: shorter than its header or
//! than the lengths it gives, longer than [`MAX_QUERY`], a response
//! rather than a query (answering those would let two responders, or a
//! spoofed source, ping-pong forever), not exactly one question, records
//! in the answer or authority sections, a truncated question, a name over
//! 255 bytes, an unknown label type, or a compression pointer that does
//! not point strictly backwards of the previous jump (which makes loops
//! impossible: every jump goes lower, and jumps are capped anyway).
//!
//! A reply repeats the question uncompressed and adds at most
//! [`MAX_ANSWERS`] address records whose owner is a pointer to it: it is
//! never bigger than the question plus those records (at most 512 bytes),
//! so the responder amplifies nothing.

use std::net::IpAddr;

/// Longest query read (the classic UDP limit; a query is far smaller).
pub const MAX_QUERY: usize = 512;
/// Most address records in one reply.
pub const MAX_ANSWERS: usize = 4;
/// Size of the buffer a reply is written to.
pub const MAX_REPLY: usize = 512;

/// Record type A (an IPv4 address).
pub const TYPE_A: u16 = 1;
/// Record type AAAA (an IPv6 address).
pub const TYPE_AAAA: u16 = 28;
/// Class IN.
pub const CLASS_IN: u16 = 1;

/// Response codes the responder uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rcode {
    /// The name exists (maybe without records of the type asked).
    NoError = 0,
    /// The name does not exist.
    NxDomain = 3,
    /// Not ours to answer: the client asks its next name server.
    Refused = 5,
}

const MAX_NAME: usize = 255;
const MAX_JUMPS: usize = 16;
const HEADER: usize = 12;

/// A name from a query: its labels in wire form (length-prefixed,
/// lowercased ASCII, no final zero), in a fixed buffer.
#[derive(Clone, PartialEq, Eq)]
pub struct Name {
    wire: [u8; MAX_NAME],
    len: usize,
}

impl std::fmt::Debug for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .labels()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect();
        write!(f, "{:?}", parts.join("."))
    }
}

impl Name {
    fn empty() -> Name {
        Name {
            wire: [0; MAX_NAME],
            len: 0,
        }
    }

    /// Appends a label; `None` when the name would exceed 255 bytes on
    /// the wire (its final zero included).
    fn push(&mut self, label: &[u8]) -> Option<()> {
        if self.len + 1 + label.len() + 1 > MAX_NAME {
            return None;
        }
        self.wire[self.len] = label.len() as u8;
        for (d, s) in self.wire[self.len + 1..].iter_mut().zip(label) {
            *d = s.to_ascii_lowercase();
        }
        self.len += 1 + label.len();
        Some(())
    }

    /// The labels, first to last, lowercased.
    pub fn labels(&self) -> impl Iterator<Item = &[u8]> {
        let mut pos = 0;
        std::iter::from_fn(move || {
            if pos >= self.len {
                return None;
            }
            let l = self.wire[pos] as usize;
            let label = &self.wire[pos + 1..pos + 1 + l];
            pos += 1 + l;
            Some(label)
        })
    }

    /// How many labels there are (0 for the root).
    pub fn label_count(&self) -> usize {
        self.labels().count()
    }
}

/// What a query asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// The query's id, repeated in the reply.
    pub id: u16,
    /// Recursion desired (repeated in the reply).
    pub rd: bool,
    /// The name asked about.
    pub name: Name,
    /// The record type asked for.
    pub qtype: u16,
    /// The class asked for.
    pub qclass: u16,
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]))
}

/// Reads the name starting at `start` of `pkt`; returns it and the offset
/// just after it (after the first pointer, if it had one).
fn read_name(pkt: &[u8], start: usize) -> Option<(Name, usize)> {
    let mut name = Name::empty();
    let mut pos = start;
    let mut end = None;
    // Every pointer must point strictly below this (the name's own start,
    // then the previous jump's target): jumps only ever go lower.
    let mut limit = start;
    let mut jumps = 0;
    loop {
        let len = *pkt.get(pos)?;
        match len & 0xc0 {
            0x00 if len == 0 => {
                return Some((name, end.unwrap_or(pos + 1)));
            }
            0x00 => {
                let l = len as usize;
                name.push(pkt.get(pos + 1..pos + 1 + l)?)?;
                pos += 1 + l;
            }
            0xc0 => {
                let target = (((len & 0x3f) as usize) << 8) | *pkt.get(pos + 1)? as usize;
                jumps += 1;
                if target >= limit || jumps > MAX_JUMPS {
                    return None;
                }
                end.get_or_insert(pos + 2);
                limit = target;
                pos = target;
            }
            // 0x40 (extended label types), 0x80 (reserved).
            _ => return None,
        }
    }
}

/// Reads a query; `None` drops it (see the module's list of reasons).
pub fn parse_query(pkt: &[u8]) -> Option<Question> {
    if pkt.len() < HEADER || pkt.len() > MAX_QUERY {
        return None;
    }
    let id = u16_at(pkt, 0)?;
    let flags = u16_at(pkt, 2)?;
    let qr = flags & 0x8000 != 0;
    let opcode = (flags >> 11) & 0xf;
    let tc = flags & 0x0200 != 0;
    if qr || opcode != 0 || tc {
        return None;
    }
    let (qd, an, ns, ar) = (
        u16_at(pkt, 4)?,
        u16_at(pkt, 6)?,
        u16_at(pkt, 8)?,
        u16_at(pkt, 10)?,
    );
    // One EDNS OPT record may follow; it is not needed and not read.
    if qd != 1 || an != 0 || ns != 0 || ar > 1 {
        return None;
    }
    let (name, at) = read_name(pkt, HEADER)?;
    Some(Question {
        id,
        rd: flags & 0x0100 != 0,
        name,
        qtype: u16_at(pkt, at)?,
        qclass: u16_at(pkt, at + 2)?,
    })
}

/// Writes the reply to `q` into `out`: `rcode`, authoritative or not, and
/// the addresses of `addrs` that match the question's type (A: IPv4,
/// AAAA: IPv6; no others), at most [`MAX_ANSWERS`], with time to live
/// `ttl` seconds. Returns the reply's length.
pub fn write_reply(
    q: &Question,
    rcode: Rcode,
    authoritative: bool,
    addrs: &[IpAddr],
    ttl: u32,
    out: &mut [u8; MAX_REPLY],
) -> usize {
    let matching = addrs
        .iter()
        .filter(|a| match q.qtype {
            TYPE_A => a.is_ipv4(),
            TYPE_AAAA => a.is_ipv6(),
            _ => false,
        })
        .take(MAX_ANSWERS);
    let mut flags: u16 = 0x8000 | rcode as u16;
    if authoritative {
        flags |= 0x0400;
    }
    if q.rd {
        flags |= 0x0100;
    }
    let mut w = Writer { out, len: 0 };
    w.put(&q.id.to_be_bytes());
    w.put(&flags.to_be_bytes());
    w.put(&1u16.to_be_bytes());
    let count_at = w.len;
    // Answer, authority and additional counts (the first is set below).
    w.put(&[0, 0, 0, 0, 0, 0]);
    w.put(&q.name.wire[..q.name.len]);
    w.put(&[0]);
    w.put(&q.qtype.to_be_bytes());
    w.put(&q.qclass.to_be_bytes());
    let mut n: u16 = 0;
    for a in matching {
        // The owner is the question's name, at offset 12.
        w.put(&[0xc0, HEADER as u8]);
        w.put(&q.qtype.to_be_bytes());
        w.put(&CLASS_IN.to_be_bytes());
        w.put(&ttl.to_be_bytes());
        match a {
            IpAddr::V4(v4) => {
                w.put(&4u16.to_be_bytes());
                w.put(&v4.octets());
            }
            IpAddr::V6(v6) => {
                w.put(&16u16.to_be_bytes());
                w.put(&v6.octets());
            }
        }
        n += 1;
    }
    w.out[count_at..count_at + 2].copy_from_slice(&n.to_be_bytes());
    w.len
}

/// Appends to a fixed buffer. The largest reply (12 + 255 + 4 + 4 * 28
/// bytes) fits [`MAX_REPLY`], so nothing is ever cut.
struct Writer<'a> {
    out: &'a mut [u8; MAX_REPLY],
    len: usize,
}

impl Writer<'_> {
    fn put(&mut self, b: &[u8]) {
        self.out[self.len..self.len + b.len()].copy_from_slice(b);
        self.len += b.len();
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A query as a stub resolver sends it (one question, RD set).
    pub(crate) fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
        let mut p = id.to_be_bytes().to_vec();
        p.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
        for l in name.split('.').filter(|l| !l.is_empty()) {
            p.push(l.len() as u8);
            p.extend_from_slice(l.as_bytes());
        }
        p.push(0);
        p.extend_from_slice(&qtype.to_be_bytes());
        p.extend_from_slice(&CLASS_IN.to_be_bytes());
        p
    }

    fn labels(q: &Question) -> Vec<String> {
        q.name
            .labels()
            .map(|l| String::from_utf8(l.to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn a_plain_query_is_read_lowercased() {
        let q = parse_query(&query(0xbeef, "Web01.VBuild", TYPE_AAAA)).unwrap();
        assert_eq!(q.id, 0xbeef);
        assert!(q.rd);
        assert_eq!(labels(&q), ["web01", "vbuild"]);
        assert_eq!((q.qtype, q.qclass), (TYPE_AAAA, CLASS_IN));
        // The root name has no labels.
        assert_eq!(
            parse_query(&query(1, "", TYPE_A))
                .unwrap()
                .name
                .label_count(),
            0
        );
    }

    #[test]
    fn an_edns_query_is_read_and_its_opt_record_ignored() {
        let mut p = query(7, "a.vbuild", TYPE_A);
        p[11] = 1;
        p.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(labels(&parse_query(&p).unwrap()), ["a", "vbuild"]);
    }

    #[test]
    fn truncated_queries_are_dropped() {
        let p = query(1, "web01.vbuild", TYPE_A);
        for cut in 0..p.len() {
            assert_eq!(parse_query(&p[..cut]), None, "cut at {cut}");
        }
        assert!(parse_query(&p).is_some());
        // A label longer than what is left.
        let mut bad = p.clone();
        bad[12] = 60;
        assert_eq!(parse_query(&bad), None);
    }

    #[test]
    fn responses_odd_opcodes_and_huge_counts_are_dropped() {
        let p = query(1, "a.vbuild", TYPE_A);
        let with = |i: usize, v: u8| {
            let mut b = p.clone();
            b[i] = v;
            b
        };
        assert_eq!(parse_query(&with(2, 0x81)), None, "QR set: a response");
        assert_eq!(parse_query(&with(2, 0x29)), None, "opcode 5 (update)");
        assert_eq!(parse_query(&with(2, 0x03)), None, "TC set");
        assert_eq!(parse_query(&with(4, 0xff)), None, "65281 questions");
        assert_eq!(parse_query(&with(5, 0)), None, "no question");
        assert_eq!(parse_query(&with(5, 2)), None, "two questions");
        assert_eq!(parse_query(&with(7, 1)), None, "an answer in a query");
        assert_eq!(parse_query(&with(9, 1)), None, "an authority record");
        assert_eq!(parse_query(&with(10, 0xff)), None, "huge additional count");
        let mut big = p.clone();
        big.resize(MAX_QUERY + 1, 0);
        assert_eq!(parse_query(&big), None, "over 512 bytes");
    }

    #[test]
    fn compression_loops_and_forward_pointers_are_refused() {
        let header = |rest: &[u8]| {
            let mut p = vec![0, 1, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0];
            p.extend_from_slice(rest);
            p
        };
        // A pointer to itself.
        assert_eq!(parse_query(&header(&[0xc0, 12, 0, 1, 0, 1])), None);
        // A label, then a pointer back to that label: a loop.
        assert_eq!(parse_query(&header(&[1, b'a', 0xc0, 12, 0, 1, 0, 1])), None);
        // A forward pointer.
        assert_eq!(
            parse_query(&header(&[0xc0, 14, 1, b'a', 0, 0, 1, 0, 1])),
            None
        );
        // Past the end.
        assert_eq!(parse_query(&header(&[0xc1, 0xff, 0, 1, 0, 1])), None);
        // Reserved label types.
        assert_eq!(parse_query(&header(&[0x41, b'a', 0, 0, 1, 0, 1])), None);
        assert_eq!(parse_query(&header(&[0x81, b'a', 0, 0, 1, 0, 1])), None);
        // A backward pointer is read (into the header here: bytes 4.. are
        // "\0\x01\0\0...": label of length 0 = the root after one jump).
        let q = parse_query(&header(&[1, b'a', 0xc0, 6, 0, 1, 0, 1])).unwrap();
        assert_eq!(labels(&q), ["a"]);
    }

    #[test]
    fn names_over_255_bytes_are_refused() {
        let long = [
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(61),
        ]
        .join(".");
        assert!(
            parse_query(&query(1, &long, TYPE_A)).is_some(),
            "255 on the wire"
        );
        let longer = format!("{long}e");
        let mut p = query(1, &longer, TYPE_A);
        assert_eq!(parse_query(&p), None, "256 on the wire");
        // A label of 64 is a reserved type (0x40) anyway.
        p = query(1, &"x".repeat(64), TYPE_A);
        assert_eq!(parse_query(&p), None);
    }

    #[test]
    fn garbage_never_panics() {
        // A fixed pseudo-random sequence (no randomness in tests).
        let mut x: u32 = 0x1234_5678;
        let mut buf = [0u8; 600];
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let len = (x as usize) % buf.len();
            for b in buf.iter_mut().take(len) {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *b = x as u8;
            }
            // Mostly well-formed headers, so the name reader is exercised.
            if len >= 12 && x & 1 == 0 {
                buf[2] = 0x01;
                buf[3] = 0;
                buf[4..12].copy_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
            }
            let _ = parse_query(&buf[..len]);
        }
    }

    fn reply(q: &Question, rcode: Rcode, addrs: &[IpAddr]) -> Vec<u8> {
        let mut out = [0u8; MAX_REPLY];
        let n = write_reply(q, rcode, true, addrs, 30, &mut out);
        out[..n].to_vec()
    }

    #[test]
    fn replies_echo_the_question_and_carry_only_matching_addresses() {
        let p = query(0x4242, "web01.vbuild", TYPE_A);
        let q = parse_query(&p).unwrap();
        let addrs: Vec<IpAddr> = vec!["10.77.0.11".parse().unwrap(), "fd77::b".parse().unwrap()];
        let r = reply(&q, Rcode::NoError, &addrs);
        assert_eq!(&r[..2], &[0x42, 0x42]);
        assert_eq!(r[2] & 0x80, 0x80, "QR");
        assert_eq!(r[2] & 0x04, 0x04, "AA");
        assert_eq!(r[2] & 0x01, 0x01, "RD repeated");
        assert_eq!(r[3] & 0x0f, 0, "NOERROR");
        assert_eq!(&r[4..8], &[0, 1, 0, 1], "one question, one answer");
        assert_eq!(&r[12..p.len()], &p[12..], "the question as asked");
        let a = &r[p.len()..];
        assert_eq!(&a[..2], &[0xc0, 12]);
        assert_eq!(&a[2..4], &TYPE_A.to_be_bytes());
        assert_eq!(&a[10..12], &[0, 4]);
        assert_eq!(&a[12..16], &[10, 77, 0, 11]);
        assert_eq!(r.len(), p.len() + 16);

        let q6 = parse_query(&query(1, "web01", TYPE_AAAA)).unwrap();
        let r6 = reply(&q6, Rcode::NoError, &addrs);
        assert_eq!(&r6[6..8], &[0, 1]);
        assert_eq!(
            &r6[r6.len() - 16..],
            &addrs[1]
                .to_string()
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets()
        );

        // Other types: the name exists, no records.
        let mx = parse_query(&query(1, "web01", 15)).unwrap();
        assert_eq!(&reply(&mx, Rcode::NoError, &addrs)[6..8], &[0, 0]);
        let nx = reply(&q, Rcode::NxDomain, &[]);
        assert_eq!((nx[3] & 0x0f, &nx[6..8]), (3, &[0u8, 0][..]));
    }

    #[test]
    fn replies_are_never_much_bigger_than_the_question() {
        let many: Vec<IpAddr> = (1..=50)
            .map(|i| format!("10.0.0.{i}").parse().unwrap())
            .collect();
        for name in ["a", "web01.vbuild", &"x".repeat(63)] {
            let p = query(1, name, TYPE_A);
            let q = parse_query(&p).unwrap();
            let r = reply(&q, Rcode::NoError, &many);
            assert_eq!(&r[6..8], &(MAX_ANSWERS as u16).to_be_bytes());
            assert_eq!(r.len(), p.len() + MAX_ANSWERS * 16);
        }
        // The longest question with the most (IPv6) answers still fits.
        let long = [
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(61),
        ]
        .join(".");
        let q = parse_query(&query(1, &long, TYPE_AAAA)).unwrap();
        let v6: Vec<IpAddr> = (1..=9)
            .map(|i| format!("fd00::{i}").parse().unwrap())
            .collect();
        assert!(reply(&q, Rcode::NoError, &v6).len() <= MAX_REPLY);
    }
}
