//! Answers `NETLINK_SOCK_DIAG` requests from a stack's sockets, as Linux would.
//!
//! `ss` (and anything else that lists sockets through `sock_diag`) asks the
//! kernel for the sockets of its network namespace; a program on a stack must be
//! told of the stack's sockets instead. [`respond_listing`] gives the datagrams Linux
//! would deliver for one datagram sent on a `NETLINK_SOCK_DIAG` socket, from the
//! stack's [`SocketView`]s. The protocol is the kernel's: `netlink_rcv_skb` cuts
//! the datagram into messages, `sock_diag_rcv_msg` dispatches each by type and
//! family, `inet_diag` answers `AF_INET` and `AF_INET6` for TCP, UDP and raw
//! sockets (dumps with their state mask, port and bytecode filters, single gets
//! by tuple and cookie), errors and acknowledgements are `netlink_ack`'s.
//!
//! A stack has no `AF_UNIX`, netlink or packet sockets of its own: those dumps
//! are empty, their single gets fail as Linux fails them for an absent socket.
//! Sockets are never destroyed (`SOCK_DESTROY`), as on a kernel built without
//! `CONFIG_INET_DIAG_DESTROY`. The asker is taken to be the stack's
//! administrator (`CAP_NET_ADMIN` in its namespace, as the session's user is):
//! marks are reported and mark conditions allowed.

mod bytecode;
#[cfg(test)]
mod tests;

use std::net::{IpAddr, SocketAddr};

use netlink_packet_core::{DefaultNla, Emitable, NLM_F_DUMP};
use netlink_packet_sock_diag::inet::nlas::{LegacyMemInfo, MemInfo, Nla};
use netlink_packet_sock_diag::inet::{InetResponse, InetResponseHeader, SocketId};

use super::Errno;
use super::netlink::{Addressee, Dump, Handled, Message, Replies, align, messages};

/// One socket of a stack, as `inet_diag` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketView {
    /// `AF_INET` or `AF_INET6`, as the socket was made.
    pub family: u8,
    /// Which of the kernel's socket tables it is in.
    pub transport: Transport,
    /// Its state, as Linux numbers TCP states ([`state`]): UDP and raw sockets
    /// are [`state::CLOSE`] unconnected and [`state::ESTABLISHED`] connected.
    pub state: u8,
    /// Its bound address (unspecified, port 0, if unbound). An IPv4 address of
    /// an `AF_INET6` socket is reported v4-mapped.
    pub local: SocketAddr,
    /// Its peer (unspecified, port 0, if none).
    pub remote: SocketAddr,
    /// Recv-Q: for a listener, the connections waiting for `accept`; else the
    /// bytes waiting to be read (0 where unknown).
    pub rqueue: u32,
    /// Send-Q: for a listener, its backlog; else the bytes not yet
    /// acknowledged (0 where unknown).
    pub wqueue: u32,
    /// The uid of its owner (the creator's, as `sock_i_uid`).
    pub uid: u32,
    /// The inode of the socket in the program (what `/proc/PID/fd` links name,
    /// so that `ss -p` finds the owning processes).
    pub inode: u64,
    /// Its cookie: unique among the stack's sockets, never 0 or all ones.
    pub cookie: u64,
    /// `sk_shutdown`: [`RCV_SHUTDOWN`] and [`SEND_SHUTDOWN`] as shut down.
    pub shutdown: u8,
    /// `IPV6_V6ONLY` (reported for `AF_INET6` listeners and closed sockets).
    pub v6only: bool,
    /// The program's `bind` chose the port (`SOCK_BINDPORT_LOCK`; the bytecode's
    /// `autobound` condition is its negation).
    pub port_locked: bool,
}

/// The socket tables `inet_diag` has a handler for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// TCP (`tcp_diag`).
    Tcp,
    /// UDP (`udp_diag`).
    Udp,
    /// A raw socket of this IP protocol (`raw_diag`). Ping sockets
    /// (`SOCK_DGRAM`, `IPPROTO_ICMP`) are in no table `inet_diag` dumps.
    Raw(u8),
}

