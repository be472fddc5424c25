//! The connection calls of a `smoltcp` stack: `bind`, `listen`, `connect`,
//! `accept`, `getsockname` and `getpeername`, and what `accept` finishes.

use super::*;

impl SmoltcpStack {
    pub(super) fn bind(
        &mut self,
        stop: &mut SyscallStop,
        id: SocketId,
        c: AddrIn,
    ) -> Result<Disposition, Errno> {
        let socket = &self.sockets[&id];
        let addr = inet_addr(&read_in(&stop.memory(), c.addr, c.addrlen)?, socket.family, true)?;
        if socket.proto == Proto::Raw {
            // A raw socket's bind only picks its local address; its carrier
            // already has its name.
            self.bindable(addr.ip(), socket.options.freebind())?;
            let socket = self.sockets.get_mut(&id).expect("checked above");
            socket.local = Some(SocketAddr::new(addr.ip(), 0));
            return Ok(Disposition::Return(0));
        }
        // A disconnect may have given up the port (`inet_num` 0): bind again.
        let released = socket.local.is_some_and(|l| l.port() == 0) && socket.proto.unhashes();
        if socket.local.is_some() && !released {
            return Err(Errno::EINVAL);
        }
        if socket.options.v6only
            && addr.ip().to_canonical().is_ipv4()
            && socket.family == Family::V6
        {
            return Err(Errno::EINVAL);
        }
        self.bindable(addr.ip(), socket.options.freebind())?;
        if addr.port() != 0 && addr.port() < 1024 && !can_bind_service(stop.process) {
            return Err(Errno::EACCES);
        }
        if let IpAddr::V6(v6) = addr.ip() {
            // Linux makes a socket bound to a specific IPv6 address IPv6-only.
            if !v6.is_unspecified() && v6.to_ipv4_mapped().is_none() {
                self.sockets.get_mut(&id).expect("checked above").options.v6only = true;
            }
        }
        let Some(name) = self.sockets[&id].name.filter(|_| released) else {
            return self.bind_carrier(stop, id, addr, None);
        };
        self.retake_port(id, name, addr)?;
        self.sockets.get_mut(&id).expect("bound above").locks = BindLocks::of(addr);
        Ok(Disposition::Return(0))
    }

    pub(super) fn listen(
        &mut self,
        stop: &mut SyscallStop,
        id: SocketId,
        c: Listen,
    ) -> Result<Disposition, Errno> {
        let socket = &self.sockets[&id];
        if socket.proto != Proto::Tcp {
            return Err(Errno::EOPNOTSUPP);
        }
        // Linux TCP never refuses a connection for a full backlog: the SYN is
        // retried until there is room. An AF_UNIX connect to a full listener fails
        // at once (EAGAIN) instead, so carriers listen with the largest backlog the
        // kernel allows (net.core.somaxconn caps it) and connections queue.
        stop.rewrite(Syscall::Listen(Listen { backlog: CARRIER_BACKLOG, ..c }));
        if socket.listening {
            return Ok(Disposition::Kernel);
        }
        if socket.peer.is_some() {
            return Err(Errno::EINVAL);
        }
        let Some(local) = socket.local else {
            // Linux binds an unbound listener to the wildcard and an ephemeral port.
            let any = SocketAddr::new(socket.family.unspecified(), 0);
            return self.bind_carrier(stop, id, any, Some(Syscall::Listen(c)));
        };
        self.ports.listen(local.port(), id, |name| name.is_held(SockType::Stream))?;
        self.steps.insert(stop.tid, Step::Listen { socket: id, port: local.port() });
        Ok(Disposition::KernelThenFinish)
    }

