//! `accept`: runs natively on the listening carrier; the exit records the new
//! socket and tells the program its peer's virtual address, which is the
//! connecting carrier's (a socket of the stack, or the stand-in for a remote
//! host that the network side handed the connection over from).

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::SockType;

use super::carrier::{
    carrier_events, connect_to, inode_of, is_nonblocking, local_name, peer_name,
};
use super::ports::Proto;
use super::stack::{Pending, SmoltcpStack};
use super::table::VSocket;
use crate::fdtable::SocketId;
use crate::modules::Handled;
use crate::modules::vunet::Claims;
use crate::modules::vunet::sockaddr::{encode, write_out};
use crate::tracer::SyscallStop;
use crate::syscall::Accept;

impl SmoltcpStack {
    /// `accept` on listener `id`: the kernel accepts on the carrier; the exit
    /// records the connection (see [`PendingAccept`]).
    pub(super) fn accept(
        &mut self,
        stop: &mut SyscallStop,
        id: SocketId,
        c: Accept,
    ) -> Handled {
        // Linux judges the flags first, and the address length last.
        if c.flags.is_some_and(|f| f & !(libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK) != 0) {
            return Err(Errno::EINVAL);
        }
        let socket = &self.table[id];
        if socket.proto != Proto::Tcp {
            return Err(Errno::EOPNOTSUPP);
        }
        if !socket.listening {
            return Err(Errno::EINVAL);
        }
        let room = if c.addr.is_null() {
            None
        } else {
            match stop.memory().read::<i32>(c.addrlen.0) {
                Ok(room) if room >= 0 => Some(room),
                Ok(_) => return Err(length_refused(stop, c.fd, Errno::EINVAL)),
                Err(fault) => return Err(length_refused(stop, c.fd, fault)),
            }
        };
        Ok(self.await_exit(stop.tid, PendingAccept { listener: id, call: c, room }))
    }

    /// Connects a stand-in for `remote` to the carrier listening at `local`, so
    /// that the program's `accept` returns a connection from `remote` (a
    /// connection that arrived from the network); returns the stand-in's end, for
    /// the network side to pump, and its identity.
    pub(super) fn hand_over(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Option<(OwnedFd, SocketId)> {
        let listener = self.live_receiver(Proto::Tcp, local)?;
        let (end, name) = self.carriers.bound_socket(SockType::Stream)?;
        connect_to(end.as_raw_fd(), &listener).ok()?;
        let id = inode_of(&end)?;
        self.table.record_stand_in(id, name, Proto::Tcp, remote);
        if let Some(stand_in) = self.table.get_mut(id) {
            stand_in.peer = Some(local);
        }
        Some((end, id))
    }

    /// The socket a connection accepted from `listening` is: a copy of its
    /// listener, connected from the socket whose carrier is bound to the name the
    /// accepted carrier (`accepted`, a copy of the program's fd) is connected to;
    /// and that connecting socket (a stand-in, for a connection that arrived
    /// from the network).
    fn accepted_socket(
        &self,
        listening: &VSocket,
        accepted: Option<&OwnedFd>,
    ) -> (VSocket, Option<SocketId>) {
        let mut socket = VSocket::new(listening.family, Proto::Tcp);
        socket.options = listening.options.clone();
        // The carrier's peer is the connecting carrier, bound to a name of ours.
        let connector_id = accepted
            .and_then(|copy| peer_name(copy.as_raw_fd()))
            .and_then(|name| self.table.named(&name));
        let connector = connector_id.and_then(|id| self.table.get(id));
        if let Some(connector) = connector {
            socket.local = connector.peer;
            // The connector's own address may still be its wildcard bind (its
            // connect's exit can come after this accept's): use the source it
            // connects from.
            socket.peer =
                connector.local.map(|local| match (local.ip().is_unspecified(), connector.peer) {
                    (true, Some(to)) => {
                        SocketAddr::new(self.host.source_for(to.ip()), local.port())
                    }
                    _ => local,
                });
        }
        (socket, connector_id)
    }
}

/// `accept` `call` on `listener`, with `room` bytes for the peer's address.
struct PendingAccept {
    listener: SocketId,
    call: Accept,
    room: Option<i32>,
}

impl Pending for PendingAccept {
    /// A connection was accepted as the fd the call returned: record the new
    /// socket and tell the program its peer's virtual address.
    fn finish(
        self: Box<Self>,
        stack: &mut SmoltcpStack,
        stop: &mut SyscallStop,
        claims: &mut Claims,
    ) {
        let Some(fd) = stop.returned_fd() else { return };
        let Some(listening) = stack.table.get(self.listener) else { return };
        // An accepted AF_UNIX socket bears its listener's name.
        let listener_name = listening.name;
        let accepted_here =
            |copy: &OwnedFd| listener_name.is_some_and(|name| local_name(copy) == Some(name));
        let Some((id, copy)) = claims.claim_new(stop, fd, accepted_here) else { return };
        if listening.options.inheritable_set
            && let Ok(listener) = stop.copy_fd(self.call.fd)
        {
            inherit_socket_options(listener.as_raw_fd(), copy.as_raw_fd());
        }
        let (accepted, connector) = stack.accepted_socket(listening, Some(&copy));
        let peer = accepted.peer.unwrap_or(SocketAddr::new(listening.family.unspecified(), 0));
        let family = listening.family.raw();
        stack.table.insert(id, accepted);
        if let Some(net) = stack.net.as_mut() {
            // A connection from the network: its pump learns whose it is, and
            // the accepted socket inherits its listener's SO_LINGER.
            if let Some(stand_in) = connector {
                net.adopt(stand_in, id);
            }
            if net.abortive.contains(&self.listener) {
                net.abortive.insert(id);
            }
        }
        let Some(room) = self.room else { return };
        let (c, memory) = (self.call, stop.memory());
        // Restore the caller's buffer length (the kernel overwrote it) first.
        let written = memory
            .write(c.addrlen.0, &room)
            .and_then(|()| write_out(&memory, c.addr, c.addrlen, &encode(peer, family)));
        if let Err(e) = written {
            stop.set_result(-(e as i64));
        }
    }
}

/// Whether setting `SOL_SOCKET` option `name` on a listener changes what its
/// accepted sockets inherit: one of the [`INHERITED_OPTIONS`], or a forcing
/// form of the buffer sizes, which sets what `SO_RCVBUF`/`SO_SNDBUF` read.
pub(super) fn passes_to_accepted(name: libc::c_int) -> bool {
    INHERITED_OPTIONS.contains(&name) || [libc::SO_RCVBUFFORCE, libc::SO_SNDBUFFORCE].contains(&name)
}

/// `SOL_SOCKET` options a TCP socket accepted by Linux inherits from its listener
/// (it is a copy of it) but an `AF_UNIX` carrier does not.
const INHERITED_OPTIONS: [libc::c_int; 8] = [
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
fn inherit_socket_options(listener: i32, accepted: i32) {
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

/// The error of an `accept` whose address length cannot be used (`error`):
/// Linux looks at the length only once it has taken a connection, so with none
/// pending a non-blocking listener says `EAGAIN` first. (With one pending Linux
/// takes it and loses it; netvm leaves it queued. A blocking listener with none
/// fails at once instead of after the next arrival.)
fn length_refused(stop: &SyscallStop, fd: i32, error: Errno) -> Errno {
    let pending = carrier_events(stop, fd, libc::POLLIN) & libc::POLLIN != 0;
    if !pending && is_nonblocking(stop, fd) { Errno::EAGAIN } else { error }
}
