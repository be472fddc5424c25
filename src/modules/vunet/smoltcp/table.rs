//! The socket table of one stack: what netvm knows of each virtual socket, the
//! carrier names they are bound to, and the port table. It is the one place
//! that changes a TCP connection's [`ConnectState`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::ops::{Index, IndexMut};

use nix::errno::Errno;
use nix::unistd::Pid;

use super::endpoint::EndpointName;
use super::icmp::IcmpError;
use super::inet::Family;
use super::ports::{self, Binding, PortTable, Proto, Scope};
use super::sockopt::{self, Keeper, Options};
use crate::fdtable::SocketId;
use crate::modules::vunet::stack::shrink_idle;

/// What Linux remembers of a TCP connect beyond what the carrier shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ConnectState {
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
pub(super) struct VSocket {
    pub(super) family: Family,
    pub(super) proto: Proto,
    /// The bound address (its IP may be a wildcard).
    pub(super) local: Option<SocketAddr>,
    /// The connected peer (set when `connect` starts, cleared if it fails).
    pub(super) peer: Option<SocketAddr>,
    /// The carrier's name, once bound.
    pub(super) name: Option<EndpointName>,
    /// The address it last sent from, when bound to a wildcard.
    pub(super) source: Option<IpAddr>,
    /// What Linux remembers of a TCP connect that the carrier does not (changed
    /// only by [`SocketTable::set_connect_state`]).
    connect: ConnectState,
    /// The program shut down this socket's sending side.
    pub(super) shut_wr: bool,
    /// Its receiving side is shut (by the program, or by a TCP connect that
    /// failed, as Linux's `tcp_done` shuts both): a TCP receive reads end of file.
    pub(super) shut_rd: bool,
    pub(super) listening: bool,
    /// The backlog of its last `listen`, capped at `somaxconn`.
    pub(super) backlog: u32,
    pub(super) options: Options,
    /// Not a program's socket: the supervisor's stand-in for a remote host.
    pub(super) stand_in: bool,
    /// What the program's own `bind` fixed, which a UDP disconnect keeps.
    pub(super) locks: BindLocks,
    /// ICMP errors queued for `recvmsg(MSG_ERRQUEUE)` (with `IP_RECVERR`).
    pub(super) errors: VecDeque<IcmpError>,
    /// The error raised on the carrier that `SO_ERROR` or the next call reports.
    pub(super) error: Option<Errno>,
    /// A raw socket's IP protocol (`SO_PROTOCOL`); 0 for the others.
    pub(super) raw_protocol: u8,
    /// The process that last connected it or sent with it to an address: who
    /// an uplink's audit log names for its flows.
    pub(super) sender: Option<Pid>,
    /// The ephemeral port a refused TCP connect took and gave back, which
    /// `getsockname` still shows until the next bind (Linux's `tcp_done` puts
    /// the port back but leaves `inet_sport`).
    pub(super) given_back_port: Option<u16>,
}

impl VSocket {
    /// A new, unbound socket.
    pub(super) fn new(family: Family, proto: Proto) -> Self {
        Self {
            family,
            proto,
            local: None,
            peer: None,
            name: None,
            source: None,
            connect: ConnectState::Idle,
            shut_wr: false,
            shut_rd: false,
            listening: false,
            backlog: 0,
            options: Options::default(),
            stand_in: false,
            locks: BindLocks::default(),
            errors: VecDeque::new(),
            error: None,
            raw_protocol: 0,
            sender: None,
            given_back_port: None,
        }
    }

    /// Shuts both sides, as Linux's `tcp_done` does when a TCP connect fails.
    pub(super) fn shut_down(&mut self) {
        self.shut_rd = true;
        self.shut_wr = true;
    }

    /// The address its datagrams leave from: its bound one, or for a wildcard
    /// the source it last sent from (in its canonical form).
    pub(super) fn sent_from(&self) -> Option<SocketAddr> {
        let local = self.local?;
        let ip = match self.source {
            Some(source) if local.ip().is_unspecified() => source,
            _ => local.ip(),
        };
        Some(SocketAddr::new(ip.to_canonical(), local.port()))
    }

