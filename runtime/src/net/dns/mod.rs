//! Guests find each other by name: one small DNS responder per network,
//! on UDP port 53 of the network's gateway addresses, answering `NAME` and
//! `NAME.vbuild` for the network's guests (`zone` says what it answers and
//! why everything else is REFUSED rather than forwarded; `packet` reads and
//! writes the wire format).
//!
//! There is no daemon. The first guest start on a network spawns the
//! responder ([`ensure_running`]); it is the supervisor program again
//! (`vbuild-supervisor DIR`, or `vbuild start ... --supervise DIR`), told
//! by `DIR/dns.json` that it is a network's responder. `DIR` is
//! `RUN/.dns-NETWORK/` (no guest name starts with a dot): `lock`, held by
//! the responder for its whole life and holding its pid, `dns.json` and
//! `log`. The lock makes it one per network: a start takes it without
//! waiting, under the networks-directory lock; taken means running. It
//! ends when the network's bridge has no port left (no guest of it runs):
//! the last guest's cleanup ends it ([`end_idle`]), and it also checks
//! once a second itself, so a crashed supervisor leaves none behind. Both
//! decide under the networks-directory lock, and a start plugs its port
//! before it looks for the responder, so a start and a last stop that
//! overlap never leave a guest without one.
//!
//! The responder faces every guest root. It binds its sockets, then gives
//! everything up before it reads a packet: it becomes uid/gid 65534
//! (`nobody`) with no supplementary groups, no capabilities (the bounding
//! set is emptied too), `no_new_privs` and non-dumpable. What it reads
//! after that is only the network's lease file and whether each leased
//! guest's directory exists, through directory descriptors it opened
//! before (so it needs no access to the state root's path), and the
//! bridge's ports over rtnetlink. Its memory is fixed: one receive and one
//! reply buffer, no state per client, the answer table rebuilt from the
//! leases once a second; it logs its start and failures, never a packet.

mod packet;
mod zone;

pub use zone::Table;

use super::{NetError, Network};
use crate::paths::Layout;
use crate::supervisor::SupervisorProgram;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use vbuild_kernel::fsroot::Root;
use vbuild_kernel::net::RtNetlink;

/// The zone guests' names are answered under (`NAME.vbuild`).
pub const ZONE_NAME: &str = "vbuild";
/// The port the responder answers on.
pub const PORT: u16 = 53;
/// The uid and gid it runs as once its sockets are bound (`nobody`).
pub const UNPRIVILEGED: u32 = 65534;

/// Descriptor numbers the responder inherits.
mod fds {
    /// Its lock (`DIR/lock`), taken by the start that spawned it.
    pub const LOCK: i32 = 3;
    /// Where it says `ok` once it serves, or why it cannot.
    pub const STATUS: i32 = 4;
}

/// How long a start waits for a new responder to say it serves.
const STARTUP: Duration = Duration::from_secs(5);
/// How often the responder looks for guests and reloads its table.
const TICK: Duration = Duration::from_secs(1);
/// Datagrams read from one socket before the others get a turn.
const BURST: usize = 64;
/// The biggest lease file read.
const MAX_LEASES: u64 = 1 << 20;

/// What the responder reads from `DIR/dns.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ResponderSpec {
    /// The network it serves.
    pub network: String,
    /// The state root (`None`: the defaults).
    pub root: Option<PathBuf>,
}

/// The directory of network `network`'s responder.
pub fn responder_dir(layout: &Layout, network: &str) -> PathBuf {
    layout.run_root().join(format!(".dns-{network}"))
}

/// The file `supervisor::run` looks for to tell a responder from a guest.
pub(crate) const SPEC_FILE: &str = "dns.json";

fn io(path: &Path) -> impl Fn(std::io::Error) -> NetError + '_ {
    move |source| NetError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn open_lock(dir: &Path) -> Result<File, NetError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let p = dir.join("lock");
    File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&p)
        .map_err(io(&p))
}

/// Takes `f`'s flock without waiting: false when another holds it.
fn try_flock(f: &File) -> std::io::Result<bool> {
    // SAFETY: flock on our descriptor.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

/// The pid of network `network`'s responder, when one runs.
pub fn running(layout: &Layout, network: &str) -> Result<Option<i32>, NetError> {
    // Under the networks lock: looking takes the responder's lock for a
    // moment, which a start must not mistake for a running responder.
    let _l = super::network::lock(layout)?;
    running_locked(layout, network)
}

/// [`running`] for a caller that holds the networks lock.
fn running_locked(layout: &Layout, network: &str) -> Result<Option<i32>, NetError> {
    let dir = responder_dir(layout, network);
    let p = dir.join("lock");
    let f = match File::open(&p) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(&p)(e)),
    };
    if try_flock(&f).map_err(io(&p))? {
        return Ok(None); // closing `f` lets it go again
    }
    let text = std::fs::read_to_string(&p).map_err(io(&p))?;
    Ok(text.trim().parse().ok())
}

