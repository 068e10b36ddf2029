//! The LXC download catalog (what `lxc-create -t download` reads):
//! `meta/1.0/index-system` (and `index-user`, the same, for unprivileged
//! users) lines `dist;release;arch;variant;build;path`, and under each path
//! `rootfs.tar.xz` (the tree) and `meta.tar.xz`, whose `config` is appended
//! to the container's configuration (`LXC_TEMPLATE_CONFIG` expanded by the
//! template) and whose `templates` lists files in which `LXC_NAME` is
//! replaced.

use super::info::ImageInfo;

/// The index privileged `lxc-create` reads.
pub const INDEX_SYSTEM: &str = "meta/1.0/index-system";
/// The index unprivileged `lxc-create` reads.
pub const INDEX_USER: &str = "meta/1.0/index-user";

/// The `config` (privileged) or `config-user` file of `meta.tar.xz`: LXC's
/// own `common.conf` (and `userns.conf`), whatever the distribution. The
/// per-distribution `NAME.common.conf` files live in lxc-templates, which a
/// host with lxc alone (Debian bookworm's) lacks, and lxc-create refuses a
/// config whose include it cannot open.
pub fn config(info: &ImageInfo, user: bool) -> String {
    let karch = super::info::kernel_arch(&info.arch).unwrap_or("unknown");
    let mut s = "lxc.include = LXC_TEMPLATE_CONFIG/common.conf\n".to_string();
    if user {
        s.push_str("lxc.include = LXC_TEMPLATE_CONFIG/userns.conf\n");
    }
    s.push_str(&format!("lxc.arch = {karch}\n"));
    s
}

/// The `meta.tar.xz` bytes.
pub fn meta_tarball(info: &ImageInfo, serial: &str, created: i64) -> std::io::Result<Vec<u8>> {
    let system = config(info, false);
    let user = config(info, true);
    let message = format!(
        "You just created a {} container (release={}, arch={}, build={serial}), made by vbuild.\n",
        info.pretty, info.release, info.arch
    );
    super::small_tar_xz(
        &[
            ("config", system.as_bytes()),
            ("config-user", user.as_bytes()),
            ("templates", b"/etc/hostname\n/etc/hosts\n"),
            ("create-message", message.as_bytes()),
        ],
        created,
    )
}

/// The index line of one image version.
pub fn index_line(info: &ImageInfo, variant: &str, serial: &str, dir: &str) -> String {
    format!(
        "{};{};{};{};{serial};/{}",
        info.os,
        info.release,
        info.arch,
        variant,
        dir.trim_matches('/')
    )
}

/// `index` with `line` added, sorted so that the newest build of each
/// dist/release/arch/variant comes first (lxc-download takes the first
/// match) and the same lines always give the same file.
pub fn add_line(index: &str, line: &str) -> String {
    let mut lines: Vec<&str> = index
        .lines()
        .filter(|l| !l.trim().is_empty() && *l != line)
        .collect();
    lines.push(line);
    let key = |l: &str| -> (Vec<String>, std::cmp::Reverse<String>) {
        let f: Vec<&str> = l.split(';').collect();
        (
            f.iter().take(4).map(|s| s.to_string()).collect(),
            std::cmp::Reverse(f.get(4).unwrap_or(&"").to_string()),
        )
    };
    lines.sort_by_key(|l| key(l));
    let mut s = lines.join("\n");
    s.push('\n');
    s
}
