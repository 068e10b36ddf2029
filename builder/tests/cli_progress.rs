//! What a build draws on a terminal: `vbuild debian` runs with its stderr
//! on a pseudo-terminal (so the progress bars are drawn) against a
//! generated, signed repository on loopback. A build that downloads shows
//! the download bar while bytes arrive; a build whose packages all come
//! from the cache never shows one; neither leaves a bar on the screen at
//! the end, and no counter ever runs past its total (`installing N/M`,
//! `packages N/M` with N <= M). The screen is replayed from the bytes the
//! terminal received by a small model of the sequences indicatif sends
//! (cursor up and down, erase line, erase below). Needs root.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use vbuild_testkit::deb::DebBuilder;
use vbuild_testkit::http::TestServer;
use vbuild_testkit::pgp::TestKey;
use vbuild_testkit::repo::{TestPackage, TestRepo};

fn root_or_skip() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "needs root (CI=true)"
    );
    eprintln!("skipped: needs root");
    false
}

struct Mirror {
    _dir: tempfile::TempDir,
    server: TestServer,
    key_file: PathBuf,
}

fn deb(b: DebBuilder, fields: &[(&str, &str)]) -> TestPackage {
    let mut p = TestPackage::new(b.name(), "1.0", "amd64");
    for (k, v) in fields {
        p = p.field(k, v);
    }
    p.deb(b.build())
}

/// A busybox shell (Essential) and `hello`, which needs it.
fn mirror() -> Mirror {
    let bb = std::fs::read("/bin/busybox").expect("busybox-static is installed by test.sh");
    let mut shell = DebBuilder::new("busybox-sh", "1.0", "amd64")
        .field("Essential", "yes")
        .dir("usr/bin", 0o755)
        .file("usr/bin/busybox", &bb, 0o755);
    for app in ["sh", "cat", "echo", "mkdir", "ln", "rm", "true"] {
        shell = shell.symlink(&format!("usr/bin/{app}"), "busybox");
    }
    let hello = DebBuilder::new("hello", "1.0", "amd64")
        .field("Depends", "busybox-sh")
        .file("usr/share/hello/greeting", b"hi\n", 0o644)
        .script("postinst", "#!/bin/sh\nset -e\necho configured\n");
    let mut repo = TestRepo::new("bookworm");
    repo.add(deb(
        shell,
        &[("Essential", "yes"), ("Priority", "required")],
    ))
    .add(deb(
        hello,
        &[("Depends", "busybox-sh"), ("Priority", "optional")],
    ));
    let dir = tempfile::tempdir().unwrap();
    let key = TestKey::generate("vbuild progress test <test@vbuild.invalid>");
    repo.write(dir.path(), &key).unwrap();
    let key_file = dir.path().join("test-key.asc");
    std::fs::write(&key_file, key.public_armored()).unwrap();
    let server = TestServer::serve(dir.path());
    Mirror {
        _dir: dir,
        server,
        key_file,
    }
}

/// A full-copy build (so every build unpacks, the second from the cache).
fn build_args(m: &Mirror, url: &str, name: &str) -> Vec<String> {
    [
        "debian",
        "bookworm",
        "--name",
        name,
        "--mirror",
        url,
        "--keyring",
        m.key_file.to_str().unwrap(),
        "--variant",
        "essential",
        "--include",
        "hello",
        "--no-init",
        "--net-mode",
        "none",
        "--copy",
    ]
    .map(String::from)
    .to_vec()
}

/// What a run on a terminal gave: exit status, stdout (a pipe) and every
/// byte written to the terminal (stderr).
struct TtyRun {
    ok: bool,
    stdout: String,
    tty: Vec<u8>,
}

/// Runs vbuild with stderr on a fresh pseudo-terminal of 100x30.
fn vbuild_on_a_tty(root: &Path, args: &[String]) -> TtyRun {
    let size = nix::pty::Winsize {
        ws_row: 30,
        ws_col: 100,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&size), None).expect("openpty");
    let master: OwnedFd = pty.master;
    let slave: OwnedFd = pty.slave;
    let child = Command::new(env!("CARGO_BIN_EXE_vbuild"))
        .arg("--root")
        .arg(root)
        .args(args)
        .env("TERM", "xterm")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(slave))
        .spawn()
        .unwrap();
    // The reader ends with EIO once the child (the last holder of the
    // slave) has exited.
    let reader = std::thread::spawn(move || {
        let mut f = std::fs::File::from(master);
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => all.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        all
    });
    let out = child.wait_with_output().unwrap();
    let tty = reader.join().unwrap();
    TtyRun {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        tty,
    }
}