/// Whether `bridge` has no port (or does not exist): no guest is on it.
fn bridge_idle(nl: &mut RtNetlink, bridge: &str) -> Result<bool, vbuild_kernel::net::NetError> {
    let Some(br) = nl.link(bridge)? else {
        return Ok(true);
    };
    Ok(!nl.links()?.iter().any(|l| l.master == Some(br.index)))
}

/// Makes sure network `net` has its responder (unless it was created with
/// `--no-dns`): spawns one with `prog` when none runs, and waits until it
/// serves or says why it cannot. Called after a guest's port is on the
/// bridge.
pub fn ensure_running(
    layout: &Layout,
    net: &Network,
    prog: &SupervisorProgram,
) -> Result<(), NetError> {
    if net.no_dns || net.gateways().is_empty() {
        return Ok(());
    }
    let _l = super::network::lock(layout)?;
    let dir = responder_dir(layout, &net.name);
    let lock = open_lock(&dir)?;
    if !try_flock(&lock).map_err(io(&dir.join("lock")))? {
        return Ok(());
    }
    let spec = ResponderSpec {
        network: net.name.clone(),
        root: (*layout != Layout::new(None)).then(|| layout.root().to_path_buf()),
    };
    let spec_path = dir.join(SPEC_FILE);
    let text = serde_json::to_vec(&spec).expect("spec serializes");
    crate::fsutil::write_atomic(&spec_path, &text).map_err(io(&spec_path))?;
    let log_path = dir.join("log");
    let log = File::create(&log_path).map_err(io(&log_path))?;
    let (status_r, status_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| io(&dir)(e.into()))?;
    // At fds::LOCK and fds::STATUS; it runs with the signal mask and
    // dispositions reset (start may run with them changed), and says
    // where start listens when it cannot be executed.
    crate::boot::spawn_detached(&crate::boot::Detached {
        prog,
        dir: &dir,
        handed: &[lock.as_raw_fd(), status_w.as_raw_fd()],
        log: log.as_raw_fd(),
        reset_signals: true,
        exec_failure_to: fds::STATUS,
    })
    .map_err(|e| io(&prog.program)(e.into()))?;
    // The responder holds the lock now (the same open file); ours goes.
    drop((lock, status_w, log));
    let said = read_status(status_r, STARTUP);
    if said.trim() == "ok" {
        return Ok(());
    }
    let why = if said.trim().is_empty() {
        "it ended without a word".to_string()
    } else {
        said.trim().to_string()
    };
    Err(NetError::Dns(format!(
        "network {}: its DNS responder did not start: {why} (log: {}; guests still reach the network's other resolvers)",
        net.name,
        log_path.display()
    )))
}

/// Everything written to `r` until it closes, waiting at most `limit`.
fn read_status(r: OwnedFd, limit: Duration) -> String {
    use std::io::Read;
    let until = Instant::now() + limit;
    let mut f = File::from(r);
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        let left = until.saturating_duration_since(Instant::now());
        let mut p = libc::pollfd {
            fd: f.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut p, 1, left.as_millis().min(i32::MAX as u128) as i32) };
        if r <= 0 {
            if r < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            out.extend_from_slice(b"no answer in time");
            break;
        }
        match f.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) if out.len() < 4096 => out.extend_from_slice(&buf[..n]),
            Ok(_) => {}
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Ends the responder of every network whose bridge has no port left:
/// the cleanup of a guest calls it once its port is gone, so the last
/// guest's stop ends its network's responder. Idempotent.
pub fn end_idle(layout: &Layout) -> Result<(), NetError> {
    let run = layout.run_root();
    let entries = match std::fs::read_dir(run) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(run)(e)),
    };
    for e in entries.flatten() {
        let name = e.file_name();
        if let Some(net) = name.to_str().and_then(|n| n.strip_prefix(".dns-")) {
            end_if_idle(layout, net)?;
        }
    }
    Ok(())
}

