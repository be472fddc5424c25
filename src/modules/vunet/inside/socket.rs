//! A program's `AF_NETLINK` socket on a stack: its carrier and its calls.
//!
//! As a virtual TCP or UDP socket, a netlink socket is a real kernel socket in the
//! program: an `AF_UNIX` datagram socket (its *carrier*), connected to a datagram
//! socket of the supervisor (its *server end*). What the program sends (`send`,
//! `write`, or `sendto`/`sendmsg` to the kernel's address, which netvm strips)
//! arrives at the server end; [`NetlinkSockets::serve`] answers it with
//! [`rtnetlink::respond_with`](super::rtnetlink::respond_with) from the stack (a
//! [`Host`]), and the answers wait in the carrier for the
//! program's `recv`, `read` or `poll`, which run in the kernel. netvm steps in only
//! where netlink differs from `AF_UNIX`: the socket's own address (its port id and
//! groups), the kernel's address reported by `recvmsg` and `recvfrom`, and the
//! netlink options.
//!
//! Served: `NETLINK_ROUTE` (the stack's links, addresses, routes and neighbours,
//! read and changed, with notifications to the groups a socket joined) and
//! `NETLINK_SOCK_DIAG` (the stack's sockets, for `ss`). Other netlink protocols
//! are `EPROTONOSUPPORT`; `sendmmsg` and `recvmmsg` with addresses are not
//! served yet.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::ErrorKind;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use nix::errno::Errno;
use nix::sys::socket::SockType;
use nix::unistd::Pid;

use super::Host;
use super::rtnetlink::{Answers, CHANGE_COST, Options, ROUND_BUDGET, respond_with};
use super::sock_diag;
use crate::fdtable::{FdTable, SocketId};
use crate::modules::vunet::stack::{Claims, NewCarrier, Owner, StackId, is_fresh, random_bytes};
use crate::modules::{Disposition, Handled};
use crate::syscall::{AddrIn, AddrOut, Getsockopt, Mmsg, Msg, Sendto, Setsockopt};
use crate::syscall::{Socket, Syscall, UserPtr};
use crate::tracer::{SyscallStop, TraceeMemory};

/// `SOL_NETLINK`.
const SOL_NETLINK: i32 = 270;
/// `NETLINK_ADD_MEMBERSHIP` and `NETLINK_DROP_MEMBERSHIP`.
const ADD_MEMBERSHIP: i32 = 1;
const DROP_MEMBERSHIP: i32 = 2;
/// `NETLINK_LIST_MEMBERSHIPS`.
const LIST_MEMBERSHIPS: i32 = 9;
/// `NETLINK_GET_STRICT_CHK`.
const GET_STRICT_CHK: i32 = 12;
/// The `SOL_NETLINK` options that are flags a socket keeps (`NETLINK_PKTINFO`,
/// `BROADCAST_ERROR`, `NO_ENOBUFS`, `LISTEN_ALL_NSID`, `CAP_ACK`, `EXT_ACK`,
/// `GET_STRICT_CHK`).
const FLAG_OPTIONS: [i32; 7] = [3, 4, 5, 8, 10, 11, 12];
/// `sizeof(struct sockaddr_nl)`.
const SOCKADDR_NL_LEN: u32 = 12;
/// The bytes of answers held for one socket whose program does not read them. A
/// request is read only once the answers to the one before are all delivered;
/// what one request's answers have beyond this is dropped, as Linux drops what
/// does not fit a socket's receive buffer.
const MAX_HELD_BYTES: usize = 256 * 1024;
/// The most netlink sockets one session's programs hold at once: each costs the
/// supervisor a descriptor.
const MAX_SOCKETS: usize = 1024;

/// The netlink sockets of a session's programs.
pub struct NetlinkSockets {
    sockets: HashMap<SocketId, NetlinkSocket>,
    /// The socket behind each server end's fd.
    by_server: HashMap<RawFd, SocketId>,
    /// Calls in flight to their exit.
    pending: HashMap<Pid, Pending>,
    registry: Registry,
    /// The bound port ids, per stack (each stack is a network namespace of its own).
    ports: HashMap<(StackId, u32), SocketId>,
    /// The next port id to try below -4096, per stack.
    next_port: HashMap<StackId, u32>,
    /// Where a request is read (the largest a program sends at once is answered
    /// in part: see [`NetlinkSocket::serve`]).
    request: Vec<u8>,
    /// The sockets a round left requests to, with room to answer them (see
    /// [`ROUND_BUDGET`]).
    unfinished: HashSet<SocketId>,
}

