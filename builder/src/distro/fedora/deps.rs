//! rpm dependencies: simple ones (`name`, `name >= 1.2-3`) and rich ones
//! (rpm 4.13+: `(A and B)`, `or`, `if`/`else`, `unless`/`else`, `with`,
//! `without`, nested in parentheses), and rpm's rule for whether a
//! provided version range meets a required one.

use super::version::compare;
use std::cmp::Ordering;
use std::fmt;

/// A version comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `=`
    Eq,
    /// `>=`
    Ge,
    /// `>`
    Gt,
}

impl Op {
    /// From primary.xml's `flags` (`EQ`, `LT`, `LE`, `GT`, `GE`).
    pub fn from_flags(f: &str) -> Option<Op> {
        Some(match f {
            "LT" => Op::Lt,
            "LE" => Op::Le,
            "EQ" => Op::Eq,
            "GE" => Op::Ge,
            "GT" => Op::Gt,
            _ => return None,
        })
    }

    fn from_symbol(s: &str) -> Option<Op> {
        Some(match s {
            "<" => Op::Lt,
            "<=" | "=<" => Op::Le,
            "=" | "==" => Op::Eq,
            ">=" | "=>" => Op::Ge,
            ">" => Op::Gt,
            _ => return None,
        })
    }

    fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Eq => "=",
            Op::Ge => ">=",
            Op::Gt => ">",
        }
    }

    fn less(self) -> bool {
        matches!(self, Op::Lt | Op::Le)
    }
    fn greater(self) -> bool {
        matches!(self, Op::Gt | Op::Ge)
    }
    fn equal(self) -> bool {
        matches!(self, Op::Le | Op::Eq | Op::Ge)
    }
}

/// A dependency as a package states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dep {
    /// `name` or `name OP evr`.
    Simple {
        /// A package name, a capability (`libc.so.6()(64bit)`) or a path.
        name: String,
        /// The version range, if any.
        range: Option<(Op, String)>,
    },
    /// A boolean (rich) dependency.
    Rich(Box<Rich>),
}

/// The rich dependency operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rich {
    /// All of them.
    And(Vec<Dep>),
    /// At least one.
    Or(Vec<Dep>),
    /// `then` when `cond` is installed, else `otherwise`.
    If {
        /// Required when the condition holds.
        then: Dep,
        /// The condition.
        cond: Dep,
        /// Required when it does not.
        otherwise: Option<Dep>,
    },
    /// `then` unless `cond` is installed, else `otherwise`.
    Unless {
        /// Required unless the condition holds.
        then: Dep,
        /// The condition.
        cond: Dep,
        /// Required when it holds.
        otherwise: Option<Dep>,
    },
    /// One package meeting all of them.
    With(Vec<Dep>),
    /// One package meeting the first and not the second.
    Without(Dep, Dep),
}

impl Dep {
    /// A dependency named `name` (a rich one when it starts with `(`).
    pub fn simple(name: String, range: Option<(Op, String)>) -> Dep {
        if name.starts_with('(') {
            if let Ok(d) = parse(&name) {
                return d;
            }
        }
        Dep::Simple { name, range }
    }
}

/// Whether a provide `(name, range)` meets the required range (names
/// already equal): rpm's overlap of two version ranges, where an
/// unversioned side meets anything.
pub fn ranges_overlap(provided: &Option<(Op, String)>, required: &Option<(Op, String)>) -> bool {
    let (Some((pa, pe)), Some((ra, re))) = (provided, required) else {
        return true;
    };
    match compare(pe, re) {
        Ordering::Less => pa.greater() || ra.less(),
        Ordering::Greater => pa.less() || ra.greater(),
        Ordering::Equal => {
            (pa.equal() && ra.equal()) || (pa.less() && ra.less()) || (pa.greater() && ra.greater())
        }
    }
}

impl fmt::Display for Dep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dep::Simple { name, range: None } => write!(f, "{name}"),
            Dep::Simple {
                name,
                range: Some((op, evr)),
            } => write!(f, "{name} {} {evr}", op.symbol()),
            Dep::Rich(r) => {
                let join = |f: &mut fmt::Formatter<'_>, ds: &[Dep], w: &str| {
                    let parts: Vec<String> = ds.iter().map(|d| d.to_string()).collect();
                    write!(f, "({})", parts.join(&format!(" {w} ")))
                };
                match r.as_ref() {
                    Rich::And(ds) => join(f, ds, "and"),
                    Rich::Or(ds) => join(f, ds, "or"),
                    Rich::With(ds) => join(f, ds, "with"),
                    Rich::Without(a, b) => write!(f, "({a} without {b})"),
                    Rich::If {
                        then,
                        cond,
                        otherwise,
                    }
                    | Rich::Unless {
                        then,
                        cond,
                        otherwise,
                    } => {
                        let w = if matches!(r.as_ref(), Rich::If { .. }) {
                            "if"
                        } else {
                            "unless"
                        };
                        match otherwise {
                            Some(o) => write!(f, "({then} {w} {cond} else {o})"),
                            None => write!(f, "({then} {w} {cond})"),
                        }
                    }
                }
            }
        }
    }
}

