//! The `smoltcp` submodule: an independent TCP/IP host per mounted stack.
//!
//! Each instance has its own loopback (`127.0.0.0/8`, `::1`), its own addresses, its
//! own port table and sockets; nothing is shared between instances.
//!
//! # How a virtual socket works
//!
//! A virtual TCP or UDP socket is a real kernel socket in the traced program: an
//! `AF_UNIX` socket (the *carrier*: `SOCK_STREAM` for TCP, `SOCK_DGRAM` for UDP, so
//! datagrams keep their boundaries). `socket()` is rewritten to create it, so the
//! kernel picks the fd number and honours `SOCK_NONBLOCK`/`SOCK_CLOEXEC`; from then on
//! `read`, `write`, `send`/`recv` without addresses, `poll`/`epoll`/`select`, `dup`,
//! `fork`, `SCM_RIGHTS` and `close` all run in the kernel.
//!
//! Binding gives the carrier an abstract name of its own ([`endpoint`]), recorded in
//! the stack's [`ports`] table under the virtual address. A connection between two
//! sockets of the stack is then a kernel `AF_UNIX` connection between their
//! carriers: `connect` is rewritten to target the listener's name, `accept` runs
//! natively, and netvm only translates addresses at the edges (`accept`,
//! `getsockname`, `getpeername`, `recvfrom`). Bytes never pass through the
//! supervisor, which is how one stack moves data at kernel speed. Traffic that
//! leaves the stack over a link is the smoltcp engine's job (links come with the
//! multi-stack work; a stack without links reaches only itself, and other
//! destinations are `ENETUNREACH`).

mod endpoint;
mod ports;
mod sockopt;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::rc::Rc;

use nix::errno::Errno;
use nix::unistd::Pid;

use super::sockaddr::{encode, read_in, write_out};
use super::{Claims, Stack};
use crate::fdtable::{FdTarget, SocketId, resolve};
use crate::modules::Disposition;
use crate::tracer::syscall::{
    Accept, AddrIn, AddrOut, Getsockopt, Msg, Recvfrom, Sendto, Setsockopt, UserPtr,
};
use crate::tracer::{Syscall, SyscallStop, TraceeMemory};
use endpoint::{EndpointName, Namer, SockType};
pub use endpoint::{MAX_STACKS, is_carrier_address, session_id};
use ports::{Binding, PortTable, Proto, Scope};
use sockopt::{Keeper, Options};

/// The address family of a virtual socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

impl Family {
    fn raw(self) -> i32 {
        match self {
            Self::V4 => libc::AF_INET,
            Self::V6 => libc::AF_INET6,
        }
    }

    fn unspecified(self) -> IpAddr {
        match self {
            Self::V4 => Ipv4Addr::UNSPECIFIED.into(),
            Self::V6 => Ipv6Addr::UNSPECIFIED.into(),
        }
    }
}

/// What netvm knows of one virtual socket.
#[derive(Clone, Debug)]
struct VSocket {
    family: Family,
    proto: Proto,
    /// The bound address (its IP may be a wildcard).
    local: Option<SocketAddr>,
    /// The connected peer (set when `connect` starts, cleared if it fails).
    peer: Option<SocketAddr>,
    /// The carrier's name, once bound.
    name: Option<EndpointName>,
    /// The address it last sent from, when bound to a wildcard.
    source: Option<IpAddr>,
    /// An error `SO_ERROR` reports (once) before the carrier's own.
    pending_error: Option<Errno>,
    /// A connect of this socket was refused (its carrier is spent).
    refused: bool,
    /// A non-blocking connect said EINPROGRESS; connect has not said it is done.
    completion_unreported: bool,
    /// The program shut down this socket's sending side.
    shut_wr: bool,
    listening: bool,
    options: Options,
}

impl VSocket {
    fn new(family: Family, proto: Proto) -> Self {
        Self {
            family,
            proto,
            local: None,
            peer: None,
            name: None,
            source: None,
            pending_error: None,
            refused: false,
            completion_unreported: false,
            shut_wr: false,
            listening: false,
            options: Options::default(),
        }
    }
}

/// A call in flight whose exit stop the stack needs.
#[derive(Debug)]
enum Step {
    /// `socket()` rewritten to create a carrier.
    Create {
        family: Family,
        proto: Proto,
    },
    /// A bind of the carrier to `name`: the program's own `bind`, or (`then`
    /// holding the original call number) one netvm slipped in before that call.
    Bind {
        socket: SocketId,
        local: SocketAddr,
        name: EndpointName,
        then: Option<i64>,
    },
    Listen {
        socket: SocketId,
        port: u16,
    },
    Connect {
        socket: SocketId,
        nonblocking: bool,
        source: IpAddr,
    },
    Accept {
        listener: SocketId,
        room: Option<i32>,
    },
    /// A non-blocking connect nobody listens for, pointed at `listener` (see
    /// `refuse`), which is dropped at the exit.
    Refused {
        socket: SocketId,
        listener: std::os::fd::OwnedFd,
    },
    /// `recvfrom` on a datagram carrier, with the sender's name going to `scratch`.
    RecvFrom {
        socket: SocketId,
        scratch: u64,
    },
    /// A datagram of `len` bytes sent to a carrier (through a `msghdr` whose name
    /// netvm replaced, for `sendmsg`). A receiver connected elsewhere refuses it
    /// (EPERM) and one that just closed is gone (ECONNREFUSED); Linux sends the
    /// datagram all the same and the receiver drops it.
    Sent {
        len: i64,
        patch: Option<MsgNamePatch>,
    },
    /// `sendmsg` whose `msghdr` name netvm replaced for the call.
    SendMsg {
        patch: MsgNamePatch,
    },
    /// `recvmsg` whose `msghdr` name netvm replaced: by `scratch` to learn a
    /// datagram's sender, or by nothing on a stream.
    RecvMsg {
        patch: MsgNamePatch,
        socket: SocketId,
        scratch: Option<u64>,
    },
    /// `recvfrom` on a stream: Linux reports no address (length 0).
    RecvFromStream,
    /// `setsockopt(SO_REUSEADDR)` passed to the carrier; remembered if it succeeds.
    ReuseAddr {
        socket: SocketId,
        value: bool,
    },
}

/// The name fields of a program's `msghdr`, as it set them.
#[derive(Clone, Copy, Debug)]
struct MsgNamePatch {
    msg: u64,
    name: UserPtr,
    room: u32,
}

impl MsgNamePatch {
    /// Reads the `msghdr` at `msg`: the header, and its name fields if a name is
    /// given (`None` if `msg_name` is NULL, so the kernel can handle the call as is).
    fn read(memory: &TraceeMemory, msg: u64) -> Result<Option<(libc::msghdr, Self)>, Errno> {
        let header = memory.read::<libc::msghdr>(msg)?;
        let name = UserPtr(header.msg_name as u64);
        Ok((!name.is_null()).then_some((header, Self { msg, name, room: header.msg_namelen })))
    }

    /// Sets the header's `msg_name` and `msg_namelen`.
    fn write(&self, memory: &TraceeMemory, name: UserPtr, len: u32) -> Result<(), Errno> {
        memory.write(self.msg + MSG_NAME_OFFSET, &name.0)?;
        memory.write(self.msg + MSG_NAMELEN_OFFSET, &len)
    }
}

