//! `repodata/`: `repomd.xml` (which metadata files exist, with their
//! sha256), `primary.xml` (every package: its file, sha256 and
//! dependencies) and comps (`group` data: the `core` group). XML read with
//! quick-xml; only what resolution and verification need is kept.

use super::deps::{Dep, Op};
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

/// One metadata file `repomd.xml` lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFile {
    /// `primary`, `group`, `group_xz`...
    pub kind: String,
    /// Path under the repository base URL.
    pub href: String,
    /// sha256 of the file as stored (compressed).
    pub sha256: String,
    /// Its size, when given.
    pub size: Option<u64>,
    /// Decompressed size, when given (bounds decompression).
    pub open_size: Option<u64>,
}

/// A package as `primary.xml` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RpmEntry {
    /// Name.
    pub name: String,
    /// `x86_64` or `noarch`.
    pub arch: String,
    /// Epoch (0 when absent).
    pub epoch: u32,
    /// Version.
    pub version: String,
    /// Release.
    pub release: String,
    /// sha256 of the .rpm file.
    pub sha256: String,
    /// Bytes of the .rpm.
    pub size: u64,
    /// Path under the repository base URL.
    pub href: String,
    /// What it provides (its own name and version are added by rpm; primary
    /// lists them too).
    pub provides: Vec<Dep>,
    /// What it requires (`pre` ones included).
    pub requires: Vec<Dep>,
    /// Packages it cannot be installed with.
    pub conflicts: Vec<Dep>,
    /// Packages it replaces.
    pub obsoletes: Vec<Dep>,
    /// Weak dependencies, followed only when asked.
    pub recommends: Vec<Dep>,
    /// Files primary lists (those other packages may depend on).
    pub files: Vec<String>,
}

impl RpmEntry {
    /// `name-[epoch:]version-release.arch`, as rpm prints it.
    pub fn nevra(&self) -> String {
        match self.epoch {
            0 => format!(
                "{}-{}-{}.{}",
                self.name, self.version, self.release, self.arch
            ),
            e => format!(
                "{}-{e}:{}-{}.{}",
                self.name, self.version, self.release, self.arch
            ),
        }
    }
}

fn attr(e: &BytesStart<'_>, key: &str) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == key.as_bytes())
        .map(|a| match a.unescape_value() {
            Ok(v) => v.into_owned(),
            Err(_) => String::from_utf8_lossy(&a.value).into_owned(),
        })
}

fn local(e: &BytesStart<'_>) -> String {
    String::from_utf8_lossy(e.local_name().as_ref()).into_owned()
}