/// One program's netlink socket.
struct NetlinkSocket {
    stack: StackId,
    /// `NETLINK_ROUTE` or `NETLINK_SOCK_DIAG`.
    protocol: i32,
    /// `SOCK_RAW` or `SOCK_DGRAM`, as the program asked.
    ty: i32,
    /// The supervisor's end of the carrier.
    server: UnixDatagram,
    /// Its port id, once bound (0: not yet).
    port: u32,
    /// The multicast groups it joined (groups 1 to 64, as a mask).
    groups: u64,
    /// The real user id of the process that made it.
    uid: u32,
    /// The `SOL_NETLINK` flags it set.
    flags: HashMap<i32, bool>,
    /// Answers the carrier had no room for yet.
    held: VecDeque<Vec<u8>>,
    /// The carrier had no room for a notification: later ones are dropped
    /// without trying it until it has room again (its next readiness).
    full: bool,
    /// What is left of a request datagram a round stopped answering.
    unanswered: Vec<u8>,
    /// A round stopped reading requests, its budget spent: more may wait.
    more: bool,
}

/// A new netlink socket: of `protocol` and type `ty`, by a process on `stack`
/// whose real user is `uid`.
struct NewNetlink {
    stack: StackId,
    ty: i32,
    protocol: i32,
    uid: u32,
}

/// What a call's exit needs.
enum Pending {
    /// `socket()` made the carrier of a netlink socket.
    Create(NewNetlink),
    /// A receive whose sender's address the program asked for.
    Received(Receiver),
    /// A `sendmmsg` made the `sendmsg` of its first message.
    FirstMessage { msgvec: u64 },
}

/// Where a receive's sender address goes.
enum Receiver {
    /// `recvfrom`'s `addr` and `addrlen`.
    From { addr: UserPtr, addrlen: UserPtr },
    /// `recvmsg`'s header.
    Message { msg: u64 },
}

impl NetlinkSockets {
    /// No sockets yet; server ends are watched through `registry`.
    pub fn new(registry: Registry) -> Self {
        Self {
            sockets: HashMap::new(),
            by_server: HashMap::new(),
            pending: HashMap::new(),
            registry,
            ports: HashMap::new(),
            next_port: HashMap::new(),
            request: vec![0; 64 * 1024],
            unfinished: HashSet::new(),
        }
    }

    /// `socket(AF_NETLINK, ...)` by a process on `stack`, which shows its inside;
    /// the carrier is claimed through `claims`.
    pub fn create(
        &mut self,
        stop: &mut SyscallStop,
        claims: &mut Claims,
        stack: StackId,
        call: Socket,
    ) -> Handled {
        let (ty, flags) = call.type_and_flags()?;
        if ty != libc::SOCK_RAW && ty != libc::SOCK_DGRAM {
            return Err(Errno::ESOCKTNOSUPPORT);
        }
        if ![libc::NETLINK_ROUTE, libc::NETLINK_SOCK_DIAG].contains(&call.protocol) {
            return Err(Errno::EPROTONOSUPPORT);
        }
        if self.is_full() {
            return Err(Errno::ENFILE);
        }
        let new = NewNetlink { stack, ty, protocol: call.protocol, uid: real_uid(stop.process) };
        let carrier = claims.new_carrier(stop, SockType::Datagram, flags)?;
        match carrier {
            NewCarrier::Given(id) => self.adopt(id, stop.new_fd().ok_or(Errno::EBADF)?, new),
            NewCarrier::Rewritten => _ = self.pending.insert(stop.tid, Pending::Create(new)),
        }
        Ok(carrier.disposition())
    }

    /// Whether programs hold as many netlink sockets as one session may (as far
    /// as the last sweep of closed sockets knows).
    pub fn is_full(&self) -> bool {
        self.sockets.len() >= MAX_SOCKETS
    }

    /// Whether `socket` is a netlink socket of a program.
    pub fn contains(&self, socket: SocketId) -> bool {
        self.sockets.contains_key(&socket)
    }

