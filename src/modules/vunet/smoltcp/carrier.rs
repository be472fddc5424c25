//! Carrier plumbing: the `AF_UNIX` sockets behind virtual ones.
//!
//! Carriers are bound to endpoint names that the stack's [`Carriers`] hands out;
//! so are the supervisor's own sockets that carriers talk to (stand-ins for
//! remote hosts, private ends, gates, refusing listeners). A program's carrier is
//! reached through a copy of its fd (`pidfd_getfd`): polled for what the kernel
//! knows of its connection, its pending error cleared.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{AddressFamily, SockFlag, SockType, UnixAddr, sockopt};

use super::endpoint::{EndpointName, Namer};
use crate::fdtable::SocketId;
use crate::tracer::SyscallStop;

/// The names of one stack's carriers, and the supervisor's sockets bound to them.
#[derive(Debug)]
pub(super) struct Carriers {
    namer: Namer,
}

impl Carriers {
    /// The carriers of stack number `index` of session `session`.
    pub(super) fn new(session: [u8; 4], index: usize) -> Self {
        Self { namer: Namer::new(session, index) }
    }

    /// A name no carrier of the stack had.
    pub(super) fn fresh(&mut self) -> EndpointName {
        self.namer.fresh()
    }

    /// A non-blocking socket of the supervisor, of type `ty`, bound to a fresh
    /// name; `None` if the kernel refuses one.
    pub(super) fn bound_socket(&mut self, ty: SockType) -> Option<(OwnedFd, EndpointName)> {
        let name = self.fresh();
        let socket = unix_socket(ty).ok()?;
        bind_to(socket.as_raw_fd(), &name).ok()?;
        Some((socket, name))
    }

    /// A datagram end of the supervisor's (a remote host's, or a connected
    /// socket's private end), bound to a fresh name, with room for what it
    /// hands its receivers: see [`END_SEND_BUFFER`].
    pub(super) fn datagram_end(&mut self) -> Option<(OwnedFd, EndpointName)> {
        let (end, name) = self.bound_socket(SockType::Datagram)?;
        // The kernel doubles what it is given; FORCE passes wmem_max, where
        // the supervisor administers the namespace.
        let half = END_SEND_BUFFER / 2;
        if nix::sys::socket::setsockopt(&end, sockopt::SndBufForce, &half).is_err() {
            let _ = nix::sys::socket::setsockopt(&end, sockopt::SndBuf, &half);
        }
        Some((end, name))
    }
}

/// The send buffer of an end that hands datagrams from the network to
/// carriers. A datagram an end hands over counts against the end's own send
/// buffer until its receiver reads it, where Linux counts it against the
/// receiver's receive buffer (212,992 bytes by default); AF_UNIX charges a
/// large datagram more of it, and one end may feed several receivers. So an
/// end has four times the default: a receiver that falls behind loses what
/// Linux's would, or less. Measured with `bench/udp-loss.sh` (1 Gbit/s,
/// 32 KB datagrams, across stacks): with the default, 0.1–0.3% lost, two to
/// five times the host loopback's; with twice it, 0.02–0.06%, as the
/// loopback's (0.03–0.06%).
const END_SEND_BUFFER: usize = 4 * 212_992;