/// Parses `repomd.xml`.
pub fn parse_repomd(text: &str) -> Result<Vec<DataFile>, String> {
    let mut reader = Reader::from_str(text);
    let mut out = Vec::new();
    let mut cur: Option<DataFile> = None;
    let mut path: Vec<String> = Vec::new();
    let mut sum_type = String::new();
    loop {
        match reader.read_event().map_err(|e| format!("not XML: {e}"))? {
            Event::Start(e) => {
                let n = local(&e);
                if n == "data" {
                    cur = Some(DataFile {
                        kind: attr(&e, "type").unwrap_or_default(),
                        href: String::new(),
                        sha256: String::new(),
                        size: None,
                        open_size: None,
                    });
                }
                if n == "checksum" || n == "open-checksum" {
                    sum_type = attr(&e, "type").unwrap_or_default();
                }
                path.push(n);
            }
            Event::Empty(e) if local(&e) == "location" => {
                if let Some(c) = cur.as_mut() {
                    c.href = attr(&e, "href").unwrap_or_default();
                }
            }
            Event::Text(t) => {
                let v = t.decode().map_err(|e| e.to_string())?.trim().to_string();
                if let Some(c) = cur.as_mut() {
                    match path.last().map(String::as_str) {
                        Some("checksum") if sum_type == "sha256" => c.sha256 = v.to_lowercase(),
                        Some("size") => c.size = v.parse().ok(),
                        Some("open-size") => c.open_size = v.parse().ok(),
                        _ => {}
                    }
                }
            }
            Event::End(_) => {
                let closed = path.pop();
                match (closed.as_deref(), cur.take()) {
                    (Some("data"), Some(c)) => out.push(c),
                    (_, c) => cur = c,
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(out)
}

fn dep_of(e: &BytesStart<'_>) -> Dep {
    let name = attr(e, "name").unwrap_or_default();
    let op = attr(e, "flags").and_then(|f| Op::from_flags(&f));
    let evr = op.map(|_| {
        let epoch = attr(e, "epoch").filter(|x| x != "0");
        let ver = attr(e, "ver").unwrap_or_default();
        let rel = attr(e, "rel");
        let mut s = String::new();
        if let Some(ep) = epoch {
            s.push_str(&ep);
            s.push(':');
        }
        s.push_str(&ver);
        if let Some(r) = rel {
            s.push('-');
            s.push_str(&r);
        }
        s
    });
    Dep::simple(name, op.zip(evr))
}

/// Parses `primary.xml`; `index` names it in errors.
pub fn parse_primary(text: &str) -> Result<Vec<RpmEntry>, String> {
    let mut reader = Reader::from_str(text);
    let mut out = Vec::new();
    let mut cur: Option<RpmEntry> = None;
    let mut path: Vec<String> = Vec::new();
    let mut sum_type = String::new();
    let mut list = String::new();
    let handle_empty = |e: &BytesStart<'_>, cur: &mut Option<RpmEntry>, list: &str| {
        let Some(p) = cur.as_mut() else { return };
        match local(e).as_str() {
            "version" => {
                p.epoch = attr(e, "epoch").and_then(|x| x.parse().ok()).unwrap_or(0);
                p.version = attr(e, "ver").unwrap_or_default();
                p.release = attr(e, "rel").unwrap_or_default();
            }
            "size" => p.size = attr(e, "package").and_then(|x| x.parse().ok()).unwrap_or(0),
            "location" => p.href = attr(e, "href").unwrap_or_default(),
            "entry" => {
                let d = dep_of(e);
                match list {
                    "provides" => p.provides.push(d),
                    "requires" => p.requires.push(d),
                    "conflicts" => p.conflicts.push(d),
                    "obsoletes" => p.obsoletes.push(d),
                    "recommends" => p.recommends.push(d),
                    _ => {}
                }
            }
            _ => {}
        }
    };
    loop {
        match reader.read_event().map_err(|e| format!("not XML: {e}"))? {
            Event::Start(e) => {
                let n = local(&e);
                match n.as_str() {
                    "package" => cur = Some(RpmEntry::default()),
                    "checksum" => sum_type = attr(&e, "type").unwrap_or_default(),
                    "provides" | "requires" | "conflicts" | "obsoletes" | "recommends"
                    | "suggests" | "supplements" | "enhances" => list = n.clone(),
                    _ => handle_empty(&e, &mut cur, &list),
                }
                path.push(n);
            }
            Event::Empty(e) => handle_empty(&e, &mut cur, &list),
            Event::Text(t) => {
                if let Some(p) = cur.as_mut() {
                    let v = t.decode().map_err(|e| e.to_string())?;
                    match path.last().map(String::as_str) {
                        Some("name") if path.len() == 3 => p.name = v.trim().to_string(),
                        Some("arch") => p.arch = v.trim().to_string(),
                        Some("checksum") if sum_type == "sha256" => {
                            p.sha256 = v.trim().to_lowercase()
                        }
                        Some("file") => p.files.push(v.trim().to_string()),
                        _ => {}
                    }
                }
            }
            Event::End(_) => match path.pop().as_deref() {
                Some("package") => {
                    if let Some(p) = cur.take() {
                        if p.name.is_empty() || p.sha256.len() != 64 || p.href.is_empty() {
                            return Err(format!(
                                "package \"{}\" lacks a name, a sha256 or a location",
                                p.name
                            ));
                        }
                        out.push(p);
                    }
                }
                Some(
                    "provides" | "requires" | "conflicts" | "obsoletes" | "recommends" | "suggests"
                    | "supplements" | "enhances",
                ) => list.clear(),
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(out)
}

/// The mandatory (and default) package names of comps group `id`.
pub fn comps_group(text: &str, id: &str) -> Result<Option<Vec<String>>, String> {
    let mut reader = Reader::from_str(text);
    let mut path: Vec<String> = Vec::new();
    let mut group_id = String::new();
    let mut req_type = String::new();
    let mut names = Vec::new();
    let mut found = None;
    loop {
        match reader.read_event().map_err(|e| format!("not XML: {e}"))? {
            Event::Start(e) => {
                let n = local(&e);
                if n == "group" {
                    group_id.clear();
                    names.clear();
                }
                if n == "packagereq" {
                    req_type = attr(&e, "type").unwrap_or_else(|| "mandatory".into());
                }
                path.push(n);
            }
            Event::Text(t) => {
                let v = t.decode().map_err(|e| e.to_string())?.trim().to_string();
                let depth = path.len();
                match path.last().map(String::as_str) {
                    Some("id") if depth >= 2 && path[depth - 2] == "group" => group_id = v,
                    Some("packagereq") if req_type == "mandatory" || req_type == "default" => {
                        names.push(v)
                    }
                    _ => {}
                }
            }
            Event::End(_) => {
                let closed = path.pop();
                if closed.as_deref() == Some("group") && group_id == id {
                    found = Some(std::mem::take(&mut names));
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repomd_lists_files_with_sha256() {
        let text = r#"<?xml version="1.0"?>
<repomd xmlns="http://linux.duke.edu/metadata/repo" xmlns:rpm="http://linux.duke.edu/metadata/rpm">
  <revision>1</revision>
  <data type="primary">
    <checksum type="sha256">ABCD</checksum>
    <open-checksum type="sha256">ef</open-checksum>
    <location href="repodata/x-primary.xml.zst"/>
    <size>10</size>
    <open-size>20</open-size>
  </data>
</repomd>"#;
        let files = parse_repomd(text).unwrap();
        assert_eq!(
            files,
            [DataFile {
                kind: "primary".into(),
                href: "repodata/x-primary.xml.zst".into(),
                sha256: "abcd".into(),
                size: Some(10),
                open_size: Some(20),
            }]
        );
    }

    #[test]
    fn primary_entries_with_dependencies_and_files() {
        let sha = "a".repeat(64);
        let text = format!(
            r#"<metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="1">
<package type="rpm">
  <name>bash</name><arch>x86_64</arch>
  <version epoch="1" ver="5.2" rel="3.fc44"/>
  <checksum type="sha256" pkgid="YES">{sha}</checksum>
  <summary>x</summary>
  <size package="123" installed="4" archive="5"/>
  <location href="Packages/b/bash.rpm"/>
  <format>
    <rpm:provides><rpm:entry name="bash" flags="EQ" epoch="1" ver="5.2" rel="3.fc44"/></rpm:provides>
    <rpm:requires><rpm:entry name="libc.so.6()(64bit)"/><rpm:entry name="(a or b)"/></rpm:requires>
    <rpm:obsoletes><rpm:entry name="oldbash" flags="LT" epoch="0" ver="2"/></rpm:obsoletes>
    <file>/usr/bin/bash</file>
  </format>
</package></metadata>"#
        );
        let p = &parse_primary(&text).unwrap()[0];
        assert_eq!(p.nevra(), "bash-1:5.2-3.fc44.x86_64");
        assert_eq!(p.size, 123);
        assert_eq!(p.provides[0].to_string(), "bash = 1:5.2-3.fc44");
        assert_eq!(p.requires.len(), 2);
        assert_eq!(p.obsoletes[0].to_string(), "oldbash < 2");
        assert_eq!(p.files, ["/usr/bin/bash"]);
    }

    #[test]
    fn comps_core_mandatory_and_default() {
        let text = r#"<comps><group><id>core</id><name>Core</name><packagelist>
<packagereq type="mandatory">bash</packagereq><packagereq type="default">vim</packagereq>
<packagereq type="optional">x</packagereq></packagelist></group>
<group><id>other</id><packagelist><packagereq>y</packagereq></packagelist></group></comps>"#;
        assert_eq!(comps_group(text, "core").unwrap().unwrap(), ["bash", "vim"]);
        assert_eq!(comps_group(text, "nope").unwrap(), None);
    }
}
