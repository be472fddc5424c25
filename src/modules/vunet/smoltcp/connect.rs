//! `connect`: to a socket of the stack itself, the carrier connects to the
//! receiver's carrier; to another host, TCP dials through the network (the
//! carrier waits at a gate) and a datagram carrier connects to a private end
//! standing for the remote; to nobody, TCP is refused as Linux refuses it.
//! A connect to `AF_UNSPEC` disconnects. `shutdown`, which ends a connection
//! (or a listener), is here too.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::OwnedFd;
use std::time::Instant;

use nix::errno::Errno;
use nix::unistd::Pid;

use super::carrier::{clear_carrier_error, is_nonblocking, may_broadcast, temporary_listener};
use super::endpoint::EndpointName;
use super::inet::{Family, inet_addr, unspecified_as_loopback};
use super::net::Route;
use super::ports::Proto;
use super::stack::{Pending, SmoltcpStack};
use super::table::ConnectState;
use crate::fdtable::SocketId;
use crate::modules::{Disposition, Handled};
use crate::modules::vunet::Claims;
use crate::modules::vunet::sockaddr::read_in;
use crate::syscall::{AddrIn, Shutdown, UserPtr};
use crate::syscall::Syscall;
use crate::tracer::SyscallStop;

impl SmoltcpStack {
    /// `connect` of socket `id`: reports what an earlier connect left, or
    /// connects to an address of the stack itself or of another host.
    pub(super) fn connect(
        &mut self,
        stop: &mut SyscallStop,
        id: SocketId,
        c: AddrIn,
    ) -> Handled {
        let bytes = read_in(&stop.memory(), c.addr, c.addrlen)?;
        if bytes.len() < 2 {
            return Err(Errno::EINVAL);
        }
        if u16::from_ne_bytes([bytes[0], bytes[1]]) == libc::AF_UNSPEC as u16 {
            return Ok(self.disconnect(stop, c.fd, id));
        }
        if let Some(answer) = self.report_earlier_connect(stop, id, c.fd)? {
            return Ok(answer);
        }
        let socket = &self.table[id];
        if socket.proto == Proto::Tcp && (socket.peer.is_some() || socket.listening) {
            return Err(Errno::EISCONN);
        }
        let to = self.connect_destination(stop, id, &bytes)?;
        // A ping socket connected to the host itself is answered by the host, as
        // one connected to another host: through its private end.
        if !self.host.is_local(to.ip()) || self.table[id].proto == Proto::Icmp {
            return self.connect_remote(stop, id, c, to);
        }
        self.connect_local(stop, id, c, to)
    }

    /// What Linux remembers of an earlier connect of socket `id` (at `fd`) that
    /// this one reports: its outcome, once, or that it is still under way.
    fn report_earlier_connect(
        &mut self,
        stop: &SyscallStop,
        id: SocketId,
        fd: i32,
    ) -> Result<Option<Disposition>, Errno> {
        match self.table[id].connect_state() {
            ConnectState::DoneUnreported => {
                self.table.set_connect_state(id, ConnectState::Idle);
                Ok(Some(Disposition::Return(0)))
            }
            ConnectState::Failed(error) => {
                self.table.set_connect_state(id, ConnectState::Refused);
                clear_carrier_error(stop, fd);
                Err(error)
            }
            ConnectState::InProgress(_) => Err(Errno::EALREADY),
            ConnectState::Refused => {
                // `__inet_stream_connect` finds the socket closed and disconnects
                // it (`tcp_disconnect`), which opens it again for receives.
                let socket = &mut self.table[id];
                (socket.shut_rd, socket.shut_wr) = (false, false);
                Err(Errno::ECONNABORTED)
            }
            ConnectState::Idle => Ok(None),
        }
    }

    /// The address socket `id` connects to, from the `sockaddr` `bytes`, with
    /// Linux's checks of what the socket may connect to.
    fn connect_destination(
        &self,
        stop: &SyscallStop,
        id: SocketId,
        bytes: &[u8],
    ) -> Result<SocketAddr, Errno> {
        let socket = &self.table[id];
        let ipv4 = bytes.len() >= 2 && i32::from(u16::from_ne_bytes([bytes[0], bytes[1]])) == libc::AF_INET;
        let mut to = if socket.family == Family::V6 && socket.proto == Proto::Udp && ipv4 {
            // `ip6_datagram_connect` hands an IPv4 address to IPv4: the mapped address.
            if socket.options.v6only {
                return Err(Errno::EAFNOSUPPORT);
            }
            let to = inet_addr(bytes, Family::V4, false)?;
            SocketAddr::new(Family::V6.map_ip(to.ip()), to.port())
        } else {
            inet_addr(bytes, socket.family, false)?
        };
        // Linux connects to the unspecified address through loopback.
        to = unspecified_as_loopback(to);
        if socket.family == Family::V6 && socket.options.v6only && to.ip().to_canonical().is_ipv4()
        {
            return Err(Errno::ENETUNREACH);
        }
        if socket.proto == Proto::Tcp
            && (to.ip().to_canonical().is_multicast() || self.host.is_broadcast(to.ip()))
        {
            // TCP talks to one host.
            return Err(Errno::ENETUNREACH);
        }
        if self.host.is_broadcast(to.ip()) && !may_broadcast(stop) {
            return Err(Errno::EACCES);
        }
        Ok(to)
    }