    /// A call on netlink socket `id`.
    pub fn on_socket(&mut self, stop: &mut SyscallStop, id: SocketId) -> Handled {
        let memory = stop.memory();
        match stop.call() {
            Syscall::Bind(c) => self.bind(&memory, stop.process, id, c),
            Syscall::Connect(c) => self.connect(&memory, stop.process, id, c),
            Syscall::Getsockname(c) => {
                let socket = self.socket(id)?;
                write_address(&memory, c, socket.port, socket.groups as u32)
                    .map(|()| Disposition::Return(0))
            }
            Syscall::Getpeername(c) => {
                write_address(&memory, c, 0, 0).map(|()| Disposition::Return(0))
            }
            Syscall::Getsockopt(c) => self.getsockopt(&memory, id, c),
            Syscall::Setsockopt(c) => self.setsockopt(&memory, id, c),
            Syscall::Sendto(c) => self.sendto(stop, id, c),
            Syscall::Sendmsg(c) => self.sendmsg(stop, id, c),
            Syscall::Recvfrom(c) => {
                Ok(self.receive(stop, Receiver::From { addr: c.addr, addrlen: c.addrlen }))
            }
            Syscall::Recvmsg(c) => Ok(self.receive(stop, Receiver::Message { msg: c.msg.0 })),
            Syscall::Sendmmsg(c) => self.sendmmsg(stop, id, c),
            Syscall::Recvmmsg(c) => refuse_named_batches(&memory, c),
            Syscall::Listen(_) | Syscall::Accept(_) | Syscall::Shutdown(_) => {
                Err(Errno::EOPNOTSUPP)
            }
            Syscall::Ioctl(c) if (0x890B..=0x89FF).contains(&c.request) => Err(Errno::ENODEV),
            _ => Ok(Disposition::Kernel),
        }
    }

    /// Completes a call answered with [`Disposition::KernelThenFinish`]; the
    /// carrier of a new socket is recorded in `table`.
    pub fn finish(&mut self, stop: &mut SyscallStop, table: &mut FdTable<Owner>) {
        match self.pending.remove(&stop.tid) {
            Some(Pending::Create(new)) => {
                let mut claims = Claims { table, owner: Owner::Netlink(new.stack) };
                let fresh = |copy: &OwnedFd| is_fresh(copy, SockType::Datagram);
                if let Some(fd) = stop.returned_fd()
                    && let Some((id, carrier)) = claims.claim_new(stop, fd, fresh)
                {
                    self.adopt(id, carrier.as_fd(), new);
                }
            }
            Some(Pending::FirstMessage { msgvec }) => stop.finish_as_first_message(msgvec),
            Some(Pending::Received(receiver)) if stop.result() >= 0 => {
                if let Err(e) = receiver.report_kernel(&stop.memory()) {
                    stop.set_result(-(e as i64));
                }
            }
            _ => {}
        }
    }

    /// Whether a call of `tid` waits for its exit here.
    pub fn is_pending(&self, tid: Pid) -> bool {
        self.pending.contains_key(&tid)
    }

    /// A thread ended, perhaps inside a call.
    pub fn thread_ended(&mut self, tid: Pid) {
        self.pending.remove(&tid);
    }

    /// Forgets sockets whose last reference is gone.
    pub fn forget(&mut self, sockets: &[SocketId]) {
        for id in sockets {
            self.unfinished.remove(id);
            if let Some(socket) = self.sockets.remove(id) {
                self.ports.remove(&(socket.stack, socket.port));
                let fd = socket.server.as_raw_fd();
                let _ = self.registry.deregister(&mut SourceFd(&fd));
                self.by_server.remove(&fd);
            }
        }
    }

    /// The sockets to [`serve`](Self::serve) now: those whose server ends are
    /// among `ready` (requests, or room for held answers, may wait there), and
    /// those a round left requests to (see [`ROUND_BUDGET`]).
    pub fn ready(&self, ready: &[RawFd]) -> Vec<(SocketId, StackId)> {
        let mut ids: Vec<SocketId> =
            ready.iter().filter_map(|fd| self.by_server.get(fd)).copied().collect();
        ids.extend(self.unfinished.iter().filter(|id| !ids.contains(id)).collect::<Vec<_>>());
        ids.into_iter().filter_map(|id| Some((id, self.sockets.get(&id)?.stack))).collect()
    }

    /// When the sockets next want serving without readiness: now, if a round
    /// left one requests it has room to answer.
    pub fn deadline(&self, now: std::time::Instant) -> Option<std::time::Instant> {
        (!self.unfinished.is_empty()).then_some(now)
    }

    /// Answers the requests waiting at socket `id`'s server end from `host`, its
    /// stack, and hands the notifications of what they changed to the sockets of
    /// that stack that joined their groups; whether they changed it.
    pub fn serve(&mut self, id: SocketId, host: &mut dyn Host) -> bool {
        let Some(socket) = self.sockets.get_mut(&id) else { return false };
        let stack = socket.stack;
        let notifications = socket.serve(host, &mut self.request);
        if socket.wants_service() {
            self.unfinished.insert(id);
        } else {
            self.unfinished.remove(&id);
        }
        // Every change is notified (a link's, an address's, a route's).
        let changed = !notifications.is_empty();
        self.notify(stack, notifications);
        changed
    }

