//! nf_tables through NETLINK_NETFILTER, built in Rust: tables, base chains
//! and rules are sent as one batch the kernel applies atomically (all or
//! nothing), which is what makes "replace this table" safe while packets
//! flow.
//!
//! vbuild keeps each concern in its own table (one per network, one per
//! guest and family), so removing everything a guest added is deleting its
//! tables, and nothing vbuild does touches other users' rules.

mod attr;
mod expr;
mod rule;

pub use expr::{Base, CmpOp, CtKey, Expr, MetaKey, Verdict};
pub use rule::{
    Rule, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP,
    NFPROTO_IPV4, NFPROTO_IPV6,
};

use super::NetError;
use attr::Attrs;
use netlink_sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};

/// The address family a table works in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4 and IPv6 together.
    Inet = 1,
    /// IPv4 only.
    Ip = 2,
    /// Frames crossing a bridge (layer 2, before routing).
    Bridge = 7,
    /// IPv6 only.
    Ip6 = 10,
}

impl Family {
    fn from_u8(v: u8) -> Option<Family> {
        Some(match v {
            1 => Family::Inet,
            2 => Family::Ip,
            7 => Family::Bridge,
            10 => Family::Ip6,
            _ => return None,
        })
    }

    /// The name `nft` uses.
    pub fn name(self) -> &'static str {
        match self {
            Family::Inet => "inet",
            Family::Ip => "ip",
            Family::Bridge => "bridge",
            Family::Ip6 => "ip6",
        }
    }
}

/// The netfilter hook a base chain is attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// Every packet as it arrives, before routing.
    Prerouting = 0,
    /// Packets for this host.
    Input = 1,
    /// Packets routed through this host.
    Forward = 2,
    /// Packets this host sends.
    Output = 3,
    /// Every packet as it leaves, after routing.
    Postrouting = 4,
}

/// What a base chain may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainType {
    /// Accept/drop.
    Filter,
    /// Address translation (first packet of a connection only).
    Nat,
}

/// A base chain: hooked into the stack with a priority (lower runs first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// Chain name inside its table.
    pub name: String,
    /// Where it hooks.
    pub hook: Hook,
    /// Order among chains on the same hook.
    pub priority: i32,
    /// Filter or NAT.
    pub kind: ChainType,
}

const SUBSYS_NFTABLES: u16 = 10;
const MSG_NEWTABLE: u16 = 0;
const MSG_GETTABLE: u16 = 1;
const MSG_DELTABLE: u16 = 2;
const MSG_NEWCHAIN: u16 = 3;
const MSG_NEWRULE: u16 = 6;
const MSG_GETRULE: u16 = 7;
const BATCH_BEGIN: u16 = 0x10;
const BATCH_END: u16 = 0x11;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const F_REQUEST: u16 = 1;
const F_ACK: u16 = 4;
const F_DUMP: u16 = 0x300;
const F_CREATE: u16 = 0x400;
const F_APPEND: u16 = 0x800;

struct Msg {
    kind: u16,
    flags: u16,
    family: u8,
    attrs: Attrs,
    what: String,
}

/// Changes to apply together: either every one takes effect or none.
#[derive(Default)]
pub struct Batch {
    msgs: Vec<Msg>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Batch {
        Batch::default()
    }

    fn push(&mut self, kind: u16, flags: u16, family: Family, attrs: Attrs, what: String) {
        self.msgs.push(Msg {
            kind,
            flags,
            family: family as u8,
            attrs,
            what,
        });
    }

    /// Creates table `name` (no error if it exists).
    pub fn add_table(&mut self, family: Family, name: &str) -> &mut Self {
        let mut a = Attrs::new();
        a.str(1, name).be32(2, 0);
        let what = format!("creating table {} {name}", family.name());
        self.push(MSG_NEWTABLE, F_CREATE, family, a, what);
        self
    }

    /// Deletes table `name` with all its chains and rules (error if absent).
    pub fn delete_table(&mut self, family: Family, name: &str) -> &mut Self {
        let mut a = Attrs::new();
        a.str(1, name);
        let what = format!("deleting table {} {name}", family.name());
        self.push(MSG_DELTABLE, 0, family, a, what);
        self
    }

