//! Metalink 3.0 as Fedora's MirrorManager serves it for `repomd.xml`: the
//! file's size and sha256 (plus `alternates`, the recent older versions
//! librepo also accepts while mirrors catch up) and the mirrors' URLs.
//! Fedora signs no metadata: this document, fetched over HTTPS, is what
//! ties `repomd.xml` to the release.

use quick_xml::events::Event;
use quick_xml::Reader;

/// One acceptable `repomd.xml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// Its size in bytes, when given.
    pub size: Option<u64>,
    /// Its lowercase hex sha256.
    pub sha256: String,
}

/// What a metalink says about `repomd.xml`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metalink {
    /// The current version first, then the alternates.
    pub expected: Vec<Expected>,
    /// Repository base URLs (the URL with `repodata/repomd.xml` removed), by
    /// preference, highest first.
    pub baseurls: Vec<String>,
}

impl Metalink {
    /// Whether `bytes` is one of the versions the metalink accepts.
    pub fn accepts(&self, bytes: &[u8]) -> bool {
        let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes));
        self.expected
            .iter()
            .any(|e| e.sha256 == sha && e.size.is_none_or(|s| s == bytes.len() as u64))
    }
}

/// Parses a metalink document; refuses one without a sha256 for `repomd.xml`.
pub fn parse(text: &str) -> Result<Metalink, String> {
    let mut reader = Reader::from_str(text);
    let mut path: Vec<String> = Vec::new();
    let mut out = Metalink::default();
    let mut in_repomd = false;
    let mut current = (None::<u64>, None::<String>);
    let mut hash_type = String::new();
    let mut pref = 0i64;
    let mut urls: Vec<(i64, String)> = Vec::new();
    loop {
        let ev = reader.read_event().map_err(|e| format!("not XML: {e}"))?;
        match ev {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                let attr = |k: &str| {
                    e.attributes()
                        .flatten()
                        .find(|a| a.key.local_name().as_ref() == k.as_bytes())
                        .map(|a| String::from_utf8_lossy(&a.value).into_owned())
                };
                match name.as_str() {
                    "file" => in_repomd = attr("name").as_deref() == Some("repomd.xml"),
                    "hash" => hash_type = attr("type").unwrap_or_default(),
                    "url" => pref = attr("preference").and_then(|p| p.parse().ok()).unwrap_or(0),
                    _ => {}
                }
                path.push(name);
            }
            Event::End(_) => {
                let name = path.pop().unwrap_or_default();
                // Size comes before verification, in the file and in each alternate.
                if in_repomd && name == "verification" {
                    if let (size, Some(sha)) = std::mem::take(&mut current) {
                        out.expected.push(Expected { size, sha256: sha });
                    }
                }
                if name == "file" {
                    in_repomd = false;
                }
            }
            Event::Text(t) if in_repomd => {
                let v = t
                    .decode()
                    .map_err(|e| format!("bad text: {e}"))?
                    .trim()
                    .to_string();
                match path.last().map(String::as_str) {
                    Some("size") => current.0 = v.parse().ok(),
                    Some("hash") if hash_type == "sha256" => current.1 = Some(v.to_lowercase()),
                    Some("url") => {
                        if let Some(base) = v.strip_suffix("repodata/repomd.xml") {
                            urls.push((pref, base.to_string()));
                        }
                    }
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if out.expected.is_empty() {
        return Err("gives no sha256 for repomd.xml".into());
    }
    urls.sort_by_key(|u| std::cmp::Reverse(u.0));
    out.baseurls = urls.into_iter().map(|(_, u)| u).collect();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<metalink version="3.0" xmlns="http://www.metalinker.org/" xmlns:mm0="http://fedorahosted.org/mirrormanager">
 <files>
  <file name="repomd.xml">
   <mm0:timestamp>1700000000</mm0:timestamp>
   <size>4321</size>
   <verification>
    <hash type="md5">00</hash>
    <hash type="sha256">AAAA</hash>
   </verification>
   <mm0:alternates>
    <mm0:alternate>
     <mm0:timestamp>1690000000</mm0:timestamp>
     <size>4000</size>
     <verification><hash type="sha256">bbbb</hash></verification>
    </mm0:alternate>
   </mm0:alternates>
   <resources maxconnections="1">
    <url protocol="https" type="https" location="DE" preference="90">https://b.example/f/repodata/repomd.xml</url>
    <url protocol="https" type="https" location="US" preference="100">https://a.example/f/repodata/repomd.xml</url>
   </resources>
  </file>
 </files>
</metalink>"#;

    #[test]
    fn current_and_alternate_hashes_and_mirrors_by_preference() {
        let m = parse(DOC).unwrap();
        assert_eq!(
            m.expected,
            [
                Expected {
                    size: Some(4321),
                    sha256: "aaaa".into()
                },
                Expected {
                    size: Some(4000),
                    sha256: "bbbb".into()
                },
            ]
        );
        assert_eq!(m.baseurls, ["https://a.example/f/", "https://b.example/f/"]);
        assert!(parse("<metalink><files></files></metalink>")
            .unwrap_err()
            .contains("no sha256"));
    }
}
