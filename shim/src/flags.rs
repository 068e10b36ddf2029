//! The shim's command line as containerd 1.7 gives it (Go `flag` style:
//! `-name value`, `-name=value`, `--name`, booleans bare), and the socket
//! address derived from it.

use sha2::{Digest, Sha256};

/// What containerd passes to a shim binary.
#[derive(Debug, Default, PartialEq)]
pub struct Flags {
    /// `-debug`: log more.
    pub debug: bool,
    /// `-namespace`: containerd namespace of the task.
    pub namespace: String,
    /// `-id`: the task (container) id.
    pub id: String,
    /// `-socket`: where the long-lived shim serves (set by our `start`).
    pub socket: String,
    /// `-bundle`: the bundle, when it is not the working directory.
    pub bundle: String,
    /// `-address`: containerd's gRPC socket (its `.ttrpc` sibling takes events).
    pub address: String,
    /// `-publish-binary`: containerd's event publisher (unused: we speak ttrpc).
    pub publish_binary: String,
    /// The action after the flags: `start`, `delete`, or none to serve.
    pub action: String,
}

const STRINGS: &[&str] = &[
    "namespace",
    "id",
    "socket",
    "bundle",
    "address",
    "publish-binary",
];

/// Parses the arguments after the program name; an unknown flag or a
/// missing value is an error naming it.
pub fn parse(args: &[String]) -> Result<Flags, String> {
    let mut f = Flags::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let Some(name) = a.strip_prefix("--").or_else(|| a.strip_prefix('-')) else {
            if f.action.is_empty() {
                f.action = a.clone();
                continue;
            }
            return Err(format!(
                "unexpected argument {a:?} after the action {:?}",
                f.action
            ));
        };
        let (name, inline) = match name.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (name, None),
        };
        if name == "debug" {
            f.debug = !matches!(inline.as_deref(), Some("false" | "0"));
            continue;
        }
        if name == "v" || name == "version" {
            f.action = "version".into();
            continue;
        }
        if !STRINGS.contains(&name) {
            return Err(format!("unknown flag -{name}"));
        }
        let value = match inline {
            Some(v) => v,
            None => it
                .next()
                .cloned()
                .ok_or_else(|| format!("flag -{name} needs a value"))?,
        };
        let slot = match name {
            "namespace" => &mut f.namespace,
            "id" => &mut f.id,
            "socket" => &mut f.socket,
            "bundle" => &mut f.bundle,
            "address" => &mut f.address,
            _ => &mut f.publish_binary,
        };
        *slot = value;
    }
    Ok(f)
}

/// `unix:///run/containerd/s/<sha256 of ADDRESS/NAMESPACE/ID>`: one socket
/// per task, the path containerd's own shims use (short enough for sun_path).
pub fn socket_address(address: &str, namespace: &str, id: &str) -> String {
    let digest = Sha256::digest(format!("{address}/{namespace}/{id}"));
    format!("unix:///run/containerd/s/{}", hex::encode(digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn containerd_start_and_delete_lines_parse() {
        let f = parse(&args(
            "-namespace default -address /run/containerd/containerd.sock -publish-binary /usr/bin/containerd -id c1 -debug start",
        ))
        .unwrap();
        assert_eq!(f.namespace, "default");
        assert_eq!(f.id, "c1");
        assert!(f.debug);
        assert_eq!(f.action, "start");
        let f = parse(&args("--id=c2 -bundle /b delete")).unwrap();
        assert_eq!(
            (f.id.as_str(), f.bundle.as_str(), f.action.as_str()),
            ("c2", "/b", "delete")
        );
    }

    #[test]
    fn bad_lines_name_the_flag() {
        assert_eq!(parse(&args("-nope x")).unwrap_err(), "unknown flag -nope");
        assert_eq!(parse(&args("-id")).unwrap_err(), "flag -id needs a value");
        assert!(parse(&args("start delete"))
            .unwrap_err()
            .contains("\"delete\""));
    }

    #[test]
    fn the_socket_is_per_task_and_fits_sun_path() {
        let a = socket_address("/run/containerd/containerd.sock", "default", "c1");
        let b = socket_address("/run/containerd/containerd.sock", "default", "c2");
        assert_ne!(a, b);
        assert!(a.starts_with("unix:///run/containerd/s/"));
        assert!(a.trim_start_matches("unix://").len() < 108);
    }
}
