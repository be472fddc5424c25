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

mod datagram;
mod endpoint;
mod errqueue;
mod icmp;
pub mod net;
mod options;
mod ports;
mod report;
mod sockopt;
mod stream;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::rc::Rc;

use nix::errno::Errno;
use nix::unistd::Pid;

use super::sockaddr::{encode, read_in, write_out};
use super::{Claims, Stack};
use crate::fdtable::{FdTarget, SocketId};
use crate::modules::Disposition;
use crate::tracer::syscall::{
    Accept, AddrIn, AddrOut, Getsockopt, Listen, Mmsg, Msg, Recvfrom, Sendto, Setsockopt, Socket,
    UserPtr,
};
use crate::tracer::{Syscall, SyscallStop, TraceeMemory};
use datagram::{MsgNamePatch, NAME_ROOM};
use endpoint::{EndpointName, Namer, SockType};
pub use endpoint::{MAX_STACKS, is_carrier_address, session_id};
use options::SIOCOUTQNSD;
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

    /// The family of `ip`.
    fn of(ip: IpAddr) -> Self {
        if ip.is_ipv4() { Self::V4 } else { Self::V6 }
    }

    fn unspecified(self) -> IpAddr {
        match self {
            Self::V4 => Ipv4Addr::UNSPECIFIED.into(),
            Self::V6 => Ipv6Addr::UNSPECIFIED.into(),
        }
    }
}

/// What Linux remembers of a TCP connect beyond what the carrier shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ConnectState {
    /// Nothing more than the carrier shows.
    Idle,
    /// A non-blocking connect said `EINPROGRESS`: the next `connect` says 0.
    DoneUnreported,
    /// A non-blocking connect across the network said `EINPROGRESS` (at the
    /// instant given) and waits for its handshake: `connect` says `EALREADY`.
    InProgress(std::time::Instant),
    /// Failed (refused, or no route to the host); `SO_ERROR` or the next
    /// `connect` reports the error.
    Failed(Errno),
    /// Refused and reported: the carrier is spent (`connect` is `ECONNABORTED`).
    Refused,
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
    /// What Linux remembers of a TCP connect that the carrier does not.
    connect: ConnectState,
    /// The program shut down this socket's sending side.
    shut_wr: bool,
    listening: bool,
    options: Options,
    /// Not a program's socket: the supervisor's stand-in for a remote host.
    stand_in: bool,
    /// What the program's own `bind` fixed, which a UDP disconnect keeps.
    locks: BindLocks,
    /// ICMP errors queued for `recvmsg(MSG_ERRQUEUE)` (with `IP_RECVERR`).
    errors: std::collections::VecDeque<icmp::IcmpError>,
    /// The error raised on the carrier that `SO_ERROR` or the next call reports.
    error: Option<Errno>,
}

impl VSocket {
    /// Who answers option `(level, name)` on this socket (see [`sockopt::keeper`]).
    fn keeper(&self, level: i32, name: i32, getting: bool) -> Result<Keeper, Errno> {
        sockopt::keeper(self.proto, self.family == Family::V6, level, name, getting)
    }

    /// The emulated IP-level option that is `v4` on an IPv4 socket and `v6` (at
    /// `IPPROTO_IPV6`) on an IPv6 one, such as `IP_RECVERR` and `IPV6_RECVERR`.
    fn ip_option(&self, v4: i32, v6: i32) -> i32 {
        let (level, name) = match self.family {
            Family::V4 => (libc::IPPROTO_IP, v4),
            Family::V6 => (libc::IPPROTO_IPV6, v6),
        };
        self.options.get(level, name, self.family.raw(), self.proto)
    }

    fn new(family: Family, proto: Proto) -> Self {
        Self {
            family,
            proto,
            local: None,
            peer: None,
            name: None,
            source: None,
            connect: ConnectState::Idle,
            shut_wr: false,
            listening: false,
            options: Options::default(),
            stand_in: false,
            locks: BindLocks::default(),
            errors: std::collections::VecDeque::new(),
            error: None,
        }
    }
}