fn end_if_idle(layout: &Layout, network: &str) -> Result<(), NetError> {
    let _l = super::network::lock(layout)?;
    let Some(pid) = running_locked(layout, network)? else {
        return Ok(());
    };
    let bridge = Network::load(layout, network)
        .map(|n| n.bridge)
        .unwrap_or_else(|_| network.to_string());
    let k = |source| NetError::Kernel {
        context: format!("network {network}"),
        source,
    };
    let mut nl = RtNetlink::open().map_err(k)?;
    if !bridge_idle(&mut nl, &bridge).map_err(k)? {
        return Ok(());
    }
    let Ok(pidfd) = vbuild_kernel::process::pidfd_open(pid) else {
        return Ok(()); // gone already
    };
    // Still the lock's holder (no other can start while we hold the
    // networks lock): `pid` was not reused by another process.
    if running_locked(layout, network)? != Some(pid) {
        return Ok(());
    }
    let _ = vbuild_kernel::process::pidfd_signal(&pidfd, libc::SIGTERM);
    let _ = vbuild_kernel::process::wait_pidfd(&pidfd, Some(Duration::from_secs(5)));
    Ok(())
}

/// The `(guest, address)` pairs of `net`'s lease file read through
/// `networks`, keeping only guests whose directory `guests` has.
fn load_table(networks: &Root, guests: &Root, net: &str) -> Result<Table, String> {
    use std::io::Read;
    let rel = PathBuf::from(format!("{net}.leases"));
    let what = |e: &dyn std::fmt::Display| format!("{}: {e}", rel.display());
    // Not `read_regular`: it reopens through /proc/self/fd, which a
    // non-dumpable process other than root may not. The file is vbuild's
    // own (not a guest's): a plain, bounded read of a regular file.
    let text = match networks.open_at(
        &rel,
        libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY,
        0,
        false,
    ) {
        Ok(fd) => {
            let f = File::from(fd);
            if !f.metadata().map_err(|e| what(&e))?.is_file() {
                return Err(what(&"not a regular file"));
            }
            let mut b = Vec::new();
            f.take(MAX_LEASES + 1)
                .read_to_end(&mut b)
                .map_err(|e| what(&e))?;
            if b.len() as u64 > MAX_LEASES {
                return Err(what(&"larger than 1 MiB"));
            }
            String::from_utf8(b).map_err(|_| what(&"not UTF-8"))?
        }
        Err(e) if e.source.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e.to_string()),
    };
    let pairs = super::ipam::parse_leases(&text).map_err(|e| format!("{}: {e}", rel.display()))?;
    Ok(Table::from_pairs(
        pairs
            .iter()
            .filter(|(_, g)| {
                crate::name::GuestName::parse(g).is_ok() && guests.exists(Path::new(g))
            })
            .map(|(a, g)| (g.as_str(), *a)),
    ))
}

/// What the responder holds once set up.
struct Responder {
    network: String,
    bridge: String,
    sockets: Vec<UdpSocket>,
    networks: Root,
    guests: Root,
    nl: RtNetlink,
    lock: File,
    net_lock: File,
    table: Table,
}

/// Writes `msg` on the status descriptor (the start that spawned us).
fn tell(msg: &str) {
    // SAFETY: a write to the inherited descriptor; failing means the
    // start gave up waiting.
    unsafe { libc::write(fds::STATUS, msg.as_ptr().cast(), msg.len()) };
}

