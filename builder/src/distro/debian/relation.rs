//! Relationship fields (Depends, Pre-Depends, Conflicts, Breaks, Provides;
//! Debian Policy 7.1): a comma-separated list of groups, each a `|`-separated
//! list of alternatives `name[:archqual] [(op version)] [[arches]] [<profiles>]`.
//! Build profiles only matter when building source packages, so they are
//! parsed and dropped.

use std::fmt;

use super::version::Version;

/// A version operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `<<`
    Earlier,
    /// `<=` (and the obsolete `<`)
    EarlierOrEqual,
    /// `=`
    Equal,
    /// `>=` (and the obsolete `>`)
    LaterOrEqual,
    /// `>>`
    Later,
}

impl Op {
    /// Whether `have` stands in this relation to `want`.
    pub fn holds(self, have: &Version, want: &Version) -> bool {
        let ord = have.cmp(want);
        match self {
            Op::Earlier => ord.is_lt(),
            Op::EarlierOrEqual => ord.is_le(),
            Op::Equal => ord.is_eq(),
            Op::LaterOrEqual => ord.is_ge(),
            Op::Later => ord.is_gt(),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Op::Earlier => "<<",
            Op::EarlierOrEqual => "<=",
            Op::Equal => "=",
            Op::LaterOrEqual => ">=",
            Op::Later => ">>",
        }
    }
}

/// `(op version)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint {
    /// The operator.
    pub op: Op,
    /// The version it compares against.
    pub version: Version,
}

/// `[amd64 arm64]` or `[!i386]`: the architectures a relation applies on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchRestriction {
    /// `[!a !b]`: every architecture but these.
    pub negated: bool,
    /// The architectures named.
    pub arches: Vec<String>,
}

impl ArchRestriction {
    /// Whether the relation applies on `arch`.
    pub fn applies_to(&self, arch: &str) -> bool {
        self.arches.iter().any(|a| a == arch) != self.negated
    }
}

/// One alternative: a package name and what it must satisfy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    /// The package (or virtual package) name.
    pub name: String,
    /// `:any`, `:native` or an architecture after the name.
    pub arch_qualifier: Option<String>,
    /// `(op version)`.
    pub constraint: Option<Constraint>,
    /// `[arches]`.
    pub arches: Option<ArchRestriction>,
}

impl Relation {
    /// Whether `version` satisfies the constraint (always, without one).
    pub fn accepts(&self, version: &Version) -> bool {
        self.constraint
            .as_ref()
            .is_none_or(|c| c.op.holds(version, &c.version))
    }
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(q) = &self.arch_qualifier {
            write!(f, ":{q}")?;
        }
        if let Some(c) = &self.constraint {
            write!(f, " ({} {})", c.op.as_str(), c.version)?;
        }
        if let Some(r) = &self.arches {
            let bang = if r.negated { "!" } else { "" };
            let list: Vec<String> = r.arches.iter().map(|a| format!("{bang}{a}")).collect();
            write!(f, " [{}]", list.join(" "))?;
        }
        Ok(())
    }
}

/// Alternatives: satisfied when any one is.
pub type Group = Vec<Relation>;

/// A group as it is written in a control file (`a (>= 1) | b`).
pub fn show_group(group: &[Relation]) -> String {
    let parts: Vec<String> = group.iter().map(Relation::to_string).collect();
    parts.join(" | ")
}

/// Why a relationship field could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{item}\": {why}")]
pub struct RelationError {
    /// The alternative that is malformed.
    pub item: String,
    /// What is wrong with it.
    pub why: String,
}

/// Parses a whole field value (continuation lines included). An empty field
/// is an empty list; an empty group (`a, , b`) is an error.
pub fn parse(text: &str) -> Result<Vec<Group>, RelationError> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|group| group.split('|').map(parse_one).collect())
        .collect()
}

fn parse_one(item: &str) -> Result<Relation, RelationError> {
    let err = |why: String| RelationError {
        item: item.trim().to_string(),
        why,
    };
    let mut rest = item.trim_start();
    let name_end = rest
        .find(|c: char| c.is_whitespace() || "([<:".contains(c))
        .unwrap_or(rest.len());
    let name = &rest[..name_end];
    if name.is_empty() {
        return Err(err("no package name".into()));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b))
    {
        return Err(err(format!("\"{name}\" is not a package name")));
    }
    rest = &rest[name_end..];
    let mut arch_qualifier = None;
    if let Some(q) = rest.strip_prefix(':') {
        let end = q
            .find(|c: char| c.is_whitespace() || "([<".contains(c))
            .unwrap_or(q.len());
        if end == 0 {
            return Err(err("nothing after ':'".into()));
        }
        arch_qualifier = Some(q[..end].to_string());
        rest = &q[end..];
    }
    let mut constraint = None;
    let mut arches = None;
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        if let Some(body) = rest.strip_prefix('(') {
            let close = body
                .find(')')
                .ok_or_else(|| err("'(' without ')'".into()))?;
            if constraint.is_some() {
                return Err(err("two version constraints".into()));
            }
            constraint = Some(parse_constraint(&body[..close]).map_err(err)?);
            rest = &body[close + 1..];
        } else if let Some(body) = rest.strip_prefix('[') {
            let close = body
                .find(']')
                .ok_or_else(|| err("'[' without ']'".into()))?;
            if arches.is_some() {
                return Err(err("two architecture lists".into()));
            }
            arches = Some(parse_arches(&body[..close]).map_err(err)?);
            rest = &body[close + 1..];
        } else if let Some(body) = rest.strip_prefix('<') {
            // A build profile restriction: irrelevant for binary packages.
            let close = body
                .find('>')
                .ok_or_else(|| err("'<' without '>'".into()))?;
            rest = &body[close + 1..];
        } else {
            return Err(err(format!("unexpected \"{rest}\"")));
        }
    }
    Ok(Relation {
        name: name.to_string(),
        arch_qualifier,
        constraint,
        arches,
    })
}