/// Offsets of `msg_name` and `msg_namelen` in `struct msghdr`.
const MSG_NAME_OFFSET: u64 = std::mem::offset_of!(libc::msghdr, msg_name) as u64;
const MSG_NAMELEN_OFFSET: u64 = std::mem::offset_of!(libc::msghdr, msg_namelen) as u64;

/// Where a datagram goes.
enum Destination {
    /// To the carrier bound to this name.
    Carrier(EndpointName),
    /// Nowhere: no socket is bound there.
    Nobody,
    /// To the connected peer: the call named no address after all.
    Peer,
    /// The call is answered otherwise: an error, or a bind first.
    Answer(Disposition),
}

/// A mounted `smoltcp` stack.
pub struct SmoltcpStack {
    name: Rc<str>,
    namer: Namer,
    ports: PortTable,
    /// Addresses of the stack's interfaces besides loopback.
    addresses: Vec<IpAddr>,
    sockets: HashMap<SocketId, VSocket>,
    by_name: HashMap<EndpointName, SocketId>,
    steps: HashMap<Pid, Step>,
}

/// The `TCP_MAXSEG` of a connected socket, as Linux 6 reports it over loopback.
const CONNECTED_MSS: i32 = 32768;

/// `SIOCOUTQNSD` (linux/sockios.h): bytes not yet sent.
const SIOCOUTQNSD: u32 = 0x894B;

/// The backlog every listening carrier gets (see `listen`).
const CARRIER_BACKLOG: u64 = 65535;

/// Room in the scratch area for a `sockaddr_un` and its length.
const NAME_ROOM: u32 = 112;

impl SmoltcpStack {
    /// The submodule's kind, as written in `modules.toml`.
    pub const KIND: &'static str = "smoltcp";

    /// Mounts stack number `index` of the session, called `name`, with `addresses`.
    pub fn mount(name: &str, index: usize, session: [u8; 4], addresses: Vec<IpAddr>) -> Self {
        Self {
            name: name.into(),
            namer: Namer::new(session, index),
            ports: PortTable::new(u16::from_ne_bytes([session[0], session[1]])),
            addresses,
            sockets: HashMap::new(),
            by_name: HashMap::new(),
            steps: HashMap::new(),
        }
    }

    /// Whether `ip` is one of this host's own addresses (loopback included).
    fn is_local(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        ip.is_loopback() || self.addresses.contains(&ip)
    }

    /// Whether a socket may bind `ip`: a wildcard, one of the host's own addresses,
    /// or a broadcast or multicast group (as `inet_addr_valid_or_nonlocal` allows).
    /// A link-local multicast group needs a scope, which netvm does not take.
    fn bindable(&self, ip: IpAddr) -> Result<(), Errno> {
        let ip = canonical(ip);
        match ip {
            _ if ip.is_unspecified() || self.is_local(ip) => Ok(()),
            IpAddr::V4(v4) if v4.is_multicast() || v4.is_broadcast() => Ok(()),
            IpAddr::V6(v6) if v6.is_multicast() && v6.segments()[0] & 0xff0f == 0xff02 => {
                Err(Errno::EINVAL)
            }
            IpAddr::V6(v6) if v6.is_multicast() => Ok(()),
            _ => Err(Errno::EADDRNOTAVAIL),
        }
    }

    /// The receiver of traffic to `to`, if its socket still exists. A binding whose
    /// carrier closed since is dropped here: nothing else tells netvm of a close.
    fn live_receiver(&mut self, proto: Proto, to: SocketAddr) -> Option<EndpointName> {
        loop {
            let receiver = self.ports.receiver(proto, to)?;
            let (name, socket) = (receiver.name, receiver.socket);
            if name.is_held(proto.carrier()) {
                return Some(name);
            }
            self.forget(&[socket]);
            self.ports.unbind(proto, to.port(), socket);
        }
    }

