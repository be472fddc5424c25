//! `bind`, and the binds netvm does before a call that needs its socket bound
//! (Linux binds implicitly on `listen`, `connect` and the first send).
//!
//! A bind enters the socket in the stack's port table and binds its carrier to
//! a fresh endpoint name through the supervisor's copy of the program's fd (one
//! socket, two fds), all within the stop: the program's `bind` returns at once,
//! and a call that needed the bind goes on in the same stop.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;

use nix::errno::Errno;

use super::carrier::bind_to;
use super::endpoint::EndpointName;
use super::inet::{Family, inet_addr};
use super::ports::Proto;
use super::proc::can_bind_service;
use super::stack::SmoltcpStack;
use super::table::BindLocks;
use crate::fdtable::{SocketId, identity};
use crate::modules::vunet::sockaddr::read_in;
use crate::modules::{Disposition, Handled};
use crate::syscall::AddrIn;
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
            return Ok(self.bind_carrier(stop, id, addr, None)?.unwrap_or(Disposition::Return(0)));
        };
        self.retake_port(id, name, addr)?;
        self.table[id].locks = BindLocks::of(addr);
        Ok(Disposition::Return(0))
    }

    /// Binds socket `id` to `local` (port 0: ephemeral): the table entry, and
    /// the carrier to a fresh name through the supervisor's copy of the fd (the
    /// same socket), so the stopped call goes on at once. `implicit` is the
    /// program's call this bind comes before, if it is netvm's idea (a connect,
    /// a listen, a send), for the errno Linux gives when no port is free.
    ///
    /// `Some(Retry)` if another thread put another file at the fd since the
    /// call was routed: nothing is bound, and the call is made again (it then
    /// goes to whatever the fd holds, as the kernel's would).
    pub(super) fn bind_carrier(
        &mut self,
        stop: &mut SyscallStop,
        id: SocketId,
        local: SocketAddr,
        implicit: Option<&Syscall>,
    ) -> Result<Option<Disposition>, Errno> {
        let proto = self.table.get(id).ok_or(Errno::EBADF)?.proto;
        let fd = stop.call().fd().ok_or(Errno::EBADF)?;
        let copy = stop.copy_fd(fd)?;
        if identity(&copy) != Some(id) {
            return Ok(Some(Disposition::Retry));
        }
        let name = self.carriers.fresh();
        let port =
            self.table.take_port(id, name, local).map_err(|e| implicit_bind_error(e, proto, implicit))?;
        if let Err(e) = bind_to(copy.as_raw_fd(), &name) {
            self.table.ports.unbind(proto, port, id);
            return Err(e);
        }
        self.note_bound(id, SocketAddr::new(local.ip(), port));
        if implicit.is_none() {
            self.table[id].locks = BindLocks::of(local);
        }
        self.table.name_carrier(id, name);
        Ok(None)
    }

    /// Gives a socket an implicit bind before the stopped call, which needs one:
    /// an unbound one is bound to `ip` and an ephemeral port; a UDP socket whose
    /// disconnect gave up its port takes a new one. `Some` disposition if the
    /// call is not to go on now (its fd changed under it: it is made again).
    pub(super) fn bind_implicitly(
        &mut self,
        stop: &mut SyscallStop,
        id: SocketId,
        ip: IpAddr,
    ) -> Result<Option<Disposition>, Errno> {
        let socket = &self.table[id];
        let call = stop.call();
        match (socket.local, socket.name) {
            (None, _) => self.bind_carrier(stop, id, SocketAddr::new(ip, 0), Some(&call)),
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
        self.note_bound(id, SocketAddr::new(local.ip(), port));
        Ok(())
    }

    /// Socket `id` now holds `local` in the port table: it shows it, and a UDP
    /// socket's port is open on the network.
    fn note_bound(&mut self, id: SocketId, local: SocketAddr) {
        let socket = &mut self.table[id];
        socket.local = Some(local);
        socket.given_back_port = None;
        if let (Proto::Udp, Some(net)) = (socket.proto, self.net.as_mut()) {
            net.open_udp(local.port());
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