    /// Hands `notifications`, each with its group, to the sockets of `stack`
    /// that joined it.
    pub fn notify(&mut self, stack: StackId, notifications: Vec<(u32, Vec<u8>)>) {
        for (group, message) in notifications {
            let bit = 1u64.checked_shl(group.wrapping_sub(1)).unwrap_or(0);
            let members =
                self.sockets.values_mut().filter(|s| s.stack == stack && s.groups & bit != 0);
            for member in members {
                member.notify(&message);
            }
        }
    }

    /// The socket `id`.
    fn socket(&mut self, id: SocketId) -> Result<&mut NetlinkSocket, Errno> {
        self.sockets.get_mut(&id).ok_or(Errno::EBADF)
    }

    /// `socket()` made a carrier at the fd it returned: claims it, names it and
    /// connects it to a new server end.
    fn adopt(&mut self, id: SocketId, carrier: BorrowedFd, new: NewNetlink) {
        match self.server_end(carrier) {
            Ok(server) => {
                let server_fd = server.as_raw_fd();
                let interest = Interest::READABLE | Interest::WRITABLE;
                let _ = self.registry.register(
                    &mut SourceFd(&server_fd),
                    Token(server_fd as usize),
                    interest,
                );
                self.by_server.insert(server_fd, id);
                let socket = NetlinkSocket {
                    stack: new.stack,
                    protocol: new.protocol,
                    ty: new.ty,
                    server,
                    port: 0,
                    groups: 0,
                    uid: new.uid,
                    flags: HashMap::new(),
                    held: VecDeque::new(),
                    full: false,
                    unanswered: Vec::new(),
                    more: false,
                };
                self.sockets.insert(id, socket);
            }
            Err(e) => log::warn!("netlink socket: no server end: {e}"),
        }
    }

    /// A server end for `carrier`, the two connected to each other. Once a
    /// datagram socket is connected, only its peer can send to it; what anyone
    /// else slipped in before (the names show in `/proc/net/unix`) is thrown away.
    fn server_end(&mut self, carrier: BorrowedFd) -> std::io::Result<UnixDatagram> {
        let (server, server_name) = self.bound(UnixDatagram::bind_addr)?;
        server.set_nonblocking(true)?;
        let carrier_bind = |name: &SocketAddr| -> std::io::Result<()> {
            Ok(nix::sys::socket::bind(carrier.as_raw_fd(), &unix_address(name)?)?)
        };
        let ((), carrier_name) = self.bound(carrier_bind)?;
        nix::sys::socket::connect(carrier.as_raw_fd(), &unix_address(&server_name)?)?;
        server.connect_addr(&carrier_name)?;
        drain(carrier.as_raw_fd());
        drain(server.as_raw_fd());
        Ok(server)
    }

