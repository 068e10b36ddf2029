//! The build's customisation flags (guest setup, hooks, components,
//! sources, apt/dpkg options, proxy), shared by `vbuild build`, `vbuild
//! debian` and `vbuild fedora`, merged over the recipe's `[customize]`.

use clap::Args;
use std::io::BufRead;
use std::path::PathBuf;
use vbuild_builder::customize::Customize;
use vbuild_builder::recipe::Recipe;
use vbuild_builder::tailor::setup;

/// Guest setup and mmdebstrap-style customisation of a build.
#[derive(Args, Debug, Default)]
#[command(next_help_heading = "Customisation (also a recipe's [customize] table)")]
pub struct CustomizeFlags {
    /// root's password as a crypt(3) hash in /etc/shadow, e.g. from
    /// `openssl passwd -6` or `mkpasswd -m yescrypt` ($6$SALT$HASH, $y$...).
    #[arg(long, value_name = "HASH", conflicts_with = "root_password")]
    pub root_password_hash: Option<String>,
    /// Read root's password as one line from stdin (never give it as an
    /// argument); stored as sha512-crypt ($6$).
    #[arg(long)]
    pub root_password: bool,
    /// An OpenSSH public key file (~/.ssh/id_ed25519.pub) for root's
    /// /root/.ssh/authorized_keys (0600), and for --user's too; repeatable.
    #[arg(long, value_name = "FILE")]
    pub ssh_key: Vec<PathBuf>,
    /// A login user as `useradd -m` makes one: the first free uid/gid from
    /// 1000, a group of its name, /home/NAME (0700, /etc/skel copied), a
    /// locked password, /bin/bash when the guest has it. No sudo rights.
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// Time zone from the guest's zoneinfo (needs tzdata: --include tzdata):
    /// /etc/localtime links to it and /etc/timezone names it.
    #[arg(long, value_name = "ZONE")]
    pub timezone: Option<String>,
    /// LANG in /etc/default/locale. C.UTF-8 works as is; any other needs the
    /// guest's `locales` package (--include locales): its line is enabled in
    /// /etc/locale.gen, and `locale-gen` must run once in the guest (e.g.
    /// --customize-hook 'chroot "$1" locale-gen').
    #[arg(long, value_name = "LOCALE")]
    pub locale: Option<String>,
    /// A shell command run on the host as the invoking user (not in the
    /// guest) with the rootfs as $1, when the rootfs is still empty;
    /// repeatable. Hooks get VBUILD_ROOTFS, VBUILD_STAGE, VBUILD_NAME,
    /// VBUILD_DISTRO, VBUILD_RELEASE, VBUILD_VARIANT, VBUILD_ARCH; a hook
    /// that fails fails the build with its exit code, keeping nothing; a
    /// build with hooks gets a tree of its own (as --copy).
    #[arg(long, value_name = "CMD")]
    pub setup_hook: Vec<String>,
    /// As --setup-hook, once every package is unpacked, before any
    /// maintainer script (debian only).
    #[arg(long, value_name = "CMD")]
    pub extract_hook: Vec<String>,
    /// As --setup-hook, once every package is configured (vbuild installs
    /// in one pass), before tailoring.
    #[arg(long, value_name = "CMD")]
    pub essential_hook: Vec<String>,
    /// As --setup-hook, on the finished tree (tailored, setup applied).
    #[arg(long, value_name = "CMD")]
    pub customize_hook: Vec<String>,
    /// Archive components to read instead of the recipe's (debian: main,
    /// contrib, non-free, non-free-firmware); the guest's sources list them.
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub components: Vec<String>,
    /// An extra apt source, 'deb URL SUITE COMPONENT...': read by the build
    /// (its InRelease signed by a trusted key: the recipe's or --keyring)
    /// and written to the guest's /etc/apt/sources.list.d/vbuild.list.
    #[arg(long, value_name = "LINE")]
    pub source: Vec<String>,
    /// An apt.conf line for the guest's /etc/apt/apt.conf.d/99vbuild
    /// ('Acquire::Retries "3"'). The build itself honours
    /// Acquire::http::Proxy (as --proxy); no other.
    #[arg(long, value_name = "OPT")]
    pub aptopt: Vec<String>,
    /// A dpkg.cfg line for the guest's /etc/dpkg/dpkg.cfg.d/99vbuild
    /// ('path-exclude=/usr/share/man/*'); for the guest's own dpkg, the
    /// build's unpacking does not read it.
    #[arg(long, value_name = "OPT")]
    pub dpkgopt: Vec<String>,
    /// An HTTP proxy for the build's downloads (instead of HTTP(S)_PROXY),
    /// also the guest's apt proxy (Acquire::http::Proxy in
    /// /etc/apt/apt.conf.d/99vbuild-proxy).
    #[arg(long, value_name = "URL")]
    pub proxy: Option<String>,
}