fn parse_constraint(body: &str) -> Result<Constraint, String> {
    let body = body.trim();
    let op_len = body
        .find(|c: char| !"<>=".contains(c))
        .unwrap_or(body.len());
    let op = match &body[..op_len] {
        "<<" => Op::Earlier,
        "<=" | "<" => Op::EarlierOrEqual,
        "=" => Op::Equal,
        ">=" | ">" => Op::LaterOrEqual,
        ">>" => Op::Later,
        "" => return Err(format!("no operator in \"({body})\"")),
        other => return Err(format!("\"{other}\" is not a version operator")),
    };
    let version = Version::parse(body[op_len..].trim()).map_err(|e| e.to_string())?;
    Ok(Constraint { op, version })
}

fn parse_arches(body: &str) -> Result<ArchRestriction, String> {
    let words: Vec<&str> = body.split_whitespace().collect();
    if words.is_empty() {
        return Err("an empty architecture list".into());
    }
    let negated = words[0].starts_with('!');
    let mut arches = Vec::new();
    for w in words {
        let arch = w.strip_prefix('!');
        if arch.is_some() != negated {
            return Err("an architecture list mixes negated and plain entries".into());
        }
        let arch = arch.unwrap_or(w);
        if arch.is_empty() {
            return Err("a lone '!' in an architecture list".into());
        }
        arches.push(arch.to_string());
    }
    Ok(ArchRestriction { negated, arches })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn groups_alternatives_and_constraints() {
        let list =
            parse("libc6 (>= 2.34), debconf (>= 0.5) | debconf-2.0, perl:any,\n awk").unwrap();
        assert_eq!(list.len(), 4);
        assert_eq!(list[0][0].name, "libc6");
        let c = list[0][0].constraint.as_ref().unwrap();
        assert_eq!((c.op, c.version.as_str()), (Op::LaterOrEqual, "2.34"));
        assert_eq!(list[1].len(), 2);
        assert_eq!(list[1][1].name, "debconf-2.0");
        assert!(list[1][1].constraint.is_none());
        assert_eq!(list[2][0].name, "perl");
        assert_eq!(list[2][0].arch_qualifier.as_deref(), Some("any"));
        assert_eq!(list[3][0].name, "awk");
        assert!(parse("").unwrap().is_empty());
        assert!(parse(" \n ").unwrap().is_empty());
    }

    #[test]
    fn every_operator_and_its_meaning() {
        let ops = [
            ("<<", Op::Earlier),
            ("<=", Op::EarlierOrEqual),
            ("<", Op::EarlierOrEqual),
            ("=", Op::Equal),
            (">=", Op::LaterOrEqual),
            (">", Op::LaterOrEqual),
            (">>", Op::Later),
        ];
        for (text, op) in ops {
            let r = &parse(&format!("a ({text} 1.0)")).unwrap()[0][0];
            assert_eq!(r.constraint.as_ref().unwrap().op, op, "{text}");
        }
        let r = &parse("a (<< 2.38~)").unwrap()[0][0];
        assert!(r.accepts(&v("2.37")));
        assert!(!r.accepts(&v("2.38.1-5+deb12u3")));
        let r = &parse("a(=1:2.0-1)").unwrap()[0][0];
        assert!(r.accepts(&v("1:2.0-1")) && !r.accepts(&v("2.0-1")));
        assert!(parse("a").unwrap()[0][0].accepts(&v("0")));
    }

    #[test]
    fn architectures_multiarch_and_profiles() {
        let r = &parse("libc6-dev:native [amd64 arm64] <!nocheck> <stage1 cross>").unwrap()[0][0];
        assert_eq!(r.name, "libc6-dev");
        assert_eq!(r.arch_qualifier.as_deref(), Some("native"));
        let a = r.arches.as_ref().unwrap();
        assert!(a.applies_to("amd64") && !a.applies_to("i386"));
        let r = &parse("x (>= 1) [!i386 !hurd-i386]").unwrap()[0][0];
        let a = r.arches.as_ref().unwrap();
        assert!(a.negated && a.applies_to("amd64") && !a.applies_to("i386"));
        assert_eq!(r.to_string(), "x (>= 1) [!i386 !hurd-i386]");
        assert_eq!(
            parse("hurd (<< 1:0.9.git20220301-2)").unwrap()[0][0].to_string(),
            "hurd (<< 1:0.9.git20220301-2)"
        );
    }

    #[test]
    fn malformed_relations_are_named() {
        for bad in [
            "a, , b",
            "a (>= 1",
            "a (~ 1)",
            "a (>= )",
            "a [amd64 !i386]",
            "a []",
            "A",
            "a b",
            "a:",
            "a (>= 1) (<< 2)",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
        let err = parse("libc6 (>= 2.34, x").unwrap_err();
        assert_eq!(err.to_string(), "\"libc6 (>= 2.34\": '(' without ')'");
    }
}
