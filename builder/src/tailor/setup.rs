//! Guest setup a user asks for at build time: root's password and SSH
//! keys, one login user, the time zone, the locale, and apt/dpkg settings
//! (options, a proxy, extra sources). Per guest, so written into the
//! guest's own tree: the rootfs of a `--copy` guest, or the overlay
//! guest's upper layer over its template (`probe` is then the template,
//! read for what the files already say). Every value is checked before
//! anything is written, and every write goes through the root-confined
//! file operations.

use super::TailorError;
use std::path::{Path, PathBuf};
use vbuild_kernel::fsroot::{self, FsError, Kind, Root};

/// The largest guest file read to edit it (/etc/passwd and the like).
const MAX_ACCOUNT_FILE: u64 = 4 << 20;

/// The first uid/gid a login user gets (Debian's FIRST_UID).
pub const FIRST_UID: u32 = 1000;

/// What to set up in a guest; every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuestSetup {
    /// A crypt(3) hash for root in /etc/shadow (checked with
    /// [`check_password_hash`]).
    pub root_password_hash: Option<String>,
    /// authorized_keys text for root (and `user`), checked with
    /// [`check_ssh_keys`].
    pub ssh_keys: Option<String>,
    /// A login user (uid/gid from [`FIRST_UID`]) with a home directory.
    pub user: Option<String>,
    /// A zone of the guest's /usr/share/zoneinfo (`Europe/Paris`).
    pub timezone: Option<String>,
    /// LANG in /etc/default/locale (`en_US.UTF-8`).
    pub locale: Option<String>,
    /// apt.conf lines (`Acquire::Retries "3"`), in /etc/apt/apt.conf.d/99vbuild.
    pub apt_options: Vec<String>,
    /// dpkg.cfg lines (`path-exclude=/usr/share/man/*`), in /etc/dpkg/dpkg.cfg.d/99vbuild.
    pub dpkg_options: Vec<String>,
    /// The guest's apt proxy (Acquire::http::Proxy).
    pub proxy: Option<String>,
    /// One-line apt sources, in /etc/apt/sources.list.d/vbuild.list.
    pub sources: Vec<String>,
}

/// Files setup writes (guest paths), for tests and the docs.
pub const APT_CONF: &str = "etc/apt/apt.conf.d/99vbuild";
/// The proxy's apt.conf file.
pub const APT_PROXY_CONF: &str = "etc/apt/apt.conf.d/99vbuild-proxy";
/// dpkg's options file.
pub const DPKG_CFG: &str = "etc/dpkg/dpkg.cfg.d/99vbuild";
/// Extra sources.
pub const SOURCES_LIST: &str = "etc/apt/sources.list.d/vbuild.list";

impl GuestSetup {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        *self == GuestSetup::default()
    }

    /// Checks the values that need no guest (formats); the CLI calls it
    /// before anything is created.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(h) = &self.root_password_hash {
            check_password_hash(h)?;
        }
        if let Some(k) = &self.ssh_keys {
            check_ssh_keys(k)?;
        }
        if let Some(u) = &self.user {
            check_user_name(u)?;
        }
        if let Some(z) = &self.timezone {
            check_zone_name(z)?;
        }
        if let Some(l) = &self.locale {
            check_locale_name(l)?;
        }
        for o in &self.apt_options {
            one_line("--aptopt", o)?;
        }
        for o in &self.dpkg_options {
            one_line("--dpkgopt", o)?;
        }
        for s in &self.sources {
            check_source_line(s)?;
        }
        if let Some(p) = &self.proxy {
            check_proxy_url(p)?;
        }
        Ok(())
    }
}

fn one_line(flag: &str, v: &str) -> Result<(), String> {
    if v.trim().is_empty() || v.contains('\n') || v.contains('\0') {
        return Err(format!("{flag} {v:?}: give one non-empty line"));
    }
    Ok(())
}