    pub(super) fn connect(
        &mut self,
        stop: &mut SyscallStop,
        id: SocketId,
        c: AddrIn,
    ) -> Result<Disposition, Errno> {
        let socket = &self.sockets[&id];
        let bytes = read_in(&stop.memory(), c.addr, c.addrlen)?;
        if bytes.len() < 2 {
            return Err(Errno::EINVAL);
        }
        if u16::from_ne_bytes([bytes[0], bytes[1]]) == libc::AF_UNSPEC as u16 {
            return Ok(self.disconnect(stop, c.fd, id));
        }
        let state = socket.connect;
        let set_state = |stack: &mut Self, to| {
            stack.sockets.get_mut(&id).expect("checked above").connect = to;
        };
        match state {
            ConnectState::DoneUnreported => {
                set_state(self, ConnectState::Idle);
                return Ok(Disposition::Return(0));
            }
            ConnectState::Failed(error) => {
                set_state(self, ConnectState::Refused);
                clear_carrier_error(stop, c.fd);
                return Err(error);
            }
            ConnectState::InProgress(_) => return Err(Errno::EALREADY),
            ConnectState::Refused => return Err(Errno::ECONNABORTED),
            ConnectState::Idle => {}
        }
        if socket.proto == Proto::Tcp && (socket.peer.is_some() || socket.listening) {
            return Err(Errno::EISCONN);
        }

        let mut to = inet_addr(&bytes, socket.family, false)?;
        if to.ip().is_unspecified() {
            // Linux connects to the unspecified address through loopback.
            to.set_ip(loopback(socket.family));
        }
        if socket.family == Family::V6 && socket.options.v6only && to.ip().to_canonical().is_ipv4()
        {
            return Err(Errno::ENETUNREACH);
        }
        if socket.proto == Proto::Tcp
            && (to.ip().to_canonical().is_multicast() || self.is_broadcast(to.ip()))
        {
            // TCP talks to one host.
            return Err(Errno::ENETUNREACH);
        }
        if self.is_broadcast(to.ip()) && !super::datagram::may_broadcast(stop) {
            return Err(Errno::EACCES);
        }
        // A ping socket connected to the host itself is answered by the host, as
        // one connected to another host: through its private end.
        if !self.is_local(to.ip()) || socket.proto == Proto::Icmp {
            return self.connect_remote(stop, id, c, to);
        }
        let source = self.source_for(to.ip());
        let proto = socket.proto;
        let receiver = match (self.live_receiver(proto, to), proto) {
            (Some(receiver), _) => receiver,
            (None, Proto::Tcp) => return self.refuse(stop, id, c),
            // UDP connects to a silent port all the same. The carrier is connected
            // to a private end, which answers what is sent there as the host
            // would: with a port unreachable.
            (None, _) => return self.connect_remote(stop, id, c, to),
        };
        if let Some(bind) = self.bind_implicitly(stop, id, source)? {
            return Ok(bind);
        }
        let nonblocking = is_nonblocking(stop.tid, c.fd);
        connect_carrier(stop, c, receiver)?;
        if let Some(socket) = self.sockets.get_mut(&id) {
            socket.peer = Some(to);
        }
        self.steps.insert(stop.tid, Step::Connect { socket: id, nonblocking, source });
        Ok(Disposition::KernelThenFinish)
    }

    /// A connect to another host, through the stack's network: TCP dials (see
    /// [`net::NetHost::dial`]); a datagram socket's carrier is connected to the
    /// remote's stand-in.
    fn connect_remote(
        &mut self,
        stop: &mut SyscallStop,
        id: SocketId,
        c: AddrIn,
        to: SocketAddr,
    ) -> Result<Disposition, Errno> {
        let ip = to.ip().to_canonical();
        let route = match self.net.as_ref().and_then(|n| n.route(ip)) {
            _ if self.is_local(ip) => net::Route { iface: 0, source: self.source_for(ip) },
            Some(route) => route,
            None => return Err(Errno::ENETUNREACH),
        };
        let source = self.family_ip(self.sockets[&id].family, route.source);
        if let Some(bind) = self.bind_implicitly(stop, id, source)? {
            return Ok(bind);
        }
        let socket = &self.sockets[&id];
        let local = socket.local.ok_or(Errno::EINVAL)?;
        let proto = socket.proto;
        let target = if proto == Proto::Tcp {
            let blocking = !is_nonblocking(stop.tid, c.fd);
            let net = self.net.as_mut().expect("routed above");
            let gate = match net.gate_of(id) {
                // A connect under way: a blocking one waits for it again.
                Some(_) if !blocking => return Err(Errno::EALREADY),
                Some(gate) => gate,
                None => {
                    let gate = self.namer.fresh();
                    let from = SocketAddr::new(route.source, local.port());
                    let to = SocketAddr::new(to.ip().to_canonical(), to.port());
                    net.dial(id, route, from, to, gate, blocking)?;
                    gate
                }
            };
            self.steps.insert(stop.tid, Step::Dial { socket: id, blocking, source: route.source });
            gate
        } else {
            let port = if proto == Proto::Udp { to.port() } else { 0 };
            let remote = (proto, SocketAddr::new(to.ip().to_canonical(), port));
            let carrier = self.sockets[&id].name;
            let name = carrier
                .and_then(|carrier| self.private_end(carrier, remote))
                .ok_or(Errno::ENETUNREACH)?;
            self.steps.insert(
                stop.tid,
                Step::Connect { socket: id, nonblocking: false, source: route.source },
            );
            name
        };
        connect_carrier(stop, c, target)?;
        if let Some(socket) = self.sockets.get_mut(&id) {
            socket.peer = Some(to);
        }
        Ok(Disposition::KernelThenFinish)
    }