    /// The source address this host uses to reach `to` (one of its own).
    fn source_for(&self, to: IpAddr) -> IpAddr {
        match to {
            IpAddr::V4(v4) if v4.is_loopback() => Ipv4Addr::LOCALHOST.into(),
            IpAddr::V6(v6) if v6.is_loopback() => Ipv6Addr::LOCALHOST.into(),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => match self.source_for(v4.into()) {
                    IpAddr::V4(source) => IpAddr::V6(source.to_ipv6_mapped()),
                    v6 => v6,
                },
                None => to,
            },
            IpAddr::V4(_) => to,
        }
    }

    /// Binds socket `id` to `local` (port 0: ephemeral): the table entry now, the
    /// carrier by rewriting the current call into `bind` to a fresh name. `then`
    /// is the number of the program's own call to run next, if this bind is
    /// netvm's idea.
    fn bind_carrier(
        &mut self,
        stop: &mut SyscallStop,
        id: SocketId,
        local: SocketAddr,
        then: Option<i64>,
    ) -> Disposition {
        let Some(socket) = self.sockets.get(&id) else {
            return errno(Errno::EBADF);
        };
        let name = self.namer.fresh();
        let binding = Binding {
            socket: id,
            name,
            scope: Scope::of(local.ip(), socket.options.v6only),
            reuse_addr: socket.options.reuse_addr,
            reuse_port: socket.options.reuse_port,
            listening: false,
        };
        let port = match self
            .ports
            .bind(socket.proto, local.port(), binding, |name| name.is_held(socket.proto.carrier()))
        {
            Ok(port) => port,
            Err(e) => return errno(e),
        };
        let local = SocketAddr::new(local.ip(), port);
        let Some(fd) = stop.call().fd() else {
            return errno(Errno::EBADF);
        };
        let addr = match put_scratch(stop, &name.sockaddr(), 0) {
            Ok(addr) => addr,
            Err(e) => {
                self.ports.unbind(socket.proto, port, id);
                return errno(e);
            }
        };
        stop.set_number(libc::SYS_bind);
        stop.set_arg(0, fd as u64);
        stop.set_arg(1, addr);
        stop.set_arg(2, name.sockaddr().len() as u64);
        self.steps.insert(stop.tid, Step::Bind { socket: id, local, name, then });
        Disposition::KernelThenFinish
    }

    fn bind(&mut self, stop: &mut SyscallStop, id: SocketId, c: AddrIn) -> Disposition {
        let socket = &self.sockets[&id];
        let addr = match read_in(&stop.memory(), c.addr, c.addrlen)
            .and_then(|bytes| inet_addr(&bytes, socket.family, true))
        {
            Ok(addr) => addr,
            Err(e) => return errno(e),
        };
        if socket.local.is_some() {
            return errno(Errno::EINVAL);
        }
        if socket.options.v6only && canonical(addr.ip()).is_ipv4() && socket.family == Family::V6 {
            return errno(Errno::EINVAL);
        }
        if let Err(e) = self.bindable(addr.ip()) {
            return errno(e);
        }
        if addr.port() != 0 && addr.port() < 1024 && !can_bind_service(stop.process) {
            return errno(Errno::EACCES);
        }
        if let IpAddr::V6(v6) = addr.ip() {
            // Linux makes a socket bound to a specific IPv6 address IPv6-only.
            if !v6.is_unspecified() && v6.to_ipv4_mapped().is_none() {
                self.sockets.get_mut(&id).expect("checked above").options.v6only = true;
            }
        }
        self.bind_carrier(stop, id, addr, None)
    }

    fn listen(&mut self, stop: &mut SyscallStop, id: SocketId) -> Disposition {
        let socket = &self.sockets[&id];
        if socket.proto != Proto::Tcp {
            return errno(Errno::EOPNOTSUPP);
        }
        // Linux TCP never refuses a connection for a full backlog: the SYN is
        // retried until there is room. An AF_UNIX connect to a full listener fails
        // at once (EAGAIN) instead, so carriers listen with the largest backlog the
        // kernel allows (net.core.somaxconn caps it) and connections queue.
        stop.set_arg(1, CARRIER_BACKLOG);
        if socket.listening {
            return Disposition::Kernel;
        }
        if socket.peer.is_some() {
            return errno(Errno::EINVAL);
        }
        let Some(local) = socket.local else {
            // Linux binds an unbound listener to the wildcard and an ephemeral port.
            let any = SocketAddr::new(socket.family.unspecified(), 0);
            return self.bind_carrier(stop, id, any, Some(libc::SYS_listen));
        };
        if let Err(e) = self.ports.listen(local.port(), id, |name| name.is_held(SockType::Stream)) {
            return errno(e);
        }
        self.steps.insert(stop.tid, Step::Listen { socket: id, port: local.port() });
        Disposition::KernelThenFinish
    }

    fn connect(&mut self, stop: &mut SyscallStop, id: SocketId, c: AddrIn) -> Disposition {
        let socket = &self.sockets[&id];
        let bytes = match read_in(&stop.memory(), c.addr, c.addrlen) {
            Ok(bytes) if bytes.len() >= 2 => bytes,
            Ok(_) => return errno(Errno::EINVAL),
            Err(e) => return errno(e),
        };
        if u16::from_ne_bytes([bytes[0], bytes[1]]) == libc::AF_UNSPEC as u16 {
            return self.disconnect(id);
        }
        if socket.completion_unreported {
            // The connect reported EINPROGRESS: the next one reports it done.
            self.sockets.get_mut(&id).expect("checked above").completion_unreported = false;
            return Disposition::Return(0);
        }
        if socket.proto == Proto::Tcp && (socket.peer.is_some() || socket.listening) {
            return errno(Errno::EISCONN);
        }
        if socket.refused {
            return errno(Errno::ECONNABORTED);
        }
        let mut to = match inet_addr(&bytes, socket.family, false) {
            Ok(to) => to,
            Err(e) => return errno(e),
        };
        if to.ip().is_unspecified() {
            // Linux connects to the unspecified address through loopback.
            to.set_ip(loopback(socket.family));
        }
        if socket.family == Family::V6 && socket.options.v6only && canonical(to.ip()).is_ipv4() {
            return errno(Errno::ENETUNREACH);
        }
        if !self.is_local(to.ip()) {
            return errno(Errno::ENETUNREACH);
        }
        let source = self.source_for(to.ip());
        let (proto, bound) = (socket.proto, socket.local.is_some());
        let Some(receiver) = self.live_receiver(proto, to) else {
            return match proto {
                Proto::Tcp => self.refuse(stop, id),
                // UDP connects to a silent port all the same; datagrams are lost.
                Proto::Udp => self.remember_peer(id, to),
            };
        };
        if !bound {
            let local = SocketAddr::new(source, 0);
            return self.bind_carrier(stop, id, local, Some(libc::SYS_connect));
        }
        let Some(fd) = stop.call().fd() else {
            return errno(Errno::EBADF);
        };
        let nonblocking = is_nonblocking(stop.tid, fd);
        let addr = match put_scratch(stop, &receiver.sockaddr(), 0) {
            Ok(addr) => addr,
            Err(e) => return errno(e),
        };
        stop.set_arg(1, addr);
        stop.set_arg(2, receiver.sockaddr().len() as u64);
        if let Some(socket) = self.sockets.get_mut(&id) {
            socket.peer = Some(to);
        }
        self.steps.insert(stop.tid, Step::Connect { socket: id, nonblocking, source });
        Disposition::KernelThenFinish
    }

    /// A TCP connect that nobody listens for. Blocking, it is `ECONNREFUSED` at once,
    /// as on Linux. Non-blocking, Linux says `EINPROGRESS` and the refusal arrives
    /// later, as `POLLERR|POLLHUP` and `SO_ERROR`. The carrier is given that state
    /// natively: it connects to a listener netvm makes for the purpose, which is
    /// closed at the call's exit without accepting; the kernel then marks the
    /// carrier failed and shut down, so every readiness API sees the refusal.
    fn refuse(&mut self, stop: &mut SyscallStop, id: SocketId) -> Disposition {
        let Some(fd) = stop.call().fd() else { return errno(Errno::EBADF) };
        if !is_nonblocking(stop.tid, fd) {
            return errno(Errno::ECONNREFUSED);
        }
        let name = self.namer.fresh();
        let Ok(listener) = temporary_listener(&name) else { return errno(Errno::ECONNREFUSED) };
        match put_scratch(stop, &name.sockaddr(), 0) {
            Ok(addr) => {
                stop.set_arg(1, addr);
                stop.set_arg(2, name.sockaddr().len() as u64);
                self.steps.insert(stop.tid, Step::Refused { socket: id, listener });
                Disposition::KernelThenFinish
            }
            Err(e) => errno(e),
        }
    }

    fn remember_peer(&mut self, id: SocketId, to: SocketAddr) -> Disposition {
        if let Some(socket) = self.sockets.get_mut(&id) {
            socket.peer = Some(to);
        }
        Disposition::Return(0)
    }

    fn disconnect(&mut self, id: SocketId) -> Disposition {
        let socket = self.sockets.get_mut(&id).expect("routed to an existing socket");
        socket.peer = None;
        match socket.proto {
            // The carrier dissolves its association natively with AF_UNSPEC.
            Proto::Udp => Disposition::Kernel,
            Proto::Tcp => Disposition::Return(0),
        }
    }

    fn accept(&mut self, stop: &mut SyscallStop, id: SocketId, c: Accept) -> Disposition {
        let socket = &self.sockets[&id];
        if socket.proto != Proto::Tcp {
            return errno(Errno::EOPNOTSUPP);
        }
        if !socket.listening {
            return errno(Errno::EINVAL);
        }
        let room = if c.addr.is_null() {
            None
        } else {
            match stop.memory().read::<i32>(c.addrlen.0) {
                Ok(room) if room >= 0 => Some(room),
                Ok(_) => return errno(Errno::EINVAL),
                Err(e) => return errno(e),
            }
        };
        self.steps.insert(stop.tid, Step::Accept { listener: id, room });
        Disposition::KernelThenFinish
    }

    fn address(&self, stop: &SyscallStop, id: SocketId, c: AddrOut, peer: bool) -> Disposition {
        let socket = &self.sockets[&id];
        let addr = if peer {
            match socket.peer {
                Some(addr) if !socket.listening && !self.connection_over(stop, socket) => addr,
                _ => return errno(Errno::ENOTCONN),
            }
        } else {
            socket.local.unwrap_or(SocketAddr::new(socket.family.unspecified(), 0))
        };
        let bytes = encode(addr, socket.family.raw());
        result(write_out(&stop.memory(), c.addr, c.addrlen, &bytes).map(|()| 0))
    }

    /// Whether a TCP connection has ended as Linux counts it (state CLOSE): a reset
    /// came (the carrier has an error), or both sides shut down writing (the
    /// carrier is shut down both ways after this side's own `SHUT_WR`). A peer's
    /// clean close alone leaves Linux in CLOSE_WAIT, still connected.
    fn connection_over(&self, stop: &SyscallStop, socket: &VSocket) -> bool {
        let Some(fd) = stop.call().fd() else { return false };
        if socket.proto != Proto::Tcp {
            return false;
        }
        let Ok(copy) = stop.copy_fd(fd) else { return false };
        let mut poll = libc::pollfd { fd: copy.as_raw_fd(), events: 0, revents: 0 };
        // SAFETY: one live pollfd, no timeout.
        if unsafe { libc::poll(&mut poll, 1, 0) } != 1 {
            return false;
        }
        poll.revents & libc::POLLERR != 0 || (poll.revents & libc::POLLHUP != 0 && socket.shut_wr)
    }

    fn getsockopt(&mut self, stop: &SyscallStop, id: SocketId, c: Getsockopt) -> Disposition {
        let socket = self.sockets.get_mut(&id).expect("routed to an existing socket");
        let keeper = match sockopt::keeper(
            socket.proto,
            socket.family == Family::V6,
            c.level,
            c.optname,
            true,
        ) {
            Ok(keeper) => keeper,
            Err(e) => return errno(e),
        };
        let memory = stop.memory();
        let value = match keeper {
            Keeper::Carrier if (c.level, c.optname) == (libc::SOL_SOCKET, libc::SO_ERROR) => {
                match socket.pending_error.take() {
                    Some(e) => {
                        // Reading SO_ERROR clears it: clear the carrier's too.
                        if let Ok(copy) = stop.copy_fd(c.fd) {
                            let _ = nix::sys::socket::getsockopt(
                                &copy,
                                nix::sys::socket::sockopt::SocketError,
                            );
                        }
                        int_bytes(e as i32)
                    }
                    None => return Disposition::Kernel,
                }
            }
            Keeper::Carrier => return Disposition::Kernel,
            Keeper::V6Only => int_bytes(i32::from(socket.options.v6only)),
            Keeper::ReusePort => int_bytes(i32::from(socket.options.reuse_port)),
            Keeper::TcpInfo => sockopt::tcp_info(if socket.peer.is_some() { 1 } else { 7 }),
            Keeper::Congestion => {
                let mut name = socket.options.congestion.clone().unwrap_or(b"cubic".to_vec());
                name.resize(16, 0);
                name
            }
            Keeper::Emulated
                if (c.level, c.optname) == (libc::IPPROTO_TCP, libc::TCP_MAXSEG)
                    && socket.peer.is_some()
                    && !socket.options.is_set(c.level, c.optname) =>
            {
                // What Linux reports for a connection over its own loopback.
                int_bytes(CONNECTED_MSS)
            }
            Keeper::Emulated => {
                int_bytes(socket.options.get(c.level, c.optname, socket.family.raw(), socket.proto))
            }
        };
        result(write_option(&memory, c.optval.0, c.optlen.0, &value).map(|()| 0))
    }

    fn setsockopt(&mut self, stop: &SyscallStop, id: SocketId, c: Setsockopt) -> Disposition {
        let socket = self.sockets.get_mut(&id).expect("routed to an existing socket");
        let keeper = match sockopt::keeper(
            socket.proto,
            socket.family == Family::V6,
            c.level,
            c.optname,
            false,
        ) {
            Ok(keeper) => keeper,
            Err(e) => return errno(e),
        };
        if keeper == Keeper::Carrier {
            if (c.level, c.optname) == (libc::SOL_SOCKET, libc::SO_REUSEADDR) {
                if let Ok(value) = read_int_option(&stop.memory(), c.optval.0, c.optlen) {
                    self.steps.insert(stop.tid, Step::ReuseAddr { socket: id, value: value != 0 });
                    return Disposition::KernelThenFinish;
                }
            }
            return Disposition::Kernel;
        }
        if keeper == Keeper::Congestion {
            let len = c.optlen.min(16) as usize;
            return match stop.memory().read_bytes(c.optval.0, len) {
                Ok(name) if name.starts_with(b"cubic") || name.starts_with(b"reno") => {
                    socket.options.congestion = Some(name);
                    Disposition::Return(0)
                }
                Ok(_) => errno(Errno::ENOENT),
                Err(e) => errno(e),
            };
        }
        let value = match read_int_option(&stop.memory(), c.optval.0, c.optlen) {
            Ok(value) => value,
            Err(e) => return errno(e),
        };
        result(match keeper {
            Keeper::V6Only if socket.local.is_some() => Err(Errno::EINVAL),
            Keeper::V6Only => {
                socket.options.v6only = value != 0;
                Ok(0)
            }
            Keeper::ReusePort => {
                socket.options.reuse_port = value != 0;
                Ok(0)
            }
            Keeper::TcpInfo => Err(Errno::ENOPROTOOPT),
            _ => socket.options.set(c.level, c.optname, value, socket.proto).map(|()| 0),
        })
    }

    /// Where a datagram to the address at `addr` goes, for `sendto` and `sendmsg`
    /// (call `number`) on UDP socket `id`.
    fn datagram_destination(
        &mut self,
        stop: &mut SyscallStop,
        id: SocketId,
        addr: UserPtr,
        addrlen: u32,
        number: i64,
    ) -> Destination {
        let socket = &self.sockets[&id];
        let to = match read_in(&stop.memory(), addr, addrlen)
            .and_then(|bytes| datagram_address(&bytes, socket.family))
        {
            Ok(Some(to)) => to,
            // No address after all: the connected peer, or none.
            Ok(None) if socket.peer.is_some() => return Destination::Peer,
            Ok(None) => return Destination::Answer(errno(Errno::EDESTADDRREQ)),
            Err(e) => return Destination::Answer(errno(e)),
        };
        let to = if to.ip().is_unspecified() {
            SocketAddr::new(loopback(socket.family), to.port())
        } else {
            to
        };
        if to.port() == 0 {
            return Destination::Answer(errno(Errno::EINVAL));
        }
        if !self.is_local(to.ip()) {
            return Destination::Answer(errno(Errno::ENETUNREACH));
        }
        if socket.local.is_none() {
            // Linux binds an unbound sender to the wildcard and an ephemeral port.
            let any = SocketAddr::new(socket.family.unspecified(), 0);
            return Destination::Answer(self.bind_carrier(stop, id, any, Some(number)));
        }
        let source = self.source_for(to.ip());
        if let Some(socket) = self.sockets.get_mut(&id) {
            socket.source = Some(source);
        }
        match self.live_receiver(Proto::Udp, to) {
            Some(receiver) => Destination::Carrier(receiver),
            None => Destination::Nobody,
        }
    }

    fn sendto(&mut self, stop: &mut SyscallStop, id: SocketId, c: Sendto) -> Disposition {
        if self.sockets[&id].proto == Proto::Tcp {
            // A stream ignores the address (Linux TCP does; an AF_UNIX stream would not).
            stop.set_arg(4, 0);
            stop.set_arg(5, 0);
            return Disposition::Kernel;
        }
        if c.len > MAX_DATAGRAM {
            return errno(Errno::EMSGSIZE);
        }
        match self.datagram_destination(stop, id, c.addr, c.addrlen, libc::SYS_sendto) {
            Destination::Answer(answer) => answer,
            // Nobody listens: the datagram is lost, the sender is not told.
            Destination::Nobody => Disposition::Return(c.len as i64),
            Destination::Peer => {
                stop.set_arg(4, 0);
                stop.set_arg(5, 0);
                Disposition::Kernel
            }
            Destination::Carrier(name) => match put_scratch(stop, &name.sockaddr(), 0) {
                Ok(addr) => {
                    stop.set_arg(4, addr);
                    stop.set_arg(5, name.sockaddr().len() as u64);
                    self.steps.insert(stop.tid, Step::Sent { len: c.len as i64, patch: None });
                    Disposition::KernelThenFinish
                }
                Err(e) => errno(e),
            },
        }
    }

    fn sendmsg(&mut self, stop: &mut SyscallStop, id: SocketId, c: Msg) -> Disposition {
        let memory = stop.memory();
        let socket = &self.sockets[&id];
        let (header, patch) = match MsgNamePatch::read(&memory, c.msg.0) {
            Ok(Some(found)) => found,
            // No destination: Linux UDP says EDESTADDRREQ, a carrier ENOTCONN.
            Ok(None) if socket.proto == Proto::Udp && socket.peer.is_none() => {
                return errno(Errno::EDESTADDRREQ);
            }
            Ok(None) => return Disposition::Kernel,
            Err(e) => return errno(e),
        };
        if self.sockets[&id].proto == Proto::Tcp {
            return self.patch_msg_name(stop, patch, UserPtr(0), 0, Step::SendMsg { patch });
        }
        let len = match total_iov_len(&memory, &header) {
            Ok(len) => len,
            Err(e) => return errno(e),
        };
        match self.datagram_destination(stop, id, patch.name, patch.room, libc::SYS_sendmsg) {
            Destination::Answer(answer) => answer,
            Destination::Nobody => Disposition::Return(len),
            Destination::Peer => {
                self.patch_msg_name(stop, patch, UserPtr(0), 0, Step::SendMsg { patch })
            }
            Destination::Carrier(carrier) => match put_scratch(stop, &carrier.sockaddr(), 0) {
                Ok(at) => {
                    let step = Step::Sent { len, patch: Some(patch) };
                    let name_len = carrier.sockaddr().len() as u32;
                    self.patch_msg_name(stop, patch, UserPtr(at), name_len, step)
                }
                Err(e) => errno(e),
            },
        }
    }

    fn recvmsg(&mut self, stop: &mut SyscallStop, id: SocketId, c: Msg) -> Disposition {
        let patch = match MsgNamePatch::read(&stop.memory(), c.msg.0) {
            Ok(Some((_, patch))) => patch,
            Ok(None) => return Disposition::Kernel,
            Err(e) => return errno(e),
        };
        if self.sockets[&id].proto == Proto::Tcp {
            let step = Step::RecvMsg { patch, socket: id, scratch: None };
            return self.patch_msg_name(stop, patch, UserPtr(0), 0, step);
        }
        let scratch = stop.scratch(NAME_ROOM as usize);
        let step = Step::RecvMsg { patch, socket: id, scratch: Some(scratch) };
        self.patch_msg_name(stop, patch, UserPtr(scratch), NAME_ROOM, step)
    }

    /// Points a `msghdr`'s name at `name`/`len` for the duration of the call; the
    /// step's exit puts the program's own values back.
    fn patch_msg_name(
        &mut self,
        stop: &SyscallStop,
        patch: MsgNamePatch,
        name: UserPtr,
        len: u32,
        step: Step,
    ) -> Disposition {
        match patch.write(&stop.memory(), name, len) {
            Ok(()) => {
                self.steps.insert(stop.tid, step);
                Disposition::KernelThenFinish
            }
            Err(e) => errno(e),
        }
    }

    fn recvfrom(&mut self, stop: &mut SyscallStop, id: SocketId) -> Disposition {
        if self.sockets[&id].proto == Proto::Tcp {
            stop.set_arg(4, 0);
            stop.set_arg(5, 0);
            self.steps.insert(stop.tid, Step::RecvFromStream);
            return Disposition::KernelThenFinish;
        }
        // The kernel writes the sender's carrier name to scratch; the exit
        // translates it into the sender's virtual address.
        let scratch = stop.scratch(NAME_ROOM as usize + 8);
        if let Err(e) = stop.memory().write(scratch + u64::from(NAME_ROOM), &NAME_ROOM) {
            return errno(e);
        }
        stop.set_arg(4, scratch);
        stop.set_arg(5, scratch + u64::from(NAME_ROOM));
        self.steps.insert(stop.tid, Step::RecvFrom { socket: id, scratch });
        Disposition::KernelThenFinish
    }

    /// The `sockaddr` a datagram's receiver `receiver` reports for the sender whose
    /// carrier name (as a `sockaddr_un`) is `name`.
    fn sender_address(&self, receiver: SocketId, name: &[u8]) -> Vec<u8> {
        let Some(me) = self.sockets.get(&receiver) else { return Vec::new() };
        let toward = match me.local {
            Some(l) if !l.ip().is_unspecified() => l.ip(),
            _ => loopback(me.family),
        };
        let from = self
            .address_of_name(name, toward)
            .unwrap_or(SocketAddr::new(me.family.unspecified(), 0));
        encode(from, me.family.raw())
    }

    /// The virtual address behind a carrier name: the bound address of the socket
    /// holding it, with a wildcard IP replaced by the source it sends from.
    fn address_of_name(&self, name: &[u8], toward: IpAddr) -> Option<SocketAddr> {
        let name = EndpointName::from_sockaddr(name)?;
        let sender = &self.sockets[self.by_name.get(&name)?];
        let local = sender.local?;
        let ip = match (local.ip().is_unspecified(), sender.source) {
            (false, _) => local.ip(),
            (true, Some(source)) => source,
            (true, None) => self.source_for(toward),
        };
        Some(SocketAddr::new(ip, local.port()))
    }

    fn finish_step(&mut self, stop: &mut SyscallStop, step: Step, claims: &mut Claims) {
        let ret = stop.result();
        match step {
            Step::Create { family, proto } => {
                if ret >= 0 {
                    if let Ok(FdTarget::Socket(id)) = resolve(stop.tid, ret as i32) {
                        self.sockets.insert(id, VSocket::new(family, proto));
                        claims.claim(id);
                    }
                }
            }
            Step::Bind { socket, local, name, then } => {
                let proto = self.sockets.get(&socket).map(|s| s.proto);
                if ret != 0 {
                    if let Some(proto) = proto {
                        self.ports.unbind(proto, local.port(), socket);
                    }
                    return;
                }
                if let Some(s) = self.sockets.get_mut(&socket) {
                    s.local = Some(local);
                    s.name = Some(name);
                    self.by_name.insert(name, socket);
                }
                if let Some(number) = then {
                    stop.restart(number);
                }
            }
            Step::Listen { socket, port } => {
                if ret == 0 {
                    if let Some(s) = self.sockets.get_mut(&socket) {
                        s.listening = true;
                    }
                } else {
                    self.ports.unlisten(port, socket);
                }
            }
            Step::Connect { socket, nonblocking, source } => {
                let Some(s) = self.sockets.get_mut(&socket) else {
                    return;
                };
                if ret != 0 {
                    s.peer = None;
                    return;
                }
                if let Some(local) = s.local.as_mut().filter(|l| l.ip().is_unspecified()) {
                    local.set_ip(source);
                }
                if nonblocking && s.proto == Proto::Tcp {
                    // A TCP connect never completes within the call; the carrier's
                    // did, so the socket is writable as soon as the program polls.
                    stop.set_result(-i64::from(libc::EINPROGRESS));
                    s.completion_unreported = true;
                }
            }
            Step::Refused { socket, listener } => {
                drop(listener);
                if let Some(s) = self.sockets.get_mut(&socket) {
                    s.pending_error = Some(Errno::ECONNREFUSED);
                    s.refused = true;
                }
                if ret == 0 {
                    stop.set_result(-i64::from(libc::EINPROGRESS));
                }
            }
            Step::Accept { listener, room } => {
                if ret >= 0 {
                    self.finish_accept(stop, listener, ret as i32, room, claims);
                }
            }
            Step::RecvFrom { socket, scratch } => {
                let Syscall::Recvfrom(Recvfrom { addr, addrlen, .. }) = stop.call() else {
                    return;
                };
                if ret < 0 {
                    return;
                }
                let memory = stop.memory();
                let len = memory.read::<u32>(scratch + u64::from(NAME_ROOM)).unwrap_or(0);
                let name =
                    memory.read_bytes(scratch, len.min(NAME_ROOM) as usize).unwrap_or_default();
                let from = self.sender_address(socket, &name);
                if let Err(e) = write_out(&memory, addr, addrlen, &from) {
                    stop.set_result(-(e as i64));
                }
            }
            Step::Sent { len, patch } => {
                if let Some(patch) = patch {
                    let _ = patch.write(&stop.memory(), patch.name, patch.room);
                }
                if ret == -i64::from(libc::EPERM) || ret == -i64::from(libc::ECONNREFUSED) {
                    stop.set_result(len);
                }
            }
            Step::SendMsg { patch } => {
                let _ = patch.write(&stop.memory(), patch.name, patch.room);
            }
            Step::RecvMsg { patch, socket, scratch } => {
                let memory = stop.memory();
                let reported = match scratch {
                    // A stream reports no address (length 0), as Linux TCP does.
                    None => Vec::new(),
                    Some(_) if ret < 0 => {
                        let _ = patch.write(&memory, patch.name, patch.room);
                        return;
                    }
                    Some(scratch) => {
                        let header = memory.read::<libc::msghdr>(patch.msg);
                        let len = header.map_or(0, |h| h.msg_namelen.min(NAME_ROOM));
                        let name = memory.read_bytes(scratch, len as usize).unwrap_or_default();
                        self.sender_address(socket, &name)
                    }
                };
                let n = reported.len().min(patch.room as usize);
                let written = memory
                    .write_bytes(patch.name.0, &reported[..n])
                    .and_then(|()| patch.write(&memory, patch.name, reported.len() as u32));
                if let Err(e) = written {
                    stop.set_result(-(e as i64));
                }
            }
            Step::RecvFromStream => {
                if let Syscall::Recvfrom(Recvfrom { addrlen, .. }) = stop.call() {
                    if ret >= 0 && !addrlen.is_null() {
                        let _ = stop.memory().write(addrlen.0, &0u32);
                    }
                }
            }
            Step::ReuseAddr { socket, value } => {
                if let (0, Some(s)) = (ret, self.sockets.get_mut(&socket)) {
                    s.options.reuse_addr = value;
                }
            }
        }
    }

    /// A connection was accepted on `listener` as fd `fd`: record the new socket
    /// and tell the program its peer's virtual address.
    fn finish_accept(
        &mut self,
        stop: &mut SyscallStop,
        listener: SocketId,
        fd: i32,
        room: Option<i32>,
        claims: &mut Claims,
    ) {
        let Ok(FdTarget::Socket(id)) = resolve(stop.tid, fd) else {
            return;
        };
        let Some(listening) = self.sockets.get(&listener) else {
            return;
        };
        let mut accepted = VSocket::new(listening.family, Proto::Tcp);
        accepted.options = listening.options.clone();
        let copy = stop.copy_fd(fd).ok();
        if let (Some(copy), Syscall::Accept(c)) = (&copy, stop.call()) {
            if let Ok(listener_copy) = stop.copy_fd(c.fd) {
                inherit_socket_options(listener_copy.as_raw_fd(), copy.as_raw_fd());
            }
        }
        // The carrier's peer is the connecting carrier, bound to a name of ours.
        let connector = copy
            .and_then(|copy| peer_name(copy.as_raw_fd()))
            .and_then(|name| self.by_name.get(&name))
            .and_then(|id| self.sockets.get(id));
        if let Some(connector) = connector {
            accepted.local = connector.peer;
            accepted.peer = connector.local;
        }
        let peer = accepted.peer.unwrap_or(SocketAddr::new(listening.family.unspecified(), 0));
        let family = listening.family.raw();
        self.sockets.insert(id, accepted);
        claims.claim(id);
        if let (Some(room), Syscall::Accept(c)) = (room, stop.call()) {
            let memory = stop.memory();
            // Restore the caller's buffer length (the kernel overwrote it) first.
            let written = memory
                .write(c.addrlen.0, &room)
                .and_then(|()| write_out(&memory, c.addr, c.addrlen, &encode(peer, family)));
            if let Err(e) = written {
                stop.set_result(-(e as i64));
            }
        }
    }
}

