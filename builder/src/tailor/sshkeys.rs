//! Per-guest SSH host keys. openssh-server's postinst makes host keys when
//! the template is built, so every guest of one template would share them
//! (and their comment would name the build host). The template drops them
//! (the tailoring profile); each guest gets its own ed25519 host key in its
//! own layer at creation, commented `root@GUEST`, and a first-boot unit in
//! the template (`vbuild-ssh-host-keys.service`) makes any other key type
//! the guest's sshd wants with the guest's own `ssh-keygen -A`.
//!
//! The private key is written in OpenSSH's `openssh-key-v1` format
//! (PROTOCOL.key in OpenSSH's sources: magic, cipher/kdf "none", one public
//! key blob, one private section padded to 8 bytes).

use base64::Engine;
use std::io::Read;
use std::path::Path;
use vbuild_kernel::fsroot::{FsError, Root};

const PRIVATE: &str = "etc/ssh/ssh_host_ed25519_key";
const PUBLIC: &str = "etc/ssh/ssh_host_ed25519_key.pub";

fn string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
}

/// The two files of a fresh ed25519 host key with comment `comment`:
/// (private key file, public key line).
pub fn ed25519_host_key(comment: &str) -> std::io::Result<(String, String)> {
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut seed)?;
    let sk = ed25519_dalek::SigningKey::from_bytes(&seed);
    let pk = sk.verifying_key().to_bytes();
    let mut blob = Vec::new();
    string(&mut blob, b"ssh-ed25519");
    string(&mut blob, &pk);
    let mut check = [0u8; 4];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut check)?;
    let mut private = Vec::new();
    private.extend_from_slice(&check);
    private.extend_from_slice(&check);
    string(&mut private, b"ssh-ed25519");
    string(&mut private, &pk);
    let mut both = seed.to_vec();
    both.extend_from_slice(&pk);
    string(&mut private, &both);
    string(&mut private, comment.as_bytes());
    let mut pad = 1u8;
    while private.len() % 8 != 0 {
        private.push(pad);
        pad += 1;
    }
    let mut file = b"openssh-key-v1\0".to_vec();
    string(&mut file, b"none");
    string(&mut file, b"none");
    string(&mut file, b"");
    file.extend_from_slice(&1u32.to_be_bytes());
    string(&mut file, &blob);
    string(&mut file, &private);
    let b64 = base64::engine::general_purpose::STANDARD;
    let body = b64.encode(&file);
    let mut pem = String::from("-----BEGIN OPENSSH PRIVATE KEY-----\n");
    for chunk in body.as_bytes().chunks(70) {
        pem.push_str(std::str::from_utf8(chunk).expect("base64 is ascii"));
        pem.push('\n');
    }
    pem.push_str("-----END OPENSSH PRIVATE KEY-----\n");
    Ok((
        pem,
        format!("ssh-ed25519 {} {comment}\n", b64.encode(&blob)),
    ))
}

/// Gives guest `name` its own host key in `upper` when its template has an
/// SSH server (`template` has `/etc/ssh/sshd_config`).
pub fn write_guest_host_key(template: &Root, upper: &Root, name: &str) -> Result<bool, FsError> {
    if !template.exists(Path::new("etc/ssh/sshd_config")) {
        return Ok(false);
    }
    let (private, public) =
        ed25519_host_key(&format!("root@{name}")).map_err(|source| FsError {
            op: "make a host key",
            path: Path::new("/").join(PRIVATE),
            source,
        })?;
    super::write(upper, PRIVATE, private.as_bytes(), 0o600)?;
    super::write(upper, PUBLIC, public.as_bytes(), 0o644)?;
    Ok(true)
}