    /// A connect to `to`, an address of the stack itself: the carrier connects to
    /// the receiver's carrier.
    fn connect_local(
        &mut self,
        stop: &mut SyscallStop,
        id: SocketId,
        c: AddrIn,
        to: SocketAddr,
    ) -> Handled {
        let source = self.host.source_for(to.ip());
        let proto = self.table[id].proto;
        // The receiver as the table has it: if its carrier has closed since, the
        // kernel refuses the connect, and the exit tries again without it.
        let receiver = self.table.ports.receiver(proto, to).map(|b| (b.name, b.socket));
        let (name, receiver) = match (receiver, proto) {
            (Some(receiver), _) => receiver,
            (None, Proto::Tcp) => return self.refuse(stop, id, c),
            // UDP connects to a silent port all the same. The carrier is connected
            // to a private end, which answers what is sent there as the host
            // would: with a port unreachable.
            (None, _) => return self.connect_remote(stop, id, c, to),
        };
        if let Some(again) = self.bind_implicitly(stop, id, source)? {
            return Ok(again);
        }
        let nonblocking = is_nonblocking(stop, c.fd);
        connect_carrier(stop, c, name)?;
        if let Some(socket) = self.table.get_mut(id) {
            socket.peer = Some(to);
        }
        let receiver = Some(Receiver { socket: receiver, name, port: to.port() });
        Ok(self.await_exit(stop.tid, PendingConnect { socket: id, nonblocking, source, receiver }))
    }

    /// A connect to another host, through the stack's network: TCP dials (see
    /// `NetHost::dial`); a datagram socket's carrier is connected to the
    /// remote's stand-in.
    fn connect_remote(
        &mut self,
        stop: &mut SyscallStop,
        id: SocketId,
        c: AddrIn,
        to: SocketAddr,
    ) -> Handled {
        let ip = to.ip().to_canonical();
        let route = match self.route(ip) {
            _ if self.host.is_local(ip) => Route { iface: 0, source: self.host.source_for(ip) },
            Some(route) => route,
            None => return Err(Errno::ENETUNREACH),
        };
        let source = self.table[id].family.map_ip(route.source);
        if let Some(again) = self.bind_implicitly(stop, id, source)? {
            return Ok(again);
        }
        let socket = &self.table[id];
        let local = socket.local.ok_or(Errno::EINVAL)?;
        let (target, pending): (_, Box<dyn Pending>) = if socket.proto == Proto::Tcp {
            let blocking = !is_nonblocking(stop, c.fd);
            let from = SocketAddr::new(route.source, local.port());
            let gate = self.dial(id, route, (from, to), (blocking, stop.process))?;
            let fd = c.fd;
            (gate, Box::new(PendingDial { socket: id, fd, blocking, source: route.source }))
        } else {
            let port = if socket.proto == Proto::Udp { to.port() } else { 0 };
            let remote = (socket.proto, SocketAddr::new(ip, port));
            let carrier = socket.name;
            let carrier = carrier.ok_or(Errno::ENETUNREACH)?;
            let name = self.private_end(carrier, remote, stop.process)?;
            let source = route.source;
            let connect = PendingConnect { socket: id, nonblocking: false, source, receiver: None };
            (name, Box::new(connect))
        };
        connect_carrier(stop, c, target)?;
        if let Some(socket) = self.table.get_mut(id) {
            socket.peer = Some(to);
            socket.sender = Some(stop.process);
        }
        self.pending.insert(stop.tid, pending);
        Ok(Disposition::KernelThenFinish)
    }

    /// The gate socket `id`'s carrier connects to for a TCP connect from `from` to
    /// `to` across the network: the dial under way, or a new one.
    fn dial(
        &mut self,
        id: SocketId,
        route: Route,
        (from, to): (SocketAddr, SocketAddr),
        (blocking, owner): (bool, Pid),
    ) -> Result<EndpointName, Errno> {
        let net = self.net.as_mut().expect("routed to the network");
        match net.gate_of(id) {
            // A connect under way: a blocking one waits for it again.
            Some(_) if !blocking => Err(Errno::EALREADY),
            Some(gate) => Ok(gate),
            None => {
                let gate = self.carriers.fresh();
                let to = SocketAddr::new(to.ip().to_canonical(), to.port());
                net.dial(id, route, from, to, gate, (blocking, owner))?;
                Ok(gate)
            }
        }
    }