/// The responder's main (see the module doc); returns its exit code.
pub(crate) fn serve(dir: &Path) -> i32 {
    let r = setup(dir).and_then(|mut r| {
        drop_privileges()?;
        r.table = load_table(&r.networks, &r.guests, &r.network)?;
        Ok(r)
    });
    match r {
        Ok(r) => {
            eprintln!(
                "vbuild dns {}: serving {} guest name(s) on {}",
                r.network,
                r.table.len(),
                r.sockets
                    .iter()
                    .filter_map(|s| s.local_addr().ok())
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            tell("ok\n");
            // SAFETY: closing our copy of the status descriptor.
            unsafe { libc::close(fds::STATUS) };
            r.run()
        }
        Err(msg) => {
            eprintln!("vbuild dns: {msg}");
            tell(&msg);
            1
        }
    }
}

fn setup(dir: &Path) -> Result<Responder, String> {
    // SAFETY: fds::LOCK is ours by the spawn contract; nothing else owns it.
    let lock = unsafe { File::from_raw_fd(fds::LOCK) };
    let spec_path = dir.join(SPEC_FILE);
    let spec: ResponderSpec = std::fs::read(&spec_path)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
        .map_err(|e| format!("{}: {e}", spec_path.display()))?;
    let layout = Layout::new(spec.root.as_deref());
    let net = Network::load(&layout, &spec.network).map_err(|e| e.to_string())?;
    let net_lock_path = layout.networks_dir().join(".lock");
    let net_lock = File::options()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&net_lock_path)
        .map_err(|e| format!("{}: {e}", net_lock_path.display()))?;
    let open = |p: PathBuf| Root::open(&p).map_err(|e| format!("{}: {e}", p.display()));
    let networks = open(layout.networks_dir())?;
    let guests = open(layout.guests_dir())?;
    let nl = RtNetlink::open().map_err(|e| e.to_string())?;
    let mut sockets = Vec::new();
    for gw in net.gateways() {
        let at = SocketAddr::new(gw, PORT);
        let s = vbuild_kernel::net::bind_udp_freebind(at).map_err(|e| {
            let hint = if e.raw_os_error() == Some(libc::EADDRINUSE) {
                " (another DNS server listens there: stop it or bind it elsewhere, or set `no_dns = true` in the network's file)"
            } else {
                ""
            };
            format!("binding UDP {at}: {e}{hint}")
        })?;
        sockets.push(s);
    }
    use std::os::unix::fs::FileExt;
    let pid = format!("{}\n", std::process::id());
    lock.set_len(0)
        .and_then(|_| lock.write_all_at(pid.as_bytes(), 0))
        .map_err(|e| format!("{}: {e}", dir.join("lock").display()))?;
    Ok(Responder {
        network: net.name.clone(),
        bridge: net.bridge.clone(),
        sockets,
        networks,
        guests,
        nl,
        lock,
        net_lock,
        table: Table::default(),
    })
}

/// Becomes `nobody` with nothing: no groups, no capabilities in any set
/// (bounding included), no_new_privs, not dumpable.
fn drop_privileges() -> Result<(), String> {
    use vbuild_kernel::caps;
    caps::drop_bounding(0, caps::last_cap()).map_err(|e| format!("dropping capabilities: {e}"))?;
    vbuild_kernel::process::set_ids(UNPRIVILEGED, UNPRIVILEGED, true)
        .map_err(|e| format!("becoming uid {UNPRIVILEGED}: {e}"))?;
    caps::set_sets(0, 0, 0).map_err(|e| format!("clearing capabilities: {e}"))?;
    vbuild_kernel::process::set_no_new_privs().map_err(|e| format!("no_new_privs: {e}"))?;
    vbuild_kernel::process::set_dumpable(false).map_err(|e| format!("dumpable: {e}"))?;
    Ok(())
}

impl Responder {
    fn run(mut self) -> i32 {
        let mut inbuf = [0u8; 1500];
        let mut out = [0u8; packet::MAX_REPLY];
        let mut next_tick = Instant::now() + TICK;
        let mut last_error: Option<String> = None;
        // One socket per gateway: at most two, in a fixed array.
        let mut polls = [libc::pollfd {
            fd: -1,
            events: libc::POLLIN,
            revents: 0,
        }; 2];
        let count = self.sockets.len().min(polls.len());
        for (p, s) in polls.iter_mut().zip(&self.sockets) {
            p.fd = s.as_raw_fd();
        }
        loop {
            for p in polls.iter_mut() {
                p.revents = 0;
            }
            let wait = next_tick.saturating_duration_since(Instant::now());
            // SAFETY: a valid array of pollfds of our sockets.
            let n = unsafe {
                libc::poll(
                    polls.as_mut_ptr(),
                    count as libc::nfds_t,
                    wait.as_millis() as i32 + 1,
                )
            };
            if n > 0 {
                for (s, p) in self.sockets.iter().zip(&polls) {
                    if p.revents & libc::POLLIN != 0 {
                        serve_burst(s, &self.table, &mut inbuf, &mut out);
                    }
                }
            }
            if Instant::now() >= next_tick {
                next_tick = Instant::now() + TICK;
                if self.idle() {
                    eprintln!(
                        "vbuild dns {}: no guest left on {}, ending",
                        self.network, self.bridge
                    );
                    // The responder's lock first, so a start that gets the
                    // networks lock next finds no responder.
                    // SAFETY: flock on our descriptor.
                    unsafe { libc::flock(self.lock.as_raw_fd(), libc::LOCK_UN) };
                    return 0;
                }
                match load_table(&self.networks, &self.guests, &self.network) {
                    Ok(t) => {
                        self.table = t;
                        last_error = None;
                    }
                    // Logged once per distinct error: the log never grows
                    // by itself.
                    Err(e) if last_error.as_ref() != Some(&e) => {
                        eprintln!("vbuild dns {}: keeping the old names: {e}", self.network);
                        last_error = Some(e);
                    }
                    Err(_) => {}
                }
            }
        }
    }