/// Checks a crypt(3) string as /etc/shadow holds it: `$ID$[PARAMS$]SALT$HASH`
/// for yescrypt (`y`), gost-yescrypt (`gy`), sha512 (`6`), sha256 (`5`),
/// bcrypt (`2b`, `2a`, `2y`) and scrypt (`7`), in crypt's own alphabet.
pub fn check_password_hash(h: &str) -> Result<(), String> {
    let bad = |why: &str| {
        Err(format!(
            "--root-password-hash: {why}; give a crypt(3) string such as the output of `mkpasswd -m sha-512` or `openssl passwd -6` ($6$SALT$HASH, $y$PARAMS$SALT$HASH)"
        ))
    };
    let Some(rest) = h.strip_prefix('$') else {
        return bad("does not start with $ID$");
    };
    let fields: Vec<&str> = rest.split('$').collect();
    let alphabet = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/')
    };
    let ok = match fields.as_slice() {
        ["6", salt, hash] | ["6", _, salt, hash] => {
            alphabet(salt) && salt.len() <= 16 && alphabet(hash) && hash.len() == 86
        }
        ["5", salt, hash] | ["5", _, salt, hash] => {
            alphabet(salt) && salt.len() <= 16 && alphabet(hash) && hash.len() == 43
        }
        ["y" | "gy" | "7", params, salt, hash] => {
            alphabet(params) && alphabet(salt) && alphabet(hash) && hash.len() == 43
        }
        ["2a" | "2b" | "2y", cost, rest] => {
            cost.len() == 2
                && cost.bytes().all(|b| b.is_ascii_digit())
                && alphabet(rest)
                && rest.len() == 53
        }
        [id, ..] if ["1", "md5", "sha1", "3"].contains(id) => {
            return bad(&format!(
                "${id}$ is a broken hash kind; use sha-512 or yescrypt"
            ))
        }
        _ => return bad("is not a known $ID$ form"),
    };
    if !ok {
        return bad("has a salt or hash of the wrong length or alphabet");
    }
    if let ["6" | "5", params, _, _] = fields.as_slice() {
        let rounds = params
            .strip_prefix("rounds=")
            .and_then(|n| n.parse::<u32>().ok());
        if !rounds.is_some_and(|r| (1000..=999_999_999).contains(&r)) {
            return bad("has a parameter other than rounds=1000..999999999");
        }
    }
    Ok(())
}

/// Hashes a password as sha512-crypt (`$6$`, 5000 rounds, a random 16
/// character salt), which every libxcrypt and glibc crypt verifies.
pub fn hash_password(password: &str) -> Result<String, String> {
    let params = sha_crypt::Sha512Params::new(sha_crypt::ROUNDS_DEFAULT)
        .map_err(|e| format!("sha512-crypt parameters: {e:?}"))?;
    sha_crypt::sha512_simple(password, &params).map_err(|e| format!("hashing the password: {e:?}"))
}

/// Public key types OpenSSH's authorized_keys accepts.
const KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "ssh-dss",
];

/// Checks authorized_keys text: every line not blank or a comment is
/// `[OPTIONS] TYPE BASE64 [COMMENT]` whose decoded key blob starts with
/// TYPE (what sshd itself checks), and there is at least one key.
pub fn check_ssh_keys(text: &str) -> Result<(), String> {
    use base64::Engine;
    if text.contains("PRIVATE KEY-----") {
        return Err("--ssh-key: this is a private key; give the public one (the .pub file)".into());
    }
    let mut keys = 0;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(i) = words.iter().position(|w| KEY_TYPES.contains(w)) else {
            return Err(format!(
                "--ssh-key: line {}: no key type ({}); give an OpenSSH public key such as ~/.ssh/id_ed25519.pub",
                n + 1,
                KEY_TYPES.join(", ")
            ));
        };
        let blob = words
            .get(i + 1)
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .unwrap_or_default();
        let named = blob
            .get(..4)
            .map(|l| u32::from_be_bytes(l.try_into().expect("4 bytes")) as usize)
            .and_then(|len| blob.get(4..4 + len));
        if named != Some(words[i].as_bytes()) {
            return Err(format!(
                "--ssh-key: line {}: the {} key's data is not base64 of a {} key",
                n + 1,
                words[i],
                words[i]
            ));
        }
        keys += 1;
    }
    if keys == 0 {
        return Err("--ssh-key: the file holds no public key".into());
    }
    Ok(())
}