/// Linux's socket states (`TCP_ESTABLISHED`, ...), as `idiag_state` gives them.
pub mod state {
    /// `TCP_ESTABLISHED`.
    pub const ESTABLISHED: u8 = 1;
    /// `TCP_SYN_SENT`.
    pub const SYN_SENT: u8 = 2;
    /// `TCP_FIN_WAIT2`.
    pub const FIN_WAIT2: u8 = 5;
    /// `TCP_CLOSE`.
    pub const CLOSE: u8 = 7;
    /// `TCP_LISTEN`.
    pub const LISTEN: u8 = 10;
    /// `TCP_BOUND_INACTIVE`: only a filter bit, for bound TCP sockets in
    /// `TCP_CLOSE`.
    pub const BOUND_INACTIVE: u8 = 13;
}

/// `sk_shutdown` bit: the receiving side is shut down.
pub const RCV_SHUTDOWN: u8 = 1;
/// `sk_shutdown` bit: the sending side is shut down.
pub const SEND_SHUTDOWN: u8 = 2;

/// Answers the netlink messages in `request`, one datagram a program's
/// `NETLINK_SOCK_DIAG` socket with port id `port` sent, from the stack's
/// `sockets`: the datagrams to deliver to it, in order (what tests ask; a
/// socket's requests are answered by [`respond_listing`]).
#[cfg(test)]
pub fn respond(sockets: &[SocketView], port: u32, request: &[u8]) -> Vec<Vec<u8>> {
    respond_listing(&mut || sockets.to_vec(), port, request)
}

/// Answers the netlink messages in `request`, one datagram a program's
/// `NETLINK_SOCK_DIAG` socket with port id `port` sent, from the stack's sockets,
/// listed by `list` when a request first needs them, at most once: listing a stack's sockets costs more than most requests
/// (a datagram of nothing, or a request refused, never asks).
pub fn respond_listing(
    list: &mut dyn FnMut() -> Vec<SocketView>,
    port: u32,
    request: &[u8],
) -> Vec<Vec<u8>> {
    let sockets = Listing { list, listed: None };
    let mut exchange = Exchange { sockets, port, replies: Replies::default() };
    for message in messages(request) {
        exchange.receive(message);
    }
    exchange.replies.finish()
}

/// Message types (`linux/sock_diag.h`, `linux/inet_diag.h`).
mod kind {
    /// `TCPDIAG_GETSOCK`: the legacy TCP request.
    pub const TCPDIAG_GETSOCK: u16 = 18;
    /// `DCCPDIAG_GETSOCK`: the legacy DCCP request (DCCP is gone from Linux).
    pub const DCCPDIAG_GETSOCK: u16 = 19;
    /// `SOCK_DIAG_BY_FAMILY`.
    pub const BY_FAMILY: u16 = 20;
    /// `SOCK_DESTROY`.
    pub const DESTROY: u16 = 21;
}

/// The address families Linux knows (`AF_MAX`): a request for one past them is
/// `EINVAL`, for one without a diag handler `ENOENT`.
const AF_MAX: u8 = 46;

/// A stack's sockets, listed when first needed.
struct Listing<'a> {
    list: &'a mut dyn FnMut() -> Vec<SocketView>,
    listed: Option<Vec<SocketView>>,
}

impl Listing<'_> {
    /// The sockets, listed now if they were not yet.
    fn get(&mut self) -> &[SocketView] {
        self.listed.get_or_insert_with(|| (self.list)())
    }
}

/// The answering of one datagram's messages.
struct Exchange<'a> {
    sockets: Listing<'a>,
    port: u32,
    replies: Replies,
}