/// The text left on a terminal after it received `bytes`: printable
/// characters overwrite at the cursor; `\r`, `\n` (as a terminal with
/// ONLCR shows it), backspace, and the CSI sequences cursor up/down/
/// forward/back/column (A B C D G), erase in line (K) and erase below (J)
/// are followed; other sequences (colours, cursor visibility) draw
/// nothing. The screen grows downwards without scrolling lines away.
fn screen(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    let mut lines: Vec<Vec<char>> = vec![vec![]];
    let (mut row, mut col) = (0usize, 0usize);
    let mut it = text.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\r' => col = 0,
            '\n' => {
                row += 1;
                col = 0;
            }
            '\x08' => col = col.saturating_sub(1),
            '\x1b' => {
                if it.peek() != Some(&'[') {
                    it.next();
                    continue;
                }
                it.next();
                let mut params = String::new();
                let mut fin = '\0';
                for d in it.by_ref() {
                    if ('\x40'..='\x7e').contains(&d) {
                        fin = d;
                        break;
                    }
                    params.push(d);
                }
                let n: usize = params.trim_start_matches('?').parse().unwrap_or(0);
                let line = |lines: &mut Vec<Vec<char>>, row: usize| {
                    while lines.len() <= row {
                        lines.push(vec![]);
                    }
                };
                line(&mut lines, row);
                match fin {
                    'A' => row = row.saturating_sub(n.max(1)),
                    'B' => row += n.max(1),
                    'C' => col += n.max(1),
                    'D' => col = col.saturating_sub(n.max(1)),
                    'G' => col = n.max(1) - 1,
                    'K' => match n {
                        0 => lines[row].truncate(col),
                        1 => {
                            for ch in lines[row].iter_mut().take(col + 1) {
                                *ch = ' ';
                            }
                        }
                        _ => lines[row].clear(),
                    },
                    'J' if n == 0 => {
                        lines[row].truncate(col);
                        lines.truncate(row + 1);
                    }
                    'J' => lines.iter_mut().for_each(Vec::clear),
                    _ => {}
                }
            }
            c if c.is_control() => {}
            c => {
                while lines.len() <= row {
                    lines.push(vec![]);
                }
                let l = &mut lines[row];
                while l.len() < col {
                    l.push(' ');
                }
                if col < l.len() {
                    l[col] = c;
                } else {
                    l.push(c);
                }
                col += 1;
            }
        }
        while lines.len() <= row {
            lines.push(vec![]);
        }
    }
    lines
        .into_iter()
        .map(|l| l.into_iter().collect::<String>().trim_end().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// `text` without its escape sequences (CSI `ESC [ ... final`, and
/// two-character ones).
fn strip_escapes(text: &str) -> String {
    let mut out = String::new();
    let mut it = text.chars().peekable();
    while let Some(c) = it.next() {
        if c != '\x1b' {
            out.push(c);
            continue;
        }
        if it.next() == Some('[') {
            for d in it.by_ref() {
                if ('\x40'..='\x7e').contains(&d) {
                    break;
                }
            }
        }
    }
    out
}

/// Every `N/M` counter the package bar drew (`STAGE [BAR] N/M`), in the
/// order drawn, with the stage it was drawn for.
fn counters(bytes: &[u8]) -> Vec<(String, u64, u64)> {
    let text = strip_escapes(&String::from_utf8_lossy(bytes));
    let mut out = Vec::new();
    for (i, _) in text.match_indices("] ") {
        let rest = &text[i + 2..];
        let num = |s: &str| -> Option<(u64, usize)> {
            let len = s.bytes().take_while(u8::is_ascii_digit).count();
            s[..len].parse().ok().map(|n| (n, len))
        };
        let Some((pos, a)) = num(rest) else { continue };
        if !rest[a..].starts_with('/') {
            continue;
        }
        let Some((len, _)) = num(&rest[a + 1..]) else {
            continue;
        };
        let head = &text[..i];
        let start = head.rfind('[').unwrap_or(0);
        let stage = head[..start]
            .rsplit(|c: char| c.is_control() || c == ' ')
            .find(|w| !w.is_empty())
            .unwrap_or("")
            .to_string();
        out.push((stage, pos, len));
    }
    out
}

/// The download bar (bytes of a total and an eta; the package bar counts
/// the same stage's files as `download [..] N/M`).
fn is_download_bar(line: &str) -> bool {
    line.contains(" eta ") || line.contains("B/")
}

#[test]
fn a_build_from_the_cache_draws_no_download_bar_and_no_counter_runs_past_its_total() {
    if !root_or_skip() {
        return;
    }
    let m = mirror();
    let root = tempfile::tempdir().unwrap();
    let url = m.server.url();
    // Slow answers, so the first build's download bar is surely drawn.
    m.server.set_delay(Duration::from_millis(300));

    let first = vbuild_on_a_tty(root.path(), &build_args(&m, &url, "p1"));
    let first_screen = screen(&first.tty);
    assert!(first.ok, "first build failed:\n{}", first_screen.join("\n"));
    let drawn = String::from_utf8_lossy(&first.tty).into_owned();
    assert!(
        drawn.contains(" eta ") && drawn.contains("B/"),
        "a build that downloads shows the download bar while it does: {drawn:?}"
    );
    assert!(
        !first_screen
            .iter()
            .any(|l| is_download_bar(l) || l.contains("] ")),
        "a bar is left on the screen after the build:\n{}",
        first_screen.join("\n")
    );

    m.server.set_delay(Duration::ZERO);
    let debs = |m: &Mirror| -> usize {
        m.server
            .request_log()
            .iter()
            .filter(|(p, _)| p.ends_with(".deb"))
            .map(|(_, n)| n)
            .sum()
    };
    let before = debs(&m);
    let second = vbuild_on_a_tty(root.path(), &build_args(&m, &url, "p2"));
    let second_screen = screen(&second.tty);
    assert!(
        second.ok,
        "second build failed:\n{}",
        second_screen.join("\n")
    );
    assert_eq!(debs(&m), before, "the second build downloaded .debs");
    assert!(
        second.stdout.starts_with("p2  debian bookworm"),
        "{}",
        second.stdout
    );
    let drawn = String::from_utf8_lossy(&second.tty).into_owned();
    assert!(
        drawn.contains("installing ["),
        "the bars were drawn at all (a terminal): {drawn:?}"
    );
    assert!(
        !drawn.contains("B/") && !drawn.contains(" eta "),
        "a build from the cache drew a download bar: {drawn:?}"
    );
    assert!(
        !second_screen
            .iter()
            .any(|l| is_download_bar(l) || l.contains("] ")),
        "a bar is left on the screen after the build:\n{}",
        second_screen.join("\n")
    );

    for (run, bytes) in [("first", &first.tty), ("second", &second.tty)] {
        let seen = counters(bytes);
        assert!(
            seen.iter().any(|(s, _, _)| s == "installing"),
            "{run}: no installing counter among {seen:?}"
        );
        for (stage, pos, len) in &seen {
            assert!(
                pos <= len,
                "{run} build: `{stage} {pos}/{len}` ran past its total ({seen:?})"
            );
        }
        let installing: Vec<(u64, u64)> = seen
            .iter()
            .filter(|(s, _, _)| s == "installing")
            .map(|(_, p, l)| (*p, *l))
            .collect();
        assert!(
            installing.iter().all(|(_, l)| *l == 2),
            "{run}: installing counts the 2 packages ({seen:?})"
        );
        assert_eq!(
            installing.last(),
            Some(&(2, 2)),
            "{run}: installing ends at 2/2 ({seen:?})"
        );
    }
}

#[test]
fn the_screen_model_follows_what_indicatif_sends() {
    // Two bars drawn, redrawn over (cursor up, erase line), then cleared.
    let bytes = b"line one\n\
        download [==>  ] 1 B/9 B\n packages [     ] 0/2 x\
        \r\x1b[2K\x1b[1A\r\x1b[2K download [====>] 9 B/9 B\n\r\x1b[2K installing [==] 2/2\
        \r\x1b[2K\x1b[1A\r\x1b[2K\x1b[Jdone\n";
    assert_eq!(screen(bytes), vec!["line one", "done"]);
    assert_eq!(strip_escapes("a\x1b[2Kb\x1b[?25lc"), "abc");
    assert_eq!(
        counters(bytes),
        vec![
            ("packages".to_string(), 0, 2),
            ("installing".to_string(), 2, 2)
        ]
    );
}