/// Checks a login name as useradd's default NAME_REGEX does
/// (`[a-z_][a-z0-9_-]*`, at most 32).
pub fn check_user_name(u: &str) -> Result<(), String> {
    let ok = !u.is_empty()
        && u.len() <= 32
        && u.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && u.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !ok || u == "root" {
        return Err(format!(
            "--user {u:?}: not a login name (a-z, 0-9, _ and -, starting with a letter, at most 32; not root)"
        ));
    }
    Ok(())
}

/// Checks that a zone name is a relative path of plain words
/// (`Europe/Paris`, `Etc/GMT+1`); whether the guest has it is checked
/// against its zoneinfo.
pub fn check_zone_name(z: &str) -> Result<(), String> {
    let ok = !z.is_empty()
        && z.split('/').all(|part| {
            !part.is_empty()
                && !part.starts_with('.')
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_+-".contains(c))
        });
    if !ok {
        return Err(format!(
            "--timezone {z:?}: not a time zone name (like Europe/Paris or UTC)"
        ));
    }
    Ok(())
}

/// Checks a locale name: `C`, `POSIX`, `C.UTF-8` or
/// `language[_TERRITORY][.codeset][@modifier]`.
pub fn check_locale_name(l: &str) -> Result<(), String> {
    let (main, modifier) = l.split_once('@').unwrap_or((l, ""));
    let (lang, codeset) = main.split_once('.').unwrap_or((main, ""));
    let (language, territory) = lang.split_once('_').unwrap_or((lang, ""));
    let word = |s: &str, extra: &str| {
        s.chars()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
    };
    let ok = (2..=8).contains(&language.len()) && word(language, "")
        || ["C", "POSIX"].contains(&language);
    if !ok || !word(territory, "") || !word(codeset, "-") || !word(modifier, "") {
        return Err(format!(
            "--locale {l:?}: not a locale name (like en_US.UTF-8 or C.UTF-8)"
        ));
    }
    Ok(())
}

/// Checks a one-line apt source (`deb URL SUITE COMPONENT...`).
pub fn check_source_line(s: &str) -> Result<(), String> {
    one_line("--source", s)?;
    let words: Vec<&str> = s.split_whitespace().collect();
    let ok = words.len() >= 4
        && ["deb", "deb-src"].contains(&words[0])
        && ["http://", "https://", "file:/"]
            .iter()
            .any(|p| words.iter().skip(1).any(|w| w.starts_with(p)));
    if !ok {
        return Err(format!(
            "--source {s:?}: give `deb URL SUITE COMPONENT...` (like 'deb http://deb.debian.org/debian bookworm-backports main')"
        ));
    }
    Ok(())
}

/// Checks a proxy URL: `http://HOST:PORT` (with an optional trailing `/`).
pub fn check_proxy_url(p: &str) -> Result<(), String> {
    let rest = p.strip_prefix("http://").unwrap_or("");
    let host = rest.trim_end_matches('/');
    if host.is_empty() || host.contains('/') || host.contains(char::is_whitespace) {
        return Err(format!(
            "--proxy {p:?}: give an http:// proxy URL (like http://127.0.0.1:3128)"
        ));
    }
    Ok(())
}

/// The two trees setup works on: files are read from `target` when it has
/// them, else from `probe` (the template under an overlay guest's layer).
struct Layers<'a> {
    probe: &'a Root,
    target: &'a Root,
}

/// Mode and owner of an existing entry, not following a last symlink.
#[derive(Clone, Copy)]
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
}