    /// `ip` as a socket of `family` writes it (IPv4 as v4-mapped on IPv6 sockets).
    pub(super) fn family_ip(&self, family: Family, ip: IpAddr) -> IpAddr {
        match (family, ip) {
            (Family::V6, IpAddr::V4(v4)) => IpAddr::V6(v4.to_ipv6_mapped()),
            _ => ip,
        }
    }

    /// A TCP connect that nobody listens for. Blocking, it is `ECONNREFUSED` at once,
    /// as on Linux. Non-blocking, Linux says `EINPROGRESS` and the refusal arrives
    /// later, as `POLLERR|POLLHUP` and `SO_ERROR`. The carrier is given that state
    /// natively: it connects to a listener netvm makes for the purpose, which is
    /// closed at the call's exit without accepting; the kernel then marks the
    /// carrier failed and shut down, so every readiness API sees the refusal.
    pub(super) fn refuse(
        &mut self,
        stop: &mut SyscallStop,
        id: SocketId,
        c: AddrIn,
    ) -> Result<Disposition, Errno> {
        if !is_nonblocking(stop.tid, c.fd) {
            return Err(Errno::ECONNREFUSED);
        }
        let name = self.namer.fresh();
        let listener = temporary_listener(&name).map_err(|_| Errno::ECONNREFUSED)?;
        connect_carrier(stop, c, name)?;
        self.steps.insert(stop.tid, Step::Refused { socket: id, listener });
        Ok(Disposition::KernelThenFinish)
    }

    pub(super) fn disconnect(&mut self, stop: &SyscallStop, fd: i32, id: SocketId) -> Disposition {
        let socket = self.sockets.get_mut(&id).expect("routed to an existing socket");
        socket.peer = None;
        if let (true, Some(local)) = (socket.proto.unhashes(), socket.local) {
            // What the program's bind did not fix is given up (`__udp_disconnect`).
            let ip = if socket.locks.address { local.ip() } else { socket.family.unspecified() };
            let port = if socket.locks.port { local.port() } else { 0 };
            let proto = socket.proto;
            socket.local = Some(SocketAddr::new(ip, port));
            socket.source = None;
            if port == 0 {
                self.ports.unbind(proto, local.port(), id);
                self.close_network_port(proto, local.port());
            }
            return Disposition::Kernel;
        }
        match socket.proto {
            // The carrier dissolves its association natively with AF_UNSPEC.
            Proto::Udp | Proto::Icmp | Proto::Raw => Disposition::Kernel,
            Proto::Tcp => {
                // A listener stops listening; a connection is not aborted (the
                // carrier cannot be), see carrier_unspec_connected.py.
                if socket.listening {
                    self.stop_listening(stop, fd, id);
                }
                Disposition::Return(0)
            }
        }
    }

    pub(super) fn accept(
        &mut self,
        stop: &mut SyscallStop,
        id: SocketId,
        c: Accept,
    ) -> Result<Disposition, Errno> {
        let socket = &self.sockets[&id];
        if socket.proto != Proto::Tcp {
            return Err(Errno::EOPNOTSUPP);
        }
        if !socket.listening {
            return Err(Errno::EINVAL);
        }
        let room = if c.addr.is_null() {
            None
        } else {
            match stop.memory().read::<i32>(c.addrlen.0)? {
                room if room >= 0 => Some(room),
                _ => return Err(Errno::EINVAL),
            }
        };
        self.steps.insert(stop.tid, Step::Accept { listener: id, room });
        Ok(Disposition::KernelThenFinish)
    }