/// A non-blocking `AF_UNIX` socket of the supervisor, of type `ty`.
pub(super) fn unix_socket(ty: SockType) -> Result<OwnedFd, Errno> {
    nix::sys::socket::socket(
        AddressFamily::Unix,
        ty,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
}

/// The kernel identity of one of the supervisor's own sockets.
pub(super) fn inode_of(fd: &OwnedFd) -> Option<SocketId> {
    nix::sys::stat::fstat(fd).ok().map(|st| SocketId(st.st_ino))
}

/// Binds the `AF_UNIX` socket `fd` to the abstract name `name`.
pub(super) fn bind_to(fd: RawFd, name: &EndpointName) -> Result<(), Errno> {
    nix::sys::socket::bind(fd, &UnixAddr::new_abstract(&name.0)?)
}

/// Connects the `AF_UNIX` socket `fd` to the socket bound to `name`.
pub(super) fn connect_to(fd: RawFd, name: &EndpointName) -> Result<(), Errno> {
    nix::sys::socket::connect(fd, &UnixAddr::new_abstract(&name.0)?)
}

/// A listening stream socket bound to `name`, in the supervisor.
pub(super) fn temporary_listener(name: &EndpointName) -> Result<OwnedFd, Errno> {
    use nix::sys::socket::{Backlog, listen, socket};
    let listener = socket(AddressFamily::Unix, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)?;
    bind_to(listener.as_raw_fd(), name)?;
    listen(&listener, Backlog::new(1)?)?;
    Ok(listener)
}

/// What a poll of the supervisor's fd `fd` reports now, for `events` (`POLLERR`
/// and `POLLHUP` always).
pub(super) fn poll_now(fd: RawFd, events: libc::c_short) -> libc::c_short {
    let mut poll = libc::pollfd { fd, events, revents: 0 };
    // SAFETY: one live pollfd, no timeout.
    let ready = unsafe { libc::poll(&mut poll, 1, 0) };
    if ready == 1 { poll.revents } else { 0 }
}

/// Whether fd `fd` of the stopped program is non-blocking (`O_NONBLOCK`, read
/// from the supervisor's copy, which shares the program's open file).
pub(super) fn is_nonblocking(stop: &SyscallStop, fd: i32) -> bool {
    stop.copy_fd(fd).is_ok_and(|copy| {
        // SAFETY: F_GETFL on a live descriptor of ours takes no pointers.
        let flags = unsafe { libc::fcntl(copy.as_raw_fd(), libc::F_GETFL) };
        flags >= 0 && flags & libc::O_NONBLOCK != 0
    })
}

/// What a poll of the carrier at fd `fd` of the stopped program reports now, for
/// `events` (`POLLERR` and `POLLHUP` always); nothing if it cannot be polled.
pub(super) fn carrier_events(stop: &SyscallStop, fd: i32, events: libc::c_short) -> libc::c_short {
    stop.copy_fd(fd).map_or(0, |copy| poll_now(copy.as_raw_fd(), events))
}

/// Whether the peer of the carrier at `fd` has shut down its sending side
/// (the carrier polls `POLLRDHUP`).
pub(super) fn peer_shut_down(stop: &SyscallStop, fd: i32) -> bool {
    carrier_events(stop, fd, libc::POLLRDHUP) & libc::POLLRDHUP != 0
}

/// The carrier name a connected `AF_UNIX` socket's peer is bound to.
pub(super) fn peer_name(fd: RawFd) -> Option<EndpointName> {
    let name = nix::sys::socket::getpeername::<nix::sys::socket::UnixAddr>(fd).ok()?;
    EndpointName::from_abstract(name.as_abstract()?)
}

/// The carrier name an `AF_UNIX` socket is bound to (an accepted one bears its
/// listener's).
pub(super) fn local_name(socket: &impl AsRawFd) -> Option<EndpointName> {
    let name = nix::sys::socket::getsockname::<nix::sys::socket::UnixAddr>(socket.as_raw_fd());
    EndpointName::from_abstract(name.ok()?.as_abstract()?)
}

/// Clears the error a carrier holds (reading `SO_ERROR` does), once netvm has
/// reported the error Linux would have.
pub(super) fn clear_carrier_error(stop: &SyscallStop, fd: i32) {
    if let Ok(copy) = stop.copy_fd(fd) {
        let _ = nix::sys::socket::getsockopt(&copy, nix::sys::socket::sockopt::SocketError);
    }
}

/// Whether the socket of the stopped call set `SO_BROADCAST` (its carrier keeps it).
pub(super) fn may_broadcast(stop: &SyscallStop) -> bool {
    let copy = stop.call().fd().and_then(|fd| stop.copy_fd(fd).ok());
    copy.is_some_and(|copy| {
        nix::sys::socket::getsockopt(&copy, nix::sys::socket::sockopt::Broadcast).unwrap_or(false)
    })
}
