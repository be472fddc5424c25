//! `bind`, and the binds netvm slips in before a call that needs its socket
//! bound (Linux binds implicitly on `listen`, `connect` and the first send).
//!
//! A bind enters the socket in the stack's port table at once and binds its
//! carrier to a fresh endpoint name by rewriting the call into that `bind`;
//! the exit confirms the table entry (or withdraws it) and, for a bind netvm
//! slipped in, restarts the program's own call.

use std::net::{IpAddr, SocketAddr};

use nix::errno::Errno;

use super::endpoint::EndpointName;
use super::inet::{Family, inet_addr};
use super::ports::Proto;
use super::proc::can_bind_service;
use super::stack::{Pending, SmoltcpStack};
use super::table::BindLocks;
use crate::fdtable::SocketId;
use crate::modules::{Disposition, Handled};
use crate::modules::vunet::Claims;
use crate::modules::vunet::sockaddr::read_in;
use crate::syscall::{AddrIn, UserPtr};
use crate::syscall::Syscall;
use crate::tracer::SyscallStop;

impl SmoltcpStack {
    /// `bind` of socket `id`, with Linux's checks; the carrier is bound by
    /// [`bind_carrier`](Self::bind_carrier).
    pub(super) fn bind(
        &mut self,
        stop: &mut SyscallStop,
        id: SocketId,
        c: AddrIn,
    ) -> Handled {
        let socket = &self.table[id];
        let addr = inet_addr(&read_in(&stop.memory(), c.addr, c.addrlen)?, socket.family, true)?;
        if socket.proto == Proto::Raw {
            // A raw socket's bind only picks its local address; its carrier
            // already has its name.
            self.host.bindable(addr.ip(), socket.options.freebind())?;
            let socket = &mut self.table[id];
            socket.local = Some(SocketAddr::new(addr.ip(), 0));
            return Ok(Disposition::Return(0));
        }
        // A disconnect may have given up the port (`inet_num` 0): bind again.
        let released = socket.local.is_some_and(|l| l.port() == 0);
        if socket.local.is_some() && !released {
            return Err(Errno::EINVAL);
        }
        if socket.options.v6only
            && addr.ip().to_canonical().is_ipv4()
            && socket.family == Family::V6
        {
            return Err(Errno::EINVAL);
        }
        self.host.bindable(addr.ip(), socket.options.freebind())?;
        if addr.port() != 0 && addr.port() < 1024 && !can_bind_service(stop.tid) {
            return Err(Errno::EACCES);
        }
        if let IpAddr::V6(v6) = addr.ip() {
            // Linux makes a socket bound to a specific IPv6 address IPv6-only.
            if !v6.is_unspecified() && v6.to_ipv4_mapped().is_none() {
                self.table[id].options.v6only = true;
            }
        }
        let Some(name) = self.table[id].name.filter(|_| released) else {
            return self.bind_carrier(stop, id, addr, None);
        };
        self.retake_port(id, name, addr)?;
        self.table[id].locks = BindLocks::of(addr);
        Ok(Disposition::Return(0))
    }

    /// Binds socket `id` to `local` (port 0: ephemeral): the table entry now, the
    /// carrier by rewriting the current call into `bind` to a fresh name. `then`
    /// is the program's own call to run next, if this bind is netvm's idea.
    pub(super) fn bind_carrier(
        &mut self,
        stop: &mut SyscallStop,
        id: SocketId,
        local: SocketAddr,
        then: Option<Syscall>,
    ) -> Handled {
        let proto = self.table.get(id).ok_or(Errno::EBADF)?.proto;
        let name = self.carriers.fresh();
        let port = self
            .table
            .take_port(id, name, local)
            .map_err(|e| implicit_bind_error(e, proto, then.as_ref()))?;
        let (asked, local) = (local, SocketAddr::new(local.ip(), port));
        let fd = stop.call().fd().ok_or(Errno::EBADF)?;
        let addr = stop.put_sealed(&name.sockaddr(), 0).inspect_err(|_| {
            self.table.ports.unbind(proto, port, id);
        })?;
        let addrlen = name.sockaddr().len() as u32;
        stop.rewrite(Syscall::Bind(AddrIn { fd, addr: UserPtr(addr), addrlen }));
        Ok(self.await_exit(stop.tid, PendingBind { socket: id, asked, local, name, then }))
    }

    /// Gives a socket an implicit bind before the stopped call, which needs one:
    /// unbound, its carrier is bound (rewriting the call into that bind, and
    /// `Some`); a UDP socket whose disconnect gave up its port takes a new one at
    /// once.
    pub(super) fn bind_implicitly(
        &mut self,
        stop: &mut SyscallStop,
        id: SocketId,
        ip: IpAddr,
    ) -> Result<Option<Disposition>, Errno> {
        let socket = &self.table[id];
        let call = stop.call();
        match (socket.local, socket.name) {
            (None, _) => self.bind_carrier(stop, id, SocketAddr::new(ip, 0), Some(call)).map(Some),
            (Some(local), Some(name)) if local.port() == 0 => {
                let proto = socket.proto;
                self.retake_port(id, name, local)
                    .map_err(|e| implicit_bind_error(e, proto, Some(&call)))
                    .map(|()| None)
            }
            _ => Ok(None),
        }
    }

    /// Binds socket `id`, whose carrier is named `name` already (a disconnect
    /// gave up its port), to `local` again: the table alone changes.
    fn retake_port(
        &mut self,
        id: SocketId,
        name: EndpointName,
        local: SocketAddr,
    ) -> Result<(), Errno> {
        let port = self.table.take_port(id, name, local)?;
        let socket = &mut self.table[id];
        socket.local = Some(SocketAddr::new(local.ip(), port));
        if let (Proto::Udp, Some(net)) = (socket.proto, self.net.as_mut()) {
            net.open_udp(port);
        }
        Ok(())
    }
}

/// A bind of the carrier to `name`: the program's own `bind` of `asked`, or
/// (`then` holding the program's call) one netvm slipped in before that call.
struct PendingBind {
    socket: SocketId,
    asked: SocketAddr,
    local: SocketAddr,
    name: EndpointName,
    then: Option<Syscall>,
}

impl Pending for PendingBind {
    fn finish(self: Box<Self>, stack: &mut SmoltcpStack, stop: &mut SyscallStop, _: &mut Claims) {
        if stop.result() != 0 {
            return self.abandon(stack);
        }
        if let Some(s) = stack.table.get_mut(self.socket) {
            s.local = Some(self.local);
            if self.then.is_none() {
                s.locks = BindLocks::of(self.asked);
            }
            if let (Some(net), Proto::Udp) = (stack.net.as_mut(), s.proto) {
                net.open_udp(self.local.port());
            }
            stack.table.name_carrier(self.socket, self.name);
        }
        if let Some(call) = self.then {
            stop.restart(call.number());
        }
    }

    /// The bind never ran (or failed): its table entry goes.
    fn abandon(self: Box<Self>, stack: &mut SmoltcpStack) {
        if let Some(proto) = stack.table.get(self.socket).map(|s| s.proto) {
            stack.table.ports.unbind(proto, self.local.port(), self.socket);
        }
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