/// What a program's `bind` chose itself (Linux's `SOCK_BINDADDR_LOCK` and
/// `SOCK_BINDPORT_LOCK`): a UDP disconnect gives up the rest, as `__udp_disconnect`.
#[derive(Clone, Copy, Debug, Default)]
struct BindLocks {
    address: bool,
    port: bool,
}

impl BindLocks {
    /// The locks of a program's `bind(asked)`.
    fn of(asked: SocketAddr) -> Self {
        Self { address: !asked.ip().is_unspecified(), port: asked.port() != 0 }
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
    /// A bind of the carrier to `name`: the program's own `bind` of `asked`, or
    /// (`then` holding the program's call) one netvm slipped in before that call.
    Bind {
        socket: SocketId,
        asked: SocketAddr,
        local: SocketAddr,
        name: EndpointName,
        then: Option<Syscall>,
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
    /// A TCP connect across the network: the carrier connects to the dial's gate.
    Dial {
        socket: SocketId,
        blocking: bool,
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
    /// A datagram of `len` bytes sent to a carrier. A receiver connected elsewhere
    /// refuses it (EPERM) and one that just closed is gone (ECONNREFUSED); Linux
    /// sends the datagram all the same and the receiver drops it.
    Sent {
        socket: SocketId,
        len: i64,
    },
    /// `recvmsg` through a shadow header: by `scratch` to learn a datagram's
    /// sender, or with no name on a stream.
    RecvMsg {
        patch: MsgNamePatch,
        socket: SocketId,
        scratch: Option<u64>,
        /// The control buffer (address, size), when a TTL is to be appended.
        ttl_room: Option<(u64, usize)>,
    },
    /// `recvmmsg` whose headers' names netvm replaced, each as for `RecvMsg`.
    RecvMmsg {
        entries: Vec<(MsgNamePatch, Option<u64>)>,
        socket: SocketId,
    },
    /// `recvfrom` on a stream: Linux reports no address (length 0).
    RecvFromStream,
}

/// What the network side must let go of for a closed socket (see
/// `SmoltcpStack::settle_forgotten`).
#[derive(Debug)]
enum Forgotten {
    /// A socket's private end, connect under way and last TTL.
    Side(SocketId, EndpointName),
    /// A port no socket uses any more.
    Port(Proto, u16),
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
    /// The stack's network side, if an interface is plugged into a link.
    net: Option<net::NetHost>,
    /// Closed sockets whose network side is still to be let go of.
    forgotten: Vec<Forgotten>,
    /// The configured interfaces and routes, for `netvm status`.
    interfaces: Vec<net::InterfacePlan>,
    routes: Vec<net::RoutePlan>,
}

impl SmoltcpStack {
    /// The submodule's kind, as written in `modules.toml`.
    pub const KIND: &'static str = "smoltcp";

    /// Mounts stack number `index` of the session, called `name`, with no network:
    /// its own `addresses` and loopback only.
    pub fn mount(name: &str, index: usize, session: [u8; 4], addresses: Vec<IpAddr>) -> Self {
        Self {
            name: name.into(),
            namer: Namer::new(session, index),
            // Stacks of one session start their ephemeral ports apart, as separate
            // hosts would.
            ports: PortTable::new(
                u16::from_ne_bytes([session[0], session[1]]).wrapping_add(index as u16 * 7919),
            ),
            addresses,
            sockets: HashMap::new(),
            by_name: HashMap::new(),
            steps: HashMap::new(),
            net: None,
            forgotten: Vec::new(),
            interfaces: Vec::new(),
            routes: Vec::new(),
        }
    }

    /// Mounts stack number `index` with `interfaces` (those plugged into a link of
    /// `network` reach other hosts through it) and `routes`; `registry` is where
    /// the stack's own event sources are watched.
    pub fn mount_networked(
        name: &str,
        index: usize,
        session: [u8; 4],
        interfaces: &[net::InterfacePlan],
        routes: &[net::RoutePlan],
        network: &mut crate::modules::vunet::network::Network,
        registry: mio::Registry,
    ) -> Self {
        let addresses = interfaces.iter().flat_map(|i| i.addresses.iter().map(|a| a.0)).collect();
        let mut stack = Self::mount(name, index, session, addresses);
        let seed = u64::from_ne_bytes([
            session[0],
            session[1],
            session[2],
            session[3],
            0,
            0,
            0,
            index as u8,
        ]);
        stack.net = Some(net::NetHost::new(interfaces, routes, network, registry, seed));
        stack.interfaces = interfaces.to_vec();
        stack.routes = routes.to_vec();
        stack
    }

    /// Drops what the network side kept for socket `id` (carrier `name`): its
    /// private end, a connect under way, the TTL last seen.
    fn forget_network_side(&mut self, id: SocketId, name: EndpointName) {
        let Some(net) = self.net.as_mut() else {
            // The network side is at work (a round found the socket closed): later.
            self.forgotten.push(Forgotten::Side(id, name));
            return;
        };
        net.last_ttl.remove(&id);
        net.drop_dial(id);
        if let Some(private) = net.privates.remove(&name) {
            self.drop_stand_in(private.id);
        }
    }

    /// What was forgotten while the network side was at work, done now.
    fn settle_forgotten(&mut self) {
        for forgotten in std::mem::take(&mut self.forgotten) {
            match forgotten {
                Forgotten::Side(id, name) => self.forget_network_side(id, name),
                Forgotten::Port(proto, port) => self.close_network_port(proto, port),
            }
        }
    }

    /// Stops serving `port` on the network once no socket of the stack uses it.
    fn close_network_port(&mut self, proto: Proto, port: u16) {
        let Some(net) = self.net.as_mut() else {
            self.forgotten.push(Forgotten::Port(proto, port));
            return;
        };
        match proto {
            Proto::Tcp if !self.ports.is_listened(port) => net.unlisten(port),
            Proto::Udp if !self.ports.is_bound(proto, port) => net.close_udp(port),
            _ => {}
        }
    }

    /// Closes listener `id` (at `fd` of the stopped program) as Linux's
    /// `tcp_disconnect` does: no new connections, `accept` is `EINVAL`, the port is
    /// bound but no longer listened on. The connections waiting in its queue are
    /// ended (Linux resets them; their carriers see the end of the stream).
    fn stop_listening(&mut self, stop: &SyscallStop, fd: i32, id: SocketId) {
        let Some(socket) = self.sockets.get_mut(&id) else { return };
        socket.listening = false;
        if let Some(local) = socket.local {
            self.ports.unlisten(local.port(), id);
            self.close_network_port(Proto::Tcp, local.port());
        }
        let Ok(listener) = stop.copy_fd(fd) else { return };
        // The carrier's file may be blocking (its flags are the program's): accept
        // only what poll shows is there.
        while stream::poll_now(listener.as_raw_fd(), libc::POLLIN) & libc::POLLIN != 0 {
            let flags = nix::sys::socket::SockFlag::SOCK_CLOEXEC;
            match nix::sys::socket::accept4(listener.as_raw_fd(), flags) {
                Ok(connection) => drop(nix::unistd::close(connection)),
                Err(_) => break,
            }
        }
    }

    /// The raw ICMP sockets of `family`, by carrier name.
    fn raw_receivers(&self, family: Family) -> Vec<EndpointName> {
        self.sockets
            .values()
            .filter(|s| s.proto == Proto::Raw && s.family == family && !s.stand_in)
            .filter_map(|s| s.name)
            .collect()
    }

    /// Whether `ip` is one of this host's own addresses (loopback included).
    fn is_local(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_loopback() || self.addresses.contains(&ip)
    }

    /// Whether `ip` is an IPv4 broadcast address of this host: the limited
    /// broadcast, loopback's `127.255.255.255`, and each interface subnet's
    /// (as Linux's local routing table lists them).
    fn is_broadcast(&self, ip: IpAddr) -> bool {
        let IpAddr::V4(ip) = ip.to_canonical() else { return false };
        let subnet_broadcast = |(address, prefix): &(IpAddr, u8)| match address {
            IpAddr::V4(address) if *prefix < 31 => {
                let host_bits = u32::MAX >> prefix;
                u32::from(*address) | host_bits == u32::from(ip)
            }
            _ => false,
        };
        ip.is_broadcast()
            || ip == Ipv4Addr::new(127, 255, 255, 255)
            || self.interfaces.iter().flat_map(|i| &i.addresses).any(subnet_broadcast)
    }

    /// Whether a socket may bind `ip`: a wildcard, one of the host's own addresses,
    /// or a broadcast or multicast group (as `inet_addr_valid_or_nonlocal` allows);
    /// any address with `freebind` (`IP_FREEBIND`). A link-local multicast group
    /// needs a scope, which netvm does not take.
    fn bindable(&self, ip: IpAddr, freebind: bool) -> Result<(), Errno> {
        let ip = ip.to_canonical();
        match ip {
            _ if ip.is_unspecified() || self.is_local(ip) => Ok(()),
            IpAddr::V4(v4) if v4.is_multicast() || v4.is_broadcast() => Ok(()),
            IpAddr::V6(v6) if v6.is_multicast() && v6.segments()[0] & 0xff0f == 0xff02 => {
                Err(Errno::EINVAL)
            }
            IpAddr::V6(v6) if v6.is_multicast() => Ok(()),
            _ if freebind => Ok(()),
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
    /// is the program's own call to run next, if this bind is netvm's idea.
    fn bind_carrier(
        &mut self,
        stop: &mut SyscallStop,
        id: SocketId,
        local: SocketAddr,
        then: Option<Syscall>,
    ) -> Result<Disposition, Errno> {
        let proto = self.sockets.get(&id).ok_or(Errno::EBADF)?.proto;
        let name = self.namer.fresh();
        let port = self
            .take_port(id, name, local)
            .map_err(|e| implicit_bind_error(e, proto, then.as_ref()))?;
        let (asked, local) = (local, SocketAddr::new(local.ip(), port));
        let fd = stop.call().fd().ok_or(Errno::EBADF)?;
        let addr = stop.put_sealed(&name.sockaddr(), 0).inspect_err(|_| {
            self.ports.unbind(proto, port, id);
        })?;
        let addrlen = name.sockaddr().len() as u32;
        stop.rewrite(Syscall::Bind(AddrIn { fd, addr: UserPtr(addr), addrlen }));
        self.steps.insert(stop.tid, Step::Bind { socket: id, asked, local, name, then });
        Ok(Disposition::KernelThenFinish)
    }

    /// Enters socket `id`, with carrier `name`, in the port table at `local` (port
    /// 0: an ephemeral one); returns the port.
    fn take_port(
        &mut self,
        id: SocketId,
        name: EndpointName,
        local: SocketAddr,
    ) -> Result<u16, Errno> {
        let socket = self.sockets.get(&id).ok_or(Errno::EBADF)?;
        let binding = Binding {
            socket: id,
            name,
            scope: Scope::of(local.ip(), socket.options.v6only),
            reuse_addr: socket.options.reuse_addr,
            reuse_port: socket.options.reuse_port,
            listening: false,
        };
        let carrier = socket.proto.carrier();
        let range = ports::ephemeral_range(socket.options.get(
            libc::IPPROTO_IP,
            sockopt::IP_LOCAL_PORT_RANGE,
            socket.family.raw(),
            socket.proto,
        ));
        self.ports.bind(socket.proto, local.port(), range, binding, |name| name.is_held(carrier))
    }

    /// Gives a socket an implicit bind before the stopped call, which needs one:
    /// unbound, its carrier is bound (rewriting the call into that bind, and
    /// `Some`); a UDP socket whose disconnect gave up its port takes a new one at
    /// once.
    fn bind_implicitly(
        &mut self,
        stop: &mut SyscallStop,
        id: SocketId,
        ip: IpAddr,
    ) -> Result<Option<Disposition>, Errno> {
        let socket = &self.sockets[&id];
        let call = stop.call();
        match (socket.local, socket.name) {
            (None, _) => self.bind_carrier(stop, id, SocketAddr::new(ip, 0), Some(call)).map(Some),
            (Some(local), Some(name)) if local.port() == 0 && socket.proto.unhashes() => {
                let proto = socket.proto;
                self.retake_port(id, name, local)
                    .map_err(|e| implicit_bind_error(e, proto, Some(&call)))
                    .map(|()| None)
            }
            _ => Ok(None),
        }
    }

    /// Binds UDP socket `id`, whose carrier is named `name` already (its
    /// disconnect gave up its port), to `local` again: the table alone changes.
    fn retake_port(
        &mut self,
        id: SocketId,
        name: EndpointName,
        local: SocketAddr,
    ) -> Result<(), Errno> {
        let port = self.take_port(id, name, local)?;
        let socket = self.sockets.get_mut(&id).expect("taken a port above");
        socket.local = Some(SocketAddr::new(local.ip(), port));
        if let (Proto::Udp, Some(net)) = (socket.proto, self.net.as_mut()) {
            net.open_udp(port);
        }
        Ok(())
    }

    /// `socket()`: rewritten to create the carrier, whose fd the exit claims.
    fn socket(&mut self, stop: &mut SyscallStop) -> Result<Disposition, Errno> {
        let c = match stop.call() {
            Syscall::Socket(c) => c,
            Syscall::Socketpair(c) => {
                return Err(match c.domain {
                    libc::AF_INET | libc::AF_INET6 => Errno::EOPNOTSUPP,
                    _ => Errno::EAFNOSUPPORT,
                });
            }
            _ => return Err(Errno::EINVAL),
        };
        let family = match c.domain {
            libc::AF_INET => Family::V4,
            libc::AF_INET6 => Family::V6,
            _ => return Err(Errno::EAFNOSUPPORT),
        };
        let flags = c.ty & (libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC);
        let proto = socket_proto(family, c.ty & !flags, c.protocol, stop.process)?;
        let ty = proto.carrier() as i32 | flags;
        stop.rewrite(Syscall::Socket(Socket { domain: libc::AF_UNIX, ty, protocol: 0 }));
        self.steps.insert(stop.tid, Step::Create { family, proto });
        Ok(Disposition::KernelThenFinish)
    }

    /// A call on socket `id`, one of this stack's, by the handler of its family.
    fn on_call(&mut self, id: SocketId, stop: &mut SyscallStop) -> Result<Disposition, Errno> {
        match stop.call() {
            Syscall::Bind(c) => self.bind(stop, id, c),
            Syscall::Listen(c) => self.listen(stop, id, c),
            Syscall::Connect(c) => self.connect(stop, id, c),
            Syscall::Accept(c) => self.accept(stop, id, c),
            Syscall::Getsockname(c) => self.address(stop, id, c, false),
            Syscall::Getpeername(c) => self.address(stop, id, c, true),
            Syscall::Getsockopt(c) => self.getsockopt(stop, id, c),
            Syscall::Setsockopt(c) => self.setsockopt(stop, id, c),
            Syscall::Sendto(c) => self.sendto(stop, id, c),
            Syscall::Recvfrom(c) => self.recvfrom(stop, id, c),
            Syscall::Sendmsg(c) => self.sendmsg(stop, id, c),
            Syscall::Shutdown(c) if c.how != libc::SHUT_WR && self.sockets[&id].listening => {
                // Shutting a listener's receiving side closes it (`inet_shutdown`).
                self.stop_listening(stop, c.fd, id);
                Ok(Disposition::Return(0))
            }
            Syscall::Shutdown(c) => {
                let socket = self.sockets.get_mut(&id).expect("routed to an existing socket");
                // An unconnected carrier would shut down quietly; Linux refuses.
                if socket.peer.is_none() && !socket.listening {
                    return Err(Errno::ENOTCONN);
                }
                if c.how == libc::SHUT_WR || c.how == libc::SHUT_RDWR {
                    socket.shut_wr = true;
                }
                Ok(Disposition::Kernel)
            }
            Syscall::Recvmsg(c) => self.recvmsg(stop, id, c),
            Syscall::Sendmmsg(c) => self.sendmmsg(stop, id, c),
            Syscall::Recvmmsg(c) => self.recvmmsg(stop, id, c),
            Syscall::Ioctl(c) if [libc::TIOCOUTQ as u32, SIOCOUTQNSD].contains(&c.request) => {
                // Bytes not yet acknowledged (or not yet sent): on a stack's own
                // loopback the peer's kernel acknowledges at once, so none. A carrier
                // would count what the peer has not read.
                if self.sockets[&id].listening {
                    return Err(Errno::EINVAL);
                }
                stop.memory().write(c.arg, &0i32)?;
                Ok(Disposition::Return(0))
            }
            _ => Ok(Disposition::Kernel),
        }
    }

    fn finish_step(&mut self, stop: &mut SyscallStop, step: Step, claims: &mut Claims) {
        let ret = stop.result();
        match step {
            Step::Create { family, proto } => {
                if ret >= 0
                    && let Ok(FdTarget::Socket(id)) = claims.resolve(stop.tid, ret as i32)
                {
                    let mut socket = VSocket::new(family, proto);
                    if proto == Proto::Raw {
                        // A raw socket receives without ever binding: its carrier
                        // takes a name now, bound through a copy of the fd.
                        let name = self.namer.fresh();
                        let bound = stop.copy_fd(ret as i32).ok().and_then(|copy| {
                            let addr = nix::sys::socket::UnixAddr::new_abstract(&name.0).ok()?;
                            nix::sys::socket::bind(copy.as_raw_fd(), &addr).ok()
                        });
                        if bound.is_some() {
                            socket.name = Some(name);
                            socket.local = Some(SocketAddr::new(family.unspecified(), 0));
                            self.by_name.insert(name, id);
                        }
                    }
                    self.sockets.insert(id, socket);
                    claims.claim(id);
                }
            }
            Step::Bind { socket, asked, local, name, then } => {
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
                    if then.is_none() {
                        s.locks = BindLocks::of(asked);
                    }
                    self.by_name.insert(name, socket);
                    if let (Some(net), Proto::Udp) = (self.net.as_mut(), s.proto) {
                        net.open_udp(local.port());
                    }
                }
                if let Some(call) = then {
                    stop.restart(call.number());
                }
            }
            Step::Listen { socket, port } => {
                if ret == 0 {
                    if let Some(s) = self.sockets.get_mut(&socket) {
                        s.listening = true;
                        if let (Some(net), Some(local)) = (self.net.as_mut(), s.local) {
                            net.listen(local.ip(), port);
                        }
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
                    s.connect = ConnectState::DoneUnreported;
                }
            }
            Step::Dial { socket, blocking, source } => {
                let dialing = self.net.as_ref().is_some_and(|n| n.gate_of(socket).is_some());
                let family_source =
                    self.sockets.get(&socket).map(|s| self.family_ip(s.family, source));
                let Some(s) = self.sockets.get_mut(&socket) else { return };
                match ret {
                    0 => {
                        if let (Some(local), Some(ip)) = (s.local.as_mut(), family_source)
                            && local.ip().is_unspecified()
                        {
                            local.set_ip(ip);
                        }
                        if !blocking {
                            stop.set_result(-i64::from(libc::EINPROGRESS));
                            if dialing {
                                s.connect = ConnectState::InProgress(std::time::Instant::now());
                            } else if !matches!(s.connect, ConnectState::Failed(_)) {
                                s.connect = ConnectState::DoneUnreported;
                            }
                        }
                    }
                    // The gate closed: the connect failed, for the reason recorded.
                    r if r == -i64::from(libc::ECONNREFUSED) && !dialing => {
                        if let ConnectState::Failed(error) = s.connect {
                            stop.set_result(-(error as i64));
                        }
                        s.connect = ConnectState::Idle;
                        s.peer = None;
                    }
                    // Interrupted: the handshake goes on, as Linux's does.
                    _ => {}
                }
            }
            Step::Refused { socket, listener } => {
                drop(listener);
                if let Some(s) = self.sockets.get_mut(&socket) {
                    s.connect = ConnectState::Failed(Errno::ECONNREFUSED);
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
                self.translate_raised(stop, socket);
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
            Step::Sent { socket, len } => {
                self.translate_raised(stop, socket);
                let dropped = [libc::EPERM, libc::ECONNREFUSED, libc::EAGAIN];
                if dropped.iter().any(|e| ret == -i64::from(*e)) {
                    stop.set_result(len);
                }
            }
            Step::RecvMsg { patch, socket, scratch, ttl_room } => {
                self.translate_raised(stop, socket);
                let received = ret >= 0;
                let memory = stop.memory();
                let mut given = patch
                    .copy_back(&memory, false)
                    .and_then(|()| self.give_back_name(&memory, patch, socket, scratch, received));
                if let (true, Some(room), Ok(())) = (received, ttl_room, given) {
                    given = self.append_ttl(&memory, patch.msg, socket, room);
                }
                if let Err(e) = given {
                    stop.set_result(-(e as i64));
                }
            }
            Step::RecvMmsg { entries, socket } => {
                let memory = stop.memory();
                for (i, (patch, scratch)) in entries.into_iter().enumerate() {
                    let received = (i as i64) < ret;
                    if received {
                        let _ = patch.copy_back(&memory, true);
                    }
                    let _ = self.give_back_name(&memory, patch, socket, scratch, received);
                }
            }
            Step::RecvFromStream => {
                if let Syscall::Recvfrom(Recvfrom { addrlen, .. }) = stop.call()
                    && ret >= 0
                    && !addrlen.is_null()
                {
                    let _ = stop.memory().write(addrlen.0, &0u32);
                }
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
        answer(self.socket(stop))
    }

    fn on_socket(&mut self, id: SocketId, stop: &mut SyscallStop) -> Disposition {
        if !self.sockets.contains_key(&id) {
            return Disposition::Kernel;
        }
        answer(self.on_call(id, stop))
    }

    fn finish(&mut self, stop: &mut SyscallStop, claims: &mut Claims) {
        if let Some(step) = self.steps.remove(&stop.tid) {
            self.finish_step(stop, step, claims);
        }
    }

    fn addresses(&self) -> Vec<IpAddr> {
        self.addresses.clone()
    }

    fn service(
        &mut self,
        network: &mut crate::modules::vunet::network::Network,
        now: std::time::Instant,
        ready: &[std::os::fd::RawFd],
    ) -> crate::modules::vunet::Activity {
        self.serve_network(network, now, ready)
    }

    fn status(
        &self,
        network: &crate::modules::vunet::network::Network,
        status: &mut crate::modules::vunet::status::StackStatus,
    ) {
        self.fill_status(network, status);
    }

    fn thread_ended(&mut self, tid: Pid) {
        // A bind slipped in for it leaves a table entry nobody will confirm.
        if let Some(Step::Bind { socket, local, .. }) = self.steps.remove(&tid)
            && let Some(proto) = self.sockets.get(&socket).map(|s| s.proto)
        {
            self.ports.unbind(proto, local.port(), socket);
        }
    }

    fn forget(&mut self, sockets: &[SocketId]) {
        for id in sockets {
            if let Some(socket) = self.sockets.remove(id) {
                if let Some(name) = socket.name {
                    self.by_name.remove(&name);
                    self.forget_network_side(*id, name);
                }
                if let Some(local) = socket.local {
                    self.ports.unbind(socket.proto, local.port(), *id);
                    self.close_network_port(socket.proto, local.port());
                }
            }
        }
    }
}

/// The transport a `socket(AF_INET*, type, protocol)` asks for, or Linux's error.
///
/// Ping sockets are open to every user, as with `net.ipv4.ping_group_range` set
/// wide open (a virtual host's own policy). Raw sockets need `CAP_NET_RAW`, as on
/// Linux; netvm serves raw ICMP only.
fn socket_proto(family: Family, ty: i32, protocol: i32, process: Pid) -> Result<Proto, Errno> {
    let icmp = match family {
        Family::V4 => libc::IPPROTO_ICMP,
        Family::V6 => libc::IPPROTO_ICMPV6,
    };
    match (ty, protocol) {
        (libc::SOCK_STREAM, 0 | libc::IPPROTO_TCP) => Ok(Proto::Tcp),
        (libc::SOCK_DGRAM, 0 | libc::IPPROTO_UDP) => Ok(Proto::Udp),
        (libc::SOCK_DGRAM, p) if p == icmp => Ok(Proto::Icmp),
        (libc::SOCK_STREAM | libc::SOCK_DGRAM, _) => Err(Errno::EPROTONOSUPPORT),
        (libc::SOCK_RAW, _) if !stream::has_capability(process, stream::CAP_NET_RAW) => {
            Err(Errno::EPERM)
        }
        (libc::SOCK_RAW, p) if p == icmp => Ok(Proto::Raw),
        (libc::SOCK_RAW, _) => Err(Errno::EPROTONOSUPPORT),
        (0..=10, _) => Err(Errno::ESOCKTNOSUPPORT),
        _ => Err(Errno::EINVAL),
    }
}

/// The error of a bind that found no free port, as the call that needed it
/// reports it: `bind` and `listen` say `EADDRINUSE`, a TCP `connect`
/// `EADDRNOTAVAIL` (`__inet_hash_connect`), a datagram send or connect `EAGAIN`
/// (`inet_autobind`).
fn implicit_bind_error(e: Errno, proto: Proto, then: Option<&Syscall>) -> Errno {
    match then {
        _ if e != Errno::EADDRINUSE => e,
        None | Some(Syscall::Listen(_)) => e,
        Some(_) if proto == Proto::Tcp => Errno::EADDRNOTAVAIL,
        Some(_) => Errno::EAGAIN,
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

/// Clears the error a carrier holds (reading `SO_ERROR` does), once netvm has
/// reported the error Linux would have.
fn clear_carrier_error(stop: &SyscallStop, fd: i32) {
    if let Ok(copy) = stop.copy_fd(fd) {
        let _ = nix::sys::socket::getsockopt(&copy, nix::sys::socket::sockopt::SocketError);
    }
}

fn loopback(family: Family) -> IpAddr {
    match family {
        Family::V4 => Ipv4Addr::LOCALHOST.into(),
        Family::V6 => Ipv6Addr::LOCALHOST.into(),
    }
}

/// A handler's answer as the tracer takes it: an error is the call's result.
fn answer(handled: Result<Disposition, Errno>) -> Disposition {
    handled.unwrap_or_else(|e| Disposition::Return(-(e as i64)))
}

fn int_bytes(value: i32) -> Vec<u8> {
    value.to_ne_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_types_and_protocols_as_linux_judges_them() {
        let me = nix::unistd::getpid();
        let judge = |family, ty, protocol| socket_proto(family, ty, protocol, me);
        assert_eq!(judge(Family::V4, libc::SOCK_STREAM, 0), Ok(Proto::Tcp));
        assert_eq!(judge(Family::V4, libc::SOCK_STREAM, libc::IPPROTO_TCP), Ok(Proto::Tcp));
        assert_eq!(judge(Family::V6, libc::SOCK_DGRAM, libc::IPPROTO_UDP), Ok(Proto::Udp));
        assert_eq!(judge(Family::V4, libc::SOCK_DGRAM, libc::IPPROTO_ICMP), Ok(Proto::Icmp));
        assert_eq!(judge(Family::V6, libc::SOCK_DGRAM, libc::IPPROTO_ICMPV6), Ok(Proto::Icmp));
        assert_eq!(
            judge(Family::V6, libc::SOCK_DGRAM, libc::IPPROTO_ICMP),
            Err(Errno::EPROTONOSUPPORT)
        );
        assert_eq!(
            judge(Family::V4, libc::SOCK_STREAM, libc::IPPROTO_UDP),
            Err(Errno::EPROTONOSUPPORT)
        );
        assert_eq!(judge(Family::V4, libc::SOCK_SEQPACKET, 0), Err(Errno::ESOCKTNOSUPPORT));
        assert_eq!(judge(Family::V4, 42, 0), Err(Errno::EINVAL));
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