    /// A TCP connect that nobody listens for. Blocking, it is `ECONNREFUSED` at once,
    /// as on Linux. Non-blocking, Linux says `EINPROGRESS` and the refusal arrives
    /// later, as `POLLERR|POLLHUP` and `SO_ERROR`. The carrier is given that state
    /// natively: it connects to a listener netvm makes for the purpose, which is
    /// closed at the call's exit without accepting; the kernel then marks the
    /// carrier failed and shut down, so every readiness API sees the refusal.
    fn refuse(
        &mut self,
        stop: &mut SyscallStop,
        id: SocketId,
        c: AddrIn,
    ) -> Handled {
        self.take_and_give_back_a_port(id);
        if !is_nonblocking(stop, c.fd) {
            return Err(Errno::ECONNREFUSED);
        }
        let name = self.carriers.fresh();
        let listener = temporary_listener(&name).map_err(|_| Errno::ECONNREFUSED)?;
        connect_carrier(stop, c, name)?;
        Ok(self.await_exit(stop.tid, PendingRefusal { socket: id, listener }))
    }

    /// Linux binds a connecting socket to an ephemeral port before its SYN
    /// goes, and a refusal puts the port back but leaves its number for
    /// `getsockname`: an unbound socket `id` takes a free port's number so.
    fn take_and_give_back_a_port(&mut self, id: SocketId) {
        let socket = &self.table[id];
        if socket.local.is_some() {
            return;
        }
        let (proto, any) = (socket.proto, SocketAddr::new(socket.family.unspecified(), 0));
        if let Ok(port) = self.table.take_port(id, self.carriers.fresh(), any) {
            self.table.ports.unbind(proto, port, id);
            self.table[id].given_back_port = Some(port);
        }
    }

    /// `shutdown`: a listener's receiving side closes it (`inet_shutdown`); a
    /// connection's ends natively, netvm noting that this side sends no more.
    pub(super) fn shutdown(
        &mut self,
        stop: &SyscallStop,
        id: SocketId,
        c: Shutdown,
    ) -> Handled {
        // Linux judges `how` before anything else.
        if !(libc::SHUT_RD..=libc::SHUT_RDWR).contains(&c.how) {
            return Err(Errno::EINVAL);
        }
        let socket = &mut self.table[id];
        if c.how != libc::SHUT_WR && socket.listening {
            self.stop_listening(stop, c.fd, id);
            return Ok(Disposition::Return(0));
        }
        if c.how != libc::SHUT_RD {
            socket.shut_wr = true;
        }
        // An unconnected carrier would shut down quietly; Linux refuses, though
        // it marks the socket shut all the same (`inet_shutdown`): a TCP receive
        // then reads end of file, a datagram send fails with EPIPE.
        if socket.peer.is_none() && !socket.listening {
            socket.shut_rd |= c.how != libc::SHUT_WR;
            return Err(Errno::ENOTCONN);
        }
        Ok(Disposition::Kernel)
    }