/// Reads one line from stdin, echo off when it is a terminal.
fn read_password() -> anyhow::Result<String> {
    use nix::sys::termios;
    let stdin = std::io::stdin();
    let tty = nix::unistd::isatty(libc::STDIN_FILENO).unwrap_or(false);
    let saved = if tty {
        eprint!("root password: ");
        let t = termios::tcgetattr(&stdin)?;
        let mut quiet = t.clone();
        quiet.local_flags.remove(termios::LocalFlags::ECHO);
        termios::tcsetattr(&stdin, termios::SetArg::TCSANOW, &quiet)?;
        Some(t)
    } else {
        None
    };
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if let Some(t) = saved {
        let _ = termios::tcsetattr(&stdin, termios::SetArg::TCSANOW, &t);
        eprintln!();
    }
    read?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        super::output::invalid!(
            "--root-password: stdin gave no password (pipe one line: `echo \"$PW\" | vbuild ...`)"
        );
    }
    Ok(password.to_string())
}

impl CustomizeFlags {
    /// The recipe's `[customize]` with these flags over it, checked.
    pub fn to_customize(&self, recipe: &Recipe) -> anyhow::Result<Customize> {
        let mut c = recipe.customize.to_customize();
        let s = &mut c.setup;
        if let Some(h) = &self.root_password_hash {
            s.root_password_hash = Some(h.clone());
        }
        if self.root_password {
            let pw = read_password()?;
            s.root_password_hash = Some(setup::hash_password(&pw).map_err(anyhow::Error::msg)?);
        }
        let mut keys = s.ssh_keys.take().unwrap_or_default();
        for f in &self.ssh_key {
            let text = match std::fs::read_to_string(f) {
                Ok(t) => t,
                Err(e) => super::output::invalid!(
                    "--ssh-key {}: {e} (give an OpenSSH public key file such as ~/.ssh/id_ed25519.pub)",
                    f.display()
                ),
            };
            if let Err(m) = setup::check_ssh_keys(&text) {
                super::output::invalid!("{m} ({})", f.display());
            }
            keys.push_str(&text);
            if !keys.ends_with('\n') {
                keys.push('\n');
            }
        }
        s.ssh_keys = (!keys.is_empty()).then_some(keys);
        for (field, flag) in [
            (&mut s.user, &self.user),
            (&mut s.timezone, &self.timezone),
            (&mut s.locale, &self.locale),
            (&mut s.proxy, &self.proxy),
        ] {
            if flag.is_some() {
                *field = flag.clone();
            }
        }
        s.apt_options.extend(self.aptopt.iter().cloned());
        s.dpkg_options.extend(self.dpkgopt.iter().cloned());
        s.sources.extend(self.source.iter().cloned());
        c.hooks.setup.extend(self.setup_hook.iter().cloned());
        c.hooks.extract.extend(self.extract_hook.iter().cloned());
        c.hooks
            .essential
            .extend(self.essential_hook.iter().cloned());
        c.hooks
            .customize
            .extend(self.customize_hook.iter().cloned());
        let components: Vec<String> = self
            .components
            .iter()
            .filter(|s| !s.is_empty())
            .cloned()
            .collect();
        if !components.is_empty() {
            c.components = components;
        }
        if let Err(m) = c.validate() {
            super::output::invalid!("{m}");
        }
        Ok(c)
    }
}