    /// Whether it is a raw socket of ICMP (ICMPv6 for IPv6), whose packets go
    /// with the stack's own ICMP.
    pub(super) fn is_raw_icmp(&self) -> bool {
        self.proto == Proto::Raw && self.raw_protocol == self.family.icmp_protocol()
    }

    /// What Linux remembers of the socket's TCP connect.
    pub(super) fn connect_state(&self) -> ConnectState {
        self.connect
    }

    /// Who answers option `(level, name)` on this socket (see [`sockopt::keeper`]).
    pub(super) fn keeper(&self, level: i32, name: i32, getting: bool) -> Result<Keeper, Errno> {
        // ICMP's filter is a raw ICMP socket's alone.
        const ICMP_FILTER: (i32, i32) = (255, 1);
        const ICMP6_FILTER: (i32, i32) = (libc::IPPROTO_ICMPV6, 1);
        let filter = if self.family == Family::V4 { ICMP_FILTER } else { ICMP6_FILTER };
        if self.proto == Proto::Raw && !self.is_raw_icmp() && (level, name) == filter {
            return Err(Errno::EOPNOTSUPP);
        }
        sockopt::keeper(self.proto, self.family == Family::V6, level, name, getting)
    }

    /// The emulated IP-level option that is `v4` on an IPv4 socket and `v6` (at
    /// `IPPROTO_IPV6`) on an IPv6 one, such as `IP_RECVERR` and `IPV6_RECVERR`.
    pub(super) fn ip_option(&self, v4: i32, v6: i32) -> i32 {
        let (level, name) = match self.family {
            Family::V4 => (libc::IPPROTO_IP, v4),
            Family::V6 => (libc::IPPROTO_IPV6, v6),
        };
        self.options.get(level, name, self.family.raw(), self.proto)
    }
}

/// What a program's `bind` chose itself (Linux's `SOCK_BINDADDR_LOCK` and
/// `SOCK_BINDPORT_LOCK`): a UDP disconnect gives up the rest, as `__udp_disconnect`.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct BindLocks {
    pub(super) address: bool,
    pub(super) port: bool,
}

impl BindLocks {
    /// The locks of a program's `bind(asked)`.
    pub(super) fn of(asked: SocketAddr) -> Self {
        Self { address: !asked.ip().is_unspecified(), port: asked.port() != 0 }
    }
}

/// The virtual sockets of one stack, by kernel identity and by carrier name, and
/// the ports they hold.
#[derive(Debug)]
pub(super) struct SocketTable {
    sockets: HashMap<SocketId, VSocket>,
    by_name: HashMap<EndpointName, SocketId>,
    /// The raw sockets among them: every ICMP packet in goes to each, and
    /// finding them must not cost a walk through every socket.
    raw: HashSet<SocketId>,
    /// The bound ports, with Linux's rules.
    pub(super) ports: PortTable,
}

impl SocketTable {
    /// An empty table whose first ephemeral port `seed` picks.
    pub(super) fn new(seed: u16) -> Self {
        Self {
            sockets: HashMap::new(),
            by_name: HashMap::new(),
            raw: HashSet::new(),
            ports: PortTable::new(seed),
        }
    }

    /// Whether socket `id` is the stack's.
    pub(super) fn contains(&self, id: SocketId) -> bool {
        self.sockets.contains_key(&id)
    }

    /// Socket `id`, if it is the stack's.
    pub(super) fn get(&self, id: SocketId) -> Option<&VSocket> {
        self.sockets.get(&id)
    }

    /// Socket `id`, if it is the stack's, to change.
    pub(super) fn get_mut(&mut self, id: SocketId) -> Option<&mut VSocket> {
        self.sockets.get_mut(&id)
    }

    /// Every socket, stand-ins included.
    pub(super) fn iter(&self) -> impl Iterator<Item = (SocketId, &VSocket)> {
        self.sockets.iter().map(|(id, socket)| (*id, socket))
    }

    /// Records socket `id`.
    pub(super) fn insert(&mut self, id: SocketId, socket: VSocket) {
        if socket.proto == Proto::Raw && !socket.stand_in {
            self.raw.insert(id);
        }
        self.sockets.insert(id, socket);
    }