    /// A connect of socket `id` (at `fd`) to `AF_UNSPEC`.
    fn disconnect(&mut self, stop: &SyscallStop, fd: i32, id: SocketId) -> Disposition {
        let socket = &mut self.table[id];
        socket.peer = None;
        if socket.proto.unhashes() {
            // What the program's bind did not fix is given up (`__udp_disconnect`).
            self.release_unlocked(id);
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
}

impl SmoltcpStack {
    /// Gives up what the program's `bind` did not fix of socket `id`'s
    /// address: as a UDP socket's disconnect does (`__udp_disconnect`), and a
    /// TCP listener's (`tcp_disconnect`). A port given up is taken again by the
    /// next `bind`, or by the call that binds implicitly.
    pub(super) fn release_unlocked(&mut self, id: SocketId) {
        let Some(socket) = self.table.get_mut(id) else { return };
        let Some(local) = socket.local else { return };
        let ip = if socket.locks.address { local.ip() } else { socket.family.unspecified() };
        let port = if socket.locks.port { local.port() } else { 0 };
        let proto = socket.proto;
        socket.local = Some(SocketAddr::new(ip, port));
        socket.source = None;
        if port == 0 {
            self.table.ports.unbind(proto, local.port(), id);
            self.close_network_port(proto, local.port());
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

/// A carrier's connect to another carrier (or a private end), from `source`.
struct PendingConnect {
    socket: SocketId,
    nonblocking: bool,
    source: IpAddr,
    /// The socket of the stack's connected to, if any.
    receiver: Option<Receiver>,
}

impl Pending for PendingConnect {
    fn finish(self: Box<Self>, stack: &mut SmoltcpStack, stop: &mut SyscallStop, _: &mut Claims) {
        if let Some(receiver) = self.receiver
            && stop.result() == -i64::from(libc::ECONNREFUSED)
            && let Some(socket) = stack.table.get_mut(self.socket)
            // The kernel may have run the connect on another socket, which a
            // thread put at the fd meanwhile: only a name nobody holds tells.
            && !receiver.name.is_held(socket.proto.carrier())
        {
            // The receiver's carrier closed. Forgotten, the call is made again
            // and finds who else receives.
            socket.peer = None;
            let proto = socket.proto;
            stack.forget_closed_receiver(proto, receiver.port, receiver.socket);
            return stop.restart(libc::SYS_connect);
        }
        let Some(s) = stack.table.get_mut(self.socket) else { return };
        if stop.result() != 0 {
            s.peer = None;
            return;
        }
        if let Some(local) = s.local.as_mut().filter(|l| l.ip().is_unspecified()) {
            local.set_ip(self.source);
        }
        if let (Proto::Udp | Proto::Icmp | Proto::Raw, Some(carrier)) = (s.proto, s.name) {
            stack.join_private_end(carrier);
            return;
        }
        if self.nonblocking {
            // A TCP connect never completes within the call; the carrier's did, so
            // the socket is writable as soon as the program polls.
            stop.set_result(-i64::from(libc::EINPROGRESS));
            stack.table.set_connect_state(self.socket, ConnectState::DoneUnreported);
        }
    }
}

/// The socket of the stack's a carrier connects to: its carrier's name, and the
/// port it is bound to.
#[derive(Clone, Copy)]
struct Receiver {
    socket: SocketId,
    name: EndpointName,
    port: u16,
}

/// A TCP connect across the network: the carrier connects to the dial's gate.
struct PendingDial {
    socket: SocketId,
    /// The program's fd of the socket.
    fd: i32,
    blocking: bool,
    source: IpAddr,
}

impl Pending for PendingDial {
    fn finish(self: Box<Self>, stack: &mut SmoltcpStack, stop: &mut SyscallStop, _: &mut Claims) {
        let dialing = stack.net.as_ref().is_some_and(|n| n.gate_of(self.socket).is_some());
        let Some(s) = stack.table.get_mut(self.socket) else { return };
        let state = s.connect_state();
        let next = match stop.result() {
            0 => {
                let source = s.family.map_ip(self.source);
                if let Some(local) = s.local.as_mut().filter(|l| l.ip().is_unspecified()) {
                    local.set_ip(source);
                }
                if self.blocking {
                    return;
                }
                stop.set_result(-i64::from(libc::EINPROGRESS));
                // Until the handshake ends the carrier must not poll writable.
                if let (true, Some(net), Ok(carrier)) =
                    (dialing, stack.net.as_mut(), stop.copy_fd(self.fd))
                {
                    net.plug(self.socket, carrier);
                }
                match state {
                    _ if dialing => ConnectState::InProgress(Instant::now()),
                    ConnectState::Failed(_) => return,
                    _ => ConnectState::DoneUnreported,
                }
            }
            // The gate closed: the connect failed, for the reason recorded.
            r if r == -i64::from(libc::ECONNREFUSED) && !dialing => {
                if let ConnectState::Failed(error) = state {
                    stop.set_result(-(error as i64));
                }
                s.peer = None;
                ConnectState::Idle
            }
            // Interrupted: the handshake goes on, as Linux's does.
            _ => return,
        };
        stack.table.set_connect_state(self.socket, next);
    }
}

/// A non-blocking connect nobody listens for, pointed at `listener` (see
/// [`SmoltcpStack::refuse`]), which is dropped at the exit.
struct PendingRefusal {
    socket: SocketId,
    listener: OwnedFd,
}

impl Pending for PendingRefusal {
    fn finish(self: Box<Self>, stack: &mut SmoltcpStack, stop: &mut SyscallStop, _: &mut Claims) {
        drop(self.listener);
        // A carrier that could not connect (a listener's, say) failed the call
        // with its own error, and no refusal is to come.
        if stop.result() == 0 {
            stack.table.set_connect_state(self.socket, ConnectState::Failed(Errno::ECONNREFUSED));
            stop.set_result(-i64::from(libc::EINPROGRESS));
        }
    }
}
