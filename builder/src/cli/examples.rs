//! The "Examples:" section of every command's `--help`, kept in one table
//! so each command shows how it is really called (and a test can check
//! that none is missing). A subcommand's help text comes from its variant's
//! doc comment, so examples in an argument struct's doc are never shown.

use clap::Command;

/// Command path (space-separated below the top level) and its examples.
const EXAMPLES: &[(&str, &str)] = &[
    (
        "build",
        "vbuild build debian bookworm --name mail01 --ip 10.77.0.11/24 --memory 512M\n  vbuild build debian trixie --name web01 --variant standard --include openssh-server,nginx\n  vbuild build debian bookworm --name w2 --restart always --autostart",
    ),
    (
        "debian",
        "vbuild debian bookworm --name mail01 --ip 10.77.0.11/24 --memory 512M\n  vbuild debian trixie --name web01 --variant standard --include openssh-server,nginx\n  vbuild debian bookworm --name t1 --mirror http://127.0.0.1:3142/debian\n  vbuild debian bookworm --name tree1 --no-init --net-mode none\n  vbuild debian bookworm --name web02 --restart on-failure --autostart\n  vbuild debian stable --name st1   (the mirror says which release stable is)\n  SSL_CERT_FILE=/etc/ssl/corp-ca.pem vbuild debian bookworm --name c1 --mirror https://mirror.corp/debian\n  vbuild debian bookworm --name l1 --mirror file:///srv/mirror/debian\n  SOURCE_DATE_EPOCH=1700000000 vbuild debian bookworm --output bookworm.tar.zst",
    ),
    (
        "fedora",
        "vbuild fedora 44 --name web01\n  vbuild fedora 44 --name t1 --mirror http://127.0.0.1:8080/fedora/44/Everything/x86_64/os\n  vbuild fedora 44 --name t2 --mirror URL --keyring my-repo.asc --variant custom --include bash",
    ),
    ("list", "vbuild list\n  vbuild list --json | jq -r '.[].name'"),
    (
        "start",
        "vbuild start mail01\n  vbuild start mail01 --wait --timeout 60\n  vbuild start mail01 --console\n  vbuild start web01 web02 db01       (each is reported; exit 1 if any failed)\n  vbuild start --all --json\n  vbuild start --autostart            (every guest marked with `vbuild autostart NAME on`)",
    ),
    (
        "stop",
        "vbuild stop mail01\n  vbuild stop mail01 --timeout 5\n  vbuild stop mail01 --kill           (SIGKILL at once, no shutdown)\n  vbuild stop web01 web02\n  vbuild stop --all\n  vbuild stop --autostart             (every running guest marked for autostart)",
    ),
    ("restart", "vbuild restart mail01 --wait"),
    (
        "autostart",
        "vbuild autostart web01 db01 on      (started at host boot, in name order)\n  vbuild autostart web01 off\n  vbuild autostart --all off\n  vbuild autostart                    (the marked guests and the installed boot unit)\n  vbuild autostart install            (systemd unit, or init script when PID 1 is not systemd)",
    ),
    (
        "autostart install",
        "vbuild autostart install\n  vbuild autostart install --init sysvinit --json",
    ),
    (
        "autostart uninstall",
        "vbuild autostart uninstall",
    ),
    ("status", "vbuild status mail01\n  vbuild status mail01 --json"),
    (
        "exec",
        "vbuild exec mail01 -- systemctl is-system-running\n  vbuild exec mail01 cat /etc/os-release\n  vbuild exec -t -e TERM=xterm mail01 -- top\n  vbuild exec mail01 --user www-data --workdir /var/www -- ls -l\n  vbuild exec mail01 --user 1000:100 -- id",
    ),
    (
        "enter",
        "vbuild enter mail01\n  vbuild enter mail01 -- htop        (a command on the terminal instead of a login shell)",
    ),
    ("console", "vbuild console mail01     (detach with Ctrl-])"),
    (
        "delete",
        "vbuild stop mail01 && vbuild delete mail01\n  vbuild delete --force mail01       (kills it first if it runs)\n  vbuild delete t1 t2 t3 --json",
    ),
    (
        "run",
        "vbuild run --rootfs /srv/tree -- /bin/sh -c 'cat /etc/os-release'\n  vbuild run --rootfs /var/lib/vbuild/guests/t1/rootfs --net -- apt-get update",
    ),
    (
        "limit",
        "vbuild limit mail01\n  vbuild limit mail01 --memory 1G --swap 0 --cpus 1.5\n  vbuild limit mail01 --disk 4G --io-write 20M\n  vbuild limit mail01 --memory max",
    ),
    (
        "set",
        "vbuild set mail01 --ip 10.77.0.20/24 --ip fd77::20/64\n  vbuild set mail01 --net lan0 --ip auto\n  vbuild set web01 --publish 8080:80 --publish 5353:53/udp\n  vbuild set web01 --no-publish\n  vbuild set web01 --restart on-failure   (started again when init fails; at most 5 times in 60 s)",
    ),
    (
        "net",
        "vbuild net create lan0 --subnet 10.77.1.0/24 --nat\n  vbuild net list\n  vbuild net delete lan0",
    ),
    (
        "net create",
        "vbuild net create lan0 --subnet 10.77.1.0/24 --nat\n  vbuild net create lab0 --subnet 10.77.2.0/24 --subnet fd77:2::/64 --isolated --dns 10.77.2.1\n  vbuild net create quiet0 --subnet 10.77.3.0/24 --nat --no-dns   # guests do not find each other by name",
    ),
    ("net list", "vbuild net list\n  vbuild net list --json"),
    ("net show", "vbuild net show vbuild0"),
    ("net delete", "vbuild net delete lan0"),
    ("check", "vbuild check\n  vbuild check --fix"),
    (
        "template",
        "vbuild template list\n  vbuild template refresh debian bookworm\n  vbuild template prune\n  vbuild template dedupe",
    ),
    ("template list", "vbuild template list\n  vbuild template list --json"),
    (
        "template refresh",
        "vbuild template refresh debian bookworm\n  vbuild template refresh debian trixie --variant standard --json",
    ),
    (
        "template prune",
        "vbuild template prune                 # every template no guest uses\n  vbuild template prune 3f9a0c1d2e4b5a6978812233445566ff",
    ),
    ("template dedupe", "vbuild template dedupe\n  vbuild template dedupe --json"),
    (
        "export",
        "vbuild export mail01 --output mail01.tar.zst\n  vbuild export mail01 --output mail01-oci/ --format oci\n  vbuild export mail01 --output mail01-lxc/ --format lxc",
    ),
    (
        "import",
        "vbuild import mail01.tar.zst --name mail04\n  vbuild import bookworm.tar.zst --name t2 --net-mode none",
    ),
    (
        "catalog",
        "vbuild catalog add ./catalog bookworm.tar.zst --sign key.asc\n  vbuild catalog serve ./catalog --listen 127.0.0.1:8443",
    ),
    (
        "catalog serve",
        "vbuild catalog serve ./catalog --listen 127.0.0.1:8443\n  vbuild catalog serve ./catalog --listen 0.0.0.0:443 --cert fullchain.pem --key privkey.pem",
    ),
    (
        "pull",
        "vbuild pull https://127.0.0.1:8443 debian/bookworm --name mail03 --key catalog.asc\n  SSL_CERT_FILE=cert.pem vbuild pull https://images.example.org debian/trixie/minbase --name web05\n  vbuild pull https://127.0.0.1:8443 debian/bookworm --name mail04 --key catalog.asc --copy   # own full tree, not an overlay",
    ),
    (
        "catalog add",
        "vbuild catalog add ./catalog bookworm.tar.zst --sign key.asc\n  SOURCE_DATE_EPOCH=1700000000 vbuild catalog add ./catalog trixie.tar.xz --variant minbase",
    ),
    // cli: everyday commands (cache, logs, cp, completions, man).
    (
        "cache",
        "vbuild cache list\n  vbuild cache prune --older-than 30d\n  vbuild cache prune --all",
    ),
    ("cache list", "vbuild cache list\n  vbuild cache list --json"),
    (
        "cache prune",
        "vbuild cache prune                    # what no build used in 30 days\n  vbuild cache prune --older-than 12h\n  vbuild cache prune --all --json",
    ),
    (
        "logs",
        "vbuild logs mail01\n  vbuild logs mail01 -n 50\n  vbuild logs mail01 -f          (until it stops or Ctrl-C)\n  vbuild logs mail01 --supervisor",
    ),
    (
        "cp",
        "vbuild cp ./app.conf web01:/etc/app/app.conf\n  vbuild cp web01:/var/log/app.log .\n  vbuild cp -r ./site web01:/var/www/\n  vbuild cp -r web01:/etc/app ./app-etc --json",
    ),
    (
        "completions",
        "vbuild completions bash > /etc/bash_completion.d/vbuild\n  vbuild completions zsh > \"${fpath[1]}/_vbuild\"\n  vbuild completions fish > ~/.config/fish/completions/vbuild.fish",
    ),
    (
        "man",
        "vbuild man | man -l -\n  vbuild man --output /usr/local/share/man/man1",
    ),
];

