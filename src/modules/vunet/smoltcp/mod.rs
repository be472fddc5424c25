//! The `smoltcp` submodule: an independent TCP/IP host per mounted stack.
//!
//! Each instance has its own loopback (`127.0.0.0/8`, `::1`), its own addresses, its
//! own port table and sockets; nothing is shared between instances.
//!
//! # How a virtual socket works
//!
//! A virtual TCP or UDP socket is a real kernel socket in the traced program: an
//! `AF_UNIX` socket (the *carrier*: `SOCK_STREAM` for TCP, `SOCK_DGRAM` for UDP, so
//! datagrams keep their boundaries). `socket()` creates it in the supervisor, which
//! installs it in the program as the call's result (or, without a seccomp notifier,
//! `socket()` is rewritten to create it), so the kernel picks the fd number and
//! honours `SOCK_NONBLOCK`/`SOCK_CLOEXEC`; from then on
//! `read`, `write`, `send`/`recv` without addresses, `poll`/`epoll`/`select`, `dup`,
//! `fork`, `SCM_RIGHTS` and `close` all run in the kernel.
//!
//! Binding gives the carrier an abstract name of its own (`endpoint`), recorded in
//! the stack's `ports` table under the virtual address. A connection between two
//! sockets of the stack is then a kernel `AF_UNIX` connection between their
//! carriers: `connect` is rewritten to target the listener's name, `accept` runs
//! natively, and netvm only translates addresses at the edges (`accept`,
//! `getsockname`, `getpeername`, `recvfrom`). Bytes never pass through the
//! supervisor, which is how one stack moves data at kernel speed. Traffic that
//! leaves the stack over a link is the smoltcp engine's job ([`net`]); a stack
//! without links reaches only itself, and other destinations are `ENETUNREACH`.
//!
//! # Layers
//!
//! Each file depends (by import or by method) only on files listed before it;
//! this one, last, on all:
//!
//! 1. Leaves: `endpoint` (carrier names), `ports` (the port table), `sockopt`
//!    (emulated options), `inet` (families, addresses as Linux decodes them),
//!    `icmp` (ICMP packets), `proc` (what `/proc` says of a program), `carrier`
//!    (carrier plumbing), `private` (private ends of connected datagram sockets),
//!    `cells` (smoltcp sockets each in a set of its own, found by 4-tuple).
//! 2. The parts of a stack: `table` (the virtual sockets, their carriers' names
//!    and ports; the one place that changes a connect's state), [`net`] (the
//!    network side: smoltcp interfaces, TCP pumps, dials, remotes), `addressing`
//!    (the host's own addresses).
//! 3. `stack`: [`SmoltcpStack`], composing the parts, and `Pending`, the state a
//!    call in flight leaves for its exit.
//! 4. Handlers the network side also needs: `bind` (and the implicit binds
//!    before a connect, listen or send), `listen`, `accept` (and connections arriving from the network),
//!    `errqueue` (ICMP errors).
//! 5. `service`: the stack's network rounds.
//! 6. The other handlers, one file per call family, each with its own pending
//!    state and exit: `create` (`socket`), `connect` (and `shutdown`), `names`
//!    (`getsockname`, `getpeername`), `datagram` (the calls that carry addresses
//!    with data), `options` (`getsockopt`, `setsockopt`, queue ioctls); and
//!    `diag` (the sockets `ss` lists) and `report` (`netvm status`).
//! 7. This file: the [`Stack`] interface, which routes each call to its handler
//!    and each exit to the pending state its call left.

mod accept;
mod addressing;
mod alarm;
mod bind;
mod carrier;
mod cells;
mod connect;
mod create;
mod datagram;
mod diag;
mod endpoint;
mod errqueue;
mod icmp;
mod inet;
mod inside;
mod interface_options;
mod kind;
mod listen;
mod names;
mod neighbours;
pub mod net;
mod options;
mod ports;
mod private;
mod raw;
pub(super) mod proc;
mod report;
mod service;
mod shadow;
mod sockopt;
mod stack;
mod table;

use std::net::{IpAddr, SocketAddr};
use std::os::fd::RawFd;
use std::rc::Rc;
use std::time::Instant;

use nix::unistd::Pid;

use ports::Proto;
use super::inside::Inside;
use super::inside::change::{Change, Event};
use super::inside::sock_diag::SocketView;
use super::network::Network;
use super::status::StackStatus;
use super::stack::{Activity, Claims, Stack};
use crate::fdtable::SocketId;
use crate::modules::{Disposition, Handled};
use crate::syscall::Syscall;
use crate::tracer::SyscallStop;
pub use kind::KIND;
pub use stack::SmoltcpStack;

