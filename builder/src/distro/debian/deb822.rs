//! The one deb822 reader (deb822(5)): paragraphs of `Field: value` lines,
//! continuation lines starting with a space or tab, paragraphs separated by
//! blank lines, `#` comment lines skipped. Used for `Packages` indices,
//! `Release` files, `.deb` control files and dpkg's `status`.
//!
//! It borrows: a field's value is a slice of the input (the first line with
//! its leading blanks removed, continuation lines as written), so the 45 MB
//! bookworm index is read without copying fields nobody keeps.

/// One field of a paragraph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    /// The name as written (compare case-insensitively).
    pub name: &'a str,
    /// The value: first line without leading blanks, then `\n` and each
    /// continuation line unchanged.
    pub value: &'a str,
    /// 1-based line of `Name:`.
    pub line: usize,
}

/// One paragraph, fields in their order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Paragraph<'a> {
    /// 1-based line of its first field.
    pub line: usize,
    /// The fields.
    pub fields: Vec<Field<'a>>,
}

impl<'a> Paragraph<'a> {
    /// The value of `name` (case-insensitive, as deb822 field names are).
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
            .map(|f| f.value)
    }
}

/// A syntax error, with its line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {why}")]
pub struct Deb822Error {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub why: String,
}

/// The paragraphs of `text`, in order; stops after the first error.
pub fn paragraphs(text: &str) -> Paragraphs<'_> {
    Paragraphs {
        text,
        pos: 0,
        line: 0,
        failed: false,
    }
}

/// Exactly one paragraph (a control file, a Release file): blank lines
/// around it are fine, a second paragraph or none at all is an error.
pub fn single(text: &str) -> Result<Paragraph<'_>, Deb822Error> {
    let mut it = paragraphs(text);
    let first = it.next().transpose()?.ok_or_else(|| Deb822Error {
        line: 1,
        why: "no fields at all".into(),
    })?;
    if let Some(second) = it.next() {
        let line = match second {
            Ok(p) => p.line,
            Err(e) => e.line,
        };
        return Err(Deb822Error {
            line,
            why: "a second paragraph where one is expected".into(),
        });
    }
    Ok(first)
}

/// A multi-line value folded onto one line: each line trimmed, empty ones
/// dropped, joined with a space (how relationship fields are read).
pub fn fold(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for part in value.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(part);
    }
    out
}

/// Iterator over paragraphs; see [`paragraphs`].
#[derive(Debug, Clone)]
pub struct Paragraphs<'a> {
    text: &'a str,
    pos: usize,
    line: usize,
    failed: bool,
}

impl<'a> Paragraphs<'a> {
    /// The next line as (number, start offset, end offset without `\r\n`).
    fn next_line(&mut self) -> Option<(usize, usize, usize)> {
        if self.pos >= self.text.len() {
            return None;
        }
        let start = self.pos;
        let rest = &self.text[start..];
        let (len, advance) = match rest.find('\n') {
            Some(i) => (i, i + 1),
            None => (rest.len(), rest.len()),
        };
        self.pos = start + advance;
        self.line += 1;
        let mut end = start + len;
        if self.text.as_bytes()[start..end].last() == Some(&b'\r') {
            end -= 1;
        }
        Some((self.line, start, end))
    }

    fn fail(&mut self, line: usize, why: String) -> Option<Result<Paragraph<'a>, Deb822Error>> {
        self.failed = true;
        Some(Err(Deb822Error { line, why }))
    }
}