impl Stack for SmoltcpStack {
    fn name(&self) -> &Rc<str> {
        &self.name
    }

    fn kind(&self) -> &'static str {
        Self::KIND
    }

    fn create(&mut self, stop: &mut SyscallStop) -> Disposition {
        let (domain, ty, protocol) = match stop.call() {
            Syscall::Socket(c) => (c.domain, c.ty, c.protocol),
            Syscall::Socketpair(c) => {
                return errno(match c.domain {
                    libc::AF_INET | libc::AF_INET6 => Errno::EOPNOTSUPP,
                    _ => Errno::EAFNOSUPPORT,
                });
            }
            _ => return errno(Errno::EINVAL),
        };
        let family = match domain {
            libc::AF_INET => Family::V4,
            libc::AF_INET6 => Family::V6,
            _ => return errno(Errno::EAFNOSUPPORT),
        };
        let flags = ty & (libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC);
        let proto = match socket_proto(ty & !flags, protocol) {
            Ok(proto) => proto,
            Err(e) => return errno(e),
        };
        let carrier = proto.carrier() as i32;
        stop.set_arg(0, libc::AF_UNIX as u64);
        stop.set_arg(1, (carrier | flags) as u64);
        stop.set_arg(2, 0);
        self.steps.insert(stop.tid, Step::Create { family, proto });
        Disposition::KernelThenFinish
    }

    fn on_socket(&mut self, id: SocketId, stop: &mut SyscallStop) -> Disposition {
        if !self.sockets.contains_key(&id) {
            return Disposition::Kernel;
        }
        match stop.call() {
            Syscall::Bind(c) => self.bind(stop, id, c),
            Syscall::Listen(_) => self.listen(stop, id),
            Syscall::Connect(c) => self.connect(stop, id, c),
            Syscall::Accept(c) => self.accept(stop, id, c),
            Syscall::Getsockname(c) => self.address(stop, id, c, false),
            Syscall::Getpeername(c) => self.address(stop, id, c, true),
            Syscall::Getsockopt(c) => self.getsockopt(stop, id, c),
            Syscall::Setsockopt(c) => self.setsockopt(stop, id, c),
            Syscall::Sendto(c) => self.sendto(stop, id, c),
            Syscall::Recvfrom(_) => self.recvfrom(stop, id),
            Syscall::Sendmsg(c) => self.sendmsg(stop, id, c),
            Syscall::Shutdown(c) => {
                let socket = self.sockets.get_mut(&id).expect("checked above");
                // An unconnected carrier would shut down quietly; Linux refuses.
                if socket.peer.is_none() && !socket.listening {
                    return errno(Errno::ENOTCONN);
                }
                if c.how == libc::SHUT_WR || c.how == libc::SHUT_RDWR {
                    socket.shut_wr = true;
                }
                Disposition::Kernel
            }
            Syscall::Recvmsg(c) => self.recvmsg(stop, id, c),
            Syscall::Ioctl(c) if [libc::TIOCOUTQ as u32, SIOCOUTQNSD].contains(&c.request) => {
                // Bytes not yet acknowledged (or not yet sent): on a stack's own
                // loopback the peer's kernel acknowledges at once, so none. A carrier
                // would count what the peer has not read.
                if self.sockets[&id].listening {
                    return errno(Errno::EINVAL);
                }
                result(stop.memory().write(c.arg, &0i32).map(|()| 0))
            }
            _ => Disposition::Kernel,
        }
    }

    fn finish(&mut self, stop: &mut SyscallStop, claims: &mut Claims) {
        if let Some(step) = self.steps.remove(&stop.tid) {
            self.finish_step(stop, step, claims);
        }
    }

    fn forget(&mut self, sockets: &[SocketId]) {
        for id in sockets {
            if let Some(socket) = self.sockets.remove(id) {
                if let Some(name) = socket.name {
                    self.by_name.remove(&name);
                }
                if let Some(local) = socket.local {
                    self.ports.unbind(socket.proto, local.port(), *id);
                }
            }
        }
    }
}