impl Stack for SmoltcpStack {
    fn name(&self) -> &Rc<str> {
        &self.name
    }

    fn kind(&self) -> &'static str {
        Self::KIND
    }

    fn create(&mut self, stop: &mut SyscallStop, claims: &mut Claims) -> Handled {
        self.socket(stop, claims)
    }

    fn on_socket(&mut self, id: SocketId, stop: &mut SyscallStop) -> Handled {
        if !self.table.contains(id) {
            return Ok(Disposition::Kernel);
        }
        on_call(self, id, stop)
    }

    fn finish(&mut self, stop: &mut SyscallStop, claims: &mut Claims) {
        if let Some(pending) = self.pending.remove(&stop.tid) {
            pending.finish(self, stop, claims);
        }
    }

    fn family(&self, socket: SocketId) -> Option<i32> {
        self.table.get(socket).map(|socket| socket.family.raw())
    }

    fn originator(&self, tcp: bool, local: SocketAddr) -> Option<Pid> {
        let proto = if tcp { Proto::Tcp } else { Proto::Udp };
        let binding = self.table.ports.sender(proto, local)?;
        self.table.get(binding.socket)?.sender
    }

    fn addresses(&self) -> Vec<String> {
        let loopback = ["127.0.0.0/8".to_owned(), "::1".to_owned()];
        let own = self.host.addresses().iter().map(IpAddr::to_string);
        loopback.into_iter().chain(own).collect()
    }

    fn reserves(&self, sockaddr: &[u8]) -> bool {
        endpoint::is_carrier_address(kind::session(), sockaddr)
    }

    fn watches(&self, fd: RawFd) -> bool {
        self.net.as_ref().is_some_and(|net| net.watches(fd))
    }

    fn frames_waiting(&self, network: &Network) -> bool {
        self.net.as_ref().is_some_and(|net| net.frames_waiting(network))
    }

    fn service(&mut self, network: &mut Network, now: Instant, ready: &[RawFd]) -> Activity {
        self.serve_network(network, now, ready)
    }

    fn inside(&self, network: &Network) -> Option<Inside> {
        Some(self.inside_view(network))
    }

    fn change(&mut self, _network: &mut Network, change: &Change) -> Result<Vec<Event>, i32> {
        self.change_inside(change)
    }
    fn sockets(&self) -> Option<Vec<SocketView>> {
        Some(self.socket_views())
    }

    fn status(&self, network: &Network, status: &mut StackStatus) {
        self.fill_status(network, status);
    }

    fn thread_ended(&mut self, tid: Pid) {
        // Its call in flight will never finish.
        self.pending.remove(&tid);
    }

    fn forget(&mut self, sockets: &[SocketId]) {
        self.forget_sockets(sockets);
    }
}

/// Routes a call on socket `id`, one of the stack's, to the handler of its family.
fn on_call(
    stack: &mut SmoltcpStack,
    id: SocketId,
    stop: &mut SyscallStop,
) -> Handled {
    if let Some(answer) = stack.unconnected_stream(stop, id)? {
        return Ok(answer);
    }
    match stop.call() {
        Syscall::Bind(c) => stack.bind(stop, id, c),
        Syscall::Listen(c) => stack.listen(stop, id, c),
        Syscall::Connect(c) => stack.connect(stop, id, c),
        Syscall::Shutdown(c) => stack.shutdown(stop, id, c),
        Syscall::Accept(c) => stack.accept(stop, id, c),
        Syscall::Getsockname(c) => stack.address(stop, id, c, false),
        Syscall::Getpeername(c) => stack.address(stop, id, c, true),
        Syscall::Getsockopt(c) => stack.getsockopt(stop, id, c),
        Syscall::Setsockopt(c) => stack.setsockopt(stop, id, c),
        Syscall::Ioctl(c) => stack.ioctl(stop, id, c),
        Syscall::Sendto(c) => stack.sendto(stop, id, c),
        Syscall::Recvfrom(c) => stack.recvfrom(stop, id, c),
        Syscall::Sendmsg(c) => stack.sendmsg(stop, id, c),
        Syscall::Recvmsg(c) => stack.recvmsg(stop, id, c),
        Syscall::Sendmmsg(c) => stack.sendmmsg(stop, id, c),
        Syscall::Recvmmsg(c) => stack.recvmmsg(stop, id, c),
        _ => Ok(Disposition::Kernel),
    }
}