impl Exchange<'_> {
    /// Answers one message (`netlink_rcv_skb`).
    fn receive(&mut self, message: Message) {
        let to = Addressee { port: self.port, sequence: message.header.sequence_number };
        let handled =
            if message.is_request() { self.handle(&message, to) } else { Handled::Acknowledge(0) };
        self.replies.conclude(&message, to, handled);
    }

    /// Handles one request (`sock_diag_rcv_msg`, `__sock_diag_cmd`).
    fn handle(&mut self, message: &Message, to: Addressee) -> Handled {
        let payload = message.payload();
        match message.header.message_type {
            kind::TCPDIAG_GETSOCK => self.inet(message, to, Request::legacy(message)),
            kind::BY_FAMILY | kind::DESTROY => {
                let Some(&[family, _]) = payload.get(..2) else {
                    return Handled::Acknowledge(libc::EINVAL);
                };
                match family {
                    family if family >= AF_MAX => Handled::Acknowledge(libc::EINVAL),
                    FAMILY_INET | FAMILY_INET6 => self.inet(message, to, Request::v2(message)),
                    // No other family's handler destroys sockets.
                    _ if message.header.message_type == kind::DESTROY => {
                        let has_handler = other_family(family).is_some();
                        Handled::Acknowledge(if has_handler {
                            libc::EOPNOTSUPP
                        } else {
                            libc::ENOENT
                        })
                    }
                    _ => self.other_family(message, to, family),
                }
            }
            // DCCP is gone from Linux.
            kind::DCCPDIAG_GETSOCK => Handled::Acknowledge(libc::EINVAL),
            _ => Handled::Acknowledge(libc::EINVAL),
        }
    }

    /// A request for `AF_UNIX`, `AF_NETLINK` or `AF_PACKET` sockets, of which a
    /// stack has none; other families have no diag handler (`ENOENT`).
    fn other_family(&mut self, message: &Message, to: Addressee, family: u8) -> Handled {
        let Some(other) = other_family(family) else {
            return Handled::Acknowledge(libc::ENOENT);
        };
        if message.payload().len() < other.request_len {
            return Handled::Acknowledge(libc::EINVAL);
        }
        if message.has_flag(NLM_F_DUMP) {
            return self.dump(Dump::new(to));
        }
        // `udiag_ino` follows the family, protocol, padding and states.
        let inode = message.payload()[8..12] != [0; 4];
        Handled::Acknowledge(match family {
            // `unix_diag_get_exact`: no inode is `EINVAL`, another absent.
            FAMILY_UNIX if inode => libc::ENOENT,
            FAMILY_UNIX => libc::EINVAL,
            _ => libc::EOPNOTSUPP,
        })
    }

    /// An `inet_diag` request (`inet_diag_handler_cmd`,
    /// `inet_diag_rcv_msg_compat`), read as `request`.
    fn inet(
        &mut self,
        message: &Message,
        to: Addressee,
        request: Result<Request, Errno>,
    ) -> Handled {
        let request = match request {
            Ok(request) => request,
            Err(errno) => return Handled::Acknowledge(errno),
        };
        let kind = message.header.message_type;
        if kind != kind::DESTROY && message.has_flag(NLM_F_DUMP) {
            // `netlink_dump_start` refuses a dump while one runs before it
            // reads the request further: a busy dump costs nothing.
            if self.replies.dumping() {
                return Handled::Acknowledge(libc::EBUSY);
            }
            if let Some(code) = request.bytecode
                && let Err(errno) = bytecode::audit(code)
            {
                return Handled::Acknowledge(errno);
            }
            let mut dump = Dump::new(to);
            match Table::of(request.protocol) {
                Some(table) => {
                    for socket in dumped(self.sockets.get(), table, &request) {
                        dump.add_raw(kind, &response(socket, &request));
                    }
                }
                None => dump.fail(libc::ENOENT),
            }
            return self.dump(dump);
        }
        Handled::Acknowledge(match self.exact(&request, to, kind) {
            Ok(answer) => {
                self.replies.delivered.push(answer);
                0
            }
            Err(errno) => errno,
        })
    }

    /// A single get (`inet_diag_cmd_exact`): the answer, or the errno.
    fn exact(&mut self, request: &Request, to: Addressee, kind: u16) -> Result<Vec<u8>, Errno> {
        let table = Table::of(request.protocol).ok_or(libc::ENOENT)?;
        if kind == kind::DESTROY {
            return Err(libc::EOPNOTSUPP);
        }
        let socket = find_one(self.sockets.get(), table, request)?;
        Ok(to.raw(kind, 0, &response(socket, request)))
    }

    /// Starts `dump` (`netlink_dump_start`): `NLMSG_DONE` comes in a datagram
    /// of its own (the dump callbacks end by returning a length, so the end
    /// comes with the next read).
    fn dump(&mut self, dump: Dump) -> Handled {
        if self.replies.dumping() {
            return Handled::Acknowledge(libc::EBUSY);
        }
        self.replies.start_dump(dump.into_datagrams(true))
    }
}