    /// What `bind` makes bound to a fresh name, and the name (another if someone
    /// took one first).
    fn bound<T>(
        &mut self,
        mut bind: impl FnMut(&SocketAddr) -> std::io::Result<T>,
    ) -> std::io::Result<(T, SocketAddr)> {
        let mut attempts = 0;
        loop {
            let name = format!("{NAME_PREFIX}{:032x}", u128::from_ne_bytes(random_bytes()?));
            let name = SocketAddr::from_abstract_name(name.as_bytes())?;
            match bind(&name) {
                Ok(bound) => return Ok((bound, name)),
                Err(e) if e.kind() == ErrorKind::AddrInUse && attempts < 8 => attempts += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// Whether `sockaddr`, an address a program hands the kernel, names a carrier
    /// or a server end of a netlink socket (of any session): refused.
    pub fn reserves(sockaddr: &[u8]) -> bool {
        sockaddr
            .strip_prefix(&(libc::AF_UNIX as u16).to_ne_bytes())
            .and_then(|rest| rest.strip_prefix(&[0]))
            .is_some_and(|name| name.starts_with(NAME_PREFIX.as_bytes()))
    }
}

/// Whether `datagram` is part of a dump: its first message is multipart
/// (`NLM_F_MULTI`, which the end of a dump, `NLMSG_DONE`, carries too).
fn is_multipart(datagram: &[u8]) -> bool {
    let flags = datagram.get(6..8).map_or(0, |flags| u16::from_ne_bytes([flags[0], flags[1]]));
    flags & libc::NLM_F_MULTI as u16 != 0
}

/// The prefix of the abstract names of carriers and server ends.
const NAME_PREFIX: &str = "netvm-nl-";

/// Throws away every datagram queued at `socket`, one of the supervisor's.
fn drain(socket: RawFd) {
    let mut byte = [0u8; 1];
    let flags = nix::sys::socket::MsgFlags::MSG_DONTWAIT | nix::sys::socket::MsgFlags::MSG_TRUNC;
    while nix::sys::socket::recv(socket, &mut byte, flags).is_ok() {}
}

/// `addr` as nix takes it.
fn unix_address(addr: &SocketAddr) -> std::io::Result<nix::sys::socket::UnixAddr> {
    let name = addr.as_abstract_name().ok_or(ErrorKind::InvalidInput)?;
    Ok(nix::sys::socket::UnixAddr::new_abstract(name)?)
}

/// The real user id of `process` (0 if it cannot be read: it has ended).
fn real_uid(process: Pid) -> u32 {
    std::fs::read_to_string(format!("/proc/{process}/status"))
        .ok()
        .and_then(|status| {
            let ids = status.lines().find_map(|line| line.strip_prefix("Uid:"))?;
            ids.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or(0)
}

/// A `struct sockaddr_nl` with `port` and `groups`.
fn sockaddr_nl(port: u32, groups: u32) -> [u8; SOCKADDR_NL_LEN as usize] {
    let mut bytes = [0u8; SOCKADDR_NL_LEN as usize];
    bytes[..2].copy_from_slice(&(libc::AF_NETLINK as u16).to_ne_bytes());
    bytes[4..8].copy_from_slice(&port.to_ne_bytes());
    bytes[8..].copy_from_slice(&groups.to_ne_bytes());
    bytes
}

/// Reads the `sockaddr_nl` a call passes (`EINVAL` if short or of another family,
/// as `netlink_bind` and `netlink_connect` judge): its port and groups.
fn read_sockaddr_nl(memory: &TraceeMemory, addr: UserPtr, len: u32) -> Result<(u32, u32), Errno> {
    /// `sizeof(struct sockaddr_storage)`: the most any address may be.
    const MAX_LEN: u32 = 128;
    if !(SOCKADDR_NL_LEN..=MAX_LEN).contains(&len) {
        return Err(Errno::EINVAL);
    }
    let bytes = memory.read_bytes(addr.0, SOCKADDR_NL_LEN as usize)?;
    if u16::from_ne_bytes([bytes[0], bytes[1]]) != libc::AF_NETLINK as u16 {
        return Err(Errno::EINVAL);
    }
    let word = |at: usize| u32::from_ne_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    Ok((word(4), word(8)))
}

/// Writes a `sockaddr_nl` for `getsockname`/`getpeername` through its value-result
/// length, as the kernel does: as much as there is room for, and the full length.
fn write_address(
    memory: &TraceeMemory,
    call: AddrOut,
    port: u32,
    groups: u32,
) -> Result<(), Errno> {
    write_name(memory, call.addr, call.addrlen, &sockaddr_nl(port, groups))
}

/// Writes `name` at `addr`, truncated to the room `*addrlen` gives, and its full
/// length in `*addrlen`.
fn write_name(
    memory: &TraceeMemory,
    addr: UserPtr,
    addrlen: UserPtr,
    name: &[u8],
) -> Result<(), Errno> {
    let room = memory.read::<u32>(addrlen.0)?;
    if (room as i32) < 0 {
        return Err(Errno::EINVAL);
    }
    let shown = name.len().min(room as usize);
    memory.write_bytes(addr.0, &name[..shown])?;
    memory.write(addrlen.0, &(name.len() as u32))
}

/// `sendmmsg` or `recvmmsg`: served natively when no entry names an address (the
/// names netlink would report are not translated in batches yet).
fn refuse_named_batches(memory: &TraceeMemory, call: Mmsg) -> Handled {
    let entry = size_of::<libc::mmsghdr>();
    let entries = memory.read_bytes(call.msgvec.0, entry * call.vlen.min(1024) as usize)?;
    // `msg_name` leads each entry; what the kernel writes there is the program's.
    let named = entries.chunks(entry).any(|e| e[..8] != [0; 8]);
    if named { Err(Errno::EOPNOTSUPP) } else { Ok(Disposition::Kernel) }
}

/// Points `call` (a `sendmsg`, perhaps made of a `sendmmsg`'s first entry) at a
/// sealed copy of the header at `header_at` without its name, once the name, if
/// any, is the kernel's (port 0, no groups).
fn send_sealed(stop: &mut SyscallStop, header_at: UserPtr, call: Msg) -> Result<(), Errno> {
    let memory = stop.memory();
    let mut header = memory.read::<libc::msghdr>(header_at.0)?;
    if !header.msg_name.is_null() {
        let name = UserPtr(header.msg_name as u64);
        let (port, groups) = read_sockaddr_nl(&memory, name, header.msg_namelen)?;
        if port != 0 || groups != 0 {
            return Err(Errno::ECONNREFUSED);
        }
    }
    header.msg_name = std::ptr::null_mut();
    header.msg_namelen = 0;
    let (at, _) = stop.put_sealed_header(header, None)?;
    stop.rewrite(Syscall::Sendmsg(Msg { msg: UserPtr(at), ..call }));
    Ok(())
}

impl Receiver {
    /// The call received from the kernel (port 0): says so where the program
    /// asked who sent it.
    fn report_kernel(&self, memory: &TraceeMemory) -> Result<(), Errno> {
        let kernel = sockaddr_nl(0, 0);
        match *self {
            Self::From { addr, addrlen } => write_name(memory, addr, addrlen, &kernel),
            Self::Message { msg } => {
                let header = memory.read::<libc::msghdr>(msg)?;
                if header.msg_name.is_null() {
                    return Ok(()); // no sender asked for
                }
                let namelen = msg + std::mem::offset_of!(libc::msghdr, msg_namelen) as u64;
                let shown = kernel.len().min(header.msg_namelen as usize);
                memory.write_bytes(header.msg_name as u64, &kernel[..shown])?;
                memory.write(namelen, &SOCKADDR_NL_LEN)
            }
        }
    }
}

impl NetlinkSockets {
    /// `bind`: the socket's port id (0: one of netvm's choosing) and groups.
    fn bind(&mut self, memory: &TraceeMemory, process: Pid, id: SocketId, call: AddrIn) -> Handled {
        let (port, groups) = read_sockaddr_nl(memory, call.addr, call.addrlen)?;
        let bound = self.socket(id)?.port;
        if bound != 0 && port != bound {
            return Err(Errno::EINVAL);
        }
        if bound == 0 {
            let stack = self.socket(id)?.stack;
            if port != 0 && self.port_taken(stack, port) {
                return Err(Errno::EADDRINUSE);
            }
            let port = if port != 0 { port } else { self.free_port(stack, process) };
            self.take_port(id, port)?;
        }
        self.socket(id)?.groups |= u64::from(groups);
        Ok(Disposition::Return(0))
    }

    /// `connect`: to the kernel (port 0) only; `AF_UNSPEC` disconnects.
    fn connect(
        &mut self,
        memory: &TraceeMemory,
        process: Pid,
        id: SocketId,
        call: AddrIn,
    ) -> Handled {
        if call.addrlen < 2 {
            return Err(Errno::EINVAL);
        }
        let family = memory.read::<u16>(call.addr.0)?;
        if family == libc::AF_UNSPEC as u16 {
            return Ok(Disposition::Return(0));
        }
        let (port, _) = read_sockaddr_nl(memory, call.addr, call.addrlen)?;
        if port != 0 {
            return Err(Errno::ECONNREFUSED);
        }
        self.autobind(id, process)?;
        Ok(Disposition::Return(0))
    }

    /// A port for the socket if it has none: as `netlink_autobind` picks it.
    fn autobind(&mut self, id: SocketId, process: Pid) -> Result<u32, Errno> {
        let socket = self.socket(id)?;
        if socket.port != 0 {
            return Ok(socket.port);
        }
        let stack = socket.stack;
        let port = self.free_port(stack, process);
        self.take_port(id, port)?;
        Ok(port)
    }

    /// The process's own id if no socket of the stack has it, else one from -4096
    /// down, as Linux hands them out.
    fn free_port(&mut self, stack: StackId, process: Pid) -> u32 {
        let own = process.as_raw() as u32;
        if !self.port_taken(stack, own) {
            return own;
        }
        let next = self.next_port.entry(stack).or_insert(-4096i32 as u32);
        loop {
            *next = next.wrapping_sub(1);
            if !self.ports.contains_key(&(stack, *next)) {
                return *next;
            }
        }
    }

    fn port_taken(&self, stack: StackId, port: u32) -> bool {
        self.ports.contains_key(&(stack, port))
    }

    /// Gives socket `id` port `port`.
    fn take_port(&mut self, id: SocketId, port: u32) -> Result<(), Errno> {
        let socket = self.socket(id)?;
        socket.port = port;
        let stack = socket.stack;
        self.ports.insert((stack, port), id);
        Ok(())
    }

    /// `getsockopt`: netlink's own options and what identifies the socket; the
    /// rest from the carrier.
    fn getsockopt(&mut self, memory: &TraceeMemory, id: SocketId, call: Getsockopt) -> Handled {
        let socket = self.socket(id)?;
        let value = match (call.level, call.optname) {
            (libc::SOL_SOCKET, libc::SO_DOMAIN) => libc::AF_NETLINK,
            (libc::SOL_SOCKET, libc::SO_PROTOCOL) => socket.protocol,
            (libc::SOL_SOCKET, libc::SO_TYPE) => socket.ty,
            (libc::SOL_SOCKET, _) => return Ok(Disposition::Kernel),
            (SOL_NETLINK, LIST_MEMBERSHIPS) => {
                // An array of u32 masks, as much as fits; its full length told.
                let groups = socket.groups.to_ne_bytes();
                let room = memory.read::<u32>(call.optlen.0)? as usize;
                memory.write_bytes(call.optval.0, &groups[..room.min(groups.len()) & !3])?;
                memory.write(call.optlen.0, &(groups.len() as u32))?;
                return Ok(Disposition::Return(0));
            }
            (SOL_NETLINK, name) if FLAG_OPTIONS.contains(&name) => {
                i32::from(socket.flags.get(&name).copied().unwrap_or(false))
            }
            _ => return Err(Errno::ENOPROTOOPT),
        };
        let room = memory.read::<u32>(call.optlen.0)?;
        if room < 4 {
            return Err(Errno::EINVAL);
        }
        memory.write(call.optval.0, &value)?;
        memory.write(call.optlen.0, &4u32)?;
        Ok(Disposition::Return(0))
    }

    /// `setsockopt`: netlink's own options kept; the rest set on the carrier.
    fn setsockopt(&mut self, memory: &TraceeMemory, id: SocketId, call: Setsockopt) -> Handled {
        match call.level {
            libc::SOL_SOCKET => return Ok(Disposition::Kernel),
            SOL_NETLINK => {}
            _ => return Err(Errno::ENOPROTOOPT),
        }
        let known = FLAG_OPTIONS.contains(&call.optname)
            || [ADD_MEMBERSHIP, DROP_MEMBERSHIP].contains(&call.optname);
        if !known {
            return Err(Errno::ENOPROTOOPT);
        }
        // A value shorter than an int reads as 0, as `netlink_setsockopt` has it.
        let value = if call.optlen < 4 { 0 } else { memory.read::<u32>(call.optval.0)? };
        let socket = self.socket(id)?;
        match call.optname {
            // NETLINK_ROUTE's groups number fewer than the 64 this keeps.
            ADD_MEMBERSHIP | DROP_MEMBERSHIP if !(1..=64).contains(&value) => {
                return Err(Errno::EINVAL);
            }
            ADD_MEMBERSHIP => socket.groups |= 1 << (value - 1),
            DROP_MEMBERSHIP => socket.groups &= !(1 << (value - 1)),
            name => drop(socket.flags.insert(name, value != 0)),
        }
        Ok(Disposition::Return(0))
    }

    /// `sendto` with an address: to the kernel only, which the carrier is
    /// connected to already (the address goes).
    fn sendto(&mut self, stop: &mut SyscallStop, id: SocketId, call: Sendto) -> Handled {
        let (port, groups) = read_sockaddr_nl(&stop.memory(), call.addr, call.addrlen)?;
        if port != 0 || groups != 0 {
            return Err(Errno::ECONNREFUSED);
        }
        self.autobind(id, stop.process)?;
        stop.rewrite(Syscall::Sendto(Sendto { addr: UserPtr(0), addrlen: 0, ..call }));
        Ok(Disposition::Kernel)
    }

    /// `sendmsg`: as [`sendto`](Self::sendto), through a sealed copy of the
    /// header without its name.
    /// The header always goes sealed: another thread could otherwise name an
    /// `AF_UNIX` socket in it between this check and the kernel's read, and the
    /// carrier would send there.
    fn sendmsg(&mut self, stop: &mut SyscallStop, id: SocketId, call: Msg) -> Handled {
        self.autobind(id, stop.process)?;
        send_sealed(stop, call.msg, call)?;
        Ok(Disposition::Kernel)
    }

    /// `sendmmsg`: the `sendmsg` of its first message, sealed as
    /// [`sendmsg`](Self::sendmsg)'s (the kernel could send the rest to names it
    /// reads later); the exit reports one message sent, as the outside path does
    /// ([`SyscallStop::finish_as_first_message`]).
    fn sendmmsg(&mut self, stop: &mut SyscallStop, id: SocketId, call: Mmsg) -> Handled {
        if call.vlen == 0 {
            return Ok(Disposition::Kernel);
        }
        self.autobind(id, stop.process)?;
        send_sealed(stop, call.msgvec, Msg { fd: call.fd, msg: call.msgvec, flags: call.flags })?;
        self.pending.insert(stop.tid, Pending::FirstMessage { msgvec: call.msgvec.0 });
        Ok(Disposition::KernelThenFinish)
    }

    /// A receive: the kernel runs it; its exit reports the sender as the kernel,
    /// where the program asked (`recvfrom` is trapped only with an address).
    fn receive(&mut self, stop: &SyscallStop, receiver: Receiver) -> Disposition {
        self.pending.insert(stop.tid, Pending::Received(receiver));
        Disposition::KernelThenFinish
    }
}

impl NetlinkSocket {
    /// Answers every request waiting at the server end from `host`, read into
    /// `request` (a longer one is cut short), and sends what the carrier has room
    /// for; the notifications of what the requests changed.
    fn serve(&mut self, host: &mut dyn Host, request: &mut [u8]) -> Vec<(u32, Vec<u8>)> {
        let mut notifications = Vec::new();
        let mut budget = ROUND_BUDGET;
        self.more = false;
        while self.flush() {
            if budget == 0 {
                self.more = true;
                break;
            }
            let len = if self.unanswered.is_empty() {
                match self.server.recv(request) {
                    Ok(len) => len,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            } else {
                let rest = std::mem::take(&mut self.unanswered);
                request[..rest.len()].copy_from_slice(&rest);
                rest.len()
            };
            let answers = self.answer(host, &request[..len], &mut budget);
            if let Some(at) = answers.unanswered {
                self.unanswered = request[at..len].to_vec();
            }
            self.hold(answers.to_asker);
            notifications.extend(answers.notifications);
        }
        notifications
    }

    /// Answers one request datagram from `host`, within `budget`.
    fn answer(&self, host: &mut dyn Host, request: &[u8], budget: &mut u32) -> Answers {
        match self.protocol {
            libc::NETLINK_SOCK_DIAG => {
                *budget = budget.saturating_sub(CHANGE_COST);
                let to_asker =
                    sock_diag::respond_listing(&mut || host.sockets(), self.port, request);
                Answers { to_asker, ..Answers::default() }
            }
            _ => {
                let strict_check = self.flags.get(&GET_STRICT_CHK).copied().unwrap_or(false);
                let options = Options { strict_check, uid: self.uid };
                respond_with(host, self.port, options, request, budget)
            }
        }
    }

    /// Whether the socket has requests left that a round stopped answering (its
    /// budget spent), and room to answer them: it is to be served again at once,
    /// with no readiness to say so.
    fn wants_service(&self) -> bool {
        (self.more || !self.unanswered.is_empty()) && self.held.is_empty() && !self.full
    }

    /// Holds `datagrams` for the program, up to [`MAX_HELD_BYTES`]: what does not
    /// fit is dropped, as Linux drops what does not fit a receive buffer. A
    /// dump's datagrams are never dropped (Linux goes on with a dump as the
    /// program reads): they are as many as what the stack lists, and the socket's
    /// next request waits for them.
    fn hold(&mut self, datagrams: Vec<Vec<u8>>) {
        let mut room = MAX_HELD_BYTES.saturating_sub(self.held.iter().map(Vec::len).sum());
        for datagram in datagrams {
            room = room.saturating_sub(datagram.len());
            if room > 0 || is_multipart(&datagram) {
                self.held.push_back(datagram);
            }
        }
    }

    /// Delivers a notification of its group if the carrier has room for it now,
    /// else drops it, as Linux drops a notification that does not fit a
    /// socket's receive buffer (the carrier's is as large): a program that
    /// never reads costs the supervisor nothing for the notifications it misses.
    fn notify(&mut self, message: &[u8]) {
        if self.full || !self.held.is_empty() {
            return; // answers wait: the carrier is full
        }
        match self.server.send(message) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => self.full = true,
            Err(_) => {}
        }
    }

    /// Sends the held answers while the carrier takes them; whether all went.
    fn flush(&mut self) -> bool {
        self.full = false;
        while let Some(answer) = self.held.front() {
            match self.server.send(answer) {
                Ok(_) => drop(self.held.pop_front()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
                // The program closed its socket: nothing will read them.
                Err(_) => self.held.clear(),
            }
        }
        true
    }
}
