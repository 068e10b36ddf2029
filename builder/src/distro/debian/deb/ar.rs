//! The `ar` archive a .deb is: `!<arch>\n`, then members, each a 60-byte
//! header (name, mtime, uid, gid, mode, size, "`\n") followed by the data,
//! padded to an even length. Read as a stream so data.tar is never held in
//! memory whole.

use std::io::{self, Read};

/// The global header of every ar archive.
const MAGIC: &[u8; 8] = b"!<arch>\n";

/// One member header.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    /// Member name without GNU's trailing `/` or padding.
    pub name: String,
    /// Data size in bytes.
    pub size: u64,
}

/// Reads members of an ar archive one after the other.
pub(crate) struct ArReader<R: Read> {
    inner: R,
    /// Bytes of the current member (plus padding) not yet consumed.
    pending: u64,
}

impl<R: Read> ArReader<R> {
    /// Checks the global header.
    pub fn new(mut inner: R) -> io::Result<Self> {
        let mut m = [0u8; 8];
        inner
            .read_exact(&mut m)
            .map_err(|_| bad("too short for an ar archive"))?;
        if &m != MAGIC {
            return Err(bad("not an ar archive (no !<arch> header)"));
        }
        Ok(ArReader { inner, pending: 0 })
    }

    /// The next member's header, skipping whatever of the previous member
    /// was not read; `None` at the end.
    pub fn next_member(&mut self) -> io::Result<Option<Member>> {
        if self.pending > 0 {
            io::copy(&mut (&mut self.inner).take(self.pending), &mut io::sink())?;
            self.pending = 0;
        }
        let mut h = [0u8; 60];
        let mut got = 0;
        while got < 60 {
            let n = self.inner.read(&mut h[got..])?;
            if n == 0 {
                break;
            }
            got += n;
        }
        if got == 0 {
            return Ok(None);
        }
        if got < 60 {
            return Err(bad("truncated member header"));
        }
        if &h[58..60] != b"`\n" {
            return Err(bad("corrupt member header (bad terminator)"));
        }
        let name = String::from_utf8_lossy(&h[0..16])
            .trim_end()
            .trim_end_matches('/')
            .to_string();
        let size: u64 = std::str::from_utf8(&h[48..58])
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| bad(&format!("member {name}: size is not a number")))?;
        self.pending = size + (size & 1);
        Ok(Some(Member { name, size }))
    }

    /// A reader over the current member's data.
    pub fn data(&mut self, member: &Member) -> MemberData<'_, R> {
        MemberData {
            ar: self,
            left: member.size,
        }
    }
}

/// The data of the current member; reading it reduces what `next_member`
/// has to skip.
pub(crate) struct MemberData<'a, R: Read> {
    ar: &'a mut ArReader<R>,
    left: u64,
}

impl<R: Read> Read for MemberData<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(self.left as usize);
        let n = self.ar.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "member data truncated",
            ));
        }
        self.left -= n as u64;
        self.ar.pending -= n as u64;
        Ok(n)
    }
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, data: &[u8]) -> Vec<u8> {
        let mut v = format!(
            "{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
            name,
            0,
            0,
            0,
            "100644",
            data.len()
        )
        .into_bytes();
        v.extend_from_slice(data);
        if data.len() % 2 == 1 {
            v.push(b'\n');
        }
        v
    }

    #[test]
    fn reads_members_and_skips_padding() {
        let mut a = MAGIC.to_vec();
        a.extend(member("debian-binary", b"2.0\n"));
        a.extend(member("odd/", b"abc"));
        a.extend(member("last", b"xy"));
        let mut r = ArReader::new(&a[..]).unwrap();
        let m = r.next_member().unwrap().unwrap();
        assert_eq!((m.name.as_str(), m.size), ("debian-binary", 4));
        let mut s = String::new();
        r.data(&m).read_to_string(&mut s).unwrap();
        assert_eq!(s, "2.0\n");
        let m = r.next_member().unwrap().unwrap();
        assert_eq!(m.name, "odd");
        // not read: must be skipped with its padding byte
        let m = r.next_member().unwrap().unwrap();
        assert_eq!(m.name, "last");
        let mut v = vec![];
        r.data(&m).read_to_end(&mut v).unwrap();
        assert_eq!(v, b"xy");
        assert!(r.next_member().unwrap().is_none());
    }

    #[test]
    fn refuses_garbage() {
        assert!(ArReader::new(&b"PK\x03\x04zipzip"[..]).is_err());
        let mut a = MAGIC.to_vec();
        a.extend_from_slice(b"short");
        let mut r = ArReader::new(&a[..]).unwrap();
        assert!(r.next_member().is_err());
    }
}