/// `AF_INET`, `AF_INET6`, `AF_UNIX`, as request family bytes.
const FAMILY_INET: u8 = libc::AF_INET as u8;
const FAMILY_INET6: u8 = libc::AF_INET6 as u8;
const FAMILY_UNIX: u8 = libc::AF_UNIX as u8;

/// A family other than `inet`'s that Linux has a diag handler for.
struct OtherFamily {
    /// The length of its request header (`unix_diag_req`, `netlink_diag_req`,
    /// `packet_diag_req`).
    request_len: usize,
}

/// The diag handler Linux has for `family`, among those a stack has no
/// sockets of.
fn other_family(family: u8) -> Option<OtherFamily> {
    match i32::from(family) {
        libc::AF_UNIX => Some(OtherFamily { request_len: 24 }),
        libc::AF_NETLINK | libc::AF_PACKET => Some(OtherFamily { request_len: 20 }),
        _ => None,
    }
}

/// An `inet_diag` request, from an `inet_diag_req_v2` or a legacy
/// `inet_diag_req`, with its attributes.
#[derive(Debug)]
struct Request<'a> {
    /// `AF_INET`, `AF_INET6`, or `AF_UNSPEC` (a legacy dump: both).
    family: u8,
    /// The protocol whose table is asked (`INET_DIAG_REQ_PROTOCOL` if given).
    protocol: u32,
    /// A raw socket's protocol, for raw single gets (`sdiag_raw_protocol`).
    raw_protocol: u8,
    /// The extensions asked for (`idiag_ext`).
    extensions: u8,
    /// The states dumped, a bit per state.
    states: u32,
    /// The socket named (`inet_diag_sockid`).
    id: RequestId,
    /// The filter (`INET_DIAG_REQ_BYTECODE`).
    bytecode: Option<&'a [u8]>,
}

/// An `inet_diag_sockid`: ports in host order, addresses as sent (IPv4 in the
/// first 4 bytes), the cookie as two native words.
#[derive(Debug, Default)]
struct RequestId {
    sport: u16,
    dport: u16,
    src: [u8; 16],
    dst: [u8; 16],
    cookie: [u32; 2],
}

/// `sizeof(struct inet_diag_req_v2)`.
const REQUEST_V2_LEN: usize = 56;
/// `sizeof(struct inet_diag_req)`, the legacy request.
const REQUEST_LEGACY_LEN: usize = 60;
/// The cookie that matches any socket (`INET_DIAG_NOCOOKIE`, both words).
const NO_COOKIE: u32 = !0;
/// Request attributes (`INET_DIAG_REQ_BYTECODE`, `INET_DIAG_REQ_PROTOCOL`).
const REQ_BYTECODE: u16 = 1;
const REQ_PROTOCOL: u16 = 3;

impl<'a> Request<'a> {
    /// Reads an `inet_diag_req_v2`.
    fn v2(message: &Message<'a>) -> Result<Self, Errno> {
        let payload = message.payload();
        if payload.len() < REQUEST_V2_LEN {
            return Err(libc::EINVAL);
        }
        let mut request = Request {
            family: payload[0],
            protocol: u32::from(payload[1]),
            raw_protocol: payload[3],
            extensions: payload[2],
            states: u32::from_ne_bytes(payload[4..8].try_into().expect("4 bytes")),
            id: RequestId::read(&payload[8..56]),
            bytecode: None,
        };
        request.read_attributes(&payload[REQUEST_V2_LEN..])?;
        Ok(request)
    }