fn meta(root: &Root, rel: &Path) -> Result<Option<Meta>, FsError> {
    match root.open_at(rel, libc::O_PATH, 0, false) {
        Ok(fd) => {
            let st = fsroot::fstat(std::os::fd::AsFd::as_fd(&fd)).map_err(|source| FsError {
                op: "stat",
                path: rel.to_path_buf(),
                source,
            })?;
            Ok(Some(Meta {
                mode: st.st_mode & 0o7777,
                uid: st.st_uid,
                gid: st.st_gid,
            }))
        }
        Err(e) if matches!(e.source.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => Ok(None),
        Err(e) => Err(e),
    }
}

fn chown(root: &Root, rel: &Path, uid: u32, gid: u32) -> Result<(), FsError> {
    let (dir, name) = root.parent(rel)?;
    fsroot::chown_at(std::os::fd::AsFd::as_fd(&dir), &name, uid, gid).map_err(|source| FsError {
        op: "chown",
        path: rel.to_path_buf(),
        source,
    })
}

fn chmod_dir(root: &Root, rel: &Path, mode: u32) -> Result<(), FsError> {
    let fd = root.open_at(rel, libc::O_RDONLY | libc::O_DIRECTORY, 0, false)?;
    fsroot::fchmod(std::os::fd::AsFd::as_fd(&fd), mode).map_err(|source| FsError {
        op: "chmod",
        path: rel.to_path_buf(),
        source,
    })
}

impl Layers<'_> {
    /// The file's content and metadata, from the target or else the probe.
    fn read(&self, rel: &str) -> Result<Option<(Vec<u8>, Meta)>, FsError> {
        let rel = Path::new(rel);
        for root in [self.target, self.probe] {
            if root.kind(rel)? == Some(Kind::File) {
                let data = root.read_regular(rel, MAX_ACCOUNT_FILE)?;
                let m = meta(root, rel)?.expect("just seen");
                return Ok(Some((data, m)));
            }
        }
        Ok(None)
    }

    fn kind(&self, rel: &str) -> Result<Option<Kind>, FsError> {
        match self.target.kind(Path::new(rel))? {
            Some(k) => Ok(Some(k)),
            None => self.probe.kind(Path::new(rel)),
        }
    }

    /// Makes directory `rel` in the target, each missing parent with the
    /// probe's mode and owner (an upper layer's directory hides the
    /// template's: /root must stay 0700), the last with `last` when new.
    fn mkdir(&self, rel: &str, last: Meta) -> Result<(), FsError> {
        let mut cur = PathBuf::new();
        let parts: Vec<_> = Path::new(rel).components().collect();
        for (i, c) in parts.iter().enumerate() {
            cur.push(c);
            if self.target.is_dir(&cur) {
                continue;
            }
            let m = match meta(self.probe, &cur)? {
                Some(m) if self.probe.is_dir(&cur) => m,
                _ if i + 1 == parts.len() => last,
                _ => Meta {
                    mode: 0o755,
                    uid: 0,
                    gid: 0,
                },
            };
            self.target.mkdir_all(&cur, m.mode)?;
            chmod_dir(self.target, &cur, m.mode)?;
            chown(self.target, &cur, m.uid, m.gid)?;
        }
        Ok(())
    }

    /// Writes `rel` with `m`'s mode and owner, its parents made as `mkdir` does.
    fn write(&self, rel: &str, data: &[u8], m: Meta) -> Result<(), FsError> {
        if let Some(parent) = Path::new(rel).parent() {
            self.mkdir(
                &parent.to_string_lossy(),
                Meta {
                    mode: 0o755,
                    uid: 0,
                    gid: 0,
                },
            )?;
        }
        self.target.write(Path::new(rel), data, m.mode)?;
        chown(self.target, Path::new(rel), m.uid, m.gid)
    }
}

/// Root-owned, mode `mode`.
fn root_owned(mode: u32) -> Meta {
    Meta {
        mode,
        uid: 0,
        gid: 0,
    }
}

/// Days since the epoch, for shadow's "last changed" field
/// (SOURCE_DATE_EPOCH when set, so images stay reproducible).
fn days_now() -> u64 {
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        });
    secs / 86400
}

fn lines(data: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(data)
        .lines()
        .map(str::to_string)
        .collect()
}

fn joined(lines: &[String]) -> Vec<u8> {
    let mut s = lines.join("\n");
    s.push('\n');
    s.into_bytes()
}

/// An account file's entry names and their third field (uid or gid).
fn ids(lines: &[String]) -> Vec<(String, Option<u32>)> {
    lines
        .iter()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?.to_string();
            let id = f.nth(1).and_then(|i| i.parse().ok());
            Some((name, id))
        })
        .collect()
}