impl<'a> Iterator for Paragraphs<'a> {
    type Item = Result<Paragraph<'a>, Deb822Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let text = self.text;
        let mut para = Paragraph::default();
        // Start offset of the last field's value while continuation lines
        // may still extend it.
        let mut open: Option<usize> = None;
        while let Some((n, start, end)) = self.next_line() {
            let line = &text[start..end];
            if line.trim().is_empty() {
                if para.fields.is_empty() {
                    continue;
                }
                break;
            }
            let first = line.as_bytes()[0];
            if first == b' ' || first == b'\t' {
                let Some(value_start) = open else {
                    let why = if para.fields.is_empty() {
                        "a continuation line before any field"
                    } else {
                        "a continuation line after a comment"
                    };
                    return self.fail(n, why.into());
                };
                let last = para.fields.last_mut().expect("open implies a field");
                last.value = &text[value_start..end];
                continue;
            }
            if first == b'#' {
                open = None;
                continue;
            }
            let Some(colon) = line.find(':') else {
                let shown: String = line.chars().take(60).collect();
                return self.fail(n, format!("\"{shown}\" is not a field (no ':')"));
            };
            let name = &line[..colon];
            if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c.is_control()) {
                return self.fail(n, format!("\"{name}\" is not a field name"));
            }
            if para.fields.is_empty() {
                para.line = n;
            }
            let after = &line[colon + 1..];
            let value = after.trim_start_matches([' ', '\t']);
            let value_start = end - value.len();
            para.fields.push(Field {
                name,
                value,
                line: n,
            });
            open = Some(value_start);
        }
        (!para.fields.is_empty()).then_some(Ok(para))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_fields_and_continuations() {
        let text =
            "# comment\nPackage: a\nVersion: 1\nDescription: short\n long line\n .\n more\n\n\n\
                    Package: b\r\nDepends: x,\r\n y\r\n";
        let paras: Vec<_> = paragraphs(text).collect::<Result<_, _>>().unwrap();
        assert_eq!(paras.len(), 2);
        let a = &paras[0];
        assert_eq!(a.line, 2);
        assert_eq!(a.get("package"), Some("a"));
        assert_eq!(a.get("Description"), Some("short\n long line\n .\n more"));
        let names: Vec<_> = a.fields.iter().map(|f| f.name).collect();
        assert_eq!(names, ["Package", "Version", "Description"]);
        assert_eq!(a.fields[2].line, 4);
        let b = &paras[1];
        assert_eq!(b.line, 10);
        assert_eq!(b.get("Package"), Some("b"), "CRLF endings are dropped");
        assert_eq!(fold(b.get("Depends").unwrap()), "x, y");
        assert_eq!(b.get("Nope"), None);
    }

    #[test]
    fn values_keep_what_dpkg_keeps() {
        // dpkg keeps trailing blanks of a value (seen in real status files).
        let p = single("Description: x \n more\n").unwrap();
        assert_eq!(p.get("Description"), Some("x \n more"));
        let p = single("Conffiles:\n /etc/a 0123\n /etc/b 4567\n").unwrap();
        assert_eq!(p.get("Conffiles"), Some("\n /etc/a 0123\n /etc/b 4567"));
        assert_eq!(fold(p.get("Conffiles").unwrap()), "/etc/a 0123 /etc/b 4567");
        let p = single("\n\nA:b\nB:\tc\n\n").unwrap();
        assert_eq!((p.get("A"), p.get("B")), (Some("b"), Some("c")));
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let err = |t: &str| match single(t) {
            Err(e) => e,
            Ok(p) => panic!("{t:?} parsed as {p:?}"),
        };
        assert_eq!(err(" cont\n").line, 1);
        assert_eq!(
            err("A: 1\nno colon here\n").to_string(),
            "line 2: \"no colon here\" is not a field (no ':')"
        );
        assert_eq!(err("A: 1\n\nB: 2\n").line, 3);
        assert_eq!(err("A: 1\n# c\n more\n").line, 3);
        assert_eq!(err("bad name: 1\n").line, 1);
        assert_eq!(err(": 1\n").line, 1);
        assert!(single("\n \n").is_err(), "no paragraph at all");
        let mut it = paragraphs("A: 1\n\nx\n\nB: 2\n");
        assert!(it.next().unwrap().is_ok());
        assert_eq!(it.next().unwrap().unwrap_err().line, 3);
        assert!(it.next().is_none(), "nothing after an error");
    }
}