    /// Reads a legacy `inet_diag_req` (`TCPDIAG_GETSOCK`): a dump covers both
    /// families.
    fn legacy(message: &Message<'a>) -> Result<Self, Errno> {
        let payload = message.payload();
        if payload.len() < REQUEST_LEGACY_LEN {
            return Err(libc::EINVAL);
        }
        let dump = message.has_flag(NLM_F_DUMP);
        let mut request = Request {
            family: if dump { libc::AF_UNSPEC as u8 } else { payload[0] },
            protocol: libc::IPPROTO_TCP as u32,
            raw_protocol: 0,
            extensions: payload[3],
            states: u32::from_ne_bytes(payload[52..56].try_into().expect("4 bytes")),
            id: RequestId::read(&payload[4..52]),
            bytecode: None,
        };
        request.read_attributes(&payload[REQUEST_LEGACY_LEN..])?;
        request.protocol = libc::IPPROTO_TCP as u32;
        Ok(request)
    }

    /// Reads the attributes after the request (`inet_diag_parse_attrs`): the
    /// last of each type counts; a protocol not of 4 bytes is `EINVAL`.
    fn read_attributes(&mut self, mut rest: &'a [u8]) -> Result<(), Errno> {
        while let Some(header) = rest.get(..4) {
            let len = usize::from(u16::from_ne_bytes([header[0], header[1]]));
            let kind =
                u16::from_ne_bytes([header[2], header[3]]) & netlink_packet_core::NLA_TYPE_MASK;
            if len < 4 || len > rest.len() {
                break;
            }
            let value = &rest[4..len];
            match kind {
                REQ_PROTOCOL => {
                    let bytes: [u8; 4] = value.try_into().map_err(|_| libc::EINVAL)?;
                    self.protocol = u32::from_ne_bytes(bytes);
                }
                REQ_BYTECODE => self.bytecode = Some(value),
                _ => {}
            }
            rest = rest.get(align(len)..).unwrap_or_default();
        }
        Ok(())
    }
}

impl RequestId {
    /// Reads the 48 bytes of an `inet_diag_sockid`.
    fn read(bytes: &[u8]) -> Self {
        let word = |at: usize| u32::from_ne_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        RequestId {
            sport: u16::from_be_bytes([bytes[0], bytes[1]]),
            dport: u16::from_be_bytes([bytes[2], bytes[3]]),
            src: bytes[4..20].try_into().expect("16 bytes"),
            dst: bytes[20..36].try_into().expect("16 bytes"),
            cookie: [word(40), word(44)],
        }
    }

    /// Whether the cookie given matches `cookie` (`sock_diag_check_cookie`):
    /// all ones matches any socket.
    fn cookie_matches(&self, cookie: u64) -> bool {
        self.cookie == [NO_COOKIE; 2] || self.cookie == [cookie as u32, (cookie >> 32) as u32]
    }
}

/// A socket table `inet_diag` has a handler for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Table {
    Tcp,
    Udp,
    /// UDP-Lite: Linux has the table, a stack has no such socket.
    UdpLite,
    Raw,
}

impl Table {
    /// The handler for `protocol` (`inet_diag_lock_handler`).
    fn of(protocol: u32) -> Option<Table> {
        match protocol as i32 {
            libc::IPPROTO_TCP => Some(Table::Tcp),
            libc::IPPROTO_UDP => Some(Table::Udp),
            libc::IPPROTO_UDPLITE => Some(Table::UdpLite),
            libc::IPPROTO_RAW => Some(Table::Raw),
            _ => None,
        }
    }

    /// Whether `socket` is in this table (an unbound UDP socket is in none).
    fn holds(self, socket: &SocketView) -> bool {
        match (self, socket.transport) {
            (Table::Tcp, Transport::Tcp) | (Table::Raw, Transport::Raw(_)) => true,
            (Table::Udp, Transport::Udp) => socket.local.port() != 0,
            _ => false,
        }
    }
}

/// Whether a filter port `wanted` (0: any) admits `port`.
fn port_admits(wanted: u16, port: u16) -> bool {
    wanted == 0 || wanted == port
}

