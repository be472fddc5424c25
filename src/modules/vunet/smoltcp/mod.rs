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

mod accept;
mod bind;
mod carrier;
mod connect;
mod create;
mod datagram;
mod endpoint;
mod errqueue;
mod icmp;
mod listen;
mod names;
pub mod net;
mod options;
mod ports;
mod proc;
mod report;
mod sockopt;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, OwnedFd};
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
use carrier::{
    bind_to, carrier_events, clear_carrier_error, may_broadcast, peer_name, peer_shut_down,
    poll_now, temporary_listener,
};
use endpoint::{EndpointName, Namer, SockType};
pub use endpoint::{MAX_STACKS, is_carrier_address, session_id};
use options::SIOCOUTQNSD;
use ports::{Binding, PortTable, Proto, Scope};
use proc::{CAP_NET_RAW, can_bind_service, has_capability, is_nonblocking};
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

/// A call in flight whose exit the stack needs: each handler family's own
/// state, finished by its own code (`finish` only dispatches).
trait Pending {
    /// The call returned (`stop.result()`): complete it.
    fn finish(
        self: Box<Self>,
        stack: &mut SmoltcpStack,
        stop: &mut SyscallStop,
        claims: &mut Claims,
    );

    /// The thread ended before the call's exit: let go of what the call holds.
    fn abandon(self: Box<Self>, stack: &mut SmoltcpStack) {
        let _ = stack;
    }
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
    /// Calls in flight, by thread, whose exit the stack needs.
    pending: HashMap<Pid, Box<dyn Pending>>,
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
            pending: HashMap::new(),
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

    /// Records `pending` as what thread `tid`'s call awaits at its exit.
    fn await_exit(&mut self, tid: Pid, pending: impl Pending + 'static) -> Disposition {
        self.pending.insert(tid, Box::new(pending));
        Disposition::KernelThenFinish
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

    /// `ip` as a socket of `family` writes it (IPv4 as v4-mapped on IPv6 sockets).
    fn family_ip(&self, family: Family, ip: IpAddr) -> IpAddr {
        match (family, ip) {
            (Family::V6, IpAddr::V4(v4)) => IpAddr::V6(v4.to_ipv6_mapped()),
            _ => ip,
        }
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
        if let Some(pending) = self.pending.remove(&stop.tid) {
            pending.finish(self, stop, claims);
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
        if let Some(pending) = self.pending.remove(&tid) {
            pending.abandon(self);
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