    /// Forgets socket `id` and its carrier's name (its ports are the caller's).
    pub(super) fn remove(&mut self, id: SocketId) -> Option<VSocket> {
        let socket = self.sockets.remove(&id)?;
        self.raw.remove(&id);
        if let Some(name) = socket.name {
            self.by_name.remove(&name);
        }
        Some(socket)
    }

    /// Gives back the room of many sockets gone.
    pub(super) fn shrink_idle(&mut self) {
        shrink_idle(&mut self.sockets);
        shrink_idle(&mut self.by_name);
        shrink_idle(&mut self.raw);
        self.ports.shrink_idle();
    }

    /// Records that socket `id`'s carrier is bound to `name`.
    pub(super) fn name_carrier(&mut self, id: SocketId, name: EndpointName) {
        if let Some(socket) = self.sockets.get_mut(&id) {
            socket.name = Some(name);
            self.by_name.insert(name, id);
        }
    }

    /// The socket whose carrier is bound to `name`.
    pub(super) fn named(&self, name: &EndpointName) -> Option<SocketId> {
        self.by_name.get(name).copied()
    }

    /// Changes what Linux remembers of socket `id`'s TCP connect: the one place
    /// that does, so that each transition is traced.
    pub(super) fn set_connect_state(&mut self, id: SocketId, to: ConnectState) {
        let Some(socket) = self.sockets.get_mut(&id) else { return };
        if socket.connect != to {
            log::trace!("socket {id}: connect {:?} -> {to:?}", socket.connect);
        }
        if let ConnectState::Failed(_) = to {
            socket.shut_down();
        }
        socket.connect = to;
    }

    /// Records the supervisor's socket `id`, bound to `name`, as a stand-in for
    /// the remote host at `addr` (once; later calls change nothing), so that
    /// `recvfrom`, `accept` and `getpeername` report the remote host.
    pub(super) fn record_stand_in(
        &mut self,
        id: SocketId,
        name: EndpointName,
        proto: Proto,
        addr: SocketAddr,
    ) {
        if self.by_name.contains_key(&name) {
            return;
        }
        let mut stand_in = VSocket::new(Family::of(addr.ip()), proto);
        stand_in.local = Some(addr);
        stand_in.name = Some(name);
        stand_in.stand_in = true;
        self.sockets.insert(id, stand_in);
        self.by_name.insert(name, id);
    }

    /// The raw sockets (stand-ins aside).
    pub(super) fn raw_sockets(&self) -> impl Iterator<Item = (SocketId, &VSocket)> {
        self.raw
            .iter()
            .filter_map(|id| Some((*id, self.sockets.get(id)?)))
            .filter(|(_, s)| s.proto == Proto::Raw && !s.stand_in)
    }

    /// The raw sockets of `family` and IP protocol `protocol`, by carrier name.
    pub(super) fn raw_receivers(&self, family: Family, protocol: u8) -> Vec<EndpointName> {
        self.raw_sockets()
            .filter(|(_, s)| s.family == family && s.raw_protocol == protocol)
            .filter_map(|(_, s)| s.name)
            .collect()
    }

    /// Socket `id`'s `SO_REUSEADDR` or `SO_REUSEPORT` changed: its binding, if
    /// it has one, is judged by the new flags.
    pub(super) fn reuse_changed(&mut self, id: SocketId) {
        let Some(socket) = self.sockets.get(&id) else { return };
        let Some(local) = socket.local.filter(|l| l.port() != 0) else { return };
        let reuse = (socket.options.reuse_addr, socket.options.reuse_port);
        self.ports.set_reuse(socket.proto, local.port(), id, reuse);
    }

    /// Enters socket `id`, with carrier `name`, in the port table at `local` (port
    /// 0: an ephemeral one); returns the port.
    pub(super) fn take_port(
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
}

impl Index<SocketId> for SocketTable {
    type Output = VSocket;

    /// Socket `id`, which a call was routed to because it is the stack's.
    fn index(&self, id: SocketId) -> &VSocket {
        self.sockets.get(&id).expect("routed to an existing socket")
    }
}

impl IndexMut<SocketId> for SocketTable {
    fn index_mut(&mut self, id: SocketId) -> &mut VSocket {
        self.sockets.get_mut(&id).expect("routed to an existing socket")
    }
}