/// The sockets a dump of `table` answers `request` with, in the order Linux
/// walks its tables: for TCP, listeners, then bound but inactive sockets, then
/// the others; by local port within each.
fn dumped<'s>(sockets: &'s [SocketView], table: Table, request: &Request) -> Vec<&'s SocketView> {
    let wants_state = |state: u8| request.states & (1 << state) != 0;
    let mut chosen: Vec<(u8, &SocketView)> = sockets
        .iter()
        .filter(|s| table.holds(s) && request.family_admits(s))
        .filter_map(|s| {
            let ports = port_admits(request.id.sport, sport(s))
                && port_admits(request.id.dport, s.remote.port());
            let pass = match (table, s.state) {
                (Table::Tcp, state::LISTEN) => (wants_state(state::LISTEN)
                    && request.id.dport == 0
                    && port_admits(request.id.sport, sport(s)))
                .then_some(0),
                // `inet_diag_dump_icsk` does not filter these by port.
                (Table::Tcp, state::CLOSE) => {
                    (wants_state(state::BOUND_INACTIVE) && s.local.port() != 0).then_some(1)
                }
                (Table::Raw, _) => ports.then_some(2),
                (_, state) => (ports && wants_state(state)).then_some(2),
            }?;
            Some((pass, s))
        })
        .filter(|(_, s)| {
            request.bytecode.is_none_or(|code| bytecode::run(code, &bytecode::Entry::of(s)))
        })
        .collect();
    chosen.sort_by_key(|(pass, s)| (*pass, s.local.port(), s.remote.port(), s.inode));
    chosen.into_iter().map(|(_, s)| s).collect()
}

/// The "port" `inet_diag` reports and filters a socket by: a raw socket's is
/// its protocol.
fn sport(socket: &SocketView) -> u16 {
    match socket.transport {
        Transport::Raw(protocol) => u16::from(protocol),
        _ => socket.local.port(),
    }
}

impl Request<'_> {
    /// Whether a socket of the stack is of the family asked (`AF_UNSPEC`: any).
    fn family_admits(&self, socket: &SocketView) -> bool {
        self.family == libc::AF_UNSPEC as u8 || self.family == socket.family
    }
}

/// The socket a single get names (`inet_diag_find_one_icsk`, `udp_dump_one`,
/// `raw_diag_dump_one`), or the errno.
fn find_one<'s>(
    sockets: &'s [SocketView],
    table: Table,
    request: &Request,
) -> Result<&'s SocketView, Errno> {
    let id = &request.id;
    let mut of_table = sockets.iter().filter(|s| table.holds(s) && request.family_admits(s));
    let found = match table {
        // The established socket of the tuple, else the listener on its local end.
        Table::Tcp => {
            let (local, remote) = (request.address(&id.src), request.address(&id.dst));
            let candidates: Vec<&SocketView> = of_table.collect();
            candidates
                .iter()
                .find(|s| {
                    s.state != state::LISTEN
                        && s.local.port() == id.sport
                        && s.remote.port() == id.dport
                        && same_ip(s.local.ip(), local)
                        && same_ip(s.remote.ip(), remote)
                })
                .or_else(|| {
                    candidates.iter().find(|s| {
                        s.state == state::LISTEN
                            && s.local.port() == id.sport
                            && covers(s.local.ip(), local)
                    })
                })
                .copied()
        }
        // The socket a datagram from `src` to `dst` would reach ("src and dst
        // are swapped for historical reasons").
        Table::Udp => {
            let (from, to) = (request.address(&id.src), request.address(&id.dst));
            of_table
                .filter(|s| s.local.port() == id.dport && covers(s.local.ip(), to))
                .filter(|s| {
                    s.remote.port() == 0
                        || (s.remote.port() == id.sport && same_ip(s.remote.ip(), from))
                })
                .max_by_key(|s| (s.remote.port() != 0, !s.local.ip().is_unspecified()))
        }
        Table::Raw => {
            let (local, remote) = (request.address(&id.src), request.address(&id.dst));
            of_table.find(|s| {
                matches!(s.transport, Transport::Raw(p) if p == request.raw_protocol)
                    && covers(s.local.ip(), local)
                    && covers(s.remote.ip(), remote)
            })
        }
        Table::UdpLite => None,
    };
    let socket = found.ok_or(libc::ENOENT)?;
    match table {
        Table::Raw => Ok(socket),
        _ if id.cookie_matches(socket.cookie) => Ok(socket),
        Table::Udp => Err(libc::ESTALE),
        _ => Err(libc::ENOENT),
    }
}