    pub(super) fn address(
        &self,
        stop: &SyscallStop,
        id: SocketId,
        c: AddrOut,
        peer: bool,
    ) -> Result<Disposition, Errno> {
        let socket = &self.sockets[&id];
        let addr = if peer {
            // Linux reports a peer only with a port: a connected ping or raw
            // socket has none (`inet_getname`).
            if matches!(socket.proto, Proto::Icmp | Proto::Raw) {
                return Err(Errno::ENOTCONN);
            }
            match socket.peer {
                Some(addr) if !socket.listening && !self.connection_over(stop, socket) => addr,
                _ => return Err(Errno::ENOTCONN),
            }
        } else {
            socket.local.unwrap_or(SocketAddr::new(socket.family.unspecified(), 0))
        };
        let bytes = encode(addr, socket.family.raw());
        write_out(&stop.memory(), c.addr, c.addrlen, &bytes)?;
        Ok(Disposition::Return(0))
    }

    /// Whether the peer of the carrier at `fd` has shut down its sending side
    /// (the carrier polls `POLLRDHUP`).
    pub(super) fn peer_shut_down(&self, stop: &SyscallStop, fd: i32) -> bool {
        carrier_events(stop, fd, libc::POLLRDHUP) & libc::POLLRDHUP != 0
    }

    /// Whether a TCP connection has ended as Linux counts it (state CLOSE): a reset
    /// came (the carrier has an error), or both sides shut down writing (the
    /// carrier is shut down both ways after this side's own `SHUT_WR`). A peer's
    /// clean close alone leaves Linux in CLOSE_WAIT, still connected.
    pub(super) fn connection_over(&self, stop: &SyscallStop, socket: &VSocket) -> bool {
        let Some(fd) = stop.call().fd() else { return false };
        if socket.proto != Proto::Tcp {
            return false;
        }
        let revents = carrier_events(stop, fd, 0);
        revents & libc::POLLERR != 0 || (revents & libc::POLLHUP != 0 && socket.shut_wr)
    }

