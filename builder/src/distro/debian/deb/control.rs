//! A .deb's control.tar: the `control` paragraph, `md5sums`, `conffiles`,
//! maintainer scripts and the other files dpkg keeps in its info database.

use std::collections::BTreeMap;
use std::io::Read;

use crate::distro::debian::deb822;

/// One deb822 paragraph (`Field: value`, continuation lines start with a
/// space), fields kept in their original order and spelling so they can be
/// written back into dpkg's `status` unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Paragraph {
    fields: Vec<(String, String)>,
}

impl Paragraph {
    /// Parses one paragraph with the shared deb822 reader; blank lines
    /// around it are ignored, a second paragraph is an error. Values keep
    /// their continuation lines (`"first\n second"`).
    pub fn parse(text: &str) -> Result<Paragraph, String> {
        let para = deb822::single(text).map_err(|e| e.to_string())?;
        Ok(Paragraph {
            fields: para
                .fields
                .iter()
                .map(|f| (f.name.to_string(), f.value.to_string()))
                .collect(),
        })
    }

    /// The value of `name` (case-insensitive, as deb822 field names are).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Sets `name` to `value`, replacing it in place or appending it.
    pub fn set(&mut self, name: &str, value: &str) {
        match self
            .fields
            .iter_mut()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
        {
            Some(f) => f.1 = value.to_string(),
            None => self.fields.push((name.to_string(), value.to_string())),
        }
    }

    /// Removes `name` if present.
    pub fn remove(&mut self, name: &str) {
        self.fields.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
    }

    /// The fields in order.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// A file from control.tar other than `control` (scripts, md5sums, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlFile {
    /// Its content.
    pub data: Vec<u8>,
    /// Its permission bits (scripts are executable).
    pub mode: u32,
}

/// The decoded control.tar.
#[derive(Debug, Clone, Default)]
pub(crate) struct ControlArchive {
    pub control: Paragraph,
    /// Every other member by bare name (`postinst`, `md5sums`, `triggers`).
    pub files: BTreeMap<String, ControlFile>,
}

/// Largest control.tar member accepted: real ones are kilobytes; this bounds
/// memory against a hostile archive.
const MAX_CONTROL_MEMBER: u64 = 64 << 20;

/// Reads a (decompressed) control.tar stream.
pub(crate) fn read_control_tar<R: Read>(r: R) -> Result<ControlArchive, String> {
    let mut a = tar::Archive::new(r);
    let mut control = None;
    let mut files = BTreeMap::new();
    for e in a.entries().map_err(|e| format!("control.tar: {e}"))? {
        let mut e = e.map_err(|e| format!("control.tar: {e}"))?;
        let path = e
            .path()
            .map_err(|e| format!("control.tar: {e}"))?
            .to_string_lossy()
            .into_owned();
        let name = path.trim_start_matches("./").trim_start_matches('/');
        if name.is_empty() || e.header().entry_type().is_dir() {
            continue;
        }
        if !e.header().entry_type().is_file() {
            return Err(format!("control.tar: {name}: not a regular file"));
        }
        if name.contains('/') {
            return Err(format!(
                "control.tar: {name}: control files may not be in directories"
            ));
        }
        let size = e.header().size().unwrap_or(0);
        if size > MAX_CONTROL_MEMBER {
            return Err(format!("control.tar: {name}: {size} bytes is too large"));
        }
        let mode = e.header().mode().unwrap_or(0o644) & 0o7777;
        let mut data = Vec::with_capacity(size as usize);
        e.read_to_end(&mut data)
            .map_err(|err| format!("control.tar: {name}: {err}"))?;
        if name == "control" {
            let text = String::from_utf8(data)
                .map_err(|_| "control.tar: control: not UTF-8".to_string())?;
            control = Some(Paragraph::parse(&text).map_err(|e| format!("control: {e}"))?);
        } else {
            files.insert(name.to_string(), ControlFile { data, mode });
        }
    }
    let control = control.ok_or("control.tar has no `control` file")?;
    for f in ["Package", "Version"] {
        if control.get(f).is_none_or(|v| v.trim().is_empty()) {
            return Err(format!("control: no {f} field"));
        }
    }
    Ok(ControlArchive { control, files })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraph_keeps_order_and_continuations() {
        let p = Paragraph::parse(
            "Package: a\nVersion: 1\nDescription: short\n long line\n .\n more\n\n",
        )
        .unwrap();
        assert_eq!(p.get("package"), Some("a"));
        assert_eq!(p.get("Description"), Some("short\n long line\n .\n more"));
        let names: Vec<_> = p.fields().map(|(k, _)| k).collect();
        assert_eq!(names, ["Package", "Version", "Description"]);
        assert!(Paragraph::parse("Package: a\n\nPackage: b\n").is_err());
        // dpkg keeps trailing blanks of a value (seen in real status files).
        let p = Paragraph::parse("Description: x \n more\n").unwrap();
        assert_eq!(p.get("Description"), Some("x \n more"));
        assert!(Paragraph::parse(" cont\n").is_err());
        assert!(Paragraph::parse("no colon here\n").is_err());
    }
}