impl Request<'_> {
    /// An address of the request's id, read in its family (an IPv4 address,
    /// in `AF_INET6` v4-mapped, is compared as such).
    fn address(&self, bytes: &[u8; 16]) -> IpAddr {
        if self.family == FAMILY_INET {
            IpAddr::from(<[u8; 4]>::try_from(&bytes[..4]).expect("4 bytes"))
        } else {
            IpAddr::from(*bytes)
        }
    }
}

/// `ip` as the kernel keeps it for a socket of its family (v4-mapped in IPv6).
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Whether two addresses are the same, v4-mapped or not.
fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    canonical(a) == canonical(b)
}

/// Whether a socket's address `own` (a wildcard covers any) admits `asked`.
fn covers(own: IpAddr, asked: IpAddr) -> bool {
    own.is_unspecified() || same_ip(own, asked)
}

/// The payload of the message answering `request` with `socket`
/// (`inet_sk_diag_fill`).
fn response(socket: &SocketView, request: &Request) -> Vec<u8> {
    let response = InetResponse {
        header: header(socket),
        nlas: attributes(socket, request.extensions).into(),
    };
    let mut payload = vec![0; response.buffer_len()];
    response.emit(&mut payload);
    payload
}

/// The `inet_diag_msg` of `socket`.
fn header(socket: &SocketView) -> InetResponseHeader {
    let address = |addr: SocketAddr| -> IpAddr {
        match (socket.family, addr.ip()) {
            (FAMILY_INET6, IpAddr::V4(v4)) => IpAddr::V6(v4.to_ipv6_mapped()),
            (_, ip) => ip,
        }
    };
    let mut cookie = [0u8; 8];
    cookie[..4].copy_from_slice(&(socket.cookie as u32).to_ne_bytes());
    cookie[4..].copy_from_slice(&((socket.cookie >> 32) as u32).to_ne_bytes());
    InetResponseHeader {
        family: socket.family,
        state: socket.state,
        timer: None,
        socket_id: SocketId {
            source_port: sport(socket),
            destination_port: socket.remote.port(),
            source_address: address(socket.local),
            destination_address: address(socket.remote),
            interface_id: 0,
            cookie,
        },
        recv_queue: socket.rqueue,
        send_queue: socket.wqueue,
        uid: socket.uid,
        // `idiag_inode` is 32 bits wide, as the kernel fills it.
        inode: socket.inode as u32,
    }
}

/// Attribute types of answers not named by the crate.
const INET_DIAG_SOCKOPT: u16 = 22;

/// The attributes of `socket`'s answer, in the kernel's order, for the
/// `extensions` asked (a bit per attribute type, less one).
fn attributes(socket: &SocketView, extensions: u8) -> Vec<Nla> {
    let asked = |kind: u16| extensions & (1 << (kind - 1)) != 0;
    let mut nlas = vec![Nla::Shutdown(socket.shutdown)];
    if asked(5) {
        nlas.push(Nla::Tos(0));
    }
    if socket.family == FAMILY_INET6 {
        if asked(6) {
            nlas.push(Nla::Tc(0));
        }
        if matches!(socket.state, state::LISTEN | state::CLOSE) {
            nlas.push(Nla::SkV6Only(socket.v6only));
        }
    }
    nlas.push(Nla::Mark(0));
    if asked(6) {
        // `sk_priority`, for want of a class id.
        nlas.push(Nla::ClassId(0));
    }
    nlas.push(Nla::Other(DefaultNla::new(INET_DIAG_SOCKOPT, socket_options(socket).to_vec())));
    let (rcvbuf, sndbuf) = buffer_sizes(socket.transport);
    if asked(1) {
        let queue = LegacyMemInfo {
            receive_queue: socket.rqueue,
            bottom_send_queue: 0,
            cache: 0,
            send_queue: socket.wqueue,
        };
        nlas.push(Nla::LegacyMemInfo(queue));
    }
    if asked(7) {
        nlas.push(Nla::MemInfo(MemInfo {
            receive_queue: 0,
            receive_queue_max: rcvbuf,
            send_queue: 0,
            send_queue_max: sndbuf,
            bottom_send_queues: 0,
            cache: 0,
            options: 0,
            backlog_queue_length: 0,
            drops: 0,
        }));
    }
    match socket.transport {
        Transport::Raw(protocol) => nlas.push(Nla::Protocol(protocol)),
        Transport::Tcp => {
            if asked(2) {
                nlas.push(Nla::TcpInfo(tcp_info(socket)));
            }
            if asked(4) {
                nlas.push(Nla::Congestion("cubic".into()));
            }
        }
        Transport::Udp => {}
    }
    nlas
}