/// Applies `setup` to `target` (reading what the guest has from `target`,
/// else `probe`); returns the guest paths written. Everything that needs
/// the guest (its accounts, its zoneinfo) is checked before any write.
pub fn apply_setup(
    probe: &Path,
    target: &Path,
    setup: &GuestSetup,
) -> Result<Vec<PathBuf>, TailorError> {
    setup.validate().map_err(TailorError::Value)?;
    if setup.is_empty() {
        return Ok(vec![]);
    }
    let fs = |what: &str| {
        let what = what.to_string();
        move |source| TailorError::Fs { step: what, source }
    };
    let probe = Root::open(probe).map_err(fs("open the guest's tree"))?;
    let target_root = Root::open(target).map_err(fs("open the guest's tree"))?;
    let l = Layers {
        probe: &probe,
        target: &target_root,
    };
    let value = |m: String| TailorError::Value(m);
    let mut plan: Vec<(String, Vec<u8>, Meta)> = Vec::new();
    let mut links: Vec<(String, String)> = Vec::new();
    let mut dirs: Vec<(String, Meta)> = Vec::new();

    // Accounts: root's password, a user.
    let needs_accounts = setup.root_password_hash.is_some() || setup.user.is_some();
    if needs_accounts {
        let (passwd, passwd_meta) = l
            .read("etc/passwd")
            .map_err(fs("read /etc/passwd"))?
            .ok_or_else(|| {
                value("the guest has no /etc/passwd (its base-passwd package makes it); --root-password/--user need one".into())
            })?;
        let mut passwd = lines(&passwd);
        let (group, group_meta) = l
            .read("etc/group")
            .map_err(fs("read /etc/group"))?
            .unwrap_or((Vec::new(), root_owned(0o644)));
        let mut group = lines(&group);
        let shadow_gid = ids(&group)
            .into_iter()
            .find(|(n, _)| n == "shadow")
            .and_then(|(_, g)| g)
            .unwrap_or(0);
        let (shadow, shadow_meta) = l
            .read("etc/shadow")
            .map_err(fs("read /etc/shadow"))?
            .unwrap_or((
                Vec::new(),
                Meta {
                    mode: 0o640,
                    uid: 0,
                    gid: shadow_gid,
                },
            ));
        let mut shadow = lines(&shadow);
        let gshadow = l.read("etc/gshadow").map_err(fs("read /etc/gshadow"))?;
        let days = days_now();
        if let Some(hash) = &setup.root_password_hash {
            let entry = format!("root:{hash}:{days}:0:99999:7:::");
            match shadow.iter_mut().find(|s| s.starts_with("root:")) {
                Some(s) => {
                    let mut f: Vec<String> = s.split(':').map(str::to_string).collect();
                    f.resize(9.max(f.len()), String::new());
                    f[1] = hash.clone();
                    f[2] = days.to_string();
                    *s = f.join(":");
                }
                None => shadow.insert(0, entry),
            }
            if let Some(p) = passwd.iter_mut().find(|p| p.starts_with("root:")) {
                let mut f: Vec<&str> = p.split(':').collect();
                if f.len() > 1 {
                    f[1] = "x";
                }
                *p = f.join(":");
            }
        }
        if let Some(user) = &setup.user {
            let taken = |list: &[String], name: &str| ids(list).iter().any(|(n, _)| n == name);
            if taken(&passwd, user) || taken(&group, user) {
                return Err(value(format!(
                    "--user {user}: the guest already has a user or group of that name; pick another"
                )));
            }
            let used: Vec<u32> = ids(&passwd)
                .into_iter()
                .chain(ids(&group))
                .filter_map(|(_, i)| i)
                .collect();
            let id = (FIRST_UID..60000)
                .find(|i| !used.contains(i))
                .ok_or_else(|| value("--user: the guest has no free uid in 1000..59999".into()))?;
            let has_bash = ["usr/bin/bash", "bin/bash"]
                .iter()
                .any(|p| l.kind(p).ok().flatten().is_some());
            let shell = if has_bash { "/bin/bash" } else { "/bin/sh" };
            let home = format!("home/{user}");
            passwd.push(format!("{user}:x:{id}:{id}::/{home}:{shell}"));
            group.push(format!("{user}:x:{id}:"));
            shadow.push(format!("{user}:!:{days}:0:99999:7:::"));
            if let Some((g, m)) = &gshadow {
                let mut g = lines(g);
                g.push(format!("{user}:!::"));
                plan.push(("etc/gshadow".into(), joined(&g), *m));
            }
            let owned = |mode| Meta {
                mode,
                uid: id,
                gid: id,
            };
            dirs.push((home.clone(), owned(0o700)));
            // useradd -m: the top of /etc/skel, owned by the user.
            for name in probe
                .list(Path::new("etc/skel"))
                .map_err(fs("list /etc/skel"))?
            {
                let rel = format!("etc/skel/{}", name.to_string_lossy());
                if let Some((data, m)) = l.read(&rel).map_err(fs("read /etc/skel"))? {
                    plan.push((
                        format!("{home}/{}", name.to_string_lossy()),
                        data,
                        owned(m.mode),
                    ));
                }
            }
            if let Some(keys) = &setup.ssh_keys {
                dirs.push((format!("{home}/.ssh"), owned(0o700)));
                plan.push((
                    format!("{home}/.ssh/authorized_keys"),
                    keys.as_bytes().to_vec(),
                    owned(0o600),
                ));
            }
            plan.push(("etc/group".into(), joined(&group), group_meta));
        }
        plan.push(("etc/passwd".into(), joined(&passwd), passwd_meta));
        plan.push(("etc/shadow".into(), joined(&shadow), shadow_meta));
    }

    if let Some(keys) = &setup.ssh_keys {
        dirs.push(("root/.ssh".into(), root_owned(0o700)));
        plan.push((
            "root/.ssh/authorized_keys".into(),
            keys.as_bytes().to_vec(),
            root_owned(0o600),
        ));
    }

    if let Some(zone) = &setup.timezone {
        let file = format!("usr/share/zoneinfo/{zone}");
        match l.kind(&file).map_err(fs("look up the time zone"))? {
            Some(Kind::File | Kind::Symlink) => {}
            _ if l.kind("usr/share/zoneinfo").ok().flatten() != Some(Kind::Dir) => {
                return Err(value(format!(
                    "--timezone {zone}: the guest has no time zone data (/usr/share/zoneinfo); add --include tzdata"
                )))
            }
            _ => {
                return Err(value(format!(
                    "--timezone {zone}: no such zone in the guest's /usr/share/zoneinfo (like Europe/Paris, UTC)"
                )))
            }
        }
        links.push(("etc/localtime".into(), format!("/{file}")));
        plan.push((
            "etc/timezone".into(),
            format!("{zone}\n").into_bytes(),
            root_owned(0o644),
        ));
    }

    if let Some(locale) = &setup.locale {
        plan.extend(locale_files(&l, locale)?);
    }

    let mut apt = String::new();
    for o in &setup.apt_options {
        let o = o.trim();
        apt.push_str(o);
        if !o.ends_with(';') && !o.ends_with('}') {
            apt.push(';');
        }
        apt.push('\n');
    }
    if !apt.is_empty() {
        plan.push((APT_CONF.into(), apt.into_bytes(), root_owned(0o644)));
    }
    if let Some(p) = &setup.proxy {
        plan.push((
            APT_PROXY_CONF.into(),
            format!("Acquire::http::Proxy \"{p}\";\n").into_bytes(),
            root_owned(0o644),
        ));
    }
    if !setup.dpkg_options.is_empty() {
        let text: String = setup
            .dpkg_options
            .iter()
            .map(|o| format!("{}\n", o.trim().trim_start_matches("--")))
            .collect();
        plan.push((DPKG_CFG.into(), text.into_bytes(), root_owned(0o644)));
    }
    if !setup.sources.is_empty() {
        let text: String = setup
            .sources
            .iter()
            .map(|s| format!("{}\n", s.trim()))
            .collect();
        plan.push((SOURCES_LIST.into(), text.into_bytes(), root_owned(0o644)));
    }

    // Every check passed: write.
    let mut written = Vec::new();
    for (d, m) in &dirs {
        l.mkdir(d, *m).map_err(fs(&format!("make /{d}")))?;
    }
    for (rel, data, m) in &plan {
        l.write(rel, data, *m)
            .map_err(fs(&format!("write /{rel}")))?;
        written.push(Path::new("/").join(rel));
    }
    for (rel, to) in &links {
        l.mkdir("etc", root_owned(0o755)).map_err(fs("make /etc"))?;
        target_root
            .symlink(Path::new(rel), Path::new(to))
            .map_err(fs(&format!("link /{rel}")))?;
        written.push(Path::new("/").join(rel));
    }
    Ok(written)
}

