//! nf_tables expressions, the kernel's rule VM: each rule is a list of
//! expressions that load packet data into registers, compare it, and end in
//! a verdict or a NAT action. Only the handful vbuild needs are encoded.
//! Attribute numbers are the kernel's (include/uapi/linux/netfilter/nf_tables.h).

use super::attr::Attrs;

/// The first 16-byte data register (NFT_REG_1); every match here uses it.
pub(crate) const REG1: u32 = 1;
/// The second data register (NFT_REG_2), for the port of a DNAT target.
pub(crate) const REG2: u32 = 2;

/// Where a payload load starts counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    /// The Ethernet header (bridge family).
    Link = 0,
    /// The IPv4/IPv6/ARP header.
    Network = 1,
    /// The TCP/UDP header.
    Transport = 2,
}

/// A `meta` key (NFT_META_*).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaKey {
    /// skb->protocol, the EtherType (big endian u16).
    Protocol = 1,
    /// Input interface name (16 bytes, NUL padded).
    IifName = 6,
    /// Output interface name.
    OifName = 7,
    /// Layer-3 family of the packet (NFPROTO_*, u8), for `inet` tables.
    NfProto = 15,
    /// Layer-4 protocol number (u8).
    L4Proto = 16,
    /// Input interface group (u32, host endian): the `group` of the link.
    IifGroup = 21,
    /// Output interface group.
    OifGroup = 22,
}

/// A conntrack key (NFT_CT_*); both load a host-endian u32 of flag bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CtKey {
    /// The connection's state bits (invalid, established, related, new).
    State = 0,
    /// The connection's status bits (IPS_*: seen reply, NAT applied...).
    Status = 2,
}

/// A comparison operator (NFT_CMP_*).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// Equal.
    Eq = 0,
    /// Not equal.
    Ne = 1,
}

/// A final decision (NF_DROP, NF_ACCEPT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Drop the packet.
    Drop = 0,
    /// Accept it (in this base chain).
    Accept = 1,
}

/// One expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// Load a meta value into REG1.
    Meta(MetaKey),
    /// Load a conntrack value of the packet's connection into REG1.
    Ct(CtKey),
    /// Load `len` bytes at `offset` from `base` into REG1.
    Payload {
        /// Header the offset is relative to.
        base: Base,
        /// Offset in bytes.
        offset: u32,
        /// Length in bytes.
        len: u32,
    },
    /// REG1 = REG1 & mask (the length is the mask's).
    And(Vec<u8>),
    /// Compare REG1 with data; on mismatch the rule stops here.
    Cmp(CmpOp, Vec<u8>),
    /// Load the address type of the destination (fib daddr type) into REG1.
    FibDaddrType,
    /// Set the verdict.
    Verdict(Verdict),
    /// Load constant data into a register.
    Immediate {
        /// Register.
        reg: u32,
        /// Bytes.
        data: Vec<u8>,
    },
    /// Destination NAT to the address in REG1 and port in REG2.
    Dnat {
        /// NFPROTO_IPV4 (2) or NFPROTO_IPV6 (10).
        family: u32,
    },
    /// Source NAT to the outgoing interface's address.
    Masquerade,
    /// Count packets and bytes (readable with a rule dump).
    Counter,
}

// Attribute numbers.
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;

fn data_value(v: &[u8]) -> Attrs {
    let mut a = Attrs::new();
    a.bytes(NFTA_DATA_VALUE, v);
    a
}

impl Expr {
    fn name(&self) -> &'static str {
        match self {
            Expr::Meta(_) => "meta",
            Expr::Ct(_) => "ct",
            Expr::Payload { .. } => "payload",
            Expr::And(_) => "bitwise",
            Expr::Cmp(..) => "cmp",
            Expr::FibDaddrType => "fib",
            Expr::Verdict(_) | Expr::Immediate { .. } => "immediate",
            Expr::Dnat { .. } => "nat",
            Expr::Masquerade => "masq",
            Expr::Counter => "counter",
        }
    }

    fn data(&self) -> Option<Attrs> {
        let mut d = Attrs::new();
        match self {
            Expr::Meta(key) => {
                // NFTA_META_DREG = 1, NFTA_META_KEY = 2
                d.be32(1, REG1).be32(2, *key as u32);
            }
            Expr::Ct(key) => {
                // NFTA_CT_DREG = 1, NFTA_CT_KEY = 2
                d.be32(1, REG1).be32(2, *key as u32);
            }
            Expr::Payload { base, offset, len } => {
                // DREG, BASE, OFFSET, LEN
                d.be32(1, REG1)
                    .be32(2, *base as u32)
                    .be32(3, *offset)
                    .be32(4, *len);
            }
            Expr::And(mask) => {
                // SREG, DREG, LEN, MASK, XOR
                d.be32(1, REG1)
                    .be32(2, REG1)
                    .be32(3, mask.len() as u32)
                    .nested(4, &data_value(mask))
                    .nested(5, &data_value(&vec![0u8; mask.len()]));
            }
            Expr::Cmp(op, v) => {
                // SREG, OP, DATA
                d.be32(1, REG1)
                    .be32(2, *op as u32)
                    .nested(3, &data_value(v));
            }
            Expr::FibDaddrType => {
                // DREG, RESULT = NFT_FIB_RESULT_ADDRTYPE (3), FLAGS = NFTA_FIB_F_DADDR (2)
                d.be32(1, REG1).be32(2, 3).be32(3, 2);
            }
            Expr::Verdict(v) => {
                let mut code = Attrs::new();
                code.be32(NFTA_VERDICT_CODE, *v as u32);
                let mut data = Attrs::new();
                data.nested(NFTA_DATA_VERDICT, &code);
                // DREG = NFT_REG_VERDICT (0), DATA
                d.be32(1, 0).nested(2, &data);
            }
            Expr::Immediate { reg, data } => {
                d.be32(1, *reg).nested(2, &data_value(data));
            }
            Expr::Dnat { family } => {
                // TYPE = NFT_NAT_DNAT (1), FAMILY, REG_ADDR_MIN, REG_PROTO_MIN,
                // FLAGS = NF_NAT_RANGE_MAP_IPS | NF_NAT_RANGE_PROTO_SPECIFIED
                d.be32(1, 1)
                    .be32(2, *family)
                    .be32(3, REG1)
                    .be32(5, REG2)
                    .be32(7, 0x1 | 0x2);
            }
            Expr::Masquerade | Expr::Counter => return None,
        }
        Some(d)
    }

    /// Appends this expression as one NFTA_LIST_ELEM to `list`.
    pub(crate) fn encode(&self, list: &mut Attrs) {
        let mut e = Attrs::new();
        e.str(NFTA_EXPR_NAME, self.name());
        if let Some(d) = self.data() {
            e.nested(NFTA_EXPR_DATA, &d);
        }
        list.nested(NFTA_LIST_ELEM, &e);
    }
}
