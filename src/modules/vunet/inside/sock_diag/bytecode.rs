//! The filter bytecode of an `inet_diag` dump (`INET_DIAG_REQ_BYTECODE`), which
//! `ss` compiles its filters to (`sport = :80`, `dst 10.0.0.0/8`, `autobound`):
//! checked as `inet_diag_bc_audit` checks it, run as `inet_diag_bc_run` runs it.
//!
//! The program is a sequence of operations, each a 4-byte `inet_diag_bc_op`
//! (`code`, `yes`, `no`: how far to move on, as the condition holds or not)
//! followed by its operands. It accepts a socket when a jump lands exactly on
//! its end.

use super::{Errno, FAMILY_INET, FAMILY_INET6, SocketView, sport};

/// Operation codes (`INET_DIAG_BC_*`).
mod op {
    pub const NOP: u8 = 0;
    pub const JMP: u8 = 1;
    pub const S_GE: u8 = 2;
    pub const S_LE: u8 = 3;
    pub const D_GE: u8 = 4;
    pub const D_LE: u8 = 5;
    pub const AUTO: u8 = 6;
    pub const S_COND: u8 = 7;
    pub const D_COND: u8 = 8;
    pub const DEV_COND: u8 = 9;
    pub const MARK_COND: u8 = 10;
    pub const S_EQ: u8 = 11;
    pub const D_EQ: u8 = 12;
    pub const CGROUP_COND: u8 = 13;
}

/// The length of an operation header (`struct inet_diag_bc_op`).
const OP_LEN: usize = 4;
/// The length of a host condition before its address (`struct inet_diag_hostcond`).
const HOSTCOND_LEN: usize = 8;

/// What the bytecode sees of a socket (`struct inet_diag_entry`).
#[derive(Debug)]
pub(super) struct Entry {
    family: u8,
    /// Addresses as the socket keeps them: IPv4 in the first 4 bytes, IPv6
    /// (v4-mapped for IPv4 peers) in all 16.
    source: [u8; 16],
    destination: [u8; 16],
    sport: u16,
    dport: u16,
    /// `SOCK_BINDPORT_LOCK` is set.
    port_locked: bool,
}

impl Entry {
    /// The entry of `socket` (`inet_diag_bc_sk`).
    pub(super) fn of(socket: &SocketView) -> Self {
        let bytes = |ip: std::net::IpAddr| -> [u8; 16] {
            match (socket.family, ip) {
                (FAMILY_INET6, std::net::IpAddr::V4(v4)) => v4.to_ipv6_mapped().octets(),
                (_, std::net::IpAddr::V6(v6)) => v6.octets(),
                (_, std::net::IpAddr::V4(v4)) => {
                    let mut bytes = [0; 16];
                    bytes[..4].copy_from_slice(&v4.octets());
                    bytes
                }
            }
        };
        Entry {
            family: socket.family,
            source: bytes(socket.local.ip()),
            destination: bytes(socket.remote.ip()),
            sport: sport(socket),
            dport: socket.remote.port(),
            port_locked: socket.port_locked,
        }
    }
}

/// The operation at `at` in `code`: its code, `yes` and `no` (a header cut
/// short reads as zeros, which no check lets pass).
fn header(code: &[u8], at: usize) -> (u8, usize, usize) {
    let byte = |i: usize| code.get(at + i).copied().unwrap_or(0);
    (byte(0), usize::from(byte(1)), usize::from(u16::from_ne_bytes([byte(2), byte(3)])))
}

/// Checks `code` as `inet_diag_bc_audit` does: every operation whole, every
/// jump forward by whole operations, to an operation's start or just past the
/// end (accept) or four bytes beyond it (reject). The asker is the stack's
/// administrator, so mark conditions are allowed.
pub(super) fn audit(code: &[u8]) -> Result<(), Errno> {
    if code.len() < OP_LEN {
        return Err(libc::EINVAL);
    }
    let starts = OperationStarts::of(code);
    let mut at = 0;
    let mut len = code.len() as isize;
    while len > 0 {
        let (kind, yes, no) = header(code, at);
        let min_len = OP_LEN + operand_len(kind, &code[at..]).ok_or(libc::EINVAL)?;
        let fits =
            |jump: usize| jump >= min_len && jump as isize <= len + 4 && jump.is_multiple_of(4);
        if kind != op::NOP {
            if !fits(no) {
                return Err(libc::EINVAL);
            }
            if (no as isize) < len && !starts.lands_on_one(len - no as isize) {
                return Err(libc::EINVAL);
            }
        }
        if !fits(yes) {
            return Err(libc::EINVAL);
        }
        at += yes;
        len -= yes as isize;
    }
    if len == 0 { Ok(()) } else { Err(libc::EINVAL) }
}