/// /etc/default/locale, and the line in /etc/locale.gen when the guest
/// has the `locales` package (so its `locale-gen` makes it); a guest that
/// lists its supported locales must list this one.
fn locale_files(l: &Layers<'_>, locale: &str) -> Result<Vec<(String, Vec<u8>, Meta)>, TailorError> {
    let fs = |source| TailorError::Fs {
        step: "read the guest's locale lists".into(),
        source,
    };
    let mut out = vec![(
        "etc/default/locale".to_string(),
        format!("LANG={locale}\n").into_bytes(),
        root_owned(0o644),
    )];
    if ["C", "POSIX", "C.UTF-8", "C.utf8"].contains(&locale) {
        return Ok(out);
    }
    let supported = l.read("usr/share/i18n/SUPPORTED").map_err(fs)?;
    let mut line = None;
    if let Some((s, _)) = &supported {
        line = lines(s)
            .into_iter()
            .find(|x| x.split_whitespace().next() == Some(locale));
        if line.is_none() {
            return Err(TailorError::Value(format!(
                "--locale {locale}: not in the guest's /usr/share/i18n/SUPPORTED (like en_US.UTF-8)"
            )));
        }
    }
    if let Some((gen, m)) = l.read("etc/locale.gen").map_err(fs)? {
        let want = line.unwrap_or_else(|| {
            let charset = locale.split_once('.').map_or("ISO-8859-1", |(_, c)| c);
            format!("{locale} {charset}")
        });
        let mut g = lines(&gen);
        let mut found = false;
        for x in g.iter_mut() {
            if x.trim_start_matches('#').trim() == want {
                *x = want.clone();
                found = true;
            }
        }
        if !found {
            g.push(want);
        }
        out.push(("etc/locale.gen".into(), joined(&g), m));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_hashes_are_checked_by_form() {
        let h = hash_password("secret").unwrap();
        assert!(h.starts_with("$6$"), "{h}");
        check_password_hash(&h).unwrap();
        check_password_hash(
            "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7",
        )
        .unwrap();
        for bad in [
            "secret",
            "$6$salt",
            "$1$abc$def",
            "$6$sa:lt$x",
            "$6$rounds=5$s$h",
        ] {
            assert!(check_password_hash(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ssh_keys_must_be_public_openssh_keys() {
        let (_, public) = super::super::sshkeys::ed25519_host_key("me@x").unwrap();
        check_ssh_keys(&public).unwrap();
        check_ssh_keys(&format!("# mine\n\n{public}")).unwrap();
        let e = check_ssh_keys("ssh-ed25519 AAAAB3NzaC1yc2E= x").unwrap_err();
        assert!(e.contains("not base64 of a ssh-ed25519 key"), "{e}");
        assert!(check_ssh_keys("-----BEGIN OPENSSH PRIVATE KEY-----\n").is_err());
        assert!(check_ssh_keys("# nothing\n").is_err());
    }

    #[test]
    fn names_are_checked() {
        check_user_name("alice").unwrap();
        for bad in ["root", "Alice", "1x", "", "a b"] {
            assert!(check_user_name(bad).is_err(), "{bad}");
        }
        check_zone_name("Europe/Paris").unwrap();
        check_zone_name("Etc/GMT+1").unwrap();
        for bad in ["../etc/passwd", "Europe//Paris", "/UTC", ""] {
            assert!(check_zone_name(bad).is_err(), "{bad}");
        }
        for good in ["en_US.UTF-8", "C.UTF-8", "de_DE@euro", "POSIX"] {
            check_locale_name(good).unwrap();
        }
        for bad in ["en US", "x", "en_US.UTF-8\n"] {
            assert!(check_locale_name(bad).is_err(), "{bad}");
        }
        check_proxy_url("http://127.0.0.1:3128").unwrap();
        assert!(check_proxy_url("https://p").is_err());
        check_source_line("deb http://deb.debian.org/debian bookworm-backports main").unwrap();
        assert!(check_source_line("deb bookworm main").is_err());
    }
}