/// `struct inet_diag_sockopt` of a socket with Linux's default options: the
/// multicast loop on (`mc_loop`), IPv4 sockets in every group (`mc_all`), TCP
/// sockets connection-oriented (`is_icsk`).
fn socket_options(socket: &SocketView) -> [u8; 2] {
    const IS_ICSK: u8 = 1 << 1;
    const MC_LOOP: u8 = 1 << 4;
    const MC_ALL: u8 = 1 << 6;
    let mut flags = MC_LOOP;
    if socket.transport == Transport::Tcp {
        flags |= IS_ICSK;
    }
    if socket.family == FAMILY_INET {
        flags |= MC_ALL;
    }
    [flags, 0]
}

/// A socket's default receive and send buffer sizes (`tcp_rmem[1]`,
/// `tcp_wmem[1]`; `rmem_default`, `wmem_default`).
fn buffer_sizes(transport: Transport) -> (u32, u32) {
    match transport {
        Transport::Tcp => (131_072, 16_384),
        _ => (212_992, 212_992),
    }
}

/// `sizeof(struct tcp_info)` as Linux 6.18 gives it.
const TCP_INFO_LEN: usize = 280;

/// A plausible `struct tcp_info` for `socket`: its state, and for a connection
/// the options and timers a fresh Linux connection shows; a listener's
/// `tcpi_unacked` and `tcpi_sacked` are its accept queue and backlog, as Linux
/// aliases them.
fn tcp_info(socket: &SocketView) -> Vec<u8> {
    let mut info = vec![0u8; TCP_INFO_LEN];
    let mut put = |at: usize, value: u32| info[at..at + 4].copy_from_slice(&value.to_ne_bytes());
    // Offsets of the `__u32` fields, after the eight `__u8` ones.
    const RTO: usize = 8;
    const ATO: usize = 12;
    const SND_MSS: usize = 16;
    const RCV_MSS: usize = 20;
    const UNACKED: usize = 24;
    const SACKED: usize = 28;
    const PMTU: usize = 60;
    const RCV_SSTHRESH: usize = 64;
    const SND_SSTHRESH: usize = 76;
    const SND_CWND: usize = 80;
    const ADVMSS: usize = 84;
    const REORDERING: usize = 88;
    const RCV_SPACE: usize = 96;
    put(SND_CWND, 10);
    put(REORDERING, 3);
    if socket.state == state::LISTEN {
        put(UNACKED, socket.rqueue);
        put(SACKED, socket.wqueue);
    } else {
        put(RTO, 200_000);
        put(ATO, 40_000);
        put(SND_MSS, 1448);
        put(RCV_MSS, 536);
        put(PMTU, 1500);
        put(RCV_SSTHRESH, 64_088);
        put(SND_SSTHRESH, 0x7fff_ffff);
        put(ADVMSS, 1448);
        put(RCV_SPACE, 14_480);
    }
    info[0] = socket.state;
    if socket.state != state::LISTEN && socket.state != state::CLOSE {
        // Timestamps, SACK and window scaling, both ways scaled by 7.
        info[5] = 0b111;
        info[6] = 0x77;
    }
    info
}