fn tokens(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for ch in s.chars() {
        match ch {
            '(' | ')' => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                out.push(ch.to_string());
            }
            c if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Parses a rich dependency `( ... )`.
pub fn parse(s: &str) -> Result<Dep, String> {
    let toks = tokens(s);
    let mut pos = 0;
    let d = parse_group(&toks, &mut pos)?;
    if pos != toks.len() {
        return Err(format!("\"{s}\": text after the closing parenthesis"));
    }
    Ok(d)
}

const WORDS: [&str; 7] = ["and", "or", "if", "else", "unless", "with", "without"];

fn parse_term(t: &[String], pos: &mut usize) -> Result<Dep, String> {
    match t.get(*pos).map(String::as_str) {
        Some("(") => parse_group(t, pos),
        Some(name) if name != ")" && !WORDS.contains(&name) => {
            *pos += 1;
            let range = match (
                t.get(*pos).and_then(|o| Op::from_symbol(o)),
                t.get(*pos + 1),
            ) {
                (Some(op), Some(evr)) if evr != "(" && evr != ")" => {
                    *pos += 2;
                    Some((op, evr.clone()))
                }
                _ => None,
            };
            Ok(Dep::Simple {
                name: name.to_string(),
                range,
            })
        }
        other => Err(format!("expected a dependency, found {other:?}")),
    }
}

fn parse_group(t: &[String], pos: &mut usize) -> Result<Dep, String> {
    if t.get(*pos).map(String::as_str) != Some("(") {
        return Err("a rich dependency starts with \"(\"".into());
    }
    *pos += 1;
    let first = parse_term(t, pos)?;
    let mut items = vec![first];
    let mut op: Option<String> = None;
    let mut otherwise = None;
    loop {
        match t.get(*pos).map(String::as_str) {
            Some(")") => {
                *pos += 1;
                break;
            }
            Some("else") if matches!(op.as_deref(), Some("if" | "unless")) && items.len() == 2 => {
                *pos += 1;
                otherwise = Some(parse_term(t, pos)?);
            }
            Some(w) if WORDS.contains(&w) && w != "else" => {
                if let Some(o) = &op {
                    if o != w || matches!(w, "if" | "unless" | "without") {
                        return Err(format!(
                            "cannot mix \"{o}\" and \"{w}\" without parentheses"
                        ));
                    }
                }
                op = Some(w.to_string());
                *pos += 1;
                items.push(parse_term(t, pos)?);
            }
            other => return Err(format!("expected an operator or \")\", found {other:?}")),
        }
    }
    let mut it = items.into_iter();
    Ok(match op.as_deref() {
        None => it.next().expect("one term"),
        Some("and") => Dep::Rich(Box::new(Rich::And(it.collect()))),
        Some("or") => Dep::Rich(Box::new(Rich::Or(it.collect()))),
        Some("with") => Dep::Rich(Box::new(Rich::With(it.collect()))),
        Some("without") => {
            let (a, b) = (it.next().expect("two"), it.next().expect("two"));
            Dep::Rich(Box::new(Rich::Without(a, b)))
        }
        Some(w) => {
            let (then, cond) = (it.next().expect("two"), it.next().expect("two"));
            Dep::Rich(Box::new(if w == "if" {
                Rich::If {
                    then,
                    cond,
                    otherwise,
                }
            } else {
                Rich::Unless {
                    then,
                    cond,
                    otherwise,
                }
            }))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: &str) -> Dep {
        Dep::Simple {
            name: n.into(),
            range: None,
        }
    }

    #[test]
    fn rich_dependencies_parse_and_print_back() {
        for text in [
            "(a and b)",
            "(a or b or c)",
            "(a if b)",
            "(a if b else c)",
            "(a unless b else c)",
            "(a with b)",
            "(a without b)",
            "((a and b) or c >= 1.2-3)",
            "(python3 >= 3.12 if (systemd and dnf))",
        ] {
            assert_eq!(parse(text).unwrap().to_string(), text);
        }
        assert_eq!(
            parse("(a and b)").unwrap(),
            Dep::Rich(Box::new(Rich::And(vec![s("a"), s("b")])))
        );
        assert!(parse("(a and b or c)").unwrap_err().contains("cannot mix"));
        assert!(parse("(a and)").is_err());
        assert!(parse("(a").is_err());
    }

    #[test]
    fn ranges_overlap_as_rpm_compares_them() {
        let r = |op, v: &str| Some((op, v.to_string()));
        assert!(ranges_overlap(&r(Op::Eq, "1.2-1"), &r(Op::Ge, "1.0")));
        assert!(!ranges_overlap(&r(Op::Eq, "0.9-1"), &r(Op::Ge, "1.0")));
        assert!(ranges_overlap(&r(Op::Eq, "1.0-7"), &r(Op::Eq, "1.0")));
        assert!(!ranges_overlap(&r(Op::Eq, "1.0-7"), &r(Op::Lt, "1.0")));
        assert!(ranges_overlap(&None, &r(Op::Lt, "1.0")));
        assert!(ranges_overlap(&r(Op::Eq, "2:0.1"), &r(Op::Gt, "1:9")));
    }
}