/// `cmd` with the examples of the table added to each command's help.
pub fn with_examples(cmd: Command) -> Command {
    add(cmd, "")
}

fn add(mut cmd: Command, path: &str) -> Command {
    if let Some((_, ex)) = EXAMPLES.iter().find(|(p, _)| *p == path) {
        cmd = cmd.after_help(format!("Examples:\n  {ex}"));
    }
    let subs: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    for s in subs {
        let p = if path.is_empty() {
            s.clone()
        } else {
            format!("{path} {s}")
        };
        cmd = cmd.mut_subcommand(&s, |c| add(c, &p));
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every command and subcommand, with its path.
    fn walk(cmd: &mut Command, path: String, out: &mut Vec<(String, String)>) {
        let help = cmd.render_long_help().to_string();
        out.push((path.clone(), help));
        // clap's own `help` subcommand explains the others.
        for s in cmd.get_subcommands_mut().filter(|s| s.get_name() != "help") {
            let p = format!("{path} {}", s.get_name()).trim().to_string();
            walk(s, p, out);
        }
    }

    #[test]
    fn every_command_has_examples_in_its_help() {
        let mut cmd = with_examples(super::super::Cli::command());
        cmd.build();
        let mut all = Vec::new();
        walk(&mut cmd, String::new(), &mut all);
        assert!(all.len() > 15, "{}", all.len());
        let missing: Vec<&str> = all
            .iter()
            .filter(|(_, h)| !h.contains("Examples:\n  vbuild"))
            .map(|(p, _)| p.as_str())
            .collect();
        assert!(missing.is_empty(), "no examples in --help of: {missing:?}");
    }

    #[test]
    fn the_table_names_only_commands_that_exist() {
        let cmd = super::super::Cli::command();
        for (path, _) in EXAMPLES {
            let mut c = &cmd;
            for w in path.split(' ') {
                c = c
                    .get_subcommands()
                    .find(|s| s.get_name() == w)
                    .unwrap_or_else(|| panic!("{path}: no such command"));
            }
        }
    }
}
