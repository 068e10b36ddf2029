//! Netlink attribute encoding for nf_tables messages: type-length-value,
//! padded to four bytes, nested attributes flagged NLA_F_NESTED. Numbers in
//! nf_tables attributes are big endian; register contents are raw bytes.

/// NLA_F_NESTED: the attribute holds attributes.
const NESTED: u16 = 0x8000;

/// A growing attribute stream.
#[derive(Default, Debug, Clone)]
pub(crate) struct Attrs(pub(crate) Vec<u8>);

impl Attrs {
    pub(crate) fn new() -> Attrs {
        Attrs(Vec::new())
    }

    pub(crate) fn bytes(&mut self, kind: u16, data: &[u8]) -> &mut Self {
        let len = 4 + data.len();
        self.0.extend_from_slice(&(len as u16).to_ne_bytes());
        self.0.extend_from_slice(&kind.to_ne_bytes());
        self.0.extend_from_slice(data);
        while self.0.len() & 3 != 0 {
            self.0.push(0);
        }
        self
    }

    /// A NUL-terminated string.
    pub(crate) fn str(&mut self, kind: u16, s: &str) -> &mut Self {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        self.bytes(kind, &v)
    }

    /// A big-endian u32.
    pub(crate) fn be32(&mut self, kind: u16, v: u32) -> &mut Self {
        self.bytes(kind, &v.to_be_bytes())
    }

    pub(crate) fn nested(&mut self, kind: u16, inner: &Attrs) -> &mut Self {
        self.bytes(kind | NESTED, &inner.0)
    }
}

/// Walks an attribute stream: yields (type without flags, payload).
pub(crate) fn parse(mut buf: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while buf.len() >= 4 {
        let len = u16::from_ne_bytes([buf[0], buf[1]]) as usize;
        let kind = u16::from_ne_bytes([buf[2], buf[3]]) & 0x3fff;
        if len < 4 || len > buf.len() {
            break;
        }
        out.push((kind, &buf[4..len]));
        let next = (len + 3) & !3;
        buf = &buf[next.min(buf.len())..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_to_four_and_round_trips() {
        let mut a = Attrs::new();
        a.str(1, "ab").be32(2, 7);
        assert_eq!(a.0.len(), 8 + 8);
        let p = parse(&a.0);
        assert_eq!(p[0], (1, &b"ab\0"[..]));
        assert_eq!(p[1], (2, &7u32.to_be_bytes()[..]));
    }
}