/// The length of the operands of the operation `op` starts with, if they are
/// whole and valid (`valid_hostcond`, `valid_port_comparison`, ...).
fn operand_len(kind: u8, op: &[u8]) -> Option<usize> {
    let len = match kind {
        op::NOP | op::JMP | op::AUTO => 0,
        op::S_GE | op::S_LE | op::D_GE | op::D_LE | op::S_EQ | op::D_EQ => OP_LEN,
        op::DEV_COND => 4,
        op::MARK_COND | op::CGROUP_COND => 8,
        op::S_COND | op::D_COND => {
            let condition = op.get(OP_LEN..OP_LEN + HOSTCOND_LEN)?;
            let address_len = match condition[0] {
                0 => 0,
                FAMILY_INET => 4,
                FAMILY_INET6 => 16,
                _ => return None,
            };
            if usize::from(condition[1]) > 8 * address_len {
                return None;
            }
            HOSTCOND_LEN + address_len
        }
        _ => return None,
    };
    (op.len() >= OP_LEN + len).then_some(len)
}

/// Where the operations of a program start, as `valid_cc` finds them: following
/// each operation's `yes` from the first, up to one that is not whole and
/// aligned. Walked once, so that checking every jump costs no more than the
/// program is long (`valid_cc` walks the program again for each).
struct OperationStarts {
    /// The bytes left from each start to the program's end, longest first.
    remaining: Vec<isize>,
}

impl OperationStarts {
    fn of(code: &[u8]) -> Self {
        let mut remaining = Vec::new();
        let mut at = 0;
        let mut len = code.len() as isize;
        while len >= 0 {
            remaining.push(len);
            let (_, yes, _) = header(code, at);
            if yes < OP_LEN || !yes.is_multiple_of(4) {
                break;
            }
            at += yes;
            len -= yes as isize;
        }
        OperationStarts { remaining }
    }

    /// Whether the jump leaving `remaining` bytes of the program lands at the
    /// start of an operation.
    fn lands_on_one(&self, remaining: isize) -> bool {
        self.remaining.binary_search_by(|left| remaining.cmp(left)).is_ok()
    }
}

/// Runs audited `code` on `entry` (`inet_diag_bc_run`): whether it accepts.
pub(super) fn run(code: &[u8], entry: &Entry) -> bool {
    let mut at = 0;
    let mut len = code.len() as isize;
    while len > 0 {
        let (kind, yes, no) = header(code, at);
        let holds = holds(kind, code.get(at + OP_LEN..).unwrap_or_default(), entry);
        let jump = if holds { yes } else { no };
        if jump == 0 {
            // Audited code never stands still; refuse rather than loop.
            return false;
        }
        at += jump;
        len -= jump as isize;
    }
    len == 0
}

/// Whether the condition `kind` with `operands` holds for `entry`.
fn holds(kind: u8, operands: &[u8], entry: &Entry) -> bool {
    let u16_at = |at: usize| operands.get(at..at + 2).map(|b| u16::from_ne_bytes([b[0], b[1]]));
    let u32_at = |at: usize| {
        operands.get(at..at + 4).map(|b| u32::from_ne_bytes(b.try_into().expect("4 bytes")))
    };
    // A port comparison's port is the `no` of the operation that follows.
    let port = u16_at(2).unwrap_or(0);
    match kind {
        op::NOP => true,
        op::JMP => false,
        op::S_EQ => entry.sport == port,
        op::S_GE => entry.sport >= port,
        op::S_LE => entry.sport <= port,
        op::D_EQ => entry.dport == port,
        op::D_GE => entry.dport >= port,
        op::D_LE => entry.dport <= port,
        op::AUTO => !entry.port_locked,
        op::S_COND | op::D_COND => host_condition(kind == op::S_COND, operands, entry),
        // The stack's sockets are bound to no device and carry no mark.
        op::DEV_COND => u32_at(0) == Some(0),
        op::MARK_COND => u32_at(0) == Some(0),
        // Nor are they in a cgroup the bytecode can name.
        _ => false,
    }
}

/// An address condition (`INET_DIAG_BC_S_COND`, `D_COND`): a port (-1: any), a
/// family and a prefix of an address.
fn host_condition(source: bool, operands: &[u8], entry: &Entry) -> bool {
    let Some(condition) = operands.get(..HOSTCOND_LEN) else { return false };
    let (family, prefix_len) = (condition[0], usize::from(condition[1]));
    let port = i32::from_ne_bytes(condition[4..8].try_into().expect("4 bytes"));
    let wanted = &operands[HOSTCOND_LEN..];
    let (own_port, address) =
        if source { (entry.sport, &entry.source) } else { (entry.dport, &entry.destination) };
    if port != -1 && port != i32::from(own_port) {
        return false;
    }
    if family != 0 && family != entry.family {
        // An IPv4 condition matches the v4-mapped addresses of IPv6 sockets.
        let mapped = entry.family == FAMILY_INET6
            && family == FAMILY_INET
            && address[..12] == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];
        return mapped && prefix_matches(&address[12..], wanted, prefix_len);
    }
    prefix_len == 0 || prefix_matches(address, wanted, prefix_len)
}

/// Whether the first `bits` bits of `a` and `b` agree (`bitstring_match`).
fn prefix_matches(a: &[u8], b: &[u8], bits: usize) -> bool {
    let (bytes, rest) = (bits / 8, bits % 8);
    let (Some(a_whole), Some(b_whole)) = (a.get(..bytes), b.get(..bytes)) else { return false };
    if a_whole != b_whole {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    match (a.get(bytes), b.get(bytes)) {
        (Some(x), Some(y)) => (x ^ y) & mask == 0,
        _ => false,
    }
}
