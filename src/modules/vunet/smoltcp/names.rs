//! `getsockname` and `getpeername`: a virtual socket's own address and its
//! peer's, as Linux reports them (the carrier would report endpoint names).

use std::net::SocketAddr;

use nix::errno::Errno;

use super::carrier::carrier_events;
use super::ports::Proto;
use super::stack::SmoltcpStack;
use super::table::VSocket;
use crate::fdtable::SocketId;
use crate::modules::{Disposition, Handled};
use crate::modules::vunet::sockaddr::{encode, write_out};
use crate::tracer::SyscallStop;
use crate::syscall::AddrOut;

impl SmoltcpStack {
    /// `getsockname` (or `getpeername`, with `peer`) of socket `id`: the virtual
    /// address, where the carrier would report its endpoint name.
    pub(super) fn address(
        &self,
        stop: &SyscallStop,
        id: SocketId,
        c: AddrOut,
        peer: bool,
    ) -> Handled {
        let socket = &self.table[id];
        let addr = if peer {
            // Linux reports a peer only with a port: a connected ping or raw
            // socket has none (`inet_getname`).
            if matches!(socket.proto, Proto::Icmp | Proto::Raw) {
                return Err(Errno::ENOTCONN);
            }
            match socket.peer {
                // A datagram socket connected to port 0 has no peer to name.
                Some(addr)
                    if addr.port() != 0 && !socket.listening && !connection_over(stop, socket) =>
                {
                    addr
                }
                _ => return Err(Errno::ENOTCONN),
            }
        } else {
            let local = socket.local.unwrap_or(SocketAddr::new(socket.family.unspecified(), 0));
            match socket.proto {
                // A raw socket's "port" is its protocol (`inet_create`).
                Proto::Raw => SocketAddr::new(local.ip(), u16::from(socket.raw_protocol)),
                _ if local.port() == 0 => {
                    SocketAddr::new(local.ip(), socket.given_back_port.unwrap_or(0))
                }
                _ => local,
            }
        };
        let bytes = encode(addr, socket.family.raw());
        write_out(&stop.memory(), c.addr, c.addrlen, &bytes)?;
        Ok(Disposition::Return(0))
    }
}

/// Whether a TCP connection has ended as Linux counts it (state CLOSE): a reset
/// came (the carrier has an error), or both sides shut down writing (the
/// carrier is shut down both ways after this side's own `SHUT_WR`). A peer's
/// clean close alone leaves Linux in CLOSE_WAIT, still connected.
fn connection_over(stop: &SyscallStop, socket: &VSocket) -> bool {
    let Some(fd) = stop.call().fd() else { return false };
    if socket.proto != Proto::Tcp {
        return false;
    }
    let revents = carrier_events(stop, fd, 0);
    revents & libc::POLLERR != 0 || (revents & libc::POLLHUP != 0 && socket.shut_wr)
}