/// The transport a `socket(AF_INET*, type, protocol)` asks for, or Linux's error.
fn socket_proto(ty: i32, protocol: i32) -> Result<Proto, Errno> {
    match (ty, protocol) {
        (libc::SOCK_STREAM, 0 | libc::IPPROTO_TCP) => Ok(Proto::Tcp),
        (libc::SOCK_DGRAM, 0 | libc::IPPROTO_UDP) => Ok(Proto::Udp),
        (libc::SOCK_STREAM | libc::SOCK_DGRAM, _) => Err(Errno::EPROTONOSUPPORT),
        // Raw sockets need CAP_NET_RAW, which a traced program never gains.
        (libc::SOCK_RAW, _) => Err(Errno::EPERM),
        (0..=10, _) => Err(Errno::ESOCKTNOSUPPORT),
        _ => Err(Errno::EINVAL),
    }
}

/// Decodes an IPv4 or IPv6 address for a socket of `family`, with Linux's checks
/// (length before family). `bind` accepts `AF_UNSPEC` with `INADDR_ANY` on IPv4
/// sockets, for old programs.
fn inet_addr(bytes: &[u8], family: Family, binding: bool) -> Result<SocketAddr, Errno> {
    let sa_family = |b: &[u8]| u16::from_ne_bytes([b[0], b[1]]) as i32;
    let port = |b: &[u8]| u16::from_be_bytes([b[2], b[3]]);
    match family {
        Family::V4 => {
            if bytes.len() < size_of::<libc::sockaddr_in>() {
                return Err(Errno::EINVAL);
            }
            let ip = Ipv4Addr::new(bytes[4], bytes[5], bytes[6], bytes[7]);
            match sa_family(bytes) {
                libc::AF_INET => Ok(SocketAddrV4::new(ip, port(bytes)).into()),
                libc::AF_UNSPEC if binding && ip.is_unspecified() => {
                    Ok(SocketAddrV4::new(ip, port(bytes)).into())
                }
                _ => Err(Errno::EAFNOSUPPORT),
            }
        }
        Family::V6 => {
            // Linux accepts the RFC 2133 length, without sin6_scope_id.
            if bytes.len() < 24 {
                return Err(Errno::EINVAL);
            }
            if sa_family(bytes) != libc::AF_INET6 {
                return Err(Errno::EAFNOSUPPORT);
            }
            let ip: [u8; 16] = bytes[8..24].try_into().expect("16 bytes");
            Ok(SocketAddrV6::new(ip.into(), port(bytes), 0, 0).into())
        }
    }
}

