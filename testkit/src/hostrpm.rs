//! RPM packages made of real binaries: the host's own `rpm` (its program,
//! shared libraries, loader and configuration) and a static busybox shell,
//! repackaged with the `rpm` crate so a generated repository yields a root
//! whose own rpm can write its database and run scriptlets. The host's files
//! are only data here; nothing on the host is run but `ldd` to list the
//! libraries.

use crate::rpmrepo::TestRpm;
use std::path::Path;
use std::process::Command;

/// Where the database lands in the packaged rpm (Fedora's place).
pub const DBPATH: &str = "/usr/lib/sysimage/rpm";

/// The multiarch library directory the host's loader searches.
const LIBDIR: &str = "/usr/lib/x86_64-linux-gnu";

/// Why the host cannot provide the binaries, or `None` when it can.
pub fn missing() -> Option<String> {
    for f in ["/usr/bin/rpm", "/usr/lib/rpm/rpmrc", "/bin/busybox"] {
        if !Path::new(f).exists() {
            return Some(format!(
                "{f} (scripts/host-deps.sh installs rpm and busybox-static)"
            ));
        }
    }
    if std::env::consts::ARCH != "x86_64" {
        return Some("an x86_64 host (the packages use its multiarch paths)".into());
    }
    None
}

/// `filesystem`: the merged-usr links and the directories every package
/// uses, plus a passwd/group naming root (rpm maps file owners by name).
pub fn filesystem() -> TestRpm {
    let mut p = TestRpm::new("filesystem", "3.18");
    for d in [
        "/etc",
        "/root",
        "/usr",
        "/usr/bin",
        "/usr/lib",
        "/usr/lib64",
        "/usr/share",
        "/var",
        "/var/lib",
        "/var/log",
        "/var/tmp",
    ] {
        p = p.dir(d);
    }
    for (l, t) in [
        ("/bin", "usr/bin"),
        ("/sbin", "usr/bin"),
        ("/lib", "usr/lib"),
        ("/lib64", "usr/lib64"),
    ] {
        p = p.symlink(l, t);
    }
    p.file("/etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n", 0o644)
        .file("/etc/group", b"root:x:0:\n", 0o644)
}

/// `busybox-sh`: the static busybox as `/usr/bin/sh` and a few applets
/// scriptlets use.
pub fn busybox_sh() -> TestRpm {
    let bb = std::fs::read("/bin/busybox").expect("busybox-static is installed");
    let mut p = TestRpm::new("busybox-sh", "1.36")
        .file("/usr/bin/busybox", &bb, 0o755)
        .requires("filesystem");
    for app in ["sh", "cat", "echo", "sort", "ls"] {
        p = p.symlink(&format!("/usr/bin/{app}"), "busybox");
    }
    p.provides("/bin/sh")
}

/// `rpm`: the host's rpm program with every library `ldd` names (each
/// under its soname), the loader, rpm's configuration for x86_64 and a
/// macro file putting the database at [`DBPATH`].
pub fn rpm() -> TestRpm {
    let mut p = TestRpm::new("rpm", "4.18.0")
        .file(
            "/usr/bin/rpm",
            &std::fs::read("/usr/bin/rpm").expect("host rpm"),
            0o755,
        )
        .requires("filesystem");
    let out = Command::new("ldd")
        .arg("/usr/bin/rpm")
        .output()
        .expect("ldd runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if let [soname, "=>", path, ..] = words.as_slice() {
            let data = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
            p = p.file(&format!("{LIBDIR}/{soname}"), &data, 0o755);
        }
    }
    let loader = std::fs::read("/lib64/ld-linux-x86-64.so.2").expect("the host's loader");
    p = p.file("/usr/lib64/ld-linux-x86-64.so.2", &loader, 0o755);
    for f in ["rpmrc", "macros", "rpmpopt-4.18.0"] {
        let host = format!("/usr/lib/rpm/{f}");
        if let Ok(data) = std::fs::read(&host) {
            p = p.file(&host, &data, 0o644);
        }
    }
    let platform = "/usr/lib/rpm/platform/x86_64-linux/macros";
    p = p.file(
        platform,
        &std::fs::read(platform).expect("rpm's x86_64 platform macros"),
        0o644,
    );
    p.file(
        "/etc/rpm/macros.dbpath",
        format!("%_dbpath {DBPATH}\n").as_bytes(),
        0o644,
    )
}