    /// A connection was accepted on `listener` as fd `fd`: record the new socket
    /// and tell the program its peer's virtual address.
    pub(super) fn finish_accept(
        &mut self,
        stop: &mut SyscallStop,
        listener: SocketId,
        fd: i32,
        room: Option<i32>,
        claims: &mut Claims,
    ) {
        let Ok(FdTarget::Socket(id)) = claims.resolve(stop.tid, fd) else {
            return;
        };
        let Some(listening) = self.sockets.get(&listener) else {
            return;
        };
        let mut accepted = VSocket::new(listening.family, Proto::Tcp);
        accepted.options = listening.options.clone();
        let copy = stop.copy_fd(fd).ok();
        if let (Some(copy), Syscall::Accept(c)) = (&copy, stop.call())
            && let Ok(listener_copy) = stop.copy_fd(c.fd)
        {
            inherit_socket_options(listener_copy.as_raw_fd(), copy.as_raw_fd());
        }
        // The carrier's peer is the connecting carrier, bound to a name of ours.
        let connector = copy
            .and_then(|copy| peer_name(copy.as_raw_fd()))
            .and_then(|name| self.by_name.get(&name))
            .and_then(|id| self.sockets.get(id));
        if let Some(connector) = connector {
            accepted.local = connector.peer;
            // The connector's own address may still be its wildcard bind (its
            // connect's exit can come after this accept's): use the source it
            // connects from.
            accepted.peer =
                connector.local.map(|local| match (local.ip().is_unspecified(), connector.peer) {
                    (true, Some(to)) => SocketAddr::new(self.source_for(to.ip()), local.port()),
                    _ => local,
                });
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

/// Points the program's `connect` `c` at the carrier named `to`.
fn connect_carrier(stop: &mut SyscallStop, c: AddrIn, to: EndpointName) -> Result<(), Errno> {
    let sockaddr = to.sockaddr();
    let addr = UserPtr(stop.put_sealed(&sockaddr, 0)?);
    stop.rewrite(Syscall::Connect(AddrIn { addr, addrlen: sockaddr.len() as u32, ..c }));
    Ok(())
}

/// What a poll of the carrier at fd `fd` of the stopped program reports now, for
/// `events` (`POLLERR` and `POLLHUP` always); nothing if it cannot be polled.
fn carrier_events(stop: &SyscallStop, fd: i32, events: libc::c_short) -> libc::c_short {
    stop.copy_fd(fd).map_or(0, |copy| poll_now(copy.as_raw_fd(), events))
}

/// What a poll of the supervisor's fd `fd` reports now, for `events` (`POLLERR`
/// and `POLLHUP` always).
pub(super) fn poll_now(fd: std::os::fd::RawFd, events: libc::c_short) -> libc::c_short {
    let mut poll = libc::pollfd { fd, events, revents: 0 };
    // SAFETY: one live pollfd, no timeout.
    let ready = unsafe { libc::poll(&mut poll, 1, 0) };
    if ready == 1 { poll.revents } else { 0 }
}

/// A listening stream socket bound to `name`, in the supervisor.
pub(super) fn temporary_listener(name: &EndpointName) -> Result<std::os::fd::OwnedFd, Errno> {
    use nix::sys::socket::{AddressFamily, Backlog, SockFlag, UnixAddr, bind, listen, socket};
    let listener = socket(AddressFamily::Unix, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)?;
    bind(listener.as_raw_fd(), &UnixAddr::new_abstract(&name.0)?)?;
    listen(&listener, Backlog::new(1)?)?;
    Ok(listener)
}

/// `SOL_SOCKET` options a TCP socket accepted by Linux inherits from its listener
/// (it is a copy of it) but an `AF_UNIX` carrier does not.
pub(super) const INHERITED_OPTIONS: [libc::c_int; 8] = [
    libc::SO_KEEPALIVE,
    libc::SO_OOBINLINE,
    libc::SO_RCVLOWAT,
    libc::SO_RCVTIMEO,
    libc::SO_SNDTIMEO,
    libc::SO_LINGER,
    libc::SO_RCVBUF,
    libc::SO_SNDBUF,
];

/// Copies the [`INHERITED_OPTIONS`] from a listening carrier to an accepted one.
pub(super) fn inherit_socket_options(listener: i32, accepted: i32) {
    for option in INHERITED_OPTIONS {
        // Room for the largest of them (a timeval).
        let mut value = [0u8; 16];
        let mut len = value.len() as libc::socklen_t;
        // SAFETY: `value` and `len` are live locals of the sizes passed.
        let got = unsafe {
            libc::getsockopt(
                listener,
                libc::SOL_SOCKET,
                option,
                value.as_mut_ptr().cast(),
                &mut len,
            )
        };
        if got != 0 {
            continue;
        }
        if matches!(option, libc::SO_RCVBUF | libc::SO_SNDBUF) {
            // The kernel reports twice what was set, and doubles what is set.
            let size = i32::from_ne_bytes(value[..4].try_into().expect("4 bytes")) / 2;
            value[..4].copy_from_slice(&size.to_ne_bytes());
        }
        // SAFETY: passes `len` initialised bytes of `value`, as the kernel gave them.
        unsafe {
            libc::setsockopt(accepted, libc::SOL_SOCKET, option, value.as_ptr().cast(), len);
        }
    }
}

/// The carrier name a connected `AF_UNIX` socket's peer is bound to.
pub(super) fn peer_name(fd: i32) -> Option<EndpointName> {
    // SAFETY: sockaddr_un is plain data, valid when zeroed.
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
pub(super) fn is_nonblocking(tid: Pid, fd: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{tid}/fdinfo/{fd}"))
        .ok()
        .and_then(|info| {
            let flags = info.lines().find_map(|l| l.strip_prefix("flags:"))?;
            i64::from_str_radix(flags.trim(), 8).ok()
        })
        .is_some_and(|flags| flags & i64::from(libc::O_NONBLOCK) != 0)
}

/// The capability bit that allows binding ports below 1024 (linux/capability.h).
pub(super) const CAP_NET_BIND_SERVICE: u32 = 10;

/// The capability bit that allows raw sockets (linux/capability.h).
pub(super) const CAP_NET_RAW: u32 = 13;

/// Whether `process` may bind ports below 1024 (`CAP_NET_BIND_SERVICE`).
pub(super) fn can_bind_service(process: Pid) -> bool {
    has_capability(process, CAP_NET_BIND_SERVICE)
}

/// Whether `process` has capability `bit` in its effective set.
pub(super) fn has_capability(process: Pid, bit: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{process}/status"))
        .ok()
        .and_then(|status| {
            let caps = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
            u64::from_str_radix(caps.trim(), 16).ok()
        })
        .is_some_and(|caps| caps & (1 << bit) != 0)
}

/// The backlog every listening carrier gets (see `listen`).
pub(super) const CARRIER_BACKLOG: i32 = 65535;