/// The destination of a datagram send on a socket of `family`, with Linux's
/// rules (`udp_sendmsg`, `udpv6_sendmsg`): `Ok(None)` is no address at all.
fn datagram_address(bytes: &[u8], family: Family) -> Result<Option<SocketAddr>, Errno> {
    if bytes.len() < 2 {
        return Err(Errno::EINVAL);
    }
    let sa_family = i32::from(u16::from_ne_bytes([bytes[0], bytes[1]]));
    match (family, sa_family) {
        (Family::V4, libc::AF_UNSPEC) => {
            // An IPv4 socket reads AF_UNSPEC as AF_INET.
            let mut inet = bytes.to_vec();
            inet[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
            inet_addr(&inet, family, false).map(Some)
        }
        (Family::V4, _) => inet_addr(bytes, family, false).map(Some),
        (Family::V6, libc::AF_INET6) => inet_addr(bytes, family, false).map(Some),
        (Family::V6, libc::AF_UNSPEC) => Ok(None),
        (Family::V6, libc::AF_INET) => Err(Errno::ENETUNREACH),
        (Family::V6, _) => Err(Errno::EINVAL),
    }
}

/// The largest UDP payload over IPv4 (65535 less the IP and UDP headers).
const MAX_DATAGRAM: u64 = 65507;

/// An IPv4-mapped IPv6 address as the IPv4 address it stands for.
fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

fn loopback(family: Family) -> IpAddr {
    match family {
        Family::V4 => Ipv4Addr::LOCALHOST.into(),
        Family::V6 => Ipv6Addr::LOCALHOST.into(),
    }
}

fn errno(e: Errno) -> Disposition {
    Disposition::Return(-(e as i64))
}

fn result(r: Result<i64, Errno>) -> Disposition {
    match r {
        Ok(v) => Disposition::Return(v),
        Err(e) => errno(e),
    }
}

fn int_bytes(value: i32) -> Vec<u8> {
    value.to_ne_bytes().to_vec()
}

/// Copies `bytes` into the scratch area, `offset` bytes in, and returns the address.
fn put_scratch(stop: &SyscallStop, bytes: &[u8], offset: usize) -> Result<u64, Errno> {
    let at = stop.scratch(bytes.len() + offset) + offset as u64;
    stop.memory().write_bytes(at, bytes)?;
    Ok(at)
}

/// The bytes a `msghdr`'s iovecs describe (what a lost datagram "sent").
fn total_iov_len(memory: &TraceeMemory, header: &libc::msghdr) -> Result<i64, Errno> {
    let mut total = 0i64;
    for i in 0..header.msg_iovlen as u64 {
        let iov = memory.read::<libc::iovec>(header.msg_iov as u64 + i * 16)?;
        total += iov.iov_len as i64;
    }
    Ok(total)
}

/// Returns an option value as `getsockopt` does: at most the caller's length
/// (`EINVAL` if negative), and the length actually written.
fn write_option(
    memory: &TraceeMemory,
    optval: u64,
    optlen: u64,
    value: &[u8],
) -> Result<(), Errno> {
    let room = memory.read::<i32>(optlen)?;
    if room < 0 {
        return Err(Errno::EINVAL);
    }
    let n = value.len().min(room as usize);
    memory.write_bytes(optval, &value[..n])?;
    memory.write(optlen, &(n as u32))
}

/// Reads an `int` option for `setsockopt`: shorter than an int is `EINVAL`.
fn read_int_option(memory: &TraceeMemory, optval: u64, optlen: u32) -> Result<i32, Errno> {
    if (optlen as i32) < size_of::<i32>() as i32 {
        return Err(Errno::EINVAL);
    }
    memory.read::<i32>(optval)
}

/// A listening stream socket bound to `name`, in the supervisor.
fn temporary_listener(name: &EndpointName) -> Result<std::os::fd::OwnedFd, Errno> {
    use nix::sys::socket::{AddressFamily, Backlog, SockFlag, UnixAddr, bind, listen, socket};
    let listener = socket(AddressFamily::Unix, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)?;
    bind(listener.as_raw_fd(), &UnixAddr::new_abstract(&name.0)?)?;
    listen(&listener, Backlog::new(1)?)?;
    Ok(listener)
}

/// `SOL_SOCKET` options a TCP socket accepted by Linux inherits from its listener
/// but an `AF_UNIX` carrier does not.
const INHERITED_OPTIONS: [libc::c_int; 3] =
    [libc::SO_KEEPALIVE, libc::SO_OOBINLINE, libc::SO_RCVLOWAT];

/// Copies the [`INHERITED_OPTIONS`] from a listening carrier to an accepted one.
fn inherit_socket_options(listener: i32, accepted: i32) {
    for option in INHERITED_OPTIONS {
        let mut value: libc::c_int = 0;
        let mut len = size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `value` and `len` are live locals of the sizes passed.
        let got = unsafe {
            libc::getsockopt(listener, libc::SOL_SOCKET, option, (&raw mut value).cast(), &mut len)
        };
        if got == 0 {
            // SAFETY: passes a live int of the size given.
            unsafe {
                libc::setsockopt(
                    accepted,
                    libc::SOL_SOCKET,
                    option,
                    (&raw const value).cast(),
                    len,
                );
            }
        }
    }
}

/// The carrier name a connected `AF_UNIX` socket's peer is bound to.
fn peer_name(fd: i32) -> Option<EndpointName> {
    let mut storage: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    let mut len = size_of::<libc::sockaddr_un>() as libc::socklen_t;
    // SAFETY: `storage` and `len` are live locals sized as the kernel expects.
    let rc = unsafe { libc::getpeername(fd, (&raw mut storage).cast(), &mut len) };
    if rc != 0 {
        return None;
    }
    // SAFETY: the kernel initialised `len` bytes of `storage`.
    let bytes =
        unsafe { std::slice::from_raw_parts((&raw const storage).cast::<u8>(), len as usize) };
    EndpointName::from_sockaddr(bytes)
}

/// Whether fd `fd` of thread `tid` has `O_NONBLOCK` set (from `/proc`'s fdinfo).
fn is_nonblocking(tid: Pid, fd: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{tid}/fdinfo/{fd}"))
        .ok()
        .and_then(|info| {
            let flags = info.lines().find_map(|l| l.strip_prefix("flags:"))?;
            i64::from_str_radix(flags.trim(), 8).ok()
        })
        .is_some_and(|flags| flags & i64::from(libc::O_NONBLOCK) != 0)
}

/// The capability bit that allows binding ports below 1024 (linux/capability.h).
const CAP_NET_BIND_SERVICE: u32 = 10;

/// Whether `process` may bind ports below 1024 (`CAP_NET_BIND_SERVICE`).
fn can_bind_service(process: Pid) -> bool {
    std::fs::read_to_string(format!("/proc/{process}/status"))
        .ok()
        .and_then(|status| {
            let caps = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
            u64::from_str_radix(caps.trim(), 16).ok()
        })
        .is_some_and(|caps| caps & (1 << CAP_NET_BIND_SERVICE) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_types_and_protocols_as_linux_judges_them() {
        assert_eq!(socket_proto(libc::SOCK_STREAM, 0), Ok(Proto::Tcp));
        assert_eq!(socket_proto(libc::SOCK_STREAM, libc::IPPROTO_TCP), Ok(Proto::Tcp));
        assert_eq!(socket_proto(libc::SOCK_DGRAM, libc::IPPROTO_UDP), Ok(Proto::Udp));
        assert_eq!(socket_proto(libc::SOCK_STREAM, libc::IPPROTO_UDP), Err(Errno::EPROTONOSUPPORT));
        assert_eq!(socket_proto(libc::SOCK_SEQPACKET, 0), Err(Errno::ESOCKTNOSUPPORT));
        assert_eq!(socket_proto(42, 0), Err(Errno::EINVAL));
    }

    #[test]
    fn addresses_are_checked_length_first() {
        let v4 = encode("127.0.0.1:80".parse().unwrap(), libc::AF_INET);
        assert_eq!(inet_addr(&v4, Family::V4, false), Ok("127.0.0.1:80".parse().unwrap()));
        assert_eq!(inet_addr(&v4[..15], Family::V4, false), Err(Errno::EINVAL));
        assert_eq!(inet_addr(&v4, Family::V6, false), Err(Errno::EINVAL));
        let v6 = encode("[::1]:80".parse().unwrap(), libc::AF_INET6);
        assert_eq!(inet_addr(&v6[..24], Family::V6, false), Ok("[::1]:80".parse().unwrap()));
        let mut unspec = vec![0u8; 16];
        assert_eq!(inet_addr(&unspec, Family::V4, true), Ok("0.0.0.0:0".parse().unwrap()));
        assert_eq!(inet_addr(&unspec, Family::V4, false), Err(Errno::EAFNOSUPPORT));
        unspec[4] = 1;
        assert_eq!(inet_addr(&unspec, Family::V4, true), Err(Errno::EAFNOSUPPORT));
    }

    #[test]
    fn loopback_and_own_addresses_are_local() {
        let stack = SmoltcpStack::mount("s", 0, [0; 4], vec!["10.0.0.2".parse().unwrap()]);
        for ip in ["127.0.0.1", "127.1.2.3", "::1", "10.0.0.2", "::ffff:10.0.0.2"] {
            assert!(stack.is_local(ip.parse().unwrap()), "{ip}");
        }
        assert!(!stack.is_local("10.0.0.3".parse().unwrap()));
        assert_eq!(
            stack.source_for("127.9.9.9".parse().unwrap()),
            "127.0.0.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            stack.source_for("::ffff:127.0.0.5".parse().unwrap()),
            "::ffff:127.0.0.1".parse::<IpAddr>().unwrap()
        );
    }
}