    /// No port on the bridge, checked under the networks lock (which this
    /// keeps when it returns true, until the process ends).
    fn idle(&mut self) -> bool {
        if !matches!(bridge_idle(&mut self.nl, &self.bridge), Ok(true)) {
            return false;
        }
        match try_flock(&self.net_lock) {
            Ok(true) => {}
            _ => return false, // a command is busy with networks: next tick
        }
        if matches!(bridge_idle(&mut self.nl, &self.bridge), Ok(true)) {
            return true;
        }
        // SAFETY: flock on our descriptor.
        unsafe { libc::flock(self.net_lock.as_raw_fd(), libc::LOCK_UN) };
        false
    }
}

/// Answers what is queued on `s`, at most [`BURST`] datagrams; replies
/// that would block are dropped (the client asks again).
fn serve_burst(
    s: &UdpSocket,
    table: &Table,
    inbuf: &mut [u8; 1500],
    out: &mut [u8; packet::MAX_REPLY],
) {
    for _ in 0..BURST {
        match s.recv_from(inbuf) {
            Ok((n, peer)) => {
                if let Some(len) = table.answer(&inbuf[..n], out) {
                    let _ = s.send_to(&out[..len], peer);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// The first name server a guest with addresses of the given families
/// gets: its network's gateway, when the network has a responder.
pub fn guest_nameserver(net: &Network, has_v4: bool, has_v6: bool) -> Option<IpAddr> {
    if net.no_dns {
        return None;
    }
    net.gateway4
        .filter(|_| has_v4)
        .or(net.gateway6.filter(|_| has_v6))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_holds_the_leased_guests_that_exist() {
        let d = tempfile::tempdir().unwrap();
        let l = Layout::new(Some(d.path()));
        std::fs::create_dir_all(l.networks_dir()).unwrap();
        std::fs::create_dir_all(l.guest_dir("web01")).unwrap();
        std::fs::write(
            l.networks_dir().join("lan0.leases"),
            "[[lease]]\naddr = \"10.77.1.2\"\nguest = \"web01\"\nsince = 1\n\n\
             [[lease]]\naddr = \"fd77:1::2\"\nguest = \"web01\"\nsince = 1\n\n\
             [[lease]]\naddr = \"10.77.1.3\"\nguest = \"gone\"\nsince = 1\n\n\
             [[lease]]\naddr = \"10.77.1.4\"\nguest = \"../web01\"\nsince = 1\n",
        )
        .unwrap();
        let networks = Root::open(&l.networks_dir()).unwrap();
        let guests = Root::open(&l.guests_dir()).unwrap();
        let t = load_table(&networks, &guests, "lan0").unwrap();
        assert_eq!(
            t,
            Table::from_pairs([
                ("web01", "10.77.1.2".parse().unwrap()),
                ("web01", "fd77:1::2".parse().unwrap()),
            ])
        );
        // No lease file yet: no names, not an error.
        assert!(load_table(&networks, &guests, "lan1").unwrap().is_empty());
        // A broken one is an error naming it (the old table is kept).
        std::fs::write(
            l.networks_dir().join("lan2.leases"),
            "[[lease]]\naddr = 7\n",
        )
        .unwrap();
        let e = load_table(&networks, &guests, "lan2").unwrap_err();
        assert!(e.contains("lan2.leases"), "{e}");
    }

    #[test]
    fn guests_ask_their_gateway_first_unless_the_network_has_no_responder() {
        let mut n = Network::define(
            "lan0",
            &[
                "10.77.1.0/24".parse().unwrap(),
                "fd77:1::/64".parse().unwrap(),
            ],
            &[],
            true,
            false,
            ["9.9.9.9", "1.1.1.1", "8.8.8.8"]
                .iter()
                .map(|a| a.parse().unwrap())
                .collect(),
            None,
        )
        .unwrap();
        let ips = |v: Vec<IpAddr>| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        assert_eq!(
            ips(n.guest_resolvers(true, true)),
            ["10.77.1.1", "9.9.9.9", "1.1.1.1"],
            "three at most: glibc reads no more"
        );
        assert_eq!(ips(n.guest_resolvers(false, true))[0], "fd77:1::1");
        n.no_dns = true;
        assert_eq!(
            ips(n.guest_resolvers(true, true)),
            ["9.9.9.9", "1.1.1.1", "8.8.8.8"]
        );
        assert_eq!(guest_nameserver(&n, true, true), None);
    }
}
