//! `listen`, and a listener's close (`shutdown` of its receiving side, or a
//! connect to `AF_UNSPEC`), which Linux handles as a disconnect.

use std::os::fd::AsRawFd;

use nix::errno::Errno;
use nix::sys::socket::SockType;

use super::carrier::poll_now;
use super::ports::Proto;
use super::stack::{Pending, SmoltcpStack};
use crate::fdtable::SocketId;
use crate::modules::{Disposition, Handled};
use crate::modules::vunet::Claims;
use crate::syscall::Listen;
use crate::syscall::Syscall;
use crate::tracer::SyscallStop;

/// The backlog every listening carrier gets (see [`SmoltcpStack::listen`]).
const CARRIER_BACKLOG: i32 = 65535;
/// `net.core.somaxconn` as Linux sets it in a new network namespace.
const SOMAXCONN: u32 = 4096;

impl SmoltcpStack {
    /// `listen` on socket `id`: the carrier listens with a backlog that never
    /// refuses; an unbound socket is bound first, as Linux does.
    pub(super) fn listen(
        &mut self,
        stop: &mut SyscallStop,
        id: SocketId,
        c: Listen,
    ) -> Handled {
        if self.table[id].proto != Proto::Tcp {
            return Err(Errno::EOPNOTSUPP);
        }
        // What `ss` shows as a listener's Send-Q (`sk_max_ack_backlog`): the
        // program's backlog, capped as `__sys_listen` caps it.
        self.table[id].backlog = (c.backlog as u32).min(SOMAXCONN);
        let socket = &self.table[id];
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
        // Linux binds an unbound listener to the wildcard and an ephemeral port,
        // and one whose port was given up to a port again.
        if let Some(again) = self.bind_implicitly(stop, id, socket.family.unspecified())? {
            return Ok(again);
        }
        let local = self.table[id].local.ok_or(Errno::EINVAL)?;
        self.table.ports.listen(local.port(), id, |name| name.is_held(SockType::Stream))?;
        Ok(self.await_exit(stop.tid, PendingListen { socket: id, port: local.port() }))
    }

    /// Closes listener `id` (at `fd` of the stopped program) as Linux's
    /// `tcp_disconnect` does: no new connections, `accept` is `EINVAL`, the port is
    /// bound but no longer listened on. The connections waiting in its queue are
    /// ended (Linux resets them; their carriers see the end of the stream).
    pub(super) fn stop_listening(&mut self, stop: &SyscallStop, fd: i32, id: SocketId) {
        let Some(socket) = self.table.get_mut(id) else { return };
        socket.listening = false;
        // `tcp_disconnect`: open again both ways, and what the program's bind
        // did not fix is given up.
        (socket.shut_rd, socket.shut_wr) = (false, false);
        if let Some(local) = socket.local {
            self.table.ports.unlisten(local.port(), id);
            self.close_network_port(Proto::Tcp, local.port());
        }
        self.release_unlocked(id);
        let Ok(listener) = stop.copy_fd(fd) else { return };
        // The carrier's file may be blocking (its flags are the program's): accept
        // only what poll shows is there.
        while poll_now(listener.as_raw_fd(), libc::POLLIN) & libc::POLLIN != 0 {
            let flags = nix::sys::socket::SockFlag::SOCK_CLOEXEC;
            match nix::sys::socket::accept4(listener.as_raw_fd(), flags) {
                Ok(connection) => drop(nix::unistd::close(connection)),
                Err(_) => break,
            }
        }
    }
}

/// The carrier's `listen` on `port`, which the table already counts as listening.
struct PendingListen {
    socket: SocketId,
    port: u16,
}

impl Pending for PendingListen {
    fn finish(self: Box<Self>, stack: &mut SmoltcpStack, stop: &mut SyscallStop, _: &mut Claims) {
        if stop.result() != 0 {
            stack.table.ports.unlisten(self.port, self.socket);
            return;
        }
        if let Some(s) = stack.table.get_mut(self.socket) {
            s.listening = true;
            if let (Some(net), Some(local)) = (stack.net.as_mut(), s.local) {
                net.listen(local.ip(), self.port);
            }
        }
    }
}
