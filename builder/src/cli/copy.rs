//! `vbuild cp SRC NAME:DST` and `vbuild cp NAME:SRC DST`: files between
//! the host and a guest (running, or stopped: its tree on disk), through
//! the runtime's root-confined copy (a guest's symlinks and `..` never lead
//! outside its root).

use super::output::{self, invalid};
use super::Ctx;
use clap::Args;
use std::path::PathBuf;
use vbuild_runtime::copy::{self, CopyError};
use vbuild_runtime::name::GuestName;
use vbuild_runtime::size::format_size;

/// Arguments of `vbuild cp`.
#[derive(Args, Debug)]
pub struct CpArgs {
    /// What to copy: a host path, or NAME:PATH in a guest (running or stopped).
    #[arg(value_name = "SRC")]
    pub src: String,
    /// Where to: NAME:PATH in a guest (running or stopped), or a host path (into it
    /// when it is a directory).
    #[arg(value_name = "DST")]
    pub dst: String,
    /// Copy directories and what is in them (symlinks as symlinks).
    #[arg(long, short = 'r')]
    pub recursive: bool,
}

/// `NAME:PATH` split, when the part before the first ':' is a valid guest
/// name (a host path with a ':' in it can be written `./a:b`).
fn guest_spec(s: &str) -> Option<(GuestName, &str)> {
    let (n, p) = s.split_once(':')?;
    if n.contains('/') {
        return None;
    }
    GuestName::parse(n).ok().map(|g| (g, p))
}

/// `vbuild cp`.
pub fn cp(c: &Ctx, a: CpArgs) -> anyhow::Result<i32> {
    let (result, from) = match (guest_spec(&a.src), guest_spec(&a.dst)) {
        (Some(_), Some(_)) => {
            invalid!("cp: SRC and DST are both in guests; one of them must be a host path")
        }
        (None, None) => invalid!(
            "cp: neither {} nor {} names a guest; write the guest side as NAME:PATH (e.g. `vbuild cp ./app.conf web01:/etc/app.conf`)",
            a.src,
            a.dst
        ),
        (None, Some((name, path))) => {
            if path.is_empty() {
                invalid!("cp: {}: give a path in the guest after ':'", a.dst);
            }
            let src = PathBuf::from(&a.src);
            (
                copy::copy_in(&c.layout, &name, &src, path, a.recursive),
                a.src.clone(),
            )
        }
        (Some((name, path)), None) => {
            if path.is_empty() {
                invalid!("cp: {}: give a path in the guest after ':'", a.src);
            }
            let dst = PathBuf::from(&a.dst);
            (
                copy::copy_out(&c.layout, &name, path, &dst, a.recursive),
                a.src.clone(),
            )
        }
    };
    let done = match result {
        Ok(d) => d,
        Err(CopyError::Runtime(e)) => return Err(e.into()),
        Err(CopyError::Refused(m)) => invalid!("cp: {m}"),
        Err(e) => {
            let kind = if e.is_not_found() {
                "not_found"
            } else {
                "failed"
            };
            return Err(output::Refused {
                message: format!("cp: {e}"),
                kind,
            }
            .into());
        }
    };
    if c.json {
        output::json(&serde_json::json!({
            "from": from,
            "to": done.to,
            "files": done.files,
            "dirs": done.dirs,
            "symlinks": done.symlinks,
            "bytes": done.bytes,
            "skipped": done.skipped,
        }))?;
    } else {
        for s in &done.skipped {
            eprintln!("vbuild: cp: left out {s} (not a file, directory or symlink)");
        }
        if !c.quiet {
            let what = if done.dirs == 0 && done.files == 1 {
                format!("{} ({})", from, format_size(done.bytes))
            } else {
                format!(
                    "{} files, {} directories, {} symlinks ({})",
                    done.files,
                    done.dirs,
                    done.symlinks,
                    format_size(done.bytes)
                )
            };
            eprintln!("vbuild: copied {what} to {}", done.to);
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guest_side_is_name_colon_path() {
        let (n, p) = guest_spec("web01:/etc/x").unwrap();
        assert_eq!((n.as_str(), p), ("web01", "/etc/x"));
        assert!(guest_spec("./a:b").is_none());
        assert!(guest_spec("/tmp/x").is_none());
        assert!(guest_spec("Bad_Name:/x").is_none());
    }
}