    /// Adds base chain `chain` to `table` (policy accept).
    pub fn add_chain(&mut self, family: Family, table: &str, chain: &Chain) -> &mut Self {
        let mut hook = Attrs::new();
        hook.be32(1, chain.hook as u32)
            .be32(2, chain.priority as u32);
        let mut a = Attrs::new();
        a.str(1, table)
            .str(3, &chain.name)
            .nested(4, &hook)
            .be32(5, 1)
            .str(
                7,
                match chain.kind {
                    ChainType::Filter => "filter",
                    ChainType::Nat => "nat",
                },
            );
        let what = format!(
            "creating chain {} in table {} {table}",
            chain.name,
            family.name()
        );
        self.push(MSG_NEWCHAIN, F_CREATE, family, a, what);
        self
    }

    /// Appends `rule` to `chain` of `table`.
    pub fn add_rule(&mut self, family: Family, table: &str, chain: &str, rule: &Rule) -> &mut Self {
        let mut list = Attrs::new();
        for e in &rule.exprs {
            e.encode(&mut list);
        }
        let mut a = Attrs::new();
        a.str(1, table).str(2, chain).nested(4, &list);
        let what = format!(
            "adding a rule to chain {chain} of table {} {table}",
            family.name()
        );
        self.push(MSG_NEWRULE, F_CREATE | F_APPEND, family, a, what);
        self
    }

    /// Queues the creation of table `name` with `chains` and their rules,
    /// for a table the caller has just made sure is absent. Unlike
    /// [`Batch::replace_table`] nothing is deleted, so closing the socket
    /// does not wait for the kernel to free a table (an RCU grace period,
    /// about 10 ms on a guest's start).
    pub fn new_table(
        &mut self,
        family: Family,
        name: &str,
        chains: &[(Chain, Vec<Rule>)],
    ) -> &mut Self {
        self.add_table(family, name);
        for (c, rules) in chains {
            self.add_chain(family, name, c);
            for r in rules {
                self.add_rule(family, name, &c.name, r);
            }
        }
        self
    }

    /// Queues "table `name` holds exactly `chains` with their rules":
    /// create it if missing, delete it (flushing whatever it held), build it
    /// again. Several tables can be replaced in one batch, atomically.
    pub fn replace_table(
        &mut self,
        family: Family,
        name: &str,
        chains: &[(Chain, Vec<Rule>)],
    ) -> &mut Self {
        self.add_table(family, name).delete_table(family, name);
        self.new_table(family, name, chains)
    }

    /// Number of changes queued.
    pub fn len(&self) -> usize {
        self.msgs.len()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }
}

/// A NETLINK_NETFILTER socket for nf_tables, bound to the network namespace
/// it was opened in.
pub struct Nft {
    sock: Socket,
    seq: u32,
}

fn header(buf: &mut Vec<u8>, kind: u16, flags: u16, seq: u32, family: u8, res_id: u16) -> usize {
    let start = buf.len();
    buf.extend_from_slice(&0u32.to_ne_bytes()); // length, patched later
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(&flags.to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes());
    // struct nfgenmsg
    buf.push(family);
    buf.push(0); // NFNETLINK_V0
    buf.extend_from_slice(&res_id.to_be_bytes());
    start
}

fn finish(buf: &mut [u8], start: usize) {
    let len = (buf.len() - start) as u32;
    buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
}

/// One netlink message of an answer: type, sequence, nfgenmsg family, body
/// after the nfgenmsg (or the raw body for errors).
struct Reply {
    kind: u16,
    seq: u32,
    body: Vec<u8>,
}

fn split(buf: &[u8]) -> Vec<Reply> {
    let mut out = Vec::new();
    let mut off = 0;
    while off + 16 <= buf.len() {
        let len = u32::from_ne_bytes(buf[off..off + 4].try_into().unwrap()) as usize;
        if len < 16 || off + len > buf.len() {
            break;
        }
        out.push(Reply {
            kind: u16::from_ne_bytes([buf[off + 4], buf[off + 5]]),
            seq: u32::from_ne_bytes(buf[off + 8..off + 12].try_into().unwrap()),
            body: buf[off + 16..off + len].to_vec(),
        });
        off += (len + 3) & !3;
    }
    out
}

