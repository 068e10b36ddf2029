//! Decompression of a .deb's control.tar.* and data.tar.* members, chosen
//! by the member name's suffix as dpkg-deb does.

use std::io::{self, BufReader, Read};

/// The compressions a .deb member may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// `.tar` as is.
    None,
    /// `.tar.gz`.
    Gzip,
    /// `.tar.xz` (Debian's default).
    Xz,
    /// `.tar.zst` (Ubuntu's default).
    Zstd,
    /// `.tar.lzma` (legacy).
    Lzma,
}

impl Compression {
    /// The compression of member `name` whose stem is `stem`
    /// (`control.tar` or `data.tar`); `None` if it is not such a member.
    pub(crate) fn of_member(name: &str, stem: &str) -> Option<Result<Compression, String>> {
        let rest = name.strip_prefix(stem)?;
        Some(match rest {
            "" => Ok(Compression::None),
            ".gz" => Ok(Compression::Gzip),
            ".xz" => Ok(Compression::Xz),
            ".zst" => Ok(Compression::Zstd),
            ".lzma" => Ok(Compression::Lzma),
            other => Err(format!("{stem}{other}")),
        })
    }

    /// The member name suffix (`.xz`).
    pub fn suffix(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => ".gz",
            Compression::Xz => ".xz",
            Compression::Zstd => ".zst",
            Compression::Lzma => ".lzma",
        }
    }
}

/// Wraps `r` in the decoder for `c`.
pub(crate) fn decoder<'a, R: Read + 'a>(c: Compression, r: R) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match c {
        Compression::None => Box::new(r),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(r))),
        Compression::Xz => Box::new(xz2::read::XzDecoder::new_multi_decoder(
            BufReader::with_capacity(256 * 1024, r),
        )),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(r)?),
        Compression::Lzma => {
            let s = xz2::stream::Stream::new_lzma_decoder(u64::MAX).map_err(io::Error::other)?;
            Box::new(xz2::read::XzDecoder::new_stream(BufReader::new(r), s))
        }
    })
}

/// `data` compressed as `c`: used by the test kit (vbuild-testkit) to build .debs.
pub fn encode(c: Compression, data: &[u8]) -> io::Result<Vec<u8>> {
    use std::io::Write;
    Ok(match c {
        Compression::None => data.to_vec(),
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data)?;
            e.finish()?
        }
        Compression::Xz => {
            let mut e = xz2::write::XzEncoder::new(Vec::new(), 1);
            e.write_all(data)?;
            e.finish()?
        }
        Compression::Zstd => zstd::encode_all(data, 3)?,
        Compression::Lzma => {
            let opts = xz2::stream::LzmaOptions::new_preset(1).map_err(io::Error::other)?;
            let s = xz2::stream::Stream::new_lzma_encoder(&opts).map_err(io::Error::other)?;
            let mut e = xz2::write::XzEncoder::new_stream(Vec::new(), s);
            e.write_all(data)?;
            e.finish()?
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_compression_round_trips() {
        let data = b"hello hello hello hello".repeat(100);
        for c in [
            Compression::None,
            Compression::Gzip,
            Compression::Xz,
            Compression::Zstd,
            Compression::Lzma,
        ] {
            let enc = encode(c, &data).unwrap();
            let mut out = vec![];
            decoder(c, &enc[..]).unwrap().read_to_end(&mut out).unwrap();
            assert_eq!(out, data, "{c:?}");
        }
        assert_eq!(
            Compression::of_member("data.tar.xz", "data.tar"),
            Some(Ok(Compression::Xz))
        );
        assert_eq!(
            Compression::of_member("data.tar.bz2", "data.tar"),
            Some(Err("data.tar.bz2".into()))
        );
        assert_eq!(Compression::of_member("debian-binary", "data.tar"), None);
    }
}