impl Nft {
    /// Opens a socket in the calling thread's network namespace.
    pub fn open() -> Result<Nft, NetError> {
        let mut sock = Socket::new(NETLINK_NETFILTER).map_err(|source| NetError::Socket {
            what: "nfnetlink",
            source,
        })?;
        sock.bind_auto().map_err(|source| NetError::Socket {
            what: "nfnetlink bind",
            source,
        })?;
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(|source| NetError::Socket {
                what: "nfnetlink connect",
                source,
            })?;
        Ok(Nft { sock, seq: 0 })
    }

    /// Opens a socket inside the network namespace of process `pid`.
    pub fn open_in_netns_of(pid: i32) -> Result<Nft, NetError> {
        std::thread::scope(|s| {
            s.spawn(|| {
                super::socket::enter_netns_of(pid)?;
                Nft::open()
            })
            .join()
            .unwrap_or_else(|_| {
                Err(NetError::Netns {
                    pid,
                    message: "helper thread panicked".into(),
                })
            })
        })
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    fn recv(&self, dontwait: bool) -> Result<Option<Vec<u8>>, NetError> {
        let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
        let flags = if dontwait { libc::MSG_DONTWAIT } else { 0 };
        match self.sock.recv(&mut buf, flags) {
            Ok(_) => Ok(Some(buf)),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
            Err(source) => Err(NetError::Socket {
                what: "nfnetlink recv",
                source,
            }),
        }
    }

    /// Applies `batch` atomically. On failure nothing of it took effect and
    /// the error names the first change the kernel refused.
    pub fn commit(&mut self, batch: &Batch) -> Result<(), NetError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::new();
        let s = self.next_seq();
        let st = header(&mut buf, BATCH_BEGIN, F_REQUEST, s, 0, SUBSYS_NFTABLES);
        finish(&mut buf, st);
        let mut seqs = Vec::new();
        for m in &batch.msgs {
            let seq = self.next_seq();
            seqs.push(seq);
            let st = header(
                &mut buf,
                (SUBSYS_NFTABLES << 8) | m.kind,
                F_REQUEST | F_ACK | m.flags,
                seq,
                m.family,
                0,
            );
            buf.extend_from_slice(&m.attrs.0);
            finish(&mut buf, st);
        }
        let s = self.next_seq();
        let st = header(&mut buf, BATCH_END, F_REQUEST, s, 0, SUBSYS_NFTABLES);
        finish(&mut buf, st);
        self.sock.send(&buf, 0).map_err(|source| NetError::Socket {
            what: "nfnetlink send",
            source,
        })?;

        // The kernel handles the whole batch inside send(): every answer
        // is queued by now. Read them all; report the first refusal.
        let mut first_err: Option<NetError> = None;
        let mut answered = 0;
        let mut wait = true;
        while answered < seqs.len() {
            let Some(data) = self.recv(!wait)? else { break };
            wait = false;
            for r in split(&data) {
                if r.kind != NLMSG_ERROR || r.body.len() < 4 {
                    continue;
                }
                let Some(i) = seqs.iter().position(|s| *s == r.seq) else {
                    continue;
                };
                answered += 1;
                let code = i32::from_ne_bytes(r.body[..4].try_into().unwrap());
                if code != 0 && first_err.is_none() {
                    first_err = Some(NetError::Kernel {
                        op: batch.msgs[i].what.clone(),
                        errno: -code,
                    });
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn dump(
        &mut self,
        kind: u16,
        family: u8,
        attrs: &Attrs,
        what: &str,
    ) -> Result<Vec<Reply>, NetError> {
        let seq = self.next_seq();
        let mut buf = Vec::new();
        let st = header(
            &mut buf,
            (SUBSYS_NFTABLES << 8) | kind,
            F_REQUEST | F_DUMP,
            seq,
            family,
            0,
        );
        buf.extend_from_slice(&attrs.0);
        finish(&mut buf, st);
        self.sock.send(&buf, 0).map_err(|source| NetError::Socket {
            what: "nfnetlink send",
            source,
        })?;
        let mut out = Vec::new();
        loop {
            let Some(data) = self.recv(false)? else {
                continue;
            };
            for r in split(&data) {
                if r.seq != seq {
                    continue;
                }
                match r.kind {
                    NLMSG_DONE => return Ok(out),
                    NLMSG_ERROR => {
                        let code = i32::from_ne_bytes(r.body[..4].try_into().unwrap_or([0; 4]));
                        if code == 0 {
                            return Ok(out);
                        }
                        return Err(NetError::Kernel {
                            op: what.into(),
                            errno: -code,
                        });
                    }
                    _ => out.push(r),
                }
            }
        }
    }

    /// Every nf_tables table of this namespace, ours or not.
    pub fn tables(&mut self) -> Result<Vec<(Family, String)>, NetError> {
        let replies = self.dump(MSG_GETTABLE, 0, &Attrs::new(), "listing nftables tables")?;
        let mut out = Vec::new();
        for r in replies {
            if r.body.len() < 4 {
                continue;
            }
            let Some(fam) = Family::from_u8(r.body[0]) else {
                continue;
            };
            for (k, v) in attr::parse(&r.body[4..]) {
                if k == 1 {
                    let name = String::from_utf8_lossy(v)
                        .trim_end_matches('\0')
                        .to_string();
                    out.push((fam, name));
                }
            }
        }
        Ok(out)
    }

    /// How many rules table `name` holds (0 when it does not exist).
    pub fn rule_count(&mut self, family: Family, name: &str) -> Result<usize, NetError> {
        let mut a = Attrs::new();
        a.str(1, name);
        match self.dump(
            MSG_GETRULE,
            family as u8,
            &a,
            &format!("listing rules of {name}"),
        ) {
            Ok(r) => Ok(r.len()),
            Err(e) if e.errno() == Some(libc::ENOENT) => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Deletes table `name` if it exists; returns whether it did.
    pub fn delete_table_if_exists(&mut self, family: Family, name: &str) -> Result<bool, NetError> {
        self.delete_tables_if_exist(&[(family, name)])
            .map(|n| n == 1)
    }

    /// Deletes those of `tables` that exist, in one batch; returns how many.
    /// It looks first because a refused batch is expensive (the kernel
    /// waits for an RCU grace period to undo it, about 14 ms here) while a
    /// table dump costs microseconds: this keeps a guest's start fast.
    pub fn delete_tables_if_exist(&mut self, tables: &[(Family, &str)]) -> Result<usize, NetError> {
        let existing = self.tables()?;
        let mut b = Batch::new();
        for (f, name) in tables {
            if existing.iter().any(|(ef, en)| ef == f && en == name) {
                b.delete_table(*f, name);
            }
        }
        match self.commit(&b) {
            Ok(()) => Ok(b.len()),
            // Another command removed one in between: go one by one.
            Err(e) if e.errno() == Some(libc::ENOENT) => {
                let mut n = 0;
                for (f, name) in tables {
                    let mut one = Batch::new();
                    one.delete_table(*f, name);
                    match self.commit(&one) {
                        Ok(()) => n += 1,
                        Err(e) if e.errno() == Some(libc::ENOENT) => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(n)
            }
            Err(e) => Err(e),
        }
    }

    /// Makes table `name` hold exactly `chains` with their rules, in one
    /// atomic step (see [`Batch::replace_table`]).
    pub fn replace_table(
        &mut self,
        family: Family,
        name: &str,
        chains: &[(Chain, Vec<Rule>)],
    ) -> Result<(), NetError> {
        let mut b = Batch::new();
        b.replace_table(family, name, chains);
        self.commit(&b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_table_deletes_nothing_while_replace_table_does() {
        let kinds = |b: &Batch| b.msgs.iter().map(|m| m.kind).collect::<Vec<_>>();
        let mut fresh = Batch::new();
        fresh.new_table(Family::Bridge, "vbuild-g-x", &[]);
        assert_eq!(kinds(&fresh), [MSG_NEWTABLE]);
        let mut replaced = Batch::new();
        replaced.replace_table(Family::Bridge, "vbuild-g-x", &[]);
        assert_eq!(kinds(&replaced), [MSG_NEWTABLE, MSG_DELTABLE, MSG_NEWTABLE]);
    }
}
